"""A ``Date``-timestamp source in another zone than the evaluation clock.

A ``Date`` is the midnight starting it in its own source's zone (docs/semantics.md, "Several
event sources"), placed by that zone's rules, then read on the default source's clock. The
engine places it with polars' rules, the reference (and explain, the scalar evaluator) with
zoneinfo's; where those two differ, before the source zone's first date (a zone some
databases keep the merged history of: Amsterdam before 1946-10-09 here) and after 2099 (no
daylight saving in polars' rules), the same date is another instant, and on the clock of a
zone where that instant is near midnight, another day. The clock's own checks (``as_of``,
the clock zone's early events) do not see it: a UTC or fixed-offset clock has none. Such an
evaluation is refused (``values_out_of_range`` at the source's timestamp column, naming the
first or last such date); an evaluation that reads no such date is not.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules import inputs
from healthrules.errors import InputDataError
from healthrules.history import history
from healthrules.roadmap import Roadmap
from reference import evaluate_reference
from test_fix10_merged_zones import MERGED_DIFFER, merged_rules  # noqa: F401

AMS = "Europe/Amsterdam"
NY = "America/New_York"
KEYS = ("n_day", "days", "quiet")


def _roadmap(clock: str, zone: str) -> Roadmap:
    """Usage events on ``clock``; visits, with ``Date`` timestamps, in ``zone``."""
    return Roadmap.model_validate({
        "id": "visits", "goal": "g",
        "data": {"events": {
            "usage": {"account": "account_id", "event": "event", "timestamp": "timestamp",
                      "timezone": clock, "user": None},
            "visits": {"account": "account_id", "event": "event", "timestamp": "day",
                       "timezone": zone, "user": None}},
            "accounts": {"key": "account_id"}},
        "indicators": [
            {"id": "n_day", "family": "process", "source": "visits", "aggregate": "count",
             "window": "1d"},
            {"id": "days", "family": "process", "source": "visits",
             "aggregate": "active_days", "window": "30d"},
            {"id": "quiet", "family": "process", "source": "visits",
             "aggregate": "days_since_last", "window": "30d"},
        ],
        "stages": [{"id": "s"}],
    })


def _events(clock: str, days: list[dt.date]) -> dict[str, pl.DataFrame]:
    return {"usage": pl.DataFrame(schema={"account_id": pl.String, "event": pl.String,
                                          "timestamp": pl.Datetime("us", clock)}),
            "visits": pl.DataFrame({"account_id": ["a"] * len(days),
                                    "event": ["visit"] * len(days), "day": days},
                                   schema={"account_id": pl.String, "event": pl.String,
                                           "day": pl.Date})}


ACCOUNTS = pl.DataFrame({"account_id": ["a"]})

# (clock, source zone, as_of, the dates read): Amsterdam's 1930 midnights are 00:00 UTC for
# polars (Brussels' rules) and 23:40:28 the day before for zoneinfo; New York's July 2100
# midnights are 00:00 at -05:00 for polars (EST all year) and 23:00 the day before for
# zoneinfo (EDT)
CASES = [("UTC", AMS, dt.date(1930, 1, 15), [dt.date(1930, 1, 15), dt.date(1930, 1, 10)]),
         ("Etc/GMT+5", NY, dt.date(2100, 7, 10), [dt.date(2100, 7, 10), dt.date(2100, 7, 1)])]


def _engine_and_reference(case: tuple[str, str, dt.date, list[dt.date]],
                          ) -> tuple[dict[str, Any], dict[str, Any]]:
    clock, zone, as_of, days = case
    roadmap, events = _roadmap(clock, zone), _events(clock, days)
    got = hr.evaluate(roadmap, events, ACCOUNTS, as_of).indicators.row(0, named=True)
    want = evaluate_reference(roadmap, events, ACCOUNTS, as_of).accounts["a"].indicators
    return {k: got[k] for k in KEYS}, {k: want[k] for k in KEYS}


def _clock_days(case: tuple[str, str, dt.date, list[dt.date]]) -> tuple[dt.date, dt.date]:
    """The day of the clock the case's first date's midnight falls on, by polars' rules (the
    engine's) and by zoneinfo's (the reference's)."""
    from zoneinfo import ZoneInfo

    clock, zone, _, days = case
    by_zoneinfo = dt.datetime.combine(days[0], dt.time(), ZoneInfo(zone)).astimezone(
        ZoneInfo(clock)).date()
    by_polars = pl.select(pl.lit(dt.datetime.combine(days[0], dt.time())).dt.replace_time_zone(
        zone).dt.convert_time_zone(clock).dt.date()).item()
    return by_polars, by_zoneinfo


@pytest.mark.parametrize("case", CASES, ids=["amsterdam-1930", "new-york-2100"])
def test_the_rules_place_those_dates_on_other_days_of_the_clock(case: Any) -> None:
    """Why the refusal: the engine's day of the date is not the reference's. (Without the
    refusal, the engine gave ``n_day`` 1 and ``quiet`` 0 where the reference gives 0 and 1,
    in both cases.)"""
    if case[1] == AMS and not MERGED_DIFFER:
        pytest.skip("this machine's zoneinfo reads Amsterdam as polars does")
    by_polars, by_zoneinfo = _clock_days(case)
    assert by_polars == case[3][0] and by_zoneinfo == case[3][0] - dt.timedelta(days=1)


@pytest.mark.usefixtures("merged_rules")
@pytest.mark.parametrize("case", CASES, ids=["amsterdam-1930", "new-york-2100"])
def test_the_engine_refuses_a_date_its_rules_place_elsewhere(case: Any) -> None:
    clock, zone, as_of, days = case
    with pytest.raises(InputDataError) as e:
        _engine_and_reference(case)
    [issue] = e.value.issues
    assert issue.code == "values_out_of_range"
    assert (issue.location.file, issue.location.path) == ("<events:visits>", "day")
    assert zone in issue.message and days[1].isoformat() in issue.message  # the earliest
    with pytest.raises(InputDataError):  # history reads the same dates
        history(_roadmap(clock, zone), _events(clock, days), ACCOUNTS,
                as_of - dt.timedelta(days=7), as_of, "1w")


@pytest.mark.usefixtures("merged_rules")
def test_dates_within_the_source_zones_range_are_read() -> None:
    """Dates from the first date to 2099-12-31 (and dates outside the read range) are not
    refused; nor a source in the clock's own zone (the clock's checks see it), nor a
    fixed-offset source."""
    first = inputs.zone_rules_from(AMS)
    assert first is not None
    as_of = first + dt.timedelta(days=40)
    days = [first, as_of, first - dt.timedelta(days=400)]  # the last outside 30 days
    got = hr.evaluate(_roadmap("UTC", AMS), _events("UTC", days), ACCOUNTS, as_of)
    assert got.indicators.row(0, named=True)["days"] == 1
    # the day before the window's first: near enough for the check to read the dates the
    # pass reads, which do not hold it
    as_of = first + dt.timedelta(days=30)  # the 30-day window starts the day after first
    days = [first - dt.timedelta(days=1), as_of]
    got = hr.evaluate(_roadmap("UTC", AMS), _events("UTC", days), ACCOUNTS, as_of)
    assert got.indicators.row(0, named=True)["days"] == 1
    # its midnight in Amsterdam is 23:00 UTC the day before: a window three days earlier
    # reads it, and is refused
    hr.evaluate(_roadmap("UTC", AMS), _events("UTC", days), ACCOUNTS,
                as_of - dt.timedelta(days=2))
    with pytest.raises(InputDataError):
        hr.evaluate(_roadmap("UTC", AMS), _events("UTC", days), ACCOUNTS,
                    as_of - dt.timedelta(days=3))
    for clock, zone, on in (("Etc/GMT+5", NY, dt.date(2099, 12, 31)),
                            ("UTC", "Etc/GMT+1", dt.date(1930, 1, 15))):
        got = hr.evaluate(_roadmap(clock, zone), _events(clock, [on]), ACCOUNTS, on)
        assert got.indicators.row(0, named=True)["n_day"] == 1
