"""return_code (rule 6): the code each profile requires, computed from the map when the
clean's window opens, and no side effect before an error.  Small real runs, one CPU, with
variants that return a wrong code or change state before failing; the reference is quiet.
"""

from __future__ import annotations

from typing import Any

import pytest

from emulator.check.return_code import ReturnCode
from emulator.kern.clean import MapClean, reference_clean
from emulator.kern.kern_return import KernReturn
from emulator.kern.pager import Cluster
from emulator.kern.profile import PROFILES
from emulator.variants import Variant, load_variant

CHECK = [ReturnCode]
REF = Variant("reference", reference_clean)
# A 0x10000-0x14000 file f[0..4), a hole 0x14000-0x15000, B 0x15000-0x17000 file f[4..6).
MAPPINGS = [{"addr": "0x10000", "pages": 4, "file": "f"},
            {"addr": "0x15000", "pages": 2, "file": "f", "offset": 4}]
WHOLE = ["msync", "0x10000", 0x4000, "sync"]  # inside A: success
HOLEY = ["msync", "0x10000", 0x7000, "sync"]  # A, the hole, B
NO_ENTRY = {"manpage": "KERN_INVALID_ARGUMENT", "freebsd5": "KERN_INVALID_ADDRESS",
            "modern": "KERN_INVALID_ADDRESS"}


def spec(spec_of: Any, *ops: list[Any]) -> dict[str, Any]:
    return spec_of([["store", "0x10000"], *ops], pages=6, mappings=MAPPINGS)


def answers(rv: Any, touch_map: bool = True) -> Variant:
    async def clean(vm_map: Any, start: int, end: int, syncio: bool, inval: bool) -> Any:
        if touch_map:
            await vm_map.lock.xlock()
            await vm_map.lookup_entry(start)
            await vm_map.lock.unlock()
        return rv

    return Variant(f"answers_{rv}", clean)


@pytest.mark.parametrize("profile", ["manpage", "freebsd5", "modern"])
async def test_success_over_a_hole_fires(run_spec: Any, spec_of: Any, profile: str) -> None:
    ex, _ = await run_spec(spec(spec_of, HOLEY), profile, checkers=CHECK,
                           variant=answers(KernReturn.SUCCESS))
    assert [v.rule for v in ex.violations] == ["return_code"]
    v = ex.violations[0]
    assert v.cpus == [0]
    assert v.fields == {"got": "KERN_SUCCESS", "want": NO_ENTRY[profile]}
    assert v.message.startswith(
        f"cpu0's clean of [0x10000,0x17000) in p0 returned KERN_SUCCESS; profile {profile} "
        f"requires {NO_ENTRY[profile]} for the map as it was at step ")


@pytest.mark.parametrize("profile", PROFILES)
async def test_an_error_over_a_mapped_range_fires(
    run_spec: Any, spec_of: Any, profile: str
) -> None:
    ex, _ = await run_spec(spec(spec_of, WHOLE), profile, checkers=CHECK,
                           variant=answers(KernReturn.INVALID_ADDRESS))
    assert [v.rule for v in ex.violations] == ["return_code"]
    assert ex.violations[0].fields == {"got": "KERN_INVALID_ADDRESS", "want": "KERN_SUCCESS"}


async def test_the_other_profiles_code_fires(run_spec: Any, spec_of: Any) -> None:
    # The man page's code for a hole under freebsd5: the swapped_codes mutant, by hand.
    ex, _ = await run_spec(spec(spec_of, HOLEY), "freebsd5", checkers=CHECK,
                           variant=answers(KernReturn.INVALID_ARGUMENT))
    assert [v.fields["want"] for v in ex.violations] == ["KERN_INVALID_ADDRESS"]


@pytest.mark.parametrize("profile", ["manpage", "freebsd5", "modern"])
async def test_the_right_codes_do_not_fire(run_spec: Any, spec_of: Any, profile: str) -> None:
    want = KernReturn[NO_ENTRY[profile].removeprefix("KERN_")]
    for op, variant in ((WHOLE, answers(KernReturn.SUCCESS)), (HOLEY, answers(want)),
                        (WHOLE, REF), (HOLEY, REF), (["msync", "0x14000", 0x1000, "sync"], REF)):
        ex, _ = await run_spec(spec(spec_of, op), profile, checkers=CHECK, variant=variant)
        assert ex.outcome == "ok", (op, variant.name, ex.violations)


