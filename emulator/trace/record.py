"""Record one execution to a trace file, streaming as it runs."""

from __future__ import annotations

from emulator.config import RunConfig
from emulator.machine import Execution, Machine
from emulator.spec import Spec
from emulator.trace.format import TraceWriter


async def record(machine: Machine, config: RunConfig, spec: Spec, path: str) -> Execution:
    """Run ``config.seed`` on ``machine`` and write its trace to ``path``.

    The header is ``config.to_header(spec)``: ``machine`` must be the one
    ``config`` describes (with its strategy following recorded decisions when
    ``config.strategy`` is ``follow``).  Events stream to the file in batches
    as the run goes, so memory stays bounded and a crash leaves a readable
    prefix (header and events, no footer).
    """
    with open(path, "w", encoding="utf-8") as fh:
        writer = TraceWriter(fh)
        writer.header(**config.to_header(spec))
        was_record, was_sink = machine.record, machine.sink
        machine.record, machine.sink = True, writer.events
        try:
            ex = await machine.execute(config.seed, spec)
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
