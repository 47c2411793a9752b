"""The physical map: per-map page tables with writable and modified bits.

A mapping (PTE) says which page a virtual page shows, whether stores may go
through it, and the hardware *modified* bit a store through it sets.  Removing
a mapping folds its modified bit into the page's ``dirty`` flag; it never drops
it (pmap_remove).  ``remove_write`` revokes write access in every mapping of a
page and folds their modified bits in one step (pmap_remove_write).

Each mutating operation is one schedule point; reverse mappings (``page.pv``)
let an operation reach every mapping of a page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.kern.events import PteProtect, PteRemove, RemoveAll

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.page import VmPage


class Pte:
    """One page-table entry.  (p) pmap lock: atomic with the step that changes it."""

    __slots__ = ("modified", "page", "writable")

    def __init__(self, page: VmPage, writable: bool) -> None:
        self.page = page
        self.writable = writable
        self.modified = False


class Pmap:
    """struct pmap: virtual page number -> Pte, for one map."""

    __slots__ = ("k", "name", "ptes")

    def __init__(self, k: Kernel, name: str) -> None:
        self.k = k
        self.name = name
        self.ptes: dict[int, Pte] = {}

    def _check(self) -> None:
        for vpn, pte in self.ptes.items():
            assert (self, vpn) in pte.page.pv, f"pmap {self.name}: vpn {vpn:#x} missing from pv"
            assert not pte.page.freed, f"pmap {self.name}: vpn {vpn:#x} maps a freed page"

    def lookup(self, vpn: int) -> Pte | None:
        return self.ptes.get(vpn)

    def remove_pte(self, vpn: int) -> None:
        """Remove the mapping at ``vpn``, folding its modified bit (pmap_remove_pte).

        Part of the caller's step.
        """
        pte = self.ptes[vpn]
        page = pte.page
        if pte.modified:
            page.dirty = True
        page.pv.remove((self, vpn))
        del self.ptes[vpn]

    async def enter(self, vpn: int, page: VmPage, writable: bool) -> None:
        """Map ``page`` at ``vpn``, replacing any mapping there (pmap_enter)."""
        k = self.k
        await k.kpoint()
        if page.freed:
            k.touch_page(page)
        old = self.ptes.get(vpn)
        if old is not None:
            if old.page is page:
                old.writable = writable
                k.emit_pte_enter(self.name, vpn, page.obj.name, page.pindex,
                                 "w" if writable else "r")
                return
            self.remove_pte(vpn)
        self.ptes[vpn] = Pte(page, writable)
        page.pv.append((self, vpn))
        k.emit_pte_enter(self.name, vpn, page.obj.name, page.pindex, "w" if writable else "r")

    async def remove(self, start_vpn: int, end_vpn: int) -> None:
        """Remove every mapping in [start_vpn, end_vpn), folding modified bits."""
        k = self.k
        await k.kpoint()
        if k.watched:
            k.read("map", self.name)
        gone = [vpn for vpn in self.ptes if start_vpn <= vpn < end_vpn]
        gone.sort()
        for vpn in gone:
            self.remove_pte(vpn)
        if gone:
            k.emit(PteRemove(self.name, start_vpn, end_vpn, len(gone)))

    async def protect(self, start_vpn: int, end_vpn: int) -> None:
        """Revoke write access in this map's mappings of [start_vpn, end_vpn), folding
        their modified bits into the pages' dirty flags (pmap_protect without
        VM_PROT_WRITE).  Other maps' mappings of the same pages keep theirs."""
        k = self.k
        await k.kpoint()
        if k.watched:
            k.read("map", self.name)
        count = 0
        for vpn in sorted(v for v in self.ptes if start_vpn <= v < end_vpn):
            pte = self.ptes[vpn]
            if not pte.writable:
                continue
            if pte.modified:
                pte.page.dirty = True
                pte.modified = False
            pte.writable = False
            count += 1
        if count:
            k.emit(PteProtect(self.name, start_vpn, end_vpn, count))


async def remove_write(k: Kernel, page: VmPage) -> None:
    """Revoke write access to ``page`` everywhere, folding modified bits (one step)."""
    await k.kpoint()
    write_protect(k, page)


def write_protect(k: Kernel, page: VmPage) -> None:
    """``remove_write``'s work as part of the caller's step (pmap_page_protect(READ)
    inside a longer Giant-held stretch of the 2003 kernel)."""
    if page.freed:
        k.touch_page(page)
    for pmap, vpn in page.pv:
        pte = pmap.ptes[vpn]
        if pte.modified:
            page.dirty = True
            pte.modified = False
        pte.writable = False
    k.emit_remove_write(page.obj.name, page.pindex, int(page.dirty))


def fold_modified(page: VmPage) -> None:
    """Fold every mapping's modified bit into ``page.dirty`` without revoking write.

    Part of a step, not a point (vm_page_test_dirty).
    """
    for pmap, vpn in page.pv:
        pte = pmap.ptes[vpn]
        if pte.modified:
            page.dirty = True
            pte.modified = False


def clear_modify(page: VmPage) -> None:
    """Clear every mapping's modified bit (pmap_clear_modify).  Part of a step."""
    for pmap, vpn in page.pv:
        pmap.ptes[vpn].modified = False


def is_modified(page: VmPage) -> bool:
    return any(pmap.ptes[vpn].modified for pmap, vpn in page.pv)


async def remove_all(k: Kernel, page: VmPage) -> None:
    """Remove every mapping of ``page``, folding modified bits (pmap_remove_all)."""
    await k.kpoint()
    if page.freed:
        k.touch_page(page)
    for pmap, vpn in list(page.pv):
        pmap.remove_pte(vpn)
    k.emit(RemoveAll(page.obj.name, page.pindex, int(page.dirty)))
