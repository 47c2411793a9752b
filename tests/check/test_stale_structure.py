"""stale_structure (rule 3): nothing touches an entry, object or page after it is freed.

Unit tests drive the kernel's touch hooks on a fake scheduler; the run tests use tiny
variants on a real Machine: one unlinks the entry it holds (under the lock) and reads it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from emulator.check.stale_structure import StaleStructure
from emulator.kern.clean import reference_clean
from emulator.kern.kern_return import KernReturn
from emulator.kern.map import VmMap, VmMapEntry
from emulator.kern.profile import PROFILES
from emulator.sched.scheduler import Abort
from emulator.sched.strategies import RandomStrategy
from emulator.variants import Variant

BASE = 0x10000


def freed_entry(r: Any) -> VmMapEntry:
    entry = VmMapEntry(BASE, BASE + 0x2000, None, 0, 3, "anon")
    r.sched.step = 5
    r.k.free_entry(entry)
    return entry


# -- unit: the hooks ------------------------------------------------------------------


def test_reading_a_freed_entry_fires(rig: Any) -> None:
    r = rig(installers=(StaleStructure,))
    entry = freed_entry(r)
    r.be(1)
    r.sched.step = 9
    with pytest.raises(Abort):
        _ = entry.end
    v = r.k.violations[0]
    assert v.rule == "stale_structure" and v.cpus == [1]
    assert v.message == ("cpu1 touched map entry [0x10000,0x12000) after it was unlinked and "
                         "freed at step 5")
    assert v.fields == {"entry": "[0x10000,0x12000)", "freed_at": 5}


def test_freed_entries_read_by_the_harness_or_a_checker_do_not_fire(rig: Any) -> None:
    r = rig(installers=(StaleStructure,))
    entry = freed_entry(r)
    r.be(None)  # no agent running: the harness
    assert entry.end == BASE + 0x2000
    r.be(0)
    r.k.in_checker = True
    assert entry.start == BASE
    assert entry.describe() == "[0x10000,0x12000)"
    r.k.in_checker = False
    assert entry.freed and entry.freed_at == 5  # the lifetime fields stay readable
    assert r.k.violations == []


def test_without_the_checker_a_freed_entry_is_not_reported(rig: Any) -> None:
    r = rig()
    entry = freed_entry(r)
    r.be(0)
    assert entry.end == BASE + 0x2000
    assert r.k.violations == []


def test_a_live_entry_never_fires(rig: Any) -> None:
    r = rig(installers=(StaleStructure,))
    entry = VmMapEntry(BASE, BASE + 0x1000, None, 0, 3, "anon")
    r.be(0)
    r.k.touch_entry(entry)
    assert entry.end == BASE + 0x1000
    assert r.k.violations == []


@pytest.mark.parametrize(("touch", "what"), [("touch_page", "page f:3"),
                                               ("touch_object", "object anon4")])
def test_touching_a_freed_page_or_object_fires(rig: Any, touch: str, what: str) -> None:
    r = rig(installers=(StaleStructure,))
    name = what.split()[1]
    r.be(0)
    getattr(r.k, touch)(SimpleNamespace(freed=False, name=name))
    assert r.k.violations == []
    with pytest.raises(Abort):
        getattr(r.k, touch)(SimpleNamespace(freed=True, name=name))
    v = r.k.violations[0]
    assert v.rule == "stale_structure"
    assert v.message == f"cpu0 touched {what} after it was freed"


def test_succ_of_a_freed_entry_fires(rig: Any) -> None:
    r = rig(installers=(StaleStructure,))
    entry = freed_entry(r)
    r.be(0)
    with pytest.raises(Abort):
        VmMap(r.k, "p0").succ(entry)
    assert r.rules == ["stale_structure"]


# -- runs: a variant that reads an entry it freed ----------------------------------------


def reads_after_unlink(read_first: bool) -> Variant:
    async def clean(vm_map: Any, start: int, end: int, syncio: bool, inval: bool) -> Any:
        await vm_map.lock.xlock()
        entry = await vm_map.lookup_entry(start)
        if read_first:
            _ = entry.end
        vm_map.unlink_entry(entry)
        if not read_first:
            _ = entry.end  # the entry is freed: a stale read
        await vm_map.lock.unlock()
        return KernReturn.SUCCESS

    return Variant("reads_after_unlink" if not read_first else "reads_before_unlink", clean)


async def test_a_clean_reading_an_entry_it_unlinked_fires(run_spec: Any, spec_of: Any) -> None:
    spec = spec_of([["msync", hex(BASE), 0x1000, "sync"]])
    ex, _ = await run_spec(spec, "manpage", checkers=[StaleStructure],
                           variant=reads_after_unlink(read_first=False))
    assert ex.outcome == "violation"
    assert [v.rule for v in ex.violations] == ["stale_structure"]
    v = ex.violations[0]
    assert v.cpus == [0]
    assert v.message.startswith("cpu0 touched map entry [0x10000,0x12000) after it was unlinked")


async def test_reading_the_entry_before_unlinking_it_does_not_fire(
    run_spec: Any, spec_of: Any
) -> None:
    spec = spec_of([["msync", hex(BASE), 0x1000, "sync"]])
    ex, _ = await run_spec(spec, "manpage", checkers=[StaleStructure],
                           variant=reads_after_unlink(read_first=True))
    assert ex.outcome == "ok", ex.violations


@pytest.mark.parametrize("profile", PROFILES)
async def test_the_reference_racing_munmap_never_fires(
    run_spec: Any, spec_of: Any, profile: str
) -> None:
    spec = spec_of([], pages=4, cpus=[
        {"process": "p0", "program": [["store", hex(BASE)], ["store", hex(BASE + 0x3000)],
                                      ["msync", hex(BASE), 0x4000, "sync,invalidate"]]},
        {"process": "p0", "program": [["munmap", hex(BASE + 0x1000), 0x2000],
                                      ["munmap", hex(BASE), 0x4000]]},
    ])
    ref = Variant("reference", reference_clean)
    for seed in range(40):
        ex, _ = await run_spec(spec, profile, seed=seed, checkers=[StaleStructure],
                               strategy=RandomStrategy(), variant=ref)
        assert ex.outcome == "ok", (seed, ex.violations)


def test_a_freed_entry_reports_to_the_kernel_that_freed_it(rig: Any) -> None:
    r = rig(installers=(StaleStructure,))
    other = rig(installers=(StaleStructure,))  # a later machine, running cpu0
    entry = freed_entry(r)
    other.be(0)
    r.be(None)
    assert entry.end == BASE + 0x2000  # its own machine runs no agent: not a touch
    r.be(1)
    with pytest.raises(Abort):
        _ = entry.end
    assert r.rules == ["stale_structure"] and other.rules == []
