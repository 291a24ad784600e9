"""Check event and account frames against a plan's data contract, and bring them to its types."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from healthrules.aggregates import finite_test, finite_value
from healthrules.compiler import Plan
from healthrules.errors import Code, EvaluationError, InputDataError, Issue, Location
from healthrules.query_flags import OPTIMISED
from healthrules.roadmap import AggregateIndicator

if TYPE_CHECKING:
    from healthrules.sources import Source

__all__ = [
    "NOT_FINITE",
    "VALID_FROM",
    "VALID_TO",
    "AccountsAt",
    "Clock",
    "FrameLike",
    "account_validity",
    "accounts_at",
    "check_accounts",
    "check_events_schema",
    "check_source_key",
    "clock_for",
    "event_inputs",
    "fixed_offset",
    "is_dated",
    "lazy",
    "read_event_exprs",
    "source_clock",
    "source_label",
    "text_filter_columns",
    "zoned_wall_time",
]

FrameLike = pl.DataFrame | pl.LazyFrame


def source_label(plan: Plan, source: str | None = None) -> str:
    """How problems name the frame of an event source: ``<events>`` for the one frame of a
    roadmap without named sources, ``<events:NAME>`` for a named source."""
    name = plan.default_source if source is None else source
    return f"<events:{name}>" if plan.named_sources else "<events>"


def _frame_words(plan: Plan, source: str) -> str:
    """``events frame`` or ``events frame 'tickets'`` (messages name the source)."""
    return f"events frame {source!r}" if plan.named_sources else "events frame"


def event_inputs(plan: Plan, events: Any) -> dict[str, Source | pl.LazyFrame]:
    """The events input of an evaluation as one input per event source of the plan.

    This is the one place where an events input is split per source: ``events`` is one
    input (the default source) or a mapping of source name to input. Every source the plan
    declares must be given, and no other. Each input is a polars frame or anything
    :func:`healthrules.sources.resolve` takes (a DuckDB relation, a source, an Arrow
    object), returned as :func:`healthrules.sources.source_of` makes it (a LazyFrame, or a
    :class:`~healthrules.sources.Source` that
    :func:`healthrules.engine.evaluator.events_frame` reads with that source's columns and
    read range pushed into its SQL).

    Raises
    ------
    InputDataError
        A source missing or unknown (with a did-you-mean).
    TypeError
        An input that is none of the inputs :func:`healthrules.sources.resolve` takes.
    """
    from healthrules.expressions import did_you_mean

    if isinstance(events, Mapping):
        given = dict(events)
    else:
        given = {plan.default_source: events}
    issues: list[Issue] = []
    declared = list(plan.sources)
    for name in given:
        if name not in plan.sources:
            issues.append(Issue(
                code=Code.UNKNOWN_SOURCE.value,
                location=Location(file="<events>", path=str(name)),
                message=f"unknown event source {name!r}; the roadmap declares "
                f"{', '.join(map(repr, declared))}",
                hint=did_you_mean(str(name), declared)))
    for name in declared:
        if name not in given:
            alone = not isinstance(events, Mapping)
            issues.append(Issue(
                code=Code.UNKNOWN_SOURCE.value,
                location=Location(file=source_label(plan, name)),
                message=f"no events frame for source {name!r}" + (
                    f" (a single frame is the default source {plan.default_source!r}; the "
                    f"roadmap reads {len(declared)} sources)" if alone else ""),
                hint="pass a dict of frames, e.g. events={"
                + ", ".join(f"{n!r}: ..." for n in declared) + "}"))
    if issues:
        raise InputDataError(issues)
    from healthrules.sources import source_of

    return {name: source_of(given[name], f"the events of source {name!r}"
                            if plan.named_sources else "events") for name in declared}


def lazy(frame: Any, what: str) -> pl.LazyFrame:
    """Return ``frame`` as a LazyFrame (DataFrame or LazyFrame accepted)."""
    if isinstance(frame, pl.LazyFrame):
        return frame
    if isinstance(frame, pl.DataFrame):
        return frame.lazy()
    raise TypeError(
        f"{what} must be a polars DataFrame or LazyFrame, got {type(frame).__name__}"
    )


def _datetime_lit(value: dt.datetime, time_unit: str, time_zone: str | None) -> pl.Expr:
    """A naive wall-clock datetime as a literal of a datetime dtype (see :func:`_zoned_lit`;
    ``fold`` is part of the key: naive datetimes compare equal whatever their fold)."""
    return _zoned_lit(value, value.fold, time_unit, time_zone)


_EPOCH = dt.datetime(1970, 1, 1)
_RULES_AGREE = (1900, 2099)
"""The years where polars' zone rules and zoneinfo's give the same offsets (polars' end
in 2099; ``tests/test_datetime_literals.py`` compares them)."""
_INT64 = range(-(2**63), 2**63)


def _ticks(naive_utc: dt.datetime, time_unit: str) -> int | None:
    """The instant ``naive_utc`` (a naive UTC datetime) as polars stores it in a datetime
    column of ``time_unit``: the ticks since the epoch (a millisecond rounded down, as
    polars' cast of a Python datetime to milliseconds), or None beyond Int64."""
    d = naive_utc - _EPOCH
    micros = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
    ticks = micros * 1000 if time_unit == "ns" else micros if time_unit == "us" else micros // 1000
    return ticks if ticks in _INT64 else None


def instant_lit(naive_utc: dt.datetime, time_unit: str, time_zone: str | None,
                 ) -> pl.Expr | None:
    """The instant ``naive_utc`` as a literal of ``Datetime(time_unit, time_zone)``, made
    from its ticks: an Int64 literal cast to the datetime dtype, which polars' optimizer
    folds into the datetime literal itself (the plan, and what is pushed down to a scan,
    are those of ``pl.lit(datetime, dtype)``). ``pl.lit`` of a Python datetime builds a
    Series and casts it (about 0.2 ms; a zoned one took a query more, about 0.4 ms), the
    cast about 0.03 ms; the events pass of a new date builds tens of them. None beyond
    Int64 (the caller keeps ``pl.lit``'s behaviour there)."""
    ticks = _ticks(naive_utc, time_unit)
    if ticks is None:
        return None
    return pl.lit(ticks, pl.Int64).cast(pl.Datetime(time_unit, time_zone))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=1024)
def _zoned_lit(value: dt.datetime, fold: int, time_unit: str, time_zone: str | None) -> pl.Expr:
    """A naive wall-clock datetime as a literal of a datetime dtype, built once per value
    (a service evaluating at the same date pays it once, not per call; expressions are
    immutable), from its ticks (:func:`instant_lit`).

    docs/semantics.md, "Time": a wall time that a daylight-saving change skips or repeats is
    read with the offset before the change (``fold=0``, as zoneinfo reads it), or after it for
    the second occurrence of a repeated time (``fold=1``: an aware ``as_of`` converted to the
    events' zone keeps it)."""
    if time_zone is None:
        got = instant_lit(value, time_unit, None)
        return pl.lit(value, dtype=pl.Datetime(time_unit)) if got is None else got  # type: ignore[arg-type]
    # the instant itself as the literal: a query pays about 20 us per `replace_time_zone`
    # node, and the events pass of a roadmap compares with tens of these
    try:
        instant = value.replace(tzinfo=ZoneInfo(time_zone), fold=fold).astimezone(dt.UTC)
    except (ZoneInfoNotFoundError, ValueError, OverflowError):  # left to polars, as before
        return zoned_wall_time(pl.lit(value, dtype=pl.Datetime(time_unit)),  # type: ignore[arg-type]
                               time_zone)
    if fixed_offset(time_zone) or _RULES_AGREE[0] <= instant.year <= _RULES_AGREE[1]:
        got = instant_lit(instant.replace(tzinfo=None), time_unit, time_zone)
        if got is not None:
            return got
    # beyond 2099, polars' zone rules have no daylight-saving changes where zoneinfo's
    # continue: the literal stays what it was (the wall time of zoneinfo's instant, zoned
    # by polars)
    utc = pl.lit(instant.replace(tzinfo=None), dtype=pl.Datetime(time_unit))  # type: ignore[arg-type]
    return pl.lit(pl.select(utc.dt.replace_time_zone("UTC").dt.convert_time_zone(time_zone))
                  .item(), dtype=pl.Datetime(time_unit, time_zone))  # type: ignore[arg-type]


