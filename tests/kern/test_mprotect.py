"""mprotect(2): entries clipped to the range get the new protection; lowering it revokes
write access in the caller's page tables (pmap_protect) with the modified bits folded in,
so later stores fault and fail; raising it lets the next write fault map the page writable."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.kern.profile import PROFILES, Flushes

PAGE = 0x1000
BASE = 0x10000


def spec(program: list[list[Any]], other: list[list[Any]] | None = None,
         prot: str = "rw", submap: bool = False) -> dict[str, Any]:
    mapping: dict[str, Any] = {"addr": hex(BASE), "pages": 3, "file": "f", "prot": prot}
    if submap:
        mapping["submap"] = True
    cpus = [{"process": "p0", "program": program}]
    if other is not None:
        cpus.append({"process": "p1", "program": other})
    return {
        "files": {"f": {"pages": 3}},
        "processes": {"p0": {"mappings": [mapping]},
                      "p1": {"mappings": [{"addr": hex(BASE), "pages": 3, "file": "f"}]}},
        "cpus": cpus,
    }


def rets(ex: Any, cpu: str = "cpu0") -> list[Any]:
    return [r["ret"] for r in ex.results[cpu]]


async def test_lowering_to_read_only_makes_a_later_store_fail_and_keeps_the_page_dirty(
    run_spec: Any
) -> None:
    program = [["store", hex(BASE + PAGE)], ["mprotect", hex(BASE + PAGE), PAGE, "r"],
               ["store", hex(BASE + PAGE)], ["load", hex(BASE + PAGE)]]
    ex, k = await run_spec(spec(program))
    assert rets(ex)[1:3] == [0, "SIGSEGV"]
    # The clipped middle entry is read-only, its neighbours are not.
    p0 = k.maps["p0"]
    assert [(e.start - BASE) // PAGE for e in p0.entries.values()] == [0, 1, 2]
    assert [e.writable for e in p0.entries.values()] == [True, False, True]
    # The store before the mprotect is still the page's contents, and reached the file
    # through the trusted final flush: its modified bit became the page's dirty flag.
    assert rets(ex)[3] == k.files["f"].pager.stored[1] > 0


async def test_raising_to_read_write_lets_the_next_store_through(run_spec: Any) -> None:
    program = [["store", hex(BASE)], ["mprotect", hex(BASE), 3 * PAGE, "rw"],
               ["store", hex(BASE)]]
    ex, _ = await run_spec(spec(program, prot="r"))
    assert rets(ex) == ["SIGSEGV", 0, 0]


async def test_only_the_callers_page_tables_lose_write_access(run_spec: Any) -> None:
    # p1 stores first (its mapping becomes writable), then p0 lowers its own view.
    ex, k = await run_spec(spec([["mprotect", hex(BASE), 3 * PAGE, "r"]],
                                other=[["store", hex(BASE)], ["store", hex(BASE)]]))
    assert rets(ex, "cpu1") == [0, 0]
    assert all(pte.writable for pte in k.maps["p1"].pmap.ptes.values())


async def test_a_sub_map_in_the_range_refuses_the_call_before_anything_changes(
    run_spec: Any
) -> None:
    program = [["store", hex(BASE)], ["mprotect", hex(BASE), PAGE, "r"],
               ["store", hex(BASE)]]
    ex, k = await run_spec(spec(program, submap=True))
    assert rets(ex) == [0, "EINVAL", 0]
    assert len(k.maps["p0"].entries) == 1


@pytest.mark.parametrize("profile", list(PROFILES))
async def test_msync_after_mprotect_read_only_writes_the_store_only_where_dirtiness_decides(
    run_spec: Any, make_watch: Any, profile: str
) -> None:
    # The mprotect flush gap (FIDELITY.md D19): the 2003 clean flushes only the objects
    # of writable entries, so a store made before mprotect(PROT_READ) is not written by
    # msync(MS_SYNC), which returns 0 all the same; today's vm_object_sync flushes the
    # object because it might be dirty, whatever the entry's protection.
    ws: list[Any] = []
    program = [["store", hex(BASE)], ["mprotect", hex(BASE), 3 * PAGE, "r"],
               ["msync", hex(BASE), 3 * PAGE, "sync"]]
    ex, _ = await run_spec(spec(program), profile, checkers=[lambda k: make_watch(k, ws)])
    assert rets(ex) == [0, 0, 0]
    stored = ws[0].returns[0]["pagers"]["f"][0]
    flushes_writable_only = PROFILES[profile].flushes is Flushes.WRITABLE_ENTRIES
    assert (stored == 0) == flushes_writable_only


@pytest.mark.parametrize("profile", list(PROFILES))
async def test_the_mprotect_flush_gap_is_reported_historical_where_it_is_an_era_bug(
    run_spec: Any, profile: str
) -> None:
    # freebsd5 names the gap an era bug (D19: the 2003 vm_map_clean's
    # current->protection & VM_PROT_WRITE test): lost_store reports the unwritten store
    # as that era's.  manpage's row is its contract (vm_map_clean(9) flushes writable
    # entries): not reported.  modern flushes the object: nothing to report.
    from emulator.check import all_checkers
    from emulator.check.historical import all_historical, historical_reason

    program = [["store", hex(BASE)], ["mprotect", hex(BASE), 3 * PAGE, "r"],
               ["msync", hex(BASE), 3 * PAGE, "sync"]]
    ex, _ = await run_spec(spec(program), profile, checkers=all_checkers())
    p = PROFILES[profile]
    if "D19" in p.era_bugs:
        assert [v.rule for v in ex.violations] == ["lost_store"]
        assert ex.violations[0].fields["historical"] == "D19"
        assert all_historical(p, ex.violations)
        assert "mprotect flush gap" in str(historical_reason(p, ex.violations[0].fields))
    else:
        assert ex.outcome == "ok" and not ex.violations


async def test_a_loss_marked_with_an_era_bug_the_profile_does_not_name_is_not_historical(
) -> None:
    from emulator.check.historical import all_historical
    from emulator.kern.monitor import Violation

    v = Violation("lost_store", "a store was lost", 1, fields={"historical": "D19"})
    assert all_historical(PROFILES["freebsd5"], [v])
    assert not all_historical(PROFILES["manpage"], [v])
    assert not all_historical(PROFILES["modern"], [v])
    assert not all_historical(PROFILES["freebsd5"], [])
