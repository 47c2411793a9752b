"""How a system call reads in the timeline: its call, its return, and its clean.

The call itself as the spec and the header give it (``clean(0x1000, 0x3000,
sync,inval)``) and its ``call`` event's cell are phrased by the call's row of
the syscall table (emulator/kern/syscalls.py), so a new syscall changes
nothing here.  This module adds the ``ret`` event's cell, the faulting store
or load, the inner ``vm_map_clean`` call and return, and the row that joins a
clean's return with its syscall's.
"""

from __future__ import annotations

from typing import Any

from emulator.kern import syscalls
from emulator.trace.show.text import Text, generic, hex_text


def syscall(a: list[Any]) -> syscalls.Syscall | None:
    """The table's row for a ``call`` event's ``[op, *args]``, if it names a known call."""
    return syscalls.SYSCALLS.get(a[0]) if a and isinstance(a[0], str) else None


def call_text(a: list[Any]) -> str:
    """``msync(0x1000, 4096, sync)``: a call from its ``[op, *args]`` list."""
    return syscalls.call_phrases(a)[0]


def call_phrases(a: list[Any]) -> Text:
    """A ``call`` event's cell: the whole call, then shorter forms for narrow columns."""
    return syscalls.call_phrases(a)


def fault_phrases(call: Text, a: list[Any]) -> Text:
    """A store or load call that faults: the fault is what the row is about."""
    args = a[1:]
    return call[0] + ": fault", f"fault {args[0] if args else '?'}"


def ret_phrase(a: list[Any]) -> str:
    """A ``ret`` event's cell: ``msync -> 0``."""
    return f"{a[0]} -> {a[1]}"


def clean_call_phrases(a: list[Any]) -> Text:
    """``vm_map_clean``'s own call: ``clean p0 [0x1000, 0x3000) sync,inval``."""
    flags = ("sync" if a[3] else "async") + (",inval" if a[4] else "")
    return f"clean {a[0]} [{hex_text(a[1])}, {hex_text(a[2])}) {flags}", f"clean {flags}"


def clean_return_phrase(a: list[Any]) -> str:
    """``vm_map_clean``'s return: ``clean -> KERN_SUCCESS``."""
    return f"clean -> {a[1]}"


def joined_ret_phrases(clean_ret: dict[str, Any], ret: dict[str, Any]) -> Text:
    """``msync -> 0``; the clean's own code too when the call is not ``clean`` itself."""
    try:
        op, value, code = ret["args"][0], ret["args"][1], clean_ret["args"][1]
    except (IndexError, TypeError):
        return (generic(ret["event"], ret["args"]),)
    if op == "clean" or str(value) == str(code) or str(code) == "KERN_SUCCESS":
        return (f"{op} -> {value}",)
    return f"{op} -> {value} ({code})", f"{op} -> {value}"
