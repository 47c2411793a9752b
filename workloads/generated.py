"""A whole spec drawn from the seed: files, processes, mappings of every kind and CPU programs of
every op, small by default, so a variant meets structures its author did not think of.

Everything is drawn from one ``random.Random(seed)``: the files (some failing every write,
some one page's writes), each process's mappings (shared and private file mappings at any
offset, anonymous, device, sub-maps over anonymous memory or a file; wired or not;
read-only, read-write or executable; adjacent or separated by holes), then each CPU's
program: stores and loads (now and then just past a mapping), msync with every valid flag
set, clean with every flag pair (empty ranges included), munmap, mmap of any kind (over a
mapping or in a fresh slot), mprotect to any protection, mlock, munlock, yield and fsync
(half the yields, drawn from a side stream of the seed), madvise MADV_NOSYNC/MADV_AUTOSYNC
(a quarter of the yields) and MAP_NOSYNC file mappings (a third of them; both from a second
side stream, so the specs drawn before them keep every other op), over ranges inside one mapping or
spanning several entries and holes; now and then the
background agents (page daemon, syncer), and now and then a page clean that writes a dirty
page with its dirty neighbours (``cluster``).  The parameters are upper bounds: the counts
are drawn up to them.  Only the static layout is fixed; the programs change it at run time
(MAP_FIXED mmap, munmap, mprotect), which is what the kernel must survive.
"""

from __future__ import annotations

import random
from typing import Any, NamedTuple

from emulator.kern.daemons import AGENT_NAMES
from workloads._common import BASE, PAGE, hx

PARAMS: dict[str, tuple[type, Any, str]] = {
    "cpus": (int, 3, "at most this many CPUs (at least 2 when it allows)"),
    "processes": (int, 2, "at most this many processes"),
    "files": (int, 2, "at most this many files"),
    "mappings": (int, 3, "at most this many mappings per process"),
    "pages": (int, 3, "at most this many pages per mapping"),
    "ops": (int, 5, "at most this many ops per CPU"),
    "seed": (int, None, "generation seed (default: the execution seed)"),
}
LIMITS = {"cpus": (1, 16), "processes": (1, 8), "files": (1, 8), "mappings": (1, 16),
          "pages": (1, 64), "ops": (1, 64)}

# Every flag set msync(2) accepts here ("async,sync" is not a valid spec).
MSYNC_FLAGS = ("sync", "async", "invalidate", "invalidate,sync", "async,invalidate")
# Mapping kinds, weighted: a sub-map "submap_file" is backed by a file.
KINDS = (("file", 4), ("private", 3), ("anon", 3), ("device", 1), ("submap", 1),
         ("submap_file", 1))
PROTS = (("rw", 6), ("r", 2), ("rwx", 1))
# (op, weight)
OPS = (("store", 6), ("load", 3), ("msync", 4), ("clean", 2), ("munmap", 1), ("mmap", 2),
       ("mlock", 1), ("munlock", 1), ("yield", 1), ("mprotect", 1))


class Area(NamedTuple):
    """Addresses a program aims at: a static mapping, or a fresh slot past the last one."""

    addr: int
    pages: int

    @property
    def end(self) -> int:
        return self.addr + self.pages * PAGE


