"""Mutant ``unreferenced_object`` (S, ``modern``): flushes an object with the map unlocked
without holding a reference on it, so a munmap meanwhile tears the object down under
the flush."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.kernel import Kernel
from emulator.kern.object import VmObject
from emulator.variants.base import Variant


class UnreferencedObject(MapClean):
    def reference_object(self, obj: VmObject) -> None:
        pass  # the bug: no vm_object_reference across the unlock

    def deallocate_object(self, k: Kernel, obj: VmObject) -> None:
        pass  # (and so nothing to drop)


VARIANT = Variant(
    "unreferenced_object", UnreferencedObject().clean,
    doc="flushes with the map unlocked without a reference: a munmap frees the object",
    profile="modern", catches=(Rule.STALE_STRUCTURE,),
)
