"""Midnights that a daylight-saving change skips or repeats: the engine against the reference.

America/Santiago skips 2026-09-06 00:00 (the clocks go from 00:00 -04 to 01:00 -03), America/
Havana and Atlantic/Azores skip a midnight in March and repeat one in the autumn (01:00 back to
00:00). docs/semantics.md, "Time": a wall time that does not exist is read with the offset
before the change (00:00 -04 is the instant 01:00 -03), a repeated one as its earlier instant
(Python's ``fold=0``). So a `Date` event on such a day, a `date` attribute anchoring a window
there, a window whose ``anchor + days`` or ``end - N days`` lands on such a midnight, and the
end of every date of ``history`` are instants, never polars' ComputeError ("datetime ... is
non-existent in time zone"), and the engine, ``explain`` and ``tests/reference.py`` agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import healthrules as hr
from healthrules.inputs import zoned_wall_time
from healthrules.roadmap import Roadmap
from test_engine_vs_reference import assert_matches_reference

Draw = Callable[[st.SearchStrategy[Any]], Any]

# (zone, the day whose midnight a change skips or repeats, which)
MIDNIGHTS = [
    ("America/Santiago", dt.date(2026, 9, 6), "skipped"),  # 00:00 -04 -> 01:00 -03
    ("America/Havana", dt.date(2026, 3, 8), "skipped"),  # 00:00 CST -> 01:00 CDT
    ("America/Havana", dt.date(2026, 11, 1), "repeated"),  # 01:00 CDT -> 00:00 CST
    ("Atlantic/Azores", dt.date(2026, 3, 29), "skipped"),  # 00:00 -01 -> 01:00 +00
    ("Atlantic/Azores", dt.date(2026, 10, 25), "repeated"),  # 01:00 +00 -> 00:00 -01
]
IDS = [f"{z}-{d}-{k}" for z, d, k in MIDNIGHTS]


def _midnight(day: dt.date, zone: str) -> dt.datetime:
    """The instant a day starts on the zone's wall clock, as zoneinfo reads it (fold=0), on
    the zone's clock (01:00 -03 for Santiago's 2026-09-06)."""
    z = ZoneInfo(zone)
    return dt.datetime.combine(day, dt.time(), tzinfo=z).astimezone(dt.UTC).astimezone(z)


def _roadmap(zone: str) -> Roadmap:
    windows = ["1d", "7d"]
    indicators: list[dict[str, Any]] = []
    for w in windows:
        indicators += [
            {"id": f"count_{w}", "aggregate": "count", "window": w, "compare": "delta"},
            {"id": f"sum_{w}", "aggregate": "sum", "of": "value", "window": w},
            {"id": f"active_{w}", "aggregate": "active_days", "window": w,
             "compare": "previous"},
            {"id": f"last_{w}", "aggregate": "days_since_last", "window": w,
             "compare": "previous"},
        ]
    indicators += [
        {"id": "first_all", "aggregate": "days_since_first"},
        {"id": "last_time", "aggregate": "last_time"},
        {"id": "from_start_1", "aggregate": "count", "window": {"from": "start", "days": 1}},
        {"id": "from_start_3", "aggregate": "sum", "of": "value",
         "window": {"from": "start", "days": 3}},
        {"id": "since_start_3", "aggregate": "days_since_last",
         "window": {"from": "start", "days": 3}},
        {"id": "open_start", "aggregate": "active_days", "window": {"from": "start"}},
        {"id": "from_since_2", "aggregate": "count", "window": {"from": "since", "days": 2}},
        {"id": "since_since_2", "aggregate": "days_since_last",
         "window": {"from": "since", "days": 2}},
        # a date compared with a datetime: midnight on the datetime's wall clock
        {"id": "after_start", "expr": "1 if last_time >= start else 0"},
    ]
    for ind in indicators:
        ind["family"] = "process"
    return Roadmap.model_validate({
        "id": "midnight", "goal": "g",
        "data": {"events": {"values": {"value": "float"}, "timezone": zone, "user": None},
                 "accounts": {"attributes": {"start": "date", "since": "datetime"}}},
        "indicators": indicators,
        "stages": [{"id": "started", "entry": "last_time >= start"}, {"id": "other"}],
    })


def _events(stamps: list[Any], values: list[float | None], zone: str,
            accounts: list[str] | None = None) -> pl.DataFrame:
    dated = any(type(s) is dt.date for s in stamps)
    ts: pl.DataType = pl.Date() if dated else pl.Datetime("us", zone)
    return pl.DataFrame(
        {"account_id": accounts or ["a"] * len(stamps), "event": ["x"] * len(stamps),
         "timestamp": stamps, "value": values},
        schema={"account_id": pl.String, "event": pl.String, "timestamp": ts,
                "value": pl.Float64})


def _accounts(zone: str, start: list[dt.date | None], since: list[dt.datetime | None],
              ) -> pl.DataFrame:
    return pl.DataFrame(
        {"account_id": ["a", "b"][:len(start)], "start": start, "since": since},
        schema={"account_id": pl.String, "start": pl.Date,
                "since": pl.Datetime("us", zone)})


def _check(roadmap: Roadmap, events: pl.DataFrame | dict[str, pl.DataFrame],
           accounts: pl.DataFrame,
           as_of: Any) -> hr.Evaluation:
    """Evaluate with the engine, compare with the reference and with explain's traces."""
    result = hr.evaluate(roadmap, events, accounts, as_of)
    assert_matches_reference(result, roadmap, events, accounts, as_of, note=as_of)
    stages = dict(result.stages.select("account_id", "stage").rows())
    for account in accounts["account_id"]:
        why = result.explain(account)
        assert why.stage == stages[account], (account, as_of)
        entered = [s.stage for s in why.stages if s.result is True]
        assert why.stage == (entered[0] if entered else "_unassigned"), (account, as_of)
    return result


