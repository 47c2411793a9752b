"""Mutant ``pip_wait_under_vnode`` (H3, ``freebsd5``): an invalidating clean waits for the
object's paging in progress while it holds the vnode lock.

The 3.x ``vm_map_clean`` flushed a writable entry's file under the vnode lock
and, to invalidate, called ``vm_object_pip_wait(object, "objmcl")`` and then
``vm_object_page_remove`` before unlocking the vnode.  vm_fault bumps the
object's paging-in-progress count before it takes the vnode lock for its
page-in (4.x/5.x ``vnode_pager_lock``), so a fault of another process on the
same file holds the count and waits for the vnode while the clean holds the
vnode and waits for the count: a deadlock.  Dillon's 196127c4 ("invalidation
code cannot wait for paging to complete while holding a vnode lock") moved the
removal out of the vnode lock and dropped the wait: ``vm_object_page_remove``
sleeps on each busy page instead, as the reference does.
"""

from emulator.check import Rule
from emulator.kern.clean import MapClean, page_range
from emulator.kern.kernel import Kernel
from emulator.kern.object import OBJT_FILE, VmObject
from emulator.variants.base import Variant


class PipWaitUnderVnode(MapClean):
    async def sync_pages(
        self, k: Kernel, obj: VmObject | None, offset: int, size: int, writable: bool,
        syncio: bool, invalidate: bool,
    ) -> bool:
        bottom, boffset = self.bottom_object(k, obj, offset)
        if (not invalidate or bottom is None or bottom.kind != OBJT_FILE
                or not self.flushes(k, bottom, writable)):
            return await super().sync_pages(k, obj, offset, size, writable, syncio, invalidate)
        first, last = page_range(boffset, size)
        assert bottom.vnode is not None
        await bottom.vnode.lock()
        await bottom.lock.lock()
        ok = await self.page_clean(bottom, first, last, True)
        await bottom.pip_wait()  # the bug: "objmcl", with the vnode locked
        await self.page_remove(bottom, first, last, self.clean_only(k, bottom))
        await bottom.lock.unlock()
        await bottom.vnode.unlock()
        return ok


VARIANT = Variant(
    "pip_wait_under_vnode", PipWaitUnderVnode().clean,
    doc="invalidate waits for the object's paging in progress holding the vnode lock",
    profile="freebsd5", catches=(Rule.DEADLOCK,),
)
