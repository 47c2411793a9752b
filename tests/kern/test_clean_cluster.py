"""The page clean's clustering (vm_object_page_collect_flush, vm_pageout_flush): a dirty page
is written with its dirty neighbours, forward then backward and beyond the clean's range, in
one pager call; only the requested page's and later pages' errors are the clean's."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.kern.pager import Cluster
from emulator.kern.profile import PROFILES
from emulator.spec import parse_spec

PAGE = 0x1000
BASE = 0x10000


def spec(program: list[list[Any]], cluster: int = 4, pages: int = 5,
         fail_pages: list[int] | None = None) -> dict[str, Any]:
    f: dict[str, Any] = {"pages": pages}
    if fail_pages is not None:
        f["fail_pages"] = fail_pages
    return {
        "files": {"f": f},
        "processes": {"p0": {"mappings": [{"addr": hex(BASE), "pages": pages, "file": "f"}]}},
        "cpus": [{"process": "p0", "program": program}],
        "cluster": cluster,
    }


def stores(*pages: int) -> list[list[Any]]:
    return [["store", hex(BASE + i * PAGE)] for i in pages]


def msync(first: int, count: int = 1) -> list[Any]:
    return ["msync", hex(BASE + first * PAGE), count * PAGE, "sync"]


def writes(w: Any) -> list[tuple[int, int | None]]:
    """(pindex, cluster's requested page's pindex) per write, in issue order."""
    out: list[tuple[int, int | None]] = []
    for ev in w.io_issued:
        c: Cluster | None = ev.io.cluster
        out.append((ev.pindex, None if c is None else c.ios[c.mreq].page.pindex))
    return out


async def test_one_page_msync_writes_its_dirty_neighbours_on_both_sides_in_one_call(
    run_spec: Any, make_watch: Any
) -> None:
    ws: list[Any] = []
    ex, _ = await run_spec(spec([*stores(0, 1, 2, 3), msync(1)]),
                           checkers=[lambda k: make_watch(k, ws)])
    assert ex.outcome == "ok"
    # Forward first (1, 2, 3), then backward (0), up to the cluster size of 4; page 4,
    # never touched, is not resident.
    assert sorted(writes(ws[0])) == [(0, 1), (1, 1), (2, 1), (3, 1)]
    assert {id(ev.io.cluster) for ev in ws[0].io_issued} == {id(ws[0].io_issued[0].io.cluster)}
    # Every store is in the file when the one-page msync returns.
    assert ws[0].returns[0]["pagers"]["f"][:4] == [ws[0].stores[("f", i)] for i in range(4)]


async def test_the_run_stops_at_a_clean_neighbour_and_at_the_cluster_size(
    run_spec: Any, make_watch: Any
) -> None:
    ws: list[Any] = []
    # Page 1 is clean: the run of page 2 cannot reach page 0 backward.
    await run_spec(spec([*stores(0, 2, 3, 4), msync(2)], cluster=2),
                   checkers=[lambda k: make_watch(k, ws)])
    assert sorted(writes(ws[0])) == [(2, 2), (3, 2)]


async def test_a_cluster_of_one_writes_each_page_alone(run_spec: Any, make_watch: Any) -> None:
    ws: list[Any] = []
    await run_spec(spec([*stores(0, 1, 2), msync(1)], cluster=1),
                   checkers=[lambda k: make_watch(k, ws)])
    assert writes(ws[0]) == [(1, None)]


# Every era clusters (FIDELITY.md D9): vm_pageout_page_count was 16 from 4.x to 11.x
# (VM_PAGEOUT_PAGE_COUNT) and is 32 today.
ERA_CLUSTER = {"manpage": 16, "freebsd5": 16, "modern": 32}


def test_every_profile_has_its_eras_cluster_size() -> None:
    assert {name: p.cluster for name, p in PROFILES.items()} == ERA_CLUSTER


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_a_spec_without_a_cluster_key_takes_its_profiles(profile: str) -> None:
    data = spec([*stores(0)], pages=2)
    del data["cluster"]
    assert parse_spec(data, profile=profile).cluster == ERA_CLUSTER[profile]
    assert parse_spec({**data, "cluster": 1}, profile=profile).cluster == 1
    assert parse_spec({**data, "cluster": 5}, profile=profile).cluster == 5


@pytest.mark.parametrize("profile", ["manpage", "modern"])
async def test_a_one_page_msync_clusters_by_default(
    run_spec: Any, make_watch: Any, profile: str
) -> None:
    ws: list[Any] = []
    data = spec([*stores(0, 1, 2, 3), msync(1)])
    del data["cluster"]
    ex, k = await run_spec(data, profile, checkers=[lambda k: make_watch(k, ws)])
    assert ex.outcome == "ok" and k.cluster == ERA_CLUSTER[profile]
    assert sorted(writes(ws[0])) == [(0, 1), (1, 1), (2, 1), (3, 1)]


async def test_cluster_one_in_the_spec_turns_clustering_off(
    run_spec: Any, make_watch: Any
) -> None:
    ws: list[Any] = []
    await run_spec(spec([*stores(0, 1, 2), msync(0, 3)], cluster=1), "modern",
                   checkers=[lambda k: make_watch(k, ws)])
    assert writes(ws[0]) == [(0, None), (1, None), (2, None)]


# freebsd5 runs the 2003 page clean, which writes each page alone here: 2003 clustered only
# neighbours still marked PG_CLEANCHK, which a ranged msync's HARDSEQ pass never marks.
MODERN_CLEAN = [name for name, p in PROFILES.items() if not p.flag_page_clean]


@pytest.mark.parametrize("profile", MODERN_CLEAN)
@pytest.mark.parametrize(("bad", "reported"), [(0, False), (1, True), (2, True)])
async def test_a_failed_write_is_the_msyncs_only_at_or_after_the_page_it_asked_for(
    run_spec: Any, make_watch: Any, profile: str, bad: int, reported: bool
) -> None:
    ws: list[Any] = []
    ex, _ = await run_spec(spec([*stores(0, 1, 2), msync(1)], fail_pages=[bad]), profile,
                           checkers=[lambda k: make_watch(k, ws)])
    eio = reported and PROFILES[profile].write_error.label == "KERN_FAILURE"
    assert ex.results["cpu0"][-1]["ret"] == ("EIO" if eio else 0)
    assert sorted(writes(ws[0])) == [(0, 1), (1, 1), (2, 1)]
    state = ws[0].returns[0]
    if PROFILES[profile].write_clears_dirty_at_start:
        # Dirty cleared at write start: the failed page stays clean, its buffer (which
        # read(2) sees) is a delayed write again and carries the store; the disk
        # holds the others only.
        assert state["pages"]["f"][bad][0] is False
        assert all(state["pagers"]["f"][i] > 0 for i in range(3))
        assert state["delayed"]["f"] == [bad]
    else:
        # The failed page keeps its store and stays dirty; the others are written.
        assert state["pages"]["f"][bad][0] is True
        assert [state["pagers"]["f"][i] > 0 for i in range(3)] == [i != bad for i in range(3)]
    assert [state["disks"]["f"][i] > 0 for i in range(3)] == [i != bad for i in range(3)]