async def test_a_clean_that_never_looks_at_the_map_is_judged_at_its_return(
    run_spec: Any, spec_of: Any
) -> None:
    ex, _ = await run_spec(spec(spec_of, HOLEY), "manpage", checkers=CHECK,
                           variant=answers(KernReturn.SUCCESS, touch_map=False))
    assert [v.fields["want"] for v in ex.violations] == ["KERN_INVALID_ARGUMENT"]
    ex, _ = await run_spec(spec(spec_of, WHOLE), "manpage", checkers=CHECK,
                           variant=answers(KernReturn.SUCCESS, touch_map=False))
    assert ex.outcome == "ok", ex.violations


async def test_a_result_that_is_no_kern_code_is_a_return_code_violation(
    run_spec: Any, spec_of: Any
) -> None:
    ex, _ = await run_spec(spec(spec_of, WHOLE), "manpage", checkers=CHECK,
                           variant=answers("done"))
    assert [(v.rule, v.message) for v in ex.violations] == [
        ("return_code", "clean returned 'done', not a KERN_* code")]


# -- no side effects on error ------------------------------------------------------------------


def unmaps_then_fails(rv: KernReturn) -> Variant:
    """Remove the range's mappings first, then return ``rv`` (as for a hole)."""

    async def clean(vm_map: Any, start: int, end: int, syncio: bool, inval: bool) -> Any:
        await vm_map.lock.xlock()
        await vm_map.lookup_entry(start)
        await vm_map.pmap.remove(start >> 12, end >> 12)
        await vm_map.lock.unlock()
        return rv

    return Variant("unmaps_then_fails", clean)


@pytest.mark.parametrize("profile", ["manpage", "freebsd5", "modern"])
async def test_an_error_after_removing_mappings_fires(
    run_spec: Any, spec_of: Any, profile: str
) -> None:
    want = KernReturn[NO_ENTRY[profile].removeprefix("KERN_")]
    ex, _ = await run_spec(spec(spec_of, HOLEY), profile, checkers=CHECK,
                           variant=unmaps_then_fails(want))
    assert [v.rule for v in ex.violations] == ["return_code"]
    v = ex.violations[0]
    assert v.cpus == [0]
    assert v.fields == {"got": NO_ENTRY[profile], "effect": "pte_remove"}
    assert v.message.startswith(
        f"cpu0's clean of [0x10000,0x17000) returned {NO_ENTRY[profile]} but changed state "
        "first: pte_remove p0 16 23 1 at step ")


async def test_success_after_removing_mappings_is_no_side_effect_violation(
    run_spec: Any, spec_of: Any
) -> None:
    ex, _ = await run_spec(spec(spec_of, WHOLE), "manpage", checkers=CHECK,
                           variant=unmaps_then_fails(KernReturn.SUCCESS))
    assert ex.outcome == "ok", ex.violations


async def test_the_reference_invalidate_over_a_hole_changes_nothing(
    run_spec: Any, spec_of: Any
) -> None:
    op = ["msync", "0x10000", 0x7000, "invalidate,sync"]
    for profile in PROFILES:
        ex, k = await run_spec(spec(spec_of, op), profile, checkers=CHECK, variant=REF)
        assert ex.outcome == "ok", (profile, ex.violations)
        assert 0x10 in k.maps["p0"].pmap.ptes


# -- modern: a write error may turn success into KERN_FAILURE ------------------------------------


async def test_modern_failure_after_a_write_error_does_not_fire(
    run_spec: Any, spec_of: Any
) -> None:
    data = spec(spec_of, WHOLE)
    data["files"]["f"]["fail_writes"] = True
    ex, _ = await run_spec(data, "modern", checkers=CHECK, variant=REF)
    assert ex.outcome == "ok", ex.violations
    assert ex.results["cpu0"][-1]["ret"] == "EIO"


async def test_failure_without_a_write_error_fires(run_spec: Any, spec_of: Any) -> None:
    ex, _ = await run_spec(spec(spec_of, WHOLE), "modern", checkers=CHECK,
                           variant=answers(KernReturn.FAILURE))
    assert [v.fields for v in ex.violations] == [{"got": "KERN_FAILURE", "want": "KERN_SUCCESS"}]


async def failing_reference(vm_map: Any, start: int, end: int, syncio: bool, inval: bool) -> Any:
    """The reference, turning success into KERN_FAILURE (modern's answer to a write error)."""
    rv = await reference_clean(vm_map, start, end, syncio, inval)
    return KernReturn.FAILURE if rv == KernReturn.SUCCESS else rv


