"""Mutant ``early_unbusy`` (S): unbusies the page before its write completes."""

from emulator.kern.clean import MapClean
from emulator.kern.page import VmPage
from emulator.variants.base import Variant


class EarlyUnbusy(MapClean):
    def after_issue(self, page: VmPage) -> None:
        page.release_shared(page.k.disk.aid)  # too early: the write is still in flight


VARIANT = Variant(
    "early_unbusy", EarlyUnbusy().clean, doc="unbusies before the write completes",
    profile="manpage", catches=("lost_store",),
)
