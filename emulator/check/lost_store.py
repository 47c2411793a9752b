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
* **at every page free**: a freed file page's contents are in the pager;
* **at the end**: after the trusted full flush, every file's pager holds the
  last store to each of its pages.

The expected state comes from the stores themselves, never from the variant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator.check.base import CleanCall, tracker
from emulator.kern.kern_return import KernReturn
from emulator.kern.param import PAGE_MASK, PAGE_SHIFT
from emulator.kern.pmap import is_modified

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.map import VmMap, VmMapEntry
    from emulator.kern.object import VmObject
    from emulator.kern.page import VmPage
    from emulator.kern.pager import Io
    from emulator.spec import Spec

RULE = "lost_store"


class StoreInfo:
    __slots__ = ("cpu", "map", "sid", "step", "va")

    def __init__(self, sid: int, cpu: int, step: int, map_name: str, va: int) -> None:
        self.sid = sid
        self.cpu = cpu
        self.step = step
        self.map = map_name
        self.va = va


def flushed_pages(
    k: Kernel, vm_map: VmMap, start: int, end: int
) -> list[tuple[VmObject, int, int, int]]:
    """Return (file object, pindex, va, entry end) for the pages a clean must flush.

    Computed independently of any variant from the map as it is now, per the
    profile's "which objects are flushed" row.
    """
    modern = k.profile == "modern"
    start, end = vm_map.clamp(start, end)
    first = vm_map.entry_containing(start)
    if first is None:
        return []
    if modern and start == end:
        start, end = first.start, first.end
    out: list[tuple[VmObject, int, int, int]] = []
    entry: VmMapEntry | None = first
    while entry is not None and entry.start < end:
        lo, hi = max(start, entry.start), min(end, entry.end)
        target: VmMapEntry | None = entry
        if entry.submap is not None:
            target = entry.submap.entry_containing(entry.offset + (lo - entry.start))
            if not modern:
                target = None
        if target is not None and target.obj is not None:
            obj = target.obj
            offset = target.offset
            while obj.backing is not None:
                offset += obj.backing_offset << PAGE_SHIFT
                obj = obj.backing
            private = target.obj is not obj
            if obj.kind == "file" and not private and (modern or target.writable):
                va = lo & ~PAGE_MASK
                while va < hi:
                    pindex = (offset + (va - target.start)) >> PAGE_SHIFT
                    out.append((obj, pindex, va, entry.end))
                    va += 1 << PAGE_SHIFT
        entry = vm_map.succ(entry)
    return out


