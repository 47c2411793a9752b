"""vm_map_clean and the page clean: the reference routines and their steps.

The routine is the class ``MapClean``, written as small steps (lock the map;
pass 1: validate the range, remove this map's mappings; pass 2: flush each
entry: busy a page, write-protect it, start its write; record the clean
generation; free pages) so that a variant can subclass it and change one step;
``reference_clean`` is an instance's ``clean`` method.  SEMANTICS.md §3-§4
describe the algorithm; the profiles differ as its §2 table says, one row per
field of the run's ``Profile`` (kern/profile.py), which the steps read:

* the map lock (``map_lock``) picks the routine: exclusive for the whole call
  (``clean_classic``, the man page and the 2003 code), or shared and dropped
  around each object's flush with a timestamp re-check (``sync_modern``,
  vm_map_sync);
* both routines follow the other rows: error codes, sub-maps refused or cleaned
  through, wired entries under invalidate, which objects are flushed, what
  invalidate frees, write errors, and what ``start == end`` means.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.kern.events import CleanGeneration, Invalid
from emulator.kern.kern_return import KernReturn
from emulator.kern.object import OBJT_DEVICE, OBJT_FILE
from emulator.kern.pager import Cluster, Io
from emulator.kern.param import PAGE_MASK, PAGE_SHIFT, round_page, trunc_page
from emulator.kern.pmap import fold_modified, remove_all, remove_write, write_protect
from emulator.kern.profile import AsyncWrite, Flushes, InvalidateFrees, MapLock

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.map import VmMap, VmMapEntry
    from emulator.kern.object import VmObject
    from emulator.kern.page import VmPage
    from emulator.kern.pager import BufIo


# -- error codes per profile (SEMANTICS.md §2) ----------------------------------------


def rv_no_entry(k: Kernel) -> KernReturn:
    """The code for "no entry contains start"."""
    return k.profile.no_entry


def rv_hole(k: Kernel) -> KernReturn:
    """The code for "hole inside the range"."""
    return k.profile.hole


def rv_submap(k: Kernel) -> KernReturn:
    """The code for "sub-map entry in range", in a profile that refuses sub-maps.

    A profile that cleans through sub-maps has no code for them: a routine that
    refuses one anyway is wrong whatever it returns (the return_code rule says
    so), and gets KERN_INVALID_ARGUMENT.
    """
    code = k.profile.submap
    return KernReturn.INVALID_ARGUMENT if code is None else code


# The 2003 HARDSEQ pass gives up after this many clean or absent pages in a row
# (EASY_SCAN_FACTOR: an eighth of the resident pages, at least 16).
HARDSEQ_SCAN_MIN = 16
HARDSEQ_SCAN_FACTOR = 8


def page_range(offset: int, size: int) -> tuple[int, int]:
    """Return the page indexes [first, last) covering bytes [offset, offset + size)."""
    return offset >> PAGE_SHIFT, (offset + size + PAGE_MASK) >> PAGE_SHIFT


async def sleep_on_busy(obj: VmObject, page: VmPage) -> None:
    """Sleep until ``page`` is unbusied, with its object unlocked for the sleep."""
    await obj.lock.unlock()
    await page.wait_unbusy()
    await obj.lock.lock()


class MapClean:
    """The reference clean of every profile, as steps a variant may override.

    Stateless: one instance serves every execution; each step finds the kernel
    through the structures it is given.
    """

    # -- the routine --------------------------------------------------------------

    async def clean(
        self, vm_map: VmMap, start: int, end: int, syncio: bool, invalidate: bool
    ) -> KernReturn:
        """vm_map_clean / vm_map_sync: the entry point, by the profile's map lock."""
        if vm_map.k.profile.map_lock is MapLock.SHARED_DROPPED:
            return await self.sync_modern(vm_map, start, end, syncio, invalidate)
        return await self.clean_classic(vm_map, start, end, syncio, invalidate)

    async def clean_classic(
        self, vm_map: VmMap, start: int, end: int, syncio: bool, invalidate: bool
    ) -> KernReturn:
        """Push the dirty pages of [start, end) to their pager (vm_map_clean).

        Holds the map lock exclusive for the whole call: one caller at a time.
        """
        k = vm_map.k
        await self.lock_map(vm_map)
        start, end = vm_map.clamp(start, end)
        entry = await vm_map.lookup_entry(start)
        if entry is None:
            await self.unlock_map(vm_map)
            return self.rv_no_entry(k)
        if start == end and k.profile.zero_length_whole_entry:
            start, end = entry.start, entry.end
        rv = await self.first_pass(k, vm_map, entry, start, end, invalidate)
        if rv != KernReturn.SUCCESS:
            await self.unlock_map(vm_map)
            return rv
        ok = await self.second_pass(k, vm_map, entry, start, end, syncio, invalidate)
        await self.unlock_map(vm_map)
        return KernReturn.SUCCESS if ok else k.profile.write_error

    async def sync_modern(
        self, vm_map: VmMap, start: int, end: int, syncio: bool, invalidate: bool
    ) -> KernReturn:
        """The modern routine (vm_map_sync): shared lock, dropped around each flush."""
        k = vm_map.k
        await vm_map.lock.slock()
        start, end = vm_map.clamp(start, end)
        first = await vm_map.lookup_entry(start)
        if first is None:
            await vm_map.lock.unlock()
            return k.profile.no_entry
        if start == end and k.profile.zero_length_whole_entry:
            # Odd semantics: an empty range means the whole entry containing start.
            start, end = first.start, first.end
        rv = self.validate_range(k, vm_map, first, end, invalidate)
        if rv != KernReturn.SUCCESS:
            await vm_map.lock.unlock()
            return rv
        if invalidate:
            await self.remove_mappings(vm_map, start, end)
        failed = False
        entry: VmMapEntry | None = first
        while entry is not None and entry.start < end:
            if entry.start > start:
                start = entry.start  # a hole appeared while unlocked: skip it silently
            offset = entry.offset + (start - entry.start)
            size = min(end, entry.end) - start
            obj, writable = entry.obj, entry.writable
            if entry.submap is not None:
                obj, offset, size, writable = await self.submap_target(entry, offset, size)
            if obj is not None:
                self.reference_object(obj)  # keep it across the unlock
            last_timestamp = await self.leave_map_for_flush(vm_map)
            if not await self.object_sync(k, obj, offset, size, writable, syncio, invalidate):
                failed = True
            start += size
            if obj is not None:
                self.deallocate_object(k, obj)
            entry = await self.return_to_map(vm_map, entry, last_timestamp, start)
        await vm_map.lock.unlock()
        return k.profile.write_error if failed else KernReturn.SUCCESS

    # -- map-level steps --------------------------------------------------------------

    async def lock_map(self, vm_map: VmMap) -> None:
        await vm_map.lock.xlock()

    async def unlock_map(self, vm_map: VmMap) -> None:
        await vm_map.lock.unlock()

    async def first_pass(
        self, k: Kernel, vm_map: VmMap, first: VmMapEntry, start: int, end: int,
        invalidate: bool,
    ) -> KernReturn:
        """Pass 1 (map locked exclusive): check the range, then unmap it if invalidating.

        The map must be locked exclusive.  Nothing changes unless the whole
        range is valid; then this map's mappings of it go (vm_map_clean's
        pmap_remove between its two passes), folding modified bits.
        """
        rv = self.validate_range(k, vm_map, first, end, invalidate)
        if rv == KernReturn.SUCCESS and invalidate:
            await self.remove_mappings(vm_map, start, end)
        return rv

    async def second_pass(
        self, k: Kernel, vm_map: VmMap, first: VmMapEntry, start: int, end: int,
        syncio: bool, invalidate: bool,
    ) -> bool:
        """Pass 2 (map locked exclusive): flush, and maybe free, each entry's pages in turn.

        The map stays locked exclusive from pass 1 on, so ``first`` and its
        successors are the entries pass 1 checked.  Returns False if a write
        failed.
        """
        ok = True
        cur: VmMapEntry | None = first
        while cur is not None and cur.start < end:
            offset = cur.offset + (start - cur.start)
            size = min(end, cur.end) - start
            obj, writable, flush_size = cur.obj, cur.writable, size
            if cur.submap is not None:  # pass 1 let it through: cleaned through
                obj, offset, flush_size, writable = await self.submap_target(cur, offset, size)
            if not await self.flush_entry(k, obj, offset, flush_size, writable, syncio,
                                          invalidate):
                ok = False
            start += size
            cur = vm_map.succ(cur)
        return ok

    def rv_no_entry(self, k: Kernel) -> KernReturn:
        return rv_no_entry(k)

    def rv_hole(self, k: Kernel) -> KernReturn:
        return rv_hole(k)

    def rv_submap(self, k: Kernel) -> KernReturn:
        return rv_submap(k)

    def validate_range(
        self, k: Kernel, vm_map: VmMap, first: VmMapEntry, end: int, invalidate: bool
    ) -> KernReturn:
        """Pass 1: refuse holes, and sub-maps or wired entries under invalidate if the
        profile does.

        The map must be locked.  No side effects.
        """
        profile = k.profile
        cur: VmMapEntry | None = first
        while cur is not None and cur.start < end:
            if cur.submap is not None and profile.submap is not None:
                return self.rv_submap(k)
            if invalidate and cur.wired and profile.wired_invalidate is not None:
                return profile.wired_invalidate
            nxt = vm_map.succ(cur)
            if end > cur.end and (nxt is None or nxt.start != cur.end):
                return self.rv_hole(k)
            cur = nxt
        return KernReturn.SUCCESS

    async def remove_mappings(self, vm_map: VmMap, start: int, end: int) -> None:
        """Remove this map's page-table entries for [start, end), folding modified bits."""
        await vm_map.pmap.remove(trunc_page(start) >> PAGE_SHIFT, round_page(end) >> PAGE_SHIFT)

    async def submap_target(
        self, entry: VmMapEntry, offset: int, size: int
    ) -> tuple[VmObject | None, int, int, bool]:
        """Find what a sub-map entry maps at ``offset``: (object, its offset, size
        clipped to the inner entry, writable).  The outer map must be locked."""
        sub = entry.submap
        assert sub is not None
        await sub.lock.slock()
        tentry = await sub.lookup_entry(offset)
        if tentry is None:
            target: tuple[VmObject | None, int, int, bool] = (None, offset, size, False)
        else:
            target = (tentry.obj, tentry.offset + (offset - tentry.start),
                      min(size, tentry.end - offset), tentry.writable)
        await sub.lock.unlock()
        return target

    def reference_object(self, obj: VmObject) -> None:
        """Take a reference on ``obj`` (vm_object_reference): a munmap while the map is
        unlocked cannot tear it down under the flush."""
        obj.ref_count += 1

    def deallocate_object(self, k: Kernel, obj: VmObject) -> None:
        """Drop the reference (vm_object_deallocate): the last one tears ``obj`` down."""
        k.release_object(obj)

    async def leave_map_for_flush(self, vm_map: VmMap) -> int:
        """How the map is held across one object's flush (modern): the shared lock is
        dropped, so the flush sleeps on pages and I/O without it.  Returns the map's
        timestamp, for ``return_to_map`` to re-check."""
        last_timestamp = vm_map.lock.timestamp
        await vm_map.lock.unlock()
        return last_timestamp

    async def return_to_map(
        self, vm_map: VmMap, entry: VmMapEntry, last_timestamp: int, start: int
    ) -> VmMapEntry | None:
        """After the flush (modern): lock the map shared again and find the next entry."""
        await vm_map.lock.slock()
        return self.relock_next(vm_map, entry, last_timestamp, start)

    def relock_next(
        self, vm_map: VmMap, entry: VmMapEntry, last_timestamp: int, start: int
    ) -> VmMapEntry | None:
        """After re-locking (modern): the next entry, looked up again if the map changed."""
        if last_timestamp == vm_map.lock.timestamp:
            return vm_map.succ(entry)
        return vm_map.entry_containing(start) or vm_map.first_entry_after(start)

    def bottom_object(
        self, k: Kernel, obj: VmObject | None, offset: int
    ) -> tuple[VmObject | None, int]:
        """Follow the backing chain to its bottom, adjusting the byte offset (in the
        profile's order: the 2003 walk adds the offset of the object it steps to)."""
        steps_first = k.profile.chain_walk_steps_first
        while obj is not None and obj.backing is not None:
            k.touch_object(obj)
            if steps_first:
                obj = obj.backing
                offset += obj.backing_offset << PAGE_SHIFT
                continue
            offset += obj.backing_offset << PAGE_SHIFT
            obj = obj.backing
        if obj is not None:
            k.touch_object(obj)
        return obj, offset

    async def flush_entry(
        self,
        k: Kernel,
        obj: VmObject | None,
        offset: int,
        size: int,
        writable: bool,
        syncio: bool,
        invalidate: bool,
    ) -> bool:
        """Pass 2 for one entry (map locked exclusive): flush, then maybe free, its pages.

        The map stays locked.  Returns False if a write failed.
        """
        return await self.sync_pages(k, obj, offset, size, writable, syncio, invalidate)

    async def object_sync(
        self,
        k: Kernel,
        obj: VmObject | None,
        offset: int,
        size: int,
        writable: bool,
        syncio: bool,
        invalidate: bool,
    ) -> bool:
        """Flush (and maybe free) an object's pages, map unlocked (vm_object_sync).

        Returns False if a write failed.
        """
        return await self.sync_pages(k, obj, offset, size, writable, syncio, invalidate)

    async def sync_pages(
        self,
        k: Kernel,
        obj: VmObject | None,
        offset: int,
        size: int,
        writable: bool,
        syncio: bool,
        invalidate: bool,
    ) -> bool:
        """Follow the chain to the bottom object, flush its file pages in range if
        the profile flushes it, then free them if invalidating.  Returns False if
        a write failed."""
        bottom, offset = self.bottom_object(k, obj, offset)
        if bottom is None:
            return True  # an entry with no object: nothing was ever touched
        first, last = page_range(offset, size)
        ok = True
        if bottom.kind == OBJT_FILE and self.flushes(k, bottom, writable):
            if (syncio and not invalidate and k.profile.whole_file_sync_fsyncs
                    and offset == 0 and size >> PAGE_SHIFT == bottom.size):
                ok = await self.flush_object_fsync(bottom, first, last)
            else:
                ok = await self.flush_object(bottom, first, last, syncio or invalidate)
        if invalidate and bottom.kind in (OBJT_FILE, OBJT_DEVICE):
            await self.remove_object_pages(k, bottom, first, last)
        return ok

    def flushes(self, k: Kernel, bottom: VmObject, writable: bool) -> bool:
        """Whether the profile flushes file object ``bottom`` mapped by a
        (``writable``) entry: the entry's protection or the object's dirtiness."""
        if k.profile.flushes is Flushes.WRITABLE_ENTRIES:
            return writable
        return bottom.might_be_dirty()

    async def flush_object(self, obj: VmObject, first: int, last: int, sync: bool,
                           nosync: bool = False) -> bool:
        """Clean pages [first, last) of a file object under its vnode and object locks
        (``nosync``: OBJPC_NOSYNC, the syncer's; msync's vm_object_sync never passes it)."""
        assert obj.vnode is not None
        await obj.vnode.lock()
        await obj.lock.lock()
        ok = await self.page_clean(obj, first, last, sync, nosync)
        await obj.lock.unlock()
        await obj.vnode.unlock()
        return ok

    async def flush_object_fsync(self, obj: VmObject, first: int, last: int) -> bool:
        """vm_object_sync's whole-file MS_SYNC (FIDELITY.md D10): under the vnode lock,
        an asynchronous clean of the whole object (clustering allowed, no rescan),
        then VOP_FSYNC(MNT_WAIT).  False if a write or the fsync failed."""
        assert obj.vnode is not None and obj.pager is not None
        await obj.vnode.lock()
        since = obj.pager.write_errors
        await obj.lock.lock()
        ok = await self.page_clean(obj, first, last, False)
        await obj.lock.unlock()
        if not await self.vop_fsync(obj, since):
            ok = False
        await obj.vnode.unlock()
        # A write of the file that failed while the vnode was held, up to its release,
        # fails the call (what return_code expects of this path).
        return ok and obj.pager.write_errors == since

    async def fsync(self, obj: VmObject) -> bool:
        """fsync(2) on a file (kern_fsync): under the vnode lock, an asynchronous clean
        of every page of its object (vm_object_page_clean(obj, 0, 0, 0)), then
        VOP_FSYNC(MNT_WAIT).  The clean's own result is ignored, as kern_fsync
        does: a write error reaches the caller through VOP_FSYNC.  False: EIO."""
        assert obj.vnode is not None and obj.pager is not None
        await obj.vnode.lock()
        since = obj.pager.write_errors
        await obj.lock.lock()
        await self.page_clean(obj, 0, obj.size, False)
        await obj.lock.unlock()
        ok = await self.vop_fsync(obj, since)
        await obj.vnode.unlock()
        return ok

    async def vop_fsync(self, obj: VmObject, since: int) -> bool:
        """VOP_FSYNC(MNT_WAIT) on a file's vnode (locked): start the write of every
        delayed-write buffer (bawrite), then wait until no write of the file is in
        flight (bufobj_wwait).  False if a write of the file failed since the
        caller's call began (``since``: the file's count of failed writes then)."""
        k = obj.k
        pager = obj.pager
        assert pager is not None
        await self.push_delayed(obj)
        while (io := k.disk.in_flight(obj.name)) is not None:
            await self.wait_write(k, io)
        return pager.write_errors == since

    async def push_delayed(self, obj: VmObject) -> None:
        """Start the write of each delayed-write buffer of ``obj``'s file (vnode
        locked), one per step, oldest first."""
        k = obj.k
        pager = obj.pager
        assert pager is not None
        for pindex in list(pager.delayed):
            await k.kpoint()
            if pindex in pager.delayed:
                k.disk.push(pager, pindex)

    async def wait_write(self, k: Kernel, io: Io | BufIo) -> None:
        """Sleep until a write in flight completes."""
        if isinstance(io, Io):
            await k.disk.wait(io)
        else:
            await k.disk.wait_buf(io)

    async def remove_object_pages(self, k: Kernel, obj: VmObject, first: int, last: int) -> None:
        """Free pages [first, last) under the object lock (the profile decides which)."""
        await obj.lock.lock()
        await self.page_remove(obj, first, last, self.clean_only(k, obj))
        await obj.lock.unlock()

    def clean_only(self, k: Kernel, obj: VmObject) -> bool:
        """Whether invalidate keeps a file's pages found dirty (the profile says)."""
        frees = k.profile.invalidate_frees
        return obj.kind == OBJT_FILE and frees is InvalidateFrees.CLEAN_AFTER_FLUSH

    # -- page-level steps ---------------------------------------------------------------

    async def page_clean(self, obj: VmObject, start: int, end: int, sync: bool,
                         nosync: bool = False) -> bool:
        """Write the dirty pages of [start, end) to the pager (vm_object_page_clean).

        The object must be locked; it is dropped around sleeps.  Each page is
        busied before its dirty state is read, write-protected everywhere with
        its modified bits folded in one step, and written if dirty.  A
        synchronous clean rescans when ``generation`` moved.  With ``nosync``
        (OBJPC_NOSYNC) a PGA_NOSYNC page is passed over, neither write-protected
        nor written, and the object stays might-be-dirty
        (vm_object_page_remove_write: ``*allclean = FALSE``).  Returns False if
        a write failed.
        """
        k = obj.k
        if k.profile.flag_page_clean:
            return await self.page_clean_2003(obj, start, end, sync, nosync)
        k.touch_object(obj)
        if not obj.might_be_dirty() or not obj.pages:
            return True
        allclean = start == 0 and end >= obj.size
        res = True
        while True:
            curgen = obj.generation
            rescan = False
            page = obj.find_least(start)
            while page is not None and page.pindex < end:
                pi = page.pindex
                if not page.valid:
                    page = obj.find_least(pi + 1)
                    continue
                if not await self.busy_page(obj, page):
                    if obj.generation != curgen and sync:
                        rescan = True
                        break
                    page = obj.find_least(pi)
                    continue
                if nosync and page.nosync:
                    allclean = allclean and not self.nosync_leaves_dirty()
                    await page.xunbusy()
                    page = obj.find_least(pi + 1)
                    continue
                await self.protect(page)
                if not page.dirty:
                    await page.xunbusy()
                    page = obj.find_least(pi + 1)
                    continue
                ok, run = await self.flush_run(obj, page, sync, nosync)
                if not ok:
                    res = False
                    allclean = False
                if not sync and not self.delays_writes(k) and not (
                        k.profile.write_clears_dirty_at_start):
                    allclean = False  # the page is clean only when its write completes
                if obj.generation != curgen and sync:
                    rescan = True
                    break
                page = obj.find_least(pi + run)
            if not rescan:
                break
        if allclean:
            self.set_clean_generation(obj, curgen)
        return res

    def nosync_leaves_dirty(self) -> bool:
        """Does a NOSYNC page passed over keep the object might-be-dirty?  (It must:
        the page stays dirty and writable, so no fault will say so again.)"""
        return True

    async def busy_page(self, obj: VmObject, page: VmPage) -> bool:
        """Busy ``page``; if it is busy, sleep (object unlocked) and return False."""
        if await page.try_xbusy():
            return True
        await sleep_on_busy(obj, page)
        return False

    async def protect(self, page: VmPage) -> None:
        """Revoke write access everywhere and fold modified bits, in one step."""
        await remove_write(page.k, page)

    async def flush_run(self, obj: VmObject, page: VmPage, sync: bool,
                        nosync: bool = False) -> tuple[bool, int]:
        """Write an exclusive-busy dirty page, alone or with its neighbours (object
        locked).  Returns (no write error reported, how many pages from ``page`` on
        the write covered): the page clean goes on after them."""
        if obj.k.cluster == 1:
            return await self.flush_page(obj, page, sync), 1
        return await self.collect_flush(obj, page, sync, nosync)

    async def collect_flush(self, obj: VmObject, page: VmPage, sync: bool,
                            nosync: bool = False) -> tuple[bool, int]:
        """Cluster ``page`` with its dirty neighbours and write them in one pager call
        (vm_object_page_collect_flush, then vm_pageout_flush).  Object locked.

        The run grows forward, then backward, one resident neighbour at a time, up
        to the kernel's cluster size, whatever the clean's range: each neighbour is
        try-busied and write-protected, and the run stops at the first missing,
        busy or clean one, or (``nosync``) a PGA_NOSYNC one, left for the page clean's
        own test.  A synchronous write is waited for; its error is the
        clean's only if it hit the requested page or a page after it
        (``cluster_eio``): a failed backward neighbour stays dirty, unreported.
        Returns (no error reported, pages written from ``page`` on).
        """
        k = obj.k
        run = [page]
        while len(run) < k.cluster:
            nb = obj.lookup_page(run[-1].pindex + 1)
            if nb is None or (nosync and nb.nosync) or not await self.collect_neighbour(nb):
                break
            run.append(nb)
        mreq = 0
        while len(run) < k.cluster:
            nb = obj.lookup_page(run[0].pindex - 1)
            if nb is None or (nosync and nb.nosync) or not await self.collect_neighbour(nb):
                break
            run.insert(0, nb)
            mreq += 1
        return await self.write_run(obj, run, mreq, sync), len(run) - mreq

    async def collect_neighbour(self, page: VmPage) -> bool:
        """Take a neighbour into the run: try-busy it, write-protect it with its
        modified bits folded (vm_object_page_remove_write), keep it if dirty.
        Never sleeps: a busy neighbour ends the run, as does a clean one (unbusied)."""
        if not await page.try_xbusy():
            return False
        await self.protect(page)
        if not page.dirty:
            await page.xunbusy()
            return False
        return True

    async def flush_page(self, obj: VmObject, page: VmPage, sync: bool) -> bool:
        """Write an exclusive-busy page alone; wait for a synchronous write.  Object
        locked.  Returns False on a write error."""
        return await self.write_run(obj, [page], 0, sync)

    async def write_run(self, obj: VmObject, run: list[VmPage], mreq: int, sync: bool) -> bool:
        """Write exclusive-busy dirty pages, contiguous and lowest index first, in one
        pager call (vm_pageout_flush); ``run[mreq]`` is the page the clean asked for.
        Wait for a synchronous write.  Object locked.

        A written page stays busy until the write completes; ``dirty`` clears only
        then.  A write the clean delays (``writes_delayed``: bdwrite) leaves the
        pages clean and unbusied at once, their data in the file's buffers.
        Returns False if the write failed on the requested page or a page after it
        (``cluster_eio``); a failed backward neighbour stays dirty, unreported.
        """
        k = obj.k
        await k.kpoint()
        for p in run:
            k.touch_page(p)
        if self.writes_delayed(k, sync):
            for p in run:  # one delayed write of the run's buffers
                self.delay_write(k, p)
            for p in run:
                await p.xunbusy()
            return True
        cluster: Cluster | None = None
        if len(run) == 1:
            ios = [self.start_write(k, run[0], sync)]
        else:
            cluster = self.start_cluster(k, run, mreq, sync)
            ios = cluster.ios
        if not sync:
            return True
        await obj.lock.unlock()
        for io in ios:
            await k.disk.wait(io)
        await obj.lock.lock()
        for io in ios:
            if io.error:
                self.write_failed(obj, io)
        return not (ios[0].error if cluster is None else self.cluster_eio(cluster))

    def write_failed(self, obj: VmObject, io: Io) -> None:
        """A synchronous page write of this clean failed (object locked again): the
        page stays dirty, or its buffer is a delayed write again (brelse's "Failed
        write, redirty").  Nothing to do here; a variant may mishandle it."""

    def start_cluster(self, k: Kernel, pages: list[VmPage], mreq: int, sync: bool) -> Cluster:
        """Queue the run's one write (vm_pageout_flush -> VOP_PUTPAGES), page by page
        through ``start_write``.  Part of the caller's step; every page stays busy
        until the write completes (and dirty, unless the profile clears it at write
        start)."""
        cluster = Cluster(mreq)
        for page in pages:
            self.start_write(k, page, sync, cluster)
        return cluster

    def cluster_eio(self, cluster: Cluster) -> bool:
        """Whether a completed synchronous run reports EIO: a page at or after the
        requested one failed (vm_pageout_flush: ``i >= mreq && i - mreq < runlen``)."""
        return any(io.error for io in cluster.ios[cluster.mreq:])

    def start_write(self, k: Kernel, page: VmPage, sync: bool,
                    cluster: Cluster | None = None) -> Io:
        """Queue the page's write, alone or as part of ``cluster``'s pager call
        (vm_pageout_flush).  Part of the caller's step.

        The page stays busy until the write completes, and ``dirty`` set until
        then unless the profile clears it at write start.
        """
        return k.disk.issue(page, sync, cluster)

    def writes_delayed(self, k: Kernel, sync: bool) -> bool:
        """Whether this clean's writes are delayed (bdwrite): an asynchronous clean's,
        where the profile delays them."""
        return not sync and self.delays_writes(k)

    def delays_writes(self, k: Kernel) -> bool:
        """Whether an asynchronous clean's writes are delayed (bdwrite) in this profile."""
        return k.profile.async_write is AsyncWrite.BDWRITE

    def delay_write(self, k: Kernel, page: VmPage) -> None:
        """Hand an exclusive-busy dirty page to its buffer, delayed (bdwrite): the page
        is clean, the buffer dirty.  Part of the caller's step; the page stays busy."""
        k.disk.bdwrite(page)

    def set_clean_generation(self, obj: VmObject, curgen: int) -> None:
        """Record that the object was clean as of generation ``curgen``."""
        obj.clean_generation = curgen
        obj.k.emit(CleanGeneration(obj.name, curgen))

    # -- the 2003 page clean (Profile.flag_page_clean; FIDELITY.md D2) -------------------

    async def page_clean_2003(self, obj: VmObject, start: int, end: int, sync: bool,
                              nosync: bool = False) -> bool:
        """vm_object_page_clean as FreeBSD 5 wrote it.  The object must be locked.

        Nothing happens unless OBJ_MIGHTBEDIRTY is set.  First the HARDSEQ pass:
        each resident page of the range in index order is tested dirty *without*
        busying it, and a dirty one is written (``collect_flush_2003``); if that
        reached the end of a range smaller than the object, done.  Otherwise every
        page of the object is marked PG_CLEANCHK and write-protected in one step,
        OBJ_MIGHTBEDIRTY is cleared if the range is the whole object -- before any
        page is written, and a failed write never sets it again -- and the marked
        pages of the range are scanned and written, from the start again whenever
        a page was inserted or removed meanwhile (``memq_generation``).  The
        scan goes in index order (2003 walked memq in insertion order, moving on
        to the next index after a write: SOFTSEQ).  Returns False if a write
        failed (the 2003 routine returned nothing; callers ignore it as that
        profile's ``write_error`` says).  With ``nosync`` (OBJPC_NOSYNC, the
        syncer's) a PG_NOSYNC page is passed over by both passes, is not
        write-protected, and keeps OBJ_MIGHTBEDIRTY set (``clearobjflags = 0``).
        """
        k = obj.k
        k.touch_object(obj)
        if not obj.might_be_dirty():
            return True
        end = min(end, obj.size)
        whole = start == 0 and end == obj.size
        ok = True
        # HARDSEQ: a caller that msyncs a range it knows dirty avoids the object scan.
        scanreset = max(HARDSEQ_SCAN_MIN, len(obj.pages) // HARDSEQ_SCAN_FACTOR)
        scanlimit = scanreset
        tscan = start
        while tscan < end:
            curgen = obj.memq_generation
            page = obj.lookup_page(tscan)
            if (page is None or not page.valid or not await self.test_dirty(page)
                    or (nosync and page.nosync)):
                scanlimit -= 1
                if scanlimit == 0:
                    break
                tscan += 1
                continue
            scanlimit = scanreset
            n, wrote = await self.collect_flush_2003(obj, page, curgen, sync)
            ok = ok and wrote
            tscan += n
        if tscan >= end and not whole:
            return ok
        clearobjflags = await self.mark_cleanchk(obj, nosync)
        if whole and clearobjflags:
            obj.clear_might_be_dirty()
        while True:
            curgen = obj.memq_generation
            rescan = False
            page = obj.find_least(0)
            while page is not None:
                pi = page.pindex
                if not page.cleanchk or not start <= pi < end or not page.valid:
                    page.cleanchk = False
                    page = obj.find_least(pi + 1)
                    continue
                if not await self.test_dirty(page) or (nosync and page.nosync):
                    page.cleanchk = False
                    page = obj.find_least(pi + 1)
                    continue
                n, wrote = await self.collect_flush_2003(obj, page, curgen, sync)
                ok = ok and wrote
                if n == 0 or obj.memq_generation != curgen:
                    rescan = True
                    break
                page = obj.find_least(pi + n)
            if not rescan:
                return ok

    async def test_dirty(self, page: VmPage) -> bool:
        """vm_page_test_dirty: fold the page's modified bits into ``dirty``, without
        busying or write-protecting it; return whether it is dirty.  One step, and
        the caller's busy test that follows is part of it (no sleep between: Giant)."""
        k = page.k
        await k.kpoint()
        k.touch_page(page)
        fold_modified(page)
        return page.dirty

    async def mark_cleanchk(self, obj: VmObject, nosync: bool = False) -> bool:
        """Mark every page of ``obj`` PG_CLEANCHK and write-protect it, in one step:
        the 2003 loop never sleeps, so under Giant no kernel path runs inside it.
        With ``nosync`` a PG_NOSYNC page, dirty or not, is left writable; return
        False then (the object flags must stay), True otherwise."""
        k = obj.k
        await k.kpoint()
        k.touch_object(obj)
        clearobjflags = True
        for page in obj.pages.values():
            page.cleanchk = True
            if nosync and page.nosync:
                clearobjflags = clearobjflags and not self.nosync_leaves_dirty()
            else:
                write_protect(k, page)
        return clearobjflags

    async def collect_flush_2003(
        self, obj: VmObject, page: VmPage, curgen: int, sync: bool
    ) -> tuple[int, bool]:
        """vm_object_page_collect_flush as 2003 wrote it (object locked): wait while
        the page is busy (exclusive or soft), giving up with (0, True) if a page was
        inserted or removed meanwhile; else cluster it with its neighbours and write
        the run in one pager call (``pageout_flush_2003``).

        Returns (how many pages from ``page`` on the scan may skip, no write error
        reported).  The page found dirty before the wait is written without testing
        it again (a page cleaned meanwhile is written once more: harmless).  A page of
        the run still dirty after its write (it failed, or a fault re-dirtied it after
        the write) is write-protected and marked PG_CLEANCHK again, left for this
        scan's next pass; the count stops at the first such forward page, so the
        scan goes on from it.
        """
        while page.is_busy():
            await sleep_on_busy(obj, page)
            if obj.memq_generation != curgen:
                return 0, True
        k = obj.k
        await k.kpoint()
        run, mreq = self.collect_run_2003(obj, page)
        ok = await self.pageout_flush_2003(obj, run, mreq, sync)
        n = len(run) - mreq
        for i, p in enumerate(run):
            if p.dirty and not p.freed:
                write_protect(k, p)
                p.cleanchk = True
                if i > mreq:
                    n = min(n, i - mreq)
        return n, ok

    def collect_run_2003(self, obj: VmObject, page: VmPage) -> tuple[list[VmPage], int]:
        """The run of ``page``: its neighbours forward, then backward, up to the
        kernel's cluster size in all (vm_pageout_page_count), whatever the clean's
        range; return it lowest index first with the position of ``page``.  Part of
        the caller's step: the 2003 loop never sleeps (Giant)."""
        count = obj.k.cluster
        forward: list[VmPage] = []
        for i in range(1, count):
            nb = obj.lookup_page(page.pindex + i)
            if nb is None or not self.neighbour_2003(nb):
                break
            forward.append(nb)
        backward: list[VmPage] = []
        for i in range(1, count - len(forward)):
            nb = obj.lookup_page(page.pindex - i) if page.pindex >= i else None
            if nb is None or not self.neighbour_2003(nb):
                break
            backward.append(nb)
        return [*reversed(backward), page, *forward], len(backward)

    def neighbour_2003(self, page: VmPage) -> bool:
        """Whether the 2003 collect takes a neighbour into the run: not busy
        (exclusive or soft), still marked PG_CLEANCHK by this scan, and dirty once
        its modified bits are folded (vm_page_test_dirty, no write-protection: the
        pager call does that).  A clean one loses PG_CLEANCHK.  The HARDSEQ pass
        marks nothing, so there only pages a scan left marked are taken (2006 added
        VM_PAGER_IGNORE_CLEANCHK to cluster there too).  Part of a step."""
        if page.is_busy() or not page.cleanchk:
            return False
        page.k.touch_page(page)
        fold_modified(page)
        if not (page.dirty and page.valid):
            page.cleanchk = False
            return False
        return True

    async def pageout_flush_2003(
        self, obj: VmObject, run: list[VmPage], mreq: int, sync: bool
    ) -> bool:
        """The 2003 vm_pageout_flush of a run (object locked), part of the caller's
        step: soft-busy and write-protect each page and start one write of them all;
        no exclusive busy.

        An asynchronous write leaves the pages clean at once where the profile says
        so (the vnode pager's VM_PAGER_OK); a synchronous one is waited for, the
        object unlocked.  Returns False if the write failed on ``run[mreq]`` or a
        page after it (``cluster_eio``; 2003 returned nothing, and freebsd5's
        ``write_error`` ignores it).
        """
        k = obj.k
        for p in run:
            p.cleanchk = False
            write_protect(k, p)
        cluster: Cluster | None = None
        if len(run) == 1:
            ios = [k.disk.issue(run[0], sync, soft_busy=True)]
        else:
            cluster = k.disk.issue_cluster(run, mreq, sync, soft_busy=True)
            ios = cluster.ios
        if not sync:
            if k.profile.async_write_undirties_at_issue:
                for io in ios:
                    io.page.dirty = False
                    io.redirty = True
            return True
        await obj.lock.unlock()
        for io in ios:
            await k.disk.wait(io)
        await obj.lock.lock()
        return not (ios[0].error if cluster is None else self.cluster_eio(cluster))

    async def page_remove(self, obj: VmObject, start: int, end: int, clean_only: bool) -> None:
        """Free the unwired resident pages of [start, end) (vm_object_page_remove).

        The object must be locked.  A busy page is waited for, never freed.
        With ``clean_only`` a page found dirty (after write-protecting it) stays.
        A wired page is never freed; a profile that discards wired pages unmaps
        one and sets it invalid unless ``clean_only`` (``discard_wired``); one that
        unmaps them busies it and removes every mapping of it (``unmap_wired``).
        """
        k = obj.k
        k.touch_object(obj)
        page = obj.find_least(start)
        while page is not None and page.pindex < end:
            pi = page.pindex
            if self.spares_wired(page):
                if not clean_only and k.profile.invalidate_discards_wired and page.valid:
                    if page.is_busy():
                        # 2003 did not wait here; waiting (as today's code does) keeps
                        # a fault that busied the page from mapping discarded contents.
                        await sleep_on_busy(obj, page)
                        page = obj.find_least(pi)
                        continue
                    await self.discard_wired(obj, page)
                elif k.profile.invalidate_unmaps_wired:
                    if not await self.take_for_removal(page):
                        await sleep_on_busy(obj, page)
                        page = obj.find_least(pi)
                        continue
                    await self.unmap_wired(page)
                    await page.xunbusy()
                page = obj.find_least(pi + 1)
                continue
            if not await self.take_for_removal(page):
                await sleep_on_busy(obj, page)
                page = obj.find_least(pi)
                continue
            if clean_only:
                await remove_write(k, page)
                if page.dirty:
                    await page.xunbusy()
                    page = obj.find_least(pi + 1)
                    continue
            await remove_all(k, page)
            await k.kpoint()
            obj.free_page(page)
            page = obj.find_least(pi + 1)


    def spares_wired(self, page: VmPage) -> bool:
        """May ``page_remove`` not free this page because it is wired?  (Its wire-count
        test; a variant that frees wired pages answers no.)"""
        return page.wire_count > 0

    async def take_for_removal(self, page: VmPage) -> bool:
        """Busy ``page`` for ``page_remove``, or say it is busy and must be waited for
        (vm_page_sleep_busy, then busying it).  Object locked."""
        return await page.try_xbusy()

    async def unmap_wired(self, page: VmPage) -> None:
        """Remove every mapping of an exclusive-busy wired page, every process's and
        wired ones too, folding their modified bits (today's vm_object_page_remove:
        ``pmap_remove_all`` for a wired page of a referenced object).  The page, its
        contents and its wiring stay; the next access through any mapping faults."""
        await remove_all(page.k, page)

    async def discard_wired(self, obj: VmObject, page: VmPage) -> None:
        """Unmap a wired page everywhere and discard its contents (``valid = 0``),
        without busying it, as the 2003 page remove did.  Object locked.

        The page stays resident and wired; the next access reads it from the
        pager again, so a store it held that the pager has not is gone.  A file
        page only: a device page's memory is the device's.
        """
        if obj.pager is None:
            return
        await remove_all(obj.k, page)
        dirty = page.dirty
        page.valid = False
        # 2003 left the dirty bits, but every clean tests (dirty & valid): nothing
        # writes an invalid page, here nor in a neighbour's cluster.
        page.dirty = False
        obj.k.emit(Invalid(obj.name, page.pindex, int(dirty), page))


REFERENCE = MapClean()
reference_clean = REFERENCE.clean
