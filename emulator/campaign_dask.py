"""Campaign shards on a Dask distributed cluster: ``explore --executor dask``.

The optional extra ``vmemu[dask]`` brings ``dask[distributed]``.  :class:`DaskExecutor`
serves the same :class:`~emulator.campaign.Executor` interface as ``--jobs``: shard
``i`` of ``--jobs N`` runs :func:`~emulator.campaign.run_shard` as one Dask task and
takes the seeds ``first + i``, ``first + i + N``, ...  The shard count comes from the
command line, never from the cluster, so the seeds a shard explores are fixed by its
index and not by which worker runs it or when (a task that Dask retries on another
worker after a worker died takes the same seeds again).  Every worker needs vmemu
installed, at the same version.

Stopping on the first violation: the shard that finds one sets a Dask ``Event`` on the
scheduler; the others poll it (at most every :data:`POLL_SECONDS`, as each poll is a
round trip to the scheduler) and stop, returning what they ran.  The merged summary's
failures are sorted by seed, so when several shards find violations before they see
the event the first one reported is the lowest seed among them.

Live progress: each shard logs its counters as Dask events on a topic of its own
campaign, batched to a few a second; the client adds them to the local
:class:`~emulator.campaign.Progress` the display reads.

Without ``--scheduler``, a ``LocalCluster`` of ``--jobs`` single-threaded worker
processes is started on 127.0.0.1 (no dashboard) and closed afterwards.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import Any

import trio

from emulator.campaign import Config, Summary, run_shard
from emulator.errors import BadInput

POLL_SECONDS = 0.05  # how often a shard asks the scheduler whether to stop
REPORT_SECONDS = 0.25  # how often a shard sends its progress counters
CONNECT_TIMEOUT = 5.0  # seconds to reach a --scheduler before it is bad input

INSTALL_HINT = "pip install 'vmemu[dask]'"


class _StopFlag:
    """``stop()`` for run_shard: the campaign's Event, asked at most every POLL_SECONDS."""

    def __init__(self, event: Any) -> None:
        self.event = event
        self.asked = -POLL_SECONDS
        self.stopped = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self.stopped and now - self.asked >= POLL_SECONDS:
            self.asked = now
            self.stopped = bool(self.event.is_set())
        return self.stopped


class _EventCounters:
    """run_shard's counters in a Dask worker: batched into events on the campaign's topic."""

    def __init__(self, worker: Any, topic: str) -> None:
        self.worker = worker
        self.topic = topic
        self.pending = [0, 0]  # executions and violations since the last event
        self.covered = [0, 0]  # pairs and interleavings so far
        self.sent = time.monotonic()

    def add(self, executions: int, violations: int) -> None:
        self.pending[0] += executions
        self.pending[1] += violations
        if violations or time.monotonic() - self.sent >= REPORT_SECONDS:
            self.flush()

    def cover(self, pairs: int, interleavings: int) -> None:
        self.covered = [pairs, interleavings]

    def flush(self) -> None:
        if any(self.pending):
            self.worker.log_event(self.topic, self.pending + self.covered)
            self.pending = [0, 0]
        self.sent = time.monotonic()


def _shard_task(cfg: Config, shard: int, shards: int, stop_name: str, topic: str) -> Summary:
    """One shard, as a Dask task (runs in a worker)."""
    from distributed import Event, get_worker

    event = Event(stop_name)
    counters = _EventCounters(get_worker(), topic)
    try:
        return trio.run(run_shard, cfg, shard, shards, _StopFlag(event), counters, event.set)
    finally:
        counters.flush()


@contextmanager
def _sigint_ignored_in_children() -> Iterator[None]:
    """Start the local cluster's processes with SIGINT ignored.

    Ctrl-C on a terminal goes to the whole foreground process group: without this, every
    nanny and worker prints its own KeyboardInterrupt traceback.  A Python started with
    SIGINT ignored keeps ignoring it, so only this process is interrupted, and it closes
    the cluster on the way out.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be changed from the main thread
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class DaskExecutor:
    """Shards as Dask tasks (``--executor dask``), on ``scheduler`` or a local cluster.

    A context manager: entering connects (or starts the local cluster) and turns a
    missing dask or an unreachable scheduler into :class:`BadInput`; leaving closes
    what it opened.  ``processes=False`` runs a local cluster's workers as threads of
    this process (the tests use it: no worker processes to start).
    """

    def __init__(self, jobs: int, scheduler: str | None = None, processes: bool = True) -> None:
        self.jobs = jobs
        self.scheduler = scheduler
        self.processes = processes
        self.client: Any = None
        self.cluster: Any = None

    def __enter__(self) -> DaskExecutor:
        try:
            import distributed
        except ImportError:
            raise BadInput(f"--executor dask: dask is not installed ({INSTALL_HINT})") from None
        if self.scheduler is None:
            # Worker processes talk TCP on loopback only; threads talk in-process.  The
            # scheduler's HTTP server (health, metrics) listens on a free loopback port,
            # without the dashboard.
            where: dict[str, Any] = {"host": "127.0.0.1"} if self.processes else {}
            with _sigint_ignored_in_children():
                self.cluster = distributed.LocalCluster(
                    n_workers=self.jobs, threads_per_worker=1, processes=self.processes,
                    scheduler_port=0, dashboard_address="127.0.0.1:0",
                    scheduler_kwargs={"dashboard": False}, silence_logs=logging.ERROR,
                    **where)
            self.client = distributed.Client(self.cluster)
            return self
        try:
            self.client = distributed.Client(self.scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, ValueError, TypeError) as exc:
            # The half-built Client is garbage with a __del__ that stops its event-loop
            # runner.  Collected later, inside another Client's or cluster's start, that
            # __del__ deadlocks on the runner's lock (seen as a hung test run), so collect
            # it now, while nothing else is starting.
            gc.collect()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BadInput(f"--scheduler {self.scheduler}: cannot reach a Dask scheduler "
                           f"({first})") from None
        try:
            # Shards submitted to a scheduler without workers would wait forever.
            self.client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except (TimeoutError, OSError):
            self.client.close()
            self.client = None
            raise BadInput(f"--scheduler {self.scheduler}: the Dask scheduler has no workers "
                           f"(none joined within {CONNECT_TIMEOUT:g} s)") from None
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    def run(self, cfg: Config, shards: int, counters: Any) -> list[Summary]:
        from distributed import Event

        assert self.client is not None, "use DaskExecutor as a context manager"
        campaign = uuid.uuid4().hex  # names this campaign's event and topic, nothing else
        stop_name, topic = f"vmemu-stop-{campaign}", f"vmemu-progress-{campaign}"
        stop = Event(stop_name, client=self.client)

        def on_progress(event: tuple[float, list[int]]) -> None:
            executions, violations, pairs, interleavings = event[1]
            counters.add(executions, violations)
            counters.cover(pairs, interleavings)

        self.client.subscribe_topic(topic, on_progress)
        try:
            futures = [
                self.client.submit(_shard_task, cfg, i, shards, stop_name, topic,
                                   key=f"vmemu-shard-{i}-{campaign}", pure=False)
                for i in range(shards)
            ]
            # One result at a time, not client.gather: an interrupted gather leaves tasks
            # that log "Task exception was never retrieved" as the client closes.
            parts: list[Summary] = [f.result() for f in futures]
        except BaseException:
            # Interrupted, or a shard failed: shards still running (a remote cluster's
            # outlive this client) stop at their next poll.  The event stays set.
            with suppress(Exception):
                stop.set()
            raise
        finally:
            self.client.unsubscribe_topic(topic)
        stop.clear()  # all shards are done: drop the event from the scheduler
        return parts
