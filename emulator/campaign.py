"""Campaigns: many executions of one workload, in one process or several.

A campaign is described by a picklable :class:`Config`: a :class:`RunConfig` and
its stopping rules.  It runs as *shards*: shard ``i`` of ``n`` takes the seeds
``first + i``, ``first + i + n``, ... so shards never share a seed, and the
union of the shards of an ``--iterations`` campaign is exactly the seeds a
serial run would take.  Shards go to an
:class:`Executor` -- in-process for one job, local processes for several
(``LocalProcessExecutor``), or a Dask cluster (``emulator.campaign_dask``, the
``vmemu[dask]`` extra).  Results merge into one :class:`Summary`, whose failures
are sorted by seed: when several shards find violations before they all stop,
the first one reported is the lowest seed among them, whatever order they
arrived in.

After a campaign without violations, :func:`confidence` states what was
covered: executions, distinct schedules, the largest agent count n and
decision count k seen, and for PCT runs the per-run bound 1/(n·k^(d-1)) and
the depth up to which the campaign would have found a bug with 95% confidence.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import hashlib
import math
import multiprocessing
import multiprocessing.synchronize
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from emulator.config import RunConfig
from emulator.machine import Execution, Machine
from emulator.portfolio import ArmStats, Coverage, Portfolio, arms_for
from emulator.sched.outcome import Outcome
from emulator.sched.strategies import DfsStrategy, PctStrategy
from emulator.spec import Spec
from emulator.variants import Variant

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Config:
    """A campaign: the run configuration of its first execution and when to stop.

    Plain, picklable data: each shard rebuilds its machine from it.  Execution
    ``seed`` runs ``run`` with that seed.  ``variant``: the variant object itself, for
    a campaign in this process whose variant is not loaded by name (a test's function).
    """

    run: RunConfig
    iterations: int | None
    time_budget: float | None
    stop_on_first: bool
    variant: Variant | None = None
    # Several workloads (the portfolio's arms span them, ``run`` giving everything else):
    # ``explore`` without a workload.  Empty: ``run.workload`` alone.
    workloads: tuple[str, ...] = ()

    @property
    def first_seed(self) -> int:
        return self.run.seed

    def spec_for_seed(self, seed: int) -> Spec:
        return self.run.spec(seed)

    def machine(self) -> Machine:
        return self.run.machine(self.variant)


@dataclass
class Failure:
    """A failing execution, as plain data (crosses process boundaries).

    ``run``: the concrete configuration that ran it -- under the portfolio, the
    member strategy the campaign chose, so that its command reproduces it.
    """

    seed: int
    outcome: str
    violations: list[dict[str, Any]]
    decisions: list[int]
    steps: int
    run: RunConfig | None = None

    @classmethod
    def of(cls, ex: Execution, run: RunConfig | None = None) -> Failure:
        return cls(ex.seed, ex.outcome, [v.to_json() for v in ex.violations],
                   list(ex.decisions), ex.steps, run)


@dataclass
class Summary:
    executions: int = 0
    steps: int = 0
    elapsed: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    schedules: set[bytes] = field(default_factory=set)  # decision-sequence digests
    max_agents: int = 0
    max_decisions: int = 0
    pct_runs: dict[int, int] = field(default_factory=dict)  # PCT depth -> executions
    pct_horizon: int = 0
    exhausted: bool = False
    explored: int = 0  # dfs: schedules run to the end
    pruned: int = 0  # dfs: executions abandoned as redundant
    coverage: Coverage = field(default_factory=Coverage)
    arms: dict[str, ArmStats] = field(default_factory=dict)  # arm label -> its executions
    workloads: int = 1  # how many workloads the arms span

    def merge(self, other: Summary) -> None:
        self.executions += other.executions
        self.steps += other.steps
        self.elapsed = max(self.elapsed, other.elapsed)
        self.failures.extend(other.failures)
        self.schedules |= other.schedules
        self.max_agents = max(self.max_agents, other.max_agents)
        self.max_decisions = max(self.max_decisions, other.max_decisions)
        for d, n in other.pct_runs.items():
            self.pct_runs[d] = self.pct_runs.get(d, 0) + n
        self.pct_horizon = max(self.pct_horizon, other.pct_horizon)
        self.exhausted = self.exhausted or other.exhausted
        self.workloads = max(self.workloads, other.workloads)
        self.explored += other.explored
        self.pruned += other.pruned
        self.coverage.merge(other.coverage)
        for name, stats in other.arms.items():
            mine = self.arms.setdefault(name, ArmStats())
            mine.executions += stats.executions
            mine.novel += stats.novel


def _digest(decisions: list[int]) -> bytes:
    # Only compared with other digests of this function (distinct schedules are
    # counted, never shown).  A decision is an agent's number: one byte each while
    # every number is below 256 (bytes() in C, an eighth of the text to hash), else
    # the machine words, hashed apart (another personalisation: no byte string of
    # one kind equals one of the other).
    try:
        data = bytes(decisions)
    except ValueError:
        return hashlib.blake2b(array("q", decisions).tobytes(), digest_size=12,
                               person=b"words").digest()
    return hashlib.blake2b(data, digest_size=12).digest()


class Counters(Protocol):
    """Live progress, shared with the display (and across processes).

    ``add`` counts executions and violations since the shard's last report; ``cover``
    gives the shard's coverage so far (the portfolio's conflict pairs and interleavings,
    summed over its workloads).  Shards see much of the same coverage, so the display
    keeps the largest shard's: a lower bound of the merged summary's, exact for one job.
    """

    def add(self, executions: int, violations: int) -> None: ...

    def cover(self, pairs: int, interleavings: int) -> None: ...


async def run_shard(
    cfg: Config,
    shard: int,
    shards: int,
    stop: Callable[[], bool] = lambda: False,
    counters: Counters | None = None,
    on_failure: Callable[[], None] = lambda: None,
) -> Summary:
    """Run this shard's seeds until its share of iterations, the budget, or a stop."""
    with collector_spared():
        return await _run_shard(cfg, shard, shards, stop, counters, on_failure)


