"""How names, dates and windows of a roadmap become polars expressions.

Two bindings of time exist. Over the events (one pass, before aggregation), ``as_of`` and the
evaluation instant are literals (:class:`LiteralTime`). Over the per-account frame, they are
columns (:class:`ColumnTime`: ``__as_of``, ``__end``, ``__end_naive``), so that the
expressions of a roadmap are built once and serve every date: one date for ``evaluate``, a
column of dates for ``history``.
"""

from __future__ import annotations

import ast
import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from healthrules.analysis import Analysis
from healthrules.engine.frames import AS_OF, END, END_NAIVE, SPECIAL_COLUMNS
from healthrules.expressions import Parsed
from healthrules.inputs import Clock, fixed_offset, zoned_wall_time
from healthrules.polars_expr import to_polars
from healthrules.roadmap import AggregateIndicator, AttributeType

__all__ = [
    "ColumnTime", "LiteralTime", "TimeBinding", "anchor_instant", "anchored_bounds", "last_day",
    "translate", "window",
]


@dataclass(frozen=True)
class LiteralTime:
    """``as_of`` and the evaluation instant as literals of one clock."""

    clock: Clock

    @property
    def time_unit(self) -> str:
        """The events' time unit."""
        return self.clock.time_unit

    @property
    def time_zone(self) -> str | None:
        """The events' time zone."""
        return self.clock.time_zone

    def as_of(self) -> pl.Expr:
        """``as_of`` (Date)."""
        return pl.lit(self.clock.as_of, dtype=pl.Date)

    def end(self, shift: dt.timedelta = dt.timedelta(0)) -> pl.Expr:
        """The evaluation instant plus ``shift`` (taken on the wall clock)."""
        return self.clock.lit_end(shift)


@dataclass(frozen=True)
class ColumnTime:
    """``as_of`` and the evaluation instant read from each row's columns."""

    time_unit: str
    time_zone: str | None

    def as_of(self) -> pl.Expr:
        """``as_of`` of each row."""
        return pl.col(AS_OF)

    def end(self, shift: dt.timedelta = dt.timedelta(0)) -> pl.Expr:
        """The evaluation instant of each row, shifted on the wall clock, then zoned."""
        if not shift:
            return pl.col(END)
        return zoned_wall_time(pl.col(END_NAIVE) + pl.lit(shift), self.time_zone)

    @staticmethod
    def columns(clock: Clock) -> list[pl.Expr]:
        """The three time columns of one evaluation, as literals to add to a frame."""
        return list(_time_columns(clock))


@functools.lru_cache(maxsize=256)
def _time_columns(clock: Clock) -> tuple[pl.Expr, ...]:
    """:meth:`ColumnTime.columns`, built once per clock (typed datetime literals cost a
    polars query each; a service evaluating at one date builds them once)."""
    naive = clock.naive_lit(clock.end)
    return (pl.lit(clock.as_of, dtype=pl.Date).alias(AS_OF),
            clock.lit_end().alias(END), naive.alias(END_NAIVE))


TimeBinding = LiteralTime | ColumnTime


def attribute_instant(name: str, typ: AttributeType, time: TimeBinding) -> pl.Expr:
    """A date or datetime attribute as an instant of the events' dtype (dates at midnight)."""
    col = pl.col(name)
    if typ == "date":
        return zoned_wall_time(col.cast(pl.Datetime(time.time_unit)),  # type: ignore[arg-type]
                               time.time_zone)
    return col.dt.cast_time_unit(time.time_unit)  # type: ignore[arg-type]


def anchor_instant(name: str, attributes: Mapping[str, AttributeType], time: TimeBinding,
                   anchors: Mapping[str, str] | None = None) -> pl.Expr:
    """Where an anchored window starts: a date/datetime attribute, or the time an aggregate
    indicator holds (over the events, the column ``anchors[name]`` joined by the events pass;
    over a roadmap frame, the indicator's own column)."""
    if name in attributes:
        return attribute_instant(name, attributes[name], time)
    return pl.col((anchors or {}).get(name, name))


