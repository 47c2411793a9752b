"""MAP_NOSYNC, madvise(MADV_NOSYNC / MADV_AUTOSYNC) and the syncer's OBJPC_NOSYNC skip.

A fault that maps a page writable through a MAP_NOSYNC entry marks it PGA_NOSYNC if it
was clean; through any other entry it clears the mark.  A page clean with OBJPC_NOSYNC
(the syncer's) passes over a marked page -- not written, not write-protected -- and
leaves the object might-be-dirty; msync(2) and fsync(2) clean without the flag.
"""

from __future__ import annotations

from typing import Any

import pytest

from emulator.kern.clean import REFERENCE
from emulator.kern.daemons import Syncer
from emulator.kern.events import IoIssue
from emulator.kern.kern_return import KernReturn
from emulator.kern.param import PAGE_SHIFT
from emulator.kern.profile import PROFILES
from emulator.kern.syscalls import sys_madvise, sys_store
from emulator.variants import MUTANTS

PAGE = 0x1000
BASE = 0x10000
VPN = BASE >> PAGE_SHIFT

Cpu = Any  # tests/kern/conftest.py's Cpu


def spec(nosync: bool = True) -> dict[str, Any]:
    """p0 maps f shared with MAP_NOSYNC (or not), p1 maps it shared without."""
    return {
        "files": {"f": {"pages": 2}},
        "processes": {
            "p0": {"mappings": [{"addr": hex(BASE), "pages": 2, "file": "f", "nosync": nosync}]},
            "p1": {"mappings": [{"addr": hex(BASE), "pages": 2, "file": "f"}]},
        },
    }


def writes(cpu: Cpu) -> list[int]:
    """Keep the page index of every page write issued on ``cpu.run.writes``."""
    out: list[int] = []
    cpu.run.writes = out
    cpu.k.observe(IoIssue, lambda _step, _aid, ev: out.append(ev.pindex))
    return out


def handed(k: Any, out: list[int]) -> list[int]:
    """Pages of f whose data a clean handed on: a page write issued, or a delayed-write
    buffer (the bdwrite of a profile that delays asynchronous writes)."""
    return sorted(set(out) | set(k.pagers["f"].delayed)
                  | {p for p, sid in enumerate(k.pagers["f"].stored) if sid})


async def test_a_store_through_a_nosync_mapping_marks_the_page(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        k, p1 = cpu.k, cpu.k.maps["p1"]
        await sys_store(k, cpu.vm_map, BASE)
        page = k.files["f"].pages[0]
        seen.append((page.dirty, page.nosync))
        # Dirty already: p1's write fault through a normal entry clears the mark.
        await sys_store(k, p1, BASE)
        seen.append(page.nosync)
        # Through p0 again, on a dirty page: mapped already, no fault, no mark.
        await sys_store(k, cpu.vm_map, BASE)
        seen.append(page.nosync)

    await run_kernel(body, spec=spec())
    assert seen == [(True, True), False, False]


async def test_a_nosync_fault_on_a_dirty_page_does_not_mark_it(run_kernel: Any) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        k = cpu.k
        await sys_store(k, k.maps["p1"], BASE)  # dirtied with the expectation of a sync
        await sys_store(k, cpu.vm_map, BASE)  # p0's write fault: the page is dirty
        seen.append(k.files["f"].pages[0].nosync)

    await run_kernel(body, spec=spec())
    assert seen == [False]


async def test_madvise_sets_and_clears_the_entry_flag_clipping_the_range(
    run_kernel: Any,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        k, p1 = cpu.k, cpu.k.maps["p1"]
        seen.append(await sys_madvise(k, p1, BASE + PAGE, PAGE, "nosync"))
        seen.append([(e.start, e.nosync) for e in p1.entries.values()])
        await sys_store(k, p1, BASE + PAGE)
        await sys_store(k, p1, BASE)
        f = k.files["f"]
        seen.append((f.pages[0].nosync, f.pages[1].nosync))
        seen.append(await sys_madvise(k, p1, BASE, 2 * PAGE, "autosync"))
        seen.append([e.nosync for e in p1.entries.values()])
        # Past the map's end: EINVAL, nothing changes.
        seen.append(await sys_madvise(k, p1, p1.max - PAGE, 2 * PAGE, "nosync"))

    await run_kernel(body, spec=spec(nosync=False))
    assert seen == [0, [(BASE, False), (BASE + PAGE, True)], (False, True), 0,
                    [False, False], "EINVAL"]


@pytest.mark.parametrize("profile", list(PROFILES))
async def test_the_syncer_skips_a_nosync_page_and_leaves_the_object_dirty(
    run_kernel: Any, profile: str,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        k = cpu.k
        out = writes(cpu)
        await sys_store(k, cpu.vm_map, BASE)  # NOSYNC
        await sys_store(k, k.maps["p1"], BASE + PAGE)  # an ordinary dirty page
        f = k.files["f"]
        await Syncer(k, 1, REFERENCE).run()
        pte = cpu.vm_map.pmap.ptes[VPN]
        seen.append((handed(k, out), pte.writable, f.might_be_dirty()))
        # msync(2)'s clean writes it all the same: no OBJPC_NOSYNC there.
        rv = await REFERENCE.clean(cpu.vm_map, BASE, BASE + PAGE, True, False)
        seen.append((rv, handed(k, out), k.pagers["f"].stored[0] == f.pages[0].contents))

    await run_kernel(body, spec=spec(), profile=profile)
    # The syncer handed on page 1 only; page 0 stays writable and the object dirty.
    assert seen == [([1], True, True), (KernReturn.SUCCESS, [0, 1], True)]


@pytest.mark.parametrize("profile", ["freebsd5", "modern"])
async def test_a_syncer_that_forgets_the_skipped_page_lets_msync_return_early(
    run_kernel: Any, profile: str,
) -> None:
    """The mutant nosync_skip_marks_clean: the object is recorded clean, so the MS_SYNC
    after the syncer's pass writes nothing."""
    seen: list[Any] = []
    cleaner = MUTANTS["nosync_skip_marks_clean"].clean.__self__

    async def body(cpu: Cpu) -> None:
        k = cpu.k
        out = writes(cpu)
        await sys_store(k, cpu.vm_map, BASE)
        await Syncer(k, 1, cleaner).run()
        seen.append(k.files["f"].might_be_dirty())
        rv = await cleaner.clean(cpu.vm_map, BASE, BASE + PAGE, True, False)
        seen.append((rv, list(out)))

    await run_kernel(body, spec=spec(), profile=profile)
    assert seen == [False, (KernReturn.SUCCESS, [])]


@pytest.mark.parametrize("profile", list(PROFILES))
async def test_without_nosync_pages_the_syncer_writes_everything(
    run_kernel: Any, profile: str,
) -> None:
    seen: list[Any] = []

    async def body(cpu: Cpu) -> None:
        k = cpu.k
        out = writes(cpu)
        await sys_store(k, cpu.vm_map, BASE)
        await sys_store(k, cpu.vm_map, BASE + PAGE)
        await Syncer(k, 1, REFERENCE).run()
        seen.append((handed(k, out), k.files["f"].might_be_dirty()))

    await run_kernel(body, spec=spec(nosync=False), profile=profile)
    assert seen == [([0, 1], profile == "manpage")]
