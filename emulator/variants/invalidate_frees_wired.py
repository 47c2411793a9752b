"""Mutant ``invalidate_frees_wired`` (S): invalidate frees the wired pages of a wired file
mapping too (vm_object_page_remove without its wire-count test)."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.object import VmObject
from emulator.kern.pmap import remove_all, remove_write
from emulator.variants.base import Variant


class InvalidateFreesWired(MapClean):
    async def page_remove(self, obj: VmObject, start: int, end: int, clean_only: bool) -> None:
        k = obj.k
        page = obj.find_least(start)
        while page is not None and page.pindex < end:
            pi = page.pindex
            # The bug: no "page.wire_count > 0: skip it" here.
            if not await page.try_xbusy():
                await obj.lock.unlock()
                await page.wait_unbusy()
                await obj.lock.lock()
                page = obj.find_least(pi)
                continue
            if clean_only:
                await remove_write(k, page)
                if page.dirty:
                    await page.xunbusy()
                    page = obj.find_least(pi + 1)
                    continue
            await remove_all(k, page)
            await k.kpoint()
            obj.free_page(page)
            page = obj.find_least(pi + 1)


VARIANT = Variant(
    "invalidate_frees_wired", InvalidateFreesWired().clean,
    doc="invalidate frees the wired pages of a wired file mapping", profile="manpage",
    catches=(Rule.INVALIDATE,),
)
