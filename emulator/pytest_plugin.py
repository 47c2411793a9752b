"""vmemu's pytest plugin: explore a variant on a workload inside a test.

Installed with the package (entry point ``pytest11``), so every pytest run in
the environment loads it; it stays inert unless a test uses it.  It adds

- the ``vmemu`` fixture: ``vmemu.explore(workload, variant, iterations=...)``
  (emulator.explore_in_test), which fails the test at the first violation;
- the ``vmemu`` marker: defaults for that test's ``explore`` calls,
  ``@pytest.mark.vmemu("two_cleaners", variant=my_clean, iterations=300)``;
- ``--vmemu-seed N|random`` (added to every exploration's first seed),
  ``--vmemu-budget N|Ns`` (executions, or seconds, per exploration: replaces
  what the tests say) and ``--vmemu-db DIR`` (the failure database, default
  ``.vmemu`` under pytest's rootdir); the seed goes into the report header.

Only this module loads with pytest; the emulator itself is imported when a
test first asks for the fixture.
"""

from __future__ import annotations

import argparse
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from emulator.explore_in_test import Vmemu


@dataclass(frozen=True)
class Budget:
    """``--vmemu-budget``: executions per exploration (``500``) or seconds (``30s``)."""

    iterations: int | None = None
    seconds: float | None = None

    @classmethod
    def parse(cls, text: str) -> Budget:
        """Read ``N`` (executions) or ``Ns`` (seconds); ValueError when it is neither."""
        try:
            budget = (cls(seconds=float(text[:-1])) if text.endswith("s")
                      else cls(iterations=int(text)))
        except ValueError:
            raise ValueError("give executions (500) or seconds (30s)") from None
        if (budget.iterations or budget.seconds or 0) <= 0:
            raise ValueError("must be positive")
        return budget

    def __str__(self) -> str:
        if self.seconds is not None:
            return f"{self.seconds:g}s"
        return f"{self.iterations} executions"


@dataclass(frozen=True)
class Settings:
    """The command line's say: first-seed offset, budget override, database root."""

    seed: int = 0
    budget: Budget | None = None
    db: Path = Path(".vmemu")


# Executions per exploration when neither the test nor --vmemu-budget says.
DEFAULT_ITERATIONS = 200

_SETTINGS = pytest.StashKey["Settings"]()
_RANDOM_SEED = pytest.StashKey[bool]()


def _seed(text: str) -> int | str:
    if text == "random":
        return text
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a seed (0, 1, ...) or "
                                         "'random'") from None
    if seed < 0:
        raise argparse.ArgumentTypeError(f"{text}: a seed is not negative")
    return seed


def _budget(text: str) -> Budget:
    try:
        return Budget.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vmemu", "vmemu: explore clean variants inside tests")
    group.addoption("--vmemu-seed", type=_seed, default=0, metavar="N|random",
                    help="added to the first seed of every vmemu exploration (default 0; "
                         "'random' picks one and shows it in the header)")
    group.addoption("--vmemu-budget", type=_budget, default=None, metavar="N|Ns",
                    help="executions (500) or seconds (30s) per vmemu exploration, "
                         "replacing what the tests say (default: theirs, else "
                         f"{DEFAULT_ITERATIONS} executions)")
    group.addoption("--vmemu-db", default=None, metavar="DIR",
                    help="vmemu's failure database (default: .vmemu under the rootdir)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "vmemu(workload, variant=..., iterations=..., ...): defaults for the vmemu fixture's "
        "explore() in this test")
    seed = config.getoption("vmemu_seed")
    config.stash[_RANDOM_SEED] = seed == "random"
    if seed == "random":
        seed = secrets.randbelow(10**6)  # shown in the header, so a run can be repeated
    db = config.getoption("vmemu_db")
    config.stash[_SETTINGS] = Settings(
        seed=int(seed), budget=config.getoption("vmemu_budget"),
        db=Path(db) if db is not None else config.rootpath / ".vmemu")


def pytest_report_header(config: pytest.Config) -> str:
    settings = config.stash[_SETTINGS]
    seed = f"seed {settings.seed}"
    if config.stash[_RANDOM_SEED]:
        seed += f" (random: --vmemu-seed {settings.seed} repeats it)"
    budget = (f"{settings.budget} per exploration" if settings.budget is not None
              else f"each test's own (default {DEFAULT_ITERATIONS} executions)")
    return f"vmemu: {seed}, budget {budget}, database {_shown(settings.db)}"


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when inside it (as the commands in
    failure reports are), else absolute."""
    absolute = path.absolute()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


@pytest.fixture
def vmemu(request: pytest.FixtureRequest) -> Vmemu:
    """Explore variants on workloads: ``vmemu.explore("two_cleaners", my_clean)``."""
    from emulator.explore_in_test import OPTIONS, Vmemu

    defaults: dict[str, Any] = {}
    marker = request.node.get_closest_marker("vmemu")
    if marker is not None:
        unknown = sorted(set(marker.kwargs) - {"workload", "variant", *OPTIONS})
        if unknown or len(marker.args) > 1:
            what = (f"unknown option {unknown[0]!r}" if unknown
                    else f"one workload, not {len(marker.args)} arguments")
            raise TypeError(f"@pytest.mark.vmemu: {what} (it takes a workload and the "
                            f"keywords variant, {', '.join(OPTIONS)})")
        defaults = dict(marker.kwargs)
        if marker.args:
            defaults["workload"] = marker.args[0]
    module = getattr(request.node, "module", None)

    def log(text: str) -> None:
        # Shown with the test's report (-rP for a passing test): what ran, what was
        # replayed first, what was dropped.
        request.node.add_report_section("call", "vmemu", text)

    return Vmemu(request.node.nodeid, module, defaults, request.config.stash[_SETTINGS], log)
