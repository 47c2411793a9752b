"""Profiles as data (emulator/kern/profile.py): the registry, msync's errno table, and a
profile that mixes the rows of SEMANTICS.md §2 differently from the three documented ones,
which the kernel and the checkers must honour row by row (the documented values themselves
are pinned, row by row, by tests/test_return_codes.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from emulator.check import all_checkers
from emulator.kern.kern_return import KernReturn
from emulator.kern.profile import (
    DEFAULT_PROFILE,
    FREEBSD5,
    MANPAGE,
    MODERN,
    PROFILES,
    MapLock,
    Profile,
)
from emulator.machine import Machine
from emulator.sched.strategies import RandomStrategy
from emulator.variants import BUILTIN
from workloads import WORKLOADS, build_workload

# modern's rows under the man page's lock, and the man page's rows under modern's lock.
MODERN_EXCLUSIVE = dataclasses.replace(MODERN, name="modern_exclusive",
                                       map_lock=MapLock.EXCLUSIVE)
MANPAGE_SHARED = dataclasses.replace(MANPAGE, name="manpage_shared",
                                     map_lock=MapLock.SHARED_DROPPED)
SEEDS = 25

# A 0x10000-0x12000 file f[0..2)      hole 0x12000-0x13000
# B 0x13000-0x14000 file f[2..3)
# C 0x14000-0x16000 sub-map over f[4..6)
MAPPINGS: list[dict[str, Any]] = [
    {"addr": "0x10000", "pages": 2, "file": "f", "offset": 0},
    {"addr": "0x13000", "pages": 1, "file": "f", "offset": 2},
    {"addr": "0x14000", "pages": 2, "submap": True, "file": "f", "offset": 4},
]


def spec(program: list[list[Any]], fail_writes: bool = False) -> dict[str, Any]:
    return {
        "files": {"f": {"pages": 6, "fail_writes": fail_writes}},
        "processes": {"p0": {"mappings": MAPPINGS}},
        "cpus": [{"process": "p0", "program": program}],
    }


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offer the two mixed profiles as a new profile would be: by name, in the registry."""
    for profile in (MODERN_EXCLUSIVE, MANPAGE_SHARED):
        monkeypatch.setitem(PROFILES, profile.name, profile)


def test_every_profile_is_registered_under_its_name() -> None:
    assert list(PROFILES)[:3] == ["manpage", "freebsd5", "modern"]  # SEMANTICS.md's order
    assert all(PROFILES[name].name == name for name in PROFILES)
    assert PROFILES[DEFAULT_PROFILE.name] is MANPAGE


def test_a_profile_is_a_frozen_hashable_value() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        MANPAGE.name = "other"  # type: ignore[misc]
    assert len({MANPAGE, FREEBSD5, MODERN, dataclasses.replace(MODERN)}) == 3


# Per KERN_* code in KernReturn's order (SUCCESS, INVALID_ADDRESS, PROTECTION_FAILURE,
# INVALID_ARGUMENT, FAILURE): each era's switch (FIDELITY.md D5).
ERRNOS = {
    "manpage": [0, "ENOMEM", "EINVAL", "ENOMEM", "EIO"],  # msync.2: not mapped is ENOMEM
    "freebsd5": [0, "EINVAL", "EINVAL", "EINVAL", "EIO"],  # the pre-rename msync
    "modern": [0, "ENOMEM", "EINVAL", "EBUSY", "EIO"],  # kern_msync since r265534
}


@pytest.mark.parametrize("profile", [MANPAGE, FREEBSD5, MODERN], ids=lambda p: p.name)
def test_msync_maps_the_clean_codes_by_its_eras_switch(profile: Profile) -> None:
    assert [profile.msync_result(rv) for rv in KernReturn] == ERRNOS[profile.name]


@pytest.mark.usefixtures("registered")
@pytest.mark.parametrize("name", [MODERN_EXCLUSIVE.name, MANPAGE_SHARED.name])
async def test_the_reference_raises_no_alarm_under_a_mixed_profile(name: str) -> None:
    alarms = []
    for workload in WORKLOADS:
        machine = Machine(build_workload(workload, {}, 0, name), BUILTIN["reference"],
                          RandomStrategy(), checkers=all_checkers())
        for seed in range(SEEDS):
            ex = await machine.execute(seed, build_workload(workload, {}, seed, name))
            if ex.outcome != "ok":
                alarms.append(f"{workload} seed {seed}: {ex.outcome}: {ex.violations}")
    assert not alarms, f"{len(alarms)} alarm(s), first: {alarms[0]}"


@pytest.mark.usefixtures("registered")
async def test_modern_rows_hold_under_the_exclusive_map_lock(
    run_spec: Any, make_watch: Any
) -> None:
    ws: list[Any] = []
    program = [["store", "0x14000"], ["clean", "0x14000", "0x16000", True, False],
               ["store", "0x10000"], ["clean", "0x10000", "0x10000", True, False],
               ["clean", "0x10000", "0x14000", True, False]]
    ex, _ = await run_spec(spec(program), MODERN_EXCLUSIVE.name,
                           checkers=[*all_checkers(), lambda k: make_watch(k, ws)])
    assert ex.outcome == "ok", ex.violations
    # Cleaned through the sub-map; start == end meant all of A; the hole is an error.
    assert [r["ret"] for r in ex.results["cpu0"]] == [
        0, "KERN_SUCCESS", 0, "KERN_SUCCESS", "KERN_INVALID_ADDRESS"]
    assert [r["pagers"]["f"] for r in ws[0].returns[:2]] == [[0, 0, 0, 0, 1, 0],
                                                             [2, 0, 0, 0, 1, 0]]
    ex, _ = await run_spec(spec([["store", "0x10000"], ["msync", "0x10000", 0x1000, "sync"]],
                                fail_writes=True), MODERN_EXCLUSIVE.name, checkers=all_checkers())
    assert [r["ret"] for r in ex.results["cpu0"]] == [0, "EIO"]


@pytest.mark.usefixtures("registered")
async def test_manpage_rows_hold_under_the_shared_map_lock(
    run_spec: Any, make_watch: Any
) -> None:
    ws: list[Any] = []
    program = [["store", "0x10000"], ["store", "0x14000"],
               ["clean", "0x10000", "0x10000", True, False],
               ["clean", "0x10000", "0x14000", True, False],
               ["clean", "0x13000", "0x16000", True, False]]
    ex, _ = await run_spec(spec(program), MANPAGE_SHARED.name,
                           checkers=[*all_checkers(), lambda k: make_watch(k, ws)])
    assert ex.outcome == "ok", ex.violations
    # start == end is empty; a hole and a sub-map are the man page's errors.
    assert [r["ret"] for r in ex.results["cpu0"]] == [
        0, 0, "KERN_SUCCESS", "KERN_INVALID_ARGUMENT", "KERN_INVALID_ADDRESS"]
    assert ws[0].returns[0]["pagers"]["f"] == [0] * 6
    # A write error is ignored.
    ex, _ = await run_spec(spec([["store", "0x10000"], ["msync", "0x10000", 0x1000, "sync"]],
                                fail_writes=True), MANPAGE_SHARED.name, checkers=all_checkers())
    assert [r["ret"] for r in ex.results["cpu0"]] == [0, 0]
