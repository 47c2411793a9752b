"""Address maps (sys/vm/vm_map.h): entries in a SortedMap keyed by start.

An entry maps [start, end) to an object at ``offset`` (bytes), or to a sub-map.
A private (copy-on-write) entry maps its file's object until its first write
fault, which puts an anonymous shadow object over it (``needs_copy``).
An anonymous entry may have no object until its first fault ("objects without
an object").  The entry list changes only under the exclusive map lock; every
change is reported to the kernel's observers.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from typing import TYPE_CHECKING

from emulator.kern.events import EntryClip, EntryInsert, EntryRemove
from emulator.kern.locks import MapLock
from emulator.kern.param import PAGE_MASK, VM_MAX_ADDRESS, VM_MIN_ADDRESS
from emulator.kern.pmap import Pmap
from emulator.kern.sortedmap import SortedMap

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.object import VmObject


class Prot(enum.IntFlag):
    """vm_prot_t: the access a mapping grants."""

    NONE = 0
    READ = 1
    WRITE = 2
    EXECUTE = 4


# FreeBSD's spelling, as variants write it.
PROT_READ = Prot.READ
PROT_WRITE = Prot.WRITE
PROT_EXEC = Prot.EXECUTE
_WRITE_BIT = int(PROT_WRITE)

# The protections a mapping may ask for, by the spec's word for each.
PROT_WORDS: dict[str, Prot] = {
    "r": Prot.READ,
    "rw": Prot.READ | Prot.WRITE,
    "rwx": Prot.READ | Prot.WRITE | Prot.EXECUTE,
}


class VmMapEntry:
    """struct vm_map_entry.  Lock legend: (m) map lock; exclusive to change."""

    __slots__ = (
        "end",
        "freed",
        "freed_at",
        "freed_by",
        "kind",
        "needs_copy",
        "nosync",
        "obj",
        "offset",
        "prot",
        "start",
        "submap",
        "wired",
    )

    def __init__(
        self,
        start: int,
        end: int,
        obj: VmObject | None,
        offset: int,
        prot: Prot | int,
        kind: str,
        wired: bool = False,
        submap: VmMap | None = None,
        needs_copy: bool = False,
        nosync: bool = False,
    ) -> None:
        self.start = start  # (m)
        self.end = end  # (m)
        self.obj = obj  # (m) None until first fault for anonymous memory
        self.offset = offset  # (m) byte offset into obj (or into the sub-map)
        self.prot = Prot(prot)  # (m) a plain int of PROT_* bits is accepted
        self.kind = kind  # (m) "file", "anon", "device", "submap"
        self.wired = wired  # (m) user-wired (mlock)
        self.submap = submap  # (m) set for sub-map entries
        # (m) MAP_ENTRY_NEEDS_COPY: a private mapping not written yet maps its file's
        # object directly; the first write fault shadows it (shadow_entry).
        self.needs_copy = needs_copy
        # (m) MAP_ENTRY_NOSYNC (mmap's MAP_NOSYNC, madvise's MADV_NOSYNC): a page a
        # fault through it dirties is marked PGA_NOSYNC, which the syncer skips.
        self.nosync = nosync
        self.freed = False  # (m)
        self.freed_at = -1  # step at which munmap freed it
        # Set when freed: the freed entry reports its touches to that kernel.
        self.freed_by: Kernel

    def _check(self) -> None:
        assert self.start < self.end, f"entry {self.describe()}: empty"
        assert (self.submap is None) == (self.kind != "submap"), f"entry {self.describe()}: kind"
        assert self.obj is None or not self.obj.freed, f"entry {self.describe()}: freed object"

    @property
    def is_submap(self) -> bool:
        return self.submap is not None

    @property
    def writable(self) -> bool:
        # The flag's bits as an int: ``PROT_WRITE in self.prot`` runs enum's Python code.
        return bool(self.prot._value_ & _WRITE_BIT)

    def describe(self) -> str:
        # Read through object.__getattribute__: describing a freed entry is no touch.
        start = object.__getattribute__(self, "start")
        end = object.__getattribute__(self, "end")
        return f"[{start:#x},{end:#x})"


class FreedVmMapEntry(VmMapEntry):
    """A freed entry.  Reading any field from agent code is a stale touch.

    The class of an entry is switched to this one when it is freed, so live
    entries pay nothing for the check.  Reads from outside agent code (the
    harness, a checker) are not reported.
    """

    __slots__ = ()

    def __getattribute__(self, name: str) -> object:
        value = object.__getattribute__(self, name)
        if not name.startswith("__") and name not in ("freed", "freed_at", "freed_by", "describe"):
            k: Kernel = object.__getattribute__(self, "freed_by")
            sched = k.sched
            if sched.current is not None and not sched.over and not k.in_checker:
                k.touch_entry(self)
        return value


class VmMap:
    """struct vm_map: a process's address space (or a sub-map)."""

    __slots__ = ("entries", "freed", "k", "lock", "max", "min", "name", "pmap")

    def __init__(self, k: Kernel, name: str) -> None:
        self.k = k
        self.name = name
        self.min = VM_MIN_ADDRESS
        self.max = VM_MAX_ADDRESS
        self.entries: SortedMap[VmMapEntry] = SortedMap()  # (m) start -> VmMapEntry
        self.lock = MapLock(k, name)
        self.pmap = Pmap(k, name)
        self.freed = False

    def _check(self) -> None:
        prev_end = self.min
        for start, e in self.entries.items():
            assert e.start == start, f"map {self.name}: entry keyed {start:#x} starts {e.start:#x}"
            assert e.start < e.end, f"map {self.name}: empty entry {e.describe()}"
            assert e.start >= prev_end, f"map {self.name}: entries overlap at {e.start:#x}"
            assert not e.freed, f"map {self.name}: freed entry {e.describe()} still linked"
            assert not (e.start & PAGE_MASK or e.end & PAGE_MASK), "unaligned entry"
            e._check()
            if e.submap is not None:
                e.submap._check()
            prev_end = e.end
        self.lock._check()

    # -- lookups (map locked) --------------------------------------------------

    def entry_containing(self, addr: int) -> VmMapEntry | None:
        """Return the entry containing ``addr``, or None.  Not a schedule point."""
        entries = self.entries
        keys = entries._keys  # entries.bisect_right and peekitem, inlined: every lookup
        i = bisect_right(keys, addr) - 1
        if i < 0:
            return None
        e: VmMapEntry = entries[keys[i]]
        return e if addr < e.end else None

    async def lookup_entry(self, addr: int) -> VmMapEntry | None:
        """Find the entry containing ``addr`` (vm_map_lookup_entry).  The map must be locked."""
        k = self.k
        await k.kpoint()
        if k.watched:
            k.read("map", self.name)
        k.emit_map_access(self, "lookup")  # k.map_access, inlined: every lookup
        return self.entry_containing(addr)

    def first_entry_after(self, addr: int) -> VmMapEntry | None:
        """Return the first entry that starts at or after ``addr``."""
        entries = self.entries
        i = entries.bisect_left(addr)
        if i == len(entries):
            return None
        e: VmMapEntry = entries.peekitem(i)[1]
        return e

    def succ(self, entry: VmMapEntry) -> VmMapEntry | None:
        """Return the entry after ``entry`` (vm_map_entry_succ).  The map must be locked."""
        self.k.touch_entry(entry)
        entries = self.entries
        i = entries.bisect_right(entry.start)
        if i == len(entries):
            return None
        e: VmMapEntry = entries.peekitem(i)[1]
        return e

    def clamp(self, start: int, end: int) -> tuple[int, int]:
        """VM_MAP_RANGE_CHECK: clamp to the map and make start <= end."""
        start = max(start, self.min)
        end = min(end, self.max)
        start = min(start, end)
        return start, end

    # -- changes (map locked exclusive) ---------------------------------------

    def insert_entry(self, entry: VmMapEntry) -> None:
        """Link ``entry``.  The map must be locked exclusive."""
        k = self.k
        k.map_access(self, "insert")
        self.entries[entry.start] = entry
        k.emit(EntryInsert(self.name, entry.start, entry.end))

    def unlink_entry(self, entry: VmMapEntry) -> None:
        """Unlink and free ``entry``.  The map must be locked exclusive."""
        k = self.k
        k.map_access(self, "remove")
        del self.entries[entry.start]
        k.emit(EntryRemove(self.name, entry.start, entry.end))
        k.free_entry(entry)

    def clip(self, entry: VmMapEntry, at: int) -> VmMapEntry:
        """Split ``entry`` at ``at``; return the upper half (vm_map_clip_start/end).

        The map must be locked exclusive.  The lower half is ``entry`` itself.
        """
        k = self.k
        k.map_access(self, "clip")
        assert entry.start < at < entry.end
        upper = VmMapEntry(
            at,
            entry.end,
            entry.obj,
            entry.offset + (at - entry.start),
            entry.prot,
            entry.kind,
            entry.wired,
            entry.submap,
            entry.needs_copy,
            entry.nosync,
        )
        if entry.obj is not None:
            entry.obj.ref_count += 1
        entry.end = at
        self.entries[at] = upper
        k.emit(EntryClip(self.name, entry.start, at, upper.end))
        return upper
