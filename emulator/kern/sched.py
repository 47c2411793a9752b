"""What the kernel needs of a scheduler (sys/sched.h's role), as Protocols.

The kernel model runs on whatever scheduler it is given; emulator.sched's
controlled scheduler is the one vmemu uses, and the checkers' unit tests drive
a stand-in by hand.  Both satisfy these Protocols structurally: the kernel
imports nothing from the harness.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn, Protocol


class Thread(Protocol):
    """A schedulable actor as the kernel sees it: a CPU, or the disk."""

    @property
    def aid(self) -> int: ...

    @property
    def name(self) -> str: ...


class WaitChannel(Protocol):
    """Anything an agent can sleep on."""

    def wait_holders(self) -> list[int]:
        """Return the agents whose progress would wake this channel's sleepers."""
        ...

    def wait_name(self) -> str:
        """Return a short human name: ``map lock of p0``, ``page f:3 busy``."""
        ...


class Sched(Protocol):
    """The scheduler services kernel code runs on."""

    @property
    def step(self) -> int:
        """Schedule points passed so far."""
        ...

    @property
    def current(self) -> Thread | None:
        """The agent running now; None outside any agent (the harness)."""
        ...

    @property
    def cpu(self) -> int:
        """The running agent's id (``current.aid``); -1 outside any agent."""
        ...

    @property
    def over(self) -> bool:
        """True once the execution has ended."""
        ...

    @property
    def agents(self) -> Sequence[Thread]:
        """Every agent, indexed by its id."""
        ...

    async def point(self) -> None:
        """A schedule point: another agent may run before this returns."""

    async def sleep(self, chan: WaitChannel) -> None:
        """Block the running agent on ``chan`` until ``wakeup(chan)``."""

    def wakeup(self, chan: WaitChannel) -> None:
        """Make every agent sleeping on ``chan`` runnable.  Not a schedule point."""

    def abort(self, result: str, detail: str) -> NoReturn:
        """End the execution as ``result`` from inside the running agent.

        Nothing of the agent runs after it: the call unwinds the agent.  The
        monitor uses it when a checker finds a rule broken.
        """