ZONE_DATES = (dt.date(_RULES_AGREE[0], 1, 1), dt.date(_RULES_AGREE[1], 12, 31))
"""The dates an evaluation, a history date and a date or datetime attribute may take in a
zone with daylight-saving changes (docs/semantics.md, "Time"): polars' zone rules have no
changes after 2099 where zoneinfo's (the scalar evaluator's, explain's) go on, so beyond them
the engine and the scalar paths would read other offsets. The midnight that ends 2099-12-31
is still exact (no zone changes its offset in 2100 before March)."""


def zone_dates_issue(time_zone: str | None, day: dt.date, what: str, frame: str,
                     column: str | None = None) -> Issue | None:
    """The issue of a date outside :data:`ZONE_DATES` in a zone with daylight-saving changes,
    or before the first date from which the engine's rules of the zone and zoneinfo's agree
    (:func:`zone_rules_from`); None: within them, or a naive, UTC or fixed-offset zone."""
    if time_zone is None or fixed_offset(time_zone):
        return None
    code = Code.BAD_AS_OF if column is None else Code.VALUES_OUT_OF_RANGE
    if not ZONE_DATES[0] <= day <= ZONE_DATES[1]:
        return _issue(code, f"{what} is {day.isoformat()}, outside "
                      f"{ZONE_DATES[0].isoformat()} to {ZONE_DATES[1].isoformat()}, the dates "
                      f"where the engine's time-zone rules for {time_zone} are exact (they "
                      f"have no daylight-saving changes after {_RULES_AGREE[1]})", frame, column,
                      hint="evaluate within those dates, or use UTC or a fixed-offset zone")
    first = zone_rules_from(time_zone)
    if first is None:
        return Issue(code=Code.UNKNOWN_TIMEZONE.value, location=Location(
            file="<roadmap>", path="data.events.timezone"),
            message=f"the engine (polars) cannot read time zone {time_zone!r}, which this "
            "machine's time-zone database (zoneinfo, read by explain) holds",
            hint="declare a zone both read (UTC, or a region's zone such as Europe/Berlin), "
            "or update polars")
    if day >= first:
        return None
    return _issue(code, f"{what} is {day.isoformat()}, before {first.isoformat()}: before "
                  f"then this machine's time-zone database (zoneinfo, which explain and the "
                  f"scalar evaluator read) gives {time_zone} other offsets than the engine's "
                  "rules (polars'), so the two would place the same instant on other days "
                  "(the database merged some zones into others; some builds keep their older "
                  f"history). {time_zone} is exact from {first.isoformat()} to "
                  f"{ZONE_DATES[1].isoformat()}", frame, column,
                  hint=f"evaluate from {first.isoformat()} on, or use UTC or a fixed-offset "
                  "zone")


_SCAN = (dt.datetime(_RULES_AGREE[0], 1, 1), dt.datetime(_RULES_AGREE[1] + 1, 1, 1))
"""The UTC instants :func:`zone_rules_from` compares the two sets of rules over."""
_DAY_S = 86_400
_ZONEINFO_EVERY = 7  # zoneinfo is read every 7th day of the scan, and at polars' changes


def zone_rules_from(time_zone: str) -> dt.date | None:
    """The first date (of the zone's wall clock) from which polars' offsets of
    ``time_zone`` and zoneinfo's agree until the end of 2099 (1900-01-01 when they agree
    over 1900 to 2099); None when polars cannot read the zone. Once per zone and process.

    docs/semantics.md, "Time": some builds of the time-zone database that zoneinfo reads
    keep the older history of zones that recent releases merged into others (Amsterdam in
    1930: +00:19:32 for zoneinfo, +00:00 for polars, which reads Brussels' rules).

    polars' offsets are read at every UTC midnight of 1900 to 2099 (one vectorised query),
    and each change is placed to the second by bisection (17 queries over all the changes
    at once). zoneinfo's are read, one Python call each, at every 7th midnight, at each of
    polars' changes and the second before it: a change that the two place at other instants
    differs at one of those two, and a period where the offsets differ is seen unless
    zoneinfo alone holds it for less than a week (the database holds no such change). The
    first date is two days after the last instant found to differ (or the next point read
    after it): every wall time of that date and later is after it, whatever the offset.
    About 30 ms of CPU time, once per zone and process (docs/performance.md)."""
    got = _zone_scan(time_zone)
    return None if got is None else got[0]


def zone_agrees_from(time_zone: str) -> dt.datetime | None:
    """The UTC instant (naive) from which polars' offsets of ``time_zone`` and zoneinfo's
    agree until the end of 2099, as :func:`zone_rules_from` finds it: the first point it
    reads after the last one where they differ (1900-01-01 00:00 when they agree over the
    whole scan); an event at or after it has the same local time for both. Before the
    first date (two days later at least), so no wall time of that date precedes it. None
    when polars cannot read the zone."""
    got = _zone_scan(time_zone)
    return None if got is None else got[1]


@functools.lru_cache(maxsize=64)
def _zone_scan(time_zone: str) -> tuple[dt.date, dt.datetime] | None:
    """:func:`zone_rules_from`'s date and :func:`zone_agrees_from`'s instant."""
    try:
        info = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # left to polars, as before
        return ZONE_DATES[0], _SCAN[0]
    start, stop = ((t - _EPOCH).days * _DAY_S for t in _SCAN)
    days = pl.int_range(start, stop, _DAY_S, dtype=pl.Int64, eager=True)
    try:
        offsets = _polars_offsets(days, time_zone)
    except pl.exceptions.PolarsError:
        return None
    changed = (offsets.diff() != 0).arg_true()
    # the first second of each change, by bisection: one lazy query (17 eager rounds cost
    # about half as much again)
    lo, hi, off, mid = pl.col("lo"), pl.col("hi"), pl.col("off"), pl.col("mid")
    search = pl.LazyFrame({"lo": days.gather(changed - 1), "hi": days.gather(changed),
                           "off": offsets.gather(changed - 1)})
    for _ in range(_DAY_S.bit_length()):
        same = _offset_expr(mid, time_zone) == off
        search = search.with_columns(mid=(lo + hi) // 2).select(
            lo=pl.when(same).then(mid).otherwise(lo),
            hi=pl.when(same).then(hi).otherwise(mid), off=off)
    first = search.collect(optimizations=OPTIMISED).get_column("hi")
    points = pl.concat([days.gather_every(_ZONEINFO_EVERY), first, first - 1, days.tail(1)]
                       ).unique().sort()
    local = dt.datetime.fromtimestamp  # one call per point: the scan's own loop, not rows'
    zoneinfo_at = pl.Series([local(t, info).utcoffset() for t in points.to_list()],
                            dtype=pl.Duration("us")).dt.total_seconds()
    differ = (zoneinfo_at != _polars_offsets(points, time_zone)).fill_null(True).arg_true()
    if differ.is_empty():
        return ZONE_DATES[0], _SCAN[0]
    after = int(differ[-1]) + 1  # the next point read, or the end of the scan
    last = int(points[after]) if after < points.len() else stop
    agree = _EPOCH + dt.timedelta(seconds=last)
    return (agree + dt.timedelta(days=2)).date(), agree


