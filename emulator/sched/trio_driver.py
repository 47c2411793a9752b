"""The Trio driver, the reference: every agent is a Trio task.

At any moment one task holds the baton; every other agent's task is parked
inside ``trio.lowlevel.wait_task_rescheduled``, and the baton moves with
``trio.lowlevel.reschedule``.  If the strategy picks the current agent at a
schedule point, nothing touches Trio at all.  The harness's main task is
parked too while the agents run, and is woken last.

Trio is never asked to choose: at most one of our tasks is runnable at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import outcome
import trio

from emulator.errors import InternalError
from emulator.kern.sched import WaitChannel
from emulator.sched.outcome import Outcome
from emulator.sched.scheduler import (
    Abort,
    Agent,
    Body,
    Scheduler,
)
from emulator.sched.watchdog import NoSchedulePoint, watch

_reschedule = trio.lowlevel.reschedule
_wait = trio.lowlevel.wait_task_rescheduled


def _no_abort(_: Any) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED


class TrioScheduler(Scheduler):
    """Agents as Trio tasks, handing a baton with reschedule / wait_task_rescheduled."""

    driver = "trio"

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._main: trio.lowlevel.Task | None = None
        self._main_waiting = False  # the main task is parked until the execution ends
        self._parked = 0

    async def run(self, bodies: Sequence[Body]) -> None:
        assert len(bodies) == len(self.agents)
        self._main = trio.lowlevel.current_task()
        watch(self, self.stall_seconds, trio.lowlevel.current_trio_token(), self.stalled_here)
        async with trio.open_nursery() as nursery:
            for agent, body in zip(self.agents, bodies, strict=True):
                nursery.start_soon(self._agent_main, agent, body)
            # Wait until every agent is parked, then hand out the first baton.
            self._main_waiting = True
            await _wait(_no_abort)
            if self.over:
                return  # the watchdog gave up on this execution
            try:
                first = self._choose(None)
            except Abort:
                return  # the strategy failed at the first decision; _end released the agents
            if first is None:
                self._stuck()
                return
            self._main_waiting = True
            self._give(first)
            await _wait(_no_abort)

    async def _agent_main(self, agent: Agent, body: Body) -> None:
        agent.task = trio.lowlevel.current_task()
        if self.over:
            return  # abandoned before this agent ever parked
        self._parked += 1
        if self._parked == len(self.agents):
            self._wake_main()
        try:
            agent.parked = True
            await _wait(_no_abort)
            with trio.CancelScope() as agent.scope:
                await body()
        except Abort:
            return
        except NoSchedulePoint as exc:
            self._no_point(agent, exc)
            return
        except Exception as exc:
            self._crashed(agent, exc)
            return
        except BaseException:
            self._interrupted(agent)
            raise
        if agent.scope.cancelled_caught:
            self._foreign(agent, " and never came back")
            return
        self._finished(agent)

    # -- moving the baton ---------------------------------------------------------

    def _give(self, agent: Agent) -> None:
        self.current = agent
        self.cpu = agent.aid
        agent.parked = False
        _reschedule(agent.task)

    async def _switch(self, cur: Agent, nxt: Agent) -> None:
        self.current = nxt
        self.cpu = nxt.aid
        nxt.parked = False
        _reschedule(nxt.task)
        cur.parked = True
        await _wait(_no_abort)

    # ``point`` and ``sleep``, with the switch inside them: one coroutine less to
    # build and to pass each way at every switch.  ``point`` repeats
    # ``Scheduler.point``'s decisions line for line (a shared helper cost 1.9% more
    # instructions per step); ``sleep`` asks the base class's ``_next_after_sleep``.  The
    # identity tests compare both drivers' executions, and these against the base class's.

    async def point(self) -> None:
        if self.over:
            raise Abort()
        self.step = step = self.step + 1
        if step > self.max_steps:
            self._end(Outcome.STARVATION, f"no end after {self.max_steps} steps")
            raise Abort()
        runnable = self.runnable
        if len(runnable) == 1:  # the current agent alone
            if self.consult_single:
                self._single(self.cpu)
            return
        aid = self.cpu
        try:
            chosen = self._choose_of(runnable, aid)
        except Exception as exc:
            self._fail(exc)
        if chosen == aid:
            self._decided(chosen)
            if self.on_decision is not None:
                self.on_decision(step, runnable, chosen)
            return
        if chosen not in runnable:
            self._refuse(chosen, runnable)
        self._decided(chosen)
        if self.on_decision is not None:
            self.on_decision(step, runnable, chosen)
        cur = self.current
        assert cur is not None
        self.current = nxt = self.agents[chosen]
        self.cpu = chosen
        nxt.parked = False
        _reschedule(nxt.task)
        cur.parked = True
        await _wait(_no_abort)

    async def sleep(self, chan: WaitChannel) -> None:
        nxt = self._next_after_sleep(chan)
        cur = self.current
        assert cur is not None
        self.current = nxt
        self.cpu = nxt.aid
        nxt.parked = False
        _reschedule(nxt.task)
        cur.parked = True
        await _wait(_no_abort)

    def _started(self, agent: Agent) -> bool:
        return agent.task is not None

    def _release(self, agent: Agent) -> None:
        _reschedule(agent.task, outcome.Error(Abort()))

    def _ended(self) -> None:
        # The main task may be the caller (a strategy failing at the first
        # decision): it is woken only when it is parked.
        self._wake_main()

    def _wake_main(self) -> None:
        if self._main_waiting:
            self._main_waiting = False
            assert self._main is not None
            _reschedule(self._main)

    # -- the watchdog ---------------------------------------------------------------

    def stall_exception(self, seconds: float) -> BaseException | None:
        cur = self.current
        if cur is None:
            return None
        try:
            task = trio.lowlevel.current_task()
        except RuntimeError:
            return None  # inside Trio's loop itself: the cancel request handles it
        return self._no_point_error(seconds) if task is cur.task else None

    def stalled_here(self, step: int, seconds: float) -> None:
        """Runs in Trio's loop (no task is running): cancel a foreign await, or give up."""
        if self.over or self.step != step:
            return
        cur = self.current
        if cur is None and (self._parked < len(self.agents) or not self._main_waiting):
            # Still starting: an agent task has not parked yet, or the main task was
            # woken to hand out the first baton and has not run yet (a slow, loaded
            # machine).  Trio runs queued tasks, so this is progress, not a lost baton.
            return
        if self.holder_running():
            assert cur is not None
            if cur.scope is not None:
                self.stalled = True
                cur.scope.cancel()
            return
        holder = "no agent had been given the baton" if cur is None else (
            f"{cur.name} holds the baton but is {'parked' if cur.parked else 'done'}")
        self.abandon(InternalError(
            f"the execution made no progress for {seconds:g}s at step {step} with no "
            f"agent running ({holder}): a bug in vmemu, not in the variant"))