def test_the_days_are_the_changes_they_are_said_to_be() -> None:
    # the cases below rest on tzdata: each day's midnight is skipped or repeated
    for zone, day, which in MIDNIGHTS:
        z = ZoneInfo(zone)
        wall = dt.datetime.combine(day, dt.time())
        first = wall.replace(tzinfo=z)
        second = wall.replace(tzinfo=z, fold=1)
        exists = first.astimezone(dt.UTC).astimezone(z).replace(tzinfo=None) == wall
        assert first.utcoffset() != second.utcoffset(), (zone, day)
        assert (which == "repeated") == exists, (zone, day, which)


def test_zoned_wall_time_reads_fold_0() -> None:
    # the one helper every wall-time column goes through, against zoneinfo
    walls = [dt.datetime.combine(day, dt.time(h, m)) + dt.timedelta(days=k)
             for _, day, _ in MIDNIGHTS for h in (0, 1) for m in (0, 30) for k in (-1, 0)]
    for zone in [*sorted({z for z, _, _ in MIDNIGHTS}), "UTC", "Etc/GMT+3"]:
        got = pl.select(zoned_wall_time(pl.lit(pl.Series([*walls, None])), zone)
                        .dt.convert_time_zone("UTC")).to_series().to_list()
        want = [w.replace(tzinfo=ZoneInfo(zone)).astimezone(dt.UTC) for w in walls]
        assert got == [*want, None], zone
    frame = pl.DataFrame({"t": walls})
    assert frame.select(zoned_wall_time(pl.col("t"), None)).equals(frame)