def early_events_bounds(time_zone: str | None) -> tuple[dt.date, dt.datetime] | None:
    """For events in ``time_zone``: its first date (:func:`zone_rules_from`) and the UTC
    instant (naive) before which an event's local time may differ between the engine's rules
    and zoneinfo's (:func:`zone_agrees_from`); None in a naive, UTC or fixed-offset zone, or
    one polars cannot read (refused with the ``as_of``)."""
    if time_zone is None or fixed_offset(time_zone):
        return None
    first, agree = zone_rules_from(time_zone), zone_agrees_from(time_zone)
    return None if first is None or agree is None else (first, agree)


def _polars_offsets(seconds: pl.Series, time_zone: str) -> pl.Series:
    """polars' UTC offsets (seconds) of ``time_zone`` at UTC instants (seconds)."""
    return pl.select(_offset_expr(pl.lit(seconds), time_zone)).to_series()


def _offset_expr(seconds: pl.Expr, time_zone: str) -> pl.Expr:
    instants = (seconds * 1_000_000).cast(pl.Datetime("us", "UTC"))
    wall = instants.dt.convert_time_zone(time_zone).dt.replace_time_zone(None)
    return wall.cast(pl.Int64) // 1_000_000 - seconds


def fixed_offset(time_zone: str) -> bool:
    """Whether a zone never changes its offset (UTC, ``Etc/...``, ``+05:30``): its wall times
    all exist once, and zoning them needs no care."""
    return (time_zone in ("UTC", "GMT", "Etc/UTC", "Etc/GMT", "Zulu", "Universal")
            or time_zone.startswith(("Etc/", "+", "-")))


def zoned_wall_time(naive: pl.Expr, time_zone: str | None) -> pl.Expr:
    """A column of naive wall times of ``time_zone`` as the instants they name (vectorised).

    docs/semantics.md, "Time": a wall time that a daylight-saving change skips (America/
    Santiago skips 2026-09-06 00:00, to 01:00) is read with the offset in force before the
    change (00:00 -04, the instant 01:00 -03), and a repeated one as its earlier instant, as
    Python's ``fold=0`` and :func:`_zoned_lit` read them. A skipped wall time is zoned one day
    earlier, where the offset before the change holds, and moved one day of elapsed time on.
    A null stays null; a zone without changes (None, UTC, ``Etc/...``) is zoned as it is.

    Zoning costs about 0.2 us a row: the second one only sees the skipped wall times (the
    others are null there, which polars passes over), and the first is one common
    subexpression of a lazy query, so the whole costs about one zoning."""
    if time_zone is None:
        return naive
    if fixed_offset(time_zone):
        return naive.dt.replace_time_zone(time_zone)
    day = pl.duration(days=1)
    zoned = naive.dt.replace_time_zone(time_zone, ambiguous="earliest", non_existent="null")
    skipped = pl.when(zoned.is_null()).then(naive)
    return pl.coalesce(zoned, (skipped - day).dt.replace_time_zone(
        time_zone, ambiguous="earliest", non_existent="null") + day)


@dataclass(frozen=True)
class Clock:
    """The evaluation instant: ``as_of`` as a date, and ``end`` as a naive datetime + zone."""

    as_of: dt.date
    end: dt.datetime  # naive wall time in the events' zone
    time_zone: str | None
    time_unit: str
    # the fold of ``end`` (1: the second occurrence of a repeated wall time), kept in the
    # fields because naive datetimes compare equal whatever their fold (clocks are cache keys)
    fold: int = 0

    def lit_end(self, shift: dt.timedelta = dt.timedelta(0)) -> pl.Expr:
        """The instant ``end + shift`` as a polars literal of the events' datetime dtype."""
        return self.datetime_lit(self.end + shift if shift else self.end)  # keeps end's fold

    def datetime_lit(self, value: dt.datetime) -> pl.Expr:
        """A naive wall-clock datetime as a literal of the timestamp dtype."""
        return _datetime_lit(value, self.time_unit, self.time_zone)

    def naive_lit(self, value: dt.datetime) -> pl.Expr:
        """A naive datetime as a literal of the timestamp's unit without a zone."""
        return _datetime_lit(value, self.time_unit, None)

    def wall_time(self, value: dt.datetime, zone: str | None) -> dt.datetime:
        """A naive wall time of this clock's zone as the naive wall time of ``zone`` (the
        same instant; unchanged between naive clocks)."""
        if zone is None or self.time_zone is None or zone == self.time_zone:
            return value
        here = value.replace(tzinfo=ZoneInfo(self.time_zone))
        return here.astimezone(ZoneInfo(zone)).replace(tzinfo=None)

    def to_timestamp(self, expr: pl.Expr, typ: str) -> pl.Expr:
        """Bring a date/datetime attribute to the timestamp dtype (dates at midnight)."""
        e = expr.cast(pl.Datetime(self.time_unit))  # type: ignore[arg-type]
        if typ == "date" and self.time_zone is not None:
            e = zoned_wall_time(e, self.time_zone)
        elif typ == "datetime" and self.time_zone is not None:
            e = expr.dt.cast_time_unit(self.time_unit)  # type: ignore[arg-type]
        return e


_INT = {pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64}
_FLOAT = {pl.Float32, pl.Float64}


def _is(dtype: pl.DataType, typ: str) -> bool:
    base = dtype.base_type()
    if typ == "int":
        return base in _INT
    if typ == "float":
        return base in _INT or base in _FLOAT
    if typ == "str":
        return base in (pl.String, pl.Categorical, pl.Enum)
    if typ == "bool":
        return base == pl.Boolean
    if typ == "date":
        return base == pl.Date
    if typ == "datetime":
        return base == pl.Datetime
    return False


_POLARS_TYPE: dict[str, pl.DataType] = {
    "int": pl.Int64(),
    "float": pl.Float64(),
    "str": pl.String(),
    "bool": pl.Boolean(),
    "date": pl.Date(),
}


NOT_FINITE = "__not_finite"
"""The column :func:`read_event_exprs` adds: how many float values of the row were NaN or
inf. With one float value column read (the usual case) a Boolean (true where that value
was), with several an Int64 count, with none the Int64 ``0``: summed, each gives the number
of values read as null; ``cast(pl.Boolean)`` gives whether the row has any."""


def source_clock(clock: Clock, plan: Plan, source: str, schema: pl.Schema) -> Clock:
    """The evaluation instant on the wall clock and in the dtype of one source's timestamps
    (its time zone and unit), for filters pushed down to its scan."""
    dtype = schema.get(plan.sources[source].timestamp)
    if not isinstance(dtype, pl.Datetime):
        return clock
    unit = dtype.time_unit or "us"
    zone = dtype.time_zone
    if zone == clock.time_zone and unit == clock.time_unit:
        return clock
    end = clock.wall_time(clock.end, zone)
    return Clock(as_of=clock.as_of, end=end, time_zone=zone, time_unit=unit, fold=end.fold)


