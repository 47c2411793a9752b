"""A writer and a cleaner on a file whose every write fails (EIO): dirty data must stay dirty."""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, file_mapping, hx, stores

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 2, "pages of the file mapping"),
    "ops": (int, 4, "stores by the writer"),
}
LIMITS = {"pages": (1, 64), "ops": (1, 64)}


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    pages, ops = params["pages"], params["ops"]
    length = pages * PAGE
    return {
        "files": {"f": {"pages": pages, "fail_writes": True}},
        "processes": {"p0": {"mappings": [file_mapping(BASE, pages)]}},
        "cpus": [
            {"process": "p0", "program": [
                ["store", hx(BASE)],
                ["msync", hx(BASE), length, "sync"],
                ["msync", hx(BASE), length, "async"],
                ["msync", hx(BASE), length, "sync"],
            ]},
            {"process": "p0", "program": stores(BASE, pages, ops)},
        ],
    }
