"""Scheduling strategies: who runs next at a decision point.

A strategy sees only agent numbers (ints, in ascending order) and its own
private ``random.Random``; it never sees wall-clock time, ``id()`` or a set.
``reset(seed)`` is called before every execution, so one execution's choices
depend only on its seed and replay exactly.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from emulator.errors import BadInput, ReplayDiverged


class Strategy:
    """The interface: ``reset`` per execution, ``choose`` per decision."""

    name = "strategy"

    def reset(self, seed: int) -> None:
        """Prepare for one execution driven by ``seed``."""

    def choose(self, runnable: Sequence[int], current: int) -> int:
        """Return one of ``runnable`` (two or more agent numbers, ascending)."""
        raise NotImplementedError

    def describe(self) -> dict[str, object]:
        """Return what a trace header needs to rebuild this strategy."""
        return {"name": self.name}


class RandomStrategy(Strategy):
    """Pick uniformly among the runnable agents at every decision."""

    name = "random"

    def __init__(self) -> None:
        self.rng = random.Random(0)

    def reset(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def choose(self, runnable: Sequence[int], current: int) -> int:
        return runnable[int(self.rng.random() * len(runnable))]


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
        self.rng = random.Random(seed)
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


class PortfolioStrategy(Strategy):
    """Mix strategies per execution: the seed picks one, so each execution
    still replays from its seed alone.  Members: random walk, and PCT of
    depths 2 and 3 (most of the mutants' races have depth 2 or 3)."""

    name = "portfolio"

    def __init__(self) -> None:
        self.members: list[Strategy] = [RandomStrategy(), PctStrategy(2), PctStrategy(3)]
        self.active: Strategy = self.members[0]

    def reset(self, seed: int) -> None:
        self.active = self.members[seed % len(self.members)]
        self.active.reset(seed)

    def choose(self, runnable: Sequence[int], current: int) -> int:
        return self.active.choose(runnable, current)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "members": [m.describe() for m in self.members]}


STRATEGIES: dict[str, type[Strategy]] = {
    "random": RandomStrategy,
    "pct": PctStrategy,
    "portfolio": PortfolioStrategy,
}


def make_strategy(name: str) -> Strategy:
    """Return a fresh strategy by name; unknown names are bad input."""
    cls = STRATEGIES.get(name)
    if cls is None:
        raise BadInput(f"unknown strategy '{name}' (known: {', '.join(sorted(STRATEGIES))})")
    return cls()
