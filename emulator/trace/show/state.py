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
from typing import Any

from emulator.trace.show.calls import call_text
from emulator.trace.show.text import generic, page

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
    waiting: dict[int, list[Any]] = field(default_factory=dict)  # the wait's args
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
            label = f"{SHORT.get(lkind, lkind)} {name}" + (f" {mode}" if lkind == "map" else "")
            self.held(aid)[lock_key(lkind, name)] = label
        elif kind == "unlock":
            self.held(aid).pop(lock_key(str(a[0]), str(a[1])), None)
        elif kind == "busy":
            p = page(a[0], a[1])
            self.held(aid)[page_key(p)] = ("busy " if a[2] == "x" else "sbusy ") + p
        elif kind == "alloc" and aid >= 0:  # vm_page_alloc returns the page exclusive busy
            p = page(a[0], a[1])
            self.held(aid)[page_key(p)] = "busy " + p
        elif kind == "unbusy":
            self.drop_page(page(a[0], a[1]), aid)
        elif kind == "io_issue":  # the issuer's busy becomes the write's (shared, the disk's)
            p = page(a[0], a[1])
            self.held(aid).pop(page_key(p), None)
            self.held(self.disk)[page_key(p)] = "writing " + p
        elif kind == "free":
            p = page(a[0], a[1])
            for aid2 in list(self.holds):
                self.holds[aid2].pop(page_key(p), None)
        elif kind == "wait":
            self.waiting[aid] = a
        elif kind == "call":
            self.running[aid] = call_text(a)
        elif kind == "ret":
            self.running.pop(aid, None)
            self.returned[aid] = self.returned.get(aid, 0) + 1
        elif kind == "pte":
            self.ptes[(str(a[0]), int(a[1]))] = page(a[2], a[3])
        elif kind == "pte_remove":
            for key in [k for k in self.ptes if k[0] == str(a[0]) and a[1] <= k[1] < a[2]]:
                del self.ptes[key]
        elif kind == "remove_all":
            p = page(a[0], a[1])
            for key in [k for k, v in self.ptes.items() if v == p]:
                del self.ptes[key]

    def wait_phrase(self, a: list[Any]) -> str:
        """``wait vnode f (cpu0)``: what blocks, and who holds it now."""
        if len(a) < 2:
            return generic("wait", a)
        kind, name = str(a[0]), str(a[1])
        if kind == "io":
            return f"wait write {name} (disk)"
        if kind == "busy":
            return f"wait busy {name}" + self.holders(page_key(name))
        return f"wait {SHORT.get(kind, kind)} {name}" + self.holders(lock_key(kind, name))
