"""The page-fault path (sys/vm/vm_fault.c), as a class whose steps a variant overrides.

``Fault.fault(map, va, write)`` resolves one fault:

1. lock the map shared and find the entry (through a sub-map if need be);
2. find or page in the page, busy it exclusive -- if it is busy, drop every
   lock, sleep until it is not, and restart the whole fault;
3. for a write: bump the object's ``generation`` and set ``dirty``;
4. enter the mapping (writable for a write fault, read-only otherwise), unbusy,
   unlock the map.

Lock order: map -> vnode -> object -> page busy.  A page-in takes the vnode
lock *before* busying the new page; no one sleeps for the vnode lock holding a
busy page.  A private (copy-on-write) mapping maps its file's object read-only
until its first write fault, which shadows the entry (map locked exclusive) with
an anonymous object over the file; a write then copies the file page into the
shadow.

Mutants of the fault (SEMANTICS.md §7) subclass ``Fault`` and override one step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.kern.events import Cow, Writeable
from emulator.kern.kern_return import (
    KERN_INVALID_ADDRESS,
    KERN_PROTECTION_FAILURE,
    KERN_SUCCESS,
    KernReturn,
)
from emulator.kern.param import PAGE_SHIFT
from emulator.kern.pmap import fold_modified
from emulator.kern.syscalls import shadow_entry, top_object

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.map import VmMap, VmMapEntry
    from emulator.kern.object import VmObject
    from emulator.kern.page import VmPage


class FaultState:
    """What one fault attempt holds (struct faultstate): its locked maps, whether
    a page-in dropped them, their timestamps then, and the entry's protection."""

    __slots__ = ("locked", "nosync", "stamps", "unlocked", "writable")

    def __init__(self, locked: list[VmMap]) -> None:
        self.locked = locked
        self.stamps: list[int] = []
        self.unlocked = False
        self.writable = False
        self.nosync = False  # the entry's MAP_ENTRY_NOSYNC


