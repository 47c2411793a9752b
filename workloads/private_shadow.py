"""A private (copy-on-write) mapping of a file at a nonzero offset is written, so a shadow
object appears over the file, and msynced (sync, invalidate, async) while another
process stores to the same file pages through a shared mapping: the clean must follow
the backing chain to the file at the right offset.
"""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, file_mapping, hx, stores

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 2, "pages of the private mapping"),
    "offset": (int, 1, "file offset of the private mapping, in pages"),
    "ops": (int, 3, "stores by p1 to the file pages the private mapping covers"),
}
LIMITS = {"pages": (1, 64), "offset": (0, 64), "ops": (1, 64)}

P1_BASE = 0x200000  # p1's shared view of all of f


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    pages, offset, ops = params["pages"], params["offset"], params["ops"]
    length = pages * PAGE
    last = BASE + (pages - 1) * PAGE
    owner = [
        ["store", hx(BASE)],  # the first write: the entry gets its shadow, page 0 a copy
        ["msync", hx(BASE), length, "sync"],
        ["load", hx(last)],  # read through the chain: the file's page
        ["msync", hx(BASE), length, "sync,invalidate"],
        ["store", hx(last)],
        ["msync", hx(BASE), length, "async"],
        ["msync", hx(BASE), length, "sync"],
    ]
    return {
        "files": {"f": {"pages": offset + pages}},
        "processes": {
            "p0": {"mappings": [file_mapping(BASE, pages, offset=offset, private=True)]},
            "p1": {"mappings": [file_mapping(P1_BASE, offset + pages)]},
        },
        "cpus": [
            {"process": "p0", "program": owner},
            {"process": "p1", "program": stores(P1_BASE + offset * PAGE, pages, ops)},
        ],
    }
