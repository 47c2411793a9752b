"""The system call table: one row per call drives parsing, dispatch, rendering and phrasing."""

from __future__ import annotations

import inspect

import pytest

from emulator.kern.syscalls import SYSCALLS, ArgKind, call_phrases
from emulator.spec import MappingSpec, parse_spec


@pytest.mark.parametrize("name", list(SYSCALLS))
def test_every_handler_takes_the_kernel_the_map_and_the_rows_arguments(name: str) -> None:
    call = SYSCALLS[name]
    assert call.name == name
    signature = inspect.signature(call.handler)
    signature.bind("k", "vm_map", *(a.name for a in call.args))  # raises on a mismatch
    with pytest.raises(TypeError):
        signature.bind("k", "vm_map", *(a.name for a in call.args), "one too many")


def test_a_mapping_argument_is_plain_data_in_specs_but_left_out_of_call_events() -> None:
    options = MappingSpec(addr=0x11000, pages=1, kind="file", file="f", offset=1)
    mmap = SYSCALLS["mmap"]
    assert mmap.to_json((0x11000, 1, options)) == [
        "mmap", "0x11000", 1, {"file": "f", "offset": 1, "prot": "rw"}]
    assert mmap.event_args((0x11000, 1, options)) == ["0x11000", 1]
    assert SYSCALLS["msync"].event_args((0x10000, 0, "sync")) == ["0x10000", 0, "sync"]


def test_the_spec_parses_each_argument_by_its_kind() -> None:
    program = [["clean", 4096, "0x2000", True, False], ["mmap", "0x11000", 1, {"anon": True}]]
    clean, mmap = parse_spec({"processes": {"p": {}}, "cpus": [
        {"process": "p", "program": program}]}).cpus[0].program
    assert [a.kind for a in clean.call.args] == [ArgKind.ADDRESS, ArgKind.ADDRESS,
                                                 ArgKind.FLAG, ArgKind.FLAG]
    assert clean.args == (0x1000, 0x2000, True, False)
    assert mmap.mappings() == [MappingSpec(addr=0x11000, pages=1, kind="anon")]


def test_calls_are_phrased_by_their_row_and_anything_else_generically() -> None:
    assert call_phrases(["clean", "0x1000", "0x2000", True, False]) == (
        "clean(0x1000, 0x2000, sync)", "clean sync")
    assert call_phrases(["msync", "0x1000", 4096, "async"]) == (
        "msync(0x1000, 4096, async)", "msync 0x1000 async", "msync async")
    assert call_phrases(["mmap", "0x1000", 1, {"prot": "r", "anon": True}]) == (
        "mmap(0x1000, 1, anon=True prot=r)",)
    # What a damaged or foreign trace may hold: no row, or the wrong count of arguments.
    assert call_phrases(["clean", "0x1000"]) == ("clean(0x1000)",)
    assert call_phrases(["fsync", 3]) == ("fsync(3)",)
