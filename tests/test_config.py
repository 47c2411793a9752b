"""One run configuration (emulator/config.py) and the commands printed from it.

* every printed rerun command reproduces its violation (rule, step and message), for every
  registered strategy and every strategy option, through ``explore``, ``run``, ``--json``
  and the mutants self-test; dfs prints its trace's replay command instead, which does;
* the command line round-trips: parsing ``to_argv()`` gives the config back;
* the trace header round-trips: ``from_header(to_header(c))`` is ``c`` with its profile and
  parameters pinned, and the regression corpus's headers are rebuilt byte for byte.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import trio

from emulator.cli import build_parser, main, run_config
from emulator.config import (
    DEFAULT_PREEMPTION_BOUND,
    FOLLOW,
    STRATEGY_OPTIONS,
    RunConfig,
    auto_reduction,
)
from emulator.mutants import run_mutants
from emulator.sched.strategies import STRATEGIES
from emulator.trace.format import TraceWriter
from emulator.trace.reader import load_trace

ROOT = Path(__file__).resolve().parent.parent
CORPUS = sorted((ROOT / "traces").glob("*.jsonl"))
VIOLATION = re.compile(r"^(?:reproduced )?VIOLATION (\S+) at step (\d+)(?: \(seed \d+\))?: (.*)$")

# (workload, variant, options): each explore finds a violation in its first few executions
# (measured).  The options are the ones the rerun command must carry.
CASES: list[tuple[str, str, list[str]]] = [
    ("two_cleaners", "no_map_lock", ["--strategy", "random"]),
    ("two_cleaners", "no_map_lock", ["--strategy", "pos"]),
    ("two_cleaners", "no_map_lock", []),  # portfolio, the default
    ("two_cleaners", "no_map_lock", ["--strategy", "pct"]),
    # The issue's example: without --pct-depth 1, seed 7 runs clean.
    ("two_cleaners", "no_map_lock", ["--strategy", "pct", "--pct-depth", "1"]),
    ("two_cleaners", "no_map_lock", ["--strategy", "pct", "--pct-depth", "2"]),
    ("two_cleaners", "no_map_lock", ["--strategy", "pct", "--pct-depth", "5"]),
    ("two_cleaners", "no_map_lock", ["--strategy", "dfs"]),
    ("two_cleaners", "no_map_lock", ["--strategy", "dfs", "--preemption-bound", "0"]),
    ("two_cleaners", "no_map_lock", ["--strategy", "dfs", "--preemption-bound", "none"]),
    ("two_cleaners", "no_map_lock", ["--strategy", "dfs", "--reduction", "on"]),
    ("two_cleaners", "no_map_lock", ["--strategy", "dfs", "--preemption-bound", "none",
                                     "--reduction", "off"]),
    # A step bound below the race: the run starves at step 21, only with the bound.
    ("two_cleaners", "no_map_lock", ["--strategy", "pct", "--pct-depth", "1",
                                     "--max-steps", "20"]),
    # swapped_codes fails only under freebsd5's code table.
    ("msync_vs_munmap", "swapped_codes", ["--strategy", "random", "--profile", "freebsd5"]),
    ("two_cleaners", "no_map_lock", ["--strategy", "random", "--param", "pages=2",
                                     "--param", "ops=3"]),
    ("two_cleaners", "no_map_lock", ["--strategy", "pos", "--seed", "100"]),
]


def _ids(case: tuple[str, str, list[str]]) -> str:
    return " ".join([case[0], case[1], *case[2]])


def _violations(text: str) -> list[tuple[str, int, str]]:
    return [(m[1], int(m[2]), m[3]) for m in map(VIOLATION.match, text.splitlines()) if m]


def _command(text: str, label: str) -> str | None:
    found = [line.split(": ", 1)[1] for line in text.splitlines()
             if line.startswith(f"  {label}: ")]
    assert len(found) <= 1, text
    return found[0] if found else None


def _run(capsys: pytest.CaptureFixture[str], command: str) -> tuple[int, str]:
    argv = shlex.split(command)
    assert argv[0] == "vmemu"
    code = main(argv[1:])
    return code, capsys.readouterr().out


def test_the_cases_cover_every_strategy_and_every_option() -> None:
    strategies = {"portfolio"}  # the default, in a case without --strategy
    options: set[str] = set()
    for _, _, opts in CASES:
        strategies |= {opts[i + 1] for i, w in enumerate(opts) if w == "--strategy"}
        options |= {w for w in opts if w.startswith("--")}
    assert strategies == set(STRATEGIES)
    flags = {"--" + name.replace("_", "-") for names in STRATEGY_OPTIONS.values()
             for name in names}
    assert flags | {"--max-steps", "--profile", "--param", "--seed"} <= options


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_the_printed_rerun_command_reproduces_the_violation(
    case: tuple[str, str, list[str]], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    workload, variant, opts = case
    code, out = _run(capsys, shlex.join(["vmemu", "explore", workload, "--variant", variant,
                                         *opts, "--save-dir", str(tmp_path)]))
    assert code == 1, out
    found = _violations(out)
    assert found, out
    rerun = _command(out, "rerun with")
    if "dfs" in opts:
        # dfs's executions are not one seed each: its failures replay from their traces.
        assert rerun is None, out
        replay = _command(out, "replay with")
        assert replay is not None, out
        code, again = _run(capsys, replay)
        assert code == 0, again
    else:
        assert rerun is not None, out
        for word in opts:  # nothing the user gave is dropped
            assert word in shlex.split(rerun), (word, rerun)
        code, again = _run(capsys, rerun)
        assert code == 1, again
        assert _command(again, "rerun with") == rerun  # run prints the same command
    assert _violations(again) == found


@pytest.mark.parametrize("case", [c for c in CASES if "dfs" not in c[2]], ids=_ids)
def test_the_json_rerun_and_the_saved_traces_config_reproduce_the_violation(
    case: tuple[str, str, list[str]], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    workload, variant, opts = case
    code, out = _run(capsys, shlex.join(["vmemu", "explore", workload, "--variant", variant,
                                         *opts, "--save-dir", str(tmp_path), "--json"]))
    assert code == 1
    v = json.loads(out)["violations"][0]
    code, again = _run(capsys, v["rerun"])
    assert code == 1
    assert _violations(again)[0] == (v["rule"], v["step"], v["message"])
    # The trace header gives the same run back, its profile and parameters pinned.
    config = load_trace(v["trace"]).config
    code, again = _run(capsys, config.command())
    assert code == 1
    assert _violations(again)[0] == (v["rule"], v["step"], v["message"])


def test_run_prints_a_rerun_command_even_for_dfs(capsys: pytest.CaptureFixture[str]) -> None:
    # One run is the first schedule of a fresh dfs: the same command runs it again.  (The
    # step bound makes that schedule starve.)
    command = ("vmemu run two_cleaners --variant no_map_lock --strategy dfs "
               "--preemption-bound 0 --seed 0 --max-steps 10")
    code, out = _run(capsys, command)
    assert code == 1
    assert _command(out, "rerun with") == command
    assert _violations(out)


def test_the_mutants_report_reruns_its_violation_with_its_strategy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = trio.run(run_mutants, 1.0, "pct", ["no_map_lock"])
    hunt = report["mutants"][0]
    assert hunt["caught"]
    assert "--strategy pct" in hunt["replay"]
    code, out = _run(capsys, hunt["replay"])
    assert code == 1
    assert hunt["rule"] in [rule for rule, _, _ in _violations(out)]


# -- the command line round-trips --------------------------------------------------------

CONFIGS = [
    RunConfig("two_cleaners"),
    RunConfig("two_cleaners", seed=7, max_steps=500),
    RunConfig("random_mix", params=(("seed", "9"), ("cpus", "2")), profile="freebsd5"),
    RunConfig("a dir/my spec.json", variant="my variants.py:clean", strategy="random"),
    RunConfig("two_cleaners", strategy="pct", pct_depth=1, seed=3),
    RunConfig("two_cleaners", strategy="pos"),
    RunConfig("two_cleaners", strategy="dfs"),
    RunConfig("two_cleaners", strategy="dfs", preemption_bound=0, reduction=True),
    RunConfig("two_cleaners", strategy="dfs", preemption_bound=None),
    RunConfig("two_cleaners", strategy="dfs", preemption_bound=None, reduction=False),
    RunConfig("two_cleaners", variant="no_map_lock", strategy="portfolio", seed=12),
]


def _parse(command: str) -> RunConfig:
    argv = shlex.split(command)
    assert argv[:2] == ["vmemu", "run"]
    return run_config(build_parser().parse_args(argv[1:]))


@pytest.mark.parametrize("config", CONFIGS, ids=repr)
def test_parsing_the_command_gives_the_config_back(config: RunConfig) -> None:
    assert _parse(config.command()) == config
    assert shlex.split(config.command())[1:] == config.to_argv()


def test_the_command_names_only_what_differs_from_the_defaults() -> None:
    assert RunConfig("two_cleaners").command() == "vmemu run two_cleaners --seed 0"
    assert (RunConfig("two_cleaners", strategy="dfs", preemption_bound=None).command()
            == "vmemu run two_cleaners --strategy dfs --preemption-bound none --seed 0")
    assert (RunConfig("two_cleaners", strategy="dfs", reduction=True).command()
            == "vmemu run two_cleaners --strategy dfs --reduction on --seed 0")


def test_options_the_strategy_does_not_read_are_dropped() -> None:
    # Equal configs run equal executions: pct's depth means nothing to random.
    loose = RunConfig("two_cleaners", strategy="random", pct_depth=5, preemption_bound=None,
                      reduction=True)
    assert loose == RunConfig("two_cleaners", strategy="random")
    assert "--pct-depth" not in loose.to_argv()
    assert RunConfig("w", strategy="pct", pct_depth=5) != RunConfig("w", strategy="pct")
    dfs = RunConfig("w", strategy="dfs", preemption_bound=None)
    assert dfs.reduction is auto_reduction(None) is True
    assert RunConfig("w", strategy="dfs").reduction is auto_reduction(2) is False
    assert DEFAULT_PREEMPTION_BOUND == 2


def test_params_are_kept_sorted_so_their_order_does_not_matter() -> None:
    a = RunConfig("random_mix", params=(("ops", "3"), ("cpus", "2")))
    assert a == RunConfig("random_mix", params=(("cpus", "2"), ("ops", "3")))
    assert a.to_argv()[2:6] == ["--param", "cpus=2", "--param", "ops=3"]


# -- the trace header round-trips --------------------------------------------------------

LOADABLE = [c for c in CONFIGS if not c.workload.endswith(".json")]


@pytest.mark.parametrize("config", LOADABLE, ids=repr)
def test_the_header_gives_the_config_back_pinned(config: RunConfig) -> None:
    pinned = config.pinned()
    assert RunConfig.from_header(config.to_header()) == pinned
    assert RunConfig.from_header(pinned.to_header()) == pinned
    assert pinned.to_header() == config.to_header()  # the same run, the same header
    assert pinned.spec() == config.spec()


def test_a_spec_files_header_gives_its_config_back(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({
        "profile": "modern", "files": {"f": {"pages": 1}},
        "processes": {"p0": {"mappings": [{"addr": "0x10000", "pages": 1, "file": "f"}]}},
        "cpus": [{"process": "p0", "program": [["msync", "0x10000", 4096, "sync"]]}]}))
    config = RunConfig(str(path), strategy="pct", seed=2)
    assert config.to_header()["params"] == {}
    assert RunConfig.from_header(config.to_header()) == config.pinned()
    assert config.pinned().profile == "modern"


def test_a_pinned_config_is_its_own_pinned_form() -> None:
    config = RunConfig("two_cleaners", params=(("ops", "2"), ("pages", "1"), ("rounds", "1")),
                       profile="manpage", strategy="pct", pct_depth=2, seed=4)
    assert config.pinned() == config
    assert RunConfig.from_header(config.to_header()) == config


def test_a_followed_run_says_follow_in_its_header() -> None:
    config = RunConfig("two_cleaners", strategy=FOLLOW)
    assert config.to_header()["strategy"] == {"name": FOLLOW}
    assert not config.seeded
    assert RunConfig.from_header(config.to_header()) == config.pinned()


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_the_corpus_headers_are_rebuilt_byte_for_byte(path: Path) -> None:
    trace = load_trace(str(path))
    fields: dict[str, Any] = trace.config.to_header(trace.spec)
    fields["emulator"] = trace.header["emulator"]  # the version that wrote it
    out = io.StringIO()
    TraceWriter(out).header(**fields)
    assert out.getvalue() == path.read_text().split("\n", 1)[0] + "\n"


def test_the_corpus_is_not_empty() -> None:
    assert len(CORPUS) >= 5


def test_replace_keeps_the_config_canonical() -> None:
    config = dataclasses.replace(RunConfig("w", strategy="pct", pct_depth=4), strategy="pos")
    assert config == RunConfig("w", strategy="pos")


@pytest.mark.parametrize("config", CONFIGS, ids=repr)
def test_with_seed_is_replace_with_the_seed(config: RunConfig) -> None:
    before = config.seed
    for seed in (0, 7, before):
        fast = config.with_seed(seed)
        slow = dataclasses.replace(config, seed=seed)
        assert fast == slow and fast.seed == seed and type(fast) is type(config)
        assert fast.to_argv() == slow.to_argv() and fast.driver == slow.driver
    assert config.seed == before  # a copy: the original keeps its seed
