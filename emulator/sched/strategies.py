"""Scheduling strategies: who runs next at a decision point.

A strategy sees only agent numbers (ints, in ascending order) and its own
private ``random.Random``; it never sees wall-clock time, ``id()`` or a set.
``reset(seed)`` is called before every execution, so one execution's choices
depend only on its seed and replay exactly.
"""

from __future__ import annotations

import _random
import random
from collections.abc import Callable, Sequence
from typing import Any

from emulator.errors import BadInput, ReplayDiverged, SearchExhausted
from emulator.kern.events import (
    Alloc,
    Bdwrite,
    BufDone,
    BufWrite,
    Busy,
    Call,
    CleanCall,
    CleanGeneration,
    CleanReturn,
    Cow,
    Dirty,
    EntryClip,
    EntryInsert,
    EntryProtect,
    EntryRemove,
    Event,
    Free,
    Invalid,
    IoDone,
    IoIssue,
    Load,
    Lock,
    ObjectFree,
    ObjectNew,
    Pagein,
    PteEnter,
    PteProtect,
    PteRemove,
    Read,
    RemoveAll,
    RemoveWrite,
    Ret,
    Sched,
    Store,
    Unbusy,
    Unlock,
    Unwire,
    Violated,
    Wait,
    Wire,
    Woke,
    Writeable,
)
from emulator.kern.kernel import twin
from emulator.sched.outcome import Outcome

PRUNE = -2  # a strategy's answer meaning "abandon this execution: it is redundant"


class Strategy:
    """The interface: ``reset`` per execution, ``choose`` per decision.

    ``choose`` may raise (a replay that cannot go on, a search with nothing
    left): the scheduler then ends the execution, blaming no agent, and the
    harness raises the exception once every agent has unwound.

    Optional: a strategy with ``wants_events`` sees every kernel event through
    ``event`` (to learn which steps touch which state); ``end`` is called after
    each execution; ``exhausted`` tells a campaign that nothing is left to run;
    ``seeded`` says whether ``reset(seed)`` alone reproduces an execution.
    """

    name = "strategy"
    wants_events = False
    wants_single = False  # consult ``single`` when only one agent can run
    exhausted = False
    seeded = True

    def reset(self, seed: int) -> None:
        """Prepare for one execution driven by ``seed``."""

    def event(self, step: int, aid: int, ev: Event) -> None:
        """See one kernel event (only when ``wants_events``)."""

    def single(self, aid: int) -> int:
        """Only ``aid`` can run (only when ``wants_single``): return it, or PRUNE."""
        return aid

    def end(self, outcome: Outcome) -> None:
        """The execution just finished with ``outcome``."""

    def choose(self, runnable: Sequence[int], current: int) -> int:
        """Return one of ``runnable`` (two or more agent numbers, ascending)."""
        raise NotImplementedError

    def chooser(self) -> Callable[[Sequence[int], int], int]:
        """What the scheduler calls at each decision of the execution just ``reset``:
        ``choose``, or a member's (a mix calls its member's directly, one call less)."""
        return self.choose

    def describe(self) -> dict[str, object]:
        """Return what a trace header needs to rebuild this strategy."""
        return {"name": self.name}


def _reseed(rng: random.Random, seed: int) -> None:
    """``rng.seed(seed)``: for an int, what ``random.Random.seed`` does without its
    checks of the seed's type (the C generator's seeding, and no saved gauss value)."""
    if type(seed) is int:
        _seed_c(rng, seed)
        rng.gauss_next = None  # type: ignore[attr-defined]
    else:
        rng.seed(seed)


_seed_c = _random.Random.seed


class RandomStrategy(Strategy):
    """Pick uniformly among the runnable agents at every decision."""

    name = "random"

    def __init__(self) -> None:
        self.rng = random.Random(0)
        self._random = self.rng.random  # bound once: choose runs at every decision

    def reset(self, seed: int) -> None:
        # Re-seeded in place: the same stream as a new random.Random(seed), without a
        # new generator's 2.5 KB of state per execution.
        _reseed(self.rng, seed)

    def choose(self, runnable: Sequence[int], current: int) -> int:
        return runnable[int(self._random() * len(runnable))]


