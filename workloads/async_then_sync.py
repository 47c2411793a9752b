"""MS_ASYNC, then a ranged MS_SYNC, then fsync(2), while another CPU stores: the
buffer cache and durability (FIDELITY.md D1, D10).

cpu0 stores to every page of a shared file mapping, hands them to the buffer
cache with msync(MS_ASYNC), stores to its first page again, msyncs the first
``sync_pages`` pages with MS_SYNC (the whole file when ``sync_pages`` equals
``pages``: vm_object_sync's whole-file path in a profile that has it) and, with
``fsync``, stores to the last page and fsyncs the file.  cpu1 stores to the pages meanwhile.  Where
asynchronous writes are delayed (bdwrite), the pages MS_ASYNC wrote sit in dirty
buffers that only the syncer or an fsync writes to disk.
"""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, file_mapping, hx, stores

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 2, "pages of the file, all mapped shared"),
    "sync_pages": (int, 1, "pages the MS_SYNC covers from the first (pages: the whole file)"),
    "fsync": (int, 1, "1: cpu0 stores to the last page and fsyncs the file last; 0: not"),
    "ops": (int, 2, "stores by cpu1"),
    "syncer": (int, 0, "syncer passes"),
}
LIMITS = {"pages": (1, 64), "sync_pages": (1, 64), "fsync": (0, 1), "ops": (0, 64),
          "syncer": (0, 8)}


def build(params: dict[str, Any], seed: int) -> dict[str, Any]:
    pages, ops = params["pages"], params["ops"]
    sync_pages = min(params["sync_pages"], pages)
    program: list[list[Any]] = stores(BASE, pages, pages)
    program += [
        ["msync", hx(BASE), pages * PAGE, "async"],
        ["store", hx(BASE)],
        ["msync", hx(BASE), sync_pages * PAGE, "sync"],
    ]
    if params["fsync"]:
        # A store no msync covers: only fsync's own page clean hands it to a buffer.
        program += [["store", hx(BASE + (pages - 1) * PAGE)], ["fsync", "f"]]
    spec: dict[str, Any] = {
        "files": {"f": {"pages": pages}},
        "processes": {"p0": {"mappings": [file_mapping(BASE, pages)]}},
        "cpus": [{"process": "p0", "program": program}],
    }
    if ops:
        spec["cpus"].append({"process": "p0", "program": stores(BASE, pages, ops, first=1)})
    if params["syncer"]:
        spec["agents"] = {"syncer": params["syncer"]}
    return spec
