"""invalidate (rule 5): a successful invalidating clean leaves no page-table entry of its map
in range (modern: except those another CPU entered meanwhile), and a busy page is never freed.

Small real runs with hand-written variants, plus the mapping rule driven by hand.
"""

from __future__ import annotations

from typing import Any

import pytest

from emulator.check.invalidate import Invalidate
from emulator.kern.clean import reference_clean
from emulator.kern.events import CleanCall, CleanReturn, PteEnter
from emulator.kern.kern_return import KernReturn
from emulator.kern.map import VmMap
from emulator.kern.profile import PROFILES
from emulator.sched.scheduler import Abort
from emulator.sched.strategies import RandomStrategy
from emulator.variants import Variant

BASE = 0x10000
CHECK = [Invalidate]
REF = Variant("reference", reference_clean)


def program(flags: str = "sync,invalidate", length: int = 0x2000) -> list[list[Any]]:
    return [["store", hex(BASE)], ["load", hex(BASE + 0x1000)],
            ["msync", hex(BASE), length, flags]]


async def keep_mappings(vm_map: Any, start: int, end: int, syncio: bool, inval: bool) -> Any:
    """Flush like the reference, but never remove a mapping or free a page."""
    return await reference_clean(vm_map, start, end, syncio, False)


async def refuse(vm_map: Any, start: int, end: int, syncio: bool, inval: bool) -> Any:
    await vm_map.lock.xlock()
    await vm_map.lookup_entry(start)
    await vm_map.lock.unlock()
    return KernReturn.INVALID_ARGUMENT


# -- mappings left in range ------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
async def test_success_with_mappings_left_in_range_fires(
    run_spec: Any, spec_of: Any, profile: str
) -> None:
    ex, _ = await run_spec(spec_of(program()), profile, checkers=CHECK,
                           variant=Variant("keep_mappings", keep_mappings))
    assert [v.rule for v in ex.violations] == ["invalidate"]
    v = ex.violations[0]
    assert v.cpus == [0] and v.fields == {"map": "p0"}
    assert v.message == ("cpu0's invalidating clean of [0x10000,0x12000) returned success with "
                         "2 mapping(s) of p0 still in range, first at 0x10000")


@pytest.mark.parametrize("profile", PROFILES)
async def test_the_reference_invalidate_does_not_fire(
    run_spec: Any, spec_of: Any, profile: str
) -> None:
    ex, k = await run_spec(spec_of(program()), profile, checkers=CHECK, variant=REF)
    assert ex.outcome == "ok", ex.violations
    assert k.maps["p0"].pmap.ptes == {}


async def test_mappings_outside_the_range_may_stay(run_spec: Any, spec_of: Any) -> None:
    ex, k = await run_spec(spec_of(program(length=0x1000)), "manpage", checkers=CHECK,
                           variant=REF)
    assert ex.outcome == "ok", ex.violations
    assert list(k.maps["p0"].pmap.ptes) == [(BASE + 0x1000) >> 12]


async def test_a_non_invalidating_clean_may_keep_its_mappings(
    run_spec: Any, spec_of: Any
) -> None:
    ex, _ = await run_spec(spec_of(program("sync")), "manpage", checkers=CHECK,
                           variant=Variant("keep_mappings", keep_mappings))
    assert ex.outcome == "ok", ex.violations


async def test_a_failing_invalidate_is_not_checked_for_mappings(
    run_spec: Any, spec_of: Any
) -> None:
    ex, _ = await run_spec(spec_of(program()), "manpage", checkers=CHECK,
                           variant=Variant("refuse", refuse))
    assert ex.outcome == "ok", ex.violations


@pytest.mark.parametrize("profile", PROFILES)
async def test_the_reference_racing_faults_never_fires(
    run_spec: Any, spec_of: Any, profile: str
) -> None:
    # In modern a fault may map a page again while the clean is unlocked: allowed.
    spec = spec_of([], cpus=[
        {"process": "p0", "program": program()},
        {"process": "p0", "program": [["load", hex(BASE)], ["store", hex(BASE + 0x1000)],
                                      ["load", hex(BASE + 0x1000)]]},
    ])
    for seed in range(30):
        ex, _ = await run_spec(spec, profile, seed=seed, checkers=CHECK,
                               strategy=RandomStrategy(), variant=REF)
        assert ex.outcome == "ok", (seed, ex.violations)


def hand_call(rig: Any, profile: str, entered_by: int) -> Any:
    """cpu0 invalidates [0x10000,0x12000) of p0; ``entered_by`` maps vpn 0x10 meanwhile."""
    r = rig(profile, installers=(Invalidate,))
    m = VmMap(r.k, "p0")
    r.emit(0, CleanCall(m.name, BASE, BASE + 0x2000, 1, 1, m))
    r.emit(entered_by, PteEnter("p0", BASE >> 12, "f", 0, "r"))
    m.pmap.ptes[BASE >> 12] = object()  # type: ignore[assignment]
    r.emit(0, CleanReturn(m.name, KernReturn.SUCCESS.label))
    return r


@pytest.mark.parametrize("profile", PROFILES)
def test_a_mapping_another_cpu_entered_during_the_call_is_allowed(rig: Any, profile: str) -> None:
    assert hand_call(rig, profile, entered_by=1).k.violations == []


