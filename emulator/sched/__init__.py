"""The controlled scheduler, its drivers and its strategies."""

from emulator.kern.sched import WaitChannel
from emulator.sched.drivers import DEFAULT_DRIVER, DRIVERS, make_scheduler
from emulator.sched.scheduler import Abort, Agent, AgentState, Scheduler
from emulator.sched.strategies import (
    STRATEGIES,
    RandomStrategy,
    ReplayStrategy,
    Strategy,
    make_strategy,
)

__all__ = [
    "DEFAULT_DRIVER",
    "DRIVERS",
    "STRATEGIES",
    "Abort",
    "Agent",
    "AgentState",
    "RandomStrategy",
    "ReplayStrategy",
    "Scheduler",
    "Strategy",
    "WaitChannel",
    "make_scheduler",
    "make_strategy",
]
