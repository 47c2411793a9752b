"""Rule 1, ``single_entry`` (profiles manpage and freebsd5).

On one map, at most one clean is inside the routine at any step, and no fault,
munmap, mmap or mlock of that map interleaves with it.  Every one of those
paths takes the map lock, so the rule reads: while a clean's window is open
(see base.py), no other CPU acquires that map's lock, in any mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator.check.base import CleanCall, tracker

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.spec import Spec

RULE = "single_entry"


def install(k: Kernel, spec: Spec) -> None:
    if k.profile == "modern":
        return  # modern shares the map lock by design
    calls = tracker(k)
    open_windows: dict[str, CleanCall] = {}  # map name -> the call inside it

    def on_open(call: CleanCall) -> None:
        other = open_windows.get(call.vm_map.name)
        if other is not None and other.cpu != call.cpu:
            k.monitor.fatal(
                RULE,
                f"{k.agent_name(call.cpu)}'s clean entered map {call.vm_map.name} while "
                f"{k.agent_name(other.cpu)}'s clean has been inside since step "
                f"{other.window_at}",
                cpus=[other.cpu, call.cpu],
                map=call.vm_map.name,
            )
        open_windows[call.vm_map.name] = call

    def on_return(call: CleanCall, rv: Any) -> None:
        if open_windows.get(call.vm_map.name) is call:
            del open_windows[call.vm_map.name]

    def on_lock(step: int, aid: int, f: tuple[Any, ...]) -> None:
        if f[0] != "map":
            return
        call = open_windows.get(f[1])
        if call is None or call.cpu == aid:
            return
        op = k.shared.get("current_op", {}).get(aid, "a system call")
        mode = "exclusive" if f[2] == "x" else "shared"
        k.monitor.fatal(
            RULE,
            f"{k.agent_name(aid)} ({op}) took the map lock of {f[1]} {mode} at step {step} "
            f"while {k.agent_name(call.cpu)}'s clean of [{call.start:#x},{call.end:#x}) has "
            f"been inside the routine since step {call.window_at}",
            cpus=[call.cpu, aid],
            map=f[1],
        )

    calls.on_open.append(on_open)
    calls.on_return.append(on_return)
    k.observe("lock", on_lock)
