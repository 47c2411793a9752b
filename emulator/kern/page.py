"""Physical pages (sys/vm/vm_page.h) and the page busy protocol.

A page's *contents* is the id of the last store that wrote it (0: the file's
initial contents, or a zero-filled anonymous page).  Store ids are unique and
increase over a run, so a checker can tell exactly which store a page, an I/O or
the pager holds.

Busy states: none, shared (``sbusy``: readers and in-flight writes), exclusive
(``xbusy``: the one owner may change the page).  Sleeping for a busy page must
happen without the object lock (vm_page_busy_sleep drops it).

The 2003 kernel kept two busies: PG_BUSY (exclusive) and the *soft* busy count
``m->busy`` that page I/O holds (vm_page_io_start / vm_page_io_finish); faults
and the page clean wait for either.  Here the soft busy is the shared busy held
by the I/O's owner (``io_start``), taken without ever holding the exclusive one,
as the 2003 page clean does; ``soft_busy`` counts its holders.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.object import VmObject
    from emulator.kern.pmap import Pmap



class Busy(enum.IntEnum):
    """A page's busy state.  An IntEnum: checkers and test snapshots compare plain ints."""

    NONE = 0
    SHARED = 1  # sbusy: readers and in-flight writes, owners in ``sowners``
    EXCL = 2  # xbusy: one owner, ``xowner``


# The states as plain module names: reading a member through its Enum class
# (``Busy.EXCL``) runs EnumType's attribute lookup, ~80 ns, on every busy and unbusy.
BUSY_NONE, BUSY_SHARED, BUSY_EXCL = Busy.NONE, Busy.SHARED, Busy.EXCL


