"""Steps per second of the emulator, under each driver, against a bare Trio baton loop.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/steps.py [--rounds N] [--executions N]
                                            [--handoffs N] [--markdown]
                                            [--profile [DRIVER]]

Everything runs in one process and one ``trio.run``.  Each round measures, in
turn (the order rotates from round to round so that drift on a shared machine
does not always hit the same row):

* the emulator under the Trio driver: ``--executions`` executions of
  ``writers_vs_msync`` with 4 CPUs, reference variant, ``RandomStrategy``, all
  registered checkers; steps are the sum of ``Execution.steps`` (schedule
  points), divided by the wall time of the whole batch (so per-execution setup
  -- kernel build, checker install, the final flush -- is included, as it is in
  a campaign);
* the same under the direct driver;
* both again with ``checkers=[]``;
* setup, the way ``vmemu explore`` runs an execution: a campaign shard
  (``run_shard``: the portfolio's bookkeeping, the spec for the seed, the
  machine's execution, the coverage accounting) of ``--executions``
  executions of the same workload with the random strategy, per driver.  Its
  time is split at the driver's ``run`` (every driver's ``run`` is wrapped
  with a clock): everything outside it -- the spec, the kernel, agents,
  checkers and coverage tracker built before; the checkers' end, the final
  flush, the outcome and the coverage accounting after -- is setup, taken from
  the real executions.  Inside it, the agents' start and finish (and, under
  Trio, lending the run's pooled agent tasks out and back) are setup too: they
  are taken from the same campaign with every CPU's program emptied
  (``EmptiedRunConfig``), where the driver's ``run`` does nothing else.
  Setup share = (outside the run, full + inside the run, emptied) / full, per
  round.  (Until issue 12's setup work
  this row timed ``Machine.execute`` of emptied programs alone, which leaves
  out the spec built for every seed and the campaign's accounting and counts
  the end's checks at an empty execution's size; that number is still printed,
  as "machine only".)
* the baseline: 4 Trio tasks passing a baton with ``trio.lowlevel.reschedule``
  + ``wait_task_rescheduled``, the next holder picked with a ``random.Random``
  among the three others (so every handoff is a real Trio task switch).

Every round runs the same seeds, so the work is identical and the spread is
machine noise.  Reported: medians and min-max over rounds, and the ratios
(to the baseline, direct to Trio, setup to execution) computed per round
(median of the per-round ratios).

A separate, untimed pass with a counting strategy (a ``RandomStrategy``
subclass; same seeds, hence the same executions) reports how many schedule
points actually switched agents: a point whose chosen agent is the current one
costs no Trio handoff at all.

``--profile`` runs one extra emulator batch (checkers on, the Trio driver unless
another is named) under cProfile and prints the top functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
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

from emulator.campaign import Config, run_shard
from emulator.check import all_checkers
from emulator.config import RunConfig
from emulator.machine import Machine
from emulator.sched.drivers import DRIVERS
from emulator.sched.strategies import RandomStrategy, Strategy
from emulator.spec import Spec
from emulator.variants import load_variant
from workloads import build_workload

WORKLOAD = "writers_vs_msync"
CPUS = 4
BUILD_SEED = 1
FIRST_SEED = 0


# -- the emulator --------------------------------------------------------------


def make_machine(checkers: list[Callable[..., Any]], strategy: Strategy | None = None,
                 driver: str = "trio", empty: bool = False) -> Machine:
    """The benchmark's machine; ``empty``: every CPU's program emptied (setup only)."""
    spec = build_workload(WORKLOAD, {"cpus": CPUS}, BUILD_SEED, None)
    if empty:
        spec = dataclasses.replace(spec, cpus=[dataclasses.replace(c, program=[])
                                               for c in spec.cpus])
    return Machine(spec, load_variant("reference"), strategy or RandomStrategy(),
                   checkers=checkers, driver=driver)


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


# The last spec emptied and its emptied copy: the campaign asks for a spec per
# execution; emptying the same one again would be the benchmark's cost, not
# the emulator's.
_emptied: list[tuple[Spec, Spec]] = []


def emptied(spec: Spec) -> Spec:
    """``spec`` with every CPU's program dropped (memoised for the last spec)."""
    if _emptied and _emptied[0][0] is spec:
        return _emptied[0][1]
    out = dataclasses.replace(spec, cpus=tuple(dataclasses.replace(c, program=())
                                               for c in spec.cpus))
    _emptied[:] = [(spec, out)]
    return out


class EmptiedRunConfig(RunConfig):
    """A RunConfig whose specs have their programs emptied (``dataclasses.replace``
    keeps the class, so the portfolio's per-seed configs are emptied too)."""

    def spec(self, seed: int | None = None) -> Spec:
        return emptied(super().spec(seed))


