"""Machine instructions per execution, counted by valgrind's cachegrind: setup's measure.

Usage (from the repository root; needs ``valgrind`` on the PATH):

    PYTHONPATH=. python benchmarks/setup_instructions.py [--driver trio|direct]
                                                         [--path explore|machine]
                                                         [--programs emptied|full]
                                                         [--executions N]

``benchmarks/steps.py``'s setup rows, as instruction counts: ``--path explore``
runs a campaign shard (``run_shard``: what ``vmemu explore writers_vs_msync
--param cpus=4 --strategy random --keep-going`` runs), ``--path machine``
calls ``Machine.execute`` alone (every checker); ``--programs emptied`` drops
every CPU's program, so what is left is an execution's setup, the driver's
start and finish, and its end at an empty execution's size.  As
``instructions.py`` does, it runs N + 10 executions under cachegrind and then
10 (``PYTHONHASHSEED=0``) and divides the difference by N: start-up, imports and
the first executions cancel, and load does not change the count.
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
from emulator.sched.drivers import DRIVERS

WARM_UP = 10


def run_batch(executions: int, driver: str, path: str, emptied: bool) -> None:
    """Run the batch in this process."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from steps import explore_config, make_machine, run_emulator, run_explore

    async def go() -> None:
        if path == "machine":
            machine = make_machine(all_checkers(), driver=driver, empty=emptied)
            await run_emulator(machine, executions)
        else:
            await run_explore(explore_config(driver, executions, empty=emptied))

    trio.run(go)


def count(executions: int, driver: str, path: str, programs: str) -> int:
    """Instructions of a child process running ``executions`` under cachegrind."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
           sys.executable, os.path.abspath(__file__), "--child", str(executions),
           "--driver", driver, "--path", path, "--programs", programs]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    refs = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if refs is None:
        raise RuntimeError(f"no count in valgrind's output: {done.stderr[-500:]}")
    return int(refs.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--driver", default="trio", choices=tuple(DRIVERS))
    ap.add_argument("--path", default="explore", choices=("explore", "machine"))
    ap.add_argument("--programs", default="emptied", choices=("emptied", "full"))
    ap.add_argument("--executions", type=int, default=300)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        run_batch(args.child, args.driver, args.path, args.programs == "emptied")
        return 0
    if args.executions < 1:
        ap.error("--executions must be positive")
    if shutil.which("valgrind") is None:
        print("setup_instructions.py: valgrind is not on the PATH", file=sys.stderr)
        return 2
    big = count(args.executions + WARM_UP, args.driver, args.path, args.programs)
    small = count(WARM_UP, args.driver, args.path, args.programs)
    print(f"{args.driver} driver, {args.path} path, {args.programs} programs: "
          f"{(big - small) / args.executions:,.0f} instructions per execution "
          f"({args.executions} executions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
