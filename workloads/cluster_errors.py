"""Writers dirty neighbouring pages of a file one page of which fails every write (EIO);
msyncs of single pages then write each dirty page with its dirty neighbours in one pager
call (the spec's ``cluster``: vm_pageout_page_count), backward neighbours outside the range
included.  Where the profile reports write errors, an msync returns EIO exactly when the
failed page is the one it asked for or comes after it in the same write (FIDELITY.md D9)."""

from __future__ import annotations

from typing import Any

from workloads._common import BASE, PAGE, file_mapping, hx

PARAMS: dict[str, tuple[type, Any, str]] = {
    "pages": (int, 4, "pages of the file mapping"),
    "cluster": (int, 4, "the most pages one write carries (vm_pageout_page_count)"),
    "bad": (int, 0, "the page whose every write fails"),
    "stores": (int, 32, "stores by the third CPU into the pages after the bad one"),
}
LIMITS = {"pages": (2, 32), "cluster": (1, 32), "bad": (0, 31), "stores": (1, 256)}


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    pages, cluster = params["pages"], params["cluster"]
    bad = min(params["bad"], pages - 1)

    def page(i: int) -> str:
        return hx(BASE + (i % pages) * PAGE)

    return {
        "files": {"f": {"pages": pages, "fail_pages": [bad]}},
        "processes": {"p0": {"mappings": [file_mapping(BASE, pages)]}},
        "cluster": cluster,
        "cpus": [
            {"process": "p0", "program": [
                ["store", page(bad)],
                ["store", page(bad + 1)],
                ["store", page(bad + 2)],
                # The page after the bad one: the bad one joins as a backward neighbour.
                ["msync", page(bad + 1), PAGE, "sync"],
                # The bad page itself: its failure is this msync's.
                ["msync", page(bad), PAGE, "sync"],
                ["msync", page(bad + 1), PAGE, "sync"],
            ]},
            {"process": "p0", "program": [
                ["store", page(bad + 2)],
                ["store", page(bad + 3)],
                ["store", page(bad + 1)],
                ["msync", page(bad + 2), 2 * PAGE, "sync"],
            ]},
            # Stores into the neighbours, some while their writes are in flight.
            {"process": "p0",
             "program": [["store", page(bad + 2 + i % 2)] for i in range(params["stores"])]},
        ],
    }
