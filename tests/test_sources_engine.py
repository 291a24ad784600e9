"""Several event sources in one roadmap: the engine against the reference evaluator.

Hypothesis builds roadmaps whose ``data.events`` declares three named sources with other
column names, time zones, time units and timestamp dtypes (``usage``: the rich source of
tests/test_engine_vs_reference.py; ``tickets``: another account column, an event column
``kind``, no user, millisecond timestamps in another zone; ``surveys``: no event column,
``Date`` timestamps), aggregate indicators that each read one source, and one frame per
source; engine and reference (tests/reference.py) must agree on every output. The history
path (one incremental aggregator per source) must agree with one evaluation per date.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import healthrules as hr
from healthrules.analysis import analyze
from healthrules.history import history
from healthrules.roadmap import Roadmap
from healthrules.testing.strategies import inputs_for
from healthrules.testing.strategies import roadmaps as generated_roadmaps
from reference import evaluate_reference
from test_engine_vs_reference import (
    Draw,
    aggregate_indicators,
    assert_matches_reference,
    compare,
    data,
)

AS_OF = dt.date(2026, 6, 30)
# (usage zone, tickets zone, surveys zone): all naive, or all aware in different zones
ZONES: list[tuple[str | None, str | None, str | None]] = [
    (None, None, None),
    ("UTC", "America/New_York", "Asia/Tokyo"),
    ("America/New_York", "UTC", "America/New_York"),
]
TICKET_FILTERS = ["kind == 'opened'", "kind in ('opened', 'escalated')", "severity >= 2",
                  "minutes > 10 or plan == 'pro'", "days_since(opened_at) < 5"]
SURVEY_FILTERS = ["nps >= 9", "nps <= 6 and respondent is not None", "vip"]
TICKET_AGGS = ["count", "distinct", "active_days", "sum", "mean", "min", "max",
               "days_since_last", "first_time", "last_time"]
SURVEY_AGGS = ["count", "distinct", "mean", "min", "days_since_first", "last_time"]


def _window(draw: Draw) -> Any:
    choice = draw(st.sampled_from(["7d", "30d", "all", "anchored", "since"]))
    if choice == "anchored":
        return {"from": "start", "days": draw(st.sampled_from([5, 30]))}
    if choice == "since":
        return {"from": "since", "days": 20}
    return choice


@st.composite
def ticket_indicator(draw: Draw, ident: str) -> dict[str, Any]:
    agg = draw(st.sampled_from(TICKET_AGGS))
    ind: dict[str, Any] = {"id": ident, "family": "relationship", "source": "tickets",
                           "aggregate": agg, "window": _window(draw)}
    if agg in ("sum", "mean", "min", "max"):
        ind["of"] = draw(st.sampled_from(["severity", "minutes"]))
    elif agg == "distinct":
        ind["of"] = draw(st.sampled_from(["kind", "severity"]))  # no user column
    if draw(st.booleans()):
        ind["where"] = draw(st.sampled_from(TICKET_FILTERS))
    if ind["window"] in ("7d", "30d") and agg in ("count", "sum") and draw(st.booleans()):
        ind["compare"] = draw(st.sampled_from(["previous", "delta", "pct_change"]))
    return ind


@st.composite
def survey_indicator(draw: Draw, ident: str) -> dict[str, Any]:
    agg = draw(st.sampled_from(SURVEY_AGGS))
    ind: dict[str, Any] = {"id": ident, "family": "outcome", "source": "surveys",
                           "aggregate": agg, "window": _window(draw)}
    if agg in ("mean", "min"):
        ind["of"] = "nps"
    if draw(st.booleans()):
        ind["where"] = draw(st.sampled_from(SURVEY_FILTERS))
    return ind


@st.composite
def multi_source_cases(draw: Draw) -> tuple[Roadmap, dict[str, pl.DataFrame], pl.DataFrame,
                                            Any]:
    zones = draw(st.sampled_from(ZONES))
    usage_zone, ticket_zone, survey_zone = zones
    indicators: list[dict[str, Any]] = []
    for k in range(draw(st.integers(0, 2))):
        ind = draw(aggregate_indicators(f"u{k}"))
        if draw(st.booleans()):
            ind["source"] = "usage"  # naming the default source is the same as leaving it out
        indicators.append(ind)
    indicators += [draw(ticket_indicator(f"t{k}")) for k in range(draw(st.integers(1, 3)))]
    indicators += [draw(survey_indicator(f"s{k}")) for k in range(draw(st.integers(0, 2)))]
    numeric = [i["id"] for i in indicators if i["aggregate"] not in ("first_time", "last_time")]
    a = draw(st.sampled_from(numeric)) if numeric else "seats"
    b = draw(st.sampled_from(numeric)) if numeric else "seats"
    text = " ".join(f"{{{i['id']}}}" for i in indicators)
    spec = {
        "id": "r", "goal": "g",
        "data": {
            "events": {
                "usage": {"values": {"value": "float", "qty": "int"}, "timezone": usage_zone},
                "tickets": {"account": "customer", "event": "kind", "user": None,
                            "timestamp": "opened_at", "timezone": ticket_zone,
                            "values": {"severity": "int", "minutes": "float"}},
                "surveys": {"event": None, "user": "respondent", "timestamp": "answered_on",
                            "timezone": survey_zone, "values": {"nps": "int"}},
            },
            "accounts": {"attributes": {"start": "date", "since": "datetime", "seats": "int",
                                        "plan": "str", "ratio": "float", "vip": "bool"}},
        },
        "indicators": [*indicators,
                       {"id": "mix", "family": "outcome", "expr": f"coalesce({a}, 0) - {b}"}],
        "stages": [{"id": "s0", "entry": f"{a} > 1",
                    "actions": [{"id": "hi", "kind": "positive", "when": f"{b} >= 1",
                                 "do": f"go: {text}"}]},
                   {"id": "s1"}],
        "actions": [{"id": "any", "kind": "challenge", "when": f"mix < 0 or {a} is None",
                     "do": f"look: {{mix}} {text}"}],
    }
    roadmap = Roadmap.model_validate(spec)
    assume(analyze(roadmap).ok)
    usage, accounts = draw(data(usage_zone))
    ids = accounts["account_id"].to_list()
    owners = st.sampled_from(ids) | st.sampled_from([*ids, "ghost", None])
    start = dt.datetime(2026, 3, 1)

    def when(zone: str | None) -> dt.datetime | None:
        if draw(st.integers(0, 6)) == 0:
            return None
        at = start + dt.timedelta(minutes=draw(st.integers(0, 125 * 24 * 60)))
        if draw(st.booleans()):  # most events near as_of and its window edges
            at = dt.datetime(2026, 6, 20) + dt.timedelta(minutes=draw(st.integers(0, 14 * 1440)))
        return at if zone is None else at.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone))

    tickets = pl.DataFrame(
        [{"customer": draw(owners), "kind": draw(st.sampled_from(["opened", "escalated", None])),
          "opened_at": when(ticket_zone), "severity": draw(st.none() | st.integers(0, 4)),
          "minutes": draw(st.none() | st.integers(0, 60).map(float) | st.just(float("inf")))}
         for _ in range(draw(st.integers(0, 25)))],
        schema={"customer": pl.String, "kind": pl.String,
                "opened_at": pl.Datetime("ms", ticket_zone), "severity": pl.Int32,
                "minutes": pl.Float64})
    surveys = pl.DataFrame(
        [{"account_id": draw(owners), "respondent": draw(st.sampled_from(["p", "q", None])),
          "answered_on": draw(st.none() | st.dates(dt.date(2026, 3, 1), dt.date(2026, 7, 3))),
          "nps": draw(st.none() | st.integers(0, 10))}
         for _ in range(draw(st.integers(0, 15)))],
        schema={"account_id": pl.String, "respondent": pl.String, "answered_on": pl.Date,
                "nps": pl.Int64})
    as_of: Any = AS_OF
    if draw(st.booleans()):
        as_of = dt.datetime(2026, 6, 30, draw(st.integers(0, 23)), 30)
    return roadmap, {"usage": usage, "tickets": tickets, "surveys": surveys}, accounts, as_of


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(multi_source_cases())
def test_engine_matches_reference_over_several_sources(case: Any) -> None:
    roadmap, events, accounts, as_of = case
    result = hr.evaluate(roadmap, events, accounts, as_of)
    assert_matches_reference(result, roadmap, events, accounts, as_of)
    read = sum(result.diagnostics[f"{name}:events_read"] for name in events)
    assert result.diagnostics["events_read"] == read


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(multi_source_cases())
def test_history_over_several_sources_equals_one_evaluation_per_date(case: Any) -> None:
    roadmap, events, accounts, _ = case
    h = history(roadmap, events, accounts, "2026-06-16", AS_OF, every="7d")
    for day in h.dates:
        one = hr.evaluate(roadmap, events, accounts, day)
        got = h.at(day)
        for what in ("indicators", "scores"):
            left = getattr(got, what).sort("account_id")
            right = getattr(one, what).sort("account_id")
            assert left.equals(right), (what, day, left, right)
        actions = ["account_id", "action_id", "text"]
        assert got.actions.select(actions).sort(actions).equals(
            one.actions.select(actions).sort(actions)), day


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_generated_multi_source_roadmaps_match_the_reference(data: st.DataObject) -> None:
    """The public strategies: roadmaps(max_sources=3) and inputs_for() give one frame per
    source that the engine and the reference read alike."""
    roadmap = data.draw(generated_roadmaps(max_sources=3))
    accounts, events = data.draw(inputs_for(roadmap, as_of=AS_OF))
    if roadmap.data.named_sources:
        assert isinstance(events, dict) and set(events) == set(roadmap.data.sources)
    result = hr.evaluate(roadmap, events, accounts, AS_OF)
    assert_matches_reference(result, roadmap, events, accounts, AS_OF)


def test_history_sees_that_a_days_since_filter_depends_on_the_date() -> None:
    """A filter that calls days_since() reads as_of without naming it: history evaluates it
    at each date (it used to evaluate it at the last date only)."""
    roadmap = Roadmap.model_validate({
        "id": "r", "goal": "g", "data": {"events": {"user": None}},
        "indicators": [{"id": "recent", "family": "process", "aggregate": "count",
                        "where": "days_since(timestamp) < 5", "window": "7d"}],
        "stages": [{"id": "s"}]})
    events = pl.DataFrame({"account_id": ["c0"], "event": ["x"],
                           "timestamp": [dt.datetime(2026, 6, 20)]})
    accounts = pl.DataFrame({"account_id": ["c0"]})
    h = history(roadmap, events, accounts, "2026-06-16", AS_OF, every="7d")
    assert h.indicators["recent"].to_list() == [0, 1, 0]
    assert h.diagnostics["history_fallback_indicators"] == 1


def _zoned_tickets_roadmap(zone: str) -> Roadmap:
    return Roadmap.model_validate({
        "id": "r", "goal": "g",
        "data": {"events": {
            "usage": {"account": "account_id", "event": "event", "timestamp": "timestamp",
                      "timezone": "Europe/Berlin", "user": None},
            "tickets": {"account": "customer", "event": "kind", "timestamp": "opened_at",
                        "timezone": zone, "user": None}},
            "accounts": {"key": "account_id"}},
        "indicators": [
            {"id": "recent", "family": "process", "source": "tickets", "aggregate": "distinct",
             "of": "kind", "where": "days_since(opened_at) < 5", "window": "7d"},
            {"id": "since_26", "family": "process", "source": "tickets", "aggregate": "count",
             "where": "opened_at >= date('2026-06-26')"},
            {"id": "quiet", "family": "process", "source": "tickets",
             "aggregate": "days_since_last"},
            {"id": "first", "family": "process", "source": "tickets",
             "aggregate": "days_since_first", "window": "5d"},
            {"id": "last", "family": "process", "source": "tickets", "aggregate": "last_time"},
            {"id": "last4", "family": "process", "source": "tickets", "aggregate": "count",
             "window": "4d"},
            {"id": "age", "family": "process", "expr": "days_since(last)"},
        ],
        "stages": [{"id": "s", "actions": [
            {"id": "a", "kind": "challenge", "when": "last > date('2026-06-25')",
             "do": "{last} {age}"}]}],
    })


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo", "UTC"])
@pytest.mark.parametrize("dated", [False, True])
@pytest.mark.parametrize("as_of", [dt.date(2026, 6, 30), dt.date(2026, 6, 26)])
def test_a_source_in_another_zone_is_read_on_the_default_clock(
        zone: str, dated: bool, as_of: dt.date) -> None:
    """Filters, calendar days and times of a source in another zone are those of the
    default source's zone (docs/semantics.md, "Several event sources"), around midnight on
    either clock, for Datetime and Date timestamps."""
    tz = ZoneInfo(zone)
    times = [dt.datetime(2026, 6, 25, h, m, tzinfo=tz) for h in (0, 1, 20, 23) for m in (0, 59)]
    times += [dt.datetime(2026, 6, 26, 0, tzinfo=tz), dt.datetime(2026, 6, 24, 23, tzinfo=tz)]
    tickets = pl.DataFrame(
        {"customer": [f"c{i}" for i in range(len(times))], "kind": ["opened"] * len(times),
         "opened_at": [t.date() if dated else t for t in times]},
        schema={"customer": pl.String, "kind": pl.String,
                "opened_at": pl.Date if dated else pl.Datetime("ms", zone)})
    usage = pl.DataFrame(schema={"account_id": pl.String, "event": pl.String,
                                 "timestamp": pl.Datetime("us", "Europe/Berlin")})
    accounts = pl.DataFrame({"account_id": [f"c{i}" for i in range(len(times))]})
    roadmap = _zoned_tickets_roadmap(zone)
    events = {"usage": usage, "tickets": tickets}
    result = hr.evaluate(roadmap, events, accounts, as_of)
    assert not compare(result, evaluate_reference(roadmap, events, accounts, as_of), roadmap)
    if zone == "America/New_York" and not dated and as_of == dt.date(2026, 6, 30):
        # 20:00 in New York on the 25th is 02:00 on the 26th in Berlin: 4 days before as_of
        row = result.indicators.filter(pl.col("account_id") == "c4").row(0, named=True)
        assert (row["recent"], row["since_26"], row["age"]) == (1, 1, 4)
