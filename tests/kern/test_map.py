"""Address maps: lookups, clamping, successor, insert/unlink/clip, and the map invariant."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.kern.map import PROT_READ, PROT_WORDS, PROT_WRITE, Prot, VmMapEntry
from emulator.kern.param import VM_MAX_ADDRESS, VM_MIN_ADDRESS
from emulator.kern.syscalls import shadow_entry

Cpu = Any  # tests/kern/conftest.py's Cpu

BASE, ANON, PRIVATE = 0x10000, 0x20000, 0x30000  # p0's three entries (tests/kern/conftest.py)
PAGE = 0x1000


def span(entry: Any) -> tuple[int, int] | None:
    return None if entry is None else (entry.start, entry.end)


async def _locked(run_kernel: Any, action: Any, exclusive: bool = False) -> tuple[Any, Any]:
    """Run ``action(cpu)`` once with p0's map locked; return (its result, the run)."""
    out: list[Any] = []

    async def body(cpu: Cpu) -> None:
        lock = cpu.vm_map.lock
        await (lock.xlock() if exclusive else lock.slock())
        out.append(await action(cpu))
        await lock.unlock()

    run = await run_kernel(body)
    assert run.outcome == "ok", run.execution.detail
    return out[0], run


async def test_lookup_entry_finds_the_entry_containing_an_address(run_kernel: Any) -> None:
    async def look(cpu: Cpu) -> list[Any]:
        m = cpu.vm_map
        return [span(await m.lookup_entry(a))
                for a in (BASE, BASE + 4 * PAGE - 1, ANON + PAGE, BASE - 1, BASE + 4 * PAGE)]

    spans, _ = await _locked(run_kernel, look)
    assert spans == [(BASE, BASE + 4 * PAGE), (BASE, BASE + 4 * PAGE), (ANON, ANON + 2 * PAGE),
                     None, None]


async def test_succ_returns_the_next_entry_and_none_after_the_last(run_kernel: Any) -> None:
    async def walk(cpu: Cpu) -> list[Any]:
        m = cpu.vm_map
        entry = await m.lookup_entry(BASE)
        out = []
        while entry is not None:
            out.append(entry.start)
            entry = m.succ(entry)
        return out

    starts, _ = await _locked(run_kernel, walk)
    assert starts == [BASE, ANON, PRIVATE]


async def test_first_entry_after_skips_a_hole(run_kernel: Any) -> None:
    async def look(cpu: Cpu) -> list[Any]:
        m = cpu.vm_map
        return [span(m.first_entry_after(a)) for a in (0, BASE + 4 * PAGE, PRIVATE + PAGE)]

    spans, _ = await _locked(run_kernel, look)
    assert spans == [(BASE, BASE + 4 * PAGE), (ANON, ANON + 2 * PAGE), None]


@pytest.mark.parametrize(("start", "end", "clamped"), [
    (BASE, BASE + PAGE, (BASE, BASE + PAGE)),
    (-PAGE, BASE, (VM_MIN_ADDRESS, BASE)),
    (BASE, VM_MAX_ADDRESS + PAGE, (BASE, VM_MAX_ADDRESS)),
    (BASE + PAGE, BASE, (BASE, BASE)),  # start past end: an empty range at end
    (VM_MAX_ADDRESS + PAGE, VM_MAX_ADDRESS + 2 * PAGE, (VM_MAX_ADDRESS, VM_MAX_ADDRESS)),
])
async def test_clamp_keeps_the_range_inside_the_map_and_start_at_most_end(
    run_kernel: Any, start: int, end: int, clamped: tuple[int, int]
) -> None:
    async def body(cpu: Cpu) -> None:
        pass

    run = await run_kernel(body)
    assert run.k.maps["p0"].clamp(start, end) == clamped


async def test_insert_entry_links_an_entry_in_address_order(run_kernel: Any) -> None:
    async def insert(cpu: Cpu) -> list[Any]:
        m = cpu.vm_map
        m.insert_entry(VmMapEntry(0x28000, 0x29000, None, 0, PROT_READ | PROT_WRITE, "anon"))
        return [span(e) for e in m.entries.values()]

    spans, run = await _locked(run_kernel, insert, exclusive=True)
    assert spans[1:3] == [(ANON, ANON + 2 * PAGE), (0x28000, 0x29000)]
    run.k.maps["p0"]._check()


async def test_unlink_entry_unlinks_and_frees_it_and_drops_its_object(run_kernel: Any) -> None:
    async def unlink(cpu: Cpu) -> list[Any]:
        m = cpu.vm_map
        entry = await m.lookup_entry(PRIVATE)
        shadow_entry(cpu.k, entry)  # as its first write fault would
        shadow = entry.obj
        m.unlink_entry(entry)
        return [entry.freed, span(m.entry_containing(PRIVATE)), shadow.freed,
                shadow.backing.ref_count]

    seen, run = await _locked(run_kernel, unlink, exclusive=True)
    # The private entry's shadow object had one reference: it is freed, and with it
    # its reference on g (g's own vnode reference remains).
    assert seen == [True, None, True, 1]
    run.k.maps["p0"]._check()


async def test_clip_splits_an_entry_and_shares_its_object(run_kernel: Any) -> None:
    async def clip(cpu: Cpu) -> list[Any]:
        m = cpu.vm_map
        entry = await m.lookup_entry(BASE)
        refs = entry.obj.ref_count
        upper = m.clip(entry, BASE + PAGE)
        return [span(entry), span(upper), upper.offset, upper.obj is entry.obj,
                entry.obj.ref_count - refs, m.succ(entry) is upper]

    seen, run = await _locked(run_kernel, clip, exclusive=True)
    assert seen == [(BASE, BASE + PAGE), (BASE + PAGE, BASE + 4 * PAGE), PAGE, True, 1, True]
    run.k.maps["p0"]._check()


async def test_map_check_rejects_overlapping_entries(run_kernel: Any) -> None:
    async def body(cpu: Cpu) -> None:
        pass

    run = await run_kernel(body)
    m = run.k.maps["p0"]
    m._check()
    m.entries[BASE].end = ANON + PAGE
    with pytest.raises(AssertionError, match="entries overlap"):
        m._check()


async def test_map_check_rejects_an_unaligned_entry(run_kernel: Any) -> None:
    async def body(cpu: Cpu) -> None:
        pass

    run = await run_kernel(body)
    m = run.k.maps["p0"]
    m.entries[BASE].end = BASE + 4 * PAGE - 8
    with pytest.raises(AssertionError, match="unaligned entry"):
        m._check()


async def test_map_check_rejects_an_entry_keyed_at_another_address(run_kernel: Any) -> None:
    async def body(cpu: Cpu) -> None:
        pass

    run = await run_kernel(body)
    m = run.k.maps["p0"]
    m.entries[BASE].start = BASE + PAGE
    with pytest.raises(AssertionError, match="entry keyed 0x10000 starts 0x11000"):
        m._check()


def test_only_protections_with_write_make_an_entry_writable() -> None:
    writable = {word: VmMapEntry(0, 0x1000, None, 0, prot, "anon").writable
                for word, prot in PROT_WORDS.items()}
    assert writable == {"r": False, "rw": True, "rwx": True}
    assert PROT_WORDS["rwx"] & Prot.EXECUTE and not PROT_WORDS["rw"] & Prot.EXECUTE
