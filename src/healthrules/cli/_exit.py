"""The exit-code table of every healthrules command, in one place.

Commands return :class:`Exit` for their verdict (``OK`` or ``NOT_CLEAN``) and raise for
everything else; :func:`healthrules.cli.main` is the only place that turns an exception into
an exit code:

- :class:`UsageError` (and argparse's own errors): 2, the command was called wrongly;
- :class:`~healthrules.errors.HealthRulesError` (an invalid roadmap, input data that does not
  match the contract, a corrupted or foreign state store, stale data) and :class:`OSError`
  (a file that cannot be read or written while the command runs): 1;
- anything else: 3, a bug in healthrules.
"""

from __future__ import annotations

import enum

__all__ = ["EXIT_CODES_HELP", "Exit", "UsageError"]


class Exit(enum.IntEnum):
    """Process exit codes."""

    OK = 0
    """Success: everything checked is clean."""
    NOT_CLEAN = 1
    """What was checked is not clean: invalid roadmap, input frames that do not match the data
    contract, failed rule tests, lint findings at or above the failing severity, a state store
    that is corrupted or refuses the run, stale input data, a file that cannot be written."""
    USAGE = 2
    """Usage error: unknown option, bad argument value, no such file, unusable output path."""
    INTERNAL = 3
    """Internal error: a bug in healthrules (rerun with --debug for the traceback)."""


class UsageError(Exception):
    """A command was called wrongly (missing file, bad date, unusable output path): exit 2.

    Parameters
    ----------
    message
        One line saying what is wrong.
    hint
        What to do instead (optional).
    usage
        The usage line of the command, printed before the message (argparse errors).
    """

    def __init__(self, message: str, hint: str | None = None, *,
                 usage: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
        self.usage = usage


EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  not clean: invalid roadmap, input data that does not match the data contract,
     failed rule tests, lint findings at or above the failing severity, a state store
     that is corrupted or refuses the run, stale data, a file that cannot be written
  2  usage error (unknown option, bad value, missing file, unusable output path)
  3  internal error: a bug in healthrules (rerun with --debug to see the traceback)
"""
