"""Checker power self-test: hunt every built-in mutant, then look for false alarms.

For each mutant, explore the workloads under the mutant's profile -- each
workload under each portfolio member is an arm of the adaptive portfolio
(emulator/portfolio.py), seeds 0, 1, 2, ... one per execution -- until a checker
reports a violation the mutant is expected to cause, or the mutant's share of
the time budget ends (an equal share of the hunting time left: what a mutant caught
early did not use goes to the ones after it).  Then run the reference over the same
workloads and profiles and count violations: each is a false alarm, except freebsd5's
historical bugs (its invalidate data loss, and what its 2003 page clean leaves out of the
pager: H24, H26), which the emulator must reproduce and reports as such.  A historical
violation never counts as catching a mutant: the reference shows it too.

Wall-clock time only bounds how many executions run; every execution is
reproducible from its :class:`RunConfig` (workload, profile, variant, strategy
and seed), whose command the report gives.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from emulator.campaign import collector_spared, release_kernel
from emulator.check.historical import all_historical, historical_reason
from emulator.config import FOLLOW, RunConfig
from emulator.kern.profile import DEFAULT_PROFILE, PROFILES
from emulator.machine import Execution, Machine
from emulator.portfolio import Portfolio, arm_label, arms_for, coverage_json
from emulator.sched.drivers import CAMPAIGN_DRIVER
from emulator.variants import BUILTIN, MUTANTS, Variant
from workloads import WORKLOADS, aimed


@dataclass
class Hunt:
    """What the search found for one mutant."""

    name: str
    profile: str
    expected: tuple[str, ...]
    caught: bool = False
    rule: str | None = None  # the first rule that fired
    rules: list[str] = field(default_factory=list)  # every rule seen, in order
    expected_rule_seen: bool = False
    executions: int = 0
    executions_to_first: int | None = None
    seconds_to_first: float | None = None
    run: RunConfig | None = None  # the reported execution
    decisions: list[int] = field(default_factory=list)  # its schedule
    message: str | None = None
    trace: str | None = None
    arm: int = -1  # the portfolio arm of the reported execution
    elapsed: float = 0.0  # seconds the hunt ran (to the expected rule, when it fired)
    coverage: dict[str, Any] = field(default_factory=dict)  # what the hunt saw, per arm

    @property
    def workload(self) -> str | None:
        return None if self.run is None else self.run.workload

    @property
    def seed(self) -> int | None:
        return None if self.run is None else self.run.seed

    def to_json(self) -> dict[str, Any]:
        replay = None
        if self.trace is not None:
            replay = shlex.join(["vmemu", "replay", self.trace])
        elif self.run is not None and self.run.seeded:
            replay = self.run.command()
        return {
            "name": self.name,
            "profile": self.profile,
            "caught": self.caught,
            "rule": self.rule,
            "rules": self.rules,
            "expected_rules": list(self.expected),
            "expected_rule_seen": self.expected_rule_seen,
            "executions": self.executions,
            "executions_to_first": self.executions_to_first,
            "seconds_to_first": (
                round(self.seconds_to_first, 4) if self.seconds_to_first is not None else None
            ),
            "workload": self.workload,
            "strategy": None if self.run is None else arm_label(self.run, workload=False),
            "seed": self.seed,
            "message": self.message,
            "trace": self.trace,
            "replay": replay,
            "coverage": self.coverage,
        }


def is_historical(profile: str, variant: Variant, ex: Execution) -> bool:
    """A real bug of the profile's era, faithfully emulated: the reference's every
    violation marked with an era bug the profile's ``era_bugs`` table names (its
    invalidate freeing re-dirtied pages, its chain walk, its page clean's H24 and H26,
    the mprotect flush gap: ``emulator.check.historical``)."""
    return variant.name == "reference" and all_historical(PROFILES[profile], ex.violations)


def _portfolio(variant: Variant, profile: str, strategy: str, first_seed: int = 0,
               workloads: Sequence[str] | None = None,
               driver: str = CAMPAIGN_DRIVER, uniform: bool = False) -> Portfolio:
    """Every workload (or ``workloads``) aimed at ``profile`` (``workloads.aimed_at``),
    as arms (with each portfolio member, for the portfolio), a workload chosen adaptively
    (round-robin with ``uniform``) and its arms taking turns; seeds ``first_seed``, +1, ...,
    one per execution."""
    base = RunConfig(workload="", profile=profile, variant=variant.name, strategy=strategy,
                     driver=driver)
    names = aimed(profile, WORKLOADS if workloads is None else workloads)
    return Portfolio(arms_for(base, names), first_seed, variant=variant,
                     uniform=uniform)


async def hunt(
    variant: Variant, budget: float, strategy: str, save_dir: str | None = None,
    first_seed: int = 0, workloads: Sequence[str] | None = None,
    driver: str = CAMPAIGN_DRIVER, uniform: bool = False,
) -> Hunt:
    """Explore until a violation of an expected rule, or the budget ends.

    With ``save_dir``, the reported execution's trace is written there; with
    ``uniform``, the workloads take turns instead of being steered (a baseline).
    """
    profile = variant.profile or DEFAULT_PROFILE.name
    result = Hunt(variant.name, profile, variant.catches)
    portfolio = _portfolio(variant, profile, strategy, first_seed, workloads, driver, uniform)
    with collector_spared():
        return await _hunt(variant, budget, portfolio, result, save_dir)


async def _hunt(variant: Variant, budget: float, portfolio: Portfolio, result: Hunt,
                save_dir: str | None) -> Hunt:
    start = time.perf_counter()
    while time.perf_counter() - start < budget:
        stepped = await portfolio.step()
        if stepped is None:
            break  # nothing left to run: the mutant escaped the whole bounded space
        i, run, ex = stepped
        # The execution is accounted: its kernel is freed by reference counting now,
        # not left to the collector as cyclic garbage (campaign.release_kernel).
        release_kernel(portfolio.machine(i))
        result.executions += 1
        if ex.outcome in ("ok", "pruned"):
            continue
        # A historical violation is the era's own behaviour (the reference shows it
        # too): it catches no mutant.
        rules = [v.rule for v in ex.violations if not v.fields.get("historical")]
        if not rules:
            continue
        for r in rules:
            if r not in result.rules:
                result.rules.append(r)
        if not result.caught:
            result.caught = True
            result.rule = ex.violations[-1].rule
            result.executions_to_first = result.executions
            result.seconds_to_first = time.perf_counter() - start
            result.run, result.decisions = run, list(ex.decisions)
            result.message = ex.violations[-1].message
            result.arm = i
        if any(r in variant.catches for r in rules):
            result.expected_rule_seen = True
            if result.rule not in variant.catches:
                # Point the report at the execution that shows the expected rule.
                result.rule = next(r for r in reversed(rules) if r in variant.catches)
                result.run, result.decisions = run, list(ex.decisions)
                result.message = ex.violations[-1].message
                result.arm = i
            break
    result.elapsed = time.perf_counter() - start
    result.coverage = coverage_json(portfolio.totals(), portfolio.arm_stats())
    if save_dir is not None and result.run is not None:
        result.trace = await _save(portfolio.machine(result.arm), result.run, result.decisions,
                                   os.path.join(save_dir, f"{variant.name}.trace.jsonl"))
    return result


async def _save(machine: Machine, run: RunConfig, decisions: list[int], path: str) -> str:
    """Record the reported execution again, with its trace; return the path."""
    from emulator.trace.record import record
    from emulator.trace.replay import FollowStrategy

    saved = machine.strategy
    if not run.seeded:
        machine.strategy = FollowStrategy(decisions)
        run = dataclasses.replace(run, strategy=FOLLOW)
    try:
        await record(machine, run, run.spec(), path)
    finally:
        machine.strategy = saved
    return path


@dataclass
class ReferenceRun:
    executions: int = 0
    false_alarms: int = 0
    historical: int = 0
    alarms: list[dict[str, Any]] = field(default_factory=list)
    historical_example: dict[str, Any] | None = None


async def reference_runs(budget: float, min_per_profile: int, strategy: str,
                         driver: str = CAMPAIGN_DRIVER) -> ReferenceRun:
    """Run the reference under every profile over every workload."""
    with collector_spared():
        return await _reference_runs(budget, min_per_profile, strategy, driver)


async def _reference_runs(budget: float, min_per_profile: int, strategy: str,
                          driver: str) -> ReferenceRun:
    out = ReferenceRun()
    reference = BUILTIN["reference"]
    portfolios = [_portfolio(reference, p, strategy, driver=driver) for p in PROFILES]
    start = time.perf_counter()
    done = [0] * len(portfolios)
    live = list(range(len(portfolios)))  # profiles with executions left to run
    while live:
        elapsed = time.perf_counter() - start
        if elapsed >= budget and min(done[i] for i in live) >= min_per_profile:
            break
        i = min(live, key=lambda j: done[j])
        stepped = await portfolios[i].step()
        if stepped is None:
            live.remove(i)
            continue
        arm, run, ex = stepped
        release_kernel(portfolios[i].machine(arm))
        done[i] += 1
        out.executions += 1
        if ex.outcome in ("ok", "pruned"):
            continue
        record = {
            "workload": run.workload,
            "profile": run.profile,
            "seed": run.seed,
            "rerun": run.command() if run.seeded else None,
            "rule": ex.violations[-1].rule,
            "message": ex.violations[-1].message,
            "fields": dict(ex.violations[-1].fields),
            "reason": historical_reason(PROFILES[str(run.profile)], ex.violations[-1].fields),
        }
        if is_historical(str(run.profile), reference, ex):
            out.historical += 1
            out.historical_example = out.historical_example or record
        else:
            out.false_alarms += 1
            out.alarms.append(record)
    return out


async def run_mutants(
    time_budget: float, strategy: str, names: list[str] | None = None,
    save_dir: str | None = None, driver: str = CAMPAIGN_DRIVER,
) -> dict[str, Any]:
    """Hunt every mutant within ~70% of the budget, then run the references.

    Each hunt may use an equal share of what is left of the hunting time: the time a
    mutant caught early did not use goes to the mutants after it.
    """
    chosen = names or list(MUTANTS)
    hunting = 0.7 * time_budget
    hunts = []
    started = time.perf_counter()
    for n, name in enumerate(chosen):
        left = hunting - (time.perf_counter() - started)
        share = max(0.0, left) / (len(chosen) - n)
        hunts.append(await hunt(MUTANTS[name], share, strategy, save_dir, driver=driver))
    left = max(0.0, time_budget - (time.perf_counter() - started))
    ref = await reference_runs(left, min_per_profile=60, strategy=strategy, driver=driver)
    return {
        "mutants": [h.to_json() for h in hunts],
        "caught": sum(h.caught for h in hunts),
        "total": len(hunts),
        "false_alarms": ref.false_alarms,
        "false_alarm_examples": ref.alarms[:5],
        "reference_executions": ref.executions,
        "historical_bug_reproduced": ref.historical > 0,
        "historical_executions": ref.historical,
        "historical_example": ref.historical_example,
        "strategy": strategy,
        "elapsed_seconds": round(time.perf_counter() - started, 3),
    }