def read_event_exprs(plan: Plan, clock: Clock, schema: pl.Schema,
                     columns: set[str] | tuple[str, ...], source: str | None = None,
                     ) -> tuple[list[str], list[pl.Expr]]:
    """How every pass over the events reads one source's event columns, as data: the
    columns to select and the expressions to add to them (the same for every frame of
    that schema at that clock, so a caller may keep them).

    A ``Date`` timestamp becomes the midnight starting that date on the source's wall clock
    (an event on a date happened that day). The timestamps of a source in another time zone
    or time unit than the evaluation clock (the default source's) are converted to it. Float
    value columns are Float64 with NaN and ``inf`` / ``-inf`` as null (never banded or
    scored) and ``-0.0`` as ``0.0`` (:func:`healthrules.aggregates.finite_value`);
    :data:`NOT_FINITE` counts, per row, the values that were so read (for
    ``diagnostics["values_not_finite"]``).
    """
    ev = plan.sources[plan.default_source if source is None else source]
    cols = sorted(columns)
    exprs: list[pl.Expr] = []
    ts_dtype = schema.get(ev.timestamp)
    if isinstance(ts_dtype, pl.Date):
        own = Clock(clock.as_of, clock.end, ev.timezone, clock.time_unit)
        ts = own.to_timestamp(pl.col(ev.timestamp), "date")
        if ev.timezone != clock.time_zone and clock.time_zone is not None:
            ts = ts.dt.convert_time_zone(clock.time_zone)
        exprs.append(ts.alias(ev.timestamp))
    elif isinstance(ts_dtype, pl.Datetime) and (
            ts_dtype.time_zone != clock.time_zone or ts_dtype.time_unit != clock.time_unit):
        ts = pl.col(ev.timestamp).dt.cast_time_unit(clock.time_unit)  # type: ignore[arg-type]
        if ts_dtype.time_zone != clock.time_zone and clock.time_zone is not None:
            ts = ts.dt.convert_time_zone(clock.time_zone)
        exprs.append(ts.alias(ev.timestamp))
    floats = [c for c in cols if ev.values.get(c) == "float"]
    flags: list[pl.Expr] = []
    for c in floats:
        x = pl.col(c).cast(pl.Float64)
        finite = finite_test(x)  # (one test for both: the query computes it once)
        exprs.append(finite_value(x, finite).alias(c))
        flags.append(finite.not_().fill_null(False))
    # one float column (the usual case): its Boolean flag as it is (a sum of Booleans
    # counts it; no cast to Int64, no horizontal sum); several: the flags counted per row
    not_finite = (flags[0] if len(flags) == 1
                  else pl.sum_horizontal([f.cast(pl.Int64) for f in flags]) if flags
                  else pl.lit(0, pl.Int64))
    exprs.append(not_finite.alias(NOT_FINITE))
    return cols, exprs


def zone_database_check(time_zone: str) -> None:
    """Raise :class:`~healthrules.errors.EvaluationError` (``no_timezone_database``) when
    ``zoneinfo`` finds no time-zone database on this machine to read ``time_zone`` with
    (:func:`healthrules.zones.database_problem`): a plan compiled where there is one, run
    where there is none (a Spark executor in a slim container, a pickled plan)."""
    try:
        ZoneInfo(time_zone)  # the usual case: loaded once, then ZoneInfo's own cache
        return
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    from healthrules.zones import database_problem

    missing = database_problem(time_zone)
    if missing is not None:
        raise EvaluationError([Issue(
            code=Code.NO_TIMEZONE_DATABASE.value,
            location=Location(file="<roadmap>", path="data.events.timezone"),
            message=missing[0], hint=missing[1])])


def clock_for(plan: Plan, events_schema: pl.Schema, as_of: Any) -> Clock:
    """Work out the evaluation instant from ``as_of`` and the events' timestamp dtype."""
    ts = plan.events.timestamp
    dtype = events_schema.get(ts)
    unit = "us"
    tz: str | None = plan.events.timezone
    if isinstance(dtype, pl.Datetime):
        unit = dtype.time_unit or "us"
        tz = dtype.time_zone
    if tz is not None:
        zone_database_check(tz)
    if isinstance(as_of, dt.datetime):
        if as_of.tzinfo is not None:
            if tz is None:
                raise InputDataError([Issue(
                    code=Code.BAD_AS_OF.value,
                    message=f"as_of {as_of.isoformat()} has a time zone but the event "
                    "timestamps are naive; pass a naive datetime",
                )])
            try:
                zone = ZoneInfo(tz)
            except ZoneInfoNotFoundError:
                zone = None
            local = as_of.astimezone(zone) if zone is not None else as_of
            end = local.replace(tzinfo=None)
        else:
            end = as_of
        _check_zone_date(tz, end.date())
        return Clock(as_of=end.date(), end=end, time_zone=tz, time_unit=unit, fold=end.fold)
    if isinstance(as_of, dt.date):
        if as_of >= dt.date.max:
            raise InputDataError([Issue(
                code=Code.BAD_AS_OF.value, location=Location(file="<as_of>"),
                message=f"as_of {as_of.isoformat()} is the last representable date: the "
                "evaluation instant (the midnight that ends it) is after 9999-12-31",
                hint="pass a real evaluation date")])
        _check_zone_date(tz, as_of)
        end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
        return Clock(as_of=as_of, end=end, time_zone=tz, time_unit=unit)
    if isinstance(as_of, str):
        try:
            parsed: dt.date = (
                dt.datetime.fromisoformat(as_of) if "T" in as_of or " " in as_of.strip()
                else dt.date.fromisoformat(as_of)
            )
        except ValueError:
            raise InputDataError([Issue(
                code=Code.BAD_AS_OF.value,
                message=f"as_of {as_of!r} is not a date (YYYY-MM-DD) or an ISO datetime",
            )]) from None
        return clock_for(plan, events_schema, parsed)
    raise InputDataError([Issue(
        code=Code.BAD_AS_OF.value,
        message=f"as_of must be a date or a datetime, got {type(as_of).__name__}",
    )])


def _check_zone_date(time_zone: str | None, day: dt.date) -> None:
    issue = zone_dates_issue(time_zone, day, "as_of", "as_of")
    if issue is not None:
        raise InputDataError([issue])


def _issue(code: Code, message: str, frame: str, column: str | None = None,
           hint: str | None = None) -> Issue:
    return Issue(code=code.value, message=message, hint=hint,
                 location=Location(file=f"<{frame}>", path=column or ""))


