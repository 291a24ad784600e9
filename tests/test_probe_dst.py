"""Probes: windows, days and dates around daylight-saving changes in zones whose changes are
at or near midnight (docs/semantics.md, "Time"), which the engine-vs-reference strategies do
not draw: America/Santiago (midnight skipped), America/Havana (midnight repeated),
Asia/Beirut (midnight skipped), Australia/Lord_Howe (a half-hour change), Pacific/Apia (a
skipped day), with ``window: 1d`` / ``2d`` / ``7d``, anchored windows from a date on the day
of a change, events exactly at and next to the midnights, and timestamps in ns / ms / us or
``Date``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import healthrules as hr
from healthrules.roadmap import Roadmap
from reference import evaluate_reference
from test_engine_vs_reference import compare

Draw = Callable[[st.SearchStrategy[Any]], Any]

# (zone, the date of a change)
CHANGES = [
    ("America/Santiago", dt.date(2026, 9, 6)),   # 00:00 -> 01:00
    ("America/Santiago", dt.date(2026, 4, 5)),   # 00:00 -> 23:00 the day before
    ("America/Havana", dt.date(2026, 11, 1)),    # 01:00 -> 00:00
    ("America/Havana", dt.date(2026, 3, 8)),     # 00:00 -> 01:00
    ("Asia/Beirut", dt.date(2026, 3, 29)),       # 00:00 -> 01:00
    ("Asia/Beirut", dt.date(2026, 10, 25)),      # 00:00 -> 23:00 the day before
    ("Australia/Lord_Howe", dt.date(2026, 4, 5)),  # 02:00 -> 01:30
    ("Australia/Lord_Howe", dt.date(2026, 10, 4)),  # 02:00 -> 02:30
    ("Pacific/Apia", dt.date(2011, 12, 31)),     # 30 December 2011 skipped
    ("America/New_York", dt.date(2026, 3, 8)),
]
AGGS = ["count", "active_days", "days_since_first", "days_since_last", "first_time",
        "last_time", "sum", "distinct"]


@st.composite
def dst_cases(draw: Draw) -> tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any, str]:
    zone, change = draw(st.sampled_from(CHANGES))
    tz = ZoneInfo(zone)
    as_of_day = change + dt.timedelta(days=draw(st.integers(-2, 8)))
    inds: list[dict[str, Any]] = []
    for k in range(draw(st.integers(1, 4))):
        agg = draw(st.sampled_from(AGGS))
        ind: dict[str, Any] = {"id": f"i{k}", "family": "process", "aggregate": agg}
        if agg == "sum":
            ind["of"] = "value"
        window = draw(st.sampled_from(["1d", "2d", "7d", "all", "anchored", "open"]))
        if window == "anchored":
            ind["window"] = {"from": "start", "days": draw(st.sampled_from([1, 2, 3]))}
        elif window == "open":
            ind["window"] = {"from": "start"}
        else:
            ind["window"] = window
        if window in ("1d", "2d", "7d") and agg not in ("first_time", "last_time") \
                and draw(st.booleans()):
            ind["compare"] = draw(st.sampled_from(["previous", "delta"]))
        inds.append(ind)
    roadmap = Roadmap.model_validate({
        "id": "p", "goal": "g",
        "data": {"events": {"values": {"value": "float"}, "timezone": zone},
                 "accounts": {"attributes": {"start": "date"}}},
        "indicators": inds, "stages": [{"id": "s"}]})
    # instants near the midnights (and the change) of the days around as_of
    instants: list[dt.datetime] = []
    for _ in range(draw(st.integers(0, 25))):
        day = as_of_day + dt.timedelta(days=draw(st.integers(-9, 1)))
        midnight = dt.datetime.combine(day, dt.time(), tz)
        utc = midnight.astimezone(dt.UTC) + dt.timedelta(
            microseconds=draw(st.sampled_from([0, 1, -1, 0, 1000])),
            minutes=draw(st.sampled_from([0, 0, 30, 60, -60, 90, 150, 24 * 60])))
        instants.append(utc.astimezone(tz))
    ids = ["a", "b"]
    events = pl.DataFrame({
        "account_id": [draw(st.sampled_from(ids)) for _ in instants],
        "user_id": [draw(st.sampled_from(["u", "v"])) for _ in instants],
        "event": ["x" for _ in instants],
        "timestamp": instants,
        "value": [draw(st.sampled_from([0.1, 1.0, 2.5])) for _ in instants]},
        schema={"account_id": pl.String, "user_id": pl.String, "event": pl.String,
                "timestamp": pl.Datetime("us", zone), "value": pl.Float64})
    unit = draw(st.sampled_from(["us", "ns", "ms", "date"]))
    if unit == "date":
        events = events.with_columns(pl.col("timestamp").dt.date())
    elif unit != "us":
        events = events.with_columns(pl.col("timestamp").dt.cast_time_unit(unit))
    accounts = pl.DataFrame({
        "account_id": ids,
        "start": [change + dt.timedelta(days=draw(st.integers(-3, 1))) for _ in ids]})
    as_of: Any = as_of_day
    kind = draw(st.sampled_from(["date", "naive", "aware"]))
    if kind == "naive":
        as_of = dt.datetime.combine(as_of_day, dt.time(draw(st.integers(0, 23)),
                                                       draw(st.sampled_from([0, 30]))))
    elif kind == "aware":
        as_of = (dt.datetime.combine(as_of_day, dt.time(), tz).astimezone(dt.UTC)
                 + dt.timedelta(minutes=draw(st.sampled_from([0, 30, 60, 90, 120]))))
    return roadmap, events, accounts, as_of, f"{zone} {unit} as_of={as_of!r}"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dst_cases())
def test_changes_at_midnight_match_the_reference(
        case: tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any, str]) -> None:
    roadmap, events, accounts, as_of, how = case
    result = hr.evaluate(roadmap, events, accounts, as_of)
    ref = evaluate_reference(roadmap, events, accounts, as_of)
    problems = compare(result, ref, roadmap)
    assert not problems, "\n".join([how, *problems[:20]])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dst_cases())
def test_history_at_a_change_is_evaluate(
        case: tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any, str]) -> None:
    """``history(...).at(d)`` is ``evaluate(..., d)`` on the days around a change."""
    from healthrules.history import history

    roadmap, events, accounts, as_of, how = case
    day = as_of if not isinstance(as_of, dt.datetime) else as_of.date()
    if isinstance(as_of, dt.datetime) and as_of.tzinfo is not None:
        return  # history evaluates dates
    grid = history(roadmap, events, accounts, day - dt.timedelta(days=2), day, every="1d")
    for d in (day - dt.timedelta(days=2), day - dt.timedelta(days=1), day):
        want = hr.evaluate(roadmap, events, accounts, d).indicators
        got = grid.at(d).indicators
        assert got.equals(want), (how, d, got, want)
