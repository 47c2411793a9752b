"""Peak memory against campaign length: does a long ``explore`` grow?

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/memory.py [--lengths 1000,10000,50000]
                                             [--driver trio|direct ...] [--workload W]

Each campaign is a fresh ``vmemu explore W --strategy random --iterations N
--keep-going --json --driver D`` process (reference variant, every checker on,
one job); its peak resident set size is the child's ``ru_maxrss``, read with
``os.wait4``.  Flat memory means the peak does not grow with N beyond what a
campaign keeps on purpose: its summary's distinct-schedule digests (one
12-byte digest per distinct schedule, for the coverage statement), which the
report counts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

from emulator.sched.drivers import DRIVERS


def campaign(workload: str, n: int, driver: str) -> tuple[float, float, dict[str, object]]:
    """Run one campaign of ``n`` executions; return (peak RSS in MiB, seconds, summary)."""
    argv = [sys.executable, "-m", "emulator", "explore", workload, "--strategy", "random",
            "--iterations", str(n), "--keep-going", "--json", "--driver", driver,
            "--save-dir", "/tmp/vmemu-memory-bench"]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    summary: dict[str, object] = json.loads(out) if out.strip() else {}
    return usage.ru_maxrss / 1024, elapsed, summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="1000,10000,50000")
    ap.add_argument("--driver", action="append", default=[], choices=tuple(DRIVERS))
    ap.add_argument("--workload", default="writers_vs_msync")
    args = ap.parse_args(argv)
    lengths = [int(x) for x in args.lengths.split(",")]
    drivers = args.driver or ["direct"]
    print(f"nproc {os.cpu_count()}, Python {platform.python_version()}, {platform.machine()}; "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    print("| driver | executions | peak RSS MiB | seconds | executions/s | distinct schedules |")
    print("|---|---|---|---|---|---|")
    for driver in drivers:
        for n in lengths:
            rss, sec, summary = campaign(args.workload, n, driver)
            confidence = summary.get("confidence")
            schedules = confidence.get("distinct_schedules", "?") if isinstance(
                confidence, dict) else "?"
            print(f"| {driver} | {n} | {rss:.1f} | {sec:.1f} | {n / sec:.0f} | {schedules} |",
                  flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