class ReplayStrategy(Strategy):
    """Follow a recorded list of decisions; diverge loudly when one is impossible."""

    name = "replay"

    def __init__(self, decisions: Sequence[int]) -> None:
        self.recorded = list(decisions)
        self.pos = 0

    def reset(self, seed: int) -> None:
        self.pos = 0

    def choose(self, runnable: Sequence[int], current: int) -> int:
        if self.pos >= len(self.recorded):
            raise ReplayDiverged(
                f"decision {self.pos}: the recording has no more decisions "
                f"(runnable {list(runnable)})"
            )
        want = self.recorded[self.pos]
        self.pos += 1
        if want not in runnable:
            raise ReplayDiverged(
                f"decision {self.pos - 1}: recorded cpu {want} is not runnable "
                f"(runnable {list(runnable)})"
            )
        return want


class PctStrategy(Strategy):
    """Probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010).

    Each agent gets a random priority when first seen; the highest-priority
    runnable agent always runs.  ``depth - 1`` change points are drawn
    uniformly over the first ``steps`` decisions; at the i-th, the running
    agent's priority drops below every initial priority.  A bug of depth d is
    found with probability at least 1 / (n * k^(d-1)) per execution, for n
    agents and k decisions.  ``steps`` is fixed (not learned across
    executions) so that every execution depends on its seed alone.
    """

    name = "pct"

    def __init__(self, depth: int = 3, steps: int = 300) -> None:
        if depth < 1:
            raise BadInput(f"--pct-depth {depth}: must be at least 1")
        self.depth = depth
        self.steps = steps
        self.rng = random.Random(0)
        self.prio: dict[int, float] = {}
        self.changes: list[int] = []
        self.decision = 0

    def reset(self, seed: int) -> None:
        _reseed(self.rng, seed)  # as random.Random(seed), in place
        self.prio = {}
        self.decision = 0
        self.changes = sorted(self.rng.randrange(1, self.steps + 1) for _ in range(self.depth - 1))

    def choose(self, runnable: Sequence[int], current: int) -> int:
        self.decision += 1
        prio = self.prio
        for aid in runnable:
            if aid not in prio:
                prio[aid] = 1.0 + self.rng.random()
        best = max(runnable, key=prio.__getitem__)
        changes = self.changes
        while changes and changes[0] <= self.decision:
            # A change point: demote the agent about to run below all others.
            prio[best] = (len(changes) / (self.depth + 1)) * 0.5
            changes.pop(0)
            best = max(runnable, key=prio.__getitem__)
        return best

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "depth": self.depth, "steps": self.steps}


# The portfolio's members, as (strategy name, PCT depth): random walk, PCT of depths
# 2 and 3 (most of the mutants' races have depth 2 or 3), and POS.  A campaign
# chooses among them adaptively (emulator/portfolio.py), one arm per strategy and
# workload: the PCT arm's executions alternate the two depths; one execution alone
# (``vmemu run --strategy portfolio``) takes the member its seed picks.
PORTFOLIO_MEMBERS: tuple[tuple[str, int], ...] = (
    ("random", 3), ("pct", 2), ("pct", 3), ("pos", 3))


class PortfolioStrategy(Strategy):
    """Mix strategies per execution: the seed picks one of PORTFOLIO_MEMBERS, so each
    execution still replays from its seed alone."""

    name = "portfolio"

    def __init__(self) -> None:
        self.members: list[Strategy] = [
            PctStrategy(depth) if name == "pct" else STRATEGIES[name]()
            for name, depth in PORTFOLIO_MEMBERS]
        self.active: Strategy = self.members[0]

    def reset(self, seed: int) -> None:
        self.active = self.members[seed % len(self.members)]
        self.active.reset(seed)
        # The machine asks after ``reset`` whether to pass events: when pos runs.
        self.wants_events = self.active.wants_events

    def event(self, step: int, aid: int, ev: Event) -> None:
        self.active.event(step, aid, ev)

    def choose(self, runnable: Sequence[int], current: int) -> int:
        return self.active.choose(runnable, current)

    def chooser(self) -> Callable[[Sequence[int], int], int]:
        return self.active.chooser()

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "members": [m.describe() for m in self.members]}


# -- footprints: which shared state a step touched ---------------------------------

ANY = ("*",)
Keys = tuple[tuple[object, ...], ...]


def _lock_keys(ev: Lock | Unlock | Wait) -> Keys:
    return _lock_keys_of(ev.res, ev.name)


def _lock_keys_of(res: str, name: object) -> Keys:
    name = str(name)
    if res == "map":
        return (("map", name),)
    if res == "io":
        return (("obj", name.split(":")[0]), ("disk",))
    return (("obj", name.split(":")[0]),)


