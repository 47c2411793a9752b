"""The search: executions and seconds to the first failure, per mutant and per strategy.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/search.py [--reps 10] [--cap 20] [--jobs 2]
        [--strategies random,pct,pos,portfolio,uniform] [--mutants a,b] [--json out.json]
        [--markdown]

The report goes to stdout as aligned plain-text tables; with ``--markdown``, as the
Markdown tables of BENCHMARKS.md (cells whose median is over 0.5 s in bold), ready to paste.

Part 1, vmemu: for every built-in mutant and every strategy (pct at depth 3), ``--reps`` hunts.
A hunt is what ``vmemu mutants`` does (emulator.mutants.hunt): every workload under the
mutant's profile, with the strategy (for the portfolio: under each of its members), as the arms
of the adaptive portfolio (which chooses a workload, its members taking turns), the seed going
up by one per execution (``uniform``: the workloads taking turns, round-robin, without
steering: the baseline of the steering) -- except that repetition ``r`` starts at seed ``r *
100000``. It ends at the first execution in which a rule the mutant is expected to trip
(``Variant.catches``) fires, or after ``--cap`` seconds (a miss). Reported per cell: the median
executions and seconds to that first failure over the repetitions, and the misses. A median
over hunts with misses counts a miss as "more than any catch"; when half or more missed, the
median is reported as ``>cap``.

Part 2, the same bug found without vmemu (benchmarks/baselines.py, a self-contained model with
its own checks): ``writers_vs_msync`` with ``no_write_protect`` and ``invalidate_shared_file``
with freebsd5's invalidate bug (vmemu's ``invalidate_frees_dirty``), each (a) as Trio tasks
with random ``trio.sleep(0)`` checkpoints and (b) as real threads with random ``time.sleep``;
``--reps`` repetitions of each, different seeds, the same cap.  For comparison, vmemu on the
same single workload and mutant, every strategy, seeds from ``r * 100000``.  A sanity pass runs
the baselines' correct versions for a few seconds and must see no lost store.

Hunts run in ``--jobs`` worker processes (one hunt per task), so with 2 jobs on a 2-core
machine two hunts share the machine; executions to first failure do not depend on that (every
vmemu execution is a function of its seed), seconds do a little.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import multiprocessing
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import trio

from emulator.mutants import hunt
from emulator.portfolio import arm_label
from emulator.variants import MUTANTS
from workloads import WORKLOADS

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baselines  # benchmarks/ is not a package: import it from beside this file

STRATEGIES = ("random", "pct", "pos", "portfolio")
UNIFORM = "uniform"  # the portfolio's workloads, round-robin (not one of the default columns)
PCT_DEPTH = 3
SEED_STRIDE = 100_000
SLOW_SECONDS = 0.5  # --markdown bolds a cell whose median time is over this
# Part 2: (baseline scenario, vmemu workload, vmemu mutant)
COMPARISONS = (
    ("no_write_protect", "writers_vs_msync", "no_write_protect"),
    ("invalidate", "invalidate_shared_file", "invalidate_frees_dirty"),
)


@dataclass
class HuntResult:
    kind: str  # "vmemu" or "baseline"
    subject: str  # mutant (vmemu) or scenario (baseline)
    method: str  # strategy, or trio/threads variant
    rep: int
    caught: bool
    executions: int
    seconds: float
    workload: str | None = None
    seed: int | None = None
    rule: str | None = None
    arm: str | None = None  # the strategy that caught it (the portfolio's member)
    cpu_seconds: float | None = None  # the hunt process's CPU time (vmemu hunts)


async def _vmemu_hunt(mutant: str, strategy: str, rep: int, cap: float,
                      workloads: tuple[str, ...]) -> HuntResult:
    """``vmemu mutants``'s hunt (emulator.mutants.hunt), from seed ``rep * SEED_STRIDE``."""
    uniform = strategy == UNIFORM
    h = await hunt(MUTANTS[mutant], cap, "portfolio" if uniform else strategy,
                   first_seed=rep * SEED_STRIDE, workloads=workloads, uniform=uniform)
    if not h.expected_rule_seen or h.run is None:
        return HuntResult("vmemu", mutant, strategy, rep, False, h.executions, h.elapsed)
    # The hunt stops at the first execution showing an expected rule.
    return HuntResult("vmemu", mutant, strategy, rep, True, h.executions, h.elapsed,
                      h.workload, h.seed, h.rule, arm_label(h.run, workload=False))


