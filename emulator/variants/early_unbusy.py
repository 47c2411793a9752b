"""Mutant ``early_unbusy`` (S): unbusies the page before its write completes."""

from emulator.kern.clean import MapClean
from emulator.kern.object import VmObject
from emulator.kern.page import VmPage
from emulator.machine import Variant


class EarlyUnbusy(MapClean):
    async def flush_page(self, obj: VmObject, page: VmPage, sync: bool) -> bool:
        k = obj.k
        await k.point()
        io = k.disk.issue(page, sync)
        page.release_shared(k.disk.aid)  # too early: the write is still in flight
        if not sync:
            return True
        await obj.lock.unlock()
        await k.disk.wait(io)
        await obj.lock.lock()
        return not io.error


VARIANT = Variant(
    "early_unbusy", EarlyUnbusy().clean, doc="unbusies before the write completes",
    profile="manpage", catches=("lost_store",),
)
