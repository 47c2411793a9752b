"""Steps per second of the emulator against a bare Trio baton handoff loop.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/steps.py [--rounds N] [--executions N]
                                            [--handoffs N] [--markdown] [--profile]

Everything runs in one process and one ``trio.run``.  Each round measures, in
turn (the order rotates from round to round so that drift on a shared machine
does not always hit the same row):

* the emulator: ``--executions`` executions of ``writers_vs_msync`` with 4 CPUs,
  reference variant, ``RandomStrategy``, all registered checkers; steps are the
  sum of ``Execution.steps`` (schedule points), divided by the wall time of the
  whole batch (so per-execution setup -- kernel build, checker install, the
  final flush -- is included, as it is in a campaign);
* the same with ``checkers=[]``;
* the baseline: 4 Trio tasks passing a baton with ``trio.lowlevel.reschedule``
  + ``wait_task_rescheduled``, the next holder picked with a ``random.Random``
  among the three others (so every handoff is a real Trio task switch).

Every round runs the same seeds, so the work is identical and the spread is
machine noise.  Reported: medians and min-max over rounds, and the ratio
emulator/baseline computed per round (median of the per-round ratios).

A separate, untimed pass with a counting strategy (a ``RandomStrategy``
subclass; same seeds, hence the same executions) reports how many schedule
points actually switched agents: a point whose chosen agent is the current one
costs no Trio handoff at all.

``--profile`` runs one extra emulator batch (checkers on) under cProfile and
prints the top functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import outcome
import trio

from emulator.check import all_checkers
from emulator.machine import Machine
from emulator.sched.strategies import RandomStrategy, Strategy
from emulator.variants import load_variant
from workloads import build_workload

WORKLOAD = "writers_vs_msync"
CPUS = 4
BUILD_SEED = 1
FIRST_SEED = 0


# -- the emulator --------------------------------------------------------------


def make_machine(checkers: list[Callable[..., Any]], strategy: Strategy | None = None) -> Machine:
    spec = build_workload(WORKLOAD, {"cpus": CPUS}, BUILD_SEED, None)
    return Machine(spec, load_variant("reference"), strategy or RandomStrategy(), checkers=checkers)


async def run_emulator(machine: Machine, executions: int) -> tuple[int, float, dict[str, int]]:
    """Run ``executions`` executions; return (total steps, seconds, outcome counts)."""
    outcomes: dict[str, int] = {}
    steps = 0
    start = time.perf_counter()
    for seed in range(FIRST_SEED, FIRST_SEED + executions):
        ex = await machine.execute(seed)
        steps += ex.steps
        outcomes[ex.outcome] = outcomes.get(ex.outcome, 0) + 1
    elapsed = time.perf_counter() - start
    return steps, elapsed, outcomes


class CountingStrategy(RandomStrategy):
    """RandomStrategy that counts whether each choice leaves the current agent.

    ``current`` is in ``runnable`` exactly at a schedule point (``point()``);
    it is not when the current agent blocks, finishes, or at the first baton,
    where any choice is a forced handoff.
    """

    name = "random"

    def __init__(self) -> None:
        super().__init__()
        self.point_decisions = 0  # schedule points with two or more runnable agents
        self.point_switches = 0  # ... whose choice was another agent
        self.forced = 0  # decisions where the current agent could not go on

    def choose(self, runnable: Sequence[int], current: int) -> int:
        chosen = super().choose(runnable, current)
        if current in runnable:
            self.point_decisions += 1
            if chosen != current:
                self.point_switches += 1
        else:
            self.forced += 1
        return chosen


# -- the baseline ----------------------------------------------------------------


class _Stop(BaseException):
    pass


def _no_abort(_: Any) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED


async def run_baseline(handoffs: int, ntasks: int = CPUS, seed: int = 0) -> tuple[int, float]:
    """Pass a baton ``handoffs`` times among ``ntasks`` tasks; return (handoffs, seconds)."""
    rng = random.Random(seed)
    tasks: list[trio.lowlevel.Task | None] = [None] * ntasks
    main = trio.lowlevel.current_task()
    left = handoffs
    parked = 0

    async def worker(i: int) -> None:
        nonlocal left, parked
        tasks[i] = trio.lowlevel.current_task()
        parked += 1
        if parked == ntasks:
            trio.lowlevel.reschedule(main)
        try:
            while True:
                await trio.lowlevel.wait_task_rescheduled(_no_abort)
                if left == 0:
                    for j, t in enumerate(tasks):
                        if j != i and t is not None:
                            trio.lowlevel.reschedule(t, outcome.Error(_Stop()))
                    trio.lowlevel.reschedule(main)
                    return
                left -= 1
                j = int(rng.random() * (ntasks - 1))
                if j >= i:
                    j += 1
                nxt = tasks[j]
                assert nxt is not None
                trio.lowlevel.reschedule(nxt)
        except _Stop:
            return

    async with trio.open_nursery() as nursery:
        for i in range(ntasks):
            nursery.start_soon(worker, i)
        await trio.lowlevel.wait_task_rescheduled(_no_abort)  # all parked
        start = time.perf_counter()
        first = tasks[0]
        assert first is not None
        trio.lowlevel.reschedule(first)
        await trio.lowlevel.wait_task_rescheduled(_no_abort)  # baton run out
        elapsed = time.perf_counter() - start
    return handoffs, elapsed


# -- the benchmark -----------------------------------------------------------------


@dataclass
class Results:
    checkers_on: list[float] = field(default_factory=list)  # steps/s per round
    checkers_off: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)  # handoffs/s per round
    steps_per_batch: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0


async def bench(rounds: int, executions: int, handoffs: int) -> Results:
    res = Results()
    on = make_machine(all_checkers())
    off = make_machine([])
    # Warm-up (imports, caches, allocator): not measured.
    await run_emulator(on, max(1, executions // 10))
    await run_emulator(off, max(1, executions // 10))
    await run_baseline(max(1, handoffs // 10))

    async def row_on() -> None:
        steps, sec, oc = await run_emulator(on, executions)
        res.checkers_on.append(steps / sec)
        res.steps_per_batch = steps
        res.outcomes = oc

    async def row_off() -> None:
        steps, sec, _ = await run_emulator(off, executions)
        res.checkers_off.append(steps / sec)

    async def row_base() -> None:
        n, sec = await run_baseline(handoffs)
        res.baseline.append(n / sec)

    rows = [row_on, row_off, row_base]
    start = time.perf_counter()
    for r in range(rounds):
        for k in range(len(rows)):
            await rows[(r + k) % len(rows)]()
    res.elapsed = time.perf_counter() - start
    return res


async def count_switches(executions: int) -> tuple[CountingStrategy, int]:
    strategy = CountingStrategy()
    machine = make_machine(all_checkers(), strategy)
    steps, _, _ = await run_emulator(machine, executions)
    return strategy, steps


def profile_once(executions: int, top: int = 15) -> str:
    machine = make_machine(all_checkers())
    prof = cProfile.Profile()

    async def main() -> None:
        prof.enable()
        await run_emulator(machine, executions)
        prof.disable()

    trio.run(main)
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def _med(xs: list[float]) -> float:
    return statistics.median(xs)


def _fmt_rate(x: float) -> str:
    return f"{x / 1000:.1f}k"


def _range(xs: list[float]) -> str:
    return f"{_fmt_rate(min(xs))}–{_fmt_rate(max(xs))}"


def report(args: argparse.Namespace, res: Results, counter: CountingStrategy, csteps: int) -> str:
    ratio_on = [a / b for a, b in zip(res.checkers_on, res.baseline, strict=True)]
    ratio_off = [a / b for a, b in zip(res.checkers_off, res.baseline, strict=True)]
    n_check = len(all_checkers())
    switches_per_step = counter.point_switches / csteps if csteps else 0.0
    handoffs_per_step = (counter.point_switches + counter.forced) / csteps if csteps else 0.0
    trio_share = _med(res.checkers_on) * handoffs_per_step / _med(res.baseline)
    steps_per_ex = res.steps_per_batch / args.executions
    lines: list[str] = []
    if args.markdown:
        lines += [
            "| row | median | min–max | ratio to baseline (median, min–max) |",
            "|---|---|---|---|",
            f"| emulator, checkers on ({n_check} registered), steps/s | "
            f"{_fmt_rate(_med(res.checkers_on))} | {_range(res.checkers_on)} | "
            f"{_med(ratio_on):.2f} ({min(ratio_on):.2f}–{max(ratio_on):.2f}) |",
            f"| emulator, checkers off, steps/s | {_fmt_rate(_med(res.checkers_off))} | "
            f"{_range(res.checkers_off)} | "
            f"{_med(ratio_off):.2f} ({min(ratio_off):.2f}–{max(ratio_off):.2f}) |",
            f"| baseline: 4-task trio baton, handoffs/s | {_fmt_rate(_med(res.baseline))} | "
            f"{_range(res.baseline)} | 1 |",
            "",
            f"- {args.rounds} alternating rounds; per round {args.executions} executions "
            f"({res.steps_per_batch} steps, {steps_per_ex:.0f} per execution; outcomes "
            f"{res.outcomes}) and {args.handoffs} baseline handoffs; "
            f"measured part took {res.elapsed:.1f} s.",
            f"- Schedule points that switched agents: {counter.point_switches} of {csteps} "
            f"steps ({100 * switches_per_step:.0f}%); {counter.point_decisions} points had a "
            f"choice, the rest had one runnable agent. Forced handoffs (block, finish, first "
            f"baton, with a choice): {counter.forced}. Trio handoffs per step "
            f"(lower bound): {handoffs_per_step:.2f}.",
            f"- At that rate, Trio handoffs alone would account for ~{100 * trio_share:.0f}% "
            f"of the emulator's time with checkers on (handoffs per step × steps/s ÷ "
            f"baseline handoffs/s).",
        ]
    else:
        lines += [
            f"{WORKLOAD} cpus={CPUS}, {args.executions} executions/round "
            f"({res.steps_per_batch} steps, outcomes {res.outcomes}), "
            f"{args.rounds} rounds, {res.elapsed:.1f} s",
            f"emulator, checkers on ({n_check}): median {_med(res.checkers_on):,.0f} steps/s "
            f"(min {min(res.checkers_on):,.0f}, max {max(res.checkers_on):,.0f})",
            f"emulator, checkers off:   median {_med(res.checkers_off):,.0f} steps/s "
            f"(min {min(res.checkers_off):,.0f}, max {max(res.checkers_off):,.0f})",
            f"baseline trio baton:      median {_med(res.baseline):,.0f} handoffs/s "
            f"(min {min(res.baseline):,.0f}, max {max(res.baseline):,.0f})",
            f"ratio emulator/baseline:  on {_med(ratio_on):.2f} "
            f"({min(ratio_on):.2f}-{max(ratio_on):.2f}), off {_med(ratio_off):.2f} "
            f"({min(ratio_off):.2f}-{max(ratio_off):.2f})",
            f"switching points: {counter.point_switches}/{csteps} steps "
            f"({100 * switches_per_step:.1f}%), points with a choice "
            f"{counter.point_decisions}, forced handoffs {counter.forced}, "
            f"trio handoffs/step >= {handoffs_per_step:.2f}, "
            f"est. share of time in trio handoffs ~{100 * trio_share:.0f}%",
        ]
    return "\n".join(lines)


def machine_line() -> str:
    return (
        f"nproc {os.cpu_count()}, Python {platform.python_version()} "
        f"({platform.python_implementation()}), trio {trio.__version__}, {platform.machine()}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--executions", type=int, default=300, help="emulator executions per round")
    ap.add_argument("--handoffs", type=int, default=60_000, help="baseline handoffs per round")
    ap.add_argument("--markdown", action="store_true", help="print a table for BENCHMARKS.md")
    ap.add_argument("--profile", action="store_true",
                    help="also profile one emulator batch (checkers on) with cProfile")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.executions < 1 or args.handoffs < 1:
        ap.error("--rounds, --executions and --handoffs must be positive")

    async def run_all() -> tuple[Results, CountingStrategy, int]:
        res = await bench(args.rounds, args.executions, args.handoffs)
        counter, csteps = await count_switches(args.executions)
        return res, counter, csteps

    res, counter, csteps = trio.run(run_all)
    if csteps != res.steps_per_batch:
        print(f"warning: counting pass ran {csteps} steps, timed pass {res.steps_per_batch}",
              file=sys.stderr)
    print(machine_line())
    print(report(args, res, counter, csteps))
    if args.profile:
        print()
        print(profile_once(args.executions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
