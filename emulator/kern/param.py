"""Machine parameters and page arithmetic (sys/vm/vm_param.h, machine/param.h)."""

from __future__ import annotations

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = PAGE_SIZE - 1

VM_MIN_ADDRESS = 0
VM_MAX_ADDRESS = 1 << 47  # the user address space of every map
ADDR_LIMIT = 1 << 64  # msync's wrap-around check


def trunc_page(addr: int) -> int:
    """Round ``addr`` down to a page boundary."""
    return addr & ~PAGE_MASK


def round_page(addr: int) -> int:
    """Round ``addr`` up to a page boundary."""
    return (addr + PAGE_MASK) & ~PAGE_MASK


def atop(addr: int) -> int:
    """Return the page number of ``addr``."""
    return addr >> PAGE_SHIFT


def ptoa(pages: int) -> int:
    """Return the byte address of page number ``pages``."""
    return pages << PAGE_SHIFT
