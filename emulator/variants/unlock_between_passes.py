"""Mutant ``unlock_between_passes`` (S): drops the map lock between pass 1 and pass 2."""

from emulator.kern.clean import MapClean
from emulator.kern.map import VmMap
from emulator.variants.base import Variant


class UnlockBetweenPasses(MapClean):
    async def between_passes(self, vm_map: VmMap) -> None:
        await vm_map.lock.unlock()
        await vm_map.lock.xlock()


VARIANT = Variant(
    "unlock_between_passes", UnlockBetweenPasses().clean,
    doc="drops the map lock between the two passes",
    profile="manpage", catches=("single_entry", "stale_structure"),
)
