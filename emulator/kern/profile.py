"""Profiles: the behaviours of vm_map_clean the emulator offers, as data.

The man page, the 2003 code and today's vm_map_sync disagree (SEMANTICS.md §2).
A ``Profile`` holds one field per row of that table, plus the few neighbouring
behaviours that differ with it; the kernel model and the checkers read these
fields and never a profile's name, which only labels reports and traces.
Adding a profile is one more instance here, added to ``PROFILES``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from emulator.kern.kern_return import KernReturn


class MapLock(enum.Enum):
    """How the clean holds the map lock (§2 "map lock")."""

    EXCLUSIVE = "exclusive"  # for the whole call: one caller per map ("single entry")
    SHARED_DROPPED = "shared, dropped"  # dropped around each flush; timestamp re-checked


class Flushes(enum.Enum):
    """Which objects a clean flushes (§2 "which objects are flushed")."""

    WRITABLE_ENTRIES = "writable"  # the file objects of writable entries
    MIGHT_BE_DIRTY = "might be dirty"  # file objects written since their last clean


class InvalidateFrees(enum.Enum):
    """Which resident pages an invalidating clean frees (§2 "invalidate frees")."""

    CLEAN_AFTER_FLUSH = "clean"  # a page re-dirtied since the flush stays
    EVERY_UNWIRED = "unwired"  # dirty ones too: a store between flush and free is lost


class AsyncWrite(enum.Enum):
    """How an asynchronous page clean writes a page (FIDELITY.md D1): the pager
    flags of a clean without OBJPC_SYNC, and what the filesystem makes of them."""

    # Flags 0, hence IO_ASYNC (the 2003 vnode pager): bawrite, the write starts now;
    # the page stays busy until the disk completes it.
    BAWRITE = "bawrite"
    # VM_PAGER_CLUSTER_OK, neither IO_SYNC nor IO_ASYNC: the filesystem delays the
    # write (UFS's bdwrite).  The data goes into the file's buffer at once (read(2)
    # sees it), the page's dirty bits clear at write start and the page is
    # unbusied; the buffer carries the dirtiness until the syncer or an fsync
    # writes it to disk.
    BDWRITE = "bdwrite"


@dataclass(frozen=True)
class Profile:
    """One column of SEMANTICS.md §2: how a clean behaves, row by row."""

    name: str  # for reports, trace headers and --profile; never branched on
    no_entry: KernReturn  # §2 "no entry contains start"
    hole: KernReturn  # §2 "hole inside the range"
    submap: KernReturn | None  # §2 "sub-map entry in range"; None: cleaned through it
    wired_invalidate: KernReturn | None  # §2 "invalidate over a user-wired entry"; None: allowed
    map_lock: MapLock  # §2 "map lock"
    flushes: Flushes  # §2 "which objects are flushed"
    invalidate_frees: InvalidateFrees  # §2 "invalidate frees"
    write_error: KernReturn  # §2 "write error": SUCCESS (ignored) or FAILURE
    zero_length_whole_entry: bool  # §2 "start == end": the entry containing start, not empty
    # §5 read fault: may map a shared-busy page read-only -- through a read-only
    # entry only; on a writable entry it waits as any fault does (FIDELITY.md D13).
    read_fault_maps_sbusy: bool
    # msync(2)'s errno for each failing code (DESIGN.md); success is 0.  Not
    # hashed: a mapping is not hashable, and the other fields identify a profile.
    msync_errno: Mapping[KernReturn, str] = field(hash=False)
    # The fault drops the map lock before paging in, then re-locks with a trylock
    # and restarts if that fails or the map's timestamp moved (vm_fault since 9.x,
    # FIDELITY.md D3).  Off: the map stays locked shared for the whole fault.
    fault_unlocks_for_pagein: bool = False
    # The fault never sleeps for the vnode lock holding the object's paging-in-progress
    # count: it tries the lock without sleeping and, if that fails, drops the count,
    # sleeps for the lock, then takes the count again (vm_fault_lock_vnode's LK_NOWAIT:
    # "We must not sleep acquiring the vnode lock while we have ... the object's
    # paging-in-progress count incremented").  Off: the 4.x/5.x fault, which bumped
    # the count and then slept for the vnode (vnode_pager_lock) -- safe only because
    # nothing waits for the count under the vnode lock since 196127c4 (H3).
    fault_drops_pip_for_vnode: bool = False
    # The map lock is writer-preferring (sx today, FIDELITY.md D4): a new shared
    # acquisition waits while a writer waits, unless the thread already holds a
    # map lock shared.  Off: readers pass while only a writer waits.
    map_lock_prefers_writers: bool = False
    # munmap(2)'s errno for a range that is not entirely mapped, checked under the
    # map lock before anything is removed (the 2003 munmap's
    # vm_map_check_protection(..., VM_PROT_NONE), FIDELITY.md D17).  None: what is
    # mapped goes, the rest is ignored.
    munmap_hole: str | None = None
    # msync(2) with length 0 looks up the entry holding addr under the map lock,
    # drops the lock, and cleans that whole entry (the 2003 msync, FIDELITY.md D6:
    # a window in which the entry can change, closed by cb53ca4d).  No entry is
    # msync's errno for KERN_INVALID_ADDRESS.  Off: the length goes down as it is.
    msync_sizes_zero_length: bool = False
    # An invalidate that frees dirty pages too (not clean-only) unmaps a wired file
    # page everywhere and discards its contents, dirty or not (``valid = 0``): the
    # next access reads it again (the 2003 vm_object_page_remove, FIDELITY.md D8).
    # Off: invalidate leaves wired pages alone.
    invalidate_discards_wired: bool = False
    # An invalidate busies a wired page (waiting while it is busy) and removes every
    # mapping of it, every process's, wired ones included, keeping the page and its
    # contents (today's vm_object_page_remove, FIDELITY.md D8: the wired case runs
    # pmap_remove_all whenever the object is referenced, then, under OBJPR_CLEANONLY,
    # neither invalidates nor frees it).  The next access through any mapping faults
    # it back in.  Off: invalidate passes over a wired page without touching it.
    invalidate_unmaps_wired: bool = False
    # The clean's walk down a backing chain steps to the backing object first and
    # then adds *its* backing offset -- the next link's, 0 for a file -- instead of
    # the offset of the link just left (the 2003 vm_map_clean, FIDELITY.md D7, H10):
    # a copy-on-write mapping of a file at offset F, once shadowed, is cleaned (and
    # invalidated) at file offset 0 instead of F.  Off: the order fixed by 2006.
    chain_walk_steps_first: bool = False
    # The 2003 page clean (vm_object_page_clean of FreeBSD 5, FIDELITY.md D2): the
    # object's might-be-dirty state is the OBJ_MIGHTBEDIRTY flag, set by faults and
    # cleared *before* a whole-object scan (and not set again when a write fails);
    # the scan marks every page PG_CLEANCHK and write-protects it in one step (Giant),
    # restarts when a page is inserted or removed (the memq generation), tests a page
    # dirty *before* waiting for its busy (the HARDSEQ fast path), and writes it under
    # the soft busy alone (vm_page_io_start), never the exclusive one.  Off: the
    # modern protocol (generation counters, busy before the dirty test).
    flag_page_clean: bool = False
    # An asynchronous page write leaves the page clean when it is issued: the vnode
    # pager copies it into a buffer written with bawrite and answers VM_PAGER_OK, so
    # vm_pageout_flush undirties the page while the I/O is in flight, the page
    # soft-busy until it completes (2003).  A failed write re-dirties it.  Off: the
    # page stays dirty until its write completes.
    async_write_undirties_at_issue: bool = False
    # A page write the pager starts at once (bwrite, bawrite: a synchronous clean, the
    # page daemon) clears the page's dirty bits at write *start*, as the buffer layer
    # does (bufwrite -> vfs_busy_pages(bp, 1): pmap_remove_write, then
    # vfs_page_set_validclean; FIDELITY.md D1): from then on the buffer carries the
    # dirtiness.  The buffer shares the page, so read(2) sees the data at once.  A
    # failed write re-dirties the *buffer* (brelse's bdirty: a delayed write again),
    # not the page: nothing in vnode_pager_generic_putpages or vm_pageout_flush's
    # VM_PAGER_ERROR case dirties the page again.  Off: the page stays dirty until
    # its write completes, and a failed write leaves it dirty.
    write_clears_dirty_at_start: bool = False
    # How an asynchronous page clean (MS_ASYNC, the syncer, fsync's first pass)
    # writes a dirty page (FIDELITY.md D1).
    async_write: AsyncWrite = AsyncWrite.BAWRITE
    # vm_object_sync's whole-file MS_SYNC (FIDELITY.md D10): a sync, non-invalidating
    # clean of an object from offset 0 to its end runs asynchronously (no rescan)
    # and then calls VOP_FSYNC(MNT_WAIT); a VOP_FSYNC error fails the call.
    whole_file_sync_fsyncs: bool = False
    # Whether a successful msync(MS_SYNC) promises that every store made before
    # the call to a page of its range is on disk (durable), not only in the
    # buffer cache (coherent).  fsync(2) promises it in every profile.
    # README "Buffer cache and durability" says which profile promises what, and why.
    msync_sync_durable: bool = True
    # vm_pageout_page_count: the most pages one pager call of the page clean or the
    # page daemon carries, the page asked for and its dirty neighbours, forward then
    # backward, beyond the clean's range (FIDELITY.md D9).  Every era clusters: 16
    # (VM_PAGEOUT_PAGE_COUNT from 4.x to 11.x), 32 today; both kernels drop it to 8
    # on machines of fewer than 2000 physical pages, which is not modelled.  A
    # spec's "cluster" overrides it; 1 writes each page alone.
    cluster: int = 16
    # The profile's era bugs: behaviour the checkers report (a rule broken) but that is
    # the era's code behaving as it did, by key (FIDELITY.md's H or D number), with the
    # reason a report gives.  A violation is *historical* only when the checker marks
    # it with a key (its ``historical`` field, ``emulator.check.historical``) that this
    # table names.  Not hashed, as ``msync_errno``.
    era_bugs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}),
                                        hash=False)

    def msync_result(self, rv: KernReturn) -> int | str:
        """Return what msync(2) returns for a clean's ``rv``: 0 or an errno name."""
        return msync_errno(self.msync_errno, rv)


