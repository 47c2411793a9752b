"""System calls for CPU programs, and the table that describes them.

Each returns what a stress tool would record: ``load`` the value read (a store
id), ``store`` 0, a fault's failure ``SIGSEGV``, ``msync`` 0 or an errno name,
``clean`` a ``KERN_*`` name.  Map changes (mmap, munmap, mprotect, mlock,
munlock) take the map lock exclusive; munmap removes page-table entries before unlinking the
entries, so modified bits reach the page's dirty flag and nothing is lost.

``SYSCALLS`` (at the end) is the one description of every call a program may
make: its arguments and their kinds, its handler, and how a timeline phrases
it.  The spec parser, the machine and the trace viewer read it; adding a call
is one ``sys_*`` function and one row there (a new argument kind also needs
its parser in emulator/spec.py).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from emulator.kern.events import (
    BadReturn,
    CleanCall,
    CleanReturn,
    EntryProtect,
    FsyncCall,
    FsyncReturn,
    Load,
    MsyncErrno,
    ObjectNew,
    Unwire,
    Wire,
)
from emulator.kern.kern_return import KERN_SUCCESS, KernReturn
from emulator.kern.map import PROT_WORDS, PROT_WRITE, Prot, VmMapEntry
from emulator.kern.object import OBJT_ANON, OBJT_DEVICE, VmObject
from emulator.kern.param import ADDR_LIMIT, PAGE_MASK, PAGE_SHIFT, round_page, trunc_page
from emulator.kern.pmap import fold_modified
from emulator.kern.profile import msync_errno

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.map import VmMap


SIGSEGV = "SIGSEGV"

# msync(2)'s flags as a program names them: MS_ASYNC, MS_INVALIDATE, MS_SYNC.
MSYNC_FLAG_WORDS = ("async", "invalidate", "sync")


class MappingRequest(Protocol):
    """What mmap(2) and the machine builder read of a mapping (a spec's MappingSpec)."""

    @property
    def kind(self) -> str: ...  # "file" | "anon" | "device" | "submap"
    @property
    def prot(self) -> str: ...  # a key of PROT_WORDS
    @property
    def file(self) -> str | None: ...
    @property
    def offset(self) -> int: ...  # in pages, into ``file``
    @property
    def wired(self) -> bool: ...
    @property
    def private(self) -> bool: ...
    @property
    def nosync(self) -> bool: ...  # MAP_NOSYNC
    def options_json(self) -> dict[str, Any]: ...  # everything but addr and pages, as plain data


# -- building entries (also used by the machine builder, outside any agent) -------


def make_entry(k: Kernel, start: int, pages: int, ms: MappingRequest) -> VmMapEntry:
    """Build an entry (and its objects) for a mapping spec at ``start``."""
    entry = _make_entry(k, start, pages, ms)
    if ms.nosync:  # MAP_NOSYNC: MAP_ENTRY_NOSYNC on the entry (and a sub-map's inner one)
        entry.nosync = True
        if entry.submap is not None:
            for inner in entry.submap.entries.values():
                inner.nosync = True
    return entry


def _make_entry(k: Kernel, start: int, pages: int, ms: MappingRequest) -> VmMapEntry:
    end = start + (pages << PAGE_SHIFT)
    prot = PROT_WORDS[ms.prot]
    if ms.kind == "submap":
        from emulator.kern.map import VmMap

        sub = VmMap(k, k.new_object_name("submap"))
        inner = VmMapEntry(start, end, None, 0, prot, "anon", ms.wired)
        if ms.file is not None:
            fobj = k.files[ms.file]
            fobj.ref_count += 1
            inner = VmMapEntry(start, end, fobj, ms.offset << PAGE_SHIFT, prot, "file", ms.wired)
        sub.entries[start] = inner
        # The sub-map's addresses equal the parent's: offset == start.
        return VmMapEntry(start, end, None, start, prot, "submap", ms.wired, submap=sub)
    if ms.kind == "file":
        assert ms.file is not None
        fobj = k.files[ms.file]
        fobj.ref_count += 1
        # A private mapping maps the file's object copy-on-write: its first write
        # fault (or wiring, if writable) shadows it (vm_map_entry's NEEDS_COPY).
        return VmMapEntry(start, end, fobj, ms.offset << PAGE_SHIFT, prot, "file", ms.wired,
                          needs_copy=ms.private)
    if ms.kind == "device":
        dev = VmObject(k, OBJT_DEVICE, k.new_object_name("dev"), pages)
        dev.ref_count = 1
        return VmMapEntry(start, end, dev, 0, prot, "device", ms.wired)
    return VmMapEntry(start, end, None, 0, prot, "anon", ms.wired)


def shadow_entry(k: Kernel, entry: VmMapEntry) -> VmObject:
    """Put an anonymous shadow object over a copy-on-write entry's object
    (vm_object_shadow, as vm_map_lookup does for a write fault on a NEEDS_COPY
    entry).  The map must be locked exclusive.

    The shadow takes over the entry's reference on the object below and sits at
    the entry's offset into it; the entry then maps the shadow from offset 0.
    Pages copied on write go into the shadow; a clean follows the chain down.
    """
    below = entry.obj
    assert below is not None and entry.needs_copy
    pages = (entry.end - entry.start) >> PAGE_SHIFT
    shadow = VmObject(k, OBJT_ANON, k.new_object_name("shadow"), pages)
    shadow.backing = below
    shadow.backing_offset = entry.offset >> PAGE_SHIFT
    shadow.ref_count = 1
    entry.obj = shadow
    entry.offset = 0
    entry.needs_copy = False
    k.emit(ObjectNew(shadow.name))
    return shadow


def cow_contents(obj: VmObject, pindex: int) -> int:
    """The data a new page at ``pindex`` of shadow ``obj`` starts with: the object
    below's resident page (its modified bits folded in), or its pager's."""
    below = obj.backing
    assert below is not None
    bpindex = pindex + obj.backing_offset
    src = below.pages.get(bpindex)
    if src is not None and src.valid:
        fold_modified(src)
        contents: int = src.contents
        return contents
    if below.backing is not None:
        return cow_contents(below, bpindex)
    return below.pager.read(bpindex) if below.pager is not None else 0


def top_object(k: Kernel, entry: VmMapEntry) -> VmObject:
    """Return the object the entry's pages live in, creating anonymous memory."""
    if entry.obj is None:
        pages = (entry.end - entry.start) >> PAGE_SHIFT
        obj = VmObject(k, OBJT_ANON, k.new_object_name("anon"), pages)
        obj.ref_count = 1
        entry.obj = obj
        k.emit(ObjectNew(obj.name))
    return entry.obj


def submap_pieces(entry: VmMapEntry) -> list[tuple[VmMapEntry, int, int]]:
    """The inner entries a sub-map entry covers, each with the part [start, end) of the
    sub-map's address space that this (possibly clipped) entry covers."""
    assert entry.submap is not None
    lo = entry.offset
    hi = lo + (entry.end - entry.start)
    out = []
    for inner in entry.submap.entries.values():
        start, end = max(lo, inner.start), min(hi, inner.end)
        if start < end:
            out.append((inner, start, end))
    return out


def wire_now(k: Kernel, entry: VmMapEntry) -> None:
    """Make an entry's pages resident and wired, synchronously (machine build only)."""
    if entry.submap is not None:
        # A sub-map entry's wiring is its own, over the part it covers; the inner
        # entries' flags are not consulted.
        for inner, start, end in submap_pieces(entry):
            _wire_now_range(k, inner, start, end)
        return
    _wire_now_range(k, entry, entry.start, entry.end)


def _wire_now_range(k: Kernel, entry: VmMapEntry, start: int, end: int) -> None:
    if entry.needs_copy and entry.writable:
        shadow_entry(k, entry)  # wiring a writable private mapping copies its pages
    obj = top_object(k, entry)
    first = (entry.offset + (start - entry.start)) >> PAGE_SHIFT
    for pindex in range(first, first + ((end - start) >> PAGE_SHIFT)):
        page = obj.lookup_page(pindex)
        if page is None:
            page = obj.alloc_page(pindex, busy=False)
            page.valid = True
            if obj.pager is not None:
                page.contents = obj.pager.read(pindex)
            elif obj.backing is not None:
                page.contents = cow_contents(obj, pindex)
        page.wire_count += 1


# -- memory access ---------------------------------------------------------------------


async def sys_load(k: Kernel, vm_map: VmMap, va: int) -> int | str:
    """Read the word at ``va``: the id of the store that page holds."""
    vpn = va >> PAGE_SHIFT
    while True:
        await k.kpoint()
        if k.watched:  # only footprint-aware strategies pay for this
            k.read("map", vm_map.name)
        pte = vm_map.pmap.lookup(vpn)
        if pte is not None:
            k.touch_page(pte.page)
            value = pte.page.contents
            k.emit(Load(vm_map.name, va, value))
            return value
        assert k.fault_impl is not None
        if not k.trusted:
            k.untrusted()
        rv = await k.fault_impl(vm_map, va, False)
        if rv != KERN_SUCCESS:
            return SIGSEGV


async def sys_store(k: Kernel, vm_map: VmMap, va: int) -> int | str:
    """Write a fresh unique value at ``va``; fault first if the page is not writable.

    A store through a writable mapping takes no lock: it sets the hardware
    modified bit and the page's contents in one step.
    """
    vpn = va >> PAGE_SHIFT
    while True:
        await k.kpoint()
        if k.watched:  # only footprint-aware strategies pay for this
            k.read("map", vm_map.name)
        pte = vm_map.pmap.ptes.get(vpn)  # Pmap.lookup, inlined
        if pte is not None and pte.writable:
            page = pte.page
            if page.freed:
                k.touch_page(page)
            k.store_seq = value = k.store_seq + 1  # k.new_store_id(), inlined
            pte.modified = True
            page.contents = value
            k.emit_store(vm_map.name, va, page.obj.name, page.pindex, value, page)
            return 0
        assert k.fault_impl is not None
        if not k.trusted:
            k.untrusted()
        rv = await k.fault_impl(vm_map, va, True)
        if rv != KERN_SUCCESS:
            return SIGSEGV


# -- map changes --------------------------------------------------------------------


async def remove_range(vm_map: VmMap, start: int, end: int) -> None:
    """Unmap [start, end): page tables first, then clip and unlink entries.

    The map must be locked exclusive.
    """
    await vm_map.pmap.remove(start >> PAGE_SHIFT, end >> PAGE_SHIFT)
    await remove_entries(vm_map, start, end)


async def remove_entries(vm_map: VmMap, start: int, end: int) -> None:
    """Clip, unwire, unlink and free the entries of [start, end) (vm_map_delete).

    The map must be locked exclusive, and the range's page-table entries
    already removed (their modified bits folded into the pages).
    """
    k = vm_map.k
    entry = vm_map.entry_containing(start) or vm_map.first_entry_after(start)
    while entry is not None and entry.start < end:
        if entry.start < start:
            entry = vm_map.clip(entry, start)
        if entry.end > end:
            vm_map.clip(entry, end)
        nxt = vm_map.succ(entry)
        if entry.wired:
            await unwire_entry(k, entry)
        vm_map.unlink_entry(entry)
        entry = nxt


async def sys_munmap(k: Kernel, vm_map: VmMap, addr: int, length: int) -> int | str:
    """munmap(2): remove every mapping in the page-rounded range."""
    start = trunc_page(addr)
    end = round_page(addr + length)
    if length == 0 or end > vm_map.max or end <= start:
        return "EINVAL"
    assert k.munmap_impl is not None
    if not k.trusted:
        k.untrusted()
    rv = await k.munmap_impl(vm_map, start, end)
    return 0 if rv is None else rv  # a munmap path may return nothing: success


def munmap_refused(vm_map: VmMap, start: int, end: int) -> str | None:
    """The errno munmap returns for [start, end), or None to go ahead.  Map locked.

    A profile with ``munmap_hole`` refuses a range with a hole in it ("Make sure
    entire range is allocated", the 2003 munmap); the others remove what is mapped.
    """
    errno = vm_map.k.profile.munmap_hole
    if errno is None or _covered(vm_map, start, end) is not None:
        return None
    return errno


async def munmap_path(vm_map: VmMap, start: int, end: int) -> int | str:
    """The reference munmap: lock exclusive, check the range, unmap, unlock."""
    await vm_map.lock.xlock()
    refused = munmap_refused(vm_map, start, end)
    if refused is None:
        await remove_range(vm_map, start, end)
    await vm_map.lock.unlock()
    return 0 if refused is None else refused


async def sys_mmap(
    k: Kernel, vm_map: VmMap, addr: int, pages: int, ms: MappingRequest
) -> int | str:
    """mmap(2) with MAP_FIXED: replace whatever is mapped at [addr, addr + pages)."""
    start = addr
    end = addr + (pages << PAGE_SHIFT)
    if addr & PAGE_MASK or pages <= 0 or end > vm_map.max:
        return "EINVAL"
    await vm_map.lock.xlock()
    await remove_range(vm_map, start, end)
    entry = make_entry(k, start, pages, ms)
    vm_map.insert_entry(entry)
    if ms.wired:
        await wire_entry(k, entry)
    await vm_map.lock.unlock()
    return 0


async def wire_entry(k: Kernel, entry: VmMapEntry) -> None:
    """Make an entry's pages resident and wire them.  Map locked exclusive.

    Order map -> vnode -> object; a busy page is waited for without the object
    lock.  (FreeBSD marks the entry in transition and unlocks the map; holding
    it is simpler and excludes the same races here.)  A sub-map entry wires the
    pages of the part of the sub-map it covers, once, whatever the inner
    entries' own flags say.
    """
    if entry.submap is not None:
        for inner, start, end in submap_pieces(entry):
            await _wire_range(k, inner, start, end)
        return
    await _wire_range(k, entry, entry.start, entry.end)


async def _wire_range(k: Kernel, entry: VmMapEntry, start: int, end: int) -> None:
    if entry.needs_copy and entry.writable:
        shadow_entry(k, entry)  # wiring a writable private mapping copies its pages
    obj = top_object(k, entry)
    first = (entry.offset + (start - entry.start)) >> PAGE_SHIFT
    count = (end - start) >> PAGE_SHIFT
    vnode = obj.vnode
    if vnode is not None:
        await vnode.lock()
    await obj.lock.lock()
    pindex = first
    while pindex < first + count:
        page = obj.lookup_page(pindex)
        if page is None:
            page = obj.alloc_page(pindex)
            page.valid = True
            if obj.pager is not None:
                page.contents = obj.pager.read(pindex)
            elif obj.backing is not None:
                page.contents = cow_contents(obj, pindex)
            page.wire_count += 1
            await page.xunbusy()
        elif page.is_busy():
            await obj.lock.unlock()
            await page.wait_unbusy()
            await obj.lock.lock()
            continue
        else:
            await k.kpoint()
            page.wire_count += 1
        k.emit(Wire(obj.name, pindex, page.wire_count))
        pindex += 1
    await obj.lock.unlock()
    if vnode is not None:
        await vnode.unlock()


async def unwire_entry(k: Kernel, entry: VmMapEntry) -> None:
    """Drop the wiring an entry put on its resident pages.  Map locked exclusive."""
    entry.wired = False
    if entry.submap is not None:
        for inner, start, end in submap_pieces(entry):
            await _unwire_range(k, inner, start, end)
        return
    await _unwire_range(k, entry, entry.start, entry.end)


async def _unwire_range(k: Kernel, entry: VmMapEntry, start: int, end: int) -> None:
    obj = entry.obj
    if obj is None:
        return
    first = (entry.offset + (start - entry.start)) >> PAGE_SHIFT
    count = (end - start) >> PAGE_SHIFT
    await obj.lock.lock()
    for pindex in range(first, first + count):
        page = obj.lookup_page(pindex)
        if page is not None and page.wire_count > 0:
            page.wire_count -= 1
            k.emit(Unwire(obj.name, pindex, page.wire_count))
    await obj.lock.unlock()


def _covered(vm_map: VmMap, start: int, end: int) -> list[VmMapEntry] | None:
    """Return the entries covering [start, end) with no hole, or None."""
    out: list[VmMapEntry] = []
    at = start
    entry = vm_map.entry_containing(start)
    while at < end:
        if entry is None or entry.start > at:
            return None
        out.append(entry)
        at = entry.end
        entry = vm_map.succ(entry)
    return out


async def sys_mlock(k: Kernel, vm_map: VmMap, addr: int, length: int) -> int | str:
    """mlock(2): user-wire every entry of the range (clipped to it)."""
    start = trunc_page(addr)
    end = round_page(addr + length)
    if end <= start:
        return 0
    await vm_map.lock.xlock()
    entries = _covered(vm_map, start, end)
    if entries is None:
        await vm_map.lock.unlock()
        return "ENOMEM"
    for entry in _clip_all(vm_map, entries, start, end):
        if not entry.wired:
            entry.wired = True
            await wire_entry(k, entry)
    await vm_map.lock.unlock()
    return 0


async def sys_munlock(k: Kernel, vm_map: VmMap, addr: int, length: int) -> int | str:
    """munlock(2): drop the user wiring of every entry of the range."""
    start = trunc_page(addr)
    end = round_page(addr + length)
    if end <= start:
        return 0
    await vm_map.lock.xlock()
    entries = _covered(vm_map, start, end)
    if entries is None:
        await vm_map.lock.unlock()
        return "ENOMEM"
    for entry in _clip_all(vm_map, entries, start, end):
        if entry.wired:
            await unwire_entry(k, entry)
    await vm_map.lock.unlock()
    return 0


def _clip_all(
    vm_map: VmMap, entries: list[VmMapEntry], start: int, end: int
) -> list[VmMapEntry]:
    out = []
    for entry in entries:
        if entry.start < start:
            entry = vm_map.clip(entry, start)
        if entry.end > end:
            vm_map.clip(entry, end)
        out.append(entry)
    return out


async def sys_mprotect(k: Kernel, vm_map: VmMap, addr: int, length: int,
                       prot: str) -> int | str:
    """mprotect(2): give every entry of the page-rounded range protection ``prot``.

    Entries have no maximum protection here, so the only failure is a sub-map in
    the range (KERN_INVALID_ARGUMENT, EINVAL); never EACCES.
    """
    rv = await protect_range(vm_map, trunc_page(addr), round_page(addr + length),
                             PROT_WORDS[prot])
    return 0 if rv == KernReturn.SUCCESS else "EINVAL"


async def protect_range(vm_map: VmMap, start: int, end: int, prot: Prot) -> KernReturn:
    """vm_map_protect: set the protection of the entries of [start, end), clipped to it.

    Holes are skipped; a sub-map entry in the range refuses the whole call before
    anything changes.  Lowering an entry's protection revokes write access in this
    map's page tables (pmap_protect), folding the modified bits into the pages, so a
    later store faults and fails; raising it changes only the entry: the next write
    fault maps the page writable.  The range is clamped to the map.
    """
    k = vm_map.k
    await vm_map.lock.xlock()
    start, end = vm_map.clamp(start, end)
    first = await vm_map.lookup_entry(start) or vm_map.first_entry_after(start)
    cur = first
    while cur is not None and cur.start < end:
        if cur.submap is not None:
            await vm_map.lock.unlock()
            return KernReturn.INVALID_ARGUMENT
        cur = vm_map.succ(cur)
    if first is not None and first.start < start:
        first = vm_map.clip(first, start)
    word = next(w for w, p in PROT_WORDS.items() if p == prot)
    cur = first
    while cur is not None and cur.start < end:
        if cur.end > end:
            vm_map.clip(cur, end)
        old = cur.prot
        k.map_access(vm_map, "protect")
        cur.prot = prot
        k.emit(EntryProtect(vm_map.name, cur.start, cur.end, word))
        if PROT_WRITE in old and PROT_WRITE not in prot:
            await vm_map.pmap.protect(cur.start >> PAGE_SHIFT, cur.end >> PAGE_SHIFT)
        cur = vm_map.succ(cur)
    await vm_map.lock.unlock()
    return KernReturn.SUCCESS


# madvise(2)'s advice as a program names it: MADV_NOSYNC, MADV_AUTOSYNC (the two that
# change what the syncer writes; the others only move pages between queues).
MADVISE_WORDS = ("autosync", "nosync")


async def sys_madvise(k: Kernel, vm_map: VmMap, addr: int, length: int,
                      advice: str) -> int | str:
    """madvise(2) with MADV_NOSYNC or MADV_AUTOSYNC: set or clear MAP_ENTRY_NOSYNC on
    every entry of the page-rounded range, clipped to it (vm_map_madvise).

    Holes are skipped and a sub-map entry is left alone, as vm_map_madvise does;
    pages keep their PGA_NOSYNC until a fault dirties them again.  Only a range
    past the map's end is refused (EINVAL).
    """
    start = trunc_page(addr)
    end = round_page(addr + length)
    if end > vm_map.max or end < start:
        return "EINVAL"
    if end == start:
        return 0
    nosync = advice == "nosync"
    await vm_map.lock.xlock()
    start, end = vm_map.clamp(start, end)
    cur = await vm_map.lookup_entry(start) or vm_map.first_entry_after(start)
    if cur is not None and cur.start < start:
        cur = vm_map.clip(cur, start)
    while cur is not None and cur.start < end:
        if cur.submap is None:
            if cur.end > end:
                vm_map.clip(cur, end)
            k.map_access(vm_map, "madvise")
            cur.nosync = nosync
        cur = vm_map.succ(cur)
    await vm_map.lock.unlock()
    return 0


# -- cleaning ---------------------------------------------------------------------


async def sys_clean(
    k: Kernel, vm_map: VmMap, start: int, end: int, syncio: bool, invalidate: bool
) -> KernReturn:
    """Call the clean routine under test, bracketed by events the checkers watch."""
    assert k.clean_impl is not None
    k.emit(CleanCall(vm_map.name, start, end, int(syncio), int(invalidate), vm_map))
    if not k.trusted:
        k.untrusted()
    rv = await k.clean_impl(vm_map, start, end, syncio, invalidate)
    if not isinstance(rv, KernReturn):
        try:
            rv = KernReturn(rv)
        except ValueError:
            k.emit(BadReturn(vm_map, rv))  # the checkers judge it
            raise TypeError(f"clean returned {rv!r}, not a KERN_* code") from None
    k.emit(CleanReturn(vm_map.name, rv.label))
    return rv


async def sys_msync(k: Kernel, vm_map: VmMap, addr: int, length: int, flags: str) -> int | str:
    """msync(2): round to pages, map flags to (syncio, invalidate), clean, and turn
    the clean's code into an errno by the era's switch (``k.msync_errno``)."""
    words = flags.split(",")
    if "async" in words and ("invalidate" in words or "sync" in words):
        return "EINVAL"
    pageoff = addr & PAGE_MASK
    addr -= pageoff
    size = round_page(length + pageoff)
    if addr + size >= ADDR_LIMIT:
        return "EINVAL"
    syncio = "async" not in words
    invalidate = "invalidate" in words
    if size == 0 and k.profile.msync_sizes_zero_length:
        # The 2003 msync: "the entry containing addr", sized under the map lock,
        # which is dropped before the clean takes it again -- the entry can be
        # replaced in between (the TOCTOU cb53ca4d closed by moving this into
        # vm_map_sync; faithful here, FIDELITY.md D6).
        await vm_map.lock.slock()
        entry = await vm_map.lookup_entry(addr)
        await vm_map.lock.unlock()
        if entry is None:
            return msync_errno(k.msync_errno, KernReturn.INVALID_ADDRESS)
        addr, size = entry.start, entry.end - entry.start
    rv = await sys_clean(k, vm_map, addr, addr + size, syncio, invalidate)
    result = msync_errno(k.msync_errno, rv)
    k.emit(MsyncErrno(rv, result))  # the return_code rule judges the switch
    return result


async def sys_fsync(k: Kernel, vm_map: VmMap, file: str) -> int | str:
    """fsync(2) on file ``file`` (kern_fsync): 0, or EIO if a write of it failed.

    Through the clean routine under test's page clean and VOP_FSYNC (the
    variant's, when it overrides them), as the syncer's.
    """
    from emulator.kern.daemons import object_cleaner

    k.emit(FsyncCall(file))
    if not k.trusted:
        k.untrusted()
    ok = await object_cleaner(k).fsync(k.files[file])
    k.emit(FsyncReturn(file, int(ok)))
    return 0 if ok else "EIO"


async def sys_yield(k: Kernel, vm_map: VmMap) -> int:
    """Give another CPU the chance to run: one schedule point."""
    await k.kpoint()
    return 0


def result_value(value: Any) -> Any:
    """Render a system call's result as plain data (``--json``, the ``ret`` event)."""
    if isinstance(value, KernReturn):
        return value.label
    return value


# -- the table --------------------------------------------------------------------


class ArgKind(enum.Enum):
    """What an argument is: the spec parses it, and the table renders it, by its kind."""

    ADDRESS = "address"  # an int; plain data: a hex string
    LENGTH = "length"  # an int, bytes or pages; plain data: the int
    FLAG = "flag"  # a bool
    MSYNC_FLAGS = "msync flags"  # a sorted comma-joined subset of MSYNC_FLAG_WORDS
    MAPPING = "mapping"  # options for the call's first two arguments (addr, pages)
    PROT = "prot"  # a key of PROT_WORDS: r, rw or rwx
    FILE = "file"  # the name of one of the spec's files
    ADVICE = "advice"  # one of MADVISE_WORDS

    def plain(self, value: Any) -> Any:
        """``value`` as plain data (JSON): what a spec or a trace holds."""
        if self is ArgKind.ADDRESS:
            return hex(value)
        if self is ArgKind.MAPPING:
            return value.options_json()
        return value


class Arg(NamedTuple):
    name: str  # as messages name it: ``msync len: negative value -1``
    kind: ArgKind


Phrases = Callable[[Sequence[Any]], tuple[str, ...]]


@dataclass(frozen=True)
class Syscall:
    """One call a CPU program may make: its arguments, its handler, its phrasing.

    ``handler(k, vm_map, *args)`` performs the call and returns its result;
    ``check(args)`` names a problem between arguments (the spec rejects the
    step with it), or returns None.  ``phrases(plain)`` gives the timeline's
    phrasings of a call with plain-data arguments, longest first (default:
    ``name(arg, ...)``).
    """

    name: str
    args: tuple[Arg, ...]
    handler: Callable[..., Awaitable[Any]]
    check: Callable[[tuple[Any, ...]], str | None] | None = None
    phrases: Phrases | None = None
    memory_access: bool = False  # emits an event of its own name unless it faults first
    reaches_clean: bool = False  # a clean_call event follows its call event

    def to_json(self, args: Sequence[Any]) -> list[Any]:
        """Return the canonical plain-data form of a call: ``[name, *args]``."""
        return [self.name, *(a.kind.plain(v) for a, v in zip(self.args, args, strict=True))]

    def event_args(self, args: Sequence[Any]) -> list[Any]:
        """The ``call`` event's fields after the name: plain arguments, mappings left out."""
        return [a.kind.plain(v) for a, v in zip(self.args, args, strict=True)
                if a.kind is not ArgKind.MAPPING]


def _hex(value: Any) -> str:
    return hex(value) if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _generic_phrase(name: str, args: Sequence[Any]) -> str:
    shown = [" ".join(f"{k}={v}" for k, v in sorted(x.items())) if isinstance(x, dict) else str(x)
             for x in args]
    return f"{name}({', '.join(shown)})"


def call_phrases(call: Sequence[Any]) -> tuple[str, ...]:
    """Phrase ``[name, *plain args]`` (a spec's op or a ``call`` event), longest first.

    Works on whatever a trace holds: an unknown name or a wrong count of
    arguments gets the generic ``name(arg, ...)``.
    """
    name, args = str(call[0]), call[1:]
    syscall = SYSCALLS.get(name)
    if syscall is None or syscall.phrases is None or len(args) != len(syscall.args):
        return (_generic_phrase(name, args),)
    return syscall.phrases(args)


def _clean_phrases(a: Sequence[Any]) -> tuple[str, ...]:
    flags = ("sync" if a[2] else "async") + (",inval" if a[3] else "")
    return f"clean({_hex(a[0])}, {_hex(a[1])}, {flags})", f"clean {flags}"


def _msync_phrases(a: Sequence[Any]) -> tuple[str, ...]:
    return _generic_phrase("msync", a), f"msync {a[0]} {a[2]}", f"msync {a[2]}"


def _clean_range(a: tuple[Any, ...]) -> str | None:
    return f"clean start {hex(a[0])} > end {hex(a[1])}" if a[0] > a[1] else None


_ADDR = Arg("addr", ArgKind.ADDRESS)
_LEN = Arg("len", ArgKind.LENGTH)

# In the order messages list them.
SYSCALLS: dict[str, Syscall] = {s.name: s for s in (
    Syscall("load", (_ADDR,), sys_load, memory_access=True),
    Syscall("store", (_ADDR,), sys_store, memory_access=True),
    Syscall("msync", (_ADDR, _LEN, Arg("flags", ArgKind.MSYNC_FLAGS)), sys_msync,
            phrases=_msync_phrases, reaches_clean=True),
    Syscall("clean", (Arg("start", ArgKind.ADDRESS), Arg("end", ArgKind.ADDRESS),
                      Arg("syncio", ArgKind.FLAG), Arg("invalidate", ArgKind.FLAG)), sys_clean,
            check=_clean_range, phrases=_clean_phrases, reaches_clean=True),
    Syscall("munmap", (_ADDR, _LEN), sys_munmap),
    Syscall("mmap", (_ADDR, Arg("pages", ArgKind.LENGTH), Arg("options", ArgKind.MAPPING)),
            sys_mmap),
    Syscall("mprotect", (_ADDR, _LEN, Arg("prot", ArgKind.PROT)), sys_mprotect),
    Syscall("madvise", (_ADDR, _LEN, Arg("advice", ArgKind.ADVICE)), sys_madvise),
    Syscall("mlock", (_ADDR, _LEN), sys_mlock),
    Syscall("munlock", (_ADDR, _LEN), sys_munlock),
    Syscall("fsync", (Arg("file", ArgKind.FILE),), sys_fsync),
    Syscall("yield", (), sys_yield),
)}
