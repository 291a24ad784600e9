"""Events before a zone's first date that a window still reaches.

``tests/test_fix10_merged_zones.py`` refuses an ``as_of``, a history date or a date or
datetime attribute before the first date from which the engine's zone rules (polars') and
zoneinfo's (explain's, the scalar evaluator's, the reference's) agree (``zone_rules_from``;
1900-01-01 for most zones, later for the zones some databases keep the merged history of).
An evaluation after that date can still read events before it: a 365-day window at
1947-03-01 in Amsterdam, a lifetime window, a window anchored on an old attribute. Their
local days differ between the two rules, so ``active_days``, ``days_since_last`` and day
window edges would disagree. Such an evaluation is refused (``values_out_of_range`` on the
events' timestamp column) when an event it reads lies before the first date; an evaluation
whose read range starts on or after it reads no more than before (docs/semantics.md, "Time").
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules import inputs
from healthrules.cli import main
from healthrules.engine.evaluator import events_query, read_range
from healthrules.errors import InputDataError
from healthrules.roadmap import Roadmap
from reference import evaluate_reference
from test_fix10_merged_zones import MERGED_DIFFER, merged_rules  # noqa: F401
from zoned_frames import cli_evaluate_args, utc_events

UTC = dt.UTC
AMS = "Europe/Amsterdam"
KEYS = ("days", "since_last", "n_day", "n_life", "n_anchored")


def _roadmap(zone: str, window: Any = "365d") -> Roadmap:
    return Roadmap.model_validate({
        "id": "early", "goal": "g",
        "data": {"events": {"values": {}, "timezone": zone},
                 "accounts": {"attributes": {"signed": "date"}}},
        "indicators": [
            {"id": "days", "family": "process", "aggregate": "active_days", "window": window},
            {"id": "since_last", "family": "process", "aggregate": "days_since_last",
             "window": window},
            {"id": "n_day", "family": "process", "aggregate": "count", "window": "1d"},
            {"id": "n_life", "family": "process", "aggregate": "count", "window": "all"},
            {"id": "n_anchored", "family": "process", "aggregate": "count",
             "window": {"from": "signed", "days": 400}},
        ],
        "stages": [{"id": "s"}],
    })


def _lifetime_free(zone: str, window: Any) -> Roadmap:
    """The roadmap above without its lifetime and anchored windows: its read range is
    ``window``'s alone."""
    r = _roadmap(zone, window)
    return r.model_copy(update={"indicators": r.indicators[:3]})


def _frames(zone: str, stamps: list[dt.datetime], signed: dt.date = dt.date(1947, 2, 1),
            ) -> tuple[pl.DataFrame, pl.DataFrame]:
    events = utc_events(zone, stamps)
    accounts = pl.DataFrame({"account_id": ["a", "b"], "signed": [signed, None]},
                            schema={"account_id": pl.String, "signed": pl.Date})
    return events, accounts


# the summer of 1946: zoneinfo's Amsterdam and polars' (Brussels') are an hour apart, so
# these instants fall on other local days for the two
SUMMER_1946 = [dt.datetime(1946, 6, 1, 22, 30, tzinfo=UTC),
               dt.datetime(1946, 6, 2, 0, 30, tzinfo=UTC),
               dt.datetime(1946, 6, 5, 22, 30, tzinfo=UTC)]
LATER = [dt.datetime(1947, 2, 28, 12, tzinfo=UTC)]
AS_OF = dt.date(1947, 3, 1)


def _engine_and_reference(roadmap: Roadmap, events: pl.DataFrame, accounts: pl.DataFrame,
                          as_of: dt.date, keys: tuple[str, ...] = KEYS,
                          ) -> tuple[dict[str, Any], dict[str, Any]]:
    got = hr.evaluate(roadmap, events, accounts, as_of).indicators.filter(
        pl.col("account_id") == "a").row(0, named=True)
    # the reference reads the same instants as zoneinfo places them (their UTC instants: the
    # reference converts them to the roadmap's zone), as explain and the scalar evaluator do
    utc = events.with_columns(pl.col("timestamp").dt.convert_time_zone("UTC"))
    want = evaluate_reference(roadmap, utc, accounts, as_of).accounts["a"].indicators
    return {k: got[k] for k in keys}, {k: want[k] for k in keys}


@pytest.mark.skipif(not MERGED_DIFFER, reason="this machine's zoneinfo reads Amsterdam as "
                    "polars does: no early events to disagree on")
