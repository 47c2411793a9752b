"""The fault path, through the loads and stores that take it (sys_load, sys_store)."""

from __future__ import annotations

from typing import Any

from emulator.kern.object import OBJT_ANON
from emulator.kern.syscalls import SIGSEGV, sys_load, sys_store

Cpu = Any  # tests/kern/conftest.py's Cpu

BASE, ANON = 0x10000, 0x20000  # f shared writable, anonymous memory (tests/kern/conftest.py)
READ_ONLY, SUBMAP = 0x40000, 0x50000
VPN = BASE >> 12

# f mapped read-only, and g through a sub-map, beside the default layout's f.
SPEC: dict[str, Any] = {
    "files": {"f": {"pages": 4}, "g": {"pages": 2}},
    "processes": {"p0": {"mappings": [
        {"addr": hex(BASE), "pages": 4, "file": "f"},
        {"addr": hex(ANON), "pages": 2, "anon": True},
        {"addr": hex(READ_ONLY), "pages": 2, "file": "f", "prot": "r"},
        {"addr": hex(SUBMAP), "pages": 2, "submap": True, "file": "g"},
    ]}},
}


def mapping(cpu: Cpu, va: int) -> tuple[str, bool, bool] | None:
    pte = cpu.vm_map.pmap.lookup(va >> 12)
    return None if pte is None else (pte.page.name, pte.writable, pte.modified)


async def test_a_store_to_a_read_only_mapping_is_a_segfault(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        seen.append(await sys_store(cpu.k, cpu.vm_map, READ_ONLY))
        seen.append(mapping(cpu, READ_ONLY))

    await run_kernel(body, spec=SPEC)
    assert seen == [SIGSEGV, None]


async def test_an_access_outside_every_entry_is_a_segfault(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        seen.append(await sys_load(cpu.k, cpu.vm_map, 0x90000))
        seen.append(await sys_store(cpu.k, cpu.vm_map, 0x90000))

    await run_kernel(body, spec=SPEC)
    assert seen == [SIGSEGV, SIGSEGV]


async def test_a_read_fault_maps_a_shared_file_page_with_the_entrys_protection(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        f = cpu.k.files["f"]
        await sys_load(cpu.k, cpu.vm_map, BASE)
        await sys_load(cpu.k, cpu.vm_map, READ_ONLY)
        seen.extend([mapping(cpu, BASE), mapping(cpu, READ_ONLY)])
        # Writable now without a write fault: the object might be dirtied by a plain store.
        seen.extend([f.might_be_dirty(), f.lookup_page(0).dirty])

    await run_kernel(body, spec=SPEC)
    assert seen == [("f:0", True, False), ("f:0", False, False), True, False]


async def test_a_write_fault_dirties_the_page_and_maps_it_writable(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        f = cpu.k.files["f"]
        generation = f.generation
        await sys_store(cpu.k, cpu.vm_map, BASE + 0x1000)
        page = f.lookup_page(1)
        seen.extend([mapping(cpu, BASE + 0x1000), page.dirty, page.contents,
                     f.generation - generation, page.is_busy()])

    await run_kernel(body, spec=SPEC)
    assert seen == [("f:1", True, True), True, 1, 1, False]


async def test_a_store_through_a_writable_mapping_takes_no_fault(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        f = cpu.k.files["f"]
        await sys_store(cpu.k, cpu.vm_map, BASE)
        generation = f.generation
        await sys_store(cpu.k, cpu.vm_map, BASE)
        seen.extend([f.generation - generation, f.lookup_page(0).contents,
                     await sys_load(cpu.k, cpu.vm_map, BASE)])

    await run_kernel(body, spec=SPEC)
    assert seen == [0, 2, 2]


async def test_a_fault_on_a_busy_page_sleeps_until_it_is_unbusied(run_kernel: Any) -> None:
    pages: list[Any] = []

    async def owner(cpu: Cpu) -> None:
        page = await cpu.resident("f", 0)
        pages.append(page)
        await page.xbusy()
        cpu.prefer(1, 0)
        await cpu.k.point()  # cpu1 faults on the busy page and sleeps
        cpu.log(f"unbusies, nothing mapped: {mapping(cpu, BASE)}")
        await page.xunbusy()

    async def storer(cpu: Cpu) -> None:
        cpu.log("stores")
        await sys_store(cpu.k, cpu.vm_map, BASE)
        cpu.log(f"stored: {mapping(cpu, BASE)}")

    run = await run_kernel(owner, storer, spec=SPEC)
    assert run.outcome == "ok"
    assert run.log == ["cpu1 stores", "cpu0 unbusies, nothing mapped: None",
                       "cpu1 stored: ('f:0', True, True)"]


async def test_anonymous_memory_gets_its_object_at_the_first_fault(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        entry = cpu.vm_map.entry_containing(ANON)
        seen.append(entry.obj)
        seen.append(await sys_load(cpu.k, cpu.vm_map, ANON))  # zero-filled
        seen.extend([entry.obj.kind, entry.obj.lookup_page(0).contents])

    await run_kernel(body, spec=SPEC)
    assert seen == [None, 0, OBJT_ANON, 0]


async def test_a_fault_through_a_sub_map_reaches_the_inner_entrys_object(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        await sys_store(cpu.k, cpu.vm_map, SUBMAP + 0x1000)
        g = cpu.k.files["g"]
        seen.extend([mapping(cpu, SUBMAP + 0x1000), g.lookup_page(1).dirty])

    await run_kernel(body, spec=SPEC)
    assert seen == [("g:1", True, True), True]


PRIVATE = 0x30000  # g, private, in the default layout (tests/kern/conftest.py)


async def test_a_first_private_write_shadows_the_entry_under_the_exclusive_map_lock(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        before = cpu.vm_map.lock.timestamp
        seen.append(await sys_store(cpu.k, cpu.vm_map, PRIVATE))
        entry = cpu.vm_map.entry_containing(PRIVATE)
        seen.extend([entry.needs_copy, entry.obj.kind, cpu.vm_map.lock.timestamp > before,
                     mapping(cpu, PRIVATE)[1:]])
        seen.append(await sys_store(cpu.k, cpu.vm_map, PRIVATE + 0x1000))  # no second shadow
        seen.append(entry.obj.backing is cpu.k.files["g"])

    run = await run_kernel(body, rules=["lock_discipline"])
    assert run.outcome == "ok", run.execution.violations
    assert seen == [0, False, OBJT_ANON, True, (True, True), 0, True]
