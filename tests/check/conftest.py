"""Fixtures for the checker unit tests: a Kernel on a fake scheduler, driven by hand.

``rig(profile, cpus, installers)`` builds a :class:`Rig`: a real
:class:`~emulator.kern.kernel.Kernel` whose scheduler is a stand-in with the
attributes the kernel and the checkers read (``step``, ``current``, ``over``,
``agents``, ``crash_exc``, ``states_at_end``, ``abort``, ``_end``, and dummy
``point``/``sleep``/``wakeup``), watched by the harness's monitor.
Agents 0..cpus-1 are ``cpu0``.., the last one is the ``disk`` daemon;
``installers`` are the checker classes to build.  Tests then play events as a
chosen agent with :meth:`Rig.emit`, each one step after the previous, end the
run with :meth:`Rig.end` or :meth:`Rig.explain`, and look at ``k.violations``.

A fatal violation ends the fake execution (``sched.over``, ``sched.ended``) and
raises ``Abort`` in the caller, as it does inside a real agent.

The real-run helpers (``one_cpu_spec``, ``variant``) build small specs and
ad-hoc variants for the checkers that are easier to drive through a Machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from emulator.check.base import Checker
from emulator.check.monitor import watch
from emulator.kern.events import Event
from emulator.kern.kernel import Kernel
from emulator.kern.monitor import Violation
from emulator.kern.profile import PROFILES
from emulator.sched.scheduler import Abort, AgentState


class FakeAgent:
    def __init__(self, aid: int, name: str, daemon: bool = False) -> None:
        self.aid = aid
        self.name = name
        self.daemon = daemon
        self.state = AgentState.RUNNABLE


class FakeSched:
    """Just what Kernel and the checkers read from a Scheduler."""

    def __init__(self, cpus: int) -> None:
        self.agents = [FakeAgent(i, f"cpu{i}") for i in range(cpus)]
        self.agents.append(FakeAgent(cpus, "disk", daemon=True))
        self.step = 0
        self.current: FakeAgent | None = None
        self.over = False
        self.crash_exc: BaseException | None = None
        self.states_at_end: list[AgentState] = []
        self.stalled = False
        self.ended: list[tuple[str, str]] = []

    @property
    def cpu(self) -> int:  # the real scheduler keeps it with ``current``
        return self.current.aid if self.current is not None else -1

    async def point(self) -> None:
        raise AssertionError("no schedule points in a hand-driven kernel")

    async def sleep(self, chan: Any) -> None:
        raise AssertionError("no sleeping in a hand-driven kernel")

    def wakeup(self, chan: Any) -> None:
        pass

    def _end(self, outcome: str, detail: str) -> None:
        self.over = True
        self.ended.append((outcome, detail))
        self.states_at_end = [a.state for a in self.agents]

    def abort(self, outcome: str, detail: str) -> None:
        self._end(outcome, detail)
        raise Abort()


class Rig:
    def __init__(self, profile: str, cpus: int) -> None:
        self.sched = FakeSched(cpus)
        self.k = Kernel(self.sched, PROFILES[profile])
        self.k.disk.aid = cpus
        watch(self.k)
        self.checkers: list[Checker] = []

    def be(self, aid: int | None) -> None:
        """Make ``aid`` the running agent (None: no agent, as the harness)."""
        self.sched.current = None if aid is None else self.sched.agents[aid]

    def emit(self, aid: int, ev: Event) -> None:
        """Play one event as agent ``aid``, one step after the previous one."""
        self.be(aid)
        self.sched.step += 1
        self.k.emit(ev)

    def end(self) -> None:
        """Every CPU finished: what the harness tells the checkers then."""
        for checker in self.checkers:
            checker.end()

    def explain(self, v: Violation) -> None:
        """The execution ended in ``v`` (deadlock, starvation, crash)."""
        for checker in self.checkers:
            checker.explain(v)

    @property
    def rules(self) -> list[str]:
        return [v.rule for v in self.k.violations]


@pytest.fixture
def rig() -> Callable[..., Rig]:
    def make(profile: str = "manpage", cpus: int = 2,
             installers: tuple[Callable[[Kernel], Checker], ...] = ()) -> Rig:
        r = Rig(profile, cpus)
        r.checkers = [make(r.k) for make in installers]
        return r

    return make


PAGE = 0x1000
BASE = 0x10000


def one_cpu_spec(program: list[list[Any]], pages: int = 2,
                 mappings: list[dict[str, Any]] | None = None,
                 cpus: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """File f of ``pages`` pages mapped at BASE in p0; cpu0 runs ``program``."""
    return {
        "files": {"f": {"pages": pages}},
        "processes": {"p0": {"mappings": mappings or [
            {"addr": hex(BASE), "pages": pages, "file": "f"}]}},
        "cpus": cpus or [{"process": "p0", "program": program}],
    }


@pytest.fixture
def spec_of() -> Callable[..., dict[str, Any]]:
    return one_cpu_spec
