"""Mutant ``swapped_codes`` (H): the man page's error codes under ``freebsd5``."""

from emulator.kern.clean import MapClean
from emulator.kern.kern_return import KernReturn
from emulator.kern.kernel import Kernel
from emulator.variants.base import Variant


class SwappedCodes(MapClean):
    def rv_no_entry(self, k: Kernel) -> KernReturn:
        return KernReturn.INVALID_ARGUMENT  # manpage's code; freebsd5 says INVALID_ADDRESS

    def rv_submap(self, k: Kernel) -> KernReturn:
        return KernReturn.INVALID_ADDRESS


VARIANT = Variant(
    "swapped_codes", SwappedCodes().clean, doc="man-page codes under freebsd5",
    profile="freebsd5", catches=("return_code",),
)
