"""The command line: ``vmemu run | explore | list``.

Exit codes (DESIGN.md): 0 no violation, 1 a violation found, 2 bad input or
usage (one line on stderr, nothing written), 3 replay diverged.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import trio

from emulator.errors import BadInput, EmulatorError
from emulator.kern.kernel import PROFILES
from emulator.machine import DEFAULT_MAX_STEPS, Campaign, Execution, Machine, campaign
from emulator.sched.strategies import STRATEGIES, make_strategy
from emulator.spec import Spec
from emulator.variants import BUILTIN, load_variant
from workloads import describe, is_spec_file, load_workload

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


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("workload", help="a workload name (see `vmemu list`) or a .json/.toml spec")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a workload parameter (repeatable)")
    p.add_argument("--profile", choices=PROFILES, default=None,
                   help="kernel profile (default: the spec's, else manpage)")
    p.add_argument("--variant", default="reference",
                   help="clean variant: a built-in name, file.py:function or module:function")
    p.add_argument("--strategy", default="portfolio",
                   help="scheduling strategy: random, pct or portfolio (default)")
    p.add_argument("--seed", type=int, default=0, help="(first) execution seed")
    p.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS,
                   help="step bound per execution; beyond it: starvation")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vmemu", description="Deterministic concurrency emulator of "
                     "FreeBSD's vm_map_clean and the paths that race with it.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run one execution")
    _add_common(run)
    run.add_argument("--trace", default=None, help="write the execution's trace here")
    explore = sub.add_parser("explore", help="run many executions, stop at the first violation")
    _add_common(explore)
    limit = explore.add_mutually_exclusive_group()
    limit.add_argument("--iterations", type=int, default=None, help="executions to run")
    limit.add_argument("--time-budget", type=float, default=None, help="seconds to explore")
    explore.add_argument("--keep-going", action="store_true",
                         help="do not stop at the first violation")
    mutants = sub.add_parser("mutants", help="checker power self-test over the built-in mutants")
    mutants.add_argument("--time-budget", type=float, default=60.0,
                         help="seconds for the whole self-test (default 60)")
    mutants.add_argument("--strategy", default="portfolio",
                         help="scheduling strategy (default: portfolio, the best measured)")
    mutants.add_argument("--only", action="append", default=[], metavar="MUTANT",
                         help="hunt only this mutant (repeatable)")
    mutants.add_argument("--json", action="store_true", help="print one JSON object")
    sub.add_parser("list", help="workloads, profiles, variants, strategies, checkers")
    return parser


class _Job:
    """A resolved command: the spec factory, variant and strategy."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.params = _params(args.param)
        if args.max_steps <= 0:
            raise BadInput(f"--max-steps {args.max_steps}: must be positive")
        self.variant = load_variant(args.variant)
        self.strategy = make_strategy(args.strategy)
        # Validate the workload once, with the first seed.
        self.first_spec = self.spec_for_seed(args.seed)
        self.seeded = not is_spec_file(args.workload)

    def spec_for_seed(self, seed: int) -> Spec:
        return load_workload(self.args.workload, self.params, seed, self.args.profile)

    def machine(self) -> Machine:
        return Machine(self.first_spec, self.variant, self.strategy,
                       checkers=_checkers(), max_steps=self.args.max_steps)

    def rerun_command(self, seed: int) -> str:
        a = self.args
        words = ["vmemu", "run", a.workload]
        for p in a.param:
            words += ["--param", p]
        if a.profile:
            words += ["--profile", a.profile]
        if a.variant != "reference":
            words += ["--variant", a.variant]
        if a.strategy != "portfolio":
            words += ["--strategy", a.strategy]
        words += ["--seed", str(seed)]
        if a.max_steps != DEFAULT_MAX_STEPS:
            words += ["--max-steps", str(a.max_steps)]
        return shlex.join(words)


def _checkers() -> list[Callable[..., None]]:
    from emulator.check import all_checkers

    return all_checkers()


def _violations_json(job: _Job, failures: list[Execution]) -> list[dict[str, Any]]:
    out = []
    for ex in failures:
        for v in ex.violations:
            out.append({
                "rule": v.rule,
                "message": v.message,
                "step": v.step,
                "seed": ex.seed,
                "cpus": v.cpus,
                "trace": None,
                "replay": job.rerun_command(ex.seed),
            })
    return out


def _summary(job: _Job, camp: Campaign, results: dict[str, Any] | None) -> dict[str, Any]:
    elapsed = camp.elapsed
    return {
        "outcome": "violation" if camp.failures else "ok",
        "workload": job.args.workload,
        "profile": job.first_spec.profile,
        "variant": job.variant.name,
        "strategy": job.strategy.name,
        "seed": job.args.seed,
        "executions": camp.executions,
        "steps": camp.steps,
        "steps_per_second": round(camp.steps / elapsed, 1) if elapsed > 0 else 0.0,
        "elapsed_seconds": round(elapsed, 4),
        "violations": _violations_json(job, camp.failures),
        "results": results,
    }


