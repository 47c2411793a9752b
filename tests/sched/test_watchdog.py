"""A variant that never reaches a schedule point, or awaits something foreign, is stopped.

The watchdog (or, for a foreign await, the direct driver itself) ends such an
execution as ``starvation``; vmemu goes on with the next execution.  An
execution that stalls with no agent running, or loses the baton (the
harness's fault, not the variant's), is abandoned as an internal error.  Every
case runs under both drivers; the stall limit is lowered to keep the tests
fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from emulator.check import all_checkers
from emulator.kern.kern_return import KernReturn
from emulator.machine import Machine
from emulator.sched.strategies import RandomStrategy
from emulator.variants import BUILTIN, Variant
from workloads import build_workload

ROOT = Path(__file__).resolve().parents[2]


async def spins_without_a_point(*args: Any) -> KernReturn:
    n = 0
    while True:  # never calls into the kernel
        n += 1


async def awaits_something_foreign(*args: Any) -> KernReturn:
    await trio.sleep_forever()
    return KernReturn.SUCCESS


def _machine(clean: Any, driver: str) -> Machine:
    spec = build_workload("writers_vs_msync", {}, 0, None)
    machine = Machine(spec, Variant("hang", clean), RandomStrategy(), checkers=all_checkers(),
                      driver=driver)
    machine.stall_seconds = 0.3
    return machine


async def test_a_loop_without_schedule_points_is_reported_as_starvation(driver: str) -> None:
    ex = await _machine(spins_without_a_point, driver).execute(0)
    assert ex.outcome == "starvation"
    (v,) = ex.violations
    assert v.rule == "starvation"
    assert "without reaching a schedule point" in v.message
    assert v.cpus == [0]


async def test_an_await_outside_the_emulator_is_reported_as_starvation(driver: str) -> None:
    ex = await _machine(awaits_something_foreign, driver).execute(0)
    assert ex.outcome == "starvation"
    (v,) = ex.violations
    assert v.message.startswith("cpu0 awaited something outside the emulator")
    assert v.cpus == [0]


async def test_the_direct_driver_stops_a_foreign_await_at_once_and_at_the_first_one() -> None:
    # trio.sleep(0) returns under Trio; the direct driver cannot resume what it
    # does not control, so any foreign await ends the execution, deterministically.
    async def checkpoints(*args: Any) -> KernReturn:
        await trio.sleep(0)
        return KernReturn.SUCCESS

    machine = _machine(checkpoints, "direct")
    machine.stall_seconds = 60.0  # no wall clock involved
    runs = [await machine.execute(0) for _ in range(2)]
    assert [ex.outcome for ex in runs] == ["starvation", "starvation"]
    assert runs[0].steps == runs[1].steps
    assert "awaited something outside the emulator" in runs[0].violations[0].message


async def test_the_campaign_goes_on_after_a_stalled_execution(driver: str) -> None:
    machine = _machine(spins_without_a_point, driver)
    first = await machine.execute(0)
    machine.variant = BUILTIN["reference"]
    second = await machine.execute(1)
    assert first.outcome == "starvation"
    assert second.outcome == "ok"


async def test_a_stalled_execution_stops_at_the_same_step_every_time(driver: str) -> None:
    steps = {(await _machine(spins_without_a_point, driver).execute(3)).steps for _ in range(3)}
    assert len(steps) == 1


# -- a stall outside the variant: an internal error, never the variant's fault ----------------
#
# The harness is made to lose the baton (an agent finishes and hands it to nobody), or, under
# the direct driver, to hang in its own loop: nothing the variant does can explain it.  In a
# fresh interpreter under a timeout, so that a watchdog regression fails the test instead of
# hanging the suite.  argv: the driver, and "drop" or "spin".

HARNESS_BUG = """
import io, json, sys, contextlib, trio
import emulator.sched.direct as direct
import emulator.sched.scheduler as scheduler
import emulator.sched.trio_driver as trio_driver
from emulator.cli import main
from emulator.errors import InternalError
from emulator.machine import Machine
from emulator.sched.strategies import RandomStrategy
from emulator.variants import BUILTIN
from workloads import build_workload

driver, mode = sys.argv[1:]

def spin(self, done):
    while True:
        pass

