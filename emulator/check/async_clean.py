"""Rule 7, ``async_clean``: an asynchronous clean queues every dirty page.

Every page dirty at the call (flag or modified bit), in a range entry the
profile flushes, has a write issued before the call returns -- or the pager
already holds its contents by then (another clean wrote it).  Storage catches
up without further user action: when every CPU is done, no write is left
queued and no page of a file is left busy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from emulator.check import Rule
from emulator.check.base import Checker, OpenCall, tracker
from emulator.check.lost_store import Pages, era_fields, misdirected_pages, reached
from emulator.kern.events import CleanCall, EntryRemove, IoIssue
from emulator.kern.kern_return import KernReturn
from emulator.kern.kernel import twin
from emulator.kern.pmap import is_modified

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.pager import Io

SUCCESS = KernReturn.SUCCESS.label


@dataclass
class _Notes:
    """What async_clean notes about one asynchronous clean call."""

    dirty: list[tuple[str, int, int, int]]  # (file, pindex, contents, va) dirty at the call
    issued: set[tuple[str, int]] = field(default_factory=set)  # pages written meanwhile
    removed: list[tuple[int, int]] = field(default_factory=list)  # entries unmapped meanwhile
    missed: Pages = field(default_factory=set)  # pages the profile's 2003 chain walk misses


class AsyncClean(Checker):
    rule = Rule.ASYNC_CLEAN

    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        self.calls = calls = tracker(k)
        self.notes: dict[OpenCall, _Notes] = {}
        k.observe(CleanCall, self._call)
        calls.on_open.append(self._expect)
        k.observe(IoIssue, self._issue)
        k.observe(EntryRemove, self._entry_remove)
        calls.on_return.append(self._return)

    def _expect(self, call: OpenCall) -> None:
        """Note the pages dirty now; redone when the call's window opens."""
        if call.syncio or call.invalidate:
            return
        k = self.k
        k.in_checker = True
        dirty = []
        for obj, pindex, va, _, flushed in reached(k, call):
            if not flushed:
                continue
            page = obj.pages.get(pindex)
            if page is None or not (page.dirty or is_modified(page)):
                continue
            if any(io.page is page and io.data == page.contents for io in k.disk.queue):
                continue  # a write of exactly this data is already queued
            dirty.append((obj.name, pindex, page.contents, va))
        missed, _ = misdirected_pages(k, call.vm_map, call.start, call.end)
        k.in_checker = False
        self.notes[call] = _Notes(dirty, missed=missed)

    def _call(self, step: int, aid: int, ev: CleanCall) -> None:
        self._expect(self.calls.calls[aid])

    def _issue(self, step: int, aid: int, ev: IoIssue) -> None:
        self.issue(ev.obj, ev.pindex, ev.data, ev.sync, ev.io)

    def issue(self, obj: str, pindex: int, data: int, sync: int, io: Io) -> None:
        """The twin of ``_issue`` taking the event's fields (kern/kernel.py, ``twin``)."""
        for call in self.calls.calls.values():
            notes = self.notes.get(call)
            if notes is not None:
                notes.issued.add((obj, pindex))

    def _entry_remove(self, step: int, aid: int, ev: EntryRemove) -> None:
        for call in self.calls.calls.values():
            notes = self.notes.get(call)
            if call.vm_map.name == ev.map and notes is not None:
                notes.removed.append((ev.start, ev.end))

    def _return(self, call: OpenCall, rv: str) -> None:
        notes = self.notes.pop(call, None)
        if notes is None or not notes.dirty or rv != SUCCESS:
            return
        k = self.k
        for fname, pindex, contents, va in notes.dirty:
            if (fname, pindex) in notes.issued or any(lo <= va < hi for lo, hi in notes.removed):
                continue
            obj = k.files[fname]
            pager = obj.pager
            assert pager is not None
            if pager.stored[pindex] >= contents:
                continue
            # The 2003 clean returns at once while OBJ_MIGHTBEDIRTY is clear, dirty
            # pages or not: a failed write (or a whole-object clean still scanning)
            # left it so -- that code's behaviour (H24), not this clean's bug.
            era = "H24" if k.profile.flag_page_clean and not obj.might_be_dirty() else None
            self.violate(
                f"{k.agent_name(call.cpu)}'s asynchronous clean of [{call.start:#x},"
                f"{call.end:#x}) returned with page {fname}:{pindex} (holding store "
                f"#{contents}, dirty at the call) neither written nor queued",
                cpus=[call.cpu],
                page=f"{fname}:{pindex}",
                # The 2003 chain walk cleaned the file at the wrong offset (H10).
                **({"historical": True, "misdirected": True}
                   if (fname, pindex) in notes.missed else era_fields(era)),
            )
            return

    def end(self) -> None:
        queue = self.k.disk.queue
        if queue:
            io = queue[0]
            self.violate(f"every CPU finished but the write of page {io.page.name} "
                         "is still queued", cpus=[io.issuer], fatal=False)


twin(IoIssue, AsyncClean._issue, AsyncClean.issue)
