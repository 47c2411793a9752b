"""Rule 6, ``return_code``: return codes per profile, and no side effects on error.

An independent oracle computes the code a clean must return from the map as
it is when the clean's window opens (its first map lock or lookup), following
SEMANTICS.md §2 row by row.  A call that returns an error must not have removed
a mapping, write-protected, written or freed a page on the way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator.check.base import CleanCall, tracker
from emulator.kern.kern_return import KernReturn

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.map import VmMap, VmMapEntry
    from emulator.spec import Spec

RULE = "return_code"
SIDE_EFFECTS = ("pte_remove", "remove_write", "remove_all", "io_issue", "free")


def expected_code(profile: str, vm_map: VmMap, start: int, end: int, invalidate: bool) -> str:
    """Return the KERN_* name the profile's clean must return, from the map alone."""
    start, end = vm_map.clamp(start, end)
    no_entry = "KERN_INVALID_ARGUMENT" if profile == "manpage" else "KERN_INVALID_ADDRESS"
    submap = "KERN_INVALID_ADDRESS" if profile == "manpage" else "KERN_INVALID_ARGUMENT"
    entries: list[VmMapEntry] = list(vm_map.entries.values())
    first = next((i for i, e in enumerate(entries) if e.start <= start < e.end), None)
    if first is None:
        return no_entry
    if profile == "modern" and start == end:
        start, end = entries[first].start, entries[first].end
    i = first
    while i < len(entries) and entries[i].start < end:
        e = entries[i]
        if profile != "modern" and e.submap is not None:
            return submap
        if profile == "modern" and invalidate and e.wired:
            return "KERN_INVALID_ARGUMENT"
        following = entries[i + 1] if i + 1 < len(entries) else None
        if end > e.end and (following is None or following.start != e.end):
            return no_entry
        i += 1
    return "KERN_SUCCESS"


def install(k: Kernel, spec: Spec) -> None:
    calls = tracker(k)

    def on_open(call: CleanCall) -> None:
        k.in_checker = True
        call.data["rc.expected"] = expected_code(
            k.profile, call.vm_map, call.start, call.end, call.invalidate
        )
        k.in_checker = False
        call.data["rc.effects"] = []
        call.data["rc.io_error"] = False

    def effect(kind: str) -> Any:
        def on_event(step: int, aid: int, f: tuple[Any, ...]) -> None:
            call = calls.calls.get(aid)
            if call is not None and "rc.effects" in call.data:
                call.data["rc.effects"].append((step, kind, f))

        return on_event

    def on_io_done(step: int, aid: int, f: tuple[Any, ...]) -> None:
        if f[3]:
            for call in calls.calls.values():
                call.data["rc.io_error"] = True

    def on_return(call: CleanCall, rv: Any) -> None:
        got = rv.label if isinstance(rv, KernReturn) else str(rv)
        want = call.data.get("rc.expected")
        if want is None:
            # The routine never looked at the map: its answer cannot be right
            # unless the oracle, computed now, agrees.
            k.in_checker = True
            want = expected_code(k.profile, call.vm_map, call.start, call.end, call.invalidate)
            k.in_checker = False
        ok = got == want
        if not ok and want == "KERN_SUCCESS" and got == "KERN_FAILURE":
            ok = k.profile == "modern" and bool(call.data.get("rc.io_error"))
        if not ok:
            k.monitor.fatal(
                RULE,
                f"{k.agent_name(call.cpu)}'s clean of [{call.start:#x},{call.end:#x}) in "
                f"{call.vm_map.name} returned {got}; profile {k.profile} requires {want} "
                + (f"for the map as it was at step {call.window_at}" if call.window_at >= 0
                   else "for the map as it is (the routine never looked at it)"),
                cpus=[call.cpu],
                got=got,
                want=want,
            )
            return
        if got != "KERN_SUCCESS" and got != "KERN_FAILURE":
            effects = call.data.get("rc.effects") or []
            if effects:
                step, kind, f = effects[0]
                k.monitor.fatal(
                    RULE,
                    f"{k.agent_name(call.cpu)}'s clean of [{call.start:#x},{call.end:#x}) "
                    f"returned {got} but changed state first: {kind} {' '.join(map(str, f))} "
                    f"at step {step}",
                    cpus=[call.cpu],
                    got=got,
                    effect=kind,
                )

    def on_bad_return(vm_map: VmMap, rv: Any) -> None:
        k.monitor.fatal(RULE, f"clean returned {rv!r}, not a KERN_* code")

    calls.on_open.append(on_open)
    calls.on_return.append(on_return)
    k.hook("clean_bad_return", on_bad_return)
    for kind in SIDE_EFFECTS:
        k.observe(kind, effect(kind))
    k.observe("io_done", on_io_done)
