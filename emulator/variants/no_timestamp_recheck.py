"""Mutant ``no_timestamp_recheck`` (S, modern): follows the saved next entry after re-locking."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.map import VmMap, VmMapEntry
from emulator.variants.base import Variant


class NoTimestampRecheck(MapClean):
    def relock_next(
        self, vm_map: VmMap, entry: VmMapEntry, last_timestamp: int, start: int
    ) -> VmMapEntry | None:
        return vm_map.succ(entry)  # the entry may have been freed while unlocked


VARIANT = Variant(
    "no_timestamp_recheck", NoTimestampRecheck().clean,
    doc="after re-locking follows the saved entry without checking the timestamp",
    profile="modern", catches=(Rule.STALE_STRUCTURE,),
)
