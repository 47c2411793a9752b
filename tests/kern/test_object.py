"""VM objects: resident pages, generation, the backing chain, freeing pages and objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.kern.object import OBJT_ANON, OBJT_DEVICE, OBJT_FILE, ObjType
from emulator.kern.syscalls import sys_load, sys_munmap, sys_store

Cpu = Any  # tests/kern/conftest.py's Cpu

BASE, ANON, PRIVATE = 0x10000, 0x20000, 0x30000  # p0's three entries (tests/kern/conftest.py)
PAGE = 0x1000


async def test_alloc_page_makes_a_resident_page_exclusive_busy_to_the_caller(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        f = cpu.k.files["f"]
        await f.lock.lock()
        page = f.alloc_page(2)
        seen.extend([f.lookup_page(2) is page, page.xowner, page.valid, page.dirty])
        await f.lock.unlock()

    await run_kernel(body)
    assert seen == [True, 0, False, False]


async def test_find_least_returns_the_first_resident_page_at_or_after_an_index(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        f = cpu.k.files["f"]
        for pindex in (1, 3):
            await cpu.resident(f, pindex)
        seen.extend(None if p is None else p.pindex
                    for p in (f.find_least(0), f.find_least(2), f.find_least(3), f.find_least(4)))
        seen.append(f.lookup_page(0))

    await run_kernel(body)
    assert seen == [1, 3, 3, None, None]


async def test_free_page_removes_it_and_wakes_its_sleepers(run_kernel: Any) -> None:
    pages: list[Any] = []

    async def freer(cpu: Cpu) -> None:
        f = cpu.k.files["f"]
        await f.lock.lock()
        page = f.alloc_page(0)
        pages.append(page)
        await f.lock.unlock()
        cpu.prefer(1, 0)
        await cpu.k.point()  # cpu1 sleeps on the busy page
        await f.lock.lock()
        f.free_page(page)
        cpu.log("freed")
        await f.lock.unlock()

    async def sleeper(cpu: Cpu) -> None:
        await pages[0].wait_unbusy()
        page = pages[0]
        cpu.log(f"woke: freed {page.freed}, busy {page.is_busy()}, "
                f"resident {cpu.k.files['f'].lookup_page(0) is not None}")

    run = await run_kernel(freer, sleeper)
    assert run.outcome == "ok"
    assert run.log == ["cpu0 freed", "cpu1 woke: freed True, busy False, resident False"]


async def test_a_write_fault_bumps_the_generation_so_the_object_might_be_dirty(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        f = cpu.k.files["f"]
        seen.extend([f.generation, f.might_be_dirty()])
        await sys_store(cpu.k, cpu.vm_map, BASE)
        seen.extend([f.generation > f.clean_generation, f.might_be_dirty(),
                     f.lookup_page(0).dirty])

    await run_kernel(body)
    assert seen == [1, False, True, True, True]


async def test_a_private_write_copies_into_the_shadow_and_leaves_the_file_alone(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        entry = cpu.vm_map.entry_containing(PRIVATE)
        g = cpu.k.files["g"]
        seen.extend([entry.obj is g, entry.needs_copy])
        await sys_store(cpu.k, cpu.vm_map, PRIVATE + PAGE)
        shadow = entry.obj
        seen.extend([shadow.backing is g, shadow.kind, g.kind, entry.needs_copy])
        copy = shadow.lookup_page(1)
        seen.extend([copy.contents, copy.dirty, g.lookup_page(1), g.might_be_dirty()])
        seen.append(await sys_load(cpu.k, cpu.vm_map, PRIVATE + PAGE))

    await run_kernel(body)
    assert seen == [True, True, True, OBJT_ANON, OBJT_FILE, False, 1, True, None, False, 1]


async def test_a_private_read_maps_the_files_page_read_only_and_shadows_nothing(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        seen.append(await sys_load(cpu.k, cpu.vm_map, PRIVATE))
        entry = cpu.vm_map.entry_containing(PRIVATE)
        g = cpu.k.files["g"]
        pte = cpu.vm_map.pmap.lookup(PRIVATE >> 12)
        seen.extend([entry.obj is g, entry.needs_copy, pte.page is g.lookup_page(0),
                     pte.writable])

    await run_kernel(body)
    assert seen == [0, True, True, True, False]  # store 0: the file's initial contents


async def test_a_private_mapping_at_an_offset_shadows_at_that_offset_and_reads_below(
    run_kernel: Any,
) -> None:
    spec = {
        "files": {"g": {"pages": 4}},
        "processes": {"p0": {"mappings": [
            {"addr": hex(PRIVATE), "pages": 2, "file": "g", "offset": 2, "private": True},
        ]}},
    }
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        entry = cpu.vm_map.entry_containing(PRIVATE)
        seen.append(entry.offset // PAGE)
        await sys_store(cpu.k, cpu.vm_map, PRIVATE)  # page 0 copied; page 1 still g's 3
        seen.extend([entry.offset, entry.obj.backing_offset])
        await sys_load(cpu.k, cpu.vm_map, PRIVATE + PAGE)
        g = cpu.k.files["g"]
        seen.extend([sorted(g.pages), sorted(entry.obj.pages)])

    await run_kernel(body, spec=spec)
    assert seen == [2, 0, 2, [3], [0]]


async def test_unmapping_anonymous_memory_frees_its_object_and_pages(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        await sys_store(cpu.k, cpu.vm_map, ANON)
        anon = cpu.vm_map.entry_containing(ANON).obj
        page = anon.lookup_page(0)
        await sys_munmap(cpu.k, cpu.vm_map, ANON, 2 * PAGE)
        seen.extend([anon.freed, page.freed, len(anon.pages)])

    run = await run_kernel(body)
    assert run.outcome == "ok"
    assert seen == [True, True, 0]


async def test_unmapping_a_file_keeps_its_object_and_pages_cached(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        await sys_store(cpu.k, cpu.vm_map, BASE)
        await sys_munmap(cpu.k, cpu.vm_map, BASE, 4 * PAGE)
        f = cpu.k.files["f"]
        page = f.lookup_page(0)
        seen.extend([f.freed, page is not None and not page.freed])

    await run_kernel(body)
    assert seen == [False, True]


async def test_unmapping_folds_a_stores_modified_bit_into_dirty(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        # A read fault maps a shared file page writable; the store then goes through
        # without a fault and sets only the mapping's modified bit.
        await sys_load(cpu.k, cpu.vm_map, BASE)
        await sys_store(cpu.k, cpu.vm_map, BASE)
        page = cpu.k.files["f"].lookup_page(0)
        seen.append(page.dirty)
        await sys_munmap(cpu.k, cpu.vm_map, BASE, 4 * PAGE)
        seen.append(page.dirty)

    await run_kernel(body)
    assert seen == [False, True]


async def test_object_check_rejects_a_clean_generation_ahead_of_the_generation(
    run_kernel: Any,
) -> None:
    async def body(cpu: Cpu) -> None:
        pass

    run = await run_kernel(body)
    f = run.k.files["f"]
    f._check()
    f.clean_generation = f.generation + 1
    with pytest.raises(AssertionError):
        f._check()


def test_object_kinds_are_the_words_specs_and_traces_use() -> None:
    assert json.dumps([OBJT_FILE, OBJT_DEVICE]) == '["file", "device"]'
    assert f"{ObjType.ANON}" == "anon" and ObjType("file") is OBJT_FILE
