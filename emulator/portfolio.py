"""The adaptive portfolio: which workload and strategy runs next, by what has paid off.

An *arm* is a concrete :class:`RunConfig` but for its seed: a workload (with its
parameters and profile), a variant, and one strategy with its options -- random,
PCT (its depth alternating between 2 and 3 over the arm's executions), or POS when
the portfolio is asked for (:func:`arms_for`), else the one strategy given.  Each
execution draws the next seed of its stream and an arm; the arm and the seed (and a
PCT arm's depth for that execution) together are the execution, so a failure is
reported as the plain ``vmemu run`` command that reproduces it.

Which arm: epsilon-greedy over each arm's *novelty*, the recency-weighted share
of its executions that showed something no execution of the same workload had
shown before (:class:`Coverage`).  With probability ``EPSILON`` an arm is drawn
uniformly, so no arm starves (each keeps at least EPSILON / arms of the
executions); otherwise the arm of highest novelty runs, the lowest-numbered on
a tie.  Every arm starts fully novel, so each runs before any is preferred.
With ``uniform=True`` the portfolio does not steer: the arms take turns in order
(round-robin), the baseline the steering is measured against (BENCHMARKS.md).
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
from typing import Any

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
from emulator.kern.kernel import Kernel
from emulator.machine import Execution, Machine
from emulator.sched.strategies import PORTFOLIO_MEMBERS, PctStrategy
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


# An arm's ``pct_depth`` meaning "each execution takes the next of PCT_DEPTHS": the
# portfolio's one PCT arm per workload.  Only arms carry it; every execution's config
# (what a failure reports, what a trace records) has the depth it ran with.
CYCLED = 0
# The depths of the portfolio's PCT members, in order: one arm cycles through them.
PCT_DEPTHS: tuple[int, ...] = tuple(d for name, d in PORTFOLIO_MEMBERS if name == "pct")


def arms_for(run: RunConfig, workloads: Sequence[str] | None = None) -> list[RunConfig]:
    """The arms of ``run``: its workload (or each of ``workloads``) under its strategy,
    or, when its strategy is the portfolio, under each of the portfolio's strategies:
    random, PCT and POS, the PCT arm cycling its depth over PCT_DEPTHS (one arm for
    both depths, not one each: every arm costs every other arm a share).  Seed 0."""
    names = list(workloads) if workloads is not None else [run.workload]
    out = []
    for name in names:
        base = dataclasses.replace(run, workload=name, seed=0)
        if run.strategy != "portfolio":
            out.append(base)
            continue
        done: set[str] = set()
        for strategy, depth in PORTFOLIO_MEMBERS:
            if strategy in done:
                continue
            done.add(strategy)
            out.append(dataclasses.replace(base, strategy=strategy, pct_depth=(
                CYCLED if strategy == "pct" and len(PCT_DEPTHS) > 1 else depth)))
    return out


def arm_label(arm: RunConfig, workload: bool = True) -> str:
    """A short name: ``two_cleaners/pct(2)``; without the workload, ``pct(2)``; the
    portfolio's PCT arm, whose depth cycles, ``pct``."""
    strategy = arm.strategy
    if strategy == "pct" and arm.pct_depth != CYCLED:
        strategy = f"pct({arm.pct_depth})"
    return f"{arm.workload}/{strategy}" if workload else strategy


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

    def attach(self, k: Kernel) -> None:
        self.kernel = k
        self.seen.clear()
        self.last.clear()
        mine = self.ops
        mine.clear()
        ops: dict[int, str] = k.shared.setdefault("current_op", mine)
        if ops is not mine or not self.subscriptions:
            self.subscriptions = self._handlers(ops)
        observers = k.observers
        for kind, fn in self.subscriptions:  # k.observe, inlined
            have = observers.get(kind)
            if have is None:
                observers[kind] = [fn]
            else:
                have.append(fn)

    def _handlers(self, ops: dict[int, str]) -> list[tuple[type[Event],
                                                         Callable[[int, int, Any], None]]]:
        """The handlers filling this tracker's containers, reading ``ops``, by class."""
        add = self.seen.add
        last = self.last

        def note(key: tuple[object, ...], aid: int, kind: str) -> None:
            label = (ops.get(aid, "disk"), kind)
            prev = last.get(key)
            last[key] = (aid, label)
            if prev is not None and prev[0] != aid:
                add((prev[1], label))

        # The page events are most of them: their handler does note's work inline.
        def on_page(step: int, aid: int, ev: Any) -> None:
            key = (ev.obj, ev.pindex)
            label = (ops.get(aid, "disk"), ev.kind)
            prev = last.get(key)
            last[key] = (aid, label)
            if prev is not None and prev[0] != aid:
                add((prev[1], label))

        def on_object(step: int, aid: int, ev: Any) -> None:
            note((ev.obj,), aid, ev.kind)

        def on_map(step: int, aid: int, ev: Any) -> None:
            note(("map", ev.map), aid, ev.kind)

        def on_access(step: int, aid: int, ev: MapAccess) -> None:
            note(("map", ev.vm_map.name), aid, ev.what)

        def on_lock(step: int, aid: int, ev: Lock | Unlock) -> None:
            note((ev.res, ev.name), aid, ev.kind)

        handlers: list[tuple[tuple[type[Event], ...], Callable[[int, int, Any], None]]] = [
            (_PAGE_EVENTS, on_page), (_OBJECT_EVENTS, on_object), (_MAP_EVENTS, on_map),
            ((MapAccess,), on_access), ((Lock, Unlock), on_lock)]
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
    """Arms, their machines (built when first chosen) and the choice of the next."""

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
        self.machines: list[Machine | None] = [None] * len(self.arms)
        self.trackers = [Tracker() for _ in self.arms]
        self.novelty = [1.0] * len(self.arms)
        self.stats = [ArmStats() for _ in self.arms]
        self.live = list(range(len(self.arms)))  # arms with executions left to run
        self.untried = list(range(len(self.arms)))
        self.coverage: dict[str, Coverage] = {}  # per workload (see group)

    @staticmethod
    def group(arm: RunConfig) -> str:
        """The coverage an arm adds to: its workload, parameters and profile."""
        return repr((arm.workload, arm.params, arm.profile))

    def machine(self, i: int) -> Machine:
        m = self.machines[i]
        if m is None:
            arm = self.arms[i]
            if arm.strategy == "pct" and arm.pct_depth == CYCLED:
                arm = dataclasses.replace(arm, pct_depth=PCT_DEPTHS[0])  # set per execution
            m = arm.machine(self.variant)
            m.watchers.append(self.trackers[i].attach)
            self.machines[i] = m
        return m

    def choose(self) -> int:
        """The next arm's index (among the live ones)."""
        live = self.live
        if self.uniform:  # round-robin: no steering
            self.turn += 1
            return live[(self.turn - 1) % len(live)]
        untried = self.untried
        while untried and (untried[0] not in live or self.stats[untried[0]].executions):
            untried.pop(0)
        if untried:  # every arm runs once, in order, before any is preferred
            return untried[0]
        if len(live) == 1:
            return live[0]
        # Arm i with probability epsilon / arms + (1 - epsilon) * its share of the novelty.
        novelty = self.novelty
        total = sum(novelty[i] for i in live)
        x = self.rng.random()
        if x < self.epsilon or total <= 0.0:
            return live[int(self.rng.random() * len(live))]
        x = self.rng.random() * total
        for i in live:
            x -= novelty[i]
            if x < 0.0:
                return i
        return live[-1]

    async def step(self) -> tuple[int, RunConfig, Execution] | None:
        """Run one execution: its arm, concrete config and what happened; None when
        every arm has exhausted its space (dfs)."""
        while self.live:
            i = self.choose()
            machine = self.machine(i)
            if machine.strategy.exhausted:
                self.live.remove(i)
                continue
            arm = self.arms[i]
            seeded = arm.seeded
            # A seedless strategy (dfs) searches the schedule tree of one spec: the first.
            config = arm.with_seed(self.seed if seeded else self.first_seed)
            if arm.pct_depth == CYCLED and arm.strategy == "pct":
                config = self._cycle(i, config, machine)
            spec = config.spec()
            ex = await machine.execute(config.seed, spec)
            if seeded:
                self.seed += self.stride
            self.reward(i, ex, spec)
            return i, config, ex
        return None

    def _cycle(self, i: int, config: RunConfig, machine: Machine) -> RunConfig:
        """The PCT arm ``i``'s next execution: the next depth of PCT_DEPTHS, on its
        machine's strategy and in the config reported for it."""
        depth = PCT_DEPTHS[self.stats[i].executions % len(PCT_DEPTHS)]
        strategy = machine.strategy
        assert isinstance(strategy, PctStrategy)
        strategy.depth = depth
        return dataclasses.replace(config, pct_depth=depth)

    def reward(self, i: int, ex: Execution, spec: Spec) -> None:
        cov = self.coverage.setdefault(self.group(self.arms[i]), Coverage())
        new = self.trackers[i].account(cov, ex, spec)
        stats = self.stats[i]
        stats.executions += 1
        stats.novel += new > 0
        self.novelty[i] += DECAY * ((1.0 if new else 0.0) - self.novelty[i])

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
