"""Mutant ``munmap_drops_modified`` (H): munmap discards the modified bits."""

from emulator.check import Rule
from emulator.kern.clean import REFERENCE
from emulator.kern.events import PteRemove
from emulator.kern.map import VmMap
from emulator.kern.param import PAGE_SHIFT
from emulator.kern.syscalls import munmap_refused, remove_entries
from emulator.variants.base import Variant


async def remove_mappings_dropping_modified(vm_map: VmMap, start: int, end: int) -> None:
    """pmap_remove of [start, end) that clears each modified bit instead of folding it."""
    k = vm_map.k
    pmap = vm_map.pmap
    await k.kpoint()
    k.read("map", vm_map.name)
    start_vpn, end_vpn = start >> PAGE_SHIFT, end >> PAGE_SHIFT
    gone = sorted(vpn for vpn in pmap.ptes if start_vpn <= vpn < end_vpn)
    for vpn in gone:
        pmap.ptes[vpn].modified = False  # the bug: a store through it is forgotten
        pmap.remove_pte(vpn)
    if gone:
        k.emit(PteRemove(vm_map.name, start_vpn, end_vpn, len(gone)))


async def munmap_dropping(vm_map: VmMap, start: int, end: int) -> int | str:
    await vm_map.lock.xlock()
    refused = munmap_refused(vm_map, start, end)
    if refused is None:
        await remove_mappings_dropping_modified(vm_map, start, end)
        await remove_entries(vm_map, start, end)
    await vm_map.lock.unlock()
    return 0 if refused is None else refused


VARIANT = Variant(
    "munmap_drops_modified", REFERENCE.clean, munmap=munmap_dropping,
    doc="munmap discards modified bits", profile="manpage", catches=(Rule.LOST_STORE,),
)
