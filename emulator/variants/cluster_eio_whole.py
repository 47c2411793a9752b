"""Mutant ``cluster_eio_whole`` (H13, FIDELITY.md D9): a multi-page write's error is
reported for any page of the run, backward neighbours included, so an msync of a page
returns EIO because a page before it, outside its range, failed; vm_pageout_flush
reports only the requested page and the pages after it."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.pager import Cluster
from emulator.variants.base import Variant


class ClusterEioWhole(MapClean):
    def cluster_eio(self, cluster: Cluster) -> bool:
        # The bug: ``i >= mreq`` forgotten.
        return any(io.error for io in cluster.ios)


VARIANT = Variant(
    "cluster_eio_whole", ClusterEioWhole().clean,
    doc="reports a multi-page write's EIO for a failed backward neighbour too",
    profile="modern", catches=(Rule.RETURN_CODE,),
)