def _declared(plan: Plan, issues: list[Issue]) -> list[Issue]:
    """Point each problem of a frame column at the roadmap line that declared the column.

    The issue keeps its location in the frame (``<events>: ... (at user_id)``); its
    ``related`` location is the YAML node of the declaration (``data.events.user`` of the
    roadmap file, with line and column when the roadmap was loaded from a file).
    """
    if not issues:  # nothing to place: do not import the loader
        return issues
    from dataclasses import replace

    from healthrules.loader import positions_of

    declared: dict[tuple[str, str], tuple[Any, str]] = {}
    for cr in reversed(plan.roadmaps):  # the first roadmap that declares a column wins
        r = cr.roadmap
        acc = r.data.accounts
        for source, e in r.data.sources.items():
            label, base = source_label(plan, source), r.data.source_path(source)
            fields = {e.account: "account", e.timestamp: "timestamp"}
            if e.event is not None:
                fields[e.event] = "event"
            if e.user is not None:
                fields[e.user] = "user"
            for column, what in fields.items():
                declared[(label, column)] = (r, f"{base}.{what}")
            for name in e.values:
                declared[(label, name)] = (r, f"{base}.values.{name}")
        declared[("<accounts>", acc.key)] = (r, "data.accounts.key")
        if acc.parent is not None:
            declared[("<accounts>", acc.parent)] = (r, "data.accounts.parent")
        for what in ("valid_from", "valid_to", "snapshot"):
            column = getattr(acc, what)
            if column is not None:
                declared[("<accounts>", column)] = (r, f"data.accounts.{what}")

        for name in acc.attributes:
            declared[("<accounts>", name)] = (r, f"data.accounts.attributes.{name}")
    out: list[Issue] = []
    for issue in issues:
        hit = declared.get((issue.location.file or "", issue.location.path or ""))
        if hit is None or issue.related is not None:
            out.append(issue)
            continue
        roadmap, path = hit
        doc = positions_of(roadmap)
        where = doc.where(path) if doc is not None else Location(file=roadmap.source, path=path)
        out.append(replace(issue, related=where))
    return out


INT64_MAX = 2**63 - 1
_BEYOND = "__beyond_int64__"


def int_range_issues(plan: Plan, events: pl.LazyFrame, schema: pl.Schema,
                     source: str | None = None) -> list[Issue]:
    """Return problems of the int value columns of one event source's frame that are
    ``UInt64`` and hold a value beyond the Int64 range (every other integer dtype fits):
    such a value cannot be read as an int (docs/semantics.md, "Input checking"). Only those
    columns are read, once, over every row of ``events`` (whether or not a window or filter
    reads it: a frame breaking the contract is refused at every date; a database source's
    frame holds only its read range); a frame without them is not read."""
    name = plan.default_source if source is None else source
    ev = plan.sources[name]
    wide = [c for c, typ in ev.values.items() if typ == "int" and schema.get(c) == pl.UInt64]
    if not wide:
        return []
    got = events.select(
        *[(pl.col(c) > INT64_MAX).sum().alias(c) for c in wide],
        *[pl.col(ev.account).filter(pl.col(c) > INT64_MAX).first().alias(_BEYOND + c)
          for c in wide]).collect(optimizations=OPTIMISED).row(0, named=True)
    frame = _frame_words(plan, name)
    return [Issue(
        code=Code.VALUES_OUT_OF_RANGE.value, location=Location(file=source_label(plan, name),
                                                               path=c),
        message=f"{frame}: int value column {c!r} holds {got[c]} value(s) beyond the Int64 "
        f"range (e.g. an event of account {got[_BEYOND + c]!r}): an int value is a 64-bit "
        "signed integer",
        hint=f"declare it as a float, or cast it: pl.col({c!r}).cast(pl.Float64)")
        for c in wide if got[c]]


def check_events_schema(plan: Plan, schema: pl.Schema, source: str | None = None,
                        ) -> list[Issue]:
    """Return problems of the columns and dtypes of one event source's frame (the default
    source when ``source`` is None); nothing is read."""
    name = plan.default_source if source is None else source
    ev = plan.sources[name]
    label = source_label(plan, name)
    frame = _frame_words(plan, name)
    where = f"{plan.roadmaps[0].roadmap.data.source_path(name)}"
    issues: list[Issue] = []
    from healthrules.expressions import did_you_mean

    def issue(code: Code, message: str, column: str, hint: str | None = None) -> Issue:
        return Issue(code=code.value, message=message, hint=hint,
                     location=Location(file=label, path=column))

    def need(col: str, ok: Any, expected: str) -> None:
        if col not in schema:
            issues.append(issue(Code.MISSING_COLUMN,
                                f"{frame} has no column {col!r} (expected {expected})",
                                col, did_you_mean(col, list(schema.names()))))
        elif not ok(schema[col]):
            issues.append(issue(Code.WRONG_DTYPE,
                                f"{frame}: column {col!r} is {schema[col]}, expected {expected}"
                                if plan.named_sources else
                                f"events column {col!r} is {schema[col]}, expected {expected}",
                                col))

    need(ev.account, lambda d: True, "the account key")
    if ev.event is not None:
        need(ev.event, lambda d: _is(d, "str"), "a string column")
    need(ev.timestamp, lambda d: _is(d, "datetime") or _is(d, "date"),
         "a Datetime (or Date) column")
    if ev.user is not None:
        need(ev.user, lambda d: True, "the user key")
    for col, typ in ev.values.items():
        need(col, lambda d, t=typ: _is(d, t), f"a numeric ({typ}) column")
    issues += _filter_column_issues(plan, schema, name)
    ts = schema.get(ev.timestamp)
    if isinstance(ts, pl.Datetime) and ts.time_zone != ev.timezone:
        got = ts.time_zone or "naive"
        want = ev.timezone or "naive"
        issues.append(issue(
            Code.TIMEZONE_MISMATCH,
            f"{'events' if not plan.named_sources else frame + ':'} column {ev.timestamp!r} "
            f"is in time zone {got}, but the roadmap declares {want} ({where}.timezone)",
            ev.timestamp,
            hint=f"convert with pl.col(...).dt.convert_time_zone(...) or fix {where}.timezone",
        ))
    return _declared(plan, issues)


def _filter_column_issues(plan: Plan, schema: pl.Schema, source: str) -> list[Issue]:
    """Event columns that a ``where`` filter reads as text but that hold another type (the
    user column is text to expressions; the engine would fail comparing it)."""
    issues: list[Issue] = []
    label = source_label(plan, source)
    for name, path, roadmap_id in text_filter_columns(plan).get(source, []):
        if name in schema and not _is(schema[name], "str"):
            what = f"events frame {source!r}: column" if plan.named_sources else "events column"
            issues.append(Issue(
                code=Code.WRONG_DTYPE.value, location=Location(file=label, path=name),
                message=f"{what} {name!r} is {schema[name]}, but the filter of "
                f"{path.removesuffix('.where')} of roadmap {roadmap_id!r} reads it as text "
                "(str)",
                hint=f"cast it with pl.col({name!r}).cast(pl.String)"))
    return issues


def text_filter_columns(plan: Plan) -> dict[str, list[tuple[str, str, str]]]:
    """Per source, (column, filter path, roadmap id) of the event columns that filters read
    as text, first use of each; worked out once per plan."""
    return plan.cached("text-filter-columns", lambda: _find_text_filter_columns(plan))


def _find_text_filter_columns(plan: Plan) -> dict[str, list[tuple[str, str, str]]]:
    from healthrules.expressions import names_in

    out: dict[str, list[tuple[str, str, str]]] = {}
    seen: set[tuple[str, str]] = set()
    for cr in plan.roadmaps:
        a = cr.analysis
        for idx, ind in enumerate(cr.roadmap.indicators):
            path = f"indicators[{idx}].where"
            parsed = a.expressions.get(path)
            if parsed is None or not isinstance(ind, AggregateIndicator):
                continue
            source = plan.source_of(ind)
            types = a.source_types.get(source, {})
            for name in sorted(names_in(parsed.tree)):
                if (source, name) not in seen and types.get(name) == "str":
                    seen.add((source, name))
                    out.setdefault(source, []).append((name, path, cr.id))
    return out