def window(ind: AggregateIndicator, prev: bool, timestamp: str,
           attributes: Mapping[str, AttributeType], time: TimeBinding,
           anchors: Mapping[str, str] | None = None) -> tuple[pl.Expr, pl.Expr]:
    """(condition on the event timestamp, the window's stop instant) of an indicator.

    ``prev`` selects the window before the current one (``compare``); ``anchors`` maps an
    indicator a window starts at to the events column holding its value.
    """
    ts = pl.col(timestamp)
    w = ind.window
    end = time.end()
    if w.kind == "trailing":
        assert w.days is not None
        n = dt.timedelta(days=w.days)
        if prev:
            stop = time.end(-n)
            return (ts >= time.end(-2 * n)) & (ts < stop), stop
        return ts >= time.end(-n), end
    if w.kind == "all":
        return ts.is_not_null(), end
    assert w.from_ is not None
    start, until = anchored_bounds(w.from_, w.days, attributes, time, anchors)
    if until is None:
        return ts >= start, end
    return (ts >= start) & (ts < until), until


def anchored_bounds(from_: str, days: int | None, attributes: Mapping[str, AttributeType],
                    time: TimeBinding, anchors: Mapping[str, str] | None = None,
                    ) -> tuple[pl.Expr, pl.Expr | None]:
    """(start, stop) instants of a window anchored at ``from_`` lasting ``days`` calendar
    days (stop None: no ``days``, the window runs to the evaluation instant); the stop is
    never after the evaluation instant."""
    start = anchor_instant(from_, attributes, time, anchors)
    if days is None:
        return start, None
    stop, _ = anchored_stop(start, from_, days, attributes, time)
    return start, pl.min_horizontal(stop, time.end())


def anchored_stop(start: pl.Expr, from_: str, days: int,
                  attributes: Mapping[str, AttributeType], time: TimeBinding,
                  ) -> tuple[pl.Expr, pl.Expr]:
    """(the instant, its wall time) where a window anchored at ``from_`` (starting at the
    instant ``start``, :func:`anchor_instant`) lasting ``days`` calendar days stops: the
    anchor's wall time ``days`` days on, zoned as every wall time is
    (:func:`healthrules.inputs.zoned_wall_time`: a stop at a midnight a change skips is
    the instant the day starts)."""
    zone = time.time_zone
    if zone is None or fixed_offset(zone):  # wall clock and elapsed time agree
        stop = start + pl.duration(days=days)
        return stop, stop
    if attributes.get(from_) == "date":
        wall = pl.col(from_).cast(pl.Datetime(time.time_unit))  # type: ignore[arg-type]
    else:
        wall = start.dt.convert_time_zone(zone).dt.replace_time_zone(None)
    wall = wall + pl.duration(days=days)
    return zoned_wall_time(wall, zone), wall


def last_day(ind: AggregateIndicator, prev: bool, attributes: Mapping[str, AttributeType],
             time: TimeBinding) -> pl.Expr:
    """The window's last day (a Date): the day ``days_since_*`` count to.

    It is the ``as_of`` date for a window that stops at the evaluation instant, whether
    ``as_of`` is a date or a datetime; ``as_of - N`` for the previous window of a trailing
    window of N days; and for an anchored window cut short by its ``days`` (its stop before
    the evaluation instant), the day of its last instant (the day before the stop when the
    stop is a midnight). So ``days_since_last`` equals ``days_since(last_time)`` over the
    same events.
    """
    as_of = time.as_of()
    w = ind.window
    if w.kind == "trailing" and prev:
        assert w.days is not None
        return as_of - pl.duration(days=w.days)
    if w.kind != "anchored" or w.days is None:
        return as_of
    assert w.from_ is not None
    stop, wall = anchored_stop(anchor_instant(w.from_, attributes, time), w.from_, w.days,
                               attributes, time)
    day = wall.dt.date()
    cut = pl.when(wall.dt.time() == pl.time(0)).then(day - pl.duration(days=1)).otherwise(day)
    return pl.when(stop < time.end()).then(cut).otherwise(as_of)


def translate(parsed: Parsed | ast.expr, analysis: Analysis, time: TimeBinding, *,
              filter_scope: bool = False, source: str | None = None) -> pl.Expr:
    """The polars expression of a parsed roadmap expression.

    In the actions scope the reserved names (``score``, ``stage``, ...) read the engine's
    columns; ``band(x)`` reads ``x__band``. A filter reads the columns of its indicator's
    event ``source``.
    """
    as_of = time.as_of()

    def column(name: str) -> pl.Expr:
        if name == "as_of":
            return as_of
        return pl.col(SPECIAL_COLUMNS.get(name, name))

    types = analysis.env("filter", source) if filter_scope else analysis.env("actions")
    return to_polars(parsed, column=column, band=lambda n: pl.col(f"{n}__band"),
                     as_of=as_of, types=types)
