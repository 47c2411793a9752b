"""The checker installer (emulator/check/installer.py): re-installed checkers are as built.

On every workload and profile, the checkers a machine re-installs on its next
execution's kernel subscribe the same handlers in the same order, with the same
fresh state, as checkers built anew on that kernel; the installer builds them
once per spec.  What it cannot recognise -- a closure subscribed, state that
is not fresh, a kernel attribute set while subscribing, another spec -- it
builds anew every time.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from emulator.check import all_checkers
from emulator.check.base import Checker
from emulator.config import RunConfig
from emulator.kern.events import Lock, Store
from emulator.kern.kernel import Kernel
from emulator.kern.profile import PROFILES
from emulator.machine import Machine
from emulator.variants import load_variant
from workloads import WORKLOADS


def _shape(k: Kernel) -> dict[str, Any]:
    """The kernel's subscriptions and their owners' state, objects named by class and
    the order first met (so that two kernels can be compared)."""
    names: dict[int, str] = {}

    def name(obj: object) -> str:
        if obj is k:
            return "kernel"
        key = id(obj)
        if key not in names:
            names[key] = f"{type(obj).__name__}#{len(names)}"
        return names[key]

    owners: list[Any] = []

    def fn_shape(fn: Any) -> tuple[str, str]:
        owner = fn.__self__
        if not any(owner is o for o in owners):
            owners.append(owner)
        return (name(owner), fn.__func__.__qualname__)

    observers = {kind.__name__: [fn_shape(fn) for fn in fns]
                 for kind, fns in k.observers.items()}
    shared = {key: name(value) for key, value in k.shared.items()}
    state = {}
    objects = list(owners) + list(k.shared.values())
    for owner in objects:
        fields: dict[str, Any] = {}
        for attr, value in vars(owner).items():
            if value is k or any(value is o for o in objects):
                fields[attr] = name(value)
            elif isinstance(value, dict | set | list):
                fields[attr] = (type(value).__name__,
                                [fn_shape(v) if hasattr(v, "__self__") else repr(v)
                                 for v in value])
            else:
                fields[attr] = repr(value)
        state[name(owner)] = fields
    return {"observers": observers, "shared": shared, "state": state}


def _machine(run: RunConfig, spec: Any, factories: list[Any] | None = None) -> Machine:
    return Machine(spec, load_variant(run.variant), run.make_strategy(),
                   checkers=all_checkers() if factories is None else factories,
                   driver="direct")


async def _shapes(machine: Machine, seeds: list[int]) -> list[dict[str, Any]]:
    shapes: list[dict[str, Any]] = []
    machine.watchers.append(lambda k: shapes.append(_shape(k)))  # right after installing
    for seed in seeds:
        await machine.execute(seed)
    return shapes


@pytest.mark.parametrize("profile", list(PROFILES))
@pytest.mark.parametrize("workload", list(WORKLOADS))
async def test_reinstalled_checkers_are_the_checkers_built_anew(workload: str,
                                                                profile: str) -> None:
    run = RunConfig(workload, profile=profile, strategy="random", seed=3)
    spec = run.spec()
    reused = _machine(run, spec)
    again = await _shapes(reused, [3, 4, 5])
    assert reused.installer.built == 1 and reused.installer.plan is not None
    fresh = [(await _shapes(_machine(run, spec), [seed]))[0] for seed in (3, 4, 5)]
    assert again == fresh
    assert fresh[0]["observers"]["Lock"], "the checkers watch the locks"


async def test_reinstalled_checkers_are_the_same_objects_on_the_new_kernel() -> None:
    run = RunConfig("two_cleaners", strategy="random")
    machine = _machine(run, run.spec())
    seen: list[tuple[Kernel, list[Any]]] = []
    machine.watchers.append(lambda k: seen.append(
        (k, [cast(Any, fn).__self__ for fns in k.observers.values() for fn in fns])))
    for seed in range(3):
        await machine.execute(seed)
    (k0, owners0), (k1, owners1), (k2, owners2) = seen
    assert k0 is not k1 is not k2
    assert all(a is b is c for a, b, c in zip(owners0, owners1, owners2, strict=True))
    assert all(o.k is k2 for o in owners2)


class _Closure(Checker):
    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        seen: list[Any] = []
        k.observe(Store, lambda step, aid, ev: seen.append(ev))


class _Primed(Checker):
    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        self.files = dict(k.files)  # state read from the kernel: not fresh
        k.observe(Store, self._store)

    def _store(self, step: int, aid: int, ev: Store) -> None:
        pass


class _SetsKernel(Checker):
    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        k.trusted = not k.trusted  # changes the kernel while subscribing
        k.observe(Lock, self._lock)

    def _lock(self, step: int, aid: int, ev: Lock) -> None:
        pass


class _Counted(Checker):
    made = 0

    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        type(self).made += 1
        self.locks: list[int] = []
        k.observe(Lock, self._lock)

    def _lock(self, step: int, aid: int, ev: Lock) -> None:
        self.locks.append(step)


@pytest.mark.parametrize("odd", [_Closure, _Primed, _SetsKernel])
async def test_what_it_cannot_recognise_is_built_anew(odd: type[Checker]) -> None:
    run = RunConfig("writers_vs_msync", strategy="random")
    machine = _machine(run, run.spec(), [*all_checkers(), odd])
    for seed in range(3):
        await machine.execute(seed)
    assert machine.installer.built == 3 and machine.installer.plan is None


async def test_another_spec_is_built_anew_and_the_same_spec_is_not() -> None:
    run = RunConfig("writers_vs_msync", strategy="random")
    _Counted.made = 0
    machine = _machine(run, run.spec(), [*all_checkers(), _Counted])
    other = RunConfig("writers_vs_msync", params=(("cpus", "2"),)).spec()
    for seed in range(3):
        await machine.execute(seed)
    assert _Counted.made == 1
    await machine.execute(3, other)
    await machine.execute(4, other)
    await machine.execute(5)
    assert _Counted.made == 3 and machine.installer.built == 3


async def test_a_reinstalled_checker_starts_with_fresh_state() -> None:
    run = RunConfig("writers_vs_msync", strategy="random")
    machine = _machine(run, run.spec(), [_Counted])
    counts = []
    for seed in range(3):
        await machine.execute(seed)
        (checker,) = machine.installer.plan.checkers if machine.installer.plan else []
        assert isinstance(checker, _Counted)
        counts.append(len(checker.locks))
    fresh = _machine(run, run.spec(), [_Counted])
    await fresh.execute(2)
    plan = fresh.installer.plan
    assert plan is not None and isinstance(plan.checkers[0], _Counted)
    assert counts[2] == len(plan.checkers[0].locks) > 0


@pytest.mark.parametrize("profile", list(PROFILES))
async def test_the_builtin_checkers_are_built_once_for_every_spec_of_a_profile(
        profile: str) -> None:
    # Built on one spec and re-installed on the kernels of others (other workloads,
    # a generated spec per seed), they are what building them anew on each would give.
    specs = [RunConfig(w, profile=profile, seed=seed).spec()
             for w in ("generated", "random_mix", "two_cleaners", "writers_vs_msync")
             for seed in (0, 1)]
    run = RunConfig("generated", profile=profile, strategy="random")
    reused = _machine(run, specs[0])
    again: list[dict[str, Any]] = []
    reused.watchers.append(lambda k: again.append(_shape(k)))
    for seed, spec in enumerate(specs):
        await reused.execute(seed, spec)
    assert reused.installer.built == 1
    fresh = []
    for seed, spec in enumerate(specs):
        machine = _machine(run, spec)
        machine.watchers.append(lambda k: fresh.append(_shape(k)))
        await machine.execute(seed, spec)
        assert machine.installer.built == 1
    assert again == fresh


async def test_checkers_of_their_own_are_built_anew_for_another_spec() -> None:
    # Only the built-in checkers are known to read nothing but the profile.
    run = RunConfig("generated", strategy="random")
    machine = _machine(run, run.spec(0), [*all_checkers(), _Counted])
    for seed in range(3):
        await machine.execute(seed, run.spec(seed))
    assert machine.installer.built == 3
    assert not machine.installer.portable and _machine(run, run.spec(0)).installer.portable
