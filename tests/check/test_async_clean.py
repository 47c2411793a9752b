"""async_clean (rule 7): an asynchronous clean issues (or finds queued) a write of every page
dirty at the call, and storage catches up by itself.  Small real runs with hand-written
variants, and the end-of-run check driven by hand."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from emulator.check.async_clean import AsyncClean
from emulator.kern.clean import reference_clean
from emulator.kern.kern_return import KernReturn
from emulator.kern.pmap import remove_write
from emulator.kern.profile import PROFILES
from emulator.variants import Variant

BASE = 0x10000
CHECK = [AsyncClean]
REF = Variant("reference", reference_clean)


def store(page: int) -> list[Any]:
    return ["store", hex(BASE + page * 0x1000)]


def msync(flags: str = "async") -> list[Any]:
    return ["msync", hex(BASE), 0x2000, flags]


def writes_pages(pages: tuple[int, ...], calls: int | None = None) -> Variant:
    """An async clean that writes only ``pages`` (on its first ``calls`` calls)."""
    done = [0]

    async def clean(vm_map: Any, start: int, end: int, syncio: bool, inval: bool) -> Any:
        k = vm_map.k
        await vm_map.lock.xlock()
        entry = await vm_map.lookup_entry(start)
        obj = entry.obj
        done[0] += 1
        if calls is None or done[0] <= calls:
            await obj.lock.lock()
            for pindex in pages:
                page = obj.pages[pindex]
                assert await page.try_xbusy()
                await remove_write(k, page)
                await k.point()
                k.disk.issue(page, False)
            await obj.lock.unlock()
        await vm_map.lock.unlock()
        return KernReturn.SUCCESS

    return Variant(f"writes_{'_'.join(map(str, pages)) or 'nothing'}", clean)


async def test_an_async_clean_issuing_no_write_fires(run_spec: Any, spec_of: Any) -> None:
    ex, _ = await run_spec(spec_of([store(0), store(0), msync()]), "manpage", checkers=CHECK,
                           variant=writes_pages(()))
    assert [v.rule for v in ex.violations] == ["async_clean"]
    v = ex.violations[0]
    assert v.cpus == [0] and v.fields == {"page": "f:0"}
    assert v.message == ("cpu0's asynchronous clean of [0x10000,0x12000) returned with page f:0 "
                         "(holding store #2, dirty at the call) neither written nor queued")


async def test_an_async_clean_skipping_one_dirty_page_fires(run_spec: Any, spec_of: Any) -> None:
    ex, _ = await run_spec(spec_of([store(0), store(1), msync()]), "modern", checkers=CHECK,
                           variant=writes_pages((0,)))
    assert [v.fields["page"] for v in ex.violations] == ["f:1"]


async def test_writing_every_dirty_page_does_not_fire(run_spec: Any, spec_of: Any) -> None:
    ex, k = await run_spec(spec_of([store(0), store(1), msync()]), "manpage", checkers=CHECK,
                           variant=writes_pages((0, 1)))
    assert ex.outcome == "ok", ex.violations
    assert k.pagers["f"].stored == [1, 2]


async def test_the_reference_async_clean_does_not_fire(run_spec: Any, spec_of: Any) -> None:
    program = [store(0), store(1), msync(), store(1), msync(), store(0), msync()]
    for profile in PROFILES:
        for seed in range(5):
            ex, _ = await run_spec(spec_of(program), profile, seed=seed, checkers=CHECK,
                                   variant=REF)
            assert ex.outcome == "ok", (profile, seed, ex.violations)


async def test_pages_clean_at_the_call_need_no_write(run_spec: Any, spec_of: Any) -> None:
    # Only a load: the page is resident and mapped but holds no store to write.
    ex, _ = await run_spec(spec_of([["load", hex(BASE)], msync()]), "manpage", checkers=CHECK,
                           variant=writes_pages(()))
    assert ex.outcome == "ok", ex.violations


async def test_a_write_of_the_same_data_already_queued_counts(
    run_spec: Any, spec_of: Any, first_strategy: Any
) -> None:
    # cpu0 runs before the disk: the first clean's write is still queued at the second.
    ex, _ = await run_spec(spec_of([store(0), msync(), msync()]), "manpage", checkers=CHECK,
                           strategy=first_strategy(), variant=writes_pages((0,), calls=1))
    assert ex.outcome == "ok", ex.violations


async def test_a_sync_clean_is_not_this_rules_business(run_spec: Any, spec_of: Any) -> None:
    ex, _ = await run_spec(spec_of([store(0), msync("sync")]), "manpage", checkers=CHECK,
                           variant=writes_pages(()))
    assert ex.outcome == "ok", ex.violations


async def test_an_entry_removed_during_the_call_is_excused(run_spec: Any, spec_of: Any) -> None:
    async def unmaps(vm_map: Any, start: int, end: int, syncio: bool, inval: bool) -> Any:
        await vm_map.lock.xlock()
        entry = await vm_map.lookup_entry(start)
        await vm_map.pmap.remove(start >> 12, end >> 12)
        vm_map.unlink_entry(entry)
        await vm_map.lock.unlock()
        return KernReturn.SUCCESS

    ex, _ = await run_spec(spec_of([store(0), msync()]), "manpage", checkers=CHECK,
                           variant=Variant("unmaps", unmaps))
    assert ex.outcome == "ok", ex.violations


def test_a_write_still_queued_when_every_cpu_finished_fires(rig: Any) -> None:
    r = rig(installers=(AsyncClean,))
    r.k.disk.queue.append(SimpleNamespace(page=SimpleNamespace(name="f:3"), issuer=1))
    r.be(None)
    r.end()  # non-fatal: reported, nothing raised
    assert [(v.rule, v.message, v.cpus) for v in r.k.violations] == [
        ("async_clean", "every CPU finished but the write of page f:3 is still queued", [1])]


def test_an_empty_queue_at_the_end_does_not_fire(rig: Any) -> None:
    r = rig(installers=(AsyncClean,))
    r.end()
    assert r.k.violations == []


async def test_an_async_msync_after_a_failed_whole_object_clean_is_h24_in_freebsd5(
    run_spec: Any, spec_of: Any, first_strategy: Any
) -> None:
    # The sync msync clears OBJ_MIGHTBEDIRTY and its write fails; the async one returns at
    # once on the dirty page, as the 2003 code did.
    spec = spec_of([store(0), ["msync", hex(BASE), 0x2000, "sync"],
                    ["msync", hex(BASE), 0x2000, "async"]])
    spec["files"]["f"]["fail_writes"] = True
    ex, _ = await run_spec(spec, "freebsd5", checkers=CHECK, strategy=first_strategy(),
                           variant=Variant("reference", reference_clean))
    assert [(v.rule, v.fields.get("historical")) for v in ex.violations] == [
        ("async_clean", "H24")]
    ex, _ = await run_spec(spec, "manpage", checkers=CHECK, strategy=first_strategy(),
                           variant=Variant("reference", reference_clean))
    assert ex.outcome == "ok", ex.violations
