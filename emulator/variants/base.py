"""The code under test, as the harness takes it: a clean routine and optional other paths."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emulator.check import Rule
from emulator.kern.fault import Fault
from emulator.kern.kern_return import KernReturn
from emulator.kern.syscalls import munmap_path


@dataclass
class Variant:
    """The code under test: a clean routine, and optionally fault/munmap paths and
    msync's errno switch."""

    name: str
    clean: Callable[..., Any]
    fault: type[Fault] = Fault
    munmap: Callable[..., Any] = munmap_path
    # msync(2)'s errno per failing clean code; None: the profile's table.
    msync_errno: Mapping[KernReturn, str] | None = None
    doc: str = ""  # one line: what is wrong with it (mutants)
    profile: str | None = None  # the profile it is meant for (None: any)
    catches: tuple[Rule, ...] = ()  # rules expected to catch it (mutants)
