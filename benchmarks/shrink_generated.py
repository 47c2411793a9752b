"""Shrinking generated specs: the workload's structures too, for every mutant caught on them.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/shrink_generated.py [--budget SECONDS] [--limit N]

For each built-in mutant: run the ``generated`` workload under the mutant's profile
(portfolio strategy, seeds 0, 1, ...) until an expected rule fires, record that
execution, shrink it, and check the shrunk trace replays with the same rule.  Prints one
Markdown row per mutant: seeds to the catch, then mappings, ops, CPUs and steps before
and after, and the shrink's time.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile

import trio

from emulator.config import RunConfig
from emulator.kern.profile import DEFAULT_PROFILE
from emulator.trace.reader import load_trace
from emulator.trace.record import record
from emulator.trace.replay import replay
from emulator.trace.shrink import shrink_trace
from emulator.variants import MUTANTS


async def first_failure(name: str, path: str, limit: int) -> int | None:
    """The first seed of generated on which the mutant breaks an expected rule, recorded."""
    variant = MUTANTS[name]
    config = RunConfig(workload="generated", profile=variant.profile or DEFAULT_PROFILE.name,
                       variant=name)
    machine = config.machine(variant)
    for seed in range(limit):
        run = dataclasses.replace(config, seed=seed)
        ex = await machine.execute(seed, run.spec())
        if any(v.rule in variant.catches for v in ex.violations):
            await record(machine, run, run.spec(), path)
            return seed
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=30.0, help="shrink budget per trace")
    ap.add_argument("--limit", type=int, default=5000, help="seeds to try per mutant")
    args = ap.parse_args()
    print("| mutant | rule | seed | mappings | ops | cpus | steps | shrink seconds |")
    print("|---|---|---|---|---|---|---|---|")
    seconds = []
    with tempfile.TemporaryDirectory() as folder:
        for name in MUTANTS:
            path = os.path.join(folder, f"{name}.jsonl")
            seed = trio.run(first_failure, name, path, args.limit)
            if seed is None:
                print(f"| {name} | not caught in {args.limit} seeds | | | | | | |", flush=True)
                continue
            out = os.path.join(folder, f"{name}.small.jsonl")
            res = shrink_trace(path, out, budget=args.budget)
            again = trio.run(replay, load_trace(out))
            assert again.identical and again.execution.violations[0].rule == res.rule
            seconds.append(res.seconds)
            print(f"| {name} | {res.rule} | {seed} | {res.mappings_before} → "
                  f"{res.mappings_after} | {res.ops_before} → {res.ops_after} | "
                  f"{res.cpus_before} → {res.cpus_after} | {res.steps_before} → "
                  f"{res.steps_after} | {res.seconds:.2f} |", flush=True)
    if seconds:
        print(f"\nmedian shrink time {statistics.median(seconds):.2f} s, "
              f"longest {max(seconds):.2f} s")


if __name__ == "__main__":
    main()
