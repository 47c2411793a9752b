"""The exception tree: one root, ``EmulatorError``.

Expected kernel outcomes are values (``KernReturn``, errno names); broken
contracts raise.  Each error carries an exit code for the command line.
"""

from __future__ import annotations

import os


class EmulatorError(Exception):
    """Root of every error vmemu raises on purpose."""

    exit_code = 70  # EX_SOFTWARE: an internal error


class BadInput(EmulatorError):
    """Bad user input: a spec, a parameter, a trace, a command-line value.

    The message is one short lower-case line naming the offending
    ``name=value`` and, when there is one, the fix.
    """

    exit_code = 2


class ReplayDiverged(EmulatorError):
    """A replayed run differs from its recording."""

    exit_code = 3


class SearchExhausted(EmulatorError):
    """An exhaustive strategy was asked for an execution after its space was covered.

    A campaign stops at ``Strategy.exhausted``; one that asks again gets this
    at the first decision and ends its search there.  Reaching the command
    line, it would be a bug in vmemu.
    """

    exit_code = 70


class InternalError(EmulatorError):
    """vmemu itself broke an invariant (a bug in vmemu, not in the variant)."""

    exit_code = 70


def check_output_path(path: str, option: str) -> None:
    """Refuse, before anything is written, an output path that cannot be a file."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise BadInput(f"{option} {path}: no such directory: {parent}")
    if os.path.isdir(path):
        raise BadInput(f"{option} {path}: is a directory")
