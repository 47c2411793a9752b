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
from emulator.kern.map import VmMap, VmMapEntry
from emulator.variants.base import Variant
from emulator.variants.fault_blocking_relookup import FaultBlockingRelookup


class KeepsSharedLock(MapClean):
    async def leave_map_for_flush(self, vm_map: VmMap) -> int:
        return vm_map.lock.timestamp  # the bug: the map stays locked shared across the flush

    async def return_to_map(
        self, vm_map: VmMap, entry: VmMapEntry, last_timestamp: int, start: int
    ) -> VmMapEntry | None:
        return vm_map.succ(entry)  # never unlocked: the map cannot have changed


VARIANT = Variant(
    "shared_lock_across_page_sleep", KeepsSharedLock().clean, fault=FaultBlockingRelookup,
    doc="vm_map_sync sleeps on pages holding the map shared; the fault re-locks blocking",
    profile="modern", catches=(Rule.DEADLOCK,),
)
