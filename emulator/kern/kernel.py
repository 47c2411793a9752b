"""The kernel context: the state of one emulated machine and its services.

Every kernel structure keeps a reference ``k`` to its Kernel, as FreeBSD's code
reaches ``curthread`` and the global queues.  The Kernel gives kernel code:

* ``point()``, ``sleep(chan)``, ``wakeup(chan)`` and ``curcpu()`` from the
  scheduler it is given (any ``emulator.kern.sched.Sched``);
* ``emit(kind, *fields)``: one event, recorded as a compact tuple
  ``(step, agent, kind, fields)`` and passed to the observers of ``kind``;
* the structure-lifetime and lock-discipline hooks the checkers watch
  (``touch_*``, ``contract``, ``map_access``, ``page_freeing``), which never
  depend on the clean variant's cooperation: they sit in the primitives every
  variant uses.  The kernel names no rule: the checkers judge what it reports
  and give their verdicts through ``monitor`` (``emulator.kern.monitor``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from emulator.kern.object import OBJT_FILE
from emulator.kern.page import Busy
from emulator.kern.pager import Disk, Pager

if TYPE_CHECKING:
    from emulator.kern.map import VmMap, VmMapEntry
    from emulator.kern.monitor import Monitor, Violation
    from emulator.kern.object import VmObject
    from emulator.kern.page import VmPage
    from emulator.kern.sched import Sched, WaitChannel

Event = tuple[int, int, str, tuple[Any, ...]]
Observer = Callable[[int, int, tuple[Any, ...]], None]

PROFILES = ("manpage", "freebsd5", "modern")


class Kernel:
    """One emulated machine: maps, files, the disk, and the scheduler's services."""

    def __init__(self, sched: Sched, profile: str, record: bool = True) -> None:
        if profile not in PROFILES:
            raise ValueError(profile)
        self.sched = sched
        self.profile = profile
        self.kpoint = sched.point  # the primitives' schedule point (they report what they touch)
        self.wakeup = sched.wakeup
        self.record = record
        self.events: list[Event] = []
        self.sink: Callable[[list[Event]], None] | None = None  # streams recorded events
        self.tap: Callable[[int, str, tuple[Any, ...]], None] | None = None  # every event
        self.observers: dict[str, list[Observer]] = {}
        self.hooks: dict[str, list[Callable[..., None]]] = {}
        self.violations: list[Violation] = []  # the monitor's verdicts on this machine
        # Given by the harness before any agent runs (emulator.check.monitor.Verdicts).
        self.monitor: Monitor
        self.maps: dict[str, VmMap] = {}
        self.files: dict[str, VmObject] = {}
        self.pagers: dict[str, Pager] = {}
        self.disk: Disk = Disk(self, -1)  # the machine builder sets the disk's agent
        self.store_seq = 0
        self.next_oid = 0
        # Pluggable paths: the machine builder installs the variant under test.
        self.clean_impl: Callable[..., Any] | None = None
        self.fault_impl: Callable[..., Any] | None = None
        self.munmap_impl: Callable[..., Any] | None = None
        self.trusted = True  # the paths under test are the reference's (see untrusted())
        self.in_checker = False  # set while harness code reads structures
        self.shared: dict[str, Any] = {}  # state the checkers share (trackers)

    # -- scheduler services -------------------------------------------------

    def curcpu(self) -> int:
        cur = self.sched.current
        assert cur is not None
        return cur.aid

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
        if self.tap is not None:
            self.tap(self.curcpu(), "read", ("*", ""))

    async def sleep(self, chan: WaitChannel) -> None:
        """Block on ``chan`` until woken; a strategy watching footprints sees the wake-up."""
        await self.sched.sleep(chan)
        if self.tap is not None:
            self.tap(self.curcpu(), "woke", (chan,))

    def read(self, kind: str, name: str) -> None:
        """Note a read of shared state that emits no event (for footprint-aware strategies).

        Not recorded in traces; costs nothing unless a strategy watches.
        """
        if self.tap is not None:
            self.tap(self.curcpu(), "read", (kind, name))

    def agent_name(self, aid: int) -> str:
        agents = self.sched.agents
        return agents[aid].name if 0 <= aid < len(agents) else f"agent{aid}"

    # -- events ----------------------------------------------------------------

    def emit(self, kind: str, *fields: Any) -> None:
        sched = self.sched
        cur = sched.current
        aid = cur.aid if cur is not None else -1
        if self.record:
            events = self.events
            events.append((sched.step, aid, kind, fields))
            if self.sink is not None and len(events) >= 4096:
                self.sink(events)  # stream to the trace file: memory stays bounded
                events.clear()
        obs = self.observers.get(kind)
        if obs:
            for f in obs:
                f(sched.step, aid, fields)
        if self.tap is not None:
            self.tap(aid, kind, fields)

    def observe(self, kind: str, fn: Observer) -> None:
        self.observers.setdefault(kind, []).append(fn)

    def hook(self, name: str, fn: Callable[..., None]) -> None:
        self.hooks.setdefault(name, []).append(fn)

    def _call_hooks(self, name: str, *args: Any) -> None:
        for fn in self.hooks.get(name, ()):
            fn(*args)

    # -- what the primitives report to the checkers -----------------------------------

    def contract(self, message: str) -> None:
        """A locking contract of a primitive was broken by the code running now."""
        self._call_hooks("contract", message)

    def touch_page(self, page: VmPage) -> None:
        if page.freed:
            self._call_hooks("touch_freed", "page", page)

    def touch_object(self, obj: VmObject) -> None:
        if obj.freed:
            self._call_hooks("touch_freed", "object", obj)

    def touch_entry(self, entry: VmMapEntry) -> None:
        if entry.freed:
            self._call_hooks("touch_freed", "entry", entry)

    def map_access(self, vm_map: VmMap, what: str) -> None:
        """Check that the current cpu may ``lookup`` or change (``insert`` ...) the map."""
        self._call_hooks("map_access", vm_map, what)

    def page_freeing(self, page: VmPage) -> None:
        self._call_hooks("page_freeing", page)

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
            return
        for page in list(obj.pages.values()):
            if page.busy == Busy.NONE and self.sched.current is not None:
                page.busy = Busy.EXCL  # teardown owns every page it frees
                page.xowner = self.curcpu()
            obj.free_page(page)
        obj.freed = True
        self.emit("object_free", obj.name)
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
