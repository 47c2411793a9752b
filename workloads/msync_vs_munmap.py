"""One CPU msyncs and cleans a two-entry file range while another unmaps and remaps the
second entry and a third writes to both."""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, file_mapping, hx, stores


def read_modify_write(base: int, pages: int, count: int) -> list[list[Any]]:
    """Load then store each page in turn: the load maps it writable, the store
    then only sets the modified bit (no fault, no dirty flag)."""
    out: list[list[Any]] = []
    for op in stores(base, pages, count):
        out += [["load", op[1]], op]
    return out

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 2, "pages of each of the two entries"),
    "ops": (int, 4, "load-then-store pairs by the writer"),
}
LIMITS = {"pages": (1, 64), "ops": (1, 64)}


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    pages, ops = params["pages"], params["ops"]
    length = pages * PAGE
    second = BASE + length
    cleaner = [
        ["msync", hx(BASE), 2 * length, "sync"],
        ["clean", hx(BASE), hx(second + length), True, False],
        ["msync", hx(BASE), 2 * length, "async"],
        ["msync", hx(BASE), 2 * length, "sync,invalidate"],
    ]
    unmapper = [
        ["munmap", hx(second), length],
        ["mmap", hx(second), pages, {"anon": True}],
        ["munmap", hx(second), length],
        ["mmap", hx(second), pages, {"file": "f", "offset": pages}],
    ]
    return {
        "files": {"f": {"pages": 2 * pages}},
        "processes": {"p0": {"mappings": [
            file_mapping(BASE, pages, offset=0),
            file_mapping(second, pages, offset=pages),
        ]}},
        "cpus": [
            {"process": "p0", "program": cleaner},
            {"process": "p0", "program": unmapper},
            {"process": "p0", "program": read_modify_write(BASE, 2 * pages, ops)},
        ],
    }
