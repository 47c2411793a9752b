"""Mutant ``skip_busy_page`` (S): skips a busy page instead of waiting for it."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.object import VmObject
from emulator.variants.base import Variant


class SkipBusyPage(MapClean):
    async def page_clean(self, obj: VmObject, start: int, end: int, sync: bool,
                         nosync: bool = False) -> bool:
        # Clean one page at a time, passing over the busy ones.
        page = obj.find_least(start)
        ok = True
        while page is not None and page.pindex < end:
            pi = page.pindex
            if page.valid and not page.is_busy():
                ok = await super().page_clean(obj, pi, pi + 1, sync, nosync) and ok
            page = obj.find_least(pi + 1)
        return ok


VARIANT = Variant(
    "skip_busy_page", SkipBusyPage().clean, doc="skips a busy page instead of waiting",
    profile="manpage", catches=(Rule.LOST_STORE, Rule.ASYNC_CLEAN),
)
