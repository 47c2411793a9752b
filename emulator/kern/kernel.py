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

import types
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from emulator.kern.events import (
    WATCHED,
    Alloc,
    Contract,
    Dirty,
    Event,
    IoDone,
    IoIssue,
    Lock,
    MapAccess,
    ObjectFree,
    PageFreeing,
    Pagein,
    PteEnter,
    Read,
    Recorded,
    RemoveWrite,
    Store,
    TouchFreed,
    Unbusy,
    Unlock,
    Wait,
    Woke,
)
from emulator.kern.events import (
    Busy as BusyEvent,
)
from emulator.kern.object import OBJT_FILE
from emulator.kern.page import BUSY_EXCL, BUSY_NONE
from emulator.kern.pager import Disk, Pager

if TYPE_CHECKING:
    from emulator.kern.kern_return import KernReturn
    from emulator.kern.map import VmMap, VmMapEntry
    from emulator.kern.monitor import Monitor, Violation
    from emulator.kern.object import VmObject
    from emulator.kern.page import VmPage
    from emulator.kern.pager import Io
    from emulator.kern.profile import Profile
    from emulator.kern.sched import Sched, WaitChannel

Observer = Callable[[int, int, Any], None]  # fn(step, agent, event)
E = TypeVar("E", bound=Event)

# The hot event kinds have an emitter of their own, the kernel attribute named here,
# called with the event's fields: ``k.emit_lock(res, name, mode)`` does what
# ``k.emit(Lock(res, name, mode))`` does.  Until ``seal`` it is exactly that; ``seal``
# gives it a cheaper body when it can (see there).
EMITTERS: tuple[tuple[type[Event], str], ...] = (
    (Lock, "emit_lock"),
    (Unlock, "emit_unlock"),
    (Wait, "emit_wait"),
    (BusyEvent, "emit_busy"),
    (Unbusy, "emit_unbusy"),
    (Store, "emit_store"),
    (MapAccess, "emit_map_access"),
    (RemoveWrite, "emit_remove_write"),
    (PteEnter, "emit_pte_enter"),
    (Dirty, "emit_dirty"),
    (Alloc, "emit_alloc"),
    (Pagein, "emit_pagein"),
    (IoIssue, "emit_io_issue"),
    (IoDone, "emit_io_done"),
    # Untraced, seen only by a footprint-aware strategy (``watch``): hot in its executions.
    (Read, "emit_read"),
    (Woke, "emit_woke"),
)

# Observers with a twin taking the event's fields instead of the event: an observer
# ``fn(step, agent, event)`` bound to an object, whose function is a key of ``TWINS``,
# does what ``TWINS[fn.__func__](fn.__self__, *fields)`` does (the twin reads the step
# and the agent from the scheduler, as ``emit`` does).  ``FUSED`` maps the functions
# of several observers of one kind, in subscription order, to the function that makes
# one handler doing all their work from their objects (``maker(*objects)``), e.g. the
# three checkers' handlers of ``Lock``.  Checker modules fill both (``twin``, ``fuse``).
TWINS: dict[tuple[type[Event], Callable[..., Any]], Callable[..., None]] = {}
FUSED: dict[tuple[type[Event], tuple[Callable[..., Any], ...]],
            Callable[..., Callable[..., None]]] = {}


def twin(kind: type[Event], observer: Callable[..., Any], fields: Callable[..., None]) -> None:
    """Declare ``fields`` (self, *the fields of a ``kind`` event) the twin of ``observer``
    (self, step, agent, event) for events of ``kind``."""
    TWINS[kind, observer] = fields


def fuse(kind: type[Event], observers: tuple[Callable[..., Any], ...],
         maker: Callable[..., Callable[..., None]]) -> None:
    """Declare ``maker(*objects)`` the one handler doing the work of ``observers`` (their
    functions, in subscription order) for events of ``kind``."""
    FUSED[kind, observers] = maker


