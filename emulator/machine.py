"""The harness: build a machine from a spec, run executions, run campaigns.

One ``trio.run`` serves a whole campaign; each execution rebuilds the machine
(kernel state, agents, checkers) from the spec and the seed.  Agents are one
per CPU plus the disk; CPU ``i`` is agent ``i``, the disk comes next, then the
background agents the spec turns on (the page daemon, the syncer).
The driver (``trio``, the reference, or ``direct``) moves the baton between
them; it changes how fast an execution runs, never what it does.

After every CPU finishes, the harness performs the final trusted flush: the
reference flush path, run outside the scheduler, writes every dirty page of
every file, so the pager can be compared with the stores actually made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulator.check import Rule
from emulator.check.base import Checker
from emulator.check.installer import Installer
from emulator.check.monitor import watch
from emulator.errors import EmulatorError, InternalError, ReplayDiverged
from emulator.kern.clean import reference_clean
from emulator.kern.daemons import agent_bodies
from emulator.kern.events import Call, Recorded, Ret, Sched
from emulator.kern.fault import Fault
from emulator.kern.kernel import Kernel
from emulator.kern.map import VmMap
from emulator.kern.monitor import Violation
from emulator.kern.object import OBJT_FILE, VmObject
from emulator.kern.pager import Pager
from emulator.kern.pmap import fold_modified
from emulator.kern.profile import PROFILES
from emulator.kern.syscalls import make_entry, munmap_path, result_value, wire_now
from emulator.kern.vnode import process_deferred
from emulator.sched.drivers import DEFAULT_DRIVER, driver_class, make_scheduler
from emulator.sched.outcome import Outcome
from emulator.sched.scheduler import Scheduler
from emulator.sched.strategies import Strategy
from emulator.spec import Op, Spec
from emulator.variants.base import Variant

DEFAULT_MAX_STEPS = 20_000


@dataclass
class Execution:
    """What one execution did."""

    seed: int
    outcome: Outcome
    steps: int
    violations: list[Violation]
    results: dict[str, list[dict[str, Any]]]
    decisions: list[int]
    events: list[Recorded] = field(default_factory=list)  # with record: the trace's lines
    detail: str = ""


# A checker class, or anything that builds a Checker watching a kernel.
CheckerFactory = Callable[[Kernel], Checker]


def build_kernel(spec: Spec, sched: Scheduler, variant: Variant, record: bool) -> Kernel:
    """Create the kernel state a spec describes (outside any agent: no schedule points)."""
    k = Kernel(sched, PROFILES[spec.profile], record=record)
    k.cluster = spec.cluster
    watch(k)
    for name, pages in spec.files.items():
        pager = Pager(name, pages)
        pager.fail_writes = name in spec.failing
        pager.fail_pages = frozenset(spec.fail_pages.get(name, ()))
        obj = VmObject(k, OBJT_FILE, name, pages, pager)
        obj.ref_count = 1  # the vnode's own reference: file objects stay cached
        obj.closed = name in spec.closed
        k.files[name] = obj
        k.pagers[name] = pager
    for pname, mappings in spec.processes.items():
        vm_map = VmMap(k, pname)
        for ms in mappings:
            entry = make_entry(k, ms.addr, ms.pages, ms)
            vm_map.entries[entry.start] = entry
            if ms.wired:
                wire_now(k, entry)
        k.maps[pname] = vm_map
    fault = variant.fault(k)
    k.fault_impl = fault.fault
    k.clean_impl = variant.clean
    k.munmap_impl = variant.munmap
    if variant.msync_errno is not None:
        k.msync_errno = variant.msync_errno
    k.trusted = (variant.clean is reference_clean and variant.fault is Fault
                 and variant.munmap is munmap_path and variant.msync_errno is None)
    return k


async def run_op(k: Kernel, vm_map: VmMap, op: Op) -> Any:
    """Perform one program step and return its result."""
    return await op.call.handler(k, vm_map, *op.args)


def final_flush(k: Kernel) -> None:
    """The trusted flush: write every dirty file page, outside the scheduler.

    Uses no variant code.  Pages whose contents differ from the pager but are
    neither dirty nor modified are *not* written: their store was lost, and the
    lost-store rule reports it.
    """
    for obj in k.files.values():
        pager = obj.pager
        assert pager is not None
        for pindex, page in obj.pages.items():
            fold_modified(page)
            if page.dirty and page.valid:  # an invalid page's contents are gone
                pager.stored[pindex] = page.contents
                page.dirty = False


class Machine:
    """Runs executions of one spec with one variant, one strategy, given checkers."""

    def __init__(
        self,
        spec: Spec,
        variant: Variant,
        strategy: Strategy,
        checkers: Sequence[CheckerFactory] | None = None,
        max_steps: int = DEFAULT_MAX_STEPS,
        record: bool = False,
        driver: str = DEFAULT_DRIVER,
    ) -> None:
        self.spec = spec
        self.variant = variant
        self.strategy = strategy
        self.checkers = list(checkers or [])
        # Builds the checkers once and re-installs them on each execution's kernel.
        self.installer = Installer(self.checkers)
        self.max_steps = max_steps
        self.record = record
        self.driver = driver
        driver_class(driver)  # an unknown driver is bad input now, not at the first execution
        self.sink: Callable[[list[Recorded]], None] | None = None  # the trace writer's
        self.stall_seconds = 2.0
        self.kernel: Kernel | None = None  # the last execution's, for tests
        # Called with each execution's kernel after the checkers subscribe (coverage).
        self.watchers: list[Callable[[Kernel], None]] = []

    async def execute(self, seed: int, spec: Spec | None = None) -> Execution:
        """Run one execution with ``seed``; return what happened."""
        spec = spec or self.spec
        self.strategy.reset(seed)
        sched = make_scheduler(self.driver, self.strategy, self.max_steps, self.stall_seconds)
        cpus = [sched.add_agent(f"cpu{i}") for i in range(len(spec.cpus))]
        disk_agent = sched.add_agent("disk", daemon=True)
        k = build_kernel(spec, sched, self.variant, self.record)
        k.disk.aid = disk_agent.aid
        # The disk starts idle, asleep on its empty queue: it is not a choice
        # until there is a write to complete.
        sched.start_asleep(disk_agent, k.disk)
        # Background agents the spec asks for (kern/daemons.py), after the disk.
        background = agent_bodies(k, spec.agents)
        for name, _ in background:
            sched.add_agent(name, daemon=True)
        k.sink = self.sink
        self.kernel = k
        if self.record:
            events = k.events
            sched_kind = Sched.kind

            def on_decision(step: int, aids: Sequence[int], chosen: int) -> None:
                # A decision is the scheduler's, not the kernel's: no observer of the
                # kernel's events wants it, so it goes straight to the record.  (The
                # record streams to the sink at the next kernel event.)
                cur = sched.current
                events.append((step, cur.aid if cur is not None else -1, sched_kind,
                               (chosen, tuple(aids))))

            sched.on_decision = on_decision
        if self.installer.factories != self.checkers:
            self.installer = Installer(self.checkers)
        checkers = self.installer.install(k, spec)
        for watcher in self.watchers:
            watcher(k)
        if self.strategy.wants_events:
            k.watch(self.strategy.event)  # after the checkers: it sees what they let through
        k.seal()  # every subscription is made: the hot events' cheapest emitters
        results: dict[str, list[dict[str, Any]]] = {a.name: [] for a in cpus}

        def body(i: int) -> Callable[[], Any]:
            vm_map = k.maps[spec.cpus[i].process]
            program = spec.cpus[i].program
            out = results[f"cpu{i}"]
            current_op: dict[int, str] = k.shared.setdefault("current_op", {})
            # Every subscription is made by now: an event no one records or observes
            # need not be built (no checker watches calls and returns).
            say_call = k.recording or Call in k.observers
            say_ret = k.recording or Ret in k.observers

            async def run() -> None:
                for op in program:
                    name = op.name
                    current_op[i] = name
                    if say_call:
                        k.emit(Call(name, op.event_args))
                    # run_op, inlined: every frame of the await chain is passed twice
                    # at every switch of agents.
                    value = await op.call.handler(k, vm_map, *op.args)
                    if k.deferred:  # vrele past the map lock (kern/vnode.py)
                        await process_deferred(k)
                    rendered = result_value(value)
                    if say_ret:
                        k.emit(Ret(name, rendered))
                    out.append({"op": name, "args": list(op.plain_args), "ret": rendered})

            return run

        bodies: list[Callable[[], Any]] = [body(i) for i in range(len(cpus))]
        bodies.append(k.disk.run)
        bodies.extend(run for _, run in background)
        await sched.run(bodies)
        if sched.error is not None:
            raise _outside_error(sched, self.strategy) from sched.error
        outcome = Outcome(sched.outcome)
        self.strategy.end(outcome)
        if outcome in (Outcome.DEADLOCK, Outcome.STARVATION, Outcome.CRASH):
            v = Violation(Rule(outcome), sched.detail, sched.step, list(sched.blame))
            k.violations.append(v)
            for checker in checkers:
                checker.explain(v)
        elif outcome == Outcome.OK:
            for checker in checkers:
                checker.end()
            if not k.violations:
                final_flush(k)
                for checker in checkers:
                    checker.final()
            if k.violations:
                outcome = Outcome.VIOLATION
        return Execution(
            seed=seed,
            outcome=outcome,
            steps=sched.step,
            violations=list(k.violations),
            results=results,
            decisions=list(sched.decisions),
            events=k.events,
            detail=sched.detail,
        )


def _outside_error(sched: Scheduler, strategy: Strategy) -> EmulatorError:
    """What ended an execution from outside the variant, as the error vmemu reports."""
    err = sched.error
    if isinstance(err, ReplayDiverged):
        return ReplayDiverged(f"replay diverged at step {sched.step}, {err}")
    if isinstance(err, EmulatorError):
        return err
    return InternalError(f"the {strategy.name} strategy raised {type(err).__name__} at step "
                         f"{sched.step}: {err} (a bug in vmemu, not in the variant)")
