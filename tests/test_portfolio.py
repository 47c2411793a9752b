"""The adaptive portfolio (emulator/portfolio.py) and its use by explore and mutants.

* the portfolio's members include pos, as arms and as ``vmemu run --strategy portfolio``;
  a workload's arms are a team, chosen together, taking turns (random, pct(2), pos,
  random, pct(3), pos), and each execution reruns alone from the config it reports;
* the same seeds choose the same arms, in another process under another hash seed, and
  ``--jobs 2`` shards choose deterministically (each shard its own stream);
* teams are chosen by novelty over a floor: a novel team runs more, none starves;
  uniform, they take turns whatever their novelty (the baseline of the steering);
* a new final state on a spec never run before (a generated workload's) is no news;
* explore reports its coverage (text and --json), per arm;
* a failure the portfolio finds is reported as the member that ran it, and the printed
  rerun command reproduces it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from emulator.campaign import Config, run_campaign, run_shard
from emulator.cli import main
from emulator.config import RunConfig
from emulator.portfolio import Coverage, Portfolio, Tracker, arm_label, arms_for, teams_of
from emulator.sched.strategies import PosStrategy, make_strategy
from emulator.variants import BUILTIN

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("two_cleaners", "invalidate_shared_file", "random_mix")


def _portfolio(first_seed: int = 0) -> Portfolio:
    base = RunConfig("", variant="reference", strategy="portfolio")
    return Portfolio(arms_for(base, WORKLOADS), first_seed, variant=BUILTIN["reference"])


async def _choices(portfolio: Portfolio, executions: int) -> list[tuple[str, int]]:
    out = []
    for _ in range(executions):
        stepped = await portfolio.step()
        assert stepped is not None
        _i, run, _ex = stepped
        out.append((arm_label(run), run.seed))
    return out


CHOICES_SCRIPT = """
import json, sys, trio
sys.path.insert(0, "tests")
from test_portfolio import _choices, _portfolio
p = _portfolio(5)
print(json.dumps([_c for _c in trio.run(_choices, p, 80)]))
"""


# -- members ----------------------------------------------------------------------------------


def test_the_portfolio_arms_are_each_workload_under_each_member_including_pos() -> None:
    arms = arms_for(RunConfig("", strategy="portfolio"), ("two_cleaners", "random_mix"))
    assert [arm_label(a) for a in arms] == [
        f"{w}/{s}" for w in ("two_cleaners", "random_mix")
        for s in ("random", "pct(2)", "pct(3)", "pos")]
    assert all(a.seed == 0 for a in arms)
    # Another strategy is one arm per workload, as given.
    assert [arm_label(a) for a in arms_for(RunConfig("two_cleaners", strategy="pct",
                                                     pct_depth=4))] == ["two_cleaners/pct(4)"]


def test_a_workloads_arms_are_a_team_by_strategy() -> None:
    arms = arms_for(RunConfig("", strategy="portfolio"), ("two_cleaners", "random_mix"))
    assert teams_of(arms) == [[[0], [1, 2], [3]], [[4], [5, 6], [7]]]
    one = arms_for(RunConfig("", strategy="pct", pct_depth=4), ("two_cleaners", "random_mix"))
    assert teams_of(one) == [[[0]], [[1]]]


def test_a_teams_arms_take_turns_and_each_execution_reruns_alone() -> None:
    p = _portfolio(7)
    ran: dict[str, list[tuple[RunConfig, list[int]]]] = {}

    async def go() -> None:
        for _ in range(8 * len(p.teams)):
            stepped = await p.step()
            assert stepped is not None
            _i, run, ex = stepped
            ran.setdefault(run.workload, []).append((run, list(ex.decisions)))

    trio.run(go)
    assert set(ran) == set(WORKLOADS)
    cycle = ["random", "pct(2)", "pos", "random", "pct(3)", "pos"]
    for runs in ran.values():
        labels = [arm_label(run, workload=False) for run, _ in runs]
        assert labels == (cycle * len(labels))[:len(labels)]
    for run, decisions in (r for runs in ran.values() for r in runs[:5]):
        alone = run.machine()
        assert list(trio.run(alone.execute, run.seed, run.spec()).decisions) == decisions


def test_a_teams_arms_share_one_machine_each_running_its_own_strategy() -> None:
    p = _portfolio(11)
    steps: list[tuple[int, RunConfig, list[int]]] = []

    async def go() -> None:
        for _ in range(6 * len(p.teams)):
            stepped = await p.step()
            assert stepped is not None
            i, run, ex = stepped
            steps.append((i, run, list(ex.decisions)))

    trio.run(go)
    ran = {i for i, _, _ in steps}
    assert len(ran) > len(WORKLOADS), "several arms of a team ran"
    machines = {id(p.machine(i)) for i in ran}
    assert len(machines) == len(WORKLOADS)  # one machine (and tracker) per workload
    assert len({id(p.strategy(i)) for i in ran}) == len(ran)  # a strategy per arm
    for i in ran:
        assert p.machine(i).strategy is p.strategy(i)
    # Whichever arm ran last on it, the machine reruns an earlier arm's execution with
    # that arm's strategy (as a hunt's report records it, mutants._save).
    for i, run, decisions in steps[:8]:
        machine = p.machine(i)
        assert list(trio.run(machine.execute, run.seed, run.spec()).decisions) == decisions


def test_one_portfolio_execution_runs_pos_when_its_seed_picks_it() -> None:
    strategy = make_strategy("portfolio")
    strategy.reset(3)
    assert isinstance(strategy.active, PosStrategy)  # type: ignore[attr-defined]
    assert strategy.wants_events  # the machine passes events to pos
    strategy.reset(4)
    assert not strategy.wants_events


# -- determinism ------------------------------------------------------------------------------


def test_the_same_seeds_choose_the_same_arms_in_other_processes_under_other_hash_seeds() -> None:
    here = trio.run(_choices, _portfolio(5), 80)
    assert len({arm for arm, _ in here}) > 6, "the choice must vary over the arms"
    assert [seed for _, seed in here] == list(range(5, 85))
    for hash_seed in ("1", "2"):
        proc = subprocess.run(
            [sys.executable, "-c", CHOICES_SCRIPT], cwd=ROOT, capture_output=True, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": hash_seed},
            timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        assert [tuple(c) for c in json.loads(proc.stdout)] == here


def test_another_first_seed_chooses_other_arms() -> None:
    a = trio.run(_choices, _portfolio(5), 60)
    b = trio.run(_choices, _portfolio(6), 60)
    assert [arm for arm, _ in a] != [arm for arm, _ in b]


def _arms_of(summary: Any) -> dict[str, int]:
    return {name: s.executions for name, s in summary.arms.items()}


def test_two_jobs_choose_like_their_shards_run_alone() -> None:
    run = RunConfig("invalidate_shared_file", variant="invalidate_frees_dirty")
    cfg = Config(run, 120, time_budget=None, stop_on_first=False)
    parallel = run_campaign(cfg, jobs=2)
    again = run_campaign(cfg, jobs=2)
    shards = [trio.run(run_shard, cfg, i, 2) for i in range(2)]
    assert parallel.executions == 120
    found = [(f.seed, f.run) for f in parallel.failures]
    assert found, "the mutant must fail on some seeds"
    assert found == [(f.seed, f.run) for f in again.failures]
    assert sorted(found, key=lambda x: x[0]) == sorted(
        ((f.seed, f.run) for s in shards for f in s.failures), key=lambda x: x[0])
    assert _arms_of(parallel) == _arms_of(again)
    for name, n in _arms_of(parallel).items():
        assert n == sum(s.arms[name].executions for s in shards)


# -- the choice -------------------------------------------------------------------------------


def test_a_novel_team_runs_more_and_no_team_starves() -> None:
    p = _portfolio()
    p.untried.clear()  # as if every team had run once
    p.novelty = [0.0] * len(p.teams)
    p.novelty[1] = 1.0
    counts = [0] * len(p.teams)
    draws = 6000
    for _ in range(draws):
        counts[p.choose_team()] += 1
    floor = p.epsilon / len(p.teams)
    assert counts[1] / draws == pytest.approx(floor + (1 - p.epsilon), abs=0.03)
    for t, n in enumerate(counts):
        if t != 1:
            assert n / draws == pytest.approx(floor, abs=0.02)


def test_uniform_teams_take_turns_whatever_their_novelty() -> None:
    base = RunConfig("", variant="reference", strategy="portfolio")
    p = Portfolio(arms_for(base, WORKLOADS), 0, variant=BUILTIN["reference"], uniform=True)
    p.novelty = [0.0] * len(p.teams)
    p.novelty[1] = 1.0
    rounds = 6
    choices = [p.choose() for _ in range(rounds * len(p.teams))]
    assert [p.team_of[i] for i in choices] == list(range(len(p.teams))) * rounds
    # Six turns of a team: random and pos twice, each PCT depth once.
    assert [choices.count(i) for i in range(len(p.arms))] == [2, 1, 1, 2] * len(WORKLOADS)


def test_every_team_runs_once_in_order_before_any_is_preferred() -> None:
    p = _portfolio()
    choices = trio.run(_choices, p, len(p.teams))
    # Each workload's first turn: its first strategy, random.
    assert [arm for arm, _ in choices] == [f"{w}/random" for w in WORKLOADS]


def test_a_new_final_state_of_a_spec_never_run_before_is_no_news() -> None:
    run = RunConfig("random_mix", strategy="random")
    machine = run.machine()
    tracker = Tracker()
    machine.watchers.append(tracker.attach)
    cov = Coverage()

    async def novelty(seed: int, spec_seed: int) -> int:
        spec = run.spec(spec_seed)
        ex = await machine.execute(seed, spec)
        pairs = len(cov.pairs)
        new = tracker.account(cov, ex, spec)
        return new - (len(cov.pairs) > pairs)  # what the interleaving and final state added

    assert trio.run(novelty, 0, 0) == 0  # a new spec: its interleaving and state count nothing
    assert len(cov.finals) == len(cov.interleavings) == 1  # but are counted as coverage
    # The same spec under other schedules: a new interleaving or final state is news.
    assert max(trio.run(novelty, seed, 0) for seed in range(1, 30)) > 0


def test_an_interleaving_is_the_digest_of_its_pairs_reprs_sorted() -> None:
    # The accounting renders each pair once per tracker and sorts the texts: the digest
    # must be a function of the set of pairs alone, so that shards and reruns count
    # the same interleavings.
    run = RunConfig("two_cleaners", strategy="random")
    machine = run.machine()
    tracker = Tracker()
    machine.watchers.append(tracker.attach)
    cov = Coverage()
    spec = run.spec()
    for seed in range(12):
        ex = trio.run(machine.execute, seed, spec)
        text = "[" + ", ".join(sorted(repr(pair) for pair in set(tracker.seen))) + "]"
        expected = hashlib.blake2b(text.encode(), digest_size=12).digest()
        assert tracker.seen
        tracker.account(cov, ex, spec)
        assert expected in cov.interleavings
    assert len(cov.interleavings) > 1 and tracker.shown


def test_a_tracker_reused_counts_as_a_new_one_even_on_another_current_op() -> None:
    # One tracker watches every execution (its handlers built once, its containers
    # emptied at each attach); a fresh tracker per execution must see the same pairs,
    # also when something else put the kernel's current_op there first.
    run = RunConfig("two_cleaners", strategy="random")
    spec = run.spec()
    reused = Tracker()
    machine = run.machine()
    machine.watchers.append(reused.attach)
    foreign = run.machine()
    foreign.watchers.append(lambda k: k.shared.setdefault("current_op", {}))
    reused_foreign = Tracker()
    foreign.watchers.append(reused_foreign.attach)
    distinct = set()
    for seed in range(8):
        fresh = Tracker()
        alone = run.machine()
        alone.watchers.append(fresh.attach)
        trio.run(alone.execute, seed, spec)
        trio.run(machine.execute, seed, spec)
        trio.run(foreign.execute, seed, spec)
        assert fresh.seen and reused.seen == fresh.seen == reused_foreign.seen
        assert reused_foreign.kernel is not None
        assert reused_foreign.kernel.shared["current_op"] is not reused_foreign.ops
        distinct.add(frozenset(fresh.seen))
    assert len(distinct) > 1, "the seeds must differ"


# -- the report -------------------------------------------------------------------------------


def test_explore_reports_its_coverage_by_arm(capsys: Any) -> None:
    argv = ["explore", "invalidate_shared_file", "--iterations", "120", "--seed", "3"]
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    cov = data["coverage"]
    assert set(cov["arms"]) == {"random", "pct(2)", "pct(3)", "pos"}
    assert sum(a["executions"] for a in cov["arms"].values()) == data["executions"] == 120
    assert all(a["executions"] > 0 for a in cov["arms"].values())
    assert cov["conflict_pairs"] > 0 and 1 < cov["interleavings"] < 120
    assert all(0 < a["novel"] <= a["executions"] for a in cov["arms"].values())
    assert main(argv) == 0
    text = capsys.readouterr().out
    seen = next(line for line in text.splitlines() if line.startswith("seen: "))
    assert f"{cov['conflict_pairs']} conflict pairs, {cov['interleavings']} interleavings" in seen
    assert f"pos {cov['arms']['pos']['executions']} ({cov['arms']['pos']['novel']} new)" in seen


def test_a_failure_the_portfolio_finds_reruns_with_its_printed_command(
    capsys: Any, tmp_path: Path,
) -> None:
    # skip_busy_page is found by pos on invalidate_shared_file far more often than by the
    # others (measured: 7% of pos's executions, under 1% of pct(3)'s).
    code = main(["explore", "invalidate_shared_file", "--variant", "skip_busy_page",
                 "--iterations", "2000", "--save-dir", str(tmp_path), "--json"])
    assert code == 1
    data = json.loads(capsys.readouterr().out)
    assert data["strategy"] == "portfolio"
    violation = data["violations"][0]
    argv = shlex.split(violation["rerun"])
    assert argv[:2] == ["vmemu", "run"]
    strategy = argv[argv.index("--strategy") + 1]
    assert strategy in ("random", "pct", "pos")  # the member, not the portfolio
    code = main([*argv[1:], "--json"])
    again = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [(v["rule"], v["step"], v["message"]) for v in again["violations"]] == [
        (v["rule"], v["step"], v["message"]) for v in data["violations"]
        if v["seed"] == violation["seed"]]


# -- the tracker's twins: a sealed kernel calls them with the fields -------------------


def _pairs_seen(workload: str, strategy: str, seed: int, sealed: bool,
                monkeypatch: pytest.MonkeyPatch) -> tuple[set[Any], dict[Any, Any]]:
    from emulator.kern.kernel import Kernel

    with monkeypatch.context() as patch:
        if not sealed:  # every emitter builds its event and emits it
            patch.setattr(Kernel, "seal", lambda self: None)
        cfg = RunConfig(workload, strategy=strategy, seed=seed)
        machine = cfg.machine()
        tracker = Tracker()
        machine.watchers.append(tracker.attach)
        trio.run(machine.execute, seed, cfg.spec())
    return set(tracker.seen), dict(tracker.last)


@pytest.mark.parametrize("workload", ["writers_vs_msync", "teardown_during_flush",
                                      "pageout_vs_msync", "three_processes"])
@pytest.mark.parametrize("strategy", ["random", "pos"])
def test_the_trackers_twins_note_what_its_event_handlers_note(
    workload: str, strategy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for seed in range(4):
        sealed = _pairs_seen(workload, strategy, seed, True, monkeypatch)
        unsealed = _pairs_seen(workload, strategy, seed, False, monkeypatch)
        assert sealed[0] and sealed == unsealed


def test_a_sealed_kernel_builds_no_hot_event_for_the_tracker(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from emulator.kern.kernel import EMITTERS
    from emulator.portfolio import _Notes

    hot = {cls for cls, _ in EMITTERS}
    given: list[type] = []
    page, lock, access = _Notes.page, _Notes.lock, _Notes.access
    monkeypatch.setattr(_Notes, "page", lambda s, st, a, ev: (given.append(type(ev)),
                                                               page(s, st, a, ev))[1])
    monkeypatch.setattr(_Notes, "lock", lambda s, st, a, ev: (given.append(type(ev)),
                                                               lock(s, st, a, ev))[1])
    monkeypatch.setattr(_Notes, "access", lambda s, st, a, ev: (given.append(type(ev)),
                                                                 access(s, st, a, ev))[1])
    # The patched methods have no twins: the emitters build events for them.
    assert _pairs_seen("writers_vs_msync", "random", 1, True, monkeypatch)[0]
    assert hot & set(given)
    # With the methods as they are, the twins run and no hot event reaches them.
    monkeypatch.undo()
    given.clear()
    monkeypatch.setattr(_Notes, "page", lambda s, st, a, ev: (given.append(type(ev)),
                                                               page(s, st, a, ev))[1])
    from emulator.kern.kernel import TWINS

    for cls in hot:  # the twins stay keyed by the original functions: re-key them
        for fn in (page,):
            if (cls, fn) in TWINS:
                monkeypatch.setitem(TWINS, (cls, _Notes.page), TWINS[cls, fn])
    assert _pairs_seen("writers_vs_msync", "random", 1, True, monkeypatch)[0]
    assert not hot & set(given)


async def test_a_hunts_machines_share_one_installer_and_build_the_checkers_once() -> None:
    from emulator.mutants import _portfolio
    from emulator.variants import MUTANTS

    variant = MUTANTS["fault_dirty_before_busy"]
    portfolio = _portfolio(variant, "modern", "portfolio")
    for _ in range(3 * len(portfolio.teams)):  # every workload's machine, several times
        await portfolio.step()
    machines = [m for m in portfolio.machines if m is not None]
    assert len(machines) == len(portfolio.teams) > 1
    assert all(m.installer is machines[0].installer for m in machines)
    assert machines[0].installer.built == 1
