"""The named workloads: every one builds a valid, deterministic spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import workloads
from emulator.check import all_checkers
from emulator.errors import BadInput
from emulator.kern.kernel import Kernel
from emulator.kern.profile import PROFILES
from emulator.machine import Execution, Machine
from emulator.sched.strategies import PortfolioStrategy
from emulator.spec import parse_spec
from emulator.variants import BUILTIN
from workloads import WORKLOADS, build_workload, describe, load_workload, resolve_params

NAMES = list(WORKLOADS)
EXPECTED = ["writers_vs_msync", "msync_vs_munmap", "two_cleaners", "invalidate_shared_file",
            "zero_length_msync", "random_mix", "write_errors",
            "submap_msync", "wired_invalidate", "private_shadow", "spanning_range",
            "three_processes", "teardown_during_flush", "generated", "pageout_vs_msync",
            "mprotect_msync", "cluster_errors",
            "async_then_invalidate", "async_then_sync", "munmap_closed_file",
            "failed_write_fsync", "invalidate_wired_elsewhere", "nosync_msync"]
# The structure-covering workloads (issue 9): each builds one structure of the spec format.
STRUCTURES = EXPECTED[7:13]


def test_registry_and_describe() -> None:
    assert NAMES == EXPECTED
    rows = describe()
    assert [r[0] for r in rows] == EXPECTED
    for name, doc, params in rows:
        assert doc and "\n" not in doc
        assert params == WORKLOADS[name].PARAMS
        for kind, _default, help_ in params.values():
            assert kind in (int, bool, str) and help_


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_builds_and_round_trips(name: str, seed: int) -> None:
    spec = build_workload(name, {}, seed, None)
    assert spec.name == name
    assert spec.profile == "manpage"
    assert spec.params.keys() == WORKLOADS[name].PARAMS.keys()
    again = parse_spec(spec.to_json())
    assert again.to_json() == spec.to_json()
    assert again == parse_spec(json.loads(json.dumps(spec.to_json())))
    assert sum(len(c.program) for c in spec.cpus) <= 16 * len(spec.cpus)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_spec(name: str) -> None:
    a = build_workload(name, {}, 42, None).to_json()
    b = build_workload(name, {}, 42, None).to_json()
    assert json.dumps(a) == json.dumps(b)


@pytest.mark.parametrize("name", NAMES)
def test_a_build_reads_the_seed_only_through_its_seed_parameter(name: str) -> None:
    # The contract that lets build_workload keep one spec for every seed.
    module = WORKLOADS[name]
    values = resolve_params(name, {}, 5)
    built = [json.dumps(module.build(dict(values), seed)) for seed in (0, 5, 12345)]
    assert built[0] == built[1] == built[2]


@pytest.mark.parametrize("name", NAMES)
def test_an_unseeded_spec_is_built_once_and_equals_a_fresh_build(name: str) -> None:
    seeded = "seed" in WORKLOADS[name].PARAMS
    params = {"cpus": "3"} if "cpus" in WORKLOADS[name].PARAMS else {}
    a = build_workload(name, params, 1, "modern")
    b = build_workload(name, params, 2, "modern")
    assert (a is b) is not seeded
    fresh = parse_spec(WORKLOADS[name].build(dict(a.params), 1), profile="modern")
    assert fresh.to_json() == a.to_json() and a.profile == "modern"
    if seeded:  # a pinned seed makes it unseeded
        pinned = [build_workload(name, {"seed": "9"}, s) for s in (1, 2)]
        assert pinned[0] is pinned[1] and pinned[0].params["seed"] == 9


def test_the_kept_specs_are_bounded() -> None:
    for pages in range(1, 65):
        build_workload("writers_vs_msync", {"pages": str(pages)}, 0)
    assert 0 < len(workloads._SPECS) <= workloads._SPECS_KEPT
    first = build_workload("writers_vs_msync", {"pages": "1"}, 0)
    assert first.params["pages"] == 1 and len(workloads._SPECS) <= workloads._SPECS_KEPT


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value", ["1", "2", "3", "5", "0x8"])
def test_param_values(name: str, value: str) -> None:
    for param, (_kind, _default, _help) in WORKLOADS[name].PARAMS.items():
        lo, hi = getattr(WORKLOADS[name], "LIMITS", {}).get(param, (0, 1 << 64))
        if lo <= int(value, 0) <= hi:
            spec = build_workload(name, {param: value}, 3, None)
            assert spec.params[param] == int(value, 0)


def test_writers_vs_msync_shape() -> None:
    spec = build_workload("writers_vs_msync", {"cpus": "3", "pages": "2", "ops": "5"}, 0)
    assert len(spec.cpus) == 3
    assert {c.process for c in spec.cpus} == {"p0"}
    assert spec.cpus[0].program[0].name == "msync"
    assert spec.cpus[0].program[-1].name == "msync"
    assert all(len(c.program) == 5 for c in spec.cpus[1:])
    assert spec.processes["p0"][0].kind == "file"


def test_invalidate_shared_file_shape() -> None:
    spec = build_workload("invalidate_shared_file", {}, 0)
    assert [c.process for c in spec.cpus] == ["p0", "p1"]
    (m0,), (m1,) = spec.processes["p0"], spec.processes["p1"]
    assert m0.file == m1.file == "f"
    assert ("msync", "invalidate,sync") in [
        (op.name, op.args[2]) for op in spec.cpus[0].program if op.name == "msync"]


def test_zero_length_msync_shape() -> None:
    spec = build_workload("zero_length_msync", {}, 0)
    ops = spec.cpus[0].program
    assert any(op.name == "msync" and op.args[1] == 0 for op in ops)
    assert any(op.name == "clean" and op.args[0] == op.args[1] for op in ops)


def test_random_mix_seed_param_pins_the_program() -> None:
    a = build_workload("random_mix", {}, 1)
    b = build_workload("random_mix", {}, 2)
    assert a.params["seed"] == 1 and a.to_json() != b.to_json()
    pinned = [build_workload("random_mix", {"seed": "9"}, s).to_json() for s in (1, 2)]
    assert pinned[0] == pinned[1] == build_workload("random_mix", {}, 9).to_json()


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("params", [{}, {"cpus": "1", "pages": "1", "ops": "1"},
                                    {"cpus": "5", "pages": "3", "ops": "10"},
                                    {"pages": "20", "ops": "2"}])
def test_random_mix_is_valid_and_mixed(seed: int, params: dict[str, str]) -> None:
    spec = build_workload("random_mix", params, seed)
    ops = int(params.get("ops", "8"))
    assert all(len(c.program) == ops for c in spec.cpus)
    kinds = {(m.kind, m.private, m.wired) for ms in spec.processes.values() for m in ms}
    assert {("file", False, False), ("file", True, False), ("anon", False, False),
            ("anon", False, True)} <= kinds


def test_random_mix_uses_every_op() -> None:
    seen = set()
    for seed in range(20):
        spec = build_workload("random_mix", {}, seed)
        seen |= {op.name for c in spec.cpus for op in c.program}
    assert {"load", "store", "msync", "clean", "munmap", "mmap", "mlock", "munlock"} <= seen


def test_profile_override() -> None:
    assert build_workload("two_cleaners", {}, 0, "freebsd5").profile == "freebsd5"
    with pytest.raises(BadInput, match="unknown profile 'x'"):
        build_workload("two_cleaners", {}, 0, "x")


def test_unknown_workload() -> None:
    with pytest.raises(BadInput) as info:
        build_workload("nope", {}, 0)
    assert str(info.value) == f"unknown workload 'nope' (known: {', '.join(EXPECTED)})"


def test_unknown_param() -> None:
    with pytest.raises(BadInput) as info:
        build_workload("two_cleaners", {"cpus": "3"}, 0)
    assert str(info.value) == (
        "unknown parameter 'cpus' for workload 'two_cleaners' (known: pages, ops, rounds)")


@pytest.mark.parametrize(("params", "expected"), [
    ({"cpus": "many"}, "bad value for parameter 'cpus' of workload 'writers_vs_msync': 'many'"),
    ({"cpus": "-2"}, "expected a non-negative integer"),
    ({"cpus": "1"}, "parameter cpus=1 of workload 'writers_vs_msync' is out of range (expected"),
    ({"pages": "0"}, "parameter pages=0"),
    ({"ops": "100000"}, "parameter ops=100000"),
])
def test_bad_param_values(params: dict[str, str], expected: str) -> None:
    with pytest.raises(BadInput) as info:
        build_workload("writers_vs_msync", params, 0)
    assert expected in str(info.value)


def test_load_workload_dispatches(tmp_path: Path) -> None:
    spec = build_workload("two_cleaners", {}, 0)
    path = tmp_path / "w.json"
    path.write_text(json.dumps(spec.to_json()))
    assert load_workload(str(path), {}, 0).to_json() == spec.to_json()
    assert load_workload("two_cleaners", {"ops": "2"}, 0).params["ops"] == 2
    with pytest.raises(BadInput, match="--param applies to named workloads"):
        load_workload(str(path), {"ops": "2"}, 0)


# -- the structure-covering workloads: each builds its structure and runs it end to end --


async def run_reference(name: str, profile: str, seed: int = 0,
                        params: dict[str, str] | None = None) -> tuple[Execution, Kernel]:
    """One recorded execution of the reference on ``name``, every checker on."""
    spec = build_workload(name, params or {}, seed, profile)
    machine = Machine(spec, BUILTIN["reference"], PortfolioStrategy(), checkers=all_checkers(),
                      record=True)
    ex = await machine.execute(seed, spec)
    assert machine.kernel is not None
    return ex, machine.kernel


def kinds(ex: Execution) -> list[str]:
    return [kind for _step, _aid, kind, _args in ex.events]


def returns(ex: Execution, cpu: int, op: str) -> list[object]:
    return [r["ret"] for r in ex.results[f"cpu{cpu}"] if r["op"] == op]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", STRUCTURES)
async def test_a_structure_workload_runs_quietly_under_every_profile(
    name: str, profile: str,
) -> None:
    ex, _ = await run_reference(name, profile)
    # freebsd5 may lose a store by design (its historical bugs), which ends the run early;
    # nothing else.
    assert ex.outcome == "ok" or all(v.fields.get("historical") for v in ex.violations), (
        [v.message for v in ex.violations])
    assert ex.outcome != "ok" or all(len(r) == len(c.program) for r, c in zip(
        ex.results.values(), build_workload(name, {}, 0, profile).cpus, strict=True))


@pytest.mark.parametrize("name", STRUCTURES)
def test_a_structure_workload_documents_every_parameter_and_limit(name: str) -> None:
    module = WORKLOADS[name]
    assert module.__doc__ and module.__doc__.strip()
    assert set(module.LIMITS) <= set(module.PARAMS)
    for kind, default, help_ in module.PARAMS.values():
        assert kind is int and isinstance(default, int) and help_


async def test_submap_msync_is_refused_by_manpage_and_cleaned_through_by_modern() -> None:
    spec = build_workload("submap_msync", {}, 0)
    subs = [m for m in spec.processes["p0"] if m.kind == "submap"]
    assert [(m.file, m.offset) for m in subs] == [("f", 2), (None, 0)]
    manpage, _ = await run_reference("submap_msync", "manpage")
    # Every range touching a sub-map is refused; the plain entry alone is not.
    assert returns(manpage, 0, "msync") == ["ENOMEM", "ENOMEM", 0, "ENOMEM", "ENOMEM"]
    modern, _ = await run_reference("submap_msync", "modern")
    assert returns(modern, 0, "msync") == [0, 0, 0, 0, 0]


async def test_wired_invalidate_is_refused_over_wired_entries_by_modern_only() -> None:
    spec = build_workload("wired_invalidate", {}, 0)
    assert [(m.kind, m.wired) for m in spec.processes["p0"]] == [("file", True), ("anon", True)]
    modern, k = await run_reference("wired_invalidate", "modern")
    # wired file, the anon (wired unless cpu1 unlocked it first), unwired file, wired
    # again, then a plain sync.
    got = returns(modern, 0, "msync")
    assert got[0] == "EBUSY" and got[1] in ("EBUSY", 0) and got[2:] == [0, "EBUSY", 0]
    manpage, k = await run_reference("wired_invalidate", "manpage")
    assert returns(manpage, 0, "msync") == [0, 0, 0, 0, 0]
    # Invalidate left the wired pages resident: mlock wired them again at the end.
    assert all(p.wire_count == 1 for p in k.files["f"].pages.values())
    assert len(k.files["f"].pages) == 2


async def test_private_shadow_gets_a_shadow_over_the_file_at_its_offset() -> None:
    ex, k = await run_reference("private_shadow", "manpage", params={"offset": "3"})
    entry = k.maps["p0"].entry_containing(0x10000)
    assert entry is not None and entry.obj is not None
    shadow, f = entry.obj, k.files["f"]
    assert (shadow.kind, shadow.backing, shadow.backing_offset) == ("anon", f, 3)
    assert not entry.needs_copy and entry.offset == 0
    assert "object_new" in kinds(ex) and "cow" in kinds(ex)
    assert sorted(shadow.pages) == [0, 1]  # both pages written: both copied


async def test_spanning_range_spans_four_entries_of_four_objects() -> None:
    ex, k = await run_reference("spanning_range", "modern")
    entries = list(k.maps["p0"].entries.values())
    assert [e.end for e in entries[:-1]] == [e.start for e in entries[1:]]  # no hole
    bottoms = []
    for e in entries:
        obj = e.obj
        while obj is not None and obj.backing is not None:
            obj = obj.backing
        bottoms.append(None if obj is None else obj.name)
    assert bottoms[0] == bottoms[3] == "f" and bottoms[1] == "g"
    assert entries[3].obj is not None and entries[3].obj.backing is k.files["f"]
    assert returns(ex, 0, "msync") == [0, 0, 0] and returns(ex, 0, "clean") == ["KERN_SUCCESS"]


def test_three_processes_map_one_file_at_different_offsets() -> None:
    spec = build_workload("three_processes", {"shift": "2"}, 0)
    views = {p: [(m.file, m.offset, m.pages) for m in ms] for p, ms in spec.processes.items()}
    assert views == {"p0": [("f", 0, 2)], "p1": [("f", 2, 2)], "p2": [("f", 0, 4)]}
    assert [c.process for c in spec.cpus] == ["p0", "p1", "p2"]


async def test_teardown_during_flush_frees_the_objects_it_replaces() -> None:
    spec = build_workload("teardown_during_flush", {}, 0)
    assert [m.kind for m in spec.processes["p0"]] == ["file", "device", "anon", "file"]
    ex, k = await run_reference("teardown_during_flush", "modern")
    assert kinds(ex).count("object_free") >= 2  # two device objects at least
    assert [k.maps["p0"].entry_containing(0x10000 + i * 0x1000) is not None
            for i in range(4)] == [True] * 4


def test_every_workload_takes_the_agents_parameter() -> None:
    from emulator.config import RunConfig

    spec = build_workload("two_cleaners", {"agents": "pagedaemon=2,syncer"}, seed=0)
    assert spec.agents == {"pagedaemon": 2, "syncer": 1}
    assert spec.params["agents"] == "pagedaemon=2,syncer"
    header = RunConfig("two_cleaners", params=(("agents", "syncer"),)).to_header()
    assert header["agents"][-2:] == ["disk", "syncer"]
    assert header["spec"]["agents"] == {"syncer": 1}


def test_without_the_agents_parameter_nothing_about_agents_is_recorded() -> None:
    spec = build_workload("two_cleaners", {}, seed=0)
    assert spec.agents == {} and "agents" not in spec.params
    assert "agents" not in spec.to_json()


def test_a_bad_agents_parameter_names_it() -> None:
    with pytest.raises(BadInput, match="bad value for parameter 'agents': 'syncer=x'"):
        build_workload("two_cleaners", {"agents": "syncer=x"}, seed=0)
    with pytest.raises(BadInput, match="unknown key 'swapper'"):
        build_workload("two_cleaners", {"agents": "swapper"}, seed=0)


def test_a_workload_naming_its_profiles_is_left_out_of_other_profiles_portfolios() -> None:
    from emulator.mutants import _portfolio
    from workloads import aimed_at

    freebsd5_only = ["async_then_invalidate", "munmap_closed_file", "nosync_msync"]
    modern_only = ["failed_write_fsync", "invalidate_wired_elsewhere"]
    assert [n for n in NAMES if not aimed_at(n, "manpage")] == [
        n for n in NAMES if n in freebsd5_only or n in modern_only]
    assert [n for n in NAMES if not aimed_at(n, "freebsd5")] == modern_only
    assert [n for n in NAMES if not aimed_at(n, "modern")] == freebsd5_only
    arms = {p: {a.workload for a in _portfolio(BUILTIN["reference"], p, "random").arms}
            for p in ("manpage", "freebsd5", "modern")}
    assert arms["freebsd5"] == set(NAMES) - set(modern_only)
    assert arms["manpage"] == set(NAMES) - {*freebsd5_only, *modern_only}
    assert arms["modern"] == set(NAMES) - set(freebsd5_only)
