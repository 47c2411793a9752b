"""The adaptive portfolio: which workload and strategy runs next, by what has paid off.

An *arm* is a concrete :class:`RunConfig` but for its seed: a workload (with its
parameters and profile), a variant, and one strategy with its options -- random,
PCT of depth 2 or 3, or POS when the portfolio is asked for (:func:`arms_for`),
else the one strategy given.  Each execution draws the next seed of its stream
and an arm; the arm and the seed together are the execution, so a failure is
reported as the plain ``vmemu run`` command that reproduces it.

Which arm: the arms of one workload form a *team* (:func:`teams_of`).  The
portfolio chooses a team, and the team's arms take turns: its strategies in
order, a strategy of several arms taking those in turn (random, pct(2), pos,
random, pct(3), pos, ...).  Choosing among workloads and not among every
(workload, strategy) pair keeps each strategy's share of a workload as it was
and makes the choice a third as wide (BENCHMARKS.md, issue 9 item 4, arms9).
The team: epsilon-greedy over each team's *novelty*, the recency-weighted share
of its executions that showed something no execution of the same workload had
shown before (:class:`Coverage`).  With probability ``EPSILON`` a team is drawn
uniformly, so no team starves (each keeps at least EPSILON / teams of the
executions); otherwise a team is drawn in proportion to its novelty.  Every
team runs once, in order, before any is preferred.  With ``uniform=True`` the
portfolio does not steer: the teams take turns in order (round-robin), the
baseline the steering is measured against (BENCHMARKS.md).
The draws come from the portfolio's own ``random.Random``, seeded from the
stream's first seed, and the rewards are functions of the executions, which are
functions of their seeds: the same stream makes the same choices in any process
under any hash seed.

Coverage is counted per workload (workload, parameters and profile), as:

* *conflict pairs*: ordered pairs of what two agents did, one after the other,
  to the same page, object or map -- labelled by the operation the agent was in
  and the event, e.g. (``msync:busy``, ``store:dirty``);
* *interleavings*: the set of conflict pairs one execution showed;
* *final states*: every program step's return value and the pager's stored
  contents after the final flush.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from emulator.check.installer import Installer
from emulator.config import RunConfig
from emulator.kern.events import (
    Alloc,
    Bdwrite,
    BufDone,
    BufWrite,
    Busy,
    CleanGeneration,
    Cow,
    Dirty,
    EntryClip,
    EntryInsert,
    EntryProtect,
    EntryRemove,
    Event,
    Free,
    IoDone,
    IoIssue,
    Lock,
    MapAccess,
    ObjectFree,
    Pagein,
    PteEnter,
    PteProtect,
    PteRemove,
    RemoveAll,
    RemoveWrite,
    Store,
    Unbusy,
    Unlock,
    Unwire,
    Wire,
    Writeable,
)
from emulator.kern.kernel import EMITTERS, Kernel, twin
from emulator.machine import Execution, Machine
from emulator.sched.strategies import PORTFOLIO_MEMBERS, Strategy
from emulator.spec import Spec
from emulator.variants import Variant

EPSILON = 0.5  # the share of executions whose arm is drawn uniformly
DECAY = 0.1  # weight of the newest execution in an arm's novelty

# What keys an event's conflicts: the page, object or map it touched.
_PAGE_EVENTS: tuple[type[Event], ...] = (
    Store, Dirty, RemoveWrite, RemoveAll, Busy, Unbusy, Alloc, Free, Pagein, Cow, Wire,
    Unwire, IoIssue, IoDone, PteEnter, Bdwrite, BufWrite, BufDone)
_OBJECT_EVENTS: tuple[type[Event], ...] = (ObjectFree, CleanGeneration, Writeable)
_MAP_EVENTS: tuple[type[Event], ...] = (EntryInsert, EntryRemove, EntryClip, EntryProtect,
                                        PteRemove, PteProtect)


def arms_for(run: RunConfig, workloads: Sequence[str] | None = None) -> list[RunConfig]:
    """The arms of ``run``: its workload (or each of ``workloads``) under its strategy,
    or under each portfolio member when its strategy is the portfolio.  Seed 0."""
    names = list(workloads) if workloads is not None else [run.workload]
    out = []
    for name in names:
        base = dataclasses.replace(run, workload=name, seed=0)
        if run.strategy != "portfolio":
            out.append(base)
            continue
        for strategy, depth in PORTFOLIO_MEMBERS:
            out.append(dataclasses.replace(base, strategy=strategy, pct_depth=depth))
    return out


def arm_label(arm: RunConfig, workload: bool = True) -> str:
    """A short name: ``two_cleaners/pct(2)``; without the workload, ``pct(2)``."""
    strategy = f"pct({arm.pct_depth})" if arm.strategy == "pct" else arm.strategy
    return f"{arm.workload}/{strategy}" if workload else strategy


def teams_of(arms: Sequence[RunConfig]) -> list[list[list[int]]]:
    """The arms' indices by workload (:meth:`Portfolio.group`), in order of first
    appearance, and within a workload by strategy: ``[[random], [pct(2), pct(3)],
    [pos]]`` for a portfolio's workload, ``[[arm]]`` for a single strategy's."""
    teams: dict[str, dict[str, list[int]]] = {}
    for i, arm in enumerate(arms):
        teams.setdefault(Portfolio.group(arm), {}).setdefault(arm.strategy, []).append(i)
    return [list(slots.values()) for slots in teams.values()]


@dataclass
class Coverage:
    """What the executions of one workload have shown (see the module docstring)."""

    pairs: set[tuple[tuple[str, str], tuple[str, str]]] = field(default_factory=set)
    interleavings: set[bytes] = field(default_factory=set)
    finals: set[bytes] = field(default_factory=set)
    specs: set[bytes] = field(default_factory=set)  # the specs run (a generated workload's vary)

    def merge(self, other: Coverage) -> None:
        self.pairs |= other.pairs
        self.specs |= other.specs
        self.interleavings |= other.interleavings
        self.finals |= other.finals


Pair = tuple[tuple[str, str], tuple[str, str]]


class _Notes:
    """A tracker's handlers: each notes what an agent did to a page, object, map or lock
    (the key), as the pair (operation it is in, event kind); an agent following another
    on the same key makes a conflict pair.  ``page`` and the others take events;
    ``_page_twin`` and the others below are their twins, taking a hot kind's fields
    (reading the agent from the scheduler, as ``Kernel.emit`` does)."""

    __slots__ = ("add", "last", "ops", "sched")

    def __init__(self, ops: dict[int, str],
                 last: dict[tuple[object, ...], tuple[int, tuple[str, str]]],
                 add: Callable[[Pair], None]) -> None:
        self.ops = ops
        self.last = last
        self.add = add
        self.sched: Any = None  # the execution's scheduler (Tracker.attach)

    def note(self, key: tuple[object, ...], aid: int, kind: str) -> None:
        label = (self.ops.get(aid, "disk"), kind)
        last = self.last
        prev = last.get(key)
        last[key] = (aid, label)
        if prev is not None and prev[0] != aid:
            self.add((prev[1], label))

    def page(self, step: int, aid: int, ev: Any) -> None:
        self.note((ev.obj, ev.pindex), aid, ev.kind)

    def object(self, step: int, aid: int, ev: Any) -> None:
        self.note((ev.obj,), aid, ev.kind)

    def map(self, step: int, aid: int, ev: Any) -> None:
        self.note(("map", ev.map), aid, ev.kind)

    def access(self, step: int, aid: int, ev: MapAccess) -> None:
        self.note(("map", ev.vm_map.name), aid, ev.what)

    def lock(self, step: int, aid: int, ev: Lock | Unlock) -> None:
        self.note((ev.res, ev.name), aid, ev.kind)


def _page_twin(cls: type[Event]) -> Callable[..., None]:
    """``_Notes.page``'s twin for the page events of ``cls``: its fields are the class's
    constructor arguments, the object and page index among them."""
    names = [f.name for f in dataclasses.fields(cast(Any, cls))]
    at_obj, at_pindex = names.index("obj"), names.index("pindex")
    kind = cls.kind

    def fields(self: _Notes, *f: Any) -> None:
        self.note((f[at_obj], f[at_pindex]), self.sched.cpu, kind)

    return fields


def _lock_twin(kind: str) -> Callable[..., None]:
    """``_Notes.lock``'s twin for ``kind`` (fields: resource, name, ...)."""

    def fields(self: _Notes, res: str, name: str, *rest: Any) -> None:
        self.note((res, name), self.sched.cpu, kind)

    return fields


