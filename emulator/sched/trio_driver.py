"""The Trio driver, the reference: every agent is a Trio task.

At any moment one task holds the baton; every other agent's task is parked
inside ``trio.lowlevel.wait_task_rescheduled``, and the baton moves with
``trio.lowlevel.reschedule``.  If the strategy picks the current agent at a
schedule point, nothing touches Trio at all.  The harness's main task is
parked too while the agents run, and is woken last.

Trio is never asked to choose: at most one of our tasks is runnable at a time.

The agents' tasks outlive an execution: they are a pool of Trio system tasks,
one pool per ``trio.run``, each parked idle between executions.  An execution
takes one per agent -- a parked worker is a parked agent already, so handing
out the first baton is the first wake-up -- and gives each back when its
agent's body has unwound; an agent that never got the baton gives its worker
back without waking it at all.  No nursery, no task and no cancel scope is
built per execution; only the first execution of a run (or one with more
agents than the pool holds) spawns workers and waits for them to park.  Each
worker runs its bodies inside one cancel scope of its own, which the watchdog
cancels to wake an agent stuck in a foreign await; a worker whose scope was
cancelled retires after that execution, and a fresh one replaces it.

A system task must never raise (Trio would crash the whole run): a worker
hands whatever interrupted its agent (Ctrl-C's ``KeyboardInterrupt``) to the
execution's main task, which raises it once every agent has unwound.  Ctrl-C
is raised where it lands only in an agent's own code (its body's code is
marked so); in the harness's code -- the main task in ``run``, a worker between
bodies -- Trio keeps it for the main task's next checkpoint (a campaign's, or
the end of ``trio.run``).  When the main task of ``trio.run`` returns, Trio
cancels the idle workers, and they exit.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import CodeType
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
_FAILED = trio.lowlevel.Abort.FAILED
_SUCCEEDED = trio.lowlevel.Abort.SUCCEEDED


def _no_abort(_: Any) -> trio.lowlevel.Abort:
    return _FAILED


def _idle_abort(_: Any) -> trio.lowlevel.Abort:
    # Only an idle worker's wait may be cancelled: Trio cancels the system tasks
    # when the run's main task returns, and no execution runs then.
    return _SUCCEEDED


class _Worker:
    """A pooled agent task, and the execution's agent it runs (None while idle).

    It is its running agent's ``scope``: the watchdog's ``cancel`` cancels the
    worker's cancel scope, and the worker retires after that execution.
    """

    __slots__ = ("agent", "body", "cancelled", "sched", "scope", "task")

    def __init__(self, task: trio.lowlevel.Task, scope: trio.CancelScope) -> None:
        self.task = task
        self.scope = scope
        self.cancelled = False  # (a plain flag: the scope's cancel_called reads the clock)
        self.sched: TrioScheduler | None = None
        self.agent: Agent | None = None
        self.body: Body | None = None

    def cancel(self) -> None:
        self.cancelled = True
        self.scope.cancel()


# The idle workers of the running ``trio.run``.
_POOL: trio.lowlevel.RunVar[list[_Worker]] = trio.lowlevel.RunVar("vmemu_trio_workers")


async def _serve(idle: list[_Worker], starter: TrioScheduler | None) -> None:
    """A worker: park idle; given a baton, run the agent's body; go back to the pool."""
    scope = trio.CancelScope()
    w = _Worker(trio.lowlevel.current_task(), scope)
    try:
        with scope:
            idle.append(w)
            assert starter is not None
            starter._worker_parked()
            starter = None  # hold no execution between executions
            while not w.cancelled:
                await _wait(_idle_abort)
                sched, agent, body = w.sched, w.agent, w.body
                assert sched is not None and agent is not None and body is not None
                agent.scope = w
                try:
                    await body()
                except Abort:
                    pass
                except NoSchedulePoint as exc:
                    sched._no_point(agent, exc)
                except Exception as exc:
                    sched._crashed(agent, exc)
                except trio.Cancelled:
                    if not w.cancelled:
                        raise
                    sched._foreign(agent, " and never came back")
                except BaseException as exc:
                    sched._interrupted(agent)
                    sched._interrupt(exc)
                    break  # it may have landed anywhere in this worker: retire
                else:
                    sched._finished(agent)
                if not w.cancelled:
                    idle.append(w)  # (the watchdog cancelled the scope: retire)
                sched._job_done(w)
                del sched, agent, body
    except BaseException as exc:  # Ctrl-C outside the agent's body, or the run's end
        if w in idle:
            idle.remove(w)  # no execution may take a worker that has exited
        if starter is not None:  # before it ever parked
            starter._interrupt(exc)
            starter._worker_parked()
        sched = w.sched
        if sched is not None:  # an execution must not wait for it
            if w.agent is not None:
                sched._interrupted(w.agent)
            if not isinstance(exc, trio.Cancelled):
                sched._interrupt(exc)
            sched._job_done(w)
    if w.sched is not None:  # retired after an interruption inside the body
        w.sched._job_done(w)


