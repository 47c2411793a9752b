"""Mutant ``no_write_protect`` (S): folds modified bits but leaves mappings writable."""

from emulator.check import Rule
from emulator.kern.clean import MapClean
from emulator.kern.page import VmPage
from emulator.kern.pmap import fold_modified
from emulator.variants.base import Variant


class NoWriteProtect(MapClean):
    async def protect(self, page: VmPage) -> None:
        await page.k.point()
        fold_modified(page)  # still writable: a store can land during the write


VARIANT = Variant(
    "no_write_protect", NoWriteProtect().clean,
    doc="skips revoking write access before the write",
    profile="manpage", catches=(Rule.LOST_STORE,),
)
