"""Traces: byte-identical recording, exact replay, replay against a fix, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from emulator.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _vmemu(*args: str, seed: str = "0") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "emulator", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, check=False)


def test_same_seed_gives_byte_identical_traces_across_processes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert _vmemu("run", "writers_vs_msync", "--seed", "7", "--trace", str(a),
                  seed="1").returncode == 0
    assert _vmemu("run", "writers_vs_msync", "--seed", "7", "--trace", str(b),
                  seed="4242").returncode == 0
    assert a.read_bytes() == b.read_bytes()
    assert len(a.read_text().splitlines()) > 100


def test_trace_has_header_events_and_footer(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    assert main(["run", "writers_vs_msync", "--seed", "2", "--trace", str(path)]) == 0
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["event"] == "header" and lines[0]["format"] == "vmemu-trace"
    assert lines[0]["spec"]["cpus"] and lines[0]["seed"] == 2
    assert lines[-1]["event"] == "footer" and lines[-1]["events"] == len(lines) - 2
    kinds = {line["event"] for line in lines[1:-1]}
    assert {"sched", "call", "ret", "lock", "unlock", "store", "io_issue", "io_done"} <= kinds
    for line in lines[1:-1]:
        assert set(line) == {"event", "step", "cpu", "args"}
    # sorted keys on every line
    for raw in path.read_text().splitlines():
        assert list(json.loads(raw)) == sorted(json.loads(raw))


def _failing_trace(tmp_path: Path, variant: str, workload: str) -> Path:
    code = main(["explore", workload, "--variant", variant, "--iterations", "3000",
                 "--save-dir", str(tmp_path)])
    assert code == 1
    (trace,) = tmp_path.glob("*.trace.jsonl")
    return trace


def test_replay_reproduces_the_violation_every_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = _failing_trace(tmp_path, "invalidate_frees_dirty", "invalidate_shared_file")
    capsys.readouterr()
    for _ in range(20):
        assert main(["replay", str(trace)]) == 0
        out = capsys.readouterr().out
        assert "events identical" in out and "reproduced VIOLATION lost_store" in out


def test_replay_with_the_reference_reports_the_violation_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = _failing_trace(tmp_path, "invalidate_frees_dirty", "invalidate_shared_file")
    capsys.readouterr()
    assert main(["replay", str(trace), "--variant", "reference", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["violation_still_occurs"] is False
    assert report["recorded_violations"] == ["lost_store"]
    assert report["first_change"]["step"] > 0


def test_replay_with_the_same_mutant_still_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = _failing_trace(tmp_path, "no_map_lock", "writers_vs_msync")
    capsys.readouterr()
    assert main(["replay", str(trace), "--variant", "no_map_lock", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["violation_still_occurs"] is True


def _recorded(tmp_path: Path) -> list[str]:
    path = tmp_path / "ok.jsonl"
    assert main(["run", "writers_vs_msync", "--seed", "7", "--trace", str(path)]) == 0
    return path.read_text().split("\n")


def _write(tmp_path: Path, name: str, lines: list[str]) -> str:
    path = tmp_path / name
    path.write_text("\n".join(lines))
    return str(path)


def _one_error_line(capsys: pytest.CaptureFixture[str], code: int, want: int = 2) -> str:
    out = capsys.readouterr()
    assert code == want
    assert out.out == ""
    assert len(out.err.strip().splitlines()) == 1
    return out.err


@pytest.mark.parametrize(
    ("name", "mutate", "needle"),
    [
        ("empty", lambda ls: [""], "empty file"),
        ("garbage", lambda ls: ["this is not a trace", "x"], "line 1: not JSON"),
        ("mid", lambda ls: [*ls[:10], ls[10][:15], *ls[11:]], "line 11: malformed JSON"),
        # Cut inside a line: five characters before the end of the line at offset 3000.
        ("cut", lambda ls: ["\n".join(ls)[:"\n".join(ls).index("\n", 3000) - 5]],
         "truncated line"),
        ("nofooter", lambda ls: [*ls[:-2], ""], "no footer"),
        ("version", lambda ls: [ls[0].replace('"version": 2', '"version": 7'), *ls[1:]],
         "version 7 is newer"),
        ("variant", lambda ls: [ls[0].replace('"variant": "reference"', '"variant": "nope"'),
                                *ls[1:]], "unknown variant 'nope'"),
        ("foreign", lambda ls: ['{"hello": 1}', *ls[1:]], "not a vmemu trace"),
        ("strategy", lambda ls: [ls[0].replace('"name": "portfolio"', '"nom": "portfolio"'),
                                 *ls[1:]], "header field 'strategy' has no name"),
        ("event", lambda ls: [*ls[:5], '{"event": "store", "step": 3}', *ls[6:]],
         "line 6: event 'store' must have"),
    ],
)
def test_bad_traces_give_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, mutate: object, needle: str
) -> None:
    lines = _recorded(tmp_path)
    capsys.readouterr()
    path = _write(tmp_path, f"{name}.jsonl", mutate(lines))  # type: ignore[operator]
    err = _one_error_line(capsys, main(["replay", path]))
    assert needle in err


def test_a_user_variant_named_by_a_trace_is_never_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _recorded(tmp_path)
    evil = tmp_path / "evil.py"
    evil.write_text("raise SystemExit('code from a trace ran')\n")
    head = lines[0].replace('"variant": "reference"', f'"variant": "{evil}:clean"')
    path = _write(tmp_path, "user.jsonl", [head, *lines[1:]])
    capsys.readouterr()
    err = _one_error_line(capsys, main(["replay", path]))
    assert "never loads code" in err


def test_an_edited_event_is_reported_as_divergence_with_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _recorded(tmp_path)
    for i, line in enumerate(lines):
        if '"event": "store"' in line:
            ev = json.loads(line)
            ev["args"][-1] += 1000
            lines[i] = json.dumps(ev, sort_keys=True)
            edited = i + 1
            break
    path = _write(tmp_path, "edited.jsonl", lines)
    capsys.readouterr()
    assert main(["replay", path]) == 3
    out = capsys.readouterr().out
    assert f"(trace line {edited})" in out and "expected:" in out and "observed:" in out


@pytest.mark.parametrize("edit", ["not runnable", "no such agent"])
def test_a_first_recorded_choice_that_cannot_run_exits_3_at_once(
    tmp_path: Path, edit: str
) -> None:
    """As a user would: explore, hand-edit the saved trace's first choice, replay it.

    In a subprocess under a timeout: a replay whose strategy gives up before any agent
    ran once hung vmemu with no output."""
    saved = _vmemu("explore", "two_cleaners", "--variant", "no_map_lock", "--iterations", "50",
                   "--save-dir", str(tmp_path))
    assert saved.returncode == 1, saved.stderr
    (trace,) = tmp_path.glob("*.trace.jsonl")
    lines = trace.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if '"event": "sched"' in line)
    ev = json.loads(lines[first])
    runnable = ev["args"][1]
    ev["args"][0] = 99 if edit == "no such agent" else next(
        a for a in range(len(json.loads(lines[0])["agents"])) if a not in runnable)
    lines[first] = json.dumps(ev, sort_keys=True)
    path = _write(tmp_path, "edited.jsonl", lines)
    proc = subprocess.run([sys.executable, "-m", "emulator", "replay", path],
                          capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 3, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0] == f"replay of {path} diverged at step 0 (trace line {first + 1}):"
    assert out[1] == f"  expected: {lines[first]}"
    assert out[2].startswith('  observed: {"args": [') and '"event": "sched"' in out[2]
    assert json.loads(out[2].split(": ", 1)[1])["args"][0] in runnable


def test_a_partial_trace_replays_up_to_its_last_full_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _recorded(tmp_path)
    text = "\n".join(lines)
    path = _write(tmp_path, "cut.jsonl", [text[: len(text) // 2]])
    capsys.readouterr()
    assert main(["replay", path, "--partial"]) == 0
    assert "partial trace" in capsys.readouterr().out


def test_bad_trace_path_for_run_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _one_error_line(capsys, main(["run", "writers_vs_msync", "--trace",
                                        str(tmp_path / "no" / "such" / "t.jsonl")]))
    assert "no such directory" in err


def test_a_crash_mid_run_leaves_a_readable_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """vmemu itself failing mid-run leaves the header and the events so far, no footer."""
    from emulator.config import RunConfig
    from emulator.kern import pager
    from emulator.machine import Machine
    from emulator.sched.strategies import RandomStrategy
    from emulator.trace.record import record
    from emulator.variants import BUILTIN
    from workloads import build_workload

    spec = build_workload("writers_vs_msync", {}, 0, None)
    machine = Machine(spec, BUILTIN["reference"], RandomStrategy())
    calls = {"n": 0}
    real = pager.Disk.complete

    class Crash(BaseException):
        """Not an Exception: escapes every handler in vmemu, as a real crash would."""

    def failing_complete(self: pager.Disk, io: pager.Io) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise Crash()
        real(self, io)

    monkeypatch.setattr(pager.Disk, "complete", failing_complete)
    path = tmp_path / "crash.jsonl"
    # Out of the execution as it is (the Trio driver's agent tasks hand it to the main task).
    with pytest.raises(Crash):
        trio.run(record, machine, RunConfig("writers_vs_msync", strategy="random"), spec,
                 str(path))
    monkeypatch.undo()
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["event"] == "header"
    assert json.loads(lines[-1])["event"] != "footer" and len(lines) > 10
    capsys.readouterr()
    assert main(["replay", str(path)]) == 2  # no footer: bad input without --partial
    assert main(["replay", str(path), "--partial"]) == 0
