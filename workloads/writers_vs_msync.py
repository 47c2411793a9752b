"""Writers store into a shared file mapping while one CPU of the same process msyncs it
(synchronously, then asynchronously, then synchronously again)."""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, file_mapping, hx, stores

PARAMS: dict[str, tuple[type, Any, str]] = {
    "cpus": (int, 4, "CPUs: cpu0 msyncs, the others write"),
    "pages": (int, 4, "pages of the file mapping"),
    "ops": (int, 6, "stores per writer"),
}
LIMITS = {"cpus": (2, 16), "pages": (1, 64), "ops": (1, 64)}


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    cpus, pages, ops = params["cpus"], params["pages"], params["ops"]
    length = pages * PAGE
    last = BASE + (pages - 1) * PAGE
    cleaner = [
        ["msync", hx(BASE), length, "sync"],
        ["store", hx(BASE)],
        ["msync", hx(BASE), length, "async"],
        ["store", hx(last)],
        ["msync", hx(BASE), length, "sync"],
    ]
    writers = [{"process": "p0", "program": stores(BASE, pages, ops, first=w)}
               for w in range(cpus - 1)]
    return {
        "files": {"f": {"pages": pages}},
        "processes": {"p0": {"mappings": [file_mapping(BASE, pages)]}},
        "cpus": [{"process": "p0", "program": cleaner}, *writers],
    }
