"""Mutant ``lock_order_inversion`` (S): takes the object lock, then waits for the map lock."""

from emulator.check import Rule
from emulator.kern.clean import REFERENCE
from emulator.kern.kern_return import KernReturn
from emulator.kern.map import VmMap
from emulator.variants.base import Variant


async def clean(vm_map: VmMap, start: int, end: int, syncio: bool, invalidate: bool) -> KernReturn:
    entry = vm_map.entry_containing(start)
    obj = entry.obj if entry is not None else None
    if obj is None:
        return await REFERENCE.clean(vm_map, start, end, syncio, invalidate)
    while obj.backing is not None:
        obj = obj.backing
    await obj.lock.lock()  # object first ...
    await vm_map.lock.xlock()  # ... then the map: inverted
    await obj.lock.unlock()
    await vm_map.lock.unlock()
    return await REFERENCE.clean(vm_map, start, end, syncio, invalidate)


VARIANT = Variant(
    "lock_order_inversion", clean, doc="takes the object lock, then waits for the map lock",
    profile="manpage", catches=(Rule.DEADLOCK, Rule.LOCK_DISCIPLINE),
)