def msync_errno(table: Mapping[KernReturn, str], rv: KernReturn) -> int | str:
    """msync(2)'s result for ``rv`` under ``table``: 0 on success; a code the table
    does not name is EINVAL (the ``default`` of every era's switch)."""
    return 0 if rv == KernReturn.SUCCESS else table.get(rv, "EINVAL")


# Each era's msync switch (FIDELITY.md D5); codes not listed are EINVAL.
# msync.2 (since r265534, 2014): ENOMEM when a page is not mapped, EBUSY for
# locked pages under MS_INVALIDATE, EIO for a write error.  The man page's
# vm_map_clean(9) returns KERN_INVALID_ARGUMENT for a range that is not all mapped
# and KERN_INVALID_ADDRESS for a sub-map; msync(2) makes both ENOMEM.
MANPAGE_ERRNO: Mapping[KernReturn, str] = MappingProxyType({
    KernReturn.INVALID_ADDRESS: "ENOMEM",
    KernReturn.INVALID_ARGUMENT: "ENOMEM",
    KernReturn.FAILURE: "EIO",
})
# The pre-rename msync (3.x to 5.x): an unmapped range is EINVAL ("Sun returns
# ENOMEM?"), so is every other failure but KERN_FAILURE.
FREEBSD5_ERRNO: Mapping[KernReturn, str] = MappingProxyType({
    KernReturn.INVALID_ADDRESS: "EINVAL",
    KernReturn.FAILURE: "EIO",
})
# kern_msync today: ENOMEM since r265534 (pho, 2014), EBUSY for a wired range.
MODERN_ERRNO: Mapping[KernReturn, str] = MappingProxyType({
    KernReturn.INVALID_ADDRESS: "ENOMEM",
    KernReturn.INVALID_ARGUMENT: "EBUSY",
    KernReturn.FAILURE: "EIO",
})