def explore_config(driver: str, executions: int, empty: bool = False) -> Config:
    """The campaign ``vmemu explore WORKLOAD --param cpus=4 --strategy random
    --iterations N --keep-going`` runs, in this process."""
    kind = EmptiedRunConfig if empty else RunConfig
    run = kind(workload=WORKLOAD, params=(("cpus", str(CPUS)),), strategy="random",
               seed=FIRST_SEED, driver=driver)
    return Config(run, executions, None, stop_on_first=False)


# Seconds spent inside the drivers' ``run`` so far (see _time_runs).
_in_run = [0.0]


def _time_runs() -> None:
    """Wrap every driver's ``run`` with a clock adding to ``_in_run`` (once)."""
    for kind in DRIVERS.values():
        if getattr(kind.run, "timed", False):
            continue
        original = kind.run

        async def run(self: Any, bodies: Any, original: Any = original) -> None:
            start = time.perf_counter()
            try:
                await original(self, bodies)
            finally:
                _in_run[0] += time.perf_counter() - start

        run.timed = True  # type: ignore[attr-defined]
        kind.run = run  # type: ignore[method-assign]


async def run_explore(cfg: Config) -> tuple[int, float, float]:
    """Run the campaign shard; return (executions, seconds, seconds inside the driver's
    ``run``)."""
    _time_runs()
    in_run = _in_run[0]
    start = time.perf_counter()
    summary = await run_shard(cfg, 0, 1)
    elapsed = time.perf_counter() - start
    assert not summary.failures, summary.failures[:1]
    return summary.executions, elapsed, _in_run[0] - in_run


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
    on: dict[str, list[float]] = field(default_factory=dict)  # driver -> steps/s per round
    off: dict[str, list[float]] = field(default_factory=dict)
    # driver -> s per execution: Machine.execute alone, emptied programs / full
    setup: dict[str, list[float]] = field(default_factory=dict)
    full: dict[str, list[float]] = field(default_factory=dict)
    # driver -> s per execution: a campaign shard (what explore runs), emptied / full
    xsetup: dict[str, list[float]] = field(default_factory=dict)  # see explore_setup
    xfull: dict[str, list[float]] = field(default_factory=dict)
    xout: dict[str, list[float]] = field(default_factory=dict)  # full: outside the run
    xempty: dict[str, list[float]] = field(default_factory=dict)  # emptied: inside the run
    baseline: list[float] = field(default_factory=list)  # handoffs/s per round
    steps_per_batch: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    load: list[float] = field(default_factory=list)  # 1-minute load average, per round


