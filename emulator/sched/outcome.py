"""How an execution ended."""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    """An execution's outcome; the values are the strings of reports and traces."""

    OK = "ok"
    VIOLATION = "violation"  # a checker's rule was broken
    DEADLOCK = "deadlock"  # no agent can run, some are blocked
    STARVATION = "starvation"  # the step bound, or an agent that never came back
    CRASH = "crash"  # the code under test raised
    PRUNED = "pruned"  # the strategy abandoned a redundant execution
    INTERRUPTED = "interrupted"  # vmemu itself was stopped
    ERROR = "error"  # the strategy failed, or the watchdog found no agent running: not the
    # variant's doing; the harness raises Scheduler.error instead of reporting an execution
