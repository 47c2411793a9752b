"""Shrinking: steps before and after, and time, for a failing trace of every caught mutant.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/shrink.py [--budget SECONDS]

For each built-in mutant: explore its workloads (the adaptive portfolio of
``vmemu mutants``) until it is caught, save that execution's
trace, shrink it, and check the shrunk trace replays with the same rule.
Reports per mutant and the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import trio

from emulator.kern.profile import DEFAULT_PROFILE
from emulator.mutants import _portfolio
from emulator.trace.reader import load_trace
from emulator.trace.record import record
from emulator.trace.replay import replay
from emulator.trace.shrink import shrink_trace
from emulator.variants import MUTANTS


async def first_failure(name: str, path: str, limit: int = 5000) -> bool:
    variant = MUTANTS[name]
    portfolio = _portfolio(variant, variant.profile or DEFAULT_PROFILE.name, "portfolio")
    for _ in range(limit):
        stepped = await portfolio.step()
        assert stepped is not None  # seeded strategies never run out
        arm, run, ex = stepped
        if ex.outcome != "ok":
            await record(portfolio.machine(arm), run, run.spec(), path)
            return True
    return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=30.0, help="shrink budget per trace")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in MUTANTS:
            path = os.path.join(folder, f"{name}.jsonl")
            if not trio.run(first_failure, name, path):
                print(f"| {name} | not caught | | | |")
                continue
            out = os.path.join(folder, f"{name}.small.jsonl")
            res = shrink_trace(path, out, budget=args.budget)
            again = trio.run(replay, load_trace(out))
            assert again.identical and again.execution.violations[0].rule == res.rule
            rows.append(res)
            print(f"| {name} | {res.rule} | {res.steps_before} → {res.steps_after} | "
                  f"{res.preemptions_before} → {res.preemptions_after} | {res.seconds:.2f} |",
                  flush=True)
    after = [r.steps_after for r in rows]
    before = [r.steps_before for r in rows]
    secs = [r.seconds for r in rows]
    print(f"\nmedian steps before {statistics.median(before)}, after {statistics.median(after)}; "
          f"median shrink time {statistics.median(secs):.2f}s (max {max(secs):.2f}s); "
          f"{len(rows)} traces, every shrunk trace replays with its rule")


if __name__ == "__main__":
    main()
