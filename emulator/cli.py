"""The command line: ``vmemu run | explore | list``.

Exit codes (DESIGN.md): 0 no violation, 1 a violation found, 2 bad input or
usage (one line on stderr, nothing written), 3 replay diverged, 70 an internal
error of vmemu (one line: a bug in vmemu, not in the variant).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any, NoReturn

import trio

from emulator.campaign import Config, Failure, Progress, confidence, run_campaign
from emulator.check.historical import historical_reason
from emulator.config import (
    DEFAULT_PCT_DEPTH,
    DEFAULT_PREEMPTION_BOUND,
    DEFAULT_STRATEGY,
    DEFAULT_VARIANT,
    FOLLOW,
    RunConfig,
)
from emulator.errors import BadInput, EmulatorError, InternalError, check_output_path
from emulator.kern.profile import DEFAULT_PROFILE, PROFILES
from emulator.machine import DEFAULT_MAX_STEPS, Execution, Machine
from emulator.portfolio import ArmStats, coverage_json, coverage_text
from emulator.sched.drivers import CAMPAIGN_DRIVER, DEFAULT_DRIVER, DRIVERS
from emulator.sched.strategies import STRATEGIES, make_strategy
from emulator.spec import Spec
from emulator.variants import BUILTIN, load_variant
from workloads import aimed, describe

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise BadInput(f"{self.prog}: {message} (see --help)")


def _params(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadInput(f"--param {item!r}: expected key=value")
        out[key] = value
    return out


# explore's workload when none is named: a whole spec drawn from each seed, so a variant
# meets structures (sub-maps, wired and private mappings, holes) nobody wrote a workload for.
DEFAULT_EXPLORE_WORKLOAD = "generated"


def _add_common(p: argparse.ArgumentParser, default_workload: str | None = None) -> None:
    if default_workload is None:
        p.add_argument("workload",
                       help="a workload name (see `vmemu list`) or a .json/.toml spec")
    else:
        p.add_argument("workload", nargs="?", default=None,
                       help="a workload name (see `vmemu list`) or a .json/.toml spec "
                       "(default: every workload aimed at the profile, "
                       f"{default_workload} among them, as the portfolio's arms; with "
                       f"--strategy dfs, {default_workload}, a whole spec drawn from the seed)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a workload parameter (repeatable)")
    p.add_argument("--profile", choices=tuple(PROFILES), default=None,
                   help=f"kernel profile (default: the spec's, else {DEFAULT_PROFILE.name})")
    p.add_argument("--variant", default=DEFAULT_VARIANT,
                   help="clean variant: a built-in name, file.py:function or module:function")
    p.add_argument("--strategy", default=DEFAULT_STRATEGY,
                   help=f"scheduling strategy: {', '.join(STRATEGIES)} "
                   f"(default {DEFAULT_STRATEGY})")
    p.add_argument("--pct-depth", type=int, default=DEFAULT_PCT_DEPTH,
                   help=f"depth d of the pct strategy (default {DEFAULT_PCT_DEPTH})")
    p.add_argument("--preemption-bound", type=_bound, default=DEFAULT_PREEMPTION_BOUND,
                   help=f"preemptions per schedule for the dfs strategy (default "
                   f"{DEFAULT_PREEMPTION_BOUND}; 'none': no bound)")
    p.add_argument("--reduction", choices=("auto", "on", "off"), default="auto",
                   help="dfs: skip schedules equivalent by independent steps (sleep sets); "
                   "auto: on without a preemption bound, off with one (see README)")
    p.add_argument("--no-reduction", dest="reduction", action="store_const", const="off",
                   help="same as --reduction off")
    p.add_argument("--seed", type=int, default=0, help="(first) execution seed")
    p.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS,
                   help="step bound per execution; beyond it: starvation")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _add_driver(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--driver", choices=tuple(DRIVERS), default=default,
                   help=f"how the baton moves between agents (default: {default}); the "
                   "executions are the same under every driver")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vmemu", description="Deterministic concurrency emulator of "
                     "FreeBSD's vm_map_clean and the paths that race with it.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run one execution")
    _add_common(run)
    _add_driver(run, DEFAULT_DRIVER)
    run.add_argument("--trace", default=None, help="write the execution's trace to this file")
    explore = sub.add_parser("explore", help="run many executions, stop at the first violation")
    _add_common(explore, DEFAULT_EXPLORE_WORKLOAD)
    _add_driver(explore, CAMPAIGN_DRIVER)
    limit = explore.add_mutually_exclusive_group()
    limit.add_argument("--iterations", type=int, default=None, help="executions to run")
    limit.add_argument("--time-budget", type=float, default=None, help="seconds to explore")
    explore.add_argument("--keep-going", action="store_true",
                         help="do not stop at the first violation")
    explore.add_argument("--stop-on-first", action="store_true",
                         help="stop every job at the first violation (the default)")
    explore.add_argument("--jobs", type=int, default=1,
                         help="shards to spread the executions over, each with its own seed "
                              "stream: local processes, or Dask tasks with --executor dask")
    explore.add_argument("--executor", choices=("local", "dask"), default="local",
                         help="where the shards run: local processes (default), or a Dask "
                              "cluster (the vmemu[dask] extra)")
    explore.add_argument("--scheduler", default=None, metavar="ADDR",
                         help="with --executor dask: the Dask scheduler to use, e.g. "
                              "tcp://127.0.0.1:8786 (default: a local cluster of --jobs "
                              "worker processes on 127.0.0.1)")
    explore.add_argument("--save-dir", default="traces/failures",
                         help="where failing executions' traces go (default traces/failures)")
    replay = sub.add_parser("replay", help="replay a trace exactly, event by event")
    replay.add_argument("trace", help="a trace file written by run --trace or explore")
    replay.add_argument("--variant", default=None,
                        help="replay the recorded schedule against another variant (a fix)")
    replay.add_argument("--partial", action="store_true",
                        help="accept a trace with no footer; replay up to its last full line")
    replay.add_argument("--json", action="store_true", help="print one JSON object")
    shrink = sub.add_parser("shrink", help="shrink a failing trace to the smallest failing run")
    shrink.add_argument("trace", help="a trace that records a violation")
    shrink.add_argument("-o", "--out", required=True, help="where the shrunk trace goes")
    shrink.add_argument("--variant", default=None,
                        help="the variant to shrink against (needed for a user variant's trace)")
    shrink.add_argument("--budget", type=float, default=60.0,
                        help="seconds to search at most (default 60)")
    shrink.add_argument("--json", action="store_true", help="print one JSON object")
    show = sub.add_parser("show", help="a trace as a per-CPU timeline in the terminal")
    show.add_argument("trace", help="a trace file written by run --trace, explore or shrink")
    show.add_argument("--all", action="store_true",
                      help="every event, scheduling decisions included")
    show.add_argument("--width", type=int, default=None,
                      help="columns to fit (default: the terminal's width, at least 80)")
    show.add_argument("--partial", action="store_true",
                      help="accept a trace with no footer; show up to its last full line")
    show.add_argument("--why", action="store_true",
                      help="mark the rows the violation depends on (the slice `vmemu why` "
                      "explains)")
    why = sub.add_parser("why", help="why a trace's violation happened: the events and "
                         "preemptions it needs")
    why.add_argument("trace", help="a trace that records a violation")
    why.add_argument("--variant", default=None,
                     help="the variant to replay against (needed for a user variant's trace)")
    why.add_argument("--json", action="store_true", help="print one JSON object")
    export = sub.add_parser("export", help="a trace as a Perfetto trace or an HTML timeline")
    export.add_argument("trace", help="a trace file written by run --trace, explore or shrink")
    export.add_argument("--format", required=True, metavar="perfetto|html",
                        help="perfetto: trace-event JSON for ui.perfetto.dev; "
                        "html: one self-contained page")
    export.add_argument("-o", "--out", required=True, help="the file to write")
    export.add_argument("--partial", action="store_true",
                        help="accept a trace with no footer; export up to its last full line")
    export.add_argument("--why", action="store_true",
                        help="mark the events the violation depends on (the slice `vmemu why` "
                        "explains)")
    mutants = sub.add_parser("mutants", help="checker power self-test over the built-in mutants")
    mutants.add_argument("--time-budget", type=float, default=60.0,
                         help="seconds for the whole self-test (default 60)")
    mutants.add_argument("--strategy", default="portfolio",
                         help="scheduling strategy (default: portfolio, the best measured)")
    mutants.add_argument("--only", action="append", default=[], metavar="MUTANT",
                         help="hunt only this mutant (repeatable)")
    mutants.add_argument("--save-dir", default="traces/mutants",
                         help="where each caught mutant's trace goes (default traces/mutants)")
    mutants.add_argument("--json", action="store_true", help="print one JSON object")
    _add_driver(mutants, CAMPAIGN_DRIVER)
    sub.add_parser("list", help="workloads, profiles, variants, strategies, checkers")
    return parser


def run_config(args: argparse.Namespace) -> RunConfig:
    """The run configuration a ``run`` or ``explore`` command line gives."""
    if args.max_steps <= 0:
        raise BadInput(f"--max-steps {args.max_steps}: must be positive")
    return RunConfig(
        workload=args.workload, params=tuple(_params(args.param).items()),
        profile=args.profile, variant=args.variant, strategy=args.strategy,
        pct_depth=args.pct_depth, preemption_bound=args.preemption_bound,
        reduction=None if args.reduction == "auto" else args.reduction == "on",
        seed=args.seed, max_steps=args.max_steps, driver=args.driver)


class _Job:
    """A resolved command: its run configuration, variant and strategy, checked."""

    def __init__(self, config: RunConfig, single: bool) -> None:
        self.config = config
        self.single = single  # one execution (run): the first of a fresh strategy
        self.variant = load_variant(config.variant)
        self.strategy = config.make_strategy()
        # Validate the workload once, with the first seed.
        self.first_spec = config.spec()
        self.saved: dict[int, str] = {}  # seed -> trace path

    def spec_for_seed(self, seed: int) -> Spec:
        return self.config.spec(seed)

    def machine(self) -> Machine:
        return self.config.machine(self.variant, self.first_spec)

    def trace_name(self, config: RunConfig) -> str:
        """The file name of ``config``'s failure trace: workload, profile, variant, seed."""
        seed = config.seed
        base = os.path.basename(config.workload).replace(".", "_")
        variant = re.sub(r"[^A-Za-z0-9_]+", "_", self.variant.name).strip("_")
        return f"{base}-{self.first_spec.profile}-{variant}-seed{seed}.trace.jsonl"

    def config_of(self, failure: Failure) -> RunConfig:
        """The concrete configuration that ran ``failure`` (the portfolio's chosen member)."""
        if failure.run is not None:
            return failure.run
        return dataclasses.replace(self.config, seed=failure.seed)

    async def save_trace(self, machine: Machine, config: RunConfig, path: str) -> Execution:
        """Re-run ``config`` with recording on and write its trace to ``path``."""
        from emulator.trace.record import record
        from emulator.trace.replay import FollowStrategy

        if isinstance(machine.strategy, FollowStrategy):
            config = dataclasses.replace(config, strategy=FOLLOW)  # dfs's recorded decisions
        return await record(machine, config, config.spec(), path)

    def rerun_command(self, config: RunConfig) -> str | None:
        """The command that reruns the execution ``config``; None when the seed alone does
        not reproduce it (dfs after its first schedule: its trace does)."""
        return config.command() if config.seeded or self.single else None


