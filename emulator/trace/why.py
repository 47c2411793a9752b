"""``vmemu why``: the causal explanation of a trace's violation.

Two questions, two answers:

1. **Which events matter?**  :func:`slice_of` walks back from the violation
   along happens-before and keeps only the edges a reader needs to follow the
   race: program order (each event's system call, and the violating CPU's last
   steps), lock hand-offs (an unlock to the next lock of the same lock by
   another agent, through the wait in between), busy hand-offs (an unbusy, or
   the disk's completion, to the next busy of the same page), I/O issue to
   completion, store to write-protect / unmap / write of the same page, the
   pte a store landed through (and the unmap that removed it), a page-in to
   the vnode lock it ran under, a map lock to the entry changes made before
   it.  The violation's own words add the roots:
   the stores (``store #5``), pages (``f:1``) and steps (``at step 40``) it
   names.  The slice is a set of indices into ``trace.entries``; ``vmemu show
   --why`` and the HTML export mark those rows.
2. **Which preemptions does it need?**  A preemption is a scheduling decision
   that switches away from an agent that could have gone on.  Each one is
   removed in turn -- at that decision the preempted agent keeps running for
   its next turn, the rest of the schedule is followed leniently, as
   ``shrink`` follows it (:class:`WithoutPreemption`) -- and the run is
   checked for the same rule.  A preemption without which the rule does not
   fire is *needed*; the text names the one or two latest needed preemptions
   that switch to or from an event of the slice.

The text is at most :data:`MAX_LINES` lines of plain words: the violation, an
"in short" line (its weightiest cross-agent causes), the slice as one line per
run of one agent's events, and the needed preemptions; each event phrased as
``vmemu show`` phrases it (emulator/trace/show/phrases.py).  A trace with
no violation is bad input for this command: one line, exit 2 (as ``shrink``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from emulator.check import all_checkers
from emulator.errors import BadInput
from emulator.kern import events as ev_
from emulator.kern.param import PAGE_SHIFT
from emulator.machine import Execution, Machine
from emulator.trace.reader import Entry, Trace
from emulator.trace.replay import FollowStrategy, trace_variant
from emulator.trace.show import calls
from emulator.trace.show.phrases import phrase
from emulator.trace.show.state import State
from emulator.trace.show.text import clean
from emulator.trace.show.violations import Violation, store_ids, trace_violations
from emulator.variants import Variant

MAX_LINES = 30  # the whole explanation, header to last preemption
MAX_STORY = 18  # lines of the story of the slice; older groups are left out beyond it
MAX_PHRASES = 4  # events of one agent in one story line; more go on the next line

# The "in short" line: a cross-agent cause in words ({a}: the cause's agent, {x}: its phrase,
# {s}: its step; {b}, {y}, {t}: the effect's).
_SHORT = {
    "the last store to the page": "{a}'s {x} at step {s} was still in the page at {b}'s {y} "
                                  "at step {t}",
    "the store it writes": "{b}'s {y} at step {t} wrote {a}'s {x} of step {s}",
    "the write it completes": "{b}'s {y} at step {t} completed {a}'s {x} of step {s}",
    "busy hand-off": "{b}'s {y} at step {t} came right after {a}'s {x} at step {s}",
    "a map change it finds": "{b}'s {y} at step {t} found the map as {a}'s {x} at step {s} "
                             "left it",
    "the mapping it went through": "{b}'s {y} at step {t} went through {a}'s {x} of step {s}",
    "the mapping it removes": "{b}'s {y} at step {t} removed {a}'s {x} of step {s}",
    "the hold it waits on": "{b}'s {y} at step {t} waited on {a}'s {x} of step {s}",
}

# Which cross-agent cause a story line names first: data before bookkeeping.
_WEIGHT = {"the last store to the page": 5, "the store it writes": 5,
           "the write it completes": 4, "busy hand-off": 4, "a map change it finds": 4,
           "the mapping it removes": 3, "the mapping it went through": 3,
           "the hold it waits on": 2, "lock hand-off": 1}

Page = tuple[str, int]
Cause = tuple[int, str]  # (entry index, why it is a cause)

_PAGE_RE = re.compile(r"\b([A-Za-z_][\w.-]*):(\d+)\b")
_STEP_RE = re.compile(r"\bsteps? (\d+)")
# The events of the violating CPU's call that change what the violation is about.
_CHANGES = (ev_.CleanGeneration, ev_.Writeable, ev_.RemoveWrite, ev_.RemoveAll, ev_.IoIssue,
            ev_.Free, ev_.EntryInsert, ev_.EntryRemove, ev_.EntryClip, ev_.EntryProtect,
            ev_.PteRemove, ev_.PteProtect, ev_.CleanCall)


def _page_of(ev: Any) -> Page | None:
    obj, pindex = getattr(ev, "obj", None), getattr(ev, "pindex", None)
    if isinstance(obj, str) and isinstance(pindex, int):
        return obj, pindex
    return None


def _named_page(name: str) -> Page | None:
    m = _PAGE_RE.fullmatch(name)
    return (m.group(1), int(m.group(2))) if m else None


@dataclass
class _Walk:
    """What the events so far leave for the causes of the next one."""

    last: dict[int, int] = field(default_factory=dict)  # agent -> its last event
    call: dict[int, int] = field(default_factory=dict)  # agent -> its current call event
    unlock: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    release: dict[Page, tuple[int, int]] = field(default_factory=dict)  # unbusy / io_done
    acquire: dict[tuple[int, Any], int] = field(default_factory=dict)  # (agent, key) -> event
    waiting: dict[int, int] = field(default_factory=dict)  # agent -> its open wait
    issue: dict[Page, int] = field(default_factory=dict)
    protect: dict[Page, int] = field(default_factory=dict)
    store: dict[Page, int] = field(default_factory=dict)
    sid: dict[int, int] = field(default_factory=dict)
    pte: dict[tuple[str, int], int] = field(default_factory=dict)
    pte_of_page: dict[Page, int] = field(default_factory=dict)
    unmap: dict[Page, int] = field(default_factory=dict)
    on_page: dict[tuple[int, Page], int] = field(default_factory=dict)  # (agent, page) -> event
    io_done: dict[int, Page] = field(default_factory=dict)
    entries: dict[str, list[int]] = field(default_factory=dict)  # map -> changes not yet seen
    in_call: dict[int, list[int]] = field(default_factory=dict)  # agent -> its call's events


def _lock_key(res: str, name: str) -> tuple[str, str, str]:
    return ("lock", res, name)


def _causes(walk: _Walk, i: int, entry: Entry) -> list[Cause]:
    """The direct causes of event ``i`` among the events before it."""
    ev, aid = entry.event, entry.cpu
    out: list[Cause] = []
    if aid in walk.call and not isinstance(ev, ev_.Call):
        out.append((walk.call[aid], "its system call"))
    p = _page_of(ev)
    if isinstance(ev, ev_.Lock):
        prev = walk.unlock.get((str(ev.res), str(ev.name)))
        if prev is not None and prev[1] != aid:
            out.append((prev[0], "lock hand-off"))
        if ev.res == "map":
            out.extend((j, "a map change it finds") for j in walk.entries.get(str(ev.name), []))
        if aid in walk.waiting:
            out.append((walk.waiting[aid], "the wait it ended"))
    elif isinstance(ev, ev_.Wait):
        key: Any = _lock_key(str(ev.res), str(ev.name))
        if ev.res in ("busy", "io"):
            named = _named_page(str(ev.name))
            key = ("page", named) if named else key
            if ev.res == "io" and named in walk.issue:
                out.append((walk.issue[named], "the write it waits for"))
        out.extend((at, "the hold it waits on") for (holder, k), at in walk.acquire.items()
                   if k == key and holder != aid)
    elif isinstance(ev, ev_.Busy | ev_.Alloc) and p is not None:
        if isinstance(ev, ev_.Alloc):  # a page-in runs under the vnode lock
            vnode = walk.acquire.get((aid, _lock_key("vnode", p[0])))
            if vnode is not None:
                out.append((vnode, "the vnode lock it pages in under"))
        prev = walk.release.get(p)
        if prev is not None and prev[1] != aid:
            out.append((prev[0], "busy hand-off"))
        if aid in walk.waiting:
            out.append((walk.waiting[aid], "the wait it ended"))
    elif isinstance(ev, ev_.IoDone) and p is not None and p in walk.issue:
        out.append((walk.issue[p], "the write it completes"))
    elif isinstance(ev, ev_.IoIssue) and p is not None:
        if p in walk.protect:
            out.append((walk.protect[p], "the write-protect before the write"))
        if isinstance(ev.data, int) and ev.data in walk.sid:
            out.append((walk.sid[ev.data], "the store it writes"))
    elif isinstance(ev, ev_.RemoveWrite | ev_.RemoveAll) and p is not None:
        if p in walk.store:
            out.append((walk.store[p], "the last store to the page"))
        if p in walk.pte_of_page:
            out.append((walk.pte_of_page[p], "the mapping it removes"))
    elif isinstance(ev, ev_.Free) and p is not None and p in walk.unmap:
        out.append((walk.unmap[p], "the unmap before the free"))
    elif isinstance(ev, ev_.Store | ev_.Load):
        vpn = (str(ev.map), int(ev.va) >> PAGE_SHIFT)
        if vpn in walk.pte:
            out.append((walk.pte[vpn], "the mapping it went through"))
    elif isinstance(ev, ev_.PteEnter | ev_.Pagein | ev_.Dirty) and p is not None:
        own = walk.acquire.get((aid, ("page", p)))
        if own is not None:
            out.append((own, "the busy it holds"))
    elif isinstance(ev, ev_.Ret | ev_.CleanReturn) and aid in walk.last:
        out.append((walk.last[aid], "program order"))
    elif isinstance(ev, ev_.Unbusy) and p is not None and aid in walk.last:
        done = walk.last[aid]  # the disk's unbusy ends the write it completed
        if done in walk.io_done and walk.io_done[done] == p:
            out.append((done, "the completion it ends"))
    return [(j, why) for j, why in out if j != i]


def _advance(walk: _Walk, i: int, entry: Entry) -> None:
    """Note event ``i`` for the causes of the events after it."""
    ev, aid = entry.event, entry.cpu
    p = _page_of(ev)
    if not isinstance(ev, ev_.Wait):
        walk.waiting.pop(aid, None)
    walk.last[aid] = i
    if p is not None:
        walk.on_page[(aid, p)] = i
    if isinstance(ev, ev_.Call):
        walk.in_call[aid] = []
    walk.in_call.setdefault(aid, []).append(i)
    if isinstance(ev, ev_.Call):
        walk.call[aid] = i
    elif isinstance(ev, ev_.Ret):
        walk.call.pop(aid, None)
    elif isinstance(ev, ev_.Lock):
        walk.acquire[(aid, _lock_key(str(ev.res), str(ev.name)))] = i
        if ev.res == "map":  # the changes before are now seen
            walk.entries[str(ev.name)] = []
    elif isinstance(ev, ev_.Unlock):
        walk.acquire.pop((aid, _lock_key(str(ev.res), str(ev.name))), None)
        walk.unlock[(str(ev.res), str(ev.name))] = (i, aid)
    elif isinstance(ev, ev_.Wait):
        walk.waiting[aid] = i
    elif isinstance(ev, ev_.Busy | ev_.Alloc) and p is not None:
        walk.acquire[(aid, ("page", p))] = i
    elif isinstance(ev, ev_.Unbusy) and p is not None:
        for key in [k for k in walk.acquire if k[1] == ("page", p)]:
            del walk.acquire[key]
        walk.release[p] = (i, aid)
    elif isinstance(ev, ev_.IoIssue) and p is not None:
        walk.issue[p] = i
        walk.acquire.pop((aid, ("page", p)), None)
    elif isinstance(ev, ev_.IoDone) and p is not None:
        walk.release[p] = (i, aid)
        walk.io_done[i] = p
    elif isinstance(ev, ev_.EntryInsert | ev_.EntryRemove | ev_.EntryClip | ev_.EntryProtect):
        walk.entries.setdefault(str(ev.map), []).append(i)
    elif isinstance(ev, ev_.RemoveWrite) and p is not None:
        walk.protect[p] = i
    elif isinstance(ev, ev_.RemoveAll) and p is not None:
        walk.unmap[p] = i
    elif isinstance(ev, ev_.Free) and p is not None:  # a freed page is no one's busy
        for key in [k for k in walk.acquire if k[1] == ("page", p)]:
            del walk.acquire[key]
    elif isinstance(ev, ev_.Store) and p is not None:
        walk.store[p] = i
        if isinstance(ev.sid, int):
            walk.sid[ev.sid] = i
    elif isinstance(ev, ev_.PteEnter) and p is not None:
        walk.pte[(str(ev.map), int(ev.vpn))] = i
        walk.pte_of_page[p] = i


@dataclass
class Graph:
    """The events' causes, and the violation the slice starts from."""

    violation: Violation
    anchor: int | None  # the violation event's index; None: the run ended in it (crash...)
    causes: dict[int, list[Cause]]  # every event -> its direct causes; the anchor's too
    roots: list[int]  # the events the violation names
    pages: set[Page] = field(default_factory=set)  # the pages it names


