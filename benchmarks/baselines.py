"""What users do without vmemu: the same races, tested with plain Trio tasks or real threads.

A small self-contained model -- nothing from ``emulator`` is used, not its scheduler, kernel,
workloads or checkers -- of a file's pages, the page-table bits of the mappings, a pager, and
the two buggy cleans the benchmark compares on:

* a *page* has ``contents`` (the id of the last store that landed), ``dirty``, ``resident``,
  and per mapping a ``writable`` and a ``modified`` bit; the *pager* holds what the file has
  on disk;
* a *store* through a mapping lands (contents and the modified bit) in one atomic step when
  the mapping is writable, as the MMU does it; otherwise it *faults*: takes the page's lock
  (the busy bit), pages the page in if it is not resident, marks it dirty, makes the mapping
  writable, unlocks, and retries;
* a *flush* of a page, under its lock: write-protect every mapping and fold the modified bits
  into ``dirty`` in one step; if dirty, sample the contents, wait for the "I/O", write the
  sample to the pager, then clear ``dirty`` and the modified bits (the completion);
* the *check* (vmemu's ``lost_store`` rule, re-done here): at every write completion the
  page's contents are in the pager or the page is still dirty; a freed page's contents are in
  the pager; at the end, after a trusted flush of every dirty page, the pager holds the last
  store to every page.

Scenarios (each ``buggy`` or correct):

``no_write_protect`` -- ``writers_vs_msync`` at its defaults: 3 writers of 6 stores each
(writer ``w`` from page ``w``, cycling over 4 pages) and a cleaner that msyncs, stores to
page 0, msyncs, stores to page 3, msyncs.  The buggy flush folds the modified bits but leaves
the mappings writable, so a store during the I/O lands and the completion then clears it.

``invalidate`` -- ``invalidate_shared_file`` at its defaults (freebsd5's historical bug,
vmemu's ``invalidate_frees_dirty`` mutant): process p0 stores to both pages of a 2-page file
and msyncs with ``sync,invalidate`` (remove its own mappings, flush every page, then free
every page), then loads page 0; process p1, through its own mapping of the same file, stores
4 times cycling over the pages.  The buggy invalidate frees a page re-dirtied after its flush;
the correct one keeps a page found dirty once write-protected.

Programs are generators: the code between two ``yield``s is one atomic step, and each yield
asks the harness for ``MAYBE`` (a point where a test author put a random yield), ``IO``,
``("lock", p)`` or ``("unlock", p)``.  Two harnesses run them:

* :func:`trio_execution` -- one Trio task per CPU; ``MAYBE`` is ``await trio.sleep(0)`` with
  probability ``p_yield``; ``IO`` is ``await trio.sleep(0)``; locks are ``trio.Lock``.  The
  interleaving is whatever Trio's run queue and the coin flips give;
* :func:`thread_execution` -- one real thread per CPU; each atomic step runs holding one
  global lock (standing for the MMU/pmap lock); ``MAYBE`` is ``time.sleep(random *
  max_sleep)`` with probability ``p_yield``; ``IO`` is ``time.sleep(random * max_sleep)``;
  locks are ``threading.Lock``.

Each execution returns True when the check saw a lost store.  With ``buggy=False`` neither
harness may ever report one (the benchmark runs such a sanity pass).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import trio

P_YIELD = 0.25  # chance of an inserted yield at each MAYBE point
MAX_SLEEP = 20e-6  # threads: longest inserted sleep, and longest "I/O", in seconds

MAYBE = ("maybe",)
IO = ("io",)
Request = tuple[Any, ...]
Program = Generator[Request, None, None]


@dataclass
class Page:
    maps: int
    contents: int = 0
    dirty: bool = False
    resident: bool = False
    writable: list[bool] = field(default_factory=list)
    modified: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.writable = [False] * self.maps
        self.modified = [False] * self.maps

    def fold(self) -> None:
        if any(self.modified):
            self.dirty = True
            self.modified = [False] * self.maps


@dataclass
class Model:
    """One execution's shared state and the kernel paths, as generators."""

    pages_n: int
    maps: int
    buggy: bool
    pages: list[Page] = field(default_factory=list)
    pager: list[int] = field(default_factory=list)
    last: list[int] = field(default_factory=list)  # the last store to each page
    next_id: int = 1
    lost: bool = False

    def __post_init__(self) -> None:
        self.pages = [Page(self.maps) for _ in range(self.pages_n)]
        self.pager = [0] * self.pages_n
        self.last = [0] * self.pages_n

    def store(self, m: int, p: int) -> Program:
        page = self.pages[p]
        while True:
            yield MAYBE
            if page.resident and page.writable[m]:  # the store lands, atomically
                page.contents = self.next_id
                page.modified[m] = True
                self.last[p] = self.next_id
                self.next_id += 1
                return
            yield ("lock", p)  # the write fault
            yield MAYBE
            if not page.resident:
                page.resident, page.contents, page.dirty = True, self.pager[p], False
            page.dirty = True
            page.writable[m] = True
            yield ("unlock", p)

    def load(self, p: int) -> Program:
        page = self.pages[p]
        yield MAYBE
        if not page.resident:
            yield ("lock", p)
            if not page.resident:
                page.resident, page.contents, page.dirty = True, self.pager[p], False
            yield ("unlock", p)

    def flush(self, p: int, protect: bool) -> Program:
        """Clean one page: lock, (write-protect and) fold, write if dirty, unlock."""
        page = self.pages[p]
        yield MAYBE
        yield ("lock", p)
        yield MAYBE
        if page.resident:
            page.fold()
            if protect:
                page.writable = [False] * self.maps
            if page.dirty:
                yield MAYBE
                sample = page.contents
                yield IO
                self.pager[p] = sample  # the completion
                page.modified = [False] * self.maps
                page.dirty = False
                if page.contents != self.pager[p]:
                    self.lost = True  # it cleaned a page holding newer data
        yield ("unlock", p)

    def remove_mappings(self, m: int) -> Program:
        """pmap_remove of one map's range: unmap, folding its modified bits."""
        yield MAYBE
        for page in self.pages:
            if page.modified[m]:
                page.dirty = True
                page.modified[m] = False
            page.writable[m] = False

    def free(self, p: int, clean_only: bool) -> Program:
        """vm_object_page_remove of one page."""
        page = self.pages[p]
        yield MAYBE
        yield ("lock", p)
        yield MAYBE
        if page.resident:
            page.fold()
            page.writable = [False] * self.maps
            if not (clean_only and page.dirty):
                if page.contents != self.pager[p]:
                    self.lost = True  # freed with data the pager does not have
                page.resident = False
        yield ("unlock", p)

    def final_check(self) -> None:
        for p, page in enumerate(self.pages):
            if page.resident:
                page.fold()
                if page.dirty:
                    self.pager[p] = page.contents
            if self.pager[p] != self.last[p]:
                self.lost = True


