"""Mutant ``early_unbusy`` (S): unbusies the page before its write completes."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.kernel import Kernel
from emulator.kern.page import VmPage
from emulator.kern.pager import Cluster, Io
from emulator.variants.base import Variant


class EarlyUnbusy(MapClean):
    def start_write(self, k: Kernel, page: VmPage, sync: bool,
                    cluster: Cluster | None = None) -> Io:
        io = super().start_write(k, page, sync, cluster)
        page.release_shared(k.disk.aid)  # too early: the write is still in flight
        return io


VARIANT = Variant(
    "early_unbusy", EarlyUnbusy().clean, doc="unbusies before the write completes",
    profile="manpage", catches=(Rule.LOST_STORE,),
)
