"""Mutant ``side_effect_before_validation`` (S): removes mappings before pass 1 ends."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.kern_return import KernReturn
from emulator.kern.kernel import Kernel
from emulator.kern.map import VmMap, VmMapEntry
from emulator.variants.base import Variant


class SideEffectBeforeValidation(MapClean):
    async def first_pass(
        self, k: Kernel, vm_map: VmMap, first: VmMapEntry, start: int, end: int,
        invalidate: bool,
    ) -> KernReturn:
        if invalidate:
            await self.remove_mappings(vm_map, start, end)  # before the range is known valid
        return await super().first_pass(k, vm_map, first, start, end, invalidate)


VARIANT = Variant(
    "side_effect_before_validation", SideEffectBeforeValidation().clean,
    doc="removes mappings before validating the range", profile="manpage",
    catches=(Rule.RETURN_CODE,),
)
