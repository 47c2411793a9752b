"""vrele of a vnode's last use reference, deferred past the map lock (H19, cfa892b5).

A file whose descriptor is closed (``"closed": true``) keeps its vnode in use only
through its mappings; unmapping the last one inactivates the vnode (VOP_INACTIVE
under the vnode lock, an asynchronous clean of a might-be-dirty object).  The
reference does it after the map is unlocked; ``vrele_under_map_lock`` does it under
the map lock, which the lock-order rule reports.
"""

from __future__ import annotations

from typing import Any

import pytest

from emulator.check import all_checkers
from emulator.kern.profile import PROFILES
from emulator.machine import Execution, Machine
from emulator.sched.strategies import PortfolioStrategy, RandomStrategy
from emulator.spec import parse_spec
from emulator.variants import BUILTIN, MUTANTS
from workloads import build_workload

BASE = 0x10000


def spec(closed: bool, profile: str) -> Any:
    return parse_spec({
        "files": {"f": {"pages": 2, "closed": closed}},
        "processes": {"p0": {"mappings": [
            {"addr": hex(BASE), "pages": 2, "file": "f", "prot": "rw"}]}},
        "cpus": [{"process": "p0", "program": [
            ["store", hex(BASE)], ["munmap", hex(BASE), 0x2000]]}],
    }, profile=profile)


async def run(closed: bool, profile: str, variant: str = "reference") -> Execution:
    machine = Machine(spec(closed, profile), BUILTIN[variant], RandomStrategy(),
                      checkers=all_checkers(), record=True)
    return await machine.execute(0)


def after_unmap(ex: Execution) -> list[tuple[str, list[Any]]]:
    """cpu0's events from its entry's removal on: (kind, args)."""
    events = [(kind, list(args)) for _step, aid, kind, args in ex.events if aid == 0]
    first = next(i for i, (kind, _) in enumerate(events) if kind == "entry_remove")
    return events[first:]


@pytest.mark.parametrize("profile", PROFILES)
async def test_the_last_mapping_of_a_closed_file_inactivates_its_vnode_after_the_unlock(
    profile: str,
) -> None:
    ex = await run(True, profile)
    assert ex.outcome == "ok", ex.violations
    tail = after_unmap(ex)
    kinds = [kind for kind, _ in tail]
    unlock_map = kinds.index("unlock")
    assert tail[unlock_map][1][:2] == ["map", "p0"]
    lock_vnode = kinds.index("lock", unlock_map)
    assert tail[lock_vnode][1][:2] == ["vnode", "f"]
    # VOP_INACTIVE cleans the dirty page asynchronously, under the vnode lock.
    assert any(kind in ("bdwrite", "io_issue") for kind in kinds[lock_vnode:])


async def test_an_open_file_is_not_inactivated_by_munmap() -> None:
    ex = await run(False, "modern")
    assert ex.outcome == "ok"
    kinds = [kind for kind, _ in after_unmap(ex)]
    assert "lock" not in kinds  # no vnode lock: the descriptor keeps the vnode in use


async def test_vrele_under_the_map_lock_breaks_the_lock_order() -> None:
    ex = await run(True, "modern", "vrele_under_map_lock")
    assert [v.rule for v in ex.violations] == ["lock_discipline"]
    message = ex.violations[0].message
    assert "takes the vnode lock of f" in message
    assert "while holding the map lock of p0" in message
    assert "vm_map_process_deferred" in message


SEEDS = 60


@pytest.mark.parametrize("profile", PROFILES)
async def test_munmap_closed_file_reference_quiet_mutant_caught(profile: str) -> None:
    """On the workload: the reference raises nothing in any profile; the mutant is
    reported by the lock-order rule whenever its munmap drops the last reference (not
    when a modern msync, holding the object across its flush, drops it after)."""
    for name in ("reference", "vrele_under_map_lock"):
        variant = MUTANTS.get(name) or BUILTIN[name]
        machine = Machine(build_workload("munmap_closed_file", {}, 0, profile), variant,
                          PortfolioStrategy(), checkers=all_checkers())
        rules = []
        for seed in range(SEEDS):
            ex = await machine.execute(seed)
            rules.append(sorted({v.rule for v in ex.violations}))
        if name == "reference":
            assert rules == [[]] * SEEDS
        else:
            assert set(map(tuple, rules)) <= {("lock_discipline",), ()}
            assert rules.count(["lock_discipline"]) > SEEDS // 2
