"""The background agents: the page daemon's laundering and the syncer's async cleans."""

from __future__ import annotations

from typing import Any

from emulator.kern.clean import REFERENCE
from emulator.kern.daemons import PageDaemon, Syncer, agent_bodies, object_cleaner
from emulator.kern.events import Free, IoDone, IoIssue
from emulator.kern.page import Busy
from emulator.kern.param import PAGE_SHIFT

BASE = 0x10000  # tests/kern/conftest.py's SPEC: f mapped shared and writable in p0
SPEC: dict[str, Any] = {
    "files": {"f": {"pages": 4}, "g": {"pages": 2}},
    "processes": {"p0": {"mappings": [{"addr": hex(BASE), "pages": 4, "file": "f"}]}},
}

Cpu = Any  # tests/kern/conftest.py's Cpu
VPN = BASE >> PAGE_SHIFT


async def dirty(cpu: Cpu, pindex: int, mapped: bool = False) -> Any:
    """Make page ``pindex`` of f resident holding a fresh store, dirty (and mapped)."""
    k = cpu.k
    page = await cpu.resident("f", pindex)
    page.contents = k.new_store_id()
    if mapped:
        await cpu.vm_map.pmap.enter(VPN + pindex, page, True)
        cpu.vm_map.pmap.ptes[VPN + pindex].modified = True  # a store through the mapping
    else:
        page.dirty = True
    return page


def issued(run: Any) -> list[tuple[int, int]]:
    """(issuer, pindex) of every write issued, in order (noted by ``note``)."""
    return [(aid, ev.pindex) for aid, ev in run.noted if isinstance(ev, IoIssue)]


def freed(run: Any) -> list[int]:
    return [ev.pindex for _, ev in run.noted if isinstance(ev, Free)]


def note(cpu: Cpu) -> None:
    """Keep every write issue and page free on ``cpu.run.noted`` as (agent, event)."""
    noted: list[Any] = []
    cpu.run.noted = noted
    for cls in (IoIssue, Free):
        cpu.k.observe(cls, lambda step, aid, ev: noted.append((aid, ev)))