async def bench(rounds: int, executions: int, handoffs: int) -> Results:
    res = Results()
    rows: list[Callable[[], Any]] = []
    warm: list[Callable[[], Any]] = []
    few = max(1, executions // 10)  # executions per warm-up batch
    for driver in DRIVERS:
        on = make_machine(all_checkers(), driver=driver)
        off = make_machine([], driver=driver)
        empty = make_machine(all_checkers(), driver=driver, empty=True)
        xfull = explore_config(driver, executions)
        xempty = explore_config(driver, executions, empty=True)
        for d in (res.on, res.off, res.setup, res.full, res.xsetup, res.xfull, res.xout,
                  res.xempty):
            d[driver] = []

        async def row_on(on: Machine = on, driver: str = driver) -> None:
            steps, sec, oc = await run_emulator(on, executions)
            res.on[driver].append(steps / sec)
            res.full[driver].append(sec / executions)
            res.steps_per_batch = steps
            res.outcomes = oc

        async def row_off(off: Machine = off, driver: str = driver) -> None:
            steps, sec, _ = await run_emulator(off, executions)
            res.off[driver].append(steps / sec)

        async def row_setup(empty: Machine = empty, driver: str = driver) -> None:
            _, sec, _ = await run_emulator(empty, executions)
            res.setup[driver].append(sec / executions)

        async def row_xfull(cfg: Config = xfull, driver: str = driver) -> None:
            n, sec, in_run = await run_explore(cfg)
            res.xfull[driver].append(sec / n)
            res.xout[driver].append((sec - in_run) / n)

        async def row_xsetup(cfg: Config = xempty, driver: str = driver) -> None:
            n, _, in_run = await run_explore(cfg)
            res.xempty[driver].append(in_run / n)

        rows += [row_on, row_off, row_setup, row_xfull, row_xsetup]
        warm += [lambda m=on: run_emulator(m, few),
                 lambda m=off: run_emulator(m, few),
                 lambda m=empty: run_emulator(m, few),
                 lambda d=driver: run_explore(explore_config(d, few)),
                 lambda d=driver: run_explore(explore_config(d, few, empty=True))]

    async def row_base() -> None:
        n, sec = await run_baseline(handoffs)
        res.baseline.append(n / sec)

    rows.append(row_base)
    # Warm-up (imports, caches, allocator): not measured.
    for w in warm:
        await w()
    await run_baseline(max(1, handoffs // 10))
    start = time.perf_counter()
    for r in range(rounds):
        res.load.append(os.getloadavg()[0])
        for k in range(len(rows)):
            await rows[(r + k) % len(rows)]()
    for driver in DRIVERS:  # per round: outside the run (full) + inside it (emptied)
        res.xsetup[driver] = [out + empty for out, empty in
                              zip(res.xout[driver], res.xempty[driver], strict=True)]
    res.elapsed = time.perf_counter() - start
    return res


async def count_switches(executions: int) -> tuple[CountingStrategy, int]:
    strategy = CountingStrategy()
    machine = make_machine(all_checkers(), strategy)
    steps, _, _ = await run_emulator(machine, executions)
    return strategy, steps


def profile_once(executions: int, driver: str, top: int = 15) -> str:
    machine = make_machine(all_checkers(), driver=driver)
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


def _ratios(xs: list[float], ys: list[float]) -> list[float]:
    return [x / y for x, y in zip(xs, ys, strict=True)]


def _rm(rs: list[float]) -> str:
    return f"{_med(rs):.2f} ({min(rs):.2f}–{max(rs):.2f})"


def report(args: argparse.Namespace, res: Results, counter: CountingStrategy, csteps: int) -> str:
    n_check = len(all_checkers())
    switches_per_step = counter.point_switches / csteps if csteps else 0.0
    handoffs_per_step = (counter.point_switches + counter.forced) / csteps if csteps else 0.0
    steps_per_ex = res.steps_per_batch / args.executions
    lines: list[str] = [
        "| row | median | min–max | ratio to baseline (median, min–max) |",
        "|---|---|---|---|",
    ]
    for driver in DRIVERS:
        for label, xs in ((f"checkers on ({n_check} registered)", res.on[driver]),
                          ("checkers off", res.off[driver])):
            lines.append(f"| {driver} driver, {label}, steps/s | {_fmt_rate(_med(xs))} | "
                         f"{_range(xs)} | {_rm(_ratios(xs, res.baseline))} |")
    lines.append(f"| baseline: 4-task trio baton, handoffs/s | {_fmt_rate(_med(res.baseline))} | "
                 f"{_range(res.baseline)} | 1 |")
    lines += [
        "",
        "| same-run ratio (median of per-round ratios, min–max) | value |",
        "|---|---|",
        f"| trio driver, checkers on ÷ trio baton | {_rm(_ratios(res.on['trio'], res.baseline))} |",
        f"| direct driver ÷ trio driver, checkers on | "
        f"{_rm(_ratios(res.on['direct'], res.on['trio']))} |",
        f"| direct driver ÷ trio driver, checkers off | "
        f"{_rm(_ratios(res.off['direct'], res.off['trio']))} |",
    ]
    for driver in DRIVERS:
        share = _ratios(res.xsetup[driver], res.xfull[driver])
        lines.append(f"| setup share of an execution, {driver} driver "
                     f"({1e6 * _med(res.xsetup[driver]):.0f} µs of "
                     f"{1e6 * _med(res.xfull[driver]):.0f} µs as explore runs it: "
                     f"{1e6 * _med(res.xout[driver]):.0f} outside the driver's run, "
                     f"{1e6 * _med(res.xempty[driver]):.0f} inside it with no program) "
                     f"| {_rm(share)} |")
    for driver in DRIVERS:
        share = _ratios(res.setup[driver], res.full[driver])
        lines.append(f"| setup share, machine only, {driver} driver "
                     f"({1e6 * _med(res.setup[driver]):.0f} µs of "
                     f"{1e6 * _med(res.full[driver]):.0f} µs, Machine.execute alone) "
                     f"| {_rm(share)} |")
    lines += [
        "",
        f"- {args.rounds} alternating rounds; per round and row {args.executions} executions "
        f"({res.steps_per_batch} steps, {steps_per_ex:.0f} per execution; outcomes "
        f"{ {str(k): v for k, v in res.outcomes.items()} }) and {args.handoffs} baseline "
        f"handoffs; measured part took {res.elapsed:.1f} s; 1-minute load average at the "
        f"start of each round {', '.join(f'{x:.1f}' for x in res.load)}.",
        f"- Schedule points that switched agents: {counter.point_switches} of {csteps} "
        f"steps ({100 * switches_per_step:.0f}%); {counter.point_decisions} points had a "
        f"choice, the rest had one runnable agent. Forced handoffs (block, finish, first "
        f"baton, with a choice): {counter.forced}. Handoffs per step (lower bound): "
        f"{handoffs_per_step:.2f}.",
    ]
    if not args.markdown:
        lines = [line.replace("| ", "").replace(" |", "  ") for line in lines
                 if not line.startswith("|---")]
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
    ap.add_argument("--profile", nargs="?", const="trio", default=None, choices=tuple(DRIVERS),
                    help="also profile one emulator batch (checkers on) with cProfile, under "
                    "this driver (default trio)")
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
        print(profile_once(args.executions, args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
