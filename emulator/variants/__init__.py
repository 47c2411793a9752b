"""Clean variants: the reference routine per profile, the mutants, and user code.

A variant is an ``async def clean(map, start, end, syncio, invalidate) ->
KernReturn`` written against the kernel API (``emulator.api``), or a
:class:`~emulator.variants.base.Variant` that also replaces the fault or munmap path.
``reference`` follows the run's profile.  A user's own variant is named
``path/to/file.py:function`` or ``module:function``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

from emulator.errors import BadInput
from emulator.kern.clean import reference_clean
from emulator.variants.base import Variant as Variant  # re-exported

# The mutants of SEMANTICS.md §7, then those of issue 9, each in a module of its own name.
MUTANT_NAMES = (
    "no_map_lock",
    "shared_map_lock",
    "unlock_between_passes",
    "no_timestamp_recheck",
    "no_write_protect",
    "undirty_at_issue",
    "early_unbusy",
    "fault_ignores_busy",
    "invalidate_frees_dirty",
    "invalidate_before_flush",
    "skip_busy_page",
    "late_clean_generation",
    "fault_no_generation",
    "munmap_drops_modified",
    "swapped_codes",
    "side_effect_before_validation",
    "zero_length_toctou",
    "null_object_deref",
    "lock_order_inversion",
    "vnode_lock_while_busy",
    # One per structure of the structure-covering workloads (issue 9).
    "invalidate_frees_wired",
    "invalidate_ignores_wiring",
    "submap_success",
    "submap_inner_offset",
    "top_object_not_bottom",
    "entry_offset_ignored",
    "first_object_only",
    "unreferenced_object",
    "stop_after_map_change",
    "fault_dirty_before_busy",
    # Reachable through the background agents (issue 11).
    "no_relookup_after_sleep",
    # Reachable through the fault's unlocked page-in and the writer-preferring map lock.
    "fault_blocking_relookup",
    "shared_lock_across_page_sleep",
    # Reachable through mprotect (issue 11 item 5).
    "writable_entries_only",
    # Reachable through the page clean's clustering (issue 11 item 5).
    "cluster_eio_whole",
    "neighbour_not_write_protected",
    # The era-faithful freebsd5 (issue 11): what later eras fixed, as mutants of today's.
    "msync_einval_unmapped",
    # Reachable through freebsd5's 2003 page clean and soft busy (issue 11, item 4).
    "invalidate_ignores_soft_busy",
    # Reachable through the buffer cache, delayed writes and fsync(2) (issue 11).
    "sync_write_delayed",
    "fsync_skips_delayed",
    "fsync_skips_pages",
    "async_delayed_no_fsync",
    # Reachable through the object's paging-in-progress count (issue 11, H3).
    "pip_wait_under_vnode",
    # Reachable through a closed file's last mapping and vrele (issue 11, H19).
    "vrele_under_map_lock",
    # Reachable through modern's dirty-cleared-at-write-start buffer writes (issue 11).
    "failed_write_dropped",
    # Reachable through modern's invalidate of pages wired elsewhere (issue 11, D8).
    "wired_invalidate_discards",
    # Reachable through MAP_NOSYNC / madvise(MADV_NOSYNC) and the syncer (issue 11, H7/H18).
    "msync_skips_nosync",
    "nosync_skip_marks_clean",
    "fsync_skips_nosync",
)

MUTANTS: dict[str, Variant] = {
    name: importlib.import_module(f"emulator.variants.{name}").VARIANT for name in MUTANT_NAMES
}

BUILTIN: dict[str, Variant] = {
    "reference": Variant("reference", reference_clean, doc="the routine of the run's profile"),
    **MUTANTS,
}


def load_variant(name: str) -> Variant:
    """Return a built-in variant by name, or load ``file.py:func`` / ``module:func``."""
    if name in BUILTIN:
        return BUILTIN[name]
    if ":" not in name:
        raise BadInput(
            f"unknown variant '{name}' (built-in: {', '.join(BUILTIN)}; "
            "or give path/to/file.py:function or module:function)"
        )
    where, _, func = name.rpartition(":")
    if not func.isidentifier():
        raise BadInput(f"variant '{name}': '{func}' is not a function name")
    if where.endswith(".py") or "/" in where:
        path = Path(where)
        if not path.is_file():
            raise BadInput(f"variant '{name}': no such file: {where}")
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
        mod_name = f"vmemu_user_variant_{digest}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise BadInput(f"variant '{name}': cannot load {where}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise BadInput(f"variant '{name}': loading {where} failed: "
                           f"{type(exc).__name__}: {exc}") from None
    else:
        try:
            module = importlib.import_module(where)
        except Exception as exc:
            raise BadInput(f"variant '{name}': cannot import module '{where}': "
                           f"{type(exc).__name__}: {exc}") from None
    obj = getattr(module, func, None)
    if obj is None:
        raise BadInput(f"variant '{name}': {where} has no attribute '{func}'")
    if isinstance(obj, Variant):
        return obj
    if not inspect.iscoroutinefunction(obj):
        raise BadInput(f"variant '{name}': '{func}' is not an async def (a clean routine "
                       "must be async def clean(map, start, end, syncio, invalidate))")
    return Variant(name, obj)
