"""Datetime literals made from their ticks (an Int64 literal cast to the datetime dtype) are
the literals ``pl.lit(datetime, dtype)`` made: the same dtype and the same instant for every
unit, zone (with daylight-saving changes), fold and value (before the epoch, at the edges
of the representable range), the same plan once optimised (so the same pushdown to a
scan), and the same error where the value does not fit."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
import pytest

from healthrules.inputs import _RULES_AGREE, Clock, _zoned_lit, zoned_wall_time

ZONES = [None, "UTC", "America/Santiago", "Europe/Berlin", "America/New_York",
         "Australia/Lord_Howe", "Asia/Kolkata", "Etc/GMT+3", "+05:30", "Not/AZone"]
UNITS = ["ns", "us", "ms"]


def _as_before(value: dt.datetime, fold: int, time_unit: str,
               time_zone: str | None) -> pl.Expr:
    """The literal as the engine made it before (``pl.lit`` of a Python datetime, and one
    query for a zoned instant)."""
    e = pl.lit(value, dtype=pl.Datetime(time_unit))  # type: ignore[arg-type]
    if time_zone is None:
        return e
    try:
        instant = value.replace(tzinfo=ZoneInfo(time_zone), fold=fold).astimezone(dt.UTC)
    except (ZoneInfoNotFoundError, ValueError, OverflowError):
        return zoned_wall_time(e, time_zone)
    utc = pl.lit(instant.replace(tzinfo=None), dtype=pl.Datetime(time_unit))  # type: ignore[arg-type]
    return pl.lit(pl.select(utc.dt.replace_time_zone("UTC").dt.convert_time_zone(time_zone))
                  .item(), dtype=pl.Datetime(time_unit, time_zone))  # type: ignore[arg-type]


def _outcome(make: object, *args: object) -> tuple[object, ...]:
    """(dtype, ticks) of the literal, or the error's type when making or reading it fails."""
    try:
        got = pl.select(make(*args).alias("x"))  # type: ignore[operator]
    except Exception as e:  # compared, not hidden
        return ("error", type(e).__name__)
    return (got.schema["x"], got.get_column("x").cast(pl.Int64).item())


def _values() -> list[dt.datetime]:
    rng = random.Random(20261207)
    epoch = dt.datetime(1970, 1, 1)
    values = [
        dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        dt.datetime(1969, 12, 31, 23, 59, 59, 999999), dt.datetime(1969, 12, 31, 23, 59, 59, 1),
        dt.datetime(1970, 1, 1), dt.datetime(1677, 9, 21, 0, 12, 43, 145225),
        dt.datetime(1677, 9, 21, 0, 12, 44), dt.datetime(2262, 4, 11, 23, 47, 16, 854775),
        dt.datetime(2262, 4, 11, 23, 47, 16, 854776),
        # daylight-saving changes: skipped and repeated wall times
        dt.datetime(2026, 9, 6, 0, 0), dt.datetime(2026, 9, 6, 0, 30),  # Santiago skips
        dt.datetime(2026, 4, 5, 0, 0), dt.datetime(2026, 4, 4, 23, 30),  # Santiago repeats
        dt.datetime(2026, 3, 29, 2, 30), dt.datetime(2026, 10, 25, 2, 30),  # Berlin
        dt.datetime(2026, 3, 8, 2, 0), dt.datetime(2026, 11, 1, 1, 30),  # New York
        dt.datetime(2026, 4, 5, 1, 45), dt.datetime(2026, 10, 4, 2, 15),  # Lord Howe
    ]
    values += [epoch + dt.timedelta(microseconds=rng.randint(-6 * 10**16, 2 * 10**17))
               for _ in range(30)]
    values += [epoch + dt.timedelta(microseconds=rng.randint(-3 * 10**15, 3 * 10**15))
               for _ in range(30)]
    return values


@pytest.mark.parametrize("time_zone", ZONES)
@pytest.mark.parametrize("time_unit", UNITS)
def test_ticks_literal_is_the_datetime_literal(time_unit: str, time_zone: str | None) -> None:
    for value in _values():
        for fold in (0, 1):
            new = _outcome(_zoned_lit.__wrapped__, value, fold, time_unit, time_zone)
            old = _outcome(_as_before, value, fold, time_unit, time_zone)
            assert new == old, (value, fold, time_unit, time_zone)


@pytest.mark.parametrize("time_zone", [None, "UTC", "America/Santiago"])
def test_ticks_literal_plans_as_the_datetime_literal(time_zone: str | None) -> None:
    """Optimised, a filter on the ticks literal is the filter on the datetime literal: the
    same predicate reaches the scan (row groups skipped alike)."""
    value = dt.datetime(2026, 6, 30, 7, 15, 0, 250)
    lf = pl.LazyFrame({"ts": [dt.datetime(2026, 6, 30)]},
                      schema={"ts": pl.Datetime("us", time_zone)})
    new = lf.filter(pl.col("ts") >= _zoned_lit.__wrapped__(value, 0, "us", time_zone))
    old = lf.filter(pl.col("ts") >= _as_before(value, 0, "us", time_zone))
    assert new.explain() == old.explain()
    assert "cast" not in new.explain()


def test_clock_literals() -> None:
    """The clock's literals (``lit_end``, ``naive_lit``) read as before."""
    clock = Clock(as_of=dt.date(2026, 9, 5), end=dt.datetime(2026, 9, 6),
                  time_zone="America/Santiago", time_unit="ms")
    got = pl.select(clock.lit_end().alias("end"), clock.naive_lit(clock.end).alias("naive"),
                    clock.lit_end(dt.timedelta(days=-30)).alias("before"))
    assert got.schema["naive"] == pl.Datetime("ms")
    assert got.schema["end"] == pl.Datetime("ms", "America/Santiago")
    assert got.row(0) == (
        dt.datetime(2026, 9, 6, 1, tzinfo=ZoneInfo("America/Santiago")),  # 00:00 is skipped
        dt.datetime(2026, 9, 6),
        dt.datetime(2026, 8, 7, tzinfo=ZoneInfo("America/Santiago")))


@pytest.mark.parametrize("time_zone", ["America/Santiago", "Europe/Berlin",
                                       "America/New_York", "Australia/Lord_Howe"])
def test_zone_rules_agree_where_ticks_are_used(time_zone: str) -> None:
    """Over the years of ``_RULES_AGREE`` polars and zoneinfo read every instant as the
    same wall time (the ticks literal uses zoneinfo's instant there; outside, polars' rules
    stop changing offsets after 2099 and the literal keeps its former form)."""
    rng = random.Random(7)
    lo = int(dt.datetime(_RULES_AGREE[0], 1, 2).timestamp())
    hi = int(dt.datetime(_RULES_AGREE[1], 12, 30).timestamp())
    instants = [dt.datetime(1970, 1, 1) + dt.timedelta(seconds=rng.randint(lo, hi))
                for _ in range(20_000)]
    walls = (pl.Series(instants, dtype=pl.Datetime("us")).dt.replace_time_zone("UTC")
             .dt.convert_time_zone(time_zone).dt.replace_time_zone(None).to_list())
    zone = ZoneInfo(time_zone)
    assert walls == [i.replace(tzinfo=dt.UTC).astimezone(zone).replace(tzinfo=None)
                     for i in instants]
