"""The controlled scheduler: determinism, replay, deadlock, starvation and crash outcomes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from emulator.kern.kern_return import KernReturn
from emulator.machine import Machine, Variant
from emulator.sched.strategies import RandomStrategy, ReplayStrategy
from emulator.variants import load_variant
from workloads import build_workload

ROOT = Path(__file__).resolve().parent.parent


def machine(name: str = "writers_vs_msync", seed: int = 0, profile: str | None = None,
            strategy: Any = None, **kw: Any) -> Machine:
    spec = build_workload(name, {}, seed, profile)
    return Machine(spec, load_variant("reference"), strategy or RandomStrategy(), **kw)


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
    for profile in ("manpage", "freebsd5", "modern"):
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
    assert "expected agent 7 as recorded, observed runnable [0, 1, 2]" in got["message"]


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
