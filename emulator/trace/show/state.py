"""The machine as the timeline replays it: what each agent holds, waits for and runs.

The timeline reads a trace's events in order and keeps only what its cells
need: each agent's locks and busied pages (the ``holds`` column and the end
lines), the wait each agent is blocked in, the call it is in and how many it
has finished, and which page each mapped virtual page shows (a load's source).
A page under write belongs to the disk from the issue until the completion, as
the page's shared busy does in the kernel.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from emulator.kern.events import (
    Alloc,
    Busy,
    Call,
    Event,
    Free,
    IoIssue,
    Lock,
    PteEnter,
    PteRemove,
    RemoveAll,
    Ret,
    Unbusy,
    Unlock,
    Wait,
)
from emulator.trace.reader import Entry
from emulator.trace.show.calls import call_text
from emulator.trace.show.text import page

# Holding ranks: the lock order, so a holds list reads map -> vnode -> object -> page.
RANK = {"map": 0, "vnode": 1, "object": 2, "page": 3}
SHORT = {"map": "map", "vnode": "vnode", "object": "obj"}  # a lock kind's word in a cell

Key = tuple[int, str]  # (rank, what): one thing an agent holds, sorted in lock order


def lock_key(kind: str, name: str) -> Key:
    """The holding key of lock ``name`` of ``kind`` (``map``, ``vnode``, ``object``)."""
    return RANK.get(kind, 2), f"{kind} {name}"


def page_key(name: str) -> Key:
    """The holding key of page ``name`` (``f:1``), busied or under write."""
    return RANK["page"], name


@dataclass
class State:
    """What the events so far say each agent holds, waits for and is running."""

    agents: list[str]
    disk: int
    holds: dict[int, dict[Key, str]] = field(default_factory=dict)
    waiting: dict[int, Wait] = field(default_factory=dict)  # the wait each agent is in
    running: dict[int, str] = field(default_factory=dict)
    returned: dict[int, int] = field(default_factory=dict)
    ptes: dict[tuple[str, int], str] = field(default_factory=dict)  # (map, vpn) -> page
    current: int = -1  # the agent of the event being phrased

    def held(self, aid: int) -> dict[Key, str]:
        return self.holds.setdefault(aid, {})

    def snapshot(self, aid: int) -> tuple[str, ...]:
        return tuple(label for _, label in sorted(self.held(aid).items()))

    def describe(self, aid: int) -> str:
        return ", ".join(self.snapshot(aid)) or "nothing"

    def holders(self, key: Key) -> str:
        """Who holds ``key``, and how for a map lock: `` (cpu1)``, `` (s: cpu1,cpu2)``."""
        who, modes = [], set()
        for aid in sorted(self.holds):
            label = self.holds[aid].get(key)
            if label is not None:
                who.append(self.name(aid))
                modes.add(label.rsplit(" ", 1)[-1])
        if not who:
            return ""
        if key[0] == RANK["map"]:
            return f" ({'/'.join(sorted(modes))}: {','.join(who)})"
        return f" ({','.join(who)})"

    def name(self, aid: int) -> str:
        return self.agents[aid] if 0 <= aid < len(self.agents) else "harness"

    def drop_page(self, name: str, prefer: int | None) -> None:
        """Release ``name``'s busy: ``prefer``'s if it holds it, else the first holder's."""
        key = page_key(name)
        if prefer is not None and key in self.held(prefer):
            del self.held(prefer)[key]
            return
        for aid in sorted(self.holds):
            if key in self.holds[aid]:
                del self.holds[aid][key]
                return

    def apply(self, entry: Entry) -> None:
        """Advance the state past ``entry``.  Unknown or malformed events change nothing."""
        with contextlib.suppress(IndexError, TypeError, ValueError):
            self._apply(entry.kind, entry.cpu, entry.event)

    def _apply(self, kind: str, aid: int, ev: Event | None) -> None:
        if kind != "sched" and kind != "wait":
            self.waiting.pop(aid, None)
        if isinstance(ev, Lock):
            lkind, name, mode = str(ev.res), str(ev.name), str(ev.mode)
            label = f"{SHORT.get(lkind, lkind)} {name}" + (f" {mode}" if lkind == "map" else "")
            self.held(aid)[lock_key(lkind, name)] = label
        elif isinstance(ev, Unlock):
            self.held(aid).pop(lock_key(str(ev.res), str(ev.name)), None)
        elif isinstance(ev, Busy):
            p = page(ev.obj, ev.pindex)
            self.held(aid)[page_key(p)] = ("busy " if ev.mode == "x" else "sbusy ") + p
        elif isinstance(ev, Alloc) and aid >= 0:  # vm_page_alloc returns the page exclusive busy
            p = page(ev.obj, ev.pindex)
            self.held(aid)[page_key(p)] = "busy " + p
        elif isinstance(ev, Unbusy):
            self.drop_page(page(ev.obj, ev.pindex), aid)
        elif isinstance(ev, IoIssue):  # the issuer's busy becomes the write's (the disk's)
            p = page(ev.obj, ev.pindex)
            self.held(aid).pop(page_key(p), None)
            self.held(self.disk)[page_key(p)] = "writing " + p
        elif isinstance(ev, Free):
            p = page(ev.obj, ev.pindex)
            for aid2 in list(self.holds):
                self.holds[aid2].pop(page_key(p), None)
        elif isinstance(ev, Wait):
            self.waiting[aid] = ev
        elif isinstance(ev, Call):
            self.running[aid] = call_text(ev)
        elif isinstance(ev, Ret):
            self.running.pop(aid, None)
            self.returned[aid] = self.returned.get(aid, 0) + 1
        elif isinstance(ev, PteEnter):
            self.ptes[(str(ev.map), int(ev.vpn))] = page(ev.obj, ev.pindex)
        elif isinstance(ev, PteRemove):
            for key in [k for k in self.ptes
                        if k[0] == str(ev.map) and ev.start_vpn <= k[1] < ev.end_vpn]:
                del self.ptes[key]
        elif isinstance(ev, RemoveAll):
            p = page(ev.obj, ev.pindex)
            for key in [k for k, v in self.ptes.items() if v == p]:
                del self.ptes[key]

    def wait_phrase(self, ev: Wait) -> str:
        """``wait vnode f (cpu0)``: what blocks, and who holds it now."""
        kind, name = str(ev.res), str(ev.name)
        if kind == "io":
            return f"wait write {name} (disk)"
        if kind == "busy":
            return f"wait busy {name}" + self.holders(page_key(name))
        return f"wait {SHORT.get(kind, kind)} {name}" + self.holders(lock_key(kind, name))
