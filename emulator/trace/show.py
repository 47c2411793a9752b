"""``vmemu show``: a recorded trace as a per-CPU timeline for a terminal.

The table has a step column, one column per agent named in the header (``cpu0``,
``cpu1``, ..., ``disk``) and a last ``holds`` column.  Time runs downwards, one
row per event that matters, in the order the events happened (events of one
step keep their order; a step number is printed on the first row of its step).
An agent's column holds a short phrase for its event (``lock map p0 (x)``,
``busy f:1``, ``write f:1 #4 (sync)``, ``store #5 -> f:0 @0x100000``); the
``holds`` column says, whenever a row changes what an agent holds, everything
that agent holds afterwards (``cpu0: map p0 x, vnode f, busy f:0``).  A page
under write belongs to the disk from the issue until the completion
(``disk: writing f:0``), as the page's shared busy does in the kernel.

By default the timeline is the race, not the bookkeeping:

* scheduling decisions are not shown;
* an object lock taken and dropped without its holder waiting for anything in
  between (and without a violation meanwhile) is not shown, nor is another
  agent's wait for such a lock: those are the short critical sections every
  path takes.  An object lock held across a wait, or still held at the end,
  is shown with its waiters -- that is what a lock-order deadlock looks like;
* a system call that needs no fault shows as its effect only (``store #5 ->
  f:0``), the page-in of a fresh page as one row, an msync and its inner clean
  call and return as one row each, the disk's completion with its unbusy.

``--all`` shows every event, one row each, scheduling decisions included.

Violations are banners spanning the width (``>>> VIOLATION lost_store at step
123 (cpu0, cpu1): ...``) after a row that marks the involved agents' columns;
rows touching a store the message names (``store #5``) carry a ``*`` after
their step.  Cells are cut with an ellipsis, never wrapped; only banners and
the header and legend lines wrap.  Colour is the caller's choice
(:func:`use_color`: a TTY without ``NO_COLOR``).  The text depends on the trace
and the options only, so the same trace always shows the same.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from emulator.kern.syscalls import SYSCALLS, Syscall, call_phrases
from emulator.trace.reader import Trace

__all__ = ["MIN_WIDTH", "default_width", "render", "unicode_ok", "use_color"]

MIN_WIDTH = 40  # narrowest table --width accepts
DEFAULT_MIN_WIDTH = 80  # the terminal's width is taken, but never below this
PAGE_SHIFT = 12  # emulator.kern.param.PAGE_SHIFT; a trace's vpn -> address

# ANSI styles, used only when colour is on.
_STYLES = {
    "bold": "\x1b[1m",
    "dim": "\x1b[2m",
    "red": "\x1b[31m",
    "bad": "\x1b[1;31m",
    "alarm": "\x1b[1;37;41m",
    "wait": "\x1b[33m",
    "io": "\x1b[36m",
    "store": "\x1b[1m",
    "lock": "\x1b[35m",
}
_RESET = "\x1b[0m"

# Holding ranks: the lock order, so a holds list reads map -> vnode -> object -> page.
_RANK = {"map": 0, "vnode": 1, "object": 2, "page": 3}
_SHORT = {"map": "map", "vnode": "vnode", "object": "obj"}


def use_color(stream: TextIO) -> bool:
    """Colour for ``stream``: only a TTY, and never with ``NO_COLOR`` set or ``TERM=dumb``."""
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def default_width() -> int:
    """The terminal's width, at least 80 columns."""
    return max(DEFAULT_MIN_WIDTH, shutil.get_terminal_size((DEFAULT_MIN_WIDTH, 24)).columns)


def unicode_ok(stream: TextIO) -> bool:
    """Whether ``stream`` can take the box-drawing rules and the ellipsis."""
    try:
        "…│─·".encode(getattr(stream, "encoding", None) or "ascii")
    except (LookupError, UnicodeEncodeError):
        return False
    return True


# -- text helpers ----------------------------------------------------------------------


def _clean(text: str) -> str:
    """Printable text only: a trace's names never reach the terminal as control codes."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _hex(value: Any) -> str:
    return hex(value) if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _dict(value: Any) -> dict[str, Any]:
    """``value`` if a trace gave a JSON object there, else an empty one."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _page(obj: Any, pindex: Any) -> str:
    return f"{obj}:{pindex}"


def _store_id(value: Any) -> str:
    return f"#{value}"


def _ids(message: str) -> set[int]:
    """The store ids a violation message names (``store #5``), never #0 (initial contents)."""
    return {int(m) for m in re.findall(r"#(\d+)", message) if int(m) > 0}


# -- what each agent holds -------------------------------------------------------------


