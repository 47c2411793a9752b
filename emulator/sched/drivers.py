"""The drivers that move the baton between agents, by name (``--driver``).

``trio`` is the reference (the default for ``run`` and ``replay``): every agent a
Trio task.  ``direct`` runs the same coroutines with no event loop, and gives
the same executions, trace for trace (see emulator/sched/direct.py); ``explore``
and ``mutants`` default to it.
"""

from __future__ import annotations

from emulator.errors import BadInput
from emulator.sched.direct import DirectScheduler
from emulator.sched.scheduler import Scheduler
from emulator.sched.strategies import Strategy
from emulator.sched.trio_driver import TrioScheduler

DRIVERS: dict[str, type[Scheduler]] = {"trio": TrioScheduler, "direct": DirectScheduler}
DEFAULT_DRIVER = "trio"  # the reference
# The default of the commands that run many executions (explore, mutants): proven to
# give the Trio driver's executions, trace for trace (benchmarks/drivers.py), and faster.
CAMPAIGN_DRIVER = "direct"


def driver_class(driver: str) -> type[Scheduler]:
    """The scheduler class of the named driver; unknown names are bad input."""
    kind = DRIVERS.get(driver)
    if kind is None:
        raise BadInput(f"unknown driver '{driver}' (known: {', '.join(DRIVERS)})")
    return kind


def make_scheduler(driver: str, strategy: Strategy, max_steps: int,
                   stall_seconds: float = 2.0) -> Scheduler:
    """A fresh scheduler of the named driver; unknown names are bad input."""
    return driver_class(driver)(strategy, max_steps, stall_seconds)
