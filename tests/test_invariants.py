"""Structure invariants (``Kernel._check`` and friends) hold at every lock release, page-table
change, page free, entry removal and I/O completion of many random executions, in every
profile, and nothing is left locked, busy or queued at the end."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.check.base import Checker
from emulator.kern.events import EntryRemove, Event, Free, IoDone, PteEnter, PteRemove, Unlock
from emulator.kern.kernel import Kernel
from emulator.kern.profile import PROFILES
from emulator.machine import Machine
from emulator.sched.strategies import RandomStrategy
from emulator.variants import load_variant
from workloads import build_workload

CHECK_AT: tuple[type[Event], ...] = (Unlock, IoDone, EntryRemove, Free, PteEnter, PteRemove)


def check_everything(k: Kernel) -> None:
    """Kernel._check, plus sub-maps and every object an entry reaches (anon, shadow)."""
    k._check()
    seen: set[str] = set()

    def visit(vm_map: Any) -> None:
        for entry in vm_map.entries.values():
            assert not entry.freed
            if entry.submap is not None:
                entry.submap._check()
                visit(entry.submap)
            obj = entry.obj
            while obj is not None and obj.name not in seen:
                seen.add(obj.name)
                assert not obj.freed, f"entry {entry.describe()} holds freed {obj.name}"
                assert obj.ref_count > 0, f"{obj.name} referenced with ref_count 0"
                obj._check()
                obj = obj.backing

    for vm_map in k.maps.values():
        visit(vm_map)


def invariant_checker(counter: list[int]) -> Any:
    class Invariants(Checker):
        """Not a rule: the structures' invariants, at every event of CHECK_AT."""

        def __init__(self, k: Kernel) -> None:
            super().__init__(k)
            for kind in CHECK_AT:
                k.observe(kind, self.on_event)

        def on_event(self, _step: int, _aid: int, _ev: Event) -> None:
            counter[0] += 1
            check_everything(self.k)

        def end(self) -> None:
            k = self.k
            check_everything(k)
            for vm_map in k.maps.values():
                assert vm_map.lock.excl < 0 and not vm_map.lock.shared, vm_map.name
            for obj in k.files.values():
                assert obj.lock.owner < 0 and obj.vnode is not None and obj.vnode.owner < 0
                for page in obj.pages.values():
                    assert not page.is_busy(), page.name
            assert not k.disk.queue
            calls = k.shared.get("calls")  # the checkers' tracker of clean calls in flight
            assert calls is None or not calls.calls

        def final(self) -> None:
            check_everything(self.k)

    return Invariants


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", ["random_mix", "msync_vs_munmap"])
async def test_structure_invariants_hold_at_every_release(name: str, profile: str) -> None:
    counter = [0]
    spec = build_workload(name, {}, 0, profile)
    m = Machine(spec, load_variant("reference"), RandomStrategy(),
                checkers=[invariant_checker(counter)])
    for seed in range(50):
        spec = build_workload(name, {}, seed, profile)
        ex = await m.execute(seed, spec)
        assert ex.outcome == "ok", (seed, ex.detail, [v.message for v in ex.violations])
    assert counter[0] > 50 * 10  # the checks really ran, many times per execution
