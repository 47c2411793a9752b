"""Mutant ``wired_invalidate_discards`` (FIDELITY.md D8, H9): today's invalidate, over a page
another process has wired, discards its contents as well as unmapping it.

vm_object_page_remove's wired case removes every mapping of the page and, only without
OBJPR_CLEANONLY, invalidates and undirties it (``vm_page_invalid``, ``vm_page_undirty``).
vm_object_sync passes OBJPR_CLEANONLY unless ``vm.old_msync`` ("use old (insecure) msync
behavior") is set; this clean behaves as if it were: a store that lands through the
wiring process's mapping between the flush and the removal is discarded with the page's
contents, and the next access reads the file's older data.
"""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.page import VmPage
from emulator.variants.base import Variant


class WiredInvalidateDiscards(MapClean):
    async def unmap_wired(self, page: VmPage) -> None:
        await self.discard_wired(page.obj, page)  # the bug: not clean-only


VARIANT = Variant(
    "wired_invalidate_discards", WiredInvalidateDiscards().clean,
    doc="invalidate discards the contents of a page wired elsewhere (as vm.old_msync)",
    profile="modern", catches=(Rule.LOST_STORE,),
)
