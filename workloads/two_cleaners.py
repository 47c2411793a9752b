"""Two CPUs of one process msync the same file range while a third writes to it.

Small by default so that bounded exhaustive search (``--strategy dfs``) covers
every schedule with two preemptions in seconds; raise the parameters for
random and PCT campaigns.
"""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, file_mapping, hx, stores

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 1, "pages of the file mapping"),
    "ops": (int, 2, "stores by the writer"),
    "rounds": (int, 1, "msyncs per cleaner"),
}
LIMITS = {"pages": (1, 64), "ops": (1, 64), "rounds": (1, 16)}


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    pages, ops, rounds = params["pages"], params["ops"], params["rounds"]
    msync = ["msync", hx(BASE), pages * PAGE, "sync"]
    return {
        "files": {"f": {"pages": pages}},
        "processes": {"p0": {"mappings": [file_mapping(BASE, pages)]}},
        "cpus": [
            {"process": "p0", "program": [list(msync) for _ in range(rounds)]},
            {"process": "p0", "program": [list(msync) for _ in range(rounds)]},
            {"process": "p0", "program": stores(BASE, pages, ops)},
        ],
    }
