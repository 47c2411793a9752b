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

from emulator.trace.show import calls
from emulator.trace.show.phrases import mentions, phrase
from emulator.trace.show.state import State
from emulator.trace.show.text import Text
from emulator.trace.show.violations import Violation, take_violation


def quiet_object_locks(events: Sequence[dict[str, Any]]) -> set[int]:
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
    for i, ev in enumerate(events):
        kind, aid, a = ev["event"], ev["cpu"], ev["args"]
        is_object = len(a) >= 2 and a[0] == "object"
        if kind == "lock" and is_object:
            name = str(a[1])
            open_holds[(aid, name)] = i
            owner[name] = i
            acquired_after[(aid, name)] = i
        elif kind == "unlock" and is_object:
            name = str(a[1])
            taken = open_holds.pop((aid, name), None)
            if taken is not None:
                pairs[taken] = i
            owner.pop(name, None)
        elif kind == "wait":
            keep.update(at for (holder, _), at in open_holds.items() if holder == aid)
            if is_object:
                waits.append((i, aid, str(a[1]), owner.get(str(a[1]))))
        elif kind == "violation":
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


def _next_of_agent(events: Sequence[dict[str, Any]]) -> list[int | None]:
    """For each event, the index of the same agent's next non-sched event."""
    out: list[int | None] = [None] * len(events)
    last: dict[int, int] = {}
    for i in range(len(events) - 1, -1, -1):
        ev = events[i]
        if ev["event"] == "sched":
            continue
        out[i] = last.get(ev["cpu"])
        last[ev["cpu"]] = i
    return out


def _prev_of_agent(events: Sequence[dict[str, Any]]) -> list[int | None]:
    """For each event, the index of the same agent's previous non-sched event."""
    out: list[int | None] = [None] * len(events)
    last: dict[int, int] = {}
    for i, ev in enumerate(events):
        if ev["event"] == "sched":
            continue
        out[i] = last.get(ev["cpu"])
        last[ev["cpu"]] = i
    return out


def _same_page(a: list[Any], b: list[Any]) -> bool:
    return len(a) >= 2 and len(b) >= 2 and a[0] == b[0] and a[1] == b[1]


@dataclass
class Plan:
    """How the default view shows the events: which to hide, which to join."""

    hidden: set[int]
    joined: dict[int, int]  # first index -> the index it absorbs (shown in one row)
    calls_that_fault: set[int]

    @classmethod
    def of(cls, events: Sequence[dict[str, Any]], show_all: bool) -> Plan:
        if show_all:
            return cls(set(), {}, set())
        hidden = quiet_object_locks(events)
        joined: dict[int, int] = {}
        faults: set[int] = set()
        nxt, prv = _next_of_agent(events), _prev_of_agent(events)
        for i, ev in enumerate(events):
            kind, a = ev["event"], ev["args"]
            n = nxt[i]
            after = events[n] if n is not None else None
            if kind == "sched" or (ev["cpu"] < 0 and kind != "violation"):
                hidden.add(i)  # the harness: decisions, and the machine built before step 0
            elif kind == "call" and (call := calls.syscall(a)) is not None and call.memory_access:
                if after is not None and after["event"] == a[0]:
                    hidden.add(i)  # no fault: the store or load itself says it all
                else:
                    faults.add(i)
            elif kind == "call" and (call := calls.syscall(a)) is not None and call.reaches_clean:
                if after is not None and after["event"] == "clean_call" and n is not None:
                    joined[i] = n
                    hidden.add(n)
            elif kind == "clean_return":
                if after is not None and after["event"] == "ret" and n is not None:
                    joined[i] = n
                    hidden.add(n)
            elif kind == "alloc":
                if (after is not None and after["event"] == "pagein" and n is not None
                        and _same_page(a, after["args"])):
                    joined[i] = n  # one row: the page-in (the alloc busies the page)
                    hidden.add(n)
            elif kind == "io_done":
                if (after is not None and after["event"] == "unbusy" and n is not None
                        and _same_page(a, after["args"]) and after["step"] == ev["step"]):
                    joined[i] = n
                    hidden.add(n)
            elif kind == "ret" and len(a) >= 2:
                p = prv[i]
                before = events[p] if p is not None else None
                call = calls.syscall(a)
                if call is not None and call.memory_access and before is not None and (
                        before["event"] == a[0]):
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


def build(events: Sequence[dict[str, Any]], agents: list[str], disk: int,
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
    for i, ev in enumerate(events):
        kind, aid = ev["event"], ev["cpu"]
        column = aid if 0 <= aid < len(agents) else -1
        if kind == "sched" and column == -1 and ev["args"]:
            chosen = ev["args"][0]
            column = chosen if isinstance(chosen, int) and 0 <= chosen < len(agents) else -1
        if kind == "violation":
            match = take_violation(pending, ev)
            before = {a: state.describe(a) for a in range(len(agents))}
            state.apply(ev)
            rows.append(Row(ev["step"], column, ("",), kind, [i],
                            violation=dataclasses.replace(match, held=before)))
            continue
        if i in plan.hidden and i not in absorbed:
            state.apply(ev)
            continue
        if i in absorbed:
            continue  # applied with the row that absorbed it
        text = phrase(ev, state)
        if kind == "call" and i in plan.calls_that_fault:
            text = calls.fault_phrases(text, ev["args"])
        before_holds = {a: state.snapshot(a) for a in range(len(agents))}
        state.apply(ev)
        idx = [i]
        j = plan.joined.get(i)
        if j is not None:
            if kind == "clean_return":
                text = calls.joined_ret_phrases(ev, events[j])
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
        rows.append(Row(ev["step"], column, text, kind, idx, holds_text, mark))
    for v in pending:
        last = events[-1]["step"] if events else 0
        step = v.step if v.step is not None else last
        rows.append(Row(step, -1, ("",), "violation", [], violation=dataclasses.replace(
            v, held={a: state.describe(a) for a in range(len(agents))})))
    return rows, state
