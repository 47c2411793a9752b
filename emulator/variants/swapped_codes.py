"""Mutant ``swapped_codes`` (H): the man page's error codes under ``freebsd5``."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.kern_return import KernReturn
from emulator.kern.kernel import Kernel
from emulator.kern.profile import MANPAGE
from emulator.variants.base import Variant


class SwappedCodes(MapClean):
    def rv_no_entry(self, k: Kernel) -> KernReturn:
        return MANPAGE.no_entry  # freebsd5 says INVALID_ADDRESS

    def rv_hole(self, k: Kernel) -> KernReturn:
        return MANPAGE.hole

    def rv_submap(self, k: Kernel) -> KernReturn:
        assert MANPAGE.submap is not None
        return MANPAGE.submap


VARIANT = Variant(
    "swapped_codes", SwappedCodes().clean, doc="man-page codes under freebsd5",
    profile="freebsd5", catches=(Rule.RETURN_CODE,),
)
