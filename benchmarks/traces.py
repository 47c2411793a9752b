"""Trace costs: recording overhead, bytes per event, replay rate.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/traces.py [--rounds N] [--executions N]

Measured in one process, rounds alternating so machine drift hits every row:

* exploration of ``writers_vs_msync`` (reference, portfolio, all checkers)
  with event recording off, and with recording to in-memory tuples on (what a
  campaign pays if it keeps every execution's events);
* writing traces: one trace file per seed through the structlog writer, bytes
  per event;
* replay: ``vmemu replay``'s path (load, validate, re-run, compare every
  event) over those files, in events per second.

Reported: medians and min-max over rounds, ratios computed per round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import trio

from emulator.check import all_checkers
from emulator.config import RunConfig
from emulator.machine import Machine
from emulator.sched.strategies import PortfolioStrategy
from emulator.trace.reader import load_trace
from emulator.trace.record import record
from emulator.trace.replay import replay
from emulator.variants import BUILTIN
from workloads import build_workload


def _machine(record_events: bool) -> Machine:
    spec = build_workload("writers_vs_msync", {}, 0, None)
    return Machine(spec, BUILTIN["reference"], PortfolioStrategy(), checkers=all_checkers(),
                   record=record_events)


async def explore(record_events: bool, executions: int) -> tuple[int, float]:
    machine = _machine(record_events)
    steps = 0
    start = time.perf_counter()
    for seed in range(executions):
        ex = await machine.execute(seed)
        steps += ex.steps
    return steps, time.perf_counter() - start


async def write_traces(folder: str, count: int) -> tuple[int, int, float]:
    machine = _machine(False)
    spec = machine.spec
    events = size = 0
    start = time.perf_counter()
    for seed in range(count):
        path = os.path.join(folder, f"t{seed}.jsonl")
        await record(machine, RunConfig("writers_vs_msync", seed=seed), spec, path)
        size += os.path.getsize(path)
    elapsed = time.perf_counter() - start
    for seed in range(count):
        events += len(load_trace(os.path.join(folder, f"t{seed}.jsonl")).events)
    return events, size, elapsed


async def replay_all(folder: str, count: int) -> tuple[int, float]:
    events = 0
    start = time.perf_counter()
    for seed in range(count):
        trace = load_trace(os.path.join(folder, f"t{seed}.jsonl"))
        result = await replay(trace)
        assert result.identical, f"seed {seed} did not replay identically"
        events += len(trace.events)
    return events, time.perf_counter() - start


def _med(xs: list[float]) -> str:
    return f"{statistics.median(xs):,.0f} ({min(xs):,.0f}–{max(xs):,.0f})"


async def bench(rounds: int, executions: int, traces: int) -> None:
    off: list[float] = []
    on: list[float] = []
    ratio: list[float] = []
    write_rate: list[float] = []
    replay_rate: list[float] = []
    bytes_per_event = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for r in range(rounds):
            order = [False, True] if r % 2 == 0 else [True, False]
            rates = {}
            for flag in order:
                steps, secs = await explore(flag, executions)
                rates[flag] = steps / secs
            off.append(rates[False])
            on.append(rates[True])
            ratio.append(rates[False] / rates[True])
            events, size, secs = await write_traces(folder, traces)
            write_rate.append(events / secs)
            bytes_per_event = size / events
            events, secs = await replay_all(folder, traces)
            replay_rate.append(events / secs)
    print(f"rounds {rounds}; {executions} executions per exploration row; {traces} traces")
    print("| row | median (min–max) |")
    print("|---|---|")
    print(f"| explore, recording off, steps/s | {_med(off)} |")
    print(f"| explore, recording to tuples, steps/s | {_med(on)} |")
    print(f"| slowdown of recording (off/on, per round) | {statistics.median(ratio):.3f} "
          f"({min(ratio):.3f}–{max(ratio):.3f}) |")
    print(f"| writing trace files, events/s | {_med(write_rate)} |")
    print(f"| replay (load + re-run + compare), events/s | {_med(replay_rate)} |")
    print(f"| trace size, bytes per event | {bytes_per_event:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--executions", type=int, default=300)
    ap.add_argument("--traces", type=int, default=40)
    args = ap.parse_args()
    trio.run(bench, args.rounds, args.executions, args.traces)


if __name__ == "__main__":
    main()
