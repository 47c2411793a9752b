"""Mutant ``vrele_under_map_lock`` (H19, ``freebsd5``): munmap drops the vnode's last use
reference while it still holds the map lock.

Before kib's deferral (cfa892b5 and the change it extends), vm_map_entry_delete
deallocated an entry's object at once, map locked: the last reference of a
vnode-backed object vrele'd the vnode, whose VOP_INACTIVE takes the vnode lock
-- under the map lock, the reverse of the order read(2) and write(2) establish
by faulting on their buffers with the vnode locked.  Today the entries wait on
the thread's list until vm_map_unlock (vm_map_process_deferred).
"""

from emulator.check import Rule
from emulator.kern.clean import REFERENCE
from emulator.kern.map import VmMap
from emulator.kern.syscalls import munmap_refused, remove_range
from emulator.kern.vnode import process_deferred
from emulator.variants.base import Variant


async def munmap(vm_map: VmMap, start: int, end: int) -> int | str:
    await vm_map.lock.xlock()
    refused = munmap_refused(vm_map, start, end)
    if refused is None:
        await remove_range(vm_map, start, end)
        await process_deferred(vm_map.k)  # the bug: vrele with the map still locked
    await vm_map.lock.unlock()
    return 0 if refused is None else refused


VARIANT = Variant(
    "vrele_under_map_lock", REFERENCE.clean, munmap=munmap,
    doc="munmap inactivates a vnode (vrele of its last use reference) holding the map lock",
    profile="freebsd5", catches=(Rule.LOCK_DISCIPLINE, Rule.DEADLOCK),
)
