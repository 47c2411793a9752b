"""A timeline as Chrome/Perfetto trace-event JSON (the JSON Object Format).

Written with the standard library; it opens in ui.perfetto.dev (offline: the
file is loaded in the browser) and in chrome://tracing.  One process, the run;
one thread per lane (``M`` events name and order them) and a last one for the
violations.  Timestamps are ticks (:mod:`.timeline`), one microsecond each,
so a slice at ``ts`` 460 is at step 46 when a step holds ten ticks.

* each system call: an ``X`` (complete) slice on its CPU's thread, with the
  kernel steps inside it as nested ``X`` slices (``cat`` ``step``; ``detail``
  for the bookkeeping ``show`` hides by default, ``slice`` for a highlighted
  event);
* each lock held, page busied and write in flight: an async ``b``/``e`` pair
  (``cat`` ``lock``, ``busy`` or ``io``, one id per hold), named with its holder
  (``cpu1: map p1 s``);
* each violation: an ``X`` slice on the ``violations`` thread, and a flow
  (``s`` at a cause's slice, ``f`` with ``bp: e`` at the violation's; one id
  per arrow) from every event it names as a cause.

The bytes depend on the trace only: keys sorted, one event a line, in a
fixed order.
"""

from __future__ import annotations

import json
from typing import Any

from emulator.trace.export.timeline import Timeline

PID = 1
SLICE_CAT = "vmemu"  # every X slice and flow: a flow binds to a slice of its category


def _tid(lane: int) -> int:
    return lane + 1


def events(tl: Timeline) -> list[dict[str, Any]]:
    """The trace events of ``tl``, metadata first, then in time order."""
    out: list[dict[str, Any]] = [
        {"ph": "M", "pid": PID, "tid": 0, "ts": 0, "name": "process_name",
         "args": {"name": tl.title}},
        {"ph": "M", "pid": PID, "tid": 0, "ts": 0, "name": "process_labels",
         "args": {"labels": " | ".join(tl.summary)}},
    ]
    violations_tid = _tid(len(tl.lanes))
    names = [*tl.lanes, "violations"]
    for n, name in enumerate(names):
        for meta, value in (("thread_name", {"name": name}), ("thread_sort_index",
                                                               {"sort_index": n})):
            out.append({"ph": "M", "pid": PID, "tid": _tid(n), "ts": 0, "name": meta,
                        "args": value})
    timed: list[tuple[int, int, dict[str, Any]]] = []  # (ts, order, event)
    for c in tl.calls:
        args: dict[str, Any] = {"call": c.text, "step": tl.step_of(c.ts),
                                "returned": c.ret if c.ret is not None else "(still running)"}
        if c.index in tl.highlight:
            args["kind"] = "slice"
        timed.append((c.ts, 0, {"ph": "X", "cat": SLICE_CAT, "name": c.text, "pid": PID,
                                "tid": _tid(c.lane), "ts": c.ts, "dur": c.end - c.ts,
                                "args": args}))
    for s in tl.steps:
        kind = "slice" if s.index in tl.highlight else ("detail" if s.detail else "step")
        args = {"event": s.kind, "step": s.step, "index": s.index, "holds after": s.holds,
                "kind": kind}
        if s.marked:
            args["named by the violation"] = True
        timed.append((s.ts, 1, {"ph": "X", "cat": SLICE_CAT, "name": s.text, "pid": PID,
                                "tid": _tid(s.lane), "ts": s.ts, "dur": s.end - s.ts,
                                "args": args}))
    for n, h in enumerate(tl.holds):
        name = f"{tl.lanes[h.lane]}: {h.label}"
        common = {"cat": h.cat, "name": name, "pid": PID, "tid": _tid(h.lane), "id": n + 1}
        timed.append((h.ts, 2, {"ph": "b", "ts": h.ts, **common,
                                "args": {"taken at step": tl.step_of(h.ts)}}))
        timed.append((h.end, -1, {"ph": "e", "ts": h.end, **common}))
    flow = 0
    for m in tl.violations:
        name = f"VIOLATION {m.rule}"
        timed.append((m.ts, 3, {"ph": "X", "cat": SLICE_CAT, "name": name, "pid": PID,
                                "tid": violations_tid, "ts": m.ts, "dur": 1,
                                "args": {"rule": m.rule, "message": m.message, "step": m.step,
                                         "cpus": [tl.lanes[c] for c in m.cpus
                                                  if 0 <= c < len(tl.lanes)],
                                         "held then": m.held}}))
        for cause in m.causes:
            flow += 1
            lane = next((s.lane for s in tl.steps if s.index == cause),
                        next((c.lane for c in tl.calls if c.index == cause), 0))
            common = {"cat": SLICE_CAT, "name": "cause", "pid": PID, "id": flow}
            timed.append((tl.ts_of[cause], 4, {"ph": "s", "ts": tl.ts_of[cause],
                                                "tid": _tid(lane), **common}))
            timed.append((m.ts, 4, {"ph": "f", "bp": "e", "ts": m.ts, "tid": violations_tid,
                                    **common}))
    timed.sort(key=lambda t: (t[0], t[1], t[2]["tid"], str(t[2].get("id", "")),
                              -t[2].get("dur", 0)))
    out.extend(e for _, _, e in timed)
    return out


def render(tl: Timeline) -> str:
    """The JSON text: ``{"otherData": {...}, "traceEvents": [...]}``, one event a line."""
    lines = [json.dumps(e, sort_keys=True, ensure_ascii=True) for e in events(tl)]
    other = json.dumps({"run": tl.summary, "ticks per step": tl.step_us}, sort_keys=True)
    return ('{"otherData": ' + other + ',\n"traceEvents": [\n'
            + ",\n".join(lines) + "\n]}\n")
