"""One process stores through its wired (mlocked) mapping of a file while another invalidates
its own, unwired view of the same pages (FIDELITY.md D8).

Today's vm_object_page_remove busies each wired page, removes every mapping of it (the
wiring process's too: its next store faults the page back in) and, clean-only, keeps the
page and its contents; the wiring process's own msync(MS_INVALIDATE) is refused (EBUSY).
p0 wires f and stores to its pages; p1 stores and msyncs its view with MS_SYNC |
MS_INVALIDATE, twice; p0 finally msyncs its view with MS_SYNC."""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, file_mapping, hx, stores

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 2, "pages of the file, mapped by both processes"),
    "ops": (int, 4, "stores by the wiring process"),
}
LIMITS = {"pages": (1, 64), "ops": (1, 64)}
# Only today's invalidate touches a page wired elsewhere (the others pass over it, or
# discard it as the 2003 code did: wired_invalidate covers those).
PROFILES = ("modern",)

P1_BASE = 0x200000  # p1's view of f


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    pages, ops = params["pages"], params["ops"]
    length = pages * PAGE
    return {
        "files": {"f": {"pages": pages}},
        "processes": {
            "p0": {"mappings": [file_mapping(BASE, pages, wired=True)]},
            "p1": {"mappings": [file_mapping(P1_BASE, pages)]},
        },
        "cpus": [
            {"process": "p0", "program": [*stores(BASE, pages, ops),
                                          ["msync", hx(BASE), length, "sync"]]},
            {"process": "p1", "program": [
                ["store", hx(P1_BASE)],
                ["msync", hx(P1_BASE), length, "sync,invalidate"],
                ["msync", hx(P1_BASE), length, "sync,invalidate"],
            ]},
        ],
    }
