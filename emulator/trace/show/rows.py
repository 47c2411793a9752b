"""Which events become rows, and the rows themselves.

By default the timeline is the race, not the bookkeeping (:class:`Plan`):
scheduling decisions are hidden; an object lock taken and dropped without its
holder waiting in between (and without a violation meanwhile) is hidden, with
the other agents' waits for it (:func:`quiet_object_locks`); a store or load
call that needs no fault shows as its effect only; some pairs fold into one
row (an msync and its inner clean call, the clean's return and the syscall's,
a fresh page's alloc and page-in, the disk's completion and its unbusy).
``--all`` shows every event, one row each.

:func:`build` walks the events once, phrasing each shown event as the
replayed :class:`~emulator.trace.show.state.State` stood just before it, and
records what the row changed in what each agent holds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from emulator.kern.events import (
    Alloc,
    Call,
    IoDone,
    Lock,
    Pagein,
    Ret,
    Sched,
    Unbusy,
    Unlock,
    Violated,
    Wait,
)
from emulator.trace.reader import Entry
from emulator.trace.show import calls
from emulator.trace.show.phrases import mentions, phrase
from emulator.trace.show.state import State
from emulator.trace.show.text import Text
from emulator.trace.show.violations import Violation, take_violation


def quiet_object_locks(events: Sequence[Entry]) -> set[int]:
    """Indices of object lock, unlock and wait events that are bookkeeping.

    An object lock hold is kept if its holder waits for anything while holding
    it, a violation fires meanwhile, or it is still held at the end; a wait for
    an object lock is kept if the hold it waits on is kept or it never ends.
    """
    open_holds: dict[tuple[int, str], int] = {}  # (holder, object) -> lock index
    owner: dict[str, int] = {}  # object -> the lock index of its current hold
    keep: set[int] = set()  # lock indices of kept holds
    pairs: dict[int, int] = {}  # lock index -> unlock index
    waits: list[tuple[int, int, str, int | None]] = []  # (index, waiter, object, hold)
    acquired_after: dict[tuple[int, str], int] = {}  # (agent, object) -> last lock index
    for i, entry in enumerate(events):
        ev, aid = entry.event, entry.cpu
        if isinstance(ev, Lock) and ev.res == "object":
            name = str(ev.name)
            open_holds[(aid, name)] = i
            owner[name] = i
            acquired_after[(aid, name)] = i
        elif isinstance(ev, Unlock) and ev.res == "object":
            name = str(ev.name)
            taken = open_holds.pop((aid, name), None)
            if taken is not None:
                pairs[taken] = i
            owner.pop(name, None)
        elif isinstance(ev, Wait):
            keep.update(at for (holder, _), at in open_holds.items() if holder == aid)
            if ev.res == "object":
                waits.append((i, aid, str(ev.name), owner.get(str(ev.name))))
        elif isinstance(ev, Violated):
            keep.update(open_holds.values())
    keep.update(open_holds.values())
    quiet: set[int] = set()
    for start, end in pairs.items():
        if start not in keep:
            quiet.update((start, end))
    for i, aid, name, hold in waits:
        resolved = acquired_after.get((aid, name), -1) > i
        if resolved and (hold is None or hold not in keep):
            quiet.add(i)
    return quiet


def _next_of_agent(events: Sequence[Entry]) -> list[int | None]:
    """For each event, the index of the same agent's next non-sched event."""
    out: list[int | None] = [None] * len(events)
    last: dict[int, int] = {}
    for i in range(len(events) - 1, -1, -1):
        entry = events[i]
        if entry.kind == "sched":
            continue
        out[i] = last.get(entry.cpu)
        last[entry.cpu] = i
    return out


def _prev_of_agent(events: Sequence[Entry]) -> list[int | None]:
    """For each event, the index of the same agent's previous non-sched event."""
    out: list[int | None] = [None] * len(events)
    last: dict[int, int] = {}
    for i, entry in enumerate(events):
        if entry.kind == "sched":
            continue
        out[i] = last.get(entry.cpu)
        last[entry.cpu] = i
    return out


def _same_page(a: Any, b: Any) -> bool:
    """Whether two page events (alloc, pagein, io_done, unbusy) name the same page."""
    return bool(a.obj == b.obj and a.pindex == b.pindex)


