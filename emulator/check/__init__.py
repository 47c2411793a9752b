"""The checkers: one module per rule family of SEMANTICS.md §6.

Each module defines a :class:`~emulator.check.base.Checker` subclass, built
when an execution's machine is built; it subscribes to the kernel's events.
``Rule`` names every rule id (the strings of reports and traces); ``CHECKERS``
is the registry, rule -> checker, in the order the checkers subscribe -- which
one fires first when two would at the same event.

Adding a rule: a new module with its Checker class, a ``Rule`` member and
its ``CHECKERS`` line here.
"""

from __future__ import annotations

import enum


class Rule(enum.StrEnum):
    """Every rule a report can name, in SEMANTICS.md §6 order."""

    SINGLE_ENTRY = "single_entry"
    LOCK_DISCIPLINE = "lock_discipline"
    DEADLOCK = "deadlock"  # detected by the scheduler, explained by lock_discipline
    STALE_STRUCTURE = "stale_structure"
    LOST_STORE = "lost_store"
    DURABLE = "durable"  # lost_store's durable half: acknowledged durable, not on disk
    INVALIDATE = "invalidate"
    RETURN_CODE = "return_code"
    ASYNC_CLEAN = "async_clean"
    STARVATION = "starvation"  # detected by the scheduler, explained by liveness
    CRASH = "crash"  # a variant raised; explained by liveness


# The checker modules name their rule with ``Rule``, defined above first.
from emulator.check.async_clean import AsyncClean  # noqa: E402
from emulator.check.base import Checker  # noqa: E402
from emulator.check.durable import Durable  # noqa: E402
from emulator.check.invalidate import Invalidate  # noqa: E402
from emulator.check.liveness import Liveness  # noqa: E402
from emulator.check.lock_discipline import LockDiscipline  # noqa: E402
from emulator.check.lost_store import LostStore  # noqa: E402
from emulator.check.return_code import ReturnCode  # noqa: E402
from emulator.check.single_entry import SingleEntry  # noqa: E402
from emulator.check.stale_structure import StaleStructure  # noqa: E402

CHECKERS: dict[Rule, type[Checker]] = {
    Rule.SINGLE_ENTRY: SingleEntry,
    Rule.LOCK_DISCIPLINE: LockDiscipline,  # and deadlock
    Rule.STALE_STRUCTURE: StaleStructure,
    Rule.LOST_STORE: LostStore,
    Rule.DURABLE: Durable,
    Rule.INVALIDATE: Invalidate,
    Rule.RETURN_CODE: ReturnCode,
    Rule.ASYNC_CLEAN: AsyncClean,
    Rule.STARVATION: Liveness,  # and crash
}

RULES: tuple[Rule, ...] = tuple(Rule)


def all_checkers() -> list[type[Checker]]:
    """Return every checker class, in the registry's order."""
    return list(CHECKERS.values())
