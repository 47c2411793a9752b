"""``vmemu show``: the per-CPU timeline of a trace (the emulator/trace/show package)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.cli import main
from emulator.trace import show
from emulator.trace.reader import load_trace
from emulator.trace.show.phrases import KINDS

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[")


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A lost store (invalidate_frees_dirty), a deadlock, and a clean run of writers_vs_msync."""
    base = tmp_path_factory.mktemp("show")
    out: dict[str, Path] = {}
    for name, workload, variant in (("lost", "invalidate_shared_file", "invalidate_frees_dirty"),
                                    ("deadlock", "writers_vs_msync", "lock_order_inversion")):
        where = base / name
        assert main(["explore", workload, "--variant", variant, "--iterations", "3000",
                     "--save-dir", str(where)]) == 1
        (out[name],) = where.glob("*.trace.jsonl")
    out["ok"] = base / "writers.jsonl"
    assert main(["run", "writers_vs_msync", "--seed", "3", "--trace", str(out["ok"])]) == 0
    return out


def _show(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(["show", *argv]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def _table_header(text: str) -> list[str]:
    (line,) = [x for x in text.splitlines() if x.startswith("step ")]
    return [cell.strip() for cell in line.split("│")]


@pytest.mark.parametrize("name", ["lost", "deadlock", "ok"])
def test_table_has_a_step_column_one_column_per_agent_and_a_holds_column(
    traces: dict[str, Path], capsys: pytest.CaptureFixture[str], name: str
) -> None:
    agents = load_trace(str(traces[name])).header["agents"]
    cells = _table_header(_show(capsys, str(traces[name]), "--width", "200"))
    assert cells[0] == "step"
    assert [c.split()[0] for c in cells[1:-1]] == agents
    assert cells[-1].startswith("holds")


def test_violation_row_names_the_rule_and_marks_the_cpus_involved(
    traces: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    text = _show(capsys, str(traces["lost"]), "--width", "160")
    (v,) = load_trace(str(traces["lost"])).violations
    assert f">>> VIOLATION lost_store at step {v['step']}" in text
    marked = [x for x in text.splitlines() if "!! lost_store" in x]
    assert len(marked) == 1
    assert marked[0].count("!! lost_store") == len(v["cpus"])
    for cpu in v["cpus"]:
        assert f"cpu{cpu} (p{cpu}) !" in text  # the column of each CPU involved
    assert "outcome: violation - lost_store" in text.splitlines()[2]


def test_rows_touching_the_stores_the_violation_names_are_starred(
    traces: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    text = _show(capsys, str(traces["lost"]), "--width", "160")
    (v,) = load_trace(str(traces["lost"])).violations
    lost = re.search(r"store #(\d+)", v["message"])
    assert lost is not None
    starred = [x for x in text.splitlines() if re.match(r"\s*\d*\* ", x)]
    assert any(f"store #{lost.group(1)} -> " in x for x in starred)


def test_deadlock_shows_what_every_cpu_holds_and_waits_for_at_the_end(
    traces: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    text = _show(capsys, str(traces["deadlock"]), "--width", "160")
    assert ">>> VIOLATION deadlock" in text
    end = text[text.index("at the end of the trace"):]
    assert "holds obj f; waits for map p0" in end
    assert "lock obj f" in text  # an object lock held across a wait is shown


def test_writes_in_flight_and_lock_holds_are_visible(
    traces: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    text = _show(capsys, str(traces["ok"]), "--width", "200")
    assert "disk: writing f:" in text
    assert "cpu0: map p0 x" in text
    assert re.search(r"write f:\d #\d+ \((a)?sync\)", text)
    assert "outcome: ok" in text
    assert any(x.startswith("legend: ") for x in text.splitlines()[-6:])


@pytest.mark.parametrize("width", [40, 80, 101, 160, 250])
@pytest.mark.parametrize("name", ["lost", "deadlock", "ok"])
def test_no_line_exceeds_the_width(
    traces: dict[str, Path], capsys: pytest.CaptureFixture[str], name: str, width: int
) -> None:
    for extra in ([], ["--all"]):
        text = _show(capsys, str(traces[name]), "--width", str(width), *extra)
        assert max(len(line) for line in text.splitlines()) <= width


def test_cells_are_cut_with_an_ellipsis_not_wrapped(
    traces: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    text = _show(capsys, str(traces["ok"]), "--width", "80")
    rows = [x for x in text.splitlines() if x.count("│") >= 3]
    assert any("…" in x for x in rows)
    rule = [x for x in text.splitlines() if set(x) == {"─"}]
    assert rule and len(rule[0]) <= 80


def test_all_shows_every_event_and_the_default_hides_the_noise(
    traces: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(traces["ok"])
    default = _show(capsys, path, "--width", "160")
    every = _show(capsys, path, "--width", "160", "--all")
    events = len(load_trace(path).events)
    assert f"{events} rows (every event)" in every
    assert "sched -> " in every and "sched -> " not in default
    assert "lock obj f" in every and "lock obj f" not in default
    assert len(default.splitlines()) < len(every.splitlines())


def test_no_ansi_codes_when_stdout_is_not_a_tty(
    traces: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert not ANSI.search(_show(capsys, str(traces["lost"])))


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_tty_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert show.use_color(_Tty())
    assert not show.use_color(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "")
    assert not show.use_color(_Tty())


def test_colour_changes_no_visible_character(traces: dict[str, Path]) -> None:
    trace = load_trace(str(traces["lost"]))
    plain = show.render(trace, 120)
    coloured = show.render(trace, 120, color=True)
    assert ANSI.search(coloured)
    assert [x.rstrip() for x in re.sub(r"\x1b\[[0-9;]*m", "", coloured).splitlines()] == [
        x.rstrip() for x in plain.splitlines()]


def test_ascii_only_output_for_a_terminal_without_unicode(traces: dict[str, Path]) -> None:
    text = show.render(load_trace(str(traces["deadlock"])), 80, unicode=False)
    text.encode("ascii")
    assert max(len(line) for line in text.splitlines()) <= 80


def test_same_trace_same_text_across_processes(traces: dict[str, Path]) -> None:
    outs = []
    for seed in ("1", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
        env.pop("NO_COLOR", None)
        done = subprocess.run([sys.executable, "-m", "emulator", "show", str(traces["lost"]),
                               "--width", "150"], capture_output=True, text=True, env=env,
                              cwd=ROOT, check=False)
        assert done.returncode == 0, done.stderr
        outs.append(done.stdout)
    assert outs[0] == outs[1]
    assert not ANSI.search(outs[0])


def test_a_cut_trace_needs_partial_and_then_shows_its_prefix(
    traces: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = traces["lost"].read_bytes()
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(raw[: len(raw) // 2])  # ends in the middle of a line, no footer
    capsys.readouterr()
    assert main(["show", str(cut)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "--partial" in captured.err
    text = _show(capsys, str(cut), "--partial", "--width", "120")
    assert "partial trace (no footer)" in text
    assert "at the end of the trace" in text
    assert max(len(line) for line in text.splitlines()) <= 120


@pytest.mark.parametrize("content", [b"", b"not json\n", b'{"event": "header"}\n'])
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content)
    assert main(["show", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1


def test_missing_file_and_too_narrow_width_are_bad_input(
    traces: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["show", str(tmp_path / "nope.jsonl")]) == 2
    assert main(["show", str(traces["ok"]), "--width", "20"]) == 2
    err = capsys.readouterr().err
    assert "no such trace" in err and "--width 20" in err


def test_default_width_is_the_terminal_but_at_least_80(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.get_terminal_size",
                        lambda fallback=(80, 24): os.terminal_size((60, 24)))
    assert show.default_width() == 80
    monkeypatch.setattr("shutil.get_terminal_size",
                        lambda fallback=(80, 24): os.terminal_size((213, 24)))
    assert show.default_width() == 213


def test_control_characters_from_a_trace_never_reach_the_terminal(
    traces: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = traces["lost"].read_text().splitlines()
    edited = []
    for line in lines:
        obj = json.loads(line)
        if obj["event"] == "violation":
            obj["args"][1] = "\x1b[2J\x1b]0;pwned\x07 evil"
        edited.append(json.dumps(obj, sort_keys=True))
    path = tmp_path / "edited.jsonl"
    path.write_text("\n".join(edited) + "\n")
    text = _show(capsys, str(path), "--width", "120")
    assert "\x1b" not in text and "\x07" not in text
    assert "digest mismatch" in text


def test_the_documented_names_import_from_the_package() -> None:
    assert sorted(show.__all__) == ["MIN_WIDTH", "default_width", "render", "unicode_ok",
                                    "use_color"]
    assert all(hasattr(show, name) for name in show.__all__)


def test_every_event_kind_in_the_corpus_has_its_own_phrasing() -> None:
    """A kind with no entry in ``KINDS`` would show as its raw arguments."""
    kinds = {ev["event"] for path in (ROOT / "traces").glob("*.trace.jsonl")
             for ev in load_trace(str(path)).events}
    phrased = {cls.kind for cls in KINDS}
    assert kinds and kinds - {"violation"} <= phrased  # a violation is a banner, not a cell


def test_an_event_whose_args_do_not_fit_its_kind_shows_raw_and_changes_no_holds(
    traces: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edited, done = [], False
    for line in traces["lost"].read_text().splitlines():
        obj = json.loads(line)
        if not done and obj["event"] == "lock" and obj["args"][0] == "map":
            obj["args"].append("extra")
            name, mode = obj["args"][1], obj["args"][2]
            done = True
        edited.append(json.dumps(obj, sort_keys=True))
    assert done
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(edited) + "\n")
    text = _show(capsys, str(path), "--width", "200", "--all")
    row = next(r for r in text.splitlines() if " extra" in r)
    assert f"lock map {name} {mode} extra" in row  # raw: kind and args
    assert row.rstrip(" │").endswith("extra")  # and no holds changed


def test_delayed_writes_buffer_writes_and_fsync_have_phrases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "async_then_sync.jsonl"
    assert main(["run", "async_then_sync", "--profile", "modern", "--param", "ops=0",
                 "--trace", str(trace)]) == 0
    text = _show(capsys, str(trace), "--width", "160")
    assert "bdwrite f:0 #1 (delayed)" in text
    assert "buffer write f:1 (bawrite)" in text
    assert "buffer write done f:1 #4" in text
    assert "fsync(f)" in text and "fsync -> 0" in text
