"""Rule 3, ``stale_structure``: nothing touches an entry, object or page after it is freed.

Freed entries change class (``FreedVmMapEntry``), so any read of one of their
fields by agent code is seen, whichever variant reads it.  Pages and objects
are checked by the primitives every path goes through (lookup, busy, pmap,
write, chain walk).  The kernel reports a touch of a freed structure
(``touch_freed``, at no cost while nothing is freed); this module judges it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.spec import Spec

RULE = "stale_structure"


def install(k: Kernel, spec: Spec) -> None:
    def on_touch_freed(kind: str, what: Any) -> None:
        """``what`` is the freed page, object or map entry (``kind``) the running code touched."""
        who = k.agent_name(k.curcpu())
        if kind != "entry":
            k.monitor.fatal(RULE, f"{who} touched {kind} {what.name} after it was freed",
                            **{kind: what.name})
            return
        k.in_checker = True  # describing the freed entry is no touch
        described = what.describe()
        freed_at = what.freed_at
        k.in_checker = False
        k.monitor.fatal(
            RULE,
            f"{who} touched map entry {described} after it was unlinked and freed at step "
            f"{freed_at}",
            entry=described,
            freed_at=freed_at,
        )

    k.hook("touch_freed", on_touch_freed)