def _violations_json(job: _Job, failures: list[Failure]) -> list[dict[str, Any]]:
    return [
        {**{k: v[k] for k in ("rule", "message", "step", "cpus")}, "seed": f.seed,
         "trace": job.saved.get(f.seed), "replay": _replay_command(job, f),
         "rerun": job.rerun_command(job.config_of(f))}
        for f in failures for v in f.violations
    ]


def _summary(job: _Job, executions: int, steps: int, elapsed: float, failures: list[Failure],
             results: dict[str, Any] | None) -> dict[str, Any]:
    """The ``--json`` object of DESIGN.md, shared by run and explore."""
    return {
        "outcome": "violation" if failures else "ok",
        "workload": job.config.workload,
        "profile": job.first_spec.profile,
        "variant": job.variant.name,
        "strategy": job.strategy.name,
        "seed": job.config.seed,
        "executions": executions,
        "steps": steps,
        "steps_per_second": round(steps / elapsed, 1) if elapsed > 0 else 0.0,
        "elapsed_seconds": round(elapsed, 4),
        "violations": _violations_json(job, failures),
        "results": results,
    }


def historical_note(profile: str, fields: dict[str, Any]) -> str:
    """One line on which of the profile's era bugs a reference violation is (the
    profile's ``era_bugs`` table), or that it is none."""
    reason = historical_reason(PROFILES[profile], fields) if profile in PROFILES else None
    return reason or f"marked historical, but {profile} names no such era bug"


