"""Historical violations: a profile's era behaving as its code did, and why.

A checker that sees a rule broken the way a profile's era broke it marks the
violation with the era bug's key (its ``historical`` field: a FIDELITY.md H or D
number; ``True`` for the older marks, resolved from the other fields).  Whether
that makes the violation historical is the profile's to say: only a key its
``era_bugs`` table names counts, and the table gives the reason a report prints.
Everything else is a plain violation, false alarm or bug.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emulator.kern.monitor import Violation
    from emulator.kern.profile import Profile


def era_key(fields: Mapping[str, Any]) -> str | None:
    """The era bug a violation's fields name, or None when not marked historical."""
    mark = fields.get("historical")
    if not mark:
        return None
    if fields.get("misdirected"):
        return "H10"  # the 2003 chain walk's wrong offset
    if isinstance(mark, str):
        return mark
    return "D8" if fields.get("wired") else "H9"  # the 2003 invalidate's data loss


def historical_reason(profile: Profile, fields: Mapping[str, Any]) -> str | None:
    """Why the violation with ``fields`` is ``profile``'s era behaving as it did, or None."""
    key = era_key(fields)
    return None if key is None else profile.era_bugs.get(key)


def all_historical(profile: Profile, violations: Iterable[Violation]) -> bool:
    """Whether there are violations and every one is historical under ``profile``."""
    found = list(violations)
    return bool(found) and all(historical_reason(profile, v.fields) for v in found)
