"""CPU time of hunts, and a digest of what they found (same executions before and after).

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/hunt_cpu.py [--reps 10] [--uniform-reps 3] [--cap 60]
        [--mutants a,b] [--save] [--json out.json]

Runs, one after the other in this process, ``--reps`` hunts of each mutant (what ``vmemu
mutants`` does: ``emulator.mutants.hunt`` with the portfolio; repetition ``r`` starts at
seed ``r * 100000``), then ``--uniform-reps`` of each with ``uniform=True``.  Reports the
median CPU time per hunt (``time.process_time``), the total, the executions and the CPU
time per execution; and a digest of every hunt's result but its timings (executions, the
first failure's rule, run, decisions and message, the coverage with its per-arm counts),
with ``--save`` also of the trace each hunt records of its reported execution.  Two trees
run with the same arguments must print the same digest when they run the same executions.
Under cachegrind (``PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no``) it counts
the instructions of a fixed set of hunts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from emulator.mutants import hunt
from emulator.variants import MUTANTS

DEFAULT_MUTANTS = ("fault_dirty_before_busy", "no_relookup_after_sleep",
                   "stop_after_map_change", "unreferenced_object", "munmap_drops_modified",
                   "skip_busy_page")


def _plain(result: dict[str, Any]) -> dict[str, Any]:
    """A hunt's JSON without what depends on the clock."""
    out = dict(result)
    out.pop("seconds_to_first", None)
    return out


async def _one(name: str, rep: int, cap: float, uniform: bool,
               folder: str | None) -> tuple[float, int, dict[str, Any]]:
    save = None if folder is None else str(Path(folder) / f"{name}-{rep}-{int(uniform)}")
    if save is not None:
        Path(save).mkdir()
    start = time.process_time()
    h = await hunt(MUTANTS[name], cap, "portfolio", save, first_seed=rep * 100000,
                   uniform=uniform)
    cpu = time.process_time() - start
    data = _plain(h.to_json())
    if h.trace is not None:
        data["trace"] = hashlib.sha256(Path(h.trace).read_bytes()).hexdigest()
        data["replay"] = None  # names the temporary folder
    return cpu, h.executions, data


async def _all(args: argparse.Namespace, folder: str | None) -> list[tuple[str, float, int,
                                                                           dict[str, Any]]]:
    rows = []
    for uniform, reps in ((False, args.reps), (True, args.uniform_reps)):
        for rep in range(reps):
            for name in args.mutants:
                cpu, executions, data = await _one(name, rep, args.cap, uniform, folder)
                rows.append((f"{name}/{rep}{'/uniform' if uniform else ''}", cpu, executions,
                             data))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--uniform-reps", type=int, default=3)
    ap.add_argument("--cap", type=float, default=60.0, help="seconds per hunt")
    ap.add_argument("--mutants", default=",".join(DEFAULT_MUTANTS))
    ap.add_argument("--save", action="store_true", help="record and digest each hunt's trace")
    ap.add_argument("--json", help="write every hunt's row here")
    args = ap.parse_args()
    args.mutants = args.mutants.split(",")
    start = time.process_time()
    if args.save:
        with tempfile.TemporaryDirectory() as folder:
            rows = trio.run(_all, args, folder)
    else:
        rows = trio.run(_all, args, None)
    total = time.process_time() - start
    executions = sum(r[2] for r in rows)
    cpus = [r[1] for r in rows]
    digest = hashlib.sha256(json.dumps([r[3] for r in rows], sort_keys=True).encode())
    print(f"{len(rows)} hunts, {executions} executions; CPU: median per hunt "
          f"{statistics.median(cpus) * 1000:.1f} ms, total {total:.2f} s, "
          f"{sum(cpus) / executions * 1000:.3f} ms per execution")
    print(f"digest {digest.hexdigest()[:16]}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{"hunt": r[0], "cpu": r[1], "executions": r[2], "result": r[3]} for r in rows],
            indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
