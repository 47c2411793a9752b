"""mlock/munlock over part of a sub-map entry wire and unwire exactly the pages of that part."""

from __future__ import annotations

from typing import Any

import pytest

PAGE = 0x1000
BASE = 0x20000


def spec(program: list[list[Any]], wired: bool = False) -> dict[str, Any]:
    return {
        "files": {"f": {"pages": 4}},
        "processes": {"p0": {"mappings": [
            {"addr": hex(BASE), "pages": 4, "submap": True, "file": "f", "offset": 0,
             "wired": wired},
        ]}},
        "cpus": [{"process": "p0", "program": program}],
    }


def wire_counts(k: Any) -> list[int]:
    obj = k.files["f"]
    return [p.wire_count if (p := obj.lookup_page(i)) is not None else 0 for i in range(4)]


@pytest.mark.parametrize("profile", ["manpage", "freebsd5", "modern"])
async def test_mlock_of_half_a_submap_wires_only_that_half(run_spec: Any, profile: str) -> None:
    _, k = await run_spec(spec([["mlock", hex(BASE + 2 * PAGE), 2 * PAGE]]), profile)
    assert wire_counts(k) == [0, 0, 1, 1]


async def test_mlock_of_both_halves_then_munlock_of_all_leaves_nothing_wired(
    run_spec: Any,
) -> None:
    program = [["mlock", hex(BASE), 2 * PAGE], ["mlock", hex(BASE + 2 * PAGE), 2 * PAGE],
               ["munlock", hex(BASE), 4 * PAGE]]
    _, k = await run_spec(spec(program))
    assert wire_counts(k) == [0, 0, 0, 0]


async def test_munlock_of_half_a_wired_submap_unwires_only_that_half(run_spec: Any) -> None:
    _, k = await run_spec(spec([["munlock", hex(BASE), 2 * PAGE]], wired=True))
    assert wire_counts(k) == [0, 0, 1, 1]


async def test_munmap_of_a_wired_submap_half_unwires_only_that_half(run_spec: Any) -> None:
    _, k = await run_spec(spec([["munmap", hex(BASE + 2 * PAGE), 2 * PAGE]], wired=True))
    assert wire_counts(k) == [1, 1, 0, 0]
