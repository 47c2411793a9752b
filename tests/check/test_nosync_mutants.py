"""The MAP_NOSYNC mutants are caught on the workload nosync_msync, and the reference is
quiet on the same seeds.

The seed of nosync_msync alone (portfolio strategy, every checker) that first caught each
mutant under its profile (freebsd5, the profile the workload is aimed at) when written:
msync_skips_nosync 3 (lost_store), nosync_skip_marks_clean 1 (async_clean or lost_store after
a syncer pass; 4 of the first 200 seeds catch it), fsync_skips_nosync 0 (durable).  Budgets
are three times the seeds needed, at least ten.
"""

from __future__ import annotations

import pytest

from emulator.check import all_checkers
from emulator.machine import Machine
from emulator.sched.strategies import PortfolioStrategy
from emulator.variants import BUILTIN, MUTANTS, Variant
from workloads import build_workload

WORKLOAD = "nosync_msync"
FIRST_CATCH = {"msync_skips_nosync": 3, "nosync_skip_marks_clean": 1, "fsync_skips_nosync": 0}


async def outcomes(variant: Variant, profile: str, seeds: int) -> list[list[tuple[str, bool]]]:
    """Each seed's violations as (rule, historical)."""
    machine = Machine(build_workload(WORKLOAD, {}, 0, profile), variant, PortfolioStrategy(),
                      checkers=all_checkers())
    out = []
    for seed in range(seeds):
        ex = await machine.execute(seed, build_workload(WORKLOAD, {}, seed, profile))
        out.append([(v.rule, bool(v.fields.get("historical"))) for v in ex.violations])
    return out


@pytest.mark.parametrize("name", sorted(FIRST_CATCH))
async def test_caught_on_the_mutant_and_quiet_on_the_reference(name: str) -> None:
    variant = MUTANTS[name]
    assert variant.profile is not None
    seeds = max(10, 3 * (FIRST_CATCH[name] + 1))
    caught = [i for i, vs in enumerate(await outcomes(variant, variant.profile, seeds))
              if any(rule in variant.catches and not hist for rule, hist in vs)]
    assert caught, f"{name} not caught on {WORKLOAD} in {seeds} seeds"
    reference = await outcomes(BUILTIN["reference"], variant.profile, seeds)
    alarms = [(i, vs) for i, vs in enumerate(reference) if any(not hist for _, hist in vs)]
    assert not alarms, f"reference under {variant.profile}: {alarms[0]}"