def _root_causes(trace: Trace, walk: _Walk, upto: int, v: Violation,
                 agent: int | None) -> list[Cause]:
    """The violation's own causes: its CPU's last steps and what it names."""
    entries = trace.entries
    out: list[Cause] = []
    own = [agent] if agent is not None and agent >= 0 else list(v.cpus)
    fields = _footer_fields(trace, v)
    names = _page_names(trace, v)
    pages = _pages_named(trace, v)
    for a in own:
        if a in walk.last:
            out.append((walk.last[a], "its CPU's last step"))
        if a in walk.call:
            out.append((walk.call[a], "its system call"))
        out.extend((at, "held when it fired") for (holder, _), at in walk.acquire.items()
                   if holder == a)
        for j in walk.in_call.get(a, []):  # what its call changed, on the pages named
            ev = entries[j].event
            if isinstance(ev, _CHANGES) and (not pages or _page_of(ev) in pages or (
                    _page_of(ev) is None and getattr(ev, "obj", None) in {o for o, _ in pages})):
                out.append((j, "what its call changed"))
    for a in v.cpus:  # the other CPUs it names: what each was doing
        if a not in own and a in walk.call:
            out.append((walk.call[a], "the call of a CPU it names"))
    for n in sorted(store_ids(v.message)):
        if n in walk.sid:
            out.append((walk.sid[n], f"the store #{n} it names"))
    for name in names:
        p = _named_page(name)
        out.extend((at, f"the last event on page {name}")
                   for (_, q), at in sorted(walk.on_page.items()) if q == p)
    steps = {int(s) for s in _STEP_RE.findall(v.message)}
    steps |= {int(x) for x in fields.values() if isinstance(x, int) and not isinstance(x, bool)
              and x != v.step}
    for j in range(upto):
        e = entries[j]
        if e.step in steps and e.kind not in ("sched", "ret") and e.cpu >= 0:
            out.append((j, f"step {e.step}, which it names"))
    return out


