"""Mutant ``invalidate_frees_wired`` (S): invalidate frees the wired pages of a wired file
mapping too (vm_object_page_remove without its wire-count test)."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.page import VmPage
from emulator.variants.base import Variant


class InvalidateFreesWired(MapClean):
    def spares_wired(self, page: VmPage) -> bool:
        return False  # the bug: no "page.wire_count > 0: skip it"


VARIANT = Variant(
    "invalidate_frees_wired", InvalidateFreesWired().clean,
    doc="invalidate frees the wired pages of a wired file mapping", profile="manpage",
    catches=(Rule.INVALIDATE,),
)
