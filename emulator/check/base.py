"""What the checkers share: the Checker base class, the model of a clean call in
flight, and lock holdings.

Checkers are observers.  They subscribe to kernel events (``k.observe``) that
the kernel's primitives emit whatever the variant does, so a variant cannot
hide from them by skipping a helper: the map lock, page busy, pmap, pager and
entry-list operations report themselves.

A clean call is *open* from its ``CleanCall`` to its ``CleanReturn`` event.
Its *window* opens at the cleaning CPU's first acquisition of (or first lookup
in) the map it cleans; the reference holds the map lock from that moment on.
A checker that keeps notes per call keeps them in its own dataclass, keyed by
the :class:`OpenCall`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from emulator.kern.events import (
    Alloc,
    Busy,
    CleanCall,
    CleanReturn,
    Free,
    IoIssue,
    Lock,
    MapAccess,
    Unbusy,
)
from emulator.kern.kernel import twin
from emulator.kern.locks import RANK_BUSY, RANK_MAP, RANK_NAMES, RANK_OBJECT, RANK_VNODE

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.map import VmMap
    from emulator.kern.monitor import Violation
    from emulator.kern.pager import Io


class Checker:
    """One rule family watching one execution.

    ``__init__`` subscribes to the kernel's events.  The harness then calls
    ``end`` when every CPU has finished (outcome ok), ``final`` after the
    trusted final flush (if nothing was violated), and ``explain`` when the
    execution ended in a deadlock, starvation or crash, so the checker can add
    what it knows to that report.

    A machine builds its checkers once per spec and re-installs the same
    objects on each execution's kernel (emulator/check/installer.py), as
    ``__init__`` left them: subscribe bound methods (not closures) and start
    from plain values and empty containers, or every execution builds anew.
    """

    rule: ClassVar[str]

    def __init__(self, k: Kernel) -> None:
        self.k = k

    def violate(self, message: str, cpus: list[int] | None = None, fatal: bool = True,
                **fields: Any) -> None:
        """Give the verdict: this checker's rule is broken (``cpus``: the running CPU).

        A fatal verdict ends the execution (the agent running now is unwound);
        a non-fatal one is recorded and the execution goes on.
        """
        if fatal:
            self.k.monitor.fatal(self.rule, message, cpus, **fields)
        else:
            self.k.monitor.note(self.rule, message, cpus, **fields)

    def end(self) -> None:
        """Every CPU has finished; the trusted flush has not run yet."""

    def final(self) -> None:
        """The trusted final flush has run."""

    def explain(self, v: Violation) -> None:
        """The execution ended in ``v`` (deadlock, starvation or crash)."""


@dataclass(eq=False)  # identity: a checker's notes are keyed by the call
class OpenCall:
    """One clean (or msync) in flight on one CPU."""

    cpu: int
    vm_map: VmMap
    start: int
    end: int
    syncio: bool
    invalidate: bool
    called_at: int
    window_at: int = -1  # step at which the window opened, -1 before
    # The file pages the call's range reaches (lost_store.reached_pages), computed
    # once for every checker that notes its expectations at the same moment -- the
    # call, and its window's opening -- and cleared for the next (see ``reached``).
    reached: list[Any] | None = None


class CallTracker:
    """Follow clean calls and open their windows; other checkers subscribe."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.calls: dict[int, OpenCall] = {}  # cpu -> open call
        self.on_open: list[Callable[[OpenCall], None]] = []
        self.on_return: list[Callable[[OpenCall, str], None]] = []  # fn(call, KERN_* name)
        k.observe(CleanCall, self._call)
        k.observe(CleanReturn, self._return)
        k.observe(MapAccess, self._access)
        k.observe(Lock, self._lock)

    def _call(self, step: int, aid: int, ev: CleanCall) -> None:
        self.calls[aid] = OpenCall(aid, ev.vm_map, ev.start, ev.end, bool(ev.syncio),
                                   bool(ev.invalidate), step)

    def _open(self, call: OpenCall) -> None:
        call.window_at = self.k.sched.step
        call.reached = None  # the map may have changed since the call: compute it anew
        for fn in self.on_open:
            fn(call)

    # Each observer of a hot kind has a twin taking the event's fields (kern/kernel.py,
    # ``twin``), which reads the agent from the scheduler: the kernel calls the twin,
    # building no event, when every observer of the kind has one.

    def _access(self, step: int, aid: int, ev: MapAccess) -> None:
        self.access(ev.vm_map, ev.what)

    def access(self, vm_map: VmMap, what: str) -> None:
        call = self.calls.get(self.k.sched.cpu)
        if call is not None and call.window_at < 0 and vm_map is call.vm_map:
            self._open(call)

    def _lock(self, step: int, aid: int, ev: Lock) -> None:
        self.lock(ev.res, ev.name, ev.mode)

    def lock(self, res: str, name: str, mode: str) -> None:
        if res != "map":
            return
        call = self.calls.get(self.k.sched.cpu)
        if call is not None and call.window_at < 0 and name == call.vm_map.name:
            self._open(call)

    def _return(self, step: int, aid: int, ev: CleanReturn) -> None:
        call = self.calls.pop(aid, None)
        if call is None:
            return
        for fn in self.on_return:
            fn(call, ev.rv)


