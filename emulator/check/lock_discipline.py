"""Rule 2, ``lock_discipline`` and ``deadlock``.

* The entry list of a map changes only under its exclusive lock, held by the
  CPU making the change.
* An exclusive holder is alone (no shared holder at the same time).
* The lock order map -> vnode -> object -> page busy is never inverted; no one
  waits for a busy page holding an object lock, or sleeps for a vnode lock
  holding a busy page.  An inversion is recorded when it happens but does not
  end the run: if it leads to a deadlock, the deadlock is reported with it.
* The locking contracts of the primitives hold (no recursion, no release by a
  non-holder): the kernel reports a broken one (``Contract``), this judges it.
* No one inactivates a vnode (vrele of its last use reference: VOP_INACTIVE takes
  its lock) holding a map lock: that waits for the map's unlock (cfa892b5).
* A wait-for cycle (detected by the scheduler when no agent can run) is a
  ``deadlock``; its report names what each CPU holds and wants.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from emulator.check import Rule
from emulator.check.base import RANKS, CallTracker, Checker, drop, holdings, label
from emulator.check.single_entry import SingleEntry
from emulator.kern.events import Contract, Inactive, Lock, MapAccess, Unlock, Wait
from emulator.kern.kernel import fuse, twin
from emulator.kern.locks import RANK_BUSY, RANK_MAP, RANK_OBJECT

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.map import VmMap
    from emulator.kern.monitor import Violation


ORDER = "the order is map -> vnode -> object -> page busy"
VRELE = ("a vnode is inactivated only after the map is unlocked (vm_map_process_deferred): "
         "read(2) and write(2) fault on their buffers holding the vnode lock")
NOT_HELD: tuple[int, tuple[int, ...]] = (-1, ())  # a map lock no one holds: (excl, shared)


class LockDiscipline(Checker):
    rule = Rule.LOCK_DISCIPLINE

    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        self.held = holdings(k)
        self.reported: set[tuple[int, str, str]] = set()  # inversions already reported
        self.map_holders: dict[str, tuple[int, tuple[int, ...]]] = {}  # map -> (excl, shared)
        # No Busy observer: busying a page is never an inversion (a busy page ranks
        # last, and taking one never waits); waiting for one is a Wait.
        k.observe(Lock, self._lock)
        k.observe(Unlock, self._unlock)
        k.observe(Wait, self._wait)
        k.observe(MapAccess, self._map_access)
        k.observe(Contract, self._contract)
        k.observe(Inactive, self._inactive)

    def inversion(self, aid: int, kind: str, waiting: bool) -> tuple[str, str] | None:
        """Return (held label, why) if taking or waiting for ``kind`` breaks the order.

        Locks rank map < vnode < object.  Page busy is not a lock one may block
        on freely: waiting for one holding an object lock is forbidden, and so
        is sleeping for a vnode lock holding one; taking an object lock while
        holding a busy page is how the kernel works and is allowed.
        """
        rank = RANKS[kind]
        for h in self.held.of(aid):
            r = h[0]
            if kind == "busy":
                if waiting and r == RANK_OBJECT:
                    return label(h), "no one may wait for a busy page holding an object lock"
            elif r == RANK_BUSY:
                if waiting and kind in ("vnode", "map"):
                    return label(h), f"no one may sleep for a {kind} lock holding a busy page"
            elif r > rank:
                return label(h), ORDER
        return None

    def order(self, step: int, aid: int, kind: str, name: str, waiting: bool) -> None:
        found = self.inversion(aid, kind, waiting)
        if found is not None:
            self._inverted(step, aid, kind, name, waiting, *found)

    def _inverted(self, step: int, aid: int, kind: str, name: str, waiting: bool,
                  held: str, why: str) -> None:
        key = (aid, held, kind)
        if key in self.reported:
            return
        self.reported.add(key)
        verb = "waits for" if waiting else "takes"
        what = f"page {name}" if kind == "busy" else f"the {kind} lock of {name}"
        self.violate(
            f"lock order inverted: {self.k.agent_name(aid)} {verb} {what} at step {step} "
            f"while holding the {held}; {why}",
            cpus=[aid],
            fatal=False,
            held=held,
            wanted=f"{kind} {name}",
        )

    # The observers of the hot kinds delegate to their twins taking fields (see
    # CallTracker's): the kernel calls those, building no event, when it can.

    def _lock(self, step: int, aid: int, ev: Lock) -> None:
        self.lock(ev.res, ev.name, ev.mode)

    def lock(self, res: str, name: str, mode: str) -> None:
        k = self.k
        aid = k.sched.cpu
        rank = RANKS[res]
        held = self.held.held.get(aid)
        if held is None:
            held = self.held.of(aid)
        # order(), for a lock taken: a lock ranked above this one (a busy page is not).
        for h in held:
            r = h[0]
            if rank < r != RANK_BUSY:
                self._inverted(k.sched.step, aid, res, name, False, label(h), ORDER)
                break
        held.append((rank, res, name, -1))  # Holdings.taken, inlined
        if res != "map":
            return
        excl, shared = self.map_holders.get(name, NOT_HELD)
        if mode == "x":
            if excl >= 0 or shared:
                self.violate(f"{k.agent_name(aid)} holds the map lock of {name} exclusive "
                             "together with another holder", cpus=[aid])
            self.map_holders[name] = (aid, shared)
        else:
            if excl >= 0:
                self.violate(f"{k.agent_name(aid)} holds the map lock of {name} shared while "
                             f"{k.agent_name(excl)} holds it exclusive", cpus=[aid, excl])
            self.map_holders[name] = (excl, (*shared, aid))

    def _unlock(self, step: int, aid: int, ev: Unlock) -> None:
        self.unlock(ev.res, ev.name)

    def unlock(self, res: str, name: str) -> None:
        aid = self.k.sched.cpu
        # Holdings.released, inlined: the lock released last, nearly always.
        held = self.held.held.get(aid)
        if held:
            h = (RANKS[res], res, name, -1)
            if held[-1] == h:
                held.pop()
            elif len(held) > 1 and held[-2] == h:  # a page busied under it is still held
                del held[-2]
            else:
                drop(held, h)
        if res != "map":
            return
        excl, shared = self.map_holders.get(name, NOT_HELD)
        if excl == aid:
            excl = -1
        elif aid in shared:
            i = shared.index(aid)
            shared = shared[:i] + shared[i + 1:]
        self.map_holders[name] = (excl, shared)

    def _wait(self, step: int, aid: int, ev: Wait) -> None:
        self.wait(ev.res, ev.name)

    def wait(self, res: str, name: str) -> None:
        sched = self.k.sched
        aid = sched.cpu
        if res in RANKS and self.held.held.get(aid):  # holding nothing inverts nothing
            self.order(sched.step, aid, res, name, True)

    def _map_access(self, step: int, aid: int, ev: MapAccess) -> None:
        self.map_access(ev.vm_map, ev.what)

    def map_access(self, vm_map: VmMap, what: str) -> None:
        if what == "lookup":
            return
        k = self.k
        aid = k.sched.cpu
        if vm_map.lock.excl != aid:
            state = (
                f"exclusive by {k.agent_name(vm_map.lock.excl)}" if vm_map.lock.excl >= 0
                else "shared" if vm_map.lock.shared else "not held"
            )
            self.violate(
                f"{k.agent_name(aid)} changed the entry list of map {vm_map.name} ({what}) "
                f"without its exclusive lock (lock {state})",
                cpus=[aid],
                map=vm_map.name,
            )

    def _inactive(self, step: int, aid: int, ev: Inactive) -> None:
        """vrele's VOP_INACTIVE takes the vnode lock: never under a map lock."""
        for h in self.held.held.get(aid, ()):
            if h[0] == RANK_MAP:
                self._inverted(step, aid, "vnode", ev.obj, False, label(h), VRELE)
                return

    def _contract(self, step: int, aid: int, ev: Contract) -> None:
        self.violate(ev.message)

    def explain(self, v: Violation) -> None:
        if v.rule != Rule.DEADLOCK:
            return
        parts = [f"{self.k.agent_name(a)} holds {self.held.describe(a)}" for a in v.cpus]
        v.message = f"{v.message}; " + "; ".join(parts)


