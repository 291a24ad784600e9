"""The exit-code table of every healthrules command, in one place."""

from __future__ import annotations

import enum

__all__ = ["EXIT_CODES_HELP", "Exit", "UsageError"]


class Exit(enum.IntEnum):
    """Process exit codes."""

    OK = 0
    """Success: everything checked is clean."""
    NOT_CLEAN = 1
    """What was checked is not clean: invalid roadmap, input frames that do not match the data
    contract, failed rule tests, lint findings at or above the failing severity."""
    USAGE = 2
    """Usage error: unknown option, missing argument, no such file."""
    INTERNAL = 3
    """Internal error: a bug in healthrules (rerun with --debug for the traceback)."""


class UsageError(Exception):
    """A command was called wrongly (missing file, bad date): one line, exit code 2."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  not clean: invalid roadmap, input data that does not match the data contract,
     failed rule tests, lint findings at or above the failing severity
  2  usage error (unknown option, missing argument or file)
  3  internal error: a bug in healthrules (rerun with --debug to see the traceback)
"""