def check_source_key(plan: Plan, source: str, schema: pl.Schema,
                     accounts_key: pl.DataType | None) -> list[Issue]:
    """The account key of a source's events must be of the accounts' key kind (they are
    joined on it)."""
    ev = plan.sources[source]
    got = schema.get(ev.account)
    if got is None or accounts_key is None or _keys_compatible(got, accounts_key):
        return []
    return _declared(plan, [Issue(
        code=Code.WRONG_DTYPE.value,
        location=Location(file=source_label(plan, source), path=ev.account),
        message=f"the account key is {got} in {_frame_words(plan, source)} but "
        f"{accounts_key} in the accounts",
        hint=f"cast the key to one type in every frame, e.g. pl.col({ev.account!r})"
        ".cast(pl.String)")])


def check_accounts(plan: Plan, accounts: pl.LazyFrame | pl.DataFrame, events_schema: pl.Schema,
                   clock: Clock) -> tuple[pl.DataFrame, list[Issue]]:
    """Check the accounts frame and return it collected, with attributes cast to their types.

    Only the key and the declared attributes are kept. Accounts are small (one row per
    account), so they are collected here; the events are never collected whole. With
    validity columns declared (``data.accounts.valid_from``/``valid_to`` or ``snapshot``)
    the rows are dated: they are checked (no null start, no row ending before it starts, no
    two rows of an account valid at once, no account twice in a snapshot) and returned with
    :data:`VALID_FROM` and :data:`VALID_TO` (sorted by key and start); pick the rows of one
    instant with :func:`accounts_at`. A ``DataFrame`` whose columns need no cast is taken
    by name (no query).
    """
    schema = (accounts.schema if isinstance(accounts, pl.DataFrame)
              else accounts.collect_schema())
    key = plan.account_key
    issues: list[Issue] = []
    from healthrules.expressions import did_you_mean

    if key not in schema:
        issues.append(_issue(Code.MISSING_COLUMN, f"accounts frame has no key column {key!r}",
                             "accounts", key, did_you_mean(key, list(schema.names()))))
    casts: list[pl.Expr] = []
    wide: list[str] = []  # UInt64 int attributes: checked against the Int64 range
    for name, typ in plan.attributes.items():
        if name not in schema:
            issues.append(_issue(Code.MISSING_COLUMN,
                                 f"accounts frame has no attribute column {name!r} ({typ})",
                                 "accounts", name, did_you_mean(name, list(schema.names()))))
            continue
        dtype = schema[name]
        if not _is(dtype, typ):
            issues.append(_issue(Code.WRONG_DTYPE,
                                 f"accounts column {name!r} is {dtype}, expected {typ}",
                                 "accounts", name,
                                 hint="parse dates with pl.col(...).str.to_date()"
                                 if typ in ("date", "datetime") and dtype == pl.String else None))
            continue
        if typ == "datetime":
            assert isinstance(dtype, pl.Datetime)
            if dtype.time_zone != clock.time_zone:
                issues.append(_issue(
                    Code.TIMEZONE_MISMATCH,
                    f"accounts column {name!r} is in time zone {dtype.time_zone or 'naive'} but "
                    f"the event timestamps are {clock.time_zone or 'naive'}",
                    "accounts", name))
                continue
            # (a column already of its type is taken as it is: a cast that changes nothing
            # is still a node to plan per call)
            casts.append(pl.col(name) if dtype.time_unit == clock.time_unit
                         else pl.col(name).dt.cast_time_unit(clock.time_unit))  # type: ignore[arg-type]
        elif typ == "int" and dtype == pl.UInt64:
            # a value beyond the Int64 range cannot be read as an int: refused below, by name
            casts.append(pl.col(name).cast(pl.Int64, strict=False))
            wide.append(name)
        else:
            target = _POLARS_TYPE[typ]
            casts.append(pl.col(name) if dtype == target else pl.col(name).cast(target))
    ev_key = events_schema.get(plan.events.account)
    if key in schema and ev_key is not None and not _keys_compatible(schema[key], ev_key):
        issues.append(_issue(
            Code.WRONG_DTYPE,
            f"the account key is {schema[key]} in the accounts frame but {ev_key} in the events",
            "accounts", key))
    parent = plan.parent
    if parent is not None:
        if parent not in schema:
            issues.append(_issue(Code.MISSING_COLUMN,
                                 f"accounts frame has no parent key column {parent!r}",
                                 "accounts", parent, did_you_mean(parent, list(schema.names()))))
        elif key in schema and not _keys_compatible(schema[parent], schema[key]):
            issues.append(_issue(Code.WRONG_DTYPE,
                                 f"accounts column {parent!r} (the parent key) is "
                                 f"{schema[parent]}, but the account key is {schema[key]}",
                                 "accounts", parent))
        else:
            casts.append(pl.col(parent).cast(schema[key]))
    validity = account_validity(plan)
    issues += _check_validity_columns(validity, schema, clock)

    if issues:
        return pl.DataFrame(), _declared(plan, issues)
    # a projection: the in-memory engine starts faster than the streaming one (a service
    # evaluating one account pays it per call), and a projection needs no streaming
    exprs = [pl.col(key), *casts, *_validity_exprs(validity, schema, clock),
             *[(pl.col(n) > INT64_MAX).alias(_BEYOND + n) for n in wide]]
    if isinstance(accounts, pl.DataFrame) and all(e.meta.is_column() for e in exprs):
        # every column as it is: taken by name (a query costs its planning per call)
        # (``frame[:, names]``: ``frame[names]`` first tries the names as row indices, which
        # costs polars 2.1 60 to 100 us per call)
        frame = accounts[:, [e.meta.output_name() for e in exprs]]
    else:
        frame = accounts.lazy().select(exprs).collect(engine="in-memory",
                                                      optimizations=OPTIMISED)
    for name in wide:
        beyond = frame.filter(pl.col(_BEYOND + name))
        if beyond.height:
            issues.append(_issue(
                Code.VALUES_OUT_OF_RANGE,
                f"accounts column {name!r} (int) holds {beyond.height} value(s) beyond the "
                f"Int64 range (e.g. account {beyond[key].sort().head(1).to_list()[0]!r}): "
                "an int attribute is a 64-bit signed integer", "accounts", name,
                hint=f"declare it as a float, or cast it: pl.col({name!r}).cast(pl.Float64)"))
        frame = frame.drop(_BEYOND + name)
    if issues:
        return pl.DataFrame(), _declared(plan, issues)
    if ev_key is not None and frame[key].dtype != ev_key:
        cast = frame[key].cast(ev_key, strict=False)
        lost = frame.filter(cast.is_null() & frame[key].is_not_null())[key]
        if lost.len():
            issues.append(_issue(
                Code.WRONG_DTYPE,
                f"the account key {key!r} is {schema[key]} in the accounts frame and "
                f"{ev_key} in the events: {lost.len()} account key(s) do not fit {ev_key} "
                f"(e.g. {lost.head(3).to_list()})", "accounts", key,
                hint=f"cast the key to one type in both frames, e.g. pl.col({key!r})"
                ".cast(pl.String)"))
            return pl.DataFrame(), _declared(plan, issues)
        frame = frame.with_columns(cast)
        if parent is not None:
            frame = frame.with_columns(frame[parent].cast(ev_key, strict=False))
    nulls = frame[key].null_count()
    if nulls:
        issues.append(_issue(Code.NULL_KEY,
                             f"{nulls} account row(s) have a null key {key!r}", "accounts", key))
    issues += _zone_date_issues(plan, frame, clock)
    if validity:
        frame, found = _dated(frame, key, validity)
        return frame, _declared(plan, issues + found)
    keys = frame.get_column(key)
    # a Series count first (no query): the usual answer is no duplicate
    dup = (frame.filter(pl.col(key).is_duplicated() & pl.col(key).is_not_null())
           if keys.n_unique() < keys.len() else frame.clear())
    if dup.height:
        examples = dup[key].unique().sort().head(3).to_list()
        issues.append(_issue(
            Code.DUPLICATE_ACCOUNT,
            f"{dup.height} account rows share a key with another row (e.g. {examples}); "
            "each account must appear once",
            "accounts", key))
    if parent is not None and not issues:
        issues += hierarchy_issues(frame, key, parent)
    return frame, _declared(plan, issues)


