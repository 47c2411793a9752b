"""Two processes share a file: p0 stores and msyncs with sync,invalidate while p1 keeps
storing to the same pages (the freebsd5 profile loses a store)."""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, file_mapping, hx, stores

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 2, "pages of the shared file"),
    "ops": (int, 4, "stores by p1"),
    "rounds": (int, 1, "store-then-invalidate rounds by p0"),
}
LIMITS = {"pages": (1, 64), "ops": (1, 64), "rounds": (1, 16)}

P1_BASE = 0x100000  # p1 maps the file elsewhere, so addresses tell the processes apart


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    pages, ops, rounds = params["pages"], params["ops"], params["rounds"]
    p0: list[list[Any]] = []
    for _ in range(rounds):
        p0 += stores(BASE, pages, pages)
        p0.append(["msync", hx(BASE), pages * PAGE, "sync,invalidate"])
    p0.append(["load", hx(BASE)])
    return {
        "files": {"f": {"pages": pages}},
        "processes": {
            "p0": {"mappings": [file_mapping(BASE, pages)]},
            "p1": {"mappings": [file_mapping(P1_BASE, pages)]},
        },
        "cpus": [
            {"process": "p0", "program": p0},
            {"process": "p1", "program": stores(P1_BASE, pages, ops)},
        ],
    }
