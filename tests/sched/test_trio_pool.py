"""The Trio driver's agent tasks outlive an execution: a pool per ``trio.run``.

Each execution borrows one parked task per agent and gives it back when its
agent has unwound; the pool must never change an execution, never leave a task
behind that keeps ``trio.run`` from ending, and never let a task's exception
crash the run (a system task that raises does).
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
from emulator.machine import Execution, Machine
from emulator.sched.strategies import RandomStrategy
from emulator.variants import BUILTIN, Variant
from workloads import build_workload

ROOT = Path(__file__).resolve().parents[2]


def _machine(cpus: int = 2, variant: Variant | None = None, driver: str = "trio") -> Machine:
    spec = build_workload("writers_vs_msync", {"cpus": cpus}, 0, None)
    return Machine(spec, variant or BUILTIN["reference"], RandomStrategy(),
                   checkers=all_checkers(), driver=driver)


def _tasks(machine: Machine) -> list[Any]:
    assert machine.kernel is not None
    return [a.task for a in machine.kernel.sched.agents]


def _same(a: Execution, b: Execution) -> bool:
    return (a.outcome, a.steps, a.decisions, a.results, a.detail) == (
        b.outcome, b.steps, b.decisions, b.results, b.detail)


async def test_the_next_execution_runs_on_the_same_tasks() -> None:
    machine = _machine()
    await machine.execute(0)
    first = set(map(id, _tasks(machine)))
    await machine.execute(1)
    assert set(map(id, _tasks(machine))) == first
    assert len(first) == 3  # two CPUs and the disk, each its own task


async def test_the_pool_grows_for_more_agents_and_executions_do_not_change() -> None:
    small, big = _machine(cpus=2), _machine(cpus=4)
    alone = [await _machine(cpus=4, driver="direct").execute(s) for s in range(3)]
    await small.execute(0)
    runs = [await big.execute(s) for s in range(3)]
    assert len(set(map(id, _tasks(big)))) == 5
    assert all(_same(a, b) for a, b in zip(alone, runs, strict=True))


async def _foreign(*args: Any) -> KernReturn:
    await trio.sleep_forever()
    return KernReturn.SUCCESS


async def test_a_task_whose_foreign_await_was_cancelled_is_replaced() -> None:
    # The watchdog cancels the agent task's cancel scope; a scope stays cancelled, so
    # that task must not serve another execution (its next foreign await would be
    # cancelled at once): the next execution gets a fresh one, and waits again.
    machine = _machine(variant=Variant("hang", _foreign))
    machine.stall_seconds = 0.3
    outcomes = []
    for seed in range(2):
        ex = await machine.execute(seed)
        outcomes.append((ex.outcome, ex.violations[0].message.split(" (")[0]))
        (cancelled,) = [a.task for a in machine.kernel.sched.agents  # type: ignore[union-attr]
                        if a.scope is not None and a.scope.cancelled]
        assert cancelled.coro.cr_frame is None  # retired: the task has exited
    assert outcomes == [("starvation", "cpu0 awaited something outside the emulator and "
                         "never came back")] * 2
    machine.variant = BUILTIN["reference"]
    assert (await machine.execute(2)).outcome == "ok"


class _Interrupt(BaseException):
    """Stands for Ctrl-C's KeyboardInterrupt (pytest treats a real one as the user's)."""


async def _interrupted(*args: Any) -> KernReturn:
    raise _Interrupt()


async def test_an_interrupted_agent_interrupts_the_execution_and_the_run_goes_on() -> None:
    machine = _machine(variant=Variant("interrupted", _interrupted))
    with pytest.raises(_Interrupt):
        await machine.execute(0)
    assert machine.kernel is not None and machine.kernel.sched.outcome == "interrupted"
    machine.variant = BUILTIN["reference"]
    assert (await machine.execute(1)).outcome == "ok"


def test_trio_run_ends_with_the_pool_parked_and_no_task_left() -> None:
    async def go() -> tuple[list[str], int]:
        crash = _machine(variant=Variant("crash", _crashes))
        outcomes = [(await crash.execute(0)).outcome]
        outcomes += [(await _machine(cpus=c).execute(0)).outcome for c in (2, 4)]
        root = trio.lowlevel.current_root_task()
        assert root is not None
        system = [t for n in root.child_nurseries for t in n.child_tasks
                  if t.name == "vmemu agent"]
        return outcomes, len(system)

    outcomes, pooled = trio.run(go)  # returns: every idle task let itself be cancelled
    assert outcomes == ["crash", "ok", "ok"]
    assert pooled == 5


async def _crashes(*args: Any) -> KernReturn:
    raise ValueError("a bug")


# -- Ctrl-C, for real: SIGINT raised at a chosen place, in a fresh interpreter ----------------
#
# ``signal.raise_signal`` runs Trio's SIGINT handler at once, in the code that raised it, so
# the place is exact.  In an agent's own code the KeyboardInterrupt is raised there; in the
# harness's code (the main task handing out the first baton, an agent task's bookkeeping
# between bodies) Trio holds it for the main task's next checkpoint.

CTRL_C = """
import json, signal, sys, trio
from emulator.kern.kern_return import KernReturn
from emulator.machine import Machine
from emulator.sched.strategies import RandomStrategy
from emulator.sched.trio_driver import TrioScheduler
from emulator.variants import BUILTIN, Variant
from workloads import build_workload

where = sys.argv[1]

async def ctrl_c(*args):
    signal.raise_signal(signal.SIGINT)
    return KernReturn.SUCCESS

class CtrlCAt(RandomStrategy):
    # At the first decision, which the main task makes.
    calls = 0
    def choose(self, runnable, current):
        CtrlCAt.calls += 1
        if where == "first" and CtrlCAt.calls == 1:
            signal.raise_signal(signal.SIGINT)
        return super().choose(runnable, current)

real_finished = TrioScheduler._finished
def finished(self, agent):
    # Right after the first body returns, in its task's own code.
    global where
    if where == "after_body":
        where = "done"
        signal.raise_signal(signal.SIGINT)
    real_finished(self, agent)
TrioScheduler._finished = finished

async def go():
    spec = build_workload("writers_vs_msync", {}, 0, None)
    variant = Variant("ctrl_c", ctrl_c) if where == "agent" else BUILTIN["reference"]
    machine = Machine(spec, variant, CtrlCAt(), driver="trio")
    got = {}
    try:
        got["outcome"] = (await machine.execute(0)).outcome
    except KeyboardInterrupt:
        got["raised"] = "execute"
        got["outcome"] = machine.kernel.sched.outcome.value
    try:
        await trio.lowlevel.checkpoint()
    except KeyboardInterrupt:
        got["raised"] = "checkpoint"
    machine.variant = BUILTIN["reference"]
    got["next"] = (await machine.execute(1)).outcome
    return got

print(json.dumps(trio.run(go)))
"""


@pytest.mark.parametrize(("where", "expected"), [
    ("agent", {"raised": "execute", "outcome": "interrupted", "next": "ok"}),
    ("first", {"raised": "checkpoint", "outcome": "ok", "next": "ok"}),
    ("after_body", {"raised": "checkpoint", "outcome": "ok", "next": "ok"}),
])
def test_ctrl_c_interrupts_the_agent_or_waits_for_the_main_task(
    where: str, expected: dict[str, str], tmp_path: Any,
) -> None:
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C)
    proc = subprocess.run([sys.executable, str(script), where], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == expected