def install(k: Kernel, spec: Spec) -> None:
    calls = tracker(k)
    last: dict[tuple[str, int], StoreInfo] = {}
    failed_writes: set[tuple[str, int]] = set()

    def describe(info: StoreInfo) -> str:
        return f"store #{info.sid} by {k.agent_name(info.cpu)} at step {info.step}"

    def on_store(vm_map: VmMap, va: int, page: VmPage, sid: int) -> None:
        if page.obj.kind == "file":
            last[(page.obj.name, page.pindex)] = StoreInfo(
                sid, k.curcpu(), k.sched.step, vm_map.name, va
            )

    def expect(call: CleanCall) -> None:
        """Note the stores the call must flush, from the map as it is now.

        Done at the call and again when the call's window opens (its first
        look at the map): what the routine sees is the map at that moment.
        """
        if not (call.syncio or call.invalidate):
            return
        k.in_checker = True
        expected = []
        for obj, pindex, va, _ in flushed_pages(k, call.vm_map, call.start, call.end):
            info = last.get((obj.name, pindex))
            if info is not None:
                expected.append((obj, pindex, va, info))
        k.in_checker = False
        call.data["lost_store.expected"] = expected
        call.data["lost_store.removed"] = []

    def on_call(vm_map: VmMap, start: int, end: int, syncio: bool, inval: bool) -> None:
        expect(calls.calls[k.curcpu()])

    def on_entry_remove(step: int, aid: int, f: tuple[Any, ...]) -> None:
        for call in calls.calls.values():
            if call.vm_map.name == f[0] and "lost_store.removed" in call.data:
                call.data["lost_store.removed"].append((f[1], f[2]))

    def on_return(call: CleanCall, rv: Any) -> None:
        expected = call.data.get("lost_store.expected")
        if not expected or rv != KernReturn.SUCCESS:
            return
        removed = call.data["lost_store.removed"]
        for obj, pindex, va, info in expected:
            if any(lo <= va < hi for lo, hi in removed):
                continue  # the mapping went away during the call
            if (obj.name, pindex) in failed_writes:
                continue
            assert obj.pager is not None
            held = obj.pager.stored[pindex]
            if held < info.sid:
                op = k.shared.get("current_op", {}).get(call.cpu)
                kind = "msync" if op == "msync" else "clean"
                k.monitor.fatal(
                    RULE,
                    f"{k.agent_name(call.cpu)}'s synchronous {kind} of "
                    f"[{call.start:#x},{call.end:#x}) in {call.vm_map.name} (called at step "
                    f"{call.called_at}) returned success, but the pager of page {obj.name}:"
                    f"{pindex} holds store #{held}, not {describe(info)} before the call",
                    cpus=[call.cpu, info.cpu],
                    page=f"{obj.name}:{pindex}",
                    store=info.sid,
                    pager=held,
                )

    def on_io_done(io: Io) -> None:
        page = io.page
        key = (page.obj.name, page.pindex)
        if io.error:
            failed_writes.add(key)
            return
        pager = page.obj.pager
        assert pager is not None
        if page.contents == pager.stored[page.pindex] or page.dirty or is_modified(page):
            return
        if any(other.page is page and other.data == page.contents for other in k.disk.queue):
            return
        info = last.get(key)
        who = describe(info) if info is not None and info.sid == page.contents else (
            f"store #{page.contents}")
        k.monitor.fatal(
            RULE,
            f"the write of page {page.obj.name}:{page.pindex} (store #{io.data}, issued by "
            f"{k.agent_name(io.issuer)}) completed and left the page clean, but the page "
            f"holds {who}, which is now neither in the pager nor dirty",
            cpus=[io.issuer] + ([info.cpu] if info is not None else []),
            page=f"{page.obj.name}:{page.pindex}",
        )

    def on_free(page: VmPage) -> None:
        if page.obj.kind != "file":
            return
        pager = page.obj.pager
        assert pager is not None
        if page.contents == pager.stored[page.pindex]:
            return
        info = last.get((page.obj.name, page.pindex))
        who = describe(info) if info is not None and info.sid == page.contents else (
            f"store #{page.contents}")
        freer = k.curcpu()
        call = calls.calls.get(freer)
        how = "invalidating clean" if call is not None and call.invalidate else "page free"
        k.monitor.fatal(
            RULE,
            f"{k.agent_name(freer)}'s {how} freed page {page.obj.name}:{page.pindex} holding "
            f"{who}, but the pager holds store #{pager.stored[page.pindex]}: the store is lost",
            cpus=[freer] + ([info.cpu] if info is not None else []),
            page=f"{page.obj.name}:{page.pindex}",
            # freebsd5's invalidate frees pages re-dirtied after this call flushed
            # them: its historical data loss.  Anything else is a plain bug.
            historical=historical(call, page, info),
        )

    def historical(call: CleanCall | None, page: VmPage, info: StoreInfo | None) -> bool:
        """freebsd5's data loss: its invalidate frees a page that another process
        dirtied -- after this call flushed the page, or through another mapping
        when this call had nothing to flush (a read-only entry)."""
        if k.profile != "freebsd5" or call is None or not call.invalidate or info is None:
            return False
        if info.sid != page.contents:
            return False
        flushed_at = call.data.get("lost_store.flushed", {}).get((page.obj.name, page.pindex))
        if flushed_at is not None:
            return info.step > int(flushed_at)
        return info.map != call.vm_map.name

    def on_issue(io: Io) -> None:
        call = calls.calls.get(io.issuer)
        if call is not None and call.invalidate:
            key = (io.page.obj.name, io.page.pindex)
            call.data.setdefault("lost_store.flushed", {})[key] = k.sched.step

    def on_final() -> None:
        for (fname, pindex), info in sorted(last.items(), key=lambda kv: kv[1].sid):
            pager = k.files[fname].pager
            assert pager is not None
            held = pager.stored[pindex]
            if held != info.sid:
                k.monitor.fatal(
                    RULE,
                    f"after every CPU finished and a trusted flush, the pager of page "
                    f"{fname}:{pindex} holds store #{held}, not the last one, {describe(info)} "
                    f"at {info.va:#x} in {info.map}: that store was lost",
                    cpus=[info.cpu],
                    page=f"{fname}:{pindex}",
                )
                return

    k.hook("store", on_store)
    k.hook("clean_call", on_call)
    calls.on_open.append(expect)
    k.observe("entry_remove", on_entry_remove)
    calls.on_return.append(on_return)
    k.hook("io_done", on_io_done)
    k.hook("io_issue", on_issue)
    k.hook("page_freeing", on_free)
    k.hook("final", on_final)
