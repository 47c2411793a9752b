"""One event as one cell: the table from event kind to its phrasing, colour and store id.

Every event kind the timeline knows has one entry in :data:`KINDS`: how to
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

from emulator.kern.param import PAGE_SHIFT
from emulator.trace.show import calls
from emulator.trace.show.state import SHORT, State, page_key
from emulator.trace.show.text import Text, generic, hex_text, page, store_id

Phrasing = Callable[[list[Any], State], str | Text]  # (args, state before the event)


@dataclass(frozen=True, slots=True)
class Kind:
    """How the timeline shows one event kind."""

    phrase: Phrasing
    style: str = ""  # the cell's colour: a key of layout.STYLES
    bad: Callable[[str], bool] | None = None  # whether the phrase is bad news (shown red)
    store_at: int | None = None  # the argument that is a store id, if any


def _lock(a: list[Any], _s: State) -> str:
    kind = str(a[0])
    return f"lock {SHORT.get(kind, kind)} {a[1]}" + (f" ({a[2]})" if kind == "map" else "")


def _wait(a: list[Any], s: State) -> Text:
    long = s.wait_phrase(a)
    return long, long.split(" (")[0]


def _store(a: list[Any], s: State) -> Text:
    """``store #5 -> f:0 @0x100000``; ``[busy cpu0]`` when it lands in a page others busy."""
    short = f"store {store_id(a[4])} -> {page(a[2], a[3])}"
    key = page_key(page(a[2], a[3]))
    busy = [("write" if aid == s.disk else s.name(aid)) for aid in sorted(s.holds)
            if key in s.holds[aid] and aid != s.current]
    if not busy:
        return f"{short} @{hex_text(a[1])}", short
    tag = f" [busy {','.join(busy)}]"
    return f"{short} @{hex_text(a[1])}{tag}", short + tag, short


def _load(a: list[Any], s: State) -> Text:
    source = s.ptes.get((str(a[0]), int(a[1]) >> PAGE_SHIFT))
    short = f"load {store_id(a[2])}" + (f" <- {source}" if source else "")
    return f"{short} @{hex_text(a[1])}", short


def _va(vpn: Any) -> str:
    return hex_text(int(vpn) << PAGE_SHIFT)


def _dirty_flag(value: Any) -> str:
    return "dirty" if value else "clean"


def _failed_return(text: str) -> bool:
    return "->" in text and not text.endswith(("-> 0", "KERN_SUCCESS"))


