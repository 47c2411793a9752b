"""Rule 7, ``async_clean``: an asynchronous clean queues every dirty page.

Every page dirty at the call (flag or modified bit), in a range entry the
profile flushes, has a write issued before the call returns -- or the pager
already holds its contents by then (another clean wrote it).  Storage catches
up without further user action: when every CPU is done, no write is left
queued and no page of a file is left busy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator.check.base import CleanCall, tracker
from emulator.check.lost_store import flushed_pages
from emulator.kern.kern_return import KernReturn
from emulator.kern.pmap import is_modified

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.map import VmMap
    from emulator.spec import Spec

RULE = "async_clean"


def install(k: Kernel, spec: Spec) -> None:
    calls = tracker(k)

    def expect(call: CleanCall) -> None:
        """Note the pages dirty now; redone when the call's window opens."""
        if call.syncio or call.invalidate:
            return
        k.in_checker = True
        dirty = []
        for obj, pindex, va, _ in flushed_pages(k, call.vm_map, call.start, call.end):
            page = obj.pages.get(pindex)
            if page is None or not (page.dirty or is_modified(page)):
                continue
            if any(io.page is page and io.data == page.contents for io in k.disk.queue):
                continue  # a write of exactly this data is already queued
            dirty.append((obj.name, pindex, page.contents, va))
        k.in_checker = False
        call.data["async.dirty"] = dirty
        call.data["async.issued"] = set()
        call.data["async.removed"] = []

    def on_call(vm_map: VmMap, start: int, end: int, syncio: bool, inval: bool) -> None:
        expect(calls.calls[k.curcpu()])

    def on_issue(step: int, aid: int, f: tuple[Any, ...]) -> None:
        for call in calls.calls.values():
            if "async.issued" in call.data:
                call.data["async.issued"].add((f[0], f[1]))

    def on_entry_remove(step: int, aid: int, f: tuple[Any, ...]) -> None:
        for call in calls.calls.values():
            if call.vm_map.name == f[0] and "async.removed" in call.data:
                call.data["async.removed"].append((f[1], f[2]))

    def on_return(call: CleanCall, rv: Any) -> None:
        dirty = call.data.get("async.dirty")
        if not dirty or rv != KernReturn.SUCCESS:
            return
        issued = call.data["async.issued"]
        removed = call.data["async.removed"]
        for fname, pindex, contents, va in dirty:
            if (fname, pindex) in issued or any(lo <= va < hi for lo, hi in removed):
                continue
            pager = k.files[fname].pager
            assert pager is not None
            if pager.stored[pindex] >= contents:
                continue
            k.monitor.fatal(
                RULE,
                f"{k.agent_name(call.cpu)}'s asynchronous clean of [{call.start:#x},"
                f"{call.end:#x}) returned with page {fname}:{pindex} (holding store "
                f"#{contents}, dirty at the call) neither written nor queued",
                cpus=[call.cpu],
                page=f"{fname}:{pindex}",
            )
            return

    def on_end() -> None:
        if k.disk.queue:
            io = k.disk.queue[0]
            k.monitor.note(RULE, f"every CPU finished but the write of page {io.page.name} "
                           "is still queued", cpus=[io.issuer])

    k.hook("clean_call", on_call)
    calls.on_open.append(expect)
    k.observe("io_issue", on_issue)
    k.observe("entry_remove", on_entry_remove)
    calls.on_return.append(on_return)
    k.hook("end", on_end)
