"""Mutant ``failed_write_dropped`` (FIDELITY.md D1): a failed page write's buffer is thrown
away instead of re-dirtied.

Where the buffer write clears the page's dirty bits when it starts (``modern``), after
a failed write only the buffer knows the page's data is not on disk: brelse's "Failed
write, redirty" makes it a delayed write again.  This clean, on a write error,
invalidates the buffer instead (as brelse does for the errors it deems permanent:
ENXIO today, every error but EIO in some earlier versions): the page is clean, the
buffer clean, the store only in memory, so the fsync(2) that follows writes nothing and
returns 0.
"""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.object import VmObject
from emulator.kern.pager import Io
from emulator.variants.base import Variant


class FailedWriteDropped(MapClean):
    def write_failed(self, obj: VmObject, io: Io) -> None:
        if obj.pager is not None:
            obj.pager.delayed.pop(io.page.pindex, None)  # the bug: B_INVAL, not bdirty


VARIANT = Variant(
    "failed_write_dropped", FailedWriteDropped().clean,
    doc="throws a failed write's buffer away instead of re-dirtying it: fsync then "
        "returns 0 with the store only in memory",
    profile="modern", catches=(Rule.DURABLE,),
)
