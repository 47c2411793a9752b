"""Mutant ``first_object_only`` (S): a range spanning several entries has only the first
entry's object flushed (and the call still succeeds)."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.kernel import Kernel
from emulator.kern.map import VmMap, VmMapEntry
from emulator.variants.base import Variant


class FirstObjectOnly(MapClean):
    async def second_pass(
        self, k: Kernel, vm_map: VmMap, first: VmMapEntry, start: int, end: int,
        syncio: bool, invalidate: bool,
    ) -> bool:
        # The bug: pass 2 stops at the first entry's end.
        return await super().second_pass(k, vm_map, first, start, min(end, first.end), syncio,
                                         invalidate)


VARIANT = Variant(
    "first_object_only", FirstObjectOnly().clean,
    doc="flushes only the first entry's object of a range spanning several entries",
    profile="manpage", catches=(Rule.LOST_STORE, Rule.ASYNC_CLEAN),
)