twin(Lock, LockDiscipline._lock, LockDiscipline.lock)
twin(Unlock, LockDiscipline._unlock, LockDiscipline.unlock)
twin(Wait, LockDiscipline._wait, LockDiscipline.wait)
twin(MapAccess, LockDiscipline._map_access, LockDiscipline.map_access)


# One call for the three checkers' handlers of a lock taken (the call tracker, single_entry,
# lock_discipline, in their subscription order), and for the two of an entry-list access:
# their twins' bodies, inlined; the reports stay in the checkers' methods.


def _fused_lock(calls: CallTracker, single: SingleEntry, disc: LockDiscipline
                ) -> Callable[[str, str, str], None]:
    sched = disc.k.sched
    open_calls = calls.calls
    inside = single.inside
    holdings_ = disc.held
    held_of = holdings_.held
    map_holders = disc.map_holders

    def lock(res: str, name: str, mode: str) -> None:
        aid = sched.cpu
        if res == "map":
            call = open_calls.get(aid)  # CallTracker.lock
            if call is not None and call.window_at < 0 and name == call.vm_map.name:
                calls._open(call)
            call = inside.get(name)  # SingleEntry.lock
            if call is not None and call.cpu != aid:
                single.entered(call, name, mode)
        # LockDiscipline.lock
        rank = RANKS[res]
        held = held_of.get(aid)
        if held is None:
            held = holdings_.of(aid)
        for h in held:
            r = h[0]
            if rank < r != RANK_BUSY:
                disc._inverted(sched.step, aid, res, name, False, label(h), ORDER)
                break
        held.append((rank, res, name, -1))
        if res != "map":
            return
        excl, shared = map_holders.get(name, NOT_HELD)
        if mode == "x":
            if excl >= 0 or shared:
                disc.violate(f"{disc.k.agent_name(aid)} holds the map lock of {name} "
                             "exclusive together with another holder", cpus=[aid])
            map_holders[name] = (aid, shared)
        else:
            if excl >= 0:
                disc.violate(f"{disc.k.agent_name(aid)} holds the map lock of {name} shared "
                             f"while {disc.k.agent_name(excl)} holds it exclusive",
                             cpus=[aid, excl])
            map_holders[name] = (excl, (*shared, aid))

    return lock


