"""The controlled scheduler: its primitives, determinism, replay, deadlock, starvation, crash.

The first section drives a bare Scheduler with hand-written agents (no kernel):
``run_agents(*bodies)`` runs one execution whose agent i is ``bodies[i](sched)``
and returns the Scheduler.  ``Ordered`` runs the first runnable agent of its
``order`` list, and a body may change that list to hand the baton over at its
next schedule point, so each interleaving is exact.  The later sections run
whole machines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from emulator.kern.kern_return import KernReturn
from emulator.kern.profile import PROFILES
from emulator.machine import Machine
from emulator.sched.scheduler import AgentState, Scheduler
from emulator.sched.strategies import RandomStrategy, ReplayStrategy, Strategy
from emulator.variants import Variant, load_variant
from workloads import build_workload

ROOT = Path(__file__).resolve().parents[2]


def machine(name: str = "writers_vs_msync", seed: int = 0, profile: str | None = None,
            strategy: Any = None, **kw: Any) -> Machine:
    spec = build_workload(name, {}, seed, profile)
    return Machine(spec, load_variant("reference"), strategy or RandomStrategy(), **kw)


# --- the primitives, on a bare scheduler ------------------------------------------------------

Body = Callable[[Scheduler], Awaitable[None]]


class Chan:
    """A wait channel whose sleepers wait for ``holders``."""

    def __init__(self, name: str, holders: Iterable[int] = ()) -> None:
        self.name = name
        self.holders = list(holders)

    def wait_holders(self) -> list[int]:
        return list(self.holders)

    def wait_name(self) -> str:
        return self.name


class Ordered(Strategy):
    """Run the first runnable agent of ``order``; the lowest runnable one if none is."""

    name = "ordered"

    def __init__(self, *order: int) -> None:
        self.order = list(order)

    def choose(self, runnable: Sequence[int], current: int) -> int:
        for aid in self.order:
            if aid in runnable:
                return aid
        return runnable[0]


async def run_agents(*bodies: Body, strategy: Strategy | None = None, max_steps: int = 1000,
                     daemons: Iterable[int] = ()) -> Scheduler:
    """Run one execution of ``bodies`` (agent i: ``cpu<i>``, or ``daemon<i>``)."""
    sched = Scheduler(strategy or Ordered(), max_steps)
    daemon_set = set(daemons)
    for i in range(len(bodies)):
        sched.add_agent(f"daemon{i}" if i in daemon_set else f"cpu{i}", daemon=i in daemon_set)

    def bind(body: Body) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await body(sched)

        return run

    await sched.run([bind(b) for b in bodies])
    return sched


async def test_a_point_hands_the_baton_to_the_agent_the_strategy_picks() -> None:
    log: list[str] = []
    order = Ordered(0, 1)

    async def first(sched: Scheduler) -> None:
        log.append("cpu0 before")
        order.order = [1, 0]
        await sched.point()
        log.append("cpu0 after")

    async def second(sched: Scheduler) -> None:
        log.append("cpu1")

    sched = await run_agents(first, second, strategy=order)
    assert sched.outcome == "ok"
    assert log == ["cpu0 before", "cpu1", "cpu0 after"]


async def test_a_point_keeps_running_the_current_agent_when_the_strategy_picks_it() -> None:
    log: list[str] = []

    async def body(sched: Scheduler) -> None:
        me = sched.current.name  # type: ignore[union-attr]
        for i in range(2):
            log.append(f"{me} {i}")
            await sched.point()

    await run_agents(body, body, strategy=Ordered(0, 1))
    assert log == ["cpu0 0", "cpu0 1", "cpu1 0", "cpu1 1"]


async def test_every_point_counts_one_step_even_with_one_runnable_agent() -> None:
    async def three_points(sched: Scheduler) -> None:
        for _ in range(3):
            await sched.point()

    sched = await run_agents(three_points)
    assert sched.step == 3
    assert sched.decisions == []  # one runnable agent: nothing to decide


async def test_decisions_record_the_agent_chosen_among_two_or_more() -> None:
    async def two_points(sched: Scheduler) -> None:
        await sched.point()
        await sched.point()

    sched = await run_agents(two_points, two_points, strategy=Ordered(1, 0))
    # The first baton, then cpu1's two points with cpu0 runnable; cpu0 then runs alone.
    assert sched.decisions == [1, 1, 1]


async def test_a_sleeper_runs_again_only_after_a_wakeup_on_its_channel() -> None:
    log: list[str] = []
    chan = Chan("the test channel")

    async def sleeper(sched: Scheduler) -> None:
        log.append("cpu0 sleeps")
        await sched.sleep(chan)
        log.append("cpu0 woke")

    async def waker(sched: Scheduler) -> None:
        log.append("cpu1 runs")
        await sched.point()  # cpu0 is asleep: cpu1 runs on although the strategy prefers cpu0
        log.append("cpu1 wakes cpu0")
        sched.wakeup(chan)
        log.append("cpu1 goes on")  # a wakeup is not a schedule point
        await sched.point()
        log.append("cpu1 done")

    sched = await run_agents(sleeper, waker, strategy=Ordered(0, 1))
    assert sched.outcome == "ok"
    assert log == ["cpu0 sleeps", "cpu1 runs", "cpu1 wakes cpu0", "cpu1 goes on",
                   "cpu0 woke", "cpu1 done"]


async def test_a_wakeup_makes_every_sleeper_on_the_channel_runnable() -> None:
    chan = Chan("the test channel")
    woke: list[int] = []
    states: list[AgentState] = []

    async def sleeper(sched: Scheduler) -> None:
        await sched.sleep(chan)
        woke.append(sched.current.aid)  # type: ignore[union-attr]

    async def waker(sched: Scheduler) -> None:
        sched.wakeup(chan)
        states.extend(a.state for a in sched.agents)

    sched = await run_agents(sleeper, sleeper, waker, strategy=Ordered(0, 1, 2))
    assert sched.outcome == "ok"
    assert states[:2] == [AgentState.RUNNABLE, AgentState.RUNNABLE]
    assert woke == [0, 1]


async def test_a_wakeup_on_another_channel_leaves_the_sleeper_blocked() -> None:
    async def sleeper(sched: Scheduler) -> None:
        await sched.sleep(Chan("channel a"))

    async def waker(sched: Scheduler) -> None:
        sched.wakeup(Chan("channel b"))

    sched = await run_agents(sleeper, waker)
    assert sched.outcome == "deadlock"
    assert sched.detail == "no agent can run: cpu0 waits for channel a"


async def test_the_execution_is_ok_when_only_daemons_are_left_asleep() -> None:
    async def cpu(sched: Scheduler) -> None:
        await sched.point()

    async def daemon(sched: Scheduler) -> None:
        await sched.sleep(Chan("work for the daemon"))

    sched = await run_agents(cpu, daemon, daemons=[1])
    assert sched.outcome == "ok"
    assert sched.detail == ""


async def test_a_runnable_daemon_finishes_its_bounded_passes_before_the_execution_ends() -> None:
    """The background agents' contract (kern/daemons.py): a daemon that is runnable when
    the CPUs are done still runs; its passes are bounded, so the execution ends."""
    passes: list[int] = []

    async def cpu(sched: Scheduler) -> None:
        await sched.point()

    async def daemon(sched: Scheduler) -> None:
        for i in range(3):
            await sched.point()
            passes.append(i)

    sched = await run_agents(cpu, daemon, daemons=[1])
    assert sched.outcome == "ok"
    assert passes == [0, 1, 2]
    assert sched.states_at_end == [AgentState.DONE, AgentState.DONE]


async def test_a_wait_for_cycle_is_a_deadlock_naming_each_wait() -> None:
    async def body(sched: Scheduler) -> None:
        me = sched.current.aid  # type: ignore[union-attr]
        other = 1 - me
        await sched.sleep(Chan(f"lock held by cpu{other}", holders=[other]))

    sched = await run_agents(body, body)
    assert sched.outcome == "deadlock"
    assert sched.detail == ("wait-for cycle: cpu0 waits for lock held by cpu1; "
                            "cpu1 waits for lock held by cpu0")
    assert sched.blame == [0, 1]


async def test_the_wait_for_cycle_leaves_out_agents_that_only_wait_on_it() -> None:
    holders = {0: [1], 1: [2], 2: [1]}  # cpu0 waits for the cycle cpu1 <-> cpu2

    async def body(sched: Scheduler) -> None:
        me = sched.current.aid  # type: ignore[union-attr]
        await sched.sleep(Chan(f"chan{me}", holders=holders[me]))

    sched = await run_agents(body, body, body)
    assert sched.outcome == "deadlock"
    assert sched.detail == "wait-for cycle: cpu1 waits for chan1; cpu2 waits for chan2"
    assert sched.blame == [1, 2]


async def test_blocked_agents_without_a_cycle_are_a_deadlock_naming_every_sleeper() -> None:
    async def body(sched: Scheduler) -> None:
        me = sched.current.aid  # type: ignore[union-attr]
        await sched.sleep(Chan(f"chan{me}"))  # nobody holds it: no wait-for edge

    sched = await run_agents(body, body)
    assert sched.outcome == "deadlock"
    assert sched.detail == "no agent can run: cpu0 waits for chan0; cpu1 waits for chan1"
    assert sched.blame == [0, 1]


async def test_the_step_bound_turns_an_endless_loop_into_starvation() -> None:
    async def spin(sched: Scheduler) -> None:
        while True:
            await sched.point()

    sched = await run_agents(spin, max_steps=50)
    assert sched.outcome == "starvation"
    assert sched.detail == "no end after 50 steps"
    assert sched.step == 51


async def test_no_agent_runs_after_the_execution_ended() -> None:
    log: list[str] = []
    order = Ordered(1, 2, 0)

    async def spin(sched: Scheduler) -> None:
        while True:
            await sched.point()

    async def sleeper(sched: Scheduler) -> None:
        log.append("cpu1 sleeps")
        await sched.sleep(Chan("never woken"))
        log.append("cpu1 after the end")

    async def runner(sched: Scheduler) -> None:
        log.append("cpu2 runs")
        order.order = [0]
        await sched.point()  # cpu0 now spins past the step bound
        log.append("cpu2 after the end")

    sched = await run_agents(spin, sleeper, runner, max_steps=20, strategy=order)
    assert sched.outcome == "starvation"
    assert log == ["cpu1 sleeps", "cpu2 runs"]


async def test_an_agent_raising_ends_the_execution_as_a_crash_blaming_it() -> None:
    async def fine(sched: Scheduler) -> None:
        await sched.point()

    async def raising(sched: Scheduler) -> None:
        await sched.point()
        raise ValueError("boom")

    sched = await run_agents(fine, raising, strategy=Ordered(1, 0))
    assert sched.outcome == "crash"
    assert sched.detail == "cpu1 raised ValueError: boom"
    assert sched.blame == [1]
    assert isinstance(sched.crash_exc, ValueError)


# --- determinism ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 7, 31])
async def test_same_seed_gives_the_same_decisions_and_results_in_two_machines(seed: int) -> None:
    a = await machine().execute(seed)
    b = await machine().execute(seed)
    assert a.outcome == b.outcome == "ok"
    assert len(a.decisions) > 10
    assert a.decisions == b.decisions
    assert a.results == b.results
    assert a.steps == b.steps


async def test_one_machine_repeats_an_execution_exactly() -> None:
    m = machine(record=True)
    first = await m.execute(5)
    await m.execute(6)
    again = await m.execute(5)
    assert first.decisions == again.decisions
    assert first.events == again.events
    assert first.results == again.results


async def test_replaying_the_decisions_reproduces_the_execution() -> None:
    original = await machine(record=True).execute(11)
    replayed = await machine(strategy=ReplayStrategy(original.decisions),
                             record=True).execute(0)
    assert replayed.decisions == original.decisions
    assert replayed.events == original.events
    assert replayed.results == original.results


async def test_different_seeds_give_different_decisions() -> None:
    m = machine()
    runs = [(await m.execute(seed)).decisions for seed in range(5)]
    assert len({tuple(d) for d in runs}) > 1


SCRIPT = """
import json, trio
from emulator.machine import Machine
from emulator.sched.strategies import RandomStrategy
from emulator.variants import load_variant
from workloads import build_workload

