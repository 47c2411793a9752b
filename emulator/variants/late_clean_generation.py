"""Mutant ``late_clean_generation`` (S): records the clean generation after the scan.

It takes the object's generation as of the end of the scan, and even after an
asynchronous scan, so a write fault during the scan is forgotten.
"""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.object import VmObject
from emulator.variants.base import Variant


class LateCleanGeneration(MapClean):
    async def page_clean(self, obj: VmObject, start: int, end: int, sync: bool,
                         nosync: bool = False) -> bool:
        res = await super().page_clean(obj, start, end, sync, nosync)
        if start == 0 and end >= obj.size:
            self.set_clean_generation(obj, obj.generation)
        return res


VARIANT = Variant(
    "late_clean_generation", LateCleanGeneration().clean,
    doc="records the clean generation after the scan", profile="manpage",
    catches=(Rule.LOST_STORE, Rule.ASYNC_CLEAN),
)
