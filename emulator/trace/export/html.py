"""A timeline as one self-contained HTML page: an SVG drawn here, a little plain JS, no network.

The page holds everything: the styles, the SVG of the timeline (drawn by this
module, so it shows even with scripts off), the timeline's data as JSON in a
``<script type="application/json" id="vmemu-data">``, and a short script that
adds zoom and a details line for whatever the pointer is over.  The zoom is
horizontal: the viewBox is kept one unit a CSS pixel (so text keeps its size)
and the script moves and widens the marks (``data-x``/``data-w``: where this
module drew them) and refits their labels; wheel zooms around the pointer,
buttons zoom and pan, a drag pans, ``#zoom=F&step=N`` in the address opens
zoomed on a step.  The first view is the whole trace when it fits at 0.6 of
its drawn size or more, else the drawn size on the (first) violation.  Every mark has
an SVG ``<title>`` too, the browser's own tooltip.

Lanes run left to right, one per CPU and the disk, each with three bands: the
system calls, the kernel steps inside them (coloured as ``show`` colours its
cells), and under them a thin bar per lock held, page busied or write in
flight.  A violation is a red line across the lanes with a marker on its
CPU's lane, and red arrows from the events its message names (its causes).
Events in the timeline's ``highlight`` set (the causal slice of ``vmemu
why``) are drawn with the ``slice`` class: a thick orange outline.

When its script has run, the page's ``<body>`` says so: ``data-rendered="ok"``
with ``data-lanes``, ``data-violations`` and ``data-causes`` counting what it
drew (the browser test reads them).  The bytes depend on the trace only.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from emulator.trace.export.timeline import Hold, Timeline

LABEL_W = 120.0  # the lane titles' column
TOP = 56.0  # above the lanes: the step axis and the violation labels
STEP_W = 30.0  # one step's width
CALL_H, EV_H, HOLD_H, HOLD_GAP = 16.0, 16.0, 5.0, 2.0
CHAR_W = 6.7  # the width of one character of the 11px monospace label font
VIEW_W = 2000.0  # the widest first view: a longer trace opens at its violation


def _fmt(x: float) -> str:
    """A coordinate as short, stable text."""
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _fit(text: str, width: float) -> str:
    """``text`` cut to fit ``width``, with an ellipsis; empty if not even a letter fits."""
    n = int((width - 6) / CHAR_W)
    if n >= len(text):
        return text
    return text[: n - 1] + "…" if n >= 2 else ""


def _rows(holds: list[Hold]) -> dict[int, int]:
    """Each hold's band row in its lane: the first row free at its start (interval colouring)."""
    out: dict[int, int] = {}
    ends: dict[int, list[int]] = {}
    for n, h in enumerate(holds):
        rows = ends.setdefault(h.lane, [])
        row = next((r for r, end in enumerate(rows) if end <= h.ts), len(rows))
        if row == len(rows):
            rows.append(h.end)
        else:
            rows[row] = h.end
        out[n] = row
    return out


class _Svg:
    """The SVG's geometry: lanes' tops and heights, ticks' x."""

    def __init__(self, tl: Timeline, rows: dict[int, int]) -> None:
        self.tl = tl
        self.px = STEP_W / tl.step_us
        depth = [0] * len(tl.lanes)
        for n, h in enumerate(tl.holds):
            depth[h.lane] = max(depth[h.lane], rows[n] + 1)
        self.top: list[float] = []
        self.height: list[float] = []
        y = TOP
        for d in depth:
            self.top.append(y)
            lane_h = 6 + CALL_H + 4 + EV_H + 6 + max(d, 1) * (HOLD_H + HOLD_GAP) + 8
            self.height.append(lane_h)
            y += lane_h
        self.bottom = y
        self.width = LABEL_W + (tl.end + tl.step_us) * self.px + 20

    def x(self, ts: float) -> float:
        return LABEL_W + ts * self.px

    def call_y(self, lane: int) -> float:
        return self.top[lane] + 6

    def ev_y(self, lane: int) -> float:
        return self.top[lane] + 6 + CALL_H + 4

    def hold_y(self, lane: int, row: int) -> float:
        return self.ev_y(lane) + EV_H + 6 + row * (HOLD_H + HOLD_GAP)