async def test_the_daemon_write_protects_a_dirty_page_and_writes_it_asynchronously(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        note(cpu)
        page = await dirty(cpu, 0, mapped=True)
        await PageDaemon(cpu.k, 1).scan(cpu.k.files["f"])
        pte = cpu.vm_map.pmap.ptes[VPN]
        seen.append((pte.writable, pte.modified, page.dirty, page.busy, list(page.sowners)))

    run = await run_kernel(body)
    disk = run.k.disk.aid
    # Still dirty and shared-busy for the disk until the write completes.
    assert seen == [(False, False, True, Busy.SHARED, [disk])]
    assert issued(run) == [(0, 0)]
    page = run.k.files["f"].pages[0]
    assert run.k.pagers["f"].stored[0] == page.contents and not page.dirty


async def test_the_daemon_frees_a_clean_page_after_removing_its_mappings(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        note(cpu)
        page = await cpu.resident("f", 1)
        await cpu.vm_map.pmap.enter(VPN + 1, page, False)
        await PageDaemon(cpu.k, 1).scan(cpu.k.files["f"])
        seen.append((page.freed, VPN + 1 in cpu.vm_map.pmap.ptes, list(cpu.k.files["f"].pages)))

    run = await run_kernel(body)
    assert seen == [(True, False, [])]
    assert issued(run) == []


async def test_the_daemon_skips_a_busy_page_without_waiting(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        note(cpu)
        page = await dirty(cpu, 0)
        await page.xbusy()
        step = cpu.k.sched.step
        await PageDaemon(cpu.k, 1).scan(cpu.k.files["f"])
        seen.append((page.freed, page.dirty, page.xowner, cpu.k.sched.step > step))
        await page.xunbusy()

    run = await run_kernel(body)
    assert seen == [(False, True, 0, True)]
    assert issued(run) == []


async def test_the_daemon_clusters_the_dirty_pages_that_follow_a_dirty_page(
    run_kernel: Any,
) -> None:
    async def body(cpu: Cpu) -> None:
        note(cpu)
        for pindex in (0, 1):
            await dirty(cpu, pindex)
        await cpu.resident("f", 2)  # clean: ends the cluster, then freed
        await dirty(cpu, 3)
        daemon = PageDaemon(cpu.k, 1)
        f = cpu.k.files["f"]
        await f.vnode.lock()
        await f.lock.lock()
        nxt = await daemon.launder(f, f.pages[0])
        cpu.log(f"next {nxt}")
        await f.lock.unlock()
        await f.vnode.unlock()
        await daemon.scan(f)

    run = await run_kernel(body)
    assert run.log == ["cpu0 next 2"]  # one laundering wrote pages 0 and 1
    assert issued(run) == [(0, 0), (0, 1), (0, 3)]
    assert freed(run) == [2]
    # One pager call for pages 0 and 1 (vm_pageout_flush, mreq 0), another for page 3.
    calls = [ev.io.cluster for _, ev in run.noted if isinstance(ev, IoIssue)]
    assert calls[0] is calls[1] is not None and calls[2] is not calls[0]
    assert calls[0].mreq == 0 and [io.page.pindex for io in calls[0].ios] == [0, 1]


async def test_the_cluster_writes_in_one_disk_step_and_a_failed_page_stays_dirty(
    run_kernel: Any,
) -> None:
    done: list[Any] = []

    async def body(cpu: Cpu) -> None:
        note(cpu)
        cpu.k.observe(IoDone, lambda step, aid, ev: done.append((step, ev.pindex, ev.error)))
        pages = [await dirty(cpu, pindex) for pindex in (0, 1, 2)]
        await PageDaemon(cpu.k, 1).scan(cpu.k.files["f"])
        ios = [ev.io for _, ev in cpu.run.noted if isinstance(ev, IoIssue)]
        for io in ios:
            await cpu.k.disk.wait(io)
        seen.append([p.dirty for p in pages])

    seen: list[Any] = []
    spec = {**SPEC, "files": {"f": {"pages": 4, "fail_pages": [1]}, "g": {"pages": 2}}}
    run = await run_kernel(body, spec=spec)
    assert [(p, e) for _, p, e in done][:3] == [(0, 0), (1, 1), (2, 0)]
    assert len({step for step, _, _ in done[:3]}) == 1  # the disk completes the call at once
    # Page 1's write failed: it stays dirty for a later pass; no caller hears of it.
    assert seen == [[False, True, False]]
    assert not run.execution.violations


async def test_the_daemon_does_not_cluster_when_the_cluster_size_is_one(
    run_kernel: Any,
) -> None:
    async def body(cpu: Cpu) -> None:
        note(cpu)
        for pindex in (0, 1):
            await dirty(cpu, pindex)
        await PageDaemon(cpu.k, 1).scan(cpu.k.files["f"])

    run = await run_kernel(body, spec={**SPEC, "cluster": 1})
    calls = [ev.io.cluster for _, ev in run.noted if isinstance(ev, IoIssue)]
    assert issued(run) == [(0, 0), (0, 1)] and calls[0] is not calls[1]


async def test_a_cluster_holds_at_most_the_cluster_size(run_kernel: Any) -> None:
    async def body(cpu: Cpu) -> None:
        note(cpu)
        for pindex in (0, 1, 2):
            await dirty(cpu, pindex)
        daemon = PageDaemon(cpu.k, 1)
        f = cpu.k.files["f"]
        await f.vnode.lock()
        await f.lock.lock()
        cpu.log(f"next {await daemon.launder(f, f.pages[0])}")
        await f.lock.unlock()
        await f.vnode.unlock()

    run = await run_kernel(body, spec={**SPEC, "cluster": 2})
    assert run.log == ["cpu0 next 2"]
    assert issued(run) == [(0, 0), (0, 1)]


async def test_the_syncer_starts_an_async_clean_of_each_dirty_file_only(run_kernel: Any) -> None:
    async def body(cpu: Cpu) -> None:
        note(cpu)
        k = cpu.k
        await dirty(cpu, 2)
        k.files["f"].generation += 1  # a write fault made f might-be-dirty
        g = await cpu.resident("g", 0)
        g.dirty = True  # but g's generation says clean: the syncer skips it
        await Syncer(k, 1, REFERENCE).run()

    run = await run_kernel(body)
    assert issued(run) == [(0, 2)]
    assert run.k.pagers["g"].stored[0] == 0


async def test_agents_from_the_spec_run_as_daemons_after_the_disk(run_kernel: Any) -> None:
    async def body(cpu: Cpu) -> None:
        note(cpu)
        await dirty(cpu, 0, mapped=True)
        cpu.k.files["f"].generation += 1

    spec = {**SPEC, "agents": {"pagedaemon": True, "syncer": 2}}
    run = await run_kernel(body, spec=spec)
    assert run.outcome == "ok"
    names = [a.name for a in run.k.sched.agents]
    assert names == ["cpu0", "disk", "pagedaemon", "syncer"]
    assert [a.daemon for a in run.k.sched.agents] == [False, True, True, True]
    # The cpu ran first (the lowest runnable agent); then a daemon wrote the page.
    assert [aid for aid, _ in issued(run)] in ([2], [3])
    assert run.k.pagers["f"].stored[0] == run.k.files["f"].pages[0].contents


async def test_no_agent_runs_without_the_spec_key(run_kernel: Any) -> None:
    async def body(cpu: Cpu) -> None:
        note(cpu)
        await dirty(cpu, 0)

    run = await run_kernel(body)
    assert [a.name for a in run.k.sched.agents] == ["cpu0", "disk"]
    assert agent_bodies(run.k, {}) == []


async def test_the_syncer_cleans_with_the_variants_page_clean(run_kernel: Any) -> None:
    async def body(cpu: Cpu) -> None:
        note(cpu)
        pass

    run = await run_kernel(body)
    # The unit variant is a plain function, not a MapClean: the reference serves.
    assert object_cleaner(run.k) is REFERENCE
    run.k.clean_impl = REFERENCE.clean
    assert object_cleaner(run.k) is REFERENCE
