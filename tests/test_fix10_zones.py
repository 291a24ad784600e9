"""A roadmap's time zone is a zone both the engine (polars) and explain (zoneinfo) read.

An offset written as an offset (``+05:30``, ``UTC+5``, ``-03:00``) is no zone name: polars
reads some (``-03:00`` as ``Etc/GMT+3``) and rejects others (``+05:30``), ``zoneinfo`` reads
none, so an evaluation could not take the same path in the engine and in explain. Such a
name, a misspelt one (``utc``) and the files of the database that are no zones
(``right/UTC``, ``localtime``) are refused at load with a located ``unknown_timezone`` and a
did-you-mean (docs/format.md, ``timezone``); the ``Etc/GMT`` zones work on every path.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

import healthrules as hr
from healthrules.cli import main
from healthrules.explain import explain
from healthrules.roadmap import Roadmap
from reference import evaluate_reference

UTC = dt.UTC


def _yaml(zone: str) -> str:
    return ("id: zy\ngoal: g\ndata:\n  events:\n    values: {}\n"
            f"    timezone: \"{zone}\"\n  accounts:\n    attributes: {{signed: date}}\n"
            "indicators:\n"
            "  - {id: n1, family: process, aggregate: count, window: 1d}\n"
            "  - {id: days, family: process, aggregate: active_days, window: 30d}\n"
            "  - {id: since, family: process, expr: 'days_since(signed)'}\n"
            "stages:\n  - id: s\n")


@pytest.mark.parametrize(("zone", "hint"), [
    ("+05:30", "Asia/Kolkata"), ("UTC+5", "'Etc/GMT-5'"), ("-03:00", "'Etc/GMT+3'"),
    ("+05:00", "'Etc/GMT-5'"), ("GMT+05", "'Etc/GMT-5'"), ("UTC-00:00", "'UTC'"),
    ("+0545", "UTC"), ("utc", "'UTC'"),
    ("europe/berlin", "'Europe/Berlin'"), ("Mars/Olympus", "time-zone database"),
    ("right/UTC", "'UTC'"), ("posix/Europe/Paris", "'Europe/Paris'"),
    ("localtime", "UTC"), ("../etc/passwd", "time-zone database"),
])
def test_a_zone_the_engine_or_explain_cannot_read_is_refused_at_load(
        tmp_path: Path, zone: str, hint: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(_yaml(zone))
    with pytest.raises(hr.errors.RoadmapError) as e:
        hr.load(path)
    [issue] = e.value.issues
    assert issue.code == "unknown_timezone"
    assert issue.location.path == "data.events.timezone"
    assert issue.location.line == 6
    assert zone in issue.message
    assert issue.hint is not None and hint in issue.hint


def test_a_named_source_s_zone_is_checked_too() -> None:
    with pytest.raises(ValidationError) as e:
        Roadmap.model_validate({
            "id": "zy", "goal": "g",
            "data": {"events": {"web": {"values": {}, "timezone": "UTC"},
                                "desk": {"values": {}, "timezone": "+05:30"}},
                     "accounts": {"attributes": {}}},
            "indicators": [{"id": "n1", "family": "process", "aggregate": "count",
                            "window": "1d"}],
            "stages": [{"id": "s"}]})
    assert [err["type"] for err in e.value.errors()] == ["unknown_timezone"]


@pytest.mark.parametrize("zone", ["+05:30", "-03:00", "utc"])
def test_the_cli_exits_with_a_located_error_and_no_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], zone: str) -> None:
    (tmp_path / "r.yaml").write_text(_yaml(zone))
    events = pl.DataFrame({"account_id": ["a"], "user_id": ["u"], "event": ["x"],
                           "timestamp": [dt.datetime(2024, 7, 1, 20)]})
    events.write_parquet(tmp_path / "events.parquet")
    (tmp_path / "accounts.csv").write_text("account_id,signed\na,2024-01-01\n")
    for command in (["evaluate"], ["explain"], ["lint"]):
        args = [*command, str(tmp_path / "r.yaml")]
        if command != ["lint"]:
            args += ["--events", str(tmp_path / "events.parquet"),
                     "--accounts", str(tmp_path / "accounts.csv"), "--as-of", "2024-07-01"]
            args += ["--account", "a"] if command == ["explain"] else [
                "--out", str(tmp_path / "o")]
        assert main(args) == 1, command
        out = capsys.readouterr()
        err = out.err + out.out  # lint reports on stdout
        assert "unknown_timezone" in err and "Traceback" not in err, (command, err)
        assert "r.yaml:6" in err


@pytest.mark.parametrize("zone", ["Etc/GMT-5", "Etc/GMT+3", "Etc/GMT-14", "Asia/Kolkata"])
def test_the_etc_zones_and_a_half_hour_zone_agree_on_every_path(zone: str) -> None:
    roadmap = Roadmap.model_validate({
        "id": "zy", "goal": "g",
        "data": {"events": {"values": {}, "timezone": zone},
                 "accounts": {"attributes": {"signed": "date", "renewal": "datetime"}}},
        "indicators": [
            {"id": "n1", "family": "process", "aggregate": "count", "window": "1d"},
            {"id": "days", "family": "process", "aggregate": "active_days", "window": "30d"},
            {"id": "last", "family": "process", "aggregate": "days_since_last"},
            {"id": "to_renewal", "family": "process", "expr": "days_between(as_of, renewal)"},
        ],
        "stages": [{"id": "s"}],
    })
    # instants on either side of the zone's midnights
    stamps = [dt.datetime(2024, 6, 30, h, m, tzinfo=UTC) for h in (0, 9, 10, 18, 19, 23)
              for m in (0, 29, 31)]
    events = pl.DataFrame(
        {"account_id": ["a"] * len(stamps), "user_id": ["u"] * len(stamps),
         "event": ["x"] * len(stamps), "timestamp": stamps},
        schema={"account_id": pl.String, "user_id": pl.String, "event": pl.String,
                "timestamp": pl.Datetime("us", UTC.tzname(None))},
    ).with_columns(pl.col("timestamp").dt.convert_time_zone(zone))
    accounts = pl.DataFrame(
        {"account_id": ["a"], "signed": [dt.date(2024, 1, 1)],
         "renewal": [dt.datetime(2024, 7, 30, 20, tzinfo=UTC)]},
        schema={"account_id": pl.String, "signed": pl.Date,
                "renewal": pl.Datetime("us", "UTC")},
    ).with_columns(pl.col("renewal").dt.convert_time_zone(zone))
    for as_of in (dt.date(2024, 6, 30), dt.datetime(2024, 6, 30, 12, tzinfo=UTC), "2024-06-30"):
        result = hr.evaluate(roadmap, events, accounts, as_of)
        got = result.indicators.row(0, named=True)
        ref_as_of = dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
        want = evaluate_reference(roadmap, events, accounts, ref_as_of).accounts["a"].indicators
        assert {k: got[k] for k in ("n1", "days", "last", "to_renewal")} == {
            k: want[k] for k in ("n1", "days", "last", "to_renewal")}, as_of
        why = explain(result, "a")
        assert {k: why.values[k] for k in ("n1", "days", "to_renewal")} == {
            k: got[k] for k in ("n1", "days", "to_renewal")}
    h = hr.history(roadmap, events, accounts, start="2024-06-29", end="2024-07-01", every="1d")
    for day in h.dates:
        want = evaluate_reference(roadmap, events, accounts, day).accounts["a"].indicators
        row = h.at(day).indicators.row(0, named=True)
        assert row["n1"] == want["n1"] and row["days"] == want["days"], day


@pytest.mark.parametrize("zone", ["GMT+0", "GMT-0", "GMT0", "Etc/GMT+0", "EST5EDT", "Zulu",
                                  "US/Eastern", "Europe/Kiev", "Europe/Kyiv"])
def test_names_of_the_database_both_read_are_accepted(zone: str) -> None:
    roadmap = Roadmap.model_validate({
        "id": "zy", "goal": "g", "data": {"events": {"values": {}, "timezone": zone}},
        "indicators": [{"id": "n1", "family": "process", "aggregate": "count",
                        "window": "1d"}],
        "stages": [{"id": "s"}]})
    events = pl.DataFrame({"account_id": ["a"], "user_id": ["u"], "event": ["x"],
                           "timestamp": [dt.datetime(2024, 6, 30, 12, tzinfo=UTC)]}
                          ).with_columns(pl.col("timestamp").dt.convert_time_zone(zone))
    accounts = pl.DataFrame({"account_id": ["a"]})
    got = hr.evaluate(roadmap, events, accounts, dt.date(2024, 6, 30))
    want = evaluate_reference(roadmap, events, accounts, dt.date(2024, 6, 30))
    assert got.indicators["n1"].item() == want.accounts["a"].indicators["n1"] == 1
