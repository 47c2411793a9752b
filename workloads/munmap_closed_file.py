"""A file mapped once and closed: one thread stores and unmaps it, dropping the vnode's
last use reference, while another msyncs and stores through the same mapping."""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, file_mapping, hx, stores

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 2, "pages of the file, all mapped"),
    "ops": (int, 2, "stores by each thread"),
}
LIMITS = {"pages": (1, 64), "ops": (1, 64)}
# Hunted under freebsd5 only: its race (the last reference dropped under the map lock)
# is the same in every profile.
PROFILES = ("freebsd5",)


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    pages, ops = params["pages"], params["ops"]
    length = pages * PAGE
    unmapper = [*stores(BASE, pages, ops), ["munmap", hx(BASE), length]]
    syncer = [*stores(BASE, pages, ops, first=1), ["msync", hx(BASE), length, "sync"],
              ["store", hx(BASE)]]
    return {
        "files": {"f": {"pages": pages, "closed": True}},
        "processes": {"p0": {"mappings": [file_mapping(BASE, pages)]}},
        "cpus": [
            {"process": "p0", "program": unmapper},
            {"process": "p0", "program": syncer},
        ],
    }
