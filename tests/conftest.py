"""Shared fixtures: run a hand-written spec on a Machine and look at the kernel it left.

``run_spec(spec_dict, profile, seed=0, checkers=(), strategy=None, variant=None,
max_steps=..., driver=...)`` is an async callable returning ``(execution, kernel)``.
``snapshot(k)`` captures every page-table entry, every resident page of every
object reachable from the maps and files, and every pager, as plain data.
``watch(k, into)`` builds a :class:`Watch`, a checker that records the pager
and page state at every clean's call and return, and at the end of the run
(before the final trusted flush); ``into`` keeps it for the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from emulator.check.base import Checker
from emulator.kern.events import CleanCall, CleanReturn, IoDone, IoIssue, Store
from emulator.kern.kernel import Kernel
from emulator.machine import DEFAULT_MAX_STEPS, Execution, Machine
from emulator.sched.drivers import DEFAULT_DRIVER
from emulator.sched.strategies import RandomStrategy, Strategy
from emulator.spec import Spec, parse_spec
from emulator.variants import Variant, load_variant

RunSpec = Callable[..., Any]


class FirstStrategy(Strategy):
    """Always run the lowest-numbered runnable agent: cpu0 before the disk.

    The disk (the last agent) then runs only while every CPU sleeps or after
    they finish, so an asynchronous write is still in flight when its caller
    returns.
    """

    name = "first"

    def choose(self, runnable: Any, current: int) -> int:
        return int(runnable[0])


def _objects(k: Kernel) -> list[Any]:
    """Every object reachable from the files and the maps' entries (sub-maps too)."""
    seen: dict[str, Any] = {}
    for name in sorted(k.files):
        seen[k.files[name].name] = k.files[name]

    def visit_map(vm_map: Any) -> None:
        for entry in vm_map.entries.values():
            if entry.submap is not None:
                visit_map(entry.submap)
            obj = entry.obj
            while obj is not None:
                seen.setdefault(obj.name, obj)
                obj = obj.backing

    for pname in sorted(k.maps):
        visit_map(k.maps[pname])
    return [seen[n] for n in sorted(seen)]


def snapshot(k: Kernel) -> dict[str, Any]:
    """Plain-data picture of pmaps, resident pages and pagers."""
    ptes = {
        pname: {
            vpn: (pte.page.name, pte.writable, pte.modified)
            for vpn, pte in sorted(vm_map.pmap.ptes.items())
        }
        for pname, vm_map in sorted(k.maps.items())
    }
    pages = {
        obj.name: {
            pindex: (page.dirty, page.contents, page.busy, page.wire_count, page.valid)
            for pindex, page in obj.pages.items()
        }
        for obj in _objects(k)
    }
    pagers = {name: list(p.stored) for name, p in sorted(k.pagers.items())}
    disks = {name: list(p.disk) for name, p in sorted(k.pagers.items())}
    delayed = {name: sorted(p.delayed) for name, p in sorted(k.pagers.items())}
    return {"ptes": ptes, "pages": pages, "pagers": pagers, "disks": disks,
            "delayed": delayed}


class Watch(Checker):
    """What the kernel showed a test: state at each clean call and return, and at the end."""

    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        self.calls: list[dict[str, Any]] = []  # state at each clean_call
        self.returns: list[dict[str, Any]] = []  # state at each clean_return
        self.end_state: dict[str, Any] | None = None  # when every CPU finished, before the flush
        self.stores: dict[tuple[str, int], int] = {}  # (obj, pindex) -> last id
        self.io_issued: list[IoIssue] = []
        self.io_done: list[IoDone] = []
        self.open: dict[int, tuple[Any, ...]] = {}  # cpu -> its clean call's args
        k.observe(CleanCall, self.on_call)
        k.observe(CleanReturn, self.on_return)
        k.observe(Store, self.on_store)
        k.observe(IoIssue, lambda _s, _a, ev: self.io_issued.append(ev))
        k.observe(IoDone, lambda _s, _a, ev: self.io_done.append(ev))

    def on_call(self, _step: int, aid: int, ev: CleanCall) -> None:
        args = (ev.map, ev.start, ev.end, bool(ev.syncio), bool(ev.invalidate))
        self.open[aid] = args
        self.calls.append({"args": args, **snapshot(self.k)})

    def on_return(self, _step: int, aid: int, ev: CleanReturn) -> None:
        self.returns.append({"args": self.open.pop(aid), "rv": ev.rv,
                             "queued": len(self.k.disk.queue), **snapshot(self.k)})

    def on_store(self, _step: int, _aid: int, ev: Store) -> None:
        self.stores[(ev.obj, ev.pindex)] = ev.sid

    def end(self) -> None:
        self.end_state = snapshot(self.k)


def watch(k: Kernel, into: list[Watch] | None = None) -> Watch:
    """Build a :class:`Watch` of ``k``; append it to ``into``."""
    w = Watch(k)
    if into is not None:
        into.append(w)
    return w


async def _run_spec(
    data: dict[str, Any] | Spec,
    profile: str | None = None,
    seed: int = 0,
    checkers: Iterable[Callable[[Kernel], Checker]] = (),
    strategy: Strategy | None = None,
    variant: Variant | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    driver: str = DEFAULT_DRIVER,
) -> tuple[Execution, Kernel]:
    spec = data if isinstance(data, Spec) else parse_spec(data, source="test", profile=profile)
    machine = Machine(spec, variant or load_variant("reference"), strategy or RandomStrategy(),
                      checkers=list(checkers), max_steps=max_steps, driver=driver)
    ex = await machine.execute(seed)
    assert machine.kernel is not None
    return ex, machine.kernel


@pytest.fixture
def run_spec() -> RunSpec:
    return _run_spec


@pytest.fixture
def first_strategy() -> type[Strategy]:
    return FirstStrategy


@pytest.fixture
def take_snapshot() -> Callable[[Kernel], dict[str, Any]]:
    return snapshot


@pytest.fixture
def make_watch() -> Callable[..., Watch]:
    return watch
