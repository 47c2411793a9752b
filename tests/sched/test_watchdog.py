"""A variant that never reaches a schedule point, or awaits something foreign, is stopped.

The watchdog ends such an execution as ``starvation``; vmemu goes on with the
next execution.  The stall limit is lowered here to keep the tests fast.
"""

from __future__ import annotations

from typing import Any

import trio

from emulator.check import all_checkers
from emulator.kern.kern_return import KernReturn
from emulator.machine import Machine
from emulator.sched.strategies import RandomStrategy
from emulator.variants import BUILTIN, Variant
from workloads import build_workload


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
