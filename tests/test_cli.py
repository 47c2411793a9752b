"""The command line contract (DESIGN.md, "Command line"): outputs, exit codes, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from emulator.cli import COMMANDS, main
from emulator.kern.profile import PROFILES
from workloads import WORKLOADS, aimed_at

ROOT = Path(__file__).resolve().parent.parent

GOOD_SPEC: dict[str, Any] = {
    "files": {"f": {"pages": 2}},
    "processes": {"p0": {"mappings": [{"addr": "0x10000", "pages": 2, "file": "f"}]}},
    "cpus": [{"process": "p0", "program": [
        ["store", "0x10000"],
        ["clean", "0x10000", "0x13000", True, False],
        ["msync", "0x10000", 8192, "sync"],
        ["load", "0x10000"],
    ]}],
}


def run_json(capsys: Any, argv: list[str]) -> tuple[int, dict[str, Any]]:
    code = main(argv)
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert len(lines) == 1, out.out
    return code, json.loads(lines[0])


def test_list_names_every_profile_and_workload(capsys: Any) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in (*PROFILES, *WORKLOADS):
        assert name in out
    assert "reference" in out


def test_explore_json_reports_executions_and_speed(capsys: Any) -> None:
    code, data = run_json(capsys, ["explore", "writers_vs_msync", "--iterations", "20",
                                   "--json"])
    assert code == 0
    assert data["outcome"] == "ok"
    assert data["executions"] == 20
    assert data["steps"] > 0
    assert data["steps_per_second"] > 0
    assert data["violations"] == []
    assert data["profile"] == "manpage"


def test_explore_without_a_workload_hunts_over_every_workload(
    capsys: Any, tmp_path: Path
) -> None:
    # A user's variant, no workload named: generated and every named workload aimed at
    # the profile are the portfolio's arms, as in `vmemu mutants`.  generated alone needed
    # 400-1,100 executions for this variant (seeds 0, 100000, ...); these arms, 5-8.
    variant = f"{ROOT / 'examples' / 'my_clean.py'}:forgetful_clean"
    code, out = run_json(capsys, ["explore", "--variant", variant,
                                  "--iterations", "300", "--save-dir", str(tmp_path),
                                  "--json"])
    assert out["workloads"] == [n for n in WORKLOADS if aimed_at(n, "manpage")]
    assert "generated" in out["workloads"]
    assert code == 1 and out["violations"]
    assert out["executions"] < 50
    rerun = out["violations"][0]["rerun"]
    assert rerun.startswith("vmemu run ") and " --profile manpage " in rerun
    failing = rerun.split()[2]
    assert failing in out["workloads"]
    assert out["violations"][0]["trace"].endswith(f"seed{out['violations'][0]['seed']}"
                                                   ".trace.jsonl")
    assert os.path.basename(out["violations"][0]["trace"]).startswith(failing + "-")
    # The printed command reproduces it.
    code, again = run_json(capsys, [*rerun.split()[1:], "--json"])
    assert code == 1
    assert again["violations"][0]["message"] == out["violations"][0]["message"]


def test_explore_without_a_workload_reports_per_workload(capsys: Any) -> None:
    assert main(["explore", "--iterations", "40", "--profile", "freebsd5",
                 "--variant", "reference", "--keep-going"]) in (0, 1)
    text = capsys.readouterr().out
    aimed = [n for n in WORKLOADS if aimed_at(n, "freebsd5")]
    assert f"explored 40 executions of {len(aimed)} workloads" in text
    assert "by workload: " in text and "/pct(" not in text.split("by workload: ")[1]


def test_explore_without_a_workload_under_dfs_searches_generated(capsys: Any) -> None:
    code, out = run_json(capsys, ["explore", "--strategy", "dfs", "--iterations", "5",
                                  "--json"])
    assert code == 0 and out["workload"] == "generated" and "workloads" not in out


def test_explore_honours_profile_and_seed(capsys: Any) -> None:
    code, data = run_json(capsys, ["explore", "two_cleaners", "--iterations", "3",
                                   "--profile", "modern", "--seed", "40", "--json"])
    assert code == 0
    assert (data["profile"], data["seed"], data["executions"]) == ("modern", 40, 3)


def test_run_json_has_every_results_row(capsys: Any, tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(GOOD_SPEC))
    code, data = run_json(capsys, ["run", str(path), "--json"])
    assert code == 0
    rows = data["results"]["cpu0"]
    assert [r["op"] for r in rows] == ["store", "clean", "msync", "load"]
    # The clean runs into unmapped space after the mapping: a hole, manpage's code.
    assert [r["ret"] for r in rows] == [0, "KERN_INVALID_ARGUMENT", 0, 1]
    assert rows[1]["args"] == ["0x10000", "0x13000", True, False]


def test_run_json_profile_override_changes_the_code(capsys: Any, tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(GOOD_SPEC))
    code, data = run_json(capsys, ["run", str(path), "--profile", "freebsd5", "--json"])
    assert code == 0
    assert data["results"]["cpu0"][1]["ret"] == "KERN_INVALID_ADDRESS"


def test_run_of_a_named_workload_with_a_param(capsys: Any) -> None:
    code, data = run_json(capsys, ["run", "writers_vs_msync", "--param", "cpus=2",
                                   "--seed", "3", "--json"])
    assert code == 0
    assert sorted(data["results"]) == ["cpu0", "cpu1"]
    assert data["results"]["cpu0"][0]["op"] == "msync"


def test_run_of_a_toml_spec(capsys: Any, tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(
        '[files.f]\npages = 1\n[processes.p0]\n'
        'mappings = [{addr = "0x10000", pages = 1, file = "f"}]\n'
        '[[cpus]]\nprocess = "p0"\nprogram = [["store", "0x10000"], '
        '["msync", "0x10000", 4096, "sync"]]\n')
    code, data = run_json(capsys, ["run", str(path), "--json"])
    assert code == 0
    assert [r["ret"] for r in data["results"]["cpu0"]] == [0, 0]


# --- bad input: exit 2, one line on stderr, nothing on stdout --------------------------------


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _overlapping() -> str:
    data = json.loads(json.dumps(GOOD_SPEC))
    data["processes"]["p0"]["mappings"].append({"addr": "0x11000", "pages": 2, "anon": True})
    return json.dumps(data)


def _inverted_clean() -> str:
    data = json.loads(json.dumps(GOOD_SPEC))
    data["cpus"][0]["program"] = [["clean", "0x12000", "0x10000", True, False]]
    return json.dumps(data)


BAD: list[tuple[str, Any]] = [
    ("missing-file", lambda t: ["run", str(t / "nope.json")]),
    ("malformed-json", lambda t: ["run", _write(t, "bad.json", '{"files": {')]),
    ("not-an-object", lambda t: ["run", _write(t, "list.json", "[1, 2]")]),
    ("unknown-workload", lambda t: ["run", "no_such_workload"]),
    ("unknown-profile", lambda t: ["run", "writers_vs_msync", "--profile", "bogus"]),
    ("unknown-param", lambda t: ["run", "writers_vs_msync", "--param", "bogus=1"]),
    ("param-not-key-value", lambda t: ["run", "writers_vs_msync", "--param", "cpus"]),
    ("param-out-of-range", lambda t: ["run", "writers_vs_msync", "--param", "cpus=999"]),
    ("overlapping-mappings", lambda t: ["run", _write(t, "overlap.json", _overlapping())]),
    ("clean-start-after-end", lambda t: ["run", _write(t, "inverted.json", _inverted_clean())]),
    ("unknown-variant", lambda t: ["run", "writers_vs_msync", "--variant", "bogus"]),
    ("unknown-strategy", lambda t: ["run", "writers_vs_msync", "--strategy", "bogus"]),
    ("iterations-zero", lambda t: ["explore", "writers_vs_msync", "--iterations", "0"]),
    ("iterations-zero-json", lambda t: ["explore", "writers_vs_msync", "--iterations", "0",
                                        "--json"]),
    ("max-steps-zero", lambda t: ["run", "writers_vs_msync", "--max-steps", "0"]),
    ("seed-not-a-number", lambda t: ["run", "writers_vs_msync", "--seed", "x"]),
    ("param-without-workload", lambda t: ["explore", "--param", "cpus=2"]),
    ("no-command", lambda t: []),
    ("unknown-command", lambda t: ["frobnicate"]),
]


@pytest.mark.parametrize("argv", [b for _n, b in BAD], ids=[n for n, _b in BAD])
def test_bad_input_exits_2_with_one_line_on_stderr(
    capsys: Any, tmp_path: Path, argv: Any
) -> None:
    code = main(argv(tmp_path))
    out = capsys.readouterr()
    assert code == 2
    assert out.out == ""
    lines = out.err.splitlines()
    assert len(lines) == 1, out.err
    assert lines[0].startswith("vmemu: error: ")
    assert "Traceback" not in out.err


def test_python_dash_m_emulator_list_exits_0() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "emulator", "list"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "writers_vs_msync" in proc.stdout
    assert proc.stderr == ""


def test_python_dash_m_emulator_bad_input_exits_2() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "emulator", "run", "no_such_workload"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1


def test_mutants_command_reports_a_caught_mutant_with_a_replayable_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["mutants", "--time-budget", "4", "--only", "no_map_lock", "--json",
                 "--save-dir", str(tmp_path)])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    (m,) = report["mutants"]
    assert m["caught"] and m["rule"] == "single_entry" and m["expected_rule_seen"]
    assert report["false_alarms"] == 0 and report["reference_executions"] > 0
    assert main(["replay", m["trace"]]) == 0
    assert "reproduced VIOLATION single_entry" in capsys.readouterr().out


def _raising(exc: BaseException) -> Any:
    def command(args: Any) -> int:
        raise exc

    return command


def test_ctrl_c_inside_a_trio_nursery_is_one_line_and_exit_130(
    capsys: Any, monkeypatch: Any
) -> None:
    # Trio wraps the KeyboardInterrupt of a Ctrl-C in a nursery's exception group.
    group = BaseExceptionGroup("nursery", [KeyboardInterrupt()])
    monkeypatch.setitem(COMMANDS, "list", _raising(group))
    assert main(["list"]) == 130
    assert capsys.readouterr().err == "vmemu: interrupted\n"


def test_an_exception_group_with_a_real_error_is_not_taken_for_an_interrupt(
    monkeypatch: Any,
) -> None:
    group = BaseExceptionGroup("nursery", [KeyboardInterrupt(), ValueError("bug")])
    monkeypatch.setitem(COMMANDS, "list", _raising(group))
    with pytest.raises(BaseExceptionGroup):
        main(["list"])
