"""vmemu why: the causal slice holds the violating events, the named preemptions are needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from emulator.cli import main
from emulator.kern.events import Sched, Store, Violated
from emulator.trace.reader import load_trace
from emulator.trace.show import render
from emulator.trace.show.violations import store_ids
from emulator.trace.why import (
    MAX_LINES,
    WithoutPreemption,
    execute,
    explain,
    fires,
    preemptions_of,
    slice_of,
)
from emulator.variants import BUILTIN

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "traces").glob("*.trace.jsonl"))

# (workload, variant, profile): fresh failures, as `vmemu mutants` finds them.
MUTANTS = [
    ("invalidate_shared_file", "early_unbusy", "manpage"),
    ("write_errors", "undirty_at_issue", "manpage"),
    ("zero_length_msync", "no_timestamp_recheck", "modern"),
    ("msync_vs_munmap", "null_object_deref", "manpage"),
]


def _failing_trace(tmp_path: Path, workload: str, variant: str, profile: str) -> Path:
    save = tmp_path / "found"
    code = main(["explore", workload, "--variant", variant, "--profile", profile,
                 "--iterations", "2000", "--save-dir", str(save)])
    assert code == 1
    (trace,) = save.glob("*.trace.jsonl")
    return trace


def _check_explanation(path: Path) -> list[str]:
    """The slice holds the violation and the stores it names; each named preemption is
    needed: the run without it does not break the rule."""
    trace = load_trace(str(path))
    ex = explain(trace)
    entries = trace.entries
    rule = ex.violation.rule
    sl = slice_of(trace)
    assert sl == ex.slice
    assert not any(isinstance(entries[j].event, Sched) for j in sl)
    violating = [j for j, e in enumerate(entries)
                 if isinstance(e.event, Violated) and e.event.rule == rule]
    if violating:
        assert violating[0] in sl
    named = store_ids(ex.violation.message)
    stores = {e.event.sid for j, e in enumerate(entries)
              if j in sl and isinstance(e.event, Store)}
    recorded = {e.event.sid for e in entries if isinstance(e.event, Store)}
    assert named & recorded <= stores
    assert ex.necessity.reproduced
    variant = BUILTIN[trace.config.variant]
    for p in ex.named():
        run = trio.run(execute, trace, WithoutPreemption(trace.decisions, p.decision,
                                                         p.preempted), variant)
        assert not fires(run, rule), f"{path.name}: preemption at step {p.step} not needed"
    # A preemption it calls not needed really is not: the rule still fires without it.
    for p in ex.necessity.singles:
        if not p.needed:
            run = trio.run(execute, trace, WithoutPreemption(trace.decisions, p.decision,
                                                             p.preempted), variant)
            assert fires(run, rule)
    lines = ex.lines()
    assert 3 <= len(lines) <= MAX_LINES
    assert lines[0].startswith(f"{rule} at step")
    return lines


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name.split(".")[0])
def test_every_corpus_trace_is_explained_with_its_violation_in_the_slice(path: Path) -> None:
    _check_explanation(path)


@pytest.mark.parametrize("workload,variant,profile", MUTANTS, ids=[m[1] for m in MUTANTS])
def test_fresh_mutant_failures_are_explained(tmp_path: Path, workload: str, variant: str,
                                             profile: str) -> None:
    _check_explanation(_failing_trace(tmp_path, workload, variant, profile))


def test_the_historical_lost_store_names_the_preemption_before_the_invalidate() -> None:
    lines = _check_explanation(ROOT / "traces" / "historical-reference.trace.jsonl")
    text = "\n".join(lines)
    assert "store #2 -> f:1" in text
    assert "unmap all f:1 (dirty)" in text
    assert "step 34: cpu0 was preempted before its lock obj f" in text
    assert "without it the run ends ok" in text


def test_a_violation_on_one_cpu_needs_no_preemption() -> None:
    lines = _check_explanation(
        ROOT / "traces" / "lock_discipline-lock_order_inversion.trace.jsonl")
    assert lines[-1].startswith("no preemption")
    assert "lock obj f; lock map p0 (x)" in "\n".join(lines)


def test_without_preemption_keeps_the_agent_for_its_next_turn() -> None:
    # Recorded: 0 0 [1] 1 0 0 0 1 -- at decision 2, agent 0 was preempted for agent 1.
    s = WithoutPreemption([0, 0, 1, 1, 0, 0, 0, 1], 2, 0)
    got = [s.choose([0, 1], c) for c in (0, 0, 0, 0, 0, 1, 1, 0)]
    # Agent 0 takes its next turn (3 decisions) at once, then agent 1 runs, then the rest.
    assert got == [0, 0, 0, 0, 0, 1, 1, 1]


def test_preemptions_are_switches_away_from_a_runnable_agent() -> None:
    trace = load_trace(str(ROOT / "traces" / "single_entry-no_map_lock.trace.jsonl"))
    points = preemptions_of(trace)
    assert len(points) == 1
    (d, i), = points
    ev = trace.entries[i].event
    assert isinstance(ev, Sched) and ev.chosen != trace.entries[i].cpu
    assert trace.decisions[d] == ev.chosen


def test_json_output_lists_the_slice_and_the_preemptions(
        capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "traces" / "lost_store-invalidate_frees_dirty.trace.jsonl"
    assert main(["why", str(path), "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    report = json.loads(out[0])
    assert report["rule"] == "lost_store"
    assert report["reproduced"] is True
    indices = [e["index"] for e in report["slice"]]
    assert report["violation_index"] in indices
    needed = [p for p in report["preemptions"] if p["needed"]]
    assert {p["decision"] for p in needed} >= set(report["needed"]) and report["needed"]


def test_the_text_is_at_most_thirty_lines(capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "traces" / "historical-reference.trace.jsonl"
    assert main(["why", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert 3 <= len(out) <= 30
    assert out[0].startswith("lost_store at step 47: ")


def test_a_trace_without_a_violation_is_one_line_and_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "ok.trace.jsonl"
    assert main(["run", "writers_vs_msync", "--seed", "0", "--trace", str(trace)]) == 0
    capsys.readouterr()
    assert main(["why", str(trace)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "records no violation" in captured.err


@pytest.mark.parametrize("content", ["", "not json\n", '{"event": "header"}\n'])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, content: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    for target in (str(path), str(tmp_path / "missing.jsonl")):
        assert main(["why", target]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.count("\n") == 1


def test_show_why_marks_the_slice_and_explains_the_marker() -> None:
    trace = load_trace(str(ROOT / "traces" / "lost_store-invalidate_frees_dirty.trace.jsonl"))
    plain = render(trace, 140)
    marked = render(trace, 140, why=slice_of(trace))
    assert "▸" not in plain
    lines = marked.splitlines()
    assert any(line.startswith("▸") and "store #2 -> f:1" in line for line in lines)
    assert any(line.startswith("▸") and "!! lost_store" in line for line in lines)
    assert any(not line.startswith("▸") and "unlock map p1" in line for line in lines)
    assert "▸ = a row the violation depends on" in marked.replace("\n        ", " ")
    ascii_marked = render(trace, 140, unicode=False, why=slice_of(trace))
    assert any(line.startswith(">") and "store #2" in line for line in ascii_marked.splitlines())


def test_show_without_why_is_unchanged_by_the_option(
        capsys: pytest.CaptureFixture[str]) -> None:
    path = str(ROOT / "traces" / "historical-reference.trace.jsonl")
    assert main(["show", path, "--width", "120"]) == 0
    plain = capsys.readouterr().out
    assert plain == render(load_trace(path), 120)
    assert main(["show", path, "--width", "120", "--why"]) == 0
    marked = capsys.readouterr().out
    assert marked != plain and all(len(line) <= 120 for line in marked.splitlines())


def test_the_readme_shows_what_why_prints(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "README.md").read_text()
    command = "vmemu why traces/lost_store-invalidate_frees_dirty.trace.jsonl"
    block = readme.split(f"`{command}` prints:\n\n```\n", 1)[1].split("```", 1)[0]
    path = ROOT / "traces" / "lost_store-invalidate_frees_dirty.trace.jsonl"
    assert main(["why", str(path)]) == 0
    assert capsys.readouterr().out == block


def test_against_the_fix_the_preemptions_are_not_checked_and_it_says_so() -> None:
    trace = load_trace(str(ROOT / "traces" / "lost_store-invalidate_frees_dirty.trace.jsonl"))
    ex = explain(trace, "reference")
    assert not ex.necessity.reproduced
    assert ex.lines()[-1].startswith("replayed with variant reference, the recorded schedule "
                                     "no longer breaks lost_store")
