"""Mutant ``shared_map_lock`` (S): takes the map lock shared in ``manpage``."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.map import VmMap
from emulator.variants.base import Variant


class SharedMapLock(MapClean):
    async def lock_map(self, vm_map: VmMap) -> None:
        await vm_map.lock.slock()


VARIANT = Variant(
    "shared_map_lock", SharedMapLock().clean, doc="takes the map lock shared",
    profile="manpage", catches=(Rule.SINGLE_ENTRY,),
)