class Fault:
    """The reference fault handler."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        # The fault's tail (enter, unbusy, unlock the maps) runs inline, one coroutine
        # level less at every switch in it, unless a subclass overrides one of those
        # steps: then it calls its methods.
        kind = type(self)
        self.plain_tail = (kind.enter is Fault.enter and kind.unbusy is Fault.unbusy
                           and kind.unlock_maps is Fault.unlock_maps)

    async def fault(self, vm_map: VmMap, va: int, write: bool) -> KernReturn:
        """Resolve a fault at ``va``; return KERN_SUCCESS or why not.

        Each turn of the loop is one attempt; a busy page (or a map changed
        while unlocked for a page-in) restarts it from the start.  The attempt
        is written out here rather than called: every switch of agents inside
        a fault passes one coroutine frame less (BENCHMARKS.md, issue 12).
        """
        while True:
            locked: list[VmMap] = [vm_map]
            fs = FaultState(locked)
            await vm_map.lock.slock()
            entry = await vm_map.lookup_entry(va)
            eva = va
            if entry is not None and entry.submap is not None:
                sub = entry.submap
                eva = entry.offset + (va - entry.start)
                await sub.lock.slock()
                locked.append(sub)
                entry = await sub.lookup_entry(eva)
            if entry is None:
                await self.unlock_maps(locked)
                return KERN_INVALID_ADDRESS
            if write and not entry.writable:
                await self.unlock_maps(locked)
                return KERN_PROTECTION_FAILURE
            if write and entry.needs_copy:
                # A private mapping's first write: shadow the entry, map locked
                # exclusive, then fault again (vm_map_lookup's upgrade and retry).
                await self.unlock_maps(locked)
                await self.shadow(vm_map, va)
                continue
            obj = self.entry_object(entry)
            pindex = (entry.offset + (eva - entry.start)) >> PAGE_SHIFT
            vpn = va >> PAGE_SHIFT
            if obj.backing is not None:
                page, wait = await self.get_shadow_page(obj, pindex, write)
                writable = write
            else:
                fs.writable = entry.writable
                fs.nosync = entry.nosync
                page, wait = await self.get_page(obj, pindex, write, fs)
                if page is not None and fs.unlocked:
                    # Paged in with the map unlocked: re-validate before using the entry.
                    if not await self.relock(fs):
                        await self.unbusy(page)  # release_page, then RetryFault
                        continue
                    if write:
                        await obj.lock.lock()
                        if fs.nosync or page.nosync:
                            self.fault_nosync(page, fs.nosync)
                        self.mark_dirty(obj, page)
                        await obj.lock.unlock()
                # As vm_fault does, a read fault maps a shared page with the entry's
                # protection: writable if the entry is.  The object might then be
                # dirtied by a plain store (hardware modified bit, no fault), so its
                # generation moves (vm_object_set_writeable_dirty).
                # No page (a busy one to wait for): the entry may be gone if the map was
                # unlocked for a page-in, so it is not read again.
                writable = write or (page is not None and entry.writable
                                     and not entry.needs_copy and not page.sowners)
                if writable and not write and page is not None:
                    if fs.nosync or page.nosync:
                        self.fault_nosync(page, fs.nosync)
                    self.set_writeable_dirty(obj)
            if page is None:
                if not fs.unlocked:
                    await self.unlock_maps(locked)
                assert wait is not None
                await self.wait_busy(wait)
                continue
            if not self.plain_tail:
                await self.enter(vm_map, vpn, page, writable)
                await self.unbusy(page)
                await self.unlock_maps(locked)
                return KERN_SUCCESS
            # enter, unbusy and unlock_maps, written out (the same steps, in order).
            await vm_map.pmap.enter(vpn, page, writable)
            if writable and page.obj.pager is not None and self.k.profile.flag_page_clean:
                self.set_writeable_dirty(page.obj)
            if page.xowner == self.k.sched.cpu:
                await page.xunbusy()
            else:
                await page.sunbusy()
            if len(locked) == 1:
                await vm_map.lock.unlock()
            else:
                for m in reversed(locked):
                    await m.lock.unlock()
            return KERN_SUCCESS

    # -- steps a variant may override ------------------------------------------------

    async def shadow(self, vm_map: VmMap, va: int) -> None:
        """Give the copy-on-write entry at ``va`` its shadow object, map locked exclusive.

        Another CPU may have shadowed, replaced or removed the entry while the map
        was unlocked: look it up again.
        """
        await vm_map.lock.xlock()
        entry = await vm_map.lookup_entry(va)
        if entry is not None and entry.needs_copy and entry.writable:
            self.k.map_access(vm_map, "shadow")
            shadow_entry(self.k, entry)
        await vm_map.lock.unlock()

    async def unlock_maps(self, locked: list[VmMap]) -> None:
        for m in reversed(locked):
            await m.lock.unlock()

    def unlocks_for_pagein(self) -> bool:
        """Whether the map lock is dropped around the pager (the profile says)."""
        return self.k.profile.fault_unlocks_for_pagein

    async def unlock_for_pagein(self, fs: FaultState) -> None:
        """unlock_map(&fs) before vm_pager_get_pages: note each map's timestamp."""
        fs.stamps = [m.lock.timestamp for m in fs.locked]
        await self.unlock_maps(fs.locked)
        fs.unlocked = True

    async def relock(self, fs: FaultState) -> bool:
        """Re-lock the maps after the pager (vm_fault_relookup): trylock each, then
        check that none changed.  False, with nothing held, means "restart"."""
        for i, m in enumerate(fs.locked):
            if not await m.lock.try_slock():
                await self.unlock_maps(fs.locked[:i])
                return False
        if [m.lock.timestamp for m in fs.locked] != fs.stamps:
            await self.unlock_maps(fs.locked)
            return False
        fs.unlocked = False
        return True

    def entry_object(self, entry: VmMapEntry) -> VmObject:
        """Return the entry's object, creating anonymous memory on first touch."""
        obj = top_object(self.k, entry)
        if obj.freed:
            self.k.touch_object(obj)
        return obj

    async def busy_resident(self, page: VmPage) -> bool:
        """Busy a resident page; False if it is busy (the fault must sleep)."""
        return await page.try_xbusy()

    def mark_dirty(self, obj: VmObject, page: VmPage) -> None:
        """A write fault: the object might be dirty again, and so is the page."""
        obj.generation += 1
        page.dirty = True
        self.k.emit_dirty(obj.name, page.pindex, obj.generation)

    def fault_nosync(self, page: VmPage, nosync: bool) -> None:
        """vm_fault_dirty's PGA_NOSYNC rule, for a fault that maps ``page`` writable
        through an entry with (``nosync``) or without MAP_ENTRY_NOSYNC, before the
        fault dirties it: a NOSYNC entry marks the page only if it is clean (data
        dirtied with the expectation of being synced stays synced); any other entry
        clears the mark.  The page is exclusive busy.  (The 2003 and 2019 code;
        since 2020 only a write fault on a clean page sets or clears it, which no
        checker here can tell apart: nothing judges what the syncer leaves.)"""
        if nosync:
            if not page.dirty:
                page.nosync = True
        else:
            page.nosync = False

    def set_writeable_dirty(self, obj: VmObject) -> None:
        """A writable mapping appears: the object might be dirty (generation++)."""
        obj.generation += 1
        self.k.emit(Writeable(obj.name, obj.generation))

    async def wait_busy(self, page: VmPage) -> None:
        await page.wait_unbusy()

    async def enter(self, vm_map: VmMap, vpn: int, page: VmPage, write: bool) -> None:
        await vm_map.pmap.enter(vpn, page, write)
        if write and page.obj.pager is not None and self.k.profile.flag_page_clean:
            # The 2003 fault set OBJ_MIGHTBEDIRTY and entered the writable mapping
            # with Giant held throughout: a page clean's flag clear never fell
            # between them.  Setting it again in the enter's step keeps that.
            self.set_writeable_dirty(page.obj)

    async def unbusy(self, page: VmPage) -> None:
        if page.xowner == self.k.curcpu():
            await page.xunbusy()
        else:
            await page.sunbusy()

    async def get_page(
        self, obj: VmObject, pindex: int, write: bool, fs: FaultState | None = None
    ) -> tuple[VmPage | None, VmPage | None]:
        """Return (busied page, None), or (None, busy page to wait for).

        ``fs``: the fault's maps, which a page-in may unlock (``fs.unlocked``
        then says so, and the caller re-validates).
        """
        await obj.lock.lock()
        page = obj.lookup_page(pindex)
        # An invalid page (its contents discarded while wired) is read again, as
        # a missing one is.
        if page is None or (not page.valid and obj.pager is not None):
            if obj.pager is not None:
                # vm_object_pip_add: the object's paging-in-progress count is held
                # across the page-in (vm_fault holds it from the lookup to its end).
                me = self.k.curcpu()
                obj.pip_add(me)
                await obj.lock.unlock()
                if fs is not None and self.unlocks_for_pagein():
                    await self.unlock_for_pagein(fs)
                found = await self.pagein(obj, pindex, write and not (fs and fs.unlocked),
                                          fs is not None and fs.nosync)
                obj.pip_wakeup(me)
                return found
            page = obj.alloc_page(pindex)
            page.valid = True  # zero-filled
        elif not await self.busy_resident(page):
            if (self.k.profile.read_fault_maps_sbusy and not write
                    and not (fs is not None and fs.writable) and await page.sbusy()):
                # A read fault through a read-only entry may map a shared-busy
                # page (vm_fault_soft_fast); a writable entry's waits (D13).
                await obj.lock.unlock()
                return page, None
            await obj.lock.unlock()
            return None, page
        if write:
            if fs is not None and (fs.nosync or page.nosync):
                self.fault_nosync(page, fs.nosync)
            self.mark_dirty(obj, page)
        await obj.lock.unlock()
        return page, None

    async def pagein(
        self, obj: VmObject, pindex: int, write: bool, nosync: bool = False
    ) -> tuple[VmPage | None, VmPage | None]:
        """Bring a file page in under the vnode lock, taken before any busy
        (``nosync``: the entry's MAP_ENTRY_NOSYNC, for a write fault)."""
        vnode = obj.vnode
        assert vnode is not None and obj.pager is not None
        await self.lock_vnode(obj)
        await obj.lock.lock()
        page = obj.lookup_page(pindex)
        if page is None:
            page = obj.alloc_page(pindex)
            self.read_page(obj, page)
        elif not await self.busy_resident(page):
            await obj.lock.unlock()
            await vnode.unlock()
            return None, page
        elif not page.valid:
            self.read_page(obj, page)  # resident but invalid: its contents are the pager's
        if write:
            if nosync or page.nosync:
                self.fault_nosync(page, nosync)
            self.mark_dirty(obj, page)
        await obj.lock.unlock()
        await vnode.unlock()
        return page, None

    async def lock_vnode(self, obj: VmObject) -> None:
        """Take the file's vnode lock for a page-in, the object's pip held.

        The 4.x/5.x fault slept for it with pip held (vnode_pager_lock after
        vm_object_pip_add).  Where the profile says so (vm_fault_lock_vnode), a
        fault that finds the lock held drops pip before sleeping and takes it
        again once it has the lock.
        """
        vnode = obj.vnode
        assert vnode is not None
        if not self.k.profile.fault_drops_pip_for_vnode:
            await vnode.lock()
            return
        me = self.k.curcpu()
        dropped: list[bool] = []

        def drop_pip() -> None:
            dropped.append(True)
            obj.pip_wakeup(me)

        await vnode.lock(drop_pip)
        if dropped:
            obj.pip_add(me)

    def read_page(self, obj: VmObject, page: VmPage) -> None:
        """Fill an exclusive-busy page from the pager: valid, and clean (the pager's
        data).  Object and vnode locked."""
        assert obj.pager is not None
        page.contents = obj.pager.read(page.pindex)
        page.valid = True
        page.dirty = False
        self.k.emit_pagein(obj.name, page.pindex, page.contents)

    async def get_shadow_page(
        self, shadow: VmObject, pindex: int, write: bool
    ) -> tuple[VmPage | None, VmPage | None]:
        """Fault on a private mapping: the shadow's page, or the file's read-only."""
        await shadow.lock.lock()
        page = shadow.lookup_page(pindex)
        if page is not None:
            if not await self.busy_resident(page):
                await shadow.lock.unlock()
                return None, page
            if write:
                self.mark_dirty(shadow, page)
            await shadow.lock.unlock()
            return page, None
        await shadow.lock.unlock()
        backing = shadow.backing
        assert backing is not None
        bpindex = pindex + shadow.backing_offset
        if not write:
            return await self.get_page(backing, bpindex, False)
        # Copy on write: copy the file's current data into a new shadow page.
        await backing.lock.lock()
        src = backing.lookup_page(bpindex)
        if src is not None and src.valid:
            fold_modified(src)
            data = src.contents
        else:
            assert backing.pager is not None
            data = backing.pager.read(bpindex)
        await backing.lock.unlock()
        await shadow.lock.lock()
        page = shadow.lookup_page(pindex)
        if page is not None:  # another fault copied it meanwhile: retry
            await shadow.lock.unlock()
            return None, page
        page = shadow.alloc_page(pindex)
        page.contents = data
        page.valid = True
        self.k.emit(Cow(shadow.name, pindex, data))
        self.mark_dirty(shadow, page)
        await shadow.lock.unlock()
        return page, None
