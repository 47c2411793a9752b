"""The kernel context: the state of one emulated machine and its services.

Every kernel structure keeps a reference ``k`` to its Kernel, as FreeBSD's code
reaches ``curthread`` and the global queues.  The Kernel gives kernel code:

* ``point()``, ``sleep(chan)``, ``wakeup(chan)`` and ``curcpu()`` from the
  controlled scheduler;
* ``emit(kind, *fields)``: one event, recorded as a compact tuple
  ``(step, agent, kind, fields)`` and passed to the observers of ``kind``;
* the structure-lifetime and lock-discipline hooks the checkers watch
  (``touch_*``, ``map_access``, ``page_freeing``), which never depend on the
  clean variant's cooperation: they sit in the primitives every variant uses;
* ``violate(rule, message)``: record a violation and end the execution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emulator.kern.pager import Disk, Pager

if TYPE_CHECKING:
    from emulator.kern.map import VmMap, VmMapEntry
    from emulator.kern.object import VmObject
    from emulator.kern.page import VmPage
    from emulator.kern.profile import Profile
    from emulator.sched.scheduler import Scheduler, WaitChannel

Event = tuple[int, int, str, tuple[Any, ...]]
Observer = Callable[[int, int, tuple[Any, ...]], None]

@dataclass
class Violation:
    """A broken rule: its id, one readable line, and where it happened."""

    rule: str
    message: str
    step: int
    cpus: list[int] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "message": self.message,
            "step": self.step,
            "cpus": list(self.cpus),
            "fields": dict(self.fields),
        }


class Kernel:
    """One emulated machine: maps, files, the disk, and the scheduler's services."""

    def __init__(self, sched: Scheduler, profile: Profile, record: bool = True) -> None:
        self.sched = sched
        self.profile = profile  # the behaviours to follow (kern/profile.py)
        self.kpoint = sched.point  # the primitives' schedule point (they report what they touch)
        self.wakeup = sched.wakeup
        self.record = record
        self.events: list[Event] = []
        self.sink: Callable[[list[Event]], None] | None = None  # streams recorded events
        self.tap: Callable[[int, str, tuple[Any, ...]], None] | None = None  # every event
        self.observers: dict[str, list[Observer]] = {}
        self.hooks: dict[str, list[Callable[..., None]]] = {}
        self.violations: list[Violation] = []
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
        self.check_stale = False  # switched on by the stale_structure checker

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

    # -- violations ------------------------------------------------------------

    def violate(
        self,
        rule: str,
        message: str,
        cpus: list[int] | None = None,
        fatal: bool = True,
        **fields: Any,
    ) -> None:
        """Record a violation of ``rule``; a fatal one ends the execution."""
        from emulator.sched.scheduler import Abort

        sched = self.sched
        cpu_list = cpus if cpus is not None else ([self.curcpu()] if sched.current else [])
        v = Violation(rule, message, sched.step, cpu_list, fields)
        self.violations.append(v)
        self.emit("violation", rule, message)
        if fatal and not sched.over and sched.current is not None:
            sched._end("violation", message)
            raise Abort()

    def contract(self, message: str) -> None:
        """A locking contract was broken by the code running now."""
        self.violate("lock_discipline", message)

    # -- lifetime and discipline hooks ---------------------------------------------

    def touch_page(self, page: VmPage) -> None:
        if page.freed and self.check_stale:
            self.violate(
                "stale_structure",
                f"{self.agent_name(self.curcpu())} touched page {page.name} after it was freed",
                page=page.name,
            )

    def touch_object(self, obj: VmObject) -> None:
        if obj.freed and self.check_stale:
            self.violate(
                "stale_structure",
                f"{self.agent_name(self.curcpu())} touched object {obj.name} after it was freed",
                object=obj.name,
            )

    def touch_entry(self, entry: VmMapEntry) -> None:
        if not entry.freed or not self.check_stale:
            return
        self.in_checker = True
        what = entry.describe()
        freed_at = entry.freed_at
        self.in_checker = False
        self.violate(
            "stale_structure",
            f"{self.agent_name(self.curcpu())} touched map entry {what} after it was "
            f"unlinked and freed at step {freed_at}",
            entry=what,
            freed_at=freed_at,
        )

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
        entry.__class__ = FreedVmMapEntry
        if obj is not None:
            self.release_object(obj)

    def release_object(self, obj: VmObject) -> None:
        """Drop a reference; free an anonymous object (and its pages) at zero.

        File objects stay cached with their pages, as vnode objects do.
        """
        obj.ref_count -= 1
        if obj.ref_count > 0 or obj.kind == "file":
            return
        for page in list(obj.pages.values()):
            if page.busy == 0 and self.sched.current is not None:
                page.busy = 2  # teardown owns every page it frees
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