def _fused_access(calls: CallTracker, disc: LockDiscipline) -> Callable[[VmMap, str], None]:
    sched = disc.k.sched
    open_calls = calls.calls

    def access(vm_map: VmMap, what: str) -> None:
        aid = sched.cpu
        call = open_calls.get(aid)  # CallTracker.access
        if call is not None and call.window_at < 0 and vm_map is call.vm_map:
            calls._open(call)
        if what != "lookup" and vm_map.lock.excl != aid:  # LockDiscipline.map_access
            disc.map_access(vm_map, what)

    return access


def _fused_access_shared(disc: LockDiscipline, calls: CallTracker
                         ) -> Callable[[VmMap, str], None]:
    """``_fused_access`` in the other subscription order (lock_discipline first: a
    profile whose map lock is shared by design, see return_code's fused handlers)."""
    sched = disc.k.sched
    open_calls = calls.calls

    def access(vm_map: VmMap, what: str) -> None:
        aid = sched.cpu
        if what != "lookup" and vm_map.lock.excl != aid:  # LockDiscipline.map_access
            disc.map_access(vm_map, what)
        call = open_calls.get(aid)  # CallTracker.access
        if call is not None and call.window_at < 0 and vm_map is call.vm_map:
            calls._open(call)

    return access


fuse(Lock, (CallTracker._lock, SingleEntry._lock, LockDiscipline._lock), _fused_lock)
fuse(MapAccess, (CallTracker._access, LockDiscipline._map_access), _fused_access)
fuse(MapAccess, (LockDiscipline._map_access, CallTracker._access), _fused_access_shared)
