"""False alarms: the reference over many executions of the workloads, in every profile.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/false_alarms.py [--executions 100000] [--jobs 1]
        [--workloads a,b] [--profiles p,q] [--strategy portfolio] [--json out.json]

The executions are split evenly over the profiles, and each profile's share into tasks of
``--chunk`` executions; a task is the adaptive portfolio of ``vmemu mutants``' reference
check (emulator.mutants) over the workloads (default: every one), task ``t`` starting at
seed ``t * 1000000``.  Every violation is a false alarm except a profile's historical
bugs (the era bugs its ``era_bugs`` table names: freebsd5's invalidate data loss, H24 and
H26 of its 2003 page clean, the mprotect flush gap...), which the emulator must reproduce
(counted apart).  Each alarm is
printed with the ``vmemu run`` command that reproduces it.  Exit status 1 if any.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import sys
import time
from typing import Any

import trio

from emulator.kern.profile import PROFILES
from emulator.mutants import _portfolio, is_historical
from emulator.variants import BUILTIN
from workloads import WORKLOADS

SEED_STRIDE = 1_000_000


async def _sweep(profile: str, workloads: tuple[str, ...], task: int, executions: int,
                 strategy: str) -> dict[str, Any]:
    reference = BUILTIN["reference"]
    portfolio = _portfolio(reference, profile, strategy, task * SEED_STRIDE, workloads)
    out: dict[str, Any] = {"profile": profile, "executions": 0, "historical": 0,
                           "alarms": [], "by_workload": {}}
    started = time.perf_counter()
    for _ in range(executions):
        stepped = await portfolio.step()
        if stepped is None:
            break  # an exhaustive strategy ran out of schedules
        _arm, run, ex = stepped
        out["executions"] += 1
        out["by_workload"][run.workload] = out["by_workload"].get(run.workload, 0) + 1
        if ex.outcome in ("ok", "pruned"):
            continue
        if is_historical(profile, reference, ex):
            out["historical"] += 1
            continue
        out["alarms"].append({"rule": ex.violations[-1].rule if ex.violations else ex.outcome,
                              "message": ex.violations[-1].message if ex.violations
                              else ex.detail,
                              "rerun": run.command() if run.seeded else None})
    out["seconds"] = time.perf_counter() - started
    return out


def run_task(task: tuple[str, tuple[str, ...], int, int, str]) -> dict[str, Any]:
    return trio.run(_sweep, *task)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--executions", type=int, default=100_000, help="in all, over the profiles")
    p.add_argument("--chunk", type=int, default=5000, help="executions per task")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--strategy", default="portfolio")
    p.add_argument("--profiles", default=",".join(PROFILES),
                   help="the profiles to split the executions over (default: every one)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    workloads = tuple(args.workloads.split(","))
    profiles = args.profiles.split(",")
    per_profile = -(-args.executions // len(profiles))
    tasks = []
    for profile in profiles:
        left, t = per_profile, 0
        while left > 0:
            n = min(args.chunk, left)
            tasks.append((profile, workloads, t, n, args.strategy))
            left -= n
            t += 1
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    if args.jobs == 1:
        results = [run_task(t) for t in tasks]
    else:
        ctx = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            results = list(pool.map(run_task, tasks))
    elapsed = time.perf_counter() - started
    total = sum(r["executions"] for r in results)
    alarms = [a for r in results for a in r["alarms"]]
    print(f"reference, strategy {args.strategy}, workloads {', '.join(workloads)}: "
          f"{total} executions in {elapsed:.0f} s ({args.jobs} processes)")
    for profile in profiles:
        rs = [r for r in results if r["profile"] == profile]
        by: dict[str, int] = {}
        for r in rs:
            for w, n in r["by_workload"].items():
                by[w] = by.get(w, 0) + n
        print(f"  {profile}: {sum(r['executions'] for r in rs)} executions, "
              f"{sum(len(r['alarms']) for r in rs)} false alarms, "
              f"{sum(r['historical'] for r in rs)} historical (freebsd5's era bugs); "
              + ", ".join(f"{w} {n}" for w, n in sorted(by.items())))
    for a in alarms[:20]:
        print(f"FALSE ALARM {a['rule']}: {a['message']}\n  rerun with: {a['rerun']}")
    print(f"false alarms: {len(alarms)}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "elapsed": elapsed, "results": results}, fh, indent=1)
    return 1 if alarms else 0


if __name__ == "__main__":
    sys.exit(main())
