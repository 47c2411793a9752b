"""The named workloads: every one builds a valid, deterministic spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.errors import BadInput
from emulator.spec import parse_spec
from workloads import WORKLOADS, build_workload, describe, load_workload

NAMES = list(WORKLOADS)
EXPECTED = ["writers_vs_msync", "msync_vs_munmap", "two_cleaners", "invalidate_shared_file",
            "zero_length_msync", "random_mix", "write_errors", "generated"]


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