async def main():
    out = []
    for seed in (7, 8):
        spec = build_workload("writers_vs_msync", {}, seed, None)
        m = Machine(spec, load_variant("reference"), RandomStrategy(), record=True)
        ex = await m.execute(seed)
        out.append({"seed": seed, "outcome": ex.outcome, "decisions": ex.decisions,
                    "results": ex.results, "steps": ex.steps,
                    "events": [list(e[:3]) + [list(map(str, e[3]))] for e in ex.events],
                    "stored": m.kernel.pagers["f"].stored})
    print(json.dumps(out, sort_keys=True))

trio.run(main)
"""


def test_executions_are_identical_across_processes_with_different_hash_seeds(
    tmp_path: Path,
) -> None:
    script = tmp_path / "determinism.py"
    script.write_text(SCRIPT)
    outputs = []
    for hashseed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, str(script)], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1]
    data = json.loads(outputs[0])
    assert [d["seed"] for d in data] == [7, 8]
    assert data[0]["decisions"] != data[1]["decisions"]


# --- deadlock --------------------------------------------------------------------------------


async def object_then_map_clean(vm_map: Any, start: int, end: int, syncio: bool,
                                invalidate: bool) -> KernReturn:
    """Lock order inverted on purpose: the file's object lock, then the map lock."""
    obj = vm_map.k.files["f"]
    await obj.lock.lock()
    await vm_map.lock.xlock()
    await vm_map.lock.unlock()
    await obj.lock.unlock()
    return KernReturn.SUCCESS


