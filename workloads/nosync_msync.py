"""MAP_NOSYNC and madvise(MADV_NOSYNC/MADV_AUTOSYNC) against the syncer, msync and
fsync (FIDELITY.md D19, H7, H18).

Process p0 maps the file shared with MAP_NOSYNC, p1 maps it shared without.
cpu0 (p0) stores to the first ``sync_pages`` pages (its write faults mark them
PGA_NOSYNC), lets the other agents in, msyncs them with MS_SYNC (``rounds`` times), stores to the
first page again and, with ``fsync``, fsyncs the file.  cpu1 (p1) advises the
last page MADV_NOSYNC, stores to it (NOSYNC through the advised entry),
advises it MADV_AUTOSYNC again, stores to it once more (no fault: the mark
stays) and msyncs that page MS_ASYNC.  The syncer (``syncer`` passes, over f and
``spare_files`` files nobody maps: a longer walk, so a pass may fall between a store and
the MS_SYNC after it) skips the NOSYNC pages and must leave the object dirty; msync(2)
and fsync(2) write them anyway.
"""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, file_mapping, hx, stores

# The era whose syncer's OBJPC_NOSYNC is read from the source here (2003 vfs_msync); in the
# hunt, its arms join freebsd5's portfolio only, leaving the others' choices as they were.
PROFILES = ("freebsd5",)

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 2, "pages of the file, mapped shared by both processes"),
    "sync_pages": (int, 1, "pages cpu0's MS_SYNC covers from the first"),
    "fsync": (int, 1, "1: cpu0 fsyncs the file last; 0: not"),
    "syncer": (int, 8, "syncer passes"),
    "yields": (int, 2, "schedule points cpu0 offers between its stores and its MS_SYNC"),
    "rounds": (int, 1, "times cpu0 stores and msyncs"),
    "spare_files": (int, 2, "files nobody maps: a longer syncer walk (one step each)"),
}
LIMITS = {"pages": (1, 64), "sync_pages": (1, 64), "fsync": (0, 1), "syncer": (0, 8),
          "yields": (0, 16), "rounds": (1, 8),
          "spare_files": (0, 8)}


def build(params: dict[str, Any], seed: int) -> dict[str, Any]:
    pages = params["pages"]
    last = BASE + (pages - 1) * PAGE
    sync_pages = min(params["sync_pages"], pages)
    program0: list[list[Any]] = []
    for _ in range(params["rounds"]):
        program0 += stores(BASE, sync_pages, sync_pages)
        program0 += [["yield"]] * params["yields"]
        program0.append(["msync", hx(BASE), sync_pages * PAGE, "sync"])
    program0.append(["store", hx(BASE)])
    if params["fsync"]:
        program0.append(["fsync", "f"])
    program1: list[list[Any]] = [
        ["madvise", hx(last), PAGE, "nosync"],
        ["store", hx(last)],
        ["madvise", hx(last), PAGE, "autosync"],
        ["store", hx(last)],
        ["msync", hx(last), PAGE, "async"],
    ]
    spec: dict[str, Any] = {
        "files": {"f": {"pages": pages},
                  **{f"s{i}": {"pages": 1} for i in range(params["spare_files"])}},
        "processes": {
            "p0": {"mappings": [file_mapping(BASE, pages, nosync=True)]},
            "p1": {"mappings": [file_mapping(BASE, pages)]},
        },
        "cpus": [{"process": "p0", "program": program0},
                 {"process": "p1", "program": program1}],
    }
    if params["syncer"]:
        spec["agents"] = {"syncer": params["syncer"]}
    return spec
