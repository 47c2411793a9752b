"""Workload specs: the plain-data description of a machine and its CPU programs.

A spec is what DESIGN.md calls the workload format: files, processes with their
mappings, CPUs with their programs.  :func:`parse_spec` validates and
normalises plain data (a dict, as read from JSON or TOML or built by a module of
``workloads/``) into a :class:`Spec`; :func:`load_spec_file` reads a ``.json``
or ``.toml`` file and parses it.  ``Spec.to_json`` gives back the canonical
plain-data form that goes into every trace header, so a trace replays without
the workload's source: ``parse_spec(spec.to_json()) == spec`` (up to the
informational ``name`` and ``params``).

Normalisation rules: addresses and lengths become ints; ``prot`` becomes one of
``"r"``, ``"rw"``, ``"rwx"``; msync flags become a sorted comma-joined string of
``sync``/``async``/``invalidate``; file offsets are in pages.

Every problem raises :class:`~emulator.errors.BadInput` with one lower-case
line naming the place (``spec.json: cpus[1].program[3]: ...``) and the problem.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn, assert_never

from emulator.errors import BadInput
from emulator.kern.daemons import AGENT_NAMES, DEFAULT_PASSES, MAX_PASSES
from emulator.kern.map import PROT_WORDS
from emulator.kern.param import ADDR_LIMIT, PAGE_SIZE, VM_MAX_ADDRESS
from emulator.kern.profile import DEFAULT_PROFILE, PROFILES
from emulator.kern.syscalls import MADVISE_WORDS, MSYNC_FLAG_WORDS, SYSCALLS, ArgKind, Syscall

PROTS = tuple(PROT_WORDS)
OPS = tuple(SYSCALLS)
KINDS = ("file", "anon", "device", "submap")


@dataclass(frozen=True)
class MappingSpec:
    """One mapping of a process: ``kind`` is file, anon, device or submap.

    A submap mapping holds one inner entry covering the same addresses; it is
    backed by ``file`` when given, anonymous memory otherwise.
    """

    addr: int
    pages: int
    kind: str  # "file" | "anon" | "device" | "submap"
    prot: str = "rw"
    file: str | None = None
    offset: int = 0  # in pages, into ``file``
    wired: bool = False
    private: bool = False  # copy-on-write: a shadow object over the file
    nosync: bool = False  # MAP_NOSYNC: the syncer leaves what this mapping dirties

    def to_json(self) -> dict[str, Any]:
        """Return the canonical plain-data form, as a ``mappings`` element."""
        return {"addr": hex(self.addr), "pages": self.pages, **self.options_json()}

    def options_json(self) -> dict[str, Any]:
        """Return everything but ``addr`` and ``pages`` (an ``mmap`` op's options)."""
        out: dict[str, Any] = {}
        if self.kind != "file":
            out[self.kind] = True
        if self.file is not None:
            out["file"] = self.file
            out["offset"] = self.offset
        out["prot"] = self.prot
        if self.wired:
            out["wired"] = True
        if self.private:
            out["private"] = True
        if self.nosync:
            out["nosync"] = True
        return out


@dataclass(frozen=True)
class Op:
    """One step of a CPU program: a system call's ``name`` and its normalised ``args``.

    The arguments are as the call's row of ``SYSCALLS`` (emulator/kern/syscalls.py)
    describes them: addresses and lengths ints, msync flags e.g. ``"async,invalidate"``,
    clean's syncio and invalidate bools, mmap's options a MappingSpec.
    """

    name: str
    args: tuple[Any, ...] = ()

    # The machine emits and records every op of every execution: look it up
    # and render it once.  (cached_property writes the instance dict, past frozen.)
    @cached_property
    def call(self) -> Syscall:
        return SYSCALLS[self.name]

    @cached_property
    def plain_args(self) -> tuple[Any, ...]:
        """The arguments as plain data: hex-string addresses, ints, a mapping's options."""
        return tuple(self.call.to_json(self.args)[1:])

    @cached_property
    def event_args(self) -> tuple[Any, ...]:
        """The ``call`` event's fields after the name (no mapping options)."""
        return tuple(self.call.event_args(self.args))

    def to_json(self) -> list[Any]:
        """Return the canonical plain-data form: ``[name, *args]``."""
        return [self.name, *self.plain_args]

    def mappings(self) -> list[MappingSpec]:
        """The mappings this step asks for (an mmap's options)."""
        return [v for a, v in zip(self.call.args, self.args, strict=True)
                if a.kind is ArgKind.MAPPING]


@dataclass(frozen=True)
class CpuSpec:
    process: str
    program: tuple[Op, ...]


@dataclass(frozen=True)
class Spec:
    """A validated workload: what the machine builder consumes."""

    profile: str
    files: dict[str, int]  # name -> pages
    processes: dict[str, tuple[MappingSpec, ...]]
    cpus: tuple[CpuSpec, ...]
    name: str = "spec"
    params: dict[str, Any] = field(default_factory=dict)
    failing: tuple[str, ...] = ()  # files whose every write fails (EIO)
    # Files some of whose pages fail every write (EIO): name -> page indexes, sorted.
    fail_pages: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # Files whose descriptor was closed after mmap: the mappings hold the vnode's only
    # use references, so dropping the last one inactivates it (kern/vnode.py).
    closed: tuple[str, ...] = ()
    # vm_pageout_page_count: the most pages one write of a dirty page and its
    # neighbours carries (kern/clean.py, kern/daemons.py).  1: each page alone.
    # Always the effective value: the spec's "cluster", else its profile's.
    cluster: int = 1
    # Background agents to run (emulator/kern/daemons.py): name -> passes per
    # execution, in AGENT_NAMES order.  Empty: none (the spec's form has no key).
    agents: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the canonical plain-data form (stable key order)."""
        out = self._json()
        if self.agents:
            out["agents"] = dict(self.agents)
        # Always written, so a trace keeps its meaning if a profile's default changes.
        out["cluster"] = self.cluster
        return out

    def _file_json(self, name: str, pages: int) -> dict[str, Any]:
        out: dict[str, Any] = {"pages": pages}
        if name in self.failing:
            out["fail_writes"] = True
        if name in self.fail_pages:
            out["fail_pages"] = list(self.fail_pages[name])
        if name in self.closed:
            out["closed"] = True
        return out

    def _json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "files": {n: self._file_json(n, p) for n, p in self.files.items()},
            "processes": {
                n: {"mappings": [m.to_json() for m in maps]}
                for n, maps in self.processes.items()
            },
            "cpus": [
                {"process": c.process, "program": [op.to_json() for op in c.program]}
                for c in self.cpus
            ],
        }


# ---------------------------------------------------------------------------
# Parsing and validation


_TOP_KEYS = ("profile", "files", "processes", "cpus", "agents", "cluster")
_FILE_KEYS = ("pages", "fail_writes", "fail_pages", "closed")
CLUSTER_MAX = 32  # vm_pageout_page_count's largest value here
_PROCESS_KEYS = ("mappings",)
_CPU_KEYS = ("process", "program")
_OPTION_KEYS = ("file", "anon", "device", "submap", "offset", "prot", "wired", "private",
                "nosync")
_MAPPING_KEYS = ("addr", "pages", *_OPTION_KEYS)


class _Where:
    """The source name and a dotted path to the value being checked."""

    __slots__ = ("path", "source")

    def __init__(self, source: str, path: str = "") -> None:
        self.source = source
        self.path = path

    def key(self, name: str) -> _Where:
        return _Where(self.source, f"{self.path}.{name}" if self.path else name)

    def index(self, i: int) -> _Where:
        return _Where(self.source, f"{self.path}[{i}]")

    def fail(self, problem: str, *, sep: str = ": ") -> NoReturn:
        place = f"{self.source}: {self.path}" if self.path else self.source
        raise BadInput(f"{place}{sep}{problem}")


def _show(value: object) -> str:
    """Render a user value for a message, JSON-style and short."""
    if isinstance(value, str):
        text = repr(value)
    elif value is None or isinstance(value, bool | int | float | list | dict):
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            text = repr(value)
    else:
        text = f"{type(value).__name__} {value}"
    return text if len(text) <= 40 else text[:37] + "..."


def _kind_of(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _got(value: object) -> str:
    """``a list [1, 2]``, ``a string 'x'``, ``null``: what the user gave."""
    return "null" if value is None else f"{_kind_of(value)} {_show(value)}"


def _word_of(value: object, where: _Where, what: str, noun: str, choices: list[str]) -> str:
    """A string that must be one of ``choices`` (a protection word, a file name)."""
    text = _str(value, where, what)
    if text not in choices:
        where.fail(f"{what}: unknown {noun} {_show(text)} (expected one of "
                   f"{_one_of(choices)})")
    return text


def _one_of(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(names) if names else "none"


def _table(value: object, where: _Where, allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    """Check that ``value`` is an object whose keys are all in ``allowed``."""
    if not isinstance(value, dict):
        where.fail(f"expected {what} (an object), got {_got(value)}")
    for key in value:
        if key not in allowed:
            where.fail(f"unknown key {_show(key)} (expected one of {_one_of(allowed)})")
    return value


def _require(table: Mapping[str, Any], key: str, where: _Where) -> Any:
    if key not in table:
        where.fail(f"missing key '{key}'")
    return table[key]


def _int(value: object, where: _Where, what: str, *, limit: int = ADDR_LIMIT) -> int:
    """An int or a hex string ("0x10000"), non-negative and below ``limit``."""
    if isinstance(value, bool):
        where.fail(f"{what}: expected an integer, got {_show(value)}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        body = text[1:] if text.startswith("-") else text
        if body[:2].lower() != "0x":
            where.fail(f"{what}: expected an integer or a hex string like '0x10000', "
                       f"got {_show(value)}")
        try:
            number = int(text, 16)
        except ValueError:
            where.fail(f"{what}: malformed hex number {_show(value)}")
    else:
        where.fail(f"{what}: expected an integer, got {_got(value)}")
    if number < 0:
        where.fail(f"{what}: negative value {_show(value)}")
    if number >= limit:
        where.fail(f"{what}: {hex(number)} is too large (limit {hex(limit)})")
    return number


def _bool(value: object, where: _Where, what: str) -> bool:
    if not isinstance(value, bool):
        where.fail(f"{what}: expected true or false, got {_show(value)}")
    return value


def _str(value: object, where: _Where, what: str) -> str:
    if not isinstance(value, str):
        where.fail(f"{what}: expected a string, got {_got(value)}")
    return value


def _check_profile(value: object, where: _Where) -> str:
    if not isinstance(value, str) or value not in PROFILES:
        where.fail(f"unknown profile {_show(value)} (expected one of {_one_of(list(PROFILES))})")
    return value


def _files(value: object, where: _Where, failing: list[str],
           fail_pages: dict[str, tuple[int, ...]], closed: list[str]) -> dict[str, int]:
    if not isinstance(value, dict):
        where.fail(f"expected an object of file name -> {{\"pages\": N}}, got {_kind_of(value)}")
    files: dict[str, int] = {}
    for name, raw in value.items():
        w = where.key(name)
        if not name:
            where.fail("empty file name")
        table = _table(raw, w, _FILE_KEYS, 'a file like {"pages": 4}')
        pages = _int(_require(table, "pages", w), w, "pages", limit=VM_MAX_ADDRESS // PAGE_SIZE)
        if pages == 0:
            w.fail("pages must be at least 1")
        if _bool(table.get("fail_writes", False), w, "fail_writes"):
            failing.append(name)
        if "fail_pages" in table:
            fail_pages[name] = _fail_pages(table["fail_pages"], w.key("fail_pages"), pages)
        if _bool(table.get("closed", False), w, "closed"):
            closed.append(name)
        files[name] = pages
    return files


def _fail_pages(value: object, where: _Where, pages: int) -> tuple[int, ...]:
    """A file's failing page indexes: a list of distinct indexes inside the file, sorted."""
    if not isinstance(value, list):
        where.fail(f"expected a list of page indexes, got {_kind_of(value)}")
    out = sorted({_int(v, where, "page index") for v in value})
    for pindex in out:
        if pindex >= pages:
            where.fail(f"page index {pindex} is past the file's {pages} pages")
    return tuple(out)


def _mapping(raw: object, where: _Where, files: Mapping[str, int],
             at: tuple[int, int] | None = None) -> MappingSpec:
    """Parse a mapping; ``at`` gives (addr, pages) for an ``mmap`` op's options."""
    if at is None:
        table = _table(raw, where, _MAPPING_KEYS, "a mapping")
        addr = _int(_require(table, "addr", where), where, "addr")
        pages = _int(_require(table, "pages", where), where, "pages")
        what = ""
    else:
        table = _table(raw, where, _OPTION_KEYS, "mmap options")
        addr, pages = at
        what = "mmap "
    if addr % PAGE_SIZE:
        where.fail(f"{what}addr {hex(addr)} is not page-aligned (page size {hex(PAGE_SIZE)})")
    if pages == 0:
        where.fail(f"{what}pages must be at least 1")
    if addr + pages * PAGE_SIZE > VM_MAX_ADDRESS:
        where.fail(f"{what}{hex(addr)} + {pages} pages ends above the user address limit "
                   f"{hex(VM_MAX_ADDRESS)}")

    file: str | None = None
    if "file" in table:
        file = _str(table["file"], where, "file")
        if file not in files:
            where.fail(f"unknown file {_show(file)} (files: {_one_of(list(files))})")
    flags = [k for k in ("anon", "device", "submap") if _bool(table.get(k, False), where, k)]
    chosen = flags + (["file"] if file is not None else [])
    if "submap" in chosen:
        kind = "submap"
        extra = [k for k in chosen if k not in ("submap", "file")]
        if extra:
            where.fail(f"conflicting kinds submap, {_one_of(extra)} (a submap is anonymous "
                       "unless it names a file)")
    elif len(chosen) == 1:
        kind = chosen[0]
    elif not chosen:
        where.fail("needs one of file: NAME, anon: true, device: true, submap: true")
    else:
        where.fail(f"conflicting kinds {_one_of(chosen)} (choose one of file, anon, device, "
                   "submap)")

    offset = 0
    if "offset" in table:
        if file is None:
            where.fail("offset without file")
        offset = _int(table["offset"], where, "offset")
    if file is not None and offset + pages > files[file]:
        where.fail(f"offset {offset} + {pages} pages exceeds file {_show(file)} "
                   f"({files[file]} pages)")

    prot = table.get("prot", "rw")
    if prot not in PROTS:
        where.fail(f"unknown prot {_show(prot)} (expected one of {_one_of(PROTS)})")
    wired = _bool(table.get("wired", False), where, "wired")
    private = _bool(table.get("private", False), where, "private")
    if private and kind != "file":
        where.fail("private applies only to file mappings")
    nosync = _bool(table.get("nosync", False), where, "nosync")
    return MappingSpec(addr=addr, pages=pages, kind=kind, prot=prot, file=file, offset=offset,
                       wired=wired, private=private, nosync=nosync)


def _process(raw: object, where: _Where, files: Mapping[str, int]) -> tuple[MappingSpec, ...]:
    table = _table(raw, where, _PROCESS_KEYS, 'a process like {"mappings": [...]}')
    raw_maps = table.get("mappings", [])
    mw = where.key("mappings")
    if not isinstance(raw_maps, list):
        mw.fail(f"expected a list of mappings, got {_kind_of(raw_maps)}")
    maps = tuple(_mapping(m, mw.index(i), files) for i, m in enumerate(raw_maps))
    for j, b in enumerate(maps):
        for i, a in enumerate(maps[:j]):
            lo = max(a.addr, b.addr)
            if lo < min(a.addr + a.pages * PAGE_SIZE, b.addr + b.pages * PAGE_SIZE):
                mw.index(j).fail(f"overlaps mappings[{i}] at {hex(lo)}", sep=" ")
    return maps


def _msync_flags(value: object, where: _Where, what: str) -> str:
    text = _str(value, where, what)
    expected = "expected sync, async, invalidate or a comma-joined pair"
    words = [w.strip() for w in text.split(",")]
    if not text.strip():
        where.fail(f"{what}: empty ({expected})")
    for w in words:
        if not w:
            where.fail(f"{what}: empty word in {_show(text)}")
        if w not in MSYNC_FLAG_WORDS:
            where.fail(f"{what}: unknown flag {_show(w)} ({expected})")
    unique = sorted(set(words))
    if "sync" in unique and "async" in unique:
        where.fail(f"{what}: {_show(text)} combines sync and async")
    return ",".join(unique)


def _arg(kind: ArgKind, value: object, where: _Where, what: str, files: Mapping[str, int],
         before: list[Any]) -> Any:
    """Parse one argument of a step; ``before`` holds the step's arguments parsed so far."""
    match kind:
        case ArgKind.ADDRESS | ArgKind.LENGTH:
            return _int(value, where, what)
        case ArgKind.FLAG:
            return _bool(value, where, what)
        case ArgKind.MSYNC_FLAGS:
            return _msync_flags(value, where, what)
        case ArgKind.MAPPING:
            return _mapping(value, where, files, at=(before[0], before[1]))
        case ArgKind.PROT:
            return _word_of(value, where, what, "protection", list(PROT_WORDS))
        case ArgKind.FILE:
            return _word_of(value, where, what, "file", sorted(files))
        case ArgKind.ADVICE:
            return _word_of(value, where, what, "advice", list(MADVISE_WORDS))
        case _:
            assert_never(kind)


def _op(raw: object, where: _Where, files: Mapping[str, int]) -> Op:
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
        where.fail(f"expected an op like [\"store\", \"0x10000\"], got {_show(raw)}")
    name, args = raw[0], raw[1:]
    call = SYSCALLS.get(name)
    if call is None:
        where.fail(f"unknown op {_show(name)} (expected one of {_one_of(OPS)})")
    names = [a.name for a in call.args]
    if len(args) != len(names):
        shape = f" ({', '.join(names)})" if names else ""
        where.fail(f"'{name}' takes {len(names)} argument{'s' if len(names) != 1 else ''}"
                   f"{shape}, got {len(args)}")
    parsed: list[Any] = []
    for arg, value in zip(call.args, args, strict=True):
        parsed.append(_arg(arg.kind, value, where, f"{name} {arg.name}", files, parsed))
    problem = call.check(tuple(parsed)) if call.check is not None else None
    if problem is not None:
        where.fail(problem)
    return Op(name, tuple(parsed))


def _cpus(value: object, where: _Where, files: Mapping[str, int],
          processes: Mapping[str, object]) -> tuple[CpuSpec, ...]:
    if not isinstance(value, list):
        where.fail(f"expected a list of cpus, got {_kind_of(value)}")
    if not value:
        where.fail("at least one cpu is needed")
    cpus = []
    for i, raw in enumerate(value):
        w = where.index(i)
        table = _table(raw, w, _CPU_KEYS, 'a cpu like {"process": "p0", "program": [...]}')
        process = _str(_require(table, "process", w), w, "process")
        if process not in processes:
            w.fail(f"unknown process {_show(process)} (processes: {_one_of(list(processes))})")
        program = table.get("program", [])
        pw = w.key("program")
        if not isinstance(program, list):
            pw.fail(f"expected a list of ops, got {_kind_of(program)}")
        ops = tuple(_op(op, pw.index(j), files) for j, op in enumerate(program))
        cpus.append(CpuSpec(process=process, program=ops))
    return tuple(cpus)


def parse_spec(data: object, *, source: str = "spec", profile: str | None = None) -> Spec:
    """Validate and normalise a plain-data workload spec (DESIGN.md, "The spec format").

    ``source`` names the input in messages; ``profile``, when given, overrides
    the spec's own.  Raises :class:`BadInput` with one line naming the place
    and the problem.
    """
    top = _Where(source)
    table = _table(data, top, _TOP_KEYS, "a workload spec")
    if profile is not None:
        profile = _check_profile(profile, _Where("--profile"))
    else:
        profile = _check_profile(table.get("profile", DEFAULT_PROFILE.name), top.key("profile"))
    failing: list[str] = []
    fail_pages: dict[str, tuple[int, ...]] = {}
    closed: list[str] = []
    files = _files(table.get("files", {}), top.key("files"), failing, fail_pages, closed)
    raw_procs = _require(table, "processes", top)
    pw = top.key("processes")
    if not isinstance(raw_procs, dict):
        pw.fail(f"expected an object of process name -> {{\"mappings\": [...]}}, "
                f"got {_kind_of(raw_procs)}")
    processes: dict[str, tuple[MappingSpec, ...]] = {}
    for name, raw in raw_procs.items():
        if not name:
            pw.fail("empty process name")
        processes[name] = _process(raw, pw.key(name), files)
    cpus = _cpus(_require(table, "cpus", top), top.key("cpus"), files, processes)
    agents = _agents(table.get("agents", {}), top.key("agents"))
    cluster = PROFILES[profile].cluster
    if "cluster" in table:
        cluster = _int(table["cluster"], top.key("cluster"), "cluster", limit=CLUSTER_MAX + 1)
        if cluster == 0:
            top.key("cluster").fail("cluster must be at least 1")
    return Spec(profile=profile, files=files, processes=processes, cpus=cpus,
                failing=tuple(failing), fail_pages=fail_pages, closed=tuple(closed),
                cluster=cluster, agents=agents)


# ---------------------------------------------------------------------------
# Background agents


def _agents(value: object, where: _Where) -> dict[str, int]:
    """``{"pagedaemon": true, "syncer": 2}``: each agent's passes (true: the default).

    Normalised to name -> passes in AGENT_NAMES order, agents with 0 passes
    (or false) left out, so a spec without agents has none.
    """
    table = _table(value, where, AGENT_NAMES, 'background agents like {"pagedaemon": true}')
    agents: dict[str, int] = {}
    for name in AGENT_NAMES:
        raw = table.get(name, False)
        if isinstance(raw, bool):
            passes = DEFAULT_PASSES if raw else 0
        else:
            passes = _int(raw, where.key(name), "passes", limit=MAX_PASSES + 1)
        if passes:
            agents[name] = passes
    return agents


# ---------------------------------------------------------------------------
# Files


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


_TOML_WHERE = re.compile(r"^(?P<msg>.*?)\s*\((?:at line (?P<line>\d+), column \d+|at end of "
                         r"document)\)$", re.DOTALL)


def _read_text(path: str) -> str:
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise BadInput(f"no such file: {path}") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, not a spec file") from None
    except PermissionError:
        raise BadInput(f"{path}: permission denied") from None
    except OSError as e:
        raise BadInput(f"{path}: cannot read: {_lower_first(e.strerror or str(e))}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(f"{path}: not utf-8 text (byte {e.start})") from None


def _decode_json(text: str, path: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise BadInput(f"{path}: line {e.lineno}: malformed json: {_lower_first(e.msg)}") from None
    except _DuplicateKey as e:
        raise BadInput(f"{path}: malformed json: duplicate key {_show(e.args[0])}") from None
    except RecursionError:
        raise BadInput(f"{path}: malformed json: nested too deeply") from None


def _decode_toml(text: str, path: str) -> object:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = _TOML_WHERE.match(msg)
        if m is None:
            raise BadInput(f"{path}: malformed toml: {_lower_first(msg)}") from None
        place = f"line {m['line']}: " if m["line"] else "at end of file: "
        raise BadInput(f"{path}: {place}malformed toml: {_lower_first(m['msg'])}") from None
    except RecursionError:
        raise BadInput(f"{path}: malformed toml: nested too deeply") from None


def load_spec_file(path: str, profile: str | None = None) -> Spec:
    """Read, validate and normalise a ``.json`` or ``.toml`` spec file.

    ``profile``, when given, overrides the file's.  The spec is named after
    ``path``.  Raises :class:`BadInput` for a missing, unreadable, malformed or
    invalid file.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in (".json", ".toml"):
        raise BadInput(f"{path}: unsupported spec file type {_show(suffix or '(none)')} "
                       "(expected .json or .toml)")
    text = _read_text(path)
    data = _decode_json(text, path) if suffix == ".json" else _decode_toml(text, path)
    return dataclasses.replace(parse_spec(data, source=path, profile=profile), name=path)
