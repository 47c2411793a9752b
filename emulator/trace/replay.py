"""Replay a trace: rebuild the machine from the header, feed the recorded decisions.

Strict replay compares every event with the recording and stops at the first
difference.  With another variant (a fix under test), the recorded decisions
are followed while they stay possible; the report says where behaviour first
changed and whether the recorded violation still occurs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from emulator.check import all_checkers
from emulator.errors import BadInput
from emulator.machine import Execution, Machine
from emulator.sched.strategies import Strategy
from emulator.trace.format import canonical, event_dict
from emulator.trace.reader import Trace
from emulator.variants import BUILTIN, Variant, load_variant


class FollowStrategy(Strategy):
    """Take the recorded decisions in order while they are possible.

    When a recorded choice is not runnable (or the recording runs out), stay on
    the current agent if it can run, else take the lowest-numbered runnable
    one, and remember where that first happened.
    """

    name = "follow"

    def __init__(self, decisions: Sequence[int]) -> None:
        self.recorded = list(decisions)
        self.pos = 0
        self.first_departure: int | None = None

    def reset(self, seed: int) -> None:
        self.pos = 0
        self.first_departure = None

    def choose(self, runnable: Sequence[int], current: int) -> int:
        pos = self.pos
        self.pos += 1
        if pos < len(self.recorded) and self.recorded[pos] in runnable:
            return self.recorded[pos]
        if self.first_departure is None:
            self.first_departure = pos
        return current if current in runnable else runnable[0]


def trace_variant(trace: Trace, override: str | Variant | None) -> Variant:
    """The variant to replay with: the override (a name, or a variant already
    loaded, e.g. by a test), else the header's built-in one.

    A user variant named by a trace is never loaded from the trace's say-so:
    the user must name it again with --variant.
    """
    if isinstance(override, Variant):
        return override
    if override is not None:
        return load_variant(override)
    name = trace.config.variant
    if name in BUILTIN:
        return BUILTIN[name]
    if ":" in name:
        raise BadInput(f"{trace.path}: recorded with the user variant '{name}'; vmemu never "
                       f"loads code a trace names: pass --variant {name} to replay it")
    raise BadInput(f"{trace.path}: line 1: header names unknown variant '{name}'")


@dataclass
class Divergence:
    index: int  # event index
    line: int | None  # file line of the expected event (None: the recording ended)
    step: int
    expected: dict[str, Any] | None
    observed: dict[str, Any] | None
    before: list[dict[str, Any]]


@dataclass
class ReplayResult:
    trace: Trace
    execution: Execution
    observed: list[dict[str, Any]]
    divergence: Divergence | None
    departure: int | None  # first decision the recording could not dictate

    @property
    def identical(self) -> bool:
        return self.divergence is None


def compare(trace: Trace, observed: list[dict[str, Any]], partial: bool) -> Divergence | None:
    """Return the first difference between the recording and the observed events."""
    expected = trace.events
    n = min(len(expected), len(observed))
    for i in range(n):
        if canonical(expected[i]) != canonical(observed[i]):
            return Divergence(i, trace.lines[i], expected[i]["step"], expected[i], observed[i],
                              expected[max(0, i - 4):i])
    if len(observed) < len(expected):
        i = len(observed)
        return Divergence(i, trace.lines[i], expected[i]["step"], expected[i], None,
                          expected[max(0, i - 4):i])
    if len(observed) > len(expected) and not partial:
        i = len(expected)
        return Divergence(i, None, observed[i]["step"], None, observed[i],
                          observed[max(0, i - 4):i])
    return None


async def replay(trace: Trace, variant_override: str | Variant | None = None,
                 partial: bool = False) -> ReplayResult:
    """Replay ``trace``; strict unless another variant is given."""
    variant = trace_variant(trace, variant_override)
    strategy = FollowStrategy(trace.decisions)
    config = trace.config
    machine = Machine(trace.spec, variant, strategy, checkers=all_checkers(),
                      max_steps=config.max_steps, record=True)
    ex = await machine.execute(config.seed, trace.spec)
    observed = [event_dict(e) for e in ex.events]
    return ReplayResult(trace, ex, observed, compare(trace, observed, partial),
                        strategy.first_departure)
