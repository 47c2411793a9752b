"""The words every part of the timeline shares: a trace's values as short printable text.

A trace is JSON from a file, so any value may be missing, of another type, or
hold control codes.  These helpers make short words of whatever is there
(``f:1`` for page 1 of object ``f``, ``#5`` for the value of store 5) and
never let a control code through to the terminal.
"""

from __future__ import annotations

from typing import Any

Text = tuple[str, ...]  # a cell's phrasings, longest first: the first that fits is shown


def clean(text: str) -> str:
    """Printable text only: a trace's names never reach the terminal as control codes."""
    return "".join(c if c.isprintable() else "?" for c in text)


def hex_text(value: Any) -> str:
    """``0x1000`` for an integer, else the value as it is."""
    return hex(value) if isinstance(value, int) and not isinstance(value, bool) else str(value)


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if a trace gave a JSON object there, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` if a trace gave a JSON array there, else an empty one."""
    return value if isinstance(value, list) else []


def page(obj: Any, pindex: Any) -> str:
    """``f:1``: page ``pindex`` of object ``obj``."""
    return f"{obj}:{pindex}"


def store_id(value: Any) -> str:
    """``#5``: the value store 5 wrote (``#0``: the initial contents)."""
    return f"#{value}"


def generic(kind: str, a: list[Any]) -> str:
    """An event as its kind and raw arguments: for kinds and shapes nothing else phrases."""
    return " ".join([kind, *(str(x) for x in a)])
