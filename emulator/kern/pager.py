"""The file pager, write I/O, and the disk that completes it.

A file's pager holds its stored contents: for each page index, the id of the
store last written to the file (0 for the initial contents).  A write is issued
by a cleaning CPU with the page's contents as of issue, the page shared-busy;
the *disk* agent completes queued writes one per step, oldest first.  Only at
completion does the pager hold the data, the page's ``dirty`` flag clear
(vnode_pager_undirty_pages, with pmap_clear_modify as vm_page_set_validclean
does) and the busy drop.  A synchronous writer sleeps on its I/O until then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.kern.events import IoDone, IoIssue, Wait
from emulator.kern.pmap import clear_modify

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.page import VmPage


class Pager:
    """vnode_pager for one file: stored contents, and a switch to fail writes."""

    __slots__ = ("fail_pages", "fail_writes", "name", "stored")

    def __init__(self, name: str, pages: int) -> None:
        self.name = name
        self.stored: list[int] = [0] * pages  # (vnode) store id held per page
        self.fail_writes = False  # tests set it to make every write fail (EIO)
        self.fail_pages: frozenset[int] = frozenset()  # pages whose every write fails

    def fails(self, pindex: int) -> bool:
        """Whether a write of page ``pindex`` fails (VM_PAGER_ERROR: a bad block, EIO)."""
        return self.fail_writes or pindex in self.fail_pages

    def read(self, pindex: int) -> int:
        return self.stored[pindex]

    def _check(self) -> None:
        assert all(v >= 0 for v in self.stored), f"pager {self.name}: bad store id"


class Cluster:
    """The pages of one pager call (vm_pageout_flush's ``mc[]``), lowest index first.

    ``mreq`` is the position of the page the clean asked for: the pages before it
    are the backward neighbours.  The disk completes the whole run in one step.
    """

    __slots__ = ("ios", "mreq")

    def __init__(self, mreq: int) -> None:
        self.mreq = mreq
        self.ios: list[Io] = []


class Io:
    """One page write in flight.  A wait channel for its synchronous issuer."""

    __slots__ = ("cluster", "data", "disk_aid", "done", "error", "issuer", "page", "redirty",
                 "sync")

    def __init__(self, page: VmPage, data: int, sync: bool, issuer: int, disk_aid: int,
                 cluster: Cluster | None = None) -> None:
        self.page = page
        self.data = data  # the page contents the write carries
        self.sync = sync
        self.issuer = issuer
        self.disk_aid = disk_aid
        self.done = False
        self.error = False
        self.cluster = cluster  # the pager call it is part of, if it carries several pages
        # The page was left clean at issue (2003's asynchronous vnode-pager write):
        # a failure makes it dirty again (the buffer layer's bdirty on a failed write).
        self.redirty = False

    def wait_holders(self) -> list[int]:
        return [self.disk_aid]

    def wait_name(self) -> str:
        return f"write of page {self.page.name}"


class Disk:
    """The queue of writes in flight.  A wait channel for the idle disk agent."""

    __slots__ = ("aid", "k", "queue")

    def __init__(self, k: Kernel, aid: int) -> None:
        self.k = k
        self.aid = aid
        self.queue: list[Io] = []

    def wait_holders(self) -> list[int]:
        return []

    def wait_name(self) -> str:
        return "work for the disk"

    def _check(self) -> None:
        for io in self.queue:
            assert not io.done, f"disk: completed write of {io.page.name} still queued"
            assert self.aid in io.page.sowners, f"disk: page {io.page.name} not busy for its write"

    def issue_cluster(self, pages: list[VmPage], mreq: int, sync: bool) -> Cluster:
        """Queue one write of contiguous ``pages`` (vm_pageout_flush's one pager call),
        ``pages[mreq]`` the one asked for.  Each page's exclusive busy becomes the
        write's.  Part of the caller's step."""
        cluster = Cluster(mreq)
        for page in pages:
            self.issue(page, sync, cluster)
        return cluster

    def issue(self, page: VmPage, sync: bool, cluster: Cluster | None = None,
              soft_busy: bool = False) -> Io:
        """Queue a write of ``page``; the caller's exclusive busy becomes the I/O's.

        With ``soft_busy`` the caller holds no busy: the I/O soft-busies the page
        (the 2003 vm_pageout_flush's vm_page_io_start).  Part of the caller's step
        (vm_pageout_flush -> VOP_PUTPAGES).
        """
        k = self.k
        io = Io(page, page.contents, sync, k.curcpu(), self.aid, cluster)
        if cluster is not None:
            cluster.ios.append(io)
        if soft_busy:
            page.io_start(self.aid)
        else:
            page.downgrade_to_io(self.aid)
        self.queue.append(io)
        k.emit(IoIssue(page.obj.name, page.pindex, page.contents, int(sync), io))
        k.wakeup(self)
        return io

    def complete(self, io: Io) -> None:
        """Finish ``io``: store the data, clean the page, drop its busy.  Part of a step."""
        k = self.k
        page = io.page
        pager = page.obj.pager
        assert pager is not None
        if pager.fails(page.pindex):
            io.error = True  # the page keeps its dirty flag: nothing was written
            if io.redirty:
                page.dirty = True
        else:
            pager.stored[page.pindex] = io.data
            clear_modify(page)
            # vnode_pager_undirty_pages: dirty is cleared for the range
            # written, whatever happened to the page meanwhile.
            page.dirty = False
        io.done = True
        k.emit(IoDone(page.obj.name, page.pindex, io.data, int(io.error), io))
        # A variant that broke the busy protocol may have dropped the write's busy
        # already: the disk goes on, and the checkers report what that lost.
        if self.aid in page.sowners:
            page.release_shared(self.aid)
        k.wakeup(io)

    async def run(self) -> None:
        """The disk agent: complete queued writes, oldest first, forever.

        It starts asleep on the queue (the machine builder marks it so) and is
        woken by the first write issued.
        """
        k = self.k
        while True:
            while not self.queue:
                await k.sleep(self)
            await k.kpoint()
            io = self.queue.pop(0)
            self.complete(io)
            # A multi-page write completes as one: the rest of its run in the same step.
            while io.cluster is not None and self.queue and self.queue[0].cluster is io.cluster:
                self.complete(self.queue.pop(0))

    async def wait(self, io: Io) -> None:
        """Sleep until ``io`` completes (the issuer of a synchronous write)."""
        k = self.k
        while not io.done:
            k.emit(Wait("io", io.page.name))
            await k.sleep(io)
