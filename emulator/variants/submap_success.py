"""Mutant ``submap_success`` (S, ``manpage``): cleans through a sub-map entry and returns
KERN_SUCCESS where the profile refuses the range (KERN_INVALID_ADDRESS)."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.kern_return import KernReturn
from emulator.kern.kernel import Kernel
from emulator.kern.map import VmMap, VmMapEntry
from emulator.variants.base import Variant


class SubmapSuccess(MapClean):
    def validate_range(
        self, k: Kernel, vm_map: VmMap, first: VmMapEntry, end: int, invalidate: bool
    ) -> KernReturn:
        cur: VmMapEntry | None = first
        while cur is not None and cur.start < end:
            # The bug: no sub-map test; pass 2 cleans through the sub-map.
            if invalidate and cur.wired and k.profile.wired_invalidate is not None:
                return k.profile.wired_invalidate
            nxt = vm_map.succ(cur)
            if end > cur.end and (nxt is None or nxt.start != cur.end):
                return self.rv_hole(k)
            cur = nxt
        return KernReturn.SUCCESS


VARIANT = Variant(
    "submap_success", SubmapSuccess().clean,
    doc="cleans through a sub-map entry and returns KERN_SUCCESS where the profile refuses it",
    profile="manpage", catches=(Rule.RETURN_CODE,),
)
