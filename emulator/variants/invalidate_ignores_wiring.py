"""Mutant ``invalidate_ignores_wiring`` (S, ``modern``): invalidates over a user-wired entry
instead of refusing it with KERN_INVALID_ARGUMENT."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.kern_return import KernReturn
from emulator.kern.kernel import Kernel
from emulator.kern.map import VmMap, VmMapEntry
from emulator.variants.base import Variant


class InvalidateIgnoresWiring(MapClean):
    def validate_range(
        self, k: Kernel, vm_map: VmMap, first: VmMapEntry, end: int, invalidate: bool
    ) -> KernReturn:
        # The reference's walk, less the wired-entry test.
        return super().validate_range(k, vm_map, first, end, invalidate=False)


VARIANT = Variant(
    "invalidate_ignores_wiring", InvalidateIgnoresWiring().clean,
    doc="invalidates over a user-wired entry instead of refusing it", profile="modern",
    catches=(Rule.RETURN_CODE,),
)
