"""The kernel's events: every kind defined once, with named fields.

Kernel code reports what it does with ``k.emit(Lock("map", name, "x"))``; the
checkers, the trace recorder, a footprint-aware strategy and ``vmemu show``
read the fields by name.  There is one bus (:meth:`Kernel.emit` and
:meth:`Kernel.observe`), keyed by event class.

Two families:

* **traced** events (decorated ``@traced``) are what a trace file holds, one
  line each: ``{"event": kind, "step": N, "cpu": AGENT, "args": [...]}``, the
  args being the fields in declaration order.  Some also carry a live kernel
  structure for the checkers (``page``, ``io``, ``vm_map``): such a field is
  declared with :func:`live`; it is not part of the trace, nor of equality,
  and is ``None`` in an event read back from a trace;
* **untraced** events are moments only observers see: a map's entry list
  looked at or changed (:class:`MapAccess`), a page about to be freed
  (:class:`PageFreeing`), what the primitives report for the checkers to
  judge (:class:`Contract`, :class:`TouchFreed`, :class:`BadReturn`), and the
  reads and wake-ups a footprint-aware strategy needs (:class:`Read`,
  :class:`Woke`).

Events are slotted dataclasses: one small allocation where the event is
emitted, a field read as fast as an index (BENCHMARKS.md, issue 8).  A
recorded event is kept as its trace line's data (:data:`Recorded`);
``parse_event`` turns a line back into its event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from emulator.kern.kern_return import KernReturn
    from emulator.kern.map import VmMap
    from emulator.kern.page import VmPage
    from emulator.kern.pager import BufIo, Io


class Event:
    """The base of every event kind."""

    __slots__ = ()
    kind: ClassVar[str]  # the trace's name for it
    traced: ClassVar[bool] = False
    trace_fields: ClassVar[tuple[str, ...]] = ()
    # args_of(event) is event.args() without a Python frame (an attrgetter): the recorder's.
    args_of: ClassVar[Callable[[Any], tuple[Any, ...]]]

    def args(self) -> tuple[Any, ...]:
        """The trace line's ``args``: the traced fields, in order."""
        return self.__class__.args_of(self)

    @classmethod
    def from_args(cls, args: list[Any]) -> Event:
        """Rebuild an event from a trace line's ``args`` (live fields stay ``None``).

        Raises ``TypeError`` or ``ValueError`` when the args do not fit the kind.
        """
        if len(args) != len(cls.trace_fields):
            raise ValueError(f"{cls.kind}: {len(cls.trace_fields)} args expected, "
                             f"got {len(args)}")
        return cls(*args)


def live() -> Any:
    """A field holding a live kernel structure for the checkers: not in the trace.

    Typed ``Any`` so the field keeps its real type; the default (``None``) is
    only seen in an event read back from a trace, which no checker reads.
    """
    return field(default=None, compare=False, repr=False)


E = TypeVar("E", bound=Event)

TRACED: dict[str, type[Event]] = {}  # kind -> class, every event a trace may hold


def traced(cls: type[E]) -> type[E]:
    """Register a (dataclass) event kind as one a trace records."""
    names = tuple(f.name for f in fields(cls) if f.compare)  # type: ignore[arg-type]
    cls.traced = True
    cls.trace_fields = names
    if "args" in cls.__dict__:  # a kind that renders its own args (call)
        setattr(cls, "args_of", staticmethod(cls.args))  # noqa: B010 (a staticmethod)
    elif len(names) == 1:
        setattr(cls, "args_of", staticmethod(lambda ev: (getattr(ev, names[0]),)))  # noqa: B010
    else:
        setattr(cls, "args_of", attrgetter(*names))  # noqa: B010 (not a descriptor: unbound)
    assert cls.kind not in TRACED, cls.kind
    TRACED[cls.kind] = cls
    return cls


# -- the harness's and the system calls' --------------------------------------------


@traced
@dataclass(slots=True)
class Call(Event):
    """An agent starts a program step: ``op`` and its plain arguments."""

    kind: ClassVar[str] = "call"
    op: str
    params: tuple[Any, ...]

    def args(self) -> tuple[Any, ...]:
        return (self.op, *self.params)

    @classmethod
    def from_args(cls, args: list[Any]) -> Event:
        if not args:
            raise ValueError("call: no op")
        return cls(args[0], tuple(args[1:]))


