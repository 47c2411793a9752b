"""The page daemon, the syncer and another process's invalidating msync free and write pages
while one CPU stores and msyncs a shared file mapping (async, then sync) and a second process
reads the file through a read-only mapping (background agents on: FIDELITY.md D19).

The async msync leaves each written page busy until the disk completes it, so the sync
msync after it often sleeps on a busy page, and the reader's faults busy clean pages
under it; the page daemon and the invalidating msync free pages, so a page a clean slept
on may be gone when it wakes (vm_object_page_clean must look it up again).
"""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, SLOT, file_mapping, hx

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 1, "pages of the file mapping"),
    "rounds": (int, 3, "store-then-msync rounds by cpu0"),
    "daemon": (int, 8, "page daemon passes"),
    "syncer": (int, 1, "syncer passes"),
    "async": (int, 1, "1: each round msyncs async before it msyncs sync"),
    "loads": (int, 6, "loads by the reader (process p1, read-only mapping)"),
    "invalidates": (int, 2, "load-then-msync(sync,invalidate) rounds by process p2"),
}
LIMITS = {"pages": (1, 64), "rounds": (1, 16), "daemon": (0, 8), "syncer": (0, 8),
          "async": (0, 1), "loads": (0, 64), "invalidates": (0, 16)}

# p1 and p2 map the file elsewhere, so addresses tell the processes apart.
READER_BASE = 16 * SLOT
INVALIDATOR_BASE = 32 * SLOT


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    pages, rounds = params["pages"], params["rounds"]
    cleaner: list[list[Any]] = []
    for r in range(rounds):
        cleaner.append(["store", hx(BASE + (r % pages) * PAGE)])
        if params["async"]:
            cleaner.append(["msync", hx(BASE), pages * PAGE, "async"])
        cleaner.append(["msync", hx(BASE), pages * PAGE, "sync"])
    reader = [["load", hx(READER_BASE + (i % pages) * PAGE)] for i in range(params["loads"])]
    invalidator: list[list[Any]] = []
    for r in range(params["invalidates"]):
        invalidator.append(["load", hx(INVALIDATOR_BASE + (r % pages) * PAGE)])
        invalidator.append(["msync", hx(INVALIDATOR_BASE), pages * PAGE, "sync,invalidate"])
    processes = {
        "p0": {"mappings": [file_mapping(BASE, pages)]},
        "p1": {"mappings": [file_mapping(READER_BASE, pages, prot="r")]},
        "p2": {"mappings": [file_mapping(INVALIDATOR_BASE, pages)]},
    }
    cpus = [{"process": "p0", "program": cleaner}]
    for process, program in (("p1", reader), ("p2", invalidator)):
        if program:
            cpus.append({"process": process, "program": program})
    return {
        "files": {"f": {"pages": pages}},
        "processes": processes,
        "cpus": cpus,
        "agents": {"pagedaemon": params["daemon"], "syncer": params["syncer"]},
    }
