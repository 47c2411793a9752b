"""The checker self-test's search (emulator/mutants.py) under an exhaustive strategy.

With dfs, every workload's schedule tree is searched once, for seed 0's spec; a
pruned execution is no catch; when every tree is exhausted the hunt (or the
reference check) ends there, however much budget is left.  Run in a fresh
interpreter under a timeout: searching past exhaustion used to hang.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import json, trio
import emulator.mutants as mutants
from emulator.variants import BUILTIN

mutants.WORKLOADS = ("two_cleaners",)  # one small tree per profile
real_config = mutants.RunConfig  # and a small bound, with sleep sets (pruned executions)
mutants.RunConfig = lambda **kw: real_config(**kw, preemption_bound=1, reduction=True)

async def main():
    hunt = await mutants.hunt(BUILTIN["reference"], 600.0, "dfs")
    ref = await mutants.reference_runs(0.0, 10**9, "dfs")
    seeds = {}
    for strategy in ("dfs", "random"):
        portfolio = mutants._portfolio(BUILTIN["reference"], "manpage", strategy)
        for _ in range(3):  # three executions of the one workload
            _arm, run, _ex = await portfolio.step()
        seeds[strategy] = run.seed
    print(json.dumps({"hunt": [hunt.caught, hunt.executions],
                      "reference": [ref.executions, ref.false_alarms],
                      "third_round_seed": seeds}))

trio.run(main)
"""


@pytest.fixture(scope="module")
def searched() -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", SCRIPT],
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def test_a_dfs_hunt_and_reference_check_end_when_every_space_is_exhausted(
    searched: dict[str, Any],
) -> None:
    data = searched
    # two_cleaners under manpage with at most 1 preemption and sleep sets: 14 schedules and
    # 25 pruned executions (vmemu explore two_cleaners --strategy dfs --preemption-bound 1
    # --reduction on).
    assert data["hunt"] == [False, 39]
    executions, false_alarms = data["reference"]
    assert false_alarms == 0
    assert executions >= 3 * 14  # each profile's whole tree, then the check stops


def test_a_dfs_hunt_searches_seed_0s_spec_and_a_seeded_one_each_seeds_own(
    searched: dict[str, Any],
) -> None:
    assert searched["third_round_seed"] == {"dfs": 0, "random": 2}
