"""Mutant ``fault_ignores_busy`` (S): the write fault maps a busy page writable."""

from emulator.check import Rule
from emulator.kern.clean import REFERENCE
from emulator.kern.fault import Fault
from emulator.kern.page import VmPage
from emulator.variants.base import Variant


class FaultIgnoresBusy(Fault):
    async def busy_resident(self, page: VmPage) -> bool:
        if await page.try_xbusy():
            return True
        return True  # busy (a write in flight): go on without the busy

    async def unbusy(self, page: VmPage) -> None:
        if page.xowner == self.k.curcpu():
            await page.xunbusy()
        elif self.k.curcpu() in page.sowners:
            await page.sunbusy()


VARIANT = Variant(
    "fault_ignores_busy", REFERENCE.clean, fault=FaultIgnoresBusy,
    doc="the write fault maps a busy page writable",
    profile="manpage", catches=(Rule.LOST_STORE,),
)