@dataclass
class _State:
    """What the events so far say each agent holds, waits for and is running."""

    agents: list[str]
    disk: int
    holds: dict[int, dict[tuple[int, str], str]] = field(default_factory=dict)
    waiting: dict[int, list[Any]] = field(default_factory=dict)  # the wait's args
    running: dict[int, str] = field(default_factory=dict)
    returned: dict[int, int] = field(default_factory=dict)
    ptes: dict[tuple[str, int], str] = field(default_factory=dict)  # (map, vpn) -> page
    current: int = -1  # the agent of the event being phrased

    def held(self, aid: int) -> dict[tuple[int, str], str]:
        return self.holds.setdefault(aid, {})

    def snapshot(self, aid: int) -> tuple[str, ...]:
        return tuple(label for _, label in sorted(self.held(aid).items()))

    def describe(self, aid: int) -> str:
        return ", ".join(self.snapshot(aid)) or "nothing"

    def holders(self, key: tuple[int, str]) -> str:
        """Who holds ``key``, and how for a map lock: `` (cpu1)``, `` (s: cpu1,cpu2)``."""
        who, modes = [], set()
        for aid in sorted(self.holds):
            label = self.holds[aid].get(key)
            if label is not None:
                who.append(self.name(aid))
                modes.add(label.rsplit(" ", 1)[-1])
        if not who:
            return ""
        if key[0] == _RANK["map"]:
            return f" ({'/'.join(sorted(modes))}: {','.join(who)})"
        return f" ({','.join(who)})"

    def name(self, aid: int) -> str:
        return self.agents[aid] if 0 <= aid < len(self.agents) else "harness"

    def drop_page(self, page: str, prefer: int | None) -> None:
        """Release ``page``'s busy: ``prefer``'s if it holds it, else the first holder's."""
        key = (_RANK["page"], page)
        if prefer is not None and key in self.held(prefer):
            del self.held(prefer)[key]
            return
        for aid in sorted(self.holds):
            if key in self.holds[aid]:
                del self.holds[aid][key]
                return

    def apply(self, ev: dict[str, Any]) -> None:
        """Advance the state past ``ev``.  Unknown or malformed events change nothing."""
        kind, aid, a = ev["event"], ev["cpu"], ev["args"]
        with contextlib.suppress(IndexError, TypeError, ValueError):
            self._apply(kind, aid, a)

    def _apply(self, kind: str, aid: int, a: list[Any]) -> None:
        if kind != "sched" and kind != "wait":
            self.waiting.pop(aid, None)
        if kind == "lock":
            lkind, name, mode = str(a[0]), str(a[1]), str(a[2])
            label = f"{_SHORT.get(lkind, lkind)} {name}" + (f" {mode}" if lkind == "map" else "")
            self.held(aid)[(_RANK.get(lkind, 2), f"{lkind} {name}")] = label
        elif kind == "unlock":
            self.held(aid).pop((_RANK.get(str(a[0]), 2), f"{a[0]} {a[1]}"), None)
        elif kind == "busy":
            page = _page(a[0], a[1])
            self.held(aid)[(_RANK["page"], page)] = ("busy " if a[2] == "x" else "sbusy ") + page
        elif kind == "alloc" and aid >= 0:  # vm_page_alloc returns the page exclusive busy
            page = _page(a[0], a[1])
            self.held(aid)[(_RANK["page"], page)] = "busy " + page
        elif kind == "unbusy":
            self.drop_page(_page(a[0], a[1]), aid)
        elif kind == "io_issue":  # the issuer's busy becomes the write's (shared, the disk's)
            page = _page(a[0], a[1])
            self.held(aid).pop((_RANK["page"], page), None)
            self.held(self.disk)[(_RANK["page"], page)] = "writing " + page
        elif kind == "free":
            page = _page(a[0], a[1])
            for aid2 in list(self.holds):
                self.holds[aid2].pop((_RANK["page"], page), None)
        elif kind == "wait":
            self.waiting[aid] = a
        elif kind == "call":
            self.running[aid] = _call_text(a)
        elif kind == "ret":
            self.running.pop(aid, None)
            self.returned[aid] = self.returned.get(aid, 0) + 1
        elif kind == "pte":
            self.ptes[(str(a[0]), int(a[1]))] = _page(a[2], a[3])
        elif kind == "pte_remove":
            for key in [k for k in self.ptes if k[0] == str(a[0]) and a[1] <= k[1] < a[2]]:
                del self.ptes[key]
        elif kind == "remove_all":
            page = _page(a[0], a[1])
            for key in [k for k, v in self.ptes.items() if v == page]:
                del self.ptes[key]

    def wait_phrase(self, a: list[Any]) -> str:
        """``wait vnode f (cpu0)``: what blocks, and who holds it now."""
        if len(a) < 2:
            return _generic("wait", a)
        kind, name = str(a[0]), str(a[1])
        if kind == "io":
            return f"wait write {name} (disk)"
        if kind == "busy":
            return f"wait busy {name}" + self.holders((_RANK["page"], name))
        key = (_RANK.get(kind, 2), f"{kind} {name}")
        return f"wait {_SHORT.get(kind, kind)} {name}" + self.holders(key)


# -- phrases ---------------------------------------------------------------------------


def _call_text(a: list[Any]) -> str:
    return call_phrases(a)[0]


def _syscall(a: list[Any]) -> Syscall | None:
    """The table's row for a ``call`` event's args, if the trace names a known call."""
    return SYSCALLS.get(a[0]) if a and isinstance(a[0], str) else None


Text = tuple[str, ...]  # a cell's phrasings, longest first: the first that fits is shown