def _store_sid(entry: Entry) -> int | None:
    return entry.event.sid if isinstance(entry.event, ev_.Store) else None


def _page_names(trace: Trace, v: Violation) -> list[str]:
    """The pages (``f:1``) the violation's message and footer fields name, in order."""
    names = [f"{m.group(1)}:{m.group(2)}" for m in _PAGE_RE.finditer(v.message)]
    page = _footer_fields(trace, v).get("page")
    if isinstance(page, str):
        names.append(page)
    return list(dict.fromkeys(names))


def _pages_named(trace: Trace, v: Violation) -> set[Page]:
    return {p for p in map(_named_page, _page_names(trace, v)) if p is not None}


def _footer_fields(trace: Trace, v: Violation) -> dict[str, Any]:
    for rec in trace.violations:
        if isinstance(rec, dict) and rec.get("rule") == v.rule and isinstance(
                rec.get("fields"), dict):
            return dict(rec["fields"])
    return {}


def graph_of(trace: Trace) -> Graph:
    """Every event's causes, up to the trace's first violation."""
    violations = trace_violations(trace)
    if not violations:
        raise BadInput(f"{trace.path}: trace records no violation: nothing to explain")
    v = violations[0]
    entries = trace.entries
    walk = _Walk()
    causes: dict[int, list[Cause]] = {}
    for i, entry in enumerate(entries):
        if isinstance(entry.event, ev_.Violated):
            if clean(str(entry.event.rule)) == v.rule:
                roots = _root_causes(trace, walk, i, v, entry.cpu)
                causes[i] = roots
                return Graph(v, i, causes, [j for j, _ in roots], _pages_named(trace, v))
            continue
        if entry.kind == "sched" or entry.cpu < 0:
            continue
        causes[i] = _causes(walk, i, entry)
        _advance(walk, i, entry)
    # No violation event: the run ended in it (a crash, a deadlock, starvation).
    roots = _root_causes(trace, walk, len(entries), v, None)
    for a in sorted(walk.waiting):  # a deadlock: every wait, and what it waits on
        roots.append((walk.waiting[a], "a wait that never ended"))
    return Graph(v, None, causes, [j for j, _ in roots], _pages_named(trace, v))


