"""Mutant ``writable_entries_only`` (the mprotect flush gap, FIDELITY.md D19): today's clean
with the 2003 test kept -- an object is flushed only through a writable entry, so a store
made before mprotect(PROT_READ) is not written by the msync(MS_SYNC) after it, which
returns success all the same."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.kernel import Kernel
from emulator.kern.object import VmObject
from emulator.variants.base import Variant


class WritableEntriesOnly(MapClean):
    def flushes(self, k: Kernel, bottom: VmObject, writable: bool) -> bool:
        # The bug: the entry's protection still decides, as it did in 2003.
        return writable and super().flushes(k, bottom, writable)


VARIANT = Variant(
    "writable_entries_only", WritableEntriesOnly().clean,
    doc="flushes an object only through a writable entry (the 2003 test): a store made "
        "before mprotect(PROT_READ) is not written by a later msync",
    profile="modern", catches=(Rule.LOST_STORE,),
)
