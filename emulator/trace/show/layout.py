"""The terminal and the table's geometry: width, glyphs, colour, fitting columns.

What the terminal takes (:func:`default_width`, :func:`unicode_ok`,
:func:`use_color`: a TTY without ``NO_COLOR``), and how rows fit in it: each
cell offers phrasings longest first, and :class:`Table` gives every column the
width of its longest phrasing if the table fits, else cuts the widest columns
to a common cap (:func:`fit`).  A cell shows the first phrasing that fits, else
the shortest cut with an ellipsis; cells never wrap, only the header, banner
and legend lines do (:func:`wrap`), and :func:`fit_line` makes sure no line is
wider than the width.
"""

from __future__ import annotations

import os
import re
import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from emulator.trace.show.rows import Row
from emulator.trace.show.text import Text, clean

MIN_WIDTH = 40  # narrowest table --width accepts
DEFAULT_MIN_WIDTH = 80  # the terminal's width is taken, but never below this

# ANSI styles, used only when colour is on.
STYLES = {
    "bold": "\x1b[1m",
    "dim": "\x1b[2m",
    "red": "\x1b[31m",
    "bad": "\x1b[1;31m",
    "alarm": "\x1b[1;37;41m",
    "wait": "\x1b[33m",
    "io": "\x1b[36m",
    "store": "\x1b[1m",
    "lock": "\x1b[35m",
}
RESET = "\x1b[0m"

Cell = tuple[Text, str]  # a cell's phrasings and its style


def use_color(stream: TextIO) -> bool:
    """Colour for ``stream``: only a TTY, and never with ``NO_COLOR`` set or ``TERM=dumb``."""
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def default_width() -> int:
    """The terminal's width, at least 80 columns."""
    return max(DEFAULT_MIN_WIDTH, shutil.get_terminal_size((DEFAULT_MIN_WIDTH, 24)).columns)


def unicode_ok(stream: TextIO) -> bool:
    """Whether ``stream`` can take the box-drawing rules and the ellipsis."""
    try:
        "…│─·".encode(getattr(stream, "encoding", None) or "ascii")
    except (LookupError, UnicodeEncodeError):
        return False
    return True


@dataclass(frozen=True)
class Glyphs:
    """The characters the table is drawn with: box drawing, or ASCII for a plain terminal."""

    sep: str  # between columns
    rule: str  # the rule under the column titles and under the last row
    ellipsis: str  # ends a cut cell
    joint: str  # between agents in one holds cell
    why: str = "▸"  # before the step of a row in the violation's causal slice (--why)


UNICODE = Glyphs(" │ ", "─", "…", " · ")
ASCII = Glyphs(" | ", "-", "...", " ; ", ">")


class Painter:
    """Wraps text in an ANSI style when colour is on; blank text stays plain."""

    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, style: str) -> str:
        if not self.color or not style or not text.strip():
            return text
        return f"{STYLES[style]}{text}{RESET}"


def clip(alts: Text, width: int, g: Glyphs) -> str:
    """The first phrasing that fits ``width``, else the shortest cut with an ellipsis."""
    text = clean(alts[-1])
    for alt in alts:
        if len(alt) <= width:
            text = clean(alt)
            break
    if width <= 0:
        return ""
    if len(text) <= width:
        return text.ljust(width)
    if width <= len(g.ellipsis):
        return text[:width]
    return text[: width - len(g.ellipsis)] + g.ellipsis


def cap(natural: list[int], floor: list[int], avail: int) -> list[int]:
    """Widths between ``floor`` and ``natural``: the widest cut to one common cap."""
    lo, hi = 0, max(natural)
    while lo < hi:  # the largest cap whose columns fit
        mid = (lo + hi + 1) // 2
        if sum(max(f, min(n, mid)) for n, f in zip(natural, floor, strict=True)) <= avail:
            lo = mid
        else:
            hi = mid - 1
    widths = [max(f, min(n, lo)) for n, f in zip(natural, floor, strict=True)]
    spare = avail - sum(widths)
    for i, n in enumerate(natural):  # hand the remainder to the cut columns, left first
        if spare <= 0:
            break
        if n > widths[i]:
            widths[i] += 1
            spare -= 1
    return widths


def fit(long: list[int], mid: list[int], short: list[int], avail: int) -> list[int]:
    """Column widths for ``avail`` characters.

    Every column at its longest phrasing if that fits; else at least at
    ``mid`` (its shortest phrasing, or more for a column that matters), the
    rest shared out; else at least at its shortest phrasing; else the
    shortest phrasings cut to a common cap.
    """
    if sum(long) <= avail:
        return list(long)
    if sum(mid) <= avail:
        return cap(long, mid, avail)
    if sum(short) <= avail:
        return cap(mid, short, avail)
    return cap(short, [1] * len(short), avail)


@dataclass
class Table:
    """The fitted table: a step column, one column per agent shown, and the holds column."""

    step_w: int
    widths: list[int]  # the agents' columns, then the holds column
    width: int
    glyphs: Glyphs
    paint: Painter

    @classmethod
    def fit(cls, rows: Sequence[Row], columns: list[int], titles: list[str], holds_title: str,
            width: int, glyphs: Glyphs, paint: Painter, lead: int = 0) -> Table:
        """Widths for ``rows`` under ``titles`` (one per entry of ``columns``) in ``width``.

        ``lead``: characters the step column keeps before the step (a marker).
        """
        last_step = max((r.step for r in rows), default=0)
        step_w = max(4, len(str(last_step)) + 1) + lead
        long = [len(t) for t in titles] + [len(holds_title)]
        short = [min(len(t), 6) for t in titles] + [len("holds")]
        for r in rows:
            if r.violation is None:
                k = columns.index(r.column)
                long[k] = max(long[k], max(len(t) for t in r.text))
                short[k] = max(short[k], min(len(t) for t in r.text))
                long[-1] = max(long[-1], len(r.holds[0]))
                short[-1] = max(short[-1], len(r.holds[-1]))
        # What the agents hold matters more than a long phrasing: keep the full lists if can be.
        mid = [*short[:-1], max(short[-1], min(long[-1], 50))]
        avail = width - step_w - len(glyphs.sep) * len(long)
        return cls(step_w, fit(long, mid, short, max(avail, len(long))), width, glyphs, paint)

    def line(self, step_text: str, cells: list[Cell], step_style: str = "") -> str:
        """One line: the step, then each cell cut to its column."""
        paint = self.paint
        parts = [paint(clean(step_text)[-self.step_w:].rjust(self.step_w), step_style)]
        for k, ((text, style), w) in enumerate(zip(cells, self.widths, strict=True)):
            cell = clip(text, w, self.glyphs)
            parts.append(paint(cell.rstrip() if k == len(cells) - 1 else cell, style))
        return self.glyphs.sep.join(parts).rstrip()

    def rule(self) -> str:
        """The horizontal rule under the titles and under the last row."""
        span = self.step_w + sum(self.widths) + len(self.glyphs.sep) * len(self.widths)
        return self.paint(self.glyphs.rule * min(self.width, span), "dim")


def fit_line(text: str, width: int) -> str:
    """The safety net: never wider than ``width`` visible columns (ANSI codes free)."""
    visible = re.sub(r"\x1b\[[0-9;]*m", "", text)
    if len(visible) <= width:
        return text
    return visible[:width]


def wrap(text: str, width: int, indent: str) -> list[str]:
    """``text`` made printable and wrapped at ``width``, continuation lines indented."""
    return textwrap.wrap(clean(text), width, subsequent_indent=indent,
                         break_on_hyphens=False) or [""]