def _phrase(ev: dict[str, Any], state: _State) -> Text:
    """The phrase for one event, as the state stood just before it."""
    kind, a = ev["event"], ev["args"]
    state.current = ev["cpu"]
    try:
        out = _PHRASES[kind](a, state) if kind in _PHRASES else _generic(kind, a)
    except (IndexError, TypeError, ValueError, KeyError):
        out = _generic(kind, a)
    return (out,) if isinstance(out, str) else out


def _generic(kind: str, a: list[Any]) -> str:
    return " ".join([kind, *(str(x) for x in a)])


def _lock(a: list[Any], _s: _State) -> str:
    kind = str(a[0])
    return f"lock {_SHORT.get(kind, kind)} {a[1]}" + (f" ({a[2]})" if kind == "map" else "")


def _wait(a: list[Any], s: _State) -> Text:
    long = s.wait_phrase(a)
    return long, long.split(" (")[0]


def _store(a: list[Any], s: _State) -> Text:
    """``store #5 -> f:0 @0x100000``; ``[busy cpu0]`` when it lands in a page others busy."""
    short = f"store {_store_id(a[4])} -> {_page(a[2], a[3])}"
    key = (_RANK["page"], _page(a[2], a[3]))
    busy = [("write" if aid == s.disk else s.name(aid)) for aid in sorted(s.holds)
            if key in s.holds[aid] and aid != s.current]
    if not busy:
        return f"{short} @{_hex(a[1])}", short
    tag = f" [busy {','.join(busy)}]"
    return f"{short} @{_hex(a[1])}{tag}", short + tag, short


def _load(a: list[Any], s: _State) -> Text:
    page = s.ptes.get((str(a[0]), int(a[1]) >> PAGE_SHIFT))
    short = f"load {_store_id(a[2])}" + (f" <- {page}" if page else "")
    return f"{short} @{_hex(a[1])}", short


def _clean_call(a: list[Any]) -> Text:
    flags = ("sync" if a[3] else "async") + (",inval" if a[4] else "")
    return f"clean {a[0]} [{_hex(a[1])}, {_hex(a[2])}) {flags}", f"clean {flags}"


def _va(vpn: Any) -> str:
    return _hex(int(vpn) << PAGE_SHIFT)


def _dirty_flag(value: Any) -> str:
    return "dirty" if value else "clean"


_PHRASES: dict[str, Callable[[list[Any], _State], str | Text]] = {
    "call": lambda a, s: call_phrases(a),
    "ret": lambda a, s: f"{a[0]} -> {a[1]}",
    "clean_call": lambda a, s: _clean_call(a),
    "clean_return": lambda a, s: f"clean -> {a[1]}",
    "lock": _lock,
    "unlock": lambda a, s: f"unlock {_SHORT.get(str(a[0]), a[0])} {a[1]}",
    "wait": _wait,
    "busy": lambda a, s: ("busy " if a[2] == "x" else "sbusy ") + _page(a[0], a[1]),
    "unbusy": lambda a, s: f"unbusy {_page(a[0], a[1])}",
    "alloc": lambda a, s: f"alloc {_page(a[0], a[1])}",
    "pagein": lambda a, s: f"pagein {_page(a[0], a[1])} ({_store_id(a[2])})",
    "dirty": lambda a, s: (f"fault: dirty {_page(a[0], a[1])} gen {a[2]}",
                           f"dirty {_page(a[0], a[1])} gen {a[2]}"),
    "writeable": lambda a, s: f"writeable {a[0]} gen {a[1]}",
    "pte": lambda a, s: (f"pte {_va(a[1])} -> {_page(a[2], a[3])} {a[4]}",
                         f"pte {_page(a[2], a[3])} {a[4]}"),
    "pte_remove": lambda a, s: (f"unmap ptes [{_va(a[1])}, {_va(a[2])}) ({a[3]})",
                                f"unmap {a[3]} ptes"),
    "remove_write": lambda a, s: (f"write-protect {_page(a[0], a[1])} ({_dirty_flag(a[2])})",
                                  f"wprotect {_page(a[0], a[1])} {_dirty_flag(a[2])}"),
    "remove_all": lambda a, s: (f"unmap all {_page(a[0], a[1])} ({_dirty_flag(a[2])})",
                                f"unmap {_page(a[0], a[1])} {_dirty_flag(a[2])}"),
    "io_issue": lambda a, s: (f"write {_page(a[0], a[1])} {_store_id(a[2])} "
                              + ("(sync)" if a[3] else "(async)"),
                              f"write {_page(a[0], a[1])} {_store_id(a[2])}"),
    "io_done": lambda a, s: (f"write FAILED {_page(a[0], a[1])} {_store_id(a[2])}" if a[3]
                             else (f"write done {_page(a[0], a[1])} {_store_id(a[2])}",
                                   f"done {_page(a[0], a[1])} {_store_id(a[2])}")),
    "free": lambda a, s: f"free {_page(a[0], a[1])}" + (" (dirty!)" if a[2] else ""),
    "store": _store,
    "load": _load,
    "entry_insert": lambda a, s: (f"entry + [{_hex(a[1])}, {_hex(a[2])})",
                                  f"entry + {_hex(a[1])}"),
    "entry_remove": lambda a, s: (f"entry - [{_hex(a[1])}, {_hex(a[2])})",
                                  f"entry - {_hex(a[1])}"),
    "entry_clip": lambda a, s: (f"clip [{_hex(a[1])}, {_hex(a[3])}) at {_hex(a[2])}",
                                f"clip at {_hex(a[2])}"),
    "clean_generation": lambda a, s: f"clean gen {a[0]} = {a[1]}",
    "object_new": lambda a, s: f"new object {a[0]}",
    "object_free": lambda a, s: f"free object {a[0]}",
    "wire": lambda a, s: f"wire {_page(a[0], a[1])} ({a[2]})",
    "unwire": lambda a, s: f"unwire {_page(a[0], a[1])} ({a[2]})",
    "cow": lambda a, s: f"cow {_page(a[0], a[1])} ({_store_id(a[2])})",
    "sched": lambda a, s: f"sched -> {s.name(int(a[0]))}",
}

