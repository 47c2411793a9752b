"""Mutant ``async_delayed_no_fsync`` (H5): asynchronous cleans delay their writes, and
the object clean has no VOP_FSYNC.

Commit d1e8f983 removed VOP_FSYNC from the object clean (it "syncs the entire
underlying file" and slowed NFS), leaving it under ``#if 0``; meanwhile an
asynchronous clean passes VM_PAGER_CLUSTER_OK, which a filesystem such as UFS
turns into a delayed write (bdwrite): the page is left clean, its data in a
dirty buffer.  Together they make msync(MS_ASYNC) followed by msync(MS_SYNC)
over the same range return 0 with the data in the buffer cache only: the
synchronous clean finds the pages clean and writes nothing (FIDELITY.md D1).
This variant is the manpage routine with that write path, judged by the man
page's promise that MS_SYNC writes synchronously: ``durable`` reports it.
(The modern profile has the same path and does not promise durability for
MS_SYNC, as msync.2's BUGS section admits.)
"""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.kernel import Kernel
from emulator.variants.base import Variant


class AsyncDelayedNoFsync(MapClean):
    def delays_writes(self, k: Kernel) -> bool:
        return True  # CLUSTER_OK -> bdwrite, and no VOP_FSYNC after a sync clean


VARIANT = Variant(
    "async_delayed_no_fsync", AsyncDelayedNoFsync().clean,
    doc="MS_ASYNC leaves pages in delayed-write buffers that MS_SYNC never writes (H5)",
    profile="manpage", catches=(Rule.DURABLE,),
)
