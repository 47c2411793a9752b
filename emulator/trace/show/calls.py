"""How a system call reads in the timeline: its call, its return, and its clean.

The call itself as the spec and the header give it (``clean(0x1000, 0x3000,
sync,inval)``) and its ``call`` event's cell are phrased by the call's row of
the syscall table (emulator/kern/syscalls.py), so a new syscall changes
nothing here.  This module adds the ``ret`` event's cell, the faulting store
or load, the inner ``vm_map_clean`` call and return, and the row that joins a
clean's return with its syscall's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from emulator.kern import syscalls
from emulator.kern.events import Call, CleanCall, CleanReturn, Ret
from emulator.trace.reader import Entry
from emulator.trace.show.text import Text, generic, hex_text


def syscall(op: object) -> syscalls.Syscall | None:
    """The table's row for a ``call`` or ``ret`` event's ``op``, if it names a known call."""
    return syscalls.SYSCALLS.get(op) if isinstance(op, str) else None


def op_text(op: Sequence[Any]) -> str:
    """``msync(0x1000, 4096, sync)``: a call from its ``[op, *args]`` (a spec's program step)."""
    return syscalls.call_phrases(op)[0]


def call_text(ev: Call) -> str:
    """``msync(0x1000, 4096, sync)``: a call from its ``call`` event."""
    return op_text(ev.args())


def call_phrases(ev: Call) -> Text:
    """A ``call`` event's cell: the whole call, then shorter forms for narrow columns."""
    return syscalls.call_phrases(ev.args())


def fault_phrases(call: Text, ev: Call) -> Text:
    """A store or load call that faults: the fault is what the row is about."""
    return call[0] + ": fault", f"fault {ev.params[0] if ev.params else '?'}"


def ret_phrase(ev: Ret) -> str:
    """A ``ret`` event's cell: ``msync -> 0``."""
    return f"{ev.op} -> {ev.value}"


def clean_call_phrases(ev: CleanCall) -> Text:
    """``vm_map_clean``'s own call: ``clean p0 [0x1000, 0x3000) sync,inval``."""
    flags = ("sync" if ev.syncio else "async") + (",inval" if ev.invalidate else "")
    return (f"clean {ev.map} [{hex_text(ev.start)}, {hex_text(ev.end)}) {flags}",
            f"clean {flags}")


def clean_return_phrase(ev: CleanReturn) -> str:
    """``vm_map_clean``'s return: ``clean -> KERN_SUCCESS``."""
    return f"clean -> {ev.rv}"


def joined_ret_phrases(clean_ret: Entry, ret: Entry) -> Text:
    """``msync -> 0``; the clean's own code too when the call is not ``clean`` itself."""
    if not isinstance(clean_ret.event, CleanReturn) or not isinstance(ret.event, Ret):
        return (generic(ret.kind, ret.args),)
    op, value, code = ret.event.op, ret.event.value, clean_ret.event.rv
    if op == "clean" or str(value) == str(code) or str(code) == "KERN_SUCCESS":
        return (f"{op} -> {value}",)
    return f"{op} -> {value} ({code})", f"{op} -> {value}"
