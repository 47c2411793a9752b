"""``vmemu export``: Perfetto trace-event JSON and the HTML timeline (emulator/trace/export)."""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emulator.cli import main
from emulator.errors import BadInput
from emulator.trace import export
from emulator.trace.export import html, perfetto, timeline
from emulator.trace.reader import load_trace

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "traces").glob("*.trace.jsonl"))
LOST = ROOT / "traces" / "lost_store-invalidate_frees_dirty.trace.jsonl"


def _perfetto(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(export.render(load_trace(str(path)), "perfetto"))
    return doc


def _x_slices(events: list[dict[str, Any]]) -> dict[int, list[tuple[int, int, str]]]:
    out: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    for e in events:
        if e["ph"] == "X":
            out[e["tid"]].append((e["ts"], e["ts"] + e["dur"], e["name"]))
    return out


# -- Perfetto ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name.split(".")[0])
def test_every_perfetto_event_has_the_fields_its_phase_requires(path: Path) -> None:
    doc = _perfetto(path)
    assert set(doc) == {"traceEvents", "otherData"}
    required = {"M": {"name", "args"}, "X": {"name", "cat", "dur"}, "b": {"name", "cat", "id"},
                "e": {"name", "cat", "id"}, "s": {"name", "cat", "id"},
                "f": {"name", "cat", "id", "bp"}}
    for e in doc["traceEvents"]:
        assert {"ph", "ts", "pid", "tid"} <= set(e), e
        assert e["ph"] in required, e
        assert required[e["ph"]] <= set(e), e
        assert isinstance(e["ts"], int) and e["ts"] >= 0
        if e["ph"] == "X":
            assert isinstance(e["dur"], int) and e["dur"] >= 1, e


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name.split(".")[0])
def test_perfetto_slices_on_a_thread_nest_and_never_half_overlap(path: Path) -> None:
    for tid, slices in _x_slices(_perfetto(path)["traceEvents"]).items():
        stack: list[tuple[int, int, str]] = []
        for start, end, name in sorted(slices, key=lambda s: (s[0], -s[1])):
            while stack and stack[-1][1] <= start:
                stack.pop()
            assert not stack or end <= stack[-1][1], (tid, name, stack[-1])
            stack.append((start, end, name))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name.split(".")[0])
def test_perfetto_async_holds_begin_before_they_end_and_are_balanced(path: Path) -> None:
    events = _perfetto(path)["traceEvents"]
    begun: dict[tuple[str, int], int] = {}
    ended: set[tuple[str, int]] = set()
    for e in events:
        key = (e.get("cat", ""), e.get("id", 0))
        if e["ph"] == "b":
            assert key not in begun, e
            begun[key] = e["ts"]
        elif e["ph"] == "e":
            assert key in begun and key not in ended and begun[key] < e["ts"], e
            ended.add(key)
    assert set(begun) == ended
    assert begun, "a trace with locks shows them held"


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name.split(".")[0])
def test_perfetto_names_every_thread_and_the_process(path: Path) -> None:
    events = _perfetto(path)["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events
             if e["ph"] == "M" and e["name"] == "thread_name"}
    agents = load_trace(str(path)).header["agents"]
    assert [names[t] for t in sorted(names)][: len(agents)] == agents
    assert names[max(names)] == "violations"
    assert {e["tid"] for e in events if e["ph"] != "M"} <= set(names)
    assert any(e["ph"] == "M" and e["name"] == "process_name" for e in events)


def test_perfetto_draws_a_flow_from_the_lost_store_to_the_violation() -> None:
    events = _perfetto(LOST)["traceEvents"]
    slices = _x_slices(events)
    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    ends = {e["id"]: e for e in events if e["ph"] == "f"}
    assert set(starts) == set(ends) and len(starts) == 1
    (fid,) = starts
    s, f = starts[fid], ends[fid]
    assert (s["cat"], s["name"]) == (f["cat"], f["name"]) and f["bp"] == "e"
    # The arrow starts at a slice beginning there: cpu1's store #2, at step 40.
    (source,) = [n for start, _, n in slices[s["tid"]] if start == s["ts"]]
    assert source.startswith("store #2 -> f:1") and s["ts"] // 10 == 40
    # ... and ends inside the violation's slice.
    (target,) = [n for start, end, n in slices[f["tid"]] if start <= f["ts"] < end]
    assert target == "VIOLATION lost_store"


def test_perfetto_each_system_call_is_a_slice_enclosing_its_kernel_steps() -> None:
    events = _perfetto(LOST)["traceEvents"]
    calls = [e for e in events if e["ph"] == "X" and "call" in e["args"]]
    assert [c["name"] for c in calls] == [
        "store(0x100000)", "msync(0x10000, 8192, invalidate,sync)", "store(0x101000)"]
    msync = calls[1]
    inside = [e["name"] for e in events if e["ph"] == "X" and e["tid"] == msync["tid"]
              and msync["ts"] < e["ts"] < msync["ts"] + msync["dur"]]
    assert inside[:2] == ["clean p0 [0x10000, 0x12000) sync,inval", "lock map p0 (x)"]
    assert "unmap all f:1 (dirty)" in inside


