"""The kernel context: the state of one emulated machine and its services.

Every kernel structure keeps a reference ``k`` to its Kernel, as FreeBSD's code
reaches ``curthread`` and the global queues.  The Kernel gives kernel code:

* ``point()``, ``sleep(chan)``, ``wakeup(chan)`` and ``curcpu()`` from the
  scheduler it is given (any ``emulator.kern.sched.Sched``);
* ``emit(event)``: one event (emulator.kern.events), passed to the observers
  of its class (``observe``); with ``record``, each traced event's trace line
  is kept as ``(step, agent, kind, args)`` in ``events``;
* the structure-lifetime and lock-discipline reports the checkers watch
  (``touch_*``, ``contract``, ``map_access``, ``page_freeing``: untraced
  events), which never depend on the clean variant's cooperation: they sit in
  the primitives every variant uses.  The kernel names no rule: the checkers
  judge what it reports and give their verdicts through ``monitor``
  (``emulator.kern.monitor``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from emulator.kern.events import (
    WATCHED,
    Contract,
    Event,
    MapAccess,
    ObjectFree,
    PageFreeing,
    Read,
    Recorded,
    TouchFreed,
    Woke,
)
from emulator.kern.object import OBJT_FILE
from emulator.kern.page import Busy
from emulator.kern.pager import Disk, Pager

if TYPE_CHECKING:
    from emulator.kern.kern_return import KernReturn
    from emulator.kern.map import VmMap, VmMapEntry
    from emulator.kern.monitor import Monitor, Violation
    from emulator.kern.object import VmObject
    from emulator.kern.page import VmPage
    from emulator.kern.profile import Profile
    from emulator.kern.sched import Sched, WaitChannel

Observer = Callable[[int, int, Any], None]  # fn(step, agent, event)
E = TypeVar("E", bound=Event)


class Kernel:
    """One emulated machine: maps, files, the disk, and the scheduler's services."""

    def __init__(self, sched: Sched, profile: Profile, record: bool = True) -> None:
        self.sched = sched
        self.profile = profile  # the behaviours to follow (kern/profile.py)
        self.kpoint = sched.point  # the primitives' schedule point (they report what they touch)
        self.wakeup = sched.wakeup
        # Block on a channel until woken: the scheduler's own sleep, one coroutine less at
        # every sleep and every switch through it, unless a strategy watches (watch()).
        self.sleep: Callable[[WaitChannel], Awaitable[None]] = sched.sleep
        self.events: list[Recorded] = []
        self.sink: Callable[[list[Recorded]], None] | None = None  # streams recorded events
        # Each event class's subscribers, in order: a tuple, replaced by a longer one at
        # each subscription (never changed in place), so kernels may share them.
        self.observers: dict[type[Event], tuple[Observer, ...]] = {}
        self.watched = False  # a footprint-aware strategy sees every event (watch())
        self.recording = record  # keep every traced event's line in ``events``
        self.violations: list[Violation] = []  # the monitor's verdicts on this machine
        # Given by the harness before any agent runs (emulator.check.monitor.Verdicts).
        self.monitor: Monitor
        self.maps: dict[str, VmMap] = {}
        self.files: dict[str, VmObject] = {}
        self.pagers: dict[str, Pager] = {}
        self.disk: Disk = Disk(self, -1)  # the machine builder sets the disk's agent
        # vm_pageout_page_count: the most pages one write of a dirty page and its dirty
        # neighbours carries (the profile's; the machine builder sets the spec's).
        self.cluster = profile.cluster
        self.store_seq = 0
        self.next_oid = 0
        # Pluggable paths: the machine builder installs the variant under test.
        self.clean_impl: Callable[..., Any] | None = None
        self.fault_impl: Callable[..., Any] | None = None
        self.munmap_impl: Callable[..., Any] | None = None
        # msync(2)'s errno per failing clean code: the profile's, unless the code
        # under test brings its own (a mutant of the syscall's switch).
        self.msync_errno: Mapping[KernReturn, str] = profile.msync_errno
        self.trusted = True  # the paths under test are the reference's (see untrusted())
        self.in_checker = False  # set while harness code reads structures
        self.shared: dict[str, Any] = {}  # state the checkers share (trackers)
        self.map_slocks: dict[int, int] = {}  # cpu -> map locks it holds shared (td_sx_slocks)
        # Vnodes whose last use reference a cpu dropped, to inactivate once it holds no
        # map lock (td_map_def_user, vm_map_process_deferred): (cpu, file object).
        self.deferred: list[tuple[int, VmObject]] = []

    # -- scheduler services -------------------------------------------------

    def curcpu(self) -> int:
        """The running agent's id.  (The hot primitives read ``sched.cpu`` directly,
        after their schedule point, which asserts that an agent runs.)"""
        cpu = self.sched.cpu
        assert cpu >= 0
        return cpu

    async def point(self) -> None:
        """A schedule point for variant code: another CPU may run here.

        What the code does after it is unknown to the kernel, so a strategy
        that reasons about independent steps treats that step as touching
        everything (the kernel's own primitives use ``kpoint`` and report
        their reads and writes).
        """
        await self.sched.point()
        self.untrusted()

    def untrusted(self) -> None:
        """Variant code is about to run until its next schedule point."""
        if self.watched:
            self.emit(Read("*", ""))

    async def _sleep_watched(self, chan: WaitChannel) -> None:
        """``sleep`` when a strategy watches footprints: it sees the wake-up."""
        await self.sched.sleep(chan)
        self.emit(Woke(chan))

    def read(self, res: str, name: str) -> None:
        """Note a read of shared state that emits no event (for footprint-aware strategies).

        Not recorded in traces; costs nothing unless a strategy watches.
        """
        if self.watched:
            self.emit(Read(res, name))

    def agent_name(self, aid: int) -> str:
        agents = self.sched.agents
        return agents[aid].name if 0 <= aid < len(agents) else f"agent{aid}"

    # -- events ----------------------------------------------------------------

    def emit(self, ev: Event) -> None:
        """Record ``ev`` if traced and recording, then pass it to the observers of its
        class, as the running agent at this step.

        The hot path: one attribute and one dictionary lookup when nothing
        records or observes.  The record comes first, so a violation's event is
        recorded after the event that caused it.  It keeps the trace line's data
        (``Recorded``), built in C by the class's ``args_of``.
        """
        cls = ev.__class__
        if self.recording and cls.traced:
            sched = self.sched
            events = self.events
            events.append((sched.step, sched.cpu, cls.kind, cls.args_of(ev)))
            if self.sink is not None and len(events) >= 4096:
                self.sink(events)  # stream to the trace file: memory stays bounded
                events.clear()
        obs = self.observers.get(cls)
        if obs:
            sched = self.sched
            step = sched.step
            aid = sched.cpu
            for fn in obs:
                fn(step, aid, ev)

    def observe(self, kind: type[E], fn: Callable[[int, int, E], None]) -> None:
        """Call ``fn(step, agent, event)`` for every event of class ``kind``, in
        subscription order."""
        observers = self.observers
        have = observers.get(kind)
        observers[kind] = (fn,) if have is None else (*have, fn)

    def watch(self, fn: Observer) -> None:
        """Subscribe ``fn`` to every traced event and to the untraced reads and
        wake-ups (a footprint-aware strategy).  Subscribe it last: it then sees an
        event after the checkers, and not at all if a checker ended the execution."""
        for cls in WATCHED:
            self.observe(cls, fn)
        self.watched = True
        self.sleep = self._sleep_watched

    # -- what the primitives report to the checkers -----------------------------------

    def contract(self, message: str) -> None:
        """A locking contract of a primitive was broken by the code running now."""
        self.emit(Contract(message))

    def touch_page(self, page: VmPage) -> None:
        if page.freed:
            self.emit(TouchFreed("page", page))

    def touch_object(self, obj: VmObject) -> None:
        if obj.freed:
            self.emit(TouchFreed("object", obj))

    def touch_entry(self, entry: VmMapEntry) -> None:
        if entry.freed:
            self.emit(TouchFreed("entry", entry))

    def map_access(self, vm_map: VmMap, what: str) -> None:
        """The current cpu looks at (``lookup``) or changes (``insert`` ...) the map's entries."""
        self.emit(MapAccess(vm_map, what))

    def page_freeing(self, page: VmPage) -> None:
        self.emit(PageFreeing(page))

    def free_entry(self, entry: VmMapEntry) -> None:
        """Free an unlinked entry and drop its object reference.

        The entry's class becomes ``FreedVmMapEntry``: any later read of one of
        its fields by an agent is a stale-structure violation.
        """
        from emulator.kern.map import FreedVmMapEntry

        obj = entry.obj
        entry.freed = True
        entry.freed_at = self.sched.step
        entry.freed_by = self
        entry.__class__ = FreedVmMapEntry
        if obj is not None:
            self.release_object(obj)

    def release_object(self, obj: VmObject) -> None:
        """Drop a reference; free an anonymous object (and its pages) at zero.

        File objects stay cached with their pages, as vnode objects do.
        """
        obj.ref_count -= 1
        if obj.ref_count > 0 or obj.kind == OBJT_FILE:
            if obj.closed and obj.ref_count == 1 and obj.kind == OBJT_FILE:
                # Only the vnode's own reference is left: vrele of its last use
                # reference, which inactivates it -- later, with no map lock held.
                cur = self.sched.current
                if cur is not None:
                    self.deferred.append((cur.aid, obj))
            return
        for page in list(obj.pages.values()):
            if page.busy == Busy.NONE and self.sched.current is not None:
                page.busy = Busy.EXCL  # teardown owns every page it frees
                page.xowner = self.curcpu()
            obj.free_page(page)
        obj.freed = True
        self.emit(ObjectFree(obj.name))
        if obj.backing is not None:
            self.release_object(obj.backing)

    # -- identities ------------------------------------------------------------------

    def new_store_id(self) -> int:
        self.store_seq += 1
        return self.store_seq

    def new_object_name(self, prefix: str) -> str:
        self.next_oid += 1
        return f"{prefix}{self.next_oid}"

    def _check(self) -> None:
        """Assert the invariant of every structure of the machine."""
        for m in self.maps.values():
            m._check()
            m.pmap._check()
        for obj in self.files.values():
            obj._check()
        self.disk._check()