def _print_violations(job: _Job, failures: list[Execution]) -> None:
    for ex in failures:
        for v in ex.violations:
            print(f"VIOLATION {v.rule} at step {v.step} (seed {ex.seed}): {v.message}")
            if v.fields.get("historical") and job.variant.name == "reference":
                print("  (freebsd5's historical invalidate data loss, reproduced as the 2003 "
                      "code behaved; the manpage and modern profiles keep re-dirtied pages)")
        print(f"  rerun with: {job.rerun_command(ex.seed)}")


def cmd_run(args: argparse.Namespace) -> int:
    job = _Job(args)
    machine = job.machine()

    async def go() -> Campaign:
        return await campaign(machine, args.seed, 1, None, job.spec_for_seed)

    camp = trio.run(go)
    ex = camp.last
    assert ex is not None
    if args.json:
        print(json.dumps(_summary(job, camp, ex.results), sort_keys=False))
    else:
        print(f"{job.args.workload}: profile {job.first_spec.profile}, variant "
              f"{job.variant.name}, seed {args.seed}: {ex.steps} steps")
        spec = job.spec_for_seed(args.seed)
        for i, (cpu, rows) in enumerate(ex.results.items()):
            shown = [f"{r['op']}({', '.join(map(str, r['args']))})={r['ret']}" for r in rows]
            program = spec.cpus[i].program
            if ex.outcome != "ok" and len(rows) < len(program):
                op = program[len(rows)].to_json()
                shown.append(f"{op[0]}({', '.join(map(str, op[1:]))}) <- in progress")
            print(f"  {cpu}: {', '.join(shown)}")
        if ex.outcome == "ok":
            print("outcome: ok")
        else:
            _print_violations(job, camp.failures)
    return 1 if camp.failures else 0


def cmd_explore(args: argparse.Namespace) -> int:
    job = _Job(args)
    if args.iterations is not None and args.iterations <= 0:
        raise BadInput(f"--iterations {args.iterations}: must be positive")
    if args.time_budget is not None and args.time_budget <= 0:
        raise BadInput(f"--time-budget {args.time_budget}: must be positive")
    iterations = args.iterations
    if iterations is None and args.time_budget is None:
        iterations = 1000
    machine = job.machine()

    async def go() -> Campaign:
        return await campaign(machine, args.seed, iterations, args.time_budget,
                              job.spec_for_seed, stop_on_first=not args.keep_going)

    camp = trio.run(go)
    summary = _summary(job, camp, None)
    if args.json:
        print(json.dumps(summary))
    else:
        last_seed = args.seed + camp.executions - 1
        print(f"explored {camp.executions} executions of {args.workload} "
              f"(profile {summary['profile']}, variant {summary['variant']}, "
              f"strategy {summary['strategy']}, seeds {args.seed}..{last_seed})"
              f": {camp.steps} steps in {camp.elapsed:.2f}s "
              f"({summary['steps_per_second']:.0f} steps/s)")
        if camp.failures:
            _print_violations(job, camp.failures)
        else:
            print("outcome: ok")
    return 1 if camp.failures else 0


def cmd_list(args: argparse.Namespace) -> int:
    from emulator.check import CHECKERS

    print("profiles:   " + ", ".join(PROFILES) + "   (default: manpage)")
    print("strategies: " + ", ".join(STRATEGIES))
    print("variants:   " + ", ".join(BUILTIN))
    print("checkers:   " + ", ".join(CHECKERS))
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

    async def go() -> dict[str, Any]:
        return await run_mutants(args.time_budget, args.strategy, args.only or None)

    report = trio.run(go)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{'mutant':32s} {'profile':9s} {'caught by':16s} {'execs':>6s} {'seconds':>8s}  "
              "workload / seed")
        for m in report["mutants"]:
            if m["caught"]:
                mark = "" if m["expected_rule_seen"] else "  (expected: "
                mark += "" if m["expected_rule_seen"] else ", ".join(m["expected_rules"]) + ")"
                print(f"{m['name']:32s} {m['replay'].split('--profile ')[1].split()[0]:9s} "
                      f"{m['rule']:16s} {m['executions_to_first']:6d} "
                      f"{m['seconds_to_first']:8.3f}  {m['workload']} / {m['seed']}{mark}")
            else:
                print(f"{m['name']:32s} {'':9s} {'NOT CAUGHT':16s} {m['executions']:6d}")
        print(f"caught {report['caught']} of {report['total']} mutants; "
              f"reference: {report['reference_executions']} executions, "
              f"{report['false_alarms']} false alarms")
        if report["historical_bug_reproduced"]:
            h = report["historical_example"]
            print(f"historical bug reproduced: freebsd5's invalidate lost a store "
                  f"({h['workload']}, seed {h['seed']}): {h['message']}")
        for alarm in report["false_alarm_examples"]:
            print(f"FALSE ALARM {alarm['rule']} ({alarm['workload']}, {alarm['profile']}, "
                  f"seed {alarm['seed']}): {alarm['message']}")
    all_caught = report["caught"] == report["total"]
    return 0 if all_caught and report["false_alarms"] == 0 else 1


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "explore": cmd_explore,
    "mutants": cmd_mutants,
    "list": cmd_list,
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
