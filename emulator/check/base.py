"""What the checkers share: the model of a clean call in flight, and lock holdings.

Checkers are observers.  They subscribe to kernel events (``k.observe``) and
hooks (``k.hook``) that the kernel's primitives emit whatever the variant does,
so a variant cannot hide from them by skipping a helper: the map lock, page
busy, pmap, pager and entry-list operations report themselves.

A clean call is *open* from its ``clean_call`` to its ``clean_return``.  Its
*window* opens at the cleaning CPU's first acquisition of (or first lookup in)
the map it cleans; the reference holds the map lock from that moment on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emulator.kern.locks import RANK_BUSY, RANK_MAP, RANK_NAMES, RANK_OBJECT, RANK_VNODE

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.map import VmMap


@dataclass
class CleanCall:
    """One clean (or msync) in flight on one CPU."""

    cpu: int
    vm_map: VmMap
    start: int
    end: int
    syncio: bool
    invalidate: bool
    called_at: int
    window_at: int = -1  # step at which the window opened, -1 before
    data: dict[str, Any] = field(default_factory=dict)  # per-checker notes


class CallTracker:
    """Follow clean calls and open their windows; other checkers subscribe."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.calls: dict[int, CleanCall] = {}  # cpu -> open call
        self.on_open: list[Any] = []  # fn(call)
        self.on_return: list[Any] = []  # fn(call, rv)
        k.hook("clean_call", self._call)
        k.hook("clean_return", self._return)
        k.hook("map_access", self._access)
        k.observe("lock", self._lock)

    def _call(self, vm_map: VmMap, start: int, end: int, syncio: bool, inval: bool) -> None:
        k = self.k
        cpu = k.curcpu()
        self.calls[cpu] = CleanCall(cpu, vm_map, start, end, syncio, inval, k.sched.step)

    def _open(self, call: CleanCall) -> None:
        call.window_at = self.k.sched.step
        for fn in self.on_open:
            fn(call)

    def _access(self, vm_map: VmMap, what: str) -> None:
        call = self.calls.get(self.k.curcpu())
        if call is not None and call.window_at < 0 and vm_map is call.vm_map:
            self._open(call)

    def _lock(self, step: int, aid: int, f: tuple[Any, ...]) -> None:
        if f[0] != "map":
            return
        call = self.calls.get(aid)
        if call is not None and call.window_at < 0 and f[1] == call.vm_map.name:
            self._open(call)

    def _return(
        self, vm_map: VmMap, start: int, end: int, syncio: bool, inval: bool, rv: Any
    ) -> None:
        call = self.calls.pop(self.k.curcpu(), None)
        if call is None:
            return
        for fn in self.on_return:
            fn(call, rv)


def tracker(k: Kernel) -> CallTracker:
    """Return the kernel's one CallTracker, creating it on first use."""
    t = k.shared.get("calls")
    if t is None:
        t = k.shared["calls"] = CallTracker(k)
    assert isinstance(t, CallTracker)
    return t


RANKS = {"map": RANK_MAP, "vnode": RANK_VNODE, "object": RANK_OBJECT, "busy": RANK_BUSY}


class Holdings:
    """Which locks and busy pages each agent holds, from the lock events."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.held: dict[int, list[tuple[int, str]]] = {}  # aid -> [(rank, label)]
        k.observe("lock", self._lock)
        k.observe("unlock", self._unlock)
        k.observe("busy", self._busy)
        k.observe("alloc", self._alloc)
        k.observe("unbusy", self._unbusy)
        k.observe("free", self._unbusy)
        k.observe("io_issue", self._unbusy)

    def of(self, aid: int) -> list[tuple[int, str]]:
        return self.held.setdefault(aid, [])

    def _lock(self, step: int, aid: int, f: tuple[Any, ...]) -> None:
        self.of(aid).append((RANKS[f[0]], f"{f[0]} lock of {f[1]}"))

    def _unlock(self, step: int, aid: int, f: tuple[Any, ...]) -> None:
        label = f"{f[0]} lock of {f[1]}"
        held = self.of(aid)
        for i in range(len(held) - 1, -1, -1):
            if held[i][1] == label:
                del held[i]
                return

    def _busy(self, step: int, aid: int, f: tuple[Any, ...]) -> None:
        self.of(aid).append((RANK_BUSY, f"busy page {f[0]}:{f[1]}"))

    def _alloc(self, step: int, aid: int, f: tuple[Any, ...]) -> None:
        if aid >= 0:
            self.of(aid).append((RANK_BUSY, f"busy page {f[0]}:{f[1]}"))

    def _unbusy(self, step: int, aid: int, f: tuple[Any, ...]) -> None:
        # unbusy, free and io_issue all end the emitting agent's own busy.
        label = f"busy page {f[0]}:{f[1]}"
        held = self.of(aid)
        for i in range(len(held) - 1, -1, -1):
            if held[i][1] == label:
                del held[i]
                return

    def describe(self, aid: int) -> str:
        held = self.of(aid)
        return ", ".join(label for _, label in held) if held else "nothing"


def holdings(k: Kernel) -> Holdings:
    h = k.shared.get("holdings")
    if h is None:
        h = k.shared["holdings"] = Holdings(k)
    assert isinstance(h, Holdings)
    return h


def rank_name(rank: int) -> str:
    return RANK_NAMES[rank]
