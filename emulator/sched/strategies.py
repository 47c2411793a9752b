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


STRATEGIES: dict[str, type[Strategy]] = {"random": RandomStrategy}


def make_strategy(name: str) -> Strategy:
    """Return a fresh strategy by name; unknown names are bad input."""
    cls = STRATEGIES.get(name)
    if cls is None:
        raise BadInput(f"unknown strategy '{name}' (known: {', '.join(sorted(STRATEGIES))})")
    return cls()
