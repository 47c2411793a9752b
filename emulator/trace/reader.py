"""Read and validate a trace file.  Reading never executes anything from it.

Every problem is one ``BadInput`` line naming the file, the line number and
what is wrong: an empty file, a line that is not JSON, a truncated line, a
header from another tool or a newer format version, an event without its
fields, a missing footer (a cut trace: replay it with ``--partial``).

``Trace.events`` are the event lines as parsed JSON (what replay compares
text for text); ``Trace.entries`` are the same lines read back as typed
events (emulator.kern.events), for the tools that read their fields.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from emulator.config import RunConfig
from emulator.errors import BadInput
from emulator.kern.events import Event, Sched, Violated, parse_event
from emulator.kern.profile import PROFILES
from emulator.spec import Spec, parse_spec
from emulator.trace.format import CLUSTER_IN_SPEC, FORMAT, VERSION


@dataclass(frozen=True, slots=True)
class Entry:
    """One event line of a trace, read back."""

    step: int
    cpu: int  # the agent; -1: the harness
    kind: str
    args: list[Any]  # as the line holds them
    event: Event | None  # typed; None if the kind is unknown or the args do not fit it

    @classmethod
    def of(cls, line: dict[str, Any]) -> Entry:
        try:
            event: Event | None = parse_event(line["event"], line["args"])
        except (TypeError, ValueError):
            event = None
        return cls(line["step"], line["cpu"], line["event"], line["args"], event)


@dataclass
class Trace:
    """A parsed trace."""

    path: str
    header: dict[str, Any]
    spec: Spec
    events: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the file line of each event
    footer: dict[str, Any] | None = None
    digest_ok: bool = True

    @property
    def config(self) -> RunConfig:
        """The run configuration the header records."""
        return RunConfig.from_header(self.header)

    @cached_property
    def entries(self) -> list[Entry]:
        """The event lines as typed events, in order (one per ``events`` item)."""
        return [Entry.of(line) for line in self.events]

    @property
    def decisions(self) -> list[int]:
        return [int(e.event.chosen) for e in self.entries if isinstance(e.event, Sched)]

    @property
    def violations(self) -> list[dict[str, Any]]:
        if self.footer is not None:
            return list(self.footer.get("violations", []))
        return [
            {"rule": e.event.rule, "message": e.event.message, "step": e.step}
            for e in self.entries
            if isinstance(e.event, Violated)
        ]


def _fail(path: str, line: int | None, problem: str) -> BadInput:
    where = f"{path}: line {line}: " if line is not None else f"{path}: "
    return BadInput(where + problem)


def recorded_spec(header: dict[str, Any]) -> dict[str, Any]:
    """The spec a (validated) header recorded, as it meant when it was written.

    Format version 1 predates the profiles' cluster sizes: a spec then without a
    "cluster" key wrote each page alone (cluster 1), and it still does.  From
    version 2 on every header's spec names its cluster.
    """
    spec: dict[str, Any] = header["spec"]
    if header["version"] < CLUSTER_IN_SPEC and "cluster" not in spec:
        return {**spec, "cluster": 1}
    return spec


def _check_header(path: str, h: Any) -> dict[str, Any]:
    if not isinstance(h, dict) or h.get("event") != "header" or h.get("format") != FORMAT:
        raise _fail(path, 1, f"not a vmemu trace (the first line is no {FORMAT} header)")
    version = h.get("version")
    if not isinstance(version, int):
        raise _fail(path, 1, "header has no format version")
    if version > VERSION:
        raise _fail(path, 1, f"trace format version {version} is newer than this vmemu reads "
                    f"({VERSION}); upgrade vmemu to replay it")
    for key, kind in (("profile", str), ("variant", str), ("spec", dict), ("seed", int),
                      ("strategy", dict), ("max_steps", int), ("agents", list)):
        if not isinstance(h.get(key), kind):
            raise _fail(path, 1, f"header field '{key}' is missing or not a {kind.__name__}")
    if h["profile"] not in PROFILES:
        raise _fail(path, 1, f"header names unknown profile '{h['profile']}'")
    if not isinstance(h["strategy"].get("name"), str):
        raise _fail(path, 1, "header field 'strategy' has no name")
    if not isinstance(h.get("params", {}), dict):
        raise _fail(path, 1, "header field 'params' is not a dict")
    try:
        RunConfig.from_header(h)
    except (TypeError, ValueError) as exc:
        raise _fail(path, 1, f"header does not describe a run: {exc}") from None
    return h


def _check_event(path: str, n: int, ev: Any) -> dict[str, Any]:
    if not isinstance(ev, dict):
        raise _fail(path, n, "not a JSON object")
    kind = ev.get("event")
    if not isinstance(kind, str):
        raise _fail(path, n, "no 'event' name")
    if kind in ("header", "footer"):
        return ev
    if set(ev) != {"event", "step", "cpu", "args"}:
        raise _fail(path, n, f"event '{kind}' must have exactly event, step, cpu and args")
    if not isinstance(ev["step"], int) or not isinstance(ev["cpu"], int):
        raise _fail(path, n, f"event '{kind}': step and cpu must be integers")
    if not isinstance(ev["args"], list):
        raise _fail(path, n, f"event '{kind}': args must be a list")
    if kind == "sched" and (len(ev["args"]) != 2 or not isinstance(ev["args"][0], int)):
        raise _fail(path, n, "sched event: args must be [chosen, [runnable...]]")
    return ev


def load_trace(path: str, partial: bool = False) -> Trace:
    """Parse and validate ``path``; ``partial`` accepts a trace cut short."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise BadInput(f"no such trace: {path}") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, not a trace") from None
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None
    if not raw.strip():
        raise _fail(path, None, "empty file: not a vmemu trace")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(path, None, "not UTF-8 text: not a vmemu trace") from None
    lines = text.split("\n")
    complete_end = text.endswith("\n")
    if complete_end:
        lines.pop()
    trace: Trace | None = None
    digest = hashlib.sha256()
    for i, line in enumerate(lines):
        n = i + 1
        last = i == len(lines) - 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if n == 1:
                raise _fail(path, 1, "not JSON: not a vmemu trace") from None
            if last and not complete_end:
                if partial:
                    break  # a cut last line: replay up to the line before
                raise _fail(path, n, "truncated line at the end of the trace "
                            "(a cut trace: replay it with --partial)") from None
            raise _fail(path, n, f"malformed JSON: {exc.msg} at column {exc.colno}") from None
        if n == 1:
            header = _check_header(path, obj)
            spec = parse_spec(recorded_spec(header), source=f"{path}: line 1: spec",
                              profile=header["profile"])
            trace = Trace(path, header, spec)
            continue
        assert trace is not None
        ev = _check_event(path, n, obj)
        if trace.footer is not None:
            raise _fail(path, n, "a line after the footer")
        if ev["event"] == "header":
            raise _fail(path, n, "a second header")
        if ev["event"] == "footer":
            trace.footer = ev
            continue
        digest.update(line.encode())
        digest.update(b"\n")
        trace.events.append(ev)
        trace.lines.append(n)
    assert trace is not None
    if trace.footer is None and not partial:
        raise _fail(path, None, f"no footer after line {len(lines)}: the trace was cut short "
                    "(replay it with --partial)")
    if trace.footer is not None:
        trace.digest_ok = trace.footer.get("digest") == digest.hexdigest()
    return trace
