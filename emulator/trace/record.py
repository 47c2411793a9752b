"""Record one execution to a trace file, streaming as it runs."""

from __future__ import annotations

from typing import Any

from emulator import __version__
from emulator.machine import Execution, Machine
from emulator.spec import Spec
from emulator.trace.format import TraceWriter


def header_fields(
    machine: Machine, spec: Spec, seed: int, workload: str, params: dict[str, Any]
) -> dict[str, Any]:
    return {
        "emulator": __version__,
        "profile": spec.profile,
        "variant": machine.variant.name,
        "workload": workload,
        "params": {k: v for k, v in params.items() if v is not None},
        "spec": spec.to_json(),
        "strategy": machine.strategy.describe(),
        "seed": seed,
        "max_steps": machine.max_steps,
        "agents": [f"cpu{i}" for i in range(len(spec.cpus))] + ["disk"],
    }


async def record(
    machine: Machine, seed: int, spec: Spec, path: str, workload: str, params: dict[str, Any]
) -> Execution:
    """Run ``seed`` on ``machine`` and write its trace to ``path``.

    Events stream to the file in batches as the run goes, so memory stays
    bounded and a crash leaves a readable prefix (header and events, no footer).
    """
    with open(path, "w", encoding="utf-8") as fh:
        writer = TraceWriter(fh)
        writer.header(**header_fields(machine, spec, seed, workload, params))
        was_record, was_sink = machine.record, machine.sink
        machine.record, machine.sink = True, writer.events
        try:
            ex = await machine.execute(seed, spec)
        finally:
            machine.record, machine.sink = was_record, was_sink
            if machine.kernel is not None and machine.kernel.events:
                writer.events(machine.kernel.events)
                machine.kernel.events = []
        writer.footer(
            outcome=ex.outcome,
            steps=ex.steps,
            decisions=len(ex.decisions),
            violations=[v.to_json() for v in ex.violations],
        )
    return ex
