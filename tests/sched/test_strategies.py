"""The scheduling strategies (emulator/sched/strategies.py).

* random, pct, pos and portfolio are deterministic per seed: the same seed gives the same
  decisions, from ``choose`` alone and in a fresh machine or a reused one, and different seeds
  give different schedules; replay follows its decision list and diverges loudly;
* dfs enumerates exactly the known schedule counts on a two-CPU ``yield`` workload -- without a
  preemption bound C(a+b+2, a+1), with a bound the count of an independent brute-force
  enumeration -- exhausts its space, and its reduction never adds schedules;
* pct of depth 2 finds a depth-2 mutant within its bound's expected number of runs, and pos
  catches the easy mutants.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from emulator.check import all_checkers
from emulator.errors import ReplayDiverged
from emulator.kern.events import (
    WATCHED,
    Alloc,
    Busy,
    Call,
    Dirty,
    IoDone,
    IoIssue,
    Lock,
    MapAccess,
    Pagein,
    PteEnter,
    Read,
    RemoveWrite,
    Store,
    Unbusy,
    Unlock,
    Wait,
    Woke,
)
from emulator.kern.kernel import EMITTERS, TWINS
from emulator.machine import Machine
from emulator.sched.strategies import (
    _FOOTPRINTS,
    ANY,
    DfsStrategy,
    PctStrategy,
    PosStrategy,
    RandomStrategy,
    ReplayStrategy,
    footprint_keys,
    make_strategy,
)
from emulator.spec import Spec, parse_spec
from emulator.variants import BUILTIN, MUTANTS, load_variant
from workloads import build_workload

SEEDED = ("random", "pct", "pos", "portfolio")
ROOT = str(Path(__file__).resolve().parents[2])


def _machine(workload: str, strategy: Any, variant: str = "reference") -> Machine:
    v = load_variant(variant)
    spec = build_workload(workload, {}, 0, v.profile)
    return Machine(spec, v, strategy, checkers=all_checkers())


Run = tuple[str, int, tuple[int, ...]]  # outcome, steps, decisions


async def _decisions(machine: Machine, workload: str, seed: int) -> Run:
    ex = await machine.execute(seed, build_workload(workload, {}, seed, machine.variant.profile))
    return ex.outcome, ex.steps, tuple(ex.decisions)


# -- choose() alone: the seed decides -----------------------------------------------------------

# Runnable sets a strategy is asked about, in turn (agents come and go as they sleep and wake).
RUNNABLE = [(0, 1, 2), (0, 2), (1, 2, 3), (0, 1), (0, 1, 2, 3)]


def _choices(strategy: Any, seed: int, decisions: int = 300) -> tuple[int, ...]:
    strategy.reset(seed)
    return tuple(strategy.choose(RUNNABLE[i % len(RUNNABLE)], -1) for i in range(decisions))


@pytest.mark.parametrize("name", SEEDED)
def test_same_seed_gives_the_same_choices(name: str) -> None:
    strategy = make_strategy(name)
    first = _choices(strategy, 5)
    _choices(strategy, 6)  # another execution in between changes nothing
    assert _choices(strategy, 5) == first
    assert _choices(make_strategy(name), 5) == first


@pytest.mark.parametrize("name", SEEDED)
def test_different_seeds_give_different_choices(name: str) -> None:
    runs = {_choices(make_strategy(name), seed) for seed in range(8)}
    assert len(runs) == 8


@pytest.mark.parametrize("name", SEEDED)
def test_every_choice_is_one_of_the_runnable_agents(name: str) -> None:
    strategy = make_strategy(name)
    strategy.reset(3)
    for i in range(200):
        runnable = RUNNABLE[i % len(RUNNABLE)]
        assert strategy.choose(runnable, -1) in runnable


def test_replay_follows_its_decision_list() -> None:
    replay = ReplayStrategy([2, 0, 1])
    replay.reset(0)
    assert [replay.choose((0, 1, 2), -1) for _ in range(3)] == [2, 0, 1]


def test_replay_starts_over_at_every_reset() -> None:
    replay = ReplayStrategy([1, 0])
    replay.reset(0)
    replay.choose((0, 1), -1)
    replay.reset(99)  # the seed plays no part
    assert replay.choose((0, 1), -1) == 1


def test_replay_diverges_when_the_recorded_agent_cannot_run() -> None:
    replay = ReplayStrategy([0, 2])
    replay.reset(0)
    replay.choose((0, 1), -1)
    with pytest.raises(ReplayDiverged, match=r"decision 1: recorded cpu 2 is not runnable "
                                             r"\(runnable \[0, 1\]\)"):
        replay.choose((0, 1), -1)


def test_replay_diverges_when_the_recording_runs_out() -> None:
    replay = ReplayStrategy([1])
    replay.reset(0)
    replay.choose((0, 1), -1)
    with pytest.raises(ReplayDiverged, match="decision 1: the recording has no more decisions"):
        replay.choose((0, 1), -1)


# -- determinism per seed ---------------------------------------------------------------------


@pytest.mark.parametrize("workload", ["writers_vs_msync", "random_mix"])
@pytest.mark.parametrize("name", SEEDED)
async def test_seeded_strategy_is_deterministic_per_seed(name: str, workload: str) -> None:
    seeds = range(8)
    first = _machine(workload, make_strategy(name))
    runs = [await _decisions(first, workload, s) for s in seeds]
    # The same machine again (reset between executions), in reverse order ...
    again = {s: await _decisions(first, workload, s) for s in reversed(seeds)}
    # ... and a fresh machine with a fresh strategy object.
    fresh = _machine(workload, make_strategy(name))
    other = [await _decisions(fresh, workload, s) for s in seeds]
    for s in seeds:
        assert runs[s] == again[s] == other[s], f"{name} seed {s} is not reproducible"
        assert len(runs[s][2]) > 10  # a real schedule with many decisions
    # Different seeds give different schedules (pct may map two seeds to one schedule when
    # their priorities agree and the change points fall past the end: allow a little).
    distinct = {r[2] for r in runs}
    assert len(distinct) >= 6, f"{name}: only {len(distinct)} distinct schedules of 8 seeds"
    assert runs[0][2] != runs[1][2]


def test_portfolio_seed_picks_its_member() -> None:
    strategy = make_strategy("portfolio")
    picked = []
    for seed in range(8):
        strategy.reset(seed)
        picked.append(strategy.active.describe())  # type: ignore[attr-defined]
    assert picked[:4] == picked[4:]
    assert [p["name"] for p in picked[:4]] == ["random", "pct", "pct", "pos"]
    assert [p.get("depth") for p in picked[:4]] == [None, 2, 3, None]


def test_a_portfolio_hands_the_scheduler_its_active_members_choose() -> None:
    mixed, alone = make_strategy("portfolio"), make_strategy("portfolio")
    for seed in range(8):
        mixed.reset(seed)
        alone.reset(seed)
        chooser = mixed.chooser()
        assert chooser == mixed.active.chooser()  # type: ignore[attr-defined]
        assert ([chooser((0, 1, 2), 0) for _ in range(20)]
                == [alone.choose((0, 1, 2), 0) for _ in range(20)])


# -- dfs: exact counts on a two-CPU yield workload --------------------------------------------


def _yield_spec(a: int, b: int) -> Spec:
    return parse_spec({
        "files": {},
        "processes": {"p0": {"mappings": []}},
        "cpus": [
            {"process": "p0", "program": [["yield"]] * a},
            {"process": "p0", "program": [["yield"]] * b},
        ],
    }, source="test")


def _segment_orders(a: int, b: int, bound: int | None) -> set[tuple[int, ...]]:
    """Brute force: every interleaving of cpu0's a+1 and cpu1's b+1 segments with at most
    ``bound`` preemptions, a preemption being a switch away from a CPU with segments left."""
    total = a + b + 2
    out = set()
    for ones in itertools.combinations(range(total), b + 1):
        seq = tuple(1 if i in ones else 0 for i in range(total))
        preemptions = sum(
            1 for i in range(total - 1)
            if seq[i] != seq[i + 1] and seq[i] in seq[i + 1:]
        )
        if bound is None or preemptions <= bound:
            out.add(seq)
    return out


def _order_of(decisions: list[int], a: int, b: int) -> tuple[int, ...]:
    """The segment order an execution ran: its decisions, then the survivor's last segments.

    Every decision point has both CPUs runnable, so decision i picks who runs segment i; once
    one CPU finishes, the other runs alone without decisions.
    """
    left = {0: a + 1, 1: b + 1}
    for d in decisions:
        left[d] -= 1
    assert min(left.values()) == 0
    survivor = 0 if left[0] else 1
    return (*decisions, *[survivor] * left[survivor])


async def _enumerate(spec: Spec, strategy: DfsStrategy, limit: int = 5000) -> list[list[int]]:
    machine = Machine(spec, load_variant("reference"), strategy, checkers=all_checkers())
    runs = []
    while not strategy.exhausted:
        ex = await machine.execute(0)
        if ex.outcome != "pruned":
            assert ex.outcome == "ok", ex.detail
            runs.append(ex.decisions)
        assert len(runs) <= limit, "dfs does not terminate"
    return runs


CASES = [(0, 0), (1, 0), (0, 2), (1, 1), (2, 1), (2, 2), (3, 2), (3, 3), (4, 2), (5, 1)]


@pytest.mark.parametrize(("a", "b"), CASES)
async def test_dfs_without_bound_enumerates_every_interleaving(a: int, b: int) -> None:
    strategy = DfsStrategy(None, False)
    runs = await _enumerate(_yield_spec(a, b), strategy)
    assert strategy.exhausted
    assert strategy.schedules == len(runs) == math.comb(a + b + 2, a + 1)
    assert strategy.pruned == 0
    orders = [_order_of(d, a, b) for d in runs]
    assert len(set(orders)) == len(orders), "a schedule ran twice"
    assert set(orders) == _segment_orders(a, b, None)


@pytest.mark.parametrize(("a", "b"), CASES)
@pytest.mark.parametrize("bound", [0, 1, 2, 3])
async def test_dfs_preemption_bound_matches_brute_force(a: int, b: int, bound: int) -> None:
    expected = _segment_orders(a, b, bound)
    strategy = DfsStrategy(bound, False)
    runs = await _enumerate(_yield_spec(a, b), strategy)
    assert strategy.exhausted
    orders = [_order_of(d, a, b) for d in runs]
    assert strategy.schedules == len(orders) == len(expected)
    assert set(orders) == expected
    # With the reduction on: never more schedules (yields touch nothing, so here the same).
    reduced = DfsStrategy(bound, True)
    runs_reduced = await _enumerate(_yield_spec(a, b), reduced)
    assert reduced.exhausted
    assert reduced.schedules == len(runs_reduced) <= strategy.schedules
    assert {_order_of(d, a, b) for d in runs_reduced} <= expected


def test_brute_force_enumerator_by_hand() -> None:
    # The enumerator the dfs counts are checked against, on a case small enough to do by hand:
    # a = b = 1: 0011 (0 preemptions), 0110, 1001 (1), 0101, 1010 (2), 1100 (0).
    assert len(_segment_orders(1, 1, 0)) == 2
    assert _segment_orders(1, 1, 1) == {(0, 0, 1, 1), (1, 1, 0, 0), (0, 1, 1, 0), (1, 0, 0, 1)}
    assert len(_segment_orders(1, 1, None)) == 6
    # Bound 0 is always the two "one CPU, then the other" schedules.
    assert all(len(_segment_orders(a, b, 0)) == 2 for a, b in CASES)


@pytest.mark.parametrize(("workload", "variant", "bound"), [
    ("two_cleaners", "reference", 1),
    ("two_cleaners", "shared_map_lock", 1),
    ("two_cleaners", "no_write_protect", 1),
    ("msync_vs_munmap", "reference", 0),
    ("invalidate_shared_file", "no_write_protect", 0),
])
async def test_dfs_exhausts_and_reduction_never_adds_schedules(
    workload: str, variant: str, bound: int
) -> None:
    found: dict[bool, tuple[int, set[str], set[tuple[int, ...]]]] = {}
    for reduction in (False, True):
        strategy = DfsStrategy(bound, reduction)
        machine = _machine(workload, strategy, variant)
        rules: set[str] = set()
        schedules: set[tuple[int, ...]] = set()
        while not strategy.exhausted:
            ex = await machine.execute(0)
            if ex.outcome == "pruned":
                continue
            schedules.add(tuple(ex.decisions))
            rules |= {v.rule for v in ex.violations}
        assert strategy.exhausted
        assert strategy.schedules == len(schedules)  # each schedule ran once
        found[reduction] = (strategy.schedules, rules, schedules)
    assert found[True][0] <= found[False][0]
    assert found[True][2] <= found[False][2]
    # The reduction may skip schedules, never a bug: the same rules fire either way.
    assert found[True][1] == found[False][1]


def _disjoint_spec(stores: int) -> Spec:
    """Two processes, each storing to its own file: no state in common."""
    mapping = {"addr": "0x10000", "pages": 1, "offset": 0, "prot": "rw"}
    return parse_spec({
        "files": {"f": {"pages": 1}, "g": {"pages": 1}},
        "processes": {"p0": {"mappings": [{**mapping, "file": "f"}]},
                      "p1": {"mappings": [{**mapping, "file": "g"}]}},
        "cpus": [{"process": "p0", "program": [["store", "0x10000"]] * stores},
                 {"process": "p1", "program": [["store", "0x10000"]] * stores}],
    }, source="test")


async def test_dfs_reduction_prunes_fully_independent_processes() -> None:
    counts = {}
    for reduction in (False, True):
        strategy = DfsStrategy(1, reduction)
        await _enumerate(_disjoint_spec(1), strategy)
        counts[reduction] = (strategy.schedules, strategy.pruned)
    assert counts[True][0] < counts[False][0]
    assert counts[True][1] > 0


async def test_unbounded_dfs_with_reduction_reaches_every_final_state() -> None:
    """Sleep sets only skip reorderings of independent steps: every final state stays."""
    spec = parse_spec({
        "files": {"f": {"pages": 2}},
        "processes": {"p0": {"mappings": [
            {"addr": "0x10000", "pages": 1, "file": "f", "offset": 0},
            {"addr": "0x11000", "pages": 1, "file": "f", "offset": 1}]}},
        "cpus": [{"process": "p0", "program": [["msync", "0x10000", 8192, "sync"]]},
                 {"process": "p0", "program": [["munmap", "0x11000", 4096]]}],
    }, source="test")

    async def finals(reduction: bool) -> tuple[set[str], int]:
        strategy = DfsStrategy(None, reduction)
        machine = Machine(spec, BUILTIN["reference"], strategy, checkers=all_checkers())
        seen: set[str] = set()
        while not strategy.exhausted:
            ex = await machine.execute(0)
            if ex.outcome != "pruned":
                assert machine.kernel is not None
                pagers = {n: list(p.stored) for n, p in machine.kernel.pagers.items()}
                seen.add(json.dumps([ex.results, pagers, ex.outcome], sort_keys=True))
        return seen, strategy.schedules

    reduced, n_reduced = await finals(True)
    full, n_full = await finals(False)
    assert reduced == full
    assert len(full) == 2  # the munmap before the clean's look (a hole: EBUSY) or after
    assert n_reduced < n_full  # measured: 6 against 100


# -- pct finds a depth-2 bug within its bound -------------------------------------------------


async def _n_and_k(workload: str, variant: str, runs: int = 60) -> tuple[int, int]:
    """Agents n and the most decisions k seen on the workload (random walk, seeds 0..runs-1)."""
    machine = _machine(workload, RandomStrategy(), variant)
    k = 0
    for seed in range(runs):
        _, _, decisions = await _decisions(machine, workload, seed)
        k = max(k, len(decisions))
    assert machine.kernel is not None
    return len(machine.kernel.sched.agents), k


async def _runs_to_catch(machine: Machine, workload: str, limit: int) -> tuple[int | None, int]:
    """Executions (seeds 0, 1, ...) until an expected rule fires, and the most decisions seen."""
    variant = machine.variant
    k = 0
    for seed in range(limit):
        ex = await machine.execute(seed, build_workload(workload, {}, seed, variant.profile))
        k = max(k, len(ex.decisions))
        if any(v.rule in variant.catches for v in ex.violations):
            return seed + 1, k
    return None, k


# Depth-2 bugs: one ordering constraint (the clean runs first and takes the map lock) plus one
# preemption (inside the clean's critical section, where the other agent gets in).  Measured
# runs to catch with PctStrategy(2) (steps=300), seeds from 0: unlock_between_passes on
# msync_vs_munmap 15 (n=4, k~83: bound 3nk = 996; 36 catches per 1000 runs), shared_map_lock
# on two_cleaners 6 (n=4, k~29: 3nk = 348; 116 per 1000), no_map_lock on two_cleaners 6
# (n=4, k~35; 108 per 1000).  With steps=k instead of 300 the change point always lands inside
# the run: 2, 2 and 2 runs (73, 403 and 278 per 1000).
DEPTH2 = [
    ("unlock_between_passes", "msync_vs_munmap"),
    ("shared_map_lock", "two_cleaners"),
    ("no_map_lock", "two_cleaners"),
]


@pytest.mark.parametrize(("mutant", "workload"), DEPTH2)
async def test_pct_depth2_catches_a_depth2_mutant_within_its_bound(
    mutant: str, workload: str
) -> None:
    n, k = await _n_and_k(workload, mutant)
    budget = math.ceil(3 * n * k)  # ~95% for a bug the 1/(n*k) bound applies to
    for strategy in (PctStrategy(2), PctStrategy(2, steps=k)):
        machine = _machine(workload, strategy, mutant)
        runs, k_seen = await _runs_to_catch(machine, workload, budget)
        assert runs is not None, (
            f"pct(2, steps={strategy.steps}) missed {mutant} on {workload} in {budget} runs "
            f"(n={n}, k={k}, most decisions seen {k_seen})")
        assert machine.kernel is not None and len(machine.kernel.sched.agents) == n


@pytest.mark.slow
@pytest.mark.parametrize(("mutant", "workload"), DEPTH2)
async def test_pct_depth2_catch_rate_beats_the_bound(mutant: str, workload: str) -> None:
    # The per-run probability for a depth-2 bug is at least 1/(n*k); with steps=300 the change
    # point is drawn over 300 decisions, so k is max(decisions, 300).
    n, k = await _n_and_k(workload, mutant)
    machine = _machine(workload, PctStrategy(2), mutant)
    runs = 1000
    hits = 0
    for seed in range(runs):
        ex = await machine.execute(seed, build_workload(workload, {}, seed,
                                                        machine.variant.profile))
        hits += any(v.rule in machine.variant.catches for v in ex.violations)
    assert hits / runs >= 1 / (n * max(k, 300))


# -- pos catches the easy mutants ---------------------------------------------------------------

# Measured with PosStrategy, seeds 0..99: lock_order_inversion/two_cleaners 100%,
# no_map_lock/two_cleaners 82%, zero_length_toctou/zero_length_msync 90%,
# late_clean_generation/write_errors 75%, invalidate_before_flush/invalidate_shared_file 100%,
# undirty_at_issue/write_errors 63% -- each first caught at seed 0.
EASY = [
    ("lock_order_inversion", "two_cleaners"),
    ("no_map_lock", "two_cleaners"),
    ("zero_length_toctou", "zero_length_msync"),
    ("late_clean_generation", "write_errors"),
    ("invalidate_before_flush", "invalidate_shared_file"),
    ("undirty_at_issue", "write_errors"),
]


@pytest.mark.parametrize(("mutant", "workload"), EASY)
async def test_pos_catches_easy_mutants(mutant: str, workload: str) -> None:
    assert mutant in MUTANTS
    machine = _machine(workload, make_strategy("pos"), mutant)
    runs, _ = await _runs_to_catch(machine, workload, 20)
    assert runs is not None, f"pos missed {mutant} on {workload} in 20 runs"


# -- dfs asked again after its space is exhausted ---------------------------------------------
#
# In a fresh interpreter under a timeout: before the fix this hung forever (the strategy
# raised at the first decision, before any agent ran, and the scheduler never woke).

DFS_PAST_EXHAUSTION = """
import json, trio
from emulator.errors import SearchExhausted
from emulator.machine import Machine
from emulator.sched.strategies import DfsStrategy
from emulator.variants import load_variant
from workloads import build_workload

