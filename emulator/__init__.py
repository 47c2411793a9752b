"""vmemu: a deterministic concurrency emulator of FreeBSD's vm_map_clean.

Reading order: ``kern`` (the kernel model: param, kern_return, locks, page,
pmap, object, pager, map, fault, clean, syscalls, kernel), ``sched`` (the
controlled scheduler, strategies, watchdog), ``machine`` (building and running
executions), ``check`` (the checkers), ``variants`` (reference and mutants),
``trace`` (recording, replay, shrinking, showing), ``cli``.  ``api`` gathers
what a user's clean variant may use.
"""

__version__ = "0.1.0"
