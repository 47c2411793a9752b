"""lost_store (rule 4), on small real runs with hand-written clean variants.

Each test builds its scenario explicitly: a one-CPU spec and a clean that breaks (or keeps)
one part of the rule -- returns from a synchronous clean without writing; frees a page that
holds an unwritten store; lets a write complete over a newer store; forgets a dirty page.
The counterparts do the same work correctly and must stay quiet.  Only this checker runs.
"""

from __future__ import annotations

from typing import Any

import pytest

from emulator.check.lost_store import LostStore
from emulator.kern.clean import REFERENCE, reference_clean
from emulator.kern.kern_return import KernReturn
from emulator.kern.pmap import remove_all, remove_write
from emulator.kern.profile import PROFILES
from emulator.variants import Variant, load_variant

BASE = 0x10000
CHECK = [LostStore]


def store(page: int = 0) -> list[Any]:
    return ["store", hex(BASE + page * 0x1000)]


def msync(flags: str, pages: int = 2) -> list[Any]:
    return ["msync", hex(BASE), pages * 0x1000, flags]


async def locked_file_object(vm_map: Any, start: int) -> Any:
    """Take the map lock exclusive, find the entry and lock its (file) object."""
    await vm_map.lock.xlock()
    entry = await vm_map.lookup_entry(start)
    obj = entry.obj
    await obj.lock.lock()
    return obj


async def unlock_all(vm_map: Any, obj: Any) -> KernReturn:
    await obj.lock.unlock()
    await vm_map.lock.unlock()
    return KernReturn.SUCCESS


# -- a synchronous clean must leave every earlier store in the pager ----------------------


def returns(rv: KernReturn) -> Variant:
    async def clean(vm_map: Any, start: int, end: int, syncio: bool, inval: bool) -> Any:
        await vm_map.lock.xlock()
        await vm_map.lookup_entry(start)
        await vm_map.lock.unlock()
        return rv

    return Variant(f"returns_{rv.name.lower()}_without_writing", clean)


@pytest.mark.parametrize("profile", PROFILES)
async def test_sync_clean_returning_success_without_writing_fires(
    run_spec: Any, spec_of: Any, profile: str
) -> None:
    spec = spec_of([store(0), store(1), store(1), msync("sync")])
    ex, _ = await run_spec(spec, profile, checkers=CHECK, variant=returns(KernReturn.SUCCESS))
    assert [v.rule for v in ex.violations] == ["lost_store"]
    v = ex.violations[0]
    assert v.cpus == [0, 0]
    assert v.fields == {"page": "f:0", "store": 1, "pager": 0}
    assert v.message.startswith(
        "cpu0's synchronous msync of [0x10000,0x12000) in p0 (called at step ")
    assert "returned success, but the pager of page f:0 holds store #0, not store #1 by cpu0" in (
        v.message)


async def test_sync_clean_reporting_a_failure_is_not_checked(run_spec: Any, spec_of: Any) -> None:
    # "... or the clean reports a failure": the pages stay dirty and the final flush saves them.
    spec = spec_of([store(0), msync("sync")])
    ex, _ = await run_spec(spec, "modern", checkers=CHECK, variant=returns(KernReturn.FAILURE))
    assert ex.outcome == "ok", ex.violations


async def test_async_clean_returning_at_once_is_not_a_lost_store(
    run_spec: Any, spec_of: Any
) -> None:
    spec = spec_of([store(0), msync("async")])
    ex, _ = await run_spec(spec, "manpage", checkers=CHECK, variant=returns(KernReturn.SUCCESS))
    assert ex.outcome == "ok", ex.violations


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("flags", ["sync", "sync,invalidate", "async"])
async def test_the_reference_clean_is_quiet(
    run_spec: Any, spec_of: Any, profile: str, flags: str
) -> None:
    spec = spec_of([store(0), store(1), msync(flags), store(1), msync(flags), store(0)])
    for seed in range(3):
        ex, _ = await run_spec(spec, profile, seed=seed, checkers=CHECK,
                               variant=Variant("reference", reference_clean))
        assert ex.outcome == "ok", ex.violations


async def test_a_failed_write_is_not_a_lost_store(run_spec: Any, spec_of: Any) -> None:
    spec = spec_of([store(0), msync("sync")])
    spec["files"]["f"]["fail_writes"] = True
    ex, k = await run_spec(spec, "manpage", checkers=CHECK,
                           variant=Variant("reference", reference_clean))
    assert ex.outcome == "ok", ex.violations
    # The write failed, so the page stayed dirty and only the final trusted flush saved it.
    assert k.pagers["f"].stored[0] == 1