def _label(x: float, y: float, text: str, room: float) -> str:
    """A label that the script refits to ``room`` (times the zoom) as the view changes."""
    shown = _fit(text, room)
    return (f'<text class="lbl" x="{_fmt(x + 3)}" y="{_fmt(y)}" data-x="{_fmt(x + 3)}" '
            f'data-room="{_fmt(room)}" data-full="{escape(text)}">{escape(shown)}</text>')


def _rect(cls: str, x: float, y: float, w: float, h: float, title: str,
          data: str = "", label: str = "", room: float = 0.0,
          labels: list[str] | None = None) -> str:
    """A mark with its tooltip; its label goes to ``labels``, drawn above every mark."""
    if label and labels is not None:
        labels.append(_label(x, y + h - 4, label, max(room, w)))
    return (f'<g class="{cls}"{data}><rect x="{_fmt(x)}" y="{_fmt(y)}" width="{_fmt(w)}" '
            f'height="{_fmt(h)}" data-x="{_fmt(x)}" data-w="{_fmt(w)}"/>'
            f"<title>{escape(title)}</title></g>")


def _axis(tl: Timeline, g: _Svg) -> list[str]:
    """A tick per step (per 2, 5, 10, ... steps on a long trace); the script thins them."""
    steps = tl.step_of(max(tl.end - 1, 0)) + 1
    base = next(k for k in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10**4,
                            10**5, 10**6) if steps // k <= 1000)
    out = ['<g class="axis">']
    for s in range(0, steps + 1, base):
        x = g.x(s * tl.step_us)
        out.append(f'<g data-step="{s}"><line x1="{_fmt(x)}" y1="{_fmt(TOP - 8)}" '
                   f'x2="{_fmt(x)}" y2="{_fmt(g.bottom)}" data-x="{_fmt(x)}"/>'
                   f'<text x="{_fmt(x + 2)}" y="{_fmt(TOP - 12)}" data-x="{_fmt(x + 2)}">'
                   f"{s}</text></g>")
    out.append("</g>")
    return out


def _arrow(x0: float, y0: float, x1: float, y1: float) -> str:
    """A cause's arrow: a curve up and over (the script draws the same as it zooms)."""
    bend = min(90.0, max(30.0, (x1 - x0) / 3))
    return (f"M{_fmt(x0)},{_fmt(y0)} C{_fmt(x0 + bend)},{_fmt(y0 - 28)} "
            f"{_fmt(x1 - bend)},{_fmt(y1 - 28)} {_fmt(x1)},{_fmt(y1)}")


