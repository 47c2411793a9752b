"""freebsd5's page clean (Profile.flag_page_clean): the 2003 OBJ_MIGHTBEDIRTY protocol.

The flag is cleared before a whole-object scan and never set again by a failed write;
a range the HARDSEQ pass covers leaves it alone; pages are written under the soft busy
alone, and an asynchronous write leaves its page clean while in flight, which a later
synchronous clean passes over; the scan restarts when a page is inserted or removed;
a fault that enters a writable mapping sets the flag again.
"""

from __future__ import annotations

from typing import Any

from emulator.kern.clean import REFERENCE, MapClean
from emulator.kern.fault import Fault
from emulator.kern.object import VmObject
from emulator.kern.page import VmPage

Cpu = Any  # tests/kern/conftest.py's Cpu

ONE_PROCESS: dict[str, Any] = {
    "files": {"f": {"pages": 4}},
    "processes": {"p0": {"mappings": [{"addr": "0x10000", "pages": 4, "file": "f"}]}},
}
FAILING: dict[str, Any] = {
    "files": {"f": {"pages": 2, "fail_writes": True}},
    "processes": {"p0": {"mappings": [{"addr": "0x10000", "pages": 2, "file": "f"}]}},
}


async def dirty(cpu: Cpu, pindex: int) -> VmPage:
    """Make page ``pindex`` of f resident and dirty with a fresh store; the object
    might be dirty (a write fault's work)."""
    k, f = cpu.k, cpu.k.files["f"]
    page: VmPage = await cpu.resident(f, pindex)
    page.contents = k.new_store_id()
    page.dirty = True
    f.generation += 1
    return page


async def clean(cpu: Cpu, start: int, end: int, sync: bool,
                cleaner: MapClean = REFERENCE) -> bool:
    f = cpu.k.files["f"]
    await f.vnode.lock()
    await f.lock.lock()
    ok = await cleaner.page_clean(f, start, end, sync)
    await f.lock.unlock()
    await f.vnode.unlock()
    return ok


