"""A synchronous msync whose write fails (EIO), then fsync(2), while another CPU stores.

Where the buffer write clears the page's dirty bits when it starts (``modern``:
``Profile.write_clears_dirty_at_start``, FIDELITY.md D1), the failed page is left clean
and its buffer, re-dirtied by brelse, carries the store: the fsync that follows must
write that buffer again (and fail, EIO) rather than return 0 with the store only in
memory.  cpu0 stores to both pages, msyncs the failing first page alone with MS_SYNC
(a ranged msync: bwrite, not the whole-file path), stores to the second page and
fsyncs; cpu1 stores to the pages meanwhile."""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, file_mapping, hx, stores

PARAMS: dict[str, tuple[type, Any, str]] = {
    "ops": (int, 2, "stores by cpu1"),
}
LIMITS = {"ops": (0, 64)}
# The race needs a failed write that leaves the page clean (dirty cleared at write start).
PROFILES = ("modern",)


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "files": {"f": {"pages": 2, "fail_pages": [0]}},
        "processes": {"p0": {"mappings": [file_mapping(BASE, 2)]}},
        "cpus": [{"process": "p0", "program": [
            ["store", hx(BASE)],
            ["store", hx(BASE + PAGE)],
            ["msync", hx(BASE), PAGE, "sync"],
            ["store", hx(BASE + PAGE)],
            ["fsync", "f"],
        ]}],
    }
    if params["ops"]:
        spec["cpus"].append({"process": "p0", "program": stores(BASE, 2, params["ops"],
                                                                first=1)})
    return spec
