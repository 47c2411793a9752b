"""Mutant ``fault_no_generation`` (S): the write fault does not bump ``generation``."""

from emulator.check import Rule
from emulator.kern.clean import REFERENCE
from emulator.kern.fault import Fault
from emulator.kern.object import VmObject
from emulator.kern.page import VmPage
from emulator.variants.base import Variant


class FaultNoGeneration(Fault):
    def mark_dirty(self, obj: VmObject, page: VmPage) -> None:
        page.dirty = True

    def set_writeable_dirty(self, obj: VmObject) -> None:
        pass


VARIANT = Variant(
    "fault_no_generation", REFERENCE.clean, fault=FaultNoGeneration,
    doc="the write fault does not bump the object's generation", profile="manpage",
    catches=(Rule.LOST_STORE,),
)