DEADLOCK_SPEC: dict[str, Any] = {
    "files": {"f": {"pages": 2}},
    "processes": {"p0": {"mappings": [{"addr": "0x10000", "pages": 2, "file": "f"}]}},
    "cpus": [
        {"process": "p0", "program": [["clean", "0x10000", "0x12000", True, False]]},
        {"process": "p0", "program": [["store", "0x10000"], ["store", "0x11000"]]},
    ],
}


async def test_a_lock_order_inversion_is_reported_as_a_deadlock(run_spec: Any) -> None:
    variant = Variant("object_then_map", object_then_map_clean)
    outcomes = []
    for seed in range(200):
        ex, _ = await run_spec(DEADLOCK_SPEC, seed=seed, variant=variant, max_steps=1000)
        outcomes.append(ex.outcome)
        if ex.outcome == "deadlock":
            break
    else:
        pytest.fail(f"no deadlock in 200 seeds: {sorted(set(outcomes))}")
    assert set(outcomes) <= {"ok", "deadlock"}
    assert ex.steps < 1000
    assert [v.rule for v in ex.violations] == ["deadlock"]
    v = ex.violations[0]
    assert v.message.startswith("wait-for cycle")
    for word in ("cpu0", "cpu1", "map lock of p0", "object lock of f"):
        assert word in v.message
    assert sorted(v.cpus) == [0, 1]
    assert ex.results["cpu0"] == []  # the clean never returned