# freebsd5's era bugs (FIDELITY.md §3 and D8, D19), each reproduced as the 2003 code behaved.
FREEBSD5_ERA_BUGS: Mapping[str, str] = MappingProxyType({
    "H9": "freebsd5's historical invalidate data loss, reproduced as the 2003 code behaved; "
          "the manpage and modern profiles keep re-dirtied pages",
    "H10": "freebsd5's historical backing-chain walk: the 2003 vm_map_clean cleans a "
           "shadowed copy-on-write mapping's file at the wrong offset (H10); fixed by 2006",
    "H24": "freebsd5's page clean clears OBJ_MIGHTBEDIRTY before its scan and never sets it "
           "again when a write fails (H24): every later clean returns at once on a dirty page",
    "H26": "freebsd5's page clean tests a page dirty before waiting for its busy (H26): a "
           "page left clean by an asynchronous write still in flight is passed over",
    "D8": "freebsd5's historical invalidate of a wired page: the 2003 page remove discards "
          "its contents (valid = 0), dirty or not; today's keeps them",
    "D19": "the mprotect flush gap (D19): the 2003 vm_map_clean flushes only the objects of "
           "writable entries (current->protection & VM_PROT_WRITE), so a store made before "
           "mprotect(PROT_READ) -- whose pmap_protect moved the modified bit into the page's "
           "dirty field -- is not written by msync(MS_SYNC), which returns 0; the syncer "
           "writes it later.  Today's vm_map_sync flushes any object that might be dirty",
})

