"""The README's examples run and print what the README says (timings aside)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from emulator.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
TIMING = re.compile(r"in [0-9.]+s \([0-9]+ steps/s\)")


def console_examples() -> list[tuple[str, list[str]]]:
    """Return (command, expected output lines) for every `$ vmemu` line in a console block."""
    text = README.read_text()
    out: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        current: tuple[str, list[str]] | None = None
        for line in block.splitlines():
            if line.startswith("$ "):
                current = (line[2:], [])
                out.append(current)
            elif current is not None:
                current[1].append(line)
    return out


EXAMPLES = console_examples()


def test_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize(("command", "expected"), EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_example_prints_what_readme_says(
    command: str, expected: list[str], capsys: pytest.CaptureFixture[str],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # failing runs save traces under ./traces/failures
    if "traces/failures/" in command and not command.startswith("vmemu explore"):
        # A command that reads a trace an earlier README command saved: make it first.
        for earlier, _ in EXAMPLES:
            if earlier.startswith("vmemu explore"):
                main(shlex.split(earlier)[1:])
        capsys.readouterr()
    argv = shlex.split(command)
    assert argv[0] == "vmemu"
    code = main(argv[1:])
    printed = capsys.readouterr().out.splitlines()
    violation = any(line.startswith("VIOLATION") for line in expected)
    assert code == (1 if violation and argv[1] in ("run", "explore") else 0)
    got = [TIMING.sub("in Ts (N steps/s)", line) for line in printed]
    want = [TIMING.sub("in Ts (N steps/s)", line) for line in expected]
    # A README excerpt may stop early; everything it shows must match.
    assert got[: len(want)] == want