def _print_failures(job: _Job, failures: list[Failure]) -> None:
    for f in failures:
        for v in f.violations:
            print(f"VIOLATION {v['rule']} at step {v['step']} (seed {f.seed}): {v['message']}")
            if v["fields"].get("historical") and job.variant.name == "reference":
                print(f"  ({historical_note(job.first_spec.profile, v['fields'])})")
        command = job.rerun_command(job.config_of(f))
        if command is not None:
            print(f"  rerun with: {command}")
        if f.seed in job.saved:
            print(f"  trace: {job.saved[f.seed]}")
            print(f"  replay with: vmemu replay {shlex.quote(job.saved[f.seed])}")


def cmd_run(args: argparse.Namespace) -> int:
    job = _Job(run_config(args), single=True)
    machine = job.machine()
    if args.trace:
        check_output_path(args.trace, "--trace")

    async def go() -> Execution:
        if args.trace:
            ex = await job.save_trace(machine, job.config, args.trace)
            job.saved[job.config.seed] = args.trace
            return ex
        return await machine.execute(job.config.seed, job.spec_for_seed(job.config.seed))

    started = time.perf_counter()
    ex = trio.run(go)
    elapsed = time.perf_counter() - started
    failures = [] if ex.outcome == "ok" else [Failure.of(ex)]
    if args.json:
        print(json.dumps(_summary(job, 1, ex.steps, elapsed, failures, ex.results)))
    else:
        print(f"{job.config.workload}: profile {job.first_spec.profile}, variant "
              f"{job.variant.name}, seed {job.config.seed}: {ex.steps} steps")
        spec = job.spec_for_seed(job.config.seed)
        for i, (cpu, rows) in enumerate(ex.results.items()):
            shown = [f"{r['op']}({', '.join(map(str, r['args']))})={r['ret']}" for r in rows]
            program = spec.cpus[i].program
            if ex.outcome != "ok" and len(rows) < len(program):
                op = program[len(rows)].to_json()
                shown.append(f"{op[0]}({', '.join(map(str, op[1:]))}) <- in progress")
            print(f"  {cpu}: {', '.join(shown)}")
        if failures:
            _print_failures(job, failures)
        else:
            print("outcome: ok")
    return 1 if failures else 0


