"""durable (rule 4b): a store acknowledged durable -- fsync(2) returned 0, or msync(MS_SYNC)
returned 0 where the profile promises it -- is on disk, not only in the buffer cache.  Real
runs of small specs with the mutants the rule must catch, and the reference, which it must not
report, in every profile."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.check import all_checkers
from emulator.check.durable import Durable
from emulator.kern.profile import PROFILES
from emulator.sched.strategies import RandomStrategy
from emulator.variants import BUILTIN
from workloads import build_workload

BASE = 0x10000
CHECK = [Durable]


def store(page: int) -> list[Any]:
    return ["store", hex(BASE + page * 0x1000)]


def msync(flags: str, pages: int = 2) -> list[Any]:
    return ["msync", hex(BASE), pages * 0x1000, flags]


async def test_an_msync_sync_that_delays_its_writes_fires_where_msync_promises_durability(
    run_spec: Any, spec_of: Any
) -> None:
    # manpage (freebsd5 promises it too, but its 2003 page clean writes through its own
    # pageout_flush_2003, which this mutant does not override).
    ex, k = await run_spec(spec_of([store(0), msync("sync")]), "manpage", checkers=CHECK,
                           variant=BUILTIN["sync_write_delayed"])
    assert [v.rule for v in ex.violations] == ["durable"]
    v = ex.violations[0]
    assert v.fields == {"page": "f:0", "store": 1, "disk": 0}
    assert "the buffer cache holds it (read(2) sees it) but not the disk" in v.message
    assert k.pagers["f"].stored[0] == 1 and k.pagers["f"].disk[0] == 0


async def test_an_msync_sync_that_delays_its_writes_is_not_judged_where_msync_promises_coherence(
    run_spec: Any, spec_of: Any
) -> None:
    # modern's msync(MS_SYNC) promises no durability (msync.2 BUGS; d1e8f983): the
    # data is coherent, and fsync(2) is the only promise.
    ex, k = await run_spec(spec_of([store(0), msync("sync", 1)]), "modern", checkers=CHECK,
                           variant=BUILTIN["sync_write_delayed"])
    assert ex.outcome == "ok" and not ex.violations
    assert (k.pagers["f"].stored[0], k.pagers["f"].disk[0]) == (1, 0)


async def test_an_fsync_that_skips_the_delayed_buffers_fires(run_spec: Any, spec_of: Any) -> None:
    ex, _ = await run_spec(spec_of([store(0), msync("async"), ["fsync", "f"]]), "modern",
                           checkers=CHECK, variant=BUILTIN["fsync_skips_delayed"])
    assert [v.rule for v in ex.violations] == ["durable"]
    assert ex.violations[0].message.startswith("cpu0's fsync of file f returned success")
    assert ex.violations[0].fields["page"] == "f:0"


@pytest.mark.parametrize("profile", list(PROFILES))
async def test_an_fsync_that_skips_the_page_clean_fires_in_every_profile(
    run_spec: Any, spec_of: Any, profile: str
) -> None:
    ex, _ = await run_spec(spec_of([store(1), ["fsync", "f"]]), profile, checkers=CHECK,
                           variant=BUILTIN["fsync_skips_pages"])
    assert [v.rule for v in ex.violations] == ["durable"]
    assert "neither the buffer cache nor the disk holds it" in ex.violations[0].message


async def test_an_fsync_whose_writes_fail_returns_eio_and_is_not_judged(run_spec: Any) -> None:
    spec = {"files": {"f": {"pages": 1, "fail_writes": True}},
            "processes": {"p0": {"mappings": [{"addr": hex(BASE), "pages": 1, "file": "f"}]}},
            "cpus": [{"process": "p0", "program": [store(0), ["fsync", "f"]]}]}
    for profile in PROFILES:
        ex, _ = await run_spec(spec, profile, checkers=CHECK)
        assert not ex.violations, profile
        assert ex.results["cpu0"][-1] == {"op": "fsync", "args": ["f"], "ret": "EIO"}


@pytest.mark.parametrize("profile", list(PROFILES))
async def test_the_reference_keeps_every_acknowledged_store_on_disk(
    run_spec: Any, profile: str
) -> None:
    alarms = []
    for params in ({}, {"sync_pages": 2}, {"syncer": 1, "ops": 3}):
        for seed in range(40):
            spec = build_workload("async_then_sync", params, seed, profile)
            ex, _ = await run_spec(spec, profile, seed=seed, checkers=all_checkers(),
                                   strategy=RandomStrategy())
            if ex.violations:
                alarms.append((params, seed, ex.violations[0].message))
    assert not alarms


# modern: a buffer write clears the page's dirty bits when it starts, so after a failed
# write only the re-dirtied buffer knows the store is not on disk (D1).
FAILED_THEN_FSYNC: dict[str, Any] = {
    "files": {"f": {"pages": 2, "fail_pages": [0]}},
    "processes": {"p0": {"mappings": [{"addr": hex(BASE), "pages": 2, "file": "f"}]}},
    "cpus": [{"process": "p0", "program": [store(0), msync("sync", 1), ["fsync", "f"]]}],
}


async def test_a_failed_write_whose_buffer_is_dropped_makes_a_later_fsync_fire(
    run_spec: Any,
) -> None:
    ex, k = await run_spec(FAILED_THEN_FSYNC, "modern", checkers=CHECK,
                           variant=BUILTIN["failed_write_dropped"])
    assert [r["ret"] for r in ex.results["cpu0"] if r["op"] == "msync"] == ["EIO"]
    assert [v.rule for v in ex.violations] == ["durable"]  # at the fsync's return of 0
    assert ex.violations[0].message.startswith("cpu0's fsync of file f returned success")
    # The page is clean and its buffer not dirty: nothing will ever write the store.
    assert not k.files["f"].pages[0].dirty and 0 not in k.pagers["f"].delayed


@pytest.mark.parametrize("profile", list(PROFILES))
async def test_a_failed_write_is_retried_by_the_next_fsync_in_every_profile(
    run_spec: Any, profile: str
) -> None:
    # modern: the buffer carries the failed write's dirtiness; the others: the page does.
    ex, _ = await run_spec(FAILED_THEN_FSYNC, profile, checkers=all_checkers())
    assert not ex.violations
    assert ex.results["cpu0"][-1]["ret"] == "EIO"


async def test_the_reference_is_quiet_on_failed_write_fsync() -> None:
    from emulator.machine import Machine

    machine = Machine(build_workload("failed_write_fsync", {}, 0, "modern"),
                      BUILTIN["reference"], RandomStrategy(), checkers=all_checkers())
    outcomes = [(await machine.execute(seed)).outcome for seed in range(200)]
    assert outcomes == ["ok"] * 200
