"""Three processes map one file shared at different offsets, each storing and msyncing
its own view (sync, async, and the whole file with invalidate): a page reached through
an entry at a nonzero offset must be flushed at the right file page.

p0 maps f's pages [0, pages), p1 maps [shift, shift + pages), p2 maps all of f.
"""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, file_mapping, hx, stores

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 2, "pages of p0's and p1's views"),
    "shift": (int, 1, "file offset of p1's view, in pages (at least 1)"),
    "ops": (int, 3, "stores by each process"),
}
LIMITS = {"pages": (1, 64), "shift": (1, 64), "ops": (1, 64)}

P1_BASE = 0x200000
P2_BASE = 0x300000


def _program(base: int, pages: int, ops: int, flags: tuple[str, ...]) -> list[list[Any]]:
    """Stores interleaved with msyncs of the whole view, one per flag set."""
    out: list[list[Any]] = []
    for i, flag in enumerate(flags):
        out += stores(base, pages, max(1, ops // len(flags)), first=i)
        out.append(["msync", hx(base), pages * PAGE, flag])
    return out


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    pages, shift, ops = params["pages"], params["shift"], params["ops"]
    size = pages + shift
    # p2 stores to the last page, then msyncs the whole file: complete cleans that
    # record the object clean (its clean generation).
    p2 = _program(P2_BASE + (size - 1) * PAGE, 1, ops, ("sync",))
    p2 += [["msync", hx(P2_BASE), size * PAGE, "sync"],
           ["msync", hx(P2_BASE), size * PAGE, "sync,invalidate"]]
    return {
        "files": {"f": {"pages": size}},
        "processes": {
            "p0": {"mappings": [file_mapping(BASE, pages)]},
            "p1": {"mappings": [file_mapping(P1_BASE, pages, offset=shift)]},
            "p2": {"mappings": [file_mapping(P2_BASE, size)]},
        },
        "cpus": [
            {"process": "p0", "program": _program(BASE, pages, ops, ("sync", "async", "sync"))},
            {"process": "p1", "program": _program(P1_BASE, pages, ops, ("sync", "sync"))},
            {"process": "p2", "program": p2},
        ],
    }