real_pass_on = scheduler.Scheduler._pass_on
bug = {"drop": lambda self, done: None, "spin": spin}[mode]  # the baton is dropped, or hangs
scheduler.Scheduler._pass_on = bug
for module in (trio_driver, direct):
    module.watch = lambda sched, _seconds, *rest, real=module.watch: real(sched, 0.3, *rest)

async def execute():
    machine = Machine(build_workload("two_cleaners", {}, 0, None), BUILTIN["reference"],
                      RandomStrategy(), driver=driver)
    try:
        await machine.execute(0)
        error = None
    except InternalError as exc:
        error = str(exc)
    scheduler.Scheduler._pass_on = real_pass_on
    after = (await machine.execute(1)).outcome
    scheduler.Scheduler._pass_on = bug
    return error, after

error, after = trio.run(execute)
err = io.StringIO()
with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
    code = main(["run", "two_cleaners", "--driver", driver])
print(json.dumps({"error": error, "after": after, "code": code, "stderr": err.getvalue()}))
"""

CASES = {
    # Trio's loop finds every task parked: the watchdog abandons the execution.
    ("trio", "drop"): ("the execution made no progress for 0.3s at step ",
                       "with no agent running (cpu", "holds the baton but is done)"),
    # The direct driver's loop sees the baton go to nobody at once.
    ("direct", "drop"): ("the baton was lost at step ", "(cpu", "holds the baton but is done)"),
    # The direct driver's own loop hangs: the watchdog's signal lands in harness code.
    ("direct", "spin"): ("the execution made no progress for 0.3s at step ",
                         "with no agent running (the direct driver's loop)", ""),
}


@pytest.fixture(scope="module", params=list(CASES), ids="-".join)
def harness_bug(request: Any, tmp_path_factory: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    script = tmp_path_factory.mktemp("watchdog") / "harness_bug.py"
    script.write_text(HARNESS_BUG)
    proc = subprocess.run([sys.executable, str(script), *request.param], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return CASES[request.param], data


def test_an_execution_in_which_no_agent_runs_is_abandoned_as_an_internal_error(
    harness_bug: tuple[tuple[str, ...], dict[str, Any]],
) -> None:
    (start, middle, holder), got = harness_bug
    error = got["error"]
    assert error is not None
    assert error.startswith(start)
    assert middle in error and holder in error
    assert error.endswith("a bug in vmemu, not in the variant")
    assert got["after"] == "ok"  # the next execution runs normally


def test_the_command_line_reports_a_harness_bug_as_one_internal_error_line(
    harness_bug: tuple[tuple[str, ...], dict[str, Any]],
) -> None:
    (start, _, _), got = harness_bug
    assert got["code"] == 70  # EX_SOFTWARE: not 1 (a violation) nor 3 (a divergence)
    lines = got["stderr"].splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"vmemu: error: {start}")
    assert "Traceback" not in got["stderr"]



async def test_a_slow_start_under_trio_is_not_a_lost_baton(monkeypatch: pytest.MonkeyPatch) -> None:
    # On a loaded machine the agents' tasks (spawned by the first execution of a
    # ``trio.run``) may take longer than the stall limit to reach their first park, or
    # the main task, woken to hand out the first baton, may not run for a while.  The
    # step counter is still 0 and no agent holds the baton, yet nothing is lost: the
    # watchdog's look at the execution, made at exactly those two moments, must let
    # it go on.
    from emulator.sched.trio_driver import TrioScheduler

    parked, wake = TrioScheduler._worker_parked, TrioScheduler._wake_main
    looked: list[int] = []

    def look_before_parking(self: TrioScheduler) -> None:
        if len(looked) == 0:
            looked.append(self.step)
            self.stalled_here(self.step, 0.3)  # no agent task has parked yet
        parked(self)

    def look_after_waking(self: TrioScheduler) -> None:
        wake(self)
        looked.append(self.step)
        self.stalled_here(self.step, 0.3)  # the main task is queued, not yet run

    monkeypatch.setattr(TrioScheduler, "_worker_parked", look_before_parking)
    monkeypatch.setattr(TrioScheduler, "_wake_main", look_after_waking)
    spec = build_workload("writers_vs_msync", {}, 0, None)
    machine = Machine(spec, BUILTIN["reference"], RandomStrategy(), checkers=all_checkers(),
                      driver="trio")
    ex = await machine.execute(0)  # the run's first execution: it spawns the tasks
    assert looked[:2] == [0, 0]
    assert ex.outcome == "ok"
    assert ex.steps > 0
