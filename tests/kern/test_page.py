"""The page busy protocol (exclusive and shared busy, owners, sleeping until unbusied)."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.kern.page import Busy

Cpu = Any  # tests/kern/conftest.py's Cpu


def holders(page: Any) -> tuple[int, list[int]]:
    """(exclusive owner or -1, shared holders): the busy state as the owners show it."""
    return page.xowner, list(page.sowners)


async def test_try_xbusy_busies_an_idle_page_exclusive_to_the_caller(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page = await cpu.resident()
        seen.append(page.is_busy())
        seen.append(await page.try_xbusy())
        seen.extend([page.is_busy(), holders(page)])
        await page.xunbusy()
        seen.extend([page.is_busy(), holders(page)])

    run = await run_kernel(body)
    assert run.outcome == "ok"
    assert seen == [False, True, True, (0, []), False, (-1, [])]


async def test_try_xbusy_fails_on_a_busy_page_and_changes_nothing(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page = await cpu.resident()
        await page.sbusy()
        seen.append(await page.try_xbusy())
        seen.append(holders(page))

    await run_kernel(body)
    assert seen == [False, (-1, [0])]


async def test_shared_busy_has_one_holder_per_sbusy(run_kernel: Any) -> None:
    pages: list[Any] = []

    async def first(cpu: Cpu) -> None:
        page = await cpu.resident()
        pages.append(page)
        await page.sbusy()
        cpu.prefer(1)
        await cpu.k.point()
        cpu.log(f"holders {holders(page)}")
        await page.sunbusy()
        cpu.log(f"after my sunbusy {holders(page)}, busy {page.is_busy()}")
        cpu.prefer(1)
        await cpu.k.point()

    async def second(cpu: Cpu) -> None:
        page = pages[0]
        await page.sbusy()
        cpu.prefer(0)
        await cpu.k.point()
        await page.sunbusy()
        cpu.log(f"after my sunbusy {holders(page)}, busy {page.is_busy()}")

    run = await run_kernel(first, second)
    assert run.outcome == "ok"
    assert run.log == ["cpu0 holders (-1, [0, 1])", "cpu0 after my sunbusy (-1, [1]), busy True",
                       "cpu1 after my sunbusy (-1, []), busy False"]


async def test_sbusy_fails_on_an_exclusive_busy_page(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page = await cpu.resident()
        await page.xbusy()
        seen.append(await page.sbusy())
        seen.append(holders(page))

    await run_kernel(body)
    assert seen == [False, (0, [])]


async def test_xbusy_sleeps_until_the_owner_unbusies_then_takes_it(run_kernel: Any) -> None:
    pages: list[Any] = []

    async def owner(cpu: Cpu) -> None:
        page = await cpu.resident()
        pages.append(page)
        await page.xbusy()
        cpu.prefer(1, 0)
        await cpu.k.point()  # cpu1 sleeps on the page
        cpu.log(f"unbusies, cpu1 waits for {page.wait_name()}")
        await page.xunbusy()

    async def waiter(cpu: Cpu) -> None:
        cpu.log("asks")
        await pages[0].xbusy()
        cpu.log(f"owns it: {holders(pages[0])}")

    run = await run_kernel(owner, waiter)
    assert run.outcome == "ok"
    assert run.log == ["cpu1 asks", "cpu0 unbusies, cpu1 waits for page f:0 (xbusy, held by cpu0)",
                       "cpu1 owns it: (1, [])"]


async def test_wait_unbusy_returns_without_taking_the_busy(run_kernel: Any) -> None:
    pages: list[Any] = []

    async def owner(cpu: Cpu) -> None:
        page = await cpu.resident()
        pages.append(page)
        await page.xbusy()
        cpu.prefer(1, 0)
        await cpu.k.point()
        await page.xunbusy()

    async def waiter(cpu: Cpu) -> None:
        await pages[0].wait_unbusy()
        cpu.log(f"woke: busy {pages[0].is_busy()}")

    run = await run_kernel(owner, waiter)
    assert run.log == ["cpu1 woke: busy False"]


async def test_xunbusy_by_a_cpu_not_owning_the_busy_breaks_the_contract(run_kernel: Any) -> None:
    async def body(cpu: Cpu) -> None:
        page = await cpu.resident()
        await page.xunbusy()

    run = await run_kernel(body, rules=["lock_discipline"])
    assert run.rules == ["lock_discipline"]
    assert run.execution.violations[0].message == (
        "page f:0: xunbusy by cpu0, which does not hold it")


async def test_sunbusy_by_a_cpu_not_holding_a_shared_busy_breaks_the_contract(
    run_kernel: Any,
) -> None:
    async def body(cpu: Cpu) -> None:
        page = await cpu.resident()
        await page.xbusy()
        await page.sunbusy()

    run = await run_kernel(body, rules=["lock_discipline"])
    assert run.rules == ["lock_discipline"]
    assert "sunbusy by cpu0" in run.execution.violations[0].message


async def test_page_check_rejects_a_busy_page_without_an_owner(run_kernel: Any) -> None:
    pages: list[Any] = []

    async def body(cpu: Cpu) -> None:
        page = await cpu.resident()
        await page.xbusy()
        pages.append(page)

    await run_kernel(body)
    page = pages[0]
    page._check()
    page.xowner = -1
    with pytest.raises(AssertionError, match="xbusy without owner"):
        page._check()


def test_busy_states_are_the_ints_checkers_and_snapshots_compare() -> None:
    assert [int(b) for b in (Busy.NONE, Busy.SHARED, Busy.EXCL)] == [0, 1, 2]
    assert Busy.EXCL == 2 and not Busy.NONE
