"""Background agents: the page daemon and the syncer (FIDELITY.md D19).

Two kernel threads that clean file pages behind the CPUs' backs, so that a
clean always races a third party that may write, write-protect or free the
pages it sleeps on:

* the **page daemon** launders as vm_pageout_launder / vm_pageout_clean do:
  for each resident page of each file object, ``vm_page_tryxbusy`` (a busy page
  is skipped, never waited for), ``pmap_remove_write`` folding modified bits;
  a dirty page is clustered with the dirty pages that follow it, up to the
  kernel's cluster size (vm_pageout_cluster with vm_pageout_page_count, forward
  only here: the pages before it were scanned already), and the cluster
  written in one asynchronous pager call (vm_pageout_flush with mreq 0 and no
  eio: every page is the daemon's, and no caller hears of an error; a failed
  page stays dirty for a later pass); a clean page loses every mapping
  (``vm_page_try_remove_all``) and is freed -- unless a store raced in through
  a mapping, which makes it dirty again: it is laundered on a later pass;
* the **syncer** walks the file objects and starts an asynchronous clean of
  every one that might be dirty (vfs_msync: ``vm_object_page_clean(obj, 0, 0,
  OBJPC_NOSYNC)``, no OBJPC_SYNC; it passes over MAP_NOSYNC pages, leaving the
  object dirty), through the same page-clean routine msync uses -- the
  variant's, when it overrides it; then,
  where the file has delayed-write buffers (a profile whose asynchronous
  writes are bdwrites), it starts their writes without waiting
  (sync_vnode's VOP_FSYNC(MNT_LAZY)).

Each is an agent of its own (a daemon: it never keeps an execution alive)
whose every step is a schedule point.  Their work is bounded: a spec gives
each a number of passes per execution (``"agents": {"pagedaemon": 2}``), and a
pass starts with a schedule point, so the strategy chooses when each happens.

Lock order as everywhere: vnode -> object -> page busy.  The daemon reclaims
clean pages under the object lock alone, takes the vnode lock before the object
lock to launder (vm_pageout_clean's vget), and only tries busies, so it never
sleeps holding a busy page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from emulator.kern.pmap import is_modified, remove_all, remove_write

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from emulator.kern.clean import MapClean
    from emulator.kern.kernel import Kernel
    from emulator.kern.object import VmObject
    from emulator.kern.page import VmPage

Body: TypeAlias = "Callable[[], Awaitable[None]]"  # an agent's coroutine function

# The agents a spec may turn on, in the order they are added to the scheduler
# (after the disk).
AGENT_NAMES = ("pagedaemon", "syncer")
DEFAULT_PASSES = 1  # a spec's ``true``
MAX_PASSES = 8


class PageDaemon:
    """vm_pageout's laundering, ``passes`` scans of every file object."""

    def __init__(self, k: Kernel, passes: int) -> None:
        self.k = k
        self.passes = passes

    async def run(self) -> None:
        k = self.k
        for _ in range(self.passes):
            await k.kpoint()  # the daemon wakes: a page shortage, or its timer
            for obj in list(k.files.values()):
                await self.scan(obj)

    async def scan(self, obj: VmObject) -> None:
        """Launder or reclaim each resident page of ``obj``, lowest index first.

        Reclaiming a clean page needs only the object lock; laundering a dirty
        one needs the vnode too (vm_pageout_clean locks it), taken after
        dropping the object lock, then the page is looked up again.
        """
        k = self.k
        vnode = obj.vnode
        assert vnode is not None
        pi = 0
        while True:
            await obj.lock.lock()
            page = obj.find_least(pi)
            if page is None:
                await obj.lock.unlock()
                return
            pi = page.pindex + 1
            if page.dirty or is_modified(page):  # vm_page_test_dirty's hint
                await obj.lock.unlock()
                await vnode.lock()
                await obj.lock.lock()
                page = obj.lookup_page(pi - 1)
                if page is not None:
                    pi = await self.launder(obj, page)
                await obj.lock.unlock()
                await vnode.unlock()
            else:
                await self.reclaim(obj, page)
                await obj.lock.unlock()
            k.read("obj", obj.name)

    async def reclaim(self, obj: VmObject, page: VmPage) -> None:
        """Free a clean page (object locked): unmap it everywhere first.

        A store through a mapping that raced in makes it dirty: it stays, to
        be laundered on a later pass.
        """
        k = self.k
        if page.wire_count > 0 or not page.valid:
            return
        if not await page.try_xbusy():
            return  # busy: the daemon moves on, it never waits
        await remove_all(k, page)  # vm_page_try_remove_all, folding modified bits
        if page.dirty:
            await page.xunbusy()
            return
        await k.kpoint()
        k.touch_page(page)
        obj.free_page(page)

    async def launder(self, obj: VmObject, page: VmPage) -> int:
        """Write ``page`` with the dirty pages that follow it (vnode and object
        locked), or reclaim it if it turns out clean; return the next index to scan."""
        k = self.k
        nxt = page.pindex + 1
        if page.wire_count > 0 or not page.valid:
            return nxt
        if not await page.try_xbusy():
            return nxt
        await remove_write(k, page)  # vm_page_try_remove_write, folding modified bits
        if not page.dirty:
            await page.xunbusy()
            await self.reclaim(obj, page)
            return nxt
        cluster = [page]
        while len(cluster) < k.cluster:
            nb = obj.lookup_page(nxt)
            if nb is None or nb.wire_count > 0 or not nb.valid:
                break
            if not await nb.try_xbusy():
                break
            await remove_write(k, nb)
            if not nb.dirty:
                await nb.xunbusy()
                break
            cluster.append(nb)
            nxt += 1
        # vm_pageout_flush: one asynchronous pager call for the whole cluster.
        await k.kpoint()
        for p in cluster:
            k.touch_page(p)
        k.disk.issue_cluster(cluster, 0, False)
        return nxt