@contextlib.contextmanager
def collector_spared() -> Iterator[None]:
    """While a campaign's shard or a hunt runs executions: everything alive now
    (modules, the interpreter's and Trio's state) outlives them, so frozen, the
    collector's full passes stop re-scanning it (each execution leaves its kernel as
    garbage).  Only where the collector looks changes, never what runs; unfrozen at the
    end.  (Measured: without this and release_kernel the collector took 24-32% of a
    hunt's CPU time.  Collecting the youngest generation less often as well saved 1% of
    a hunt's instructions but cost time by the clock: BENCHMARKS.md.)"""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _run_shard(
    cfg: Config,
    shard: int,
    shards: int,
    stop: Callable[[], bool],
    counters: Counters | None,
    on_failure: Callable[[], None],
) -> Summary:
    # Each shard chooses its arms by its own executions: deterministic per shard.
    portfolio = Portfolio(arms_for(cfg.run, cfg.workloads or None), cfg.first_seed + shard,
                          shards, cfg.variant)
    out = Summary(workloads=max(len(cfg.workloads), 1))
    quota = None
    if cfg.iterations is not None:
        quota = cfg.iterations // shards + (1 if shard < cfg.iterations % shards else 0)
    start = time.perf_counter()
    reported = [0, 0]  # executions and failures already added to the counters

    def report() -> None:
        if counters is not None:
            counters.add(out.executions - reported[0], len(out.failures) - reported[1])
            seen = portfolio.coverage.values()
            counters.cover(sum(len(c.pairs) for c in seen),
                           sum(len(c.interleavings) for c in seen))
        reported[:] = out.executions, len(out.failures)

    while True:
        if quota is not None and out.executions >= quota:
            break
        if cfg.time_budget is not None and time.perf_counter() - start >= cfg.time_budget:
            break
        if stop():
            break
        stepped = await portfolio.step()
        if stepped is None:
            out.exhausted = True
            break
        i, run, ex = stepped
        out.executions += 1
        out.steps += ex.steps
        _account(out, portfolio.machine(i), run, ex)
        release_kernel(portfolio.machine(i))
        failed = ex.outcome not in (Outcome.OK, Outcome.PRUNED)
        if failed:
            out.failures.append(Failure.of(ex, run))
            if cfg.stop_on_first:
                on_failure()
        if failed or out.executions % 16 == 0:
            report()
        if failed and cfg.stop_on_first:
            break
        if not portfolio.live or all(portfolio.strategy(j).exhausted
                                     for j in portfolio.live):
            out.exhausted = True
            break
        if out.executions % 64 == 0:
            await trio.lowlevel.checkpoint()
    report()
    out.elapsed = time.perf_counter() - start
    for strategy in portfolio.strategies:
        if isinstance(strategy, DfsStrategy):
            out.explored += strategy.schedules
            out.pruned += strategy.pruned
    out.coverage = portfolio.totals()
    out.arms = portfolio.arm_stats(with_workload=bool(cfg.workloads))
    return out