def _all_workloads(args: argparse.Namespace) -> tuple[str, ...]:
    """``explore`` without a workload: every workload aimed at the profile (``--profile``,
    else the variant's, else the default), ``generated`` among them, in the order of
    ``vmemu mutants``, as the arms of one portfolio; ``args`` then names the first and
    the profile.  With dfs, which searches
    one spec's schedule tree, ``generated`` alone (no arms)."""
    if args.strategy == "dfs":
        args.workload = DEFAULT_EXPLORE_WORKLOAD
        return ()
    if args.param:
        raise BadInput("--param: parameters belong to one workload; name it")
    profile = args.profile or load_variant(args.variant).profile or DEFAULT_PROFILE.name
    names = aimed(profile)  # as `vmemu mutants`
    args.workload, args.profile = names[0], profile
    return tuple(names)


def cmd_explore(args: argparse.Namespace) -> int:
    workloads = _all_workloads(args) if args.workload is None else ()
    job = _Job(run_config(args), single=False)
    run = job.config
    if args.iterations is not None and args.iterations <= 0:
        raise BadInput(f"--iterations {args.iterations}: must be positive")
    if args.time_budget is not None and args.time_budget <= 0:
        raise BadInput(f"--time-budget {args.time_budget}: must be positive")
    if args.jobs < 1:
        raise BadInput(f"--jobs {args.jobs}: must be at least 1")
    dfs = run.strategy == "dfs"
    if dfs and args.jobs > 1:
        raise BadInput("--jobs: the dfs strategy enumerates one schedule tree in one process; "
                       "use --jobs 1")
    if args.scheduler is not None and args.executor != "dask":
        raise BadInput("--scheduler: only with --executor dask")
    if dfs and args.executor == "dask":
        raise BadInput("--executor dask: the dfs strategy enumerates one schedule tree in one "
                       "process; use --executor local")
    iterations = args.iterations
    if iterations is None and args.time_budget is None and not dfs:
        iterations = 1000
    cfg = Config(run, iterations, args.time_budget, stop_on_first=not args.keep_going,
                 workloads=workloads)
    progress = Progress()
    with ExitStack() as stack:
        executor = None
        if args.executor == "dask":
            from emulator.campaign_dask import DaskExecutor

            # Connects (or starts the local cluster) now: a bad address is bad input
            # before anything runs or is written.
            executor = stack.enter_context(DaskExecutor(args.jobs, args.scheduler))
        from emulator.progress import LiveProgress, wanted

        if wanted(sys.stderr, args.json):
            stack.enter_context(LiveProgress(progress, args.time_budget, iterations))
        summary = run_campaign(cfg, args.jobs, progress, executor)
        other = None  # dfs: the same space counted the other way, for comparison
        if dfs and summary.exhausted and not summary.failures:
            flipped = dataclasses.replace(run, reduction=not run.reduction)
            other = run_campaign(dataclasses.replace(cfg, run=flipped), 1)
    failures = summary.failures
    _save_failure_traces(job, failures, args.save_dir)
    out = _summary(job, summary.executions, summary.steps, summary.elapsed, failures, None)
    out["jobs"] = args.jobs
    if workloads:
        out["workloads"] = list(workloads)
    if dfs:
        out["exhausted"] = summary.exhausted
        out["schedules"] = summary.explored
        out["pruned"] = summary.pruned
        out["preemption_bound"] = run.preemption_bound
        out["reduction"] = run.reduction
        if other is not None:
            with_r, without_r = (summary, other) if run.reduction else (other, summary)
            out["schedules_with_reduction"] = with_r.explored
            out["schedules_without_reduction"] = without_r.explored
    if not failures:
        out["confidence"] = confidence(summary)
    out["coverage"] = coverage_json(summary.coverage, summary.arms)
    if args.json:
        print(json.dumps(out))
        return 1 if failures else 0
    seeds = ("seeds " + (f"{run.seed}.." if args.jobs == 1 else f"from {run.seed}, ")
             + (f"{run.seed + summary.executions - 1}" if args.jobs == 1
                else f"{args.jobs} interleaved streams"))
    if dfs:
        seeds = f"preemption bound {run.preemption_bound}"
    what = f"{len(workloads)} workloads (generated and every named one)" if workloads \
        else run.workload
    print(f"explored {summary.executions} executions of {what} "
          f"(profile {out['profile']}, variant {out['variant']}, strategy {out['strategy']}, "
          f"{seeds}): {summary.steps} steps in {summary.elapsed:.2f}s "
          f"({out['steps_per_second']:.0f} steps/s)")
    if dfs:
        bound = ("no preemption bound" if run.preemption_bound is None
                 else f"at most {run.preemption_bound} preemptions")
        line = (f"space {'exhausted' if summary.exhausted else 'NOT exhausted (stopped early)'}: "
                f"{summary.explored} schedules with {bound}"
                + (" (sleep-set reduction on)" if run.reduction else ""))
        if other is not None:
            if run.reduction:
                line += f"; {other.explored} without the reduction"
            else:
                line += (f"; {other.explored} with the sleep-set reduction, which skips "
                         "schedules equivalent by independent steps")
        print(line)
    arms = _by_workload(summary.arms) if workloads else summary.arms
    print(f"seen: {coverage_text(summary.coverage, arms, 'workload' if workloads else 'arm')}")
    if failures:
        _print_failures(job, failures)
        return 1
    print("outcome: ok")
    print(f"coverage: {out['confidence']['statement']}")
    return 0