def run_task(task: tuple[Any, ...]) -> HuntResult:
    kind = task[0]
    if kind == "vmemu":
        _, mutant, strategy, rep, cap, workloads = task
        # CPU time as well as wall-clock: on a loaded machine it still says what the hunt
        # costs (the hunt runs alone in its worker process).
        cpu = time.process_time()
        result = trio.run(_vmemu_hunt, mutant, strategy, rep, cap, workloads)
        result.cpu_seconds = time.process_time() - cpu
        return result
    _, scenario, method, rep, cap = task
    if method == "trio":
        h = baselines.hunt_trio(scenario, rep, cap)
    elif method == "trio, no inserted yields":
        h = baselines.hunt_trio(scenario, rep, cap, p_yield=0.0)
    elif method == "threads":
        h = baselines.hunt_threads(scenario, rep, cap)
    elif method == "threads, no inserted sleeps":
        h = baselines.hunt_threads(scenario, rep, cap, p_yield=0.0)
    elif method.startswith("sanity"):
        harness = method.split()[-1]
        hunt = baselines.hunt_trio if harness == "trio" else baselines.hunt_threads
        h = hunt(scenario, rep, cap, buggy=False)
    else:
        raise AssertionError(method)
    return HuntResult("baseline", scenario, method, rep, h.caught, h.executions, h.seconds)


BASELINE_METHODS = ("trio", "trio, no inserted yields", "threads", "threads, no inserted sleeps")


def tasks(args: argparse.Namespace) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    all_workloads = tuple(WORKLOADS)
    for rep in range(args.reps):
        for mutant in args.mutants:
            for strategy in args.strategies:
                out.append(("vmemu", mutant, strategy, rep, args.cap, all_workloads))
    if args.baselines:
        for scenario, workload, mutant in COMPARISONS:
            for rep in range(args.reps):
                for strategy in args.strategies:
                    out.append(("vmemu", mutant, strategy, rep, args.cap, (workload,)))
                for method in BASELINE_METHODS:
                    out.append(("baseline", scenario, method, rep, args.cap))
            for harness in ("trio", "threads"):
                out.append(("baseline", scenario, f"sanity {harness}", 0, args.sanity))
    return out


# -- reporting --------------------------------------------------------------------------------


def _median(results: list[HuntResult], attr: str) -> float:
    """Median with misses counted as +inf; inf when half or more missed."""
    values = sorted(getattr(r, attr) if r.caught else math.inf for r in results)
    return float(statistics.median(values)) if values else math.nan


def _fmt_seconds(s: float) -> str:
    if s < 0.01:
        return f"{s * 1000:.1f} ms"
    if s < 10:
        return f"{s:.2f} s"
    return f"{s:.0f} s"


def cell(results: list[HuntResult], cap: float, markdown: bool = False) -> str:
    misses = sum(not r.caught for r in results)
    ex, sec = _median(results, "executions"), _median(results, "seconds")
    if math.isinf(ex):
        text = f">{cap:.0f} s"
    else:
        text = f"{ex:.0f} · {_fmt_seconds(sec)}"
    if markdown and sec > SLOW_SECONDS:
        text = f"**{text}**"
    if misses:
        text += f" ({misses} miss)"
    return text


