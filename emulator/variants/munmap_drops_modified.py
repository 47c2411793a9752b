"""Mutant ``munmap_drops_modified`` (H): munmap discards the modified bits."""

from emulator.kern.clean import REFERENCE
from emulator.kern.map import VmMap
from emulator.kern.syscalls import remove_range
from emulator.variants.base import Variant


async def munmap_dropping(vm_map: VmMap, start: int, end: int) -> None:
    await vm_map.lock.xlock()
    await remove_range(vm_map, start, end, drop_modified=True)
    await vm_map.lock.unlock()


VARIANT = Variant(
    "munmap_drops_modified", REFERENCE.clean, munmap=munmap_dropping,
    doc="munmap discards modified bits", profile="manpage", catches=("lost_store",),
)
