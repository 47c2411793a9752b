"""Mutant ``fault_dirty_before_busy`` (S, ``modern``): the write fault dirties a resident page
(and bumps the object's generation) before busying it, then sleeps for the busy page
in place: a clean that holds the page meanwhile records the object clean, and the
store that follows leaves no trace in the generation."""

from emulator.check import Rule
from emulator.kern.clean import REFERENCE
from emulator.kern.fault import Fault, FaultState
from emulator.kern.object import VmObject
from emulator.kern.page import VmPage
from emulator.variants.base import Variant


class FaultDirtyBeforeBusy(Fault):
    async def get_page(
        self, obj: VmObject, pindex: int, write: bool, fs: FaultState | None = None
    ) -> tuple[VmPage | None, VmPage | None]:
        await obj.lock.lock()
        page = obj.lookup_page(pindex)
        if page is None:
            await obj.lock.unlock()
            return await super().get_page(obj, pindex, write, fs)
        if write:
            self.mark_dirty(obj, page)  # the bug: before the page is busy
        while not await page.try_xbusy():
            await obj.lock.unlock()
            await page.wait_unbusy()
            await obj.lock.lock()
            if obj.lookup_page(pindex) is not page:  # freed meanwhile: start over
                await obj.lock.unlock()
                return await self.get_page(obj, pindex, write, fs)
        await obj.lock.unlock()
        return page, None


VARIANT = Variant(
    "fault_dirty_before_busy", REFERENCE.clean, fault=FaultDirtyBeforeBusy,
    doc="the write fault dirties the page before busying it, then waits for the busy",
    profile="modern", catches=(Rule.LOST_STORE,),
)
