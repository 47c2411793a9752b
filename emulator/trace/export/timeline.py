"""A trace laid out in time, for the exporters: lanes, call and step slices, holds, violations.

Both exporters (:mod:`.perfetto`, :mod:`.html`) draw the same picture, so they
read it from one :class:`Timeline` built here from a trace's events, phrased
and replayed by the ``show`` package (its :class:`State`, its phrases and its
call texts): a label reads the same in the terminal, in Perfetto and in the
browser.

Time: the trace has steps, not clocks.  Each event that is not a scheduling
decision gets a tick of its own: ``ts = step * step_us + k`` where ``k``
counts the events of that step before it and ``step_us`` is the first power
of ten above the busiest step, so a timestamp still reads as its step (the
exporters call a tick one microsecond).

* A **lane** per agent named in the header (``cpu0``, ``cpu1``, ..., ``disk``),
  and ``harness`` when the harness has events other than its decisions.
* A **call** slice per system call, from its ``call`` event to one tick past
  its ``ret`` (to the end of the trace if it never returned).
* A **step** slice per other event, lasting until the same agent's next event
  if that comes in the same step, else to the end of its step, so a CPU that
  is not scheduled shows a gap; a wait lasts until it ends.
* A **hold** per lock, busied page or write in flight, from the event that
  took it to one tick past the one that let it go (the ``holds`` column of
  ``show``, as spans).
* A **violation** per violation of the trace, with the events it names as its
  causes: the stores whose ids its message names (``store #5``) and, for a
  step it names (``at step 40``) with no such store, the involved CPUs'
  events of that step; a message naming neither (a deadlock's cycle): each
  involved CPU's last wait.

``highlight`` is a set of trace event indices a caller wants marked (the
causal slice ``vmemu why`` finds); the exporters draw those events apart.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from emulator.kern.events import Call, Ret, Sched, Violated, Wait
from emulator.trace.reader import Entry, Trace
from emulator.trace.show import calls
from emulator.trace.show.phrases import cell_style, mentions, phrase
from emulator.trace.show.rows import Plan
from emulator.trace.show.state import Key, State
from emulator.trace.show.text import as_dict, as_list, clean
from emulator.trace.show.violations import store_ids, take_violation, trace_violations


@dataclass(frozen=True, slots=True)
class CallSlice:
    """One system call on its agent's lane."""

    index: int  # the trace index of its ``call`` event
    lane: int
    ts: int
    end: int
    text: str  # ``msync(0x10000, 8192, invalidate,sync)``
    ret: str | None  # ``msync -> 0``; None: still running when the trace ends


@dataclass(frozen=True, slots=True)
class StepSlice:
    """One event (a kernel step) on its agent's lane."""

    index: int  # trace index
    step: int
    lane: int
    ts: int
    end: int
    room: int  # its label may run on until there (its own tick: no label of its own)
    kind: str  # the event kind (``lock``, ``store``, ...)
    text: str  # its phrase, as ``show`` words it
    style: str  # ``show``'s colour for it: lock, wait, io, store, bad, dim or ""
    holds: str  # everything its agent holds after it
    detail: bool  # bookkeeping ``show`` hides by default (a brief object lock, ...)
    marked: bool  # touches a store a violation names


@dataclass(frozen=True, slots=True)
class Hold:
    """A lock held, a page busied, or a write in flight, on its holder's lane."""

    lane: int
    label: str  # ``map p0 x``, ``busy f:1``, ``writing f:0``
    cat: str  # ``lock``, ``busy`` or ``io``
    ts: int
    end: int
    start_index: int  # the trace index of the event that took it
    end_index: int | None  # the one that let it go; None: still held at the end


@dataclass(frozen=True, slots=True)
class Mark:
    """A violation: where it fired and the events it names as its causes."""

    rule: str
    message: str
    step: int | None
    ts: int
    index: int | None  # its ``violation`` event's trace index; None: only in the footer
    lane: int  # the lane of the agent it fired on; -1: the harness or the footer
    cpus: tuple[int, ...]
    causes: tuple[int, ...]  # trace indices of the events it names, in order
    held: str  # what each involved agent held when it fired


@dataclass
class Timeline:
    """A trace as lanes of slices in time; what both exporters draw."""

    title: str
    summary: list[str]  # the run's parameters and outcome, one line each
    lanes: list[str]
    titles: list[str]  # each lane's name with its process: ``cpu0 (p0)``
    step_us: int
    end: int  # one tick past the last event
    calls: list[CallSlice] = field(default_factory=list)
    steps: list[StepSlice] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    violations: list[Mark] = field(default_factory=list)
    highlight: frozenset[int] = frozenset()
    ts_of: dict[int, int] = field(default_factory=dict)  # trace index -> its tick

    def step_of(self, ts: int) -> int:
        """The trace step a tick falls in."""
        return ts // self.step_us