def _channel_keys(chan: object) -> Keys:
    """Keys of what a woken agent re-reads: the lock, page or I/O it slept on."""
    kind = type(chan).__name__
    if kind == "MapLock":
        return (("map", getattr(chan, "name", "")),)
    if kind == "Mutex":
        return (("obj", getattr(chan, "name", "")),)
    if kind == "VmPage":
        return (("obj", chan.obj.name),)  # type: ignore[attr-defined]
    if kind == "Io":
        return (("obj", chan.page.obj.name), ("disk",))  # type: ignore[attr-defined]
    if kind == "BufIo":
        return (("obj", chan.obj), ("disk",))  # type: ignore[attr-defined]
    if kind == "Disk":
        return (("disk",),)
    return (ANY,)


def _map_keys(ev: PteEnter | PteRemove | PteProtect | EntryInsert | EntryRemove | EntryClip
              | EntryProtect | Load) -> Keys:
    return (("map", ev.map),)


def _object_keys(ev: ObjectNew | ObjectFree | Busy | Unbusy | Alloc | Free | RemoveWrite
                 | RemoveAll | Invalid | Dirty | Pagein | Cow | Wire | Unwire | CleanGeneration
                 | Writeable) -> Keys:
    return (("obj", ev.obj),)


def _silent(ev: Event) -> Keys:
    return ()


def _io_keys(ev: IoIssue | IoDone | Bdwrite | BufWrite | BufDone) -> Keys:
    return (("obj", ev.obj), ("disk",))


# Event class -> the keys it touched.  Coarse on purpose: everything about one
# map (its lock, entries, page tables) is one key, everything about one object
# (its locks, pages, pager) another, so two steps with disjoint keys really
# commute.  A kind missing here is taken to touch everything (sound, if slow).
_FOOTPRINTS: dict[type[Event], Callable[[Any], Keys]] = {
    Read: lambda ev: (ANY,) if ev.res == "*" else ((ev.res, ev.name),),
    Woke: lambda ev: _channel_keys(ev.chan),
    Lock: _lock_keys,
    Unlock: _lock_keys,
    Wait: _lock_keys,
    Store: lambda ev: (("map", ev.map), ("obj", ev.obj)),
    **dict.fromkeys((IoIssue, IoDone, Bdwrite, BufWrite, BufDone), _io_keys),
    **dict.fromkeys((PteEnter, PteRemove, PteProtect, EntryInsert, EntryRemove, EntryClip,
                     EntryProtect, Load), _map_keys),
    **dict.fromkeys((ObjectNew, ObjectFree, Busy, Unbusy, Alloc, Free, RemoveWrite, RemoveAll,
                     Invalid, Dirty, Pagein, Cow, Wire, Unwire, CleanGeneration, Writeable),
                    _object_keys),
    # The harness's bookkeeping touches nothing shared.
    **dict.fromkeys((Call, Ret, CleanCall, CleanReturn, Sched, Violated), _silent),
}


def footprint_keys(ev: Event) -> Keys:
    """Coarse keys of the shared state an event touched: a map or an object."""
    keys = _FOOTPRINTS.get(type(ev))
    return keys(ev) if keys is not None else (ANY,)


def independent(a: frozenset[tuple[object, ...]], b: frozenset[tuple[object, ...]]) -> bool:
    """Whether two steps commute: disjoint footprints, neither unknown.

    Every read of shared state outside a lock the reader holds is reported
    (an event, or ``Kernel.read``), so a step with an empty footprint touched
    nothing shared: it commutes with everything.
    """
    return ANY not in a and ANY not in b and not (a & b)


class PosStrategy(Strategy):
    """Partial-order sampling (Yuan et al., CAV 2018), over agents' next steps.

    Every agent has a random priority; the highest-priority runnable agent
    runs.  After a step, the agents whose last step raced with it (their
    footprints overlap) and the agent that ran get fresh random priorities, so
    racing steps are reordered with equal chance while independent ones keep
    their order -- sampling partial orders more uniformly than a random walk.
    """

    name = "pos"
    wants_events = True

    def __init__(self) -> None:
        self.rng = random.Random(0)
        self.prio: dict[int, float] = {}
        # Each agent's last step's footprint (a set, never changed once stored), and the
        # agents whose last step touched everything (ANY in it).
        self.last: dict[int, set[tuple[object, ...]]] = {}
        self.wild: set[int] = set()
        self.step_keys: set[tuple[object, ...]] = set()
        self.runner = -1

    def reset(self, seed: int) -> None:
        _reseed(self.rng, seed)  # as random.Random(seed), in place
        self.prio = {}
        self.last = {}
        self.wild = set()
        self.step_keys = set()
        self.runner = -1

    def event(self, step: int, aid: int, ev: Event) -> None:
        self.step_keys.update(footprint_keys(ev))

    def choose(self, runnable: Sequence[int], current: int) -> int:
        rng, prio = self.rng, self.prio
        runner = self.runner
        if runner >= 0:
            fp = self.step_keys  # the step's footprint, kept as it is: a new set follows
            last = self.last
            last[runner] = fp
            wild = self.wild
            # ``independent``, inlined: a step touching everything races with every other
            # agent's last step; otherwise those sharing a key (or touching everything).
            if ANY in fp:
                wild.add(runner)
                for other in last:
                    if other != runner:
                        prio[other] = rng.random()
            else:
                wild.discard(runner)
                for other, ofp in last.items():
                    if other != runner and (other in wild or not fp.isdisjoint(ofp)):
                        prio[other] = rng.random()
            prio[runner] = rng.random()
        self.step_keys = set()
        for aid in runnable:
            if aid not in prio:
                prio[aid] = rng.random()
        best = max(runnable, key=prio.__getitem__)
        self.runner = best
        return best


