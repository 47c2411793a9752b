"""False alarms of the reference on the MAP_NOSYNC workloads, in every profile.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/false_alarms_nosync.py [--seeds 2000]

Runs the reference with every checker over seeds 0 .. N-1 of nosync_msync (its defaults,
and three pages all msynced), and of generated, under every profile and under the
portfolio and random strategies -- every profile, not only the one the mutant hunt aims
nosync_msync at.  Every violation is a false alarm except freebsd5's historical ones
(counted apart).  Prints one line per (workload, profile, strategy); exit status 1 if any.
"""

from __future__ import annotations

import argparse
import sys

import trio

from emulator.check import all_checkers
from emulator.kern.profile import PROFILES
from emulator.machine import Machine
from emulator.sched.strategies import PortfolioStrategy, RandomStrategy, Strategy
from emulator.variants import BUILTIN
from workloads import build_workload

RUNS: tuple[tuple[str, dict[str, object]], ...] = (
    ("nosync_msync", {}),
    ("nosync_msync", {"pages": 3, "sync_pages": 3}),
    ("generated", {}),
)
STRATEGIES: tuple[type[Strategy], ...] = (PortfolioStrategy, RandomStrategy)


async def sweep(seeds: int) -> int:
    alarms_total = 0
    for workload, params in RUNS:
        for profile in PROFILES:
            for strategy in STRATEGIES:
                machine = Machine(build_workload(workload, params, 0, profile),
                                  BUILTIN["reference"], strategy(), checkers=all_checkers())
                alarms: list[str] = []
                historical = 0
                for seed in range(seeds):
                    ex = await machine.execute(seed, build_workload(workload, params, seed,
                                                                    profile))
                    if ex.outcome == "ok":
                        continue
                    if ex.violations and all(v.fields.get("historical")
                                             for v in ex.violations):
                        historical += 1
                        continue
                    alarms.append(f"seed {seed}: {ex.outcome}: "
                                  + "; ".join(v.message for v in ex.violations))
                alarms_total += len(alarms)
                print(f"{workload} {params or ''} {profile} {strategy.__name__}: {seeds} "
                      f"executions, {len(alarms)} false alarms, {historical} historical"
                      + (f"; first: {alarms[0]}" if alarms else ""), flush=True)
    return alarms_total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2000)
    args = parser.parse_args()
    return 1 if trio.run(sweep, args.seeds) else 0


if __name__ == "__main__":
    sys.exit(main())
