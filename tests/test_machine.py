"""The harness (emulator/machine.py): executions leave nothing behind for the next one.

A machine runs many executions, and a campaign keeps specs, machines and
strategies from one execution to the next (workloads.build_workload keeps the
spec of an unseeded workload; a shard freezes the collector).  Execution B
after execution A must be execution B alone: the same trace, decisions,
results and verdicts, for every seeded strategy, reference and mutant,
workloads with a fixed spec and with a spec drawn from the seed.  A dfs
campaign, whose strategy carries its search from execution to execution by
design, must be the same campaign after another one has run.
"""

from __future__ import annotations

from typing import Any

import pytest

import workloads
from emulator.campaign import Config, Summary, run_shard
from emulator.check import all_checkers
from emulator.config import RunConfig
from emulator.machine import Execution, Machine
from emulator.variants import load_variant

CASES = [
    ("writers_vs_msync", "reference"),
    ("two_cleaners", "no_map_lock"),
    ("invalidate_shared_file", "invalidate_frees_dirty"),
    ("random_mix", "reference"),
    ("generated", "early_unbusy"),
]
STRATEGIES = ["random", "pct", "pos"]


def _machine(run: RunConfig) -> Machine:
    return Machine(run.spec(), load_variant(run.variant), run.make_strategy(),
                   checkers=all_checkers(), max_steps=run.max_steps, record=True,
                   driver=run.driver)


async def _execute(machine: Machine, run: RunConfig, seed: int) -> dict[str, Any]:
    ex: Execution = await machine.execute(seed, run.spec(seed))
    return {
        "outcome": ex.outcome,
        "steps": ex.steps,
        "decisions": list(ex.decisions),
        "results": ex.results,
        "violations": [v.to_json() for v in ex.violations],
        "events": list(ex.events),
        "detail": ex.detail,
    }


@pytest.mark.parametrize("driver", ["direct", "trio"])
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(("workload", "variant"), CASES)
async def test_execution_b_after_a_is_execution_b_alone(
        workload: str, variant: str, strategy: str, driver: str) -> None:
    run = RunConfig(workload, variant=variant, strategy=strategy, driver=driver)
    shared = _machine(run)
    after = []
    for seed in (3, 11, 4):  # B = 11 after A = 3, and 4 after both
        after.append(await _execute(shared, run, seed))
    alone = [await _execute(_machine(run), run, seed) for seed in (3, 11, 4)]
    assert after == alone
    assert len({repr(r["decisions"]) for r in alone}) > 1, "the seeds must differ"
    assert all(r["events"] for r in alone)


def _digest(summary: Summary) -> tuple[Any, ...]:
    return (summary.executions, summary.steps, sorted(summary.schedules), summary.exhausted,
            summary.explored, summary.pruned, [(f.seed, f.outcome, f.violations, f.decisions)
                                               for f in summary.failures],
            len(summary.coverage.pairs), sorted(summary.coverage.interleavings),
            sorted(summary.coverage.finals))


def _campaign(workload: str, variant: str, strategy: str, iterations: int) -> Config:
    run = RunConfig(workload, variant=variant, strategy=strategy, preemption_bound=1)
    return Config(run, iterations, None, stop_on_first=False)


@pytest.mark.parametrize(("workload", "variant", "strategy"), [
    ("two_cleaners", "reference", "dfs"),
    ("two_cleaners", "no_map_lock", "portfolio"),
    ("generated", "reference", "portfolio"),
])
async def test_a_campaign_after_others_is_the_campaign_alone(
        workload: str, variant: str, strategy: str) -> None:
    workloads._SPECS.clear()  # as in a fresh process
    alone = _digest(await run_shard(_campaign(workload, variant, strategy, 60), 0, 1))
    for other in CASES:  # other campaigns fill the kept specs and the machines' caches
        await run_shard(_campaign(other[0], other[1], "portfolio", 20), 0, 1)
    again = _digest(await run_shard(_campaign(workload, variant, strategy, 60), 0, 1))
    assert again == alone
    assert alone[0] == 60 or alone[3], "the campaign ran its executions or exhausted its space"
