"""The kernel API a clean variant may use, in one place.

A variant is ``async def clean(vm_map, start, end, syncio, invalidate) ->
KernReturn``; everything it needs is reachable from ``vm_map`` and named here.
Every operation that awaits is a schedule point: another CPU may run there.
See README.md, "Writing your own variant", for the contract of each name.
"""

from __future__ import annotations

from emulator.kern.clean import (
    MapClean,
    page_range,
    reference_clean,
    rv_hole,
    rv_no_entry,
    rv_submap,
)
from emulator.kern.fault import Fault
from emulator.kern.kern_return import KernReturn
from emulator.kern.kernel import Kernel
from emulator.kern.map import PROT_READ, PROT_WRITE, VmMap, VmMapEntry
from emulator.kern.object import OBJT_ANON, OBJT_DEVICE, OBJT_FILE, VmObject
from emulator.kern.page import VmPage
from emulator.kern.pager import Io
from emulator.kern.param import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, round_page, trunc_page
from emulator.kern.pmap import clear_modify, fold_modified, is_modified, remove_all, remove_write
from emulator.kern.profile import Flushes, InvalidateFrees, MapLock, Profile
from emulator.variants.base import Variant

__all__ = [
    "OBJT_ANON",
    "OBJT_DEVICE",
    "OBJT_FILE",
    "PAGE_MASK",
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "PROT_READ",
    "PROT_WRITE",
    "Fault",
    "Flushes",
    "InvalidateFrees",
    "Io",
    "KernReturn",
    "Kernel",
    "MapClean",
    "MapLock",
    "Profile",
    "Variant",
    "VmMap",
    "VmMapEntry",
    "VmObject",
    "VmPage",
    "clear_modify",
    "fold_modified",
    "is_modified",
    "page_range",
    "reference_clean",
    "remove_all",
    "remove_write",
    "round_page",
    "rv_hole",
    "rv_no_entry",
    "rv_submap",
    "trunc_page",
]
