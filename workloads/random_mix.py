"""Random programs mixing loads, stores, msync, clean, munmap+mmap, mlock and munlock over
two processes sharing a file (shared, private-file, anonymous and wired mappings)."""

from __future__ import annotations

import random
from typing import Any, NamedTuple

from workloads._common import BASE, PAGE, anon_mapping, file_mapping, hx, stride

PARAMS: dict[str, tuple[type, Any, str]] = {
    "cpus": (int, 3, "CPUs, alternating between processes p0 and p1"),
    "pages": (int, 4, "pages of the file and of each mapping"),
    "ops": (int, 8, "ops per CPU"),
    "seed": (int, None, "program seed (default: the execution seed)"),
}
LIMITS = {"cpus": (1, 16), "pages": (1, 64), "ops": (1, 64)}

MSYNC_FLAGS = ("sync", "async", "sync,invalidate")
# (op, weight); "remap" is a munmap followed by an mmap of the same pages.
CHOICES = (("store", 4), ("load", 2), ("msync", 2), ("clean", 1), ("remap", 1),
           ("mlock", 1), ("munlock", 1))


class Region(NamedTuple):
    addr: int
    pages: int
    options: dict[str, Any]  # mmap options that recreate it (offset added per remap)

    @property
    def end(self) -> int:
        return self.addr + self.pages * PAGE


def _regions(pages: int) -> dict[str, list[Region]]:
    step = stride(pages)
    slot = [BASE + i * step for i in range(6)]
    return {
        "p0": [
            Region(slot[0], pages, {"file": "f"}),
            Region(slot[1], pages, {"file": "f", "private": True}),
            Region(slot[2], pages, {"anon": True}),
            Region(slot[3], pages, {"anon": True, "wired": True}),
        ],
        "p1": [
            Region(slot[4], pages, {"file": "f"}),
            Region(slot[5], pages, {"anon": True}),
        ],
    }


def _mapping(r: Region) -> dict[str, Any]:
    extra = {k: v for k, v in r.options.items() if k not in ("file", "anon")}
    if "file" in r.options:
        return file_mapping(r.addr, r.pages, r.options["file"], 0, **extra)
    return anon_mapping(r.addr, r.pages, **extra)


def _span(rng: random.Random, r: Region, *, empty: bool) -> tuple[int, int]:
    """A page index in ``r`` and a page count that stays inside ``r``."""
    first = rng.randrange(r.pages)
    return first, rng.randint(0 if empty else 1, r.pages - first)


def _program(rng: random.Random, regions: list[Region], ops: int) -> list[list[Any]]:
    names = [n for n, _ in CHOICES]
    weights = [w for _, w in CHOICES]
    anon = [r for r in regions if "anon" in r.options]
    prog: list[list[Any]] = []
    while len(prog) < ops:
        op = rng.choices(names, weights)[0]
        r = rng.choice(regions)
        if op in ("store", "load"):
            # now and then aim just past the mapping: a SIGSEGV the CPU survives
            addr = r.end if rng.randrange(10) == 0 else r.addr + rng.randrange(r.pages) * PAGE
            prog.append([op, hx(addr)])
        elif op == "msync":
            first, count = _span(rng, r, empty=True)
            count += rng.randrange(10) == 0  # sometimes run into the hole after the mapping
            prog.append(["msync", hx(r.addr + first * PAGE), count * PAGE,
                         rng.choice(MSYNC_FLAGS)])
        elif op == "clean":
            first, count = _span(rng, r, empty=True)
            start = r.addr + first * PAGE
            prog.append(["clean", hx(start), hx(start + count * PAGE),
                         rng.random() < 0.7, rng.random() < 0.3])
        elif op == "remap" and len(prog) + 2 <= ops:
            first, count = _span(rng, r, empty=False)
            options = dict(r.options)
            if "file" in options:
                options["offset"] = first
            addr = r.addr + first * PAGE
            prog.append(["munmap", hx(addr), count * PAGE])
            prog.append(["mmap", hx(addr), count, options])
        elif op in ("mlock", "munlock"):
            r = rng.choice(anon)
            first, count = _span(rng, r, empty=False)
            prog.append([op, hx(r.addr + first * PAGE), count * PAGE])
        else:
            prog.append(["yield"])
    return prog


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    cpus, pages, ops = params["cpus"], params["pages"], params["ops"]
    rng = random.Random(params["seed"])
    regions = _regions(pages)
    programs = []
    for i in range(cpus):
        process = ("p0", "p1")[i % 2]
        programs.append({"process": process, "program": _program(rng, regions[process], ops)})
    return {
        "files": {"f": {"pages": pages}},
        "processes": {p: {"mappings": [_mapping(r) for r in rs]} for p, rs in regions.items()},
        "cpus": programs,
    }
