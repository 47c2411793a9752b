"""Rule 4, ``lost_store``: no store is ever lost.

Every store writes a fresh id, so the oracle knows, for each page of each file,
the last store made to it through a shared mapping.  It checks:

* **sync clean**: for every store S to a file page P completed before a
  synchronous (or invalidating) clean was called, with P in the call's range
  through an entry the profile flushes, the clean returns only after the pager
  holds S or a later store to P -- unless the call failed, the entry went away
  during the call (modern), or a write of P failed;
* **at every write completion**: the page's current contents are in the pager,
  or the page is dirty (flag or modified bit) -- a completion that cleans a page
  holding newer data loses that data;
* **at every page free**: a freed file page's contents are in the pager, and so
  are those of a wired page whose contents an invalidate discards (``valid = 0``,
  freebsd5's wired rule: the next access reads the pager's);
* **at the end**: after the trusted full flush, every file's pager holds the
  last store to each of its pages.

The expected state comes from the stores themselves, never from the variant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emulator.check import Rule
from emulator.check.base import Checker, OpenCall, tracker
from emulator.kern.events import (
    CleanCall,
    EntryRemove,
    Invalid,
    IoDone,
    IoIssue,
    PageFreeing,
    Store,
)
from emulator.kern.kern_return import KernReturn
from emulator.kern.kernel import twin
from emulator.kern.param import PAGE_MASK, PAGE_SHIFT
from emulator.kern.pmap import is_modified
from emulator.kern.profile import Flushes, InvalidateFrees

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.map import VmMap, VmMapEntry
    from emulator.kern.object import VmObject
    from emulator.kern.page import VmPage
    from emulator.kern.pager import Io

SUCCESS = KernReturn.SUCCESS.label


class StoreInfo:
    __slots__ = ("cpu", "map", "sid", "step", "va")

    def __init__(self, sid: int, cpu: int, step: int, map_name: str, va: int) -> None:
        self.sid = sid
        self.cpu = cpu
        self.step = step
        self.map = map_name
        self.va = va


class StoreLog:
    """The last store to each file page so far, ``last[(file, pindex)]``: one log per
    execution (in ``k.shared``), kept by one observer, which lost_store and durable
    share.  A checker keeps the log, not its table: the checker installer gives
    each execution a fresh table."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.last: dict[tuple[str, int], StoreInfo] = {}
        k.observe(Store, self._store)

    def _store(self, step: int, aid: int, ev: Store) -> None:
        self.store(ev.map, ev.va, ev.obj, ev.pindex, ev.sid, ev.page)

    def store(self, map_name: str, va: int, obj: str, pindex: int, sid: int,
              page: VmPage) -> None:
        """The twin of ``_store`` taking the event's fields (kern/kernel.py, ``twin``)."""
        if page.obj.kind == "file":
            sched = self.k.sched
            self.last[(obj, pindex)] = StoreInfo(sid, sched.cpu, sched.step, map_name, va)


twin(Store, StoreLog._store, StoreLog.store)


def store_log(k: Kernel) -> StoreLog:
    """Return the kernel's one StoreLog, creating it on first use."""
    log = k.shared.get("store_log")
    if log is None:
        log = k.shared["store_log"] = StoreLog(k)
    assert isinstance(log, StoreLog)
    return log


def reached_pages(
    k: Kernel, vm_map: VmMap, start: int, end: int
) -> list[tuple[VmObject, int, int, int, bool]]:
    """Return (file object, pindex, va, entry end, flushed) for every file page a clean of
    [start, end) reaches at the bottom of an entry's chain; ``flushed``: the profile's
    "which objects are flushed" row flushes it through that entry (where only writable
    entries are flushed, a read-only entry reaches a page unflushed; a private entry's
    file is flushed as a shared entry's is, SEMANTICS §3 step 5)."""
    profile = k.profile
    every = profile.flushes is Flushes.MIGHT_BE_DIRTY  # a superset: any file page may be
    start, end = vm_map.clamp(start, end)
    first = vm_map.entry_containing(start)
    if first is None:
        return []
    if profile.zero_length_whole_entry and start == end:
        start, end = first.start, first.end
    out: list[tuple[VmObject, int, int, int, bool]] = []
    entry: VmMapEntry | None = first
    while entry is not None and entry.start < end:
        lo, hi = max(start, entry.start), min(end, entry.end)
        target: VmMapEntry | None = entry
        if entry.submap is not None:
            target = entry.submap.entry_containing(entry.offset + (lo - entry.start))
            if profile.submap is not None:
                target = None  # refused, not cleaned through
        if target is not None and target.obj is not None:
            obj = target.obj
            offset = target.offset
            # The bottom of the backing chain, as the clean finds it (§3 step 5): a
            # private mapping's file pages are flushed as a shared mapping's are.
            while obj.backing is not None:
                offset += obj.backing_offset << PAGE_SHIFT
                obj = obj.backing
            if obj.kind == "file":
                flushed = every or target.writable
                va = lo & ~PAGE_MASK
                while va < hi:
                    pindex = (offset + (va - target.start)) >> PAGE_SHIFT
                    out.append((obj, pindex, va, entry.end, flushed))
                    va += 1 << PAGE_SHIFT
        entry = vm_map.succ(entry)
    return out