KINDS: dict[str, Kind] = {
    "call": Kind(lambda a, s: calls.call_phrases(a)),
    "ret": Kind(lambda a, s: calls.ret_phrase(a), bad=_failed_return),
    "clean_call": Kind(lambda a, s: calls.clean_call_phrases(a)),
    "clean_return": Kind(lambda a, s: calls.clean_return_phrase(a)),
    "lock": Kind(_lock, style="lock"),
    "unlock": Kind(lambda a, s: f"unlock {SHORT.get(str(a[0]), a[0])} {a[1]}", style="lock"),
    "wait": Kind(_wait, style="wait"),
    "busy": Kind(lambda a, s: ("busy " if a[2] == "x" else "sbusy ") + page(a[0], a[1])),
    "unbusy": Kind(lambda a, s: f"unbusy {page(a[0], a[1])}"),
    "alloc": Kind(lambda a, s: f"alloc {page(a[0], a[1])}"),
    "pagein": Kind(lambda a, s: f"pagein {page(a[0], a[1])} ({store_id(a[2])})", store_at=2),
    "dirty": Kind(lambda a, s: (f"fault: dirty {page(a[0], a[1])} gen {a[2]}",
                                f"dirty {page(a[0], a[1])} gen {a[2]}")),
    "writeable": Kind(lambda a, s: f"writeable {a[0]} gen {a[1]}"),
    "pte": Kind(lambda a, s: (f"pte {_va(a[1])} -> {page(a[2], a[3])} {a[4]}",
                              f"pte {page(a[2], a[3])} {a[4]}")),
    "pte_remove": Kind(lambda a, s: (f"unmap ptes [{_va(a[1])}, {_va(a[2])}) ({a[3]})",
                                     f"unmap {a[3]} ptes")),
    "remove_write": Kind(lambda a, s: (
        f"write-protect {page(a[0], a[1])} ({_dirty_flag(a[2])})",
        f"wprotect {page(a[0], a[1])} {_dirty_flag(a[2])}")),
    "remove_all": Kind(lambda a, s: (f"unmap all {page(a[0], a[1])} ({_dirty_flag(a[2])})",
                                     f"unmap {page(a[0], a[1])} {_dirty_flag(a[2])}")),
    "io_issue": Kind(lambda a, s: (f"write {page(a[0], a[1])} {store_id(a[2])} "
                                   + ("(sync)" if a[3] else "(async)"),
                                   f"write {page(a[0], a[1])} {store_id(a[2])}"),
                     style="io", store_at=2),
    "io_done": Kind(lambda a, s: (f"write FAILED {page(a[0], a[1])} {store_id(a[2])}" if a[3]
                                  else (f"write done {page(a[0], a[1])} {store_id(a[2])}",
                                        f"done {page(a[0], a[1])} {store_id(a[2])}")),
                    style="io", store_at=2),
    "free": Kind(lambda a, s: f"free {page(a[0], a[1])}" + (" (dirty!)" if a[2] else ""),
                 bad=lambda text: "dirty" in text),
    "store": Kind(_store, style="store", store_at=4),
    "load": Kind(_load, store_at=2),
    "entry_insert": Kind(lambda a, s: (f"entry + [{hex_text(a[1])}, {hex_text(a[2])})",
                                       f"entry + {hex_text(a[1])}")),
    "entry_remove": Kind(lambda a, s: (f"entry - [{hex_text(a[1])}, {hex_text(a[2])})",
                                       f"entry - {hex_text(a[1])}")),
    "entry_clip": Kind(lambda a, s: (
        f"clip [{hex_text(a[1])}, {hex_text(a[3])}) at {hex_text(a[2])}",
        f"clip at {hex_text(a[2])}")),
    "clean_generation": Kind(lambda a, s: f"clean gen {a[0]} = {a[1]}"),
    "object_new": Kind(lambda a, s: f"new object {a[0]}"),
    "object_free": Kind(lambda a, s: f"free object {a[0]}"),
    "wire": Kind(lambda a, s: f"wire {page(a[0], a[1])} ({a[2]})"),
    "unwire": Kind(lambda a, s: f"unwire {page(a[0], a[1])} ({a[2]})"),
    "cow": Kind(lambda a, s: f"cow {page(a[0], a[1])} ({store_id(a[2])})", store_at=2),
    "sched": Kind(lambda a, s: f"sched -> {s.name(int(a[0]))}", style="dim"),
}


def phrase(ev: dict[str, Any], state: State) -> Text:
    """The phrase for one event, as the state stood just before it."""
    kind, a = ev["event"], ev["args"]
    state.current = ev["cpu"]
    try:
        out = KINDS[kind].phrase(a, state) if kind in KINDS else generic(kind, a)
    except (IndexError, TypeError, ValueError, KeyError):
        out = generic(kind, a)
    return (out,) if isinstance(out, str) else out


def cell_style(kind: str, text: Text) -> str:
    """The colour of a row's cell: red when its phrase is bad news, else its kind's."""
    k = KINDS.get(kind)
    if k is None:
        return ""
    if k.bad is not None and k.bad(text[0]):
        return "bad"
    return k.style


def mentions(ev: dict[str, Any], ids: set[int]) -> bool:
    """Whether ``ev`` touches one of the stores ``ids``."""
    if not ids:
        return False
    a = ev["args"]
    k = KINDS[ev["event"]].store_at if ev["event"] in KINDS else None
    return k is not None and len(a) > k and isinstance(a[k], int) and a[k] in ids
