"""Locks: the map lock (an sx lock with a timestamp) and plain mutexes.

Every acquisition and release is a schedule point: the point comes first, then
the action takes effect atomically.  A lock that is not free puts the caller to
sleep on the lock itself; a release wakes every sleeper, and each re-checks
(kernel sleep/wakeup, not handoff).  Nothing here uses a Trio primitive.

Lock classes, in the order they must be taken (SEMANTICS.md §5):
``map`` -> ``vnode`` -> ``object`` -> ``busy`` (page busy, in page.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel

# Lock class ranks for the lock-order rule.
RANK_MAP = 0
RANK_VNODE = 1
RANK_OBJECT = 2
RANK_BUSY = 3
RANK_NAMES = ("map", "vnode", "object", "busy")


class MapLock:
    """vm_map_lock: shared/exclusive, with upgrade and a timestamp.

    ``timestamp`` is bumped on every exclusive acquisition, so a holder that
    drops the lock can tell on re-locking whether the map may have changed
    (vm_map_sync's ``last_timestamp`` check).
    """

    __slots__ = ("excl", "k", "name", "shared", "timestamp", "xwaiters")

    rank = RANK_MAP

    def __init__(self, k: Kernel, name: str) -> None:
        self.k = k
        self.name = name
        self.excl = -1  # owning cpu, -1 when not held exclusive
        self.shared: list[int] = []  # cpus holding it shared (one item per hold)
        self.timestamp = 0  # (excl) bumped at each exclusive acquisition
        self.xwaiters: list[int] = []  # cpus sleeping for the exclusive lock

    # -- wait channel --
    def wait_holders(self) -> list[int]:
        if self.excl >= 0:
            return [self.excl]
        if self.k.profile.map_lock_prefers_writers:
            # A reader held back by a waiting writer waits for that writer too.
            return list(self.shared) + [w for w in self.xwaiters if w not in self.shared]
        return list(self.shared)

    def writer_first(self, me: int) -> bool:
        """Whether a new shared acquisition by ``me`` must let a waiting writer go first.

        sx's __sx_can_read: not while exclusive waiters are queued, unless the
        thread already holds sx locks shared (it could deadlock against itself).
        """
        return (bool(self.xwaiters) and self.k.profile.map_lock_prefers_writers
                and not self.k.map_slocks.get(me, 0))

    def wait_name(self) -> str:
        if self.excl < 0 and self.xwaiters and self.k.profile.map_lock_prefers_writers:
            writers = ",".join(self.k.agent_name(w) for w in self.xwaiters)
            return f"map lock of {self.name} (held shared, {writers} waiting exclusive first)"
        return f"map lock of {self.name}"

    def _check(self) -> None:
        assert not (self.excl >= 0 and self.shared), f"{self.name}: exclusive and shared at once"
        assert len(set(self.shared)) == len(self.shared), f"{self.name}: shared hold recursed"

    async def xlock(self) -> None:
        """Take the map lock exclusive, sleeping while anyone holds it."""
        k = self.k
        await k.kpoint()
        me = k.sched.cpu
        if self.excl == me:
            k.contract(f"{self.name}: map lock recursed by cpu{me}")
        while self.excl >= 0 or self.shared:
            k.emit_wait("map", self.name)
            self.xwaiters.append(me)
            try:
                await k.sleep(self)
            finally:
                self.xwaiters.remove(me)
        self.excl = me
        self.timestamp += 1
        k.emit_lock("map", self.name, "x")

    async def slock(self) -> None:
        """Take the map lock shared, sleeping while it is held exclusive."""
        k = self.k
        await k.kpoint()
        me = k.sched.cpu
        while self.excl >= 0 or (self.xwaiters and self.writer_first(me)):
            k.emit_wait("map", self.name)
            await k.sleep(self)
        self.shared.append(me)  # hold_shared, inlined: every fault
        slocks = k.map_slocks
        slocks[me] = slocks.get(me, 0) + 1
        k.emit_lock("map", self.name, "s")

    async def try_slock(self) -> bool:
        """Take the map lock shared if that needs no sleep (vm_map_trylock_read)."""
        k = self.k
        await k.kpoint()
        if k.watched:
            k.read("map", self.name)
        me = k.sched.cpu
        if self.excl >= 0 or (self.xwaiters and self.writer_first(me)):
            return False
        self.hold_shared(me)
        return True

    def hold_shared(self, me: int) -> None:
        self.shared.append(me)
        self.k.map_slocks[me] = self.k.map_slocks.get(me, 0) + 1
        self.k.emit_lock("map", self.name, "s")

    async def try_upgrade(self) -> bool:
        """Upgrade a shared hold to exclusive if this cpu is the only holder.

        On failure the shared hold is kept (unlike FreeBSD's, which drops it;
        callers here always retry from scratch anyway).
        """
        k = self.k
        await k.kpoint()
        if k.watched:
            k.read("map", self.name)
        me = k.sched.cpu
        if self.shared != [me]:
            return False
        self.shared.clear()
        k.map_slocks[me] -= 1
        self.excl = me
        self.timestamp += 1
        k.emit_lock("map", self.name, "x")
        return True

    async def unlock(self) -> None:
        """Release this cpu's hold, exclusive or shared."""
        k = self.k
        await k.kpoint()
        me = k.sched.cpu
        if self.excl == me:
            self.excl = -1
        elif me in self.shared:
            self.shared.remove(me)
            k.map_slocks[me] -= 1
        else:
            k.contract(f"{self.name}: map lock released by cpu{me}, which does not hold it")
            return
        k.emit_unlock("map", self.name)
        k.wakeup(self)


class Mutex:
    """An exclusive sleep lock: an object's lock or a vnode's lock."""

    __slots__ = ("k", "kind", "name", "owner", "rank")

    def __init__(self, k: Kernel, kind: str, name: str, rank: int) -> None:
        self.k = k
        self.kind = kind  # "object" | "vnode"
        self.name = name
        self.rank = rank
        self.owner = -1

    def wait_holders(self) -> list[int]:
        return [self.owner] if self.owner >= 0 else []

    def wait_name(self) -> str:
        return f"{self.kind} lock of {self.name}"

    def _check(self) -> None:
        assert self.owner >= -1, f"{self.kind} lock of {self.name}: bad owner {self.owner}"

    async def lock(self, contended: Callable[[], None] | None = None) -> None:
        """Take the lock, sleeping while another holds it.  ``contended``, if given,
        runs once before the first sleep, in the step that found the lock held
        (what a caller must let go of before sleeping, e.g. a fault's pip)."""
        k = self.k
        await k.kpoint()
        me = k.sched.cpu
        if self.owner == me:
            k.contract(f"{self.kind} lock of {self.name} recursed by cpu{me}")
        if self.owner >= 0 and contended is not None:
            contended()
        while self.owner >= 0:
            k.emit_wait(self.kind, self.name)
            await k.sleep(self)
        self.owner = me
        k.emit_lock(self.kind, self.name, "x")

    async def unlock(self) -> None:
        k = self.k
        await k.kpoint()
        me = k.sched.cpu
        if self.owner != me:
            k.contract(
                f"{self.kind} lock of {self.name} released by cpu{me}, owner cpu{self.owner}"
            )
            return
        self.owner = -1
        k.emit_unlock(self.kind, self.name)
        k.wakeup(self)
