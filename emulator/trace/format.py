"""The trace format: JSON lines, one object per line, keys sorted.

Line 1 is the header (``"event": "header"``): the format name and version,
the emulator version, profile, variant, workload and parameters, the full
expanded workload spec, the strategy and seed, the step bound and the agents'
names -- everything a replay needs, and nothing executable.

Then one line per event, in order: ``{"event": KIND, "step": N, "cpu": AGENT,
"args": [...]}``.  ``sched`` lines are scheduling decisions: ``args`` is
``[chosen, [runnable...]]``.  ``cpu`` is the agent number (-1: the harness).

The last line is the footer (``"event": "footer"``): outcome, counts, the
violations, and a SHA-256 digest of the event lines.  A trace without a footer
is a prefix: a run that crashed or was interrupted.

An event line is one recorded ``(step, agent, kind, args)``
(emulator.kern.events.Recorded): ``args`` are the event's traced fields, in
order.  Lines are rendered through a
per-trace structlog logger (no global configuration, no timestamps), only when
a trace is written; the hot path keeps the event objects.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, TextIO

import structlog

from emulator.kern.events import Recorded

FORMAT = "vmemu-trace"
# 2: the header's spec always names its cluster size ("cluster"), which defaults to
# the profile's; a version-1 spec without one meant 1 (emulator.trace.reader).
VERSION = 2
CLUSTER_IN_SPEC = 2  # the first version whose specs always name their cluster size


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def event_dict(line: Recorded) -> dict[str, Any]:
    step, aid, kind, args = line
    return {"event": kind, "step": step, "cpu": aid, "args": _plain(args)}


def event_line(ev: Recorded) -> str:
    """Render one event exactly as a trace line holds it (without the newline)."""
    return json.dumps(event_dict(ev), sort_keys=True)


def canonical(obj: dict[str, Any]) -> str:
    """The canonical text of a parsed trace line, for comparison."""
    return json.dumps(obj, sort_keys=True)


class TraceWriter:
    """Stream a trace to a text file through a per-trace structlog logger."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.count = 0
        self.log = structlog.wrap_logger(
            structlog.PrintLogger(stream),
            processors=[self._render],
            wrapper_class=structlog.BoundLogger,
            cache_logger_on_first_use=True,
        )

    def _render(self, logger: Any, method: str, event_dict: Any) -> str:
        """The one processor: sorted-key JSON; event lines also feed the digest."""
        line = json.dumps(event_dict, sort_keys=True)
        if event_dict["event"] not in ("header", "footer"):
            self.digest.update(line.encode())
            self.digest.update(b"\n")
        return line

    def header(self, **fields: Any) -> None:
        self.log.msg("header", format=FORMAT, version=VERSION, **fields)
        self.stream.flush()

    def events(self, events: list[Recorded]) -> None:
        """Write a batch of events and flush, so a crash leaves a readable prefix."""
        msg = self.log.msg
        for step, aid, kind, args in events:
            msg(kind, args=_plain(args), cpu=aid, step=step)
        self.count += len(events)
        self.stream.flush()

    def footer(self, **fields: Any) -> None:
        self.log.msg("footer", events=self.count, digest=self.digest.hexdigest(), **fields)
        self.stream.flush()
