"""msync with length 0 and clean with start == end while another CPU unmaps and remaps the
entry containing start, and a third writes to it."""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, file_mapping, hx, stores

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 2, "pages of the raced entry (and of its neighbour)"),
    "ops": (int, 3, "stores by the writer"),
}
LIMITS = {"pages": (1, 64), "ops": (1, 64)}


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    pages, ops = params["pages"], params["ops"]
    length = pages * PAGE
    inside = BASE + (pages // 2) * PAGE  # a page-aligned address inside the entry
    odd = inside + 0x800  # clean's start and end need not be aligned
    cleaner = [
        ["msync", hx(inside), 0, "sync"],
        ["clean", hx(odd), hx(odd), True, False],
        ["msync", hx(inside), 0, "sync,invalidate"],
        ["clean", hx(odd), hx(odd), True, True],
    ]
    remapper = [
        ["munmap", hx(BASE), length],
        ["mmap", hx(BASE), pages, {"file": "f", "offset": pages}],
        ["munmap", hx(BASE), length],
        ["mmap", hx(BASE), pages, {"anon": True}],
    ]
    return {
        "files": {"f": {"pages": 2 * pages}},
        "processes": {"p0": {"mappings": [
            file_mapping(BASE, pages, offset=0),
            file_mapping(BASE + length, pages, offset=pages),  # the neighbour entry
        ]}},
        "cpus": [
            {"process": "p0", "program": cleaner},
            {"process": "p0", "program": remapper},
            {"process": "p0", "program": stores(BASE, pages, ops)},
        ],
    }