def reached(k: Kernel, call: OpenCall) -> list[tuple[VmObject, int, int, int, bool]]:
    """``reached_pages`` of ``call``'s range, from the map as it is now.

    Computed once per moment at which the checkers note their expectations (the
    call's ``CleanCall``, its window's opening: the tracker clears it for each),
    however many of them ask; nothing changes the map between their handlers.
    The list is shared: read it, do not change it.
    """
    pages = call.reached
    if pages is None:
        pages = call.reached = reached_pages(k, call.vm_map, call.start, call.end)
    return pages


def era_excuse(k: Kernel, obj: VmObject, pindex: int, sid: int) -> str | None:
    """Why the 2003 page clean (``Profile.flag_page_clean``) left store ``sid`` of
    page ``obj:pindex`` out of the pager, as that code did, or None.

    * ``"H26"``: a write carrying the store (or a later one) is still in flight:
      the page was left clean when its asynchronous write was issued, and the
      clean tests dirtiness before waiting for the busy, so it passed over the
      page without waiting for that write;
    * ``"H24"``: the page is still dirty but OBJ_MIGHTBEDIRTY is clear: a
      whole-object clean cleared it before its scan, then its write failed (or it
      has not reached the page yet), and every clean since returns at once.

    Judged from the kernel's state at the call's return; anything else is a bug.
    """
    if not k.profile.flag_page_clean:
        return None
    page = obj.pages.get(pindex)
    if page is None:
        return None
    if any(io.page is page and io.data >= sid for io in k.disk.queue):
        return "H26"
    if not obj.might_be_dirty() and (page.dirty or is_modified(page)):
        return "H24"
    return None


def era_fields(era: str | None) -> dict[str, Any]:
    """A violation's ``historical`` field when the era excuses it; none otherwise
    (so the other profiles' violations, and their traces, are unchanged)."""
    return {"historical": era} if era else {}


Pages = set[tuple[str, int]]  # file pages as (object name, pindex)


def misdirected_pages(k: Kernel, vm_map: VmMap, start: int, end: int) -> tuple[Pages, Pages]:
    """(missed, hit): the file pages a clean of [start, end) walking backing chains in the
    2003 order (``chain_walk_steps_first``) should reach but does not, and those it
    reaches instead -- through a shadowed entry whose chain that walk offsets wrongly.
    Both empty for other profiles."""
    missed: Pages = set()
    hit: Pages = set()
    if not k.profile.chain_walk_steps_first:
        return missed, hit
    start, end = vm_map.clamp(start, end)
    entry = vm_map.entry_containing(start) or vm_map.first_entry_after(start)
    while entry is not None and entry.start < end:
        obj = entry.obj
        if entry.submap is None and obj is not None and obj.backing is not None:
            right = wrong = entry.offset
            while obj.backing is not None:
                right += obj.backing_offset << PAGE_SHIFT
                obj = obj.backing
                wrong += obj.backing_offset << PAGE_SHIFT
            if right != wrong and obj.kind == "file":
                lo, hi = max(start, entry.start), min(end, entry.end)
                for offset, pages in ((right, missed), (wrong, hit)):
                    first = (offset + (lo - entry.start)) >> PAGE_SHIFT
                    last = (offset + (hi - entry.start) + PAGE_MASK) >> PAGE_SHIFT
                    pages.update((obj.name, pindex) for pindex in range(first, last))
        entry = vm_map.succ(entry)
    return missed - hit, hit - missed