def test_perfetto_shows_the_write_in_flight_as_the_disks_hold() -> None:
    events = _perfetto(LOST)["traceEvents"]
    io = [e for e in events if e["ph"] in "be" and e["cat"] == "io"]
    assert [(e["ph"], e["name"], e["ts"] // 10) for e in io] == [
        ("b", "disk: writing f:0", 27), ("e", "disk: writing f:0", 29)]


@pytest.mark.parametrize("fmt", ["perfetto", "html"])
def test_export_is_deterministic_byte_for_byte(fmt: str, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["export", str(LOST), "--format", fmt, "-o", str(a)]) == 0
    assert main(["export", str(LOST), "--format", fmt, "-o", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()


# -- the timeline both draw --------------------------------------------------------------


def test_timeline_ticks_read_as_steps_and_keep_the_order_of_events() -> None:
    trace = load_trace(str(LOST))
    tl = timeline.build(trace)
    ordered = sorted(tl.ts_of)
    assert [tl.ts_of[i] for i in ordered] == sorted(tl.ts_of.values())
    assert all(tl.step_of(tl.ts_of[i]) == trace.entries[i].step for i in ordered)


def test_timeline_causes_of_a_violation_naming_only_steps_are_the_events_of_those_steps() -> None:
    path = ROOT / "traces" / "stale_structure-no_timestamp_recheck.trace.jsonl"
    trace = load_trace(str(path))
    (mark,) = timeline.build(trace).violations
    # "cpu0 touched map entry ... after it was unlinked and freed at step 6": cpu1 freed it.
    assert [(trace.entries[i].kind, trace.entries[i].cpu) for i in mark.causes] == [
        ("entry_remove", 1)]


def test_a_violation_only_in_the_footer_is_drawn_at_the_end() -> None:
    tl = timeline.build(load_trace(str(ROOT / "traces" / "crash-null_object_deref.trace.jsonl")))
    (mark,) = tl.violations
    assert mark.index is None and mark.ts == tl.end and mark.rule == "crash"


def test_a_deadlocks_causes_are_the_last_waits_of_its_cycle(tmp_path: Path) -> None:
    path = tmp_path / "deadlock.jsonl"
    assert main(["run", "writers_vs_msync", "--variant", "lock_order_inversion", "--seed", "0",
                 "--trace", str(path)]) == 1
    trace = load_trace(str(path))
    (mark,) = [m for m in timeline.build(trace).violations if m.rule == "deadlock"]
    waits = [trace.entries[i] for i in mark.causes]
    assert [w.kind for w in waits] == ["wait"] * len(mark.cpus)
    assert sorted(w.cpu for w in waits) == list(mark.cpus)


# -- HTML --------------------------------------------------------------------------------


def _page(path: Path = LOST, highlight: set[int] | None = None) -> str:
    return export.render(load_trace(str(path)), "html", highlight or set())


def _data(page: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="vmemu-data">(.*?)</script>', page, re.S)
    assert m is not None
    data: dict[str, Any] = json.loads(m.group(1))
    return data


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name.split(".")[0])
def test_html_draws_every_violation_of_every_corpus_trace(path: Path) -> None:
    page = _page(path)
    trace = load_trace(str(path))
    assert page.count('<g class="violation"') == len(trace.violations) >= 1
    assert page.count('<rect class="lane ') == len(trace.header["agents"])


def test_html_is_one_file_that_loads_nothing_from_the_network() -> None:
    page = _page()
    assert not re.search(r"""(src|href)\s*=|<link|@import|url\((?!#)""", page)
    assert re.findall(r"https?://[^\s\"']+", page) == ["http://www.w3.org/2000/svg"]


def test_html_embeds_the_timeline_as_json_a_script_cannot_break_out_of() -> None:
    page = _page()
    data = _data(page)
    assert data["lanes"] == ["cpu0", "cpu1", "disk"]
    (v,) = data["violations"]
    assert v["rule"] == "lost_store" and v["step"] == 46
    raw = re.search(r'id="vmemu-data">(.*?)</script>', page, re.S)
    assert raw is not None and "<" not in raw.group(1)


def test_html_draws_a_lane_per_agent_the_violation_and_its_arrows() -> None:
    page = _page()
    assert page.count('<rect class="lane ') == 3
    assert page.count('<g class="violation"') == 1
    (arrow,) = re.findall(r'<path class="cause" data-from="(\d+)"', page)
    trace = load_trace(str(LOST))
    assert trace.entries[int(arrow)].kind == "store"
    assert 'class="lanetitle bad" x="6"' in page  # the CPUs the violation names


def test_html_marks_the_events_a_caller_highlights_with_the_slice_class() -> None:
    trace = load_trace(str(LOST))
    picked = {i for i, e in enumerate(trace.entries) if e.kind in ("store", "free")}
    page = _page(highlight=picked)
    marked = {int(i) for i in re.findall(r'<g class="ev [^"]*\bslice\b[^"]*" data-i="(\d+)"',
                                         page)}
    assert marked == picked
    assert _data(page)["highlight"] == sorted(picked)
    assert not re.search(r'class="ev [^"]*\bslice\b', _page())


def test_export_why_marks_the_slice_vmemu_why_finds(tmp_path: Path) -> None:
    from emulator.trace.why import slice_of

    trace = load_trace(str(LOST))
    wanted = slice_of(trace)
    out = tmp_path / "why.html"
    assert main(["export", str(LOST), "--format", "html", "-o", str(out), "--why"]) == 0
    page = out.read_text()
    marked = {int(i) for i in re.findall(
        r'<g class="(?:ev|call) [^"]*\bslice\b[^"]*" data-(?:i|call)="(\d+)"', page)}
    drawn = {int(i) for i in re.findall(r'data-(?:i|call)="(\d+)"', page)}
    assert marked == wanted & drawn and len(marked) >= 10
    doc = json.loads(export.render(trace, "perfetto", wanted))
    in_slice = {e["args"].get("index") for e in doc["traceEvents"]
                if e["ph"] == "X" and e["args"].get("kind") == "slice"}
    assert {i for i in in_slice if i is not None} == {
        i for i in wanted if trace.entries[i].kind not in ("call", "ret", "violation")}


def test_export_why_of_a_trace_without_a_violation_is_bad_input(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok = tmp_path / "ok.jsonl"
    assert main(["run", "writers_vs_msync", "--seed", "3", "--trace", str(ok)]) == 0
    out = tmp_path / "out.html"
    assert "no violation" in _bad(capsys, str(ok), "--format", "html", "-o", str(out), "--why")
    assert not out.exists()


def test_html_escapes_what_the_trace_says(tmp_path: Path) -> None:
    lines = LOST.read_text().splitlines()
    lines[0] = lines[0].replace('"variant": "invalidate_frees_dirty"',
                                '"variant": "<script>alert(1)</script>"')
    path = tmp_path / "evil.trace.jsonl"
    path.write_text("\n".join(lines) + "\n")
    page = _page(path)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page


# -- the command line: bad input ---------------------------------------------------------


def _bad(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(["export", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("vmemu: error: ")
    return err


def test_export_writes_the_file_and_prints_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.json"
    capsys.readouterr()
    assert main(["export", str(LOST), "--format", "perfetto", "-o", str(out)]) == 0
    assert capsys.readouterr() == ("", "")
    assert json.loads(out.read_text())["traceEvents"]
    assert os.listdir(tmp_path) == ["t.json"]


def _cut(tmp_path: Path) -> Path:
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(LOST.read_text().splitlines()[:20]) + "\n")
    return cut


@pytest.mark.parametrize("fmt, trace, says", [
    ("svg", lambda tmp: LOST, "--format svg: unknown format; choose one of perfetto, html"),
    ("html", lambda tmp: tmp / "nope.jsonl", "no such trace"),
    ("html", lambda tmp: ROOT / "README.md", "not a vmemu trace"),
    ("perfetto", _cut, "cut short"),
], ids=["unknown-format", "missing-trace", "foreign-file", "cut-trace"])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str,
        trace: Callable[[Path], Path], says: str) -> None:
    out = tmp_path / "out" / "t.html"
    out.parent.mkdir()
    assert says in _bad(capsys, str(trace(tmp_path)), "--format", fmt, "-o", str(out))
    assert os.listdir(out.parent) == []


def test_an_unwritable_output_exits_2_and_keeps_what_was_there(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("keep")
    assert "cannot write there" in _bad(capsys, str(LOST), "--format", "html",
                                        "-o", str(a_file / "t.html"))
    assert "is a directory" in _bad(capsys, str(LOST), "--format", "html", "-o", str(tmp_path))
    assert a_file.read_text() == "keep" and os.listdir(tmp_path) == ["file"]


def test_a_failed_write_leaves_the_old_output_and_no_temporary_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "t.html"
    out.write_text("old")

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(BadInput, match="No space left on device"):
        export.write_atomic(str(out), "new")
    assert out.read_text() == "old" and os.listdir(tmp_path) == ["t.html"]


def test_every_format_the_command_names_has_its_renderer() -> None:
    assert {"perfetto": perfetto.render, "html": html.render} == export.FORMATS
