"""Mutant ``no_relookup_after_sleep`` (S): after sleeping on a busy page, the page
clean busies the same page again instead of looking it up again.

vm_object_page_clean re-finds its place after every sleep
(``np = vm_page_find_least(object, pi)``) because the page it slept on may have
been freed meanwhile -- by the page daemon above all (FIDELITY.md D19).  This
variant keeps the stale pointer; it is caught only when a third party frees
pages during a clean: the page daemon (``--param agents=pagedaemon``) or another
process's msync(MS_INVALIDATE), as in ``pageout_vs_msync``.
"""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.object import VmObject
from emulator.variants.base import Variant


class NoRelookupAfterSleep(MapClean):
    async def page_clean(self, obj: VmObject, start: int, end: int, sync: bool,
                         nosync: bool = False) -> bool:
        # OBJPC_NOSYNC is ignored: NOSYNC pages are written too (not this mutant's bug).
        k = obj.k
        k.touch_object(obj)
        if not obj.might_be_dirty() or not obj.pages:
            return True
        allclean = start == 0 and end >= obj.size
        res = True
        curgen = obj.generation
        page = obj.find_least(start)
        while page is not None and page.pindex < end:
            pi = page.pindex
            if not page.valid:
                page = obj.find_least(pi + 1)
                continue
            if not await self.busy_page(obj, page):
                continue  # the bug: retry the page slept on, which may be gone
            await self.protect(page)
            if page.dirty:
                if not await self.flush_page(obj, page, sync):
                    res = False
                allclean = False
            else:
                await page.xunbusy()
            page = obj.find_least(pi + 1)
        if allclean:
            self.set_clean_generation(obj, curgen)
        return res


VARIANT = Variant(
    "no_relookup_after_sleep", NoRelookupAfterSleep().clean,
    doc="keeps a page pointer across a sleep (the page daemon may free it)",
    profile="manpage", catches=(Rule.STALE_STRUCTURE,),
)
