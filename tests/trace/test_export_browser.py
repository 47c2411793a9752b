"""The HTML timeline in a real browser: headless Chromium (Debian's ``chromium`` package).

Chromium loads the exported page from disk with the network off, runs its
script, and gives back the DOM (the script's ``data-*`` counts on ``<body>``),
its console (no error, and the script's own line), and a screenshot whose
pixels must hold the lanes' shades and the violation's red.  Two browser
launches, a few seconds: marked ``browser``; skipped, saying why, only where
Chromium is not installed (.ci/run installs it where apt-get can).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import pytest

from emulator.cli import main

ROOT = Path(__file__).resolve().parents[2]
LOST = ROOT / "traces" / "lost_store-invalidate_frees_dirty.trace.jsonl"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOW = (1400, 700)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs "
                       "Debian's package with apt-get where it can)"),
]


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", "--disable-extensions", "--disable-background-networking",
         "--proxy-server=127.0.0.1:9",  # nothing of the page may come from a network
         f"--user-data-dir={tmp / 'profile'}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
         *args],
        capture_output=True, text=True, timeout=120, cwd=tmp,
        env={**os.environ, "HOME": str(tmp)})


@dataclass(frozen=True)
class Loaded:
    """What Chromium made of the page."""

    source: str  # the page as exported
    dom: str  # the DOM after the script ran, zoomed in
    console: str  # Chromium's log: the page's console lines among it
    png: bytes  # the screenshot


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    """The lost-store trace exported, then loaded: its DOM, console and screenshot."""
    tmp = tmp_path_factory.mktemp("browser")
    html = tmp / "lost.html"
    assert main(["export", str(LOST), "--format", "html", "-o", str(html)]) == 0
    shot = tmp / "lost.png"
    shown = _chromium(tmp, "--enable-logging=stderr", "--v=0", f"--screenshot={shot}",
                      html.as_uri())
    # The DOM opened zoomed 4 times on step 40 (the page's #zoom link): the script moved
    # the marks and refit their labels.
    dom = _chromium(tmp, "--dump-dom", html.as_uri() + "#zoom=4&step=40")
    assert dom.returncode == 0, dom.stderr[-2000:]
    # Kept for a person to look at: pytest's basetemp/browser0/lost.png.
    return Loaded(html.read_text(), dom.stdout, shown.stderr, shot.read_bytes())


def _png_rows(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """Decode an 8-bit RGB(A), non-interlaced PNG (what Chromium writes): its rows' bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = depth = color = 0
    while pos < len(data):
        (size,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + size]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + size
    assert depth == 8 and color in (2, 6)
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    low7, high = int.from_bytes(b"\x7f" * stride, "big"), int.from_bytes(b"\x80" * stride, "big")
    rows: list[bytes] = []
    prev = bytes(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 2:  # Up, most rows: a byte-wise sum without carries, on whole-row integers
            a, b = int.from_bytes(line, "big"), int.from_bytes(prev, "big")
            line = bytearray((((a & low7) + (b & low7)) ^ ((a ^ b) & high)).to_bytes(stride,
                                                                                      "big"))
        elif kind in (1, 3, 4):
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
                if kind == 1:
                    add = left
                elif kind == 3:
                    add = (left + up) // 2
                else:
                    p = left + up - corner
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                    add = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + add) & 255
        rows.append(bytes(line))
        prev = bytes(line)
    return width, height, bpp, rows


def _count(rows: list[bytes], bpp: int, rgb: tuple[int, int, int], slack: int = 0) -> int:
    """Pixels within ``slack`` of ``rgb`` in every channel (channel masks ANDed as integers)."""
    tables = [bytes(int(abs(v - want) <= slack) for v in range(256)) for want in rgb]
    n = 0
    for row in rows:
        hit = -1
        for k in range(3):
            hit &= int.from_bytes(row[k::bpp].translate(tables[k]), "big")
        n += bin(hit).count("1")
    return n


def test_the_script_ran_and_drew_every_lane_the_violation_and_its_arrow(
        page: Loaded) -> None:
    body = re.search(r"<body([^>]*)>", page.dom)
    assert body is not None
    attrs = dict(re.findall(r'data-(\w+)="([^"]*)"', body.group(1)))
    assert attrs["rendered"] == "ok"
    assert (attrs["lanes"], attrs["violations"], attrs["causes"]) == ("3", "1", "1")


def _labels(page: str) -> list[str]:
    return [unescape(t) for t in re.findall(r'<text class="lbl"[^>]*>([^<]*)</text>', page)]


def test_zooming_in_moves_the_marks_and_gives_the_labels_room(page: Loaded) -> None:
    body = re.search(r'<body[^>]*data-view="([0-9.]+) (\d+)"', page.dom)
    assert body is not None and float(body.group(1)) == 4.0 and int(body.group(2)) > 0
    drawn, zoomed = _labels(page.source), _labels(page.dom)
    assert len(drawn) == len(zoomed)
    cut = sum(label.endswith("\u2026") for label in drawn)
    assert sum(label.endswith("\u2026") for label in zoomed) < cut / 2
    assert "store #2 -> f:1 @0x101000" in zoomed


def test_the_console_has_the_scripts_line_and_no_error(page: Loaded) -> None:
    console = [line for line in page.console.splitlines() if ":CONSOLE" in line]
    assert any("vmemu export: drew 3 lanes, 1 violations, 1 causal arrows" in line
               for line in console), console
    assert not [line for line in console if "ERROR:CONSOLE" in line or "Uncaught" in line]


def test_the_screenshot_shows_the_lanes_and_the_violation_in_red(
        page: Loaded) -> None:
    width, height, bpp, rows = _png_rows(page.png)
    assert (width, height) == WINDOW
    assert _count(rows, bpp, (0xFA, 0xFA, 0xFA)) > 20_000  # the lanes' two shades
    assert _count(rows, bpp, (0xF0, 0xF0, 0xF0)) > 20_000
    assert _count(rows, bpp, (0xDC, 0xE8, 0xF8)) > 5_000  # system calls
    assert _count(rows, bpp, (0xB0, 0x00, 0x20), 40) > 300  # the violation: line, mark, arrow
