"""msync over sub-map entries (one backed by a file at an offset, one anonymous) between
plain entries, while a CPU stores through the sub-maps and another process stores to the
same file pages: manpage and freebsd5 refuse the range, modern cleans through it.

Layout of p0: a plain file entry (f at 0), a sub-map of f at offset ``pages``, an
anonymous sub-map.  p1 maps all of f shared.  The cleaner also msyncs a range that
starts inside the file sub-map, so the sub-map's offset arithmetic matters.
"""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, file_mapping, hx, stores

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 2, "pages of each entry (at least 2: one msync starts inside the sub-map)"),
    "ops": (int, 3, "stores by the writer of each process"),
}
LIMITS = {"pages": (2, 64), "ops": (1, 64)}

P1_BASE = 0x200000  # p1's view of f


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    pages, ops = params["pages"], params["ops"]
    length = pages * PAGE
    plain, fsub, asub = BASE, BASE + length, BASE + 2 * length
    cleaner = [
        ["store", hx(fsub + PAGE)],  # a fault through the sub-map, then a flush of it
        ["msync", hx(fsub + PAGE), length - PAGE, "sync"],  # starts inside the file sub-map
        ["msync", hx(plain), 3 * length, "sync"],  # plain + both sub-maps
        ["msync", hx(plain), length, "sync"],  # the plain entry alone: allowed everywhere
        ["msync", hx(fsub), 2 * length, "async"],
        ["msync", hx(plain), 2 * length, "sync,invalidate"],
    ]
    # p0's writer faults through the sub-maps; p1 stores to the file sub-map's pages.
    writer = stores(fsub, pages, ops, first=1) + stores(asub, pages, 1) + stores(plain, pages, 1)
    return {
        "files": {"f": {"pages": 2 * pages}},
        "processes": {
            "p0": {"mappings": [
                file_mapping(plain, pages),
                {"addr": hx(fsub), "pages": pages, "submap": True, "file": "f",
                 "offset": pages, "prot": "rw"},
                {"addr": hx(asub), "pages": pages, "submap": True, "prot": "rw"},
            ]},
            "p1": {"mappings": [file_mapping(P1_BASE, 2 * pages)]},
        },
        "cpus": [
            {"process": "p0", "program": cleaner},
            {"process": "p0", "program": writer},
            {"process": "p1", "program": stores(P1_BASE + length, pages, ops, first=1)},
        ],
    }