def _no_write_protect(buggy: bool) -> tuple[Model, list[Program]]:
    pages, writers, ops = 4, 3, 6
    m = Model(pages, 1, buggy)

    def msync() -> Program:
        for p in range(pages):
            yield from m.flush(p, protect=not buggy)

    def cleaner() -> Program:
        yield from msync()
        yield from m.store(0, 0)
        yield from msync()
        yield from m.store(0, pages - 1)
        yield from msync()

    def writer(w: int) -> Program:
        for i in range(ops):
            yield from m.store(0, (w + i) % pages)

    return m, [cleaner(), *(writer(w) for w in range(writers))]


def _invalidate(buggy: bool) -> tuple[Model, list[Program]]:
    pages, ops = 2, 4
    m = Model(pages, 2, buggy)

    def p0() -> Program:
        for p in range(pages):
            yield from m.store(0, p)
        yield from m.remove_mappings(0)  # msync(sync, invalidate) ...
        for p in range(pages):
            yield from m.flush(p, protect=True)
        for p in range(pages):
            yield from m.free(p, clean_only=not buggy)
        yield from m.load(0)

    def p1() -> Program:
        for i in range(ops):
            yield from m.store(1, i % pages)

    return m, [p0(), p1()]


SCENARIOS: dict[str, Callable[[bool], tuple[Model, list[Program]]]] = {
    "no_write_protect": _no_write_protect,
    "invalidate": _invalidate,
}


