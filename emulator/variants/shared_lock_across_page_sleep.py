"""Mutant ``shared_lock_across_page_sleep`` (H23, ``modern``): vm_map_sync keeps the map
lock shared while it flushes, sleeping on busy pages with the lock held.

With a writer-preferring map lock (sx) that is a three-thread deadlock: the
clean holds the map shared and sleeps on a page; munmap waits for the map
exclusive; the page's owner, a fault re-locking the map after its page-in,
must now wait behind the writer (OpenBSD b5b36f0f / b8462368; FIDELITY.md D4,
H23).  The fault here re-locks blocking, as uvm_fault and 4.x vm_fault did;
with a reader-preferring lock the same schedule completes.
"""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.kern_return import KernReturn
from emulator.kern.map import VmMap, VmMapEntry
from emulator.variants.base import Variant
from emulator.variants.fault_blocking_relookup import FaultBlockingRelookup


class KeepsSharedLock(MapClean):
    async def sync_modern(
        self, vm_map: VmMap, start: int, end: int, syncio: bool, invalidate: bool
    ) -> KernReturn:
        k = vm_map.k
        await vm_map.lock.slock()
        start, end = vm_map.clamp(start, end)
        first = await vm_map.lookup_entry(start)
        if first is None:
            await vm_map.lock.unlock()
            return k.profile.no_entry
        if start == end and k.profile.zero_length_whole_entry:
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
            offset = entry.offset + (start - entry.start)
            size = min(end, entry.end) - start
            obj, writable = entry.obj, entry.writable
            if entry.submap is not None:
                obj, offset, size, writable = await self.submap_target(entry, offset, size)
            # The bug: the map stays locked shared across the flush and its sleeps.
            if not await self.object_sync(k, obj, offset, size, writable, syncio, invalidate):
                failed = True
            start += size
            entry = vm_map.succ(entry)
        await vm_map.lock.unlock()
        return k.profile.write_error if failed else KernReturn.SUCCESS


VARIANT = Variant(
    "shared_lock_across_page_sleep", KeepsSharedLock().clean, fault=FaultBlockingRelookup,
    doc="vm_map_sync sleeps on pages holding the map shared; the fault re-locks blocking",
    profile="modern", catches=(Rule.DEADLOCK,),
)