def _by_workload(arms: dict[str, ArmStats]) -> dict[str, ArmStats]:
    """The arms' counts summed per workload (labels ``workload/strategy``), busiest first,
    leaving out the workloads not yet run: one line that still reads with ~80 arms."""
    out: dict[str, ArmStats] = {}
    for label, stats in arms.items():
        mine = out.setdefault(label.rsplit("/", 1)[0], ArmStats())
        mine.executions += stats.executions
        mine.novel += stats.novel
    ran = [(name, s) for name, s in out.items() if s.executions]
    ran.sort(key=lambda item: (-item[1].executions, item[0]))
    return dict(ran)


def _replay_command(job: _Job, failure: Failure) -> str | None:
    if failure.seed in job.saved:
        return f"vmemu replay {shlex.quote(job.saved[failure.seed])}"
    return job.rerun_command(job.config_of(failure))


def _save_failure_traces(job: _Job, failures: list[Failure], save_dir: str) -> None:
    """Re-run each failing execution with recording on and save its trace.

    A seeded strategy re-runs from the seed; dfs re-runs its recorded
    decisions.  Either way the re-run must reproduce the same violations.
    """
    if not failures:
        return
    try:
        os.makedirs(save_dir, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"--save-dir {save_dir}: {exc.strerror}") from None
    from emulator.trace.replay import FollowStrategy

    async def go() -> None:
        for f in failures[:20]:
            config = job.config_of(f)
            # Explore over several workloads: the failure's may not be the first's.
            same = config.workload == job.config.workload
            machine = config.machine(job.variant, job.first_spec if same else None)
            if not machine.strategy.seeded:
                machine.strategy = FollowStrategy(f.decisions)
            path = os.path.join(save_dir, job.trace_name(config))
            again = await job.save_trace(machine, config, path)
            if [v.to_json() for v in again.violations] != f.violations:
                raise InternalError(f"seed {f.seed} did not reproduce when re-run for its "
                                    "trace: vmemu is not deterministic here (a bug)")
            job.saved[f.seed] = path

    trio.run(go)