def release_kernel(machine: Machine) -> None:
    """Empty the finished execution's kernel, which nothing reads once it is accounted
    (the campaign's machines are its own; the Execution keeps no kernel object).  Its
    maps, objects, pages, locks, agents and the checkers' subscriptions all point back
    at it: emptied, they are freed by reference counting at once instead of waiting, as
    cyclic garbage, for the collector to visit them cold."""
    k = machine.kernel
    if k is not None:
        machine.kernel = None
        vars(k).clear()


def _account(out: Summary, machine: Machine, run: RunConfig, ex: Execution) -> None:
    if ex.outcome == Outcome.PRUNED:
        return
    out.schedules.add(_digest(ex.decisions))
    kernel = machine.kernel
    agents = len(kernel.sched.agents) if kernel is not None else 0
    out.max_agents = max(out.max_agents, agents)
    out.max_decisions = max(out.max_decisions, len(ex.decisions))
    strategy = machine.strategy
    if isinstance(strategy, PctStrategy):
        out.pct_runs[strategy.depth] = out.pct_runs.get(strategy.depth, 0) + 1
        out.pct_horizon = max(out.pct_horizon, strategy.steps)


# -- executors ---------------------------------------------------------------------------


class Executor(Protocol):
    """Runs a campaign's shards somewhere and returns their summaries, in shard order."""

    def run(self, cfg: Config, shards: int, counters: Any) -> list[Summary]: ...


class InlineExecutor:
    """One shard, in this process (``--jobs 1``)."""

    def run(self, cfg: Config, shards: int, counters: Any) -> list[Summary]:
        assert shards == 1
        return [trio.run(run_shard, cfg, 0, 1, lambda: False, counters)]


_STOP: multiprocessing.synchronize.Event | None = None
_COUNTS: Any = None


def _init_worker(stop: multiprocessing.synchronize.Event, counts: Any) -> None:
    global _STOP, _COUNTS
    _STOP, _COUNTS = stop, counts


def _worker(cfg: Config, shard: int, shards: int) -> Summary:
    stop = _STOP
    assert stop is not None
    return trio.run(run_shard, cfg, shard, shards, stop.is_set, Progress(_COUNTS), stop.set)


class LocalProcessExecutor:
    """Shards in local processes (``--jobs N``), through concurrent.futures."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def run(self, cfg: Config, shards: int, counters: Any) -> list[Summary]:
        ctx = multiprocessing.get_context("fork")
        stop = ctx.Event()
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=self.jobs, mp_context=ctx, initializer=_init_worker,
            initargs=(stop, counters.shared),
        ) as pool:
            futures = [pool.submit(_worker, cfg, i, shards) for i in range(shards)]
            return [f.result() for f in futures]


@dataclass(frozen=True)
class Snapshot:
    """What the progress display shows: the counters at one moment."""

    executions: int
    violations: int
    pairs: int  # conflict pairs, the largest shard's (see Counters)
    interleavings: int  # likewise


class Progress:
    """Counters a display thread reads: shared memory, so workers can add to them."""

    def __init__(self, shared: Any = None) -> None:
        # A worker process wraps the parent's shared array; the parent makes it.
        self.shared = shared if shared is not None else (
            multiprocessing.get_context("fork").Array("q", 4))

    def add(self, executions: int, violations: int) -> None:
        with self.shared.get_lock():
            self.shared[0] += executions
            self.shared[1] += violations

    def cover(self, pairs: int, interleavings: int) -> None:
        with self.shared.get_lock():
            self.shared[2] = max(self.shared[2], pairs)
            self.shared[3] = max(self.shared[3], interleavings)

    def read(self) -> Snapshot:
        with self.shared.get_lock():
            return Snapshot(*(int(x) for x in self.shared[:4]))


def run_campaign(cfg: Config, jobs: int, progress: Progress | None = None,
                 executor: Executor | None = None) -> Summary:
    """Run ``cfg`` over ``jobs`` shards on ``executor`` (by default: this process for one
    job, local processes for several) and merge the results."""
    counters = progress or Progress()
    if executor is None:
        executor = InlineExecutor() if jobs == 1 else LocalProcessExecutor(jobs)
    started = time.perf_counter()
    parts = executor.run(cfg, jobs, counters)
    total = Summary()
    for part in parts:
        total.merge(part)
    total.failures.sort(key=lambda f: f.seed)
    total.elapsed = time.perf_counter() - started
    return total


# -- confidence ---------------------------------------------------------------------------


def pct_bound(n: int, k: int, depth: int) -> float:
    """PCT's per-run probability bound for a bug of depth ``depth``: 1/(n·k^(d-1))."""
    return 1.0 / (n * float(k) ** (depth - 1))