def test_the_rules_disagree_on_the_days_of_those_events() -> None:
    # why the refusal: the reference's days of these events are not the engine's
    first = inputs.zone_rules_from(AMS)
    assert first is not None and max(SUMMER_1946).date() < first < AS_OF
    events, _ = _frames(AMS, SUMMER_1946)
    polars_days = events["timestamp"].dt.date().to_list()
    from zoneinfo import ZoneInfo
    zoneinfo_days = [t.astimezone(ZoneInfo(AMS)).date() for t in SUMMER_1946]
    assert polars_days != zoneinfo_days


@pytest.mark.parametrize("window", ["365d", "all", "400d"])
@pytest.mark.parametrize("later", [[], LATER])
def test_the_engine_agrees_with_the_reference_or_refuses(window: str,
                                                        later: list[dt.datetime]) -> None:
    events, accounts = _frames(AMS, SUMMER_1946 + later)
    roadmap = _lifetime_free(AMS, window)
    try:
        got, want = _engine_and_reference(roadmap, events, accounts, AS_OF, KEYS[:3])
    except InputDataError as e:
        assert [i.code for i in e.issues] == ["values_out_of_range"]
        assert MERGED_DIFFER  # else 1946 is within Amsterdam's dates where they agree
        return
    assert got == want


@pytest.mark.usefixtures("merged_rules")
@pytest.mark.parametrize("window", ["365d", "all"])
def test_an_event_before_the_first_date_in_the_read_range_is_refused(window: str) -> None:
    first = inputs.zone_rules_from(AMS)
    assert first is not None
    events, accounts = _frames(AMS, SUMMER_1946 + LATER)
    with pytest.raises(InputDataError) as e:
        hr.evaluate(_lifetime_free(AMS, window), events, accounts, AS_OF)
    [issue] = e.value.issues
    assert issue.code == "values_out_of_range"
    assert issue.location.file == "<events>" and issue.location.path == "timestamp"
    assert AMS in issue.message and first.isoformat() in issue.message
    assert "1946-06-01" in issue.message  # the first event read before it
    assert issue.hint is not None and first.isoformat() in issue.hint


@pytest.mark.usefixtures("merged_rules")
def test_an_anchored_window_reaching_them_is_refused() -> None:
    events, accounts = _frames(AMS, SUMMER_1946 + LATER, signed=dt.date(1946, 5, 1))
    r = _roadmap(AMS)
    anchored = r.model_copy(update={"indicators": [r.indicators[4]]})
    with pytest.raises(InputDataError) as e:
        hr.evaluate(anchored, events, accounts, dt.date(1947, 3, 1))
    assert [i.code for i in e.value.issues] == ["values_out_of_range"]
    # anchored after them: not read, not refused
    events2, accounts2 = _frames(AMS, SUMMER_1946 + LATER, signed=dt.date(1947, 2, 1))
    ev = hr.evaluate(anchored, events2, accounts2, dt.date(1947, 3, 1))
    assert ev.indicators.filter(pl.col("account_id") == "a")["n_anchored"].item() == 1


@pytest.mark.usefixtures("merged_rules")
def test_events_before_the_first_date_outside_the_read_range_are_not_read() -> None:
    first = inputs.zone_rules_from(AMS)
    assert first is not None
    events, accounts = _frames(AMS, SUMMER_1946 + LATER)
    # a 30-day window at 1947-03-01 starts after the first date: the 1946 events are not
    # read, and the evaluation agrees with the reference
    got, want = _engine_and_reference(_lifetime_free(AMS, "30d"), events, accounts, AS_OF,
                                      KEYS[:3])
    assert got == want == {"days": 1, "since_last": 1, "n_day": 0}
    # an event at the instant from which the two rules agree is read and accepted (the
    # first date's midnight is two days or more later), and the second before it refused
    # (the lifetime window reads it)
    agree = inputs.zone_agrees_from(AMS)
    assert agree is not None
    assert agree < dt.datetime.combine(first - dt.timedelta(days=1), dt.time())
    at = agree.replace(tzinfo=UTC)
    events, accounts = _frames(AMS, [at, *LATER])
    ev = hr.evaluate(_roadmap(AMS), events, accounts, AS_OF)
    assert ev.indicators.filter(pl.col("account_id") == "a")["n_life"].item() == 2
    events, accounts = _frames(AMS, [at - dt.timedelta(seconds=1), *LATER])
    with pytest.raises(InputDataError) as e:
        hr.evaluate(_roadmap(AMS), events, accounts, AS_OF)
    assert f"{at - dt.timedelta(seconds=1):%Y-%m-%d %H:%M:%S} UTC" in str(e.value)


@pytest.mark.usefixtures("merged_rules")
def test_null_timestamps_and_empty_frames_are_not_refused() -> None:
    events, accounts = _frames(AMS, [])
    hr.evaluate(_roadmap(AMS), events, accounts, AS_OF)
    events = pl.concat([events, events.clear(1)])  # one row, all null
    hr.evaluate(_roadmap(AMS), events, accounts, AS_OF)