def _closure(g: Graph) -> set[int]:
    seen: set[int] = set()
    todo = list(g.roots) + ([g.anchor] if g.anchor is not None else [])
    while todo:
        j = todo.pop()
        if j in seen:
            continue
        seen.add(j)
        todo.extend(k for k, _ in g.causes.get(j, []) if k not in seen)
    return seen


def slice_of(trace: Trace) -> set[int]:
    """The indices into ``trace.entries`` of the events the first violation depends on.

    The violation event itself is included (when the trace has one); scheduling
    decisions never are.  Raises ``BadInput`` for a trace with no violation.
    This is the hook ``vmemu show --why`` and the HTML export mark rows with.
    """
    return _closure(graph_of(trace))


# -- preemptions -------------------------------------------------------------


@dataclass(frozen=True)
class Preemption:
    """One preempting decision of the recording, and the run without it."""

    decision: int  # index into trace.decisions
    index: int  # the sched event's index in trace.entries
    step: int
    preempted: int
    chosen: int
    without: str  # how the run without it ended: "ok", "in a lost_store violation", ...
    needed: bool  # without it the rule does not fire

    def to_json(self) -> dict[str, Any]:
        return {"decision": self.decision, "index": self.index, "step": self.step,
                "preempted": self.preempted, "chosen": self.chosen,
                "without": self.without, "needed": self.needed}


