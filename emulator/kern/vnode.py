"""Vnode use references: vrele of the last one, and its deferral past the map lock.

A file's mappings hold references on its VM object; while some remain, so does a
use reference on the vnode (vm_object_reference's vref, vm_object_vndeallocate's
vrele).  When the file has no descriptor open (the spec's ``"closed"``), the
mapping that goes last drops the vnode's last use reference, and vrele
inactivates the vnode: VOP_INACTIVE under the vnode lock, where today's
vinactive starts an asynchronous clean of a might-be-dirty object ("modified
pages are converted into the vnode's dirty buffers").

The vnode lock comes before the map lock (read(2) and write(2) fault on their
buffers holding it), so no one may inactivate a vnode holding a map lock.
vm_map_delete therefore queues the deleted entries on the thread
(``td_map_def_user``) and vm_map_unlock deallocates them after the unlock
(vm_map_process_deferred; kib, cfa892b5).  Here the kernel queues the vnode
(``Kernel.deferred``, by ``release_object``) and the system call processes its
cpu's queue once it holds no map lock (after it returns into the syscall
layer).  The lock-order rule reports an inactivation under a map lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator.kern.events import Inactive

if TYPE_CHECKING:
    from emulator.kern.kernel import Kernel
    from emulator.kern.object import VmObject


async def process_deferred(k: Kernel) -> None:
    """vm_map_process_deferred: inactivate the vnodes whose last use reference the
    running cpu dropped, in the order it dropped them."""
    me = k.curcpu()
    mine = [obj for aid, obj in k.deferred if aid == me]
    if not mine:
        return
    k.deferred = [(aid, obj) for aid, obj in k.deferred if aid != me]
    for obj in mine:
        await vinactive(k, obj)


async def vinactive(k: Kernel, obj: VmObject) -> None:
    """vrele's VOP_INACTIVE: under the vnode lock, an asynchronous clean of the whole
    object if it might be dirty (vm_object_page_clean(obj, 0, 0, 0))."""
    from emulator.kern.daemons import object_cleaner

    vnode = obj.vnode
    assert vnode is not None
    k.emit(Inactive(obj.name))
    await vnode.lock()
    if obj.might_be_dirty():
        await obj.lock.lock()
        await object_cleaner(k).page_clean(obj, 0, obj.size, False)
        await obj.lock.unlock()
    await vnode.unlock()