def test_before_1900_in_any_zone_with_changes_is_refused() -> None:
    events, accounts = _frames("America/New_York", [dt.datetime(1899, 12, 31, 23, tzinfo=UTC),
                                                    dt.datetime(1950, 1, 1, tzinfo=UTC)])
    with pytest.raises(InputDataError) as e:
        hr.evaluate(_roadmap("America/New_York"), events, accounts, dt.date(2026, 1, 1))
    [issue] = e.value.issues
    assert issue.code == "values_out_of_range" and "1899-12-31" in issue.message
    assert "1900-01-01" in issue.message
    # UTC, a fixed offset and naive timestamps have no bound
    for zone in ("UTC", "Etc/GMT+5"):
        events, accounts = _frames(zone, [dt.datetime(1850, 1, 1, tzinfo=UTC)])
        ev = hr.evaluate(_roadmap(zone), events, accounts, dt.date(2026, 1, 1))
        assert ev.indicators.filter(pl.col("account_id") == "a")["n_life"].item() == 1


@pytest.mark.usefixtures("merged_rules")
def test_history_reading_them_is_refused() -> None:
    events, accounts = _frames(AMS, SUMMER_1946 + LATER)
    with pytest.raises(InputDataError) as e:
        hr.history(_roadmap(AMS), events, accounts, start=AS_OF,
                   end=AS_OF + dt.timedelta(days=2), every="1d")
    assert [i.code for i in e.value.issues] == ["values_out_of_range"]
    h = hr.history(_lifetime_free(AMS, "30d"), events, accounts, start=AS_OF,
                   end=AS_OF + dt.timedelta(days=2), every="1d")
    assert h.dates[0] == AS_OF


@pytest.mark.usefixtures("merged_rules")
def test_explain_never_shows_them() -> None:
    # explain reads an evaluation: the evaluation is refused, so no explanation of those
    # days exists; one that reads no early event explains as the engine evaluated
    events, accounts = _frames(AMS, SUMMER_1946 + LATER)
    with pytest.raises(InputDataError):
        hr.evaluate(_roadmap(AMS), events, accounts, AS_OF).explain("a")
    ev = hr.evaluate(_lifetime_free(AMS, "30d"), events, accounts, AS_OF)
    assert "as of 1947-03-01" in ev.explain("a").render()


@pytest.mark.usefixtures("merged_rules")
def test_date_timestamps_before_the_first_date_are_refused_too() -> None:
    first = inputs.zone_rules_from(AMS)
    assert first is not None
    events = pl.DataFrame({"account_id": ["a", "a"], "user_id": ["u", "u"],
                           "event": ["x", "x"],
                           "timestamp": [dt.date(1946, 6, 1), dt.date(1947, 2, 1)]})
    _, accounts = _frames(AMS, [])
    with pytest.raises(InputDataError) as e:
        hr.evaluate(_roadmap(AMS), events, accounts, AS_OF)
    assert [i.code for i in e.value.issues] == ["values_out_of_range"]
    ev = hr.evaluate(_roadmap(AMS), events.tail(1), accounts, AS_OF)
    assert ev.indicators.filter(pl.col("account_id") == "a")["n_life"].item() == 1


@pytest.mark.usefixtures("merged_rules")
def test_the_cli_exits_1_without_a_traceback(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    events, _ = _frames(AMS, SUMMER_1946 + LATER)
    args = cli_evaluate_args(tmp_path, AMS, "all", events)
    assert main([*args, "--as-of", "1947-03-01"]) == 1
    err = capsys.readouterr().err
    assert "values_out_of_range" in err and str(inputs.zone_rules_from(AMS)) in err
    assert "Traceback" not in err
    events, _ = _frames(AMS, LATER)
    events.write_parquet(tmp_path / "events.parquet")
    assert main([*args, "--as-of", "1947-03-01"]) == 0


@pytest.mark.usefixtures("merged_rules")
def test_the_query_and_the_read_range_read_nothing() -> None:
    # events_query and read_range read no event (docs: "Nothing is read"): no refusal there
    events, accounts = _frames(AMS, SUMMER_1946 + LATER)
    lazy = events.lazy().map_batches(_never, schema=events.schema)
    events_query(_roadmap(AMS), lazy, accounts, AS_OF)
    start, _ = read_range(_roadmap(AMS), lazy, accounts, AS_OF)
    assert start is None
    with pytest.raises(InputDataError):
        hr.evaluate(_roadmap(AMS), events, accounts, AS_OF)


def _never(frame: pl.DataFrame) -> pl.DataFrame:
    raise AssertionError("the events were read")
