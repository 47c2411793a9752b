"""The controlled scheduler: one agent runs between two schedule points.

Design
------
Every CPU (and the disk that completes I/O) is an *agent*: a coroutine.  At
any moment exactly one agent holds the baton; every other agent is parked.  An
agent gives the baton away only at a *schedule point* (``point``), when it goes
to sleep on a wait channel (``sleep``), or when it finishes.  There the
strategy picks the next agent from the runnable ones; if it picks the current
agent, the agent simply goes on, otherwise the baton moves.

How the baton moves is the *driver*'s business, and the only thing the drivers
differ in (everything that decides anything is in :class:`Scheduler`, shared):

* :class:`~emulator.sched.trio_driver.TrioScheduler`, the reference: every
  agent is a Trio task parked in ``trio.lowlevel.wait_task_rescheduled``, and
  the baton moves with ``trio.lowlevel.reschedule``.  Trio never has two of our
  tasks runnable at once, so it never chooses an order (PLATFORM.md: Trio's own
  run-queue order is not deterministic).
* :class:`~emulator.sched.direct.DirectScheduler`: no event loop at all; a
  plain loop sends ``None`` into the coroutine holding the baton, and an agent
  that gives the baton away yields a sentinel back to it.

Both run the same agent coroutines through the same decisions, so an
execution's trace is byte-for-byte the same under either (tests/sched and
benchmarks/drivers.py check it over every workload and strategy).

Blocking is modelled here, never with Trio primitives: an agent that must wait
for a lock, a busy page or an I/O is marked BLOCKED on a *channel* (any object
with ``wait_holders()`` and ``wait_name()``), and ``wakeup(channel)`` makes its
sleepers runnable again.  Like the kernel's sleep/wakeup, a woken agent
re-checks its condition itself.  The runnable agents are kept as a tuple of
ids, replaced only when an agent blocks, wakes or finishes (from a bit mask of
the runnable agents, each mask's tuple built once): a schedule point reads it
as it is.  The sleeping agents are kept apart, so a wakeup looks only at them.

When no agent can run:
  * if every non-daemon agent is done, the execution is over (``ok``);
  * otherwise it is a deadlock, reported with its wait-for cycle.
A step bound turns a livelock or an endless rescan into ``starvation``.

Ending an execution (normally or not) raises ``Abort`` in every parked agent;
kernel code never catches it, so nothing runs after the end.

The strategy is code outside the variant: when it raises at a decision (a
replay that cannot follow its recording, a search asked for more after it is
exhausted, a choice of an agent that cannot run), the execution ends at once
with no agent blamed, and ``error`` holds the exception for the harness to
raise once every agent has unwound.  The watchdog ends an execution in which
no agent holds the baton the same way (``abandon``).

Prior art: Coyote's and Shuttle's "one runnable task at a time" controlled
schedulers, and trio's own ``_parking_lot`` for the handoff idiom.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, ClassVar, NoReturn

from emulator.errors import InternalError
from emulator.kern.sched import WaitChannel
from emulator.sched.outcome import Outcome
from emulator.sched.strategies import PRUNE, Strategy
from emulator.sched.watchdog import NoSchedulePoint

__all__ = ["PRUNE", "Abort", "Agent", "AgentState", "Body", "Scheduler"]

# An agent's program: called once, when the agent first gets the baton.
Body = Callable[[], Coroutine[Any, Any, Any]]


class Abort(BaseException):
    """Raised inside an agent whose execution has ended; never caught by kernel code."""


class AgentState(enum.IntEnum):
    RUNNABLE = 0
    BLOCKED = 1
    DONE = 2


RUNNABLE = AgentState.RUNNABLE
BLOCKED = AgentState.BLOCKED
DONE = AgentState.DONE

# The runnable tuple of each bit mask of agents (bit i: agent i), built on first use:
# ascending ids, as a strategy expects them.  Shared by every execution.
_RUNNABLE_OF: dict[int, tuple[int, ...]] = {}


def _runnable_of(mask: int) -> tuple[int, ...]:
    ids = _RUNNABLE_OF.get(mask)
    if ids is None:
        ids = _RUNNABLE_OF[mask] = tuple(i for i in range(mask.bit_length()) if mask >> i & 1)
    return ids


class Agent:
    """One schedulable actor: a CPU, or a daemon such as the disk."""

    __slots__ = ("aid", "chan", "coro", "daemon", "name", "parked", "scope", "state", "task")

    def __init__(self, aid: int, name: str, daemon: bool) -> None:
        self.aid = aid
        self.name = name
        self.daemon = daemon
        self.state = AgentState.RUNNABLE
        self.chan: WaitChannel | None = None
        # Waiting in the scheduler with no hand-over pending: the one state in
        # which the scheduler may (and, to end the execution, must) wake it.
        self.parked = False
        self.task: Any = None  # the Trio driver's task
        self.scope: Any = None  # under Trio, what the watchdog cancels (its task's scope)
        self.coro: Coroutine[Any, Any, Any] | None = None  # the direct driver's coroutine


class Scheduler:
    """Run one execution's agents one at a time, in the order a strategy picks.

    A driver subclass moves the baton (``run``, ``_give``, ``_switch``,
    ``_release``); everything else, every decision included, is here.  Both
    drivers also override ``point`` and ``sleep`` with copies that do the switch
    inline (one frame less at every switch); tests/sched/test_drivers.py checks
    that the copies decide exactly as these do.

    Attributes read by the harness after the execution:
      ``outcome``  an Outcome: ok, deadlock, starvation, crash, pruned, interrupted or
                   error (the monitor ends an execution as a violation)
      ``detail``   a one-line explanation when the outcome is not ok
      ``error``    with "error": what ended the execution from outside the
                   variant (the strategy's exception, or the watchdog's
                   ``InternalError``); the harness raises it
      ``step``     schedule points passed
      ``decisions`` the agent chosen at every decision with two or more candidates
    """

    driver: ClassVar[str] = ""

    def __init__(self, strategy: Strategy, max_steps: int, stall_seconds: float = 2.0) -> None:
        self.strategy = strategy
        self.consult_single = strategy.wants_single
        self.max_steps = max_steps
        self.stall_seconds = stall_seconds
        self.agents: list[Agent] = []
        self.step = 0
        self.current: Agent | None = None
        self.cpu = -1  # the current agent's id, -1 when none runs (read at every event)
        self.over = False
        self.outcome = Outcome.OK
        self.detail = ""
        self.blame: list[int] = []  # agents named by a deadlock or crash
        self.decisions: list[int] = []
        self.on_decision: Callable[[int, Sequence[int], int], None] | None = None
        self.crash_exc: BaseException | None = None
        self.error: Exception | None = None
        self.stalled = False  # the watchdog named the one agent that never came back
        self.states_at_end: list[AgentState] = []  # agent states when the execution ended
        self.runnable: tuple[int, ...] = ()  # the runnable agents' ids, ascending
        self._mask = 0  # the runnable agents, bit i for agent i
        # The BLOCKED agents by the channel they sleep on, in the order they slept.
        # Only ever looked up (a wakeup pops its channel's list), never iterated, so
        # the channels' hashes cannot order anything; a channel is compared by
        # identity (no wait channel class defines __eq__).
        self._asleep: dict[WaitChannel, list[Agent]] = {}
        self._choose_of = strategy.chooser()  # the scheduler is built after strategy.reset
        self._decided = self.decisions.append

    # -- setup -------------------------------------------------------------

    def add_agent(self, name: str, daemon: bool = False) -> Agent:
        agent = Agent(len(self.agents), name, daemon)
        self.agents.append(agent)
        self._mask |= 1 << agent.aid
        self.runnable = _runnable_of(self._mask)
        return agent

    def start_asleep(self, agent: Agent, chan: WaitChannel) -> None:
        """Before the run: ``agent`` starts asleep on ``chan`` (the idle disk).

        It is no choice until ``wakeup(chan)``; its body starts when it first
        gets the baton.
        """
        self._block(agent, chan)

    async def run(self, bodies: Sequence[Body]) -> None:
        """Run one execution: ``bodies[i]`` is agent i's coroutine function."""
        raise NotImplementedError

    # -- the three ways to give the baton away ------------------------------

    async def point(self) -> None:
        """A schedule point: let the strategy pick who runs next."""
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
        # _pick, inlined: this is the hottest path of an execution.
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
        await self._switch(cur, self.agents[chosen])

    async def sleep(self, chan: WaitChannel) -> None:
        """Block the current agent on ``chan`` until ``wakeup(chan)``."""
        nxt = self._next_after_sleep(chan)
        cur = self.current
        assert cur is not None
        await self._switch(cur, nxt)

    # What a sleep decides, shared by the drivers' own ``sleep`` (which switches inline).

    def _next_after_sleep(self, chan: WaitChannel) -> Agent:
        """Block the current agent on ``chan`` and pick the agent to switch to."""
        if self.over:
            raise Abort()
        cur = self.current
        assert cur is not None
        self._block(cur, chan)
        nxt = self._choose(cur)
        if nxt is None:
            self._stuck()
            raise Abort()
        return nxt

    def wakeup(self, chan: WaitChannel) -> None:
        """Make every agent sleeping on ``chan`` runnable.  Not a schedule point."""
        sleepers = self._asleep.pop(chan, None)
        if sleepers is None:
            return  # nobody sleeps on it: the common case, at every release
        mask = self._mask
        for a in sleepers:
            a.chan = None
            a.state = RUNNABLE
            mask |= 1 << a.aid
        self._mask = mask
        self.runnable = _RUNNABLE_OF.get(mask) or _runnable_of(mask)

    def abort(self, result: str, detail: str) -> NoReturn:
        """End the execution as ``result`` from inside the running agent, and unwind it."""
        self._end(Outcome(result), detail)
        raise Abort()

    def _finished(self, done: Agent) -> None:
        """``done``'s body returned: it is DONE, and the baton goes on."""
        done.state = DONE
        self._mask &= ~(1 << done.aid)
        self.runnable = _runnable_of(self._mask)
        if not self.over:
            self._pass_on(done)

    def _pass_on(self, done: Agent) -> None:
        try:
            nxt = self._choose(done)
        except Abort:
            return  # the strategy pruned the execution, or failed; _end released the agents
        if nxt is None:
            self._stuck()
            return
        self._give(nxt)

    # -- how an agent's body ended -------------------------------------------

    def _no_point(self, agent: Agent, exc: NoSchedulePoint) -> None:
        """The watchdog stopped ``agent``: it ran too long without a schedule point."""
        if not self.over:
            self.stalled = True
            self.blame = [agent.aid]
            self._end(Outcome.STARVATION, str(exc))

    def _crashed(self, agent: Agent, exc: Exception) -> None:
        """The variant or kernel code under test raised in ``agent``."""
        if not self.over:
            self.blame = [agent.aid]
            self.crash_exc = exc
            self._end(Outcome.CRASH, f"{agent.name} raised {type(exc).__name__}: {exc}")

    def _interrupted(self, agent: Agent) -> None:
        """vmemu itself is going down (Ctrl-C, an internal error) while ``agent`` ran:
        release every parked agent so that the driver can unwind instead of hanging."""
        if not self.over:
            self._end(Outcome.INTERRUPTED, f"{agent.name} was interrupted")

    def _foreign(self, agent: Agent, detail: str) -> None:
        """``agent`` awaited something the scheduler does not control."""
        if not self.over:
            self.stalled = True
            self.blame = [agent.aid]
            self._end(Outcome.STARVATION, f"{agent.name} awaited something outside the "
                      f"emulator{detail} (an await the scheduler does not control)")

    # -- decisions -----------------------------------------------------------

    def _block(self, agent: Agent, chan: WaitChannel) -> None:
        agent.state = BLOCKED
        agent.chan = chan
        sleepers = self._asleep.get(chan)
        if sleepers is None:
            self._asleep[chan] = [agent]
        else:
            sleepers.append(agent)
        self._mask = mask = self._mask & ~(1 << agent.aid)
        self.runnable = _RUNNABLE_OF.get(mask) or _runnable_of(mask)

    def _pick(self, runnable: tuple[int, ...], cur: Agent | None) -> Agent:
        try:
            chosen = self._choose_of(runnable, cur.aid if cur is not None else -1)
        except Exception as exc:
            self._fail(exc)
        if chosen not in runnable:
            if cur is not None:
                self._refuse(chosen, runnable)
            if chosen != PRUNE:
                self._refuse(chosen, runnable)
            chosen = runnable[0]  # the first decision is never redundant
        self._decided(chosen)
        if self.on_decision is not None:
            self.on_decision(self.step, runnable, chosen)
        return self.agents[chosen]

    def _refuse(self, chosen: int, runnable: tuple[int, ...]) -> NoReturn:
        """The strategy chose no runnable agent: end the execution."""
        if chosen != PRUNE:
            self._fail(InternalError(
                f"the {self.strategy.name} strategy chose agent {chosen}, which cannot run "
                f"(runnable {list(runnable)})"))
        # The strategy knows every continuation is equivalent to one it already
        # explored (a sleep-set-blocked path): stop here.
        self._end(Outcome.PRUNED, "")
        raise Abort()

    def _choose(self, cur: Agent | None) -> Agent | None:
        runnable = self.runnable
        if not runnable:
            return None
        if len(runnable) == 1:
            only = self.agents[runnable[0]]
            if self.consult_single and cur is not None:
                self._single(only.aid)
            return only
        return self._pick(runnable, cur)

    def _single(self, only: int) -> None:
        """Let a pruning strategy abandon a path whose only continuation (agent ``only``)
        is redundant."""
        try:
            answer = self.strategy.single(only)
        except Exception as exc:
            self._fail(exc)
        if answer == PRUNE:
            self._end(Outcome.PRUNED, "")
            raise Abort()

    def _stuck(self) -> None:
        """No agent can run: the execution is over, or deadlocked."""
        waiting = [a for a in self.agents if a.state == BLOCKED and not a.daemon]
        if not waiting:
            self._end(Outcome.OK, "")
            return
        cycle = self.wait_cycle()
        if cycle:
            self.blame = [a for a, _ in cycle]
            text = "; ".join(
                f"{self.agents[a].name} waits for {chan.wait_name()}" for a, chan in cycle
            )
            self._end(Outcome.DEADLOCK, f"wait-for cycle: {text}")
        else:
            self.blame = [a.aid for a in waiting]
            text = "; ".join(
                f"{a.name} waits for {a.chan.wait_name() if a.chan else '?'}" for a in waiting
            )
            self._end(Outcome.DEADLOCK, f"no agent can run: {text}")

    def wait_cycle(self) -> list[tuple[int, WaitChannel]]:
        """Return a wait-for cycle among blocked agents as (agent, channel) pairs."""
        edges: dict[int, list[int]] = {}
        for a in self.agents:
            if a.state == BLOCKED and a.chan is not None:
                edges[a.aid] = [h for h in a.chan.wait_holders() if h != a.aid]
        # Depth-first search in agent order: deterministic.
        for start in sorted(edges):
            path: list[int] = [start]
            seen = {start}
            found = self._dfs(start, edges, path, seen, start)
            if found:
                return [(aid, self.agents[aid].chan) for aid in found]  # type: ignore[misc]
        return []

    def _dfs(
        self, node: int, edges: dict[int, list[int]], path: list[int], seen: set[int], start: int
    ) -> list[int] | None:
        for nxt in edges.get(node, ()):
            if nxt == start:
                return list(path)
            if nxt in seen or nxt not in edges:
                continue
            seen.add(nxt)
            path.append(nxt)
            found = self._dfs(nxt, edges, path, seen, start)
            if found:
                return found
            path.pop()
        return None

    # -- ending ----------------------------------------------------------------

    def _fail(self, exc: Exception) -> NoReturn:
        """Something outside the variant failed: end the execution, blame no agent."""
        self.error = exc
        self._end(Outcome.ERROR, f"{type(exc).__name__}: {exc}")
        raise Abort()

    def abandon(self, exc: InternalError) -> None:
        """End an execution in which no agent holds the baton (the watchdog's last resort).

        Called when no agent is running: every parked agent, the current one
        included, is released with ``Abort``.
        """
        if self.over:
            return
        self.current = None  # nobody runs: _end must release every parked agent
        self.cpu = -1
        self.error = exc
        self._end(Outcome.ERROR, str(exc))

    def holder_running(self) -> bool:
        """Whether an agent holds the baton and is running (or awaiting) rather than parked."""
        cur = self.current
        return cur is not None and not cur.parked and cur.state != DONE

    def stall_exception(self, seconds: float) -> BaseException | None:
        """What the watchdog's signal raises in the main thread, where it lands now,
        after ``seconds`` without a step.

        ``NoSchedulePoint`` when the current agent's own code is running there
        (a loop with no schedule point); None anywhere else, by default.
        """
        return None

    def _no_point_error(self, seconds: float) -> NoSchedulePoint:
        cur = self.current
        name = cur.name if cur is not None else "?"
        return NoSchedulePoint(
            f"{name} ran {seconds:g}s without reaching a schedule point "
            "(a loop that never calls into the kernel?)")

    def _end(self, result: Outcome, detail: str) -> None:
        """Finish the execution: every agent but the current one is done, and the
        parked ones are released with ``Abort`` (by the driver)."""
        if self.over:
            return
        self.over = True
        self.outcome = result
        self.detail = detail
        self.states_at_end = [a.state for a in self.agents]
        cur = self.current
        for a in self.agents:
            if a is not cur and a.state != DONE and self._started(a):
                a.state = DONE
                if a.parked:
                    a.parked = False
                    self._release(a)
        self._ended()

    # -- the driver's part -------------------------------------------------------

    def _started(self, agent: Agent) -> bool:
        """Whether ``agent`` exists for the driver yet (it must be released at the end)."""
        raise NotImplementedError

    def _release(self, agent: Agent) -> None:
        """Make parked ``agent`` raise ``Abort`` (now, or once the running code yields)."""
        raise NotImplementedError

    def _ended(self) -> None:
        """The execution just ended (the driver may wake the harness)."""

    def _give(self, agent: Agent) -> None:
        """Hand the baton to parked ``agent``, from outside any agent's code."""
        raise NotImplementedError

    def _switch(self, cur: Agent, nxt: Agent) -> Awaitable[None]:
        """Hand the baton from the running ``cur`` to parked ``nxt``; the awaitable
        returns when ``cur`` has it again."""
        raise NotImplementedError
