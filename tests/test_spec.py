"""The workload spec format: parsing, normalisation, round trips and error messages."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from emulator.errors import BadInput
from emulator.kern.profile import PROFILES
from emulator.spec import (
    OPS,
    MappingSpec,
    Op,
    Spec,
    load_spec_file,
    parse_spec,
)

# The example of DESIGN.md, "The spec format".
DESIGN_EXAMPLE: dict[str, Any] = {
    "profile": "manpage",
    "files": {"f": {"pages": 8}},
    "processes": {
        "p0": {"mappings": [
            {"addr": "0x10000", "pages": 4, "file": "f", "offset": 0, "prot": "rw"},
            {"addr": "0x20000", "pages": 2, "anon": True, "prot": "rw", "wired": True},
            {"addr": "0x30000", "pages": 2, "submap": True},
        ]},
        "p1": {"mappings": [
            {"addr": "0x50000", "pages": 4, "file": "f", "offset": 0, "prot": "rw"},
        ]},
    },
    "cpus": [
        {"process": "p0", "program": [
            ["store", "0x10000"],
            ["msync", "0x10000", 8192, "sync"],
            ["clean", "0x10000", "0x14000", True, False],
            ["munmap", "0x11000", 4096],
            ["mmap", "0x11000", 1, {"file": "f", "offset": 1, "prot": "rw"}],
            ["load", "0x10000"], ["mlock", "0x20000", 8192], ["munlock", "0x20000", 8192],
        ]},
        {"process": "p1", "program": [["store", "0x50000"], ["store", "0x51000"]]},
    ],
}

DESIGN_TOML = """\
profile = "manpage"

[files.f]
pages = 8

[processes.p0]
mappings = [
  {addr = "0x10000", pages = 4, file = "f", offset = 0, prot = "rw"},
  {addr = 0x20000, pages = 2, anon = true, prot = "rw", wired = true},
  {addr = "0x30000", pages = 2, submap = true},
]

[processes.p1]
mappings = [{addr = "0x50000", pages = 4, file = "f", offset = 0, prot = "rw"}]

[[cpus]]
process = "p0"
program = [
  ["store", "0x10000"],
  ["msync", "0x10000", 8192, "sync"],
  ["clean", "0x10000", "0x14000", true, false],
  ["munmap", "0x11000", 4096],
  ["mmap", "0x11000", 1, {file = "f", offset = 1, prot = "rw"}],
  ["load", "0x10000"], ["mlock", "0x20000", 8192], ["munlock", "0x20000", 8192],
]

