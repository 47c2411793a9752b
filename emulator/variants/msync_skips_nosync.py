"""Mutant ``msync_skips_nosync``: msync(2) cleans with OBJPC_NOSYNC, as the syncer does.

MAP_NOSYNC (and MADV_NOSYNC) only tell the syncer to leave the pages a mapping
dirties: vm_object_sync never passes OBJPC_NOSYNC, so msync(MS_SYNC) still
writes them (mmap(2): "msync(2) ... will flush them").  This variant passes it on
every object clean of msync, so an MS_SYNC returns 0 while a store made through a
MAP_NOSYNC mapping is neither in the buffer cache nor on disk.
"""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.object import VmObject
from emulator.variants.base import Variant


class MsyncSkipsNosync(MapClean):
    async def flush_object(self, obj: VmObject, first: int, last: int, sync: bool,
                           nosync: bool = False) -> bool:
        return await super().flush_object(obj, first, last, sync, nosync=True)  # the bug


VARIANT = Variant(
    "msync_skips_nosync", MsyncSkipsNosync().clean,
    doc="msync(2) passes OBJPC_NOSYNC: MS_SYNC leaves MAP_NOSYNC pages unwritten",
    profile="freebsd5", catches=(Rule.LOST_STORE, Rule.DURABLE),
)