async def test_a_deadlock_replays_from_its_decisions(run_spec: Any) -> None:
    variant = Variant("object_then_map", object_then_map_clean)
    for seed in range(200):
        ex, _ = await run_spec(DEADLOCK_SPEC, seed=seed, variant=variant, max_steps=1000)
        if ex.outcome == "deadlock":
            break
    again, _ = await run_spec(DEADLOCK_SPEC, variant=variant,
                              strategy=ReplayStrategy(ex.decisions))
    assert again.outcome == "deadlock"
    assert again.steps == ex.steps
    assert again.violations[0].message == ex.violations[0].message


async def test_the_reference_clean_never_deadlocks_with_the_same_program(run_spec: Any) -> None:
    for profile in PROFILES:
        for seed in range(30):
            ex, _ = await run_spec(DEADLOCK_SPEC, profile, seed=seed)
            assert ex.outcome == "ok", (profile, seed, ex.detail)


# --- starvation and crash ------------------------------------------------------------------


async def spinning_clean(vm_map: Any, start: int, end: int, syncio: bool,
                         invalidate: bool) -> KernReturn:
    while True:
        await vm_map.k.point()


async def raising_clean(vm_map: Any, start: int, end: int, syncio: bool,
                        invalidate: bool) -> KernReturn:
    await vm_map.k.point()
    raise RuntimeError("variant blew up")


async def test_an_endless_loop_is_reported_as_starvation(run_spec: Any) -> None:
    ex, _ = await run_spec(DEADLOCK_SPEC, variant=Variant("spin", spinning_clean),
                           max_steps=500)
    assert ex.outcome == "starvation"
    assert ex.steps == 501
    assert [v.rule for v in ex.violations] == ["starvation"]
    assert "500" in ex.violations[0].message


async def test_a_raising_variant_is_reported_as_a_crash(run_spec: Any) -> None:
    ex, _ = await run_spec(DEADLOCK_SPEC, variant=Variant("raise", raising_clean))
    assert ex.outcome == "crash"
    assert [v.rule for v in ex.violations] == ["crash"]
    message = ex.violations[0].message
    assert "cpu0" in message and "RuntimeError" in message and "variant blew up" in message
    assert ex.violations[0].cpus == [0]


