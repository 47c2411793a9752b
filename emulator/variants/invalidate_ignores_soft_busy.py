"""Mutant ``invalidate_ignores_soft_busy`` (H2): invalidate frees a page under async pageout.

The 2.x ``vm_map_clean`` warned that "doing async I/O and then removing all the
pages" was "probably a very bad idea": the page removal waited for PG_BUSY
only, not for the soft busy (``m->busy``) an I/O holds, so a page whose
asynchronous write was still in flight was freed under it -- the I/O then reads
a freed, maybe reused, page.  Under the 2003 page clean such a page is clean
(its write left it so at issue) and a synchronous clean passes over it, so
nothing but the removal's wait protects it.
"""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.page import Busy, VmPage
from emulator.variants.base import Variant


class InvalidateIgnoresSoftBusy(MapClean):
    async def take_for_removal(self, page: VmPage) -> bool:
        # vm_page_sleep_busy(p, FALSE): waits for PG_BUSY only.  A soft-busy page
        # is then taken as it is (2003 set PG_BUSY beside the I/O's soft busy,
        # which this model's busy states cannot hold at once).
        return page.busy == Busy.SHARED or await page.try_xbusy()


VARIANT = Variant(
    "invalidate_ignores_soft_busy", InvalidateIgnoresSoftBusy().clean,
    doc="invalidate waits for the exclusive busy only: frees a page under async pageout",
    profile="freebsd5", catches=(Rule.INVALIDATE, Rule.LOST_STORE),
)
