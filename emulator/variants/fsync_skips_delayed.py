"""Mutant ``fsync_skips_delayed``: VOP_FSYNC waits for the writes in flight but does
not start the delayed ones.

With delayed writes (bdwrite: the modern profile's asynchronous page clean), the
pages an MS_ASYNC or fsync's own page clean handed to the buffer cache stay in
dirty buffers: fsync(2) returns 0 with the data coherent (read(2) sees it) but
not on disk.  ``durable`` reports it.
"""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.object import VmObject
from emulator.variants.base import Variant


class FsyncSkipsDelayed(MapClean):
    async def push_delayed(self, obj: VmObject) -> None:
        return  # the dirty buffers wait for the syncer: too late for MNT_WAIT


VARIANT = Variant(
    "fsync_skips_delayed", FsyncSkipsDelayed().clean,
    doc="VOP_FSYNC waits for writes in flight but never starts the delayed ones",
    profile="modern", catches=(Rule.DURABLE,),
)