def _cat(label: str) -> str:
    if label.startswith("writing "):
        return "io"
    if label.startswith(("busy ", "sbusy ")):
        return "busy"
    return "lock"


def _ticks(trace: Trace) -> tuple[dict[int, int], int]:
    """Each non-decision event's tick, and the ticks per step."""
    per_step: dict[int, int] = {}
    for e in trace.entries:
        if e.kind != "sched":
            per_step[e.step] = per_step.get(e.step, 0) + 1
    step_us = 10
    while step_us <= max(per_step.values(), default=0):
        step_us *= 10
    ts_of: dict[int, int] = {}
    seen: dict[int, int] = {}
    for i, e in enumerate(trace.entries):
        if e.kind == "sched":
            continue
        k = seen.get(e.step, 0)
        seen[e.step] = k + 1
        ts_of[i] = max(e.step, 0) * step_us + k
    return ts_of, step_us


def _named_steps(message: str) -> list[int]:
    return [int(s) for s in re.findall(r"\bsteps? (\d+)", message)]


def _titles(trace: Trace, lanes: list[str]) -> list[str]:
    cpus = as_list(as_dict(trace.header.get("spec")).get("cpus"))
    out = []
    for n, name in enumerate(lanes):
        process = as_dict(cpus[n]).get("process") if n < len(cpus) else None
        out.append(f"{name} ({clean(str(process))})" if process is not None else name)
    return out


def _summary(trace: Trace, marks: list[Mark]) -> list[str]:
    h = trace.header
    params = ", ".join(f"{k}={v}" for k, v in sorted(h.get("params", {}).items()))
    run = (f"workload {h.get('workload', '?')}" + (f" ({params})" if params else "")
           + f" | profile {h['profile']} | variant {h['variant']} | seed {h['seed']}"
           + f" | strategy {h['strategy'].get('name', '?')}")
    outcome = trace.footer.get("outcome", "?") if trace.footer is not None else "cut short"
    lines = [clean(run), clean(f"outcome: {outcome} | {len(trace.events)} events")]
    lines.extend(f"{m.rule} at step {m.step}: {m.message}" for m in marks)
    return lines