@traced
@dataclass(slots=True)
class Ret(Event):
    """A program step returned ``value`` (rendered as the trace shows it)."""

    kind: ClassVar[str] = "ret"
    op: str
    value: Any


@traced
@dataclass(slots=True)
class Sched(Event):
    """A scheduling decision: ``chosen`` among ``runnable`` (two or more agents).

    The scheduler's, not the kernel's: the harness records it straight into the
    trace (no observer wants it), and reads it back from one.
    """

    kind: ClassVar[str] = "sched"
    chosen: int
    runnable: tuple[int, ...]

    @classmethod
    def from_args(cls, args: list[Any]) -> Event:
        chosen, runnable = args
        return cls(chosen, tuple(runnable))


@traced
@dataclass(slots=True)
class Violated(Event):
    """A rule broken (the harness's record of it is a ``Violation``)."""

    kind: ClassVar[str] = "violation"
    rule: str
    message: str


@traced
@dataclass(slots=True)
class Load(Event):
    kind: ClassVar[str] = "load"
    map: str
    va: int
    value: int


@traced
@dataclass(slots=True)
class Store(Event):
    """A store of the fresh id ``sid`` at ``va``, into page ``obj:pindex``."""

    kind: ClassVar[str] = "store"
    map: str
    va: int
    obj: str
    pindex: int
    sid: int
    page: VmPage = live()  # noqa: RUF009 (a fresh Field per use)


@traced
@dataclass(slots=True)
class CleanCall(Event):
    """The clean routine under test is called (``syncio``, ``invalidate``: 0 or 1)."""

    kind: ClassVar[str] = "clean_call"
    map: str
    start: int
    end: int
    syncio: int
    invalidate: int
    vm_map: VmMap = live()  # noqa: RUF009 (a fresh Field per use)


@traced
@dataclass(slots=True)
class CleanReturn(Event):
    """The clean routine returned ``rv`` (``KERN_SUCCESS``...)."""

    kind: ClassVar[str] = "clean_return"
    map: str
    rv: str


@traced
@dataclass(slots=True)
class Wire(Event):
    kind: ClassVar[str] = "wire"
    obj: str
    pindex: int
    count: int


@traced
@dataclass(slots=True)
class Unwire(Event):
    kind: ClassVar[str] = "unwire"
    obj: str
    pindex: int
    count: int


# -- locks and busy pages ------------------------------------------------------------


@traced
@dataclass(slots=True)
class Lock(Event):
    """A lock taken: ``res`` map, vnode or object; ``mode`` x or s."""

    kind: ClassVar[str] = "lock"
    res: str
    name: str
    mode: str


@traced
@dataclass(slots=True)
class Unlock(Event):
    kind: ClassVar[str] = "unlock"
    res: str
    name: str


@traced
@dataclass(slots=True)
class Wait(Event):
    """The agent is about to sleep for ``res`` (map, vnode, object, busy, io) ``name``."""

    kind: ClassVar[str] = "wait"
    res: str
    name: str


@traced
@dataclass(slots=True)
class Busy(Event):
    """A page busied: ``mode`` x (exclusive) or s (shared)."""

    kind: ClassVar[str] = "busy"
    obj: str
    pindex: int
    mode: str


@traced
@dataclass(slots=True)
class Unbusy(Event):
    kind: ClassVar[str] = "unbusy"
    obj: str
    pindex: int


# -- objects and pages ---------------------------------------------------------------


@traced
@dataclass(slots=True)
class ObjectNew(Event):
    kind: ClassVar[str] = "object_new"
    obj: str


@traced
@dataclass(slots=True)
class ObjectFree(Event):
    kind: ClassVar[str] = "object_free"
    obj: str


@traced
@dataclass(slots=True)
class Alloc(Event):
    """A page allocated (exclusive busy, for an agent)."""

    kind: ClassVar[str] = "alloc"
    obj: str
    pindex: int


@traced
@dataclass(slots=True)
class Free(Event):
    kind: ClassVar[str] = "free"
    obj: str
    pindex: int
    dirty: int


