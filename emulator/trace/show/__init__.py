"""``vmemu show``: a recorded trace as a per-CPU timeline for a terminal.

The table has a step column, one column per agent named in the header (``cpu0``,
``cpu1``, ..., ``disk``) and a last ``holds`` column.  Time runs downwards, one
row per event that matters, in the order the events happened (events of one
step keep their order; a step number is printed on the first row of its step).
An agent's column holds a short phrase for its event (``lock map p0 (x)``,
``busy f:1``, ``write f:1 #4 (sync)``, ``store #5 -> f:0 @0x100000``); the
``holds`` column says, whenever a row changes what an agent holds, everything
that agent holds afterwards (``cpu0: map p0 x, vnode f, busy f:0``).  A page
under write belongs to the disk from the issue until the completion
(``disk: writing f:0``), as the page's shared busy does in the kernel.

By default the timeline is the race, not the bookkeeping:

* scheduling decisions are not shown;
* an object lock taken and dropped without its holder waiting for anything in
  between (and without a violation meanwhile) is not shown, nor is another
  agent's wait for such a lock: those are the short critical sections every
  path takes.  An object lock held across a wait, or still held at the end,
  is shown with its waiters -- that is what a lock-order deadlock looks like;
* a system call that needs no fault shows as its effect only (``store #5 ->
  f:0``), the page-in of a fresh page as one row, an msync and its inner clean
  call and return as one row each, the disk's completion with its unbusy.

``--all`` shows every event, one row each, scheduling decisions included.

Violations are banners spanning the width (``>>> VIOLATION lost_store at step
123 (cpu0, cpu1): ...``) after a row that marks the involved agents' columns;
rows touching a store the message names (``store #5``) carry a ``*`` after
their step.  Cells are cut with an ellipsis, never wrapped; only banners and
the header and legend lines wrap.  Colour is the caller's choice
(:func:`use_color`: a TTY without ``NO_COLOR``).  The text depends on the trace
and the options only, so the same trace always shows the same.

Reading order, each module using only those before it:

1. ``text``: a trace's values as short printable words (``f:1``, ``#5``).
2. ``calls``: every phrasing of a system call -- call, return, fault, clean.
3. ``state``: the machine as the events replay it: holds, waits, calls, ptes.
4. ``phrases``: one table from event kind to its cell's phrasing and colour.
5. ``violations``: the trace's violations, their CPUs and the stores they name.
6. ``rows``: which events become rows (hidden, folded), and building the rows.
7. ``layout``: the terminal (width, glyphs, colour) and fitting the columns.
8. ``page``: :func:`render`: header, table, violation banners, end, legend.
"""

from __future__ import annotations

from emulator.trace.show.layout import MIN_WIDTH, default_width, unicode_ok, use_color
from emulator.trace.show.page import render

__all__ = ["MIN_WIDTH", "default_width", "render", "unicode_ok", "use_color"]