def _access_twin(self: _Notes, vm_map: Any, what: str) -> None:
    self.note(("map", vm_map.name), self.sched.cpu, what)


for _cls in _PAGE_EVENTS:
    if any(_cls is emitted for emitted, _ in EMITTERS):
        twin(_cls, _Notes.page, _page_twin(_cls))
for _cls in (Lock, Unlock):
    twin(_cls, _Notes.lock, _lock_twin(_cls.kind))
twin(MapAccess, _Notes.access, _access_twin)


class Tracker:
    """Watches one execution's kernel for conflict pairs (``attach``), then counts what
    was new (``account``).

    Its handlers are built once and subscribed to each execution's kernel; what they
    fill -- the pairs seen (a set), the last access per key, the operation each
    agent is in (the kernel's ``current_op``, unless something else put one there
    first) -- is emptied when they attach to the next one."""

    def __init__(self) -> None:
        self.seen: set[Pair] = set()
        self.kernel: Kernel | None = None
        # The last spec accounted and its digest: an unseeded workload's spec is the
        # same object for every execution (workloads.build_workload), so it is
        # rendered and hashed once.
        self.spec: Spec | None = None
        self.spec_digest = b""
        self.shown: dict[Pair, str] = {}  # pair -> repr
        self.last: dict[tuple[object, ...], tuple[int, tuple[str, str]]] = {}
        self.ops: dict[int, str] = {}  # the current_op the handlers read
        self.subscriptions: list[tuple[type[Event], Callable[[int, int, Any], None]]] = []
        self.notes: _Notes | None = None

    def attach(self, k: Kernel) -> None:
        self.kernel = k
        self.seen.clear()
        self.last.clear()
        mine = self.ops
        mine.clear()
        ops: dict[int, str] = k.shared.setdefault("current_op", mine)
        if ops is not mine or not self.subscriptions:
            self.subscriptions = self._handlers(ops)
        assert self.notes is not None
        self.notes.sched = k.sched  # the twins read the running agent from it
        observers = k.observers
        for kind, fn in self.subscriptions:  # k.observe, inlined
            have = observers.get(kind)
            observers[kind] = (fn,) if have is None else (*have, fn)

    def _handlers(self, ops: dict[int, str]) -> list[tuple[type[Event],
                                                         Callable[[int, int, Any], None]]]:
        """The handlers filling this tracker's containers, reading ``ops``, by class:
        bound methods of one ``_Notes``, whose twins (``kern.kernel.twin``) let a sealed
        kernel call them with the fields of its hot kinds, building no event."""
        notes = self.notes = _Notes(ops, self.last, self.seen.add)
        handlers: list[tuple[tuple[type[Event], ...], Callable[[int, int, Any], None]]] = [
            (_PAGE_EVENTS, notes.page), (_OBJECT_EVENTS, notes.object),
            (_MAP_EVENTS, notes.map), ((MapAccess,), notes.access),
            ((Lock, Unlock), notes.lock)]
        return [(kind, fn) for kinds, fn in handlers for kind in kinds]

    def account(self, cov: Coverage, ex: Execution, spec: Spec) -> int:
        """Add this execution of ``spec`` to ``cov``; return how many kinds of novelty it
        showed.  A new interleaving or final state counts only on a spec run before:
        on a new spec (every seed of a generated workload) it is no news."""
        new = 0
        pairs = cov.pairs
        before = len(pairs)
        distinct = self.seen
        pairs |= distinct
        new += len(pairs) > before
        if spec is not self.spec:
            self.spec, self.spec_digest = spec, _digest(repr(spec.to_json()))
        spec_digest = self.spec_digest
        known = spec_digest in cov.specs
        cov.specs.add(spec_digest)
        # The interleaving: its pairs' reprs (each rendered once per tracker), sorted as
        # text -- a function of the set alone, whatever the hash seed or the order seen.
        shown = self.shown
        get = shown.get
        texts = []
        for pair in distinct:
            text = get(pair)
            if text is None:
                text = shown[pair] = repr(pair)
            texts.append(text)
        texts.sort()
        sig = _digest("[" + ", ".join(texts) + "]")
        if sig not in cov.interleavings:
            cov.interleavings.add(sig)
            new += known
        # The outcome by its value (its repr is Python code; only equality counts here).
        final = _digest(repr((ex.outcome.value, [[r["ret"] for r in rows]
                                           for rows in ex.results.values()],
                              self._stored())))
        if final not in cov.finals:
            cov.finals.add(final)
            new += known
        return new

    def _stored(self) -> list[tuple[str, list[Any]]]:
        k = self.kernel
        if k is None:
            return []
        return [(name, list(obj.pager.stored)) for name, obj in k.files.items()
                if obj.pager is not None]