def _ignore(*fields: Any) -> None:
    """An emitter when nothing records or observes its kind: no event is built."""


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
        # The hot kinds' emitters (EMITTERS): build the event and emit it, until ``seal``.
        self.sealed = False
        self.emit_lock: Callable[[str, str, str], None] = self._emit_lock
        self.emit_unlock: Callable[[str, str], None] = self._emit_unlock
        self.emit_wait: Callable[[str, str], None] = self._emit_wait
        self.emit_busy: Callable[[str, int, str], None] = self._emit_busy
        self.emit_unbusy: Callable[[str, int], None] = self._emit_unbusy
        self.emit_store: Callable[[str, int, str, int, int, VmPage], None] = self._emit_store
        self.emit_map_access: Callable[[VmMap, str], None] = self._emit_map_access
        self.emit_remove_write: Callable[[str, int, int], None] = self._emit_remove_write
        self.emit_pte_enter: Callable[[str, int, str, int, str], None] = self._emit_pte_enter
        self.emit_dirty: Callable[[str, int, int], None] = self._emit_dirty
        self.emit_alloc: Callable[[str, int], None] = self._emit_alloc
        self.emit_pagein: Callable[[str, int, int], None] = self._emit_pagein
        self.emit_io_issue: Callable[[str, int, int, int, Io], None] = self._emit_io_issue
        self.emit_io_done: Callable[[str, int, int, int, Io], None] = self._emit_io_done
        self.emit_read: Callable[[str, str], None] = self._emit_read
        self.emit_woke: Callable[[WaitChannel], None] = self._emit_woke

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
            self.emit_read("*", "")

    async def _sleep_watched(self, chan: WaitChannel) -> None:
        """``sleep`` when a strategy watches footprints: it sees the wake-up."""
        await self.sched.sleep(chan)
        self.emit_woke(chan)

    def read(self, res: str, name: str) -> None:
        """Note a read of shared state that emits no event (for footprint-aware strategies).

        Not recorded in traces; costs nothing unless a strategy watches.
        """
        if self.watched:
            self.emit_read(res, name)

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
        if self.sealed:
            self.unseal()

    # The emitters of the hot kinds, as ``__init__`` installs them.

    def _emit_lock(self, res: str, name: str, mode: str) -> None:
        self.emit(Lock(res, name, mode))

    def _emit_unlock(self, res: str, name: str) -> None:
        self.emit(Unlock(res, name))

    def _emit_wait(self, res: str, name: str) -> None:
        self.emit(Wait(res, name))

    def _emit_busy(self, obj: str, pindex: int, mode: str) -> None:
        self.emit(BusyEvent(obj, pindex, mode))

    def _emit_unbusy(self, obj: str, pindex: int) -> None:
        self.emit(Unbusy(obj, pindex))

    def _emit_store(self, vm_map: str, va: int, obj: str, pindex: int, sid: int,
                    page: VmPage) -> None:
        self.emit(Store(vm_map, va, obj, pindex, sid, page))

    def _emit_map_access(self, vm_map: VmMap, what: str) -> None:
        self.emit(MapAccess(vm_map, what))

    def _emit_remove_write(self, obj: str, pindex: int, dirty: int) -> None:
        self.emit(RemoveWrite(obj, pindex, dirty))

    def _emit_pte_enter(self, vm_map: str, vpn: int, obj: str, pindex: int, prot: str) -> None:
        self.emit(PteEnter(vm_map, vpn, obj, pindex, prot))

    def _emit_dirty(self, obj: str, pindex: int, generation: int) -> None:
        self.emit(Dirty(obj, pindex, generation))

    def _emit_alloc(self, obj: str, pindex: int) -> None:
        self.emit(Alloc(obj, pindex))

    def _emit_pagein(self, obj: str, pindex: int, data: int) -> None:
        self.emit(Pagein(obj, pindex, data))

    def _emit_io_issue(self, obj: str, pindex: int, data: int, sync: int, io: Io) -> None:
        self.emit(IoIssue(obj, pindex, data, sync, io))

    def _emit_io_done(self, obj: str, pindex: int, data: int, error: int, io: Io) -> None:
        self.emit(IoDone(obj, pindex, data, error, io))

    def _emit_read(self, res: str, name: str) -> None:
        self.emit(Read(res, name))

    def _emit_woke(self, chan: WaitChannel) -> None:
        self.emit(Woke(chan))

    def seal(self) -> None:
        """Every subscription is made: give each hot kind's emitter its cheapest body.

        An emitter of a kind whose observers all have twins taking fields (``TWINS``,
        ``FUSED``) calls them with the fields, building no event: one fused handler
        for each run of observers ``FUSED`` names, the twin of each other, in order
        (``_recipe``).  With no
        observer it calls none.  If only the first observers have twins (the checkers,
        subscribed first; then a watching strategy, a portfolio's tracker), it calls
        those, then builds the event for the others.  When recording, it first keeps
        the trace line's data as ``emit`` does.  The observers see what they would
        have seen, in the same order.  ``observe`` undoes the seal.
        """
        self.sealed = True
        observers = self.observers
        recording = self.recording
        recipes = _RECIPES
        for cls, attr in EMITTERS:
            fns = observers.get(cls)
            fast: Callable[..., None] | None = None
            if fns:
                key = (cls, fns)
                recipe = recipes.get(key, _UNKNOWN)
                if recipe is _UNKNOWN:
                    # A hunt's portfolio keeps a machine per workload (~20; its arms
                    # share it), each with its own observers for 14 kinds, and a
                    # campaign may keep more: too small a cache would be emptied, and
                    # every recipe worked out again, at every execution.
                    if len(recipes) >= 4096:
                        recipes.clear()  # bounded: it holds the observers' objects
                    recipe = recipes[key] = _recipe(cls, fns)
                if recipe is None:
                    continue  # the first observer wants the event: build it
                maker, objects, rest = recipe
                fast = maker(*objects)
                if rest:
                    fast = _then_event(self.sched, cls, fast, rest)
            if recording and cls.traced:
                fast = self._recorder(cls, fast)
            setattr(self, attr, _ignore if fast is None else fast)

    def unseal(self) -> None:
        """Every emitter back to building the event and emitting it."""
        self.sealed = False
        for _, attr in EMITTERS:
            setattr(self, attr, getattr(self, "_" + attr))

    def _recorder(self, cls: type[Event], then: Callable[..., None] | None
                  ) -> Callable[..., None]:
        """An emitter of ``cls`` recording the trace line's data, then calling ``then``."""
        sched = self.sched
        events = self.events
        kind = cls.kind
        n = len(cls.trace_fields)

        def record(*fields: Any) -> None:
            events.append((sched.step, sched.cpu, kind, fields[:n]))
            if self.sink is not None and len(events) >= 4096:
                self.sink(events)  # as emit does
                events.clear()
            if then is not None:
                then(*fields)

        return record

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
        self.emit_map_access(vm_map, what)

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
            if page.busy == BUSY_NONE and self.sched.current is not None:
                page.busy = BUSY_EXCL  # teardown owns every page it frees
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


