"""Rule 8, ``starvation`` (and ``crash``): liveness, reported apart from safety.

The scheduler bounds the steps of an execution; an execution that reaches the
bound -- a synchronous clean rescanning forever against a writer, a variant
spinning on schedule points -- is reported as ``starvation`` with what each CPU
was doing.  A variant that raises is reported as ``crash``, naming the CPU, the
system call and the exception; vmemu itself goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from emulator.check import Rule
from emulator.check.base import Checker

if TYPE_CHECKING:
    from emulator.kern.monitor import Violation
    from emulator.sched.scheduler import Scheduler


class Liveness(Checker):
    rule = Rule.STARVATION

    @property
    def sched(self) -> Scheduler:
        # Starvation and crashes are findings of the harness's scheduler, which the
        # kernel runs on (the kernel itself knows only the Sched protocol).
        return cast("Scheduler", self.k.sched)

    def doing(self) -> str:
        sched = self.sched
        ops = self.k.shared.get("current_op", {})
        parts = []
        states = sched.states_at_end or [a.state for a in sched.agents]
        for agent, st in zip(sched.agents, states, strict=True):
            if agent.daemon:
                continue
            state = {0: "runnable", 1: "blocked", 2: "done"}[int(st)]
            op = ops.get(agent.aid)
            parts.append(f"{agent.name} {state}" + (f" in {op}" if op and state != "done" else ""))
        return ", ".join(parts)

    def explain(self, v: Violation) -> None:
        if v.rule == Rule.STARVATION:
            self._starvation(v)
        elif v.rule == Rule.CRASH:
            self._crash(v)

    def _starvation(self, v: Violation) -> None:
        sched = self.sched
        v.message = f"{v.message}: {self.doing()}"
        if sched.stalled:
            return  # the watchdog named the one agent that never came back
        states = sched.states_at_end or [a.state for a in sched.agents]
        v.cpus = [a.aid for a, st in zip(sched.agents, states, strict=True)
                  if not a.daemon and int(st) != 2]

    def _crash(self, v: Violation) -> None:
        exc = self.sched.crash_exc
        where = ""
        tb = exc.__traceback__ if exc is not None else None
        while tb is not None:
            where = f" at {tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
            tb = tb.tb_next
        ops = self.k.shared.get("current_op", {})
        cpu = v.cpus[0] if v.cpus else -1
        v.message = f"{v.message}{where} (during {ops.get(cpu, 'its program')})"
