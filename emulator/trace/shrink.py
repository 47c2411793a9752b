"""Shrink a failing trace: the smallest run that still breaks the same rule.

The target is the rule of the trace's first violation.  A candidate *passes*
when its first violation has that rule (and it takes no more steps than the
recording).  The search is delta debugging (Zeller's ddmin), deterministic:
the wall clock (``budget``) only stops it early, never steers it.

1. Workload.  ddmin over the CPUs (a removed CPU keeps its place with an empty
   program, so agent numbers and the schedule still line up), then ddmin over
   each CPU's operations; then CPUs left empty are dropped (agents renumber,
   the schedule is remapped) and processes and files nothing refers to go.
   Then the structures: each op's range (or mmap) narrowed to fewer pages,
   ddmin over each process's mappings (a removed mapping takes with it the
   ops that touch it and no other mapping), then each mapping's and each
   file's pages, fewest first, and each background agent dropped (or given
   fewer passes).  Repeated to a fixed point.
   Each candidate spec is tried first with the current schedule, followed
   leniently (:class:`FollowStrategy`), then with ``SEEDS`` portfolio seeds;
   the first failing execution's actual decisions become the current schedule.
2. Schedule.  A preemption is a decision that switches away from an agent
   that could have gone on running.  ddmin over the preemptions: the removed
   ones stay on the running agent, every other decision follows the schedule
   leniently.  A candidate passes when the rule still fires with no more
   preemptions and steps than the current best.  Repeated while it improves.
3. The result is recorded by a normal run that follows the final decisions,
   written to ``OUT.part``, replayed strictly, and only then renamed to OUT.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shlex
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import trio

from emulator.check import all_checkers
from emulator.config import FOLLOW
from emulator.errors import BadInput, InternalError, check_output_path
from emulator.kern.events import Sched
from emulator.kern.param import PAGE_SIZE
from emulator.kern.syscalls import ArgKind
from emulator.machine import Machine
from emulator.sched.strategies import PortfolioStrategy, Strategy
from emulator.spec import CpuSpec, MappingSpec, Op, Spec
from emulator.trace.reader import Trace, load_trace
from emulator.trace.record import record
from emulator.trace.replay import FollowStrategy, replay, trace_variant
from emulator.variants import Variant

SEEDS = 40  # portfolio seeds tried when the current schedule no longer fails

T = TypeVar("T")


class _OutOfTime(Exception):
    """The budget ran out: keep the best found so far."""


@dataclass
class Run:
    """What the shrinker keeps of one execution."""

    rule: str | None  # the first violation's rule
    steps: int
    decisions: list[int]
    preemptions: list[int]  # indexes (into decisions) of the preempting decisions


class _Counting(Strategy):
    """Wrap a strategy and note which of its decisions preempt the running agent."""

    def __init__(self, inner: Strategy) -> None:
        self.inner = inner
        self.name = inner.name
        self.pos = 0
        self.preemptions: list[int] = []

    def reset(self, seed: int) -> None:
        self.inner.reset(seed)
        self.pos = 0
        self.preemptions = []

    def choose(self, runnable: Sequence[int], current: int) -> int:
        chosen = self.inner.choose(runnable, current)
        if chosen != current and current in runnable:
            self.preemptions.append(self.pos)
        self.pos += 1
        return chosen

    def describe(self) -> dict[str, object]:
        return self.inner.describe()


class StayStrategy(FollowStrategy):
    """Follow a schedule leniently, but at the decisions in ``stay`` keep the
    running agent when it can still run (a removed preemption)."""

    def __init__(self, decisions: Sequence[int], stay: frozenset[int]) -> None:
        super().__init__(decisions)
        self.stay = stay

    def choose(self, runnable: Sequence[int], current: int) -> int:
        if self.pos in self.stay and current in runnable:
            self.pos += 1
            return current
        return super().choose(runnable, current)


class NonPreemptiveStrategy(Strategy):
    """Never preempt: stay on the running agent while it can run; when it
    blocks or ends, pick the next one at random (seeded)."""

    name = "non_preemptive"

    def __init__(self) -> None:
        self.rng = random.Random(0)

    def reset(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def choose(self, runnable: Sequence[int], current: int) -> int:
        if current in runnable:
            return current
        return runnable[int(self.rng.random() * len(runnable))]


def count_preemptions(trace: Trace) -> int:
    """Preemptions in a recorded trace: sched events whose chooser could go on."""
    return sum(1 for e in trace.entries if isinstance(e.event, Sched)
               and e.event.chosen != e.cpu and e.cpu in e.event.runnable)


def count_ops(spec: Spec) -> int:
    return sum(len(c.program) for c in spec.cpus)


def count_mappings(spec: Spec) -> int:
    """The mappings a spec starts with (every process's)."""
    return sum(len(maps) for maps in spec.processes.values())


def op_span(op: Op) -> tuple[int, int] | None:
    """The addresses [start, end) an op aims at, or None (yield).

    A store or load aims at its page; msync, clean, munmap, mlock and munlock at
    their range (an empty one at the page it names); mmap at the pages it maps.
    Read from the call's argument kinds, so a new call is covered by its row.
    """
    kinds = [a.kind for a in op.call.args]
    if not kinds or kinds[0] is not ArgKind.ADDRESS:
        return None
    start = op.args[0] - op.args[0] % PAGE_SIZE
    if len(kinds) == 1:
        return start, start + PAGE_SIZE
    second = op.args[1]
    if kinds[1] is ArgKind.ADDRESS:  # clean: [start, end)
        end = second
    elif any(k is ArgKind.MAPPING for k in kinds):  # mmap: pages
        end = start + second * PAGE_SIZE
    else:  # a length in bytes
        end = op.args[0] + second
    return start, max(end, start + PAGE_SIZE)


def _overlaps(span: tuple[int, int], m: MappingSpec) -> bool:
    return span[0] < m.addr + m.pages * PAGE_SIZE and m.addr < span[1]


def _without_mappings(spec: Spec, process: str, keep: Sequence[int],
                      drop_ops: bool) -> Spec:
    """``spec`` with only the mappings ``keep`` (indexes) of ``process``; with ``drop_ops``,
    also without the ops of its CPUs that touch a removed mapping and no kept one."""
    maps = spec.processes[process]
    kept = tuple(maps[i] for i in keep)
    gone = [m for i, m in enumerate(maps) if i not in keep]
    cpus = spec.cpus
    if drop_ops:
        def stays(op: Op) -> bool:
            span = op_span(op)
            return (span is None or not any(_overlaps(span, m) for m in gone)
                    or any(_overlaps(span, m) for m in kept))

        cpus = tuple(c if c.process != process else
                     CpuSpec(c.process, tuple(op for op in c.program if stays(op)))
                     for c in spec.cpus)
    return dataclasses.replace(spec, processes={**spec.processes, process: kept}, cpus=cpus)


def _smaller(n: int) -> list[int]:
    """Sizes to try for something of ``n`` pages, smallest first."""
    return sorted({1, n // 2, n - 1} - {0, n})


def narrowed(op: Op, pages: int) -> Op:
    """``op`` over its first ``pages`` pages: a shorter range, or an mmap of fewer pages."""
    kinds = [a.kind for a in op.call.args]
    args = list(op.args)
    if kinds[1] is ArgKind.ADDRESS:  # clean: [start, end)
        args[1] = args[0] + pages * PAGE_SIZE
    elif any(k is ArgKind.MAPPING for k in kinds):  # mmap: pages
        args[1] = pages
    else:  # a length in bytes from a maybe unaligned address, rounded out to pages
        args[1] = pages * PAGE_SIZE - args[0] % PAGE_SIZE
    return Op(op.name, tuple(args))


def _with_program(spec: Spec, i: int, program: Sequence[Op]) -> Spec:
    cpus = list(spec.cpus)
    cpus[i] = dataclasses.replace(cpus[i], program=tuple(program))
    return dataclasses.replace(spec, cpus=tuple(cpus))


def _key(spec: Spec) -> str:
    return json.dumps(spec.to_json(), sort_keys=True)


async def ddmin(items: list[T], test: Callable[[list[T]], Awaitable[bool]],
                try_empty: bool = False) -> list[T]:
    """Zeller's ddmin: a 1-minimal sublist of ``items`` (which passes) that passes."""
    if try_empty and items and await test([]):
        return []
    n = 2
    while len(items) >= 2:
        size = len(items)
        bounds = [size * k // n for k in range(n + 1)]
        chunks = [items[bounds[k]:bounds[k + 1]] for k in range(n)]
        reduced = False
        for chunk in chunks:
            if await test(chunk):
                items, n, reduced = chunk, 2, True
                break
        if not reduced and n > 2:
            for k in range(n):
                rest = [x for j, c in enumerate(chunks) if j != k for x in c]
                if await test(rest):
                    items, n, reduced = rest, max(n - 1, 2), True
                    break
        if not reduced:
            if n >= size:
                break
            n = min(size, 2 * n)
    return items


@dataclass
class ShrinkResult:
    trace: str
    out: str
    rule: str
    steps_before: int
    steps_after: int
    preemptions_before: int
    preemptions_after: int
    ops_before: int
    ops_after: int
    cpus_before: int
    cpus_after: int
    mappings_before: int
    mappings_after: int
    executions: int
    seconds: float
    complete: bool  # False: the budget stopped the search early
    variant: str | None = None  # the --variant given, if any

    def to_json(self) -> dict[str, Any]:
        return {
            "trace": self.trace, "out": self.out, "rule": self.rule,
            "steps_before": self.steps_before, "steps_after": self.steps_after,
            "preemptions_before": self.preemptions_before,
            "preemptions_after": self.preemptions_after,
            "ops_before": self.ops_before, "ops_after": self.ops_after,
            "cpus_before": self.cpus_before, "cpus_after": self.cpus_after,
            "mappings_before": self.mappings_before, "mappings_after": self.mappings_after,
            "executions": self.executions, "seconds": round(self.seconds, 3),
        }

    def lines(self) -> list[str]:
        out = [
            f"shrunk {self.trace} ({self.rule}) to {self.out}",
            f"  steps:       {self.steps_before} -> {self.steps_after}",
            f"  preemptions: {self.preemptions_before} -> {self.preemptions_after}",
            f"  cpus:        {self.cpus_before} -> {self.cpus_after}",
            f"  ops:         {self.ops_before} -> {self.ops_after}",
            f"  mappings:    {self.mappings_before} -> {self.mappings_after}",
            f"  {self.executions} executions in {self.seconds:.2f}s"
            + ("" if self.complete else " (budget reached: the result may shrink further "
               "with a larger --budget)"),
        ]
        words = ["vmemu", "replay", self.out]
        if self.variant is not None and ":" in self.variant:
            words += ["--variant", self.variant]  # a user variant is never loaded unasked
        out.append(f"  replay with: {shlex.join(words)}")
        return out


class Shrinker:
    """The search state: the best spec and schedule found so far."""

    def __init__(self, trace: Trace, variant: Variant, rule: str, budget: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.trace = trace
        self.variant = variant
        self.rule = rule
        self.max_steps = trace.config.max_steps
        self.clock = clock
        self.deadline = clock() + budget
        self.executions = 0
        self.complete = True
        self.timed = False  # the budget bounds the search, not the first reproduction
        self.spec = trace.spec
        self.step_cap = 0
        self.preemption_cap: int | None = None  # set once the schedule was shrunk
        self.best = Run(None, 0, [], [])
        self._tried: dict[tuple[str, tuple[int, ...], int, int | None], Run | None] = {}

    # -- running -------------------------------------------------------------

    async def execute(self, spec: Spec, strategy: Strategy, seed: int = 0) -> Run:
        if self.timed and self.clock() >= self.deadline:
            raise _OutOfTime()
        counting = _Counting(strategy)
        machine = Machine(spec, self.variant, counting, checkers=all_checkers(),
                          max_steps=self.max_steps)
        ex = await machine.execute(seed, spec)
        self.executions += 1
        rule = ex.violations[0].rule if ex.violations else None
        return Run(rule, ex.steps, list(ex.decisions), list(counting.preemptions))

    def fails(self, run: Run) -> bool:
        if self.preemption_cap is not None and len(run.preemptions) > self.preemption_cap:
            return False
        return run.rule == self.rule and run.steps <= self.step_cap

    async def search(self, spec: Spec, decisions: Sequence[int]) -> Run | None:
        """A failing execution of ``spec``: the schedule followed, else a portfolio seed."""
        key = (_key(spec), tuple(decisions), self.step_cap, self.preemption_cap)
        if key in self._tried:
            return self._tried[key]
        found: Run | None = None
        run = await self.execute(spec, FollowStrategy(decisions))
        if self.fails(run):
            found = run
        else:
            for seed in range(SEEDS):
                run = await self.execute(spec, PortfolioStrategy(), seed)
                if self.fails(run):
                    found = run
                    break
        self._tried[key] = found
        return found

    async def accept_spec(self, spec: Spec, decisions: Sequence[int] | None = None) -> bool:
        run = await self.search(spec, self.best.decisions if decisions is None else decisions)
        if run is None:
            return False
        self.spec, self.best = spec, run
        return True

    # -- the phases ----------------------------------------------------------

    async def start(self) -> None:
        """Reproduce the recording; it is the first best."""
        run = await self.execute(self.spec, FollowStrategy(self.trace.decisions))
        self.step_cap = run.steps
        if not self.fails(run):
            self.step_cap = self.max_steps
            found = await self.search(self.spec, self.trace.decisions)
            if found is None:
                raise BadInput(f"{self.trace.path}: the recorded {self.rule} violation does "
                               f"not occur with variant {self.variant.name}: nothing to shrink")
            run = found
            self.step_cap = run.steps
        self.best = run

    async def shrink_cpus(self) -> None:
        base = self.spec
        live = [i for i, c in enumerate(base.cpus) if c.program]

        async def test(keep: list[int]) -> bool:
            cand = base
            for i in live:
                if i not in keep:
                    cand = _with_program(cand, i, ())
            return await self.accept_spec(cand)

        await ddmin(live, test)

    async def shrink_ops(self) -> None:
        for i in range(len(self.spec.cpus)):
            base = self.spec
            program = base.cpus[i].program
            if len(program) < 2:
                continue

            async def test(keep: list[int], base: Spec = base, i: int = i,
                           program: tuple[Op, ...] = program) -> bool:
                return await self.accept_spec(_with_program(base, i, [program[j] for j in keep]))

            await ddmin(list(range(len(program))), test)

    async def drop_empty_cpus(self) -> None:
        spec = self.spec
        empty = [i for i, c in enumerate(spec.cpus) if not c.program]
        if not empty:
            return
        if len(empty) == len(spec.cpus):
            empty = empty[1:]  # a spec needs one CPU
        # Try all at once, then one at a time (highest first).
        groups = [empty] + ([[i] for i in reversed(empty)] if len(empty) > 1 else [])
        for group in groups:
            spec = self.spec
            gone = {i for i in group if i < len(spec.cpus)}
            kept = [i for i in range(len(spec.cpus)) if i not in gone]
            renumber = {old: new for new, old in enumerate(kept)}
            # The disk, then the background agents, follow the CPUs.
            for j in range(1 + len(spec.agents)):
                renumber[len(spec.cpus) + j] = len(kept) + j
            cand = dataclasses.replace(spec, cpus=tuple(spec.cpus[i] for i in kept))
            decisions = [renumber[d] for d in self.best.decisions if d in renumber]
            if await self.accept_spec(cand, decisions) and group is empty:
                return

    async def drop_unused(self) -> None:
        spec = self.spec
        used = {c.process for c in spec.cpus}
        procs = {n: m for n, m in spec.processes.items() if n in used}
        if len(procs) < len(spec.processes):
            await self.accept_spec(dataclasses.replace(spec, processes=procs))
        spec = self.spec
        files = {m.file for maps in spec.processes.values() for m in maps if m.file}
        files |= {m.file for c in spec.cpus for op in c.program for m in op.mappings() if m.file}
        kept = {n: p for n, p in spec.files.items() if n in files}
        if len(kept) < len(spec.files):
            failing = tuple(n for n in spec.failing if n in kept)
            await self.accept_spec(dataclasses.replace(spec, files=kept, failing=failing))

    async def shrink_mappings(self) -> None:
        """ddmin over each process's mappings; a removed mapping's own ops go with it
        (or, failing that, stay: they then aim at a hole)."""
        for process in list(self.spec.processes):
            base = self.spec
            if process not in base.processes or not base.processes[process]:
                continue

            async def test(keep: list[int], base: Spec = base, process: str = process) -> bool:
                lean = _without_mappings(base, process, keep, drop_ops=True)
                if await self.accept_spec(lean):
                    return True
                plain = _without_mappings(base, process, keep, drop_ops=False)
                return plain != lean and await self.accept_spec(plain)

            await ddmin(list(range(len(base.processes[process]))), test, try_empty=True)

    async def shrink_ranges(self) -> None:
        """Narrow each op that spans several pages (a range, an mmap) to fewer, fewest first:
        what a range no longer reaches, a mapping no longer needs."""
        for i in range(len(self.spec.cpus)):
            for j in range(len(self.spec.cpus[i].program)):
                op = self.spec.cpus[i].program[j]
                span = op_span(op)
                if span is None or len(op.args) < 2:
                    continue
                for pages in _smaller((span[1] - span[0]) // PAGE_SIZE):
                    program = list(self.spec.cpus[i].program)
                    program[j] = narrowed(op, pages)
                    if await self.accept_spec(_with_program(self.spec, i, program)):
                        break

    async def shrink_pages(self) -> None:
        """Fewer pages for each mapping, then for each file (as few as its mappings allow)."""
        for process in list(self.spec.processes):
            for i in range(len(self.spec.processes[process])):
                for pages in _smaller(self.spec.processes[process][i].pages):
                    maps = list(self.spec.processes[process])
                    maps[i] = dataclasses.replace(maps[i], pages=pages)
                    cand = dataclasses.replace(
                        self.spec, processes={**self.spec.processes, process: tuple(maps)})
                    if await self.accept_spec(cand):
                        break
        for name in list(self.spec.files):
            spec = self.spec
            uses = [m for maps in spec.processes.values() for m in maps]
            uses += [m for c in spec.cpus for op in c.program for m in op.mappings()]
            least = max([m.offset + m.pages for m in uses if m.file == name], default=1)
            for pages in _smaller(spec.files[name]):
                if pages >= least:
                    cand = dataclasses.replace(spec, files={**spec.files, name: pages})
                    if await self.accept_spec(cand):
                        break

    async def shrink_agents(self) -> None:
        """Drop each background agent (those after it renumber), else give it fewer passes."""
        for name in list(self.spec.agents):
            spec = self.spec
            gone = len(spec.cpus) + 1 + list(spec.agents).index(name)  # after the disk
            agents = {n: p for n, p in spec.agents.items() if n != name}
            decisions = [d - (d > gone) for d in self.best.decisions if d != gone]
            if await self.accept_spec(dataclasses.replace(spec, agents=agents), decisions):
                continue
            for passes in _smaller(spec.agents[name]):
                cand = dataclasses.replace(spec, agents={**spec.agents, name: passes})
                if await self.accept_spec(cand):
                    break

    async def shrink_workload(self) -> None:
        while True:
            before = _key(self.spec)
            await self.shrink_cpus()
            await self.shrink_ops()
            await self.drop_empty_cpus()
            await self.drop_unused()
            await self.shrink_ranges()
            await self.shrink_mappings()
            await self.shrink_pages()
            await self.shrink_agents()
            await self.drop_unused()
            if _key(self.spec) == before:
                return

    async def shrink_schedule(self) -> None:
        if self.best.preemptions:
            # No preemption at all: try a few non-preemptive schedules first.
            for seed in range(SEEDS):
                run = await self.execute(self.spec, NonPreemptiveStrategy(), seed)
                if run.rule == self.rule and run.steps <= self.best.steps:
                    self.best = run
                    break
        while self.best.preemptions:
            base = self.best
            points = list(base.preemptions)

            async def test(keep: list[int], base: Run = base, points: list[int] = points) -> bool:
                stay = frozenset(points) - frozenset(keep)
                run = await self.execute(self.spec, StayStrategy(base.decisions, stay))
                if run.rule != self.rule:
                    return False
                if (len(run.preemptions), run.steps) > (len(self.best.preemptions),
                                                        self.best.steps):
                    return False
                self.best = run
                return True

            await ddmin(points, test, try_empty=True)
            if (len(self.best.preemptions), self.best.steps) >= (len(base.preemptions),
                                                                 base.steps):
                return

    async def run(self) -> None:
        await self.start()
        self.timed = True
        try:
            await self.shrink_workload()
            await self.shrink_schedule()
            # Fewer preemptions may free more ops; keep the preemptions gained.
            self.preemption_cap = len(self.best.preemptions)
            await self.shrink_workload()
            await self.shrink_schedule()
        except _OutOfTime:
            self.complete = False


async def _shrink(trace: Trace, variant: Variant, variant_override: str | None, rule: str,
                  out: str, budget: float) -> tuple[Shrinker, int]:
    shrinker = Shrinker(trace, variant, rule, budget)
    await shrinker.run()
    part = out + ".part"
    strategy = FollowStrategy(shrinker.best.decisions)
    machine = Machine(shrinker.spec, variant, strategy, checkers=all_checkers(),
                      max_steps=shrinker.max_steps)
    # The shrunk run follows its decisions from seed 0 and says where it came from.
    config = dataclasses.replace(
        trace.config, variant=variant_override or trace.config.variant, strategy=FOLLOW,
        params=(("shrunk_from", os.path.basename(trace.path)),), seed=0,
        max_steps=shrinker.max_steps)
    try:
        ex = await record(machine, config, shrinker.spec, part)
        got = ex.violations[0].rule if ex.violations else None
        if got != rule or list(ex.decisions) != shrinker.best.decisions:
            raise InternalError(f"the shrunk run did not fail with {rule} again when recorded "
                                f"(got {got}): vmemu is not deterministic here (a bug)")
        again = load_trace(part)
        result = await replay(again, variant_override)
        got = result.execution.violations[0].rule if result.execution.violations else None
        if not result.identical or got != rule:
            raise InternalError(f"the shrunk trace does not replay identically ({rule}): "
                                "vmemu is not deterministic here (a bug)")
        os.replace(part, out)
    finally:
        if os.path.exists(part):
            os.remove(part)
    return shrinker, count_preemptions(load_trace(out))


def check_output(out: str) -> None:
    check_output_path(out, "-o")


def shrink_trace(path: str, out: str, budget: float = 60.0,
                 variant_override: str | None = None) -> ShrinkResult:
    """Shrink the trace at ``path`` into ``out``; return the before/after report."""
    if budget <= 0:
        raise BadInput(f"--budget {budget}: must be positive")
    check_output(out)
    started = time.perf_counter()
    trace = load_trace(path)
    violations = trace.violations
    if not violations:
        raise BadInput(f"{path}: trace records no violation: nothing to shrink")
    rule = violations[0].get("rule")
    if not isinstance(rule, str):
        raise BadInput(f"{path}: footer violation has no rule name")
    variant = trace_variant(trace, variant_override)
    shrinker, preemptions_after = trio.run(_shrink, trace, variant, variant_override, rule,
                                           out, budget)
    return ShrinkResult(
        trace=path, out=out, rule=rule,
        steps_before=int(trace.footer["steps"]) if trace.footer and "steps" in trace.footer
        else shrinker.step_cap,
        steps_after=shrinker.best.steps,
        preemptions_before=count_preemptions(trace),
        preemptions_after=preemptions_after,
        ops_before=count_ops(trace.spec), ops_after=count_ops(shrinker.spec),
        cpus_before=len(trace.spec.cpus), cpus_after=len(shrinker.spec.cpus),
        mappings_before=count_mappings(trace.spec),
        mappings_after=count_mappings(shrinker.spec),
        executions=shrinker.executions,
        seconds=time.perf_counter() - started,
        complete=shrinker.complete,
        variant=variant_override,
    )