# -- a page is never freed holding a store the pager lacks ---------------------------------


def frees_pages(flush_first: bool) -> Variant:
    """An invalidating clean that frees every resident page, flushing them first or not."""

    async def clean(vm_map: Any, start: int, end: int, syncio: bool, inval: bool) -> Any:
        k = vm_map.k
        obj = await locked_file_object(vm_map, start)
        await vm_map.pmap.remove(start >> 12, end >> 12)
        if flush_first:
            await REFERENCE.page_clean(obj, 0, obj.size, True)
        for pindex in list(obj.pages):
            page = obj.pages[pindex]
            assert await page.try_xbusy()
            await remove_all(k, page)
            await k.point()
            obj.free_page(page)
        return await unlock_all(vm_map, obj)

    return Variant("flush_then_free" if flush_first else "free_unflushed", clean)


@pytest.mark.parametrize("profile", ["manpage", "freebsd5"])
async def test_freeing_a_page_holding_an_unwritten_store_fires(
    run_spec: Any, spec_of: Any, profile: str
) -> None:
    spec = spec_of([store(0), store(1), store(1), msync("sync,invalidate")])
    ex, _ = await run_spec(spec, profile, checkers=CHECK, variant=frees_pages(False))
    assert [v.rule for v in ex.violations] == ["lost_store"]
    v = ex.violations[0]
    assert v.cpus == [0, 0]
    assert v.fields["page"] == "f:0"
    assert v.message == ("cpu0's invalidating clean freed page f:0 holding store #1 by cpu0 at "
                         f"step {v.message.split('at step ')[1].split(',')[0]}, but the pager "
                         "holds store #0: the store is lost")
    # Outside freebsd5 a freed store is never the emulated historical bug.
    if profile == "manpage":
        assert v.fields["historical"] is False


async def test_freeing_pages_after_flushing_them_does_not_fire(
    run_spec: Any, spec_of: Any
) -> None:
    spec = spec_of([store(0), store(1), store(1), msync("sync,invalidate"), store(1)])
    ex, k = await run_spec(spec, "manpage", checkers=CHECK, variant=frees_pages(True))
    assert ex.outcome == "ok", ex.violations
    assert k.pagers["f"].stored == [1, 4]


# -- a completed write never cleans a page holding newer data --------------------------------


def async_write(protect: bool) -> Variant:
    """An asynchronous clean of page 0 that write-protects it before the write, or not."""

    async def clean(vm_map: Any, start: int, end: int, syncio: bool, inval: bool) -> Any:
        k = vm_map.k
        obj = await locked_file_object(vm_map, start)
        page = obj.pages[0]
        assert await page.try_xbusy()
        if protect:
            await remove_write(k, page)
        await k.point()
        k.disk.issue(page, False)
        return await unlock_all(vm_map, obj)

    return Variant("protect_then_write" if protect else "write_unprotected", clean)


async def test_a_write_completing_over_a_newer_store_fires(
    run_spec: Any, spec_of: Any, first_strategy: Any
) -> None:
    # cpu0 runs first: its second store lands through the still-writable mapping while
    # the write of store #1 is queued; the disk completes it afterwards and clears dirty.
    spec = spec_of([store(0), msync("async", 1), store(0)])
    ex, _ = await run_spec(spec, "manpage", checkers=CHECK, strategy=first_strategy(),
                           variant=async_write(False))
    assert [v.rule for v in ex.violations] == ["lost_store"]
    v = ex.violations[0]
    assert v.cpus == [0, 0]
    assert v.message.startswith(
        "the write of page f:0 (store #1, issued by cpu0) completed and left the page clean, "
        "but the page holds store #2 by cpu0 at step ")
    assert v.message.endswith("which is now neither in the pager nor dirty")


async def test_a_write_of_a_protected_page_does_not_fire(
    run_spec: Any, spec_of: Any, first_strategy: Any
) -> None:
    # The second store faults, waits for the busy page, and re-dirties it after the write.
    spec = spec_of([store(0), msync("async", 1), store(0)])
    ex, k = await run_spec(spec, "manpage", checkers=CHECK, strategy=first_strategy(),
                           variant=async_write(True))
    assert ex.outcome == "ok", ex.violations
    assert k.pagers["f"].stored[0] == 2  # by the final trusted flush


# -- at the end, after the trusted flush, every last store is in the pager ---------------------


