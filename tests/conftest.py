"""Shared fixtures: run a hand-written spec on a Machine and look at the kernel it left.

``run_spec(spec_dict, profile, seed=0, checkers=(), strategy=None, variant=None,
max_steps=...)`` is an async callable returning ``(execution, kernel)``.
``snapshot(k)`` captures every page-table entry, every resident page of every
object reachable from the maps and files, and every pager, as plain data.
``watch(k)`` registers hooks that record the pager and page state at every
clean's return, and at the end of the run (before the final trusted flush).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from emulator.kern.kernel import Kernel
from emulator.machine import DEFAULT_MAX_STEPS, Execution, Machine
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
    return {"ptes": ptes, "pages": pages, "pagers": pagers}


@dataclass
class Watch:
    """What the hooks of :func:`watch` saw."""

    calls: list[dict[str, Any]] = field(default_factory=list)  # state at each clean_call
    returns: list[dict[str, Any]] = field(default_factory=list)  # state at each clean_return
    end: dict[str, Any] | None = None  # state when every CPU finished, before the final flush
    stores: dict[tuple[str, int], int] = field(default_factory=dict)  # (obj, pindex) -> last id
    io_issued: list[tuple[Any, ...]] = field(default_factory=list)
    io_done: list[tuple[Any, ...]] = field(default_factory=list)


def watch(k: Kernel) -> Watch:
    """Register hooks and observers that fill a :class:`Watch`."""
    w = Watch()

    def on_call(vm_map: Any, start: int, end: int, syncio: bool, invalidate: bool) -> None:
        w.calls.append({"args": (vm_map.name, start, end, syncio, invalidate), **snapshot(k)})

    def on_return(vm_map: Any, start: int, end: int, syncio: bool, invalidate: bool,
                  rv: Any) -> None:
        w.returns.append({"args": (vm_map.name, start, end, syncio, invalidate),
                          "rv": rv.label, "queued": len(k.disk.queue), **snapshot(k)})

    def on_end() -> None:
        w.end = snapshot(k)

    def on_store(_step: int, _aid: int, fields: tuple[Any, ...]) -> None:
        _map, _va, obj, pindex, value = fields
        w.stores[(obj, pindex)] = value

    k.hook("clean_call", on_call)
    k.hook("clean_return", on_return)
    k.hook("end", on_end)
    k.observe("store", on_store)
    k.observe("io_issue", lambda _s, _a, f: w.io_issued.append(f))
    k.observe("io_done", lambda _s, _a, f: w.io_done.append(f))
    return w


async def _run_spec(
    data: dict[str, Any] | Spec,
    profile: str | None = None,
    seed: int = 0,
    checkers: Iterable[Callable[[Kernel, Spec], None]] = (),
    strategy: Strategy | None = None,
    variant: Variant | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> tuple[Execution, Kernel]:
    spec = data if isinstance(data, Spec) else parse_spec(data, source="test", profile=profile)
    machine = Machine(spec, variant or load_variant("reference"), strategy or RandomStrategy(),
                      checkers=list(checkers), max_steps=max_steps)
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
def make_watch() -> Callable[[Kernel], Watch]:
    return watch
