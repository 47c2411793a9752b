"""Mutant ``undirty_at_issue`` (S): clears ``dirty`` when the write is issued.

Harmless while every write succeeds; a failed write then leaves a clean page
whose data the pager never got.
"""

from emulator.kern.clean import MapClean
from emulator.kern.object import VmObject
from emulator.kern.page import VmPage
from emulator.machine import Variant


class UndirtyAtIssue(MapClean):
    async def flush_page(self, obj: VmObject, page: VmPage, sync: bool) -> bool:
        k = obj.k
        await k.point()
        page.dirty = False
        io = k.disk.issue(page, sync)
        if not sync:
            return True
        await obj.lock.unlock()
        await k.disk.wait(io)
        await obj.lock.lock()
        return not io.error


VARIANT = Variant(
    "undirty_at_issue", UndirtyAtIssue().clean,
    doc="clears dirty when the write is issued, not at completion",
    profile="manpage", catches=("lost_store",),
)