# A cell's colour, by event kind.
_KIND_STYLE = {
    "wait": "wait", "io_issue": "io", "io_done": "io", "store": "store", "lock": "lock",
    "unlock": "lock", "sched": "dim", "violation": "alarm",
}


# -- choosing and merging rows ---------------------------------------------------------


def _quiet_object_locks(events: Sequence[dict[str, Any]]) -> set[int]:
    """Indices of object lock, unlock and wait events that are bookkeeping.

    An object lock hold is kept if its holder waits for anything while holding
    it, a violation fires meanwhile, or it is still held at the end; a wait for
    an object lock is kept if the hold it waits on is kept or it never ends.
    """
    open_holds: dict[tuple[int, str], int] = {}  # (holder, object) -> lock index
    owner: dict[str, int] = {}  # object -> the lock index of its current hold
    keep: set[int] = set()  # lock indices of kept holds
    pairs: dict[int, int] = {}  # lock index -> unlock index
    waits: list[tuple[int, int, str, int | None]] = []  # (index, waiter, object, hold)
    acquired_after: dict[tuple[int, str], int] = {}  # (agent, object) -> last lock index
    for i, ev in enumerate(events):
        kind, aid, a = ev["event"], ev["cpu"], ev["args"]
        is_object = len(a) >= 2 and a[0] == "object"
        if kind == "lock" and is_object:
            name = str(a[1])
            open_holds[(aid, name)] = i
            owner[name] = i
            acquired_after[(aid, name)] = i
        elif kind == "unlock" and is_object:
            name = str(a[1])
            taken = open_holds.pop((aid, name), None)
            if taken is not None:
                pairs[taken] = i
            owner.pop(name, None)
        elif kind == "wait":
            keep.update(at for (holder, _), at in open_holds.items() if holder == aid)
            if is_object:
                waits.append((i, aid, str(a[1]), owner.get(str(a[1]))))
        elif kind == "violation":
            keep.update(open_holds.values())
    keep.update(open_holds.values())
    quiet: set[int] = set()
    for start, end in pairs.items():
        if start not in keep:
            quiet.update((start, end))
    for i, aid, name, hold in waits:
        resolved = acquired_after.get((aid, name), -1) > i
        if resolved and (hold is None or hold not in keep):
            quiet.add(i)
    return quiet


@dataclass
class _Row:
    step: int
    column: int  # agent index; -1: the harness column
    text: Text
    kind: str
    events: list[int]  # trace indices the row stands for
    holds: Text = ("",)
    mark: bool = False
    violation: dict[str, Any] | None = None


def _next_of_agent(events: Sequence[dict[str, Any]]) -> list[int | None]:
    """For each event, the index of the same agent's next non-sched event."""
    out: list[int | None] = [None] * len(events)
    last: dict[int, int] = {}
    for i in range(len(events) - 1, -1, -1):
        ev = events[i]
        if ev["event"] == "sched":
            continue
        out[i] = last.get(ev["cpu"])
        last[ev["cpu"]] = i
    return out


def _prev_of_agent(events: Sequence[dict[str, Any]]) -> list[int | None]:
    out: list[int | None] = [None] * len(events)
    last: dict[int, int] = {}
    for i, ev in enumerate(events):
        if ev["event"] == "sched":
            continue
        out[i] = last.get(ev["cpu"])
        last[ev["cpu"]] = i
    return out


def _same_page(a: list[Any], b: list[Any]) -> bool:
    return len(a) >= 2 and len(b) >= 2 and a[0] == b[0] and a[1] == b[1]


@dataclass
class _Plan:
    """How the default view shows the events: which to hide, which to join."""

    hidden: set[int]
    joined: dict[int, int]  # first index -> the index it absorbs (shown in one row)
    calls_that_fault: set[int]