async def test_the_machine_runs_normally_after_a_crash_and_a_starvation() -> None:
    spec = build_workload("writers_vs_msync", {}, 0, None)
    for clean in (raising_clean, spinning_clean):
        m = Machine(spec, Variant("bad", clean), RandomStrategy(), max_steps=500)
        assert (await m.execute(0)).outcome in ("crash", "starvation")
    good = await machine().execute(0)
    assert good.outcome == "ok"


# --- a strategy that fails: the execution ends, no agent is blamed ---------------------------
#
# Each case runs in a fresh interpreter under a timeout: the scheduler's parked tasks
# ignore cancellation, so a regression would hang the process, and must fail the test
# instead of hanging the suite.

FAILING_STRATEGIES = """
import json, sys, trio
from emulator.errors import EmulatorError
from emulator.machine import Machine
from emulator.sched.strategies import RandomStrategy, ReplayStrategy, Strategy
from emulator.variants import load_variant
from workloads import build_workload

class Broken(Strategy):
    name = "broken"
    def __init__(self, at, answer=None):
        self.at, self.answer, self.n = at, answer, 0
    def reset(self, seed):
        self.n = 0
    def choose(self, runnable, current):
        self.n += 1
        if self.n <= self.at:
            return runnable[0]
        if self.answer is None:
            raise ValueError("strategy bug")
        return self.answer

CASES = {
    "replay_first": lambda: ReplayStrategy([7]),
    "replay_later": lambda: ReplayStrategy([0, 0, 0, 7]),
    "bug_first": lambda: Broken(0),
    "bug_later": lambda: Broken(5),
    "not_runnable": lambda: Broken(2, answer=99),
}

async def main():
    out = {}
    for name, make in CASES.items():
        m = Machine(build_workload("two_cleaners", {}, 0, None), load_variant("reference"),
                    make())
        try:
            ex = await m.execute(0)
            out[name] = {"outcome": ex.outcome}
        except EmulatorError as exc:
            out[name] = {"error": type(exc).__name__, "exit_code": exc.exit_code,
                         "message": str(exc)}
        m.strategy = RandomStrategy()
        out[name]["next"] = (await m.execute(1)).outcome
    print(json.dumps(out))

trio.run(main)
"""


@pytest.fixture(scope="module")
def failing_strategies(tmp_path_factory: Any) -> dict[str, dict[str, Any]]:
    script = tmp_path_factory.mktemp("failing") / "failing.py"
    script.write_text(FAILING_STRATEGIES)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(script)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    data: dict[str, dict[str, Any]] = json.loads(proc.stdout)
    return data


@pytest.mark.parametrize(("case", "step"), [("replay_first", 0), ("replay_later", 3)])
def test_a_replay_that_cannot_follow_its_recording_raises_replay_diverged_at_once(
    failing_strategies: dict[str, dict[str, Any]], case: str, step: int
) -> None:
    got = failing_strategies[case]
    assert got["error"] == "ReplayDiverged"
    assert got["exit_code"] == 3
    assert got["message"].startswith(f"replay diverged at step {step}, decision {step}: ")
    assert "recorded cpu 7 is not runnable (runnable [0, 1, 2])" in got["message"]


@pytest.mark.parametrize("case", ["bug_first", "bug_later"])
def test_a_raising_strategy_is_an_internal_error_not_a_crash_of_the_variant(
    failing_strategies: dict[str, dict[str, Any]], case: str
) -> None:
    got = failing_strategies[case]
    assert got["error"] == "InternalError"
    assert got["exit_code"] == 70
    assert "the broken strategy raised ValueError" in got["message"]
    assert "strategy bug" in got["message"]


def test_a_strategy_choosing_an_agent_that_cannot_run_is_an_internal_error(
    failing_strategies: dict[str, dict[str, Any]],
) -> None:
    got = failing_strategies["not_runnable"]
    assert got["error"] == "InternalError"
    assert "chose agent 99, which cannot run (runnable [0, 1, 2])" in got["message"]


def test_the_machine_runs_its_next_execution_after_a_strategy_failure(
    failing_strategies: dict[str, dict[str, Any]],
) -> None:
    assert {got["next"] for got in failing_strategies.values()} == {"ok"}