@dataclass
class _Notes:
    """What lost_store notes about one synchronous or invalidating clean call."""

    # (file object, pindex, va, the last store before the call) for each page
    # the call must flush; None: the call must flush nothing (asynchronous).
    expected: list[tuple[VmObject, int, int, StoreInfo]] | None = None
    removed: list[tuple[int, int]] = field(default_factory=list)  # entries unmapped meanwhile
    # file pages (object name, pindex) the range reaches through an entry it does not flush
    unflushed: set[tuple[str, int]] = field(default_factory=set)
    # those of them expected all the same, their loss the era's (the mprotect flush gap)
    gap: Pages = field(default_factory=set)
    flushed: dict[tuple[str, int], int] = field(default_factory=dict)  # page -> step written
    # file pages the profile's 2003 chain walk misses, and those it cleans instead
    missed: Pages = field(default_factory=set)
    misaimed: Pages = field(default_factory=set)


class LostStore(Checker):
    rule = Rule.LOST_STORE

    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        self.calls = calls = tracker(k)
        self.stores = store_log(k)  # file page -> its last store
        self.failed_writes: set[tuple[str, int]] = set()
        self.failed_at: dict[tuple[str, int], int] = {}  # page -> step of its last failed write
        self.notes: dict[OpenCall, _Notes] = {}
        k.observe(CleanCall, self._call)
        calls.on_open.append(self._expect)
        k.observe(EntryRemove, self._entry_remove)
        calls.on_return.append(self._return)
        k.observe(IoDone, self._io_done)
        k.observe(IoIssue, self._issue)
        k.observe(PageFreeing, self._free)
        k.observe(Invalid, self._invalid)

    def _notes(self, call: OpenCall) -> _Notes:
        notes = self.notes.get(call)
        if notes is None:
            notes = self.notes[call] = _Notes()
        return notes

    def describe(self, info: StoreInfo) -> str:
        return f"store #{info.sid} by {self.k.agent_name(info.cpu)} at step {info.step}"

    def _expect(self, call: OpenCall) -> None:
        """Note the stores the call must flush, from the map as it is now.

        Done at the call and again when the call's window opens (its first
        look at the map): what the routine sees is the map at that moment.
        """
        if not (call.syncio or call.invalidate):
            return
        k = self.k
        k.in_checker = True
        expected: list[tuple[VmObject, int, int, StoreInfo]] = []
        unflushed: set[tuple[str, int]] = set()
        # Where the profile names the mprotect flush gap an era bug (D19), a page
        # reached only through an entry the profile does not flush (read-only) is
        # expected too, its loss reported as that era's: msync(MS_SYNC) promises it.
        gap_era = "D19" in k.profile.era_bugs
        pages = reached(k, call)
        flushed_keys = {(obj.name, pindex) for obj, pindex, _, _, flushed in pages if flushed}
        gap: Pages = set()
        for obj, pindex, va, _, flushed in pages:
            key = (obj.name, pindex)
            if not flushed:
                unflushed.add(key)
                if not gap_era or key in flushed_keys or key in gap:
                    continue
                gap.add(key)
            info = self.stores.last.get(key)
            if info is not None:
                expected.append((obj, pindex, va, info))
        missed, misaimed = misdirected_pages(k, call.vm_map, call.start, call.end)
        k.in_checker = False
        notes = self._notes(call)
        notes.expected = expected
        notes.removed = []
        notes.unflushed = unflushed
        notes.gap = gap
        notes.missed, notes.misaimed = missed, misaimed

    def _call(self, step: int, aid: int, ev: CleanCall) -> None:
        self._expect(self.calls.calls[aid])

    def _entry_remove(self, step: int, aid: int, ev: EntryRemove) -> None:
        for call in self.calls.calls.values():
            notes = self.notes.get(call)
            if call.vm_map.name == ev.map and notes is not None and notes.expected is not None:
                notes.removed.append((ev.start, ev.end))

    def _return(self, call: OpenCall, rv: str) -> None:
        notes = self.notes.pop(call, None)
        if notes is None or not notes.expected or rv != SUCCESS:
            return
        k = self.k
        for obj, pindex, va, info in notes.expected:
            if any(lo <= va < hi for lo, hi in notes.removed):
                continue  # the mapping went away during the call
            if self.failed_at.get((obj.name, pindex), -1) >= call.called_at:
                continue  # a write of the page failed during the call
            assert obj.pager is not None
            held = obj.pager.stored[pindex]
            if held < info.sid:
                op = k.shared.get("current_op", {}).get(call.cpu)
                kind = "msync" if op == "msync" else "clean"
                era = era_excuse(k, obj, pindex, info.sid)
                if era is None and (obj.name, pindex) in notes.gap:
                    era = "D19"  # never flushed: only a read-only entry reached it
                self.violate(
                    f"{k.agent_name(call.cpu)}'s synchronous {kind} of "
                    f"[{call.start:#x},{call.end:#x}) in {call.vm_map.name} (called at step "
                    f"{call.called_at}) returned success, but the pager of page {obj.name}:"
                    f"{pindex} holds store #{held}, not {self.describe(info)} before the call",
                    cpus=[call.cpu, info.cpu],
                    page=f"{obj.name}:{pindex}",
                    store=info.sid,
                    pager=held,
                    # The 2003 chain walk cleaned the file at the wrong offset: a
                    # historical bug of the profile (H10), faithfully emulated; or the
                    # 2003 page clean left the store out as that code did (H24, H26).
                    **{**era_fields(era),
                       **self.misdirected(notes, (obj.name, pindex), notes.missed)},
                )

    def _io_done(self, step: int, aid: int, ev: IoDone) -> None:
        self.io_done(ev.obj, ev.pindex, ev.data, ev.error, ev.io)

    def io_done(self, obj: str, pindex: int, data: int, error: int, io: Io) -> None:
        """The twin of ``_io_done`` taking the event's fields (kern/kernel.py, ``twin``)."""
        k = self.k
        page = io.page
        key = (page.obj.name, page.pindex)
        if io.error:
            self.failed_writes.add(key)
            self.failed_at[key] = k.sched.step
            return
        pager = page.obj.pager
        assert pager is not None
        if page.contents == pager.stored[page.pindex] or page.dirty or is_modified(page):
            return
        if any(other.page is page and other.data == page.contents for other in k.disk.queue):
            return
        info = self.stores.last.get(key)
        who = self.describe(info) if info is not None and info.sid == page.contents else (
            f"store #{page.contents}")
        self.violate(
            f"the write of page {page.obj.name}:{page.pindex} (store #{io.data}, issued by "
            f"{k.agent_name(io.issuer)}) completed and left the page clean, but the page "
            f"holds {who}, which is now neither in the pager nor dirty",
            cpus=[io.issuer] + ([info.cpu] if info is not None else []),
            page=f"{page.obj.name}:{page.pindex}",
        )

    def _free(self, step: int, aid: int, ev: PageFreeing) -> None:
        page = ev.page
        if page.obj.kind != "file":
            return
        pager = page.obj.pager
        assert pager is not None
        if page.contents == pager.stored[page.pindex]:
            return
        k = self.k
        info = self.stores.last.get((page.obj.name, page.pindex))
        who = self.describe(info) if info is not None and info.sid == page.contents else (
            f"store #{page.contents}")
        call = self.calls.calls.get(aid)
        how = "invalidating clean" if call is not None and call.invalidate else "page free"
        inflight = [io for io in k.disk.queue if io.page is page]
        why = (f"while its write (store #{inflight[0].data}) is still in flight: the I/O "
               "reads a freed page" if inflight else "the store is lost")
        self.violate(
            f"{k.agent_name(aid)}'s {how} freed page {page.obj.name}:{page.pindex} holding "
            f"{who}, but the pager holds store #{pager.stored[page.pindex]}: {why}",
            cpus=[aid] + ([info.cpu] if info is not None else []),
            page=f"{page.obj.name}:{page.pindex}",
            # freebsd5's invalidate frees pages re-dirtied after this call flushed
            # them: its historical data loss.  Anything else is a plain bug.
            **self.historical_fields(call, page, info),
        )

    def _invalid(self, step: int, aid: int, ev: Invalid) -> None:
        page = ev.page
        pager = page.obj.pager
        assert pager is not None
        held = pager.stored[page.pindex]
        if page.contents == held:
            return
        info = self.stores.last.get((page.obj.name, page.pindex))
        who = self.describe(info) if info is not None and info.sid == page.contents else (
            f"store #{page.contents}")
        call = self.calls.calls.get(aid)
        self.violate(
            f"{self.k.agent_name(aid)}'s invalidating clean discarded the contents of wired "
            f"page {page.obj.name}:{page.pindex} (valid = 0) holding {who}, but the pager "
            f"holds store #{held}: the store is lost",
            cpus=[aid] + ([info.cpu] if info is not None else []),
            page=f"{page.obj.name}:{page.pindex}",
            # The 2003 page remove discards wired pages as it frees unwired ones
            # (FIDELITY.md D8): the same historical loss, through a wired page.
            wired=True,
            **self.historical_fields(call, page, info),
        )

    @staticmethod
    def misdirected(notes: _Notes | None, key: tuple[str, int],
                    pages: Pages | None) -> dict[str, bool]:
        """Fields for a loss at file page ``key`` that the call's 2003 chain walk
        explains (among ``pages``; None: the pages it reached instead of the right
        ones): it is that historical bug.  No fields otherwise."""
        if notes is None:
            return {}
        if key in (notes.misaimed if pages is None else pages):
            return {"historical": True, "misdirected": True}
        return {}

    def historical_fields(self, call: OpenCall | None, page: VmPage,
                          info: StoreInfo | None) -> dict[str, bool]:
        """``historical`` for a page freed or discarded dirty, and ``misdirected`` if
        the call reached it only through its 2003 chain walk's wrong offset."""
        fields = {"historical": self.historical(call, page, info)}
        notes = self.notes.get(call) if call is not None else None
        fields.update(self.misdirected(notes, (page.obj.name, page.pindex), None))
        return fields

    def historical(self, call: OpenCall | None, page: VmPage, info: StoreInfo | None) -> bool:
        """The data loss of an invalidate that frees every unwired page (freebsd5's,
        historical): it frees a page still dirty -- re-dirtied after this call flushed
        it, or whose write failed, or dirtied through another mapping (another
        process's, or a writable one of this map) while the range reaches the page
        through an entry the call does not flush (read-only), whose invalidate frees
        it unflushed."""
        if (self.k.profile.invalidate_frees is not InvalidateFrees.EVERY_UNWIRED or call is None
                or not call.invalidate or info is None):
            return False
        if info.sid != page.contents or (page.valid and not page.dirty):
            # The loss frees (or, wired, discards) a dirty page: a clean one freed with
            # data the pager lacks lost it otherwise (its write still in flight: H2).
            return False
        notes = self.notes.get(call)
        key = (page.obj.name, page.pindex)
        flushed_at = notes.flushed.get(key) if notes else None
        if flushed_at is not None:
            # Re-dirtied after the flush, or the flush's write failed (EIO): dirty either way.
            return info.step > flushed_at or key in self.failed_writes
        # Not flushed by this call: a store through another map, or the range reaches the
        # page through an entry the profile does not flush (read-only), whose invalidate
        # frees the page dirty, as the 2003 code did entry by entry -- or the 2003 page
        # clean returned at once, OBJ_MIGHTBEDIRTY cleared by an earlier clean whose write
        # failed or that has not reached the page yet (H24), and the invalidate freed it.
        if self.k.profile.flag_page_clean and not page.obj.might_be_dirty():
            return True
        return info.map != call.vm_map.name or (notes is not None and key in notes.unflushed)

    def _issue(self, step: int, aid: int, ev: IoIssue) -> None:
        self.issue(ev.obj, ev.pindex, ev.data, ev.sync, ev.io)

    def issue(self, obj: str, pindex: int, data: int, sync: int, io: Io) -> None:
        """The twin of ``_issue`` taking the event's fields (kern/kernel.py, ``twin``)."""
        call = self.calls.calls.get(io.issuer)
        if call is not None and call.invalidate:
            self._notes(call).flushed[(obj, pindex)] = self.k.sched.step

    def final(self) -> None:
        k = self.k
        for (fname, pindex), info in sorted(self.stores.last.items(), key=lambda kv: kv[1].sid):
            pager = k.files[fname].pager
            assert pager is not None
            held = pager.stored[pindex]
            if held != info.sid:
                self.violate(
                    f"after every CPU finished and a trusted flush, the pager of page "
                    f"{fname}:{pindex} holds store #{held}, not the last one, "
                    f"{self.describe(info)} at {info.va:#x} in {info.map}: that store was lost",
                    cpus=[info.cpu],
                    page=f"{fname}:{pindex}",
                )
                return


twin(IoDone, LostStore._io_done, LostStore.io_done)
twin(IoIssue, LostStore._issue, LostStore.issue)
