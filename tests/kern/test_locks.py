"""The map lock (shared/exclusive, upgrade, timestamp) and the object and vnode mutexes."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.kern.kernel import Kernel
from emulator.kern.syscalls import sys_store

Cpu = Any  # tests/kern/conftest.py's Cpu


# -- the map lock ------------------------------------------------------------------------------


async def test_every_exclusive_acquisition_bumps_the_timestamp(run_kernel: Any) -> None:
    seen: list[int] = []

    async def body(cpu: Cpu) -> None:
        lock = cpu.vm_map.lock
        seen.append(lock.timestamp)
        for _ in range(2):
            await lock.xlock()
            seen.append(lock.timestamp)
            await lock.unlock()
            seen.append(lock.timestamp)

    run = await run_kernel(body)
    assert run.outcome == "ok"
    assert seen == [0, 1, 1, 2, 2]


async def test_a_shared_acquisition_leaves_the_timestamp_alone(run_kernel: Any) -> None:
    seen: list[int] = []

    async def body(cpu: Cpu) -> None:
        lock = cpu.vm_map.lock
        await lock.slock()
        seen.append(lock.timestamp)
        await lock.unlock()
        seen.append(lock.timestamp)

    await run_kernel(body)
    assert seen == [0, 0]


async def test_two_cpus_hold_the_map_lock_shared_at_once(run_kernel: Any) -> None:
    holders: list[list[int]] = []

    async def first(cpu: Cpu) -> None:
        await cpu.vm_map.lock.slock()
        cpu.prefer(1)
        await cpu.k.point()
        cpu.prefer()
        await cpu.vm_map.lock.unlock()

    async def second(cpu: Cpu) -> None:
        await cpu.vm_map.lock.slock()
        holders.append(list(cpu.vm_map.lock.shared))
        await cpu.vm_map.lock.unlock()

    run = await run_kernel(first, second)
    assert run.outcome == "ok"
    assert holders == [[0, 1]]


async def test_the_only_shared_holder_upgrades_and_bumps_the_timestamp(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        lock = cpu.vm_map.lock
        await lock.slock()
        seen.append(await lock.try_upgrade())
        seen.extend([lock.excl, lock.shared, lock.timestamp])
        await lock.unlock()

    await run_kernel(body)
    assert seen == [True, 0, [], 1]


async def test_an_upgrade_fails_and_keeps_the_shared_hold_when_another_cpu_shares_it(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def first(cpu: Cpu) -> None:
        lock = cpu.vm_map.lock
        await lock.slock()
        cpu.prefer(1)
        await cpu.k.point()  # cpu1 takes it shared too
        cpu.prefer()
        seen.append(await lock.try_upgrade())
        seen.extend([lock.excl, sorted(lock.shared), lock.timestamp])
        await lock.unlock()

    async def second(cpu: Cpu) -> None:
        await cpu.vm_map.lock.slock()
        cpu.prefer(0)
        await cpu.k.point()
        await cpu.vm_map.lock.unlock()

    run = await run_kernel(first, second)
    assert run.outcome == "ok"
    assert seen == [False, -1, [0, 1], 0]


async def test_an_exclusive_waiter_sleeps_until_the_holder_unlocks(run_kernel: Any) -> None:
    async def holder(cpu: Cpu) -> None:
        await cpu.vm_map.lock.xlock()
        cpu.log("locked")
        cpu.prefer(1, 0)
        await cpu.k.point()  # cpu1 runs and blocks on the lock
        await cpu.k.point()  # cpu1 is preferred but asleep: cpu0 goes on
        cpu.log("still holds")
        await cpu.vm_map.lock.unlock()
        cpu.log("unlocked")

    async def waiter(cpu: Cpu) -> None:
        cpu.log("asks")
        await cpu.vm_map.lock.xlock()
        cpu.log(f"locked, timestamp {cpu.vm_map.lock.timestamp}")
        await cpu.vm_map.lock.unlock()

    run = await run_kernel(holder, waiter)
    assert run.outcome == "ok"
    assert run.log == ["cpu0 locked", "cpu1 asks", "cpu0 still holds", "cpu0 unlocked",
                       "cpu1 locked, timestamp 2"]


@pytest.mark.parametrize(("first", "second"), [("xlock", "slock"), ("slock", "xlock")])
async def test_shared_and_exclusive_exclude_each_other(
    run_kernel: Any, first: str, second: str
) -> None:
    async def holder(cpu: Cpu) -> None:
        await getattr(cpu.vm_map.lock, first)()
        cpu.prefer(1, 0)
        await cpu.k.point()
        cpu.log("unlocks")
        await cpu.vm_map.lock.unlock()

    async def waiter(cpu: Cpu) -> None:
        cpu.log("asks")
        await getattr(cpu.vm_map.lock, second)()
        cpu.log("locked")
        await cpu.vm_map.lock.unlock()

    run = await run_kernel(holder, waiter)
    assert run.log == ["cpu1 asks", "cpu0 unlocks", "cpu1 locked"]


async def test_recursing_the_map_lock_breaks_the_locking_contract(run_kernel: Any) -> None:
    async def body(cpu: Cpu) -> None:
        await cpu.vm_map.lock.xlock()
        await cpu.vm_map.lock.xlock()
        cpu.log("not reached")

    run = await run_kernel(body, rules=["lock_discipline"])
    assert run.outcome == "violation"
    assert run.rules == ["lock_discipline"]
    assert run.execution.violations[0].message == "p0: map lock recursed by cpu0"
    assert run.log == []


async def test_releasing_a_map_lock_not_held_breaks_the_locking_contract(run_kernel: Any) -> None:
    async def body(cpu: Cpu) -> None:
        await cpu.vm_map.lock.unlock()

    run = await run_kernel(body, rules=["lock_discipline"])
    assert run.rules == ["lock_discipline"]
    assert run.execution.violations[0].message == (
        "p0: map lock released by cpu0, which does not hold it")


async def test_map_lock_check_rejects_exclusive_and_shared_holds_at_once(
    run_kernel: Any,
) -> None:
    async def body(cpu: Cpu) -> None:
        pass

    run = await run_kernel(body)
    lock = run.k.maps["p0"].lock
    lock._check()
    lock.excl, lock.shared = 0, [1]
    with pytest.raises(AssertionError, match="exclusive and shared at once"):
        lock._check()


# -- object and vnode locks ----------------------------------------------------------------------


def _mutex(k: Kernel, which: str) -> Any:
    f = k.files["f"]
    return f.lock if which == "object" else f.vnode


@pytest.mark.parametrize("which", ["object", "vnode"])
async def test_a_mutex_waiter_sleeps_until_the_owner_unlocks(run_kernel: Any, which: str) -> None:
    async def owner(cpu: Cpu) -> None:
        lock = _mutex(cpu.k, which)
        await lock.lock()
        cpu.prefer(1, 0)
        await cpu.k.point()
        cpu.log(f"owner is cpu{lock.owner}, waiting for {lock.wait_holders()}")
        await lock.unlock()

    async def waiter(cpu: Cpu) -> None:
        lock = _mutex(cpu.k, which)
        cpu.log("asks")
        await lock.lock()
        cpu.log(f"owns it: {lock.owner}")
        await lock.unlock()

    run = await run_kernel(owner, waiter)
    assert run.outcome == "ok"
    assert run.log == ["cpu1 asks", "cpu0 owner is cpu0, waiting for [0]", "cpu1 owns it: 1"]


@pytest.mark.parametrize("which", ["object", "vnode"])
async def test_recursing_a_mutex_breaks_the_locking_contract(run_kernel: Any, which: str) -> None:
    async def body(cpu: Cpu) -> None:
        await _mutex(cpu.k, which).lock()
        await _mutex(cpu.k, which).lock()

    run = await run_kernel(body, rules=["lock_discipline"])
    assert run.rules == ["lock_discipline"]
    assert run.execution.violations[0].message == f"{which} lock of f recursed by cpu0"


async def test_releasing_another_cpus_mutex_breaks_the_locking_contract(run_kernel: Any) -> None:
    async def owner(cpu: Cpu) -> None:
        await cpu.k.files["f"].lock.lock()
        cpu.prefer(1)
        await cpu.k.point()

    async def thief(cpu: Cpu) -> None:
        await cpu.k.files["f"].lock.unlock()

    run = await run_kernel(owner, thief, rules=["lock_discipline"])
    assert run.rules == ["lock_discipline"]
    assert run.execution.violations[0].message == (
        "object lock of f released by cpu1, owner cpu0")


async def test_anonymous_objects_have_no_vnode_lock(run_kernel: Any) -> None:
    async def body(cpu: Cpu) -> None:
        await sys_store(cpu.k, cpu.vm_map, 0x30000)  # the private mapping's shadow appears

    run = await run_kernel(body)
    shadow = run.k.maps["p0"].entry_containing(0x30000).obj
    assert run.k.files["f"].vnode is not None
    assert shadow.vnode is None


# -- writer preference (the modern profile's sx lock, FIDELITY.md D4) ----------------------


def writer_waiting_bodies(reader_holds_another: bool = False) -> tuple[Any, Any, Any]:
    """cpu0 holds p0's map shared; cpu1 then waits for it exclusive; cpu2 then asks
    for it shared (holding p1's map shared first if ``reader_holds_another``)."""

    async def holder(cpu: Cpu) -> None:
        await cpu.vm_map.lock.slock()
        cpu.log("s")
        cpu.prefer(1)  # the writer runs until it sleeps for the lock
        await cpu.k.point()
        cpu.prefer(2)  # then the reader tries
        await cpu.k.point()
        cpu.prefer()
        await cpu.vm_map.lock.unlock()

    async def writer(cpu: Cpu) -> None:
        await cpu.vm_map.lock.xlock()
        cpu.log("x")
        await cpu.vm_map.lock.unlock()

    async def reader(cpu: Cpu) -> None:
        other = cpu.k.maps["p1"].lock
        if reader_holds_another:
            await other.slock()
        await cpu.k.maps["p0"].lock.slock()
        cpu.log("s")
        cpu.prefer()
        await cpu.k.maps["p0"].lock.unlock()
        if reader_holds_another:
            await other.unlock()

    return holder, writer, reader


@pytest.mark.parametrize(("profile", "order"), [
    ("modern", ["cpu0 s", "cpu1 x", "cpu2 s"]),  # the new reader waits behind the writer
    ("manpage", ["cpu0 s", "cpu2 s", "cpu1 x"]),  # reader preference: it joins cpu0
])
async def test_a_new_reader_waits_while_a_writer_waits_under_writer_preference(
    run_kernel: Any, profile: str, order: list[str],
) -> None:
    run = await run_kernel(*writer_waiting_bodies(), profile=profile,
                           processes=("p0", "p0", "p0"))
    assert run.outcome == "ok"
    assert run.log == order


async def test_a_reader_already_holding_a_map_lock_shared_is_not_held_back(
    run_kernel: Any,
) -> None:
    run = await run_kernel(*writer_waiting_bodies(reader_holds_another=True), profile="modern",
                           processes=("p0", "p0", "p0"))
    assert run.outcome == "ok"
    assert run.log == ["cpu0 s", "cpu2 s", "cpu1 x"]  # sx's td_sx_slocks exception


@pytest.mark.parametrize(("profile", "got"), [("modern", False), ("manpage", True)])
async def test_try_slock_fails_while_held_exclusive_or_while_a_writer_waits(
    run_kernel: Any, profile: str, got: bool,
) -> None:
    seen: list[bool] = []

    async def holder(cpu: Cpu) -> None:
        lock = cpu.vm_map.lock
        await lock.xlock()
        cpu.prefer(1)
        await cpu.k.point()
        await lock.unlock()
        await lock.slock()
        cpu.prefer(1)  # the writer sleeps for the lock
        await cpu.k.point()
        cpu.prefer(2)  # then the reader tries
        await cpu.k.point()
        cpu.prefer()
        await lock.unlock()

    async def writer(cpu: Cpu) -> None:
        seen.append(await cpu.vm_map.lock.try_slock())  # held exclusive: fails
        cpu.prefer(0)
        await cpu.k.point()
        await cpu.vm_map.lock.xlock()
        await cpu.vm_map.lock.unlock()

    async def reader(cpu: Cpu) -> None:
        ok = await cpu.vm_map.lock.try_slock()  # held shared, a writer waiting
        seen.append(ok)
        if ok:
            await cpu.vm_map.lock.unlock()

    run = await run_kernel(holder, writer, reader, profile=profile, processes=("p0", "p0", "p0"))
    assert run.outcome == "ok"
    assert seen == [False, got]
