"""Campaigns on Dask (emulator/campaign_dask.py, ``explore --executor dask``).

On a LocalCluster (worker threads in this process for the executor tests; real worker
processes on 127.0.0.1 for the command line):

* Dask shards find the same (seed, rule) set as the same shards in local processes (shard
  i takes the same seeds as under ``--jobs``, by its index, and chooses the same arms);
* stop on the first violation stops every shard, and the failures come sorted by seed;
* the workers' progress reaches the local counters;
* ``--scheduler ADDR`` reaches an existing scheduler;
* ``explore --executor dask`` prints the same summary as ``--jobs``;
* dask missing, an unreachable or malformed ``--scheduler`` or one without workers,
  ``--scheduler`` without the dask executor, dfs on dask: exit 2, one line, nothing written.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("distributed", reason="dask is not installed (pip install '.[dask]')")

import distributed

from emulator import campaign_dask
from emulator.campaign import Config, Progress, run_campaign
from emulator.campaign_dask import DaskExecutor
from emulator.cli import main
from emulator.config import RunConfig


def _config(workload: str, variant: str, strategy: str = "portfolio", iterations: int = 200,
            first_seed: int = 0, stop_on_first: bool = False) -> Config:
    run = RunConfig(workload, variant=variant, strategy=strategy, seed=first_seed)
    return Config(run, iterations, time_budget=None, stop_on_first=stop_on_first)


def _found(summary: Any) -> set[tuple[int, str]]:
    return {(f.seed, v["rule"]) for f in summary.failures for v in f.violations}


@pytest.fixture(scope="module")
def dask2() -> Iterator[DaskExecutor]:
    with DaskExecutor(2, processes=False) as executor:
        yield executor


def test_dask_shards_find_the_same_violations_as_local_process_shards(dask2: DaskExecutor) -> None:
    # invalidate_frees_dirty fails on some of seeds 0..199 with portfolio.  The portfolio's
    # shards choose their arms over their own seeds: two shards on Dask are two local ones.
    cfg = _config("invalidate_shared_file", "invalidate_frees_dirty")
    local = run_campaign(cfg, jobs=2)
    on_dask = run_campaign(cfg, 2, executor=dask2)
    assert on_dask.executions == local.executions == 200
    assert 0 < len(_found(local)) < 200
    assert _found(on_dask) == _found(local)
    assert on_dask.steps == local.steps
    assert on_dask.schedules == local.schedules


def test_dask_shard_seeds_are_fixed_by_the_shard_index(dask2: DaskExecutor) -> None:
    # lock_order_inversion deadlocks two_cleaners on every seed, so failures list the seeds
    # run; three shards on two workers: the third waits for a worker, same seeds anyway.
    cfg = _config("two_cleaners", "lock_order_inversion", "random", 10, first_seed=3)
    summary = run_campaign(cfg, 3, executor=dask2)
    assert summary.executions == 10
    assert [f.seed for f in summary.failures] == list(range(3, 13))


def test_dask_stops_every_shard_at_the_first_violation(dask2: DaskExecutor) -> None:
    cfg = _config("invalidate_shared_file", "invalidate_frees_dirty", iterations=4000,
                  stop_on_first=True)
    summary = run_campaign(cfg, 2, executor=dask2)
    seeds = [f.seed for f in summary.failures]
    assert seeds, "the mutant fails within 200 seeds"
    assert seeds == sorted(seeds), "the first reported is the lowest seed found"
    # Each shard stops at its own first violation or at the other's: far short of 4000.
    assert summary.executions < 1000
    serial_failures = {s for s, _ in _found(run_campaign(
        _config("invalidate_shared_file", "invalidate_frees_dirty",
                iterations=max(seeds) + 2), jobs=2))}  # the same two shards, in processes
    assert set(seeds) <= serial_failures


def test_dask_workers_progress_reaches_the_local_counters(dask2: DaskExecutor) -> None:
    cfg = _config("invalidate_shared_file", "invalidate_frees_dirty")
    progress = Progress()
    summary = run_campaign(cfg, 2, progress, dask2)
    # The workers' last events may land just after their results: wait for them.
    deadline = time.monotonic() + 30
    while progress.read().executions < summary.executions and time.monotonic() < deadline:
        time.sleep(0.05)
    snap = progress.read()
    assert snap.executions == summary.executions == 200
    assert snap.violations == len(summary.failures)
    # The largest shard's coverage: some, and no more than the merged summary's.
    assert 0 < snap.pairs <= len(summary.coverage.pairs)
    assert 0 < snap.interleavings <= len(summary.coverage.interleavings)


def test_dask_executor_reaches_an_existing_scheduler() -> None:
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address="127.0.0.1:0",
                                  scheduler_kwargs={"dashboard": False}) as cluster, \
            DaskExecutor(2, scheduler=cluster.scheduler_address) as executor:
        cfg = _config("two_cleaners", "lock_order_inversion", "random", 6)
        summary = run_campaign(cfg, 2, executor=executor)
    assert [f.seed for f in summary.failures] == list(range(6))


# -- the command line --------------------------------------------------------------------------


def test_explore_on_dask_prints_the_summary_of_jobs(capsys: Any, tmp_path: Any) -> None:
    base = ["explore", "two_cleaners", "--variant", "lock_order_inversion", "--strategy",
            "random", "--iterations", "8", "--keep-going", "--json", "--jobs", "2"]
    assert main([*base, "--save-dir", str(tmp_path / "jobs")]) == 1
    jobs = json.loads(capsys.readouterr().out)
    assert main([*base, "--executor", "dask", "--save-dir", str(tmp_path / "dask")]) == 1
    out = capsys.readouterr()
    on_dask = json.loads(out.out)
    assert out.err == ""
    assert set(on_dask) == set(jobs)
    for key in ("outcome", "executions", "steps", "jobs", "seed", "strategy"):
        assert on_dask[key] == jobs[key], key
    seeds = [v["seed"] for v in on_dask["violations"]]
    assert seeds == [v["seed"] for v in jobs["violations"]]
    assert sorted(set(seeds)) == list(range(8))
    assert all(v["trace"].startswith(str(tmp_path / "dask")) for v in on_dask["violations"])


def _bad(capsys: Any, argv: list[str], save_dir: Any) -> str:
    assert main([*argv, "--save-dir", str(save_dir)]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    assert not save_dir.exists(), "nothing written"
    return lines[0]


def test_dask_not_installed_is_bad_input(capsys: Any, tmp_path: Any,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    line = _bad(capsys, ["explore", "two_cleaners", "--executor", "dask", "--iterations", "5"],
                tmp_path / "out")
    assert "dask is not installed" in line and "vmemu[dask]" in line


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:1", "not an address", "127.0.0.1"])
def test_an_unreachable_scheduler_is_bad_input(capsys: Any, tmp_path: Any, address: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(campaign_dask, "CONNECT_TIMEOUT", 1.0)
    line = _bad(capsys, ["explore", "two_cleaners", "--executor", "dask", "--scheduler",
                         address, "--iterations", "5"], tmp_path / "out")
    assert line.startswith(f"vmemu: error: --scheduler {address}: cannot reach")


def test_a_scheduler_without_workers_is_bad_input(capsys: Any, tmp_path: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(campaign_dask, "CONNECT_TIMEOUT", 1.0)
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address="127.0.0.1:0",
                                  scheduler_kwargs={"dashboard": False}) as cluster:
        address = cluster.scheduler_address
        line = _bad(capsys, ["explore", "two_cleaners", "--executor", "dask", "--scheduler",
                             address, "--iterations", "5"], tmp_path / "out")
    assert line == (f"vmemu: error: --scheduler {address}: the Dask scheduler has no workers "
                    "(none joined within 1 s)")


@pytest.mark.parametrize(("argv", "word"), [
    (["--scheduler", "tcp://127.0.0.1:8786"], "--scheduler"),
    (["--executor", "dask", "--strategy", "dfs"], "--executor dask"),
    (["--executor", "ray"], "--executor"),
])
def test_dask_options_out_of_place_are_bad_input(capsys: Any, tmp_path: Any, argv: list[str],
                                                 word: str) -> None:
    line = _bad(capsys, ["explore", "two_cleaners", *argv], tmp_path / "out")
    assert word in line