# ``PosStrategy.event``'s twins for the hot kinds (``kern.kernel.twin``): a sealed kernel
# calls them with the event's fields, building no event.  Each adds the keys
# ``footprint_keys`` gives the event (tests/kern/test_emitters.py runs pos sealed and not).
_DISK = ("disk",)


def _pos_lock(self: PosStrategy, res: str, name: str, *rest: Any) -> None:
    self.step_keys.update(_lock_keys_of(res, name))


def _pos_object(self: PosStrategy, obj: str, *rest: Any) -> None:
    self.step_keys.add(("obj", obj))


def _pos_io(self: PosStrategy, obj: str, *rest: Any) -> None:
    keys = self.step_keys
    keys.add(("obj", obj))
    keys.add(_DISK)


def _pos_store(self: PosStrategy, vm_map: str, va: int, obj: str, *rest: Any) -> None:
    keys = self.step_keys
    keys.add(("map", vm_map))
    keys.add(("obj", obj))


def _pos_pte(self: PosStrategy, vm_map: str, *rest: Any) -> None:
    self.step_keys.add(("map", vm_map))


def _pos_read(self: PosStrategy, res: str, name: str) -> None:
    self.step_keys.add(ANY if res == "*" else (res, name))


def _pos_woke(self: PosStrategy, chan: object) -> None:
    self.step_keys.update(_channel_keys(chan))


for _cls, _twin in ((Lock, _pos_lock), (Unlock, _pos_lock), (Wait, _pos_lock),
                    (Busy, _pos_object), (Unbusy, _pos_object), (Alloc, _pos_object),
                    (RemoveWrite, _pos_object), (Dirty, _pos_object), (Pagein, _pos_object),
                    (IoIssue, _pos_io), (IoDone, _pos_io), (Store, _pos_store),
                    (PteEnter, _pos_pte), (Read, _pos_read), (Woke, _pos_woke)):
    twin(_cls, PosStrategy.event, _twin)


class _Node:
    """One decision point on the current DFS path."""

    __slots__ = ("chosen", "current", "done", "fp", "preemptions", "runnable", "sleep")

    def __init__(self, runnable: tuple[int, ...], current: int, preemptions: int,
                 sleep: dict[int, frozenset[tuple[object, ...]]]) -> None:
        self.runnable = runnable
        self.current = current
        self.preemptions = preemptions  # preemptions on the path before this node
        self.sleep = sleep  # agents whose step here is known redundant, with footprints
        self.done: dict[int, frozenset[tuple[object, ...]]] = {}  # explored: footprint
        self.chosen = -1
        self.fp: frozenset[tuple[object, ...]] = frozenset()


