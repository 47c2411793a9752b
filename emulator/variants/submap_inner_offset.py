"""Mutant ``submap_inner_offset`` (S, ``modern``): cleaning through a sub-map, flushes from
the inner entry's start instead of from where the range enters it."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.map import VmMapEntry
from emulator.kern.object import VmObject
from emulator.variants.base import Variant


class SubmapInnerOffset(MapClean):
    async def submap_target(
        self, entry: VmMapEntry, offset: int, size: int
    ) -> tuple[VmObject | None, int, int, bool]:
        sub = entry.submap
        assert sub is not None
        await sub.lock.slock()
        tentry = await sub.lookup_entry(offset)
        if tentry is None:
            target: tuple[VmObject | None, int, int, bool] = (None, offset, size, False)
        else:
            # The bug: tentry.offset alone, without + (offset - tentry.start).
            target = (tentry.obj, tentry.offset, min(size, tentry.end - offset), tentry.writable)
        await sub.lock.unlock()
        return target


VARIANT = Variant(
    "submap_inner_offset", SubmapInnerOffset().clean,
    doc="cleans a sub-map's pages from the inner entry's start, not where the range enters it",
    profile="modern", catches=(Rule.LOST_STORE, Rule.ASYNC_CLEAN),
)
