"""A source with ``Date`` timestamps: its read range reaches the scan as a filter on the dates
as stored (two days of margin each side), and the exact range on the instants still decides,
whatever the time zones of the source and of the evaluation clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

import healthrules as hr
from healthrules.engine import aggregate, events_query
from healthrules.roadmap import Roadmap
from reference import evaluate_reference

AS_OF = dt.date(2026, 6, 30)


def _roadmap(usage_zone: str, survey_zone: str) -> Roadmap:
    return Roadmap.model_validate({
        "id": "r", "goal": "g",
        "data": {"events": {
            "usage": {"user": None, "timezone": usage_zone},
            "surveys": {"event": None, "user": "respondent", "timestamp": "answered_on",
                        "timezone": survey_zone, "values": {"nps": "int"}}}},
        "indicators": [
            {"id": "logins", "family": "process", "aggregate": "count", "window": "7d"},
            {"id": "answers_7d", "family": "outcome", "source": "surveys",
             "aggregate": "count", "window": "7d"},
            {"id": "nps_7d", "family": "outcome", "source": "surveys", "aggregate": "mean",
             "of": "nps", "window": "7d"},
            {"id": "first_answer", "family": "outcome", "source": "surveys",
             "aggregate": "first_time", "window": "30d"}],
        "stages": [{"id": "s"}]})


def _frames(usage_zone: str) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    usage = pl.DataFrame({
        "account_id": ["a", "b"], "event": ["login", "login"],
        "timestamp": [dt.datetime(2026, 6, 29, 9), dt.datetime(2026, 6, 25)],
    }).with_columns(pl.col("timestamp").dt.replace_time_zone(usage_zone))
    # answers on every day around both ends of the 7- and 30-day windows, a null date, and
    # one long before the range
    days = [AS_OF + dt.timedelta(days=k) for k in range(-33, 4)]
    surveys = pl.DataFrame({
        "account_id": ["a" if k % 2 else "b" for k in range(len(days))] + ["a", "b"],
        "respondent": [f"p{k % 3}" for k in range(len(days))] + ["p0", "p1"],
        "answered_on": [*days, None, dt.date(2019, 1, 1)],
        "nps": [k % 11 for k in range(len(days))] + [4, 10],
    }, schema={"account_id": pl.String, "respondent": pl.String, "answered_on": pl.Date,
               "nps": pl.Int64})
    return {"usage": usage, "surveys": surveys}, pl.DataFrame({"account_id": ["a", "b"]})


ZONES = [("Pacific/Kiritimati", "Pacific/Pago_Pago"), ("Pacific/Pago_Pago", "Pacific/Kiritimati"),
         ("UTC", "UTC"), ("Asia/Kolkata", "America/St_Johns")]


@pytest.mark.parametrize(("usage_zone", "survey_zone"), ZONES)
def test_dates_far_from_the_clock_zone_read_as_without_the_date_filter(
        usage_zone: str, survey_zone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    roadmap = _roadmap(usage_zone, survey_zone)
    events, accounts = _frames(usage_zone)
    for as_of in (AS_OF, dt.datetime(2026, 6, 30, 1, 30), dt.datetime(2026, 6, 30, 23, 30)):
        got = hr.evaluate(roadmap, events, accounts, as_of)
        ref = evaluate_reference(roadmap, events, accounts, as_of)
        for row in got.indicators.to_dicts():
            want = ref.accounts[row["account_id"]].indicators
            assert {k: row[k] for k in ("answers_7d", "nps_7d", "first_answer")} == {
                k: want[k] for k in ("answers_7d", "nps_7d", "first_answer")}, (as_of, row)
        with monkeypatch.context() as m:
            m.setattr(aggregate, "_date_range", lambda *_: None)
            without = hr.evaluate(roadmap, events, accounts, as_of)
        assert got.indicators.equals(without.indicators)
        assert got.diagnostics == without.diagnostics  # the null date is still counted
        assert got.diagnostics["surveys:events_null_timestamp"] == 1


def test_the_date_range_reaches_the_parquet_scan(tmp_path: Path) -> None:
    roadmap = _roadmap("Europe/Paris", "America/New_York")
    events, accounts = _frames("Europe/Paris")
    path = tmp_path / "surveys.parquet"
    events["surveys"].write_parquet(path)
    scans = {"usage": events["usage"].lazy(), "surveys": pl.scan_parquet(path)}
    plan = hr.compile(roadmap)
    text = events_query(plan, scans, accounts, AS_OF, event_source="surveys").explain()
    scan = text[text.index("Parquet SCAN"):]
    selection = next(line for line in scan.splitlines() if "SELECTION" in line)
    # the widest window is 30 days: from 1 June (less two days of margin) to 3 July
    assert "2026-05-30" in selection and "2026-07-03" in selection, selection
    assert hr.evaluate(plan, scans, accounts, AS_OF).indicators.equals(
        hr.evaluate(plan, events, accounts, AS_OF).indicators)


def test_the_last_representable_dates_leave_the_bound_out() -> None:
    day = pl.col("d")
    late = aggregate._date_range(day, None, dt.datetime(9999, 12, 31))
    assert late is None
    early = aggregate._date_range(day, dt.datetime(1, 1, 2), dt.datetime(2000, 1, 1))
    assert early is not None
    frame = pl.DataFrame({"d": [dt.date(1, 1, 1), dt.date(2000, 1, 3), dt.date(2000, 1, 4),
                                None]})
    assert frame.filter(early)["d"].to_list() == [dt.date(1, 1, 1), dt.date(2000, 1, 3), None]