# What the manual page describes (the default).
MANPAGE = Profile(
    name="manpage",
    no_entry=KernReturn.INVALID_ARGUMENT,
    hole=KernReturn.INVALID_ARGUMENT,
    submap=KernReturn.INVALID_ADDRESS,
    wired_invalidate=None,
    map_lock=MapLock.EXCLUSIVE,
    flushes=Flushes.WRITABLE_ENTRIES,
    invalidate_frees=InvalidateFrees.CLEAN_AFTER_FLUSH,
    write_error=KernReturn.SUCCESS,
    zero_length_whole_entry=False,
    read_fault_maps_sbusy=False,
    msync_errno=MANPAGE_ERRNO,
    cluster=16,
)

# The 2003 code: the man page's error codes swapped, invalidate's data loss, the
# msync and munmap of that era, and its page clean with its soft busy (FIDELITY.md D2).
FREEBSD5 = Profile(
    name="freebsd5",
    no_entry=KernReturn.INVALID_ADDRESS,
    hole=KernReturn.INVALID_ADDRESS,
    submap=KernReturn.INVALID_ARGUMENT,
    wired_invalidate=None,
    map_lock=MapLock.EXCLUSIVE,
    flushes=Flushes.WRITABLE_ENTRIES,
    invalidate_frees=InvalidateFrees.EVERY_UNWIRED,
    write_error=KernReturn.SUCCESS,
    zero_length_whole_entry=False,
    read_fault_maps_sbusy=False,
    msync_errno=FREEBSD5_ERRNO,
    munmap_hole="EINVAL",
    msync_sizes_zero_length=True,
    invalidate_discards_wired=True,
    chain_walk_steps_first=True,
    flag_page_clean=True,
    async_write_undirties_at_issue=True,
    cluster=16,
    era_bugs=FREEBSD5_ERA_BUGS,
)

# vm_map_sync today.
MODERN = Profile(
    name="modern",
    no_entry=KernReturn.INVALID_ADDRESS,
    hole=KernReturn.INVALID_ADDRESS,
    submap=None,
    wired_invalidate=KernReturn.INVALID_ARGUMENT,
    map_lock=MapLock.SHARED_DROPPED,
    flushes=Flushes.MIGHT_BE_DIRTY,
    invalidate_frees=InvalidateFrees.CLEAN_AFTER_FLUSH,
    write_error=KernReturn.FAILURE,
    zero_length_whole_entry=True,
    read_fault_maps_sbusy=True,
    msync_errno=MODERN_ERRNO,
    fault_unlocks_for_pagein=True,
    fault_drops_pip_for_vnode=True,
    map_lock_prefers_writers=True,
    invalidate_unmaps_wired=True,
    async_write=AsyncWrite.BDWRITE,
    write_clears_dirty_at_start=True,
    whole_file_sync_fsyncs=True,
    msync_sync_durable=False,
    cluster=32,
)

# Every profile by name, in the order `vmemu list` and error messages show them.
PROFILES: dict[str, Profile] = {p.name: p for p in (MANPAGE, FREEBSD5, MODERN)}
DEFAULT_PROFILE = MANPAGE