def _plan(events: Sequence[dict[str, Any]], show_all: bool) -> _Plan:
    if show_all:
        return _Plan(set(), {}, set())
    hidden = _quiet_object_locks(events)
    joined: dict[int, int] = {}
    faults: set[int] = set()
    nxt, prv = _next_of_agent(events), _prev_of_agent(events)
    for i, ev in enumerate(events):
        kind, a = ev["event"], ev["args"]
        n = nxt[i]
        after = events[n] if n is not None else None
        if kind == "sched" or (ev["cpu"] < 0 and kind != "violation"):
            hidden.add(i)  # the harness: decisions, and the machine built before step 0
        elif kind == "call" and (call := _syscall(a)) is not None and call.memory_access:
            if after is not None and after["event"] == a[0]:
                hidden.add(i)  # no fault: the store or load itself says it all
            else:
                faults.add(i)
        elif kind == "call" and (call := _syscall(a)) is not None and call.reaches_clean:
            if after is not None and after["event"] == "clean_call" and n is not None:
                joined[i] = n
                hidden.add(n)
        elif kind == "clean_return":
            if after is not None and after["event"] == "ret" and n is not None:
                joined[i] = n
                hidden.add(n)
        elif kind == "alloc":
            if (after is not None and after["event"] == "pagein" and n is not None
                    and _same_page(a, after["args"])):
                joined[i] = n  # one row: the page-in (the alloc busies the page)
                hidden.add(n)
        elif kind == "io_done":
            if (after is not None and after["event"] == "unbusy" and n is not None
                    and _same_page(a, after["args"]) and after["step"] == ev["step"]):
                joined[i] = n
                hidden.add(n)
        elif kind == "ret" and len(a) >= 2:
            p = prv[i]
            before = events[p] if p is not None else None
            call = _syscall(a)
            if call is not None and call.memory_access and before is not None and (
                    before["event"] == a[0]):
                hidden.add(i)  # the store or load itself showed what it did
    return _Plan(hidden, joined, faults)


def _ret_text(clean_ret: dict[str, Any], ret: dict[str, Any]) -> Text:
    """``msync -> 0``; the clean's own code too when the call is not ``clean`` itself."""
    try:
        op, value, code = ret["args"][0], ret["args"][1], clean_ret["args"][1]
    except (IndexError, TypeError):
        return (_generic(ret["event"], ret["args"]),)
    if op == "clean" or str(value) == str(code) or str(code) == "KERN_SUCCESS":
        return (f"{op} -> {value}",)
    return f"{op} -> {value} ({code})", f"{op} -> {value}"


# -- the table -------------------------------------------------------------------------


@dataclass
class _Glyphs:
    sep: str
    rule: str
    ellipsis: str


def _clip(alts: Text, width: int, g: _Glyphs) -> str:
    """The first phrasing that fits ``width``, else the shortest cut with an ellipsis."""
    text = _clean(alts[-1])
    for alt in alts:
        if len(alt) <= width:
            text = _clean(alt)
            break
    if width <= 0:
        return ""
    if len(text) <= width:
        return text.ljust(width)
    if width <= len(g.ellipsis):
        return text[:width]
    return text[: width - len(g.ellipsis)] + g.ellipsis


def _cap(natural: list[int], floor: list[int], avail: int) -> list[int]:
    """Widths between ``floor`` and ``natural``: the widest cut to one common cap."""
    lo, hi = 0, max(natural)
    while lo < hi:  # the largest cap whose columns fit
        mid = (lo + hi + 1) // 2
        if sum(max(f, min(n, mid)) for n, f in zip(natural, floor, strict=True)) <= avail:
            lo = mid
        else:
            hi = mid - 1
    widths = [max(f, min(n, lo)) for n, f in zip(natural, floor, strict=True)]
    spare = avail - sum(widths)
    for i, n in enumerate(natural):  # hand the remainder to the cut columns, left first
        if spare <= 0:
            break
        if n > widths[i]:
            widths[i] += 1
            spare -= 1
    return widths


def _fit(long: list[int], mid: list[int], short: list[int], avail: int) -> list[int]:
    """Column widths for ``avail`` characters.

    Every column at its longest phrasing if that fits; else at least at
    ``mid`` (its shortest phrasing, or more for a column that matters), the
    rest shared out; else at least at its shortest phrasing; else the
    shortest phrasings cut to a common cap.
    """
    if sum(long) <= avail:
        return list(long)
    if sum(mid) <= avail:
        return _cap(long, mid, avail)
    if sum(short) <= avail:
        return _cap(mid, short, avail)
    return _cap(short, [1] * len(short), avail)


def _diff(name: str, before: tuple[str, ...], after: tuple[str, ...]) -> str:
    """``cpu0 -busy f:0 +vnode f``: what a row changed in what ``name`` holds."""
    gone = [f"-{x}" for x in before if x not in after]
    new = [f"+{x}" for x in after if x not in before]
    return " ".join([name, *gone, *new])


class _Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, style: str) -> str:
        if not self.color or not style or not text.strip():
            return text
        return f"{_STYLES[style]}{text}{_RESET}"


