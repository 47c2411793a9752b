"""Invalidating msyncs over user-wired file and anonymous mappings while the mappings are
stored to, unwired and wired again, and another process stores to the same file pages:
modern refuses invalidate over a wired entry; no profile frees a wired page.

Layout of p0: f wired (shared, writable), anonymous memory wired.  p1 maps f shared.
"""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, anon_mapping, file_mapping, hx, stores, stride

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 2, "pages of the file and of each mapping"),
    "ops": (int, 3, "stores by p1's writer"),
}
LIMITS = {"pages": (1, 64), "ops": (1, 64)}

P1_BASE = 0x200000  # p1's view of f


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    pages, ops = params["pages"], params["ops"]
    length = pages * PAGE
    wfile, wanon = BASE, BASE + stride(pages)
    cleaner = [
        ["store", hx(wfile)],
        ["msync", hx(wfile), length, "sync,invalidate"],  # wired: refused by modern
        ["msync", hx(wanon), length, "sync,invalidate"],
        ["munlock", hx(wfile), length],
        ["msync", hx(wfile), length, "sync,invalidate"],  # unwired now: allowed everywhere
        ["mlock", hx(wfile), length],
        ["msync", hx(wfile), length, "sync,invalidate"],
        ["msync", hx(wfile), length, "sync"],
    ]
    wirer = [["munlock", hx(wanon), length], ["store", hx(wanon)], ["mlock", hx(wanon), length],
             *stores(wfile, pages, 2, first=pages - 1)]
    return {
        "files": {"f": {"pages": pages}},
        "processes": {
            "p0": {"mappings": [
                file_mapping(wfile, pages, wired=True),
                anon_mapping(wanon, pages, wired=True),
            ]},
            "p1": {"mappings": [file_mapping(P1_BASE, pages)]},
        },
        "cpus": [
            {"process": "p0", "program": cleaner},
            {"process": "p0", "program": wirer},
            {"process": "p1", "program": stores(P1_BASE, pages, ops)},
        ],
    }
