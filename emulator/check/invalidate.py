"""Rule 5, ``invalidate``.

On a successful invalidating clean, no page-table entry of the cleaning map
remains in the range -- except those another CPU entered during the call,
which the modern profile allows, since it does not exclude faults -- and a busy
page is never freed (by anyone, at any time), nor a wired one (vm_page_free_prep's
assertion: invalidate leaves wired pages resident).  That the freed pages were
written first is the lost-store rule's check at every page free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.check import Rule
from emulator.check.base import Checker, OpenCall, tracker
from emulator.kern.events import PageFreeing, PteEnter
from emulator.kern.kern_return import KernReturn
from emulator.kern.kernel import twin
from emulator.kern.page import Busy
from emulator.kern.param import PAGE_SHIFT, round_page, trunc_page

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel

SUCCESS = KernReturn.SUCCESS.label


class Invalidate(Checker):
    rule = Rule.INVALIDATE

    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        self.calls = calls = tracker(k)
        # Per invalidating call: the vpns other CPUs mapped in its map meanwhile.
        self.others: dict[OpenCall, set[int]] = {}
        k.observe(PteEnter, self._pte)
        calls.on_return.append(self._return)
        k.observe(PageFreeing, self._free)

    def _pte(self, step: int, aid: int, ev: PteEnter) -> None:
        self.pte(ev.map, ev.vpn, ev.obj, ev.pindex, ev.prot)

    def pte(self, map_name: str, vpn: int, obj: str, pindex: int, prot: str) -> None:
        """The twin of ``_pte`` taking the event's fields (kern/kernel.py, ``twin``)."""
        calls = self.calls.calls
        if not calls:
            return  # no clean in flight: the common case
        aid = self.k.sched.cpu
        for call in calls.values():
            if call.invalidate and call.cpu != aid and call.vm_map.name == map_name:
                self.others.setdefault(call, set()).add(vpn)

    def _return(self, call: OpenCall, rv: str) -> None:
        others = self.others.pop(call, set())
        if not call.invalidate or rv != SUCCESS:
            return
        start, end = call.vm_map.clamp(call.start, call.end)
        if self.k.profile.zero_length_whole_entry and start == end:
            return  # the whole entry was meant; the lost-store rule covers its pages
        lo, hi = trunc_page(start) >> PAGE_SHIFT, round_page(end) >> PAGE_SHIFT
        left = sorted(v for v in call.vm_map.pmap.ptes if lo <= v < hi and v not in others)
        if left:
            self.violate(
                f"{self.k.agent_name(call.cpu)}'s invalidating clean of [{call.start:#x},"
                f"{call.end:#x}) returned success with {len(left)} mapping(s) of "
                f"{call.vm_map.name} still in range, first at {left[0] << PAGE_SHIFT:#x}",
                cpus=[call.cpu],
                map=call.vm_map.name,
            )

    def _free(self, step: int, aid: int, ev: PageFreeing) -> None:
        page, k = ev.page, self.k
        if page.wire_count > 0:
            # vm_page_free_prep's KASSERT: a wired page's wiring pins it resident.
            self.violate(
                f"{k.agent_name(aid)} freed page {page.name} while it was wired "
                f"(wire count {page.wire_count})",
                cpus=[aid],
                page=page.name,
            )
            return
        if page.busy == Busy.EXCL and page.xowner == aid and not page.sowners:
            return
        holders = page.wait_holders()
        if not page.is_busy():
            what = "without busying it first (a page is freed exclusive-busy)"
        else:
            who = ", ".join(k.agent_name(h) for h in holders)
            io = ", a write in flight" if page.sowners else ""
            what = f"while it was busy (held by {who}{io})"
        self.violate(
            f"{k.agent_name(aid)} freed page {page.name} {what}",
            cpus=[aid, *holders],
            page=page.name,
        )


twin(PteEnter, Invalidate._pte, Invalidate.pte)