def _violations(trace: Trace) -> list[dict[str, Any]]:
    """The trace's violations, each with its cpus; from the footer when there is one."""
    out = []
    for v in trace.violations:
        if not isinstance(v, dict):
            continue
        message = _clean(str(v.get("message", "")))
        cpus = v.get("cpus")
        if not isinstance(cpus, list):
            cpus = []
        named = [int(c) for c in re.findall(r"\bcpu(\d+)", message)]
        cpus = sorted({c for c in [*cpus, *named] if isinstance(c, int)})
        step = v.get("step")
        out.append({"rule": _clean(str(v.get("rule", "?"))), "message": message,
                     "step": step if isinstance(step, int) else None, "cpus": cpus})
    return out


def _header_lines(trace: Trace, violations: list[dict[str, Any]], rows: int,
                  show_all: bool) -> list[str]:
    h = trace.header
    params = _dict(h.get("params"))
    ptext = " ".join(f"{k}={v}" for k, v in sorted(params.items()))
    strategy = h.get("strategy", {}).get("name", "?") if isinstance(h.get("strategy"),
                                                                      dict) else "?"
    lines = [
        f"vmemu show {trace.path}",
        f"workload {h.get('workload', '?')}" + (f" ({ptext})" if ptext else "")
        + f" | profile {h.get('profile')} | variant {h.get('variant')} | seed {h.get('seed')}"
        + f" | strategy {strategy}",
    ]
    events = trace.events
    last_step = events[-1]["step"] if events else 0
    if trace.footer is None:
        outcome = (f"outcome: unknown - a partial trace (no footer), cut after step "
                   f"{last_step}")
        if violations:
            outcome += "; so far: " + ", ".join(
                f"{v['rule']} at step {v['step']}" for v in violations)
    else:
        outcome = f"outcome: {trace.footer.get('outcome', '?')}"
        if violations:
            outcome += " - " + ", ".join(f"{v['rule']} at step {v['step']}" for v in violations)
        if not trace.digest_ok:
            outcome += " (digest mismatch: the trace was edited)"
    shown = ("every event" if show_all
             else "hidden: scheduling, brief object locks; --all shows them")
    lines.append(f"{outcome} | {last_step} steps, {len(events)} events, {rows} rows "
                 f"({shown})")
    spec = _dict(h.get("spec"))
    procs = _dict(spec.get("processes"))
    maps = []
    for pname in sorted(procs):
        for m in _list(_dict(procs[pname]).get("mappings")):
            if isinstance(m, dict):
                maps.append(_mapping_text(pname, m))
    if maps:
        lines.append("mappings: " + "; ".join(maps))
    cpus = _list(spec.get("cpus"))
    for i, cpu in enumerate(cpus):
        if not isinstance(cpu, dict):
            continue
        program = _list(cpu.get("program"))
        ops = [_call_text(op) for op in program if isinstance(op, list) and op]
        lines.append(f"cpu{i} on {cpu.get('process', '?')}: " + ", ".join(ops))
    return lines


def _mapping_text(pname: str, m: dict[str, Any]) -> str:
    try:
        start = int(m["addr"], 0) if isinstance(m["addr"], str) else int(m["addr"])
        pages = int(m.get("pages", 0))
        what = (f"{m['file']}:{int(m.get('offset', 0))}.." if "file" in m
                else "submap" if m.get("submap") else "anon")
        extra = (" " + str(m.get("prot", "rw"))) + (" wired" if m.get("wired") else "")
        return f"{pname} [{start:#x}, {start + (pages << PAGE_SHIFT):#x}) {what}{extra}"
    except (KeyError, TypeError, ValueError):
        return f"{pname} ?"


