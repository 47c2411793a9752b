"""One run configuration: everything that decides what one execution does.

A :class:`RunConfig` is built once from the command line (``cli.run_config``)
and is the only place its fields live: a campaign holds one, the mutants
self-test builds one per workload, a trace header is written from one and read
back into one, and every printed "rerun with" command is its :meth:`to_argv`.
Two configs are equal exactly when they run the same executions: options the
chosen strategy does not read are reset to their defaults, and the driver (how
the baton moves, never what runs) takes no part in equality.
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass, field
from typing import Any

from emulator import __version__
from emulator.check import all_checkers
from emulator.machine import DEFAULT_MAX_STEPS, Machine
from emulator.sched.drivers import DEFAULT_DRIVER, driver_class
from emulator.sched.strategies import STRATEGIES, Strategy, make_strategy
from emulator.spec import Spec
from emulator.variants import Variant, load_variant
from workloads import load_workload

DEFAULT_VARIANT = "reference"
DEFAULT_STRATEGY = "portfolio"
DEFAULT_PCT_DEPTH = 3
DEFAULT_PREEMPTION_BOUND: int | None = 2
# The strategy of a run driven by recorded decisions (a dfs failure re-run for
# its trace, a shrunk trace): it names no registered strategy, so a config with
# it reproduces only through its trace, never from a seed.
FOLLOW = "follow"

# The options each strategy reads.  The others cannot change its executions.
STRATEGY_OPTIONS: dict[str, tuple[str, ...]] = {
    "pct": ("pct_depth",),
    "dfs": ("preemption_bound", "reduction"),
}


def auto_reduction(preemption_bound: int | None) -> bool:
    """Sleep sets are sound alone; under a preemption bound they can skip a schedule
    whose only equivalents need more preemptions, so auto keeps them off there."""
    return preemption_bound is None


def param_text(value: object) -> str:
    """A resolved workload parameter as ``--param`` takes it back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class RunConfig:
    """The workload, profile, variant, strategy with its options, seed and step bound.

    ``params`` are the workload parameters as given (``--param`` strings),
    sorted; ``profile`` None means the workload's own; ``reduction`` None
    means auto (see :func:`auto_reduction`), and is resolved for dfs.
    ``driver`` moves the baton (emulator/sched/drivers.py): the executions are
    the same under every driver, so it is not compared and not in a trace
    header, but a rerun command carries it when it is not the default.
    """

    workload: str
    params: tuple[tuple[str, str], ...] = ()
    profile: str | None = None
    variant: str = DEFAULT_VARIANT
    strategy: str = DEFAULT_STRATEGY
    pct_depth: int = DEFAULT_PCT_DEPTH
    preemption_bound: int | None = DEFAULT_PREEMPTION_BOUND
    reduction: bool | None = None
    seed: int = 0
    max_steps: int = DEFAULT_MAX_STEPS
    driver: str = field(default=DEFAULT_DRIVER, compare=False)

    def __post_init__(self) -> None:
        driver_class(self.driver)  # an unknown driver is bad input
        # Canonical form, so that equal configs are equal executions.
        put = object.__setattr__
        put(self, "params", tuple(sorted(dict(self.params).items())))
        options = STRATEGY_OPTIONS.get(self.strategy, ())
        if "pct_depth" not in options:
            put(self, "pct_depth", DEFAULT_PCT_DEPTH)
        if "preemption_bound" not in options:
            put(self, "preemption_bound", DEFAULT_PREEMPTION_BOUND)
        if "reduction" not in options:
            put(self, "reduction", None)
        elif self.reduction is None:
            put(self, "reduction", auto_reduction(self.preemption_bound))

    def with_seed(self, seed: int) -> RunConfig:
        """This config with ``seed``: ``dataclasses.replace`` without re-canonicalising
        (every other field is canonical already); what a campaign does per execution."""
        if seed == self.seed:
            return self
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        object.__setattr__(new, "seed", seed)
        return new

    # -- building what it describes ----------------------------------------------------

    @property
    def seeded(self) -> bool:
        """Whether the seed alone reproduces an execution (dfs and follow: no)."""
        kind = STRATEGIES.get(self.strategy)
        return kind is not None and kind.seeded

    def spec(self, seed: int | None = None) -> Spec:
        """The workload expanded for ``seed`` (default: this config's)."""
        return load_workload(self.workload, dict(self.params), self.seed if seed is None
                             else seed, self.profile)

    def make_strategy(self) -> Strategy:
        return make_strategy(self.strategy, self.pct_depth, self.preemption_bound,
                             bool(self.reduction))

    def machine(self, variant: Variant | None = None, spec: Spec | None = None) -> Machine:
        """A machine for these executions; ``variant``: the already loaded one."""
        return Machine(spec or self.spec(), variant or load_variant(self.variant),
                       self.make_strategy(), checkers=all_checkers(), max_steps=self.max_steps,
                       driver=self.driver)

    # -- the command line -------------------------------------------------------------

    def to_argv(self) -> list[str]:
        """The ``vmemu`` arguments that rerun this execution: ``run``, the workload, then
        every option that differs from its default (the seed always)."""
        words = ["run", self.workload]
        for key, value in self.params:
            words += ["--param", f"{key}={value}"]
        if self.profile is not None:
            words += ["--profile", self.profile]
        if self.variant != DEFAULT_VARIANT:
            words += ["--variant", self.variant]
        if self.strategy != DEFAULT_STRATEGY:
            words += ["--strategy", self.strategy]
        if self.pct_depth != DEFAULT_PCT_DEPTH:
            words += ["--pct-depth", str(self.pct_depth)]
        if self.preemption_bound != DEFAULT_PREEMPTION_BOUND:
            bound = self.preemption_bound
            words += ["--preemption-bound", "none" if bound is None else str(bound)]
        if self.reduction is not None and self.reduction != auto_reduction(
                self.preemption_bound):
            words += ["--reduction", "on" if self.reduction else "off"]
        words += ["--seed", str(self.seed)]
        if self.max_steps != DEFAULT_MAX_STEPS:
            words += ["--max-steps", str(self.max_steps)]
        if self.driver != DEFAULT_DRIVER:
            words += ["--driver", self.driver]
        return words

    def command(self) -> str:
        """:meth:`to_argv` as one shell-quoted command line."""
        return shlex.join(["vmemu", *self.to_argv()])

    # -- the trace header -------------------------------------------------------------

    def pinned(self, spec: Spec | None = None) -> RunConfig:
        """The same executions with the profile and every workload parameter explicit:
        what a trace header records, so what :meth:`from_header` gives back."""
        spec = spec or self.spec()
        params = dict(spec.params) or dict(self.params)
        return dataclasses.replace(self, profile=spec.profile,
                        params=tuple((k, param_text(v)) for k, v in params.items()
                                     if v is not None))

    def to_header(self, spec: Spec | None = None) -> dict[str, Any]:
        """The trace header's fields for this run of ``spec`` (default: this config's).

        ``params`` are the workload's resolved parameters; a spec that has none
        (a spec file, a shrunk spec) records the config's own.  The strategy is
        described as the strategy itself describes it.
        """
        spec = spec or self.spec()
        params = dict(spec.params) or dict(self.params)
        strategy = ({"name": self.strategy} if self.strategy not in STRATEGIES
                    else self.make_strategy().describe())
        return {
            "emulator": __version__,
            "profile": spec.profile,
            "variant": self.variant,
            "workload": self.workload,
            "params": {k: v for k, v in params.items() if v is not None},
            "spec": spec.to_json(),
            "strategy": strategy,
            "seed": self.seed,
            "max_steps": self.max_steps,
            "agents": [f"cpu{i}" for i in range(len(spec.cpus))] + ["disk", *spec.agents],
        }

    @classmethod
    def from_header(cls, header: dict[str, Any]) -> RunConfig:
        """The config a (validated) trace header records; see :meth:`pinned`."""
        strategy: dict[str, Any] = header["strategy"]
        params: dict[str, Any] = header.get("params") or {}
        reduction = strategy.get("reduction")
        return cls(
            workload=str(header.get("workload", "spec")),
            params=tuple((str(k), param_text(v)) for k, v in params.items()),
            profile=header["profile"],
            variant=header["variant"],
            strategy=str(strategy["name"]),
            pct_depth=int(strategy.get("depth", DEFAULT_PCT_DEPTH)),
            preemption_bound=strategy.get("preemption_bound", DEFAULT_PREEMPTION_BOUND),
            reduction=None if reduction is None else bool(reduction),
            seed=int(header["seed"]),
            max_steps=int(header["max_steps"]),
        )

