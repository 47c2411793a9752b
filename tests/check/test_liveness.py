"""starvation and crash (rule 8): liveness failures are reported apart from safety, with what
every CPU was doing.  Runs of tiny variants on a real Machine, and the hooks driven by hand."""

from __future__ import annotations

from typing import Any

from emulator.check.liveness import Liveness
from emulator.kern.clean import reference_clean
from emulator.kern.kern_return import KernReturn
from emulator.kern.monitor import Violation
from emulator.sched.scheduler import AgentState
from emulator.variants import Variant

BASE = 0x10000


async def spin(vm_map: Any, start: int, end: int, syncio: bool, inval: bool) -> Any:
    while True:
        await vm_map.k.point()


async def boom(vm_map: Any, start: int, end: int, syncio: bool, inval: bool) -> Any:
    await vm_map.lock.xlock()
    raise ValueError("boom in the clean")


async def gives_up(vm_map: Any, start: int, end: int, syncio: bool, inval: bool) -> Any:
    for _ in range(50):
        await vm_map.k.point()
    return KernReturn.SUCCESS


def two_cpus(spec_of: Any) -> dict[str, Any]:
    return spec_of([], cpus=[
        {"process": "p0", "program": [["store", hex(BASE)], ["msync", hex(BASE), 0x1000, "sync"]]},
        {"process": "p0", "program": [["load", hex(BASE + 0x1000)]]},
    ])


async def test_a_clean_spinning_on_schedule_points_is_starvation(
    run_spec: Any, spec_of: Any
) -> None:
    ex, _ = await run_spec(two_cpus(spec_of), "manpage", checkers=[Liveness],
                           variant=Variant("spin", spin), max_steps=200)
    assert ex.outcome == "starvation"
    assert [v.rule for v in ex.violations] == ["starvation"]
    v = ex.violations[0]
    assert v.message.startswith("no end after 200 steps: ")
    assert "cpu0 runnable in msync" in v.message and "cpu1 done" in v.message
    assert "disk" not in v.message
    assert v.cpus == [0]
    assert "\n" not in v.message


async def test_a_bounded_delay_within_the_step_bound_is_not_starvation(
    run_spec: Any, spec_of: Any
) -> None:
    ex, _ = await run_spec(two_cpus(spec_of), "manpage", checkers=[Liveness],
                           variant=Variant("gives_up", gives_up), max_steps=400)
    assert ex.outcome == "ok" and ex.violations == []


async def test_a_raising_clean_is_a_crash_naming_the_exception(
    run_spec: Any, spec_of: Any
) -> None:
    ex, _ = await run_spec(two_cpus(spec_of), "manpage", checkers=[Liveness],
                           variant=Variant("boom", boom))
    assert ex.outcome == "crash"
    assert [v.rule for v in ex.violations] == ["crash"]
    v = ex.violations[0]
    assert v.cpus == [0]
    assert v.message.startswith("cpu0 raised ValueError: boom in the clean at test_liveness.py:")
    assert v.message.endswith("(during msync)")
    assert "\n" not in v.message


async def test_the_reference_is_neither_starved_nor_crashed(run_spec: Any, spec_of: Any) -> None:
    for seed in range(10):
        ex, _ = await run_spec(two_cpus(spec_of), "manpage", seed=seed,
                               checkers=[Liveness],
                               variant=Variant("reference", reference_clean))
        assert ex.outcome == "ok", ex.violations


def test_the_starvation_report_lists_each_cpu_and_blames_the_unfinished(rig: Any) -> None:
    r = rig(cpus=3, installers=(Liveness,))
    r.k.shared["current_op"] = {0: "msync", 1: "store", 2: "munmap"}
    r.sched.agents[1].state = AgentState.BLOCKED
    r.sched.agents[2].state = AgentState.DONE
    v = Violation("starvation", "no end after 9 steps", 9, [])
    r.explain(v)
    assert v.message == ("no end after 9 steps: cpu0 runnable in msync, cpu1 blocked in store, "
                         "cpu2 done")
    assert v.cpus == [0, 1]


def test_the_starvation_report_uses_the_states_at_the_end(rig: Any) -> None:
    # Ending an execution marks every agent done; the report must show them as they were.
    r = rig(cpus=2, installers=(Liveness,))
    r.k.shared["current_op"] = {0: "msync", 1: "store"}
    r.sched.agents[1].state = AgentState.BLOCKED
    r.sched._end("starvation", "no end after 9 steps")
    for agent in r.sched.agents:
        agent.state = AgentState.DONE
    v = Violation("starvation", "no end after 9 steps", 9, [])
    r.explain(v)
    assert v.message == "no end after 9 steps: cpu0 runnable in msync, cpu1 blocked in store"
    assert v.cpus == [0, 1]


def test_the_crash_report_names_the_place_and_the_call(rig: Any) -> None:
    r = rig(installers=(Liveness,))
    r.k.shared["current_op"] = {1: "munmap"}
    try:
        raise KeyError("x")
    except KeyError as exc:
        r.sched.crash_exc = exc
    v = Violation("crash", "cpu1 raised KeyError: 'x'", 3, [1])
    r.explain(v)
    assert v.message.startswith("cpu1 raised KeyError: 'x' at test_liveness.py:")
    assert v.message.endswith(" (during munmap)")
