"""The kernel model (emulator/kern) imports nothing of the harness around it.

The kernel runs on the scheduler Protocol of emulator.kern.sched and reports to
the Monitor of emulator.kern.monitor; the harness (scheduler, spec, checkers,
traces, campaigns, the command line) implements and drives those.  Every
import of every kern module is read, TYPE_CHECKING blocks and function bodies
included, so a new dependency cannot creep in.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

KERN = Path(__file__).resolve().parents[2] / "emulator" / "kern"
HARNESS = ("emulator.sched", "emulator.spec", "emulator.check", "emulator.trace",
           "emulator.campaign", "emulator.cli", "emulator.machine", "emulator.mutants",
           "emulator.variants", "emulator.api")


def imports_of(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            found.append(node.module or "")
    return found


def harness_imports(path: Path) -> list[str]:
    return [m for m in imports_of(path)
            if any(m == h or m.startswith(h + ".") for h in HARNESS)]


@pytest.mark.parametrize("path", sorted(KERN.glob("*.py")), ids=lambda p: p.name)
def test_no_kern_module_imports_the_harness(path: Path) -> None:
    assert harness_imports(path) == []


def test_the_scan_sees_imports_in_type_checking_blocks_and_functions(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from emulator.sched.scheduler import Scheduler\n"
        "def f() -> None:\n"
        "    import emulator.check.base\n"
        "from emulator.kern.sched import Sched\n"
    )
    assert harness_imports(sample) == ["emulator.sched.scheduler", "emulator.check.base"]


def test_the_scan_covers_the_kernel() -> None:
    names = {p.name for p in KERN.glob("*.py")}
    assert {"kernel.py", "map.py", "sched.py", "monitor.py", "syscalls.py"} <= names