# -- harnesses ----------------------------------------------------------------------------------


async def trio_execution(scenario: str, rng: random.Random, buggy: bool = True,
                         p_yield: float = P_YIELD) -> bool:
    """One execution as Trio tasks; True when a lost store was seen."""
    model, programs = SCENARIOS[scenario](buggy)
    locks = [trio.Lock() for _ in model.pages]

    async def drive(program: Program) -> None:
        for req in program:
            if req is MAYBE:
                if rng.random() < p_yield:
                    await trio.sleep(0)
            elif req is IO:
                await trio.sleep(0)
            elif req[0] == "lock":
                await locks[req[1]].acquire()
            else:
                locks[req[1]].release()

    async with trio.open_nursery() as nursery:
        for program in programs:
            nursery.start_soon(drive, program)
    model.final_check()
    return model.lost


def thread_execution(scenario: str, seed: int, buggy: bool = True, p_yield: float = P_YIELD,
                     max_sleep: float = MAX_SLEEP) -> bool:
    """One execution as real threads; True when a lost store was seen."""
    model, programs = SCENARIOS[scenario](buggy)
    locks = [threading.Lock() for _ in model.pages]
    mmu = threading.Lock()  # every atomic step runs holding it

    def drive(program: Program, rng: random.Random) -> None:
        while True:
            with mmu:
                req = next(program, None)
            if req is None:
                return
            if req is MAYBE:
                if rng.random() < p_yield:
                    time.sleep(rng.random() * max_sleep)
            elif req is IO:
                time.sleep(rng.random() * max_sleep)
            elif req[0] == "lock":
                locks[req[1]].acquire()
            else:
                locks[req[1]].release()

    threads = [threading.Thread(target=drive, args=(prog, random.Random(seed * 7919 + i)))
               for i, prog in enumerate(programs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    model.final_check()
    return model.lost


# -- hunts ----------------------------------------------------------------------------------------


@dataclass
class BaselineHunt:
    executions: int
    seconds: float
    caught: bool


def hunt_trio(scenario: str, seed: int, cap: float, buggy: bool = True,
              p_yield: float = P_YIELD) -> BaselineHunt:
    """Run Trio executions (one ``trio.run``) until a lost store or ``cap`` seconds."""
    rng = random.Random(seed)

    async def go() -> BaselineHunt:
        start = time.perf_counter()
        n = 0
        while True:
            n += 1
            if await trio_execution(scenario, rng, buggy, p_yield):
                return BaselineHunt(n, time.perf_counter() - start, True)
            if time.perf_counter() - start >= cap:
                return BaselineHunt(n, time.perf_counter() - start, False)

    return trio.run(go)


def hunt_threads(scenario: str, seed: int, cap: float, buggy: bool = True,
                 p_yield: float = P_YIELD, max_sleep: float = MAX_SLEEP) -> BaselineHunt:
    """Run thread executions until a lost store or ``cap`` seconds."""
    start = time.perf_counter()
    n = 0
    while True:
        n += 1
        if thread_execution(scenario, seed * 1_000_003 + n, buggy, p_yield, max_sleep):
            return BaselineHunt(n, time.perf_counter() - start, True)
        if time.perf_counter() - start >= cap:
            return BaselineHunt(n, time.perf_counter() - start, False)
