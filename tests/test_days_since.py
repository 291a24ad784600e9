"""One meaning of "days since" (issue #11): calendar days in the events' time zone.

``days_since_last`` / ``days_since_first`` (aggregates) and ``days_since()`` (the function)
count the calendar days from the event's local date to the as_of date (docs/semantics.md,
"Time"). The engine, history, the scalar evaluator and the reference evaluator agree: an event
at 00:00 on the as_of day is 0 days ago, so is one at its last microsecond, and date-only
event data is not shifted by a day.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest

import healthrules as hr
from healthrules.roadmap import Roadmap
from healthrules.scalar import evaluate as scalar_evaluate
from reference import evaluate_reference

AS_OF = dt.date(2026, 6, 30)


def _roadmap(timezone: str | None = None) -> Roadmap:
    return Roadmap.model_validate({
        "id": "ds", "goal": "g",
        "data": {"events": {"user": None, "timezone": timezone}},
        "indicators": [
            {"id": "dsl", "family": "process", "aggregate": "days_since_last"},
            {"id": "dsf", "family": "process", "aggregate": "days_since_first"},
            {"id": "last", "family": "process", "aggregate": "last_time"},
            {"id": "dsl_prev", "family": "process", "aggregate": "days_since_last",
             "window": "7d", "compare": "previous"},
            {"id": "fn", "family": "process", "expr": "days_since(last)"},
        ],
        "stages": [{"id": "s"}],
    })


def _case(stamps: list[dt.datetime], timezone: str | None = None,
          as_of: dt.date | dt.datetime = AS_OF) -> dict[str, Any]:
    roadmap = _roadmap(timezone)
    # naive wall times on the events' clock
    ts = pl.Series(stamps, dtype=pl.Datetime("us")).dt.replace_time_zone(timezone)
    events = pl.DataFrame({
        "account_id": ["a"] * len(stamps), "event": ["login"] * len(stamps), "timestamp": ts})
    accounts = pl.DataFrame({"account_id": ["a"]})
    got = hr.evaluate(roadmap, events, accounts, as_of).indicators.row(0, named=True)
    ref = evaluate_reference(roadmap, events, accounts, as_of).accounts["a"].indicators
    for name in ("dsl", "dsf", "dsl_prev", "fn"):
        assert got[name] == ref[name], name
    # days_since_last is days_since(last_time), in the engine and in the scalar evaluator
    assert got["dsl"] == got["fn"]
    day = as_of.date() if isinstance(as_of, dt.datetime) else as_of
    assert scalar_evaluate("days_since(t)", {"t": got["last"]}, as_of=day) == got["dsl"]
    return got


@pytest.mark.parametrize("timezone", [None, "UTC", "America/New_York"])
def test_midnight_and_last_microsecond_of_the_as_of_day_are_0_days_ago(
        timezone: str | None) -> None:
    midnight = dt.datetime(2026, 6, 30)
    assert _case([midnight], timezone)["dsl"] == 0  # was 1 (counted to the stop, 07-01 00:00)
    last_us = dt.datetime(2026, 6, 30, 23, 59, 59, 999999)
    assert _case([last_us], timezone)["dsl"] == 0
    assert _case([dt.datetime(2026, 6, 29, 23, 59, 59, 999999)], timezone)["dsl"] == 1
    got = _case([dt.datetime(2026, 6, 20), midnight], timezone)
    assert (got["dsf"], got["dsl"]) == (10, 0)


def test_previous_window_counts_to_as_of_minus_n_days() -> None:
    # the previous 7-day window's last day is 06-23: an event at 06-23 00:00 is 0 days ago
    got = _case([dt.datetime(2026, 6, 23), dt.datetime(2026, 6, 30, 12)])
    assert (got["dsl_prev"], got["dsl"]) == (0, 0)
    got = _case([dt.datetime(2026, 6, 22, 23, 59, 59, 999999)])
    assert got["dsl_prev"] == 1


def test_datetime_as_of_counts_calendar_days_to_its_date() -> None:
    # as_of 06-30 08:00: yesterday evening is 1 day ago (was 0: less than 24 hours)
    got = _case([dt.datetime(2026, 6, 29, 20)], as_of=dt.datetime(2026, 6, 30, 8))
    assert got["dsl"] == 1
    got = _case([dt.datetime(2026, 6, 30, 7)], as_of=dt.datetime(2026, 6, 30, 8))
    assert got["dsl"] == 0
    # as_of exactly at midnight: the as_of date is 06-30, an event the evening before is 1
    got = _case([dt.datetime(2026, 6, 29, 23)], as_of=dt.datetime(2026, 6, 30))
    assert got["dsl"] == 1


def test_local_calendar_day_in_the_events_time_zone() -> None:
    # 2026-06-30 02:00 UTC is 06-29 22:00 in New York: 1 day before as_of there
    utc = dt.datetime(2026, 6, 30, 2, tzinfo=dt.UTC)
    ny = utc.astimezone(ZoneInfo("America/New_York")).replace(tzinfo=None)
    assert _case([ny], "America/New_York")["dsl"] == 1
    assert _case([dt.datetime(2026, 6, 30, 2)], "UTC")["dsl"] == 0


@pytest.mark.parametrize("timezone", [None, "America/New_York"])
def test_history_counts_the_same_days_as_evaluate(timezone: str | None) -> None:
    roadmap = _roadmap(timezone)
    stamps = [dt.datetime(2026, 6, 20), dt.datetime(2026, 6, 23),
              dt.datetime(2026, 6, 28, 23, 59, 59, 999999), dt.datetime(2026, 6, 30)]
    ts = pl.Series(stamps, dtype=pl.Datetime("us")).dt.replace_time_zone(timezone)
    events = pl.DataFrame({"account_id": ["a"] * 4, "event": ["login"] * 4, "timestamp": ts})
    accounts = pl.DataFrame({"account_id": ["a"]})
    h = hr.history(roadmap, events, accounts, "2026-06-27", "2026-06-30", every="1d")
    cols = ["dsl", "dsf", "dsl_prev", "fn"]
    for day in h.dates:
        one = hr.evaluate(roadmap, events, accounts, day).indicators.select(cols)
        row = h.indicators.filter(pl.col("as_of") == day).select(cols)
        assert row.rows() == one.rows(), day
    last = h.indicators.filter(pl.col("as_of") == dt.date(2026, 6, 30)).row(0, named=True)
    assert (last["dsl"], last["dsf"], last["dsl_prev"]) == (0, 10, 0)


@pytest.mark.parametrize("timezone", [None, "UTC", "America/New_York"])
def test_date_only_events_are_midnight_of_their_day(timezone: str | None) -> None:
    roadmap = Roadmap.model_validate({
        "id": "d", "goal": "g",
        "indicators": [
            {"id": "dsl", "family": "process", "aggregate": "days_since_last"},
            {"id": "dsf", "family": "process", "aggregate": "days_since_first"},
            {"id": "n7", "family": "process", "aggregate": "count", "window": "7d"},
            {"id": "days", "family": "process", "aggregate": "active_days", "window": "30d"},
            {"id": "since", "family": "process", "aggregate": "days_since_last",
             "window": {"from": "start", "days": 7}},
            {"id": "fn", "family": "process", "expr": "days_since(last)"},
            {"id": "last", "family": "process", "aggregate": "last_time"},
        ],
        "stages": [{"id": "s"}],
        "data": {"events": {"user": None, "timezone": timezone},
                 "accounts": {"attributes": {"start": "date"}}},
    })
    days = [dt.date(2026, 6, 20), dt.date(2026, 6, 24), dt.date(2026, 6, 30)]
    events = pl.DataFrame({"account_id": ["a"] * 3, "event": ["login"] * 3, "timestamp": days})
    accounts = pl.DataFrame({"account_id": ["a"], "start": [dt.date(2026, 6, 20)]})
    got = hr.evaluate(roadmap, events, accounts, AS_OF).indicators.row(0, named=True)
    # an event on the as_of date is 0 days ago (was refused: a Date column was an error);
    # the anchored window [06-20, 06-27) ends on 06-26, 2 days after its last event
    assert (got["dsl"], got["dsf"], got["n7"], got["days"], got["since"]) == (0, 10, 2, 3, 2)
    assert got["fn"] == 0
    last = dt.datetime(2026, 6, 30)
    assert got["last"].replace(tzinfo=None) == last
    ref = evaluate_reference(roadmap, events, accounts, AS_OF).accounts["a"].indicators
    for name in ("dsl", "dsf", "n7", "days", "since", "fn"):
        assert got[name] == ref[name], name
    h = hr.history(roadmap, events, accounts, "2026-06-29", "2026-06-30", every="1d")
    row = h.indicators.filter(pl.col("as_of") == AS_OF).row(0, named=True)
    assert all(row[n] == got[n] for n in ("dsl", "dsf", "n7", "days", "since", "fn"))
