"""Named workloads: modules that expand parameters and a seed into a workload spec.

Each module defines ``PARAMS`` (name -> (type, default, help)), optionally
``LIMITS`` (name -> (lowest, highest)), and ``build(params, seed)`` returning a
plain spec dict (DESIGN.md, "The spec format") that :func:`parse_spec`
validates.  A parameter named ``seed`` whose default is ``None`` takes the
execution seed unless the user pins it.  Builds are deterministic: the same
parameters give the same spec; a build reads the seed only through that
parameter (its ``seed`` argument is the same number, for convenience), so a
workload without it builds one spec for every seed.

That spec is built once: :func:`build_workload` keeps the specs of unseeded
workloads (a campaign asks for the spec of every execution's seed), and
returns the same :class:`Spec` object for the same name, parameters and
profile.  A Spec is frozen; its dicts must not be changed either.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from emulator.errors import BadInput
from emulator.spec import Spec, load_spec_file, parse_spec
from workloads import (
    async_then_invalidate,
    async_then_sync,
    cluster_errors,
    failed_write_fsync,
    generated,
    invalidate_shared_file,
    invalidate_wired_elsewhere,
    mprotect_msync,
    msync_vs_munmap,
    munmap_closed_file,
    nosync_msync,
    pageout_vs_msync,
    private_shadow,
    random_mix,
    spanning_range,
    submap_msync,
    teardown_during_flush,
    three_processes,
    two_cleaners,
    wired_invalidate,
    write_errors,
    writers_vs_msync,
    zero_length_msync,
)

WORKLOADS: dict[str, ModuleType] = {
    "writers_vs_msync": writers_vs_msync,
    "msync_vs_munmap": msync_vs_munmap,
    "two_cleaners": two_cleaners,
    "invalidate_shared_file": invalidate_shared_file,
    "zero_length_msync": zero_length_msync,
    "random_mix": random_mix,
    "write_errors": write_errors,
    # One per structure of the spec format (issue 9).
    "submap_msync": submap_msync,
    "wired_invalidate": wired_invalidate,
    "private_shadow": private_shadow,
    "spanning_range": spanning_range,
    "three_processes": three_processes,
    "teardown_during_flush": teardown_during_flush,
    "generated": generated,
    "pageout_vs_msync": pageout_vs_msync,
    "mprotect_msync": mprotect_msync,
    "cluster_errors": cluster_errors,
    # freebsd5's 2003 page clean and soft busy (issue 11, item 4).
    "async_then_invalidate": async_then_invalidate,
    "async_then_sync": async_then_sync,
    # A closed file's last mapping unmapped: the vnode inactivated (H19).
    "munmap_closed_file": munmap_closed_file,
    # modern's buffer write clears dirty at its start; a failed one re-dirties the buffer.
    "failed_write_fsync": failed_write_fsync,
    # modern's invalidate unmaps a page wired by another process (D8).
    "invalidate_wired_elsewhere": invalidate_wired_elsewhere,
    # MAP_NOSYNC, madvise(MADV_NOSYNC) and the syncer's skip (issue 11, H7/H18).
    "nosync_msync": nosync_msync,
}

ParamTable = dict[str, tuple[type, Any, str]]


def aimed_at(name: str, profile: str) -> bool:
    """Whether workload ``name`` belongs in a portfolio under ``profile``: a module may
    name the profiles whose behaviour its race needs (``PROFILES``); a hunt under
    another profile leaves it out, so it spends no executions where the race cannot
    happen.  Without ``PROFILES``, every profile."""
    profiles: tuple[str, ...] | None = getattr(_lookup(name), "PROFILES", None)
    return profiles is None or profile in profiles


def aimed(profile: str, names: Iterable[str] | None = None) -> list[str]:
    """The workloads (every one, or ``names``) aimed at ``profile``, in order: the arms
    of ``vmemu mutants`` and of ``vmemu explore`` without a workload."""
    return [name for name in (WORKLOADS if names is None else names)
            if aimed_at(name, profile)]


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _lookup(name: str) -> ModuleType:
    module = WORKLOADS.get(name)
    if module is None:
        raise BadInput(f"unknown workload {name!r} (known: {', '.join(WORKLOADS)})")
    return module


def _convert(workload: str, param: str, kind: type, value: object) -> Any:
    def bad(expected: str) -> BadInput:
        return BadInput(f"bad value for parameter {param!r} of workload {workload!r}: "
                        f"{value!r} (expected {expected})")

    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise bad("true or false")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            text = value.strip()
            hexadecimal = text.lower().lstrip("+-").startswith("0x")
            try:
                number = int(text, 16 if hexadecimal else 10)
            except ValueError:
                raise bad("an integer") from None
        else:
            raise bad("an integer")
        if number < 0:
            raise bad("a non-negative integer")
        return number
    if kind is str and isinstance(value, str):
        return value
    raise bad(kind.__name__)


def resolve_params(name: str, params: Mapping[str, object], seed: int) -> dict[str, Any]:
    """Check ``params`` (strings from the command line, or typed values) against the
    workload's ``PARAMS`` and return every parameter's value, defaults filled in."""
    module = _lookup(name)
    table: ParamTable = module.PARAMS
    limits: dict[str, tuple[int, int]] = getattr(module, "LIMITS", {})
    for key in params:
        if key not in table:
            known = ", ".join(table) or "none"
            raise BadInput(f"unknown parameter {key!r} for workload {name!r} (known: {known})")
    values: dict[str, Any] = {}
    for key, (kind, default, _help) in table.items():
        if key in params:
            value = _convert(name, key, kind, params[key])
        elif default is None and key == "seed":
            value = seed
        else:
            value = default
        if key in limits and not limits[key][0] <= value <= limits[key][1]:
            lo, hi = limits[key]
            raise BadInput(f"parameter {key}={value} of workload {name!r} is out of range "
                           f"(expected {lo}..{hi})")
        values[key] = value
    return values


# The specs of unseeded workloads, by (name, params as given, profile): a few per
# process (one per arm of a campaign), at most _SPECS_KEPT (the oldest goes first).
_SPECS: dict[Hashable, Spec] = {}
_SPECS_KEPT = 64


def _spec_key(module: ModuleType, name: str, params: Mapping[str, object],
              profile: str | None) -> Hashable | None:
    """The cache key of a build, or None when the spec depends on the seed (the
    workload takes one and it is not pinned) or a parameter is unhashable."""
    table: ParamTable = module.PARAMS
    seed_param = table.get("seed")
    if seed_param is not None and seed_param[1] is None and "seed" not in params:
        return None
    key = (name, tuple(sorted(params.items())), profile)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def build_workload(name: str, params: Mapping[str, object], seed: int,
                   profile: str | None = None) -> Spec:
    """Expand the workload ``name`` with ``params`` and ``seed`` into a validated Spec.

    ``params`` maps parameter names to strings (``--param key=value``) or typed
    values; ``profile`` overrides the default.  The Spec carries ``name`` and
    the resolved ``params`` (the seed included when the workload takes one).
    A spec that does not depend on the seed is built once and shared (see the
    module's docstring).
    """
    module = _lookup(name)
    key = _spec_key(module, name, params, profile)
    if key is not None:
        spec = _SPECS.get(key)
        if spec is None:
            spec = _build(module, name, params, seed, profile)
            if len(_SPECS) >= _SPECS_KEPT:
                del _SPECS[next(iter(_SPECS))]
            _SPECS[key] = spec
        return spec
    return _build(module, name, params, seed, profile)


def _build(module: ModuleType, name: str, params: Mapping[str, object], seed: int,
           profile: str | None) -> Spec:
    params = dict(params)
    agents_text = params.pop(AGENTS_PARAM, None)
    values = resolve_params(name, params, seed)
    data = module.build(values, seed)
    if agents_text is not None:
        # Every workload takes it; recorded only when given, so the specs and
        # trace headers of runs without agents stay as they were.
        data["agents"] = parse_agents(str(agents_text))
        values[AGENTS_PARAM] = str(agents_text)
    spec = parse_spec(data, source=f"workload {name}", profile=profile)
    return dataclasses.replace(spec, name=name, params=values)


# The parameter every workload takes: background agents to run, as
# ``pagedaemon,syncer`` or with passes, ``pagedaemon=2,syncer``.
AGENTS_PARAM = "agents"


def parse_agents(text: str) -> dict[str, object]:
    """``pagedaemon=2,syncer`` -> ``{"pagedaemon": 2, "syncer": True}`` (a spec's ``agents``)."""
    out: dict[str, object] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, count = part.partition("=")
        name = name.strip()
        if not sep:
            out[name] = True
            continue
        try:
            out[name] = int(count)
        except ValueError:
            raise BadInput(f"bad value for parameter 'agents': {part!r} (expected NAME or "
                           "NAME=PASSES)") from None
    return out


def is_spec_file(workload: str) -> bool:
    """Whether a WORKLOAD argument names a spec file rather than a workload."""
    return Path(workload).suffix.lower() in (".json", ".toml") or "/" in workload


def load_workload(workload: str, params: Mapping[str, object], seed: int,
                  profile: str | None = None) -> Spec:
    """Resolve a command line's WORKLOAD: a spec file (.json/.toml) or a workload name."""
    if workload not in WORKLOADS and is_spec_file(workload):  # no name is a file's
        if params:
            raise BadInput(f"--param applies to named workloads, not to the spec file {workload}")
        return load_spec_file(workload, profile)
    return build_workload(name=workload, params=params, seed=seed, profile=profile)


def describe() -> list[tuple[str, str, ParamTable]]:
    """Every workload: (name, one-line description, PARAMS)."""
    out = []
    for name, module in WORKLOADS.items():
        doc = " ".join((module.__doc__ or "").split("\n\n")[0].split())
        out.append((name, doc, dict(module.PARAMS)))
    return out
