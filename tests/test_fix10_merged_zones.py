"""Zones whose older history differs between the engine's rules and zoneinfo's.

Recent releases of the time-zone database merged about a hundred zones into others
(Europe/Amsterdam into Europe/Brussels, Africa/Accra into Africa/Abidjan); polars' rules
(chrono-tz) read the merged ones, while some builds of the database that ``zoneinfo`` reads
(this machine's) keep each zone's own older history: in June 1930 Amsterdam is +01:19:32
for zoneinfo and +01:00 for polars. The engine (polars) and explain, the scalar evaluator
and the reference (zoneinfo) would put the same instant on other days there. The engine
finds, once per zone, the first date from which the two agree up to 2099
(``zone_rules_from``) and refuses an ``as_of``, a history date or a date or datetime
attribute before it, as it refuses dates after 2099 (docs/semantics.md, "Time";
``tests/test_zone_years.py``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest

import healthrules as hr
from healthrules import inputs
from healthrules.cli import main
from healthrules.errors import InputDataError
from healthrules.inputs import ZONE_DATES, zone_rules_from
from healthrules.roadmap import Roadmap
from reference import evaluate_reference
from zoned_frames import cli_evaluate_args, utc_events

UTC = dt.UTC
AMS = "Europe/Amsterdam"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


def _polars_offsets(instants: list[dt.datetime], zone: str) -> list[int]:
    s = pl.Series(instants, dtype=pl.Datetime("us", "UTC"))
    wall = s.dt.convert_time_zone(zone).dt.replace_time_zone(None)
    return ((wall.cast(pl.Int64) - s.dt.replace_time_zone(None).cast(pl.Int64))
            // 1_000_000).to_list()


def _zoneinfo_offsets(instants: list[dt.datetime], zone: str) -> list[int]:
    info = ZoneInfo(zone)
    return [int(t.astimezone(info).utcoffset().total_seconds())  # type: ignore[union-attr]
            for t in instants]


def _differing(instants: list[dt.datetime], zone: str) -> list[dt.datetime]:
    return [t for t, a, b in zip(instants, _polars_offsets(instants, zone),
                                 _zoneinfo_offsets(instants, zone), strict=True) if a != b]


MERGED_DIFFER = bool(_differing([dt.datetime(1930, 6, 1, tzinfo=UTC)], AMS))
"""Whether this machine's zoneinfo keeps Amsterdam's own history (its database's build)."""
EMULATED_FIRST = {AMS: dt.date(1946, 10, 9), "Africa/Accra": dt.date(1956, 1, 4)}
"""The first dates of a database that keeps the merged zones' own history (this machine's)."""


@pytest.fixture
def merged_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """The refusals below run on every machine: where zoneinfo reads Amsterdam as polars does
    (a database built without the merged zones' history), the first dates such a database
    gives are put in place of this machine's, so the refusal path is the same code."""
    if MERGED_DIFFER:
        return
    real = inputs.zone_rules_from

    def emulated(time_zone: str) -> dt.date | None:
        return EMULATED_FIRST.get(time_zone) or real(time_zone)

    def emulated_instant(time_zone: str) -> dt.datetime | None:
        first = EMULATED_FIRST.get(time_zone)
        if first is None:
            return real_instant(time_zone)
        return dt.datetime.combine(first - dt.timedelta(days=2), dt.time())

    real_instant = inputs.zone_agrees_from
    monkeypatch.setattr(inputs, "zone_rules_from", emulated)
    # (the instant from which they agree, tests/test_fix11_early_events.py: two days before)
    monkeypatch.setattr(inputs, "zone_agrees_from", emulated_instant)


@pytest.mark.parametrize("zone", [AMS, "Africa/Accra", "Europe/Oslo", "Atlantic/Reykjavik",
                                  "America/New_York", "Europe/Berlin", "Asia/Kolkata",
                                  "Pacific/Chuuk"])
def test_the_first_date_is_where_the_two_rules_stop_differing(zone: str) -> None:
    first = zone_rules_from(zone)
    assert first is not None and ZONE_DATES[0] <= first <= ZONE_DATES[1]
    # every UTC midnight and noon of 1900 to 2099 (an independent scan)
    start = dt.datetime(1900, 1, 1, tzinfo=UTC)
    grid = [start + dt.timedelta(hours=12 * i) for i in range(2 * 73_049)]
    bound = dt.datetime.combine(first, dt.time(), UTC) - dt.timedelta(days=1)
    assert [t for t in _differing(grid, zone) if t >= bound] == []
    if first > ZONE_DATES[0]:  # tight: the rules differ in the days just before it
        minutes = [bound - dt.timedelta(minutes=m) for m in range(1, 10 * 1440)]
        assert _differing(minutes, zone), (zone, first)


def test_the_first_date_is_cached_and_unknown_zones_are_left_alone() -> None:
    assert zone_rules_from(AMS) is zone_rules_from(AMS)
    assert zone_rules_from("Not/AZone") == ZONE_DATES[0]  # refused at load (unknown_timezone)


def test_the_merged_zones_differ_here() -> None:
    if not MERGED_DIFFER:  # the two rules agree in 1930: the check must not refuse it
        assert zone_rules_from(AMS) <= dt.date(1930, 6, 1)  # type: ignore[operator]
        return
    # why the check: the same instant on other days for the engine and the reference
    assert zone_rules_from(AMS) > dt.date(1930, 6, 1)  # type: ignore[operator]
    assert zone_rules_from("Africa/Accra") > dt.date(1930, 6, 1)  # type: ignore[operator]
    instant = dt.datetime(1930, 6, 1, 22, 50, tzinfo=UTC)
    polars_wall = (pl.Series([instant]).dt.convert_time_zone(AMS)
                   .dt.replace_time_zone(None).item())
    assert polars_wall == dt.datetime(1930, 6, 1, 23, 50)
    assert instant.astimezone(ZoneInfo(AMS)).replace(tzinfo=None) == dt.datetime(
        1930, 6, 2, 0, 9, 32)


def _roadmap(zone: str) -> Roadmap:
    return Roadmap.model_validate({
        "id": "mz", "goal": "g",
        "data": {"events": {"values": {}, "timezone": zone},
                 "accounts": {"attributes": {"renewal": "datetime", "signed": "date"}}},
        "indicators": [
            {"id": "n1", "family": "process", "aggregate": "count", "window": "1d"},
            {"id": "days", "family": "process", "aggregate": "active_days", "window": "30d"},
            {"id": "anchored", "family": "process", "aggregate": "count",
             "window": {"from": "signed", "days": 1}},
            {"id": "to_renewal", "family": "process", "expr": "days_between(as_of, renewal)"},
        ],
        "stages": [{"id": "s"}],
    })


def _frames(zone: str, stamps: list[dt.datetime], renewal: dt.datetime,
            signed: dt.date) -> tuple[pl.DataFrame, pl.DataFrame]:
    events = utc_events(zone, stamps)
    accounts = pl.DataFrame(
        {"account_id": ["a"], "renewal": [renewal], "signed": [signed]},
        schema={"account_id": pl.String, "renewal": pl.Datetime("us", "UTC"),
                "signed": pl.Date},
    ).with_columns(pl.col("renewal").dt.convert_time_zone(zone))
    return events, accounts


def _refused(zone: str, as_of: Any, renewal: dt.datetime, signed: dt.date) -> InputDataError:
    events, accounts = _frames(zone, [dt.datetime(1999, 1, 1, tzinfo=UTC)], renewal, signed)
    with pytest.raises(InputDataError) as e:
        hr.evaluate(_roadmap(zone), events, accounts, as_of)
    return e.value


@pytest.mark.usefixtures("merged_rules")
@pytest.mark.parametrize("as_of", [
    dt.date(1930, 6, 1), dt.datetime(1930, 6, 1, 12), "1930-06-01",
    dt.datetime(1930, 6, 1, 12, tzinfo=UTC), dt.date(1900, 1, 1),
])
@pytest.mark.parametrize("zone", [AMS, "Africa/Accra"])
def test_an_as_of_before_the_first_date_is_refused(zone: str, as_of: Any) -> None:
    first = inputs.zone_rules_from(zone)
    assert first is not None
    err = _refused(zone, as_of, dt.datetime(2000, 1, 1, tzinfo=UTC), dt.date(2000, 1, 1))
    [issue] = err.issues
    assert issue.code == "bad_as_of" and issue.location.file == "<as_of>"
    assert first.isoformat() in issue.message and zone in issue.message
    assert issue.hint is not None and first.isoformat() in issue.hint


@pytest.mark.usefixtures("merged_rules")
@pytest.mark.parametrize(("renewal", "signed", "column"), [
    (dt.datetime(1930, 6, 1, 22, 50, tzinfo=UTC), dt.date(2000, 1, 1), "renewal"),
    (dt.datetime(2000, 1, 1, tzinfo=UTC), dt.date(1930, 6, 2), "signed"),
])
def test_an_attribute_before_the_first_date_is_refused_naming_its_column(
        renewal: dt.datetime, signed: dt.date, column: str) -> None:
    err = _refused(AMS, dt.date(2000, 1, 1), renewal, signed)
    [issue] = err.issues
    assert issue.code == "values_out_of_range"
    assert issue.location.file == "<accounts>" and issue.location.path == column
    assert str(inputs.zone_rules_from(AMS)) in issue.message


@pytest.mark.usefixtures("merged_rules")
def test_history_dates_before_the_first_date_are_refused() -> None:
    first = inputs.zone_rules_from(AMS)
    assert first is not None
    events, accounts = _frames(AMS, [dt.datetime(1999, 1, 1, tzinfo=UTC)],
                               dt.datetime(2000, 1, 1, tzinfo=UTC), dt.date(2000, 1, 1))
    h = hr.history(_roadmap(AMS), events, accounts, start=first,
                   end=first + dt.timedelta(days=2), every="1d")
    assert h.dates[0] == first
    with pytest.raises(InputDataError) as e:
        hr.history(_roadmap(AMS), events, accounts, start=first - dt.timedelta(days=1),
                   end=first + dt.timedelta(days=2), every="1d")
    assert [i.code for i in e.value.issues] == ["bad_as_of"]


@pytest.mark.usefixtures("merged_rules")
def test_the_cli_refuses_an_as_of_before_the_first_date(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events, _ = _frames(AMS, [dt.datetime(1999, 7, 1, 16, tzinfo=UTC)],
                        dt.datetime(2000, 1, 1, tzinfo=UTC), dt.date(2000, 1, 1))
    args = cli_evaluate_args(tmp_path, AMS, "1d", events)
    assert main([*args, "--as-of", "1999-07-01"]) == 0
    capsys.readouterr()
    assert main([*args, "--as-of", "1930-06-01"]) == 1
    err = capsys.readouterr().err
    assert "bad_as_of" in err and str(inputs.zone_rules_from(AMS)) in err
    assert "Traceback" not in err


@pytest.mark.parametrize("zone", [AMS, "Africa/Accra", "Europe/Oslo"])
def test_from_the_first_date_on_the_engine_matches_the_reference(zone: str) -> None:
    first = inputs.zone_rules_from(zone)
    assert first is not None
    roadmap = _roadmap(zone)
    for day in (first, first + dt.timedelta(days=1), dt.date(1977, 7, 1)):
        # instants around the zone's midnights of that day and the day before
        base = dt.datetime.combine(day, dt.time(), UTC)
        stamps = [base + dt.timedelta(hours=h, minutes=m) for h in (-26, -23, -22, -2, -1, 0,
                                                                     21, 22, 23)
                  for m in (0, 15, 45)]
        renewal = base + dt.timedelta(hours=22, minutes=50)
        events, accounts = _frames(zone, stamps, renewal, day)
        got = hr.evaluate(roadmap, events, accounts, day).indicators.row(0, named=True)
        want = evaluate_reference(roadmap, events, accounts, day).accounts["a"].indicators
        keys = ("n1", "days", "anchored", "to_renewal")
        assert {k: got[k] for k in keys} == {k: want[k] for k in keys}, (zone, day)


def test_a_zone_polars_cannot_read_is_an_unknown_timezone() -> None:
    # refused at load (docs/format.md); here the engine's own check, should one get through
    from healthrules.inputs import zone_dates_issue

    assert inputs.zone_rules_from("posix/Europe/Paris") is None  # zoneinfo reads it, polars not
    issue = zone_dates_issue("posix/Europe/Paris", dt.date(2026, 1, 1), "as_of", "as_of")
    assert issue is not None and issue.code == "unknown_timezone"
    assert issue.location.path == "data.events.timezone"
    assert zone_dates_issue(AMS, dt.date(2026, 1, 1), "as_of", "as_of") is None
