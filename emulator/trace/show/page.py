"""The whole page :func:`render` prints, top to bottom.

The header (the command, the run's parameters, the outcome, the mappings and
each CPU's program), the table (titles, a rule, the rows with each violation
as a row marking its CPUs and a banner spanning the width, a rule), where
every agent stood when the trace ended (unless it ended ``ok``), and the
legend.  The text depends on the trace and the options only, so the same
trace always shows the same.
"""

from __future__ import annotations

from typing import Any

from emulator.kern.param import PAGE_SHIFT
from emulator.trace.reader import Trace
from emulator.trace.show.calls import op_text
from emulator.trace.show.layout import (
    ASCII,
    UNICODE,
    Cell,
    Painter,
    Table,
    fit_line,
    wrap,
)
from emulator.trace.show.phrases import cell_style
from emulator.trace.show.rows import Row, build
from emulator.trace.show.state import State
from emulator.trace.show.text import as_dict, as_list, clean
from emulator.trace.show.violations import Violation, store_ids, trace_violations

HOLDS_TITLE = "holds after the row"


def render(trace: Trace, width: int, show_all: bool = False, color: bool = False,
           unicode: bool = True, why: set[int] | None = None) -> str:
    """Return the timeline of ``trace`` as text no line of which is wider than ``width``.

    ``why``: indices into ``trace.entries`` (``emulator.trace.why.slice_of``)
    whose rows get a marker before the step; ``None`` leaves the page as it was.
    """
    g = UNICODE if unicode else ASCII
    agents = [clean(str(a)) for a in trace.header.get("agents", [])]
    disk = agents.index("disk") if "disk" in agents else len(agents) - 1
    violations = trace_violations(trace)
    marked = {n for v in violations for n in store_ids(v.message)}
    rows, state = build(trace.entries, agents, disk, violations, marked, show_all, g.joint)

    # Columns: step, the agents (the harness if it has rows), holds.
    columns = list(range(len(agents)))
    if any(r.column == -1 and r.violation is None for r in rows):
        columns.append(-1)
    involved = {c for v in violations for c in v.cpus}
    titles = _titles(trace, agents, columns, involved)
    lead = len(g.why) + 1 if why is not None else 0
    table = Table.fit(rows, columns, titles, HOLDS_TITLE, width, g, Painter(color), lead)

    def marker(r: Row) -> str:
        if why is None:
            return ""
        return (g.why if why.intersection(r.events) else " " * len(g.why)) + " "

    out: list[str] = []
    for h in _header_lines(trace, violations, sum(r.violation is None for r in rows), show_all):
        out.extend(wrap(h, width, "    "))
    out.append("")
    head_cells: list[Cell] = [((t,), "bad" if c in involved else "bold")
                              for t, c in zip(titles, columns, strict=True)]
    out.append(table.line("step", [*head_cells, ((HOLDS_TITLE, "holds"), "bold")], "bold"))
    out.append(table.rule())
    prev_step: int | None = None
    for r in rows:
        if r.violation is not None:
            out.extend(_violation_lines(r, r.violation, columns, agents, table, marker(r)))
            prev_step = None
            continue
        step_text = (str(r.step) if r.step != prev_step else "") + ("*" if r.mark else " ")
        if why is not None:  # the marker leads, the step stays right-aligned after it
            step_text = marker(r) + step_text.rjust(table.step_w - lead)
        prev_step = r.step
        cells: list[Cell] = [(("",), "")] * len(columns)
        cells[columns.index(r.column)] = (r.text, cell_style(r.kind, r.text))
        out.append(table.line(step_text, [*cells, (r.holds, "")], "bad" if r.mark else "dim"))
    out.append(table.rule())
    out.extend(_end_lines(trace, state, agents, width))
    out.extend(wrap(_legend(marked, bool(violations), show_all, g.why if why is not None
                            else None), width, "        "))
    return "\n".join(fit_line(s, width) for s in out) + "\n"


def _titles(trace: Trace, agents: list[str], columns: list[int], involved: set[int]) -> list[str]:
    """``cpu0 (p0) !``: each column's agent, its process, and ``!`` if a violation names it."""
    cpu_specs = as_list(as_dict(trace.header.get("spec")).get("cpus"))
    titles = []
    for c in columns:
        title = agents[c] if c >= 0 else "harness"
        if 0 <= c < len(cpu_specs) and isinstance(cpu_specs[c], dict):
            title += f" ({clean(str(cpu_specs[c].get('process', '?')))})"
        if c in involved:
            title += " !"
        titles.append(title)
    return titles


