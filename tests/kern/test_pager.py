"""Write I/O: issue, completion by the disk agent, failing writes, synchronous waits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from emulator.check.base import Checker
from emulator.kern.events import Bdwrite, BufDone, BufWrite, Event, IoIssue
from emulator.kern.kernel import Kernel
from emulator.sched.strategies import Strategy

Cpu = Any  # tests/kern/conftest.py's Cpu

FAILING: dict[str, Any] = {
    "files": {"f": {"pages": 2, "fail_writes": True}},
    "processes": {"p0": {"mappings": [{"addr": "0x10000", "pages": 2, "file": "f"}]}},
}


async def write(cpu: Cpu, pindex: int = 0, sync: bool = False) -> tuple[Any, Any]:
    """Dirty page ``pindex`` of f with a fresh store and issue its write; return (page, io)."""
    k = cpu.k
    f = k.files["f"]
    page = await cpu.resident(f, pindex)
    page.contents = k.new_store_id()
    page.dirty = True
    await page.xbusy()
    await f.lock.lock()
    await k.kpoint()
    io = k.disk.issue(page, sync)
    await f.lock.unlock()
    return page, io


def state(cpu: Cpu, page: Any, io: Any) -> dict[str, Any]:
    return {"stored": cpu.k.pagers["f"].stored[page.pindex], "dirty": page.dirty,
            "busy": (page.xowner, list(page.sowners)), "done": io.done, "error": io.error}


async def test_an_issued_write_keeps_the_page_dirty_and_shared_busy_for_the_disk(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page, io = await write(cpu)
        seen.append(state(cpu, page, io))
        seen.append(io.data)

    run = await run_kernel(body)
    disk = run.k.disk.aid
    assert seen == [{"stored": 0, "dirty": True, "busy": (-1, [disk]), "done": False,
                     "error": False}, 1]


async def test_completion_stores_the_data_clears_dirty_and_drops_the_busy(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page, io = await write(cpu)
        await cpu.k.disk.wait(io)  # the disk agent runs while this cpu sleeps
        seen.append(state(cpu, page, io))

    run = await run_kernel(body)
    assert run.outcome == "ok"
    assert seen == [{"stored": 1, "dirty": False, "busy": (-1, []), "done": True,
                     "error": False}]


async def test_completion_writes_the_contents_as_of_issue(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page, io = await write(cpu)
        page.contents = cpu.k.new_store_id()  # a store that raced with the write
        await cpu.k.disk.wait(io)
        seen.extend([cpu.k.pagers["f"].stored[0], page.contents])

    await run_kernel(body)
    assert seen == [1, 2]


async def test_completion_clears_the_modified_bits_of_the_pages_mappings(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page, io = await write(cpu)
        pmap = cpu.vm_map.pmap
        await pmap.enter(0x10, page, False)
        pmap.lookup(0x10).modified = True
        await cpu.k.disk.wait(io)
        seen.extend([pmap.lookup(0x10).modified, page.dirty])

    await run_kernel(body)
    assert seen == [False, False]


async def test_a_failed_write_keeps_the_page_dirty_and_the_pager_unchanged(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page, io = await write(cpu)
        await cpu.k.disk.wait(io)
        seen.append(state(cpu, page, io))

    run = await run_kernel(body, spec=FAILING)
    assert run.outcome == "ok"
    assert seen == [{"stored": 0, "dirty": True, "busy": (-1, []), "done": True,
                     "error": True}]


# modern: the buffer write clears the page's dirty bits when it starts (vfs_busy_pages),
# and the buffer carries the dirtiness from then on (Profile.write_clears_dirty_at_start).


async def test_where_dirty_clears_at_write_start_the_issue_cleans_and_write_protects(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        k = cpu.k
        f = k.files["f"]
        page = await cpu.resident(f, 0)
        pmap = cpu.vm_map.pmap
        await pmap.enter(0x10, page, True)
        pmap.lookup(0x10).modified = True  # a store through the mapping
        page.contents = k.new_store_id()
        await page.xbusy()
        await f.lock.lock()
        await k.kpoint()
        io = k.disk.issue(page, True)
        await f.lock.unlock()
        pte = pmap.lookup(0x10)
        seen.append({**state(cpu, page, io), "disk": cpu.k.pagers["f"].disk[0],
                     "pte": (pte.writable, pte.modified)})
        await cpu.k.disk.wait(io)
        seen.append({**state(cpu, page, io), "disk": cpu.k.pagers["f"].disk[0]})

    run = await run_kernel(body, profile="modern")
    disk = run.k.disk.aid
    assert seen == [
        {"stored": 1, "dirty": False, "busy": (-1, [disk]), "done": False, "error": False,
         "disk": 0, "pte": (False, False)},
        {"stored": 1, "dirty": False, "busy": (-1, []), "done": True, "error": False,
         "disk": 1},
    ]


async def test_where_dirty_clears_at_write_start_a_later_store_keeps_the_page_dirty(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page, io = await write(cpu)
        page.contents = cpu.k.new_store_id()  # a store after the write started
        page.dirty = True
        await cpu.k.disk.wait(io)
        seen.extend([cpu.k.pagers["f"].disk[0], page.contents, page.dirty])

    await run_kernel(body, profile="modern")
    assert seen == [1, 2, True]  # the write carried store 1; the page still holds 2, dirty


async def test_where_dirty_clears_at_write_start_a_failed_write_redirties_the_buffer(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page, io = await write(cpu)
        await cpu.k.disk.wait(io)
        pager = cpu.k.pagers["f"]
        seen.append({**state(cpu, page, io), "disk": pager.disk[0],
                     "delayed": list(pager.delayed)})

    run = await run_kernel(body, spec=FAILING, profile="modern")
    assert run.outcome == "ok"
    # brelse's "Failed write, redirty": the buffer is a delayed write again, holding the
    # store; the page stays clean (nothing dirties it again).
    assert seen == [{"stored": 1, "dirty": False, "busy": (-1, []), "done": True,
                     "error": True, "disk": 0, "delayed": [0]}]


async def test_the_disk_completes_writes_oldest_first(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        _, first = await write(cpu, 0)
        _, second = await write(cpu, 1)
        await cpu.k.disk.wait(second)
        seen.append(first.done)

    await run_kernel(body)
    assert seen == [True]



async def test_a_multi_page_write_completes_in_one_disk_step_with_a_result_per_page(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []
    spec = {**FAILING, "files": {"f": {"pages": 2, "fail_pages": [1]}}}

    async def body(cpu: Cpu) -> None:
        k = cpu.k
        f = k.files["f"]
        pages = [await cpu.resident(f, i) for i in (0, 1)]
        for page in pages:
            page.contents = k.new_store_id()
            page.dirty = True
            await page.xbusy()
        await f.lock.lock()
        await k.kpoint()
        cluster = k.disk.issue_cluster(pages, 1, True)
        await f.lock.unlock()
        await k.disk.wait(cluster.ios[0])
        seen.append([(io.done, io.error, io.page.dirty, k.pagers["f"].stored[io.page.pindex]
                      == io.data) for io in cluster.ios])

    run = await run_kernel(body, spec=spec)
    assert run.outcome == "ok"
    # Waiting for the first page's write was waiting for both: page 1 failed, stays dirty.
    assert seen == [[(True, False, False, True), (True, True, True, False)]]


# -- the buffer cache and the disk (FIDELITY.md D1) --------------------------------------

BUFFERED: dict[str, Any] = {
    "files": {"f": {"pages": 2}},
    "processes": {"p0": {"mappings": [{"addr": "0x10000", "pages": 2, "file": "f"}]}},
}
STORE0, STORE1 = ["store", "0x10000"], ["store", "0x11000"]
MS_ASYNC = ["msync", "0x10000", 8192, "async"]


def buffered(*program: list[Any], agents: dict[str, int] | None = None) -> dict[str, Any]:
    spec = {**BUFFERED, "cpus": [{"process": "p0", "program": list(program)}]}
    if agents:
        spec["agents"] = agents
    return spec


class BufferEvents(Checker):
    """Records who did what to the buffers, in order: (agent name, event kind)."""

    rule = "none"

    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        self.seen: list[tuple[str, str]] = []
        for kind in (IoIssue, Bdwrite, BufWrite, BufDone):
            k.observe(kind, self._note)

    def _note(self, step: int, aid: int, ev: Event) -> None:
        self.seen.append((self.k.agent_name(aid), ev.kind))


async def run_buffered(run_spec: Any, spec: dict[str, Any], profile: str,
                       seed: int = 0) -> tuple[Any, Kernel, list[tuple[str, str]]]:
    made: list[BufferEvents] = []

    def install(k: Kernel) -> BufferEvents:
        made.append(BufferEvents(k))
        return made[-1]

    ex, k = await run_spec(spec, profile, seed=seed, checkers=[install])
    return ex, k, made[0].seen


async def test_a_delayed_write_leaves_the_page_clean_and_unbusied_and_the_data_in_its_buffer(
    run_spec: Any,
) -> None:
    ex, k, seen = await run_buffered(run_spec, buffered(STORE0, MS_ASYNC), "modern")
    pager, page = k.pagers["f"], k.files["f"].pages[0]
    assert ex.outcome == "ok" and seen == [("cpu0", "bdwrite")]
    assert (pager.stored[0], pager.disk[0], list(pager.delayed)) == (1, 0, [0])
    assert (page.dirty, page.busy.name, k.disk.queue, k.disk.bufq) == (False, "NONE", [], [])


@pytest.mark.parametrize("profile", ["manpage", "freebsd5"])
async def test_an_asynchronous_clean_starts_its_writes_now_where_writes_are_not_delayed(
    run_spec: Any, profile: str
) -> None:
    ex, k, seen = await run_buffered(run_spec, buffered(STORE0, MS_ASYNC), profile)
    pager = k.pagers["f"]
    assert ex.outcome == "ok" and seen == [("cpu0", "io_issue")]
    assert (pager.stored[0], pager.disk[0], pager.delayed) == (1, 1, {})


async def test_fsync_writes_the_delayed_buffers_and_waits_for_the_disk(run_spec: Any) -> None:
    ex, k, seen = await run_buffered(
        run_spec, buffered(STORE0, MS_ASYNC, STORE1, ["fsync", "f"]), "modern")
    pager = k.pagers["f"]
    assert ex.results["cpu0"][-1]["ret"] == 0
    assert (pager.stored, pager.disk, pager.delayed) == ([1, 2], [1, 2], {})
    assert sorted(seen) == [("cpu0", "bdwrite"), ("cpu0", "bdwrite"), ("cpu0", "buf_write"),
                            ("cpu0", "buf_write"), ("disk", "buf_done"), ("disk", "buf_done")]


async def test_a_ranged_msync_sync_leaves_a_delayed_buffer_behind_in_modern(
    run_spec: Any,
) -> None:
    # The modern kernel's gap (FIDELITY.md D1): MS_ASYNC handed the page to a delayed
    # buffer and cleaned it; the ranged MS_SYNC finds it clean and writes nothing.
    ex, k, seen = await run_buffered(
        run_spec, buffered(STORE0, MS_ASYNC, ["msync", "0x10000", 4096, "sync"]), "modern")
    pager = k.pagers["f"]
    assert ex.results["cpu0"][-1]["ret"] == 0 and seen == [("cpu0", "bdwrite")]
    assert (pager.stored[0], pager.disk[0], list(pager.delayed)) == (1, 0, [0])


async def test_a_whole_file_msync_sync_runs_async_then_vop_fsync_in_modern(run_spec: Any) -> None:
    ex, k, seen = await run_buffered(
        run_spec, buffered(STORE0, STORE1, ["msync", "0x10000", 8192, "sync"]), "modern")
    pager = k.pagers["f"]
    assert ex.results["cpu0"][-1]["ret"] == 0
    assert (pager.stored, pager.disk, pager.delayed) == ([1, 2], [1, 2], {})
    assert sorted(kind for _, kind in seen) == ["bdwrite", "bdwrite", "buf_done", "buf_done",
                                                "buf_write", "buf_write"]


async def test_a_whole_file_msync_sync_of_a_clean_object_skips_vop_fsync_in_modern(
    run_spec: Any,
) -> None:
    # vm_object_sync tests vm_object_mightbedirty first: MS_ASYNC's delayed writes left
    # the object clean (cleangeneration recorded), so no VOP_FSYNC runs.
    ex, k, seen = await run_buffered(
        run_spec, buffered(STORE0, MS_ASYNC, ["msync", "0x10000", 8192, "sync"]), "modern")
    assert ex.results["cpu0"][-1]["ret"] == 0 and seen == [("cpu0", "bdwrite")]
    assert k.pagers["f"].disk[0] == 0


class SyncerLast(Strategy):
    """cpu0 to its end, then the syncer, the disk, and cpu1 last (it keeps the run alive)."""

    name = "syncer_last"

    def choose(self, runnable: Sequence[int], current: int) -> int:
        for aid in (0, 3, 2, 1):  # cpu0, syncer, disk, cpu1
            if aid in runnable:
                return aid
        return runnable[0]


async def test_the_syncer_starts_the_writes_of_delayed_buffers(run_spec: Any) -> None:
    spec = {**BUFFERED, "agents": {"syncer": 1}, "cpus": [
        {"process": "p0", "program": [STORE0, MS_ASYNC]},
        {"process": "p0", "program": [["yield"]] * 4}]}
    made: list[BufferEvents] = []

    def install(k: Kernel) -> BufferEvents:
        made.append(BufferEvents(k))
        return made[-1]

    ex, k = await run_spec(spec, "modern", checkers=[install], strategy=SyncerLast())
    assert ex.outcome == "ok"
    assert made[0].seen == [("cpu0", "bdwrite"), ("syncer", "buf_write"), ("disk", "buf_done")]
    assert (k.pagers["f"].disk[0], k.pagers["f"].delayed) == (1, {})