def cmd_list(args: argparse.Namespace) -> int:
    from emulator.check import RULES

    print("profiles:   " + ", ".join(PROFILES) + f"   (default: {DEFAULT_PROFILE.name})")
    print("strategies: " + ", ".join(STRATEGIES))
    print("variants:   " + ", ".join(BUILTIN))
    print("rules:      " + ", ".join(RULES) + "   (every checker is always on)")
    print("workloads:")
    for name, doc, params in describe():
        print(f"  {name:24s} {doc}")
        for pname, (ptype, default, help_text) in params.items():
            print(f"      --param {pname}=<{ptype.__name__}> (default {default}): {help_text}")
    return 0


def cmd_mutants(args: argparse.Namespace) -> int:
    from emulator.mutants import run_mutants
    from emulator.variants import MUTANTS

    if args.time_budget <= 0:
        raise BadInput(f"--time-budget {args.time_budget}: must be positive")
    make_strategy(args.strategy)
    for name in args.only:
        if name not in MUTANTS:
            raise BadInput(f"--only {name}: not a built-in mutant (see `vmemu list`)")

    try:
        os.makedirs(args.save_dir, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"--save-dir {args.save_dir}: {exc.strerror}") from None

    async def go() -> dict[str, Any]:
        return await run_mutants(args.time_budget, args.strategy, args.only or None,
                                 args.save_dir, args.driver)

    report = trio.run(go)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{'mutant':32s} {'profile':9s} {'caught by':16s} {'execs':>6s} {'seconds':>8s}  "
              "workload / strategy / seed")
        for m in report["mutants"]:
            if m["caught"]:
                mark = "" if m["expected_rule_seen"] else "  (expected: "
                mark += "" if m["expected_rule_seen"] else ", ".join(m["expected_rules"]) + ")"
                print(f"{m['name']:32s} {m['profile']:9s} "
                      f"{m['rule']:16s} {m['executions_to_first']:6d} "
                      f"{m['seconds_to_first']:8.3f}  {m['workload']} / {m['strategy']} / "
                      f"{m['seed']}{mark}")
            else:
                print(f"{m['name']:32s} {'':9s} {'NOT CAUGHT':16s} {m['executions']:6d}")
        print(f"caught {report['caught']} of {report['total']} mutants; "
              f"reference: {report['reference_executions']} executions, "
              f"{report['false_alarms']} false alarms")
        if report["historical_bug_reproduced"]:
            h = report["historical_example"]
            print(f"historical bug reproduced ({h['workload']}, seed {h['seed']}): "
                  f"{h['message']}\n  "
                  f"({h.get('reason') or historical_note(h['profile'], h.get('fields', {}))})")
        for alarm in report["false_alarm_examples"]:
            print(f"FALSE ALARM {alarm['rule']} ({alarm['workload']}, {alarm['profile']}, "
                  f"seed {alarm['seed']}): {alarm['message']}")
    all_caught = report["caught"] == report["total"]
    return 0 if all_caught and report["false_alarms"] == 0 else 1


