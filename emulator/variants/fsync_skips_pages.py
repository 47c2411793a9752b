"""Mutant ``fsync_skips_pages``: fsync(2) calls VOP_FSYNC without first cleaning the
file's VM object.

Stores through a shared mapping live in the object's dirty pages, not in the
buffer cache: kern_fsync runs vm_object_page_clean(obj, 0, 0, 0) before
VOP_FSYNC so that they reach a buffer at all.  Without it fsync returns 0 while
neither the buffer cache nor the disk holds them; ``durable`` reports it.
"""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.object import VmObject
from emulator.variants.base import Variant


class FsyncSkipsPages(MapClean):
    async def fsync(self, obj: VmObject) -> bool:
        assert obj.vnode is not None and obj.pager is not None
        await obj.vnode.lock()
        ok = await self.vop_fsync(obj, obj.pager.write_errors)  # no vm_object_page_clean
        await obj.vnode.unlock()
        return ok


VARIANT = Variant(
    "fsync_skips_pages", FsyncSkipsPages().clean,
    doc="fsync(2) calls VOP_FSYNC without cleaning the file's dirty pages first",
    profile="freebsd5", catches=(Rule.DURABLE,),
)
