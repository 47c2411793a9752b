"""Clustering by default: what it changes per execution, profile by profile.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/cluster.py [--seeds 200] [--workloads a,b] [--json out.json]

For every profile and every workload, seeds 0..N-1 of the reference under the random
strategy with every checker installed, twice: with the spec's cluster size as built (the
profile's default, unless the workload sets one) and with ``cluster`` forced to 1 (each page
written alone, the old default).  Reported per profile: executions, mean steps per execution,
page writes issued, pager calls, pager calls that carry more than one page, the largest
call, violations (freebsd5's historical ones counted apart), and CPU seconds.  Steps and
counts are functions of the seeds (load-independent); seconds are not.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from typing import Any

import trio

from emulator.check import all_checkers
from emulator.kern.events import IoIssue
from emulator.kern.kernel import Kernel
from emulator.kern.profile import PROFILES
from emulator.machine import Machine
from emulator.mutants import is_historical
from emulator.sched.strategies import RandomStrategy
from emulator.variants import BUILTIN
from workloads import WORKLOADS, build_workload


class Counts:
    """Page writes and pager calls of the executions it watches."""

    def __init__(self) -> None:
        self.writes = 0
        self.calls: dict[int, int] = {}  # id of a pager call -> pages (ids live per execution)
        self.multi = 0
        self.largest = 1
        self.total_calls = 0

    def watch(self, k: Kernel) -> None:
        self.flush()
        k.observe(IoIssue, self.issued)

    def issued(self, step: int, aid: int, ev: IoIssue) -> None:
        self.writes += 1
        cluster = ev.io.cluster
        if cluster is None:
            self.total_calls += 1
            return
        key = id(cluster)
        self.calls[key] = self.calls.get(key, 0) + 1

    def flush(self) -> None:
        for pages in self.calls.values():
            self.total_calls += 1
            if pages > 1:
                self.multi += 1
                self.largest = max(self.largest, pages)
        self.calls.clear()


async def sweep(profile: str, workloads: list[str], seeds: int,
                forced: int | None) -> dict[str, Any]:
    reference = BUILTIN["reference"]
    counts = Counts()
    out: dict[str, Any] = {"executions": 0, "steps": 0, "violations": 0, "historical": 0}
    started = time.process_time()
    for name in workloads:
        spec = build_workload(name, {}, 0, profile)
        machine = Machine(spec, reference, RandomStrategy(), checkers=all_checkers())
        machine.watchers.append(counts.watch)
        for seed in range(seeds):
            spec = build_workload(name, {}, seed, profile)
            if forced is not None:
                spec = dataclasses.replace(spec, cluster=forced)
            ex = await machine.execute(seed, spec)
            out["executions"] += 1
            out["steps"] += ex.steps
            if ex.violations or ex.outcome not in ("ok", "pruned"):
                if is_historical(profile, reference, ex):
                    out["historical"] += 1
                else:
                    out["violations"] += 1
    counts.flush()
    out.update(writes=counts.writes, calls=counts.total_calls, multi=counts.multi,
               largest=counts.largest, cpu_seconds=round(time.process_time() - started, 1))
    return out


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=200)
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--json", default=None)
    args = p.parse_args()
    workloads = args.workloads.split(",")
    report: dict[str, Any] = {}
    print(f"{'profile':9s} {'cluster':>8s} {'execs':>6s} {'steps/ex':>9s} {'writes':>7s} "
          f"{'calls':>6s} {'multi':>6s} {'largest':>7s} {'viol':>5s} {'hist':>5s} {'cpu s':>6s}")
    for profile in PROFILES:
        for label, forced in (("default", None), ("1", 1)):
            r = await sweep(profile, workloads, args.seeds, forced)
            report[f"{profile}/{label}"] = r
            print(f"{profile:9s} {label:>8s} {r['executions']:6d} "
                  f"{r['steps'] / r['executions']:9.1f} {r['writes']:7d} {r['calls']:6d} "
                  f"{r['multi']:6d} {r['largest']:7d} {r['violations']:5d} {r['historical']:5d} "
                  f"{r['cpu_seconds']:6.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    trio.run(main)
