"""The checkers: one module per rule family of SEMANTICS.md §6.

Each module has ``install(kernel, spec)``, called when an execution's machine
is built, which subscribes observers to the kernel's events and hooks.  The
rule ids are those of SEMANTICS.md §6; ``crash`` is a variant that raised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from emulator.check import (
    async_clean,
    invalidate,
    liveness,
    lock_discipline,
    lost_store,
    return_code,
    single_entry,
    stale_structure,
)

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.spec import Spec

Installer = Callable[["Kernel", "Spec"], None]

# Rule family -> installer.  ``deadlock`` is detected by the scheduler and
# explained by lock_discipline; ``starvation`` and ``crash`` by liveness.
CHECKERS: dict[str, Installer] = {
    "single_entry": single_entry.install,
    "lock_discipline": lock_discipline.install,
    "stale_structure": stale_structure.install,
    "lost_store": lost_store.install,
    "invalidate": invalidate.install,
    "return_code": return_code.install,
    "async_clean": async_clean.install,
    "starvation": liveness.install,
}

RULES = (
    "single_entry",
    "lock_discipline",
    "deadlock",
    "stale_structure",
    "lost_store",
    "invalidate",
    "return_code",
    "async_clean",
    "starvation",
    "crash",
)


def all_checkers() -> list[Installer]:
    """Return every checker's installer, in a fixed order."""
    return list(CHECKERS.values())