def test_a_mapping_the_cleaning_cpu_entered_itself_fires(rig: Any) -> None:
    with pytest.raises(Abort):
        hand_call(rig, "modern", entered_by=0)


# -- a busy page is never freed ------------------------------------------------------------


def frees_in_flight(wait: bool) -> Variant:
    """Write page 0 asynchronously, then free it (after waiting for the write, or not)."""

    async def clean(vm_map: Any, start: int, end: int, syncio: bool, inval: bool) -> Any:
        k = vm_map.k
        await vm_map.lock.xlock()
        entry = await vm_map.lookup_entry(start)
        await vm_map.pmap.remove(start >> 12, end >> 12)
        obj = entry.obj
        await obj.lock.lock()
        page = obj.pages[0]
        assert await page.try_xbusy()
        await k.point()
        k.disk.issue(page, False)
        if wait:
            await obj.lock.unlock()
            await page.wait_unbusy()
            await obj.lock.lock()
            assert await page.try_xbusy()
        await k.point()
        obj.free_page(page)
        await obj.lock.unlock()
        await vm_map.lock.unlock()
        return KernReturn.SUCCESS

    return Variant("waits_then_frees" if wait else "frees_in_flight", clean)


async def test_freeing_a_page_with_a_write_in_flight_fires(
    run_spec: Any, spec_of: Any, first_strategy: Any
) -> None:
    spec = spec_of([["store", hex(BASE)], ["msync", hex(BASE), 0x1000, "sync,invalidate"]])
    ex, _ = await run_spec(spec, "manpage", checkers=CHECK, strategy=first_strategy(),
                           variant=frees_in_flight(False))
    assert [v.rule for v in ex.violations] == ["invalidate"]
    v = ex.violations[0]
    assert v.cpus == [0, 1]  # the freer, and the disk holding the page
    assert v.message == "cpu0 freed page f:0 while it was busy (held by disk, a write in flight)"


async def test_freeing_a_page_after_its_write_and_busying_it_does_not_fire(
    run_spec: Any, spec_of: Any, first_strategy: Any
) -> None:
    spec = spec_of([["store", hex(BASE)], ["msync", hex(BASE), 0x1000, "sync,invalidate"]])
    ex, k = await run_spec(spec, "manpage", checkers=CHECK, strategy=first_strategy(),
                           variant=frees_in_flight(True))
    assert ex.outcome == "ok", ex.violations
    assert 0 not in k.files["f"].pages and k.pagers["f"].stored[0] == 1


async def test_h2_an_invalidate_ignoring_the_soft_busy_fires_and_the_reference_does_not(
    run_spec: Any, spec_of: Any, first_strategy: Any
) -> None:
    # freebsd5: the async write leaves page 0 clean and soft-busy; the invalidating msync's
    # clean passes over it, so only the removal's wait for the soft busy protects it.
    from emulator.variants import MUTANTS

    spec = spec_of([["store", hex(BASE)], ["msync", hex(BASE), 0x1000, "async"],
                    ["msync", hex(BASE), 0x1000, "sync,invalidate"]])
    ex, _ = await run_spec(spec, "freebsd5", checkers=CHECK, strategy=first_strategy(),
                           variant=MUTANTS["invalidate_ignores_soft_busy"])
    assert [v.rule for v in ex.violations] == ["invalidate"]
    assert ex.violations[0].message == (
        "cpu0 freed page f:0 while it was busy (held by disk, a write in flight)")
    ex, k = await run_spec(spec, "freebsd5", checkers=CHECK, strategy=first_strategy(),
                           variant=REF)
    assert ex.outcome == "ok", ex.violations
    assert 0 not in k.files["f"].pages and k.pagers["f"].stored[0] == 1


# -- a wired page is never freed -------------------------------------------------------------


WIRED = [{"addr": hex(BASE), "pages": 2, "file": "f", "wired": True}]


@pytest.mark.parametrize("profile", ["manpage", "freebsd5"])
async def test_freeing_a_wired_page_fires(run_spec: Any, spec_of: Any, profile: str) -> None:
    from emulator.variants import MUTANTS

    spec = spec_of([["msync", hex(BASE), 0x2000, "sync,invalidate"]], mappings=WIRED)
    ex, _ = await run_spec(spec, profile, checkers=CHECK,
                           variant=MUTANTS["invalidate_frees_wired"])
    assert [v.rule for v in ex.violations] == ["invalidate"]
    v = ex.violations[0]
    assert v.cpus == [0] and v.fields == {"page": "f:0"}
    assert v.message == "cpu0 freed page f:0 while it was wired (wire count 1)"


@pytest.mark.parametrize("profile", ["manpage", "freebsd5"])
async def test_invalidate_over_a_wired_mapping_leaves_its_pages(
    run_spec: Any, spec_of: Any, profile: str
) -> None:
    spec = spec_of([["store", hex(BASE)], ["msync", hex(BASE), 0x2000, "sync,invalidate"]],
                   mappings=WIRED)
    ex, k = await run_spec(spec, profile, checkers=CHECK, variant=REF)
    assert ex.outcome == "ok", ex.violations
    assert sorted(k.files["f"].pages) == [0, 1] and k.pagers["f"].stored[0] == 1