def table(header: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    """A table as Markdown, or as plain text with aligned columns."""
    if markdown:
        return (["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
                + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--cap", type=float, default=20.0, help="seconds per hunt at most")
    p.add_argument("--sanity", type=float, default=3.0,
                   help="seconds of the baselines' correct versions (must find nothing)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--mutants", default=",".join(MUTANTS))
    p.add_argument("--no-baselines", dest="baselines", action="store_false")
    p.add_argument("--json", default=None, help="write every hunt's result here")
    p.add_argument("--markdown", action="store_true",
                   help="print the tables as Markdown, as BENCHMARKS.md shows them")
    args = p.parse_args(argv)
    args.strategies = args.strategies.split(",")
    args.mutants = args.mutants.split(",")
    todo = tasks(args)
    started = time.perf_counter()
    results: list[tuple[tuple[Any, ...], HuntResult]] = []
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
        futures = {pool.submit(run_task, t): t for t in todo}
        for done, f in enumerate(concurrent.futures.as_completed(futures), 1):
            results.append((futures[f], f.result()))
            if done % 50 == 0 or done == len(todo):
                print(f"[{done}/{len(todo)} hunts, {time.perf_counter() - started:.0f} s]",
                      file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    rotation = [r for t, r in results if t[0] == "vmemu" and len(t[5]) > 1]
    single = [(t, r) for t, r in results if t[0] == "vmemu" and len(t[5]) == 1]
    base = [r for t, r in results if t[0] == "baseline"]

    out: list[str] = []
    out.append(f"Machine: nproc {os.cpu_count()}, CPython {platform.python_version()}, "
               f"trio {trio.__version__}, {platform.machine()}; {args.jobs} worker processes; "
               f"whole run {elapsed:.0f} s.")
    out.append("")
    out.append(f"Part 1: median executions · seconds to the first expected violation over "
               f"{args.reps} hunts (adaptive over all {len(WORKLOADS)} workloads, seeds from "
               f"r·{SEED_STRIDE}), cap {args.cap:.0f} s per hunt; misses in parentheses.")
    out.append("")
    by: dict[tuple[str, str], list[HuntResult]] = {}
    for r in rotation:
        by.setdefault((r.subject, r.method), []).append(r)
    md = args.markdown
    out.extend(table(
        ["mutant"] + [f"{s} (depth {PCT_DEPTH})" if s == "pct" else s for s in args.strategies],
        [[f"`{mutant}`" if md else mutant]
         + [cell(by.get((mutant, s), []), args.cap, md) for s in args.strategies]
         for mutant in args.mutants], md))
    out.append("")
    out.append("The same hunts in CPU seconds of the hunt's process (median · max), and the "
               "largest executions and wall-clock seconds to the first failure:")
    out.append("")
    rows = []
    for mutant in args.mutants:
        row = [f"`{mutant}`" if md else mutant]
        for s in args.strategies:
            rs = by.get((mutant, s), [])
            cpu = sorted((r.cpu_seconds or 0.0) if r.caught else math.inf for r in rs)
            caught = [r for r in rs if r.caught]
            worst = (f"{max(r.executions for r in caught)} · "
                     f"{_fmt_seconds(max(r.seconds for r in caught))}") if caught else "-"
            row.append(f"{_fmt_seconds(statistics.median(cpu))} · {_fmt_seconds(max(cpu))}"
                       f"; {worst}" if rs else "")
        rows.append(row)
    out.extend(table(["mutant"] + [f"{s}: CPU median · max; max executions · seconds"
                                   for s in args.strategies], rows, md))
    out.append("")
    totals = []
    for s in args.strategies:
        rs = [r for r in rotation if r.method == s]
        caught = sum(r.caught for r in rs)
        secs = sum(r.seconds for r in rs)
        cells_missed = sum(
            1 for m in args.mutants
            if sum(not r.caught for r in by.get((m, s), [])) * 2 >= len(by.get((m, s), [])) > 0)
        totals.append(f"{s}: {caught}/{len(rs)} hunts caught, {cells_missed} mutants with "
                      f"median >cap, {secs:.0f} s of hunting")
    out.append("Totals: " + "; ".join(totals) + ".")
    if args.baselines:
        out.append("")
        out.append(f"Part 2: the same bug without vmemu ({args.reps} repetitions each, cap "
                   f"{args.cap:.0f} s; median executions · seconds to the first lost store, "
                   "and seconds per execution).")
        out.append("")
        part2: list[list[str]] = []
        for scenario, workload, mutant in COMPARISONS:
            label = f"`{workload}` + `{mutant}`" if md else f"{workload} + {mutant}"
            rows: list[tuple[str, list[HuntResult]]] = []
            for s in args.strategies:
                rs = [r for t, r in single if r.subject == mutant and r.method == s
                      and t[5] == (workload,)]
                rows.append((f"vmemu {s}" + (f" (depth {PCT_DEPTH})" if s == "pct" else ""),
                             rs))
            for method in BASELINE_METHODS:
                rs = [r for r in base if r.subject == scenario and r.method == method]
                rows.append((f"baseline: {method}", rs))
            for name, rs in rows:
                if not rs:
                    continue
                ex, sec = _median(rs, "executions"), _median(rs, "seconds")
                per = sum(r.seconds for r in rs) / max(1, sum(r.executions for r in rs))
                caught = sum(r.caught for r in rs)
                part2.append([label, name, f"{caught}/{len(rs)}",
                              ">cap" if math.isinf(ex) else f"{ex:.0f}",
                              ">cap" if math.isinf(sec) else _fmt_seconds(sec),
                              f"{per * 1000:.2f} ms"])
                label = ""  # the bug is named once, on its first row
        out.extend(table(["bug", "method", "caught", "median executions", "median seconds",
                          "s / execution"], part2, md))
        sanity = [r for r in base if r.method.startswith("sanity")]
        out.append("")
        out.append("Sanity (the baselines' correct versions): " + "; ".join(
            f"{r.subject} {r.method.split()[-1]}: {r.executions} executions in "
            f"{r.seconds:.1f} s, {'LOST STORE REPORTED' if r.caught else 'no lost store'}"
            for r in sorted(sanity, key=lambda r: (r.subject, r.method))) + ".")
    print("\n".join(out))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": dict(vars(args)),
                       "elapsed": elapsed,
                       "hunts": [{**asdict(r), "workloads": list(t[5]) if t[0] == "vmemu"
                                  else None} for t, r in results]}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
