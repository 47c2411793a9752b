"""The watchdog: no execution hangs silently.

A variant can hang in ways the step bound cannot see: a Python loop with no
schedule point (the agent never gives the baton back), or an ``await`` on
something outside the emulator.  What the drivers can check themselves, they
do, deterministically: the direct driver sees a foreign ``await`` at once (the
agent yields something that is not its baton) and a lost baton at the next
hand-over.  What no check can see is code that never returns; for that, a
daemon thread watches the running execution's step counter, and when it has not
moved for ``stall_seconds``:

* it sends SIGUSR1 to the main thread, whose handler raises what the
  scheduler's ``stall_exception`` says: ``NoSchedulePoint`` only if the code
  running is the current agent's own (its Trio task, or its coroutine under the
  direct driver), so Trio's loop and the harness are never interrupted by it;
  the direct driver's harness code stalling is vmemu's fault, an
  ``InternalError``;
* under the Trio driver, it asks Trio's loop, thread-safely, to look at the
  execution.  If an agent holds the baton and is not parked in the scheduler,
  it is stuck in a foreign await: its task's cancel scope is cancelled, which
  wakes it (and the task, its scope spent, serves no further execution).

Either way the scheduler ends the execution as ``starvation``, blaming the
variant.  But when Trio's loop finds that *no* agent holds the baton -- every
agent parked, the harness's main task waiting for an end that will never
come -- nothing the variant did can explain the stall: the harness lost the
baton.  The watchdog then abandons the execution (every parked task released
and unwound) with an ``InternalError``, which vmemu reports as one
internal-error line (exit code 70), never as the variant's fault.

The wall clock is only a safety net: it decides *whether* a hung execution is
stopped, never a scheduling choice, and the stop lands at the same step every
time.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from emulator.sched.scheduler import Scheduler


class NoSchedulePoint(Exception):
    """Raised inside an agent that ran too long without a schedule point."""


class _Watch:
    def __init__(self) -> None:
        self.sched: Scheduler | None = None
        self.token: trio.lowlevel.TrioToken | None = None
        self.in_loop: Callable[[int, float], None] | None = None  # run by the token's loop
        self.stall_seconds = 2.0
        self.thread: threading.Thread | None = None
        self.installed = False
        self.signal_ok = False  # our SIGUSR1 handler is installed
        self.lock = threading.Lock()


WATCH = _Watch()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    sched = WATCH.sched
    if sched is None or sched.over:
        return
    exc = sched.stall_exception(WATCH.stall_seconds)
    if exc is not None:
        raise exc


def _stalled(sched: Scheduler, step: int) -> None:
    """Runs in Trio's loop (no task is running): let the driver look at the execution."""
    in_loop = WATCH.in_loop
    if WATCH.sched is sched and in_loop is not None:
        in_loop(step, WATCH.stall_seconds)


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


def watch(sched: Scheduler, stall_seconds: float, token: trio.lowlevel.TrioToken | None = None,
          in_loop: Callable[[int, float], None] | None = None) -> None:
    """Watch ``sched`` (the execution about to run) from now on.

    ``token``: the Trio loop that runs its agents, which runs ``in_loop(step,
    seconds)`` when the execution has stalled at ``step``.
    """
    with WATCH.lock:
        if not WATCH.installed:
            WATCH.installed = True
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGUSR1, _on_signal)
                WATCH.signal_ok = True
            WATCH.thread = threading.Thread(target=_run, name="vmemu-watchdog", daemon=True)
            WATCH.thread.start()
        WATCH.stall_seconds = stall_seconds
        WATCH.token = token
        WATCH.in_loop = in_loop
        WATCH.sched = sched