def tracker(k: Kernel) -> CallTracker:
    """Return the kernel's one CallTracker, creating it on first use."""
    t = k.shared.get("calls")
    if t is None:
        t = k.shared["calls"] = CallTracker(k)
    assert isinstance(t, CallTracker)
    return t


RANKS = {"map": RANK_MAP, "vnode": RANK_VNODE, "object": RANK_OBJECT, "busy": RANK_BUSY}

# One holding: (rank, what, name, index).  A lock is (its rank, its class -- map, vnode
# or object --, its name, -1); a busy page is (RANK_BUSY, "page", its object's name, its
# pindex).  Plain tuples, compared whole: the events' fields go in as they are, and the
# words of a report (``label``) are made only when a report needs them.
Holding = tuple[int, str, str, int]


def label(h: Holding) -> str:
    """The words a report uses for holding ``h``."""
    _, what, name, index = h
    return f"busy page {name}:{index}" if what == "page" else f"{what} lock of {name}"


class Holdings:
    """Which locks and busy pages each agent holds, from the lock and busy events.

    It follows the busy pages itself; the locks are noted by its one user,
    lock_discipline, in its own Lock and Unlock handlers (two observer calls
    fewer for every lock).
    """

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.held: dict[int, list[Holding]] = {}  # aid -> what it holds, oldest first
        k.observe(Busy, self._busy)
        k.observe(Alloc, self._alloc)
        k.observe(Unbusy, self._unbusy)
        k.observe(Free, self._unbusy)
        k.observe(IoIssue, self._unbusy)

    def of(self, aid: int) -> list[Holding]:
        held = self.held.get(aid)
        if held is None:
            held = self.held[aid] = []
        return held

    def _busy(self, step: int, aid: int, ev: Busy) -> None:
        self.busy(ev.obj, ev.pindex, ev.mode)

    def busy(self, obj: str, pindex: int, mode: str) -> None:
        aid = self.k.sched.cpu
        held = self.held.get(aid)
        if held is None:
            held = self.of(aid)
        held.append((RANK_BUSY, "page", obj, pindex))

    def _alloc(self, step: int, aid: int, ev: Alloc) -> None:
        self.alloc(ev.obj, ev.pindex)

    def alloc(self, obj: str, pindex: int) -> None:
        aid = self.k.sched.cpu
        if aid >= 0:
            self.of(aid).append((RANK_BUSY, "page", obj, pindex))

    def _unbusy(self, step: int, aid: int, ev: Unbusy | Free | IoIssue) -> None:
        # unbusy, free and io_issue all end the emitting agent's own busy.
        self.unbusy(ev.obj, ev.pindex)

    def issued(self, obj: str, pindex: int, data: int, sync: int, io: Io) -> None:
        """``_unbusy``'s twin for IoIssue: the write's own busy ends."""
        self.unbusy(obj, pindex)

    def unbusy(self, obj: str, pindex: int) -> None:
        held = self.held.get(self.k.sched.cpu)
        if held:
            h = (RANK_BUSY, "page", obj, pindex)
            if held[-1] == h:
                held.pop()
            elif len(held) > 1 and held[-2] == h:
                del held[-2]
            else:
                drop(held, h)

    def describe(self, aid: int) -> str:
        held = self.of(aid)
        return ", ".join(label(h) for h in held) if held else "nothing"


def drop(held: list[Holding], h: Holding) -> None:
    """Forget the latest holding equal to ``h`` (if any): the last one, nearly always."""
    for i in range(len(held) - 1, -1, -1):
        if held[i] == h:
            del held[i]
            return


twin(MapAccess, CallTracker._access, CallTracker.access)
twin(Lock, CallTracker._lock, CallTracker.lock)
twin(Busy, Holdings._busy, Holdings.busy)
twin(Alloc, Holdings._alloc, Holdings.alloc)
twin(Unbusy, Holdings._unbusy, Holdings.unbusy)
twin(IoIssue, Holdings._unbusy, Holdings.issued)


def holdings(k: Kernel) -> Holdings:
    h = k.shared.get("holdings")
    if h is None:
        h = k.shared["holdings"] = Holdings(k)
    assert isinstance(h, Holdings)
    return h


def rank_name(rank: int) -> str:
    return RANK_NAMES[rank]
