"""Machine instructions per emulator step, counted by valgrind's cachegrind.

Usage (from the repository root; needs ``valgrind`` on the PATH):

    PYTHONPATH=. python benchmarks/instructions.py [--driver trio|direct] [--checkers on|off]
                                                   [--strategy random|pct|pos] [--tracker]
                                                   [--executions N]

The batch is ``benchmarks/steps.py``'s (writers_vs_msync, 4 CPUs, random strategy,
reference variant, every checker or none); ``--strategy`` swaps in another strategy (a
portfolio's members: ``pct`` of depth 3, ``pos``, which watches every event), and
``--tracker`` adds a portfolio's coverage tracker, as every hunt has.  It runs N + 10
executions under cachegrind and then 10, and divides the difference of the two
instruction counts by the difference of the steps: start-up, imports and the first
executions cancel.  Load does not change the count (``PYTHONHASHSEED=0``; repeat
runs agree within a few tenths of a percent), so it decides between two trees
on a machine too busy for wall-clock rates (BENCHMARKS.md, issue 12).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys

import trio

from emulator.check import all_checkers
from emulator.portfolio import Coverage, Tracker
from emulator.sched.drivers import DRIVERS
from emulator.sched.strategies import make_strategy

WARM_UP = 10


def run_batch(executions: int, driver: str, checkers: bool, strategy: str = "random",
              tracker: bool = False) -> int:
    """Run the batch in this process; return its steps."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from steps import FIRST_SEED, make_machine, run_emulator  # the sibling script's batch

    machine = make_machine(all_checkers() if checkers else [], make_strategy(strategy),
                           driver=driver)

    async def go() -> int:
        if not tracker:
            steps, _, _ = await run_emulator(machine, executions)
            return steps
        # As a portfolio's arm: its tracker watches, and each execution is accounted.
        watching = Tracker()
        machine.watchers.append(watching.attach)
        coverage = Coverage()
        steps = 0
        for seed in range(FIRST_SEED, FIRST_SEED + executions):
            ex = await machine.execute(seed)
            watching.account(coverage, ex, machine.spec)
            steps += ex.steps
        return steps

    return trio.run(go)


def count(executions: int, driver: str, checkers: bool, strategy: str,
          tracker: bool) -> tuple[int, int]:
    """(instructions, steps) of a child process running ``executions`` under cachegrind."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
           sys.executable, os.path.abspath(__file__), "--child", str(executions),
           "--driver", driver, "--checkers", "on" if checkers else "off", "--strategy", strategy,
           *(["--tracker"] if tracker else [])]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    refs = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    steps = re.search(r"^steps (\d+)$", done.stdout, re.MULTILINE)
    if refs is None or steps is None:
        raise RuntimeError(f"no count in valgrind's output: {done.stderr[-500:]}")
    return int(refs.group(1).replace(",", "")), int(steps.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--driver", default="direct", choices=tuple(DRIVERS))
    ap.add_argument("--checkers", default="on", choices=("on", "off"))
    ap.add_argument("--strategy", default="random", choices=("random", "pct", "pos"))
    ap.add_argument("--tracker", action="store_true",
                    help="a portfolio's coverage tracker watches, and accounts each execution")
    ap.add_argument("--executions", type=int, default=300)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    checkers = args.checkers == "on"
    if args.child is not None:
        steps = run_batch(args.child, args.driver, checkers, args.strategy, args.tracker)
        print(f"steps {steps}")
        return 0
    if args.executions < 1:
        ap.error("--executions must be positive")
    if shutil.which("valgrind") is None:
        print("instructions.py: valgrind is not on the PATH", file=sys.stderr)
        return 2
    big, big_steps = count(args.executions + WARM_UP, args.driver, checkers, args.strategy,
                           args.tracker)
    small, small_steps = count(WARM_UP, args.driver, checkers, args.strategy, args.tracker)
    steps = big_steps - small_steps
    shown = ("" if args.strategy == "random" else f", {args.strategy}") + (
        ", tracker" if args.tracker else "")
    print(f"{args.driver} driver, checkers {args.checkers}{shown}: {(big - small) / steps:,.0f} "
          f"instructions per step ({steps} steps in {args.executions} executions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