def _zone_date_issues(plan: Plan, frame: pl.DataFrame, clock: Clock) -> list[Issue]:
    """The date and datetime attributes with a value outside :data:`ZONE_DATES` in a zone
    with daylight-saving changes (their min and max; accounts are collected, one row each)."""
    zone = clock.time_zone
    if zone is None or fixed_offset(zone):
        return []
    out: list[Issue] = []
    for name, typ in plan.attributes.items():
        if typ not in ("date", "datetime"):
            continue
        col = frame.get_column(name)
        for which, value in (("earliest", col.min()), ("latest", col.max())):
            if not isinstance(value, dt.date):  # None: every value null
                continue
            day = value.date() if isinstance(value, dt.datetime) else value
            issue = zone_dates_issue(zone, day, f"the {which} value of accounts column "
                                     f"{name!r}", "accounts", name)
            if issue is not None:
                out.append(issue)
                break
    return out


def hierarchy_issues(frame: pl.DataFrame, key: str, parent: str,
                     by: str | None = None, plan: Plan | None = None) -> list[Issue]:
    """Parents that are not accounts of the frame, and cycles of parents, naming the accounts.

    The accounts a walk down from the top-level accounts reaches (one semi-join per level, up
    to 64 levels: real hierarchies are shallow) are in no cycle. When some are not reached,
    cycles are found by pointer doubling (about log2(n) joins, no loop over accounts): after
    ``2**k >= n`` steps up, an account whose ancestor is still not null lies on a cycle or
    leads into one, and those ancestors are exactly the accounts on cycles.

    ``by`` names a column (the date, for dated accounts): then each of its values is a
    hierarchy of its own (the parent links of the rows valid at that date), checked in the
    same joins, and the messages name the date. With ``plan``, each problem points at the
    roadmap line that declared the parent column (``data.accounts.parent``) too.
    """
    if plan is not None:
        return _declared(plan, hierarchy_issues(frame, key, parent, by))
    out: list[Issue] = []
    on = [] if by is None else [by]
    links = frame.select(pl.col(key).alias("__a"), pl.col(parent).alias("__p"), *on)

    def at(row: tuple[object, ...]) -> str:
        return "" if by is None else f" at {row[-1]}"

    missing = links.filter(pl.col("__p").is_not_null()).join(
        links.select(pl.col("__a").alias("__p"), *on), on=["__p", *on], how="anti").sort(
        [*on, "__a"])
    if missing.height:
        shown = ", ".join(f"{r[0]!r} (parent {r[1]!r}{at(r)})" for r in missing.head(5).rows())
        where = "in the accounts frame" if by is None else "an account at that date"
        out.append(_issue(
            Code.UNKNOWN_PARENT,
            f"{missing.height} account(s) name a parent that is not {where}: "
            f"{shown}", "accounts", parent,
            hint="add the parent accounts to the accounts frame, or set the parent to null"
            + ("" if by is None else " (dated accounts: the parent's row must be valid "
               "whenever a child's row names it)")))
        return out
    frontier = links.filter(pl.col("__p").is_null()).select("__a", *on)
    reached = frontier.height
    for _ in range(64):
        if frontier.height == 0 or reached == links.height:
            break
        frontier = links.join(frontier.rename({"__a": "__p"}), on=["__p", *on],
                              how="semi").select("__a", *on)
        reached += frontier.height
    if reached == links.height:
        return out
    up = links
    steps = 1
    while steps < max(frame.height, 1):
        up = up.join(up.select(pl.col("__a").alias("__p"), pl.col("__p").alias("__pp"), *on),
                     on=["__p", *on], how="left").select("__a", pl.col("__pp").alias("__p"), *on)
        steps *= 2
    on_cycle = up.filter(pl.col("__p").is_not_null()).select("__p", *on).unique().sort(
        [*on, "__p"])
    if on_cycle.height:
        shown = ", ".join(f"{r[0]!r}{at(r)}" for r in on_cycle.head(8).rows())
        out.append(_issue(
            Code.PARENT_CYCLE,
            f"the parents of {on_cycle.height} account(s) form a cycle (an account is its own "
            f"ancestor): {shown}", "accounts", parent,
            hint="a hierarchy is a tree: break the cycle by setting one parent to null"))
    return out


def _keys_compatible(a: pl.DataType, b: pl.DataType) -> bool:
    def kind(d: pl.DataType) -> str:
        base = d.base_type()
        if base in _INT:
            return "int"
        if base in (pl.String, pl.Categorical, pl.Enum):
            return "str"
        return str(base)

    return kind(a) == kind(b)


# ---------------------------------------------------------------------- accounts over time

VALID_FROM = "__valid_from"
"""The column of a checked dated accounts frame: the first instant a row is valid (naive
wall-clock time of the events' zone, microseconds)."""
VALID_TO = "__valid_to"
"""The column of a checked dated accounts frame: the instant a row stops being valid
(exclusive; null: still valid)."""
_ROW = "__row"


def account_validity(plan: Plan) -> tuple[str, ...]:
    """The validity columns the plan's accounts declare (``data.accounts``): ``(valid_from,
    valid_to)``, ``(snapshot,)`` or ``()``. The roadmaps of a pack declare the same ones."""
    return plan.roadmaps[0].roadmap.data.accounts.validity if plan.roadmaps else ()


def is_dated(accounts: pl.DataFrame) -> bool:
    """Whether a checked accounts frame holds dated rows (:data:`VALID_FROM`, :data:`VALID_TO`)."""
    return VALID_FROM in accounts.columns


def _check_validity_columns(validity: tuple[str, ...], schema: pl.Schema,
                            clock: Clock) -> list[Issue]:
    from healthrules.expressions import did_you_mean

    issues: list[Issue] = []
    for name in validity:
        if name not in schema:
            issues.append(_issue(Code.MISSING_COLUMN,
                                 f"accounts frame has no validity column {name!r}", "accounts",
                                 name, did_you_mean(name, list(schema.names()))))
            continue
        dtype = schema[name]
        snapshot = len(validity) == 1
        if snapshot and dtype != pl.Date:
            issues.append(_issue(Code.WRONG_DTYPE,
                                 f"accounts column {name!r} is {dtype}, expected a Date (the "
                                 "snapshot date)", "accounts", name,
                                 hint="parse dates with pl.col(...).str.to_date()"
                                 if dtype == pl.String else None))
        elif not snapshot and not (dtype == pl.Date or isinstance(dtype, pl.Datetime)):
            issues.append(_issue(Code.WRONG_DTYPE,
                                 f"accounts column {name!r} is {dtype}, expected a Date or a "
                                 "Datetime (row validity)", "accounts", name,
                                 hint="parse dates with pl.col(...).str.to_date()"
                                 if dtype == pl.String else None))
        elif isinstance(dtype, pl.Datetime) and dtype.time_zone != clock.time_zone:
            issues.append(_issue(
                Code.TIMEZONE_MISMATCH,
                f"accounts column {name!r} is in time zone {dtype.time_zone or 'naive'} but "
                f"the event timestamps are {clock.time_zone or 'naive'}", "accounts", name,
                hint="convert it with pl.col(...).dt.convert_time_zone(...)"))
    return issues


