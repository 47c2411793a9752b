"""Mutant ``vnode_lock_while_busy`` (H): the fault sleeps for the vnode lock holding a busy page."""

from emulator.check import Rule
from emulator.kern.clean import REFERENCE
from emulator.kern.fault import Fault, FaultState
from emulator.kern.object import VmObject
from emulator.kern.page import VmPage
from emulator.variants.base import Variant


class VnodeLockWhileBusy(Fault):
    async def get_page(
        self, obj: VmObject, pindex: int, write: bool, fs: FaultState | None = None
    ) -> tuple[VmPage | None, VmPage | None]:
        if obj.vnode is None or obj.pager is None:
            return await super().get_page(obj, pindex, write)
        await obj.lock.lock()
        page = obj.lookup_page(pindex)
        if page is None:
            page = obj.alloc_page(pindex)
            page.contents = obj.pager.read(pindex)
            page.valid = True
        elif not await self.busy_resident(page):
            await obj.lock.unlock()
            return None, page
        await obj.lock.unlock()
        await obj.vnode.lock()  # sleeps for the vnode holding the busy page
        await obj.lock.lock()
        if write:
            self.mark_dirty(obj, page)
        await obj.lock.unlock()
        await obj.vnode.unlock()
        return page, None


VARIANT = Variant(
    "vnode_lock_while_busy", REFERENCE.clean, fault=VnodeLockWhileBusy,
    doc="the fault sleeps for the vnode lock holding a busy page", profile="manpage",
    catches=(Rule.DEADLOCK, Rule.LOCK_DISCIPLINE),
)
