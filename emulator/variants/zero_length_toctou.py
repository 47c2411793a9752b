"""Mutant ``zero_length_toctou`` (H): sizes a zero-length range, unlocks, then cleans.

FreeBSD 5's msync looked up the entry holding ``addr`` under a read lock,
dropped it, and cleaned that entry's range: the entry could be replaced in
between.
"""

from emulator.check import Rule
from emulator.kern.clean import REFERENCE
from emulator.kern.kern_return import KernReturn
from emulator.kern.map import VmMap
from emulator.variants.base import Variant


async def clean(vm_map: VmMap, start: int, end: int, syncio: bool, invalidate: bool) -> KernReturn:
    if start == end:
        await vm_map.lock.slock()
        entry = await vm_map.lookup_entry(start)
        if entry is not None:
            start, end = entry.start, entry.end
        await vm_map.lock.unlock()
    return await REFERENCE.clean(vm_map, start, end, syncio, invalidate)


VARIANT = Variant(
    "zero_length_toctou", clean, doc="computes the zero-length range, unlocks, then cleans",
    profile="manpage", catches=(Rule.SINGLE_ENTRY, Rule.STALE_STRUCTURE),
)
