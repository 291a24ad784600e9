"""Argument types and output-path checks shared by the commands.

The types are argparse ``type=`` callables: a bad value becomes a usage error (exit 2) with
the option named, before any work starts. :func:`output_file` and :func:`output_dir` check
that an output can be written *before* a command does its work (and, for ``run``, before
it commits), so a bad path never costs a run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import stat
from pathlib import Path

from healthrules.cli._exit import UsageError

__all__ = [
    "FIRST_DATE",
    "LAST_DATE",
    "as_of",
    "count",
    "date",
    "days",
    "output_dir",
    "output_file",
    "positive_int",
]

FIRST_DATE = dt.date(1900, 1, 1)
"""The earliest date the command line accepts (windows reach far back from it)."""
LAST_DATE = dt.date(2999, 12, 31)
"""The latest date the command line accepts."""

_DAYS = re.compile(r"^\s*(\d+)\s*([dw]?)\s*$")


def _in_range(day: dt.date, text: str) -> None:
    if not FIRST_DATE <= day <= LAST_DATE:
        raise argparse.ArgumentTypeError(
            f"{text!r} is out of range: dates from {FIRST_DATE} to {LAST_DATE}")


def date(text: str) -> dt.date:
    """A calendar date ``YYYY-MM-DD`` (run dates, backtest ranges, expiries)."""
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        hint = " (whole days only: drop the time)" if "T" in text or ":" in text else ""
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date YYYY-MM-DD{hint}") from None
    _in_range(day, text)
    return day


def as_of(text: str) -> str:
    """A date ``YYYY-MM-DD`` or an ISO datetime (evaluate, explain); returned as given."""
    value = text.strip()
    try:
        if "T" in value or " " in value:
            day = dt.datetime.fromisoformat(value).date()
        else:
            day = dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (YYYY-MM-DD) or an ISO datetime") from None
    _in_range(day, text)
    return value


def days(text: str) -> int:
    """A positive duration: ``7``, ``7d`` or ``1w``, in days."""
    m = _DAYS.match(text)
    if m is None or int(m.group(1)) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration of at least one day (like 1d, 7d or 1w)")
    n = int(m.group(1)) * (7 if m.group(2) == "w" else 1)
    if n > 36600:
        raise argparse.ArgumentTypeError(f"{text!r} is longer than 100 years")
    return n


def count(text: str) -> int:
    """A whole number, zero or more."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative; give 0 or more")
    return n


def positive_int(text: str) -> int:
    """A whole number, one or more."""
    n = count(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return n


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and not p.is_symlink():
        if p.parent == p:
            break
        p = p.parent
    return p


def _writable_dir(folder: Path, option: str, target: Path) -> None:
    if not folder.is_dir():
        raise UsageError(f"{option} {target}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {target}: the folder {folder} is not writable")


def output_file(path: str | os.PathLike[str], option: str) -> Path:
    """Check that ``path`` can be written as a regular file; return it.

    A missing parent folder is fine (it is created), as long as the nearest existing one is a
    writable folder. An existing target must be a regular, writable file (never a folder or a
    device: outputs are replaced by a rename).

    Raises
    ------
    UsageError
        If the path cannot be written.
    """
    target = Path(path)
    if target.exists():
        mode = target.stat().st_mode
        if stat.S_ISDIR(mode):
            raise UsageError(f"{option} {target} is a folder; give a file name")
        if not stat.S_ISREG(mode):
            raise UsageError(f"{option} {target} is not a regular file (a device or a pipe); "
                             "give a file name", hint="use a path in a writable folder")
        if not os.access(target, os.W_OK):
            raise UsageError(f"{option} {target} is read-only")
    _writable_dir(_nearest_existing(target.parent), option, target)
    return target


def output_dir(path: str | os.PathLike[str], option: str) -> Path:
    """Check that ``path`` is (or can be created as) a writable folder; return it.

    Raises
    ------
    UsageError
        If it is an existing file, lies under a file, or is not writable.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise UsageError(f"{option} {target} is an existing file, not a folder",
                         hint="give a folder (it is created if missing)")
    _writable_dir(_nearest_existing(target), option, target)
    return target
