"""The live progress display (emulator/progress.py) and when ``explore`` draws it.

* it is drawn only on a terminal, without NO_COLOR, without --json; otherwise explore
  writes nothing at all to stderr (as before the display existed);
* on a terminal (rich's Console forced into a StringIO, and ``explore`` under a real
  pseudo-terminal) it shows executions, exec/s, coverage, violations and the ETA, and
  erases itself at the end;
* the ETA counts down a time budget and extrapolates iterations from the rate.
"""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
from typing import Any

import pytest
from rich.console import Console

from emulator.campaign import Progress, Snapshot
from emulator.cli import main
from emulator.progress import LiveProgress, Status, wanted

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


# -- when it is drawn ------------------------------------------------------------------------


def test_drawn_on_a_terminal_only_without_no_color_and_json() -> None:
    assert wanted(_Tty(), json_output=False, environ={})
    assert wanted(_Tty(), json_output=False, environ={"NO_COLOR": ""}), "empty means unset"
    assert not wanted(_Tty(), json_output=False, environ={"NO_COLOR": "1"})
    assert not wanted(_Tty(), json_output=True, environ={})
    assert not wanted(io.StringIO(), json_output=False, environ={})


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_explore_off_a_terminal_writes_nothing_to_stderr(capsys: Any, tmp_path: Any,
                                                         extra: list[str]) -> None:
    code = main(["explore", "two_cleaners", "--iterations", "20", "--save-dir",
                 str(tmp_path), *extra])
    out = capsys.readouterr()
    assert code == 0
    assert out.err == ""
    assert "20" in out.out


# -- what it shows ---------------------------------------------------------------------------


def test_status_counts_a_time_budget_down() -> None:
    status = Status.of(Snapshot(300, 0, 40, 50), elapsed=3.0, budget=10.0, iterations=None)
    assert status.rate == 100.0
    assert status.eta == 7.0
    assert status.fraction == pytest.approx(0.3)


def test_status_extrapolates_iterations_from_the_rate() -> None:
    status = Status.of(Snapshot(250, 1, 90, 120), elapsed=5.0, budget=None, iterations=1000)
    assert status.rate == 50.0
    assert status.eta == 15.0  # 750 executions left at 50/s
    assert status.fraction == 0.25


def test_status_of_a_search_without_a_known_end_has_no_eta() -> None:
    status = Status.of(Snapshot(10, 0, 10, 10), elapsed=1.0, budget=None, iterations=None)
    assert status.eta is None and status.fraction is None
    assert "ETA —" in status.text().plain


def test_progress_adds_executions_and_keeps_the_largest_shards_coverage() -> None:
    progress = Progress()
    progress.add(16, 0)
    progress.cover(10, 12)
    progress.add(16, 1)
    progress.cover(7, 20)  # another shard: fewer pairs, more interleavings
    assert progress.read() == Snapshot(32, 1, 10, 20)


@pytest.mark.parametrize("width", [100, 140])
def test_the_display_shows_the_fields_and_erases_itself(width: int) -> None:
    progress = Progress()
    progress.add(1234, 2)
    progress.cover(56, 78)
    sink = io.StringIO()
    console = Console(file=sink, force_terminal=True, width=width, color_system="standard")
    now = [100.0]
    display = LiveProgress(progress, budget=10.0, iterations=None, console=console,
                           clock=lambda: now[0])
    with display:
        now[0] = 104.0  # 4 s in: 1234/4 = 308 exec/s, 6 s left
        display.live.refresh()
    out = sink.getvalue()
    plain = ANSI.sub("", out)
    shown = ["1,234 executions", "308 exec/s", "ETA 0:00:06", "2 violations",
             "coverage 56 pairs, 78 interleavings"]
    if width < 100:  # a narrow terminal cuts the end of the line
        shown[-1] = "coverage 56 pairs"
    for field in shown:
        assert field in plain, (field, plain)
    assert ("━" in plain) == (width >= 120), "the bar only where the numbers still fit"
    # transient: the last thing written erases the display's line, leaving it clean.
    last_erase = out.rindex("\x1b[2K")
    assert ANSI.sub("", out[last_erase:]).strip() == ""


# -- explore under a real terminal -----------------------------------------------------------


def _explore_on_a_pty(tmp_path: Any, extra_env: dict[str, str],
                      args: list[str]) -> tuple[int, str, str]:
    """Run ``vmemu explore`` with stderr on a pseudo-terminal: exit code, stdout, stderr."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update({"TERM": "xterm-256color", "COLUMNS": "140", **extra_env})
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from emulator.cli import main; sys.exit(main())",
         "explore", "two_cleaners", "--save-dir", str(tmp_path), *args],
        stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.stdout is not None
    stdout = proc.stdout.read().decode()
    proc.stdout.close()
    return proc.wait(), stdout, b"".join(chunks).decode(errors="replace")


def test_explore_on_a_terminal_draws_the_display(tmp_path: Any) -> None:
    code, stdout, stderr = _explore_on_a_pty(tmp_path, {}, ["--iterations", "400"])
    assert code == 0
    plain = ANSI.sub("", stderr)
    for field in ("executions", "exec/s", "coverage", "violations", "ETA"):
        assert field in plain, (field, stderr)
    assert stdout.startswith("explored 400 executions of two_cleaners")


@pytest.mark.parametrize(("env", "args"), [({"NO_COLOR": "1"}, []), ({}, ["--json"])])
def test_explore_on_a_terminal_with_no_color_or_json_writes_nothing_to_it(
        tmp_path: Any, env: dict[str, str], args: list[str]) -> None:
    code, stdout, stderr = _explore_on_a_pty(tmp_path, env, ["--iterations", "100", *args])
    assert code == 0
    assert stderr == ""
    assert stdout.strip()