@traced
@dataclass(slots=True)
class Invalid(Event):
    """A wired page's contents were discarded (``valid = 0``) by an invalidate: it
    stays resident, and the next access reads it again (the 2003 page remove)."""

    kind: ClassVar[str] = "invalid"
    obj: str
    pindex: int
    dirty: int
    page: VmPage = live()  # noqa: RUF009 (a fresh Field per use)


@traced
@dataclass(slots=True)
class Dirty(Event):
    """A write fault dirtied a page; the object's clean generation is ``generation``."""

    kind: ClassVar[str] = "dirty"
    obj: str
    pindex: int
    generation: int


@traced
@dataclass(slots=True)
class Writeable(Event):
    kind: ClassVar[str] = "writeable"
    obj: str
    generation: int


@traced
@dataclass(slots=True)
class Pagein(Event):
    kind: ClassVar[str] = "pagein"
    obj: str
    pindex: int
    data: int


@traced
@dataclass(slots=True)
class Cow(Event):
    """A copy-on-write copy of ``data`` into the shadow object ``obj``."""

    kind: ClassVar[str] = "cow"
    obj: str
    pindex: int
    data: int


@traced
@dataclass(slots=True)
class CleanGeneration(Event):
    kind: ClassVar[str] = "clean_generation"
    obj: str
    generation: int


# -- page tables ---------------------------------------------------------------------


@traced
@dataclass(slots=True)
class PteEnter(Event):
    """A mapping entered: ``vpn`` of ``map`` -> page ``obj:pindex``, ``prot`` w or r."""

    kind: ClassVar[str] = "pte"
    map: str
    vpn: int
    obj: str
    pindex: int
    prot: str


@traced
@dataclass(slots=True)
class PteRemove(Event):
    """``count`` mappings of [start_vpn, end_vpn) removed."""

    kind: ClassVar[str] = "pte_remove"
    map: str
    start_vpn: int
    end_vpn: int
    count: int


@traced
@dataclass(slots=True)
class PteProtect(Event):
    """``count`` mappings of [start_vpn, end_vpn) made read-only (pmap_protect)."""

    kind: ClassVar[str] = "pte_protect"
    map: str
    start_vpn: int
    end_vpn: int
    count: int


@traced
@dataclass(slots=True)
class RemoveWrite(Event):
    """A page write-protected everywhere; ``dirty`` after folding the modified bits."""

    kind: ClassVar[str] = "remove_write"
    obj: str
    pindex: int
    dirty: int


@traced
@dataclass(slots=True)
class RemoveAll(Event):
    """Every mapping of a page removed; ``dirty`` after folding the modified bits."""

    kind: ClassVar[str] = "remove_all"
    obj: str
    pindex: int
    dirty: int


# -- the entry list ------------------------------------------------------------------


@traced
@dataclass(slots=True)
class EntryInsert(Event):
    kind: ClassVar[str] = "entry_insert"
    map: str
    start: int
    end: int


@traced
@dataclass(slots=True)
class EntryRemove(Event):
    kind: ClassVar[str] = "entry_remove"
    map: str
    start: int
    end: int


@traced
@dataclass(slots=True)
class EntryClip(Event):
    """The entry [start, end) split at ``at``."""

    kind: ClassVar[str] = "entry_clip"
    map: str
    start: int
    at: int
    end: int


@traced
@dataclass(slots=True)
class EntryProtect(Event):
    """The entry [start, end) given protection ``prot`` (``r``, ``rw`` or ``rwx``)."""

    kind: ClassVar[str] = "entry_protect"
    map: str
    start: int
    end: int
    prot: str


# -- the pager -----------------------------------------------------------------------


@traced
@dataclass(slots=True)
class IoIssue(Event):
    """A write of ``data`` to page ``obj:pindex`` queued (``sync``: 0 or 1)."""

    kind: ClassVar[str] = "io_issue"
    obj: str
    pindex: int
    data: int
    sync: int
    io: Io = live()  # noqa: RUF009 (a fresh Field per use)


@traced
@dataclass(slots=True)
class IoDone(Event):
    """A write completed (``error``: 1 when the pager failed it)."""

    kind: ClassVar[str] = "io_done"
    obj: str
    pindex: int
    data: int
    error: int
    io: Io = live()  # noqa: RUF009 (a fresh Field per use)