@pytest.mark.parametrize(("zone", "day", "which"), MIDNIGHTS, ids=IDS)
def test_date_events_and_date_anchors_on_the_day(zone: str, day: dt.date, which: str) -> None:
    # was: ComputeError "datetime '2026-09-06 00:00:00' is non-existent in time zone" for
    # every as_of, from the Date column and from the date attribute
    roadmap = _roadmap(zone)
    d = dt.timedelta(days=1)
    events = _events([day, day - d, day + d, day - 3 * d], [1.0, 2.0, 4.0, 8.0], zone)
    accounts = _accounts(zone, [day, day - 3 * d],
                         [_midnight(day, zone), _midnight(day - 2 * d, zone)])
    for k in (-1, 0, 1, 2, 3, 7):
        _check(roadmap, events, accounts, day + k * d)
    # as_of on the day itself: every event up to it, the anchored windows cut at its end
    row = hr.evaluate(roadmap, events, accounts, day).indicators.row(0, named=True)
    assert (row["count_7d"], row["sum_7d"], row["sum_1d"]) == (3 - 0, 11.0, 1.0)
    assert (row["from_start_1"], row["from_start_3"], row["open_start"]) == (1, 1.0, 1)
    assert row["after_start"] == 1
    # a week later the window [day, day + 3 days) is cut short by its days: the events of the
    # day and the next, and its last day is day + 2, one day after the last event
    row = hr.evaluate(roadmap, events, accounts, day + 7 * d).indicators.row(0, named=True)
    assert (row["from_start_3"], row["since_start_3"], row["open_start"]) == (5.0, 1, 2)


@pytest.mark.parametrize(("zone", "day", "which"), MIDNIGHTS, ids=IDS)
def test_an_anchored_window_that_stops_at_the_midnight(zone: str, day: dt.date,
                                                       which: str) -> None:
    # start 3 days before the day: the window [start, day 00:00) holds the events of the three
    # days before the day, and its last day is the day before (days_since_last counts to it)
    roadmap = _roadmap(zone)
    d = dt.timedelta(days=1)
    z = ZoneInfo(zone)
    midnight = _midnight(day, zone)
    just_before = (midnight.astimezone(dt.UTC) - dt.timedelta(microseconds=1)).astimezone(z)
    events = _events([just_before, midnight.astimezone(z), _midnight(day - 3 * d, zone)],
                     [1.0, 2.0, 4.0], zone)
    accounts = _accounts(zone, [day - 3 * d], [_midnight(day - 2 * d, zone)])
    for as_of in (day - d, day, day + d, day + 7 * d):
        row = _check(roadmap, events, accounts, as_of).indicators.row(0, named=True)
        assert (row["from_start_3"], row["since_start_3"]) == (5.0, 0), as_of
    # since = midnight two days before: [since, since + 2 days) ends at the same midnight
    row = hr.evaluate(roadmap, events, accounts, day + 7 * d).indicators.row(0, named=True)
    assert (row["from_since_2"], row["since_since_2"]) == (1, 0)


@pytest.mark.parametrize(("zone", "day", "which"), MIDNIGHTS, ids=IDS)
def test_datetime_as_of_at_the_midnight(zone: str, day: dt.date, which: str) -> None:
    # a naive as_of at the day's 00:00 is its fold=0 instant; an event at that very instant
    # is not before it, one a microsecond earlier is
    roadmap = _roadmap(zone)
    z = ZoneInfo(zone)
    midnight = _midnight(day, zone)
    earlier = (midnight.astimezone(dt.UTC) - dt.timedelta(microseconds=1)).astimezone(z)
    events = _events([earlier, midnight.astimezone(z)], [1.0, 2.0], zone)
    accounts = _accounts(zone, [day], [None])
    naive = dt.datetime.combine(day, dt.time())
    result = _check(roadmap, events, accounts, naive)
    assert result.indicators.row(0, named=True)["sum_7d"] == 1.0
    for minutes in (30, 90):
        _check(roadmap, events, accounts, naive + dt.timedelta(minutes=minutes))
    _check(roadmap, events, accounts, midnight.astimezone(dt.UTC))