def confidence(summary: Summary) -> dict[str, Any]:
    """What a campaign without violations covered, and what it rules out."""
    n = max(summary.max_agents, 1)
    k = max(summary.max_decisions, summary.pct_horizon, 1)
    out: dict[str, Any] = {
        "executions": summary.executions,
        "distinct_schedules": len(summary.schedules),
        "n_agents": n,
        "k_decisions": k,
        "pct_runs": {str(d): r for d, r in sorted(summary.pct_runs.items())},
    }
    if summary.exhausted:
        out["statement"] = ("the bounded search space was exhausted: every schedule in it ran"
                            + (", up to reordering of independent steps" if summary.pruned
                               else ""))
        out["exhausted"] = True
        return out
    if not summary.pct_runs:
        out["statement"] = (f"{summary.executions} executions, {len(summary.schedules)} "
                            "distinct schedules; no probabilistic bound (run pct or portfolio)")
        return out
    if summary.workloads > 1:
        # PCT's bound is a program's: here the runs are spread over programs.
        out["statement"] = (f"{summary.executions} executions over {summary.workloads} "
                            f"workloads, {len(summary.schedules)} distinct schedules; PCT's "
                            "bound is per program: explore one workload to get it")
        return out
    per_depth: dict[str, Any] = {}
    best_depth = 0
    best_conf = 0.0
    for depth in range(1, max(summary.pct_runs) + 1):
        # A PCT run with parameter d' >= depth finds a depth-`depth` bug with
        # probability at least 1/(n·k^(d'-1)).
        log_miss = sum(
            runs * math.log1p(-pct_bound(n, k, d))
            for d, runs in summary.pct_runs.items() if d >= depth
        )
        conf = 1.0 - math.exp(log_miss)
        per_depth[str(depth)] = {
            "per_run_bound": pct_bound(n, k, max(d for d in summary.pct_runs if d >= depth)),
            "confidence": conf,
        }
        if conf >= CONFIDENCE:
            best_depth, best_conf = depth, conf
    out["by_depth"] = per_depth
    out["confident_depth"] = best_depth
    out["confidence"] = best_conf
    if best_depth:
        out["statement"] = (f"no bug of depth <= {best_depth} with confidence "
                            f"{best_conf:.3f} (PCT bound 1/(n*k^(d-1)) per run, n={n}, k={k}, "
                            f"{sum(summary.pct_runs.values())} PCT runs)")
    else:
        depth = min(summary.pct_runs)
        runs = summary.pct_runs[depth]
        deeper = sum(r for d, r in summary.pct_runs.items() if d > depth)
        conf = per_depth[str(depth)]["confidence"]
        needed = _runs_needed(n, k, depth)
        also = f" (and {deeper} deeper runs)" if deeper else ""
        out["statement"] = (f"{runs} PCT runs of depth {depth}{also} give confidence "
                            f"{conf:.3f} of no bug of depth <= {depth} (bound 1/(n*k^(d-1)) = "
                            f"{pct_bound(n, k, depth):.2e} per run, n={n}, k={k}); 95% needs "
                            f"about {needed} runs of depth {depth}")
    return out


def _runs_needed(n: int, k: int, depth: int) -> int:
    """PCT runs of depth ``depth`` for 95% confidence against a depth-``depth`` bug."""
    p = pct_bound(n, k, depth)
    return math.ceil(math.log(1 - CONFIDENCE) / math.log1p(-p))