def _machine_key(arm: RunConfig) -> tuple[object, ...]:
    """What an arm's machine depends on but its strategy: arms with equal keys share one."""
    return (arm.workload, arm.params, arm.profile, arm.variant, arm.max_steps, arm.driver)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=12).digest()


@dataclass
class ArmStats:
    """One arm's executions and how many of them showed something new."""

    executions: int = 0
    novel: int = 0

    def to_json(self) -> dict[str, int]:
        return {"executions": self.executions, "novel": self.novel}


class Portfolio:
    """Arms, their strategies and machines (built when first chosen), the choice of the
    next."""

    def __init__(self, arms: Sequence[RunConfig], first_seed: int, stride: int = 1,
                 variant: Variant | None = None, epsilon: float | None = None,
                 uniform: bool = False) -> None:
        if not arms:
            raise ValueError("a portfolio needs at least one arm")
        self.arms = list(arms)
        self.variant = variant
        self.epsilon = EPSILON if epsilon is None else epsilon
        self.uniform = uniform
        self.turn = 0  # round-robin position (uniform)
        self.seed = first_seed
        self.first_seed = first_seed
        self.stride = stride
        # Its own stream: seeded from the first seed alone (an int, so no hash seed
        # enters), apart from every execution's strategy stream.
        self.rng = random.Random(first_seed * 7919 + 104729)
        # The arms of one workload (and variant, step bound and driver) share a machine
        # and its tracker (their coverage is the workload's, their executions one at a
        # time); each arm keeps its own strategy, installed on the machine before each
        # of its executions (:meth:`machine`).  A machine's first execution builds its
        # checkers and works out what later ones reuse: once per workload, not per arm.
        self.strategies: list[Strategy | None] = [None] * len(self.arms)
        keys: dict[tuple[object, ...], int] = {}
        self.machine_of = [keys.setdefault(_machine_key(arm), len(keys)) for arm in self.arms]
        self.machines: list[Machine | None] = [None] * len(keys)  # by machine_of
        self.trackers = [Tracker() for _ in keys]  # by machine_of
        self.installers: dict[str, Installer] = {}  # by profile (machine)
        self.stats = [ArmStats() for _ in self.arms]
        self.live = list(range(len(self.arms)))  # arms with executions left to run
        # The choice is among teams (a workload's arms); a team's arms take turns.
        self.teams = teams_of(self.arms)
        self.team_of = [0] * len(self.arms)
        for t, slots in enumerate(self.teams):
            for slot in slots:
                for i in slot:
                    self.team_of[i] = t
        self.turns = [0] * len(self.teams)  # executions each team has run
        self.novelty = [1.0] * len(self.teams)
        self.live_teams = list(range(len(self.teams)))
        self.untried = list(range(len(self.teams)))
        self.coverage: dict[str, Coverage] = {}  # per workload (see group)

    @staticmethod
    def group(arm: RunConfig) -> str:
        """The coverage an arm adds to: its workload, parameters and profile."""
        return repr((arm.workload, arm.params, arm.profile))

    def strategy(self, i: int) -> Strategy:
        """Arm ``i``'s own strategy (built when first asked for)."""
        s = self.strategies[i]
        if s is None:
            s = self.strategies[i] = self.arms[i].make_strategy()
        return s

    def machine(self, i: int) -> Machine:
        """The machine arm ``i`` runs on (its workload's, built when first asked for),
        with arm ``i``'s strategy installed."""
        m_i = self.machine_of[i]
        m = self.machines[m_i]
        if m is None:
            m = self.machines[m_i] = self.arms[i].machine(self.variant)
            m.watchers.append(self.trackers[m_i].attach)
            if m.installer.portable:
                # The built-in checkers serve every spec of a profile (check/installer.py):
                # the workloads' machines share one installer, so a hunt builds them once.
                m.installer = self.installers.setdefault(m.spec.profile, m.installer)
        m.strategy = self.strategy(i)
        return m

    def choose(self) -> int:
        """The next arm's index: the next turn of the team :meth:`choose_team` picks."""
        t = self.choose_team()
        slots = self.teams[t]
        n = self.turns[t]
        self.turns[t] = n + 1
        # The strategies take turns; a strategy of several arms (PCT's depths) takes
        # its arms in turn: random, pct(2), pos, random, pct(3), pos, ...
        slot = slots[n % len(slots)]
        return slot[(n // len(slots)) % len(slot)]

    def choose_team(self) -> int:
        """The next team's index (among the live ones)."""
        live = self.live_teams
        if self.uniform:  # round-robin: no steering
            self.turn += 1
            return live[(self.turn - 1) % len(live)]
        untried = self.untried
        while untried and (untried[0] not in live or self.turns[untried[0]]):
            untried.pop(0)
        if untried:  # every team runs once, in order, before any is preferred
            return untried[0]
        if len(live) == 1:
            return live[0]
        # Team t with probability epsilon / teams + (1 - epsilon) * its share of the novelty.
        novelty = self.novelty
        total = sum(novelty[t] for t in live)
        x = self.rng.random()
        if x < self.epsilon or total <= 0.0:
            return live[int(self.rng.random() * len(live))]
        x = self.rng.random() * total
        for t in live:
            x -= novelty[t]
            if x < 0.0:
                return t
        return live[-1]

    def _retire(self, i: int) -> None:
        """Arm ``i`` has nothing left to run (dfs): its team goes on without it."""
        self.live.remove(i)
        t = self.team_of[i]
        slots = [[j for j in slot if j != i] for slot in self.teams[t]]
        self.teams[t] = [slot for slot in slots if slot]
        if not self.teams[t]:
            self.live_teams.remove(t)

    async def step(self) -> tuple[int, RunConfig, Execution] | None:
        """Run one execution: its arm, concrete config and what happened; None when
        every arm has exhausted its space (dfs)."""
        while self.live:
            i = self.choose()
            if self.strategy(i).exhausted:
                self._retire(i)
                continue
            machine = self.machine(i)
            arm = self.arms[i]
            seeded = arm.seeded
            # A seedless strategy (dfs) searches the schedule tree of one spec: the first.
            config = arm.with_seed(self.seed if seeded else self.first_seed)
            spec = config.spec()
            ex = await machine.execute(config.seed, spec)
            if seeded:
                self.seed += self.stride
            self.reward(i, ex, spec)
            return i, config, ex
        return None

    def reward(self, i: int, ex: Execution, spec: Spec) -> None:
        cov = self.coverage.setdefault(self.group(self.arms[i]), Coverage())
        new = self.trackers[self.machine_of[i]].account(cov, ex, spec)
        stats = self.stats[i]
        stats.executions += 1
        stats.novel += new > 0
        t = self.team_of[i]
        self.novelty[t] += DECAY * ((1.0 if new else 0.0) - self.novelty[t])

    def totals(self) -> Coverage:
        out = Coverage()
        for cov in self.coverage.values():
            out.merge(cov)
        return out

    def arm_stats(self, with_workload: bool = True) -> dict[str, ArmStats]:
        return {arm_label(a, with_workload): s for a, s in zip(self.arms, self.stats,
                                                                strict=True)}


def coverage_json(cov: Coverage, arms: dict[str, ArmStats]) -> dict[str, Any]:
    """The summary's coverage object (``--json``)."""
    return {
        "conflict_pairs": len(cov.pairs),
        "interleavings": len(cov.interleavings),
        "final_states": len(cov.finals),
        "arms": {name: s.to_json() for name, s in arms.items()},
    }


def coverage_text(cov: Coverage, arms: dict[str, ArmStats], by: str = "arm") -> str:
    """The summary's coverage line; ``by`` names what ``arms`` counts (arms, workloads)."""
    shown = ", ".join(f"{name} {s.executions} ({s.novel} new)" for name, s in arms.items())
    return (f"{len(cov.pairs)} conflict pairs, {len(cov.interleavings)} interleavings, "
            f"{len(cov.finals)} final states; executions (with new coverage) by {by}: {shown}")
