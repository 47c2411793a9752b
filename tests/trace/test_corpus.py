"""The regression corpus: every shrunk trace in traces/ replays with its recorded violation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.cli import main
from emulator.trace.reader import load_trace

CORPUS = sorted((Path(__file__).resolve().parents[2] / "traces").glob("*.trace.jsonl"))


def test_the_corpus_covers_every_rule_family() -> None:
    rules = {load_trace(str(p)).violations[0]["rule"] for p in CORPUS}
    assert {"single_entry", "lock_discipline", "stale_structure", "lost_store", "return_code",
            "async_clean", "crash"} <= rules


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_trace_replays_with_its_violation(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = load_trace(str(path))
    recorded = trace.violations
    assert recorded, f"{path.name} records no violation"
    assert trace.digest_ok
    assert main(["replay", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["identical"] is True
    assert [v["rule"] for v in report["violations"]] == [v["rule"] for v in recorded]
    assert [v["message"] for v in report["violations"]] == [v["message"] for v in recorded]


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_trace_is_small_enough_to_read(path: Path) -> None:
    trace = load_trace(str(path))
    assert trace.footer is not None
    assert trace.footer["steps"] <= 80, "a corpus trace should be shrunk"


# A trace of format version 1, written before the profiles had cluster sizes (its spec has
# no "cluster" key, which then meant 1): the corpus's lost_store trace as it was recorded.
FORMAT1 = (Path(__file__).resolve().parent / "format1"
           / "lost_store-invalidate_frees_dirty.trace.jsonl")


def test_a_format1_trace_replays_with_each_page_written_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    header = json.loads(FORMAT1.read_text().split("\n", 1)[0])
    assert header["version"] == 1 and "cluster" not in header["spec"]
    trace = load_trace(str(FORMAT1))
    assert trace.spec.cluster == 1  # what the missing key meant then, not manpage's 16
    assert main(["replay", str(FORMAT1), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["identical"] is True
    assert [v["message"] for v in report["violations"]] == [
        v["message"] for v in trace.violations]


def test_a_format2_trace_names_its_cluster_size() -> None:
    for path in CORPUS:
        header = json.loads(path.read_text().split("\n", 1)[0])
        assert header["version"] == 2 and isinstance(header["spec"]["cluster"], int)
