"""Mutant ``neighbour_not_write_protected`` (FIDELITY.md D9): the page clean clusters a dirty
neighbour after folding its modified bits (vm_page_test_dirty) without revoking write
access, so a store through a mapping lands while the write is in flight, and the write's
completion marks the page clean: the store is lost."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.page import VmPage
from emulator.kern.pmap import fold_modified
from emulator.variants.base import Variant


class NeighbourNotWriteProtected(MapClean):
    async def collect_neighbour(self, page: VmPage) -> bool:
        if not await page.try_xbusy():
            return False
        fold_modified(page)  # the bug: the mappings stay writable
        if not page.dirty:
            await page.xunbusy()
            return False
        return True


VARIANT = Variant(
    "neighbour_not_write_protected", NeighbourNotWriteProtected().clean,
    doc="clusters a dirty neighbour without write-protecting it: a store during the "
        "write is lost",
    profile="manpage", catches=(Rule.LOST_STORE,),
)
