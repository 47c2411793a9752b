"""Return codes: Mach's kern_return_t (msync(2)'s errno for each is in profile.py)."""

from __future__ import annotations

import enum


class KernReturn(enum.IntEnum):
    """sys/vm/vm_param.h's KERN_* codes (the subset the VM paths here return)."""

    SUCCESS = 0
    INVALID_ADDRESS = 1
    PROTECTION_FAILURE = 2
    INVALID_ARGUMENT = 4
    FAILURE = 5

    @property
    def label(self) -> str:
        """Return the C name, ``KERN_SUCCESS`` and so on."""
        return f"KERN_{self.name}"


# The codes the hot paths return and test, as plain module names: reading a member
# through its Enum class (``KernReturn.SUCCESS``) runs EnumType's attribute lookup, ~80 ns.
KERN_SUCCESS = KernReturn.SUCCESS
KERN_INVALID_ADDRESS = KernReturn.INVALID_ADDRESS
KERN_PROTECTION_FAILURE = KernReturn.PROTECTION_FAILURE