class VmPage:
    """struct vm_page.

    Lock legend: (o) object lock, (b) page busy, (p) pmap (atomic here),
    (c) constant after allocation.
    """

    __slots__ = (
        "busy",
        "cleanchk",
        "contents",
        "dirty",
        "freed",
        "k",
        "nosync",
        "obj",
        "pindex",
        "pv",
        "sowners",
        "valid",
        "wire_count",
        "xowner",
    )

    def __init__(self, k: Kernel, obj: VmObject, pindex: int) -> None:
        self.k = k
        self.obj = obj  # (c)
        self.pindex = pindex  # (c)
        self.dirty = False  # (o)+(b) software dirty flag
        self.valid = False  # (b) contents paged in
        self.contents = 0  # (b) id of the last store, or 0
        self.busy = BUSY_NONE  # (o)
        self.xowner = -1  # (o) cpu holding the exclusive busy
        self.sowners: list[int] = []  # (o) holders of shared busy (disk for in-flight writes)
        self.wire_count = 0  # (o)
        self.pv: list[tuple[Pmap, int]] = []  # (p) every mapping: (pmap, virtual page number)
        self.freed = False  # (o)
        self.cleanchk = False  # (o) PG_CLEANCHK: the 2003 page clean has yet to check it
        # (b) PGA_NOSYNC (2003: PG_NOSYNC): dirtied through a MAP_NOSYNC entry; a clean
        # with OBJPC_NOSYNC (the syncer's) passes over it, leaving the object dirty.
        self.nosync = False

    @property
    def name(self) -> str:
        return f"{self.obj.name}:{self.pindex}"

    # -- wait channel --
    def wait_holders(self) -> list[int]:
        if self.busy == BUSY_EXCL:
            return [self.xowner]
        return list(self.sowners)

    def wait_name(self) -> str:
        kind = "xbusy" if self.busy == BUSY_EXCL else "sbusy" if self.busy else "busy"
        holder = self.wait_holders()
        who = ",".join(self.k.agent_name(h) for h in holder) or "nobody"
        return f"page {self.name} ({kind}, held by {who})"

    def _check(self) -> None:
        if self.busy == BUSY_EXCL:
            assert self.xowner >= 0 and not self.sowners, f"page {self.name}: xbusy without owner"
        elif self.busy == BUSY_SHARED:
            assert self.sowners and self.xowner < 0, f"page {self.name}: sbusy without holders"
        else:
            assert self.xowner < 0 and not self.sowners, f"page {self.name}: owner but not busy"
        assert self.wire_count >= 0
        assert not (self.freed and self.pv), f"page {self.name}: freed but still mapped"

    # -- busy protocol --------------------------------------------------------

    def is_busy(self) -> bool:
        return self.busy != BUSY_NONE

    async def try_xbusy(self) -> bool:
        """Busy the page exclusive if it is not busy (vm_page_tryxbusy)."""
        k = self.k
        await k.kpoint()
        if k.watched:
            k.read("obj", self.obj.name)
        if self.freed:
            k.touch_page(self)
        if self.busy != BUSY_NONE:
            return False
        self.busy = BUSY_EXCL
        self.xowner = k.sched.cpu
        k.emit_busy(self.obj.name, self.pindex, "x")
        return True

    async def wait_unbusy(self) -> None:
        """Sleep until the page is not busy (vm_page_busy_sleep).

        The caller must hold no object lock.  Returns without the busy.
        """
        k = self.k
        while self.busy != BUSY_NONE:
            k.emit_wait("busy", self.name)
            await k.sleep(self)

    async def xbusy(self) -> None:
        """Busy the page exclusive, sleeping while another holds it busy."""
        while not await self.try_xbusy():
            await self.wait_unbusy()

    async def xunbusy(self) -> None:
        """Release the exclusive busy and wake sleepers (vm_page_xunbusy)."""
        k = self.k
        await k.kpoint()
        me = k.sched.cpu
        if self.busy != BUSY_EXCL or self.xowner != me:
            k.contract(f"page {self.name}: xunbusy by cpu{me}, which does not hold it")
            return
        self.busy = BUSY_NONE
        self.xowner = -1
        k.emit_unbusy(self.obj.name, self.pindex)
        k.wakeup(self)

    def downgrade_to_io(self, holder: int) -> None:
        """Turn this cpu's exclusive busy into a shared busy owned by ``holder``.

        Used when a write is issued: the page stays busy until completion
        (vm_page_busy_downgrade).  Part of the issuing step, not a point.
        """
        assert self.busy == BUSY_EXCL
        self.busy = BUSY_SHARED
        self.xowner = -1
        self.sowners.append(holder)

    async def sbusy(self) -> bool:
        """Add a shared busy if the page is not exclusive busy (vm_page_trysbusy)."""
        k = self.k
        await k.kpoint()
        if k.watched:
            k.read("obj", self.obj.name)
        if self.freed:
            k.touch_page(self)
        if self.busy == BUSY_EXCL:
            return False
        self.busy = BUSY_SHARED
        self.sowners.append(k.sched.cpu)
        k.emit_busy(self.obj.name, self.pindex, "s")
        return True

    @property
    def soft_busy(self) -> int:
        """The 2003 ``m->busy``: how many I/Os hold the page (shared busy holders)."""
        return len(self.sowners)

    def io_start(self, holder: int) -> None:
        """Soft-busy the page for an I/O owned by ``holder`` (vm_page_io_start).

        The page must not be exclusive busy.  Part of the caller's step.
        """
        assert self.busy != BUSY_EXCL, f"page {self.name}: io_start on an xbusy page"
        self.busy = BUSY_SHARED
        self.sowners.append(holder)

    def release_shared(self, holder: int) -> None:
        """Drop one shared busy held by ``holder`` and wake sleepers.  Not a point."""
        self.sowners.remove(holder)
        if not self.sowners:
            self.busy = BUSY_NONE
        self.k.emit_unbusy(self.obj.name, self.pindex)
        if not self.sowners:
            self.k.wakeup(self)

    async def sunbusy(self) -> None:
        k = self.k
        await k.kpoint()
        me = k.sched.cpu
        if me not in self.sowners:
            k.contract(f"page {self.name}: sunbusy by cpu{me}, which does not hold it")
            return
        self.release_shared(me)
