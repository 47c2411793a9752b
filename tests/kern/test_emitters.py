"""The hot events' emitters (kern/kernel.py, ``EMITTERS`` and ``seal``).

A sealed kernel calls the checkers' twins taking fields -- fused into one call where
several checkers share a kind -- and builds no event; an unsealed one builds each
event and emits it to the observers.  Both must give the same executions: the same
decisions, steps, violations (rule, message, step, CPUs, fields), results and
recorded trace lines, recording or not, with a strategy watching every event or not,
on the reference and on mutants that break every rule family.
"""

from __future__ import annotations

from typing import Any

import pytest

from emulator.check import all_checkers
from emulator.check.base import holdings, tracker
from emulator.check.invalidate import Invalidate
from emulator.check.lock_discipline import LockDiscipline
from emulator.kern.events import Lock, MapAccess, Unlock
from emulator.kern.kernel import EMITTERS, Kernel, _ignore
from emulator.kern.profile import PROFILES
from emulator.machine import Execution, Machine
from emulator.sched.drivers import make_scheduler
from emulator.sched.strategies import PctStrategy, PosStrategy, RandomStrategy
from emulator.variants import BUILTIN, MUTANTS, Variant
from workloads import WORKLOADS, aimed_at, build_workload

NAMES = ("manpage", "freebsd5", "modern")
SEEDS = 3


def digest(ex: Execution) -> tuple[Any, ...]:
    return (ex.outcome, ex.steps, ex.decisions, ex.detail, ex.results,
            [(v.rule, v.message, v.step, v.cpus, v.fields) for v in ex.violations],
            list(ex.events))


async def executions(workload: str, profile: str, variant: Variant, record: bool,
                     sealed: bool, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    with monkeypatch.context() as m:
        if not sealed:
            m.setattr(Kernel, "seal", lambda self: None)
        out = []
        for seed in range(SEEDS):
            # pos watches every event: the checkers' twins first, then the event for it
            strategy = (RandomStrategy(), PctStrategy(), PosStrategy())[seed % 3]
            machine = Machine(build_workload(workload, {}, 0, profile), variant, strategy,
                              checkers=all_checkers(), record=record, driver="direct")
            ex = await machine.execute(seed, build_workload(workload, {}, seed, profile))
            k = machine.kernel
            assert k is not None
            if sealed:  # the fast path was taken: the lock events went to the fused handler
                assert k.emit_lock.__name__ != "_emit_lock"
            out.append(digest(ex))
        return out


@pytest.mark.parametrize("record", [False, True])
@pytest.mark.parametrize("profile", NAMES)
@pytest.mark.parametrize("workload", list(WORKLOADS))
async def test_sealed_and_unsealed_kernels_run_the_same_executions(
        workload: str, profile: str, record: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    variant = BUILTIN["reference"]
    fast = await executions(workload, profile, variant, record, True, monkeypatch)
    slow = await executions(workload, profile, variant, record, False, monkeypatch)
    assert fast == slow


@pytest.mark.parametrize("name", sorted(MUTANTS))
async def test_the_same_violations_on_every_mutant(name: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    variant = MUTANTS[name]
    profile = variant.profile or "manpage"
    aimed = [w for w in WORKLOADS if aimed_at(w, profile)]
    for workload in aimed[:3]:
        fast = await executions(workload, profile, variant, False, True, monkeypatch)
        slow = await executions(workload, profile, variant, False, False, monkeypatch)
        assert fast == slow, workload


def bare_kernel() -> Kernel:
    return Kernel(make_scheduler("direct", RandomStrategy(), 100), PROFILES["manpage"],
                  record=False)


def test_a_sealed_kernel_fuses_twins_and_ignores_the_unobserved() -> None:
    k = bare_kernel()
    calls = tracker(k)
    held = holdings(k)
    disc = LockDiscipline(k)
    Invalidate(k)
    assert disc.held is held
    k.seal()
    # Lock: the tracker and lock_discipline (no single_entry here): each twin, in order.
    assert k.emit_lock.__qualname__ == "_fan_out.<locals>.both"
    # Unlock: lock_discipline's one twin, bound.
    assert getattr(k.emit_unlock, "__func__", None) is LockDiscipline.unlock
    # PteEnter: invalidate's one twin, bound.
    assert getattr(k.emit_pte_enter, "__func__", None) is Invalidate.pte
    # MapAccess: the tracker's and lock_discipline's, fused.
    assert k.emit_map_access.__qualname__ == "_fused_access.<locals>.access"
    # Dirty: no observer, nothing recorded: nothing done.
    assert k.emit_dirty is _ignore
    assert calls.calls == {}


def test_observing_after_the_seal_unseals() -> None:
    k = bare_kernel()
    k.seal()
    assert k.emit_lock is _ignore and k.emit_unlock is _ignore
    seen: list[tuple[str, str]] = []
    k.observe(Unlock, lambda step, aid, ev: seen.append((ev.res, ev.name)))
    assert not k.sealed
    for _, attr in EMITTERS:
        assert getattr(k, attr).__name__ == "_" + attr
    k.emit_unlock("object", "o1")
    assert seen == [("object", "o1")]
    # An observer without a twin (a closure) keeps the event: sealing builds it still.
    k.seal()
    assert k.emit_unlock.__name__ == "_emit_unlock"
    k.emit_unlock("object", "o2")
    assert seen == [("object", "o1"), ("object", "o2")]
    assert k.emit_lock is _ignore
    assert Lock not in k.observers and MapAccess not in k.observers


def test_a_watched_kernel_builds_every_event() -> None:
    k = bare_kernel()
    seen: list[Any] = []
    k.watch(lambda step, aid, ev: seen.append(ev))
    k.seal()
    k.emit_lock("map", "m", "x")
    k.emit_dirty("o", 1, 2)
    assert [ev.kind for ev in seen] == ["lock", "dirty"]


def test_a_watched_kernel_calls_the_twins_then_gives_the_watcher_the_event() -> None:
    k = bare_kernel()
    disc = LockDiscipline(k)
    seen: list[Any] = []
    k.watch(lambda step, aid, ev: seen.append((step, aid, ev)))
    k.seal()
    assert k.emit_unlock.__qualname__ == "_then_event.<locals>.emit"
    assert k.emit_lock.__qualname__ == "_then_event.<locals>.emit"
    k.sched.step, k.sched.cpu = 7, 0
    k.emit_lock("object", "o1", "x")
    assert disc.held.held[0] == [(2, "object", "o1", -1)]  # the twin ran
    k.emit_unlock("object", "o1")
    assert disc.held.held[0] == []
    assert seen == [(7, 0, Lock("object", "o1", "x")), (7, 0, Unlock("object", "o1"))]


async def test_a_profile_sharing_its_map_lock_gets_its_own_fused_handlers() -> None:
    # Under modern single_entry subscribes nothing and the call tracker subscribes after
    # lock_discipline: the lock, unlock and entry-list handlers are fused in that order.
    machine = Machine(build_workload("writers_vs_msync", {}, 0, "modern"), BUILTIN["reference"],
                      RandomStrategy(), checkers=all_checkers(), driver="direct")
    await machine.execute(0)
    k = machine.kernel
    assert k is not None
    assert k.emit_lock.__qualname__ == "_fused_lock_shared.<locals>.lock"
    assert k.emit_unlock.__qualname__ == "_fused_unlock_shared.<locals>.unlock"
    assert k.emit_map_access.__qualname__ == "_fused_access_shared.<locals>.access"
