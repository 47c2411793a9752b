"""Rule 4b, ``durable``: a store acknowledged durable is on disk.

``lost_store`` judges *coherence*: the buffer cache (what read(2) would see)
holds every store a synchronous clean must flush.  This rule judges
*durability*, the disk, which a delayed write (bdwrite) leaves behind the
buffer cache until the syncer or a VOP_FSYNC writes it (FIDELITY.md D1):

* **fsync(2)**, in every profile: when it returns 0, the disk holds, for each
  page of the file, the last store made to it before the call (or a later
  one) -- unless a write of that page failed: during the call, where a failed
  write leaves the buffer dirty (``write_clears_dirty_at_start``: brelse
  re-dirties it, so the call's VOP_FSYNC writes it again and fails), or at any
  time before, elsewhere (the page stays dirty, and what retries it is the
  page clean's business);
* **msync(MS_SYNC)**, where the profile promises it (``msync_sync_durable``:
  manpage and freebsd5, not modern): when the clean returns success, the disk
  holds every store to a page of its range that ``lost_store`` expects in the
  buffer cache -- a store not even there is lost_store's to report.

The expected state comes from the stores themselves and the disk's contents,
never from the variant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.check import Rule
from emulator.check.base import Checker, OpenCall, tracker
from emulator.check.lost_store import StoreInfo, reached, store_log
from emulator.kern.events import (
    BufDone,
    CleanCall,
    EntryRemove,
    FsyncCall,
    FsyncReturn,
    IoDone,
)
from emulator.kern.kern_return import KernReturn
from emulator.kern.kernel import twin

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.pager import Io

SUCCESS = KernReturn.SUCCESS.label

# (file, pindex, va or -1, the last store before the call)
Expected = list[tuple[str, int, int, StoreInfo]]


class Durable(Checker):
    rule = Rule.DURABLE

    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        self.stores = store_log(k)
        self.failed_writes: set[tuple[str, int]] = set()
        self.failed_at: dict[tuple[str, int], int] = {}  # page -> step of its last failed write
        # cpu -> (file, expected, step of the call)
        self.fsyncs: dict[int, tuple[str, Expected, int]] = {}
        k.observe(IoDone, self._io_done)
        k.observe(BufDone, self._buf_done)
        k.observe(FsyncCall, self._fsync_call)
        k.observe(FsyncReturn, self._fsync_return)
        self.msyncs: dict[OpenCall, tuple[Expected, list[tuple[int, int]]]] = {}
        if k.profile.msync_sync_durable:
            self.calls = calls = tracker(k)
            k.observe(CleanCall, self._clean_call)
            calls.on_open.append(self._expect)
            calls.on_return.append(self._clean_return)
            k.observe(EntryRemove, self._entry_remove)

    def describe(self, info: StoreInfo) -> str:
        return f"store #{info.sid} by {self.k.agent_name(info.cpu)} at step {info.step}"

    def _io_done(self, step: int, aid: int, ev: IoDone) -> None:
        self.io_done(ev.obj, ev.pindex, ev.data, ev.error, ev.io)

    def io_done(self, obj: str, pindex: int, data: int, error: int, io: Io) -> None:
        """The twin of ``_io_done`` taking the event's fields (kern/kernel.py, ``twin``)."""
        if error:
            self.failed_writes.add((obj, pindex))
            self.failed_at[(obj, pindex)] = self.k.sched.step

    def _buf_done(self, step: int, aid: int, ev: BufDone) -> None:
        if ev.error:
            self.failed_writes.add((ev.obj, ev.pindex))
            self.failed_at[(ev.obj, ev.pindex)] = step

    # -- fsync(2) ---------------------------------------------------------------------

    def _fsync_call(self, step: int, aid: int, ev: FsyncCall) -> None:
        name = ev.file
        expected = [(f, pindex, -1, info) for (f, pindex), info in self.stores.last.items()
                    if f == name]
        self.fsyncs[aid] = (name, expected, step)

    def _fsync_return(self, step: int, aid: int, ev: FsyncReturn) -> None:
        name, expected, called_at = self.fsyncs.pop(aid)
        if ev.ok:
            # Where a failed write leaves its buffer dirty, VOP_FSYNC retries it: only
            # a failure during this call excuses a store missing from the disk.
            since = called_at if self.k.profile.write_clears_dirty_at_start else None
            self._judge(aid, f"fsync of file {name}", expected, [], failed_since=since)

    # -- msync(MS_SYNC) ---------------------------------------------------------------

    def _expect(self, call: OpenCall) -> None:
        """Note the stores a synchronous clean must make durable (as lost_store
        notes those it must make coherent), at the call and at its window."""
        if not call.syncio or call.invalidate:
            return
        k = self.k
        k.in_checker = True
        expected: Expected = []
        for obj, pindex, va, _, flushed in reached(k, call):
            info = self.stores.last.get((obj.name, pindex))
            if flushed and info is not None:
                expected.append((obj.name, pindex, va, info))
        k.in_checker = False
        self.msyncs[call] = (expected, [])

    def _clean_call(self, step: int, aid: int, ev: CleanCall) -> None:
        self._expect(self.calls.calls[aid])

    def _entry_remove(self, step: int, aid: int, ev: EntryRemove) -> None:
        for call, (_, removed) in self.msyncs.items():
            if call.vm_map.name == ev.map:
                removed.append((ev.start, ev.end))

    def _clean_return(self, call: OpenCall, rv: str) -> None:
        noted = self.msyncs.pop(call, None)
        if noted is None or rv != SUCCESS:
            return
        expected, removed = noted
        op = self.k.shared.get("current_op", {}).get(call.cpu)
        kind = "msync" if op == "msync" else "clean"
        self._judge(call.cpu, f"synchronous {kind} of [{call.start:#x},{call.end:#x}) in "
                    f"{call.vm_map.name} (called at step {call.called_at})", expected, removed,
                    coherent_only=True)

    # -- the verdict --------------------------------------------------------------------

    def _judge(self, cpu: int, what: str, expected: Expected, removed: list[tuple[int, int]],
               coherent_only: bool = False, failed_since: int | None = None) -> None:
        """Report the first expected store that is not on disk.  ``coherent_only``:
        only a store the buffer cache holds (lost_store reports the others).
        ``failed_since``: a failed write excuses a page only from that step on
        (None: any failed write of the page ever)."""
        k = self.k
        for fname, pindex, va, info in expected:
            if failed_since is None:
                if (fname, pindex) in self.failed_writes:
                    continue
            elif self.failed_at.get((fname, pindex), -1) >= failed_since:
                continue
            if va >= 0 and any(lo <= va < hi for lo, hi in removed):
                continue  # the mapping went away during the call
            pager = k.pagers[fname]
            on_disk = pager.disk[pindex]
            if on_disk >= info.sid:
                continue
            coherent = pager.stored[pindex] >= info.sid
            if coherent_only and not coherent:
                continue
            where = ("the buffer cache holds it (read(2) sees it) but not the disk"
                     if coherent else "neither the buffer cache nor the disk holds it")
            self.violate(
                f"{k.agent_name(cpu)}'s {what} returned success, but page {fname}:{pindex} "
                f"has store #{on_disk} on disk, not {self.describe(info)} before the call: "
                f"{where}",
                cpus=[cpu, info.cpu],
                page=f"{fname}:{pindex}",
                store=info.sid,
                disk=on_disk,
            )
            return


twin(IoDone, Durable._io_done, Durable.io_done)
