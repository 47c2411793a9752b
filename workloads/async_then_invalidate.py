"""p0 stores, msyncs asynchronously, then invalidates while those writes may still be in
flight; p1 reads the file meanwhile.

Under freebsd5 an asynchronous write leaves its page clean at issue and soft-busy until
it completes, so the invalidating msync's clean passes over the page (it tests dirty
before waiting for the busy): only the page removal's wait for the soft busy keeps it
from freeing a page under its write (H2, ``invalidate_ignores_soft_busy``).
"""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, file_mapping, hx, stores

# Only freebsd5 leaves a page clean while its write is in flight: elsewhere a synchronous
# clean waits for the write, and a portfolio leaves this workload out (``aimed_at``).
PROFILES = ("freebsd5",)
PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 2, "pages of the shared file"),
    "loads": (int, 2, "loads by p1"),
}
LIMITS = {"pages": (1, 64), "loads": (1, 64)}

P1_BASE = 0x100000  # p1 maps the file elsewhere, so addresses tell the processes apart


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    pages, loads = params["pages"], params["loads"]
    length = pages * PAGE
    return {
        "files": {"f": {"pages": pages}},
        "processes": {
            "p0": {"mappings": [file_mapping(BASE, pages)]},
            "p1": {"mappings": [file_mapping(P1_BASE, pages)]},
        },
        "cpus": [
            {"process": "p0", "program": [
                *stores(BASE, pages, pages),
                ["msync", hx(BASE), length, "async"],
                ["msync", hx(BASE), length, "sync,invalidate"],
            ]},
            {"process": "p1", "program": [["load", hx(P1_BASE + (i % pages) * PAGE)]
                                          for i in range(loads)]},
        ],
    }
