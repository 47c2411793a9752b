"""Mutant ``undirty_at_issue`` (S): clears ``dirty`` when the write is issued.

Harmless while every write succeeds; a failed write then leaves a clean page
whose data the pager never got.
"""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.kernel import Kernel
from emulator.kern.page import VmPage
from emulator.kern.pager import Cluster, Io
from emulator.variants.base import Variant


class UndirtyAtIssue(MapClean):
    def start_write(self, k: Kernel, page: VmPage, sync: bool,
                    cluster: Cluster | None = None) -> Io:
        page.dirty = False  # too early: the write has not completed
        return super().start_write(k, page, sync, cluster)


VARIANT = Variant(
    "undirty_at_issue", UndirtyAtIssue().clean,
    doc="clears dirty when the write is issued, not at completion",
    profile="manpage", catches=(Rule.LOST_STORE,),
)
