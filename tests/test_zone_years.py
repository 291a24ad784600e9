"""Dates outside 1900 to 2099 in zones with daylight-saving changes.

polars' zone rules (chrono-tz) hold no daylight-saving change after 2099 (a zone keeps the
offset of its last change of 2099), while zoneinfo, which the reference evaluator, the scalar
evaluator (explain) and the literals of ``healthrules.inputs`` read, goes on applying the
zone's rule: from 14 March 2100 on, New York's summer wall times are an hour apart between
the two. Before 1900 some zones' local mean times differ too (Africa/Accra). So the engine
would silently disagree with the reference there; it refuses instead (docs/semantics.md,
"Time"): an ``as_of`` (a date, a datetime, a string; a history date) outside 1900-01-01 to
2099-12-31 is a ``bad_as_of`` error, a date or datetime attribute outside it a
``values_out_of_range`` error naming the column, in any zone with daylight-saving changes.
UTC and fixed-offset zones are not restricted. Events are read only up to the evaluation's
end (the midnight that ends 2099-12-31 at the latest, an instant where every zone's rules
still agree).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest

import healthrules as hr
from healthrules.cli import main
from healthrules.errors import InputDataError
from healthrules.inputs import ZONE_DATES
from healthrules.roadmap import Roadmap
from reference import evaluate_reference
from zoned_frames import cli_evaluate_args

NY = "America/New_York"
UTC = dt.UTC


def _roadmap(zone: str) -> Roadmap:
    return Roadmap.model_validate({
        "id": "zy", "goal": "g",
        "data": {"events": {"values": {}, "timezone": zone},
                 "accounts": {"attributes": {"renewal": "datetime", "signed": "date"}}},
        "indicators": [
            {"id": "n1", "family": "process", "aggregate": "count", "window": "1d"},
            {"id": "days", "family": "process", "aggregate": "active_days", "window": "30d"},
            {"id": "last", "family": "process", "aggregate": "days_since_last"},
            {"id": "anchored", "family": "process", "aggregate": "count",
             "window": {"from": "signed", "days": 1}},
            {"id": "to_renewal", "family": "process", "expr": "days_between(as_of, renewal)"},
        ],
        "stages": [{"id": "s"}],
    })


def _frames(zone: str, stamps: list[dt.datetime], renewal: dt.datetime,
            signed: dt.date) -> tuple[pl.DataFrame, pl.DataFrame]:
    events = pl.DataFrame(
        {"account_id": ["a"] * len(stamps), "user_id": ["u"] * len(stamps),
         "event": ["x"] * len(stamps), "timestamp": stamps},
        schema={"account_id": pl.String, "user_id": pl.String, "event": pl.String,
                "timestamp": pl.Datetime("us", zone)})
    accounts = pl.DataFrame(
        {"account_id": ["a"], "renewal": [renewal], "signed": [signed]},
        schema={"account_id": pl.String, "renewal": pl.Datetime("us", zone),
                "signed": pl.Date})
    return events, accounts


def _both(zone: str, stamps: list[dt.datetime], as_of: Any, renewal: dt.datetime,
          signed: dt.date) -> tuple[dict[str, Any], dict[str, Any]]:
    roadmap = _roadmap(zone)
    events, accounts = _frames(zone, stamps, renewal, signed)
    got = hr.evaluate(roadmap, events, accounts, as_of).indicators.row(0, named=True)
    ref = evaluate_reference(roadmap, events, accounts, as_of).accounts["a"].indicators
    return ({k: got[k] for k in ("n1", "days", "last", "anchored", "to_renewal")},
            {k: ref[k] for k in ("n1", "days", "last", "anchored", "to_renewal")})


def _refused(zone: str, as_of: Any, *, renewal: dt.datetime | None = None,
             signed: dt.date = dt.date(2099, 1, 1)) -> InputDataError:
    stamps = [dt.datetime(2099, 7, 1, 4, 30, tzinfo=UTC)]
    renewal = renewal or dt.datetime(2099, 7, 1, 12, tzinfo=UTC)
    roadmap = _roadmap(zone)
    events, accounts = _frames(zone, stamps, renewal, signed)
    with pytest.raises(InputDataError) as e:
        hr.evaluate(roadmap, events, accounts, as_of)
    return e.value


def test_the_rules_differ_after_2099() -> None:
    # why the bound: 04:30 UTC on 1 July 2100 is 00:30 EDT for zoneinfo, 23:30 EST on 30 June
    # for polars (no daylight saving after 2099); in 2099 both read 00:30 EDT
    for year, same in ((2099, True), (2100, False)):
        instant = dt.datetime(year, 7, 1, 4, 30, tzinfo=UTC)
        polars_wall = (pl.Series([instant]).dt.convert_time_zone(NY)
                       .dt.replace_time_zone(None).item())
        zoneinfo_wall = instant.astimezone(ZoneInfo(NY)).replace(tzinfo=None)
        assert (polars_wall == zoneinfo_wall) is same
    assert ZONE_DATES == (dt.date(1900, 1, 1), dt.date(2099, 12, 31))


@pytest.mark.parametrize("as_of", [
    dt.date(2100, 7, 1), dt.datetime(2100, 7, 1, 12), "2100-07-01",
    dt.datetime(2100, 7, 1, 16, tzinfo=UTC), dt.date(2100, 1, 1), dt.date(1899, 12, 31),
    dt.datetime(1899, 12, 31, 23, 59), dt.date(9000, 1, 1),
])
def test_an_as_of_out_of_range_in_a_daylight_saving_zone_is_refused(as_of: Any) -> None:
    err = _refused(NY, as_of)
    [issue] = err.issues
    assert issue.code == "bad_as_of"
    assert issue.location.file == "<as_of>"
    assert "1900-01-01 to 2099-12-31" in issue.message and NY in issue.message


def test_a_zone_without_daylight_saving_now_is_refused_too() -> None:
    # Africa/Accra has had no change since 1942, but polars and zoneinfo differ on its local
    # mean time before 1900: only UTC and fixed offsets are unrestricted
    assert _refused("Africa/Accra", dt.date(2100, 7, 1)).issues[0].code == "bad_as_of"
    assert _refused("Europe/Berlin", dt.date(1850, 1, 1)).issues[0].code == "bad_as_of"


def test_the_last_and_first_dates_of_the_range_match_the_reference() -> None:
    # the midnight that ends 2099-12-31 (05:00 UTC in New York) is still exact; events on the
    # last day at 04:30 UTC (23:30 EST the day before) and at 04:59 UTC
    stamps = [dt.datetime(2099, 12, 31, 4, 30, tzinfo=UTC),
              dt.datetime(2100, 1, 1, 4, 59, tzinfo=UTC),
              dt.datetime(2099, 7, 1, 4, 30, tzinfo=UTC)]
    renewal = dt.datetime(2099, 12, 31, 23, tzinfo=UTC)
    engine, reference = _both(NY, stamps, dt.date(2099, 12, 31), renewal, dt.date(2099, 12, 30))
    assert engine == reference
    assert engine["n1"] == 1 and engine["anchored"] == 1
    engine, reference = _both(NY, [dt.datetime(1900, 1, 1, 5, tzinfo=UTC)],
                              dt.date(1900, 1, 1), dt.datetime(1900, 1, 2, tzinfo=UTC),
                              dt.date(1900, 1, 1))
    assert engine == reference
    assert engine["n1"] == 1


@pytest.mark.parametrize("zone", ["UTC", "Etc/GMT+5", "Etc/GMT-14"])
def test_utc_and_fixed_offsets_are_not_restricted(zone: str) -> None:
    stamps = [dt.datetime(2150, 7, 1, 4, 30, tzinfo=UTC), dt.datetime(1850, 7, 1, tzinfo=UTC)]
    for as_of in (dt.date(2150, 7, 1), dt.datetime(2150, 7, 1, 12), dt.date(1850, 7, 1)):
        engine, reference = _both(zone, stamps, as_of,
                                  dt.datetime(2150, 7, 3, 4, 30, tzinfo=UTC),
                                  dt.date(2150, 6, 30))
        assert engine == reference


@pytest.mark.parametrize(("renewal", "signed", "column"), [
    (dt.datetime(2100, 7, 1, 4, 30, tzinfo=UTC), dt.date(2099, 1, 1), "renewal"),
    (dt.datetime(2099, 7, 1, tzinfo=UTC), dt.date(2100, 7, 1), "signed"),
    (dt.datetime(2099, 7, 1, tzinfo=UTC), dt.date(1899, 7, 1), "signed"),
])
def test_a_date_attribute_out_of_range_is_refused_naming_its_column(
        renewal: dt.datetime, signed: dt.date, column: str) -> None:
    # days_between(as_of, renewal) reads the renewal's wall date: 1 July 2100 for zoneinfo,
    # 30 June for polars; an anchored window starting at 2100-07-01 would start at another
    # instant
    err = _refused(NY, dt.date(2099, 7, 1), renewal=renewal, signed=signed)
    [issue] = err.issues
    assert issue.code == "values_out_of_range"
    assert issue.location.file == "<accounts>" and issue.location.path == column
    assert "1900-01-01 to 2099-12-31" in issue.message and NY in issue.message


def test_a_null_attribute_is_not_a_date_out_of_range() -> None:
    roadmap = _roadmap(NY)
    events, accounts = _frames(NY, [dt.datetime(2099, 7, 1, 16, tzinfo=UTC)],
                               dt.datetime(2099, 7, 1, tzinfo=UTC), dt.date(2099, 1, 1))
    accounts = accounts.with_columns(pl.lit(None, pl.Date).alias("signed"))
    got = hr.evaluate(roadmap, events, accounts, dt.date(2099, 7, 1))
    assert got.indicators["n1"].item() == 1


def test_history_dates_out_of_range_are_refused() -> None:
    roadmap = _roadmap(NY)
    events, accounts = _frames(NY, [dt.datetime(2099, 12, 30, 12, tzinfo=UTC)],
                               dt.datetime(2099, 7, 1, tzinfo=UTC), dt.date(2099, 1, 1))
    h = hr.history(roadmap, events, accounts, start=dt.date(2099, 12, 30),
                   end=dt.date(2099, 12, 31), every="1d")
    assert h.dates == (dt.date(2099, 12, 30), dt.date(2099, 12, 31))
    for start, end in ((dt.date(2099, 12, 30), dt.date(2100, 1, 2)),
                       (dt.date(1899, 12, 30), dt.date(1900, 1, 2))):
        with pytest.raises(InputDataError) as e:
            hr.history(roadmap, events, accounts, start=start, end=end, every="1d")
        assert [i.code for i in e.value.issues] == ["bad_as_of"]


def test_the_cli_refuses_an_as_of_out_of_range(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    events, _ = _frames(NY, [dt.datetime(2099, 7, 1, 16, tzinfo=UTC)],
                        dt.datetime(2099, 7, 1, tzinfo=UTC), dt.date(2099, 1, 1))
    args = cli_evaluate_args(tmp_path, NY, "1d", events)
    assert main([*args, "--as-of", "2099-07-01"]) == 0
    capsys.readouterr()
    assert main([*args, "--as-of", "2100-07-01"]) == 1
    err = capsys.readouterr().err
    assert "bad_as_of" in err or "1900-01-01 to 2099-12-31" in err
    assert "2099-12-31" in err


def test_history_refuses_an_attribute_out_of_range() -> None:
    events, accounts = _frames(NY, [dt.datetime(2099, 7, 1, 16, tzinfo=UTC)],
                               dt.datetime(2100, 7, 1, tzinfo=UTC), dt.date(2099, 1, 1))
    with pytest.raises(InputDataError) as e:
        hr.history(_roadmap(NY), events, accounts, start="2099-06-01", end="2099-07-01")
    [issue] = e.value.issues
    assert issue.code == "values_out_of_range" and issue.location.path == "renewal"
