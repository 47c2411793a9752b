"""Checker power: every mutant of SEMANTICS.md §7 is caught by a rule it is expected to break.

The search is deterministic: a round-robin over every workload (seed 0 of each
workload, then seed 1 of each, ...), each workload built for the mutant's
profile, one PortfolioStrategy execution per (workload, seed) with every
checker installed -- the order ``emulator.mutants`` hunts in.  An execution
counts when one of its violations has a rule in ``variant.catches``.

Budgets are about three times the executions each mutant needed when this file
was written (with a floor of three rounds, 21 executions, and a ceiling of
3000).  Executions needed then (workload and seed of the first catch):

    no_map_lock                     1  writers_vs_msync seed 0        single_entry
    shared_map_lock                 1  writers_vs_msync seed 0        single_entry
    unlock_between_passes           2  msync_vs_munmap seed 0         single_entry
    no_timestamp_recheck            5  zero_length_msync seed 0       stale_structure
    no_write_protect               29  writers_vs_msync seed 4        lost_store
    undirty_at_issue                7  write_errors seed 0            lost_store
    early_unbusy                   53  invalidate_shared_file seed 7  lost_store
    fault_ignores_busy             53  invalidate_shared_file seed 7  lost_store
    invalidate_frees_dirty        193  invalidate_shared_file seed 27 lost_store
    invalidate_before_flush         2  msync_vs_munmap seed 0         lost_store
    skip_busy_page               1308  random_mix seed 186            async_clean
    late_clean_generation           7  write_errors seed 0            async_clean
    fault_no_generation             2  msync_vs_munmap seed 0         lost_store
    munmap_drops_modified          58  msync_vs_munmap seed 8         lost_store
    swapped_codes                  20  random_mix seed 2              return_code
    side_effect_before_validation  23  msync_vs_munmap seed 3         return_code
    zero_length_toctou              5  zero_length_msync seed 0       single_entry
    null_object_deref               2  msync_vs_munmap seed 0         crash
    lock_order_inversion            1  writers_vs_msync seed 0        lock_discipline
    vnode_lock_while_busy           1  writers_vs_msync seed 0        lock_discipline
    no_relookup_after_sleep       608  pageout_vs_msync seed 75       stale_structure

skip_busy_page is the only one near the ceiling (budget 3000, 2.3x headroom);
it takes about 1.6 s.  The whole file ran in about 4 s.
"""

from __future__ import annotations

import pytest

from emulator.check import all_checkers
from emulator.kern.profile import DEFAULT_PROFILE
from emulator.machine import Execution, Machine
from emulator.sched.strategies import PortfolioStrategy
from emulator.variants import MUTANTS, Variant
from workloads import WORKLOADS, build_workload

MEASURED = {
    "no_map_lock": 1,
    "shared_map_lock": 1,
    "unlock_between_passes": 2,
    "no_timestamp_recheck": 5,
    "no_write_protect": 29,
    "undirty_at_issue": 7,
    "early_unbusy": 53,
    "fault_ignores_busy": 53,
    "invalidate_frees_dirty": 319,
    "invalidate_before_flush": 4,
    "skip_busy_page": 1308,
    "late_clean_generation": 7,
    "fault_no_generation": 1,
    "munmap_drops_modified": 58,
    "swapped_codes": 20,
    "side_effect_before_validation": 107,
    "zero_length_toctou": 5,
    "null_object_deref": 2,
    "lock_order_inversion": 1,
    "vnode_lock_while_busy": 1,
    "no_relookup_after_sleep": 608,
}
FLOOR = 3 * len(WORKLOADS)
CEILING = 3000


def budget(name: str) -> int:
    return min(CEILING, max(FLOOR, 3 * MEASURED[name]))


async def search(variant: Variant, limit: int) -> tuple[int, str, int, Execution] | None:
    """Round-robin over the workloads until an execution breaks a rule in ``catches``.

    Returns (executions used, workload, seed, execution), or None after ``limit``.
    """
    profile = variant.profile or DEFAULT_PROFILE.name
    machines = {
        name: Machine(build_workload(name, {}, 0, profile), variant, PortfolioStrategy(),
                      checkers=all_checkers())
        for name in WORKLOADS
    }
    used = 0
    seed = 0
    while True:
        for name, machine in machines.items():
            if used >= limit:
                return None
            used += 1
            ex = await machine.execute(seed, build_workload(name, {}, seed, profile))
            if any(v.rule in variant.catches for v in ex.violations):
                return used, name, seed, ex
        seed += 1


def test_every_mutant_has_a_measured_budget() -> None:
    assert set(MEASURED) == set(MUTANTS)
    for name, variant in MUTANTS.items():
        assert variant.catches, f"{name} names no rule expected to catch it"


@pytest.mark.parametrize("name", sorted(MUTANTS))
async def test_mutant_is_caught_by_an_expected_rule(name: str) -> None:
    variant = MUTANTS[name]
    limit = budget(name)
    found = await search(variant, limit)
    assert found is not None, (
        f"{name} ({variant.profile}) not caught by any of {variant.catches} within "
        f"{limit} executions (needed {MEASURED[name]} when measured)"
    )
    used, workload, seed, ex = found
    assert ex.outcome != "ok"
    hit = next(v for v in ex.violations if v.rule in variant.catches)
    where = f"{name}: {workload} seed {seed} (execution {used})"
    for v in ex.violations:
        assert v.message.strip(), f"{where}: empty {v.rule} message"
        assert "\n" not in v.message and "\r" not in v.message, (
            f"{where}: {v.rule} message spans lines: {v.message!r}"
        )
    assert hit.message.strip()
