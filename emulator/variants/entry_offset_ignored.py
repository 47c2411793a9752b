"""Mutant ``entry_offset_ignored`` (S): computes an entry's object offset from the address
alone, forgetting the entry's own offset into the object (a file mapped at an offset)."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.kernel import Kernel
from emulator.kern.map import VmMap, VmMapEntry
from emulator.variants.base import Variant


class EntryOffsetIgnored(MapClean):
    async def second_pass(
        self, k: Kernel, vm_map: VmMap, first: VmMapEntry, start: int, end: int,
        syncio: bool, invalidate: bool,
    ) -> bool:
        ok = True
        cur: VmMapEntry | None = first
        while cur is not None and cur.start < end:
            offset = start - cur.start  # the bug: cur.offset + (start - cur.start)
            size = min(end, cur.end) - start
            obj, writable, flush_size = cur.obj, cur.writable, size
            if cur.submap is not None:
                obj, offset, flush_size, writable = await self.submap_target(cur, offset, size)
            if not await self.flush_entry(k, obj, offset, flush_size, writable, syncio,
                                          invalidate):
                ok = False
            start += size
            cur = vm_map.succ(cur)
        return ok


VARIANT = Variant(
    "entry_offset_ignored", EntryOffsetIgnored().clean,
    doc="forgets the entry's offset into its object (a file mapped at an offset)",
    profile="manpage", catches=(Rule.LOST_STORE, Rule.ASYNC_CLEAN),
)