def build(trace: Trace, highlight: Iterable[int] = ()) -> Timeline:
    """The timeline of ``trace``; ``highlight``: trace event indices to mark apart."""
    entries = trace.entries
    agents = [clean(str(a)) for a in trace.header.get("agents", [])]
    disk = agents.index("disk") if "disk" in agents else len(agents) - 1
    lanes = list(agents)
    if any(e.cpu < 0 and e.kind not in ("sched", "violation") for e in entries):
        lanes.append("harness")
    harness = len(lanes) - 1 if len(lanes) > len(agents) else -1
    ts_of, step_us = _ticks(trace)
    end = max(ts_of.values(), default=-1) + 1

    def lane_of(aid: int) -> int:
        return aid if 0 <= aid < len(agents) else harness

    # Each agent's next event (not a decision): a step inside a call lasts until it.
    nxt: dict[int, int] = {}
    last: dict[int, int] = {}
    for i in sorted(ts_of, reverse=True):
        aid = entries[i].cpu
        if aid in last:
            nxt[i] = last[aid]
        last[aid] = i

    plan = Plan.of(entries, show_all=False)
    # A label may run on until the agent's next labelled step: not a call or return
    # (drawn as the call), nor an event ``show`` folds into the one before (an
    # unbusy after its write's completion, a page-in after its alloc).
    folded = {j for i, j in plan.joined.items() if entries[i].cpu == entries[j].cpu
              and entries[i].kind not in ("call", "clean_return")}
    label_next: dict[int, int] = {}
    seen_label: dict[int, int] = {}
    for i in sorted(ts_of, reverse=True):
        aid = entries[i].cpu
        if aid in seen_label:
            label_next[i] = seen_label[aid]
        if entries[i].kind not in ("call", "ret", "violation") and i not in folded:
            seen_label[aid] = i
    pending = trace_violations(trace)
    marked = {n for v in pending for n in store_ids(v.message)}
    state = State(agents, disk)
    tl = Timeline(f"vmemu {trace.header.get('workload', '?')} / {trace.header['variant']}",
                  [], lanes, _titles(trace, lanes), step_us, end,
                  highlight=frozenset(highlight), ts_of=ts_of)
    open_calls: dict[int, tuple[int, str]] = {}  # agent -> (call index, call text)
    open_holds: dict[tuple[int, Key], tuple[str, int, int]] = {}  # -> (label, ts, index)
    fired: list[tuple[int, Mark]] = []

    for i, entry in enumerate(entries):
        ev, aid = entry.event, entry.cpu
        if isinstance(ev, Sched) or i not in ts_of:
            state.apply(entry)
            continue
        ts = ts_of[i]
        lane = lane_of(aid)
        if isinstance(ev, Violated):
            match = take_violation(pending, entry)
            held = "; ".join(f"{state.name(a)}: {state.describe(a)}" for a in match.cpus
                             if 0 <= a < len(agents))
            fired.append((i, Mark(match.rule, match.message, entry.step, ts, i, lane,
                                  tuple(match.cpus), (), held)))
            state.apply(entry)
            continue
        if isinstance(ev, Call) and lane >= 0:
            open_calls[aid] = (i, calls.call_text(ev))
            state.apply(entry)
            continue
        if isinstance(ev, Ret) and aid in open_calls:
            start, call = open_calls.pop(aid)
            tl.calls.append(CallSlice(start, lane, ts_of[start], ts + 1, call,
                                      calls.ret_phrase(ev)))
            state.apply(entry)
            continue
        words = phrase(entry, state)
        before = {a: dict(h) for a, h in state.holds.items()}
        state.apply(entry)
        for a in sorted(set(before) | set(state.holds)):
            was, now = before.get(a, {}), state.holds.get(a, {})
            for key in sorted(was):
                if now.get(key) != was[key]:
                    label, start_ts, start_i = open_holds.pop((a, key))
                    tl.holds.append(Hold(lane_of(a), label, _cat(label), start_ts, ts + 1,
                                         start_i, i))
            for key in sorted(now):
                if was.get(key) != now[key]:
                    open_holds[(a, key)] = (now[key], ts, i)
        # A step lasts until the agent's next event if that is in the same step, else
        # to the step's end: a CPU not scheduled shows a gap.  A wait lasts until the
        # agent runs again (it is blocked all along), as does a call's last step.
        n = nxt.get(i)
        step_end = (entry.step + 1) * step_us
        if n is None:
            stop = end if aid in open_calls else step_end
        elif isinstance(ev, Wait) or entries[n].step == entry.step:
            stop = ts_of[n]
        else:
            stop = min(step_end, ts_of[n])
        ln = label_next.get(i)
        room = ts if i in folded else (ts_of[ln] if ln is not None else max(end, step_end))
        tl.steps.append(StepSlice(i, entry.step, lane, ts, max(stop, ts + 1), room, entry.kind,
                                  words[0], cell_style(entry.kind, words), state.describe(aid)
                                  if aid >= 0 else "", i in plan.hidden and i not in folded,
                                  mentions(entry, marked)))

    for aid, (start, call) in sorted(open_calls.items()):
        tl.calls.append(CallSlice(start, lane_of(aid), ts_of[start], end, call, None))
    for (a, _key), (label, start_ts, start_i) in sorted(open_holds.items()):
        tl.holds.append(Hold(lane_of(a), label, _cat(label), start_ts, end, start_i, None))
    for v in pending:  # deadlock, starvation, crash: they end the run, so they go last
        held = "; ".join(f"{state.name(a)}: {state.describe(a)}" for a in v.cpus
                         if 0 <= a < len(agents))
        fired.append((len(entries), Mark(v.rule, v.message, v.step, end, None, -1,
                                         tuple(v.cpus), (), held)))
    tl.calls.sort(key=lambda c: c.index)
    tl.holds.sort(key=lambda h: (h.ts, h.lane, h.start_index, h.label))
    tl.violations = [_with_causes(tl, entries, at, m) for at, m in fired]
    tl.summary = _summary(trace, tl.violations)
    return tl


def _with_causes(tl: Timeline, entries: Sequence[Entry], at: int, mark: Mark) -> Mark:
    """``mark`` with the earlier events its message names: its stores, else its steps."""
    ids = store_ids(mark.message)
    causes = [s.index for s in tl.steps
              if s.index < at and s.kind == "store" and mentions(entries[s.index], ids)]
    covered = {entries[i].step for i in causes}
    before = [i for i in sorted(tl.ts_of) if i < at and entries[i].kind != "violation"]
    for step in _named_steps(mark.message):
        if step in covered:
            continue
        # The involved CPUs' events of that step; else anyone's (the other side of a
        # race: who freed the entry); else each involved CPU's last event before it.
        found = [i for i in before if entries[i].step == step and entries[i].cpu in mark.cpus]
        found = found or [i for i in before if entries[i].step == step and entries[i].cpu >= 0]
        if not found:
            last = {entries[i].cpu: i for i in before
                    if entries[i].step <= step and entries[i].cpu in mark.cpus}
            found = sorted(last.values())
        firsts: dict[int, int] = {}
        for i in found:
            firsts.setdefault(entries[i].cpu, i)
        causes.extend(firsts.values())
    if not causes and not ids and not _named_steps(mark.message):
        # A deadlock names its cycle, not steps: each involved CPU's last wait.
        waits = {entries[i].cpu: i for i in before
                 if entries[i].kind == "wait" and entries[i].cpu in mark.cpus}
        causes = sorted(waits.values())
    return dataclasses.replace(mark, causes=tuple(sorted(set(causes))))