async def main():
    strategy = DfsStrategy(0, False)
    machine = Machine(build_workload("two_cleaners", {}, 0, None), load_variant("reference"),
                      strategy)
    runs = 0
    while not strategy.exhausted:
        await machine.execute(0)
        runs += 1
    try:
        await machine.execute(0)
        error = None
    except SearchExhausted as exc:
        error = str(exc)
    print(json.dumps({"runs": runs, "schedules": strategy.schedules, "error": error}))

trio.run(main)
"""


def test_dfs_asked_for_an_execution_after_exhaustion_raises_search_exhausted(
    tmp_path: Path,
) -> None:
    script = tmp_path / "dfs_past_exhaustion.py"
    script.write_text(DFS_PAST_EXHAUSTION)
    proc = subprocess.run([sys.executable, str(script)], env={**os.environ, "PYTHONPATH": ROOT},
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["runs"] == data["schedules"] == 10  # bound 0 on two_cleaners, as explore says
    assert data["error"] == ("dfs: every schedule with at most 0 preemptions has run; "
                             "no execution is left")


def test_explore_dfs_with_more_iterations_than_schedules_ends_with_its_report() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "emulator", "explore", "two_cleaners", "--strategy", "dfs",
         "--preemption-bound", "0", "--iterations", "1000", "--json"],
        env={**os.environ, "PYTHONPATH": ROOT}, cwd=ROOT, capture_output=True, text=True,
        timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["exhausted"] is True
    assert data["executions"] == data["schedules"] == 10


# -- footprints --------------------------------------------------------------------


def test_every_watched_event_class_has_its_own_footprint() -> None:
    """A class without one would be taken to touch everything: sound, but no reduction."""
    assert set(WATCHED) <= set(_FOOTPRINTS)


def test_footprints_name_the_map_or_object_an_event_touched() -> None:
    assert footprint_keys(Lock("map", "p0", "x")) == (("map", "p0"),)
    assert footprint_keys(Wait("io", "f:3")) == (("obj", "f"), ("disk",))
    assert footprint_keys(Store("p0", 0x10000, "f", 0, 5)) == (("map", "p0"), ("obj", "f"))
    assert footprint_keys(Busy("f", 1, "x")) == (("obj", "f"),)
    assert footprint_keys(Read("*", "")) == (ANY,)
    assert footprint_keys(Call("msync", ())) == ()
    assert footprint_keys(MapAccess(None, "lookup")) == (ANY,)  # type: ignore[arg-type]


# One event of each kind pos has a twin for, with names in each form its keys take.
_TWINNED_EVENTS = [
    Lock("map", "p0", "x"), Lock("obj", "f", "s"), Lock("vnode", "f", "x"),
    Unlock("io", "f:3"), Unlock("map", "p1"), Wait("io", "f:3"), Wait("obj", "o2"),
    Busy("f", 1, "x"), Unbusy("f", 1), Alloc("o3", 0), RemoveWrite("f", 2, 1),
    Dirty("f", 0, 4), Pagein("f", 1, 7), IoIssue("f", 0, 3, 1, None), IoDone("f", 0, 3, 0, None),
    Store("p0", 0x10000, "f", 0, 5), PteEnter("p0", 16, "f", 0, "rw"),
    Read("*", ""), Read("map", "p0"), Woke(None),
]


@pytest.mark.parametrize("ev", _TWINNED_EVENTS, ids=lambda ev: type(ev).__name__)
def test_pos_twins_add_the_keys_of_the_event_they_stand_for(ev: Any) -> None:
    """A sealed kernel calls pos's twin with the event's fields: the footprint must be
    the one ``footprint_keys`` gives the event itself."""
    twin = TWINS[type(ev), PosStrategy.event]
    by_fields, by_event = PosStrategy(), PosStrategy()
    twin(by_fields, *[getattr(ev, f.name) for f in dataclasses.fields(ev)])
    by_event.event(0, 0, ev)
    assert by_fields.step_keys == by_event.step_keys == set(footprint_keys(ev))


async def test_a_sealed_kernel_builds_no_hot_event_for_pos(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """pos watches every event; a sealed kernel gives the hot kinds to its twins."""
    given: list[type] = []
    event = PosStrategy.event

    def counting(self: PosStrategy, step: int, aid: int, ev: Any) -> None:
        given.append(type(ev))
        event(self, step, aid, ev)

    hot = {cls for cls, _ in EMITTERS}
    for twinned in (False, True):
        given.clear()
        with monkeypatch.context() as m:
            m.setattr(PosStrategy, "event", counting)
            if twinned:  # the twins re-keyed by the patched method: they run instead
                for cls in hot:
                    if (cls, event) in TWINS:
                        m.setitem(TWINS, (cls, counting), TWINS[cls, event])
            machine = Machine(build_workload("writers_vs_msync", {}, 0, None),
                              BUILTIN["reference"], PosStrategy(), checkers=all_checkers(),
                              driver="direct")
            await machine.execute(1)
        assert given, twinned  # the cold kinds (calls, returns, ...) still come as events
        assert bool(hot & set(given)) != twinned
