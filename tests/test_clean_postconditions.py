"""What a successful clean leaves behind (SEMANTICS.md §3-§5), one CPU, every profile."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.kern.profile import PROFILES, AsyncWrite

PAGE = 0x1000
BASE = 0x10000


def spec(program: list[list[Any]],
         mappings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "files": {"f": {"pages": 4}},
        "processes": {"p0": {"mappings": mappings or [
            {"addr": hex(BASE), "pages": 4, "file": "f"}]}},
        "cpus": [{"process": "p0", "program": program}],
    }


def stores(*pages: int) -> list[list[Any]]:
    return [["store", hex(BASE + p * PAGE)] for p in pages]


def watched(make_watch: Any) -> tuple[list[Any], Any]:
    ws: list[Any] = []
    return ws, lambda k: make_watch(k, ws)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("seed", [0, 1, 2])
async def test_sync_msync_leaves_the_last_store_of_each_page_in_the_pager(
    run_spec: Any, make_watch: Any, profile: str, seed: int
) -> None:
    ws, hook = watched(make_watch)
    program = [*stores(0, 1, 0, 3, 3, 3), ["msync", hex(BASE), 4 * PAGE, "sync"]]
    ex, _ = await run_spec(spec(program), profile, seed=seed, checkers=[hook])
    assert ex.outcome == "ok"
    w = ws[0]
    assert w.stores == {("f", 0): 3, ("f", 1): 2, ("f", 3): 6}
    assert w.returns[0]["pagers"]["f"] == [3, 2, 0, 6]


@pytest.mark.parametrize("profile", PROFILES)
async def test_sync_msync_leaves_the_pages_clean_and_write_protected(
    run_spec: Any, make_watch: Any, profile: str
) -> None:
    ws, hook = watched(make_watch)
    program = [*stores(0, 1, 3), ["load", hex(BASE + 2 * PAGE)],
               ["msync", hex(BASE), 4 * PAGE, "sync"]]
    ex, _ = await run_spec(spec(program), profile, checkers=[hook])
    assert ex.outcome == "ok"
    at_return = ws[0].returns[0]
    ptes = at_return["ptes"]["p0"]
    assert len(ptes) == 4
    assert all(not writable and not modified for _page, writable, modified in ptes.values())
    pages = at_return["pages"]["f"]
    assert sorted(pages) == [0, 1, 2, 3]
    for dirty, _contents, busy, _wired, _valid in pages.values():
        assert not dirty and busy == 0


@pytest.mark.parametrize("profile", PROFILES)
async def test_a_store_after_msync_faults_and_redirties_the_page(
    run_spec: Any, make_watch: Any, profile: str
) -> None:
    ws, hook = watched(make_watch)
    program = [*stores(0), ["msync", hex(BASE), PAGE, "sync"], *stores(0),
               ["msync", hex(BASE), PAGE, "sync"]]
    ex, k = await run_spec(spec(program), profile, checkers=[hook])
    assert ex.outcome == "ok"
    assert [r["pagers"]["f"][0] for r in ws[0].returns] == [1, 2]
    assert k.files["f"].generation >= 3  # each write fault bumped it


@pytest.mark.parametrize("profile", [name for name, p in PROFILES.items()
                                     if p.async_write is AsyncWrite.BAWRITE])
async def test_async_msync_returns_with_its_writes_still_in_flight(
    run_spec: Any, make_watch: Any, first_strategy: Any, profile: str
) -> None:
    ws, hook = watched(make_watch)
    program = [*stores(0, 2), ["msync", hex(BASE), 4 * PAGE, "async"]]
    ex, _ = await run_spec(spec(program), profile, checkers=[hook], strategy=first_strategy())
    assert ex.outcome == "ok"
    w = ws[0]
    at_return = w.returns[0]
    assert at_return["rv"] == "KERN_SUCCESS"
    # The disk has not run yet: both writes are queued, the pager still holds the old data,
    # and the pages stay busy until completion.
    assert at_return["queued"] == 2
    assert at_return["pagers"]["f"] == [0, 0, 0, 0]
    assert at_return["pages"]["f"][0][2] != 0 and at_return["pages"]["f"][2][2] != 0
    # The disk agent completes them without further user action, before the final flush.
    assert w.end_state is not None
    assert w.end_state["pagers"]["f"] == [1, 0, 2, 0]
    assert [ev.pindex for ev in w.io_done] == [0, 2]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
async def test_async_msync_is_caught_up_by_the_disk_without_the_final_flush(
    run_spec: Any, make_watch: Any, profile: str, seed: int
) -> None:
    ws, hook = watched(make_watch)
    program = [*stores(0, 1, 2, 3), ["msync", hex(BASE), 4 * PAGE, "async"]]
    ex, _ = await run_spec(spec(program), profile, seed=seed, checkers=[hook])
    assert ex.outcome == "ok"
    assert ws[0].end_state["pagers"]["f"] == [1, 2, 3, 4]
    assert all(not p[0] for p in ws[0].end_state["pages"]["f"].values())


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("strategy", ["first", "random"])
async def test_sync_msync_after_async_returns_only_when_the_data_is_stored(
    run_spec: Any, make_watch: Any, first_strategy: Any, profile: str, strategy: str
) -> None:
    ws, hook = watched(make_watch)
    program = [*stores(0, 1), ["msync", hex(BASE), 4 * PAGE, "async"],
               ["msync", hex(BASE), 4 * PAGE, "sync"]]
    for seed in range(5):
        ws.clear()
        ex, _ = await run_spec(spec(program), profile, seed=seed, checkers=[hook],
                               strategy=first_strategy() if strategy == "first" else None)
        assert ex.outcome == "ok"
        second = ws[0].returns[1]
        if PROFILES[profile].flag_page_clean:
            # freebsd5 (H26): the async writes left the pages clean while in flight, and the
            # sync msync tests dirty before waiting for the busy: it returns with every
            # write the disk has not done yet still queued -- both, when the disk runs only
            # while cpu0 sleeps.
            stored = second["pagers"]["f"][:2]
            assert all(held in (0, want) for held, want in zip(stored, [1, 2], strict=True))
            assert second["queued"] == stored.count(0)
            if strategy == "first":
                assert stored == [0, 0]
            continue
        assert second["pagers"]["f"][:2] == [1, 2]
        assert second["queued"] == 0


@pytest.mark.parametrize("profile", PROFILES)
async def test_invalidate_removes_this_maps_mappings_and_frees_written_pages(
    run_spec: Any, make_watch: Any, profile: str
) -> None:
    ws, hook = watched(make_watch)
    program = [*stores(0, 1, 3), ["load", hex(BASE + 2 * PAGE)],
               ["msync", hex(BASE), 4 * PAGE, "invalidate,sync"]]
    ex, _ = await run_spec(spec(program), profile, checkers=[hook])
    assert ex.outcome == "ok"
    at_return = ws[0].returns[0]
    assert at_return["rv"] == "KERN_SUCCESS"
    assert at_return["ptes"]["p0"] == {}
    assert at_return["pagers"]["f"] == [1, 2, 0, 3]
    assert at_return["pages"]["f"] == {}


@pytest.mark.parametrize("profile", PROFILES)
async def test_invalidate_of_part_of_an_entry_keeps_the_rest(
    run_spec: Any, make_watch: Any, profile: str
) -> None:
    ws, hook = watched(make_watch)
    program = [*stores(0, 1, 2, 3), ["msync", hex(BASE + PAGE), 2 * PAGE, "invalidate,sync"]]
    ex, _ = await run_spec(spec(program), profile, checkers=[hook])
    assert ex.outcome == "ok"
    at_return = ws[0].returns[0]
    vpns = sorted(at_return["ptes"]["p0"])
    assert vpns == [BASE >> 12, (BASE >> 12) + 3]
    assert sorted(at_return["pages"]["f"]) == [0, 3]
    if PROFILES[profile].flag_page_clean:
        # The 2003 HARDSEQ pass writes the range's pages one by one: page 0 stays dirty.
        assert at_return["pagers"]["f"] == [0, 2, 3, 0]
        assert at_return["pages"]["f"][0][0] or at_return["ptes"]["p0"][BASE >> 12][2]
    else:
        # Pages 0 and 3, outside the range, went with the cluster's write, and stay.
        assert at_return["pagers"]["f"] == [1, 2, 3, 4]


@pytest.mark.parametrize("profile", PROFILES)
async def test_a_later_load_after_invalidate_pages_the_stored_data_back_in(
    run_spec: Any, profile: str
) -> None:
    program = [*stores(0), ["msync", hex(BASE), PAGE, "invalidate,sync"],
               ["load", hex(BASE)]]
    ex, _ = await run_spec(spec(program), profile)
    assert [r["ret"] for r in ex.results["cpu0"]] == [0, 0, 1]


@pytest.mark.parametrize("profile", PROFILES)
async def test_munmap_keeps_dirty_file_pages_resident_until_the_final_flush(
    run_spec: Any, make_watch: Any, profile: str
) -> None:
    ws, hook = watched(make_watch)
    program = [*stores(0, 2), ["munmap", hex(BASE), 4 * PAGE]]
    ex, k = await run_spec(spec(program), profile, checkers=[hook])
    assert ex.outcome == "ok"
    end = ws[0].end_state
    assert end["ptes"]["p0"] == {}
    # The store went through a writable mapping: munmap folded the modified bit into dirty.
    assert end["pages"]["f"][0][:2] == (True, 1)
    assert end["pages"]["f"][2][:2] == (True, 2)
    assert end["pagers"]["f"] == [0, 0, 0, 0]
    assert k.pagers["f"].stored == [1, 0, 2, 0]  # the final flush wrote them


@pytest.mark.parametrize("profile", PROFILES)
async def test_a_clean_through_another_mapping_writes_pages_dirtied_before_a_munmap(
    run_spec: Any, make_watch: Any, profile: str
) -> None:
    ws, hook = watched(make_watch)
    mappings = [{"addr": hex(BASE), "pages": 4, "file": "f"},
                {"addr": "0x80000", "pages": 4, "file": "f"}]
    program = [*stores(1), ["munmap", hex(BASE), 4 * PAGE], ["msync", "0x80000", 4 * PAGE, "sync"]]
    ex, _ = await run_spec(spec(program, mappings), profile, checkers=[hook])
    assert ex.outcome == "ok"
    assert ws[0].returns[0]["pagers"]["f"] == [0, 1, 0, 0]


@pytest.mark.parametrize("profile", PROFILES)
async def test_private_mapping_stores_never_reach_the_pager(
    run_spec: Any, make_watch: Any, profile: str
) -> None:
    ws, hook = watched(make_watch)
    mappings = [{"addr": hex(BASE), "pages": 4, "file": "f", "private": True}]
    program = [*stores(0, 1), ["msync", hex(BASE), 4 * PAGE, "sync"],
               ["msync", hex(BASE), 4 * PAGE, "invalidate,sync"], ["load", hex(BASE)]]
    ex, k = await run_spec(spec(program, mappings), profile, checkers=[hook])
    assert ex.outcome == "ok"
    results = [r["ret"] for r in ex.results["cpu0"]]
    assert results == [0, 0, 0, 0, 1]  # the private copy still reads its own store
    assert ws[0].io_issued == []
    assert k.pagers["f"].stored == [0, 0, 0, 0]
    assert all(not p.dirty for p in k.files["f"].pages.values())


@pytest.mark.parametrize("profile", PROFILES)
async def test_private_mapping_sees_the_file_until_it_writes(
    run_spec: Any, profile: str
) -> None:
    mappings = [{"addr": hex(BASE), "pages": 4, "file": "f"},
                {"addr": "0x20000", "pages": 4, "file": "f", "private": True}]
    program = [["store", hex(BASE)], ["load", "0x20000"], ["store", "0x20000"],
               ["store", hex(BASE)], ["load", "0x20000"], ["load", hex(BASE)]]
    ex, k = await run_spec(spec(program, mappings), profile)
    assert [r["ret"] for r in ex.results["cpu0"]] == [0, 1, 0, 0, 2, 3]
    assert k.pagers["f"].stored[0] == 3


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("flags", ["sync", "async", "invalidate,sync"])
async def test_msync_of_an_anonymous_mapping_is_a_successful_no_op(
    run_spec: Any, make_watch: Any, profile: str, flags: str
) -> None:
    ws, hook = watched(make_watch)
    mappings = [{"addr": hex(BASE), "pages": 4, "anon": True},
                {"addr": "0x20000", "pages": 2, "anon": True}]
    program = [*stores(0, 1), ["msync", hex(BASE), 4 * PAGE, flags],
               ["msync", "0x20000", 2 * PAGE, flags], ["load", hex(BASE)]]
    ex, _ = await run_spec(spec(program, mappings), profile, checkers=[hook])
    assert ex.outcome == "ok"
    assert [r["ret"] for r in ex.results["cpu0"]] == [0, 0, 0, 0, 1]
    assert ws[0].io_issued == []
    assert ws[0].calls[0]["pages"] == ws[0].returns[0]["pages"]


@pytest.mark.parametrize("profile", PROFILES)
async def test_msync_of_a_read_only_file_mapping_succeeds(
    run_spec: Any, profile: str
) -> None:
    mappings = [{"addr": hex(BASE), "pages": 4, "file": "f", "prot": "r"}]
    program = [["load", hex(BASE)], ["store", hex(BASE)], ["msync", hex(BASE), PAGE, "sync"]]
    ex, _ = await run_spec(spec(program, mappings), profile)
    assert [r["ret"] for r in ex.results["cpu0"]] == [0, "SIGSEGV", 0]


@pytest.mark.parametrize("profile", [name for name, p in PROFILES.items()
                                     if p.async_write is AsyncWrite.BDWRITE])
async def test_a_delayed_async_msync_returns_with_its_pages_clean_in_the_buffer_cache(
    run_spec: Any, make_watch: Any, first_strategy: Any, profile: str
) -> None:
    ws, hook = watched(make_watch)
    program = [*stores(0, 2), ["msync", hex(BASE), 4 * PAGE, "async"]]
    ex, k = await run_spec(spec(program), profile, checkers=[hook], strategy=first_strategy())
    assert ex.outcome == "ok"
    at_return = ws[0].returns[0]
    assert at_return["rv"] == "KERN_SUCCESS"
    # Nothing went to the disk: the buffer cache holds the data, the pages are clean and
    # unbusied, and their buffers are delayed writes the disk has not seen.
    assert at_return["queued"] == 0
    assert at_return["pagers"]["f"] == [1, 0, 2, 0]
    for pindex in (0, 2):
        dirty, _contents, busy, _wired, _valid = at_return["pages"]["f"][pindex]
        assert not dirty and busy == 0
    assert k.pagers["f"].disk == [0, 0, 0, 0] and list(k.pagers["f"].delayed) == [0, 2]
    assert ws[0].io_done == []
