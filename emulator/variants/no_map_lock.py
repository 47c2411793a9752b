"""Mutant ``no_map_lock`` (S): walks the entries without taking the map lock."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.map import VmMap
from emulator.variants.base import Variant


class NoMapLock(MapClean):
    async def lock_map(self, vm_map: VmMap) -> None:
        pass

    async def unlock_map(self, vm_map: VmMap) -> None:
        pass


VARIANT = Variant(
    "no_map_lock", NoMapLock().clean, doc="walks entries without the map lock",
    profile="manpage", catches=(Rule.SINGLE_ENTRY, Rule.STALE_STRUCTURE, Rule.LOCK_DISCIPLINE),
)