async def test_failure_after_a_write_error_is_not_a_manpage_code(
    run_spec: Any, spec_of: Any
) -> None:
    data = spec(spec_of, WHOLE)
    data["files"]["f"]["fail_writes"] = True
    ex, _ = await run_spec(data, "manpage", checkers=CHECK,
                           variant=Variant("failing_reference", failing_reference))
    assert [v.fields for v in ex.violations] == [{"got": "KERN_FAILURE", "want": "KERN_SUCCESS"}]
    ex, _ = await run_spec(data, "modern", checkers=CHECK,
                           variant=Variant("failing_reference", failing_reference))
    assert ex.outcome == "ok", ex.violations


async def test_without_the_checker_a_result_that_is_no_kern_code_crashes_the_cpu(
    run_spec: Any, spec_of: Any
) -> None:
    ex, _ = await run_spec(spec(spec_of, WHOLE), "manpage", variant=answers("done"))
    assert ex.outcome == "crash"
    assert [v.rule for v in ex.violations] == ["crash"]
    assert "clean returned 'done', not a KERN_* code" in ex.violations[0].message


# --- msync's errno, by the profile's switch ----------------------------------------------

UNMAPPED = ["msync", "0x30000", 0x1000, "sync"]  # no entry at all


async def test_msync_errno_of_an_earlier_era_fires_under_modern(
    run_spec: Any, spec_of: Any
) -> None:
    """H16: EINVAL for an unmapped range, which modern (since r265534) reports as ENOMEM."""
    from emulator.variants import MUTANTS

    ex, _ = await run_spec(spec(spec_of, UNMAPPED), "modern", checkers=CHECK,
                           variant=MUTANTS["msync_einval_unmapped"])
    assert [v.rule for v in ex.violations] == ["return_code"]
    v = ex.violations[0]
    assert v.fields == {"got": "EINVAL", "want": "ENOMEM"}
    assert v.message == ("cpu0's msync returned EINVAL for its clean's KERN_INVALID_ADDRESS; "
                         "profile modern requires ENOMEM")


@pytest.mark.parametrize("profile", PROFILES)
async def test_the_reference_msync_errno_is_quiet_in_every_profile(
    run_spec: Any, spec_of: Any, profile: str
) -> None:
    ex, _ = await run_spec(spec(spec_of, UNMAPPED, HOLEY, WHOLE), profile, checkers=CHECK,
                           variant=REF)
    assert ex.outcome == "ok", ex.violations
    want = {"manpage": "ENOMEM", "freebsd5": "EINVAL", "modern": "ENOMEM"}[profile]
    assert [r["ret"] for r in ex.results["cpu0"]] == [0, want, want, 0]


# -- write errors of multi-page writes (H13, FIDELITY.md D9) ---------------------------


def cluster_spec(fail: int) -> dict[str, Any]:
    """Pages 0-2 of f stored, then an msync of page 1 alone: one write of pages 0-2, the
    one asked for at position 1; page ``fail`` fails."""
    return {
        "files": {"f": {"pages": 3, "fail_pages": [fail]}},
        "processes": {"p0": {"mappings": [{"addr": "0x10000", "pages": 3, "file": "f"}]}},
        "cpus": [{"process": "p0", "program": [
            ["store", "0x10000"], ["store", "0x11000"], ["store", "0x12000"],
            ["msync", "0x11000", 0x1000, "sync"]]}],
        "cluster": 4,
    }


class _NoClusterEio(MapClean):
    def cluster_eio(self, cluster: Cluster) -> bool:
        return False  # a multi-page write's error never reported


@pytest.mark.parametrize(("variant", "fail", "got"), [
    ("reference", 0, None), ("reference", 2, None),
    ("cluster_eio_whole", 0, "KERN_FAILURE"), ("cluster_eio_whole", 2, None),
    ("none", 0, None), ("none", 2, "KERN_SUCCESS"),
])
async def test_a_multi_page_writes_error_is_the_cleans_only_at_or_after_the_page_it_asked_for(
    run_spec: Any, variant: str, fail: int, got: str | None
) -> None:
    v = Variant("none", _NoClusterEio().clean) if variant == "none" else load_variant(variant)
    ex, _ = await run_spec(cluster_spec(fail), "modern", checkers=CHECK, variant=v)
    if got is None:
        assert ex.outcome == "ok", [x.message for x in ex.violations]
        return
    assert [x.rule for x in ex.violations] == ["return_code"]
    want = "KERN_FAILURE" if got == "KERN_SUCCESS" else "KERN_SUCCESS"
    assert ex.violations[0].fields == {"got": got, "want": want}
    if got == "KERN_SUCCESS":
        assert "since the synchronous write of page f:2, the page it asked for or a later " \
            "one of that write, failed" in ex.violations[0].message
    else:
        assert "a backward neighbour's in a multi-page write" in ex.violations[0].message
