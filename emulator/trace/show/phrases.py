"""One event as one cell: the table from event kind to its phrasing, colour and store id.

Every event class the timeline knows has one entry in :data:`KINDS`: how to
phrase it (longest first, shorter forms for narrow columns), the colour of its
cell, and which argument holds a store id (a row that touches a store the
violation names is starred).  A new event kind is one new entry; a kind with
no entry shows as its name and raw arguments, as does an event whose
arguments are not the shape its entry expects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulator.kern import events as ev_
from emulator.kern.param import PAGE_SHIFT
from emulator.trace.reader import Entry
from emulator.trace.show import calls
from emulator.trace.show.state import SHORT, State, page_key
from emulator.trace.show.text import Text, generic, hex_text, page, store_id

Phrasing = Callable[[Any, State], str | Text]  # (the typed event, state before it)


@dataclass(frozen=True, slots=True)
class Kind:
    """How the timeline shows one event kind."""

    phrase: Phrasing
    style: str = ""  # the cell's colour: a key of layout.STYLES
    bad: Callable[[str], bool] | None = None  # whether the phrase is bad news (shown red)
    store: str | None = None  # the field that is a store id, if any


def _lock(ev: ev_.Lock, _s: State) -> str:
    kind = str(ev.res)
    return f"lock {SHORT.get(kind, kind)} {ev.name}" + (f" ({ev.mode})" if kind == "map" else "")


def _wait(ev: ev_.Wait, s: State) -> Text:
    long = s.wait_phrase(ev)
    return long, long.split(" (")[0]


def _store(ev: ev_.Store, s: State) -> Text:
    """``store #5 -> f:0 @0x100000``; ``[busy cpu0]`` when it lands in a page others busy."""
    short = f"store {store_id(ev.sid)} -> {page(ev.obj, ev.pindex)}"
    key = page_key(page(ev.obj, ev.pindex))
    busy = [("write" if aid == s.disk else s.name(aid)) for aid in sorted(s.holds)
            if key in s.holds[aid] and aid != s.current]
    if not busy:
        return f"{short} @{hex_text(ev.va)}", short
    tag = f" [busy {','.join(busy)}]"
    return f"{short} @{hex_text(ev.va)}{tag}", short + tag, short


def _load(ev: ev_.Load, s: State) -> Text:
    source = s.ptes.get((str(ev.map), int(ev.va) >> PAGE_SHIFT))
    short = f"load {store_id(ev.value)}" + (f" <- {source}" if source else "")
    return f"{short} @{hex_text(ev.va)}", short


def _va(vpn: Any) -> str:
    return hex_text(int(vpn) << PAGE_SHIFT)


def _dirty_flag(value: Any) -> str:
    return "dirty" if value else "clean"


def _failed_return(text: str) -> bool:
    return "->" in text and not text.endswith(("-> 0", "KERN_SUCCESS"))


def _io_done(e: ev_.IoDone, s: State) -> str | Text:
    if e.error:
        return f"write FAILED {page(e.obj, e.pindex)} {store_id(e.data)}"
    return (f"write done {page(e.obj, e.pindex)} {store_id(e.data)}",
            f"done {page(e.obj, e.pindex)} {store_id(e.data)}")


