"""The watchdog: no execution hangs silently.

A variant can hang in two ways the step bound cannot see: a Python loop with
no schedule point (the agent never gives the baton back), or an ``await`` on
something outside the emulator (``trio.sleep_forever()``: Trio's loop idles
with no task runnable).  A daemon thread watches the running execution's step
counter; when it has not moved for ``stall_seconds``:

* it sends SIGUSR1 to the main thread, whose handler raises
  ``NoSchedulePoint`` -- but only if the code running is the current agent's
  task, so Trio's own loop is never interrupted;
* it asks Trio's loop, thread-safely, to look at the execution.  If an
  agent holds the baton and is not parked in the scheduler, it is stuck in a
  foreign await: its cancel scope is cancelled, which wakes it.

Either way the scheduler ends the execution as ``starvation``, blaming the
variant.  But when Trio's loop finds that *no* agent holds the baton -- every
agent parked, the harness's main task waiting for an end that will never
come -- nothing the variant did can explain the stall: the harness lost the
baton.  The watchdog then abandons the execution (every parked task released,
the nursery unwinds) with an ``InternalError``, which vmemu reports as one
internal-error line (exit code 70), never as the variant's fault.

Wall-clock time decides only *whether* a hung execution is stopped, never a
scheduling choice; the stop lands at the same step every time.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

import trio

from emulator.errors import InternalError

if TYPE_CHECKING:
    from emulator.sched.scheduler import Scheduler


class NoSchedulePoint(Exception):
    """Raised inside an agent that ran too long without a schedule point."""


class _Watch:
    def __init__(self) -> None:
        self.sched: Scheduler | None = None
        self.token: trio.lowlevel.TrioToken | None = None
        self.stall_seconds = 2.0
        self.thread: threading.Thread | None = None
        self.installed = False
        self.signal_ok = False  # our SIGUSR1 handler is installed
        self.lock = threading.Lock()


WATCH = _Watch()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    sched = WATCH.sched
    if sched is None or sched.over or sched.current is None:
        return
    try:
        task = trio.lowlevel.current_task()
    except RuntimeError:
        return  # inside Trio's loop itself: the cancel request handles it
    if task is sched.current.task:
        raise NoSchedulePoint(
            f"{sched.current.name} ran {WATCH.stall_seconds:g}s without reaching a schedule "
            "point (a loop that never calls into the kernel?)"
        )


def _stalled(sched: Scheduler, step: int) -> None:
    """Runs in Trio's loop (no task is running): cancel a foreign await, or give up."""
    if WATCH.sched is not sched or sched.over or sched.step != step:
        return
    cur = sched.current
    if sched.holder_running():
        assert cur is not None
        if cur.scope is not None:
            sched.stalled = True
            cur.scope.cancel()
        return
    holder = "no agent had been given the baton" if cur is None else (
        f"{cur.name} holds the baton but is {'parked' if cur.parked else 'done'}")
    sched.abandon(InternalError(
        f"the execution made no progress for {WATCH.stall_seconds:g}s at step {step} with no "
        f"agent running ({holder}): a bug in vmemu, not in the variant"))


def _run() -> None:
    last_sched: Scheduler | None = None
    last_step = -1
    since = time.monotonic()
    fired = False
    main_id = threading.main_thread().ident
    while True:
        time.sleep(0.1)
        sched, token = WATCH.sched, WATCH.token
        now = time.monotonic()
        if sched is None or sched.over:
            last_sched = None
            continue
        if sched is not last_sched or sched.step != last_step:
            last_sched, last_step, since, fired = sched, sched.step, now, False
            continue
        if fired or now - since < WATCH.stall_seconds:
            continue
        fired = True
        if main_id is not None and WATCH.signal_ok:
            signal.pthread_kill(main_id, signal.SIGUSR1)
        if token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(_stalled, sched, last_step)


def watch(sched: Scheduler, stall_seconds: float) -> None:
    """Watch ``sched`` (the execution about to run) from now on."""
    with WATCH.lock:
        if not WATCH.installed:
            WATCH.installed = True
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGUSR1, _on_signal)
                WATCH.signal_ok = True
            WATCH.thread = threading.Thread(target=_run, name="vmemu-watchdog", daemon=True)
            WATCH.thread.start()
        WATCH.stall_seconds = stall_seconds
        WATCH.token = trio.lowlevel.current_trio_token()
        WATCH.sched = sched
