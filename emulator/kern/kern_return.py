"""Return codes: Mach's kern_return_t and the errno names msync(2) maps them to."""

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


def kern_to_errno(rv: KernReturn) -> str | int:
    """Map a clean's result to msync(2)'s, as sys_msync does today.

    Returns 0 on success, else an errno name.
    """
    if rv == KernReturn.SUCCESS:
        return 0
    if rv == KernReturn.INVALID_ADDRESS:
        return "ENOMEM"
    if rv == KernReturn.INVALID_ARGUMENT:
        return "EBUSY"
    return "EIO"
