"""The controlled scheduler: one agent runs between two schedule points.

Design
------
Every CPU (and the disk that completes I/O) is a Trio task, an *agent*.  At any
moment exactly one agent holds the baton; every other agent is parked inside
``trio.lowlevel.wait_task_rescheduled``.  An agent gives the baton away only at
a *schedule point* (``point``), when it goes to sleep on a wait channel
(``sleep``), or when it finishes.  There the strategy picks the next agent from
the runnable ones; if it picks the current agent, nothing touches Trio at all,
otherwise the baton moves with ``trio.lowlevel.reschedule``.  Trio therefore
never has two of our tasks runnable at once and never chooses an order
(PLATFORM.md: Trio's own run-queue order is not deterministic).

Blocking is modelled here, never with Trio primitives: an agent that must wait
for a lock, a busy page or an I/O is marked BLOCKED on a *channel* (any object
with ``wait_holders()`` and ``wait_name()``), and ``wakeup(channel)`` makes its
sleepers runnable again.  Like the kernel's sleep/wakeup, a woken agent
re-checks its condition itself.

When no agent can run:
  * if every non-daemon agent is done, the execution is over (``ok``);
  * otherwise it is a deadlock, reported with its wait-for cycle.
A step bound turns a livelock or an endless rescan into ``starvation``.

Ending an execution (normally or not) reschedules every parked agent with an
``Abort`` exception; kernel code never catches it, so nothing runs after the
end.  The harness's main task is parked too and is woken last.

The strategy is code outside the variant: when it raises at a decision (a
replay that cannot follow its recording, a search asked for more after it is
exhausted, a choice of an agent that cannot run), the execution ends at once
with no agent blamed, and ``error`` holds the exception for the harness to
raise once every agent has unwound.  The watchdog ends an execution in which
no agent holds the baton the same way.

Prior art: Coyote's and Shuttle's "one runnable task at a time" controlled
schedulers, and trio's own ``_parking_lot`` for the handoff idiom.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import outcome
import trio

from emulator.errors import InternalError
from emulator.kern.sched import WaitChannel
from emulator.sched.outcome import Outcome
from emulator.sched.strategies import Strategy
from emulator.sched.watchdog import NoSchedulePoint, watch

PRUNE = -2  # a strategy's answer meaning "abandon this execution: it is redundant"


class Abort(BaseException):
    """Raised inside an agent whose execution has ended; never caught by kernel code."""


class AgentState(enum.IntEnum):
    RUNNABLE = 0
    BLOCKED = 1
    DONE = 2


class Agent:
    """One schedulable actor: a CPU, or a daemon such as the disk."""

    __slots__ = ("aid", "chan", "daemon", "name", "parked", "scope", "state", "task")

    def __init__(self, aid: int, name: str, daemon: bool) -> None:
        self.aid = aid
        self.name = name
        self.daemon = daemon
        self.state = AgentState.RUNNABLE
        self.chan: WaitChannel | None = None
        self.task: trio.lowlevel.Task | None = None
        self.scope: trio.CancelScope | None = None  # the watchdog cancels a foreign await
        # Waiting in the scheduler with no reschedule pending: the one state in
        # which the scheduler may (and, to end the execution, must) wake it.
        self.parked = False


def _no_abort(_: Any) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED


class Scheduler:
    """Run one execution's agents one at a time, in the order a strategy picks.

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

    def __init__(self, strategy: Strategy, max_steps: int, stall_seconds: float = 2.0) -> None:
        self.strategy = strategy
        self.consult_single = strategy.wants_single
        self.max_steps = max_steps
        self.stall_seconds = stall_seconds
        self.agents: list[Agent] = []
        self.step = 0
        self.current: Agent | None = None
        self.over = False
        self.outcome = Outcome.OK
        self.detail = ""
        self.blame: list[int] = []  # agents named by a deadlock or crash
        self.decisions: list[int] = []
        self.on_decision: Callable[[int, Sequence[int], int], None] | None = None
        self.crash_exc: BaseException | None = None
        self.error: Exception | None = None
        self.stalled = False  # set by the watchdog before it cancels a stuck agent
        self.states_at_end: list[AgentState] = []  # agent states when the execution ended
        self._main: trio.lowlevel.Task | None = None
        self._main_waiting = False  # the main task is parked until the execution ends
        self._parked = 0

    # -- setup -------------------------------------------------------------

    def add_agent(self, name: str, daemon: bool = False) -> Agent:
        agent = Agent(len(self.agents), name, daemon)
        self.agents.append(agent)
        return agent

    async def run(self, bodies: Sequence[Callable[[], Any]]) -> None:
        """Run one execution: ``bodies[i]`` is agent i's coroutine function."""
        assert len(bodies) == len(self.agents)
        self._main = trio.lowlevel.current_task()
        watch(self, self.stall_seconds)
        async with trio.open_nursery() as nursery:
            for agent, body in zip(self.agents, bodies, strict=True):
                nursery.start_soon(self._agent_main, agent, body)
            # Wait until every agent is parked, then hand out the first baton.
            self._main_waiting = True
            await trio.lowlevel.wait_task_rescheduled(_no_abort)
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
            await trio.lowlevel.wait_task_rescheduled(_no_abort)

    async def _agent_main(self, agent: Agent, body: Callable[[], Any]) -> None:
        agent.task = trio.lowlevel.current_task()
        if self.over:
            return  # abandoned before this agent ever parked
        self._parked += 1
        if self._parked == len(self.agents):
            self._wake_main()
        try:
            agent.parked = True
            await trio.lowlevel.wait_task_rescheduled(_no_abort)
            with trio.CancelScope() as agent.scope:
                await body()
        except Abort:
            return
        except NoSchedulePoint as exc:
            if not self.over:
                self.stalled = True
                self.blame = [agent.aid]
                self._end(Outcome.STARVATION, str(exc))
            return
        except Exception as exc:  # the variant or kernel code under test crashed
            if self.over:
                return
            self.blame = [agent.aid]
            self.crash_exc = exc
            self._end(Outcome.CRASH, f"{agent.name} raised {type(exc).__name__}: {exc}")
            return
        except BaseException:
            # vmemu itself is going down (Ctrl-C, an internal error): release
            # every parked agent so the nursery can unwind instead of hanging.
            if not self.over:
                self._end(Outcome.INTERRUPTED, f"{agent.name} was interrupted")
            raise
        if agent.scope.cancelled_caught:
            if not self.over:
                self.blame = [agent.aid]
                self._end(Outcome.STARVATION, f"{agent.name} awaited something outside the "
                          "emulator and never came back (an await the scheduler does not control)")
            return
        agent.state = AgentState.DONE
        if self.over:
            return
        self._pass_on(agent)

    # -- the three ways to give the baton away ------------------------------

    async def point(self) -> None:
        """A schedule point: let the strategy pick who runs next."""
        if self.over:
            raise Abort()
        self.step += 1
        if self.step > self.max_steps:
            self._end(Outcome.STARVATION, f"no end after {self.max_steps} steps")
            raise Abort()
        cur = self.current
        assert cur is not None
        runnable = [a for a in self.agents if a.state == AgentState.RUNNABLE]
        if len(runnable) == 1:
            if self.consult_single:
                self._single(runnable[0])
            return
        nxt = self._pick(runnable, cur)
        if nxt is not cur:
            await self._switch(cur, nxt)

    async def sleep(self, chan: WaitChannel) -> None:
        """Block the current agent on ``chan`` until ``wakeup(chan)``."""
        if self.over:
            raise Abort()
        cur = self.current
        assert cur is not None
        cur.state = AgentState.BLOCKED
        cur.chan = chan
        nxt = self._choose(cur)
        if nxt is None:
            self._stuck()
            raise Abort()
        await self._switch(cur, nxt)

    def wakeup(self, chan: WaitChannel) -> None:
        """Make every agent sleeping on ``chan`` runnable.  Not a schedule point."""
        for a in self.agents:
            if a.chan is chan:
                a.chan = None
                a.state = AgentState.RUNNABLE

    def abort(self, result: str, detail: str) -> NoReturn:
        """End the execution as ``result`` from inside the running agent, and unwind it."""
        self._end(Outcome(result), detail)
        raise Abort()

    def _pass_on(self, done: Agent) -> None:
        try:
            nxt = self._choose(done)
        except Abort:
            return  # the strategy pruned the execution; _end woke the harness
        if nxt is None:
            self._stuck()
            return
        self._give(nxt)

    # -- internals -----------------------------------------------------------

    def _pick(self, runnable: list[Agent], cur: Agent | None) -> Agent:
        aids = [a.aid for a in runnable]
        try:
            chosen = self.strategy.choose(aids, cur.aid if cur is not None else -1)
        except Exception as exc:
            self._fail(exc)
        if chosen not in aids:
            if chosen != PRUNE:
                self._fail(InternalError(
                    f"the {self.strategy.name} strategy chose agent {chosen}, which cannot run "
                    f"(runnable {aids})"))
            if cur is not None:
                # The strategy knows every continuation is equivalent to one it
                # already explored (a sleep-set-blocked path): stop here.
                self._end(Outcome.PRUNED, "")
                raise Abort()
            chosen = aids[0]  # the first decision is never redundant
        self.decisions.append(chosen)
        if self.on_decision is not None:
            self.on_decision(self.step, aids, chosen)
        return self.agents[chosen]

    def _choose(self, cur: Agent | None) -> Agent | None:
        runnable = [a for a in self.agents if a.state == AgentState.RUNNABLE]
        if not runnable:
            return None
        if len(runnable) == 1:
            if self.consult_single and cur is not None:
                self._single(runnable[0])
            return runnable[0]
        return self._pick(runnable, cur)

    def _single(self, only: Agent) -> None:
        """Let a pruning strategy abandon a path whose only continuation is redundant."""
        try:
            answer = self.strategy.single(only.aid)
        except Exception as exc:
            self._fail(exc)
        if answer == PRUNE:
            self._end(Outcome.PRUNED, "")
            raise Abort()

    def _give(self, agent: Agent) -> None:
        """Hand the baton to a parked agent."""
        self.current = agent
        agent.parked = False
        assert agent.task is not None
        trio.lowlevel.reschedule(agent.task)

    async def _switch(self, cur: Agent, nxt: Agent) -> None:
        self.current = nxt
        nxt.parked = False
        assert nxt.task is not None
        trio.lowlevel.reschedule(nxt.task)
        cur.parked = True
        await trio.lowlevel.wait_task_rescheduled(_no_abort)

    def _stuck(self) -> None:
        """No agent can run: the execution is over, or deadlocked."""
        waiting = [a for a in self.agents if a.state == AgentState.BLOCKED and not a.daemon]
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
            if a.state == AgentState.BLOCKED and a.chan is not None:
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

    def _fail(self, exc: Exception) -> NoReturn:
        """Something outside the variant failed: end the execution, blame no agent."""
        self.error = exc
        self._end(Outcome.ERROR, f"{type(exc).__name__}: {exc}")
        raise Abort()

    def abandon(self, exc: InternalError) -> None:
        """End an execution in which no agent holds the baton (the watchdog's last resort).

        Called from Trio's loop, so no task is running: every parked agent,
        the current one included, is released with ``Abort``.
        """
        if self.over:
            return
        self.current = None  # nobody runs: _end must release every parked agent
        self.error = exc
        self._end(Outcome.ERROR, str(exc))

    def holder_running(self) -> bool:
        """Whether an agent holds the baton and is running (or awaiting) rather than parked."""
        cur = self.current
        return cur is not None and not cur.parked and cur.state != AgentState.DONE

    def _wake_main(self) -> None:
        if self._main_waiting:
            self._main_waiting = False
            assert self._main is not None
            trio.lowlevel.reschedule(self._main)

    def _end(self, result: Outcome, detail: str) -> None:
        """Finish the execution: abort every parked agent, wake the harness."""
        if self.over:
            return
        self.over = True
        self.outcome = result
        self.detail = detail
        self.states_at_end = [a.state for a in self.agents]
        cur = self.current
        for a in self.agents:
            if a is not cur and a.state != AgentState.DONE and a.task is not None:
                a.state = AgentState.DONE
                if a.parked:
                    a.parked = False
                    trio.lowlevel.reschedule(a.task, outcome.Error(Abort()))
        # The main task may be the caller (a strategy failing at the first
        # decision): it is woken only when it is parked.
        self._wake_main()
