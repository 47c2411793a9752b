"""Rule 6, ``return_code``: return codes per profile, and no side effects on error.

An independent oracle computes the code a clean must return from the map as
it is when the clean's window opens (its first map lock or lookup), following
SEMANTICS.md §2 row by row.  A call that returns an error must not have removed
a mapping, write-protected, written or freed a page on the way.  An msync(2)
returns the errno its profile's switch gives the clean's code (FIDELITY.md D5).

Write errors (H13): where the profile reports them (KERN_FAILURE, EIO), a clean
must report one exactly when a synchronous write it issued and waited for failed
on a page vm_pageout_flush attributes to it -- the page it asked for, or a page
after it in the same multi-page write; a failed backward neighbour is not
reported (FIDELITY.md D9).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emulator.check import Rule
from emulator.check.base import CallTracker, Checker, OpenCall, tracker
from emulator.check.lock_discipline import LockDiscipline
from emulator.check.lost_store import reached
from emulator.kern.events import (
    BadReturn,
    BufDone,
    Event,
    Free,
    IoDone,
    IoIssue,
    Lock,
    MsyncErrno,
    PteRemove,
    RemoveAll,
    RemoveWrite,
    Unlock,
)
from emulator.kern.kernel import fuse, twin
from emulator.kern.profile import msync_errno

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.map import VmMap, VmMapEntry
    from emulator.kern.pager import Io
    from emulator.kern.profile import Profile

# The events that change state: none may happen in a call that returns an error.
SIDE_EFFECTS: tuple[type[Event], ...] = (PteRemove, RemoveWrite, RemoveAll, IoIssue, Free)


def expected_code(
    profile: Profile, vm_map: VmMap, start: int, end: int, invalidate: bool
) -> str:
    """Return the KERN_* name the profile's clean must return, from the map alone."""
    start, end = vm_map.clamp(start, end)
    entries: list[VmMapEntry] = list(vm_map.entries.values())
    first = next((i for i, e in enumerate(entries) if e.start <= start < e.end), None)
    if first is None:
        return profile.no_entry.label
    if profile.zero_length_whole_entry and start == end:
        start, end = entries[first].start, entries[first].end
    i = first
    while i < len(entries) and entries[i].start < end:
        e = entries[i]
        if profile.submap is not None and e.submap is not None:
            return profile.submap.label
        if profile.wired_invalidate is not None and invalidate and e.wired:
            return profile.wired_invalidate.label
        following = entries[i + 1] if i + 1 < len(entries) else None
        if end > e.end and (following is None or following.start != e.end):
            return profile.hole.label
        i += 1
    return "KERN_SUCCESS"


@dataclass
class _Notes:
    """What return_code notes about one clean call."""

    want: str | None = None  # the oracle's code, when the window opened
    # (step, event) of the first side effect since the window opened (a report names
    # the first only): empty before it, None before the window opens
    effects: list[tuple[int, Event]] | None = None
    # a failed synchronous write of the call that it must report, as "obj:pindex"
    io_error: str | None = None
    # files the call syncs whole (vm_object_sync's whole-file MS_SYNC: VOP_FSYNC after an
    # asynchronous clean), and those of them whose vnode it holds now
    whole_files: frozenset[str] = frozenset()
    fsyncing: set[str] | None = None


