"""Mutant ``invalidate_before_flush`` (S): frees the pages first, flushes after."""

from emulator.check import Rule
from emulator.kern.clean import MapClean, page_range
from emulator.kern.kernel import Kernel
from emulator.kern.object import OBJT_DEVICE, OBJT_FILE, VmObject
from emulator.variants.base import Variant


class InvalidateBeforeFlush(MapClean):
    async def flush_entry(
        self,
        k: Kernel,
        obj: VmObject | None,
        offset: int,
        size: int,
        writable: bool,
        syncio: bool,
        invalidate: bool,
    ) -> bool:
        bottom, boffset = self.bottom_object(k, obj, offset)
        if invalidate and bottom is not None and bottom.kind in (OBJT_FILE, OBJT_DEVICE):
            first, last = page_range(boffset, size)
            await bottom.lock.lock()
            await self.page_remove(bottom, first, last, False)  # dirty pages too: unflushed
            await bottom.lock.unlock()
        return await super().flush_entry(k, obj, offset, size, writable, syncio, False)


VARIANT = Variant(
    "invalidate_before_flush", InvalidateBeforeFlush().clean,
    doc="frees pages first, flushes after", profile="manpage",
    catches=(Rule.LOST_STORE, Rule.INVALIDATE),
)