@dataclass
class Plan:
    """How the default view shows the events: which to hide, which to join."""

    hidden: set[int]
    joined: dict[int, int]  # first index -> the index it absorbs (shown in one row)
    calls_that_fault: set[int]

    @classmethod
    def of(cls, events: Sequence[Entry], show_all: bool) -> Plan:
        if show_all:
            return cls(set(), {}, set())
        hidden = quiet_object_locks(events)
        joined: dict[int, int] = {}
        faults: set[int] = set()
        nxt, prv = _next_of_agent(events), _prev_of_agent(events)
        for i, entry in enumerate(events):
            ev = entry.event
            n = nxt[i]
            after = events[n] if n is not None else None
            if entry.kind == "sched" or (entry.cpu < 0 and entry.kind != "violation"):
                hidden.add(i)  # the harness: decisions, and the machine built before step 0
            elif isinstance(ev, Call) and (call := calls.syscall(ev.op)) is not None \
                    and call.memory_access:
                if after is not None and after.kind == ev.op:
                    hidden.add(i)  # no fault: the store or load itself says it all
                else:
                    faults.add(i)
            elif isinstance(ev, Call) and (call := calls.syscall(ev.op)) is not None \
                    and call.reaches_clean:
                if after is not None and after.kind == "clean_call" and n is not None:
                    joined[i] = n
                    hidden.add(n)
            elif entry.kind == "clean_return":
                if after is not None and after.kind == "ret" and n is not None:
                    joined[i] = n
                    hidden.add(n)
            elif isinstance(ev, Alloc):
                if (after is not None and isinstance(after.event, Pagein) and n is not None
                        and _same_page(ev, after.event)):
                    joined[i] = n  # one row: the page-in (the alloc busies the page)
                    hidden.add(n)
            elif isinstance(ev, IoDone):
                if (after is not None and isinstance(after.event, Unbusy) and n is not None
                        and _same_page(ev, after.event) and after.step == entry.step):
                    joined[i] = n
                    hidden.add(n)
            elif isinstance(ev, Ret):
                p = prv[i]
                before = events[p] if p is not None else None
                call = calls.syscall(ev.op)
                if call is not None and call.memory_access and before is not None and (
                        before.kind == ev.op):
                    hidden.add(i)  # the store or load itself showed what it did
        return cls(hidden, joined, faults)


@dataclass
class Row:
    """One line of the table: an agent's cell and the holds it changed, or a violation."""

    step: int
    column: int  # agent index; -1: the harness column
    text: Text
    kind: str
    events: list[int]  # trace indices the row stands for
    holds: Text = ("",)
    mark: bool = False
    violation: Violation | None = None


def _diff(name: str, before: tuple[str, ...], after: tuple[str, ...]) -> str:
    """``cpu0 -busy f:0 +vnode f``: what a row changed in what ``name`` holds."""
    gone = [f"-{x}" for x in before if x not in after]
    new = [f"+{x}" for x in after if x not in before]
    return " ".join([name, *gone, *new])


def build(events: Sequence[Entry], agents: list[str], disk: int,
          violations: list[Violation], marked: set[int], show_all: bool,
          joint: str) -> tuple[list[Row], State]:
    """The rows for ``events``, and the state as the last event left it.

    ``violations`` are the trace's; one whose event is in the trace becomes a
    row there, the rest (deadlock, starvation, crash: they end the run) go
    last.  Rows touching a store in ``marked`` are marked; ``joint`` joins the
    holds of several agents in one cell.
    """
    plan = Plan.of(events, show_all)
    state = State(agents, disk)
    rows: list[Row] = []
    pending = list(violations)  # matched to violation events, the rest go last
    absorbed = set(plan.joined.values())
    for i, entry in enumerate(events):
        kind, aid = entry.kind, entry.cpu
        column = aid if 0 <= aid < len(agents) else -1
        if isinstance(entry.event, Sched) and column == -1:
            chosen = entry.event.chosen
            column = chosen if isinstance(chosen, int) and 0 <= chosen < len(agents) else -1
        if kind == "violation":
            match = take_violation(pending, entry)
            before = {a: state.describe(a) for a in range(len(agents))}
            state.apply(entry)
            rows.append(Row(entry.step, column, ("",), kind, [i],
                            violation=dataclasses.replace(match, held=before)))
            continue
        if i in plan.hidden and i not in absorbed:
            state.apply(entry)
            continue
        if i in absorbed:
            continue  # applied with the row that absorbed it
        text = phrase(entry, state)
        if isinstance(entry.event, Call) and i in plan.calls_that_fault:
            text = calls.fault_phrases(text, entry.event)
        before_holds = {a: state.snapshot(a) for a in range(len(agents))}
        state.apply(entry)
        idx = [i]
        j = plan.joined.get(i)
        if j is not None:
            if kind == "clean_return":
                text = calls.joined_ret_phrases(entry, events[j])
            elif kind == "alloc":
                text = phrase(events[j], state)
            state.apply(events[j])  # an io_done's unbusy shows in the holds column
            idx.append(j)
        changed = [a for a in before_holds if state.snapshot(a) != before_holds[a]]
        full = joint.join(f"{state.name(a)}: {state.describe(a)}" for a in changed)
        diff = joint.join(_diff(state.name(a), before_holds[a], state.snapshot(a))
                          for a in changed)
        holds_text = (full, diff) if changed else ("",)
        mark = any(mentions(events[x], marked) for x in idx)
        rows.append(Row(entry.step, column, text, kind, idx, holds_text, mark))
    for v in pending:
        last = events[-1].step if events else 0
        step = v.step if v.step is not None else last
        rows.append(Row(step, -1, ("",), "violation", [], violation=dataclasses.replace(
            v, held={a: state.describe(a) for a in range(len(agents))})))
    return rows, state