class DfsStrategy(Strategy):
    """Bounded exhaustive search: every schedule with at most ``bound`` preemptions, once.

    Stateless model checking by re-execution (as CHESS does): each execution
    follows a prefix of decisions, then goes on without preempting; afterwards
    the deepest decision with an untried choice within the preemption bound
    becomes the next prefix.  A preemption is choosing another agent while the
    running one could go on.  With ``reduction``, sleep sets (Godefroid 1996)
    skip choices whose step is independent of everything run since the same
    step was explored: those schedules only reorder commuting steps.  The space
    is exhausted when no untried choice is left.
    """

    name = "dfs"
    wants_events = True
    wants_single = True
    seeded = False

    def __init__(self, bound: int | None = 2, reduction: bool = True) -> None:
        self.bound = bound
        self.reduction = reduction
        self.stack: list[_Node] = []
        self.prefix: list[int] = []
        self.pos = 0
        self.step_keys: set[tuple[object, ...]] = set()
        self.exhausted = False
        self.schedules = 0  # executions run to the end
        self.pruned = 0  # executions abandoned as redundant

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "preemption_bound": self.bound, "reduction": self.reduction}

    def reset(self, seed: int) -> None:
        self.pos = 0
        self.step_keys = set()

    def event(self, step: int, aid: int, ev: Event) -> None:
        self.step_keys.update(footprint_keys(ev))

    def _bound_text(self) -> str:
        return ("no preemption bound" if self.bound is None
                else f"at most {self.bound} preemptions")

    def _allowed(self, node: _Node, aid: int) -> bool:
        if self.reduction and aid in node.sleep:
            return False
        if self.bound is None:
            return True
        preempt = aid != node.current and node.current in node.runnable
        return node.preemptions + int(preempt) <= self.bound

    def choose(self, runnable: Sequence[int], current: int) -> int:
        if self.exhausted:
            raise SearchExhausted(f"dfs: every schedule with {self._bound_text()} has run; "
                                  "no execution is left")
        stack = self.stack
        pos = self.pos
        self.pos += 1
        if pos > 0:
            parent = stack[pos - 1]
            parent.fp = frozenset(self.step_keys)
            parent.done[parent.chosen] = parent.fp
        self.step_keys = set()
        if pos < len(self.prefix):
            node = stack[pos]
            node.chosen = self.prefix[pos]
            return node.chosen
        # A new decision point: its sleep set follows from its parent's.
        sleep: dict[int, frozenset[tuple[object, ...]]] = {}
        preemptions = 0
        if pos > 0:
            parent = stack[pos - 1]
            preemptions = parent.preemptions + int(
                parent.chosen != parent.current and parent.current in parent.runnable)
            if self.reduction:
                for aid, fp in (*parent.sleep.items(), *parent.done.items()):
                    if aid != parent.chosen and independent(fp, parent.fp):
                        sleep[aid] = fp
        node = _Node(tuple(runnable), current, preemptions, sleep)
        del stack[pos:]
        stack.append(node)
        order = ([current] if current in runnable else []) + [a for a in runnable if a != current]
        for aid in order:
            if self._allowed(node, aid):
                node.chosen = aid
                return aid
        return PRUNE

    def single(self, aid: int) -> int:
        """Only ``aid`` can run: PRUNE if its step is asleep here (already explored)."""
        if not self.reduction or self.pos == 0:
            return aid
        node = self.stack[self.pos - 1]
        if aid == node.chosen:
            return aid
        fp = node.sleep.get(aid, node.done.get(aid))
        if fp is not None and independent(fp, frozenset(self.step_keys)):
            return PRUNE
        return aid

    def end(self, outcome: Outcome) -> None:
        if outcome == Outcome.PRUNED:
            self.pruned += 1
        else:
            self.schedules += 1
        if self.pos > 0 and self.pos <= len(self.stack):
            last = self.stack[self.pos - 1]
            if last.chosen >= 0:
                last.done.setdefault(last.chosen, frozenset(self.step_keys))
        del self.stack[self.pos:]
        # Backtrack to the deepest decision with an allowed, untried choice.
        while self.stack:
            node = self.stack[-1]
            for aid in node.runnable:
                if aid not in node.done and aid != node.chosen and self._allowed(node, aid):
                    node.chosen = aid
                    self.prefix = [n.chosen for n in self.stack]
                    return
            self.stack.pop()
        self.exhausted = True


STRATEGIES: dict[str, type[Strategy]] = {
    "random": RandomStrategy,
    "pct": PctStrategy,
    "pos": PosStrategy,
    "dfs": DfsStrategy,
    "portfolio": PortfolioStrategy,
}


def make_strategy(
    name: str, pct_depth: int = 3, preemption_bound: int | None = 2, reduction: bool = True
) -> Strategy:
    """Return a fresh strategy by name; unknown names are bad input."""
    if name not in STRATEGIES:
        raise BadInput(f"unknown strategy '{name}' (known: {', '.join(sorted(STRATEGIES))})")
    if name == "pct":
        return PctStrategy(pct_depth)
    if name == "dfs":
        if preemption_bound is not None and preemption_bound < 0:
            raise BadInput(f"--preemption-bound {preemption_bound}: must be 0 or more")
        return DfsStrategy(preemption_bound, reduction)
    return STRATEGIES[name]()
