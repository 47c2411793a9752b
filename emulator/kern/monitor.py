"""Who judges the kernel: the Monitor interface, and the record of a broken rule.

The kernel model names no rule.  Its primitives report what they see -- a
lock's contract broken by its caller, a freed structure touched, every lock,
busy and store -- and the harness's checkers decide which rule of SEMANTICS.md
§6 that breaks.  A checker gives its verdict through the Monitor the harness
hands the kernel (``k.monitor``): FreeBSD's INVARIANTS and WITNESS, which
panic, are the nearest kin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Violation:
    """A broken rule: its id, one readable line, and where it happened."""

    rule: str
    message: str
    step: int
    cpus: list[int] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "message": self.message,
            "step": self.step,
            "cpus": list(self.cpus),
            "fields": dict(self.fields),
        }


class Monitor(Protocol):
    """Where broken rules go.  ``cpus`` defaults to the CPU running now."""

    def fatal(self, rule: str, message: str, cpus: list[int] | None = None, **fields: Any) -> None:
        """``rule`` is broken: record it and end the execution.

        Called inside an agent, it does not return: the agent is unwound.
        """

    def note(self, rule: str, message: str, cpus: list[int] | None = None, **fields: Any) -> None:
        """``rule`` is broken: record it; the execution goes on."""