def preemptions_of(trace: Trace) -> list[tuple[int, int]]:
    """``(decision, entry index)`` of each decision that switched away from a runnable agent."""
    out = []
    decision = 0
    for i, e in enumerate(trace.entries):
        if isinstance(e.event, ev_.Sched):
            if e.cpu >= 0 and e.event.chosen != e.cpu and e.cpu in e.event.runnable:
                out.append((decision, i))
            decision += 1
    return out


def _ending(ex: Execution) -> str:
    """How a run ended, to follow "the run ends": ``ok``, ``in a lost_store violation``."""
    if not ex.violations:
        return str(ex.outcome)
    rule = ex.violations[0].rule
    return f"in {rule}" if rule == str(ex.outcome) else f"in a {rule} violation"


class WithoutPreemption(FollowStrategy):
    """The recorded schedule without the preemption at decision ``k``.

    At decision ``k`` the preempted ``agent`` keeps running, for as many
    decisions as its next turn took in the recording (or, if it never ran
    again, while it can); then the rest of the schedule is followed leniently,
    as ``shrink`` follows it, with that turn left out since it has been taken.
    Keeping it running for one decision only would not remove the preemption:
    the recorded schedule switches away again at the next one.
    """

    name = "without_preemption"

    def __init__(self, decisions: Sequence[int], k: int, agent: int) -> None:
        d = list(decisions)
        resume = next((j for j in range(k + 1, len(d)) if d[j] == agent), None)
        if resume is None:
            self.turn: int | None = None
            rest = d[k:]
        else:
            end = resume
            while end < len(d) and d[end] == agent:
                end += 1
            self.turn = end - resume
            rest = d[k:resume] + d[end:]
        super().__init__(d[:k] + rest)
        self.k, self.agent = k, agent
        self.left: int | None = self.turn
        self.phase = 0  # 0: before k, 1: keeping the agent on, 2: the rest

    def reset(self, seed: int) -> None:
        super().reset(seed)
        self.left, self.phase = self.turn, 0

    def choose(self, runnable: Sequence[int], current: int) -> int:
        if self.phase == 0 and self.pos == self.k:
            self.phase = 1
        if self.phase == 1:
            if self.agent in runnable and (self.left is None or self.left > 0):
                if self.left is not None:
                    self.left -= 1
                return self.agent
            self.phase = 2
        return super().choose(runnable, current)