class ReturnCode(Checker):
    rule = Rule.RETURN_CODE

    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        self.calls = calls = tracker(k)
        self.notes: dict[OpenCall, _Notes] = {}
        calls.on_open.append(self._open)
        calls.on_return.append(self._return)
        for kind in SIDE_EFFECTS:
            k.observe(kind, self._effect)
        k.observe(IoDone, self._io_done)
        if k.profile.whole_file_sync_fsyncs:
            # A whole-file MS_SYNC reports what its VOP_FSYNC reports: any failed write of
            # the file while the call holds the file's vnode lock.
            k.observe(BufDone, self._any_write_done)
            k.observe(IoDone, self._any_write_done)
            k.observe(Lock, self._vnode_lock)
            k.observe(Unlock, self._vnode_unlock)
        k.observe(BadReturn, self._bad_return)
        k.observe(MsyncErrno, self._msync_errno)

    def _notes(self, call: OpenCall) -> _Notes:
        notes = self.notes.get(call)
        if notes is None:
            notes = self.notes[call] = _Notes()
        return notes

    def _open(self, call: OpenCall) -> None:
        k = self.k
        k.in_checker = True
        want = expected_code(k.profile, call.vm_map, call.start, call.end, call.invalidate)
        k.in_checker = False
        notes = self._notes(call)
        notes.want, notes.effects = want, []
        if k.profile.whole_file_sync_fsyncs and call.syncio and not call.invalidate:
            notes.whole_files = self.whole_files(call)
            notes.fsyncing = set()

    def whole_files(self, call: OpenCall) -> frozenset[str]:
        """The files the call reaches whole through one entry, from offset 0 to their
        end: vm_object_sync's whole-file path (FIDELITY.md D10), from the map now."""
        k = self.k
        k.in_checker = True
        seen: dict[tuple[int, str], set[int]] = {}
        for obj, pindex, _va, entry_end, _ in reached(k, call):
            seen.setdefault((entry_end, obj.name), set()).add(pindex)
        k.in_checker = False
        return frozenset(name for (_, name), pages in seen.items()
                         if pages == set(range(k.files[name].size)))

    # The observers of the hot kinds delegate to their twins taking fields
    # (kern/kernel.py, ``twin``): the kernel calls those, building no event, when it can.

    def _vnode_lock(self, step: int, aid: int, ev: Lock) -> None:
        self.vnode_lock(ev.res, ev.name, ev.mode)

    def vnode_lock(self, res: str, name: str, mode: str) -> None:
        if res != "vnode":
            return
        call = self.calls.calls.get(self.k.sched.cpu)
        if call is not None:
            notes = self.notes.get(call)
            if notes is not None and notes.fsyncing is not None and name in notes.whole_files:
                notes.fsyncing.add(str(name))

    def _vnode_unlock(self, step: int, aid: int, ev: Unlock) -> None:
        self.vnode_unlock(ev.res, ev.name)

    def vnode_unlock(self, res: str, name: str) -> None:
        if res != "vnode":
            return
        call = self.calls.calls.get(self.k.sched.cpu)
        if call is not None:
            notes = self.notes.get(call)
            if notes is not None and notes.fsyncing:
                notes.fsyncing.discard(str(name))

    def _any_write_done(self, step: int, aid: int, ev: IoDone | BufDone) -> None:
        self.any_write_done(ev.obj, ev.pindex, ev.data, ev.error)

    def any_write_done(self, obj: str, pindex: int, data: int, error: int,
                       io: Io | None = None) -> None:
        """The twin of ``_any_write_done`` for IoDone (kern/kernel.py, ``twin``)."""
        if not error:
            return
        for call in self.calls.calls.values():
            notes = self.notes.get(call)
            if notes is not None and notes.fsyncing and obj in notes.fsyncing:
                notes.io_error = notes.io_error or f"{obj}:{pindex}"

    def _effect(self, step: int, aid: int, ev: Event) -> None:
        call = self.calls.calls.get(aid)
        if call is None:
            return
        notes = self.notes.get(call)
        if notes is not None and notes.effects == []:
            notes.effects.append((step, ev))

    def remove_write(self, obj: str, pindex: int, dirty: int) -> None:
        """``_effect``'s twin for RemoveWrite."""
        self._first_effect(RemoveWrite, obj, pindex, dirty)

    def io_issue(self, obj: str, pindex: int, data: int, sync: int, io: Io) -> None:
        """``_effect``'s twin for IoIssue."""
        self._first_effect(IoIssue, obj, pindex, data, sync, io)

    def _first_effect(self, cls: type[Event], *fields: Any) -> None:
        """``_effect`` from an event's fields: the event is built only if a call notes it."""
        sched = self.k.sched
        call = self.calls.calls.get(sched.cpu)
        if call is None:
            return
        notes = self.notes.get(call)
        if notes is not None and notes.effects == []:
            notes.effects.append((sched.step, cls(*fields)))

    def _io_done(self, step: int, aid: int, ev: IoDone) -> None:
        self.io_done(ev.obj, ev.pindex, ev.data, ev.error, ev.io)

    def io_done(self, obj: str, pindex: int, data: int, error: int, io: Io) -> None:
        """The twin of ``_io_done`` taking the event's fields (kern/kernel.py, ``twin``)."""
        if not error or not io.sync:
            return  # an asynchronous write's error reaches no caller (VM_PAGER_PEND)
        call = self.calls.calls.get(io.issuer)
        if call is None:
            return
        cluster = io.cluster
        if cluster is not None and cluster.ios.index(io) < cluster.mreq:
            return  # a backward neighbour of the page asked for: not the caller's error
        notes = self._notes(call)
        notes.io_error = notes.io_error or f"{obj}:{pindex}"

    def _bad_return(self, step: int, aid: int, ev: BadReturn) -> None:
        self.violate(f"clean returned {ev.rv!r}, not a KERN_* code")

    def _msync_errno(self, step: int, aid: int, ev: MsyncErrno) -> None:
        """msync's errno must be its profile's for the code its clean returned (an
        msync refused before the clean is not judged)."""
        profile = self.k.profile
        want = msync_errno(profile.msync_errno, ev.rv)
        if ev.result != want:
            self.violate(
                f"{self.k.agent_name(aid)}'s msync returned {ev.result} for its clean's "
                f"{ev.rv.label}; profile {profile.name} requires {want}",
                cpus=[aid],
                got=ev.result,
                want=want,
            )

    def _return(self, call: OpenCall, got: str) -> None:
        k = self.k
        notes = self.notes.pop(call, None) or _Notes()
        want = notes.want
        if want is None:
            # The routine never looked at the map: its answer cannot be right
            # unless the oracle, computed now, agrees.
            k.in_checker = True
            want = expected_code(k.profile, call.vm_map, call.start, call.end, call.invalidate)
            k.in_checker = False
        reports = k.profile.write_error.label
        must_report = want == "KERN_SUCCESS" != reports and notes.io_error is not None
        if must_report:
            want = reports  # a write it must report failed
        ok = got == want
        if not ok:
            why = (f"for the map as it was at step {call.window_at}" if call.window_at >= 0
                   else "for the map as it is (the routine never looked at it)")
            if must_report:
                why = (f"since the synchronous write of page {notes.io_error}, the page it "
                       "asked for or a later one of that write, failed"
                       if not notes.whole_files else
                       f"since a write of page {notes.io_error} failed (a synchronous "
                       "write it issued, or one its whole-file VOP_FSYNC waited for)")
            elif got == reports and want == "KERN_SUCCESS":
                why += ("; no write it must report failed (an asynchronous write, another "
                        "agent's, or a backward neighbour's in a multi-page write)")
            self.violate(
                f"{k.agent_name(call.cpu)}'s clean of [{call.start:#x},{call.end:#x}) in "
                f"{call.vm_map.name} returned {got}; profile {k.profile.name} requires {want} "
                + why,
                cpus=[call.cpu],
                got=got,
                want=want,
            )
            return
        if got != "KERN_SUCCESS" and got != "KERN_FAILURE" and notes.effects:
            step, ev = notes.effects[0]
            self.violate(
                f"{k.agent_name(call.cpu)}'s clean of [{call.start:#x},{call.end:#x}) "
                f"returned {got} but changed state first: {ev.kind} "
                f"{' '.join(map(str, ev.args()))} at step {step}",
                cpus=[call.cpu],
                got=got,
                effect=ev.kind,
            )


