"""One msync range spans several adjacent entries backed by different objects -- f at
offset 0, g, anonymous memory, a private mapping of f at an offset -- while a CPU of the
same process stores to each and another process stores to f and g: every entry's
object must be flushed, not only the first.
"""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, anon_mapping, file_mapping, hx, stores

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 1, "pages of each of the four entries"),
    "ops": (int, 4, "stores by each writer"),
}
LIMITS = {"pages": (1, 64), "ops": (1, 64)}

P1_BASE = 0x200000  # p1's shared views: f, then g
G_BASE = 0x300000


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    pages, ops = params["pages"], params["ops"]
    length = pages * PAGE
    a, b, c, d = (BASE + i * length for i in range(4))
    whole = 4 * length
    cleaner = [
        ["msync", hx(a), whole, "sync"],
        ["msync", hx(a), whole, "async"],
        ["clean", hx(a + PAGE // 2), hx(d + length - PAGE // 2), True, False],  # unaligned
        ["msync", hx(a), whole, "sync,invalidate"],
    ]
    # p0's writer: each entry in turn, the last (private) one last.
    writer = [op for base in (b, a, c, d) for op in stores(base, pages, 1)]
    writer += stores(b, pages, max(0, ops - 4))
    other = stores(G_BASE, pages, ops // 2 + 1) + stores(P1_BASE, 2 * pages, ops // 2 + 1)
    return {
        "files": {"f": {"pages": 2 * pages}, "g": {"pages": pages}},
        "processes": {
            "p0": {"mappings": [
                file_mapping(a, pages),
                file_mapping(b, pages, file="g"),
                anon_mapping(c, pages),
                file_mapping(d, pages, offset=pages, private=True),
            ]},
            "p1": {"mappings": [file_mapping(P1_BASE, 2 * pages),
                                file_mapping(G_BASE, pages, file="g")]},
        },
        "cpus": [
            {"process": "p0", "program": cleaner},
            {"process": "p0", "program": writer},
            {"process": "p1", "program": other},
        ],
    }
