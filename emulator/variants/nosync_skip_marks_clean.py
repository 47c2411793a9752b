"""Mutant ``nosync_skip_marks_clean``: the syncer passes over a PGA_NOSYNC page but
still records the object clean.

vm_object_page_clean with OBJPC_NOSYNC leaves a NOSYNC page dirty and writable
(vm_object_page_remove_write skips pmap_remove_write), so no write fault will
say again that the object is dirty; it must keep the object might-be-dirty
(``*allclean = FALSE``; 2003: ``clearobjflags = 0``, "the object flags were not
cleared in this case so we do not have to set them").  This variant forgets:
after a syncer pass, msync(MS_SYNC) finds the object clean and returns 0
without writing the store made through the MAP_NOSYNC mapping.
"""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.variants.base import Variant


class NosyncSkipMarksClean(MapClean):
    def nosync_leaves_dirty(self) -> bool:
        return False  # the bug


VARIANT = Variant(
    "nosync_skip_marks_clean", NosyncSkipMarksClean().clean,
    doc="a NOSYNC page the syncer skips does not keep the object might-be-dirty",
    profile="freebsd5", catches=(Rule.LOST_STORE, Rule.ASYNC_CLEAN, Rule.DURABLE),
)
