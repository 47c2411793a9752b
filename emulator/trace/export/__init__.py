"""``vmemu export``: a recorded trace as a file another tool draws.

Formats (:data:`FORMATS`):

* ``perfetto``: Chrome/Perfetto trace-event JSON (:mod:`.perfetto`), for
  ui.perfetto.dev or chrome://tracing;
* ``html``: one self-contained page with an SVG timeline (:mod:`.html`).

Both draw the same :class:`~.timeline.Timeline`, built from the trace with the
``show`` package's replayed state and phrases.  :func:`export` writes the
whole file or nothing: to a temporary file in the output's directory, renamed
over the output at the end.

Reading order: ``timeline``, then ``perfetto`` and ``html``, then this module.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable

from emulator.errors import BadInput
from emulator.trace.export import html, perfetto
from emulator.trace.export.timeline import Timeline, build
from emulator.trace.reader import Trace

FORMATS: dict[str, Callable[[Timeline], str]] = {
    "perfetto": perfetto.render,
    "html": html.render,
}


def render(trace: Trace, fmt: str, highlight: Iterable[int] = ()) -> str:
    """The text of ``trace`` in format ``fmt``; ``highlight``: trace event indices to mark."""
    if fmt not in FORMATS:
        raise BadInput(f"--format {fmt}: unknown format; choose one of {', '.join(FORMATS)}")
    return FORMATS[fmt](build(trace, highlight))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file, then a rename)."""
    if os.path.isdir(path):
        raise BadInput(f"-o {path}: is a directory")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.",
                                   suffix=".tmp")
    except OSError as exc:
        raise BadInput(f"-o {path}: cannot write there: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 is for secrets; this is a report
        os.replace(tmp, path)
    except OSError as exc:
        os.unlink(tmp)
        raise BadInput(f"-o {path}: cannot write there: {exc.strerror}") from None
    except BaseException:
        os.unlink(tmp)
        raise


def export(trace: Trace, fmt: str, out: str, highlight: Iterable[int] = ()) -> None:
    """Write ``trace`` to ``out`` in format ``fmt``."""
    write_atomic(out, render(trace, fmt, highlight))


__all__ = ["FORMATS", "Timeline", "build", "export", "render", "write_atomic"]
