"""The events (emulator/kern/events.py): each kind defined once, read and written by name,
its traced fields exactly a trace line's args; and the one bus that carries them
(Kernel.emit / observe / watch)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from emulator.kern.events import (
    TRACED,
    WATCHED,
    Call,
    CleanCall,
    Event,
    IoIssue,
    Lock,
    MapAccess,
    Read,
    Sched,
    Store,
    Unlock,
    Woke,
    parse_event,
)
from emulator.kern.kernel import Kernel
from emulator.kern.profile import MANPAGE
from emulator.sched.scheduler import AgentState
from emulator.trace.format import canonical, event_dict
from emulator.trace.reader import load_trace

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "traces").glob("*.trace.jsonl"))


def test_every_traced_kind_has_one_class_and_a_distinct_name() -> None:
    assert len(TRACED) == 39
    assert all(cls.kind == kind and cls.traced for kind, cls in TRACED.items())
    assert len({cls.__name__ for cls in TRACED.values()}) == len(TRACED)
    assert not MapAccess.traced and MapAccess not in TRACED.values()


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name.split(".")[0])
def test_every_corpus_line_reads_back_as_its_event_and_renders_as_the_same_line(
    path: Path,
) -> None:
    trace = load_trace(str(path))
    assert trace.events
    for line, entry in zip(trace.events, trace.entries, strict=True):
        assert entry.event is not None, line
        assert type(entry.event).kind == line["event"]
        again = event_dict((entry.step, entry.cpu, entry.event.kind, entry.event.args()))
        assert canonical(again) == canonical(line)


def test_a_live_field_is_neither_in_the_trace_nor_in_equality() -> None:
    page, other = object(), object()
    a = Store("p0", 0x10000, "f", 0, 7, page)  # type: ignore[arg-type]
    b = Store("p0", 0x10000, "f", 0, 7, other)  # type: ignore[arg-type]
    assert a.args() == ("p0", 0x10000, "f", 0, 7)
    assert a == b and a.page is page
    assert json.dumps(event_dict((3, 0, a.kind, a.args()))) == (
        '{"event": "store", "step": 3, "cpu": 0, "args": ["p0", 65536, "f", 0, 7]}')
    assert IoIssue.trace_fields == ("obj", "pindex", "data", "sync")
    assert CleanCall.trace_fields == ("map", "start", "end", "syncio", "invalidate")


def test_a_call_event_flattens_its_parameters_into_the_args() -> None:
    ev = Call("msync", ("0x10000", 4096, "sync"))
    assert ev.args() == ("msync", "0x10000", 4096, "sync")
    assert parse_event("call", list(ev.args())) == ev
    assert parse_event("sched", [1, [0, 1]]) == Sched(1, (0, 1))


@pytest.mark.parametrize("kind, args", [
    ("lock", ["map", "p0"]),  # a field short
    ("lock", ["map", "p0", "x", 9]),  # one too many
    ("call", []),
    ("sched", [1]),
    ("no_such_kind", []),
])
def test_args_that_do_not_fit_their_kind_are_refused(kind: str, args: list[Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        parse_event(kind, args)


def test_every_event_is_slotted_so_it_holds_only_its_fields() -> None:
    for cls in [*TRACED.values(), MapAccess, Read, Woke]:
        assert dataclasses.is_dataclass(cls) and "__slots__" in cls.__dict__, cls
    ev = Lock("map", "p0", "x")
    with pytest.raises(AttributeError):
        ev.extra = 1  # type: ignore[attr-defined]


# -- the bus ------------------------------------------------------------------------


class FakeAgent:
    def __init__(self, aid: int) -> None:
        self.aid = aid
        self.name = f"cpu{aid}"
        self.daemon = False
        self.state = AgentState.RUNNABLE


class FakeSched:
    def __init__(self) -> None:
        self.agents = [FakeAgent(0), FakeAgent(1)]
        self.step = 0
        self.current: FakeAgent | None = None
        self.over = False

    @property
    def cpu(self) -> int:  # the real scheduler keeps it with ``current``
        return self.current.aid if self.current is not None else -1

    async def point(self) -> None:
        raise AssertionError

    async def sleep(self, chan: Any) -> None:
        raise AssertionError

    def wakeup(self, chan: Any) -> None:
        pass


def kernel(record: bool) -> tuple[Kernel, FakeSched]:
    sched = FakeSched()
    return Kernel(sched, MANPAGE, record=record), sched


def test_observers_see_the_step_the_running_agent_and_the_event_of_their_class_only() -> None:
    k, sched = kernel(record=False)
    seen: list[tuple[int, int, Event]] = []
    k.observe(Lock, lambda step, aid, ev: seen.append((step, aid, ev)))
    sched.step, sched.current = 4, sched.agents[1]
    k.emit(Lock("map", "p0", "x"))
    k.emit(Unlock("map", "p0"))
    sched.current = None
    k.emit(Lock("vnode", "f", "x"))
    assert seen == [(4, 1, Lock("map", "p0", "x")), (4, -1, Lock("vnode", "f", "x"))]
    assert k.events == []  # not recording


def test_the_recorder_keeps_traced_events_first_and_never_untraced_ones() -> None:
    """It keeps each line as plain data, not the event: no work for the garbage collector."""
    k, sched = kernel(record=True)
    order: list[str] = []
    k.observe(Lock, lambda *_: order.append(f"checker saw {len(k.events)} recorded"))
    sched.current = sched.agents[0]
    k.emit(Lock("map", "p0", "x"))
    k.emit(MapAccess(None, "lookup"))  # type: ignore[arg-type]
    assert order == ["checker saw 1 recorded"]
    assert k.events == [(0, 0, "lock", ("map", "p0", "x"))]  # the trace line, as data


def test_a_watcher_sees_every_traced_event_and_the_reads_and_wake_ups() -> None:
    k, sched = kernel(record=False)
    sched.current = sched.agents[0]
    k.read("map", "p0")  # nobody watches: not even built
    seen: list[Event] = []
    k.watch(lambda step, aid, ev: seen.append(ev))
    assert k.watched and set(WATCHED) == {*TRACED.values(), Read, Woke}
    k.read("map", "p0")
    k.untrusted()
    k.emit(Unlock("map", "p0"))
    k.emit(MapAccess(None, "insert"))  # type: ignore[arg-type]
    assert seen == [Read("map", "p0"), Read("*", ""), Unlock("map", "p0")]


class SleepingSched(FakeSched):
    def __init__(self) -> None:
        super().__init__()
        self.slept: list[Any] = []

    async def sleep(self, chan: Any) -> None:
        self.slept.append(chan)


def test_a_sleep_is_the_schedulers_own_until_a_watcher_wants_the_wake_ups() -> None:
    sched = SleepingSched()
    k = Kernel(sched, MANPAGE, record=False)
    sched.current = sched.agents[0]
    assert k.sleep == sched.sleep  # no coroutine of the kernel's in between
    with pytest.raises(StopIteration):
        k.sleep("lock").send(None)
    seen: list[Event] = []
    k.watch(lambda step, aid, ev: seen.append(ev))
    with pytest.raises(StopIteration):
        k.sleep("page").send(None)
    assert sched.slept == ["lock", "page"]
    assert seen == [Woke("page")]
