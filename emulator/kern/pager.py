"""The file pager, the buffer cache, write I/O, and the disk that completes it.

Each file has two levels of storage (FIDELITY.md D1):

* the **buffer cache** (``Pager.stored``): for each page index, the id of the
  store last handed to the file (0 for the initial contents) -- what read(2)
  would see, the *coherent* contents;
* the **disk** (``Pager.disk``): what survives a crash, the *durable* contents.

A page write is issued by a cleaning CPU with the page's contents as of issue.
How it reaches the disk depends on the pager flags (vnode_pager_putpages):

* **bwrite / bawrite** (``Disk.issue``, synchronous or not): the page stays
  shared-busy while the *disk* agent completes queued writes, one per step,
  oldest first.  When the page's dirty bits clear depends on the profile
  (``write_clears_dirty_at_start``):

  - at write **start** (``modern``, as bufwrite's vfs_busy_pages(bp, 1) does:
    write-protect, then vfs_page_set_validclean): the buffer takes the data at
    once (it shares the page: read(2) sees it) and carries the dirtiness from
    then on; a store after that dirties the page again.  A failed write leaves
    the page clean and re-dirties the *buffer* (brelse's bdirty: a delayed
    write again, retried by the next VOP_FSYNC or syncer pass);
  - at write **completion** (``manpage``, ``freebsd5``'s synchronous writes):
    only then do the buffer and the disk hold the data and the page's ``dirty``
    flag clear (with pmap_clear_modify); a failed write leaves the page dirty.

  The busy drops at completion; a synchronous writer sleeps on its I/O until
  then.
* **bdwrite** (``Disk.bdwrite``, a delayed write): the data goes into the
  file's buffer at once, the page's dirty bits clear at write start
  (vfs_clean_pages_dirty_buf) and the page is not kept busy; the buffer carries
  the dirtiness (B_DELWRI, ``Pager.delayed``) until the syncer or a VOP_FSYNC
  writes it (``Disk.push``: a buffer write the disk agent completes, as above).

A buffer here holds the file's coherent contents for its page index, not the
page itself: a buffer write carries whatever the buffer cache holds when the
disk completes it (the kernel's buffer shares the page's memory, so it writes
the newest data too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.kern.events import Bdwrite, BufDone, BufWrite
from emulator.kern.pmap import clear_modify, write_protect

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.page import VmPage


class Pager:
    """vnode_pager for one file: its buffer cache and disk contents, its dirty
    buffers, and a switch to fail writes."""

    __slots__ = ("delayed", "disk", "fail_pages", "fail_writes", "name", "stored",
                 "write_errors")

    def __init__(self, name: str, pages: int) -> None:
        self.name = name
        self.stored: list[int] = [0] * pages  # the buffer cache: store id per page (coherent)
        self.disk: list[int] = [0] * pages  # on disk: store id per page (durable)
        # Page indexes whose buffer is a delayed write (B_DELWRI), in bdwrite order.
        self.delayed: dict[int, None] = {}
        self.fail_writes = False  # tests set it to make every write fail (EIO)
        # How many writes of this file have failed: VOP_FSYNC reports EIO when one
        # failed during its call (a failed buffer stays dirty, so it is retried then).
        self.write_errors = 0
        self.fail_pages: frozenset[int] = frozenset()  # pages whose every write fails

    def fails(self, pindex: int) -> bool:
        """Whether a write of page ``pindex`` fails (VM_PAGER_ERROR: a bad block, EIO)."""
        return self.fail_writes or pindex in self.fail_pages

    def read(self, pindex: int) -> int:
        return self.stored[pindex]

    def _check(self) -> None:
        assert all(v >= 0 for v in self.stored), f"pager {self.name}: bad store id"
        assert all(v >= 0 for v in self.disk), f"pager {self.name}: bad store id on disk"


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

    __slots__ = ("buffered", "cluster", "data", "disk_aid", "done", "error", "issuer", "page",
                 "redirty", "seq", "sync")

    def __init__(self, page: VmPage, data: int, sync: bool, issuer: int, disk_aid: int,
                 cluster: Cluster | None = None, seq: int = 0) -> None:
        self.page = page
        self.seq = seq  # the disk's order of queued writes
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
        # The page's dirty bits were cleared at write start, the buffer holding the
        # data (``Profile.write_clears_dirty_at_start``): the buffer carries the
        # dirtiness, and a failure re-dirties the buffer, not the page.
        self.buffered = False

    def wait_holders(self) -> list[int]:
        return [self.disk_aid]

    def wait_name(self) -> str:
        return f"write of page {self.page.name}"


class BufIo:
    """One buffer write in flight (a dirty buffer pushed by bawrite).  A wait channel."""

    __slots__ = ("disk_aid", "done", "error", "issuer", "obj", "pindex", "seq")

    def __init__(self, obj: str, pindex: int, issuer: int, disk_aid: int, seq: int) -> None:
        self.obj = obj
        self.pindex = pindex
        self.issuer = issuer
        self.disk_aid = disk_aid
        self.seq = seq
        self.done = False
        self.error = False

    def wait_holders(self) -> list[int]:
        return [self.disk_aid]

    def wait_name(self) -> str:
        return f"write of buffer {self.obj}:{self.pindex}"


class Disk:
    """The queues of writes in flight.  A wait channel for the idle disk agent."""

    __slots__ = ("aid", "bufq", "k", "queue", "seq")

    def __init__(self, k: Kernel, aid: int) -> None:
        self.k = k
        self.aid = aid
        self.queue: list[Io] = []  # page writes (bwrite, bawrite)
        self.bufq: list[BufIo] = []  # buffer writes (a delayed write pushed)
        self.seq = 0  # orders the two queues: the disk completes the oldest first

    def wait_holders(self) -> list[int]:
        return []

    def wait_name(self) -> str:
        return "work for the disk"

    def _check(self) -> None:
        for io in self.queue:
            assert not io.done, f"disk: completed write of {io.page.name} still queued"
            assert self.aid in io.page.sowners, f"disk: page {io.page.name} not busy for its write"
        for buf in self.bufq:
            assert not buf.done, f"disk: completed write of buffer {buf.obj}:{buf.pindex} queued"

    def issue_cluster(self, pages: list[VmPage], mreq: int, sync: bool,
                      soft_busy: bool = False) -> Cluster:
        """Queue one write of contiguous ``pages`` (vm_pageout_flush's one pager call),
        ``pages[mreq]`` the one asked for.  Each page's exclusive busy becomes the
        write's (with ``soft_busy``: the write soft-busies pages the caller holds no
        busy on, as ``issue`` does).  Part of the caller's step."""
        cluster = Cluster(mreq)
        for page in pages:
            self.issue(page, sync, cluster, soft_busy)
        return cluster

    def issue(self, page: VmPage, sync: bool, cluster: Cluster | None = None,
              soft_busy: bool = False) -> Io:
        """Queue a write of ``page``; the caller's exclusive busy becomes the I/O's.

        With ``soft_busy`` the caller holds no busy: the I/O soft-busies the page
        (the 2003 vm_pageout_flush's vm_page_io_start).  Part of the caller's step
        (vm_pageout_flush -> VOP_PUTPAGES).
        """
        k = self.k
        self.seq += 1
        io = Io(page, page.contents, sync, k.curcpu(), self.aid, cluster, self.seq)
        if cluster is not None:
            cluster.ios.append(io)
        if soft_busy:
            page.io_start(self.aid)
        else:
            page.downgrade_to_io(self.aid)
            if k.profile.write_clears_dirty_at_start:
                self.clear_at_start(io)
        page.obj.pip_add(self.aid)  # vm_pageout_flush: paging in progress until done
        self.queue.append(io)
        k.emit_io_issue(page.obj.name, page.pindex, page.contents, int(sync), io)
        k.wakeup(self)
        return io

    def clear_at_start(self, io: Io) -> None:
        """Start a buffer write of ``io``'s page (bufwrite -> vfs_busy_pages(bp, 1)):
        the page is write-protected (again: pmap_remove_write, whatever the caller
        did), its dirty bits clear, and the buffer, which shares the page, holds
        the data.  Part of the issuer's step."""
        page = io.page
        pager = page.obj.pager
        assert pager is not None
        pager.stored[page.pindex] = io.data
        write_protect(self.k, page)
        page.dirty = False
        io.buffered = True

    def complete(self, io: Io) -> None:
        """Finish ``io``: store the data, clean the page, drop its busy.  Part of a step."""
        k = self.k
        page = io.page
        pager = page.obj.pager
        assert pager is not None
        if pager.fails(page.pindex):
            io.error = True  # the page keeps its dirty flag: nothing was written
            pager.write_errors += 1
            if io.redirty:
                page.dirty = True
            if io.buffered:
                # brelse: "Failed write, redirty" -- the buffer, a delayed write
                # again; the page stays clean.
                pager.delayed[page.pindex] = None
        elif io.buffered:
            # Dirty was cleared at write start: a store since then left the page
            # dirty, and stays so.
            pager.disk[page.pindex] = io.data
            pager.delayed.pop(page.pindex, None)  # the page's buffer is written
        else:
            pager.stored[page.pindex] = io.data
            pager.disk[page.pindex] = io.data
            if pager.delayed:
                pager.delayed.pop(page.pindex, None)  # the page's buffer is written
            clear_modify(page)
            # vnode_pager_undirty_pages: dirty is cleared for the range
            # written, whatever happened to the page meanwhile.
            page.dirty = False
        io.done = True
        k.emit_io_done(page.obj.name, page.pindex, io.data, int(io.error), io)
        # A variant that broke the busy protocol may have dropped the write's busy
        # already: the disk goes on, and the checkers report what that lost.
        if self.aid in page.sowners:
            page.release_shared(self.aid)
        page.obj.pip_wakeup(self.aid)
        k.wakeup(io)

    def bdwrite(self, page: VmPage) -> None:
        """Delay the write of an exclusive-busy dirty page (bdwrite).  Part of a step.

        The buffer takes the data now (read(2) sees it); the page's dirty bits
        clear at write start (vfs_clean_pages_dirty_buf) and the buffer, marked
        delayed-write, carries the dirtiness.  The caller unbusies the page.
        """
        pager = page.obj.pager
        assert pager is not None
        pager.stored[page.pindex] = page.contents
        pager.delayed[page.pindex] = None
        clear_modify(page)
        page.dirty = False
        self.k.emit(Bdwrite(page.obj.name, page.pindex, page.contents))

    def push(self, pager: Pager, pindex: int) -> BufIo:
        """Start the write of a delayed-write buffer (bawrite).  Part of a step.

        The buffer is no longer delayed: it is in flight, and the disk writes
        what the buffer cache holds when it completes the write.
        """
        k = self.k
        del pager.delayed[pindex]
        self.seq += 1
        buf = BufIo(pager.name, pindex, k.curcpu(), self.aid, self.seq)
        self.bufq.append(buf)
        k.emit(BufWrite(pager.name, pindex, buf))
        k.wakeup(self)
        return buf

    def complete_buf(self, buf: BufIo) -> None:
        """Finish a buffer write: the buffer's contents reach the disk.  Part of a step.

        A failed write leaves the buffer dirty (brelse re-dirties it): the next
        VOP_FSYNC writes it again.
        """
        k = self.k
        pager = k.pagers[buf.obj]
        data = pager.stored[buf.pindex]
        if pager.fails(buf.pindex):
            buf.error = True
            pager.write_errors += 1
            pager.delayed[buf.pindex] = None
        else:
            pager.disk[buf.pindex] = data
        buf.done = True
        k.emit(BufDone(buf.obj, buf.pindex, data, int(buf.error), buf))
        k.wakeup(buf)

    def in_flight(self, name: str) -> Io | BufIo | None:
        """The oldest write of file ``name`` still queued, if any."""
        for io in self.queue:
            if io.page.obj.name == name:
                return io
        for buf in self.bufq:
            if buf.obj == name:
                return buf
        return None

    async def run(self) -> None:
        """The disk agent: complete queued writes, oldest first, forever.

        It starts asleep on the queue (the machine builder marks it so) and is
        woken by the first write issued.
        """
        k = self.k
        while True:
            while not self.queue and not self.bufq:
                await k.sleep(self)
            await k.kpoint()
            if self.bufq and (not self.queue or self.bufq[0].seq < self.queue[0].seq):
                self.complete_buf(self.bufq.pop(0))
                continue
            io = self.queue.pop(0)
            self.complete(io)
            # A multi-page write completes as one: the rest of its run in the same step.
            while io.cluster is not None and self.queue and self.queue[0].cluster is io.cluster:
                self.complete(self.queue.pop(0))

    async def wait(self, io: Io) -> None:
        """Sleep until ``io`` completes (the issuer of a synchronous write)."""
        k = self.k
        while not io.done:
            k.emit_wait("io", io.page.name)
            await k.sleep(io)

    async def wait_buf(self, buf: BufIo) -> None:
        """Sleep until buffer write ``buf`` completes."""
        k = self.k
        while not buf.done:
            k.emit_wait("io", f"{buf.obj}:{buf.pindex}")
            await k.sleep(buf)
