"""The controlled scheduler and its strategies."""

from emulator.kern.sched import WaitChannel
from emulator.sched.scheduler import Abort, Agent, AgentState, Scheduler
from emulator.sched.strategies import (
    STRATEGIES,
    RandomStrategy,
    ReplayStrategy,
    Strategy,
    make_strategy,
)

__all__ = [
    "STRATEGIES",
    "Abort",
    "Agent",
    "AgentState",
    "RandomStrategy",
    "ReplayStrategy",
    "Scheduler",
    "Strategy",
    "WaitChannel",
    "make_strategy",
]
