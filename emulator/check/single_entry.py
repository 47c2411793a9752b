"""Rule 1, ``single_entry`` (profiles whose clean holds the map lock exclusive).

On one map, at most one clean is inside the routine at any step, and no fault,
munmap, mmap or mlock of that map interleaves with it.  Every one of those
paths takes the map lock, so the rule reads: while a clean's window is open
(see base.py), no other CPU acquires that map's lock, in any mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.check import Rule
from emulator.check.base import Checker, OpenCall, tracker
from emulator.kern.events import Lock
from emulator.kern.profile import MapLock

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel


class SingleEntry(Checker):
    rule = Rule.SINGLE_ENTRY

    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        self.inside: dict[str, OpenCall] = {}  # map name -> the call inside it
        if k.profile.map_lock is not MapLock.EXCLUSIVE:
            return  # the profile shares the map lock by design
        calls = tracker(k)
        calls.on_open.append(self._open)
        calls.on_return.append(self._return)
        k.observe(Lock, self._lock)

    def _open(self, call: OpenCall) -> None:
        k = self.k
        other = self.inside.get(call.vm_map.name)
        if other is not None and other.cpu != call.cpu:
            self.violate(
                f"{k.agent_name(call.cpu)}'s clean entered map {call.vm_map.name} while "
                f"{k.agent_name(other.cpu)}'s clean has been inside since step "
                f"{other.window_at}",
                cpus=[other.cpu, call.cpu],
                map=call.vm_map.name,
            )
        self.inside[call.vm_map.name] = call

    def _return(self, call: OpenCall, rv: str) -> None:
        if self.inside.get(call.vm_map.name) is call:
            del self.inside[call.vm_map.name]

    def _lock(self, step: int, aid: int, ev: Lock) -> None:
        if ev.res != "map":
            return
        call = self.inside.get(ev.name)
        if call is None or call.cpu == aid:
            return
        k = self.k
        op = k.shared.get("current_op", {}).get(aid, "a system call")
        mode = "exclusive" if ev.mode == "x" else "shared"
        self.violate(
            f"{k.agent_name(aid)} ({op}) took the map lock of {ev.name} {mode} at step {step} "
            f"while {k.agent_name(call.cpu)}'s clean of [{call.start:#x},{call.end:#x}) has "
            f"been inside the routine since step {call.window_at}",
            cpus=[call.cpu, aid],
            map=ev.name,
        )
