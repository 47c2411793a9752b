"""lock_discipline (rule 2): lock order, exclusive holders alone, entry-list changes under the
exclusive map lock, and the deadlock report.  Hand-driven events on a fake scheduler;
the primitives' contracts are broken by tiny variants on a real Machine."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.check.lock_discipline import LockDiscipline
from emulator.kern.events import (
    Alloc,
    Busy,
    Event,
    Free,
    IoIssue,
    Lock,
    MapAccess,
    Unbusy,
    Unlock,
    Wait,
)
from emulator.kern.kern_return import KernReturn
from emulator.kern.map import VmMap
from emulator.kern.monitor import Violation
from emulator.sched.scheduler import Abort
from emulator.variants import Variant


def setup(rig: Any) -> Any:
    return rig("manpage", cpus=2, installers=(LockDiscipline,))


# -- lock order -------------------------------------------------------------------


def test_object_then_map_by_the_same_cpu_fires_without_ending_the_run(rig: Any) -> None:
    r = setup(rig)
    r.emit(0, Lock("object", "f", "x"))
    r.emit(0, Lock("map", "p0", "x"))  # non-fatal: no Abort
    assert r.rules == ["lock_discipline"]
    v = r.k.violations[0]
    assert v.cpus == [0]
    assert v.fields == {"held": "object lock of f", "wanted": "map p0"}
    assert v.message.startswith("lock order inverted: cpu0 takes the map lock of p0")
    assert "holding the object lock of f" in v.message and "\n" not in v.message
    assert not r.sched.over and r.sched.ended == []


def test_waiting_for_the_map_holding_an_object_lock_fires(rig: Any) -> None:
    r = setup(rig)
    r.emit(0, Lock("object", "f", "x"))
    r.emit(0, Wait("map", "p0"))
    assert r.rules == ["lock_discipline"]
    assert "cpu0 waits for the map lock of p0" in r.k.violations[0].message


def test_map_then_vnode_then_object_then_busy_does_not_fire(rig: Any) -> None:
    r = setup(rig)
    r.emit(0, Lock("map", "p0", "x"))
    r.emit(0, Lock("vnode", "f", "x"))
    r.emit(0, Lock("object", "f", "x"))
    r.emit(0, Busy("f", 0, "x"))
    r.emit(0, Unbusy("f", 0))
    r.emit(0, Unlock("object", "f"))
    r.emit(0, Unlock("vnode", "f"))
    r.emit(0, Unlock("map", "p0"))
    assert r.k.violations == []


def test_the_same_inversion_is_reported_once(rig: Any) -> None:
    r = setup(rig)
    r.emit(0, Lock("object", "f", "x"))
    r.emit(0, Wait("map", "p0"))
    r.emit(0, Lock("map", "p0", "x"))
    assert r.rules == ["lock_discipline"]


def test_after_releasing_the_object_lock_taking_the_map_is_fine(rig: Any) -> None:
    r = setup(rig)
    r.emit(0, Lock("object", "f", "x"))
    r.emit(0, Unlock("object", "f"))
    r.emit(0, Lock("map", "p0", "x"))
    assert r.k.violations == []


def test_another_cpus_object_lock_does_not_count(rig: Any) -> None:
    r = setup(rig)
    r.emit(1, Lock("object", "f", "x"))
    r.emit(0, Lock("map", "p0", "x"))
    assert r.k.violations == []


def test_waiting_for_a_busy_page_holding_an_object_lock_fires(rig: Any) -> None:
    r = setup(rig)
    r.emit(0, Lock("object", "f", "x"))
    r.emit(0, Wait("busy", "f:3"))
    assert r.rules == ["lock_discipline"]
    v = r.k.violations[0]
    assert v.fields["wanted"] == "busy f:3"
    assert "cpu0 waits for page f:3" in v.message
    assert "no one may wait for a busy page holding an object lock" in v.message


def test_busying_a_page_holding_an_object_lock_is_how_the_kernel_works(rig: Any) -> None:
    r = setup(rig)
    r.emit(0, Lock("object", "f", "x"))
    r.emit(0, Busy("f", 3, "x"))
    assert r.k.violations == []


def test_waiting_for_a_busy_page_without_the_object_lock_is_fine(rig: Any) -> None:
    r = setup(rig)
    r.emit(0, Lock("object", "f", "x"))
    r.emit(0, Unlock("object", "f"))
    r.emit(0, Wait("busy", "f:3"))
    assert r.k.violations == []


def test_sleeping_for_the_vnode_lock_holding_a_busy_page_fires(rig: Any) -> None:
    r = setup(rig)
    r.emit(1, Busy("f", 2, "x"))
    r.emit(1, Wait("vnode", "f"))
    assert r.rules == ["lock_discipline"]
    v = r.k.violations[0]
    assert v.cpus == [1] and v.fields["held"] == "busy page f:2"
    assert "no one may sleep for a vnode lock holding a busy page" in v.message


def test_taking_the_object_lock_holding_a_busy_page_is_fine(rig: Any) -> None:
    r = setup(rig)
    r.emit(1, Busy("f", 2, "x"))
    r.emit(1, Lock("object", "f", "x"))
    assert r.k.violations == []


def test_taking_a_free_vnode_lock_holding_a_busy_page_is_fine(rig: Any) -> None:
    r = setup(rig)
    r.emit(1, Busy("f", 2, "x"))
    r.emit(1, Lock("vnode", "f", "x"))  # taken at once, not slept for
    assert r.k.violations == []


@pytest.mark.parametrize("release", [Unbusy("f", 2), IoIssue("f", 2, 7, 1), Free("f", 2, 0)])
def test_an_issued_unbusied_or_freed_page_is_no_longer_held(rig: Any, release: Event) -> None:
    r = setup(rig)
    r.emit(1, Busy("f", 2, "x"))
    r.emit(1, release)
    r.emit(1, Wait("vnode", "f"))
    assert r.k.violations == []


def test_a_page_allocated_busy_counts_as_held(rig: Any) -> None:
    r = setup(rig)
    r.emit(1, Alloc("f", 1))
    r.emit(1, Wait("map", "p0"))
    assert r.rules == ["lock_discipline"]
    assert "holding the busy page f:1" in r.k.violations[0].message


# -- an exclusive holder is alone ----------------------------------------------------


def test_shared_while_another_cpu_holds_exclusive_fires(rig: Any) -> None:
    r = setup(rig)
    r.emit(0, Lock("map", "p0", "x"))
    with pytest.raises(Abort):
        r.emit(1, Lock("map", "p0", "s"))
    assert r.rules == ["lock_discipline"]
    v = r.k.violations[0]
    assert v.cpus == [1, 0]
    assert v.message == "cpu1 holds the map lock of p0 shared while cpu0 holds it exclusive"


def test_exclusive_while_another_cpu_holds_shared_fires(rig: Any) -> None:
    r = setup(rig)
    r.emit(0, Lock("map", "p0", "s"))
    with pytest.raises(Abort):
        r.emit(1, Lock("map", "p0", "x"))
    assert r.rules == ["lock_discipline"]
    assert "cpu1 holds the map lock of p0 exclusive together with another holder" in (
        r.k.violations[0].message)


def test_shared_holders_together_and_handing_over_do_not_fire(rig: Any) -> None:
    r = setup(rig)
    r.emit(0, Lock("map", "p0", "s"))
    r.emit(1, Lock("map", "p0", "s"))
    r.emit(0, Unlock("map", "p0"))
    r.emit(1, Unlock("map", "p0"))
    r.emit(1, Lock("map", "p0", "x"))
    r.emit(1, Unlock("map", "p0"))
    r.emit(0, Lock("map", "p0", "x"))
    r.emit(0, Lock("map", "p1", "x"))  # another map's lock is independent
    assert r.k.violations == []


# -- entry-list changes ------------------------------------------------------------------


@pytest.mark.parametrize("what", ["insert", "remove", "clip"])
def test_changing_the_entry_list_without_the_exclusive_lock_fires(rig: Any, what: str) -> None:
    r = setup(rig)
    m = VmMap(r.k, "p0")
    with pytest.raises(Abort):
        r.emit(0, MapAccess(m, what))
    v = r.k.violations[0]
    assert v.rule == "lock_discipline" and v.cpus == [0]
    assert v.message == (f"cpu0 changed the entry list of map p0 ({what}) without its "
                         "exclusive lock (lock not held)")


@pytest.mark.parametrize(("excl", "shared", "state"), [
    (1, [], "exclusive by cpu1"),
    (-1, [0], "shared"),
])
def test_changing_the_entry_list_under_the_wrong_hold_fires(
    rig: Any, excl: int, shared: list[int], state: str
) -> None:
    r = setup(rig)
    m = VmMap(r.k, "p0")
    m.lock.excl, m.lock.shared = excl, shared
    with pytest.raises(Abort):
        r.emit(0, MapAccess(m, "insert"))
    assert r.k.violations[0].message.endswith(f"(lock {state})")


def test_changes_under_the_exclusive_lock_and_unlocked_lookups_do_not_fire(rig: Any) -> None:
    r = setup(rig)
    m = VmMap(r.k, "p0")
    r.emit(0, MapAccess(m, "lookup"))
    m.lock.excl = 0
    for what in ("insert", "remove", "clip"):
        r.emit(0, MapAccess(m, what))
    assert r.k.violations == []


# -- the deadlock report -------------------------------------------------------------------


def test_a_deadlock_report_names_what_each_cpu_holds(rig: Any) -> None:
    r = setup(rig)
    r.emit(0, Lock("map", "p0", "x"))
    r.emit(1, Lock("object", "f", "x"))
    r.emit(1, Wait("map", "p0"))  # the inversion, recorded on the way
    r.emit(0, Wait("object", "f"))
    v = Violation("deadlock", "wait-for cycle: cpu0 waits for object lock of f; "
                  "cpu1 waits for map lock of p0", r.sched.step, [0, 1])
    r.k.violations.append(v)
    r.be(None)
    r.explain(v)
    assert v.message == ("wait-for cycle: cpu0 waits for object lock of f; cpu1 waits for map "
                         "lock of p0; cpu0 holds map lock of p0; cpu1 holds object lock of f")
    assert r.rules == ["lock_discipline", "deadlock"]


def test_a_deadlock_report_says_nothing_when_nothing_is_held(rig: Any) -> None:
    r = setup(rig)
    v = Violation("deadlock", "no agent can run: cpu0 waits for write of page f:0",
                  0, [0])
    r.explain(v)
    assert v.message.endswith("; cpu0 holds nothing")


# -- the primitives' contracts, reported by the kernel ---------------------------------------


def releases_an_unheld_map_lock() -> Variant:
    async def clean(vm_map: Any, start: int, end: int, syncio: bool, inval: bool) -> Any:
        await vm_map.lock.unlock()
        return KernReturn.SUCCESS

    return Variant("releases_an_unheld_map_lock", clean)


async def test_a_broken_lock_contract_is_a_lock_discipline_violation(
    run_spec: Any, spec_of: Any
) -> None:
    spec = spec_of([["msync", "0x10000", 0x1000, "sync"]])
    ex, _ = await run_spec(spec, "manpage", checkers=[LockDiscipline],
                           variant=releases_an_unheld_map_lock())
    assert ex.outcome == "violation"
    assert [(v.rule, v.message, v.cpus) for v in ex.violations] == [
        ("lock_discipline", "p0: map lock released by cpu0, which does not hold it", [0])]


async def test_without_the_checker_the_kernel_reports_a_broken_contract_to_no_one(
    run_spec: Any, spec_of: Any
) -> None:
    spec = spec_of([["msync", "0x10000", 0x1000, "sync"]])
    ex, _ = await run_spec(spec, "manpage", variant=releases_an_unheld_map_lock())
    assert ex.outcome == "ok" and ex.violations == []
