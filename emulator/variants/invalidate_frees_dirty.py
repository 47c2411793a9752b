"""Mutant ``invalidate_frees_dirty`` (H): invalidate frees pages re-dirtied after the flush.

This is freebsd5's behaviour, run under the ``manpage`` profile.
"""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.kernel import Kernel
from emulator.kern.object import VmObject
from emulator.variants.base import Variant


class InvalidateFreesDirty(MapClean):
    def clean_only(self, k: Kernel, obj: VmObject) -> bool:
        return False


VARIANT = Variant(
    "invalidate_frees_dirty", InvalidateFreesDirty().clean,
    doc="invalidate frees pages re-dirtied after the flush",
    profile="manpage", catches=(Rule.LOST_STORE, Rule.INVALIDATE),
)
