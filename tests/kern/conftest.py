"""Fixtures for the kernel-model unit tests: hand-written CPU bodies on a real machine.

``run_kernel(*bodies, spec=None, profile=None, order=(), max_steps=...)`` builds a
machine through the shared ``run_spec`` helper (tests/conftest.py) from
``spec`` (default :data:`SPEC`), runs CPU i's body as that CPU's only system
call, and returns a :class:`KernelRun` with the execution, the kernel and the
bodies' log.  A body is ``async def body(cpu: Cpu) -> None``; it uses the
kernel's own primitives (``cpu.k``, ``cpu.vm_map``) and may call
``cpu.prefer(1, 0)`` to say which agents the scheduler runs first from the
next schedule point on (the lowest runnable agent otherwise), so an
interleaving is exact rather than sampled.  ``cpu.resident(obj, pindex)``
allocates a valid, unbusied, unmapped page.

The body runs where a clean routine runs (it is plugged in as the variant's
clean), so it has a current CPU, may take locks, busy pages and issue I/O.  No
checker is installed unless ``rules`` names some (``rules=["lock_discipline"]``
judges the primitives' locking contracts, ending the execution with a
violation as in a real run).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from emulator.check import CHECKERS
from emulator.kern.kern_return import KernReturn
from emulator.kern.kernel import Kernel
from emulator.kern.map import VmMap
from emulator.kern.object import VmObject
from emulator.kern.page import VmPage
from emulator.machine import Execution
from emulator.sched.strategies import Strategy
from emulator.variants import Variant

BASE = 0x10000  # f, shared and writable, in p0 and p1
ANON = 0x20000  # anonymous memory, in p0
PRIVATE = 0x30000  # g, private (copy-on-write), in p0

# Two processes share file f; p0 also has anonymous memory and a private view of g.
SPEC: dict[str, Any] = {
    "files": {"f": {"pages": 4}, "g": {"pages": 2}},
    "processes": {
        "p0": {"mappings": [
            {"addr": hex(BASE), "pages": 4, "file": "f"},
            {"addr": hex(ANON), "pages": 2, "anon": True},
            {"addr": hex(PRIVATE), "pages": 2, "file": "g", "private": True},
        ]},
        "p1": {"mappings": [{"addr": hex(BASE), "pages": 4, "file": "f"}]},
    },
}


class Ordered(Strategy):
    """Run the first runnable agent of ``order``; the lowest runnable one if none is."""

    name = "ordered"

    def __init__(self, order: Sequence[int] = ()) -> None:
        self.order = list(order)

    def choose(self, runnable: Sequence[int], current: int) -> int:
        for aid in self.order:
            if aid in runnable:
                return aid
        return runnable[0]


@dataclass
class Cpu:
    """What a body sees: the kernel, its process's map, its number, the shared log."""

    k: Kernel
    vm_map: VmMap
    aid: int
    run: KernelRun

    def log(self, text: str) -> None:
        self.run.log.append(f"cpu{self.aid} {text}")

    def prefer(self, *aids: int) -> None:
        self.run.strategy.order = list(aids)

    async def resident(self, obj: VmObject | str = "f", pindex: int = 0) -> VmPage:
        """Make page ``pindex`` of ``obj`` resident and valid, not busy, not mapped."""
        if isinstance(obj, str):
            obj = self.k.files[obj]
        await obj.lock.lock()
        page = obj.alloc_page(pindex)  # exclusive busy to this cpu
        page.valid = True
        await obj.lock.unlock()
        await page.xunbusy()
        return page


@dataclass
class KernelRun:
    strategy: Ordered
    log: list[str] = field(default_factory=list)
    execution: Execution | None = None
    k: Kernel | None = None

    @property
    def outcome(self) -> str:
        assert self.execution is not None
        return self.execution.outcome

    @property
    def rules(self) -> list[str]:
        assert self.execution is not None
        return [v.rule for v in self.execution.violations]


Body = Callable[[Cpu], Awaitable[None]]
RunKernel = Callable[..., Awaitable[KernelRun]]


@pytest.fixture
def run_kernel(run_spec: Any) -> RunKernel:
    async def run(*bodies: Body, spec: dict[str, Any] | None = None,
                  processes: Sequence[str] = (), profile: str | None = None,
                  order: Sequence[int] = (), max_steps: int = 2000,
                  rules: Sequence[str] = ()) -> KernelRun:
        data = dict(spec or SPEC)
        data["cpus"] = [
            {"process": processes[i] if i < len(processes) else "p0",
             "program": [["clean", hex(BASE), hex(BASE), True, False]]}
            for i in range(len(bodies))
        ]
        result = KernelRun(Ordered(order))

        async def clean(vm_map: VmMap, start: int, end: int, syncio: bool,
                        invalidate: bool) -> KernReturn:
            k = vm_map.k
            aid = k.curcpu()
            await bodies[aid](Cpu(k, vm_map, aid, result))
            return KernReturn.SUCCESS

        ex, k = await run_spec(data, profile, strategy=result.strategy,
                               variant=Variant("unit", clean), max_steps=max_steps,
                               checkers=[CHECKERS[rule] for rule in rules])
        result.execution, result.k = ex, k
        return result

    return run
