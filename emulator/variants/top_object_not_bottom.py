"""Mutant ``top_object_not_bottom`` (S): flushes the entry's own object instead of the
bottom of its backing chain -- a written private mapping's shadow, not its file."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.kernel import Kernel
from emulator.kern.object import VmObject
from emulator.variants.base import Variant


class TopObjectNotBottom(MapClean):
    def bottom_object(
        self, k: Kernel, obj: VmObject | None, offset: int
    ) -> tuple[VmObject | None, int]:
        if obj is not None:
            k.touch_object(obj)
        return obj, offset  # the bug: the backing chain is not followed


VARIANT = Variant(
    "top_object_not_bottom", TopObjectNotBottom().clean,
    doc="flushes a private mapping's shadow object instead of the file at the chain's bottom",
    profile="manpage", catches=(Rule.LOST_STORE, Rule.ASYNC_CLEAN),
)