def _header_lines(trace: Trace, violations: list[Violation], rows: int,
                  show_all: bool) -> list[str]:
    h = trace.header
    params = as_dict(h.get("params"))
    ptext = " ".join(f"{k}={v}" for k, v in sorted(params.items()))
    strategy = h.get("strategy", {}).get("name", "?") if isinstance(h.get("strategy"),
                                                                      dict) else "?"
    lines = [
        f"vmemu show {trace.path}",
        f"workload {h.get('workload', '?')}" + (f" ({ptext})" if ptext else "")
        + f" | profile {h.get('profile')} | variant {h.get('variant')} | seed {h.get('seed')}"
        + f" | strategy {strategy}",
    ]
    events = trace.events
    last_step = events[-1]["step"] if events else 0
    found = ", ".join(f"{v.rule} at step {v.step}" for v in violations)
    if trace.footer is None:
        outcome = (f"outcome: unknown - a partial trace (no footer), cut after step "
                   f"{last_step}")
        if violations:
            outcome += "; so far: " + found
    else:
        outcome = f"outcome: {trace.footer.get('outcome', '?')}"
        if violations:
            outcome += " - " + found
        if not trace.digest_ok:
            outcome += " (digest mismatch: the trace was edited)"
    shown = ("every event" if show_all
             else "hidden: scheduling, brief object locks; --all shows them")
    lines.append(f"{outcome} | {last_step} steps, {len(events)} events, {rows} rows "
                 f"({shown})")
    spec = as_dict(h.get("spec"))
    procs = as_dict(spec.get("processes"))
    maps = []
    for pname in sorted(procs):
        for m in as_list(as_dict(procs[pname]).get("mappings")):
            if isinstance(m, dict):
                maps.append(_mapping_text(pname, m))
    if maps:
        lines.append("mappings: " + "; ".join(maps))
    cpus = as_list(spec.get("cpus"))
    for i, cpu in enumerate(cpus):
        if not isinstance(cpu, dict):
            continue
        program = as_list(cpu.get("program"))
        ops = [op_text(op) for op in program if isinstance(op, list) and op]
        lines.append(f"cpu{i} on {cpu.get('process', '?')}: " + ", ".join(ops))
    return lines


def _mapping_text(pname: str, m: dict[str, Any]) -> str:
    try:
        start = int(m["addr"], 0) if isinstance(m["addr"], str) else int(m["addr"])
        pages = int(m.get("pages", 0))
        what = (f"{m['file']}:{int(m.get('offset', 0))}.." if "file" in m
                else "submap" if m.get("submap") else "anon")
        extra = (" " + str(m.get("prot", "rw"))) + (" wired" if m.get("wired") else "")
        return f"{pname} [{start:#x}, {start + (pages << PAGE_SHIFT):#x}) {what}{extra}"
    except (KeyError, TypeError, ValueError):
        return f"{pname} ?"


def _violation_lines(r: Row, v: Violation, columns: list[int], agents: list[str],
                     table: Table, lead: str = "") -> list[str]:
    """The row marking the CPUs involved, the banner, and what each agent held then."""
    cells: list[Cell] = [((f"!! {v.rule}", "!!"), "alarm") if c in v.cpus else (("",), "")
                         for c in columns]
    step = v.step if v.step is not None else r.step
    step_text = f"{step} "
    if lead:
        step_text = lead + step_text.rjust(table.step_w - len(lead))
    out = [table.line(step_text, [*cells, (("",), "")], "bad")]
    who = ", ".join(agents[c] if 0 <= c < len(agents) else f"cpu{c}" for c in v.cpus)
    banner = (f">>> VIOLATION {v.rule} at step {v.step}" + (f" ({who})" if who else "")
              + f": {v.message}")
    out.extend(table.paint(s, "bad") for s in wrap(banner, table.width, "    "))
    held = v.held
    held_text = "    held then: " + "; ".join(
        f"{agents[a]}: {held[a]}" for a in sorted(held) if held[a] != "nothing") if held else ""
    if held_text.strip() and not held_text.endswith("then: "):
        out.extend(wrap(held_text, table.width, "    "))
    return out


def _end_lines(trace: Trace, state: State, agents: list[str], width: int) -> list[str]:
    """Where each agent stood when the trace ended: what it ran, held and waited for."""
    if trace.footer is not None and trace.footer.get("outcome") == "ok":
        return []
    last = trace.events[-1]["step"] if trace.events else 0
    out = [f"at the end of the trace (step {last}):"]
    cpu_specs = as_list(as_dict(trace.header.get("spec")).get("cpus"))
    name_w = max((len(a) for a in agents), default=4)
    for aid, name in enumerate(agents):
        bits = []
        if aid in state.running:
            bits.append(f"in {state.running[aid]}")
        elif aid < len(cpu_specs) and isinstance(cpu_specs[aid], dict):
            program = cpu_specs[aid].get("program")
            total = len(program) if isinstance(program, list) else 0
            done = state.returned.get(aid, 0)
            bits.append("done" if done >= total else f"{done} of {total} calls done")
        holds = state.describe(aid)
        if holds != "nothing":
            bits.append(f"holds {holds}")
        if aid in state.waiting:
            bits.append(state.wait_phrase(state.waiting[aid]).replace("wait ", "waits for ", 1))
        if not bits:
            bits.append("idle")
        out.extend(wrap(f"  {name.ljust(name_w)}  " + "; ".join(bits), width,
                        " " * (name_w + 6)))
    return out


def _legend(marked: set[int], violations: bool, show_all: bool,
            why: str | None = None) -> str:
    parts = [
        "legend: f:1 = page 1 of file f",
        "#N = the value of store N (#0: the initial contents)",
        "x/s = exclusive/shared",
        "busy/sbusy = page busied exclusive/shared",
        "wait X (cpuN) = blocked on X, which cpuN holds",
        "[busy cpuN] = a store into a page another agent holds busy",
        "writing f:0 = a write in flight keeps the page busy",
        "holds = all an agent holds after a row that changed it (+X/-X: what the row "
        "changed, when the list does not fit)",
    ]
    if violations:
        parts.append("! = a CPU the violation names")
    if marked:
        parts.append("* = a row with store " + ", ".join(f"#{n}" for n in sorted(marked))
                     + " (named by the violation)")
    if why is not None:
        parts.append(f"{why} = a row the violation depends on (the slice `vmemu why` explains)")
    if not show_all:
        parts.append("--all shows every event")
    return "; ".join(parts)
