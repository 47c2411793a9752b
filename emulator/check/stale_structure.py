"""Rule 3, ``stale_structure``: nothing touches an entry, object or page after it is freed.

Freed entries change class (``FreedVmMapEntry``), so any read of one of their
fields by agent code is seen, whichever variant reads it.  Pages and objects
are checked by the primitives every path goes through (lookup, busy, pmap,
write, chain walk).  This checker switches those checks on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.check import Rule
from emulator.check.base import Checker

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel


class StaleStructure(Checker):
    rule = Rule.STALE_STRUCTURE

    def __init__(self, k: Kernel) -> None:
        super().__init__(k)
        k.check_stale = True