def render(trace: Trace, width: int, show_all: bool = False, color: bool = False,
           unicode: bool = True) -> str:
    """Return the timeline of ``trace`` as text no line of which is wider than ``width``."""
    g = _Glyphs(" │ ", "─", "…") if unicode else _Glyphs(" | ", "-", "...")
    paint = _Painter(color)
    agents = [_clean(str(a)) for a in trace.header.get("agents", [])]
    disk = agents.index("disk") if "disk" in agents else len(agents) - 1
    events = trace.events
    violations = _violations(trace)
    marked_ids: set[int] = set()
    for v in violations:
        marked_ids |= _ids(v["message"])

    # Build the rows, advancing the state as the events go.
    plan = _plan(events, show_all)
    state = _State(agents, disk)
    rows: list[_Row] = []
    pending = list(violations)  # matched to violation events, the rest go last
    absorbed = set(plan.joined.values())
    for i, ev in enumerate(events):
        kind, aid = ev["event"], ev["cpu"]
        column = aid if 0 <= aid < len(agents) else -1
        if kind == "sched" and column == -1 and ev["args"]:
            chosen = ev["args"][0]
            column = chosen if isinstance(chosen, int) and 0 <= chosen < len(agents) else -1
        if kind == "violation":
            match = _take_violation(pending, ev)
            before = {a: state.describe(a) for a in range(len(agents))}
            state.apply(ev)
            rows.append(_Row(ev["step"], column, ("",), kind, [i], violation={
                **match, "held": before}))
            continue
        if i in plan.hidden and i not in absorbed:
            state.apply(ev)
            continue
        if i in absorbed:
            continue  # applied with the row that absorbed it
        text = _phrase(ev, state)
        if kind == "call" and i in plan.calls_that_fault:
            args = ev["args"][1:]
            text = (text[0] + ": fault", f"fault {args[0] if args else '?'}")
        before_holds = {a: state.snapshot(a) for a in range(len(agents))}
        state.apply(ev)
        idx = [i]
        j = plan.joined.get(i)
        if j is not None:
            if kind == "clean_return":
                text = _ret_text(ev, events[j])
            elif kind == "alloc":
                text = _phrase(events[j], state)
            state.apply(events[j])  # an io_done's unbusy shows in the holds column
            idx.append(j)
        changed = [a for a in before_holds if state.snapshot(a) != before_holds[a]]
        joint = " · " if unicode else " ; "
        full = joint.join(f"{state.name(a)}: {state.describe(a)}" for a in changed)
        diff = joint.join(_diff(state.name(a), before_holds[a], state.snapshot(a))
                          for a in changed)
        holds_text = (full, diff) if changed else ("",)
        mark = any(_mentions(events[x], marked_ids) for x in idx)
        rows.append(_Row(ev["step"], column, text, kind, idx, holds_text, mark))
    for v in pending:  # deadlock, starvation, crash: no event, they end the run
        last = events[-1]["step"] if events else 0
        step = v["step"] if v["step"] is not None else last
        rows.append(_Row(step, -1, ("",), "violation", [], violation={
            **v, "held": {a: state.describe(a) for a in range(len(agents))}}))

    # Columns: step, the agents (the harness if it has rows), holds.
    columns = list(range(len(agents)))
    if any(r.column == -1 and r.violation is None for r in rows):
        columns.append(-1)
    involved = {c for v in violations for c in v["cpus"]}
    spec = _dict(trace.header.get("spec"))
    cpu_specs = _list(spec.get("cpus"))
    titles = []
    for c in columns:
        title = agents[c] if c >= 0 else "harness"
        if 0 <= c < len(cpu_specs) and isinstance(cpu_specs[c], dict):
            title += f" ({_clean(str(cpu_specs[c].get('process', '?')))})"
        if c in involved:
            title += " !"
        titles.append(title)
    holds_title = "holds after the row"
    last_step = max((r.step for r in rows), default=0)
    step_w = max(4, len(str(last_step)) + 1)
    long = [len(t) for t in titles] + [len(holds_title)]
    short = [min(len(t), 6) for t in titles] + [len("holds")]
    for r in rows:
        if r.violation is None:
            k = columns.index(r.column)
            long[k] = max(long[k], max(len(t) for t in r.text))
            short[k] = max(short[k], min(len(t) for t in r.text))
            long[-1] = max(long[-1], len(r.holds[0]))
            short[-1] = max(short[-1], len(r.holds[-1]))
    # What the agents hold matters more than a long phrasing: keep the full lists if can be.
    mid = [*short[:-1], max(short[-1], min(long[-1], 50))]
    avail = width - step_w - len(g.sep) * len(long)
    widths = _fit(long, mid, short, max(avail, len(long)))

    def line(step_text: str, cells: list[tuple[Text, str]], step_style: str = "") -> str:
        parts = [paint(_clean(step_text)[-step_w:].rjust(step_w), step_style)]
        for k, ((text, style), w) in enumerate(zip(cells, widths, strict=True)):
            cell = _clip(text, w, g)
            parts.append(paint(cell.rstrip() if k == len(cells) - 1 else cell, style))
        out = g.sep.join(parts).rstrip()
        return out

    out: list[str] = []
    for h in _header_lines(trace, violations, sum(r.violation is None for r in rows), show_all):
        out.extend(_wrap(h, width, "    "))
    out.append("")
    head_cells = [((t,), "bad" if c in involved else "bold")
                  for t, c in zip(titles, columns, strict=True)]
    out.append(line("step", [*head_cells, ((holds_title, "holds"), "bold")], "bold"))
    out.append(paint(g.rule * min(width, step_w + sum(widths) + len(g.sep) * len(widths)),
                     "dim"))
    prev_step: int | None = None
    for r in rows:
        if r.violation is not None:
            out.extend(_violation_lines(r, columns, agents, line, paint, width))
            prev_step = None
            continue
        step_text = (str(r.step) if r.step != prev_step else "") + ("*" if r.mark else " ")
        prev_step = r.step
        cells: list[tuple[Text, str]] = [(("",), "")] * len(columns)
        cells[columns.index(r.column)] = (r.text, _cell_style(r))
        out.append(line(step_text, [*cells, (r.holds, "")], "bad" if r.mark else "dim"))
    out.append(paint(g.rule * min(width, step_w + sum(widths) + len(g.sep) * len(widths)),
                     "dim"))
    out.extend(_end_lines(trace, state, agents, violations, width))
    out.extend(_wrap(_legend(marked_ids, bool(violations), show_all), width, "        "))
    return "\n".join(_fit_line(s, width) for s in out) + "\n"


def _fit_line(text: str, width: int) -> str:
    """The safety net: never wider than ``width`` visible columns (ANSI codes free)."""
    visible = re.sub(r"\x1b\[[0-9;]*m", "", text)
    if len(visible) <= width:
        return text
    return visible[:width]