def forgets_dirty(forget: bool) -> Variant:
    """An asynchronous clean that write-protects page 0 and then clears its dirty flag."""

    async def clean(vm_map: Any, start: int, end: int, syncio: bool, inval: bool) -> Any:
        k = vm_map.k
        obj = await locked_file_object(vm_map, start)
        page = obj.pages[0]
        assert await page.try_xbusy()
        await remove_write(k, page)
        if forget:
            page.dirty = False
        await page.xunbusy()
        return await unlock_all(vm_map, obj)

    return Variant("forgets_dirty" if forget else "keeps_dirty", clean)


async def test_a_store_no_one_will_ever_write_fires_at_the_end(
    run_spec: Any, spec_of: Any
) -> None:
    spec = spec_of([store(1), store(0), msync("async", 1), ["load", hex(BASE)]])
    ex, _ = await run_spec(spec, "manpage", checkers=CHECK, variant=forgets_dirty(True))
    assert ex.outcome == "violation"
    assert [v.rule for v in ex.violations] == ["lost_store"]
    v = ex.violations[0]
    assert v.cpus == [0]
    assert v.message == ("after every CPU finished and a trusted flush, the pager of page f:0 "
                         f"holds store #0, not the last one, store #2 by cpu0 at step "
                         f"{v.message.split('at step ')[1].split(' ')[0]} at 0x10000 in p0: "
                         "that store was lost")


async def test_a_page_left_dirty_is_saved_by_the_final_flush(run_spec: Any, spec_of: Any) -> None:
    spec = spec_of([store(1), store(0), msync("async", 1), ["load", hex(BASE)]])
    ex, k = await run_spec(spec, "manpage", checkers=CHECK, variant=forgets_dirty(False))
    assert ex.outcome == "ok", ex.violations
    assert k.pagers["f"].stored == [2, 1]


# -- the background agents write and free pages on their own ------------------------------


async def daemon_runs(profile: str, seeds: int, checker: Any) -> tuple[list[Any], int]:
    """Run store/msync(sync)/store on a shared file with the page daemon and the syncer
    on, ``seeds`` random executions; return the violations and how many executions had
    an agent write a page while a clean was open."""
    from emulator.machine import Machine
    from emulator.sched.strategies import RandomStrategy
    from emulator.spec import parse_spec

    spec = parse_spec({
        "profile": profile,
        "files": {"f": {"pages": 2}},
        "processes": {"p0": {"mappings": [{"addr": hex(BASE), "pages": 2, "file": "f"}]}},
        "cpus": [{"process": "p0", "program": [store(0), store(1), msync("sync"), store(0),
                                               msync("sync")]},
                 {"process": "p0", "program": [store(1), store(0)]}],
        "agents": {"pagedaemon": 3, "syncer": 2},
    })
    machine = Machine(spec, Variant("reference", reference_clean), RandomStrategy(),
                      checkers=[checker], record=True)
    violations: list[Any] = []
    inside = 0
    for seed in range(seeds):
        ex = await machine.execute(seed)
        violations += ex.violations
        agents = {3, 4}  # cpu0, cpu1, disk, then the page daemon and the syncer
        open_calls = 0
        for _, aid, kind, args in ex.events:
            if kind == "call" and aid == 0 and args[0] == "msync":
                open_calls += 1
            elif kind == "ret" and aid == 0 and args[0] == "msync":
                open_calls -= 1
            elif kind == "io_issue" and aid in agents and open_calls:
                inside += 1
                break
    return violations, inside


@pytest.mark.parametrize("profile", PROFILES)
async def test_pages_the_agents_write_while_a_clean_runs_are_not_lost_stores(
    profile: str,
) -> None:
    violations, inside = await daemon_runs(profile, 80, LostStore)
    assert violations == []
    assert inside > 5  # the agents did write pages during the cleans' calls


# -- freebsd5's 2003 page clean: what that code lost is historical (H24, H26) -------------


async def test_a_sync_msync_passing_over_an_async_write_in_flight_is_h26_in_freebsd5(
    run_spec: Any, spec_of: Any, first_strategy: Any
) -> None:
    # cpu0 runs first: the disk completes nothing until cpu0 sleeps, which it never does.
    spec = spec_of([store(0), msync("async"), msync("sync")])
    ex, _ = await run_spec(spec, "freebsd5", checkers=CHECK, strategy=first_strategy(),
                           variant=Variant("reference", reference_clean))
    assert [(v.rule, v.fields.get("historical")) for v in ex.violations] == [
        ("lost_store", "H26")]
    for profile in ("manpage", "modern"):  # they wait for the busy before testing dirty
        ex, _ = await run_spec(spec, profile, checkers=CHECK, strategy=first_strategy(),
                               variant=Variant("reference", reference_clean))
        assert ex.outcome == "ok", (profile, ex.violations)


