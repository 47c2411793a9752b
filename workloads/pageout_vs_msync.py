"""The page daemon and the syncer run while one CPU stores and msyncs a shared file
mapping and another reads and writes it (background agents on: FIDELITY.md D19)."""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, file_mapping, hx

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 2, "pages of the file mapping"),
    "rounds": (int, 3, "store-then-msync rounds by cpu0"),
    "daemon": (int, 8, "page daemon passes"),
    "syncer": (int, 1, "syncer passes"),
}
LIMITS = {"pages": (1, 64), "rounds": (1, 16), "daemon": (0, 8), "syncer": (0, 8)}


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    pages, rounds = params["pages"], params["rounds"]
    cleaner: list[list[Any]] = []
    for r in range(rounds):
        cleaner.append(["store", hx(BASE + (r % pages) * PAGE)])
        cleaner.append(["msync", hx(BASE), pages * PAGE, "sync"])
    reader: list[list[Any]] = []
    for r in range(rounds):
        for p in range(pages):
            reader.append(["load", hx(BASE + p * PAGE)])
        reader.append(["store", hx(BASE + ((r + 1) % pages) * PAGE)])
    return {
        "files": {"f": {"pages": pages}},
        "processes": {"p0": {"mappings": [file_mapping(BASE, pages)]}},
        "cpus": [{"process": "p0", "program": cleaner}, {"process": "p0", "program": reader}],
        "agents": {"pagedaemon": params["daemon"], "syncer": params["syncer"]},
    }
