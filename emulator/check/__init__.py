"""The checkers: one module per rule family of SEMANTICS.md §6."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CHECKERS: dict[str, Callable[..., Any]] = {}


def all_checkers() -> list[Callable[..., Any]]:
    return list(CHECKERS.values())
