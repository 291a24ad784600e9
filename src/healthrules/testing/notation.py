"""The compact event notation of test files: one line of text describes one or many usage events.

A line names an event and, in any order, how many, when (relative to the case's ``as_of``),
by whom and with which values::

    login x3/day for 20d by u1          # 60 logins by u1: 3 on each of the last 20 days
    nps_response value=9 at -3d by u2   # one event, three days before as_of, at 12:00
    feature_x_used x5 at -2d            # five events two days before as_of
    seat_activated by u1..u8 at -40d    # one event for each of u1, u2, ..., u8

Grammar (tokens are separated by spaces; keywords are lower case)::

    line    := EVENT clause*
    clause  := count | "at" WHEN | "for" SPAN | "from" WHEN "to" WHEN | "by" USERS | COL "=" VALUE
    count   := "x" N | "x" N "/day" | "x" N "/week"
    WHEN    := OFFSET | OFFSET "@" HH:MM | DATE | DATE "@" HH:MM | DATE "T" HH:MM[:SS]
    OFFSET  := ("+" | "-")? N ("d" | "w" | "h" | "m")      e.g. -3d, 0d, -2w, -5h, +1d, -30m
    SPAN    := N ("d" | "w")                                e.g. 20d, 4w
    USERS   := USER ("," USER)* | PREFIX N ".." PREFIX M   e.g. u1 / u1,u2 / u1..u8
    VALUE   := a number or ``null``

Meaning:

- **Day offsets** (``d``, ``w``) name a calendar day relative to the ``as_of`` date
  (``0d`` is the ``as_of`` day itself, ``-1d`` the day before); the event is at 12:00 that day,
  or at ``@HH:MM``. **Hour and minute offsets** (``h``, ``m``) are relative to the evaluation
  instant (the midnight that ends a date ``as_of``, or a datetime ``as_of`` itself):
  ``at -1h`` is 23:00 on the ``as_of`` day. Absolute dates and times are also accepted.
  Positive offsets put events after ``as_of`` (they must not count).
- ``at WHEN`` places the events at one instant; without any time clause the line means
  ``at 0d``. ``for 20d`` is the range of the 20 days that end on the ``as_of`` day
  (``from -19d to 0d``); ``from A to B`` covers whole days, both ends included.
- ``xN`` is N events in all; over a range they are spread evenly over its days
  (event *k* on day ``floor(k * days / N)``). ``xN/day`` puts N events on every day of the
  range, ``xN/week`` N events in every block of 7 days from its first day (spread evenly
  inside the block; events that would fall after the range's last day are dropped).
  A range without a count means ``x1/day``. Events on the same day are one minute apart,
  from 12:00 (or ``@HH:MM``).
- ``by`` gives the user; with several users the whole pattern is repeated for each user.
  Without ``by`` the user is null.
- ``COL=VALUE`` sets a numeric value column declared in ``data.events.values``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DEFAULT_TIME",
    "Anchor",
    "EventLine",
    "NotationError",
    "When",
    "expand",
    "parse_line",
    "parse_offset",
]

DEFAULT_TIME = dt.time(12, 0)
"""The time of day of an event placed on a day without ``@HH:MM``."""

MAX_EVENTS_PER_LINE = 100_000
"""The most events one line may expand to (a guard against typos such as ``x1000/day``)."""

_KEYWORDS = ("at", "for", "from", "to", "by")
_EVENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:\-]*$")
_COUNT = re.compile(r"^x(\d+)(?:/(day|week|d|w))?$")
_OFFSET = re.compile(r"^([+-]?)(\d+)([dwhm])(?:@(\d{1,2}):(\d{2}))?$")
_SPAN = re.compile(r"^(\d+)([dw])$")
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:@(\d{1,2}):(\d{2}))?$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?$")
_USER = re.compile(r"^[A-Za-z0-9_.@\-]+$")
_USER_RANGE = re.compile(r"^([A-Za-z_.@\-]*?)(\d+)\.\.([A-Za-z_.@\-]*?)(\d+)$")
_ASSIGN = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)=(.*)$")


class NotationError(ValueError):
    """A problem in one line of event notation, at a 1-based column of the line.

    Attributes
    ----------
    code
        A stable id: ``notation_syntax``, ``notation_unknown_column`` or ``notation_too_many``.
    message
        What is wrong.
    column
        Where in the line (1-based).
    hint
        How to fix it, when known.
    """

    def __init__(self, message: str, column: int = 1, *, hint: str | None = None,
                 code: str = "notation_syntax") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.column = column
        self.hint = hint


@dataclass(frozen=True, slots=True)
class When:
    """A point in time of the notation, before it is resolved against an ``as_of``.

    ``kind`` is ``day`` (``days`` from the ``as_of`` date, at ``time``), ``instant``
    (``delta`` from the evaluation instant) or ``absolute`` (``at``).
    """

    kind: Literal["day", "instant", "absolute"]
    days: int = 0
    time: dt.time | None = None
    delta: dt.timedelta = dt.timedelta(0)
    at: dt.datetime | None = None

    @property
    def whole_day(self) -> bool:
        """True when this names a calendar day without a time of day."""
        return (self.kind == "day" and self.time is None) or (
            self.kind == "absolute" and self.time is None and self.at is not None
            and self.at.time() == dt.time(0)
        )


@dataclass(frozen=True, slots=True)
class Anchor:
    """What the notation is relative to: the ``as_of`` date and the evaluation instant.

    Both are naive wall times in the events' time zone.
    """

    as_of: dt.date
    end: dt.datetime

    @classmethod
    def of(cls, as_of: dt.date | dt.datetime) -> Anchor:
        """The anchor of a date (its end is the next midnight) or of a naive datetime."""
        if isinstance(as_of, dt.datetime):
            return cls(as_of=as_of.date(), end=as_of.replace(tzinfo=None))
        return cls(as_of=as_of, end=dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time()))

    def day(self, when: When) -> dt.date:
        """The calendar day of ``when``."""
        return self.instant(when).date()

    def instant(self, when: When, time: dt.time | None = None) -> dt.datetime:
        """The wall-clock instant of ``when``."""
        if when.kind == "instant":
            return self.end + when.delta
        if when.kind == "absolute":
            assert when.at is not None
            if when.time is None:
                return dt.datetime.combine(when.at.date(), time or DEFAULT_TIME)
            return when.at
        day = self.as_of + dt.timedelta(days=when.days)
        return dt.datetime.combine(day, when.time or time or DEFAULT_TIME)


@dataclass(frozen=True, slots=True)
class EventLine:
    """One parsed line of event notation."""

    text: str
    event: str
    count: int | None = None
    per: Literal["total", "day", "week"] = "total"
    at: When | None = None
    start: When | None = None
    stop: When | None = None
    users: tuple[str | None, ...] = (None,)
    values: Mapping[str, float | int | None] = field(default_factory=dict)
    value_columns: Mapping[str, int] = field(default_factory=dict)

    def events(self, anchor: Anchor) -> Iterator[tuple[dt.datetime, str | None]]:
        """Yield (timestamp, user) for every event of this line."""
        return expand(self, anchor)


@dataclass(slots=True)
class _Tok:
    text: str
    column: int


def _tokens(text: str) -> list[_Tok]:
    return [_Tok(m.group(0), m.start() + 1) for m in re.finditer(r"\S+", text)]


def parse_offset(text: str) -> When | None:
    """Parse an offset (``-3d``, ``+2w``, ``-5h``, ``-3d@09:30``); None if it is not one."""
    m = _OFFSET.match(text)
    if m is None:
        return None
    sign = -1 if m.group(1) == "-" else 1
    n = int(m.group(2)) * sign
    unit = m.group(3)
    time = None
    if m.group(4) is not None:
        hh, mm = int(m.group(4)), int(m.group(5))
        if hh > 23 or mm > 59 or unit in "hm":
            return None
        time = dt.time(hh, mm)
    if unit == "d":
        return When("day", days=n, time=time)
    if unit == "w":
        return When("day", days=7 * n, time=time)
    if unit == "h":
        return When("instant", delta=dt.timedelta(hours=n))
    return When("instant", delta=dt.timedelta(minutes=n))


def _when(tok: _Tok, what: str) -> When:
    off = parse_offset(tok.text)
    if off is not None:
        return off
    m = _DATE.match(tok.text)
    try:
        if m is not None:
            day = dt.date.fromisoformat(m.group(1))
            time = None
            if m.group(2) is not None:
                time = dt.time(int(m.group(2)), int(m.group(3)))
            return When("absolute", at=dt.datetime.combine(day, time or dt.time()), time=time)
        if _DATETIME.match(tok.text):
            at = dt.datetime.fromisoformat(tok.text.replace(" ", "T"))
            return When("absolute", at=at, time=at.time())
    except ValueError:
        raise NotationError(f"{tok.text!r} is not a valid date or time", tok.column) from None
    raise NotationError(
        f"{what} expects a time like -3d, 0d, -2w, -5h, -3d@09:30 or 2026-06-01, "
        f"got {tok.text!r}", tok.column)


def _users(tok: _Tok) -> tuple[str | None, ...]:
    m = _USER_RANGE.match(tok.text)
    if m is not None:
        p1, a, p2, b = m.group(1), m.group(2), m.group(3), m.group(4)
        if p2 and p2 != p1:
            raise NotationError(f"a user range needs one prefix on both ends, like u1..u8; got "
                                f"{tok.text!r}", tok.column)
        lo, hi = int(a), int(b)
        if hi < lo:
            raise NotationError(f"the user range {tok.text!r} is empty (it counts down)",
                                tok.column)
        if hi - lo >= 10_000:
            raise NotationError(f"the user range {tok.text!r} has more than 10000 users",
                                tok.column)
        width = len(a) if a.startswith("0") else 0
        return tuple(f"{p1}{str(i).zfill(width)}" for i in range(lo, hi + 1))
    names = tok.text.split(",")
    for name in names:
        if not name or not _USER.match(name):
            raise NotationError(f"{name!r} is not a user name (letters, digits, _ . @ -)",
                                tok.column, hint="several users: by u1,u2,u3 or by u1..u3")
    return tuple(names)


def _number(text: str) -> float | int | None:
    if text in ("null", "None", "~"):
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_line(text: str) -> EventLine:
    """Parse one line of event notation.

    Parameters
    ----------
    text
        The line, e.g. ``"login x3/day for 20d by u1"``.

    Returns
    -------
    EventLine

    Raises
    ------
    NotationError
        With the column of the offending token and, when possible, a hint.

    Examples
    --------
    >>> line = parse_line("login x3/day for 20d by u1")
    >>> line.event, line.count, line.per, line.users
    ('login', 3, 'day', ('u1',))
    >>> parse_line("login x3 at -2d at -1d")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    healthrules.testing.notation.NotationError: the time is given twice: ...
    """
    toks = _tokens(text)
    if not toks:
        raise NotationError("the event line is empty", 1,
                            hint='write e.g. "login x3/day for 20d by u1"')
    head = toks[0]
    if head.text in _KEYWORDS or _COUNT.match(head.text) or "=" in head.text:
        raise NotationError(f"a line starts with the event name, got {head.text!r}", head.column,
                            hint='e.g. "login x3 at -2d"')
    if not _EVENT.match(head.text):
        raise NotationError(f"{head.text!r} is not an event name (letters, digits, _ . : -)",
                            head.column)
    count: int | None = None
    per: Literal["total", "day", "week"] = "total"
    at: When | None = None
    start: When | None = None
    stop: When | None = None
    users: tuple[str | None, ...] | None = None
    values: dict[str, float | int | None] = {}
    value_cols: dict[str, int] = {}
    time_tok: _Tok | None = None
    i = 1

    def arg(kw: _Tok) -> _Tok:
        nonlocal i
        if i + 1 >= len(toks):
            raise NotationError(f"{kw.text!r} needs a value after it", kw.column + len(kw.text))
        i += 1
        return toks[i]

    def set_time(tok: _Tok) -> None:
        nonlocal time_tok
        if time_tok is not None:
            raise NotationError("the time is given twice: use one of at, for, from ... to",
                                tok.column)
        time_tok = tok

    while i < len(toks):
        tok = toks[i]
        word = tok.text
        if (m := _COUNT.match(word)) is not None:
            if count is not None:
                raise NotationError("the count is given twice", tok.column)
            count = int(m.group(1))
            if count < 1:
                raise NotationError("a count must be at least 1 (x1, x2, ...)", tok.column)
            unit = m.group(2)
            per = "total" if unit is None else ("day" if unit in ("day", "d") else "week")
        elif word == "at":
            set_time(tok)
            at = _when(arg(tok), "at")
        elif word == "for":
            set_time(tok)
            span_tok = arg(tok)
            sm = _SPAN.match(span_tok.text)
            if sm is None:
                raise NotationError(f"for expects a number of days or weeks like 20d or 4w, got "
                                    f"{span_tok.text!r}", span_tok.column)
            n = int(sm.group(1)) * (7 if sm.group(2) == "w" else 1)
            if n < 1:
                raise NotationError("for needs at least one day", span_tok.column)
            start, stop = When("day", days=1 - n), When("day", days=0)
        elif word == "from":
            set_time(tok)
            start = _when(arg(tok), "from")
            if i + 1 >= len(toks) or toks[i + 1].text != "to":
                raise NotationError("from needs a 'to': from -30d to -10d",
                                    toks[i].column + len(toks[i].text))
            i += 1
            stop = _when(arg(toks[i]), "to")
            for end_when, end_tok in ((start, toks[i - 2]), (stop, toks[i])):
                if not end_when.whole_day:
                    raise NotationError("from ... to covers whole days; drop the time of day "
                                        "(use at for one instant)", end_tok.column)
        elif word == "to":
            raise NotationError("'to' without 'from': write from -30d to -10d", tok.column)
        elif word == "by":
            if users is not None:
                raise NotationError("the users are given twice (by u1,u2 gives several)",
                                    tok.column)
            users = _users(arg(tok))
        elif (m := _ASSIGN.match(word)) is not None:
            name, raw = m.group(1), m.group(2)
            if name in values:
                raise NotationError(f"{name} is given twice", tok.column)
            try:
                values[name] = _number(raw)
            except ValueError:
                raise NotationError(f"{name}={raw} is not a number (or null)",
                                    tok.column + len(name) + 1) from None
            value_cols[name] = tok.column
        else:
            hint = None
            if word.startswith("x") and word[1:2].isdigit():
                hint = "counts are x3, x3/day or x3/week"
            elif re.match(r"^[+-]?\d+[dwhm]", word) or _DATE.match(word):
                hint = f"put 'at' before a time: at {word}"
            else:
                from healthrules.expressions import did_you_mean

                hint = did_you_mean(word, list(_KEYWORDS), ignore_case=False)
            raise NotationError(f"unexpected {word!r}", tok.column, hint=hint)
        i += 1
    if per != "total" and start is None:
        column = time_tok.column if time_tok is not None else len(text) + 1
        raise NotationError(f"x{count}/{per} needs a range of days: for 20d or from -30d to "
                            "-1d", column)
    if start is not None and stop is not None and count is None:
        count, per = 1, "day"
    line = EventLine(
        text=text, event=head.text, count=count, per=per, at=at, start=start, stop=stop,
        users=users if users is not None else (None,), values=values, value_columns=value_cols,
    )
    total = _size(line)
    if total > MAX_EVENTS_PER_LINE:
        raise NotationError(f"this line makes {total} events; at most {MAX_EVENTS_PER_LINE}",
                            1, code="notation_too_many")
    return line


def resolve_problem(line: EventLine, anchor: Anchor) -> str | None:
    """Why ``line`` cannot be resolved against ``anchor`` (None: it can): an instant beyond
    the dates a timestamp holds (years 1 to 9999, ``at -999999d``), or a range that ends
    before it starts (``from -1d to -3d``). A test file's checks call it with the case's
    ``as_of``, so :func:`expand` then yields every event."""
    try:
        for when in (line.at, line.start, line.stop):
            if when is not None:
                anchor.instant(when)
        if line.start is None:
            base = anchor.instant(line.at or When("day"))
            base + dt.timedelta(minutes=(line.count or 1) - 1)  # the last event's minute
            return None
        first, days = _range_days(line, anchor)
        dt.datetime.combine(first + dt.timedelta(days=max(days - 1, 0)), DEFAULT_TIME
                            ) + dt.timedelta(minutes=line.count or 1)
    except OverflowError:
        return "a time of this line is beyond the dates a timestamp holds (years 1 to 9999)"
    if days < 1:
        return "the range ends before it starts (from must be before to)"
    return None


def _range_days(line: EventLine, anchor: Anchor) -> tuple[dt.date, int]:
    assert line.start is not None and line.stop is not None
    first, last = anchor.day(line.start), anchor.day(line.stop)
    return first, (last - first).days + 1


def _size(line: EventLine) -> int:
    """The number of events of a line (independent of the anchor for relative ranges)."""
    n = line.count or 1
    if line.start is None:
        return n * len(line.users)
    probe = Anchor.of(dt.date(2000, 1, 1))
    try:
        _, days = _range_days(line, probe)
    except OverflowError:  # beyond the years a date holds: refused with the case's as_of
        return n * len(line.users)
    days = max(days, 0)
    if line.per == "day":
        n *= days
    elif line.per == "week":
        n *= -(-days // 7)
    return n * len(line.users)


def expand(line: EventLine, anchor: Anchor) -> Iterator[tuple[dt.datetime, str | None]]:
    """Yield (timestamp, user) for every event of ``line``, resolved against ``anchor``.

    Raises
    ------
    NotationError
        When a range ends before it starts.

    Examples
    --------
    >>> import datetime as dt
    >>> a = Anchor.of(dt.date(2026, 6, 30))
    >>> [ts.isoformat() for ts, _ in expand(parse_line("login x2 at -1d"), a)]
    ['2026-06-29T12:00:00', '2026-06-29T12:01:00']
    >>> [ts.date().isoformat() for ts, _ in expand(parse_line("login x2/week for 2w"), a)]
    ['2026-06-17', '2026-06-20', '2026-06-24', '2026-06-27']
    """
    n = line.count or 1
    if line.start is None:
        base = anchor.instant(line.at or When("day"))
        for user in line.users:
            for k in range(n):
                yield base + dt.timedelta(minutes=k), user
        return
    first, days = _range_days(line, anchor)
    if days < 1:
        raise NotationError("the range ends before it starts (from must be before to)", 1)
    time = DEFAULT_TIME
    per_day: dict[int, int] = {}
    if line.per == "day":
        per_day = dict.fromkeys(range(days), n)
    elif line.per == "week":
        for block in range(0, days, 7):
            for k in range(n):
                d = block + (k * 7) // n
                if d < days:
                    per_day[d] = per_day.get(d, 0) + 1
    else:
        for k in range(n):
            d = (k * days) // n
            per_day[d] = per_day.get(d, 0) + 1
    for user in line.users:
        for d in sorted(per_day):
            base = dt.datetime.combine(first + dt.timedelta(days=d), time)
            for k in range(per_day[d]):
                yield base + dt.timedelta(minutes=k), user
