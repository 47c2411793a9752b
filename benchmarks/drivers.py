"""The direct driver against the Trio driver: the same executions, trace for trace.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/drivers.py [--seeds N] [--jobs N]
                                              [--workload W ...] [--strategy S ...]

For every workload (default parameters) and every strategy, executions with
seeds 0..N-1 run once under each driver, recording, with every checker on:
two machines in one process, in lockstep, seed by seed.  For dfs, which is not
seeded, the two machines walk the same search tree, N executions or until it is
exhausted, so the strategy's state must evolve identically too.  Compared, per
execution: every recorded trace line (step, agent, kind, args -- scheduling
decisions included), the outcome, the step count, the decisions, the
violations (rule, message, step, CPUs) and each CPU's results.  A trace file is
its header (the run configuration, which names no driver) plus a pure rendering
of exactly those lines and footer fields (``emulator.trace.format.TraceWriter``),
so equal data means byte-identical trace files;
tests/sched/test_drivers.py renders both and compares the bytes as well.

Reported: executions compared per pair, mismatches (the first few in detail)
and each driver's own time (recording on, so slower than ``steps.py``).
Exit status 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import trio

from emulator.config import RunConfig
from emulator.machine import Execution, Machine
from emulator.sched.drivers import DRIVERS
from emulator.sched.strategies import STRATEGIES
from workloads import WORKLOADS

REFERENCE = "trio"


def fingerprint(ex: Execution) -> tuple[Any, ...]:
    """Everything of an execution that its trace file renders, and its results."""
    return (ex.outcome, ex.steps, tuple(ex.decisions), tuple(ex.events),
            tuple((v.rule, v.message, v.step, tuple(v.cpus)) for v in ex.violations),
            repr(ex.results), ex.detail)


def first_difference(a: Execution, b: Execution) -> str:
    for name in ("outcome", "steps", "detail"):
        if getattr(a, name) != getattr(b, name):
            return f"{name}: {getattr(a, name)!r} != {getattr(b, name)!r}"
    for i, (x, y) in enumerate(zip(a.events, b.events, strict=False)):
        if x != y:
            return f"trace line {i}: {x!r} != {y!r}"
    if len(a.events) != len(b.events):
        return f"trace lines: {len(a.events)} != {len(b.events)}"
    return "decisions, violations or results differ"


@dataclass
class Pair:
    """One workload under one strategy, compared over its seeds."""

    workload: str
    strategy: str
    executions: int = 0
    mismatches: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def machines(workload: str, strategy: str) -> dict[str, Machine]:
    out = {}
    for driver in DRIVERS:
        config = RunConfig(workload, strategy=strategy, driver=driver)
        machine = config.machine()
        machine.record = True
        out[driver] = machine
    return out


async def compare_pair(workload: str, strategy: str, seeds: int) -> Pair:
    pair = Pair(workload, strategy, seconds=dict.fromkeys(DRIVERS, 0.0))
    by_driver = machines(workload, strategy)
    config = RunConfig(workload, strategy=strategy)
    seeded = config.seeded
    for seed in range(seeds):
        spec = config.spec(seed if seeded else 0)
        runs: dict[str, Execution] = {}
        for driver, machine in by_driver.items():
            start = time.perf_counter()
            runs[driver] = await machine.execute(seed, spec)
            pair.seconds[driver] += time.perf_counter() - start
        pair.executions += 1
        ref = runs[REFERENCE]
        want = fingerprint(ref)
        for driver, ex in runs.items():
            if driver != REFERENCE and fingerprint(ex) != want:
                pair.mismatches.append(f"{workload} {strategy} seed {seed} {driver}: "
                                       f"{first_difference(ref, ex)}")
        exhausted = {m.strategy.exhausted for m in by_driver.values()}
        if len(exhausted) > 1:
            pair.mismatches.append(f"{workload} {strategy} seed {seed}: one search is "
                                   "exhausted, the other is not")
            break
        if exhausted == {True}:
            break
    return pair


def run_pair(workload: str, strategy: str, seeds: int) -> Pair:
    return trio.run(compare_pair, workload, strategy, seeds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10_000, help="executions per pair")
    ap.add_argument("--jobs", type=int, default=1, help="processes (pairs are independent)")
    ap.add_argument("--workload", action="append", default=[], choices=sorted(WORKLOADS))
    ap.add_argument("--strategy", action="append", default=[], choices=sorted(STRATEGIES))
    args = ap.parse_args(argv)
    workloads = args.workload or list(WORKLOADS)
    strategies = args.strategy or list(STRATEGIES)
    todo = [(w, s) for w in workloads for s in strategies]
    started = time.perf_counter()
    pairs: list[Pair] = []
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_pair, w, s, args.seeds) for w, s in todo]
        for fut in concurrent.futures.as_completed(futures):
            pair = fut.result()
            pairs.append(pair)
            times = ", ".join(f"{d} {t:.1f}s" for d, t in pair.seconds.items())
            print(f"{pair.workload:24s} {pair.strategy:10s} {pair.executions:6d} executions, "
                  f"{len(pair.mismatches)} mismatches ({times})", flush=True)
    elapsed = time.perf_counter() - started
    total = sum(p.executions for p in pairs)
    mismatches = [m for p in pairs for m in p.mismatches]
    per_driver = {d: sum(p.seconds[d] for p in pairs) for d in DRIVERS}
    print(f"nproc {os.cpu_count()}, Python {platform.python_version()}, trio {trio.__version__}; "
          f"load average at the end {os.getloadavg()[0]:.2f}")
    print(f"{len(pairs)} workload x strategy pairs, {total} executions per driver, "
          f"{len(mismatches)} mismatches, {elapsed:.0f} s wall; driver time (recording on): "
          + ", ".join(f"{d} {t:.0f} s" for d, t in per_driver.items())
          + f", ratio {per_driver[REFERENCE] / max(per_driver['direct'], 1e-9):.2f}")
    for m in mismatches[:10]:
        print("MISMATCH", m)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
