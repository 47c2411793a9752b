"""single_entry (rule 1): while a clean's window is open on a map, no other CPU takes
that map's lock, and no second clean enters it.  Hand-driven events on a fake scheduler."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.check.single_entry import SingleEntry
from emulator.kern.events import CleanCall, CleanReturn, Lock, MapAccess, Unlock
from emulator.kern.kern_return import KernReturn
from emulator.kern.map import VmMap
from emulator.sched.scheduler import Abort

START, END = 0x10000, 0x14000


def setup(rig: Any, profile: str = "manpage") -> tuple[Any, VmMap, VmMap]:
    r = rig(profile, cpus=3, installers=(SingleEntry,))
    return r, VmMap(r.k, "p0"), VmMap(r.k, "p1")


def open_clean(r: Any, cpu: int, m: VmMap) -> None:
    """cpu calls a clean of m and takes m's lock exclusive: its window opens."""
    r.emit(cpu, CleanCall(m.name, START, END, 1, 0, m))
    r.emit(cpu, Lock("map", m.name, "x"))


def return_clean(r: Any, cpu: int, m: VmMap) -> None:
    r.emit(cpu, Unlock("map", m.name))
    r.emit(cpu, CleanReturn(m.name, KernReturn.SUCCESS.label))


@pytest.mark.parametrize("mode", ["x", "s"])
@pytest.mark.parametrize("profile", ["manpage", "freebsd5"])
def test_another_cpu_taking_the_map_lock_inside_the_window_fires(
    rig: Any, profile: str, mode: str
) -> None:
    r, p0, _ = setup(rig, profile)
    open_clean(r, 0, p0)
    r.k.shared.setdefault("current_op", {})[1] = "munmap"
    with pytest.raises(Abort):
        r.emit(1, Lock("map", "p0", mode))
    assert r.rules == ["single_entry"]
    v = r.k.violations[0]
    assert v.cpus == [0, 1]
    assert v.fields["map"] == "p0"
    assert "cpu1 (munmap)" in v.message and "cpu0's clean" in v.message
    assert ("exclusive" if mode == "x" else "shared") in v.message
    assert "\n" not in v.message
    assert r.sched.over and r.sched.ended[0][0] == "violation"


def test_the_same_map_lock_on_another_map_does_not_fire(rig: Any) -> None:
    r, p0, _ = setup(rig)
    open_clean(r, 0, p0)
    r.emit(1, Lock("map", "p1", "x"))
    r.emit(1, Unlock("map", "p1"))
    assert r.k.violations == []


def test_after_the_clean_returns_the_map_is_free_again(rig: Any) -> None:
    r, p0, _ = setup(rig)
    open_clean(r, 0, p0)
    return_clean(r, 0, p0)
    r.emit(1, Lock("map", "p0", "x"))
    assert r.k.violations == []


def test_before_the_window_opens_nothing_fires(rig: Any) -> None:
    # cpu0 called the clean but has not reached the map yet: cpu1 may still hold it.
    r, p0, _ = setup(rig)
    r.emit(0, CleanCall(p0.name, START, END, 1, 0, p0))
    r.emit(1, Lock("map", "p0", "x"))
    r.emit(1, Unlock("map", "p0"))
    assert r.k.violations == []


def test_object_and_vnode_locks_are_not_map_entries(rig: Any) -> None:
    r, p0, _ = setup(rig)
    open_clean(r, 0, p0)
    r.emit(1, Lock("vnode", "p0", "x"))
    r.emit(1, Lock("object", "p0", "x"))
    assert r.k.violations == []


def test_the_cleaning_cpu_relocking_its_own_map_does_not_fire(rig: Any) -> None:
    r, p0, _ = setup(rig)
    open_clean(r, 0, p0)
    r.emit(0, Unlock("map", "p0"))
    r.emit(0, Lock("map", "p0", "x"))
    assert r.k.violations == []


def test_a_second_clean_entering_the_map_through_a_lookup_fires(rig: Any) -> None:
    # cpu1's clean reaches p0 without taking its lock (a lookup): the window check,
    # not the lock check, must see it.
    r, p0, _ = setup(rig)
    open_clean(r, 0, p0)
    r.emit(1, CleanCall(p0.name, START, END, 0, 0, p0))
    with pytest.raises(Abort):
        r.emit(1, MapAccess(p0, "lookup"))
    assert r.rules == ["single_entry"]
    v = r.k.violations[0]
    assert v.cpus == [0, 1]
    assert v.message.startswith("cpu1's clean entered map p0 while cpu0's clean")


def test_cleans_of_different_maps_do_not_fire(rig: Any) -> None:
    r, p0, p1 = setup(rig)
    open_clean(r, 0, p0)
    open_clean(r, 1, p1)
    r.emit(2, MapAccess(p1, "lookup"))
    return_clean(r, 1, p1)
    return_clean(r, 0, p0)
    assert r.k.violations == []


def test_modern_shares_the_map_lock_by_design(rig: Any) -> None:
    r, p0, _ = setup(rig, "modern")
    open_clean(r, 0, p0)
    r.emit(1, Lock("map", "p0", "s"))
    r.emit(1, CleanCall(p0.name, START, END, 1, 0, p0))
    r.emit(1, MapAccess(p0, "lookup"))
    assert r.k.violations == []


async def test_the_page_daemon_and_the_syncer_are_not_map_cleans() -> None:
    """They lock vnodes and objects and busy pages inside a clean's window, never the map."""
    from test_lost_store import daemon_runs

    violations, inside = await daemon_runs("manpage", 80, SingleEntry)
    assert violations == []
    assert inside > 5