def _bound(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number or 'none'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: must be 0 or more")
    return value


def _show_event(ev: dict[str, Any] | None) -> str:
    return "(nothing: the run ended)" if ev is None else json.dumps(ev, sort_keys=True)


def cmd_replay(args: argparse.Namespace) -> int:
    from emulator.trace.reader import load_trace
    from emulator.trace.replay import replay

    trace = load_trace(args.trace, partial=args.partial)
    result = trio.run(replay, trace, args.variant, args.partial)
    ex = result.execution
    recorded = trace.violations
    div = result.divergence
    if args.variant is not None:
        still = [v.rule for v in ex.violations]
        report = {
            "trace": args.trace,
            "variant": result.execution and args.variant,
            "recorded_violations": [v["rule"] for v in recorded],
            "violations": [v.to_json() for v in ex.violations],
            "violation_still_occurs": bool(
                set(still) & {v["rule"] for v in recorded}) if recorded else bool(still),
            "first_change": None if div is None else {"step": div.step, "line": div.line},
            "schedule_departure": result.departure,
        }
        if args.json:
            print(json.dumps(report))
        else:
            where = ("behaviour never changed" if div is None else
                     f"behaviour first changed at step {div.step}"
                     + (f" (trace line {div.line})" if div.line else ""))
            print(f"replayed {args.trace} with variant {args.variant}: {where}")
            if div is not None:
                print(f"  recorded: {_show_event(div.expected)}")
                print(f"  now:      {_show_event(div.observed)}")
            if ex.violations:
                for v in ex.violations:
                    print(f"VIOLATION {v.rule} at step {v.step}: {v.message}")
            else:
                rules = ", ".join(v["rule"] for v in recorded) or "none"
                print(f"no violation: the recorded violation ({rules}) no longer occurs")
        return 1 if ex.violations else 0
    if div is not None or not trace.digest_ok:
        if args.json:
            print(json.dumps({
                "trace": args.trace, "identical": False,
                "divergence": None if div is None else {
                    "step": div.step, "line": div.line, "expected": div.expected,
                    "observed": div.observed},
                "digest_ok": trace.digest_ok}))
        elif div is None:
            print(f"vmemu: error: {args.trace}: the events match a replay but not the footer's "
                  "digest: the trace was edited", file=sys.stderr)
            return 2
        else:
            print(f"replay of {args.trace} diverged at step {div.step}"
                  + (f" (trace line {div.line})" if div.line else "") + ":")
            for ev in div.before:
                print(f"  before:   {_show_event(ev)}")
            print(f"  expected: {_show_event(div.expected)}")
            print(f"  observed: {_show_event(div.observed)}")
        return 3
    n = len(trace.events)
    if args.json:
        print(json.dumps({"trace": args.trace, "identical": True, "events": n,
                          "partial": trace.footer is None,
                          "violations": [v.to_json() for v in ex.violations]}))
    else:
        kind = "partial trace: first" if trace.footer is None else "all"
        print(f"replayed {args.trace}: {kind} {n} events identical")
        for v in ex.violations:
            print(f"reproduced VIOLATION {v.rule} at step {v.step}: {v.message}")
        if not ex.violations:
            print("outcome: ok, as recorded")
    return 0


def cmd_shrink(args: argparse.Namespace) -> int:
    from emulator.trace.shrink import shrink_trace

    result = shrink_trace(args.trace, args.out, args.budget, args.variant)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print("\n".join(result.lines()))
    return 0



def cmd_why(args: argparse.Namespace) -> int:
    from emulator.trace.reader import load_trace
    from emulator.trace.why import explain

    explanation = explain(load_trace(args.trace), args.variant)
    if args.json:
        print(json.dumps(explanation.to_json()))
    else:
        print("\n".join(explanation.lines()))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from emulator.trace.reader import load_trace
    from emulator.trace.show import MIN_WIDTH, default_width, render, unicode_ok, use_color

    if args.width is not None and args.width < MIN_WIDTH:
        raise BadInput(f"--width {args.width}: must be at least {MIN_WIDTH}")
    trace = load_trace(args.trace, partial=args.partial)
    width = args.width if args.width is not None else default_width()
    why = None
    if args.why:
        from emulator.trace.why import slice_of

        why = slice_of(trace)
    sys.stdout.write(render(trace, width, show_all=args.all, color=use_color(sys.stdout),
                            unicode=unicode_ok(sys.stdout), why=why))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from emulator.trace.export import FORMATS, export
    from emulator.trace.reader import load_trace

    if args.format not in FORMATS:  # before reading the trace: the cheaper mistake first
        raise BadInput(f"--format {args.format}: unknown format; "
                       f"choose one of {', '.join(FORMATS)}")
    trace = load_trace(args.trace, partial=args.partial)
    highlight: set[int] = set()
    if args.why:
        from emulator.trace.why import slice_of

        highlight = slice_of(trace)
    export(trace, args.format, args.out, highlight)
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "explore": cmd_explore,
    "replay": cmd_replay,
    "shrink": cmd_shrink,
    "mutants": cmd_mutants,
    "list": cmd_list,
    "show": cmd_show,
    "why": cmd_why,
    "export": cmd_export,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except EmulatorError as exc:
        print(f"vmemu: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("vmemu: interrupted", file=sys.stderr)
        return 130
    except BaseExceptionGroup as group:
        # Trio delivers Ctrl-C inside a nursery as a group around the KeyboardInterrupt;
        # a group of nothing but interrupts is the same interrupt, anything else is a bug.
        interrupts, rest = group.split(KeyboardInterrupt)
        if interrupts is None or rest is not None:
            raise
        print("vmemu: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
