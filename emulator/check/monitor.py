"""The Monitor the harness gives the kernel: the checkers' verdicts.

A verdict is recorded on the kernel's ``violations`` and in its event stream
(a ``violation`` event, so a trace shows where it happened); a fatal one ends
the execution through the scheduler, which unwinds the agent that broke the rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator.kern.events import Violated
from emulator.kern.monitor import Violation

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel


class Verdicts:
    """Record broken rules on one kernel; end its execution on a fatal one."""

    __slots__ = ("k",)

    def __init__(self, k: Kernel) -> None:
        self.k = k

    def fatal(self, rule: str, message: str, cpus: list[int] | None = None, **fields: Any) -> None:
        self.note(rule, message, cpus, **fields)
        sched = self.k.sched
        if not sched.over and sched.current is not None:
            sched.abort("violation", message)

    def note(self, rule: str, message: str, cpus: list[int] | None = None, **fields: Any) -> None:
        k = self.k
        sched = k.sched
        if cpus is None:
            cpus = [k.curcpu()] if sched.current else []
        k.violations.append(Violation(rule, message, sched.step, cpus, fields))
        k.emit(Violated(rule, message))


def watch(k: Kernel) -> None:
    """Give ``k`` the harness's monitor (before any checker is installed)."""
    k.monitor = Verdicts(k)