def _svg(tl: Timeline) -> tuple[str, dict[str, int]]:
    rows = _rows(tl.holds)
    g = _Svg(tl, rows)
    height = g.bottom + 10
    view_w = g.width if g.width <= VIEW_W else 1600.0  # a long trace: the script pans
    out = [f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" '
           f'viewBox="0 0 {_fmt(view_w)} {_fmt(height)}" '
           f'data-width="{_fmt(g.width)}" data-x0="{_fmt(LABEL_W)}" '
           f'data-stepw="{_fmt(STEP_W)}" data-charw="{_fmt(CHAR_W)}" '
           f'data-focus="{_fmt(g.x(tl.violations[0].ts) if tl.violations else LABEL_W)}" '
           f'preserveAspectRatio="xMinYMin meet">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
           'class="arrowhead"/></marker></defs>']
    involved = {c for m in tl.violations for c in m.cpus}
    for n, _name in enumerate(tl.lanes):
        out.append(f'<rect class="lane lane{n % 2}" data-lane="{n}" x="0" '
                   f'y="{_fmt(g.top[n])}" width="100%" height="{_fmt(g.height[n])}"/>')
    out.extend(_axis(tl, g))
    labels: list[str] = []
    named = {i for m in tl.violations for i in m.causes}
    for c in tl.calls:
        x, w = g.x(c.ts), max((c.end - c.ts) * g.px, 2.0)
        ret = c.ret if c.ret is not None else "still running at the end"
        title = f"{tl.lanes[c.lane]} step {tl.step_of(c.ts)}: {c.text}\nreturned: {ret}"
        out.append(_rect("call slice" if c.index in tl.highlight else "call", x,
                         g.call_y(c.lane), w, CALL_H, title,
                         f' data-call="{c.index}"', c.text, labels=labels))
    for s in tl.steps:
        x, w = g.x(s.ts), max((s.end - s.ts) * g.px - 0.6, 2.0)
        cls = ["ev", f"st-{s.style or 'plain'}"]
        if s.detail:
            cls.append("detail")
        if s.marked or s.index in named:
            cls.append("named")
        if s.index in tl.highlight:
            cls.append("slice")
        title = (f"{tl.lanes[s.lane]} step {s.step}: {s.text}"
                 + (f"\nholds after: {s.holds or 'nothing'}" if s.lane < len(tl.lanes) else ""))
        room = (s.room - s.ts) * g.px  # the label runs on over the idle gap after it
        out.append(_rect(" ".join(cls), x, g.ev_y(s.lane), w, EV_H, title,
                         f' data-i="{s.index}"', s.text if room > 0 else "", room, labels))
    out.append('<g class="labels">')
    out.extend(labels)
    out.append("</g>")
    for n, h in enumerate(tl.holds):
        x, w = g.x(h.ts), max((h.end - h.ts) * g.px, 2.0)
        until = (f"step {tl.step_of(h.end - 1)}" if h.end_index is not None
                 else "the end of the trace")
        title = (f"{tl.lanes[h.lane]} holds {h.label}: from step {tl.step_of(h.ts)} "
                 f"to {until}")
        out.append(_rect(f"hold h-{h.cat}", x, g.hold_y(h.lane, rows[n]), w, HOLD_H, title,
                         f' data-h="{n}"'))
    causes = 0
    for v, m in enumerate(tl.violations):
        x = g.x(m.ts)
        lane = m.lane if 0 <= m.lane < len(tl.lanes) else 0
        y = g.ev_y(lane) + EV_H / 2
        title = f"VIOLATION {m.rule} at step {m.step}: {m.message}"
        if m.held:
            title += f"\nheld then: {m.held}"
        out.append(f'<g class="violation" data-v="{v}"><line class="vline" x1="{_fmt(x)}" '
                   f'y1="{_fmt(TOP - 30)}" x2="{_fmt(x)}" y2="{_fmt(g.bottom)}" '
                   f'data-x="{_fmt(x)}"/>'
                   f'<path class="vmark" d="M0,-9 l9,9 l-9,9 l-9,-9 z" data-x="{_fmt(x)}" '
                   f'data-y="{_fmt(y)}" transform="translate({_fmt(x)},{_fmt(y)})"/>'
                   f'<text class="vtext" x="{_fmt(x - 4)}" y="{_fmt(TOP - 32)}" '
                   f'data-x="{_fmt(x - 4)}">{escape(m.rule)} (step {m.step})</text>'
                   f"<title>{escape(title)}</title></g>")
        for cause in m.causes:
            src = next((s for s in tl.steps if s.index == cause), None)
            src_lane = src.lane if src is not None else next(
                (c.lane for c in tl.calls if c.index == cause), 0)
            x0 = g.x(tl.ts_of[cause]) + 3
            y0 = g.ev_y(src_lane) + (EV_H / 2 if src is not None else -EV_H / 2)
            if src_lane == lane and x - x0 < STEP_W:
                continue  # right before the mark on its own lane: its red outline says it
            y1 = y - 9 if y0 < y else (y + 9 if y0 > y else y)
            x1 = x - 9 if y0 == y else x
            out.append(f'<path class="cause" data-from="{cause}" data-v="{v}" '
                       f'data-x0="{_fmt(x0)}" data-y0="{_fmt(y0)}" data-x1="{_fmt(x1)}" '
                       f'data-y1="{_fmt(y1)}" d="{_arrow(x0, y0, x1, y1)}" '
                       f'marker-end="url(#arrow)"><title>cause of {escape(m.rule)}: '
                       f"{escape(tl.lanes[src_lane])} step {tl.step_of(tl.ts_of[cause])}"
                       f"</title></path>")
            causes += 1
    # The lane titles last, on top of what scrolls under them.
    out.append('<g id="titles"><rect class="titlebg" x="0" y="0" '
               f'width="{_fmt(LABEL_W - 4)}" height="{_fmt(height)}"/>'
               f'<text class="axislabel" x="6" y="{_fmt(TOP - 12)}">step</text>')
    for n, name in enumerate(tl.titles):
        kind = "lanetitle bad" if n in involved else "lanetitle"
        out.append(f'<text class="{kind}" x="6" y="{_fmt(g.top[n] + 20)}">'
                   f"{escape(name)}{' !' if n in involved else ''}</text>")
    out.append("</g></svg>")
    return "\n".join(out), {"lanes": len(tl.lanes), "violations": len(tl.violations),
                            "causes": causes}