[[cpus]]
process = "p1"
program = [["store", "0x50000"], ["store", "0x51000"]]
"""


def example() -> dict[str, Any]:
    return copy.deepcopy(DESIGN_EXAMPLE)


def error(data: object, **kw: Any) -> str:
    with pytest.raises(BadInput) as info:
        parse_spec(data, source="spec.json", **kw)
    message = str(info.value)
    assert "\n" not in message
    assert info.value.exit_code == 2
    return message


# --- valid specs -------------------------------------------------------------------------


def test_design_example_parses_and_normalises() -> None:
    spec = parse_spec(example())
    assert spec.profile == "manpage"
    assert spec.files == {"f": 8}
    assert spec.processes["p0"] == (
        MappingSpec(addr=0x10000, pages=4, kind="file", file="f"),
        MappingSpec(addr=0x20000, pages=2, kind="anon", wired=True),
        MappingSpec(addr=0x30000, pages=2, kind="submap"),
    )
    program = spec.cpus[0].program
    assert program[0] == Op("store", (0x10000,))
    assert program[1] == Op("msync", (0x10000, 8192, "sync"))
    assert program[2] == Op("clean", (0x10000, 0x14000, True, False))
    assert program[3] == Op("munmap", (0x11000, 4096))
    assert program[4] == Op(
        "mmap", (0x11000, 1, MappingSpec(addr=0x11000, pages=1, kind="file", file="f", offset=1))
    )
    assert [c.process for c in spec.cpus] == ["p0", "p1"]


def test_round_trip_through_to_json() -> None:
    spec = parse_spec(example())
    plain = spec.to_json()
    assert json.loads(json.dumps(plain)) == plain  # JSON-able
    assert parse_spec(plain) == spec
    assert parse_spec(plain).to_json() == plain


def test_every_op_round_trips() -> None:
    data = example()
    data["cpus"][0]["program"] = [
        ["load", 65536], ["store", "0x10008"], ["msync", "0x10000", 0, "invalidate,sync"],
        ["msync", "0x10000", "0x2000", "async,invalidate"], ["clean", 5, 5, False, True],
        ["munmap", "0x11001", 0], ["mlock", 0, 1], ["munlock", "0x20000", 8192],
        ["mprotect", "0x10000", 4096, "r"],
        ["mmap", "0x60000", 2, {"anon": True, "wired": True, "prot": "r"}],
        ["mmap", "0x70000", 1, {"device": True, "prot": "rwx"}],
        ["mmap", "0x80000", 2, {"submap": True, "file": "f", "offset": 6}],
        ["mmap", "0x90000", 2, {"file": "f", "private": True}],
        ["mmap", "0xa0000", 1, {"file": "f", "nosync": True}],
        ["madvise", "0x10000", 8192, "nosync"], ["madvise", "0x10000", 1, "autosync"],
        ["fsync", "f"],
        ["yield"],
    ]
    spec = parse_spec(data)
    assert {op.name for op in spec.cpus[0].program} == set(OPS)  # a new call belongs here too
    for op in spec.cpus[0].program:
        alone = parse_spec({**data, "cpus": [{"process": "p0", "program": [op.to_json()]}]})
        assert alone.cpus[0].program == (op,)
    assert parse_spec(spec.to_json()) == spec


def test_defaults_and_normalisation() -> None:
    spec = parse_spec({
        "processes": {"p": {"mappings": [{"addr": 4096, "pages": "0x2", "anon": True}]}},
        "cpus": [{"process": "p", "program": [
            ["msync", "0x1000", 4096, "sync,invalidate"],
            ["msync", "0x1000", 4096, " invalidate , invalidate "],
            ["msync", "0x1000", 4096, "invalidate,async"],
        ]}],
    })
    assert spec.profile == "manpage"
    assert spec.files == {}
    assert spec.processes["p"] == (MappingSpec(addr=0x1000, pages=2, kind="anon", prot="rw"),)
    assert [op.args[2] for op in spec.cpus[0].program] == [
        "invalidate,sync", "invalidate", "async,invalidate"]


def test_submap_with_file_and_default_anonymous() -> None:
    data = example()
    data["processes"]["p0"]["mappings"][2].update(file="f", offset=4)
    m = parse_spec(data).processes["p0"][2]
    assert (m.kind, m.file, m.offset) == ("submap", "f", 4)
    assert parse_spec(example()).processes["p0"][2].file is None


def test_unaligned_clean_and_zero_lengths_are_accepted() -> None:
    data = example()
    data["cpus"][0]["program"] = [["clean", "0x10800", "0x10800", True, True],
                                  ["msync", "0x10000", 0, "sync"], ["munmap", "0x10001", 0]]
    assert parse_spec(data).cpus[0].program[0].args == (0x10800, 0x10800, True, True)


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_from_data_and_override(profile: str) -> None:
    assert parse_spec({**example(), "profile": profile}).profile == profile
    assert parse_spec({**example(), "profile": "modern"}, profile=profile).profile == profile


def test_toml_and_json_give_the_same_spec(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps(DESIGN_EXAMPLE))
    (tmp_path / "s.toml").write_text(DESIGN_TOML)
    from_json = load_spec_file(str(tmp_path / "s.json"))
    from_toml = load_spec_file(str(tmp_path / "s.toml"))
    assert from_json.name == str(tmp_path / "s.json")
    assert from_json.to_json() == from_toml.to_json()
    assert from_json == Spec(**{**from_toml.__dict__, "name": from_json.name})
    assert from_json.to_json() == parse_spec(example()).to_json()


def test_file_profile_override(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(DESIGN_TOML)
    assert load_spec_file(str(path), profile="freebsd5").profile == "freebsd5"


# --- errors ------------------------------------------------------------------------------


def test_unknown_op_names_place_and_choices() -> None:
    data = example()
    data["cpus"][1]["program"] += [["store", "0x50000"], ["stor", "0x50000"]]
    assert error(data) == (
        "spec.json: cpus[1].program[3]: unknown op 'stor' (expected one of load, store, msync, "
        "clean, munmap, mmap, mprotect, madvise, mlock, munlock, fsync, yield)")


def test_overlap_names_both_mappings_and_address() -> None:
    data = example()
    data["processes"]["p0"]["mappings"][1] = {"addr": "0x11000", "pages": 1, "anon": True}
    assert error(data) == "spec.json: processes.p0.mappings[1] overlaps mappings[0] at 0x11000"


def test_overlap_across_processes_is_fine() -> None:
    data = example()
    data["processes"]["p1"]["mappings"][0]["addr"] = "0x10000"
    parse_spec(data)


def test_clean_inverted_range() -> None:
    data = example()
    data["cpus"][0]["program"] = [["clean", "0x12000", "0x11000", True, False]]
    assert error(data) == "spec.json: cpus[0].program[0]: clean start 0x12000 > end 0x11000"


def mapping_error(**fields: Any) -> str:
    data = example()
    data["processes"]["p1"]["mappings"][0] = fields
    return error(data)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"addr": "0x50001", "pages": 1, "anon": True}, "addr 0x50001 is not page-aligned"),
    ({"addr": "0x50000", "pages": 0, "anon": True}, "pages must be at least 1"),
    ({"addr": "0x50000", "pages": 1}, "needs one of file"),
    ({"addr": "0x50000", "pages": 1, "anon": True, "file": "f"}, "conflicting kinds anon, file"),
    ({"addr": "0x50000", "pages": 1, "anon": True, "device": True}, "conflicting kinds"),
    ({"addr": "0x50000", "pages": 1, "submap": True, "anon": True}, "conflicting kinds submap"),
    ({"addr": "0x50000", "pages": 1, "file": "g"}, "unknown file 'g' (files: f)"),
    ({"addr": "0x50000", "pages": 1, "anon": True, "offset": 1}, "offset without file"),
    ({"addr": "0x50000", "pages": 4, "file": "f", "offset": 5},
     "offset 5 + 4 pages exceeds file 'f' (8 pages)"),
    ({"addr": "0x50000", "pages": 1, "anon": True, "prot": "wx"}, "unknown prot 'wx'"),
    ({"addr": "0x50000", "pages": 1, "anon": True, "wired": "true"},
     "wired: expected true or false, got 'true'"),
    ({"addr": "0x50000", "pages": 1, "anon": True, "wired": 1}, "wired: expected true or false"),
    ({"addr": "0x50000", "pages": 1, "anon": True, "private": True},
     "private applies only to file mappings"),
    ({"addr": "0x50000", "pages": 1, "anon": True, "nosync": "yes"},
     "nosync: expected true or false, got 'yes'"),
    ({"addr": "0x50000", "pages": 1, "anon": True, "colour": "red"}, "unknown key 'colour'"),
    ({"addr": "0x7ffffffff000", "pages": 2, "anon": True}, "above the user address limit"),
    ({"addr": -4096, "pages": 1, "anon": True}, "addr: negative value -4096"),
    ({"addr": "-0x1000", "pages": 1, "anon": True}, "addr: negative value"),
    ({"addr": "0x5000g", "pages": 1, "anon": True}, "addr: malformed hex number"),
    ({"addr": "65536", "pages": 1, "anon": True}, "expected an integer or a hex string"),
    ({"addr": 65536.0, "pages": 1, "anon": True}, "addr: expected an integer, got a number"),
    ({"addr": "0x50000", "pages": True, "anon": True}, "pages: expected an integer, got true"),
    ({"pages": 1, "anon": True}, "missing key 'addr'"),
])
def test_mapping_errors(fields: dict[str, Any], expected: str) -> None:
    message = mapping_error(**fields)
    assert message.startswith("spec.json: processes.p1.mappings[0]: "), message
    assert expected in message


def op_error(op: list[Any]) -> str:
    data = example()
    data["cpus"][0]["program"] = [["yield"], op]
    message = error(data)
    assert message.startswith("spec.json: cpus[0].program[1]: "), message
    return message


@pytest.mark.parametrize(("op", "expected"), [
    (["msync", "0x10000", 4096, "sync,async"], "'sync,async' combines sync and async"),
    (["msync", "0x10000", 4096, ""], "msync flags: empty"),
    (["msync", "0x10000", 4096, "sync,"], "msync flags: empty word"),
    (["msync", "0x10000", 4096, "flush"], "unknown flag 'flush'"),
    (["msync", "0x10000", 4096, 4], "msync flags: expected a string"),
    (["msync", "0x10000", -1, "sync"], "msync len: negative value -1"),
    (["msync", "0x10000", "sync"], "'msync' takes 3 arguments (addr, len, flags), got 2"),
    (["yield", 1], "'yield' takes 0 arguments, got 1"),
    (["fsync", "g"], "fsync file: unknown file 'g' (expected one of f)"),
    (["fsync", 3], "fsync file: expected a string, got a number 3"),
    (["store"], "'store' takes 1 argument (addr), got 0"),
    (["clean", "0x10000", "0x11000", 1, False], "clean syncio: expected true or false"),
    (["clean", "0x10000", "0x11000", True, "no"], "clean invalidate: expected true or false"),
    (["munmap", "0x10000", -4096], "munmap len: negative value"),
    (["mlock", "0x10000", "0x1_0000_0000_0000_0000"], "too large"),
    (["mprotect", "0x10000", 4096, "w"], "mprotect prot: unknown protection 'w' (expected one"),
    (["mprotect", "0x10000", 4096, 2], "mprotect prot: expected a string"),
    (["madvise", "0x10000", 4096, "willneed"],
     "madvise advice: unknown advice 'willneed' (expected one of autosync, nosync)"),
    (["madvise", "0x10000", 4096], "'madvise' takes 3 arguments (addr, len, advice), got 2"),
    (["mmap", "0x10001", 1, {"anon": True}], "mmap addr 0x10001 is not page-aligned"),
    (["mmap", "0x10000", 0, {"anon": True}], "mmap pages must be at least 1"),
    (["mmap", "0x10000", 1, {}], "needs one of file"),
    (["mmap", "0x10000", 1, {"file": "nope"}], "unknown file 'nope'"),
    (["mmap", "0x10000", 1, {"anon": True, "addr": 0}], "unknown key 'addr'"),
    (["mmap", "0x10000", 1, "anon"], "expected mmap options (an object)"),
    ("store", "expected an op like"),
    ([], "expected an op like"),
])
def test_op_errors(op: Any, expected: str) -> None:
    assert expected in op_error(op)


def test_async_invalidate_is_valid_input() -> None:
    data = example()
    data["cpus"][0]["program"] = [["msync", "0x10000", 4096, "invalidate,async"]]
    assert parse_spec(data).cpus[0].program[0].args[2] == "async,invalidate"


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d.update(extra=1), "spec.json: unknown key 'extra' (expected one of profile"),
    (lambda d: d.update(profile="linux"),
     f"spec.json: profile: unknown profile 'linux' (expected one of {', '.join(PROFILES)})"),
    (lambda d: d["files"]["f"].update(pages=0), "spec.json: files.f: pages must be at least 1"),
    (lambda d: d["files"]["f"].update(size=1), "spec.json: files.f: unknown key 'size'"),
    (lambda d: d["processes"]["p0"].update(cpus=1), "spec.json: processes.p0: unknown key 'cpus'"),
    (lambda d: d.pop("processes"), "spec.json: missing key 'processes'"),
    (lambda d: d.update(cpus=[]), "spec.json: cpus: at least one cpu is needed"),
    (lambda d: d["cpus"][1].update(process="p9"),
     "spec.json: cpus[1]: unknown process 'p9' (processes: p0, p1)"),
    (lambda d: d["cpus"][1].update(core=2), "spec.json: cpus[1]: unknown key 'core'"),
    (lambda d: d["cpus"][1].pop("process"), "spec.json: cpus[1]: missing key 'process'"),
    (lambda d: d["cpus"][1].update(program="store"), "spec.json: cpus[1].program: expected a list"),
])
def test_structure_errors(change: Any, expected: str) -> None:
    data = example()
    change(data)
    assert error(data).startswith(expected)


def test_top_level_must_be_an_object() -> None:
    assert error([1, 2]).startswith("spec.json: expected a workload spec (an object)")


def test_bad_profile_override() -> None:
    assert error(example(), profile="bsd") == (
        f"--profile: unknown profile 'bsd' (expected one of {', '.join(PROFILES)})")


# --- file errors -------------------------------------------------------------------------


def file_error(path: Path | str, text: str | bytes | None = None) -> str:
    if isinstance(text, str):
        Path(path).write_text(text)
    elif isinstance(text, bytes):
        Path(path).write_bytes(text)
    with pytest.raises(BadInput) as info:
        load_spec_file(str(path))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    assert file_error(path) == f"no such file: {path}"


def test_malformed_json_names_line(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    message = file_error(path, '{\n  "profile": "manpage",\n  "files": {,\n}')
    assert message.startswith(f"{path}: line 3: malformed json: expecting property name")


def test_truncated_json(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    text = json.dumps(DESIGN_EXAMPLE, indent=1)
    assert "malformed json" in file_error(path, text[: len(text) // 2])


def test_duplicate_json_key(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    message = file_error(path, '{"profile": "manpage", "profile": "modern"}')
    assert message == f"{path}: malformed json: duplicate key 'profile'"


def test_malformed_toml_names_line(tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    message = file_error(path, 'profile = "manpage"\n[files.f]\npages = \n')
    assert message.startswith(f"{path}: line 3: malformed toml: invalid value")


def test_not_utf8(tmp_path: Path) -> None:
    assert "not utf-8" in file_error(tmp_path / "s.json", b'{"profile": "\xff"}')


def test_unsupported_suffix_and_directory(tmp_path: Path) -> None:
    assert "unsupported spec file type '.yaml'" in file_error(tmp_path / "s.yaml", "a: 1")
    (tmp_path / "d.json").mkdir()
    assert "is a directory" in file_error(tmp_path / "d.json")


def test_validation_errors_name_the_file(tmp_path: Path) -> None:
    data = example()
    data["cpus"][0]["program"] = [["clean", "0x12000", "0x11000", True, False]]
    path = tmp_path / "spec.json"
    assert file_error(path, json.dumps(data)) == (
        f"{path}: cpus[0].program[0]: clean start 0x12000 > end 0x11000")


# -- background agents -------------------------------------------------------------


def test_agents_normalise_to_passes_in_a_fixed_order() -> None:
    data = {**DESIGN_EXAMPLE, "agents": {"syncer": 3, "pagedaemon": True}}
    spec = parse_spec(data)
    assert spec.agents == {"pagedaemon": 1, "syncer": 3}
    assert list(spec.agents) == ["pagedaemon", "syncer"]
    assert spec.to_json()["agents"] == {"pagedaemon": 1, "syncer": 3}
    assert parse_spec(spec.to_json()) == spec


def test_a_spec_without_agents_has_no_agents_key() -> None:
    spec = parse_spec(DESIGN_EXAMPLE)
    assert spec.agents == {}
    assert "agents" not in spec.to_json()
    off = parse_spec({**DESIGN_EXAMPLE, "agents": {"pagedaemon": False, "syncer": 0}})
    assert off == spec and "agents" not in off.to_json()


@pytest.mark.parametrize(("agents", "expected"), [
    ({"swapper": True}, "spec: agents: unknown key 'swapper' (expected one of pagedaemon, syncer)"),
    ({"syncer": 99}, "spec: agents.syncer: passes: 0x63 is too large (limit 0x9)"),
    ({"syncer": "x"}, "spec: agents.syncer: passes: expected an integer or a hex string"),
    ([], "spec: agents: expected background agents like"),
])
def test_agent_errors(agents: Any, expected: str) -> None:
    with pytest.raises(BadInput) as err:
        parse_spec({**DESIGN_EXAMPLE, "agents": agents})
    assert str(err.value).startswith(expected)


# -- clustering and failing pages -----------------------------------------------------


def test_cluster_and_failing_pages_normalise_and_the_cluster_is_always_written() -> None:
    data = example()
    data["files"]["f"]["fail_pages"] = [5, 1, 5]
    spec = parse_spec({**data, "cluster": "0x8"})
    assert spec.cluster == 8 and spec.fail_pages == {"f": (1, 5)}
    assert spec.to_json()["cluster"] == 8
    assert spec.to_json()["files"]["f"] == {"pages": 8, "fail_pages": [1, 5]}
    assert parse_spec(spec.to_json()) == spec
    plain = parse_spec(DESIGN_EXAMPLE)
    # No key: the profile's cluster size (manpage: 16), written out so that a trace
    # keeps its meaning whatever the profile's default becomes.
    assert plain.cluster == 16 and plain.fail_pages == {}
    assert plain.to_json()["cluster"] == 16
    assert parse_spec({**DESIGN_EXAMPLE, "cluster": 16}) == plain
    assert parse_spec(DESIGN_EXAMPLE, profile="modern").cluster == 32
    assert parse_spec({**DESIGN_EXAMPLE, "cluster": 1}, profile="modern").cluster == 1


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d.update(cluster=0), "spec.json: cluster: cluster must be at least 1"),
    (lambda d: d.update(cluster=33), "spec.json: cluster: cluster: 0x21 is too large"),
    (lambda d: d["files"]["f"].update(fail_pages=3),
     "spec.json: files.f.fail_pages: expected a list of page indexes"),
    (lambda d: d["files"]["f"].update(fail_pages=[8]),
     "spec.json: files.f.fail_pages: page index 8 is past the file's 8 pages"),
])
def test_cluster_and_failing_page_errors(change: Any, expected: str) -> None:
    data = example()
    change(data)
    assert error(data).startswith(expected)
