"""The fault path, through the loads and stores that take it (sys_load, sys_store)."""

from __future__ import annotations

from typing import Any

from emulator.kern.fault import Fault
from emulator.kern.object import OBJT_ANON
from emulator.kern.syscalls import SIGSEGV, sys_load, sys_store

Cpu = Any  # tests/kern/conftest.py's Cpu

BASE, ANON = 0x10000, 0x20000  # f shared writable, anonymous memory (tests/kern/conftest.py)
READ_ONLY, SUBMAP = 0x40000, 0x50000
VPN = BASE >> 12

# f mapped read-only, and g through a sub-map, beside the default layout's f.
SPEC: dict[str, Any] = {
    "files": {"f": {"pages": 4}, "g": {"pages": 2}},
    "processes": {"p0": {"mappings": [
        {"addr": hex(BASE), "pages": 4, "file": "f"},
        {"addr": hex(ANON), "pages": 2, "anon": True},
        {"addr": hex(READ_ONLY), "pages": 2, "file": "f", "prot": "r"},
        {"addr": hex(SUBMAP), "pages": 2, "submap": True, "file": "g"},
    ]}},
}


def mapping(cpu: Cpu, va: int) -> tuple[str, bool, bool] | None:
    pte = cpu.vm_map.pmap.lookup(va >> 12)
    return None if pte is None else (pte.page.name, pte.writable, pte.modified)