class Watching(MapClean):
    """The reference, noting at each write whether the object might be dirty."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, bool]] = []
        self.flushes: list[tuple[int, int]] = []  # (pindex, pages collected: 0 = gave up)
        self.runs: list[list[int]] = []  # the pages of each pager call

    async def pageout_flush_2003(self, obj: VmObject, run: list[VmPage], mreq: int,
                                 sync: bool) -> bool:
        self.seen.append((run[mreq].pindex, obj.might_be_dirty()))
        self.runs.append([p.pindex for p in run])
        return await super().pageout_flush_2003(obj, run, mreq, sync)

    async def collect_flush_2003(self, obj: VmObject, page: VmPage, curgen: int,
                            sync: bool) -> tuple[int, bool]:
        n, ok = await super().collect_flush_2003(obj, page, curgen, sync)
        self.flushes.append((page.pindex, n))
        return n, ok


async def test_a_whole_object_clean_clears_the_flag_before_its_scan_writes(
    run_kernel: Any,
) -> None:
    cleaner = Watching()

    async def body(cpu: Cpu) -> None:
        await dirty(cpu, 0)
        await dirty(cpu, 2)
        # Page 2 dirtied after the HARDSEQ pass would have met it: only the scan writes it.
        cpu.k.files["f"].pages[2].dirty = False
        await clean(cpu, 0, 4, sync=True, cleaner=cleaner)
        cpu.log(f"flag {cpu.k.files['f'].might_be_dirty()}")

    run = await run_kernel(body, spec=ONE_PROCESS, profile="freebsd5")
    assert run.outcome == "ok"
    # HARDSEQ writes page 0 with the flag still set; the scan then finds nothing
    # dirty, but the flag was cleared before it, whole object.
    assert cleaner.seen == [(0, True)]
    assert run.log == ["cpu0 flag False"]


async def test_a_range_the_hardseq_pass_covers_keeps_the_flag(run_kernel: Any) -> None:
    cleaner = Watching()

    async def body(cpu: Cpu) -> None:
        await dirty(cpu, 1)
        await clean(cpu, 1, 2, sync=True, cleaner=cleaner)
        cpu.log(f"flag {cpu.k.files['f'].might_be_dirty()}")

    run = await run_kernel(body, spec=ONE_PROCESS, profile="freebsd5")
    assert cleaner.seen == [(1, True)]
    assert run.log == ["cpu0 flag True"]


async def test_a_failed_write_leaves_the_page_dirty_and_the_flag_clear(run_kernel: Any) -> None:
    cleaner = Watching()

    async def body(cpu: Cpu) -> None:
        page = await dirty(cpu, 0)
        ok = await clean(cpu, 0, 2, sync=True, cleaner=cleaner)
        cpu.log(f"ok {ok} dirty {page.dirty} cleanchk {page.cleanchk} "
                f"flag {cpu.k.files['f'].might_be_dirty()}")
        writes = len(cleaner.seen)
        await clean(cpu, 0, 2, sync=True, cleaner=cleaner)  # H24: returns at once
        cpu.log(f"writes by the second clean {len(cleaner.seen) - writes}")

    run = await run_kernel(body, spec=FAILING, profile="freebsd5")
    # Written by HARDSEQ and again by the scan (still PG_CLEANCHK), failing both times.
    assert cleaner.seen == [(0, True), (0, False)]
    assert run.log == ["cpu0 ok False dirty True cleanchk True flag False",
                       "cpu0 writes by the second clean 0"]


async def test_an_async_write_leaves_the_page_clean_and_soft_busy_while_in_flight(
    run_kernel: Any,
) -> None:
    async def body(cpu: Cpu) -> None:
        k = cpu.k
        page = await dirty(cpu, 0)
        await clean(cpu, 0, 1, sync=False)
        cpu.log(f"dirty {page.dirty} xowner {page.xowner} sowners {page.sowners} "
                f"soft {page.soft_busy} stored {k.pagers['f'].stored[0]}")
        await page.wait_unbusy()
        cpu.log(f"dirty {page.dirty} soft {page.soft_busy} stored {k.pagers['f'].stored[0]}")

    run = await run_kernel(body, spec=ONE_PROCESS, profile="freebsd5")
    disk = run.k.disk.aid
    assert run.log == [f"cpu0 dirty False xowner -1 sowners [{disk}] soft 1 stored 0",
                       "cpu0 dirty False soft 0 stored 1"]


async def test_manpage_keeps_an_async_written_page_dirty_until_its_write_completes(
    run_kernel: Any,
) -> None:
    async def body(cpu: Cpu) -> None:
        page = await dirty(cpu, 0)
        await clean(cpu, 0, 1, sync=False)
        cpu.log(f"dirty {page.dirty}")

    run = await run_kernel(body, spec=ONE_PROCESS, profile="manpage")
    assert run.log == ["cpu0 dirty True"]


async def test_a_sync_clean_passes_over_a_page_whose_async_write_is_in_flight(
    run_kernel: Any,
) -> None:
    cleaner = Watching()

    async def body(cpu: Cpu) -> None:
        k = cpu.k
        await dirty(cpu, 0)
        await clean(cpu, 0, 1, sync=False)
        k.files["f"].generation += 1  # might be dirty again: the clean does scan
        await clean(cpu, 0, 1, sync=True, cleaner=cleaner)
        cpu.log(f"queued {len(k.disk.queue)} stored {k.pagers['f'].stored[0]}")

    run = await run_kernel(body, spec=ONE_PROCESS, profile="freebsd5")
    # H26: the synchronous clean returned with the write still queued, having written nothing.
    assert cleaner.seen == []
    assert run.log == ["cpu0 queued 1 stored 0"]


async def test_the_scan_gives_up_a_busy_page_when_a_page_is_inserted_meanwhile(
    run_kernel: Any,
) -> None:
    cleaner = Watching()

    async def holder(cpu: Cpu) -> None:
        f = cpu.k.files["f"]
        page = await dirty(cpu, 0)
        await page.xbusy()
        cpu.prefer(1, 0)  # the cleaner runs until it sleeps on page 0
        await cpu.k.kpoint()
        await f.lock.lock()
        f.alloc_page(3).valid = True  # a page inserted: memq generation moves
        await f.lock.unlock()
        await f.pages[3].xunbusy()
        await page.xunbusy()

    async def cleaner_cpu(cpu: Cpu) -> None:
        await clean(cpu, 0, 1, sync=True, cleaner=cleaner)

    run = await run_kernel(holder, cleaner_cpu, spec=ONE_PROCESS, profile="freebsd5")
    assert run.outcome == "ok"
    # The first collect gave up (0) after its sleep; the page was written on the retry.
    assert cleaner.flushes == [(0, 0), (0, 1)]


async def test_memq_generation_counts_page_inserts_and_removes(run_kernel: Any) -> None:
    async def body(cpu: Cpu) -> None:
        f = cpu.k.files["f"]
        before = f.memq_generation
        page = await cpu.resident(f, 1)
        await page.xbusy()
        await f.lock.lock()
        f.free_page(page)
        await f.lock.unlock()
        cpu.log(f"moved {f.memq_generation - before} generation {f.generation}")

    run = await run_kernel(body, spec=ONE_PROCESS, profile="freebsd5")
    assert run.log == ["cpu0 moved 2 generation 1"]  # write faults' counter untouched


async def test_entering_a_writable_mapping_sets_the_flag_again_in_freebsd5_only(
    run_kernel: Any,
) -> None:
    async def body(cpu: Cpu) -> None:
        f = cpu.k.files["f"]
        page = await cpu.resident(f, 0)
        await page.xbusy()
        await Fault(cpu.k).enter(cpu.vm_map, 0x10, page, True)
        cpu.log(f"might be dirty {f.might_be_dirty()}")
        await Fault(cpu.k).enter(cpu.vm_map, 0x10, page, False)
        f.clean_generation = f.generation
        await Fault(cpu.k).enter(cpu.vm_map, 0x10, page, False)
        cpu.log(f"read-only {f.might_be_dirty()}")
        await page.xunbusy()

    for profile, flagged in (("freebsd5", True), ("manpage", False)):
        run = await run_kernel(body, spec=ONE_PROCESS, profile=profile)
        assert run.log == [f"cpu0 might be dirty {flagged}", "cpu0 read-only False"]


# -- clustering (vm_object_page_collect_flush of 2003, V5o) -----------------------------

# A file of 20 pages: the HARDSEQ pass gives up after 16 pages in a row that are absent
# or clean, so the marked scan does the writing.
LONG: dict[str, Any] = {
    "files": {"f": {"pages": 20}},
    "processes": {"p0": {"mappings": [{"addr": "0x10000", "pages": 20, "file": "f"}]}},
}


async def test_the_marked_scan_writes_a_page_with_its_dirty_neighbours_in_one_call(
    run_kernel: Any,
) -> None:
    cleaner = Watching()

    async def body(cpu: Cpu) -> None:
        for pindex in (16, 17, 18, 19):
            await dirty(cpu, pindex)
        await clean(cpu, 0, 20, sync=True, cleaner=cleaner)
        f = cpu.k.files["f"]
        cpu.log(f"dirty {[f.pages[i].dirty for i in (16, 17, 18, 19)]}")

    run = await run_kernel(body, spec=LONG, profile="freebsd5")
    assert run.outcome == "ok"
    assert cleaner.runs == [[16, 17, 18, 19]]  # freebsd5's cluster size is 16
    assert cleaner.flushes == [(16, 4)]
    assert run.log == ["cpu0 dirty [False, False, False, False]"]


async def test_the_spec_cluster_bounds_the_run(run_kernel: Any) -> None:
    cleaner = Watching()

    async def body(cpu: Cpu) -> None:
        for pindex in (16, 17, 18, 19):
            await dirty(cpu, pindex)
        await clean(cpu, 0, 20, sync=True, cleaner=cleaner)

    await run_kernel(body, spec={**LONG, "cluster": 3}, profile="freebsd5")
    assert cleaner.runs == [[16, 17, 18], [19]]


async def test_the_hardseq_pass_writes_each_page_alone(run_kernel: Any) -> None:
    # Its neighbours carry no PG_CLEANCHK (2003 had no VM_PAGER_IGNORE_CLEANCHK): one
    # write per page, and page 2, outside the range, is left alone.
    cleaner = Watching()

    async def body(cpu: Cpu) -> None:
        for pindex in (0, 1, 2):
            await dirty(cpu, pindex)
        await clean(cpu, 0, 2, sync=True, cleaner=cleaner)
        cpu.log(f"dirty {cpu.k.files['f'].pages[2].dirty}")

    run = await run_kernel(body, spec=ONE_PROCESS, profile="freebsd5")
    assert cleaner.runs == [[0], [1]]
    assert run.log == ["cpu0 dirty True"]


async def test_the_collect_takes_marked_dirty_neighbours_forward_then_backward(
    run_kernel: Any,
) -> None:
    runs: list[Any] = []

    async def body(cpu: Cpu) -> None:
        f = cpu.k.files["f"]
        pages = [await dirty(cpu, pindex) for pindex in range(8)]
        for page in pages:
            page.cleanchk = True
        pages[1].cleanchk = False  # not marked: ends the backward run before it
        pages[6].dirty = False  # clean: ends the forward run, and loses its mark
        await pages[7].xbusy()
        await f.lock.lock()
        run, mreq = REFERENCE.collect_run_2003(f, pages[4])
        runs.append(([p.pindex for p in run], mreq, pages[6].cleanchk))
        f.k.cluster = 3  # forward first: 5; then backward up to the size: 3
        run, mreq = REFERENCE.collect_run_2003(f, pages[4])
        runs.append(([p.pindex for p in run], mreq))
        await f.lock.unlock()
        await pages[7].xunbusy()

    await run_kernel(body, spec=LONG, profile="freebsd5")
    assert runs == [([2, 3, 4, 5], 2, False), ([3, 4, 5], 1)]


async def test_a_failed_forward_page_stays_marked_and_the_scan_resumes_there(
    run_kernel: Any,
) -> None:
    cleaner = Watching()

    async def body(cpu: Cpu) -> None:
        f = cpu.k.files["f"]
        pages = [await dirty(cpu, pindex) for pindex in range(4)]
        for page in pages:
            page.cleanchk = True
        await f.vnode.lock()
        await f.lock.lock()
        n, ok = await cleaner.collect_flush_2003(f, pages[1], f.memq_generation, True)
        await f.lock.unlock()
        await f.vnode.unlock()
        cpu.log(f"n {n} ok {ok} dirty {[p.dirty for p in pages]} "
                f"cleanchk {[p.cleanchk for p in pages]}")

    spec = {**ONE_PROCESS, "files": {"f": {"pages": 4, "fail_pages": [0, 2]}}}
    run = await run_kernel(body, spec=spec, profile="freebsd5")
    assert cleaner.runs == [[0, 1, 2, 3]]
    # Page 2 (forward) failed: the error is the clean's, and the scan goes on from page 2;
    # page 0 (backward) failed too, unreported; both stay dirty, read-only and marked.
    assert run.log == ["cpu0 n 1 ok False dirty [True, False, True, False] "
                       "cleanchk [True, False, True, False]"]
