"""The trace's violations as the timeline marks them: rule, message, step, CPUs involved.

They come from the footer when there is one (which names each violation's
CPUs), else from the violation events of a partial trace.  A violation event
in the trace is matched to its footer record; the CPUs a message names
(``cpu1``) count as involved too, and the stores it names (``store #5``) mark
the rows that touch them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from emulator.trace.reader import Trace
from emulator.trace.show.text import clean


@dataclass(frozen=True)
class Violation:
    """One violation as shown: a row marking its CPUs, a banner, what each agent held."""

    rule: str
    message: str
    step: int | None
    cpus: list[int]
    held: dict[int, str] = field(default_factory=dict)  # agent -> its holds when it fired


def _named_cpus(message: str) -> list[int]:
    return [int(c) for c in re.findall(r"\bcpu(\d+)", message)]


def trace_violations(trace: Trace) -> list[Violation]:
    """The trace's violations, each with its cpus; from the footer when there is one."""
    out = []
    for v in trace.violations:
        if not isinstance(v, dict):
            continue
        message = clean(str(v.get("message", "")))
        cpus = v.get("cpus")
        if not isinstance(cpus, list):
            cpus = []
        cpus = sorted({c for c in [*cpus, *_named_cpus(message)] if isinstance(c, int)})
        step = v.get("step")
        out.append(Violation(clean(str(v.get("rule", "?"))), message,
                             step if isinstance(step, int) else None, cpus))
    return out


def take_violation(pending: list[Violation], ev: dict[str, Any]) -> Violation:
    """The footer's record of a violation event (for its cpus), removed from ``pending``."""
    a = ev["args"]
    rule = clean(str(a[0])) if a else "?"
    message = clean(str(a[1])) if len(a) > 1 else ""
    for k, v in enumerate(pending):
        if v.rule == rule and v.message == message:
            return pending.pop(k)
    cpus = sorted({*_named_cpus(message), *([ev["cpu"]] if ev["cpu"] >= 0 else [])})
    return Violation(rule, message, ev["step"], cpus)


def store_ids(message: str) -> set[int]:
    """The store ids a violation message names (``store #5``), never #0 (initial contents)."""
    return {int(m) for m in re.findall(r"#(\d+)", message) if int(m) > 0}
