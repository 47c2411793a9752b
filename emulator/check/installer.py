"""Installing a machine's checkers on each execution's kernel, built once.

A machine runs many executions of one spec, and every execution gets new
checkers: the same classes, built by ``__init__`` on the new kernel, each
subscribing its handlers (``k.observe``) in the same order.  Built that way,
a set of checkers costs about a fifth of an empty execution.

:class:`Installer` builds them once and then *re-installs* the same objects:
it records what building them did to the first kernel, and repeats exactly
that on the next one -- each object's attributes as ``__init__`` left them
(the kernel, the other checkers and helpers, fresh empty containers, plain
values, its lists of subscribers), the helpers it put in ``k.shared``, and
its observers added to ``k.observers`` (one dictionary update instead of one
``observe`` call per handler: a kernel's subscribers of an event class are a
tuple, replaced by a longer one at each subscription and never changed, so
every kernel can share the plan's tuples).  An execution after
another is the same as one alone: nothing of the first survives but the
objects' identities.

It re-installs only what it can recognise, and builds anew otherwise:

* the spec must be the same object (checkers may read the kernel the spec
  built, its profile included, when they subscribe) -- or, for the built-in
  checkers alone, which read only the profile, a spec of the same profile;
* building must have changed nothing on the kernel but ``observers``
  (subscribers added) and ``shared`` (keys added);
* every observer and subscriber must be a method of a checker or of a helper
  in ``shared`` (a closure could hold the last execution's state);
* every attribute of those objects must be the kernel, another of them, a
  plain value (None, bool, int, float, str), an empty dict, set or list, or a
  list of their methods.

Otherwise every execution builds its checkers as before.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emulator.check.base import Checker
    from emulator.kern.kernel import Kernel, Observer
    from emulator.kern.profile import Profile
    from emulator.spec import Spec

CheckerFactory = Callable[["Kernel"], "Checker"]

_PLAIN = (type(None), bool, int, float, str)
_EMPTY = (dict, set, list)

# How an object's attributes are re-made: a copy of its attributes as built
# (plain values and the other objects, kept), then each fresh one put in its
# place: the new kernel (None) or what a maker returns (a new empty container,
# a copy of a list of methods).
_Remake = tuple[Any, dict[str, Any], tuple[tuple[str, Callable[[], Any] | None], ...]]


class _Plan:
    """What building the checkers did to a kernel, to be done again on another."""

    __slots__ = ("checkers", "hooks", "objects", "profile", "shared", "spec", "table")

    def __init__(self, spec: Spec, profile: Profile, checkers: list[Checker],
                 objects: list[_Remake], shared: dict[str, Any],
                 table: dict[type, tuple[Observer, ...]]) -> None:
        self.spec = spec
        self.profile = profile  # the kernel's, when the checkers were built
        self.checkers = checkers
        self.objects = objects  # (object, attributes as built, fresh ones)
        self.shared = shared  # the helpers put in k.shared
        self.table = table  # observers added, per event class, in order
        self.hooks = _hooks(checkers)  # the checkers' ends and finals that do something

    def install(self, k: Kernel) -> list[Checker]:
        for obj, built, fresh in self.objects:
            state = built.copy()
            for name, make in fresh:
                state[name] = k if make is None else make()
            obj.__dict__ = state
        k.shared.update(self.shared)
        observers = k.observers
        if not observers:
            observers.update(self.table)  # the subscribers are tuples: shared, never changed
        else:
            for kind, fns in self.table.items():
                have = observers.get(kind)
                observers[kind] = fns if have is None else have + fns
        return list(self.checkers)


def _record(spec: Spec, k: Kernel, checkers: list[Checker], before: dict[str, Any],
            shared_before: dict[str, Any],
            observers_before: dict[type, tuple[Observer, ...]]) -> _Plan | None:
    """The plan that re-installs ``checkers`` as built on ``k``, or None if they do
    anything it cannot recognise (see the module's docstring)."""
    after = vars(k)
    if after.keys() != before.keys() or any(
            after[name] is not value for name, value in before.items()):
        return None  # an attribute of the kernel was set or replaced
    if any(k.shared.get(key) is not value for key, value in shared_before.items()):
        return None
    shared = {key: value for key, value in k.shared.items() if key not in shared_before}
    objects: list[Any] = [*checkers]
    for helper in shared.values():
        if not any(helper is o for o in objects):
            objects.append(helper)

    def owned(fn: object) -> bool:
        return isinstance(fn, types.MethodType) and any(fn.__self__ is o for o in objects)

    table: dict[type, tuple[Observer, ...]] = {}
    for kind, fns in k.observers.items():
        old = observers_before.get(kind, ())
        if fns[:len(old)] != old:
            return None
        new = fns[len(old):]
        if not all(owned(fn) for fn in new):
            return None
        if new:
            table[kind] = tuple(new)
    plans: list[_Remake] = []
    for obj in objects:
        if not isinstance(getattr(obj, "__dict__", None), dict) or hasattr(type(obj),
                                                                           "__slots__"):
            return None
        built = dict(vars(obj))
        fresh: list[tuple[str, Callable[[], Any] | None]] = []
        for name, value in built.items():
            if value is k:
                fresh.append((name, None))
                built[name] = None  # not the first kernel: install() puts each new one here
            elif any(value is o for o in objects) or type(value) in _PLAIN:
                pass  # kept as built
            elif type(value) in _EMPTY and not value:
                fresh.append((name, type(value)))
            elif type(value) is list and all(owned(fn) for fn in value):
                fresh.append((name, functools.partial(list, tuple(value))))
            else:
                return None
        plans.append((obj, built, tuple(fresh)))
    return _Plan(spec, k.profile, checkers, plans, shared, table)


def _hooks(checkers: list[Checker]) -> tuple[tuple[Callable[[], None], ...],
                                             tuple[Callable[[], None], ...]]:
    """The ``end`` and ``final`` methods of ``checkers`` that do something (the base
    class's do nothing), in the checkers' order."""
    from emulator.check.base import Checker

    return (tuple(c.end for c in checkers if type(c).end is not Checker.end),
            tuple(c.final for c in checkers if type(c).final is not Checker.final))


class Installer:
    """A machine's checker factories, installed on each execution's kernel."""

    def __init__(self, factories: Sequence[CheckerFactory]) -> None:
        from emulator.check import all_checkers

        self.factories = list(factories)
        # The built-in checkers read nothing of the kernel when built but its profile
        # (they subscribe by it): their plan serves every spec of the same profile, so a
        # workload with a spec per seed (generated, random_mix) builds them once, too.
        # tests/check/test_installer.py runs such specs both ways.
        builtin = all_checkers()
        self.portable = all(any(f is c for c in builtin) for f in self.factories)
        self.plan: _Plan | None = None
        self.built = 0  # times the checkers were built rather than re-installed (tests)
        # The last installed checkers' ``end`` and ``final`` that do something, in order.
        self.ends: tuple[Callable[[], None], ...] = ()
        self.finals: tuple[Callable[[], None], ...] = ()

    def install(self, k: Kernel, spec: Spec) -> list[Checker]:
        """The checkers watching ``k``, the kernel ``spec`` built, subscribed."""
        plan = self.plan
        if plan is not None and (plan.spec is spec
                                 or (self.portable and plan.profile is k.profile)):
            self.ends, self.finals = plan.hooks
            return plan.install(k)
        self.plan = None
        before = dict(vars(k))
        shared_before = dict(k.shared)
        observers_before = dict(k.observers)
        checkers = [make(k) for make in self.factories]
        self.built += 1
        self.ends, self.finals = _hooks(checkers)
        self.plan = _record(spec, k, checkers, before, shared_before, observers_before)
        return checkers