@pytest.mark.parametrize(("zone", "day", "which"), MIDNIGHTS, ids=IDS)
def test_history_over_the_change(zone: str, day: dt.date, which: str) -> None:
    # was: ComputeError from the end instant (as_of + 1 day at midnight) of the day before
    roadmap = _roadmap(zone)
    d = dt.timedelta(days=1)
    dated = _events([day, day - d, day + 2 * d, day - 5 * d], [1.0, 2.0, 4.0, 8.0], zone,
                    ["a", "b", "a", "b"])
    z = ZoneInfo(zone)
    timed = _events([_midnight(day, zone).astimezone(z), _midnight(day - d, zone).astimezone(z),
                     (_midnight(day, zone) + dt.timedelta(hours=5)).astimezone(z)],
                    [1.0, 2.0, 4.0], zone, ["a", "b", "a"])
    accounts = _accounts(zone, [day, day - 2 * d], [_midnight(day, zone), None])
    for events in (dated, timed):
        history = hr.history(roadmap, events, accounts, start=day - 5 * d, end=day + 9 * d,
                             every="1d")
        assert history.indicators["as_of"].n_unique() == 15
        for k in range(-5, 10):
            as_of = day + k * d
            one = _check(roadmap, events, accounts, as_of)
            assert history.at(as_of).indicators.equals(one.indicators), as_of
            assert history.at(as_of).stages.equals(one.stages), as_of


@pytest.mark.parametrize(("zone", "day", "which"), MIDNIGHTS, ids=IDS)
def test_a_dated_source_in_another_zone(zone: str, day: dt.date, which: str) -> None:
    # the default source in UTC, a second source of Date timestamps on the zone's wall clock:
    # its dates become the instants its days start, then UTC (the evaluation clock)
    d = dt.timedelta(days=1)
    roadmap = Roadmap.model_validate({
        "id": "two", "goal": "g",
        "data": {"events": {"usage": {"timezone": "UTC", "user": None},
                            "tickets": {"timestamp": "on", "user": None, "event": None,
                                        "timezone": zone}},
                 "accounts": {"attributes": {"start": "date"}}},
        "indicators": [
            {"id": "n_1d", "family": "process", "aggregate": "count", "window": "1d",
             "source": "tickets"},
            {"id": "n_7d", "family": "process", "aggregate": "count", "window": "7d",
             "source": "tickets", "compare": "delta"},
            {"id": "last", "family": "process", "aggregate": "days_since_last",
             "source": "tickets"},
            {"id": "from_start", "family": "process", "aggregate": "count",
             "window": {"from": "start", "days": 2}, "source": "tickets"},
            {"id": "usage", "family": "process", "aggregate": "count"},
        ],
        "stages": [{"id": "s"}],
    })
    usage = pl.DataFrame({"account_id": ["a"], "event": ["x"],
                          "timestamp": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]},
                         schema={"account_id": pl.String, "event": pl.String,
                                 "timestamp": pl.Datetime("us", "UTC")})
    tickets = pl.DataFrame({"account_id": ["a", "a", "a"],
                            "on": [day - d, day, day + d]})
    accounts = pl.DataFrame({"account_id": ["a"], "start": [day - d]})
    events = {"usage": usage, "tickets": tickets}
    for k in (-1, 0, 1, 2, 8):
        _check(roadmap, events, accounts, day + k * d)


