"""vmemu shrink: smaller failing runs that replay exactly, with the same rule; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.cli import main
from emulator.trace.reader import load_trace
from emulator.trace.shrink import count_ops, ddmin

# (workload, variant, profile): quick to find and to shrink.
MUTANTS = [
    ("writers_vs_msync", "no_map_lock", "manpage"),
    ("invalidate_shared_file", "invalidate_frees_dirty", "manpage"),
    ("msync_vs_munmap", "swapped_codes", "freebsd5"),
    ("writers_vs_msync", "lock_order_inversion", "manpage"),
]


def _failing_trace(tmp_path: Path, workload: str, variant: str, profile: str) -> Path:
    save = tmp_path / "found"
    code = main(["explore", workload, "--variant", variant, "--profile", profile,
                 "--iterations", "2000", "--save-dir", str(save)])
    assert code == 1
    (trace,) = save.glob("*.trace.jsonl")
    return trace


def _shrink_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    capsys.readouterr()
    assert main(["shrink", *argv, "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    report: dict[str, object] = json.loads(lines[0])
    return report


@pytest.mark.parametrize(("workload", "variant", "profile"), MUTANTS,
                         ids=[m[1] for m in MUTANTS])
def test_shrunk_trace_replays_with_the_same_rule_in_fewer_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], workload: str, variant: str,
    profile: str
) -> None:
    trace_path = _failing_trace(tmp_path, workload, variant, profile)
    before = load_trace(str(trace_path))
    rule = before.violations[0]["rule"]
    out = tmp_path / "small.trace.jsonl"
    report = _shrink_json(capsys, str(trace_path), "-o", str(out))
    assert set(report) == {"trace", "out", "rule", "steps_before", "steps_after",
                           "preemptions_before", "preemptions_after", "ops_before", "ops_after",
                           "cpus_before", "cpus_after", "mappings_before", "mappings_after",
                           "executions", "seconds"}
    assert report["rule"] == rule
    assert report["out"] == str(out)
    assert isinstance(report["steps_after"], int) and isinstance(report["steps_before"], int)
    assert report["steps_after"] < report["steps_before"]
    assert report["ops_after"] == count_ops(load_trace(str(out)).spec)
    assert isinstance(report["ops_after"], int) and isinstance(report["ops_before"], int)
    assert report["ops_after"] < report["ops_before"]
    assert not (tmp_path / "small.trace.jsonl.part").exists()

    after = load_trace(str(out))
    assert after.violations[0]["rule"] == rule
    assert after.footer is not None and after.footer["steps"] == report["steps_after"]
    assert main(["replay", str(out), "--json"]) == 0
    replayed = json.loads(capsys.readouterr().out)
    assert replayed["identical"] is True
    assert replayed["violations"][0]["rule"] == rule


def test_shrinking_is_deterministic_and_reports_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace_path = _failing_trace(tmp_path, "writers_vs_msync", "no_map_lock", "manpage")
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    capsys.readouterr()
    assert main(["shrink", str(trace_path), "-o", str(a)]) == 0
    text = capsys.readouterr().out
    for word in ("steps:", "preemptions:", "cpus:", "ops:", "mappings:", "executions",
                 "vmemu replay"):
        assert word in text
    assert main(["shrink", str(trace_path), "-o", str(b), "--budget", "30"]) == 0
    assert a.read_bytes() == b.read_bytes()


def test_a_tiny_budget_still_writes_a_trace_that_replays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace_path = _failing_trace(tmp_path, "writers_vs_msync", "no_map_lock", "manpage")
    out = tmp_path / "quick.jsonl"
    report = _shrink_json(capsys, str(trace_path), "-o", str(out), "--budget", "0.000001")
    assert isinstance(report["steps_after"], int) and isinstance(report["steps_before"], int)
    assert report["steps_after"] <= report["steps_before"]
    assert main(["replay", str(out)]) == 0


def _one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr()
    assert err.out == ""
    lines = err.err.strip().splitlines()
    assert len(lines) == 1, err.err
    return lines[0]


def test_a_trace_without_violation_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = tmp_path / "ok.jsonl"
    assert main(["run", "writers_vs_msync", "--trace", str(ok)]) == 0
    out = tmp_path / "out.jsonl"
    line = _one_error_line(capsys, ["shrink", str(ok), "-o", str(out)])
    assert "trace records no violation: nothing to shrink" in line
    assert not out.exists() and not (tmp_path / "out.jsonl.part").exists()


def test_missing_trace_and_bad_options_are_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "nope.jsonl")
    assert "no such trace" in _one_error_line(
        capsys, ["shrink", missing, "-o", str(tmp_path / "o.jsonl")])
    assert "no such directory" in _one_error_line(
        capsys, ["shrink", missing, "-o", str(tmp_path / "no" / "o.jsonl")])
    assert "--budget" in _one_error_line(
        capsys, ["shrink", missing, "-o", str(tmp_path / "o.jsonl"), "--budget", "0"])
    assert "-o" in _one_error_line(capsys, ["shrink", missing])
    assert list(tmp_path.iterdir()) == []


async def test_ddmin_finds_a_one_minimal_subset() -> None:
    calls = 0

    async def needs_3_and_7(items: list[int]) -> bool:
        nonlocal calls
        calls += 1
        return 3 in items and 7 in items

    assert await ddmin(list(range(16)), needs_3_and_7) == [3, 7]
    assert calls < 60

    async def anything(items: list[int]) -> bool:
        return True

    assert await ddmin(list(range(5)), anything, try_empty=True) == []


def test_background_agents_the_violation_does_not_need_are_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save = tmp_path / "found"
    assert main(["explore", "writers_vs_msync", "--variant", "no_map_lock", "--param",
                 "agents=pagedaemon,syncer=2", "--iterations", "2000",
                 "--save-dir", str(save)]) == 1
    (trace_path,) = save.glob("*.trace.jsonl")
    assert load_trace(str(trace_path)).spec.agents == {"pagedaemon": 1, "syncer": 2}
    out = tmp_path / "small.trace.jsonl"
    _shrink_json(capsys, str(trace_path), "-o", str(out))
    after = load_trace(str(out))
    assert after.spec.agents == {}  # a map lock race: no daemon needed
    assert after.violations[0]["rule"] == "single_entry"
    assert main(["replay", str(out)]) == 0
