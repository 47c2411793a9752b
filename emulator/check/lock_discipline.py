"""Rule 2, ``lock_discipline`` and ``deadlock``.

* The entry list of a map changes only under its exclusive lock, held by the
  CPU making the change.
* The locking contracts of the primitives hold (no recursion, no release by a
  non-holder): the kernel reports a broken one (``contract``), this judges it.
* An exclusive holder is alone (no shared holder at the same time).
* The lock order map -> vnode -> object -> page busy is never inverted; no one
  waits for a busy page holding an object lock, or sleeps for a vnode lock
  holding a busy page.  An inversion is recorded when it happens but does not
  end the run: if it leads to a deadlock, the deadlock is reported with it.
* A wait-for cycle (detected by the scheduler when no agent can run) is a
  ``deadlock``; its report names what each CPU holds and wants.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator.check.base import RANKS, holdings
from emulator.kern.locks import RANK_BUSY, RANK_OBJECT

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.map import VmMap
    from emulator.kern.monitor import Violation
    from emulator.spec import Spec

RULE = "lock_discipline"


def install(k: Kernel, spec: Spec) -> None:
    held = holdings(k)
    reported: set[tuple[int, str, str]] = set()
    map_holders: dict[str, tuple[int, list[int]]] = {}  # map -> (excl, shared)

    def inversion(aid: int, kind: str, waiting: bool) -> tuple[str, str] | None:
        """Return (held label, why) if taking or waiting for ``kind`` breaks the order.

        Locks rank map < vnode < object.  Page busy is not a lock one may block
        on freely: waiting for one holding an object lock is forbidden, and so
        is sleeping for a vnode lock holding one; taking an object lock while
        holding a busy page is how the kernel works and is allowed.
        """
        rank = RANKS[kind]
        for r, label in held.of(aid):
            if kind == "busy":
                if waiting and r == RANK_OBJECT:
                    return label, "no one may wait for a busy page holding an object lock"
            elif r == RANK_BUSY:
                if waiting and kind in ("vnode", "map"):
                    return label, f"no one may sleep for a {kind} lock holding a busy page"
            elif r > rank:
                return label, "the order is map -> vnode -> object -> page busy"
        return None

    def order(step: int, aid: int, kind: str, name: str, waiting: bool) -> None:
        found = inversion(aid, kind, waiting)
        if found is None:
            return
        label, why = found
        key = (aid, label, kind)
        if key in reported:
            return
        reported.add(key)
        verb = "waits for" if waiting else "takes"
        what = f"page {name}" if kind == "busy" else f"the {kind} lock of {name}"
        k.monitor.note(
            RULE,
            f"lock order inverted: {k.agent_name(aid)} {verb} {what} at step {step} "
            f"while holding the {label}; {why}",
            cpus=[aid],
            held=label,
            wanted=f"{kind} {name}",
        )

    def on_lock(step: int, aid: int, f: tuple[Any, ...]) -> None:
        kind, name, mode = f
        order(step, aid, kind, name, False)
        if kind != "map":
            return
        excl, shared = map_holders.get(name, (-1, []))
        if mode == "x":
            if excl >= 0 or shared:
                k.monitor.fatal(RULE, f"{k.agent_name(aid)} holds the map lock of {name} "
                                "exclusive together with another holder", cpus=[aid])
            map_holders[name] = (aid, shared)
        else:
            if excl >= 0:
                k.monitor.fatal(RULE, f"{k.agent_name(aid)} holds the map lock of {name} shared "
                                f"while {k.agent_name(excl)} holds it exclusive", cpus=[aid, excl])
            map_holders[name] = (excl, [*shared, aid])

    def on_unlock(step: int, aid: int, f: tuple[Any, ...]) -> None:
        if f[0] != "map":
            return
        excl, shared = map_holders.get(f[1], (-1, []))
        if excl == aid:
            excl = -1
        elif aid in shared:
            shared = list(shared)
            shared.remove(aid)
        map_holders[f[1]] = (excl, shared)

    def on_wait(step: int, aid: int, f: tuple[Any, ...]) -> None:
        kind = f[0]
        if kind in RANKS:
            order(step, aid, kind, f[1], True)

    def on_busy(step: int, aid: int, f: tuple[Any, ...]) -> None:
        order(step, aid, "busy", f"{f[0]}:{f[1]}", False)

    def on_map_access(vm_map: VmMap, what: str) -> None:
        if what == "lookup":
            return
        cpu = k.curcpu()
        if vm_map.lock.excl != cpu:
            state = (
                f"exclusive by {k.agent_name(vm_map.lock.excl)}" if vm_map.lock.excl >= 0
                else "shared" if vm_map.lock.shared else "not held"
            )
            k.monitor.fatal(
                RULE,
                f"{k.agent_name(cpu)} changed the entry list of map {vm_map.name} ({what}) "
                f"without its exclusive lock (lock {state})",
                cpus=[cpu],
                map=vm_map.name,
            )

    def on_contract(message: str) -> None:
        k.monitor.fatal(RULE, message)

    def on_deadlock(v: Violation) -> None:
        parts = [f"{k.agent_name(a)} holds {held.describe(a)}" for a in v.cpus]
        v.message = f"{v.message}; " + "; ".join(parts)

    k.observe("lock", on_lock)
    k.observe("unlock", on_unlock)
    k.observe("wait", on_wait)
    k.observe("busy", on_busy)
    k.hook("map_access", on_map_access)
    k.hook("contract", on_contract)
    k.hook("deadlock", on_deadlock)
