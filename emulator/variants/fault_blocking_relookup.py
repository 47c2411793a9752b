"""Mutant ``fault_blocking_relookup`` (H25, ``freebsd5``): the fault drops the map lock
to page in, then takes it again *blocking* while it holds the new page busy.

The 4.x lineage of vm_fault re-looked the map up with a blocking
``vm_map_lookup`` after the pager, the page still busy (FIDELITY.md D3, H25).
Against a vm_map_clean that holds the map lock exclusive and sleeps on that very
page, neither can go on: a deadlock.  Today's vm_fault takes the map back with
``vm_map_trylock_read`` and, failing, releases the page and restarts.
"""

from emulator.check import Rule
from emulator.kern.clean import REFERENCE
from emulator.kern.fault import Fault, FaultState
from emulator.variants.base import Variant


class FaultBlockingRelookup(Fault):
    def unlocks_for_pagein(self) -> bool:
        return True

    async def relock(self, fs: FaultState) -> bool:
        for m in fs.locked:
            await m.lock.slock()  # the bug: sleeps for the map holding a busy page
        if [m.lock.timestamp for m in fs.locked] != fs.stamps:
            await self.unlock_maps(fs.locked)
            return False
        fs.unlocked = False
        return True


VARIANT = Variant(
    "fault_blocking_relookup", REFERENCE.clean, fault=FaultBlockingRelookup,
    doc="the fault re-locks the map blocking after the page-in, holding the page busy",
    profile="freebsd5", catches=(Rule.DEADLOCK, Rule.LOCK_DISCIPLINE),
)