# What ``seal`` makes an emitter of from a kind's observers: ``maker(*objects)`` doing
# the work of the first of them from the fields, and the ``rest``, which want the event;
# None when the first has no twin.  Kept per (kind, observers): a machine re-installs
# the same observers on every execution (check/installer.py), so each is worked out once.
Recipe = tuple[Callable[..., Callable[..., None]], tuple[Any, ...], tuple[Observer, ...]] | None
_RECIPES: dict[tuple[type[Event], tuple[Observer, ...]], Recipe] = {}
_UNKNOWN: Any = object()


def _recipe(cls: type[Event], fns: tuple[Observer, ...]) -> Recipe:
    """The observers, from the first, as segments each done from the fields -- a fused
    handler for the longest run of observers ``FUSED`` names, else one observer's twin
    -- up to the first observer with neither, which (with those after it) gets the
    event.  E.g. the checkers' fused Lock handler, then a portfolio tracker's twin."""
    funcs = tuple(getattr(fn, "__func__", None) for fn in fns)
    objects = tuple(getattr(fn, "__self__", None) for fn in fns)
    segments: list[tuple[Callable[..., Callable[..., None]], tuple[Any, ...]]] = []
    i = 0
    while i < len(fns):
        for n in range(len(fns) - i, 1, -1):  # the longest fused run from here
            maker = FUSED.get((cls, funcs[i:i + n]))  # type: ignore[arg-type]
            if maker is not None:
                segments.append((maker, objects[i:i + n]))
                i += n
                break
        else:
            t = TWINS.get((cls, funcs[i]))  # type: ignore[arg-type]
            if t is None:
                break
            segments.append((_same, (types.MethodType(t, objects[i]),)))
            i += 1
    if not segments:
        return None
    rest = tuple(fns[i:])
    if len(segments) == 1:
        return segments[0][0], segments[0][1], rest
    if all(maker is _same for maker, _ in segments):
        # Bound twins only: they read their objects' state when called, so one handler
        # serves every execution that re-installs the same objects (no closure each seal).
        return _same, (_fan_out(*(objects[0] for _, objects in segments)),), rest
    return _all_of, tuple(segments), rest


def _all_of(*segments: tuple[Callable[..., Callable[..., None]], tuple[Any, ...]]
            ) -> Callable[..., None]:
    """One handler doing every segment's work, in order."""
    return _fan_out(*(maker(*objects) for maker, objects in segments))


def _then_event(sched: Sched, cls: type[Event], fast: Callable[..., None],
                rest: tuple[Observer, ...]) -> Callable[..., None]:
    """An emitter calling ``fast`` with the fields, then ``rest`` with the event."""

    def emit(*fields: Any) -> None:
        fast(*fields)
        ev = cls(*fields)
        step = sched.step
        aid = sched.cpu
        for fn in rest:
            fn(step, aid, ev)

    return emit


def _same(fn: Callable[..., None]) -> Callable[..., None]:
    return fn


def _fan_out(*fns: Callable[..., None]) -> Callable[..., None]:
    if len(fns) == 2:  # the checkers' handler and a tracker's twin: the common pair
        first, then = fns

        def both(*fields: Any) -> None:
            first(*fields)
            then(*fields)

        return both

    def each(*fields: Any) -> None:
        for fn in fns:
            fn(*fields)

    return each
