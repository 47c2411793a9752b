"""The kernel context: the state of one emulated machine and its services.

Every kernel structure keeps a reference ``k`` to its Kernel, as FreeBSD's code
reaches ``curthread`` and the global queues.  The Kernel gives kernel code:

* ``point()``, ``sleep(chan)``, ``wakeup(chan)`` and ``curcpu()`` from the
  controlled scheduler;
* ``emit(event)``: one event (emulator.kern.events), passed to the observers
  of its kind (``observe``); with ``record``, traced events are kept as
  ``(step, agent, event)`` in ``events``;
* the structure-lifetime checks (``touch_*``) and the untraced events the
  checkers watch (``map_access``, ``page_freeing``), which never depend on the
  clean variant's cooperation: they sit in the primitives every variant uses;
* ``violate(rule, message)``: record a violation and end the execution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from emulator.kern.events import (
    TRACED,
    WATCHED,
    Event,
    MapAccess,
    ObjectFree,
    PageFreeing,
    Read,
    Stamped,
    Violated,
    Woke,
)
from emulator.kern.pager import Disk, Pager

if TYPE_CHECKING:
    from emulator.kern.map import VmMap, VmMapEntry
    from emulator.kern.object import VmObject
    from emulator.kern.page import VmPage
    from emulator.sched.scheduler import Scheduler, WaitChannel

Observer = Callable[[int, int, Any], None]  # fn(step, agent, event)
E = TypeVar("E", bound=Event)

PROFILES = ("manpage", "freebsd5", "modern")


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

    def __init__(self, sched: Scheduler, profile: str, record: bool = True) -> None:
        if profile not in PROFILES:
            raise ValueError(profile)
        self.sched = sched
        self.profile = profile
        self.kpoint = sched.point  # the primitives' schedule point (they report what they touch)
        self.wakeup = sched.wakeup
        self.events: list[Stamped] = []
        self.sink: Callable[[list[Stamped]], None] | None = None  # streams recorded events
        self.observers: dict[type[Event], list[Observer]] = {}
        self.watched = False  # a footprint-aware strategy sees every event (watch())
        if record:
            # The recorder is the first observer of every traced kind, so a
            # violation's event is recorded after the event that caused it.
            for cls in TRACED.values():
                self.observe(cls, self._record)
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
        if self.watched:
            self.emit(Read("*", ""))

    async def sleep(self, chan: WaitChannel) -> None:
        """Block on ``chan`` until woken; a strategy watching footprints sees the wake-up."""
        await self.sched.sleep(chan)
        if self.watched:
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
        """Pass ``ev`` to the observers of its kind, as the running agent at this step.

        The hot path: one dictionary lookup when nothing observes the kind.
        """
        obs = self.observers.get(type(ev))
        if obs:
            sched = self.sched
            cur = sched.current
            aid = cur.aid if cur is not None else -1
            step = sched.step
            for fn in obs:
                fn(step, aid, ev)

    def observe(self, kind: type[E], fn: Callable[[int, int, E], None]) -> None:
        """Call ``fn(step, agent, event)`` for every event of class ``kind``, in
        subscription order."""
        self.observers.setdefault(kind, []).append(fn)

    def watch(self, fn: Observer) -> None:
        """Subscribe ``fn`` to every traced event and to the untraced reads and
        wake-ups (a footprint-aware strategy).  Subscribe it last: it then sees an
        event after the checkers, and not at all if a checker ended the execution."""
        for cls in WATCHED:
            self.observe(cls, fn)
        self.watched = True

    def _record(self, step: int, aid: int, ev: Event) -> None:
        events = self.events
        events.append((step, aid, ev))
        if self.sink is not None and len(events) >= 4096:
            self.sink(events)  # stream to the trace file: memory stays bounded
            events.clear()

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
        self.emit(Violated(rule, message))
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
