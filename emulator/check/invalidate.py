"""Rule 5, ``invalidate``.

On a successful invalidating clean, no page-table entry of the cleaning map
remains in the range -- except those another CPU entered during the call,
which the modern profile allows, since it does not exclude faults -- and a busy
page is never freed (by anyone, at any time).  That the freed pages were
written first is the lost-store rule's check at every page free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator.check.base import CleanCall, tracker
from emulator.kern.kern_return import KernReturn
from emulator.kern.page import Busy
from emulator.kern.param import PAGE_SHIFT, round_page, trunc_page

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.page import VmPage
    from emulator.spec import Spec

RULE = "invalidate"


def install(k: Kernel, spec: Spec) -> None:
    calls = tracker(k)

    def on_pte(step: int, aid: int, f: tuple[Any, ...]) -> None:
        for call in calls.calls.values():
            if call.invalidate and call.cpu != aid and call.vm_map.name == f[0]:
                call.data.setdefault("invalidate.others", set()).add(f[1])

    def on_return(call: CleanCall, rv: Any) -> None:
        if not call.invalidate or rv != KernReturn.SUCCESS:
            return
        start, end = call.vm_map.clamp(call.start, call.end)
        if k.profile == "modern" and start == end:
            return  # the whole entry was meant; the lost-store rule covers its pages
        lo, hi = trunc_page(start) >> PAGE_SHIFT, round_page(end) >> PAGE_SHIFT
        others = call.data.get("invalidate.others", set())
        left = sorted(v for v in call.vm_map.pmap.ptes if lo <= v < hi and v not in others)
        if left:
            k.monitor.fatal(
                RULE,
                f"{k.agent_name(call.cpu)}'s invalidating clean of [{call.start:#x},"
                f"{call.end:#x}) returned success with {len(left)} mapping(s) of "
                f"{call.vm_map.name} still in range, first at {left[0] << PAGE_SHIFT:#x}",
                cpus=[call.cpu],
                map=call.vm_map.name,
            )

    def on_free(page: VmPage) -> None:
        me = k.curcpu()
        if page.busy == Busy.EXCL and page.xowner == me and not page.sowners:
            return
        holders = page.wait_holders()
        if not page.is_busy():
            what = "without busying it first (a page is freed exclusive-busy)"
        else:
            who = ", ".join(k.agent_name(h) for h in holders)
            io = ", a write in flight" if page.sowners else ""
            what = f"while it was busy (held by {who}{io})"
        k.monitor.fatal(
            RULE,
            f"{k.agent_name(me)} freed page {page.name} {what}",
            cpus=[me, *holders],
            page=page.name,
        )

    k.observe("pte", on_pte)
    calls.on_return.append(on_return)
    k.hook("page_freeing", on_free)