@st.composite
def cases(draw: Draw) -> tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any, dict[str, Any]]:
    zone, day, _ = draw(st.sampled_from(MIDNIGHTS))
    z = ZoneInfo(zone)
    roadmap = _roadmap(zone)

    def near() -> dt.date:
        return day + dt.timedelta(days=draw(st.sampled_from([-7, -3, -2, -1, 0, 0, 1, 2])))

    def wall() -> dt.datetime:
        # a wall time near the day's midnight, or that midnight itself (skipped or repeated)
        at = dt.datetime.combine(near(), dt.time()) + dt.timedelta(
            minutes=draw(st.sampled_from([0, 0, 0, 30, 60, 90, -30, 720])))
        return at.replace(tzinfo=z, fold=draw(st.sampled_from([0, 0, 1]))).astimezone(
            dt.UTC).astimezone(z)

    n = draw(st.integers(0, 8))
    stamps: list[Any]
    if draw(st.booleans()):
        stamps = [near() for _ in range(n)]
    else:
        stamps = [wall().astimezone(dt.UTC).astimezone(z) for _ in range(n)]
    events = _events(stamps, [draw(st.sampled_from([None, 1.0, 2.5])) for _ in range(n)], zone,
                     [draw(st.sampled_from(["a", "b"])) for _ in range(n)])
    accounts = _accounts(zone, [draw(st.one_of(st.none(), st.builds(near))) for _ in "ab"],
                         [draw(st.one_of(st.none(), st.builds(wall))) for _ in "ab"])
    as_of_day = day + dt.timedelta(days=draw(st.sampled_from([-1, 0, 1, 2, 3, 7])))
    kind = draw(st.sampled_from(["date", "date", "naive", "aware"]))
    as_of: Any = as_of_day
    if kind != "date":
        at = dt.datetime.combine(as_of_day, dt.time()) + dt.timedelta(
            minutes=draw(st.sampled_from([0, 30, 60, 90, 600])))
        as_of = at if kind == "naive" else at.replace(
            tzinfo=z, fold=draw(st.sampled_from([0, 1]))).astimezone(dt.UTC)
    return roadmap, events, accounts, as_of, {"zone": zone, "day": day, "as_of": as_of}


@settings(max_examples=60)
@given(cases())
def test_midnight_changes_engine_matches_reference(
    case: tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any, dict[str, Any]],
) -> None:
    roadmap, events, accounts, as_of, note = case
    result = hr.evaluate(roadmap, events, accounts, as_of)
    assert_matches_reference(result, roadmap, events, accounts, as_of, note=note)


def test_spark_wall_times_at_a_skipped_midnight() -> None:
    # a TimestampNTZ column from Spark holds wall times of the declared zone: read as the
    # engine reads them (the conversion alone, no Spark session needed)
    from healthrules.integrations import spark as hs

    for zone, day, _ in MIDNIGHTS:
        wall = dt.datetime.combine(day, dt.time())
        got = hs._Conversion(("t",), zone).apply(pl.DataFrame({"t": [wall, None]}))
        assert got["t"].dtype == pl.Datetime("us", zone)
        assert got["t"].to_list() == [_midnight(day, zone), None], zone


def test_test_files_read_skipped_wall_times_as_the_engine(tmp_path: Any) -> None:
    # a `healthrules test` case gives wall times of the events' zone: 00:00 and 00:30 on
    # Santiago's 2026-09-06 do not exist and are read with the offset before the change (they
    # were null: the anchored window unknown, the event lost)
    from healthrules.testing import run

    (tmp_path / "roadmap.yaml").write_text("""\
id: tz
goal: g
data:
  events: {timezone: America/Santiago}
  accounts: {attributes: {since: datetime, start: date}}
indicators:
  - {id: n, family: process, aggregate: count, where: "event == 'x'", window: {from: since}}
  - {id: day, family: process, aggregate: count, where: "event == 'x'", window: 1d}
  - {id: first, family: process, aggregate: count, window: {from: start, days: 1}}
stages: [{id: s}]
""", encoding="utf-8")
    path = tmp_path / "tz.test.yaml"
    path.write_text("""\
kind: test
roadmap: roadmap.yaml
as_of: 2026-09-06
cases:
  - name: the anchor at the skipped midnight, events in the skipped hour and just before
    accounts: {a: {since: 2026-09-06T00:00, start: 2026-09-06}}
    events: {a: ["x at 0d@00:30", "x at -1d@23:59", "x at 0d@01:00"]}
    expect: {a: {indicators: {n: 2, day: 2, first: 2}}}
""", encoding="utf-8")
    report = run([path])
    assert report.ok, report.render()
