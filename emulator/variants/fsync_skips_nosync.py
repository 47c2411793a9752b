"""Mutant ``fsync_skips_nosync``: fsync(2) cleans the file's object with OBJPC_NOSYNC.

kern_fsync's vm_object_page_clean(obj, 0, 0, 0) hands every dirty page to the
buffer cache, MAP_NOSYNC ones included (mmap(2): the way to be sure such data
reaches the disk is fsync(2)).  This variant skips them as the syncer does, so
fsync returns 0 while a store made through a MAP_NOSYNC mapping is not on disk.
"""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.object import VmObject
from emulator.variants.base import Variant


class FsyncSkipsNosync(MapClean):
    async def fsync(self, obj: VmObject) -> bool:
        assert obj.vnode is not None and obj.pager is not None
        await obj.vnode.lock()
        since = obj.pager.write_errors
        await obj.lock.lock()
        await self.page_clean(obj, 0, obj.size, False, nosync=True)  # the bug
        await obj.lock.unlock()
        ok = await self.vop_fsync(obj, since)
        await obj.vnode.unlock()
        return ok


VARIANT = Variant(
    "fsync_skips_nosync", FsyncSkipsNosync().clean,
    doc="fsync(2) cleans with OBJPC_NOSYNC: MAP_NOSYNC pages never reach the disk",
    profile="freebsd5", catches=(Rule.DURABLE,),
)