# The code of the bodies run so far, marked for Ctrl-C (see ``_unprotect``).
_UNPROTECTED: set[CodeType | None] = set()


def _unprotect(body: Body, code: CodeType | None) -> None:
    """Let Ctrl-C raise ``KeyboardInterrupt`` in ``body``'s code and what it calls.

    A system task is protected from Ctrl-C (Trio then delivers it to the main task,
    parked here until the execution ends): a worker's own bookkeeping stays
    protected, and the agent's code, marked here once per code object, is
    interrupted where it runs, as in the nursery's tasks before the pool.
    """
    if code is not None:
        trio.lowlevel.disable_ki_protection(body)
    _UNPROTECTED.add(code)


class TrioScheduler(Scheduler):
    """Agents as Trio tasks, handing a baton with reschedule / wait_task_rescheduled."""

    driver = "trio"

    # Per execution, set by ``run`` (class defaults until then: no ``__init__`` to call).
    _main: trio.lowlevel.Task | None = None
    _main_waiting = False  # the main task is parked until the execution ends
    _idle: list[_Worker]  # the run's pool of idle workers
    _workers: list[_Worker]  # agent i's worker
    _live = 0  # workers this execution holds: not yet back in the pool
    _unparked = 0  # workers spawned for this execution, not yet parked
    _raise: BaseException | None = None  # what interrupted an agent's task

    @trio.lowlevel.enable_ki_protection  # a Ctrl-C here waits for the campaign's checkpoint
    async def run(self, bodies: Sequence[Body]) -> None:
        agents = self.agents
        n = len(agents)
        assert len(bodies) == n
        self._main = trio.lowlevel.current_task()
        watch(self, self.stall_seconds, trio.lowlevel.current_trio_token(), self.stalled_here)
        try:
            idle = _POOL.get()
        except LookupError:
            idle = []
            _POOL.set(idle)
        self._idle = idle
        while len(idle) < n:
            await self._spawn(idle, n - len(idle))
            if self._raise is not None:
                raise self._raise
            if self.over:
                return  # the watchdog gave up on this execution
        k = len(idle) - n
        self._workers = workers = idle[k:]
        del idle[k:]
        for agent, body, w in zip(agents, bodies, workers, strict=True):
            code = getattr(body, "__code__", None)
            if code not in _UNPROTECTED:
                _unprotect(body, code)
            w.sched = self
            w.agent = agent
            w.body = body
            agent.task = w.task
            agent.parked = True  # in its worker's idle wait: waking it starts its body
        self._live = n
        try:
            first = self._choose(None)
        except Abort:
            pass  # the strategy failed at the first decision; _end released the agents
        else:
            if first is None:
                self._stuck()
            else:
                self._give(first)
        if self._live:
            self._main_waiting = True
            await _wait(_no_abort)
        if self._raise is not None:
            raise self._raise

    async def _spawn(self, idle: list[_Worker], count: int) -> None:
        """Add ``count`` workers to the pool; return once every one is parked."""
        self._unparked = count
        for _ in range(count):
            trio.lowlevel.spawn_system_task(_serve, idle, self, name="vmemu agent")
        self._main_waiting = True
        await _wait(_no_abort)

    def _worker_parked(self) -> None:
        """A worker spawned for this execution is in the pool (and parks right away)."""
        self._unparked -= 1
        if self._unparked == 0:
            self._wake_main()

    def _job_done(self, w: _Worker) -> None:
        """Worker ``w`` is done with this execution: back in the pool, or retired."""
        w.sched = w.agent = w.body = None
        self._live -= 1
        if self._live == 0 and self.over:
            self._wake_main()

    def _interrupt(self, exc: BaseException) -> None:
        if self._raise is None:
            self._raise = exc

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
        if agent.scope is not None:  # its body runs: it raises Abort where it parked
            _reschedule(agent.task, outcome.Error(Abort()))
            return
        # Never given the baton: its worker, still in its idle wait, goes back to the
        # pool without waking.
        w = self._workers[agent.aid]
        w.sched = w.agent = w.body = None
        self._idle.append(w)
        self._live -= 1

    def _ended(self) -> None:
        # The main task may be the caller (a strategy failing at the first
        # decision): it is woken only when it is parked, and only once no worker
        # of this execution is still unwinding.
        if self._live == 0:
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
        if cur is None and (self._unparked > 0 or not self._main_waiting):
            # Still starting: a worker spawned for this execution has not parked yet,
            # or the main task was woken to hand out the first baton and has not run
            # yet (a slow, loaded machine).  Trio runs queued tasks, so this is
            # progress, not a lost baton.
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
