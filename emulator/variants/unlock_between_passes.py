"""Mutant ``unlock_between_passes`` (S): drops the map lock between pass 1 and pass 2."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.kernel import Kernel
from emulator.kern.map import VmMap, VmMapEntry
from emulator.variants.base import Variant


class UnlockBetweenPasses(MapClean):
    async def second_pass(
        self, k: Kernel, vm_map: VmMap, first: VmMapEntry, start: int, end: int,
        syncio: bool, invalidate: bool,
    ) -> bool:
        await vm_map.lock.unlock()
        await vm_map.lock.xlock()  # ``first`` may have been unlinked and freed meanwhile
        return await super().second_pass(k, vm_map, first, start, end, syncio, invalidate)


VARIANT = Variant(
    "unlock_between_passes", UnlockBetweenPasses().clean,
    doc="drops the map lock between the two passes",
    profile="manpage", catches=(Rule.SINGLE_ENTRY, Rule.STALE_STRUCTURE),
)