@dataclass
class Necessity:
    """What replaying without each preemption showed."""

    reproduced: bool  # the recorded schedule, followed, breaks the rule again
    singles: list[Preemption]
    runs: int
    variant: str  # the variant replayed


async def _necessity(trace: Trace, rule: str, variant_override: str | None) -> Necessity:
    variant = trace_variant(trace, variant_override)
    decisions = trace.decisions
    entries = trace.entries
    runs = 0

    async def run(strategy: FollowStrategy) -> Execution:
        nonlocal runs
        runs += 1
        return await execute(trace, strategy, variant)

    base = await run(FollowStrategy(decisions))
    singles = []
    for d, i in preemptions_of(trace):
        e = entries[i]
        assert isinstance(e.event, ev_.Sched)
        ex = await run(WithoutPreemption(decisions, d, e.cpu))
        singles.append(Preemption(d, i, e.step, e.cpu, int(e.event.chosen), _ending(ex),
                                  not fires(ex, rule)))
    return Necessity(fires(base, rule), singles, runs, variant.name)


async def execute(trace: Trace, strategy: FollowStrategy, variant: Variant) -> Execution:
    """One run of ``trace``'s workload under ``strategy`` (not recorded)."""
    config = trace.config
    machine = Machine(trace.spec, variant, strategy, checkers=all_checkers(),
                      max_steps=config.max_steps)
    return await machine.execute(config.seed, trace.spec)


def fires(ex: Execution, rule: str) -> bool:
    """Whether ``ex`` broke ``rule``."""
    return any(v.rule == rule for v in ex.violations)


# -- the explanation -----------------------------------------------------------


