"""Checker power self-test: hunt every built-in mutant, then look for false alarms.

For each mutant, explore the workloads (round-robin, one execution of each per
round, seeds 0, 1, 2, ...) under the mutant's profile until a checker reports a
violation the mutant is expected to cause, or the mutant's share of the time
budget ends.  Then run the reference over the same workloads and profiles and
count violations: each is a false alarm, except freebsd5's historical
invalidate data loss, which the emulator must reproduce and reports as such.

Wall-clock time only bounds how many executions run; every execution is
reproducible from its :class:`RunConfig` (workload, profile, variant, strategy
and seed), whose command the report gives.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import time
from dataclasses import dataclass, field
from typing import Any

from emulator.config import FOLLOW, RunConfig
from emulator.errors import SearchExhausted
from emulator.kern.profile import DEFAULT_PROFILE, PROFILES, InvalidateFrees
from emulator.machine import Execution, Machine
from emulator.sched.drivers import CAMPAIGN_DRIVER
from emulator.variants import BUILTIN, MUTANTS, Variant
from workloads import WORKLOADS


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
            "seed": self.seed,
            "message": self.message,
            "trace": self.trace,
            "replay": replay,
        }


def is_historical(profile: str, variant: Variant, ex: Execution) -> bool:
    """An invalidate freeing a re-dirtied page where the profile's does (freebsd5's):
    a real bug, faithfully emulated."""
    return (
        PROFILES[profile].invalidate_frees is InvalidateFrees.EVERY_UNWIRED
        and variant.name == "reference"
        and all(v.fields.get("historical") for v in ex.violations)
    )


class _Rotation:
    """Machines for one variant and profile, one per workload, run round-robin."""

    def __init__(self, variant: Variant, profile: str, strategy: str,
                 driver: str = CAMPAIGN_DRIVER) -> None:
        self.variant = variant
        self.profile = profile
        self.machines: list[tuple[RunConfig, Machine]] = []
        for name in WORKLOADS:
            config = RunConfig(workload=name, profile=profile, variant=variant.name,
                               strategy=strategy, driver=driver)
            self.machines.append((config, config.machine(variant)))
        self.seed = 0
        self.turn = 0

    async def step(self) -> tuple[RunConfig, Execution]:
        """Run the next execution; return its configuration and what happened.

        ``SearchExhausted`` when an exhaustive strategy has covered every workload's space.
        """
        # Skip workloads whose whole space an exhaustive strategy has covered.
        for _ in range(len(self.machines)):
            if not self.machines[self.turn][1].strategy.exhausted:
                break
            self._advance()
        config, machine = self.machines[self.turn]
        if machine.strategy.exhausted:
            raise SearchExhausted(f"every workload's space is exhausted under {self.profile}")
        # An exhaustive strategy searches one spec's schedule tree: seed 0's.
        config = dataclasses.replace(config, seed=self.seed if config.seeded else 0)
        ex = await machine.execute(config.seed, config.spec())
        self._advance()
        return config, ex

    def machine(self, workload: str) -> Machine:
        return next(m for c, m in self.machines if c.workload == workload)

    def _advance(self) -> None:
        self.turn += 1
        if self.turn == len(self.machines):
            self.turn = 0
            self.seed += 1


async def hunt(
    variant: Variant, budget: float, strategy: str, save_dir: str | None = None,
    driver: str = CAMPAIGN_DRIVER,
) -> Hunt:
    """Explore until a violation of an expected rule, or the budget ends.

    With ``save_dir``, the reported execution's trace is written there.
    """
    profile = variant.profile or DEFAULT_PROFILE.name
    result = Hunt(variant.name, profile, variant.catches)
    rotation = _Rotation(variant, profile, strategy, driver)
    start = time.perf_counter()
    while time.perf_counter() - start < budget:
        try:
            run, ex = await rotation.step()
        except SearchExhausted:
            break  # nothing left to run: the mutant escaped the whole bounded space
        result.executions += 1
        if ex.outcome in ("ok", "pruned"):
            continue
        rules = [v.rule for v in ex.violations]
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
        if any(r in variant.catches for r in rules):
            result.expected_rule_seen = True
            if result.rule not in variant.catches:
                # Point the report at the execution that shows the expected rule.
                result.rule = next(r for r in reversed(rules) if r in variant.catches)
                result.run, result.decisions = run, list(ex.decisions)
                result.message = ex.violations[-1].message
            break
    if save_dir is not None and result.run is not None:
        result.trace = await _save(rotation, result.run, result.decisions,
                                   os.path.join(save_dir, f"{variant.name}.trace.jsonl"))
    return result


async def _save(rotation: _Rotation, run: RunConfig, decisions: list[int], path: str) -> str:
    """Record the reported execution again, with its trace; return the path."""
    from emulator.trace.record import record
    from emulator.trace.replay import FollowStrategy

    machine = rotation.machine(run.workload)
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
    out = ReferenceRun()
    reference = BUILTIN["reference"]
    rotations = [_Rotation(reference, p, strategy, driver) for p in PROFILES]
    start = time.perf_counter()
    done = [0] * len(rotations)
    live = list(range(len(rotations)))  # rotations with executions left to run
    while live:
        elapsed = time.perf_counter() - start
        if elapsed >= budget and min(done[i] for i in live) >= min_per_profile:
            break
        i = min(live, key=lambda j: done[j])
        try:
            run, ex = await rotations[i].step()
        except SearchExhausted:
            live.remove(i)
            continue
        done[i] += 1
        out.executions += 1
        if ex.outcome in ("ok", "pruned"):
            continue
        record = {
            "workload": run.workload,
            "profile": rotations[i].profile,
            "seed": run.seed,
            "rerun": run.command() if run.seeded else None,
            "rule": ex.violations[-1].rule,
            "message": ex.violations[-1].message,
        }
        if is_historical(rotations[i].profile, reference, ex):
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
    """Hunt every mutant within ~70% of the budget, then run the references."""
    chosen = names or list(MUTANTS)
    share = 0.7 * time_budget / max(1, len(chosen))
    hunts = []
    started = time.perf_counter()
    for name in chosen:
        hunts.append(await hunt(MUTANTS[name], share, strategy, save_dir, driver))
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
