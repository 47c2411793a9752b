"""The direct driver runs the same executions as the Trio driver, trace for trace.

The fast test renders both drivers' trace files for a few seeds of every
workload under every strategy and compares the bytes; the slow one
(``VMEMU_DRIVER_SWEEP=1``) compares 10,000 seeds of every pair through
benchmarks/drivers.py (which compares the recorded lines a trace renders, in
lockstep).
"""

from __future__ import annotations

import io
import os
import shlex
import sys
from pathlib import Path

import pytest

from emulator.cli import build_parser, run_config
from emulator.config import RunConfig
from emulator.errors import BadInput
from emulator.machine import Execution, Machine
from emulator.sched.direct import DirectScheduler
from emulator.sched.drivers import DEFAULT_DRIVER, DRIVERS, make_scheduler
from emulator.sched.scheduler import Scheduler
from emulator.sched.strategies import STRATEGIES, RandomStrategy
from emulator.sched.trio_driver import TrioScheduler
from emulator.trace.format import TraceWriter
from workloads import WORKLOADS

ROOT = Path(__file__).resolve().parents[2]
SEEDS = 10  # per workload and strategy: 350 executions per driver


async def trace_text(machine: Machine, config: RunConfig, seed: int) -> tuple[str, Execution]:
    """What ``vmemu run --trace`` would write for ``seed``, in memory."""
    spec = config.spec(seed if config.seeded else 0)
    out = io.StringIO()
    writer = TraceWriter(out)
    writer.header(**config.to_header(spec))
    machine.record, machine.sink = True, writer.events
    ex = await machine.execute(seed, spec)
    assert machine.kernel is not None
    writer.events(machine.kernel.events)
    machine.kernel.events = []
    writer.footer(outcome=ex.outcome, steps=ex.steps, decisions=len(ex.decisions),
                  violations=[v.to_json() for v in ex.violations])
    return out.getvalue(), ex


@pytest.mark.parametrize("strategy", list(STRATEGIES))
@pytest.mark.parametrize("workload", list(WORKLOADS))
async def test_both_drivers_write_byte_identical_traces(workload: str, strategy: str) -> None:
    configs = {d: RunConfig(workload, strategy=strategy, driver=d) for d in DRIVERS}
    machines = {d: c.machine() for d, c in configs.items()}
    outcomes = set()
    for seed in range(SEEDS):
        texts = {}
        for driver, machine in machines.items():
            config = configs[driver]
            texts[driver], ex = await trace_text(machine, config, seed)
            outcomes.add(ex.outcome)
        assert texts["direct"] == texts["trio"], (workload, strategy, seed)
        assert texts["trio"].count("\n") > 2  # a header, events and a footer
    assert outcomes  # every pair ran


def test_the_drivers_are_named_and_trio_is_the_reference() -> None:
    assert {"trio": TrioScheduler, "direct": DirectScheduler} == DRIVERS
    assert DEFAULT_DRIVER == "trio"
    assert isinstance(make_scheduler("direct", RandomStrategy(), 10), DirectScheduler)
    with pytest.raises(BadInput, match="unknown driver 'asyncio'"):
        make_scheduler("asyncio", RandomStrategy(), 10)


def test_a_run_config_names_its_driver_in_the_rerun_command_but_not_in_equality() -> None:
    trio_cfg = RunConfig("two_cleaners", seed=3)
    direct_cfg = RunConfig("two_cleaners", seed=3, driver="direct")
    assert trio_cfg == direct_cfg  # the same executions
    assert "--driver" not in trio_cfg.to_argv()
    assert direct_cfg.to_argv()[-2:] == ["--driver", "direct"]
    assert direct_cfg.to_header() == trio_cfg.to_header()  # the trace does not change
    assert direct_cfg.machine().driver == "direct"
    with pytest.raises(BadInput, match="unknown driver"):
        RunConfig("two_cleaners", driver="threads")


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("VMEMU_DRIVER_SWEEP") != "1",
                    reason="hours on two cores: set VMEMU_DRIVER_SWEEP=1")
def test_ten_thousand_seeds_of_every_workload_and_strategy_agree() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.drivers import main
    finally:
        sys.path.remove(str(ROOT))
    assert main(["--seeds", "10000", "--jobs", "2"]) == 0


def test_explore_and_mutants_default_to_the_direct_driver_and_run_to_trio() -> None:
    parser = build_parser()
    assert parser.parse_args(["run", "two_cleaners"]).driver == "trio"
    assert parser.parse_args(["explore", "two_cleaners"]).driver == "direct"
    assert parser.parse_args(["mutants"]).driver == "direct"
    config = run_config(parser.parse_args(["explore", "two_cleaners", "--seed", "4"]))
    assert config.driver == "direct"
    again = run_config(parser.parse_args(shlex.split(config.command())[1:]))
    assert again.driver == "direct" and again == config


class _GenericTrio(TrioScheduler):
    """The Trio driver through the base class's ``point`` and ``sleep`` (``_switch``)."""

    point = Scheduler.point  # type: ignore[assignment]
    sleep = Scheduler.sleep  # type: ignore[assignment]


class _GenericDirect(DirectScheduler):
    """The direct driver through the base class's ``point`` and ``sleep`` (``_switch``)."""

    point = Scheduler.point  # type: ignore[assignment]
    sleep = Scheduler.sleep  # type: ignore[assignment]


@pytest.mark.parametrize("strategy", ["random", "pct", "dfs"])
@pytest.mark.parametrize("workload", ["writers_vs_msync", "msync_vs_munmap", "two_cleaners"])
async def test_the_inlined_switches_decide_as_the_base_class_does(
        workload: str, strategy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each driver's ``point`` and ``sleep`` inline the switch and repeat the base class's
    decisions: the same executions as the base class's versions, byte for byte."""
    texts: dict[tuple[str, bool], list[str]] = {}
    for generic in (False, True):
        if generic:
            monkeypatch.setitem(DRIVERS, "trio", _GenericTrio)
            monkeypatch.setitem(DRIVERS, "direct", _GenericDirect)
        for driver in ("trio", "direct"):
            config = RunConfig(workload, strategy=strategy, driver=driver)
            machine = config.machine()
            texts[driver, generic] = [(await trace_text(machine, config, seed))[0]
                                      for seed in range(SEEDS)]
            kind = type(machine.kernel.sched) if machine.kernel else None
            assert (kind in (_GenericTrio, _GenericDirect)) == generic
    assert texts["trio", False] == texts["trio", True] == texts["direct", True] \
        == texts["direct", False]
