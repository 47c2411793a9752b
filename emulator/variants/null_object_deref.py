"""Mutant ``null_object_deref`` (H): follows the backing chain of an entry with no object."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.kernel import Kernel
from emulator.kern.object import VmObject
from emulator.variants.base import Variant


class NullObjectDeref(MapClean):
    def bottom_object(self, k: Kernel, obj: VmObject | None,
                      offset: int) -> tuple[VmObject | None, int]:
        while obj.backing is not None:  # type: ignore[union-attr]  # the bug itself
            offset += obj.backing_offset << 12  # type: ignore[union-attr]
            obj = obj.backing  # type: ignore[union-attr]
        return obj, offset


VARIANT = Variant(
    "null_object_deref", NullObjectDeref().clean,
    doc="follows the backing chain of an entry with no object", profile="manpage",
    catches=(Rule.CRASH, Rule.STALE_STRUCTURE),
)
