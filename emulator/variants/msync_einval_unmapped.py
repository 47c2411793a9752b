"""Mutant ``msync_einval_unmapped`` (H16): msync says EINVAL for an unmapped range.

Until r265534 (pho, 2014-05-07, "Reported by: ATF"), msync(2) turned
KERN_INVALID_ADDRESS into EINVAL, as the 2003 switch did; the man page and POSIX
say ENOMEM when the range is not mapped.  Under ``modern`` that is a wrong return
code, which the return_code rule reports at msync's return.
"""

from types import MappingProxyType

from emulator.check import Rule
from emulator.kern.clean import REFERENCE
from emulator.kern.kern_return import KernReturn
from emulator.kern.profile import MODERN_ERRNO
from emulator.variants.base import Variant

PRE_R265534 = MappingProxyType({**MODERN_ERRNO, KernReturn.INVALID_ADDRESS: "EINVAL"})

VARIANT = Variant(
    "msync_einval_unmapped", REFERENCE.clean, msync_errno=PRE_R265534,
    doc="msync returns EINVAL, not ENOMEM, for an unmapped range (before r265534)",
    profile="modern", catches=(Rule.RETURN_CODE,),
)
