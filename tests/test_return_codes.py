"""SEMANTICS.md §2: every row of the profile table, msync's errno mapping, and the rule that a
failing clean changes nothing.  One CPU, so the return codes never depend on a race."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.check.base import Checker
from emulator.kern.events import IoDone
from emulator.kern.kernel import Kernel

PROFILES = ("manpage", "freebsd5", "modern")
PAGE = 0x1000

# The layout every test here uses (file f has 8 pages):
#   A 0x10000-0x14000 file f[0..4)      hole 0x14000-0x15000
#   B 0x15000-0x17000 file f[4..6)
#   F 0x20000-0x22000 file f[0..2)      followed directly by
#   C 0x22000-0x24000 sub-map over f[6..8)
#   G 0x3e000-0x40000 file f[2..4)      followed directly by
#   D 0x40000-0x42000 file f[6..8), user-wired
#   E 0x50000-0x52000 anonymous
MAPPINGS: list[dict[str, Any]] = [
    {"addr": "0x10000", "pages": 4, "file": "f", "offset": 0},
    {"addr": "0x15000", "pages": 2, "file": "f", "offset": 4},
    {"addr": "0x20000", "pages": 2, "file": "f", "offset": 0},
    {"addr": "0x22000", "pages": 2, "submap": True, "file": "f", "offset": 6},
    {"addr": "0x3e000", "pages": 2, "file": "f", "offset": 2},
    {"addr": "0x40000", "pages": 2, "file": "f", "offset": 6, "wired": True},
    {"addr": "0x50000", "pages": 2, "anon": True},
    {"addr": "0x60000", "pages": 2, "file": "f", "offset": 4},
]


def spec(program: list[list[Any]]) -> dict[str, Any]:
    return {
        "files": {"f": {"pages": 8}},
        "processes": {"p0": {"mappings": MAPPINGS}},
        "cpus": [{"process": "p0", "program": program}],
    }


def rets(ex: Any) -> list[Any]:
    return [r["ret"] for r in ex.results["cpu0"]]


class FailEveryWrite(Checker):
    """Not a rule: every write to f fails (EIO)."""

    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        k.pagers["f"].fail_writes = True


class FailFirstWrite(Checker):
    """Not a rule: exactly the first write to f fails (EIO); later writes succeed."""

    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        self.pager = k.pagers["f"]
        self.pager.fail_writes = True
        k.observe(IoDone, self.done)

    def done(self, _step: int, _aid: int, _ev: IoDone) -> None:
        self.pager.fail_writes = False


# --- the rows of the table, as clean calls -----------------------------------------------

NO_ENTRY = {"manpage": "KERN_INVALID_ARGUMENT", "freebsd5": "KERN_INVALID_ADDRESS",
            "modern": "KERN_INVALID_ADDRESS"}
HOLE = NO_ENTRY
SUBMAP = {"manpage": "KERN_INVALID_ADDRESS", "freebsd5": "KERN_INVALID_ARGUMENT",
          "modern": "KERN_SUCCESS"}
WIRED_INVALIDATE = {"manpage": "KERN_SUCCESS", "freebsd5": "KERN_SUCCESS",
                    "modern": "KERN_INVALID_ARGUMENT"}
WRITE_ERROR = {"manpage": "KERN_SUCCESS", "freebsd5": "KERN_SUCCESS", "modern": "KERN_FAILURE"}


@pytest.mark.parametrize("profile", PROFILES)
async def test_clean_with_no_entry_containing_start_returns_the_profile_code(
    run_spec: Any, profile: str
) -> None:
    ex, _ = await run_spec(spec([["clean", "0x5000", "0x6000", True, False]]), profile)
    assert ex.outcome == "ok"
    assert rets(ex) == [NO_ENTRY[profile]]


@pytest.mark.parametrize("profile", PROFILES)
async def test_clean_starting_in_the_hole_returns_the_no_entry_code(
    run_spec: Any, profile: str
) -> None:
    ex, _ = await run_spec(spec([["clean", "0x14000", "0x16000", True, False]]), profile)
    assert rets(ex) == [NO_ENTRY[profile]]


@pytest.mark.parametrize("profile", PROFILES)
async def test_clean_over_a_hole_inside_the_range_returns_the_profile_code(
    run_spec: Any, profile: str
) -> None:
    ex, _ = await run_spec(spec([["clean", "0x10000", "0x17000", True, False]]), profile)
    assert ex.outcome == "ok"
    assert rets(ex) == [HOLE[profile]]


@pytest.mark.parametrize("profile", PROFILES)
async def test_clean_ending_exactly_at_the_hole_succeeds(run_spec: Any, profile: str) -> None:
    ex, _ = await run_spec(spec([["clean", "0x10000", "0x14000", True, False]]), profile)
    assert rets(ex) == ["KERN_SUCCESS"]


@pytest.mark.parametrize("profile", PROFILES)
async def test_clean_over_a_submap_entry_returns_the_profile_code(
    run_spec: Any, make_watch: Any, profile: str
) -> None:
    ws: list[Any] = []
    program = [["store", "0x22000"], ["clean", "0x22000", "0x24000", True, False]]
    ex, _ = await run_spec(spec(program), profile, checkers=[lambda k: make_watch(k, ws)])
    assert ex.outcome == "ok"
    assert rets(ex) == [0, SUBMAP[profile]]
    stored_at_return = ws[0].returns[0]["pagers"]["f"][6]
    if profile == "modern":
        # Cleaned through the sub-map: the store reached the file before the call returned.
        assert stored_at_return == ws[0].stores[("f", 6)]
    else:
        assert stored_at_return == 0


@pytest.mark.parametrize("profile", PROFILES)
async def test_clean_from_a_file_entry_into_a_submap_returns_the_profile_code(
    run_spec: Any, profile: str
) -> None:
    ex, _ = await run_spec(spec([["clean", "0x20000", "0x24000", True, False]]), profile)
    assert rets(ex) == [SUBMAP[profile]]


@pytest.mark.parametrize("profile", PROFILES)
async def test_invalidate_over_a_wired_entry_returns_the_profile_code(
    run_spec: Any, make_watch: Any, profile: str
) -> None:
    ws: list[Any] = []
    program = [["store", "0x40000"], ["clean", "0x40000", "0x42000", True, True]]
    ex, _ = await run_spec(spec(program), profile, checkers=[lambda k: make_watch(k, ws)])
    assert ex.outcome == "ok"
    assert rets(ex) == [0, WIRED_INVALIDATE[profile]]
    at_return = ws[0].returns[0]
    # A wired page is never freed; where the call is allowed it was written.
    assert 6 in at_return["pages"]["f"]
    if profile != "modern":
        assert at_return["pagers"]["f"][6] == ws[0].stores[("f", 6)]


@pytest.mark.parametrize("profile", PROFILES)
async def test_invalidate_over_an_mlocked_entry_returns_the_profile_code(
    run_spec: Any, profile: str
) -> None:
    program = [["mlock", "0x60000", 2 * PAGE], ["store", "0x60000"],
               ["clean", "0x60000", "0x62000", True, True]]
    ex, _ = await run_spec(spec(program), profile)
    assert rets(ex) == [0, 0, WIRED_INVALIDATE[profile]]


@pytest.mark.parametrize("profile", PROFILES)
async def test_invalidate_after_munlock_is_allowed_in_every_profile(
    run_spec: Any, profile: str
) -> None:
    program = [["mlock", "0x60000", 2 * PAGE], ["munlock", "0x60000", 2 * PAGE],
               ["clean", "0x60000", "0x62000", True, True]]
    ex, _ = await run_spec(spec(program), profile)
    assert rets(ex) == [0, 0, "KERN_SUCCESS"]


@pytest.mark.parametrize("profile", PROFILES)
async def test_clean_without_invalidate_over_a_wired_entry_succeeds(
    run_spec: Any, profile: str
) -> None:
    ex, _ = await run_spec(spec([["clean", "0x40000", "0x42000", True, False]]), profile)
    assert rets(ex) == ["KERN_SUCCESS"]


@pytest.mark.parametrize("profile", PROFILES)
async def test_a_write_error_returns_the_profile_code(run_spec: Any, profile: str) -> None:
    """Every write to f fails: modern reports KERN_FAILURE, the others ignore it."""
    program = [["store", "0x10000"], ["clean", "0x10000", "0x11000", True, False]]
    ex, _ = await run_spec(spec(program), profile, checkers=[FailEveryWrite], max_steps=3000)
    assert ex.outcome == "ok", ex.detail
    assert rets(ex) == [0, WRITE_ERROR[profile]]


@pytest.mark.parametrize("profile", PROFILES)
async def test_a_single_failed_write_returns_the_profile_code(
    run_spec: Any, profile: str
) -> None:
    """Only the first write fails; the rescan rewrites the page, but modern still fails."""
    program = [["store", "0x10000"], ["clean", "0x10000", "0x11000", True, False]]
    ex, _ = await run_spec(spec(program), profile, checkers=[FailFirstWrite])
    assert ex.outcome == "ok", ex.detail
    assert rets(ex) == [0, WRITE_ERROR[profile]]


@pytest.mark.parametrize("profile", ("manpage", "freebsd5"))
async def test_empty_range_cleans_nothing_in_manpage_and_freebsd5(
    run_spec: Any, make_watch: Any, profile: str
) -> None:
    ws: list[Any] = []
    program = [["store", "0x10000"], ["store", "0x13000"],
               ["clean", "0x10000", "0x10000", True, False],
               ["clean", "0x12000", "0x12000", True, False]]
    ex, _ = await run_spec(spec(program), profile, checkers=[lambda k: make_watch(k, ws)])
    assert rets(ex) == [0, 0, "KERN_SUCCESS", "KERN_SUCCESS"]
    assert ws[0].io_issued == []
    assert [r["pagers"]["f"] for r in ws[0].returns] == [[0] * 8, [0] * 8]


async def test_empty_range_cleans_the_whole_containing_entry_in_modern(
    run_spec: Any, make_watch: Any
) -> None:
    ws: list[Any] = []
    program = [["store", "0x10000"], ["store", "0x13000"], ["store", "0x15000"],
               ["clean", "0x12000", "0x12000", True, False]]
    # Each page alone ("cluster": 1): a cluster would take f:4, B's dirty page next to A's
    # last, into A's write, whatever the range (vm_object_page_collect_flush).
    ex, _ = await run_spec({**spec(program), "cluster": 1}, "modern",
                           checkers=[lambda k: make_watch(k, ws)])
    assert rets(ex) == [0, 0, 0, "KERN_SUCCESS"]
    w = ws[0]
    stored = w.returns[0]["pagers"]["f"]
    # Entry A (f[0..4)) is cleaned whole; B (f[4..6)) is another entry and is left alone.
    assert stored[0] == w.stores[("f", 0)]
    assert stored[3] == w.stores[("f", 3)]
    assert stored[4] == 0


async def test_empty_range_outside_any_entry_in_modern_is_invalid_address(
    run_spec: Any,
) -> None:
    ex, _ = await run_spec(spec([["clean", "0x14000", "0x14000", True, False]]), "modern")
    assert rets(ex) == ["KERN_INVALID_ADDRESS"]


# --- msync(2)'s errno mapping ---------------------------------------------------------------

# Each era's switch (FIDELITY.md D5): msync.2's ENOMEM for anything not mapped (manpage),
# the pre-rename EINVAL for every refusal (freebsd5), kern_msync's since r265534 (modern).
ERRNO = {
    "manpage": {"KERN_SUCCESS": 0, "KERN_INVALID_ADDRESS": "ENOMEM",
                "KERN_INVALID_ARGUMENT": "ENOMEM", "KERN_FAILURE": "EIO"},
    "freebsd5": {"KERN_SUCCESS": 0, "KERN_INVALID_ADDRESS": "EINVAL",
                 "KERN_INVALID_ARGUMENT": "EINVAL", "KERN_FAILURE": "EIO"},
    "modern": {"KERN_SUCCESS": 0, "KERN_INVALID_ADDRESS": "ENOMEM",
               "KERN_INVALID_ARGUMENT": "EBUSY", "KERN_FAILURE": "EIO"},
}


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(
    ("op", "codes"),
    [
        (["msync", "0x5000", PAGE, "sync"], NO_ENTRY),
        (["msync", "0x10000", 7 * PAGE, "sync"], HOLE),
        (["msync", "0x22000", 2 * PAGE, "sync"], SUBMAP),
        (["msync", "0x40000", 2 * PAGE, "invalidate,sync"], WIRED_INVALIDATE),
        (["msync", "0x10000", 4 * PAGE, "sync"], dict.fromkeys(PROFILES, "KERN_SUCCESS")),
        (["msync", "0x10000", 4 * PAGE, "async"], dict.fromkeys(PROFILES, "KERN_SUCCESS")),
        (["msync", "0x10000", 4 * PAGE, "invalidate"], dict.fromkeys(PROFILES, "KERN_SUCCESS")),
    ],
    ids=["no-entry", "hole", "submap", "wired-invalidate", "sync", "async", "invalidate"],
)
async def test_msync_maps_the_clean_code_to_errno(
    run_spec: Any, profile: str, op: list[Any], codes: dict[str, str]
) -> None:
    ex, _ = await run_spec(spec([op]), profile)
    assert rets(ex) == [ERRNO[profile][codes[profile]]]


@pytest.mark.parametrize("profile", PROFILES)
async def test_msync_write_error_is_eio_in_modern_and_ignored_elsewhere(
    run_spec: Any, profile: str
) -> None:
    program = [["store", "0x10000"], ["msync", "0x10000", PAGE, "sync"]]
    ex, _ = await run_spec(spec(program), profile, checkers=[FailFirstWrite])
    assert rets(ex) == [0, ERRNO[profile][WRITE_ERROR[profile]]]


@pytest.mark.parametrize("profile", PROFILES)
async def test_msync_async_invalidate_is_einval_without_calling_the_clean(
    run_spec: Any, make_watch: Any, profile: str
) -> None:
    ws: list[Any] = []
    program = [["store", "0x10000"], ["msync", "0x10000", PAGE, "async,invalidate"]]
    ex, _ = await run_spec(spec(program), profile, checkers=[lambda k: make_watch(k, ws)])
    assert rets(ex) == [0, "EINVAL"]
    assert ws[0].calls == []
    assert ws[0].io_issued == []


@pytest.mark.parametrize("profile", PROFILES)
async def test_msync_wrapping_around_the_address_space_is_einval(
    run_spec: Any, make_watch: Any, profile: str
) -> None:
    ws: list[Any] = []
    program = [["msync", "0xfffffffffffff000", 2 * PAGE, "sync"]]
    ex, _ = await run_spec(spec(program), profile, checkers=[lambda k: make_watch(k, ws)])
    assert rets(ex) == ["EINVAL"]
    assert ws[0].calls == []


@pytest.mark.parametrize("profile", PROFILES)
async def test_msync_rounds_addr_down_and_length_up_to_pages(
    run_spec: Any, make_watch: Any, profile: str
) -> None:
    ws: list[Any] = []
    program = [["store", "0x10000"], ["store", "0x11000"], ["msync", "0x10fff", 2, "sync"]]
    ex, _ = await run_spec(spec(program), profile, checkers=[lambda k: make_watch(k, ws)])
    assert rets(ex) == [0, 0, 0]
    w = ws[0]
    assert w.calls[0]["args"] == ("p0", 0x10000, 0x12000, True, False)
    assert w.returns[0]["pagers"]["f"][:2] == [w.stores[("f", 0)], w.stores[("f", 1)]]


# --- zero-length msync (FIDELITY.md D6) -------------------------------------------------------

# What msync(addr, 0) cleans: freebsd5's msync sizes it to the entry holding addr; modern's
# vm_map_sync does the same under its own lock; the man page's clean of an empty range
# cleans nothing.
ZERO_LENGTH_RANGE = {"manpage": ("p0", 0x11000, 0x11000, True, False),
                     "freebsd5": ("p0", 0x10000, 0x14000, True, False),
                     "modern": ("p0", 0x11000, 0x11000, True, False)}


@pytest.mark.parametrize("profile", PROFILES)
async def test_zero_length_msync_cleans_the_entry_where_its_era_did(
    run_spec: Any, make_watch: Any, profile: str
) -> None:
    ws: list[Any] = []
    program = [["store", "0x10000"], ["msync", "0x11000", 0, "sync"]]
    ex, _ = await run_spec(spec(program), profile, checkers=[lambda k: make_watch(k, ws)])
    assert rets(ex) == [0, 0]
    w = ws[0]
    assert w.calls[0]["args"] == ZERO_LENGTH_RANGE[profile]
    flushed = w.returns[0]["pagers"]["f"][0] == w.stores[("f", 0)]
    assert flushed == (profile != "manpage")


@pytest.mark.parametrize("profile", PROFILES)
async def test_zero_length_msync_at_an_unmapped_address(
    run_spec: Any, make_watch: Any, profile: str
) -> None:
    """freebsd5: EINVAL from msync's own lookup, no clean; the others: the clean's code."""
    ws: list[Any] = []
    ex, _ = await run_spec(spec([["msync", "0x30000", 0, "sync"]]), profile,
                           checkers=[lambda k: make_watch(k, ws)])
    assert rets(ex) == [ERRNO[profile][NO_ENTRY[profile]]]
    assert len(ws[0].calls) == (0 if profile == "freebsd5" else 1)


# --- munmap over a hole (FIDELITY.md D17) ----------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
async def test_munmap_over_a_hole_is_einval_in_freebsd5_and_removes_nothing(
    run_spec: Any, profile: str
) -> None:
    program = [["store", "0x10000"], ["munmap", "0x10000", 7 * PAGE], ["munmap", "0x50000", PAGE]]
    ex, k = await run_spec(spec(program), profile)
    refused = profile == "freebsd5"
    assert rets(ex) == [0, "EINVAL" if refused else 0, 0]
    p0 = k.maps["p0"]
    assert (p0.entry_containing(0x10000) is not None) == refused
    assert (p0.entry_containing(0x15000) is not None) == refused
    assert (0x10 in p0.pmap.ptes) == refused  # the page stays mapped: nothing was removed
    assert p0.entry_containing(0x50000) is None  # a range with no hole goes everywhere


# --- a failing call changes nothing ------------------------------------------------------

STORES = [["store", hex(a)] for a in (0x10000, 0x11000, 0x15000, 0x20000, 0x22000, 0x3e000,
                                      0x3f000, 0x40000)]
FAILING: list[tuple[str, list[Any], tuple[str, ...]]] = [
    ("invalidate-over-hole", ["clean", "0x10000", "0x17000", True, True], PROFILES),
    ("sync-over-hole", ["clean", "0x10000", "0x17000", True, False], PROFILES),
    ("msync-invalidate-over-hole", ["msync", "0x10000", 7 * PAGE, "invalidate,sync"], PROFILES),
    ("no-entry-invalidate", ["clean", "0x14000", "0x17000", True, True], PROFILES),
    ("invalidate-into-submap", ["clean", "0x20000", "0x24000", True, True],
     ("manpage", "freebsd5")),
    ("invalidate-into-wired", ["clean", "0x3e000", "0x42000", True, True], ("modern",)),
]


@pytest.mark.parametrize(
    ("profile", "op"),
    [(p, op) for _name, op, profiles in FAILING for p in profiles],
    ids=[f"{name}-{p}" for name, _op, profiles in FAILING for p in profiles],
)
async def test_a_failing_clean_changes_no_pte_page_or_pager(
    run_spec: Any, make_watch: Any, profile: str, op: list[Any]
) -> None:
    ws: list[Any] = []
    # Make some pages clean-but-stored first, then dirty them again, so the picture holds
    # written, dirty, modified and writable state all at once.
    program = [*STORES, ["msync", "0x10000", 4 * PAGE, "sync"], ["store", "0x10000"],
               ["load", "0x12000"], op]
    ex, _ = await run_spec(spec(program), profile, checkers=[lambda k: make_watch(k, ws)])
    assert ex.outcome == "ok"
    assert rets(ex)[-1] not in (0, "KERN_SUCCESS")
    w = ws[0]
    before, after = w.calls[-1], w.returns[-1]
    # The picture is not trivial: pages are mapped writable and modified, some were stored.
    ptes = before["ptes"]["p0"]
    assert any(writable and modified for _page, writable, modified in ptes.values())
    assert any(v != 0 for v in before["pagers"]["f"])
    for key in ("ptes", "pages", "pagers"):
        assert after[key] == before[key], key
    assert after["queued"] == 0
