"""Which time-zone names a roadmap may declare (docs/format.md, ``timezone``).

A zone is read by two sets of rules: polars' (the engine) and Python's ``zoneinfo`` (the
scalar evaluator, ``explain``, the literals of :mod:`healthrules.inputs`). A name is accepted
only when both read it as the same zone: a name of the time-zone database that ``zoneinfo``
loads, other than the files that are not zones (``localtime``, ``posixrules``, ``Factory``,
the ``posix/`` and ``right/`` copies, which polars does not read). A fixed offset written as
an offset (``+05:30``, ``UTC+5``, ``-03:00``) is not a zone name: polars reads some of them
(``-03:00`` becomes ``Etc/GMT+3``), ``zoneinfo`` none, so the paths would part; the
problem names the ``Etc/GMT`` zone to write for whole hours. This module imports no polars
(the loader checks roadmaps without it); the engine checks that polars reads the zone when
it builds the evaluation clock (:func:`healthrules.inputs.zone_rules_from`).
"""

from __future__ import annotations

import functools
import re
import zoneinfo

_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
_OFFSET = re.compile(r"^\s*(?:UTC|GMT|Z)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?\s*$", re.IGNORECASE)


def database_problem(name: str) -> tuple[str, str] | None:
    """Why ``zoneinfo`` cannot read ``name`` on this machine because it finds no time-zone
    database at all (message, hint), or None when it has one (or reads ``name``).

    docs/semantics.md, "Time": ``zoneinfo`` reads the system's database (the folders of
    ``zoneinfo.TZPATH``, set by ``PYTHONTZPATH``), else the ``tzdata`` package. Slim
    containers and Windows have no system database; without ``tzdata`` no name loads, not
    even ``UTC``, and a valid name must not be refused as unknown.
    """
    if _loads(name) or _loads("UTC"):
        return None
    folders = ", ".join(zoneinfo.TZPATH) or "none"
    return (f"no time-zone database: Python's zoneinfo finds none on this machine (folders "
            f"searched: {folders}; no tzdata package), so it cannot read time zone {name!r}",
            "install one: `pip install tzdata` (any system, Windows included), or the "
            "system's package (`apt-get install tzdata`, `apk add tzdata`, `dnf install "
            "tzdata`), or point PYTHONTZPATH at the folder that holds it")


@functools.lru_cache(maxsize=256)
def zone_problem(name: str) -> tuple[str, str] | None:
    """Why ``name`` is not a zone both the engine and ``zoneinfo`` read (message, hint), or
    None when it is one."""
    known = _loads(name)
    if known and name not in _NOT_ZONES and not name.startswith(("posix/", "right/")):
        return None  # GMT+0 and the like are names of the database, read alike by both
    offset = _OFFSET.match(name)
    if offset is not None:
        sign, hours, minutes = offset.group(1), int(offset.group(2)), int(offset.group(3) or 0)
        message = (f"time zone {name!r} is an offset, not a zone name: the engine and "
                   "explain read zones from the time-zone database")
        if minutes == 0 and hours <= 14:
            etc = "UTC" if hours == 0 else f"Etc/GMT{'-' if sign == '+' else '+'}{hours}"
            return message, (f"did you mean {etc!r}? (the Etc/GMT zones count the other way: "
                             "Etc/GMT-5 is 5 hours ahead of UTC)")
        return message, ("no zone of the database is a fixed offset of hours and minutes: "
                         "declare the zone of the place whose clock the timestamps follow "
                         "(e.g. Asia/Kolkata for +05:30), or convert the timestamps to UTC "
                         "and declare UTC")
    message = f"unknown time zone {name!r}"
    if known:
        message = f"{name!r} is a file of the time-zone database, not a zone the engine reads"
    return message, _suggest(name)


def _loads(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _suggest(name: str) -> str:
    """A did-you-mean over the database's zone names (read only on this error path)."""
    import difflib

    names = sorted(zoneinfo.available_timezones() - _NOT_ZONES)
    if name.startswith(("posix/", "right/")):  # the same zone (right/: with leap seconds)
        name = name.split("/", 1)[1]
    folded = {n.casefold(): n for n in names}
    tail = name.rsplit("/", 1)[-1].casefold().replace(" ", "_")
    got = folded.get(name.casefold().replace(" ", "_")) or next(
        (n for n in names if n.rsplit("/", 1)[-1].casefold() == tail), None)
    if got is None:
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
        got = close[0] if close else None
    if got is not None:
        return f"did you mean {got!r}?"
    return "use a name of the time-zone database, e.g. UTC, Europe/Berlin, America/New_York"
