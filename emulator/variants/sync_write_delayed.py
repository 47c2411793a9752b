"""Mutant ``sync_write_delayed``: a synchronous page clean delays its writes (bdwrite).

MS_SYNC asks the pager for VM_PAGER_PUT_SYNC, hence IO_SYNC and bwrite; this
clean hands every page to its buffer as a delayed write instead, as the
asynchronous flavour does where the filesystem delays writes.  read(2) sees the
data at once (coherent), so ``lost_store`` stays quiet; the disk does not hold
it until the syncer or an fsync writes the buffer, which ``durable`` reports
where msync(MS_SYNC) promises durability.
"""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.kernel import Kernel
from emulator.variants.base import Variant


class SyncWriteDelayed(MapClean):
    def writes_delayed(self, k: Kernel, sync: bool) -> bool:
        return sync or super().writes_delayed(k, sync)  # bdwrite where IO_SYNC asks for bwrite


VARIANT = Variant(
    "sync_write_delayed", SyncWriteDelayed().clean,
    doc="MS_SYNC writes its pages with bdwrite (delayed) instead of bwrite",
    profile="manpage", catches=(Rule.DURABLE,),
)