twin(Lock, ReturnCode._vnode_lock, ReturnCode.vnode_lock)
twin(Unlock, ReturnCode._vnode_unlock, ReturnCode.vnode_unlock)
twin(RemoveWrite, ReturnCode._effect, ReturnCode.remove_write)
twin(IoIssue, ReturnCode._effect, ReturnCode.io_issue)
twin(IoDone, ReturnCode._io_done, ReturnCode.io_done)
twin(IoDone, ReturnCode._any_write_done, ReturnCode.any_write_done)


# Under a profile whose map lock is shared by design (modern) single_entry subscribes
# nothing and the call tracker subscribes after lock_discipline: one call for the
# checkers' handlers of a lock taken (lock_discipline, the call tracker, return_code)
# and of a lock released (lock_discipline, return_code), in that order.  Each checker's
# own twin does the work; only the call tracker's map-lock test is inlined, and
# return_code's twins are called only for the vnode locks they look at.


def _fused_lock_shared(disc: LockDiscipline, calls: CallTracker, rc: ReturnCode
                       ) -> Callable[[str, str, str], None]:
    disc_lock = disc.lock
    vnode_lock = rc.vnode_lock
    sched = disc.k.sched
    open_calls = calls.calls

    def lock(res: str, name: str, mode: str) -> None:
        disc_lock(res, name, mode)
        if res == "map":  # CallTracker.lock
            call = open_calls.get(sched.cpu)
            if call is not None and call.window_at < 0 and name == call.vm_map.name:
                calls._open(call)
        elif res == "vnode":
            vnode_lock(res, name, mode)

    return lock


def _fused_unlock_shared(disc: LockDiscipline, rc: ReturnCode) -> Callable[[str, str], None]:
    disc_unlock = disc.unlock
    vnode_unlock = rc.vnode_unlock

    def unlock(res: str, name: str) -> None:
        disc_unlock(res, name)
        if res == "vnode":
            vnode_unlock(res, name)

    return unlock


fuse(Lock, (LockDiscipline._lock, CallTracker._lock, ReturnCode._vnode_lock),
     _fused_lock_shared)
fuse(Unlock, (LockDiscipline._unlock, ReturnCode._vnode_unlock), _fused_unlock_shared)
