"""Write I/O: issue, completion by the disk agent, failing writes, synchronous waits."""

from __future__ import annotations

from typing import Any

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
