"""The direct driver: the agents' coroutines, run without an event loop.

A plain loop (``_drive``) sends ``None`` into the coroutine of the agent
holding the baton.  An agent gives the baton away by naming the next holder
(``current``) and yielding a sentinel, the *baton*, out of its whole ``await``
chain back to the loop, which then sends into the next holder.  A switch costs
one ``send`` and one ``yield`` through the agent's stack, and nothing else: no
run queue, no I/O poll, no cancel scopes, no ``outcome`` boxes.

Everything that decides anything (the strategy's decisions, blocking, the step
bound, deadlock, the end) is :class:`~emulator.sched.scheduler.Scheduler`'s,
shared with the Trio driver, so an execution is the same under either, trace
for trace.

What the Trio driver leaves to its watchdog, this loop sees itself, at once and
deterministically:

* an agent that yields anything but the baton awaited something outside the
  emulator (``trio.sleep``, an asyncio future): ``starvation``, blaming it;
* a baton handed to nobody (the current agent done, blocked or parked when the
  loop looks): the harness's bug, an ``InternalError``, never the variant's.

Only code that never returns from a ``send`` (a loop without a schedule point)
needs the wall clock: the watchdog's signal raises ``NoSchedulePoint`` in the
agent's coroutine if that is what is running, and an ``InternalError`` if the
harness itself is stuck.

Ending an execution throws ``Abort`` into every coroutine that has not
finished, in agent order, once the loop stops.
"""

from __future__ import annotations

import types
from collections.abc import Generator, Sequence

from emulator.errors import InternalError
from emulator.kern.sched import WaitChannel
from emulator.sched.outcome import Outcome
from emulator.sched.scheduler import (
    RUNNABLE,
    Abort,
    Agent,
    Body,
    Scheduler,
)
from emulator.sched.watchdog import NoSchedulePoint, watch


class _Baton:
    """What an agent yields to the loop when it gives the baton away."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<the direct driver's baton>"


BATON = _Baton()


class DirectScheduler(Scheduler):
    """Agents as bare coroutines, driven by ``send(None)``."""

    driver = "direct"

    _bodies: Sequence[Body] = ()  # run's (the class's empty tuple until then)

    async def run(self, bodies: Sequence[Body]) -> None:
        assert len(bodies) == len(self.agents)
        self._bodies = bodies
        for agent in self.agents:
            agent.parked = True  # its body starts when it first gets the baton
        watch(self, self.stall_seconds)
        try:
            try:
                first = self._choose(None)
            except Abort:
                return  # the strategy failed at the first decision
            if first is None:
                self._stuck()
                return
            self._give(first)
            self._drive()
        except InternalError as exc:  # the watchdog: the harness's own code stalled
            self.abandon(exc)
        finally:
            self._unwind()

    def _drive(self) -> None:
        bodies = self._bodies
        baton = BATON
        while not self.over:
            cur = self.current
            if cur is None or cur.state != RUNNABLE or cur.parked:
                self._lost(cur)
                return
            coro = cur.coro
            if coro is None:
                coro = cur.coro = bodies[cur.aid]()
            try:
                got = coro.send(None)
            except StopIteration:
                cur.coro = None
                self._finished(cur)
                continue
            except Abort:
                cur.coro = None
                continue
            except NoSchedulePoint as exc:
                cur.coro = None
                self._no_point(cur, exc)
                continue
            except Exception as exc:
                cur.coro = None
                self._crashed(cur, exc)
                continue
            except BaseException:
                cur.coro = None
                self._interrupted(cur)
                raise
            if got is not baton:
                # Suspended in an await of someone else's: it can never be resumed
                # by anyone here.  It unwinds with the parked agents.
                self._foreign(cur, f" ({type(got).__name__})")

    def _lost(self, cur: Agent | None) -> None:
        holder = "no agent had been given the baton" if cur is None else (
            f"{cur.name} holds the baton but is "
            f"{'parked' if cur.parked else cur.state.name.lower()}")
        self.abandon(InternalError(
            f"the baton was lost at step {self.step} ({holder}): "
            "a bug in vmemu, not in the variant"))

    def _unwind(self) -> None:
        """Throw ``Abort`` into every coroutine that has not finished, in agent order."""
        for agent in self.agents:
            coro = agent.coro
            if coro is None:
                continue
            agent.coro = None
            agent.parked = False
            try:
                coro.throw(Abort())
            except (Abort, StopIteration):
                continue
            except Exception:
                continue
            coro.close()  # it swallowed the Abort: it must not run again

    # -- moving the baton ---------------------------------------------------------

    def _give(self, agent: Agent) -> None:
        self.current = agent
        self.cpu = agent.aid
        agent.parked = False

    @types.coroutine
    def _switch(self, cur: Agent, nxt: Agent) -> Generator[_Baton, None, None]:
        # A generator, not a coroutine function: the baton is yielded from this
        # very frame.  (``point`` and ``sleep`` below do the same inline.)
        self.current = nxt
        self.cpu = nxt.aid
        nxt.parked = False
        cur.parked = True
        yield BATON

    # ``point`` and ``sleep``, with the switch inside them: generators that yield the
    # baton from their own frame, so a switch passes one frame less each way and
    # builds no ``_switch`` generator.  ``point`` repeats
    # ``Scheduler.point``'s decisions line for line (a shared helper cost 1.9% more
    # instructions per step); ``sleep`` asks the base class's ``_next_after_sleep``.  The
    # identity tests compare both drivers' executions, and these against the base class's.

    @types.coroutine
    def point(self) -> Generator[_Baton, None, None]:
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
        cur.parked = True
        yield BATON

    @types.coroutine
    def sleep(self, chan: WaitChannel) -> Generator[_Baton, None, None]:
        nxt = self._next_after_sleep(chan)
        cur = self.current
        assert cur is not None
        self.current = nxt
        self.cpu = nxt.aid
        nxt.parked = False
        cur.parked = True
        yield BATON

    def _started(self, agent: Agent) -> bool:
        return True

    def _release(self, agent: Agent) -> None:
        pass  # _unwind throws Abort into it once the loop stops

    # -- the watchdog ---------------------------------------------------------------

    def stall_exception(self, seconds: float) -> BaseException | None:
        cur = self.current
        coro = cur.coro if cur is not None else None
        if coro is not None and getattr(coro, "cr_running", False):
            return self._no_point_error(seconds)
        return InternalError(
            f"the execution made no progress for {seconds:g}s at step {self.step} with no "
            "agent running (the direct driver's loop): a bug in vmemu, not in the variant")