@dataclass
class Explanation:
    """The slice, the preemptions, and their words."""

    trace: Trace
    graph: Graph
    slice: set[int]
    texts: dict[int, str]  # entry index -> its phrase, as show phrases it
    necessity: Necessity

    @property
    def violation(self) -> Violation:
        return self.graph.violation

    def name(self, aid: int) -> str:
        agents = self.trace.header.get("agents", [])
        return clean(str(agents[aid])) if 0 <= aid < len(agents) else f"agent{aid}"

    def named(self) -> list[Preemption]:
        """The one or two preemptions the text names: needed ones nearest the race."""
        needed = [p for p in self.necessity.singles if p.needed]
        # The latest needed preemptions that hand the CPU to or from a slice event: the
        # switches nearest the race.
        return sorted(needed, key=lambda p: (self._touches(p) > 0, p.index), reverse=True)[:2]

    def _touches(self, p: Preemption) -> int:
        """How many of the two agents' next events after ``p`` are in the slice."""
        nxt = [self._next_of(p.index, a) for a in (p.preempted, p.chosen)]
        return sum(1 for j in nxt if j is not None and j in self.slice)

    def _next_of(self, index: int, agent: int) -> int | None:
        for j in range(index + 1, len(self.trace.entries)):
            e = self.trace.entries[j]
            if e.cpu == agent and e.kind != "sched":
                return j
        return None

    # -- text ------------------------------------------------------------------

    def story(self) -> list[str]:
        """The slice as lines: consecutive events of one agent joined, hand-offs said."""
        entries = self.trace.entries
        order = sorted(j for j in self.slice if j != self.graph.anchor)
        groups: list[list[int]] = []
        for j in order:
            if (groups and entries[groups[-1][-1]].cpu == entries[j].cpu
                    and len(groups[-1]) < MAX_PHRASES):
                groups[-1].append(j)
            else:
                groups.append([j])
        lines = []
        for group in groups:
            first, last = entries[group[0]], entries[group[-1]]
            steps = (f"step {first.step}" if first.step == last.step
                     else f"steps {first.step}-{last.step}")
            phrases = [self.texts.get(j, entries[j].kind) for j in group]
            line = f"  {steps:<12} {self.name(first.cpu)}: " + "; ".join(phrases)
            after = self._handoff(group)
            if after:
                line += f" (after {after})"
            lines.append(line)
        return lines

    def _handoff(self, group: list[int]) -> str:
        """The weightiest cause of ``group`` on another agent, in words."""
        entries = self.trace.entries
        agent = entries[group[0]].cpu
        found = [(_WEIGHT.get(why, 0), k) for j in group for k, why in
                 self.graph.causes.get(j, []) if entries[k].cpu != agent and k in self.slice
                 and why != "its system call"]
        if not found:
            return ""
        _, k = max(found, key=lambda wk: (wk[0], -wk[1]))
        e = entries[k]
        return f"{self.name(e.cpu)}'s {self.texts.get(k, e.kind)} at step {e.step}"

    def in_short(self) -> str:
        """The two weightiest cross-agent causes in the slice, in words; ``""`` if none.

        Only causes touching a page the violation names count, when it names one.
        """
        entries = self.trace.entries
        pages = self.graph.pages
        stores = store_ids(self.violation.message)
        best: dict[int, tuple[int, int, str]] = {}  # effect -> (weight, cause, why)
        for j in self.slice:
            for k, why in self.graph.causes.get(j, []):
                if (k not in self.slice or why not in _SHORT or j == self.graph.anchor
                        or entries[k].cpu == entries[j].cpu):
                    continue
                if pages and not ({_page_of(entries[j].event), _page_of(entries[k].event)}
                                  & pages):
                    continue
                named = sum(1 for x in (j, k) if _store_sid(entries[x]) in stores)
                cand = (_WEIGHT.get(why, 0) + 3 * named, k, why)
                if j not in best or cand > best[j]:
                    best[j] = cand
        top = sorted(best.items(), key=lambda jb: (jb[1][0], jb[0]), reverse=True)[:2]
        said = []
        for j, (_, k, why) in sorted(top):
            a, b = entries[k], entries[j]
            said.append(_SHORT[why].format(
                a=self.name(a.cpu), x=self.texts.get(k, a.kind), s=a.step,
                b=self.name(b.cpu), y=self.texts.get(j, b.kind), t=b.step))
        return "; then ".join(said)

    def _inside(self, index: int, agent: int) -> str:
        """`` in msync(...)``: the call ``agent`` was in at ``index``, if any."""
        for j in range(index - 1, -1, -1):
            e = self.trace.entries[j]
            if e.cpu == agent and isinstance(e.event, ev_.Ret):
                return ""
            if e.cpu == agent and isinstance(e.event, ev_.Call):
                return f" in {self.texts.get(j, e.kind)}"
        return ""

    def _preemption_line(self, p: Preemption) -> str:
        nxt_p = self._next_of(p.index, p.preempted)
        nxt_c = self._next_of(p.index, p.chosen)
        was = (f" before its {self.texts.get(nxt_p, '?')}" if nxt_p is not None
               else self._inside(p.index, p.preempted))
        ran = (f"; {self.name(p.chosen)} ran {self.texts.get(nxt_c, '?')} instead"
               if nxt_c is not None else f"; {self.name(p.chosen)} ran instead")
        return f"  step {p.step}: {self.name(p.preempted)} was preempted{was}{ran}"

    def lines(self) -> list[str]:
        v = self.violation
        head = f"{v.rule} at step {v.step}: {v.message}"
        story = self.story()
        short = self.in_short()
        out = [head, *([f"in short: {short}"] if short else []),
               f"how it happened ({len(self.slice)} of {len(self.trace.entries)} events "
               "matter; `vmemu show --why` marks them):"]
        if len(story) > MAX_STORY:
            out.append(f"  ({len(story) - MAX_STORY + 1} earlier lines left out; "
                       "--json lists every event)")
            story = story[-(MAX_STORY - 1):]
        out.extend(story)
        anchor = self.graph.anchor
        if anchor is not None:
            out.append(f"  {'step ' + str(self.trace.entries[anchor].step):<12} "
                       f"{v.rule} fires")
        else:
            out.append(f"  {'at the end':<12} the run ends in {v.rule}")
        out.extend(self._preemption_lines())
        return out[:MAX_LINES]

    def _preemption_lines(self) -> list[str]:
        n = self.necessity
        v = self.violation
        total = len(n.singles)
        if total == 0:
            return ["no preemption: it happens in a schedule that never switches away from a "
                    "CPU that could go on"]
        if not n.reproduced:
            return [f"replayed with variant {n.variant}, the recorded schedule no longer breaks "
                    f"{v.rule}: its {total} preemption(s) cannot be checked against it"]
        named = self.named()
        if not named:
            return [f"none of its {total} preemption(s) is needed alone: without any one of "
                    f"them {v.rule} still happens (the race has more than one way in)"]
        needed = [p for p in n.singles if p.needed]
        word = "preemption" if len(named) == 1 else "preemptions"
        out = [f"the {word} it needs (checked by replaying without each, "
               f"{len(needed)} of {total} needed):"]
        for p in named:
            out.append(self._preemption_line(p) + f"; without it the run ends {p.without}")
        if len(needed) > len(named):
            rest = [p.step for p in needed if p not in named]
            out.append(f"  ({len(rest)} more needed, at step(s) "
                       + ", ".join(str(s) for s in rest[:8]) + ("..." if len(rest) > 8 else "")
                       + ")")
        return out

    def to_json(self) -> dict[str, Any]:
        v = self.violation
        entries = self.trace.entries
        n = self.necessity
        return {
            "trace": self.trace.path,
            "rule": v.rule, "step": v.step, "message": v.message, "cpus": v.cpus,
            "violation_index": self.graph.anchor,
            "slice": [{"index": j, "step": entries[j].step, "cpu": entries[j].cpu,
                       "event": entries[j].kind, "text": self.texts.get(j, entries[j].kind),
                       "causes": [{"index": k, "why": why}
                                  for k, why in self.graph.causes.get(j, []) if k in self.slice]}
                      for j in sorted(self.slice)],
            "reproduced": n.reproduced,
            "preemptions": [p.to_json() for p in n.singles],
            "needed": [p.decision for p in self.named()],
            "replays": n.runs,
        }


