"""A process stores into a shared file mapping, lowers it to read-only with mprotect, then
msyncs it (MS_SYNC); another CPU of the process raises and lowers the protection and
stores meanwhile, some of its stores failing while the mapping is read-only.

Today's clean flushes the file because it might be dirty, whatever the entry's
protection; the 2003 clean flushed only writable entries' objects, so there the store
made before mprotect(PROT_READ) is written only by a later clean (the mprotect flush gap,
FIDELITY.md D19), which the profile's "which objects are flushed" row says."""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, file_mapping, hx

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 2, "pages of the file mapping"),
}
LIMITS = {"pages": (1, 64)}


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    pages = params["pages"]
    length = pages * PAGE
    last = BASE + (pages - 1) * PAGE
    return {
        "files": {"f": {"pages": pages}},
        "processes": {"p0": {"mappings": [file_mapping(BASE, pages)]}},
        "cpus": [
            {"process": "p0", "program": [
                ["store", hx(BASE)],
                ["mprotect", hx(BASE), length, "r"],
                ["msync", hx(BASE), length, "sync"],
            ]},
            {"process": "p0", "program": [
                ["store", hx(last)],
                ["mprotect", hx(last), PAGE, "rw"],
                ["store", hx(last)],
                ["mprotect", hx(BASE), length, "r"],
                ["msync", hx(BASE), length, "sync"],
            ]},
        ],
    }
