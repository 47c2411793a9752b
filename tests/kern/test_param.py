"""Page arithmetic (sys/vm/vm_param.h)."""

from __future__ import annotations

import pytest

from emulator.kern.param import PAGE_SIZE, atop, ptoa, round_page, trunc_page


@pytest.mark.parametrize(("addr", "down", "up"), [
    (0, 0, 0),
    (1, 0, PAGE_SIZE),
    (PAGE_SIZE - 1, 0, PAGE_SIZE),
    (PAGE_SIZE, PAGE_SIZE, PAGE_SIZE),
    (PAGE_SIZE + 1, PAGE_SIZE, 2 * PAGE_SIZE),
    (0x12345, 0x12000, 0x13000),
])
def test_trunc_page_rounds_down_and_round_page_rounds_up(addr: int, down: int, up: int) -> None:
    assert trunc_page(addr) == down
    assert round_page(addr) == up


def test_a_page_is_4096_bytes() -> None:
    assert PAGE_SIZE == 4096


@pytest.mark.parametrize("pages", [0, 1, 16, 1 << 35])
def test_atop_inverts_ptoa(pages: int) -> None:
    assert atop(ptoa(pages)) == pages
    assert ptoa(pages) == pages * PAGE_SIZE


def test_atop_drops_the_offset_within_the_page() -> None:
    assert atop(0x12fff) == 0x12
