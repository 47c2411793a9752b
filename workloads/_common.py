"""Shared helpers for the workload modules: page arithmetic and spec fragments."""

from __future__ import annotations

from typing import Any

from emulator.kern.param import PAGE_SIZE

PAGE = PAGE_SIZE
BASE = 0x10000  # where the first mapping of a process starts
SLOT = 0x10000  # mappings of one process start on multiples of this


def hx(addr: int) -> str:
    """An address as the hex string a user would write."""
    return hex(addr)


def stride(pages: int) -> int:
    """Distance between consecutive mapping slots: room for ``pages`` and a 1-page hole."""
    return SLOT * ((pages * PAGE) // SLOT + 1)


def file_mapping(addr: int, pages: int, file: str = "f", offset: int = 0,
                 **extra: Any) -> dict[str, Any]:
    return {"addr": hx(addr), "pages": pages, "file": file, "offset": offset, "prot": "rw",
            **extra}


def anon_mapping(addr: int, pages: int, **extra: Any) -> dict[str, Any]:
    return {"addr": hx(addr), "pages": pages, "anon": True, "prot": "rw", **extra}


def stores(base: int, pages: int, count: int, first: int = 0) -> list[list[Any]]:
    """``count`` stores cycling over the ``pages`` pages at ``base``, from page ``first``."""
    return [["store", hx(base + ((first + i) % pages) * PAGE)] for i in range(count)]
