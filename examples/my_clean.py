"""Example clean variants written against vmemu's kernel API (emulator.api).

Run them:
    vmemu explore random_mix --variant examples/my_clean.py:careful_clean --iterations 2000
    vmemu explore random_mix --variant examples/my_clean.py:forgetful_clean --iterations 2000

``careful_clean`` is a from-scratch vm_map_clean for the manpage and freebsd5
profiles: exclusive map lock for the whole call, pass 1 before any side effect,
and the page-clean protocol (busy, then write-protect and fold modified bits in
one step, then write; dirty clears at I/O completion).  ``forgetful_clean`` is
the same routine with one mistake: it decides whether a page needs writing from
its software dirty flag alone, before folding in the hardware modified bits --
a store through a mapping a read fault made writable is then never written.
"""

from __future__ import annotations

from emulator.api import (
    OBJT_DEVICE,
    OBJT_FILE,
    InvalidateFrees,
    KernReturn,
    VmMap,
    VmMapEntry,
    VmObject,
    page_range,
    remove_all,
    remove_write,
    round_page,
    rv_hole,
    rv_no_entry,
    rv_submap,
    trunc_page,
)


async def careful_clean(
    vm_map: VmMap, start: int, end: int, syncio: bool, invalidate: bool
) -> KernReturn:
    return await _clean(vm_map, start, end, syncio, invalidate, forgetful=False)


async def forgetful_clean(
    vm_map: VmMap, start: int, end: int, syncio: bool, invalidate: bool
) -> KernReturn:
    return await _clean(vm_map, start, end, syncio, invalidate, forgetful=True)


async def _clean(
    vm_map: VmMap, start: int, end: int, syncio: bool, invalidate: bool, forgetful: bool
) -> KernReturn:
    k = vm_map.k
    await vm_map.lock.xlock()  # one caller at a time, for the whole call
    start, end = vm_map.clamp(start, end)
    first = await vm_map.lookup_entry(start)
    if first is None:
        await vm_map.lock.unlock()
        return rv_no_entry(k)
    # Pass 1: refuse sub-maps and holes before touching anything.
    entry: VmMapEntry | None = first
    while entry is not None and entry.start < end:
        nxt = vm_map.succ(entry)
        if entry.submap is not None:
            await vm_map.lock.unlock()
            return rv_submap(k)
        if end > entry.end and (nxt is None or nxt.start != entry.end):
            await vm_map.lock.unlock()
            return rv_hole(k)
        entry = nxt
    if invalidate:
        await vm_map.pmap.remove(trunc_page(start) >> 12, round_page(end) >> 12)
    # Pass 2: flush each entry's file pages, then free them if asked.
    keep_dirty = k.profile.invalidate_frees is not InvalidateFrees.EVERY_UNWIRED
    entry = first
    while entry is not None and entry.start < end:
        size = min(end, entry.end) - start
        obj, offset = entry.obj, entry.offset + (start - entry.start)
        while obj is not None and obj.backing is not None:
            offset += obj.backing_offset << 12
            obj = obj.backing
        if obj is not None:
            lo, hi = page_range(offset, size)
            if obj.kind == OBJT_FILE and entry.writable:
                await _flush(obj, lo, hi, syncio or invalidate, forgetful)
            if invalidate and obj.kind in (OBJT_FILE, OBJT_DEVICE):
                await _free_clean_pages(obj, lo, hi, keep_dirty=keep_dirty)
        start += size
        entry = vm_map.succ(entry)
    await vm_map.lock.unlock()
    return KernReturn.SUCCESS


async def _flush(obj: VmObject, lo: int, hi: int, sync: bool, forgetful: bool) -> None:
    """Write the dirty pages of [lo, hi): busy, write-protect, write."""
    k = obj.k
    assert obj.vnode is not None
    await obj.vnode.lock()
    await obj.lock.lock()
    while True:
        generation = obj.generation
        page = obj.find_least(lo)
        moved = False
        while page is not None and page.pindex < hi:
            pindex = page.pindex
            if forgetful and not page.dirty:  # BUG: ignores the modified bits
                page = obj.find_least(pindex + 1)
                continue
            if not page.valid:
                page = obj.find_least(pindex + 1)
                continue
            if not await page.try_xbusy():
                await obj.lock.unlock()
                await page.wait_unbusy()
                await obj.lock.lock()
                page = obj.find_least(pindex)
                continue
            await remove_write(k, page)  # revoke write, fold modified bits: one step
            if not page.dirty:
                await page.xunbusy()
            else:
                await k.point()
                io = k.disk.issue(page, sync)  # the page stays busy until completion
                if sync:
                    await obj.lock.unlock()
                    await k.disk.wait(io)
                    await obj.lock.lock()
                    if obj.generation != generation:
                        moved = True  # a write fault meanwhile: rescan
                        break
            page = obj.find_least(pindex + 1)
        if not moved:
            break
    await obj.lock.unlock()
    await obj.vnode.unlock()


async def _free_clean_pages(obj: VmObject, lo: int, hi: int, keep_dirty: bool) -> None:
    """Free the unwired pages of [lo, hi); with keep_dirty, those still dirty stay."""
    k = obj.k
    await obj.lock.lock()
    page = obj.find_least(lo)
    while page is not None and page.pindex < hi:
        pindex = page.pindex
        if page.wire_count:
            page = obj.find_least(pindex + 1)
            continue
        if not await page.try_xbusy():
            await obj.lock.unlock()
            await page.wait_unbusy()
            await obj.lock.lock()
            page = obj.find_least(pindex)
            continue
        if keep_dirty:
            await remove_write(k, page)
            if page.dirty:
                await page.xunbusy()
                page = obj.find_least(pindex + 1)
                continue
        await remove_all(k, page)
        await k.point()
        obj.free_page(page)
        page = obj.find_least(pindex + 1)
    await obj.lock.unlock()
