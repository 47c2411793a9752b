"""Mutant ``side_effect_before_validation`` (S): removes mappings before pass 1 ends."""

from emulator.kern.clean import MapClean
from emulator.kern.map import VmMap
from emulator.variants.base import Variant


class SideEffectBeforeValidation(MapClean):
    async def before_validation(self, vm_map: VmMap, start: int, end: int) -> None:
        await self.remove_mappings(vm_map, start, end)


VARIANT = Variant(
    "side_effect_before_validation", SideEffectBeforeValidation().clean,
    doc="removes mappings before validating the range", profile="manpage",
    catches=("return_code",),
)