def _wrap(text: str, width: int, indent: str) -> list[str]:
    return textwrap.wrap(_clean(text), width, subsequent_indent=indent,
                         break_on_hyphens=False) or [""]


def _take_violation(pending: list[dict[str, Any]], ev: dict[str, Any]) -> dict[str, Any]:
    """The footer's record of a violation event (for its cpus), removed from ``pending``."""
    a = ev["args"]
    rule = _clean(str(a[0])) if a else "?"
    message = _clean(str(a[1])) if len(a) > 1 else ""
    for k, v in enumerate(pending):
        if v["rule"] == rule and v["message"] == message:
            return pending.pop(k)
    named = [int(c) for c in re.findall(r"\bcpu(\d+)", message)]
    cpus = sorted({*named, *([ev["cpu"]] if ev["cpu"] >= 0 else [])})
    return {"rule": rule, "message": message, "step": ev["step"], "cpus": cpus}


def _mentions(ev: dict[str, Any], ids: set[int]) -> bool:
    if not ids:
        return False
    a = ev["args"]
    where = {"store": 4, "load": 2, "pagein": 2, "io_issue": 2, "io_done": 2, "cow": 2}
    k = where.get(ev["event"])
    return k is not None and len(a) > k and isinstance(a[k], int) and a[k] in ids


def _cell_style(r: _Row) -> str:
    text = r.text[0]
    if r.kind == "free" and "dirty" in text:
        return "bad"
    if r.kind == "ret" and "->" in text and not text.endswith(("-> 0", "KERN_SUCCESS")):
        return "bad"
    return _KIND_STYLE.get(r.kind, "")


def _violation_lines(r: _Row, columns: list[int], agents: list[str],
                     line: Callable[..., str], paint: _Painter, width: int) -> list[str]:
    v = r.violation
    assert v is not None
    cpus = v["cpus"]
    cells = [((f"!! {v['rule']}", "!!"), "alarm") if c in cpus else (("",), "")
             for c in columns]
    step = v["step"] if v["step"] is not None else r.step
    out = [line(f"{step} ", [*cells, (("",), "")], "bad")]
    who = ", ".join(agents[c] if 0 <= c < len(agents) else f"cpu{c}" for c in cpus)
    banner = (f">>> VIOLATION {v['rule']} at step {v['step']}" + (f" ({who})" if who else "")
              + f": {v['message']}")
    out.extend(paint(s, "bad") for s in _wrap(banner, width, "    "))
    held = v.get("held", {})
    held_text = "    held then: " + "; ".join(
        f"{agents[a]}: {held[a]}" for a in sorted(held) if held[a] != "nothing") if held else ""
    if held_text.strip() and not held_text.endswith("then: "):
        out.extend(_wrap(held_text, width, "    "))
    return out


def _end_lines(trace: Trace, state: _State, agents: list[str],
               violations: list[dict[str, Any]], width: int) -> list[str]:
    """Where each agent stood when the trace ended: what it ran, held and waited for."""
    if trace.footer is not None and trace.footer.get("outcome") == "ok":
        return []
    last = trace.events[-1]["step"] if trace.events else 0
    out = [f"at the end of the trace (step {last}):"]
    spec = _dict(trace.header.get("spec"))
    cpu_specs = _list(spec.get("cpus"))
    name_w = max((len(a) for a in agents), default=4)
    for aid, name in enumerate(agents):
        bits = []
        if aid in state.running:
            bits.append(f"in {state.running[aid]}")
        elif aid < len(cpu_specs) and isinstance(cpu_specs[aid], dict):
            program = cpu_specs[aid].get("program")
            total = len(program) if isinstance(program, list) else 0
            done = state.returned.get(aid, 0)
            bits.append("done" if done >= total else f"{done} of {total} calls done")
        holds = state.describe(aid)
        if holds != "nothing":
            bits.append(f"holds {holds}")
        if aid in state.waiting:
            bits.append(state.wait_phrase(state.waiting[aid]).replace("wait ", "waits for ", 1))
        if not bits:
            bits.append("idle")
        out.extend(_wrap(f"  {name.ljust(name_w)}  " + "; ".join(bits), width,
                         " " * (name_w + 6)))
    return out


def _legend(marked: set[int], violations: bool, show_all: bool) -> str:
    parts = [
        "legend: f:1 = page 1 of file f",
        "#N = the value of store N (#0: the initial contents)",
        "x/s = exclusive/shared",
        "busy/sbusy = page busied exclusive/shared",
        "wait X (cpuN) = blocked on X, which cpuN holds",
        "[busy cpuN] = a store into a page another agent holds busy",
        "writing f:0 = a write in flight keeps the page busy",
        "holds = all an agent holds after a row that changed it (+X/-X: what the row "
        "changed, when the list does not fit)",
    ]
    if violations:
        parts.append("! = a CPU the violation names")
    if marked:
        parts.append("* = a row with store " + ", ".join(f"#{n}" for n in sorted(marked))
                     + " (named by the violation)")
    if not show_all:
        parts.append("--all shows every event")
    return "; ".join(parts)