def _data(tl: Timeline) -> dict[str, Any]:
    return {
        "lanes": tl.lanes,
        "stepTicks": tl.step_us,
        "events": {str(s.index): {"step": s.step, "lane": s.lane, "kind": s.kind,
                                  "text": s.text, "holds": s.holds} for s in tl.steps},
        "calls": {str(c.index): {"lane": c.lane, "step": tl.step_of(c.ts), "text": c.text,
                                 "ret": c.ret} for c in tl.calls},
        "holds": [{"lane": h.lane, "label": h.label, "cat": h.cat, "from": tl.step_of(h.ts),
                   "to": tl.step_of(h.end - 1) if h.end_index is not None else None}
                  for h in tl.holds],
        "violations": [{"rule": m.rule, "message": m.message, "step": m.step,
                        "held": m.held, "causes": list(m.causes)} for m in tl.violations],
        "highlight": sorted(tl.highlight),
    }


def _json_script(data: dict[str, Any]) -> str:
    """JSON safe inside ``<script>``: no ``<``, ``>`` or ``&`` outside escapes."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


STYLE = """
body{font:13px/1.4 system-ui,sans-serif;margin:12px;color:#222;background:#fff}
h1{font-size:16px;margin:0 0 4px}
.run{color:#555;margin:0}
.bad{color:#b00020}
.banner{border:1px solid #b00020;background:#fdecee;padding:4px 8px;margin:6px 0;
 color:#7a0016}
#bar{margin:6px 0}
#bar button{font:inherit;padding:1px 8px}
#details{font-family:ui-monospace,monospace;white-space:pre-wrap;min-height:2.8em;
 background:#f6f6f6;border:1px solid #ddd;padding:4px 8px;margin:6px 0}
#wrap{border:1px solid #ccc;overflow:hidden;cursor:grab}
svg{display:block;width:100%;height:auto;font:11px ui-monospace,monospace}
.legend span{display:inline-block;margin-right:14px}
.sw{display:inline-block;width:14px;height:10px;vertical-align:middle;margin-right:4px;
 border:1px solid #888}
.lane0{fill:#fafafa}.lane1{fill:#f0f0f0}
.titlebg{fill:#fff}
.lanetitle{font-weight:bold;fill:#222}.lanetitle.bad{fill:#b00020}
.axis line{stroke:#ddd}.axis text,.axislabel{fill:#888}
.call rect{fill:#dce8f8;stroke:#7a9cc6}
.ev rect{fill:#e6e6e6;stroke:#aaa;stroke-width:.6}
.st-lock rect{fill:#e4d9f5;stroke:#8e6cc2}.st-wait rect{fill:#fff3c4;stroke:#c9a400}
.st-io rect{fill:#d4efdd;stroke:#3c9a5f}.st-store rect{fill:#cfe3ff;stroke:#2f6fcf}
.st-bad rect{fill:#ffd6da;stroke:#b00020}.st-dim rect{fill:#f2f2f2}
.detail{opacity:.55}
.named rect{stroke:#b00020;stroke-width:2}
.slice rect{stroke:#f08c00;stroke-width:3}
.lbl{fill:#222;pointer-events:none}
.hold rect{stroke:none}.h-lock rect{fill:#8e6cc2}.h-busy rect{fill:#e0a030}
.h-io rect{fill:#3c9a5f}
.vline{stroke:#b00020;stroke-width:2;stroke-dasharray:5 3}
.vmark{fill:#b00020}.vtext{fill:#b00020;font-weight:bold;text-anchor:end}
.cause{fill:none;stroke:#b00020;stroke-width:2}
.arrowhead{fill:#b00020}
g:hover rect{stroke-width:2.5}
"""

SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("vmemu-data").textContent);
  var svg = document.getElementById("timeline");
  var details = document.getElementById("details");
  var ds = svg.dataset;
  var L = parseFloat(ds.x0), full = parseFloat(ds.width), stepW = parseFloat(ds.stepw);
  var charW = parseFloat(ds.charw), viewW = svg.viewBox.baseVal.width;
  var H = svg.viewBox.baseVal.height;
  // The view: x' = L + (x - L) * zoom - off.  Only x changes, so text keeps its size.
  var view = {zoom: 1, off: 0};
  var minZoom = 1, fitZoom = 1;
  // One SVG unit a CSS pixel, whatever the window: the text keeps its size, the zoom
  // decides how much of the trace fits.
  function layout() {
    viewW = Math.max(svg.parentNode.clientWidth, L + 200);
    svg.setAttribute("viewBox", "0 0 " + viewW + " " + H);
    fitZoom = (viewW - L - 10) / (full - L - 20);
    minZoom = Math.min(1, fitZoom);
  }
  layout();
  var marks = svg.querySelectorAll("[data-x]");
  var ticks = svg.querySelectorAll(".axis > g");

  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }
  function X(x) { return L + (x - L) * view.zoom - view.off; }
  function fit(text, room) {
    var n = Math.floor((room - 6) / charW);
    if (n >= text.length) { return text; }
    return n >= 2 ? text.slice(0, n - 1) + "\u2026" : "";
  }
  function arrow(x0, y0, x1, y1) {
    var bend = Math.min(90, Math.max(30, (x1 - x0) / 3));
    return "M" + x0 + "," + y0 + " C" + (x0 + bend) + "," + (y0 - 28) + " " +
      (x1 - bend) + "," + (y1 - 28) + " " + x1 + "," + y1;
  }
  function draw() {
    var z = view.zoom;
    marks.forEach(function (el) {
      var d = el.dataset, x = X(parseFloat(d.x));
      if (el.tagName === "rect") {
        el.setAttribute("x", x);
        el.setAttribute("width", Math.max(parseFloat(d.w) * z, 1.5));
      } else if (el.tagName === "text") {
        el.setAttribute("x", x);
        if (d.full !== undefined) { el.textContent = fit(d.full, parseFloat(d.room) * z); }
      } else if (el.tagName === "line") {
        el.setAttribute("x1", x); el.setAttribute("x2", x);
      } else if (d.y !== undefined) {
        el.setAttribute("transform", "translate(" + x + "," + d.y + ")");
      }
    });
    svg.querySelectorAll("path.cause").forEach(function (el) {
      var d = el.dataset;
      el.setAttribute("d", arrow(X(parseFloat(d.x0)), parseFloat(d.y0),
                                 X(parseFloat(d.x1)), parseFloat(d.y1)));
    });
    var every = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 1e4, 1e5, 1e6]
      .find(function (k) { return k * stepW * z >= 40; }) || 1e6;
    ticks.forEach(function (t) {
      t.style.display = (+t.dataset.step % every === 0) ? "" : "none";
    });
  }
  function setView(zoom, off) {
    view.zoom = clamp(zoom, minZoom, Math.max(40, fitZoom));
    var span = (full - L) * view.zoom;
    view.off = clamp(off, 0, Math.max(0, span + L - viewW));
    draw();
  }
  function zoomAt(factor, sx) {  // keep the point under screen x ``sx`` where it is
    var x = (sx + view.off - L) / view.zoom + L;
    var zoom = clamp(view.zoom * factor, minZoom, Math.max(40, fitZoom));
    setView(zoom, L + (x - L) * zoom - sx);
  }
  function svgX(clientX) {
    var r = svg.getBoundingClientRect();
    return (clientX - r.left) * viewW / r.width;
  }
  function centre() { return L + (viewW - L) / 2; }
  svg.addEventListener("wheel", function (e) {
    e.preventDefault();
    if (e.shiftKey) { setView(view.zoom, view.off + e.deltaY); return; }
    zoomAt(e.deltaY < 0 ? 1.25 : 0.8, svgX(e.clientX));
  }, {passive: false});
  var drag = null;
  svg.addEventListener("mousedown", function (e) { drag = {x: e.clientX, off: view.off}; });
  window.addEventListener("mouseup", function () { drag = null; });
  window.addEventListener("mousemove", function (e) {
    if (!drag) { return; }
    setView(view.zoom, drag.off - (svgX(e.clientX) - svgX(drag.x)));
  });
  // The whole trace if it fits at 0.6 of its drawn size or more (up to 2.5 times
  // wider); else its drawn size, opened on its (first) violation.
  function firstView() {
    if (fitZoom >= 0.6) { return {zoom: Math.min(fitZoom, 2.5), off: 0}; }
    return {zoom: 1, off: Math.max(0, parseFloat(ds.focus) - L - (viewW - L) * 0.75)};
  }
  var first = firstView();
  window.addEventListener("resize", function () {
    var keep = (centre() + view.off - L) / view.zoom + L;
    layout();
    first = firstView();
    setView(view.zoom, L + (keep - L) * view.zoom - centre());
  });
  function button(id, fn) { document.getElementById(id).onclick = fn; }
  button("zoom-in", function () { zoomAt(1.5, centre()); });
  button("zoom-out", function () { zoomAt(1 / 1.5, centre()); });
  button("zoom-all", function () { setView(fitZoom, 0); });
  button("zoom-reset", function () { setView(first.zoom, first.off); });
  button("pan-left", function () { setView(view.zoom, view.off - (viewW - L) / 3); });
  button("pan-right", function () { setView(view.zoom, view.off + (viewW - L) / 3); });

  function say(el) {
    var d = el.dataset, lane = function (n) { return data.lanes[n] || "harness"; };
    if (d.i !== undefined) {
      var ev = data.events[d.i];
      return lane(ev.lane) + " step " + ev.step + ": " + ev.text + "  (" + ev.kind + ")" +
        "\nholds after: " + (ev.holds || "nothing") +
        (data.highlight.indexOf(+d.i) >= 0 ? "\nin the causal slice" : "");
    }
    if (d.call !== undefined) {
      var c = data.calls[d.call];
      return lane(c.lane) + " step " + c.step + ": " + c.text + "\nreturned: " +
        (c.ret === null ? "still running at the end" : c.ret);
    }
    if (d.h !== undefined) {
      var h = data.holds[+d.h];
      return lane(h.lane) + " holds " + h.label + " (" + h.cat + ") from step " + h.from +
        " to " + (h.to === null ? "the end" : "step " + h.to);
    }
    if (d.v !== undefined) {
      var v = data.violations[+d.v];
      return "VIOLATION " + v.rule + " at step " + v.step + ": " + v.message +
        (v.held ? "\nheld then: " + v.held : "");
    }
    return null;
  }
  svg.addEventListener("mouseover", function (e) {
    for (var el = e.target; el && el !== svg; el = el.parentNode) {
      var text = el.dataset ? say(el) : null;
      if (text) { details.textContent = text; return; }
    }
  });

  setView(first.zoom, first.off);
  // #zoom=F[&step=N]: open zoomed F times, centred on step N (a link to a moment).
  var want = {};
  location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
    var p = kv.split("="); if (p.length === 2) { want[p[0]] = parseFloat(p[1]); }
  });
  if (want.zoom > 0) {
    var at = want.step >= 0 ? L + want.step * stepW : (centre() + view.off - L) / view.zoom + L;
    var zoom = clamp(want.zoom, minZoom, 40);
    setView(zoom, L + (at - L) * zoom - centre());
  }
  var body = document.body.dataset;
  body.lanes = String(svg.querySelectorAll("rect.lane").length);
  body.violations = String(svg.querySelectorAll("g.violation").length);
  body.causes = String(svg.querySelectorAll("path.cause").length);
  body.view = view.zoom.toFixed(3) + " " + Math.round(view.off);
  body.rendered = "ok";
  console.log("vmemu export: drew " + body.lanes + " lanes, " + body.violations +
              " violations, " + body.causes + " causal arrows");
})();
"""


def render(tl: Timeline) -> str:
    """The whole page."""
    svg, counts = _svg(tl)
    head = [f"<h1>{escape(tl.title)}</h1>"]
    head.extend(f'<p class="run">{escape(line)}</p>' for line in tl.summary[:2])
    for m in tl.violations:
        held = f"<br>held then: {escape(m.held)}" if m.held else ""
        head.append(f'<div class="banner"><b>VIOLATION {escape(m.rule)}</b> at step {m.step}: '
                    f"{escape(m.message)}{held}</div>")
    legend = ('<p class="legend">'
              '<span><i class="sw" style="background:#dce8f8"></i>system call</span>'
              '<span><i class="sw" style="background:#e4d9f5"></i>lock</span>'
              '<span><i class="sw" style="background:#fff3c4"></i>wait</span>'
              '<span><i class="sw" style="background:#cfe3ff"></i>store</span>'
              '<span><i class="sw" style="background:#d4efdd"></i>disk write</span>'
              '<span><i class="sw" style="background:#ffd6da"></i>bad news</span>'
              '<span>bars under a lane: <i class="sw" style="background:#8e6cc2"></i>lock held '
              '<i class="sw" style="background:#e0a030"></i>page busy '
              '<i class="sw" style="background:#3c9a5f"></i>write in flight</span>'
              '<span class="bad">red: the violation and the events it names</span>'
              + ('<span style="color:#f08c00">orange outline: the events it depends on '
                 "(vmemu why)</span>" if tl.highlight else "") + "</p>")
    bar = ('<div id="bar"><button id="zoom-in" title="zoom in">+</button> '
           '<button id="zoom-out" title="zoom out">&minus;</button> '
           '<button id="pan-left" title="earlier">&larr;</button> '
           '<button id="pan-right" title="later">&rarr;</button> '
           '<button id="zoom-reset">first view</button> '
           '<button id="zoom-all">whole trace</button> '
           "<small>wheel: zoom at the pointer; shift+wheel or drag: move; "
           "hover: details</small></div>")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(tl.title)}</title>",
        f"<style>{STYLE}</style></head>",
        "<body>",
        *head,
        bar,
        '<div id="details">hover over a mark for its details</div>',
        f'<div id="wrap">{svg}</div>',
        legend,
        f'<script type="application/json" id="vmemu-data">{_json_script(_data(tl))}</script>',
        f"<script>{SCRIPT}</script>",
        f"<!-- drew {counts['lanes']} lanes, {counts['violations']} violations, "
        f"{counts['causes']} causal arrows -->",
        "</body></html>",
        "",
    ])
