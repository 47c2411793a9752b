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
from emulator.kern.kernel import twin
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
        self.lock(ev.res, ev.name, ev.mode)

    def lock(self, res: str, name: str, mode: str) -> None:
        """The twin of ``_lock`` taking the event's fields (kern/kernel.py, ``twin``)."""
        if res != "map":
            return
        call = self.inside.get(name)
        if call is not None and call.cpu != self.k.sched.cpu:
            self.entered(call, name, mode)

    def entered(self, call: OpenCall, name: str, mode: str) -> None:
        """The running agent took the map lock of ``name`` while ``call`` is inside."""
        k = self.k
        aid, step = k.sched.cpu, k.sched.step
        op = k.shared.get("current_op", {}).get(aid, "a system call")
        word = "exclusive" if mode == "x" else "shared"
        self.violate(
            f"{k.agent_name(aid)} ({op}) took the map lock of {name} {word} at step {step} "
            f"while {k.agent_name(call.cpu)}'s clean of [{call.start:#x},{call.end:#x}) has "
            f"been inside the routine since step {call.window_at}",
            cpus=[call.cpu, aid],
            map=name,
        )


twin(Lock, SingleEntry._lock, SingleEntry.lock)