KINDS: dict[type[ev_.Event], Kind] = {
    ev_.Call: Kind(lambda e, s: calls.call_phrases(e)),
    ev_.Ret: Kind(lambda e, s: calls.ret_phrase(e), bad=_failed_return),
    ev_.CleanCall: Kind(lambda e, s: calls.clean_call_phrases(e)),
    ev_.CleanReturn: Kind(lambda e, s: calls.clean_return_phrase(e)),
    ev_.Lock: Kind(_lock, style="lock"),
    ev_.Unlock: Kind(lambda e, s: f"unlock {SHORT.get(str(e.res), e.res)} {e.name}",
                     style="lock"),
    ev_.Wait: Kind(_wait, style="wait"),
    ev_.Busy: Kind(lambda e, s: ("busy " if e.mode == "x" else "sbusy ") + page(e.obj, e.pindex)),
    ev_.Unbusy: Kind(lambda e, s: f"unbusy {page(e.obj, e.pindex)}"),
    ev_.Alloc: Kind(lambda e, s: f"alloc {page(e.obj, e.pindex)}"),
    ev_.Pagein: Kind(lambda e, s: f"pagein {page(e.obj, e.pindex)} ({store_id(e.data)})",
                     store="data"),
    ev_.Dirty: Kind(lambda e, s: (f"fault: dirty {page(e.obj, e.pindex)} gen {e.generation}",
                                  f"dirty {page(e.obj, e.pindex)} gen {e.generation}")),
    ev_.Writeable: Kind(lambda e, s: f"writeable {e.obj} gen {e.generation}"),
    ev_.PteEnter: Kind(lambda e, s: (f"pte {_va(e.vpn)} -> {page(e.obj, e.pindex)} {e.prot}",
                                     f"pte {page(e.obj, e.pindex)} {e.prot}")),
    ev_.PteRemove: Kind(lambda e, s: (
        f"unmap ptes [{_va(e.start_vpn)}, {_va(e.end_vpn)}) ({e.count})",
        f"unmap {e.count} ptes")),
    ev_.PteProtect: Kind(lambda e, s: (
        f"write-protect ptes [{_va(e.start_vpn)}, {_va(e.end_vpn)}) ({e.count})",
        f"wprotect {e.count} ptes")),
    ev_.RemoveWrite: Kind(lambda e, s: (
        f"write-protect {page(e.obj, e.pindex)} ({_dirty_flag(e.dirty)})",
        f"wprotect {page(e.obj, e.pindex)} {_dirty_flag(e.dirty)}")),
    ev_.RemoveAll: Kind(lambda e, s: (
        f"unmap all {page(e.obj, e.pindex)} ({_dirty_flag(e.dirty)})",
        f"unmap {page(e.obj, e.pindex)} {_dirty_flag(e.dirty)}")),
    ev_.IoIssue: Kind(lambda e, s: (f"write {page(e.obj, e.pindex)} {store_id(e.data)} "
                                    + ("(sync)" if e.sync else "(async)"),
                                    f"write {page(e.obj, e.pindex)} {store_id(e.data)}"),
                      style="io", store="data"),
    ev_.IoDone: Kind(_io_done, style="io", store="data"),
    ev_.Free: Kind(lambda e, s: f"free {page(e.obj, e.pindex)}" + (" (dirty!)" if e.dirty else ""),
                   bad=lambda text: "dirty" in text),
    ev_.Invalid: Kind(lambda e, s: f"invalid {page(e.obj, e.pindex)}"
                      + (" (dirty!)" if e.dirty else ""), bad=lambda text: "dirty" in text),
    ev_.Store: Kind(_store, style="store", store="sid"),
    ev_.Load: Kind(_load, store="value"),
    ev_.EntryInsert: Kind(lambda e, s: (f"entry + [{hex_text(e.start)}, {hex_text(e.end)})",
                                        f"entry + {hex_text(e.start)}")),
    ev_.EntryRemove: Kind(lambda e, s: (f"entry - [{hex_text(e.start)}, {hex_text(e.end)})",
                                        f"entry - {hex_text(e.start)}")),
    ev_.EntryClip: Kind(lambda e, s: (
        f"clip [{hex_text(e.start)}, {hex_text(e.end)}) at {hex_text(e.at)}",
        f"clip at {hex_text(e.at)}")),
    ev_.EntryProtect: Kind(lambda e, s: (
        f"protect [{hex_text(e.start)}, {hex_text(e.end)}) {e.prot}",
        f"protect {hex_text(e.start)} {e.prot}")),
    ev_.CleanGeneration: Kind(lambda e, s: f"clean gen {e.obj} = {e.generation}"),
    ev_.ObjectNew: Kind(lambda e, s: f"new object {e.obj}"),
    ev_.ObjectFree: Kind(lambda e, s: f"free object {e.obj}"),
    ev_.Wire: Kind(lambda e, s: f"wire {page(e.obj, e.pindex)} ({e.count})"),
    ev_.Unwire: Kind(lambda e, s: f"unwire {page(e.obj, e.pindex)} ({e.count})"),
    ev_.Cow: Kind(lambda e, s: f"cow {page(e.obj, e.pindex)} ({store_id(e.data)})", store="data"),
    ev_.Sched: Kind(lambda e, s: f"sched -> {s.name(int(e.chosen))}", style="dim"),
}


_BY_NAME = {cls.kind: k for cls, k in KINDS.items()}


def _kind(entry: Entry) -> Kind | None:
    return KINDS.get(type(entry.event)) if entry.event is not None else None


def phrase(entry: Entry, state: State) -> Text:
    """The phrase for one event, as the state stood just before it."""
    state.current = entry.cpu
    kind = _kind(entry)
    try:
        out = kind.phrase(entry.event, state) if kind is not None else generic(
            entry.kind, entry.args)
    except (IndexError, TypeError, ValueError, KeyError):
        out = generic(entry.kind, entry.args)
    return (out,) if isinstance(out, str) else out


def cell_style(kind: str, text: Text) -> str:
    """The colour of a row's cell: red when its phrase is bad news, else its kind's."""
    k = _BY_NAME.get(kind)
    if k is None:
        return ""
    if k.bad is not None and k.bad(text[0]):
        return "bad"
    return k.style


def mentions(entry: Entry, ids: set[int]) -> bool:
    """Whether ``entry`` touches one of the stores ``ids``."""
    k = _kind(entry)
    if not ids or k is None or k.store is None:
        return False
    value = getattr(entry.event, k.store)
    return isinstance(value, int) and value in ids