async def test_a_store_to_a_read_only_mapping_is_a_segfault(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        seen.append(await sys_store(cpu.k, cpu.vm_map, READ_ONLY))
        seen.append(mapping(cpu, READ_ONLY))

    await run_kernel(body, spec=SPEC)
    assert seen == [SIGSEGV, None]


async def test_an_access_outside_every_entry_is_a_segfault(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        seen.append(await sys_load(cpu.k, cpu.vm_map, 0x90000))
        seen.append(await sys_store(cpu.k, cpu.vm_map, 0x90000))

    await run_kernel(body, spec=SPEC)
    assert seen == [SIGSEGV, SIGSEGV]


async def test_a_read_fault_maps_a_shared_file_page_with_the_entrys_protection(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        f = cpu.k.files["f"]
        await sys_load(cpu.k, cpu.vm_map, BASE)
        await sys_load(cpu.k, cpu.vm_map, READ_ONLY)
        seen.extend([mapping(cpu, BASE), mapping(cpu, READ_ONLY)])
        # Writable now without a write fault: the object might be dirtied by a plain store.
        seen.extend([f.might_be_dirty(), f.lookup_page(0).dirty])

    await run_kernel(body, spec=SPEC)
    assert seen == [("f:0", True, False), ("f:0", False, False), True, False]


async def test_a_write_fault_dirties_the_page_and_maps_it_writable(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        f = cpu.k.files["f"]
        generation = f.generation
        await sys_store(cpu.k, cpu.vm_map, BASE + 0x1000)
        page = f.lookup_page(1)
        seen.extend([mapping(cpu, BASE + 0x1000), page.dirty, page.contents,
                     f.generation - generation, page.is_busy()])

    await run_kernel(body, spec=SPEC)
    assert seen == [("f:1", True, True), True, 1, 1, False]


async def test_a_store_through_a_writable_mapping_takes_no_fault(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        f = cpu.k.files["f"]
        await sys_store(cpu.k, cpu.vm_map, BASE)
        generation = f.generation
        await sys_store(cpu.k, cpu.vm_map, BASE)
        seen.extend([f.generation - generation, f.lookup_page(0).contents,
                     await sys_load(cpu.k, cpu.vm_map, BASE)])

    await run_kernel(body, spec=SPEC)
    assert seen == [0, 2, 2]


async def test_a_fault_on_a_busy_page_sleeps_until_it_is_unbusied(run_kernel: Any) -> None:
    pages: list[Any] = []

    async def owner(cpu: Cpu) -> None:
        page = await cpu.resident("f", 0)
        pages.append(page)
        await page.xbusy()
        cpu.prefer(1, 0)
        await cpu.k.point()  # cpu1 faults on the busy page and sleeps
        cpu.log(f"unbusies, nothing mapped: {mapping(cpu, BASE)}")
        await page.xunbusy()

    async def storer(cpu: Cpu) -> None:
        cpu.log("stores")
        await sys_store(cpu.k, cpu.vm_map, BASE)
        cpu.log(f"stored: {mapping(cpu, BASE)}")

    run = await run_kernel(owner, storer, spec=SPEC)
    assert run.outcome == "ok"
    assert run.log == ["cpu1 stores", "cpu0 unbusies, nothing mapped: None",
                       "cpu1 stored: ('f:0', True, True)"]


async def test_anonymous_memory_gets_its_object_at_the_first_fault(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        entry = cpu.vm_map.entry_containing(ANON)
        seen.append(entry.obj)
        seen.append(await sys_load(cpu.k, cpu.vm_map, ANON))  # zero-filled
        seen.extend([entry.obj.kind, entry.obj.lookup_page(0).contents])

    await run_kernel(body, spec=SPEC)
    assert seen == [None, 0, OBJT_ANON, 0]


async def test_a_fault_through_a_sub_map_reaches_the_inner_entrys_object(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        await sys_store(cpu.k, cpu.vm_map, SUBMAP + 0x1000)
        g = cpu.k.files["g"]
        seen.extend([mapping(cpu, SUBMAP + 0x1000), g.lookup_page(1).dirty])

    await run_kernel(body, spec=SPEC)
    assert seen == [("g:1", True, True), True]


PRIVATE = 0x30000  # g, private, in the default layout (tests/kern/conftest.py)


async def test_a_first_private_write_shadows_the_entry_under_the_exclusive_map_lock(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        before = cpu.vm_map.lock.timestamp
        seen.append(await sys_store(cpu.k, cpu.vm_map, PRIVATE))
        entry = cpu.vm_map.entry_containing(PRIVATE)
        seen.extend([entry.needs_copy, entry.obj.kind, cpu.vm_map.lock.timestamp > before,
                     mapping(cpu, PRIVATE)[1:]])
        seen.append(await sys_store(cpu.k, cpu.vm_map, PRIVATE + 0x1000))  # no second shadow
        seen.append(entry.obj.backing is cpu.k.files["g"])

    run = await run_kernel(body, rules=["lock_discipline"])
    assert run.outcome == "ok", run.execution.violations
    assert seen == [0, False, OBJT_ANON, True, (True, True), 0, True]


# -- the page-in with the map unlocked, and its re-validation (FIDELITY.md D3) ----------------


def on_pagein(cpu: Cpu, fn: Any) -> None:
    """Call ``fn()`` at every page-in (as part of the paging-in CPU's step)."""
    from emulator.kern.events import Pagein

    cpu.k.observe(Pagein, lambda step, aid, ev: fn())


def map_locks_by(cpu: Cpu, aid: int, log: list[str]) -> None:
    """Log every map-lock acquisition (``s`` or ``x``) by agent ``aid``."""
    from emulator.kern.events import Lock

    cpu.k.observe(Lock, lambda step, a, ev: log.append(ev.mode)
                  if a == aid and ev.res == "map" else None)


async def test_modern_pages_in_with_the_map_unlocked_manpage_with_it_locked_shared(
    run_kernel: Any,
) -> None:
    held: dict[str, list[int]] = {}

    for profile in ("modern", "manpage", "freebsd5"):
        async def body(cpu: Cpu, profile: str = profile) -> None:
            seen = held.setdefault(profile, [])
            on_pagein(cpu, lambda: seen.append(len(cpu.vm_map.lock.shared)))
            assert await sys_load(cpu.k, cpu.vm_map, BASE) == 0

        run = await run_kernel(body, spec=SPEC, profile=profile)
        assert run.outcome == "ok"
    assert held == {"modern": [0], "manpage": [1], "freebsd5": [1]}


async def test_a_map_change_during_the_page_in_restarts_the_fault(run_kernel: Any) -> None:
    locks: list[str] = []

    async def faulting(cpu: Cpu) -> None:
        map_locks_by(cpu, 0, locks)
        on_pagein(cpu, lambda: cpu.prefer(1))  # cpu1 changes the map meanwhile
        cpu.log(f"store {await sys_store(cpu.k, cpu.vm_map, BASE)}")
        cpu.log(f"mapped {mapping(cpu, BASE)}")

    async def changer(cpu: Cpu) -> None:
        await cpu.vm_map.lock.xlock()  # timestamp++
        await cpu.vm_map.lock.unlock()
        cpu.prefer()

    run = await run_kernel(faulting, changer, spec=SPEC, profile="modern")
    assert run.outcome == "ok"
    # slock, page-in, try_slock (timestamp moved: release, restart), slock again.
    assert locks == ["s", "s", "s"]
    assert run.log == ["cpu0 store 0", "cpu0 mapped ('f:0', True, True)"]


async def test_a_failed_trylock_after_the_page_in_releases_the_page_and_restarts(
    run_kernel: Any,
) -> None:
    busy: list[Any] = []

    async def faulting(cpu: Cpu) -> None:
        on_pagein(cpu, lambda: cpu.prefer(1))
        cpu.log(f"load {await sys_load(cpu.k, cpu.vm_map, BASE)}")

    async def holder(cpu: Cpu) -> None:
        await cpu.vm_map.lock.xlock()
        cpu.prefer(0)  # cpu0's trylock fails: it must unbusy the page, then wait
        await cpu.k.point()
        await cpu.k.point()
        page = cpu.k.files["f"].pages[0]
        busy.append(page.busy)
        cpu.prefer()
        await cpu.vm_map.lock.unlock()

    run = await run_kernel(faulting, holder, spec=SPEC, profile="modern")
    assert run.outcome == "ok"
    assert busy == [0]  # released while cpu0 sleeps for the map lock
    assert run.log == ["cpu0 load 0"]


# -- a read fault on a shared-busy page (FIDELITY.md D13) -------------------------------------


async def read_during_write(run_kernel: Any, va: int, profile: str) -> list[Any]:
    """cpu0 starts a write of f:0; cpu1 reads it at ``va`` before the disk completes it.
    Return whether the write had completed when cpu1's load returned, and its mapping."""
    seen: list[Any] = []
    io: list[Any] = []

    async def writer(cpu: Cpu) -> None:
        k = cpu.k
        page = await cpu.resident("f", 0)
        await page.xbusy()
        await k.kpoint()
        io.append(k.disk.issue(page, False))
        cpu.prefer(1)

    async def reader(cpu: Cpu) -> None:
        await sys_load(cpu.k, cpu.vm_map, va)
        seen.append(io[0].done)
        seen.append(mapping(cpu, va))

    await run_kernel(writer, reader, spec=SPEC, profile=profile, order=(0, 1))
    return seen


async def test_modern_read_fault_waits_for_a_busy_page_of_a_writable_entry(
    run_kernel: Any,
) -> None:
    assert await read_during_write(run_kernel, BASE, "modern") == [True, ("f:0", True, False)]


async def test_modern_read_fault_maps_a_busy_page_of_a_read_only_entry(run_kernel: Any) -> None:
    assert await read_during_write(run_kernel, READ_ONLY, "modern") == [
        False, ("f:0", False, False)]


class _OwnTail(Fault):
    """Overrides the fault's tail steps (calling the reference's): the fault then
    calls them instead of running its inlined copy of them."""

    async def enter(self, vm_map: Any, vpn: int, page: Any, write: bool) -> None:
        await super().enter(vm_map, vpn, page, write)

    async def unbusy(self, page: Any) -> None:
        await super().unbusy(page)

    async def unlock_maps(self, locked: list[Any]) -> None:
        await super().unlock_maps(locked)


async def test_the_inlined_fault_tail_runs_the_same_steps_as_the_overridable_one() -> None:
    import dataclasses

    from emulator.config import RunConfig
    from emulator.variants import load_variant

    reference = load_variant("reference")
    own = dataclasses.replace(reference, fault=_OwnTail)
    for workload in ("writers_vs_msync", "submap_msync", "private_shadow"):
        config = RunConfig(workload, strategy="random", driver="direct")
        plain, overridden = config.machine(reference), config.machine(own)
        plain.record = overridden.record = True
        for seed in range(15):
            a = await plain.execute(seed)
            b = await overridden.execute(seed)
            assert plain.kernel is not None and overridden.kernel is not None
            assert plain.kernel.fault_impl.__self__.plain_tail  # type: ignore[union-attr]
            assert not overridden.kernel.fault_impl.__self__.plain_tail  # type: ignore[union-attr]
            assert (a.outcome, a.steps, a.events, a.decisions) == \
                (b.outcome, b.steps, b.events, b.decisions), (workload, seed)