def _validity_exprs(validity: tuple[str, ...], schema: pl.Schema, clock: Clock) -> list[pl.Expr]:
    """The validity columns as naive wall-clock instants of the events' zone (dates at the
    midnight that starts them); a snapshot date is kept as it is (made into intervals later)."""
    if not validity:
        return []
    if len(validity) == 1:
        return [pl.col(validity[0]).alias(VALID_FROM)]
    out: list[pl.Expr] = []
    for name, alias in zip(validity, (VALID_FROM, VALID_TO), strict=True):
        col = pl.col(name)
        if isinstance(schema[name], pl.Datetime):
            if clock.time_zone is not None:
                col = col.dt.replace_time_zone(None)
            col = col.dt.cast_time_unit("us")
        else:
            col = col.cast(pl.Datetime("us"))
        out.append(col.alias(alias))
    return out


def _moment(value: dt.datetime | None) -> str:
    """A validity instant as text: the date alone at midnight."""
    if value is None:
        return "null"
    return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")


def _rows_text(rows: list[int]) -> str:
    return ("row " if len(rows) == 1 else "rows ") + ", ".join(str(r) for r in rows)


def _dated(frame: pl.DataFrame, key: str,
           validity: tuple[str, ...]) -> tuple[pl.DataFrame, list[Issue]]:
    """Check dated account rows and bring them to intervals ``[VALID_FROM, VALID_TO)``.

    Snapshot rows become intervals from their snapshot date to the next snapshot date of
    the frame (open for the last snapshot). Every problem names the account and the rows
    (counted from 0, in the order of the accounts frame).
    """
    issues: list[Issue] = []
    frame = frame.with_row_index(_ROW).filter(pl.col(key).is_not_null())
    start = validity[0]
    nulls = frame.filter(pl.col(VALID_FROM).is_null())
    if nulls.height:
        ex = nulls.head(3)
        issues.append(_issue(
            Code.BAD_VALIDITY,
            f"{nulls.height} account row(s) have a null {start!r} (e.g. account "
            f"{ex[key][0]!r}, {_rows_text(ex[_ROW].to_list())}); every row needs the date it "
            "starts being valid", "accounts", start))
        frame = frame.filter(pl.col(VALID_FROM).is_not_null())
    if len(validity) == 1:
        dup = frame.filter(pl.struct(key, VALID_FROM).is_duplicated()).sort(_ROW)
        if dup.height:
            first = dup.row(0, named=True)
            rows = dup.filter((pl.col(key) == first[key]) & (
                pl.col(VALID_FROM) == first[VALID_FROM]))[_ROW].to_list()
            issues.append(_issue(
                Code.DUPLICATE_ACCOUNT,
                f"account {first[key]!r} appears {len(rows)} times in the snapshot of "
                f"{first[VALID_FROM]} ({_rows_text(rows)}); "
                f"{dup.select(key, VALID_FROM).n_unique()} (account, snapshot) pair(s) are "
                "duplicated; each account must appear once per snapshot", "accounts", start))
            return pl.DataFrame(), issues
        days = frame[VALID_FROM].unique().sort()
        following = pl.DataFrame({VALID_FROM: days, VALID_TO: days.shift(-1)})
        frame = frame.join(following, on=VALID_FROM, how="left").with_columns(
            pl.col(VALID_FROM, VALID_TO).cast(pl.Datetime("us")))
        return frame.sort(key, VALID_FROM).drop(_ROW), issues
    end = validity[1]
    inverted = frame.filter(pl.col(VALID_TO) <= pl.col(VALID_FROM)).sort(_ROW)
    if inverted.height:
        first = inverted.row(0, named=True)
        issues.append(_issue(
            Code.BAD_VALIDITY,
            f"{inverted.height} account row(s) end before they start: account "
            f"{first[key]!r}, {_rows_text([first[_ROW]])}: {end} {_moment(first[VALID_TO])} is not "
            f"after {start} {_moment(first[VALID_FROM])}", "accounts", end))
    ordered = frame.sort(key, VALID_FROM, _ROW)
    nxt = pl.col(VALID_FROM).shift(-1).over(key)
    overlap = ordered.with_columns(nxt.alias("__next_from"),
                                   pl.col(_ROW).shift(-1).over(key).alias("__next_row")).filter(
        pl.col("__next_from").is_not_null()
        & (pl.col(VALID_TO).is_null() | (pl.col("__next_from") < pl.col(VALID_TO))))
    if overlap.height:
        first = overlap.sort(_ROW).row(0, named=True)
        until = ("still open" if first[VALID_TO] is None
                 else f"until {_moment(first[VALID_TO])}")
        issues.append(_issue(
            Code.BAD_VALIDITY,
            f"{overlap.height} pair(s) of account rows overlap in time: account "
            f"{first[key]!r}, {_rows_text(sorted([first[_ROW], first['__next_row']]))} "
            f"(valid from {_moment(first[VALID_FROM])} {until}, and from "
            f"{_moment(first['__next_from'])}); an "
            "account has one row valid at any time", "accounts", start,
            hint=f"end the earlier row ({end}) where the next one starts"))
    if issues:
        return pl.DataFrame(), issues
    return ordered.drop(_ROW), issues


@dataclass(frozen=True)
class AccountsAt:
    """The accounts of one evaluation instant: one row per account that exists then."""

    frame: pl.DataFrame
    not_started: int
    """Accounts whose first row starts after the instant (not evaluated)."""
    ended: int
    """Accounts without a row valid at the instant that had one before (not evaluated)."""


def valid_at(end: pl.Expr) -> pl.Expr:
    """Whether a dated row is valid at the evaluation instant ``end`` (a naive wall-clock
    datetime): it started before the instant and had not ended by it."""
    return (pl.col(VALID_FROM) < end) & (pl.col(VALID_TO).is_null() | (pl.col(VALID_TO) >= end))


def accounts_at(accounts: pl.DataFrame, clock: Clock, key: str) -> AccountsAt:
    """The rows of a checked accounts frame valid at ``clock`` (the evaluation instant).

    A plain frame (no validity) is returned as it is. The validity columns are dropped.
    """
    if not is_dated(accounts):
        return AccountsAt(accounts, 0, 0)
    end = pl.lit(clock.end, pl.Datetime("us"))
    counts = accounts.group_by(key).agg(
        valid_at(end).any().alias("__now"), (pl.col(VALID_FROM) < end).any().alias("__began"))
    not_started = int((~counts["__began"]).sum())
    ended = int((counts["__began"] & ~counts["__now"]).sum())
    frame = accounts.filter(valid_at(end)).drop(VALID_FROM, VALID_TO)
    return AccountsAt(frame, not_started, ended)