@traced
@dataclass(slots=True)
class Bdwrite(Event):
    """A delayed write (bdwrite): page ``obj:pindex``'s ``data`` went into the file's
    buffer, the page was left clean, and the buffer is dirty until written."""

    kind: ClassVar[str] = "bdwrite"
    obj: str
    pindex: int
    data: int


@traced
@dataclass(slots=True)
class BufWrite(Event):
    """A dirty (delayed-write) buffer of ``obj:pindex`` queued for the disk (bawrite)."""

    kind: ClassVar[str] = "buf_write"
    obj: str
    pindex: int
    buf: BufIo = live()  # noqa: RUF009 (a fresh Field per use)


@traced
@dataclass(slots=True)
class BufDone(Event):
    """A buffer write completed: ``data`` is on disk, or ``error`` is 1."""

    kind: ClassVar[str] = "buf_done"
    obj: str
    pindex: int
    data: int
    error: int
    buf: BufIo = live()  # noqa: RUF009 (a fresh Field per use)


# -- untraced: moments only observers see --------------------------------------------


@dataclass(slots=True)
class MapAccess(Event):
    """The running agent looks at (``lookup``) or changes (``insert``, ``remove``,
    ``clip``) the entry list of ``vm_map``."""

    kind: ClassVar[str] = "map_access"
    vm_map: VmMap
    what: str


@dataclass(slots=True)
class FsyncCall(Event):
    """The running CPU's fsync(2) of ``file`` starts (for the durable rule)."""

    kind: ClassVar[str] = "fsync_call"
    file: str


@dataclass(slots=True)
class FsyncReturn(Event):
    """The running CPU's fsync(2) of ``file`` returns ``ok`` (1) or EIO (0)."""

    kind: ClassVar[str] = "fsync_return"
    file: str
    ok: int


@dataclass(slots=True)
class MsyncErrno(Event):
    """msync(2) turned its clean's ``rv`` into ``result`` (0 or an errno name)."""

    kind: ClassVar[str] = "msync_errno"
    rv: KernReturn
    result: int | str


@dataclass(slots=True)
class PageFreeing(Event):
    """``page`` is about to be freed by the running agent."""

    kind: ClassVar[str] = "page_freeing"
    page: VmPage


@dataclass(slots=True)
class Inactive(Event):
    """vrele dropped the last use reference of file ``obj``'s vnode: VOP_INACTIVE is
    about to take the vnode lock (untraced; the Lock that follows is traced)."""

    kind: ClassVar[str] = "inactive"
    obj: str


@dataclass(slots=True)
class Contract(Event):
    """A locking contract of a primitive was broken by the running code."""

    kind: ClassVar[str] = "contract"
    message: str


@dataclass(slots=True)
class TouchFreed(Event):
    """The running code touched ``what``, a freed ``page``, ``object`` or ``entry``."""

    kind: ClassVar[str] = "touch_freed"
    res: str
    what: Any


@dataclass(slots=True)
class BadReturn(Event):
    """The clean routine under test returned ``rv``, which is no KERN_* code."""

    kind: ClassVar[str] = "bad_return"
    vm_map: VmMap
    rv: Any


@dataclass(slots=True)
class Read(Event):
    """A read of shared state no other event reports (``res`` ``*``: anything)."""

    kind: ClassVar[str] = "read"
    res: str
    name: str


@dataclass(slots=True)
class Woke(Event):
    """The running agent woke from a sleep on ``chan``."""

    kind: ClassVar[str] = "woke"
    chan: Any


# A recorded trace line, as data: (step, agent, kind, args).  Not the event
# object itself: a run being recorded keeps every line, and plain tuples of
# names and numbers are no work for the garbage collector (event objects are).
Recorded = tuple[int, int, str, tuple[Any, ...]]

# What a footprint-aware strategy watches: every traced kind, and the reads and
# wake-ups that are not traced.
WATCHED: tuple[type[Event], ...] = (*TRACED.values(), Read, Woke)


def parse_event(kind: str, args: list[Any]) -> Event:
    """The event a trace line holds.  Raises ``ValueError`` or ``TypeError`` if malformed."""
    cls = TRACED.get(kind)
    if cls is None:
        raise ValueError(f"unknown event kind '{kind}'")
    return cls.from_args(args)
