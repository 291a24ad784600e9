"""Windows across daylight-saving changes: the engine against the reference evaluator.

Hypothesis draws an ``as_of`` (a date, a naive datetime or an aware one) within a few days of
a clock change in zones with a one-hour shift (America/New_York, Europe/Berlin) and a
30-minute one (Australia/Lord_Howe), events at instants around the change (in the skipped
and the repeated hour, at midnight, on the days 1, 7 and 30 days earlier, where the trailing
windows start), optionally as a `Date` column or in a second source of another zone, and
checks that ``healthrules.evaluate`` and ``tests/reference.py`` agree on windowed counts,
sums, ``active_days``, ``days_since_*`` (trailing windows of 1, 7 and 30 days with their
previous windows, anchored windows and all-time windows).

docs/semantics.md, "Time": windows are taken on the events' wall clock (a trailing window of
7 days starts at the same wall time 7 calendar days before ``end``, 167 or 169 elapsed hours
across a change), and calendar days are those of the events' zone.

A wall time that a change skips or repeats, as ``as_of`` or as a bound of a trailing window,
is read with the offset before the change (fold=0), and an aware ``as_of`` in the second
occurrence of a repeated hour keeps its own instant: the regression tests
``test_gap_*`` below. The property test still draws ``as_of`` and datetime anchors at wall
hours outside the changes (test_dst_bounds_inside_a_change_are_not_drawn keeps that
explicit). Midnights that a change skips or repeats (a `Date` event or a date anchor on
America/Santiago's 2026-09-06, ``history`` over such a day) are the cases of
``tests/test_dst_midnight.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import healthrules as hr
from healthrules.roadmap import Roadmap
from reference import evaluate_reference
from test_engine_vs_reference import assert_matches_reference, compare

Draw = Callable[[st.SearchStrategy[Any]], Any]

# (zone, the day of a clock change, the wall hours the change touches on that day)
CHANGES = [
    ("America/New_York", dt.date(2026, 3, 8), range(1, 4)),  # 02:00 -> 03:00
    ("America/New_York", dt.date(2026, 11, 1), range(0, 3)),  # 02:00 -> 01:00
    ("Europe/Berlin", dt.date(2026, 3, 29), range(1, 4)),  # 02:00 -> 03:00
    ("Europe/Berlin", dt.date(2026, 10, 25), range(1, 4)),  # 03:00 -> 02:00
    ("Australia/Lord_Howe", dt.date(2026, 4, 5), range(1, 3)),  # 02:00 -> 01:30
    ("Australia/Lord_Howe", dt.date(2026, 10, 4), range(1, 4)),  # 02:00 -> 02:30
]
# a zone of a second source: its own changes fall on other days
OTHER_ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
SAFE_HOURS = [0, 4, 5, 9, 12, 18, 23]  # wall hours no change above touches
WINDOWS = ["1d", "7d", "30d"]


def _indicators(source: str | None, prefix: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for w in WINDOWS:
        out += [
            {"id": f"{prefix}count_{w}", "aggregate": "count", "window": w, "compare": "delta"},
            {"id": f"{prefix}sum_{w}", "aggregate": "sum", "of": "value", "window": w},
            {"id": f"{prefix}active_{w}", "aggregate": "active_days", "window": w,
             "compare": "previous"},
            {"id": f"{prefix}last_{w}", "aggregate": "days_since_last", "window": w,
             "compare": "previous"},
        ]
    out += [
        {"id": f"{prefix}first_all", "aggregate": "days_since_first"},
        {"id": f"{prefix}last_all", "aggregate": "days_since_last"},
        {"id": f"{prefix}last_time", "aggregate": "last_time"},
        {"id": f"{prefix}active_all", "aggregate": "active_days"},
        {"id": f"{prefix}from_start", "aggregate": "count",
         "window": {"from": "start", "days": 2}},
        {"id": f"{prefix}since_start", "aggregate": "days_since_last",
         "window": {"from": "start", "days": 1}},
        {"id": f"{prefix}from_since", "aggregate": "active_days",
         "window": {"from": "since", "days": 1}},
        {"id": f"{prefix}open_since", "aggregate": "count", "window": {"from": "since"}},
    ]
    for ind in out:
        ind["family"] = "process"
        if source is not None:
            ind["source"] = source
    return out


def _roadmap(zone: str, other: str | None) -> Roadmap:
    events: dict[str, Any] = {"values": {"value": "float"}, "timezone": zone}
    indicators = _indicators(None, "")
    if other is not None:
        events = {"usage": events,
                  "tickets": {"timestamp": "at", "user": None, "event": None,
                              "values": {"value": "float"}, "timezone": other}}
        indicators += _indicators("tickets", "t_")
    return Roadmap.model_validate({
        "id": "dst", "goal": "g",
        "data": {"events": events,
                 "accounts": {"attributes": {"start": "date", "since": "datetime"}}},
        "indicators": indicators,
        "stages": [{"id": "s"}],
    })


def _near(draw: Draw, day: dt.date, zone: str, days_back: int) -> dt.datetime:
    """An instant within a day and a half of the change, shifted ``days_back`` calendar days
    earlier on the wall clock (where a trailing window that ends near the change starts)."""
    change = dt.datetime.combine(day, dt.time(12), tzinfo=ZoneInfo(zone))
    at = change.astimezone(dt.UTC) + dt.timedelta(minutes=draw(st.integers(-36 * 4, 36 * 4)) * 15)
    wall = at.astimezone(ZoneInfo(zone)).replace(tzinfo=None) - dt.timedelta(days=days_back)
    # a wall time in a gap maps to an instant after it (fold=0), as zoneinfo reads it
    return wall.replace(tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)


@st.composite
def cases(draw: Draw) -> tuple[Roadmap, Any, pl.DataFrame, Any, dict[str, Any]]:
    zone, day, hours = draw(st.sampled_from(CHANGES))
    other = draw(st.sampled_from([None, *OTHER_ZONES]))
    roadmap = _roadmap(zone, other)
    z = ZoneInfo(zone)

    def instants(n: int) -> list[dt.datetime]:
        return [_near(draw, day, zone, draw(st.sampled_from([0, 0, 1, 2, 7, 14, 30, 60])))
                for _ in range(n)]

    n = draw(st.integers(0, 12))
    dated = other is None and draw(st.booleans())
    if dated:  # a Date column: midnight starting each day (none of these zones skips one)
        stamps: list[Any] = [(day + dt.timedelta(days=draw(st.integers(-62, 3))))
                             for _ in range(n)]
        ts_type: pl.DataType = pl.Date()
    else:
        stamps = [t.astimezone(z) for t in instants(n)]
        ts_type = pl.Datetime("us", zone)
    values = [draw(st.sampled_from([None, 0.5, 1.0, 2.25])) for _ in range(n)]
    usage = pl.DataFrame(
        {"account_id": [draw(st.sampled_from(["a", "b"])) for _ in range(n)],
         "user_id": ["u"] * n, "event": ["x"] * n, "timestamp": stamps, "value": values},
        schema={"account_id": pl.String, "user_id": pl.String, "event": pl.String,
                "timestamp": ts_type, "value": pl.Float64})
    events: Any = usage
    if other is not None:
        m = draw(st.integers(0, 8))
        events = {"usage": usage, "tickets": pl.DataFrame(
            {"account_id": [draw(st.sampled_from(["a", "b"])) for _ in range(m)],
             "at": [t.astimezone(ZoneInfo(other)) for t in instants(m)],
             "value": [draw(st.sampled_from([None, 1.0, 3.5])) for _ in range(m)]},
            schema={"account_id": pl.String, "at": pl.Datetime("us", other),
                    "value": pl.Float64})}

    def since() -> dt.datetime | None:
        if not draw(st.booleans()):
            return None
        offset = draw(st.integers(-3, 1))
        wall = dt.datetime.combine(day + dt.timedelta(days=offset),
                                   dt.time(draw(st.sampled_from(SAFE_HOURS)),
                                           draw(st.sampled_from([0, 30]))))
        return wall.replace(tzinfo=z)

    accounts = pl.DataFrame(
        {"account_id": ["a", "b"],
         "start": [draw(st.one_of(st.none(), st.sampled_from(
             [day + dt.timedelta(days=k) for k in (-31, -8, -2, -1, 0, 1)]))) for _ in "ab"],
         "since": [since(), since()]},
        schema={"account_id": pl.String, "start": pl.Date, "since": pl.Datetime("us", zone)})

    # as_of: a date, or a datetime at a wall hour no change touches (see the module's doc),
    # 0 to 31 days after the change so that each window's start crosses it
    as_of_day = day + dt.timedelta(days=draw(st.sampled_from([-1, 0, 1, 2, 6, 7, 8, 29, 30, 31])))
    kind = draw(st.sampled_from(["date", "naive", "aware"]))
    as_of: Any = as_of_day
    if kind != "date":
        hour = draw(st.sampled_from([h for h in SAFE_HOURS if h not in hours]))
        wall = dt.datetime.combine(as_of_day, dt.time(hour, draw(st.sampled_from([0, 15, 59]))))
        as_of = wall if kind == "naive" else wall.replace(tzinfo=z).astimezone(dt.UTC)
    note = {"zone": zone, "other": other, "dated": dated, "as_of": as_of}
    return roadmap, events, accounts, as_of, note


@settings(max_examples=120)
@given(cases())
def test_dst_windows_engine_matches_reference(
    case: tuple[Roadmap, Any, pl.DataFrame, Any, dict[str, Any]],
) -> None:
    roadmap, events, accounts, as_of, note = case
    result = hr.evaluate(roadmap, events, accounts, as_of)
    assert_matches_reference(result, roadmap, events, accounts, as_of, note=note)


def test_dst_bounds_inside_a_change_are_not_drawn() -> None:
    # the drawn datetimes keep every window bound (as_of, as_of - 1/7/30/60 days, an anchor
    # + 1/2 days) at wall hours outside each zone's change: the hours a change touches
    for zone, day, hours in CHANGES:
        z = ZoneInfo(zone)
        for hour in range(24):
            wall = dt.datetime.combine(day, dt.time(hour, 15))
            exists = wall.replace(tzinfo=z).astimezone(dt.UTC).astimezone(z).replace(
                tzinfo=None) == wall
            unique = (wall.replace(tzinfo=z).utcoffset()
                      == wall.replace(tzinfo=z, fold=1).utcoffset())
            if not (exists and unique):
                assert hour in hours, (zone, day, hour)
                assert hour not in SAFE_HOURS, (zone, day, hour)


def test_a_trailing_week_across_spring_forward_is_167_hours() -> None:
    # docs/semantics.md, "Time": a trailing window is taken on the wall clock. as_of
    # 2026-03-14 in New York ends at 2026-03-15 00:00 EDT; the 7-day window starts at
    # 2026-03-08 00:00 EST, 167 hours earlier: an event 168 hours before the end (at
    # 2026-03-07 23:00 EST) is outside, one at 2026-03-08 00:00 EST is inside.
    zone = "America/New_York"
    z = ZoneInfo(zone)
    end = dt.datetime(2026, 3, 15, tzinfo=z).astimezone(dt.UTC)  # elapsed time in UTC
    inside = dt.datetime(2026, 3, 8, tzinfo=z).astimezone(dt.UTC)
    outside = end - dt.timedelta(hours=168)
    assert (end - inside) == dt.timedelta(hours=167)
    roadmap = _roadmap(zone, None)
    events = pl.DataFrame(
        {"account_id": ["a", "a"], "user_id": ["u", "u"], "event": ["x", "x"],
         "timestamp": [outside.astimezone(z), inside.astimezone(z)], "value": [1.0, 2.0]},
        schema={"account_id": pl.String, "user_id": pl.String, "event": pl.String,
                "timestamp": pl.Datetime("us", zone), "value": pl.Float64})
    accounts = pl.DataFrame({"account_id": ["a"], "start": [None], "since": [None]},
                            schema={"account_id": pl.String, "start": pl.Date,
                                    "since": pl.Datetime("us", zone)})
    as_of = dt.date(2026, 3, 14)
    row = hr.evaluate(roadmap, events, accounts, as_of).indicators.row(0, named=True)
    assert row["sum_7d"] == 2.0  # the event at 00:00 EST only
    # the previous week [03-01 00:00 EST, 03-08 00:00 EST) holds the one at 23:00 on 03-07:
    # one active day, 0 days before its last day (03-07), and one event each week (delta 0)
    assert (row["active_7d"], row["last_7d"], row["count_7d"]) == (1, 0, 0)
    ref = evaluate_reference(roadmap, events, accounts, as_of)
    assert not compare(hr.evaluate(roadmap, events, accounts, as_of), ref, roadmap)


def _one_count(zone: str, window: Any, stamps: list[dt.datetime]) -> tuple[Roadmap, Any, Any]:
    roadmap = Roadmap.model_validate({
        "id": "gap", "goal": "g",
        "data": {"events": {"values": {}, "timezone": zone}, "accounts": {"attributes": {}}},
        "indicators": [{"id": "n", "family": "process", "aggregate": "count", "window": window}],
        "stages": [{"id": "s"}],
    })
    events = pl.DataFrame(
        {"account_id": ["a"] * len(stamps), "user_id": ["u"] * len(stamps),
         "event": ["x"] * len(stamps), "timestamp": stamps},
        schema={"account_id": pl.String, "user_id": pl.String, "event": pl.String,
                "timestamp": pl.Datetime("us", zone)})
    return roadmap, events, pl.DataFrame({"account_id": ["a"]})


def _both(zone: str, window: Any, stamps: list[dt.datetime], as_of: Any) -> tuple[Any, Any]:
    roadmap, events, accounts = _one_count(zone, window, stamps)
    engine = hr.evaluate(roadmap, events, accounts, as_of).indicators["n"].item()
    reference = evaluate_reference(roadmap, events, accounts, as_of).accounts["a"]
    return engine, reference.indicators["n"]


def test_gap_a_trailing_window_starting_in_the_skipped_hour() -> None:
    # 30 days before 2026-04-07 02:30 (EDT) is 2026-03-08 02:30, a wall time New York skips:
    # read at the offset before the change, 07:30 UTC (03:30 EDT); was a polars ComputeError
    utc = dt.UTC
    stamps = [dt.datetime(2026, 3, 8, 7, 29, tzinfo=utc),
              dt.datetime(2026, 3, 8, 7, 30, tzinfo=utc)]
    got = _both("America/New_York", "30d", stamps, dt.datetime(2026, 4, 7, 2, 30))
    assert got == (1, 1)


def test_gap_an_aware_as_of_in_the_repeated_hour_keeps_its_instant() -> None:
    # 05:30 UTC and 06:30 UTC on 2026-11-01 are both 01:30 in New York (EDT, then EST); an
    # event at 06:00 UTC is after the first and before the second (was a ComputeError; the
    # two clocks must not share a cached literal either)
    stamps = [dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.UTC)]
    first = dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.UTC)
    second = dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.UTC)
    assert _both("America/New_York", "all", stamps, first) == (0, 0)
    assert _both("America/New_York", "all", stamps, second) == (1, 1)
    assert _both("America/New_York", "1d", stamps, first) == (0, 0)


def test_gap_a_date_as_of_whose_midnight_is_skipped() -> None:
    # America/Santiago skips 2026-09-06 00:00 (to 01:00) and Pacific/Apia skipped the whole of
    # 2011-12-30: the midnight that ends as_of is the instant the next day starts
    santiago = [dt.datetime(2026, 9, 5, 12, tzinfo=dt.UTC),
                dt.datetime(2026, 9, 6, 4, tzinfo=dt.UTC)]
    assert _both("America/Santiago", "1d", santiago, dt.date(2026, 9, 5)) == (1, 1)
    assert _both("America/Santiago", "7d", santiago, dt.date(2026, 9, 6)) == (2, 2)
    apia = [dt.datetime(2011, 12, 29, 22, tzinfo=dt.UTC),
            dt.datetime(2011, 12, 30, 10, tzinfo=dt.UTC)]
    assert _both("Pacific/Apia", "1d", apia, dt.date(2011, 12, 29)) == (1, 1)
    assert _both("Pacific/Apia", "1d", apia, dt.date(2011, 12, 31)) == (1, 1)
