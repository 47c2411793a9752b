"""A variant that never reaches a schedule point, or awaits something foreign, is stopped.

The watchdog ends such an execution as ``starvation``; vmemu goes on with the
next execution.  An execution that stalls with no agent running (the harness's
fault, not the variant's) is abandoned as an internal error.  The stall limit
is lowered here to keep the tests fast.
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


def _machine(clean: Any) -> Machine:
    spec = build_workload("writers_vs_msync", {}, 0, None)
    machine = Machine(spec, Variant("hang", clean), RandomStrategy(), checkers=all_checkers())
    machine.stall_seconds = 0.3
    return machine


async def test_a_loop_without_schedule_points_is_reported_as_starvation() -> None:
    ex = await _machine(spins_without_a_point).execute(0)
    assert ex.outcome == "starvation"
    (v,) = ex.violations
    assert v.rule == "starvation"
    assert "without reaching a schedule point" in v.message
    assert v.cpus == [0]


async def test_an_await_outside_the_emulator_is_reported_as_starvation() -> None:
    ex = await _machine(awaits_something_foreign).execute(0)
    assert ex.outcome == "starvation"
    assert "outside the emulator" in ex.violations[0].message


async def test_the_campaign_goes_on_after_a_stalled_execution() -> None:
    machine = _machine(spins_without_a_point)
    first = await machine.execute(0)
    machine.variant = BUILTIN["reference"]
    second = await machine.execute(1)
    assert first.outcome == "starvation"
    assert second.outcome == "ok"


async def test_a_stalled_execution_stops_at_the_same_step_every_time() -> None:
    steps = {(await _machine(spins_without_a_point).execute(3)).steps for _ in range(3)}
    assert len(steps) == 1


# -- a stall outside the variant: an internal error, never the variant's fault ----------------
#
# The harness is made to lose the baton (an agent finishes and hands it to nobody): every
# task is parked and nothing the variant does can wake them.  In a fresh interpreter under
# a timeout, so that a watchdog regression fails the test instead of hanging the suite.

LOST_BATON = """
import io, json, sys, contextlib, trio
import emulator.sched.scheduler as scheduler
from emulator.cli import main
from emulator.errors import InternalError
from emulator.machine import Machine
from emulator.sched.strategies import RandomStrategy
from emulator.variants import BUILTIN
from workloads import build_workload

real_pass_on = scheduler.Scheduler._pass_on
scheduler.Scheduler._pass_on = lambda self, done: None  # the bug: the baton is dropped
real_watch = scheduler.watch
scheduler.watch = lambda sched, _seconds: real_watch(sched, 0.3)

async def execute():
    machine = Machine(build_workload("two_cleaners", {}, 0, None), BUILTIN["reference"],
                      RandomStrategy())
    try:
        await machine.execute(0)
        error = None
    except InternalError as exc:
        error = str(exc)
    scheduler.Scheduler._pass_on = real_pass_on
    after = (await machine.execute(1)).outcome
    scheduler.Scheduler._pass_on = lambda self, done: None
    return error, after

error, after = trio.run(execute)
err = io.StringIO()
with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
    code = main(["run", "two_cleaners"])
print(json.dumps({"error": error, "after": after, "code": code, "stderr": err.getvalue()}))
"""


@pytest.fixture(scope="module")
def lost_baton(tmp_path_factory: Any) -> dict[str, Any]:
    script = tmp_path_factory.mktemp("watchdog") / "lost_baton.py"
    script.write_text(LOST_BATON)
    proc = subprocess.run([sys.executable, str(script)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def test_an_execution_in_which_no_agent_runs_is_abandoned_as_an_internal_error(
    lost_baton: dict[str, Any],
) -> None:
    error = lost_baton["error"]
    assert error is not None
    assert error.startswith("the execution made no progress for 0.3s at step ")
    assert "with no agent running (cpu" in error and "holds the baton but is done)" in error
    assert error.endswith("a bug in vmemu, not in the variant")
    assert lost_baton["after"] == "ok"  # the next execution runs normally


def test_the_command_line_reports_a_lost_baton_as_one_internal_error_line(
    lost_baton: dict[str, Any],
) -> None:
    assert lost_baton["code"] == 70  # EX_SOFTWARE: not 1 (a violation) nor 3 (a divergence)
    lines = lost_baton["stderr"].splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("vmemu: error: the execution made no progress")
    assert "Traceback" not in lost_baton["stderr"]
