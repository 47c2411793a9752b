"""Mutant ``stop_after_map_change`` (S, ``modern``): after re-locking, if the map changed
while it was unlocked, stops and returns success instead of looking the rest of the
range up again."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.map import VmMap, VmMapEntry
from emulator.variants.base import Variant


class StopAfterMapChange(MapClean):
    def relock_next(
        self, vm_map: VmMap, entry: VmMapEntry, last_timestamp: int, start: int
    ) -> VmMapEntry | None:
        if last_timestamp == vm_map.lock.timestamp:
            return vm_map.succ(entry)
        return None  # the bug: the rest of the range is silently skipped


VARIANT = Variant(
    "stop_after_map_change", StopAfterMapChange().clean,
    doc="stops (with success) when the map changed during an unlocked flush",
    profile="modern", catches=(Rule.LOST_STORE, Rule.ASYNC_CLEAN),
)
