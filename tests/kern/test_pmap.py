"""The physical map: enter, remove, remove_write and remove_all, and the modified bit."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.kern.pmap import clear_modify, fold_modified, is_modified, remove_all, remove_write

Cpu = Any  # tests/kern/conftest.py's Cpu

VPN = 0x10  # BASE >> PAGE_SHIFT: f's first page in p0 and p1


def mapping(pmap: Any, vpn: int = VPN) -> tuple[str, bool, bool] | None:
    """(page, writable, modified) of the mapping at ``vpn``, or None."""
    pte = pmap.lookup(vpn)
    return None if pte is None else (pte.page.name, pte.writable, pte.modified)


async def test_enter_maps_the_page_and_records_the_reverse_mapping(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page = await cpu.resident()
        pmap = cpu.vm_map.pmap
        await pmap.enter(VPN, page, False)
        seen.extend([mapping(pmap), [(p.name, vpn) for p, vpn in page.pv]])

    run = await run_kernel(body)
    assert run.outcome == "ok"
    assert seen == [("f:0", False, False), [("p0", VPN)]]


async def test_entering_the_same_page_again_only_changes_write_access(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page = await cpu.resident()
        pmap = cpu.vm_map.pmap
        await pmap.enter(VPN, page, True)
        pmap.lookup(VPN).modified = True  # a store went through it
        await pmap.enter(VPN, page, False)
        seen.extend([mapping(pmap), len(page.pv), page.dirty])

    await run_kernel(body)
    assert seen == [("f:0", False, True), 1, False]


async def test_entering_another_page_folds_the_old_mappings_modified_bit(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        old = await cpu.resident(pindex=0)
        new = await cpu.resident(pindex=1)
        pmap = cpu.vm_map.pmap
        await pmap.enter(VPN, old, True)
        pmap.lookup(VPN).modified = True
        await pmap.enter(VPN, new, True)
        seen.extend([mapping(pmap), old.dirty, old.pv, len(new.pv)])

    await run_kernel(body)
    assert seen == [("f:1", True, False), True, [], 1]


async def test_remove_unmaps_the_half_open_range_and_folds_modified_bits(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        pages = [await cpu.resident(pindex=i) for i in range(3)]
        pmap = cpu.vm_map.pmap
        for i, page in enumerate(pages):
            await pmap.enter(VPN + i, page, True)
            pmap.lookup(VPN + i).modified = i == 0
        await pmap.remove(VPN, VPN + 2)
        seen.append([mapping(pmap, VPN + i) for i in range(3)])
        seen.append([(p.dirty, len(p.pv)) for p in pages])

    await run_kernel(body)
    assert seen == [[None, None, ("f:2", True, False)], [(True, 0), (False, 0), (False, 1)]]


async def test_remove_write_revokes_every_mapping_and_folds_modified_in_one_step(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page = await cpu.resident()
        p0, p1 = cpu.k.maps["p0"].pmap, cpu.k.maps["p1"].pmap
        await p0.enter(VPN, page, True)
        await p1.enter(VPN, page, True)
        p1.lookup(VPN).modified = True
        before = cpu.k.sched.step
        await remove_write(cpu.k, page)
        seen.append(cpu.k.sched.step - before)
        seen.extend([mapping(p0), mapping(p1), page.dirty, len(page.pv)])

    run = await run_kernel(body)
    assert run.outcome == "ok"
    assert seen == [1, ("f:0", False, False), ("f:0", False, False), True, 2]


async def test_remove_write_leaves_a_page_clean_when_no_mapping_was_modified(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page = await cpu.resident()
        await cpu.vm_map.pmap.enter(VPN, page, True)
        await remove_write(cpu.k, page)
        seen.extend([mapping(cpu.vm_map.pmap), page.dirty])

    await run_kernel(body)
    assert seen == [("f:0", False, False), False]


async def test_remove_all_unmaps_the_page_everywhere_folding_modified_bits(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page = await cpu.resident()
        p0, p1 = cpu.k.maps["p0"].pmap, cpu.k.maps["p1"].pmap
        await p0.enter(VPN, page, True)
        await p1.enter(VPN, page, False)
        p0.lookup(VPN).modified = True
        await remove_all(cpu.k, page)
        seen.extend([mapping(p0), mapping(p1), page.pv, page.dirty])

    await run_kernel(body)
    assert seen == [None, None, [], True]


async def test_fold_modified_moves_modified_bits_to_dirty_keeping_write_access(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page = await cpu.resident()
        await cpu.vm_map.pmap.enter(VPN, page, True)
        cpu.vm_map.pmap.lookup(VPN).modified = True
        seen.append(is_modified(page))
        fold_modified(page)
        seen.extend([is_modified(page), page.dirty, mapping(cpu.vm_map.pmap)])

    await run_kernel(body)
    assert seen == [True, False, True, ("f:0", True, False)]


async def test_clear_modify_drops_modified_bits_without_dirtying(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page = await cpu.resident()
        await cpu.vm_map.pmap.enter(VPN, page, True)
        cpu.vm_map.pmap.lookup(VPN).modified = True
        clear_modify(page)
        seen.extend([is_modified(page), page.dirty])

    await run_kernel(body)
    assert seen == [False, False]


async def test_pmap_check_rejects_a_mapping_missing_from_the_reverse_map(
    run_kernel: Any,
) -> None:
    pages: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page = await cpu.resident()
        await cpu.vm_map.pmap.enter(VPN, page, True)
        pages.append(page)

    run = await run_kernel(body)
    pmap = run.k.maps["p0"].pmap
    pmap._check()
    pages[0].pv.clear()
    with pytest.raises(AssertionError, match="missing from pv"):
        pmap._check()