def _pick(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([n for n, _ in table], [w for _, w in table])[0]


def _options(rng: random.Random, most: int, files: dict[str, int],
             ns: random.Random) -> tuple[int, dict[str, Any]]:
    """Draw a mapping of at most ``most`` pages: its size and options (kind, file and
    offset, prot, wired, private).  A file mapping covers its whole file half the time (a
    clean of it is then a clean of the whole object, which records a clean generation),
    else a part of it at any offset."""
    kind = _pick(rng, KINDS)
    out: dict[str, Any] = {}
    if kind in ("file", "private", "submap_file"):
        name = rng.choice(list(files))
        size = files[name]
        pages = size if rng.randrange(2) == 0 else rng.randint(1, size)
        out["file"] = name
        out["offset"] = rng.randint(0, size - pages)
        if kind == "submap_file":
            out["submap"] = True
    else:
        pages = rng.randint(1, most)
        out["submap" if kind == "submap" else kind] = True
    out["prot"] = _pick(rng, PROTS)
    if rng.randrange(5) == 0:
        out["wired"] = True
    if kind == "private":
        out["private"] = True
    if "file" in out and ns.randrange(3) == 0:
        out["nosync"] = True  # MAP_NOSYNC, from the side stream
    return pages, out


def _files(rng: random.Random, params: dict[str, int]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i in range(rng.randint(1, params["files"])):
        entry: dict[str, Any] = {"pages": rng.randint(1, params["pages"])}
        if rng.randrange(8) == 0:
            entry["fail_writes"] = True
        elif rng.randrange(8) == 0:
            entry["fail_pages"] = [rng.randrange(entry["pages"])]
        out[f"f{i}"] = entry
    return out


def _layout(rng: random.Random, params: dict[str, int], files: dict[str, int],
            ns: random.Random) -> tuple[list[dict[str, Any]], list[Area]]:
    """A process's mappings (adjacent or with holes between) and the areas programs aim at:
    the mappings, then a fresh slot past them for mmap."""
    mappings: list[dict[str, Any]] = []
    areas: list[Area] = []
    at = BASE
    for _ in range(rng.randint(1, params["mappings"])):
        pages, options = _options(rng, params["pages"], files, ns)
        mappings.append({"addr": hx(at), "pages": pages, **options})
        areas.append(Area(at, pages))
        at += pages * PAGE
        # Half the time the next mapping is adjacent: ranges then span entries and objects.
        at += rng.choice((0, 0, 1, 2)) * PAGE
    areas.append(Area(at + PAGE, rng.randint(1, params["pages"])))
    return mappings, areas


def _area(rng: random.Random, areas: list[Area]) -> int:
    """An area's index; the fresh slot (the last) only now and then."""
    return len(areas) - 1 if rng.randrange(6) == 0 else rng.randrange(len(areas) - 1)


def _page_in(rng: random.Random, area: Area) -> int:
    return area.addr + rng.randrange(area.pages) * PAGE


def _range(rng: random.Random, areas: list[Area], *, empty: bool) -> tuple[int, int]:
    """[start, end): from a page of one area to a page boundary in it or in a later one
    (holes between included), now and then one page past it; empty only if ``empty``, and
    then rarely."""
    i = _area(rng, areas)
    first = rng.randrange(areas[i].pages)
    start = areas[i].addr + first * PAGE
    if empty and rng.randrange(10) == 0:
        return start, start
    j = i if i == len(areas) - 1 or rng.randrange(3) else rng.randrange(i + 1, len(areas))
    if j == i:
        end = start + rng.randint(1, areas[i].pages - first) * PAGE
    else:
        end = areas[j].addr + rng.randint(0, areas[j].pages) * PAGE
    if rng.randrange(8) == 0:
        end = areas[j].end + PAGE  # into the hole after it
    return start, end


def _op(rng: random.Random, areas: list[Area], files: dict[str, int],
        params: dict[str, int], side: random.Random, ns: random.Random) -> list[Any]:
    name = _pick(rng, OPS)
    if name in ("store", "load"):
        area = areas[_area(rng, areas)]
        # Now and then just past the area: a SIGSEGV the CPU survives.
        addr = area.end if rng.randrange(10) == 0 else _page_in(rng, area)
        return [name, hx(addr + rng.choice((0, 0, 0, 8)))]
    if name == "msync":
        start, end = _range(rng, areas, empty=True)
        # Now and then not page-aligned: msync rounds the range out to pages.
        skew = rng.choice((0, 0, 0, 16))
        return ["msync", hx(start + skew), max(0, end - start - skew),
                rng.choice(MSYNC_FLAGS)]
    if name == "clean":
        start, end = _range(rng, areas, empty=True)
        return ["clean", hx(start), hx(end), rng.randrange(2) == 0, rng.randrange(2) == 0]
    if name in ("munmap", "mlock", "munlock"):
        start, end = _range(rng, areas, empty=False)
        return [name, hx(start), end - start]
    if name == "mprotect":
        start, end = _range(rng, areas, empty=False)
        return ["mprotect", hx(start), end - start, _pick(rng, PROTS)]
    if name == "mmap":
        area = areas[_area(rng, areas)]
        pages, options = _options(rng, params["pages"], files, ns)
        return ["mmap", hx(_page_in(rng, area)), pages, options]
    if side.randrange(2):
        # Half the yields become an fsync(2), drawn from the side stream so that the
        # specs drawn before fsync existed keep every other op.
        return ["fsync", side.choice(sorted(files))]
    if ns.randrange(2):
        # Half the other yields become madvise(MADV_NOSYNC or MADV_AUTOSYNC), drawn
        # from the second side stream.
        start, end = _range(ns, areas, empty=False)
        return ["madvise", hx(start), end - start, ns.choice(("nosync", "autosync"))]
    return ["yield"]


def build(params: dict[str, int], seed: int) -> dict[str, Any]:
    rng = random.Random(params["seed"])
    side = random.Random(f"fsync {params['seed']}")
    ns = random.Random(f"nosync {params['seed']}")
    files = _files(rng, params)
    sizes = {name: f["pages"] for name, f in files.items()}
    processes: dict[str, dict[str, Any]] = {}
    areas: dict[str, list[Area]] = {}
    for i in range(rng.randint(1, params["processes"])):
        name = f"p{i}"
        mappings, areas[name] = _layout(rng, params, sizes, ns)
        processes[name] = {"mappings": mappings}
    names = list(processes)
    cpus = []
    for i in range(rng.randint(min(2, params["cpus"]), params["cpus"])):
        # The first CPUs visit every process; the rest share one at random.
        process = names[i] if i < len(names) else rng.choice(names)
        program = [_op(rng, areas[process], sizes, params, side, ns)
                   for _ in range(rng.randint(1, params["ops"]))]
        cpus.append({"process": process, "program": program})
    spec: dict[str, Any] = {"files": files, "processes": processes, "cpus": cpus}
    if rng.randrange(4) == 0:
        # Now and then the page daemon, the syncer or both clean behind the CPUs' backs.
        chosen = [name for name in AGENT_NAMES if rng.randrange(2)] or [rng.choice(AGENT_NAMES)]
        spec["agents"] = {name: rng.randint(1, 2) for name in chosen}
    if rng.randrange(3) == 0:
        # Now and then the page clean writes a dirty page with its dirty neighbours.
        spec["cluster"] = rng.choice((2, 4, 8))
    return spec
