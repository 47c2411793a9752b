"""msync (sync, async, invalidate) over a private file mapping, a device mapping,
anonymous memory and a shared file mapping while another CPU of the process unmaps and
maps each entry again: under modern, the clean's unlocked flush races the teardown of
the object it flushes (a shadow, a device object whose pages invalidate removes), and
must hold a reference and look the map up again after re-locking.
"""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, anon_mapping, file_mapping, hx, stores

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 1, "pages of each of the four entries"),
    "ops": (int, 3, "stores by the writer"),
}
LIMITS = {"pages": (1, 64), "ops": (1, 64)}

P1_BASE = 0x200000  # p1's shared view of f


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    pages, ops = params["pages"], params["ops"]
    length = pages * PAGE
    priv, dev, anon, shared = (BASE + i * length for i in range(4))
    whole = 4 * length
    cleaner = [
        ["msync", hx(dev), length, "sync,invalidate"],
        ["msync", hx(priv), whole, "sync"],
        ["msync", hx(dev), length, "sync,invalidate"],
        ["msync", hx(priv), whole, "sync,invalidate"],
        ["msync", hx(priv), whole, "async"],
    ]
    replacer = [
        ["munmap", hx(dev), length],
        ["mmap", hx(dev), pages, {"device": True}],
        ["munmap", hx(priv), length],
        ["mmap", hx(priv), pages, {"file": "f", "offset": pages, "private": True}],
        ["munmap", hx(dev), length],
        ["mmap", hx(dev), pages, {"device": True}],
        ["munmap", hx(anon), length],
        ["mmap", hx(anon), pages, {"anon": True}],
    ]
    # The writer gives the private entry its shadow and the anonymous entry its object.
    writer = [op for base in (priv, dev, anon) for op in stores(base, pages, 1)]
    writer += stores(shared, pages, ops)
    return {
        "files": {"f": {"pages": 2 * pages}},
        "processes": {
            "p0": {"mappings": [
                file_mapping(priv, pages, offset=pages, private=True),
                {"addr": hx(dev), "pages": pages, "device": True, "prot": "rw"},
                anon_mapping(anon, pages),
                file_mapping(shared, pages),
            ]},
            "p1": {"mappings": [file_mapping(P1_BASE, 2 * pages)]},
        },
        "cpus": [
            {"process": "p0", "program": cleaner},
            {"process": "p0", "program": replacer},
            {"process": "p0", "program": writer},
            {"process": "p1", "program": stores(P1_BASE + length, pages, 2)},
        ],
    }
