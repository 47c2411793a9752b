"""The live progress display of a long campaign, drawn with rich on stderr.

``explore`` shows executions, executions per second, coverage (the adaptive
portfolio's conflict pairs and interleavings, as the summary's "seen" line counts
them), violations and the time left while it runs, and erases the display when it ends, so
the terminal keeps only the summary.  It is off -- nothing at all is written to
stderr -- when stderr is not a terminal, when ``NO_COLOR`` is set, or with ``--json``
(:func:`wanted`): pipes, logs and scripts see exactly what they saw without it.

The time left comes from the campaign's stopping rule: ``--time-budget`` counts
down; ``--iterations`` extrapolates from the rate so far; a dfs search has no end
known in advance.  The numbers are the workers' shared :class:`Progress` counters,
read by rich's refresh thread; nothing here feeds back into the campaign.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from emulator.campaign import Progress, Snapshot

REFRESH_PER_SECOND = 4
BAR_WIDTH = 20


def wanted(stream: IO[str], json_output: bool, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether to draw the display on ``stream``: a terminal, no NO_COLOR, no --json.

    NO_COLOR (no-color.org) counts when set to anything but the empty string.
    """
    return not json_output and not environ.get("NO_COLOR") and stream.isatty()


@dataclass(frozen=True)
class Status:
    """One frame's numbers, computed from a snapshot and the elapsed time."""

    executions: int
    rate: float  # executions per second
    pairs: int
    interleavings: int
    violations: int
    fraction: float | None  # of the campaign done; None when the end is unknown
    eta: float | None  # seconds left; None when unknown

    @classmethod
    def of(cls, snap: Snapshot, elapsed: float, budget: float | None,
           iterations: int | None) -> Status:
        rate = snap.executions / elapsed if elapsed > 0 else 0.0
        fraction: float | None = None
        eta: float | None = None
        if budget is not None:
            fraction = min(1.0, elapsed / budget)
            eta = max(0.0, budget - elapsed)
        elif iterations is not None:
            fraction = min(1.0, snap.executions / iterations)
            if rate > 0:
                eta = max(0.0, (iterations - snap.executions) / rate)
        return cls(snap.executions, rate, snap.pairs, snap.interleavings, snap.violations,
                   fraction, eta)

    def text(self) -> Text:
        # Most wanted first: a narrow terminal cuts the line's end.
        eta = "—" if self.eta is None else _clock(self.eta)
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(f"{self.executions:,}", style="bold")
        out.append(" executions · ")
        out.append(f"{self.rate:,.0f}", style="bold")
        out.append(" exec/s · ETA ")
        out.append(eta, style="cyan")
        out.append(" · ")
        out.append(f"{self.violations:,} violation" + ("" if self.violations == 1 else "s"),
                   style="bold red" if self.violations else "green")
        out.append(" · coverage ")
        out.append(f"{self.pairs:,}", style="bold")
        out.append(" pairs, ")
        out.append(f"{self.interleavings:,}", style="bold")
        out.append(" interleavings")
        return out


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class LiveProgress:
    """The display, as a context manager around a campaign.

    ``console`` defaults to stderr; tests pass one writing into a StringIO with
    ``force_terminal=True``.  ``clock`` is the display's own elapsed-time source.
    """

    def __init__(self, progress: Progress, budget: float | None, iterations: int | None,
                 console: Console | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.progress = progress
        self.budget = budget
        self.iterations = iterations
        self.clock = clock
        self.start = clock()
        self.spinner = Spinner("dots", style="cyan")
        self.console = console or Console(stderr=True)
        # transient: the display is erased at the end, leaving the terminal's last line
        # clean for the summary on stdout.
        self.live = Live(console=self.console, refresh_per_second=REFRESH_PER_SECOND,
                         transient=True, get_renderable=self.render,
                         redirect_stdout=False, redirect_stderr=False)

    def status(self) -> Status:
        return Status.of(self.progress.read(), self.clock() - self.start, self.budget,
                         self.iterations)

    def render(self) -> RenderableType:
        status = self.status()
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True, width=1)
        row: list[RenderableType] = [self.spinner]
        # The numbers take about 95 columns; the bar only where there is room for both.
        if self.console.width >= BAR_WIDTH + 100:
            grid.add_column(no_wrap=True, width=BAR_WIDTH)
            row.append(ProgressBar(total=None if status.fraction is None else 1.0,
                                   completed=status.fraction or 0.0, width=BAR_WIDTH,
                                   pulse=status.fraction is None))
        grid.add_column(no_wrap=True, overflow="ellipsis")
        row.append(status.text())
        grid.add_row(*row)
        return grid

    def __enter__(self) -> LiveProgress:
        self.start = self.clock()
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)