async def test_a_sync_msync_after_a_failed_whole_object_clean_is_h24_in_freebsd5(
    run_spec: Any, spec_of: Any, first_strategy: Any
) -> None:
    # The first msync clears OBJ_MIGHTBEDIRTY, its write fails (a failure during the call:
    # excused); the second returns at once with the page dirty: not excused but historical.
    spec = spec_of([store(0), msync("sync"), msync("sync")])
    spec["files"]["f"]["fail_writes"] = True
    ex, _ = await run_spec(spec, "freebsd5", checkers=CHECK, strategy=first_strategy(),
                           variant=Variant("reference", reference_clean))
    assert [(v.rule, v.fields.get("historical")) for v in ex.violations] == [
        ("lost_store", "H24")]
    assert "returned success" in ex.violations[0].message
    ex, _ = await run_spec(spec, "manpage", checkers=CHECK, strategy=first_strategy(),
                           variant=Variant("reference", reference_clean))
    assert ex.outcome == "ok", ex.violations  # it tries again, and fails during the call


async def test_an_invalidate_freeing_a_page_its_clean_skipped_for_a_clear_flag_is_historical(
    run_spec: Any, spec_of: Any, first_strategy: Any
) -> None:
    # freebsd5: the first msync clears OBJ_MIGHTBEDIRTY and its write fails; the invalidating
    # one's clean returns at once (H24) and its removal frees the dirty page (H9's loss).
    spec = spec_of([store(0), msync("sync"), msync("sync,invalidate")])
    spec["files"]["f"]["fail_writes"] = True
    ex, _ = await run_spec(spec, "freebsd5", checkers=CHECK, strategy=first_strategy(),
                           variant=Variant("reference", reference_clean))
    assert [(v.rule, v.fields.get("historical")) for v in ex.violations] == [
        ("lost_store", True)]
    assert "invalidating clean freed page f:0" in ex.violations[0].message
    ex, _ = await run_spec(spec, "manpage", checkers=CHECK, strategy=first_strategy(),
                           variant=Variant("reference", reference_clean))
    assert ex.outcome == "ok", ex.violations  # it flushes again (failing) and keeps the page


def returns_at_once() -> Variant:
    """A synchronous clean that writes nothing: no era excuses it."""

    async def clean(vm_map: Any, start: int, end: int, syncio: bool, inval: bool) -> Any:
        await vm_map.lock.xlock()
        await vm_map.lock.unlock()
        return KernReturn.SUCCESS

    return Variant("returns_at_once", clean)


async def test_a_sync_clean_skipping_a_dirty_page_is_not_historical_in_freebsd5(
    run_spec: Any, spec_of: Any
) -> None:
    ex, _ = await run_spec(spec_of([store(0), msync("sync")]), "freebsd5", checkers=CHECK,
                           variant=returns_at_once())
    assert [v.rule for v in ex.violations] == ["lost_store"]
    assert "historical" not in ex.violations[0].fields  # the flag is still set


async def cluster_runs(variant: Variant, profile: str, seeds: int) -> list[Any]:
    """The violations of ``seeds`` random executions of cluster_errors (multi-page writes
    while a CPU stores into the neighbours)."""
    from emulator.machine import Machine
    from emulator.sched.strategies import RandomStrategy
    from workloads import build_workload

    machine = Machine(build_workload("cluster_errors", {}, 0, profile), variant,
                      RandomStrategy(), checkers=[LostStore])
    violations: list[Any] = []
    for seed in range(seeds):
        violations += (await machine.execute(seed)).violations
    return violations


@pytest.mark.parametrize("profile", [name for name, p in PROFILES.items()
                                     if not p.flag_page_clean  # freebsd5: no clustering
                                     and not p.write_clears_dirty_at_start])
async def test_a_neighbour_clustered_without_write_protection_loses_a_store(
    profile: str,
) -> None:
    found = await cluster_runs(load_variant("neighbour_not_write_protected"), profile, 40)
    assert found and {v.rule for v in found} == {"lost_store"}
    assert any("completed and left the page clean" in v.message for v in found)
    assert await cluster_runs(Variant("reference", reference_clean), profile, 40) == []


@pytest.mark.parametrize("profile", [name for name, p in PROFILES.items()
                                     if p.write_clears_dirty_at_start])
async def test_where_dirty_clears_at_write_start_a_neighbour_left_writable_loses_nothing(
    profile: str,
) -> None:
    """The buffer write itself write-protects the page and clears its dirty bits when it
    starts (vfs_busy_pages): a store after that dirties the page again, and the write's
    completion leaves it dirty, so the page clean's missing protect loses nothing."""
    variant = load_variant("neighbour_not_write_protected")
    assert await cluster_runs(variant, profile, 40) == []