def phrases_of(trace: Trace) -> dict[int, str]:
    """Every non-scheduling event's phrase, as ``vmemu show`` words it in its widest column."""
    agents = [clean(str(a)) for a in trace.header.get("agents", [])]
    disk = agents.index("disk") if "disk" in agents else len(agents) - 1
    state = State(agents, disk)
    out: dict[int, str] = {}
    entries: Sequence[Entry] = trace.entries
    for j, e in enumerate(entries):
        if e.kind != "sched":
            text = phrase(e, state)[0]
            if isinstance(e.event, ev_.Call) and (c := calls.syscall(e.event.op)) is not None \
                    and c.memory_access and not _next_is(entries, j, e.event.op):
                text = calls.fault_phrases((text,), e.event)[0]
            elif isinstance(e.event, ev_.Alloc) and _next_is(entries, j, "pagein"):
                # show's one row for a fresh page: the page-in (the alloc busies the page)
                after = _next_of(entries, j)
                text = phrase(after, state)[0] if after is not None else text
            out[j] = clean(text)
        state.apply(e)
    return out


def _next_of(entries: Sequence[Entry], j: int) -> Entry | None:
    """The same agent's next event after ``entries[j]``."""
    agent = entries[j].cpu
    for e in entries[j + 1:]:
        if e.cpu == agent and e.kind != "sched":
            return e
    return None


def _next_is(entries: Sequence[Entry], j: int, kind: str) -> bool:
    after = _next_of(entries, j)
    return after is not None and after.kind == kind


def explain(trace: Trace, variant_override: str | None = None) -> Explanation:
    """The explanation of ``trace``'s first violation (replays the trace a few times)."""
    g = graph_of(trace)
    sl = _closure(g)
    necessity = trio.run(_necessity, trace, g.violation.rule, variant_override)
    return Explanation(trace, g, sl, phrases_of(trace), necessity)


__all__ = ["Explanation", "Preemption", "explain", "preemptions_of", "slice_of"]
