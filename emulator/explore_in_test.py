"""Exploration inside a test: what the ``vmemu`` pytest fixture does.

:meth:`Vmemu.explore` runs a campaign (emulator.campaign) of one workload with
a variant given as a Python object -- the test's own ``async def clean(...)``,
a :class:`Variant`, or a built-in name -- and fails the test at the first
violation with the rule, the message, the command that reruns its seed and the
command that replays its trace.

Failures are kept in a database directory, as Hypothesis keeps its examples:
each failure's trace goes under ``DB/failures/KEY/``, KEY a digest of the
test's node id and of the run configuration without its seed.  The next
exploration with the same key replays the saved traces first, with the variant
the test passes *now* -- never code a trace names: a trace that still fails
fails the test at once, without exploring; one that no longer fails is dropped,
and exploration goes on.

The plugin (emulator.pytest_plugin) imports this module only when a test asks
for the fixture, so a pytest run that does not use vmemu never loads it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio

from emulator.campaign import Config, Failure, confidence, run_campaign
from emulator.check import all_checkers
from emulator.config import DEFAULT_PREEMPTION_BOUND, FOLLOW, RunConfig
from emulator.errors import BadInput, InternalError
from emulator.machine import Execution, Machine
from emulator.pytest_plugin import DEFAULT_ITERATIONS, Settings
from emulator.trace.reader import Trace, load_trace
from emulator.trace.record import record
from emulator.trace.replay import FollowStrategy, replay
from emulator.variants import BUILTIN, Variant, load_variant

# What explore() and the marker take, besides the workload and the variant.
OPTIONS = ("params", "profile", "strategy", "pct_depth", "preemption_bound", "reduction",
           "max_steps", "seed", "iterations", "time_budget")


def _display(path: Path) -> str:
    """``path`` relative to the working directory when inside it, else absolute."""
    absolute = path.absolute()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


# -- the variant ------------------------------------------------------------------------


@dataclass(frozen=True)
class NamedVariant:
    """A variant with the name a trace header and a ``--variant`` option carry.

    ``loadable``: ``vmemu --variant NAME`` loads this very code (a built-in, or
    an object bound at module level in a file), so the printed commands work.
    ``key``: how the failure database knows it, whatever the working directory.
    """

    variant: Variant
    name: str
    loadable: bool
    key: str


def _module_ref(module: ModuleType) -> str | None:
    """How ``--variant`` names ``module``: its file, relative to the working directory
    when inside it (where the printed commands are run)."""
    path = getattr(module, "__file__", None)
    return _display(Path(path)) if path else None


def _locate(obj: object, modules: Iterable[ModuleType | None]) -> tuple[str, str] | None:
    """``file.py:name`` and ``module:name`` of a module-level binding of ``obj``."""
    for module in modules:
        if module is None:
            continue
        for attr, value in vars(module).items():
            if value is obj and attr.isidentifier() and not attr.startswith("__"):
                ref = _module_ref(module)
                if ref is not None:
                    return f"{ref}:{attr}", f"{module.__name__}:{attr}"
    return None


def name_variant(obj: object, home: ModuleType | None) -> NamedVariant:
    """Take the variant a test passes: a built-in name or ``--variant`` string, a
    :class:`Variant`, or an ``async def clean(map, start, end, syncio, invalidate)``.

    ``home`` is the test's module, where a module-level variant is looked for
    when its own module does not bind it.
    """
    if obj is None:
        obj = "reference"
    if isinstance(obj, str):
        return NamedVariant(load_variant(obj), obj, True, obj)
    if isinstance(obj, Variant):
        if BUILTIN.get(obj.name) is obj:
            return NamedVariant(obj, obj.name, True, obj.name)
        code: Any = obj.clean
    elif inspect.iscoroutinefunction(obj):
        code = obj
    else:
        raise TypeError(f"vmemu: variant={obj!r} is neither a variant name, a Variant nor an "
                        "async def clean(map, start, end, syncio, invalidate)")
    module_name = str(getattr(code, "__module__", ""))
    found = _locate(obj, (sys.modules.get(module_name), home))
    if found is None:
        label = obj.name if isinstance(obj, Variant) else str(code.__qualname__)
        return NamedVariant(obj if isinstance(obj, Variant) else Variant(label, obj),
                            f"{label} (not importable)", False, f"{module_name}:{label}")
    where, key = found
    return NamedVariant(obj if isinstance(obj, Variant) else Variant(where, obj), where, True,
                        key)


# -- the database -----------------------------------------------------------------------


class FailureDatabase:
    """Saved failing traces, one directory per test and configuration."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def directory(self, nodeid: str, config: RunConfig, variant: NamedVariant) -> Path:
        """Where the failures of ``nodeid`` under ``config`` (any seed) live."""
        config = dataclasses.replace(config, seed=0, variant=variant.key)
        described = {"test": nodeid, **dataclasses.asdict(config)}
        key = hashlib.blake2b(json.dumps(described, sort_keys=True).encode(),
                              digest_size=8).hexdigest()
        return self.root / "failures" / key

    def saved(self, directory: Path) -> list[Path]:
        """The traces saved in ``directory``, oldest seed first."""
        if not directory.is_dir():
            return []
        return sorted(directory.glob("*.trace.jsonl"),
                      key=lambda p: (len(p.name), p.name))

    def drop(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: other failures stay
            path.parent.rmdir()  # the last one: leave no empty key directory behind


# -- running ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Exploration:
    """What a clean exploration covered (explore() fails the test otherwise)."""

    config: RunConfig  # with the first seed
    executions: int
    steps: int
    coverage: dict[str, Any]  # emulator.campaign.confidence
    dropped: tuple[str, ...]  # saved failures replayed first that pass now (removed)


def _in_trio() -> bool:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


def _ran(failure: Failure, config: RunConfig) -> RunConfig:
    """The configuration that ran ``failure``: under the portfolio, the member it chose."""
    return failure.run or dataclasses.replace(config, seed=failure.seed)


class Vmemu:
    """The ``vmemu`` fixture: explore variants on workloads inside one test."""

    def __init__(self, nodeid: str, home: ModuleType | None, defaults: dict[str, Any],
                 settings: Settings, report: Callable[[str], None]) -> None:
        self.nodeid = nodeid
        self.home = home
        self.defaults = defaults  # from the test's vmemu marker
        self.settings = settings
        self.db = FailureDatabase(settings.db)
        self.report = report  # one text per explore() call, into the test's report
        self.lines: list[str] = []

    def log(self, line: str) -> None:
        self.lines.append(line)

    def explore(
        self,
        workload: str | None = None,
        variant: object = None,
        *,
        params: dict[str, object] | None = None,
        profile: str | None = None,
        strategy: str | None = None,
        pct_depth: int | None = None,
        preemption_bound: int | str | None = None,
        reduction: bool | None = None,
        max_steps: int | None = None,
        seed: int | None = None,
        iterations: int | None = None,
        time_budget: float | None = None,
    ) -> Exploration:
        """Replay this test's saved failures, then explore ``variant`` on ``workload``;
        fail the test at the first violation.

        Arguments left out come from the test's ``@pytest.mark.vmemu(...)``, then
        vmemu's defaults.  ``preemption_bound="none"``: no bound (dfs).
        ``--vmemu-budget`` replaces ``iterations``/``time_budget``;
        ``--vmemu-seed`` is added to ``seed`` (default 0).
        """
        given = {"workload": workload, "variant": variant, "params": params,
                 "profile": profile, "strategy": strategy, "pct_depth": pct_depth,
                 "preemption_bound": preemption_bound, "reduction": reduction,
                 "max_steps": max_steps, "seed": seed, "iterations": iterations,
                 "time_budget": time_budget}
        # None is "not given", in the marker as here ("none": no preemption bound).
        opts = {k: v for k, v in self.defaults.items() if v is not None}
        opts.update((k, v) for k, v in given.items() if v is not None)
        if _in_trio():
            raise RuntimeError("vmemu.explore runs its own trio loop: call it from a plain "
                               "`def` test, not an `async def` one")
        if opts.get("workload") is None:
            raise TypeError("vmemu.explore: no workload (pass one, or set it in "
                            "@pytest.mark.vmemu(workload=...))")
        try:
            named = name_variant(opts.get("variant"), self.home)
            config = self._config(opts, named)
            config.spec()  # the workload and its parameters, checked once
        except BadInput as exc:
            pytest.fail(f"vmemu: {exc}", pytrace=False)
        directory = self.db.directory(self.nodeid, config, named)
        self.lines = []
        try:
            dropped = self._replay_saved(directory, config, named)
            return self._explore(opts, config, named, directory, dropped)
        finally:
            if self.lines:
                self.report("\n".join(self.lines))

    def _config(self, opts: dict[str, Any], named: NamedVariant) -> RunConfig:
        bound = opts.get("preemption_bound", DEFAULT_PREEMPTION_BOUND)
        fields: dict[str, Any] = {
            "workload": str(opts["workload"]),
            "params": tuple((str(k), str(v).lower() if isinstance(v, bool) else str(v))
                            for k, v in (opts.get("params") or {}).items()),
            "profile": opts.get("profile"),
            "variant": named.name,
            "preemption_bound": None if bound == "none" else bound,
            "reduction": opts.get("reduction"),
            "seed": int(opts.get("seed") or 0) + self.settings.seed,
        }
        for key in ("strategy", "pct_depth", "max_steps"):
            if opts.get(key) is not None:
                fields[key] = opts[key]
        return RunConfig(**fields)

    # -- the database first ------------------------------------------------------------

    def _replay_saved(self, directory: Path, config: RunConfig,
                      named: NamedVariant) -> tuple[str, ...]:
        dropped: list[str] = []
        for path in self.db.saved(directory):
            shown = _display(path)
            try:
                trace = load_trace(str(path))
                result = trio.run(replay, trace, named.variant)
            except BadInput as exc:
                # Written by another vmemu version, or edited: it cannot say anything now.
                self.db.drop(path)
                self.log(f"dropped unreadable saved failure {shown}: {exc}")
                continue
            ex = result.execution
            if not ex.violations:
                self.db.drop(path)
                self.log(f"replayed saved failure {shown}: passes now, dropped from the "
                         "database")
                dropped.append(shown)
                continue
            rerun: str | None = None
            if result.identical and trace.config.seeded:
                # The strategy that ran it (the portfolio's member), as its trace records.
                rerun = dataclasses.replace(config, strategy=trace.config.strategy,
                                            pct_depth=trace.config.pct_depth,
                                            seed=trace.config.seed).command()
            elif not result.identical:
                # The code changed and still fails under the saved schedule: save what it
                # does now, so the printed replay command reproduces this failure.
                self._record_following(trace, named, path)
            self.log(f"replayed saved failure {shown}: still fails")
            pytest.fail(self._report(
                f"vmemu: a saved failure of this test, replayed before any new exploration, "
                f"still fails ({trace.config.workload}, variant {named.name}):",
                [v.to_json() for v in ex.violations],
                trace.config.seed if result.identical and trace.config.seeded else None,
                rerun, path, named,
                "it stays in the database until the variant passes it"), pytrace=False)
        return tuple(dropped)

    def _record_following(self, trace: Trace, named: NamedVariant, path: Path) -> None:
        config = dataclasses.replace(trace.config, variant=named.name, strategy=FOLLOW)
        machine = Machine(trace.spec, named.variant, FollowStrategy(trace.decisions),
                          checkers=all_checkers(), max_steps=config.max_steps)
        trio.run(record, machine, config, trace.spec, str(path))

    # -- then exploring ----------------------------------------------------------------

    def _explore(self, opts: dict[str, Any], config: RunConfig, named: NamedVariant,
                 directory: Path, dropped: tuple[str, ...]) -> Exploration:
        iterations: int | None = opts.get("iterations")
        seconds: float | None = opts.get("time_budget")
        budget = self.settings.budget
        if budget is not None:
            iterations, seconds = budget.iterations, budget.seconds
        elif iterations is None and seconds is None and config.strategy != "dfs":
            iterations = DEFAULT_ITERATIONS
        # The variant object the test passed runs in process: a test's own function is
        # not loaded by name.
        cfg = Config(run=config, iterations=iterations, time_budget=seconds,
                     stop_on_first=True, variant=named.variant)
        summary = run_campaign(cfg, 1)
        last = config.seed + summary.executions - 1
        seeds = (f"seeds {config.seed}..{last}" if config.seeded
                 else f"preemption bound {config.preemption_bound}")
        where = (f"{config.workload} (profile {config.spec().profile}, variant {named.name}, "
                 f"strategy {config.strategy}, {seeds})")
        if summary.failures:
            failure = summary.failures[0]
            path = self._save(failure, config, named, directory)
            self.log(f"explored {summary.executions} executions of {where}: violation, "
                     f"saved to {_display(path)}")
            ran = _ran(failure, config)  # the portfolio's member that found it
            rerun = ran.command() if ran.seeded else None
            pytest.fail(self._report(
                f"vmemu: exploring {where} found a violation:", failure.violations,
                failure.seed if config.seeded else None, rerun, path, named,
                "saved in the vmemu database: the next run replays it before exploring"),
                pytrace=False)
        coverage = confidence(summary)
        self.log(f"explored {summary.executions} executions of {where}: ok; "
                 f"coverage: {coverage['statement']}")
        return Exploration(config, summary.executions, summary.steps, coverage, dropped)

    def _save(self, failure: Failure, config: RunConfig, named: NamedVariant,
              directory: Path) -> Path:
        """Re-run the failing execution with recording on, into the database."""
        config = _ran(failure, config)
        machine = config.machine(named.variant)
        if not config.seeded:
            machine.strategy = FollowStrategy(failure.decisions)  # dfs: its decisions
            config = dataclasses.replace(config, strategy=FOLLOW)
        spec = config.spec()
        base = re.sub(r"[^A-Za-z0-9_]+", "_", os.path.basename(config.workload)).strip("_")
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{base}-{spec.profile}-seed{failure.seed}.trace.jsonl"
        again: Execution = trio.run(record, machine, config, spec, str(path))
        if [v.to_json() for v in again.violations] != failure.violations:
            raise InternalError(f"seed {failure.seed} did not reproduce when re-run for its "
                                "trace: vmemu is not deterministic here (a bug)")
        return path

    @staticmethod
    def _report(title: str, violations: list[dict[str, Any]], seed: int | None,
                rerun: str | None, path: Path, named: NamedVariant, note: str) -> str:
        lines = [title]
        at = "" if seed is None else f" (seed {seed})"
        for v in violations:
            lines.append(f"VIOLATION {v['rule']} at step {v['step']}{at}: {v['message']}")
        shown = _display(path)
        if named.loadable:
            if rerun is not None:
                lines.append(f"  rerun with: {rerun}")
            lines.append(f"  trace: {shown}")
            replay_cmd = ["vmemu", "replay", shown]
            if named.name not in BUILTIN:
                replay_cmd += ["--variant", named.name]  # vmemu never loads what a trace names
            lines.append(f"  replay with: {shlex.join(replay_cmd)}")
        else:
            lines.append(f"  trace: {shown}")
            lines.append(f"  replay with: none from the command line: the variant "
                         f"{named.variant.name} is not bound at module level, so `vmemu "
                         "--variant` cannot load it (define it at module level for the "
                         "command); this test replays the trace itself")
        lines.append(f"  ({note})")
        return "\n".join(lines)
