"""VM objects (sys/vm/vm_object.h): file, anonymous and device memory.

An object holds its resident pages in a SortedMap by page index and may sit on
a backing chain (a private mapping's shadow object over its file).  File
objects have a vnode lock and a pager.  ``generation`` counts write faults;
``clean_generation`` is the generation as of the last complete clean, so
``generation != clean_generation`` means "might be dirty".  Under the 2003
page clean (``Profile.flag_page_clean``) the same pair is the OBJ_MIGHTBEDIRTY
flag: a fault sets it (generation++), a whole-object clean clears it before its
scan (``clear_might_be_dirty``); that scan restarts on ``memq_generation``,
which counts page inserts and removes as the 2003 ``generation`` did.

``pip`` is the object's paging-in-progress count (``paging_in_progress``,
vm_object_pip_add / vm_object_pip_wakeup / vm_object_pip_wait): a fault holds
it across its page-in and the disk across each page write it has queued.  It
is a wait channel whose holders are those agents, so a wait for it shows in
the scheduler's wait-for cycle like a lock's.  No reference path waits for it
(FIDELITY.md H3: waiting for it under the vnode lock deadlocked against
vm_fault); taking and dropping it are part of the caller's step.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from emulator.kern.events import CleanGeneration, Free
from emulator.kern.locks import RANK_OBJECT, RANK_VNODE, Mutex
from emulator.kern.page import BUSY_EXCL, BUSY_NONE, VmPage
from emulator.kern.sortedmap import SortedMap

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.pager import Pager



class ObjType(enum.StrEnum):
    """objtype_t.  A StrEnum: the values are the spec's and the traces' words."""

    FILE = "file"  # OBJT_VNODE
    ANON = "anon"  # OBJT_DEFAULT / OBJT_SWAP
    DEVICE = "device"


# FreeBSD's spelling, as variants write it.
OBJT_FILE = ObjType.FILE
OBJT_ANON = ObjType.ANON
OBJT_DEVICE = ObjType.DEVICE


class PagingInProgress:
    """An object's paging-in-progress count, as the agents holding it (one item per
    hold).  A wait channel: vm_object_pip_wait sleeps on it until it is zero."""

    __slots__ = ("holders", "k", "name")

    def __init__(self, k: Kernel, name: str) -> None:
        self.k = k
        self.name = name
        self.holders: list[int] = []

    def wait_holders(self) -> list[int]:
        return list(self.holders)

    def wait_name(self) -> str:
        who = ",".join(self.k.agent_name(h) for h in self.holders) or "nobody"
        return f"paging in progress on {self.name} (held by {who})"


class VmObject:
    """struct vm_object.  Lock legend: (o) object lock, (c) constant."""

    __slots__ = (
        "backing",
        "backing_offset",
        "clean_generation",
        "closed",
        "freed",
        "generation",
        "k",
        "kind",
        "lock",
        "memq_generation",
        "name",
        "pager",
        "pages",
        "pip",
        "ref_count",
        "size",
        "vnode",
    )

    def __init__(
        self, k: Kernel, kind: ObjType, name: str, size: int, pager: Pager | None = None
    ) -> None:
        self.k = k
        self.kind = kind  # (c)
        self.name = name  # (c)
        self.size = size  # (c) in pages
        self.pages: SortedMap[VmPage] = SortedMap()  # (o) pindex -> VmPage
        self.backing: VmObject | None = None  # (o)
        self.backing_offset = 0  # (o) in pages
        self.generation = 1  # (o)
        self.clean_generation = 1  # (o)
        self.memq_generation = 0  # (o) pages inserted or removed (2003's generation)
        self.ref_count = 0  # (o)
        self.lock = Mutex(k, "object", name, RANK_OBJECT)
        self.vnode: Mutex | None = (
            Mutex(k, "vnode", name, RANK_VNODE) if kind == OBJT_FILE else None
        )
        self.pager = pager  # (c) the file's pager, for file objects
        self.freed = False  # (o)
        self.pip = PagingInProgress(k, name)  # (o) paging_in_progress
        # (c) No descriptor holds the file open: its mappings' references are the
        # vnode's only use references, and dropping the last inactivates it.
        self.closed = False

    def _check(self) -> None:
        for pindex, page in self.pages.items():
            assert page.pindex == pindex and page.obj is self, f"object {self.name}: bad page"
            assert not page.freed, f"object {self.name}: freed page {pindex} still resident"
            page._check()
        assert self.clean_generation <= self.generation
        self.lock._check()
        if self.vnode is not None:
            self.vnode._check()
        if self.pager is not None:
            self.pager._check()

    def pip_add(self, holder: int) -> None:
        """vm_object_pip_add: ``holder`` (a cpu, or the disk for a write) starts paging."""
        self.pip.holders.append(holder)

    def pip_wakeup(self, holder: int) -> None:
        """vm_object_pip_wakeup: ``holder``'s paging is over; at zero, wake the waiters."""
        holders = self.pip.holders
        holders.remove(holder)
        if not holders:
            self.k.wakeup(self.pip)

    async def pip_wait(self) -> None:
        """vm_object_pip_wait: sleep, object unlocked, until no paging is in progress.
        The object must be locked; it is locked again on return."""
        k = self.k
        while self.pip.holders:
            k.emit_wait("pip", self.name)
            await self.lock.unlock()
            if self.pip.holders:  # the unlock's step: nothing ran since the test
                await k.sleep(self.pip)
            await self.lock.lock()

    def might_be_dirty(self) -> bool:
        """Return whether a write fault happened since the last complete clean."""
        return self.generation != self.clean_generation

    def clear_might_be_dirty(self) -> None:
        """Clear OBJ_MIGHTBEDIRTY (the 2003 page clean, before its scan): the object
        is clean as of now, until a fault sets the flag again."""
        self.clean_generation = self.generation
        self.k.emit(CleanGeneration(self.name, self.generation))

    def lookup_page(self, pindex: int) -> VmPage | None:
        """Return the resident page at ``pindex`` (vm_page_lookup).  Object locked."""
        if self.freed:
            self.k.touch_object(self)
        page: VmPage | None = self.pages.get(pindex)
        return page

    def find_least(self, pindex: int) -> VmPage | None:
        """Return the resident page with the least index >= ``pindex``."""
        if self.freed:
            self.k.touch_object(self)
        i = self.pages.bisect_left(pindex)
        if i == len(self.pages):
            return None
        page: VmPage = self.pages.peekitem(i)[1]
        return page

    def alloc_page(self, pindex: int, busy: bool = True) -> VmPage:
        """Allocate a page at ``pindex``, exclusive busy to the caller (vm_page_alloc).

        Object locked; part of the caller's step.  ``busy=False`` is for the
        machine builder, which runs outside any agent.
        """
        k = self.k
        page = VmPage(k, self, pindex)
        if busy:
            page.busy = BUSY_EXCL
            page.xowner = k.curcpu()
        self.pages[pindex] = page
        self.memq_generation += 1
        k.emit_alloc(self.name, pindex)
        return page

    def free_page(self, page: VmPage) -> None:
        """Free a page (vm_page_free).  Object locked, page unmapped and xbusy."""
        k = self.k
        k.page_freeing(page)
        del self.pages[page.pindex]
        self.memq_generation += 1
        page.busy = BUSY_NONE
        page.xowner = -1
        page.freed = True
        k.emit(Free(self.name, page.pindex, int(page.dirty)))
        k.wakeup(page)
