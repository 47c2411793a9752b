"""Rule 3, ``stale_structure``: nothing touches an entry, object or page after it is freed.

Freed entries change class (``FreedVmMapEntry``), so any read of one of their
fields by agent code is seen, whichever variant reads it.  Pages and objects
are checked by the primitives every path goes through (lookup, busy, pmap,
write, chain walk).  The kernel reports a touch of a freed structure
(``TouchFreed``, at no cost while nothing is freed); this checker judges it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.check import Rule
from emulator.check.base import Checker
from emulator.kern.events import TouchFreed

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel


class StaleStructure(Checker):
    rule = Rule.STALE_STRUCTURE

    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        k.observe(TouchFreed, self._touch_freed)

    def _touch_freed(self, step: int, aid: int, ev: TouchFreed) -> None:
        """``ev.what`` is the freed page, object or map entry (``ev.res``) the code touched."""
        k, what = self.k, ev.what
        who = k.agent_name(aid)
        if ev.res != "entry":
            self.violate(f"{who} touched {ev.res} {what.name} after it was freed",
                         **{ev.res: what.name})
            return
        k.in_checker = True  # describing the freed entry is no touch
        described = what.describe()
        freed_at = what.freed_at
        k.in_checker = False
        self.violate(
            f"{who} touched map entry {described} after it was unlinked and freed at step "
            f"{freed_at}",
            entry=described,
            freed_at=freed_at,
        )
