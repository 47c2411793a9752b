"""Executions per second of one campaign on ``--jobs N`` against ``--executor dask --jobs N``.

Each round runs the same ``vmemu explore`` command (same workload, variant, strategy, seed
and time budget) once per executor, alternating, each in a fresh process: the local
executor's worker processes, then a Dask LocalCluster of N worker processes on 127.0.0.1
started by the command itself.  Reported per run: executions, the campaign's own elapsed
seconds (shards running), executions/s over it, and the command's wall time (for Dask
this includes starting and closing the cluster).  The load average is printed before and
after, since the machine may be shared.

    PYTHONPATH=. python benchmarks/executors.py --rounds 3 --time-budget 10 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def run(executor: str, args: argparse.Namespace, save_dir: str) -> dict[str, float]:
    argv = [sys.executable, "-c", "import sys; from emulator.cli import main; sys.exit(main())",
            "explore", args.workload, "--strategy", args.strategy, "--seed", "0",
            "--time-budget", str(args.time_budget), "--jobs", str(args.jobs), "--json",
            "--save-dir", save_dir, "--executor", executor]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{executor}: exit {done.returncode}: {done.stderr.strip()}")
    out = json.loads(done.stdout)
    return {"executions": out["executions"], "elapsed": out["elapsed_seconds"],
            "rate": out["executions"] / out["elapsed_seconds"], "wall": wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--time-budget", type=float, default=10.0)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--workload", default="two_cleaners")
    p.add_argument("--strategy", default="portfolio")
    args = p.parse_args()
    print(f"nproc {os.cpu_count()}, load average before {os.getloadavg()}")
    results: dict[str, list[dict[str, float]]] = {"local": [], "dask": []}
    with tempfile.TemporaryDirectory() as save_dir:
        for r in range(args.rounds):
            for executor in ("local", "dask"):
                res = run(executor, args, save_dir)
                results[executor].append(res)
                print(f"round {r + 1} {executor:5}: {res['executions']:.0f} executions in "
                      f"{res['elapsed']:.2f} s = {res['rate']:.0f} exec/s; "
                      f"wall {res['wall']:.2f} s; load {os.getloadavg()[0]:.2f}", flush=True)
    print(f"load average after {os.getloadavg()}")
    for executor, rows in results.items():
        rates = [row["rate"] for row in rows]
        walls = [row["wall"] for row in rows]
        print(f"{executor:5}: exec/s median {statistics.median(rates):.0f} "
              f"({' / '.join(f'{x:.0f}' for x in rates)}); wall median "
              f"{statistics.median(walls):.2f} s")


if __name__ == "__main__":
    main()