class Syncer:
    """The syncer: ``passes`` walks starting an asynchronous clean of each dirty file."""

    def __init__(self, k: Kernel, passes: int, cleaner: MapClean) -> None:
        self.k = k
        self.passes = passes
        self.cleaner = cleaner

    async def run(self) -> None:
        k = self.k
        for _ in range(self.passes):
            for obj in list(k.files.values()):
                await k.kpoint()
                k.read("obj", obj.name)
                if obj.might_be_dirty():
                    # vfs_msync: vnode, then object locked; OBJPC_NOSYNC, no OBJPC_SYNC.
                    await self.cleaner.flush_object(obj, 0, obj.size, False, nosync=True)
                pager = obj.pager
                if pager is not None and pager.delayed:
                    # sync_vnode's VOP_FSYNC(MNT_LAZY): start the delayed writes, no wait.
                    await self.push(obj)

    async def push(self, obj: VmObject) -> None:
        """Start the write of every delayed-write buffer of ``obj``'s file, under its
        vnode lock, without waiting for them."""
        vnode = obj.vnode
        assert vnode is not None
        await vnode.lock()
        await self.cleaner.push_delayed(obj)
        await vnode.unlock()


def object_cleaner(k: Kernel) -> MapClean:
    """The page-clean routine the syncer shares with msync: the variant's if it is
    a MapClean (it may override vm_object_page_clean), else the reference."""
    from emulator.kern.clean import REFERENCE, MapClean

    owner = getattr(k.clean_impl, "__self__", None)
    return owner if isinstance(owner, MapClean) else REFERENCE


def agent_bodies(k: Kernel, agents: dict[str, int]) -> list[tuple[str, Body]]:
    """Each requested agent's name and body, in AGENT_NAMES order."""
    out: list[tuple[str, Body]] = []
    for name in AGENT_NAMES:
        passes = agents.get(name, 0)
        if not passes:
            continue
        if name == "pagedaemon":
            out.append((name, PageDaemon(k, passes).run))
        else:
            out.append((name, Syncer(k, passes, object_cleaner(k)).run))
    return out
