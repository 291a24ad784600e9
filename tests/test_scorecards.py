"""Percentiles, per-indicator missing policy and goal attainment (issue 15), end to end.

Percentiles are checked bit for bit: the engine's group_by form, the registry's plain-Python
definition (``healthrules.aggregates.percentile_of``), the reference evaluator's own exact
computation (tests/reference.py) and history all give the same double.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import healthrules as hr
from healthrules.aggregates import percentile_of, q_units
from healthrules.history import history
from healthrules.loader import load_text
from healthrules.testing.strategies import inputs_for, roadmaps
from reference import evaluate_reference
from test_engine_vs_reference import assert_matches_reference

AS_OF = dt.date(2026, 6, 30)
END = dt.datetime(2026, 7, 1)


def _roadmap(indicators: list[dict[str, Any]], **extra: Any) -> hr.Roadmap:
    return hr.Roadmap.model_validate({
        "id": "r", "goal": extra.pop("goal", "g"),
        "data": {"events": {"values": {"minutes": "float", "n": "int"}},
                 "accounts": {"attributes": {"seats": "int"}}},
        "indicators": indicators, "stages": extra.pop("stages", [{"id": "s"}]), **extra,
    })


def _events(rows: list[tuple[str, int, float | None, int | None]]) -> pl.DataFrame:
    """(account, days before the end, minutes, n) rows."""
    return pl.DataFrame(
        [(a, "u", "x", END - dt.timedelta(days=d, hours=1), m, n) for a, d, m, n in rows],
        schema={"account_id": pl.String, "user_id": pl.String, "event": pl.String,
                "timestamp": pl.Datetime("us"), "minutes": pl.Float64, "n": pl.Int64},
        orient="row")


# --------------------------------------------------------------------------- the definition


def test_the_percentile_definition_on_known_values() -> None:
    assert percentile_of([1, 2, 3, 10], q_units(0.5)) == 2.5  # median: mean of the middle two
    assert percentile_of([3, 1, 2], q_units(0.5)) == 2.0
    assert percentile_of(list(range(1, 11)), q_units(0.9)) == pytest.approx(9.1)
    assert percentile_of([5, -1, 7], q_units(0)) == -1.0  # q 0: the smallest
    assert percentile_of([5, -1, 7], q_units(1)) == 7.0  # q 1: the largest
    assert percentile_of([4.0], q_units(0.9)) == 4.0
    assert percentile_of([], q_units(0.5)) is None
    # the rank is exact: (n - 1) * 0.7 with n = 11 is 7 exactly, not 7.000000000000001
    assert percentile_of(list(range(11)), q_units(0.7)) == 7.0
    assert q_units(0.9) == 900_000 and q_units(0.333333) == 333_333
    with pytest.raises(ValueError, match="at most 6 decimals"):
        q_units(0.1234567)


def test_median_and_percentile_in_one_evaluation() -> None:
    r = _roadmap([
        {"id": "med", "family": "process", "aggregate": "median", "of": "minutes"},
        {"id": "p90", "family": "process", "aggregate": "percentile", "q": 0.9, "of": "n",
         "window": "30d"},
    ])
    events = _events([("a", 1, 1.0, 1), ("a", 2, 2.0, 2), ("a", 3, 3.0, 3), ("a", 4, 10.0, 4),
                      ("a", 40, None, 100), ("b", 1, float("nan"), None), ("b", 2, 4.0, None)])
    ev = hr.evaluate(r, events, pl.DataFrame({"account_id": ["a", "b", "c"], "seats": [1] * 3}),
                     AS_OF)
    got = ev.indicators.sort("account_id").select("med", "p90").rows()
    # a: median of 1, 2, 3, 10 (the null is not a value); p90 of 1..4 in the last 30 days
    # (100 is 40 days old): 3 + (4 - 3) * 0.7. b: NaN is null, so the median of 4 is 4 and
    # no n value at all. c: no events.
    assert got == [(2.5, 3 + (4 - 3) * 0.7), (4.0, None), (None, None)]
    assert ev.indicators.schema["med"] == pl.Float64


@given(values=st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False),
                                 st.integers(-50, 50).map(float)), max_size=25),
       q=st.sampled_from([0, 0.01, 0.1, 0.25, 0.333333, 0.5, 0.7, 0.9, 0.95, 0.999999, 1]),
       accounts=st.integers(1, 4))
def test_engine_reference_and_definition_agree_to_the_bit(values: list[float | None], q: float,
                                                        accounts: int) -> None:
    r = _roadmap([{"id": "p", "family": "process", "aggregate": "percentile", "q": q,
                   "of": "minutes", "window": "90d"},
                  {"id": "m", "family": "process", "aggregate": "median", "of": "minutes"}])
    rows = [(f"a{k % accounts}", k % 60, v, 1) for k, v in enumerate(values)]
    events = _events(rows)
    ids = [f"a{k}" for k in range(accounts)]
    acc = pl.DataFrame({"account_id": ids, "seats": [1] * accounts})
    got = {row["account_id"]: row for row in hr.evaluate(r, events, acc, AS_OF)
           .indicators.to_dicts()}
    ref = evaluate_reference(r, events, acc, AS_OF)
    for ident in ids:
        mine = [v for a, _, v, _ in rows if a == ident and v is not None]
        assert got[ident]["p"] == percentile_of(mine, q_units(q)) == ref.accounts[
            ident].indicators["p"]
        assert got[ident]["m"] == percentile_of(mine, q_units(0.5)) == ref.accounts[
            ident].indicators["m"]


def test_history_computes_percentiles_exactly_at_every_date() -> None:
    rng = random.Random(7)
    rows = [(f"a{rng.randrange(5)}", rng.randrange(0, 80),
             rng.choice([None, rng.uniform(-10, 10)]), rng.randrange(-3, 9))
            for _ in range(300)]
    r = _roadmap([
        {"id": "p75", "family": "process", "aggregate": "percentile", "q": 0.75,
         "of": "minutes", "window": "14d", "compare": "delta"},
        {"id": "med", "family": "process", "aggregate": "median", "of": "n", "window": "all",
         "where": "n > 0"},
        {"id": "cnt", "family": "process", "aggregate": "count", "window": "7d"},
    ])
    events = _events(rows)
    acc = pl.DataFrame({"account_id": [f"a{k}" for k in range(6)], "seats": [1] * 6})
    start = AS_OF - dt.timedelta(days=30)
    h = history(r, events, acc, start, AS_OF, every="3d")
    assert h.diagnostics["history_fallback_indicators"] == 2
    for d in h.dates:
        want = hr.evaluate(r, events, acc, d).indicators.sort("account_id")
        got = h.indicators.filter(pl.col("as_of") == d).sort("account_id").select(want.columns)
        assert got.rows() == want.rows(), d  # exact, no tolerance


@pytest.mark.parametrize(("indicator", "code", "where"), [
    ({"aggregate": "percentile", "of": "minutes"}, "missing_q", "aggregate"),
    ({"aggregate": "median", "of": "minutes", "q": 0.5}, "unexpected_q", "q"),
    ({"aggregate": "count", "q": 0.5}, "unexpected_q", "q"),
    ({"aggregate": "percentile", "of": "minutes", "q": 0.1234567}, "q_invalid", "q"),
    ({"aggregate": "percentile", "of": "minutes", "q": 90}, "q_invalid", "q"),
    ({"aggregate": "percentile", "of": "minutes", "q": 190}, "less_than_equal", "q"),
    ({"aggregate": "median"}, "missing_of", "aggregate"),
])
def test_percentile_mistakes_are_located(indicator: dict[str, Any], code: str,
                                         where: str) -> None:
    fields = "".join(f"    {k}: {v}\n" for k, v in indicator.items())
    text = ("id: r\ngoal: g\ndata: {events: {values: {minutes: float}}}\nindicators:\n"
            f"  - id: x\n    family: process\n{fields}stages: [{{id: s}}]\n")
    with pytest.raises(hr.RoadmapError) as info:
        load_text(text)
    issue = info.value.issues[0]
    assert issue.code == code, issue
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip().startswith(where))
    assert issue.location.line == line, (issue, text)


# --------------------------------------------------------------------------- missing


BANDS = {"levels": [{"name": "low", "lt": 2}, {"name": "high", "ge": 2}]}


def test_an_indicators_missing_policy_overrides_the_scores() -> None:
    r = _roadmap([
        {"id": "logins", "family": "process", "aggregate": "count", "window": "30d",
         "bands": BANDS},
        {"id": "nps", "family": "relationship", "aggregate": "mean", "of": "n",
         "missing": "neutral", "bands": BANDS},
        {"id": "minutes", "family": "process", "aggregate": "max", "of": "minutes",
         "missing": "skip", "bands": BANDS},
    ], score={"missing": "worst"})
    # account a: 3 logins (high: 100), no n and no minutes (nulls)
    events = _events([("a", 1, None, None), ("a", 2, None, None), ("a", 3, None, None)])
    acc = pl.DataFrame({"account_id": ["a", "b"], "seats": [1, 1]})
    ev = hr.evaluate(r, events, acc, AS_OF)
    scores = {row["account_id"]: row for row in ev.scores.to_dicts()}
    # a: logins 100, nps neutral 50, minutes skipped -> (100 + 50) / 2
    assert scores["a"]["score"] == 75.0 and scores["a"]["indicators_scored"] == 2
    # b: no events: logins 0 is low (0), nps neutral 50, minutes skipped
    assert scores["b"]["score"] == 25.0
    assert scores["a"]["indicators_missing"] == 2
    ref = evaluate_reference(r, events, acc, AS_OF)
    assert [ref.accounts[k].score for k in ("a", "b")] == [75.0, 25.0]
    # explain uses the same policy
    contributions = {c.indicator: c for c in ev.explain("a").contributions}
    assert contributions["nps"].band_score == 50.0
    assert contributions["minutes"].band_score is None and contributions["minutes"].weight == 0


# --------------------------------------------------------------------------- goal


def _goal_roadmap(target: str | None) -> hr.Roadmap:
    goal: dict[str, Any] = {"text": "Uses it every week"}
    if target is not None:
        goal["target"] = target
    return _roadmap(
        [{"id": "logins", "family": "outcome", "aggregate": "count", "window": "7d"}],
        goal=goal,
        stages=[{"id": "s", "actions": [
            {"id": "case_study", "kind": "positive", "when": "goal_reached and seats >= 5",
             "do": "Ask for a case study ({logins} logins, goal reached: {goal_reached})"},
        ]}] if target is not None else [{"id": "s"}])


def test_goal_reached_is_evaluated_and_read_by_actions() -> None:
    r = _goal_roadmap("logins >= 2 and seats > 0")
    events = _events([("a", 1, None, None), ("a", 2, None, None), ("b", 1, None, None)])
    acc = pl.DataFrame({"account_id": ["a", "b", "c"], "seats": [10, 10, None]})
    ev = hr.evaluate(r, events, acc, AS_OF)
    reached = dict(ev.scores.select("account_id", "goal_reached").rows())
    # c: logins 0 >= 2 is false, so the `and` is false although seats is null
    assert reached == {"a": True, "b": False, "c": False}
    assert ev.actions["text"].to_list() == ["Ask for a case study (2 logins, goal reached: true)"]
    ref = evaluate_reference(r, events, acc, AS_OF)
    assert {k: v.goal_reached for k, v in ref.accounts.items()} == reached
    text = str(ev.explain("a"))
    assert "goal: reached (target logins >= 2 and seats > 0)" in text
    assert ev.explain("a").goal is not None and ev.explain("b").goal.result is False  # type: ignore[union-attr]
    html = ev._repr_html_()
    assert "1 of 3</span> accounts reached the goal" in html


def test_an_unknown_target_leaves_goal_reached_null() -> None:
    r = _goal_roadmap("seats >= 5")
    acc = pl.DataFrame({"account_id": ["a"], "seats": [None]}, schema={
        "account_id": pl.String, "seats": pl.Int64})
    ev = hr.evaluate(r, _events([]), acc, AS_OF)
    assert ev.scores["goal_reached"].to_list() == [None]
    assert "unknown (a value is null)" in str(ev.explain("a"))


def test_without_a_target_goal_reached_is_null_and_not_readable() -> None:
    ev = hr.evaluate(_goal_roadmap(None), _events([]),
                     pl.DataFrame({"account_id": ["a"], "seats": [1]}), AS_OF)
    assert ev.scores["goal_reached"].to_list() == [None]
    assert ev.explain("a").goal is None
    text = ("id: r\ngoal: g\nstages:\n  - id: s\n    actions:\n"
            "      - {id: x, kind: positive, when: goal_reached, do: hi}\n")
    with pytest.raises(hr.RoadmapError, match="unknown name 'goal_reached'"):
        load_text(text)


# --------------------------------------------------------------------------- values in texts


TEXT_ROADMAP = """\
id: r
goal: g
data:
  accounts: {attributes: {signed_on: date, seats: int, plan: str}}
indicators:
  - {id: logins, family: process, aggregate: count, window: 7d,
     bands: {levels: [{name: low, lt: 2}, {name: high, ge: 2}]}}
stages:
  - id: s
    actions:
      - id: a
        kind: challenge
        when: seats > 0
        do: DO
"""


def _text_roadmap(do: str) -> str:
    return TEXT_ROADMAP.replace("DO", do)


def test_a_placeholder_may_compute_a_value_of_the_actions_scope() -> None:
    do = ('"signed {days_since(signed_on)} days ago, {logins / seats:.0%} per seat, '
          "{prev(score, 14):.1f} two weeks ago, {'big' if seats >= 10 else 'small'}, "
          '{{braces}}"')
    r = load_text(_text_roadmap(do))
    acc = pl.DataFrame({"account_id": ["a"], "signed_on": [dt.date(2026, 6, 10)],
                        "seats": [4], "plan": ["pro"]})
    events = _events([("a", 1, None, None)])
    ev = hr.evaluate(r, events, acc, AS_OF)
    assert ev.actions["text"].to_list() == [
        "signed 20 days ago, 25% per seat, n/a two weeks ago, small, {braces}"]
    ref = evaluate_reference(r, events, acc, AS_OF)
    assert [f.text for f in ref.accounts["a"].actions] == ev.actions["text"].to_list()
    # in history, prev(score, 14) is the score of 14 days before
    h = history(r, events, acc, AS_OF - dt.timedelta(days=14), AS_OF, every="14d")
    texts = h.actions.sort("as_of")["text"].to_list()
    assert texts[-1].startswith("signed 20 days ago, 25% per seat, 0.0 two weeks ago")


@pytest.mark.parametrize(("do", "code", "needle"), [
    ("'{days_since(plan)}'", "expr_type", "days_since(plan)"),
    ("'{days_since(signd_on)}'", "unknown_name", "signd_on"),
    ("'{plan + 1:.1f}'", "expr_type", "plan + 1"),
    ("'{days_since(signed_on) > 3:.1f}'", "template_invalid", ".1f"),
    ("'{seats +}'", "expr_syntax", "seats +"),
    ("'{prev(seats, 7)}'", "expr_type", "prev(seats, 7)"),
    ("'{1 + 2}'", "template_invalid", "{1 + 2}"),
    ("'{seats.real}'", "expr_disallowed", "seats.real"),
])
def test_placeholder_expressions_are_checked_at_load(do: str, code: str, needle: str) -> None:
    text = _text_roadmap(do)
    with pytest.raises(hr.RoadmapError) as info:
        load_text(text)
    issue = info.value.issues[0]
    assert issue.code == code, issue
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "do:" in t)
    assert issue.location.line == line
    # the column points into the placeholder (at or after the opening brace)
    start = text.splitlines()[line - 1].index("{") + 1
    assert issue.location.column is not None and issue.location.column >= start, issue


# --------------------------------------------------------------------------- generated roadmaps


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(roadmap=roadmaps(), data=st.data())
def test_engine_equals_reference_on_the_public_strategies(roadmap: hr.Roadmap,
                                                          data: st.DataObject) -> None:
    """healthrules.testing.strategies draws percentiles, own missing policies, goal targets
    and computed placeholders; the engine and the reference agree on all of them."""
    accounts, events = data.draw(inputs_for(roadmap, as_of=AS_OF, max_events=30))
    result = hr.evaluate(roadmap, events, accounts, AS_OF)
    assert_matches_reference(result, roadmap, events, accounts, AS_OF)


# --------------------------------------------------------------------------- derived trends


def _trend_roadmap(extra: list[dict[str, Any]]) -> hr.Roadmap:
    return hr.Roadmap.model_validate({
        "id": "r", "goal": "g", "data": {"accounts": {"attributes": {"seats": "int"}}},
        "indicators": [
            {"id": "users", "family": "process", "aggregate": "distinct", "window": "30d"},
            {"id": "logins", "family": "process", "aggregate": "count", "window": "30d"},
            {"id": "utilisation", "family": "process", "expr": "users / seats",
             "bands": {"levels": [{"name": "low", "lt": 0.5}, {"name": "high", "ge": 0.5}]}},
            *extra,
        ],
        "stages": [{"id": "s"}],
    })


def _trend_events() -> pl.DataFrame:
    rows = [("a", "u1", 1), ("a", "u2", 2), ("a", "u3", 3), ("a", "u1", 40), ("a", "u2", 45),
            ("b", "u9", 50), ("b", "u8", 55)]
    return pl.DataFrame([(acc, user, "x", END - dt.timedelta(days=d)) for acc, user, d in rows],
                        schema={"account_id": pl.String, "user_id": pl.String,
                                "event": pl.String, "timestamp": pl.Datetime("us")},
                        orient="row")


ACC = pl.DataFrame({"account_id": ["a", "b", "c"], "seats": [4, 2, None]})


def test_a_derived_trend_compares_with_the_previous_windows() -> None:
    r = _trend_roadmap([
        {"id": "utilisation_delta", "family": "process", "expr": "utilisation",
         "compare": "delta"},
        {"id": "utilisation_before", "family": "process", "expr": "utilisation",
         "compare": "previous"},
        {"id": "per_login_change", "family": "process",
         "expr": "users / logins if band(utilisation) == 'high' else 0.0",
         "compare": "pct_change"},
        {"id": "days_change", "family": "process",
         "expr": "logins + days_since(date('2026-06-01'))", "compare": "delta"},
    ])
    ev = hr.evaluate(r, _trend_events(), ACC, AS_OF)
    got = {row["account_id"]: row for row in ev.indicators.to_dicts()}
    # a: 3 of 4 seats now, 2 of 4 in the 30 days before; b: 0 of 2 now, 2 of 2 before
    assert (got["a"]["utilisation_delta"], got["a"]["utilisation_before"]) == (0.25, 0.5)
    assert (got["b"]["utilisation_delta"], got["b"]["utilisation_before"]) == (-1.0, 1.0)
    assert got["c"]["utilisation_delta"] is None  # no seats
    # a: 3 users / 3 logins (high) against 2 / 2 (high): 0 change; b: 0.0 (low) against
    # 2 / 2 (high): -100%
    assert got["a"]["per_login_change"] == 0.0 and got["b"]["per_login_change"] == -1.0
    # as_of is read 30 days earlier in the previous value: a: (3 + 29) - (2 - 1)
    assert got["a"]["days_change"] == 31
    ref = evaluate_reference(r, _trend_events(), ACC, AS_OF)
    for acc, row in got.items():
        for ident in ("utilisation_delta", "utilisation_before", "per_login_change",
                      "days_change"):
            assert row[ident] == ref.accounts[acc].indicators[ident], (acc, ident)
    assert ev.indicators.schema["days_change"] == pl.Int64
    assert ev.indicators.schema["per_login_change"] == pl.Float64


def test_history_of_a_derived_trend_equals_evaluate() -> None:
    r = _trend_roadmap([{"id": "trend", "family": "process", "expr": "utilisation",
                         "compare": "delta"}])
    start = AS_OF - dt.timedelta(days=20)
    h = history(r, _trend_events(), ACC, start, AS_OF, every="5d")
    for d in h.dates:
        want = hr.evaluate(r, _trend_events(), ACC, d).indicators.sort("account_id")
        got = h.indicators.filter(pl.col("as_of") == d).sort("account_id").select(want.columns)
        assert got.rows() == want.rows(), d


@pytest.mark.parametrize(("trend", "message"), [
    ({"expr": "seats * 2"}, "needs it to read an aggregate indicator with a trailing window"),
    ({"expr": "users + total"}, "needs trailing windows, but 'total' has an all-time window"),
    ({"expr": "users + weekly"}, "different lengths (7 days, 30 days)"),
    ({"expr": "users + users_delta"}, "reads 'users_delta', which has a compare of its own"),
    ({"expr": "users > 3"}, "compare: delta needs a number; 'trend' is bool"),
])
def test_derived_trend_mistakes_are_located(trend: dict[str, Any], message: str) -> None:
    r = {
        "id": "r", "goal": "g", "data": {"accounts": {"attributes": {"seats": "int"}}},
        "indicators": [
            {"id": "users", "family": "process", "aggregate": "distinct", "window": "30d"},
            {"id": "total", "family": "process", "aggregate": "count"},
            {"id": "weekly", "family": "process", "aggregate": "count", "window": "7d"},
            {"id": "users_delta", "family": "process", "aggregate": "distinct", "window": "30d",
             "compare": "delta"},
            {"id": "trend", "family": "process", "compare": "delta", **trend},
        ],
        "stages": [{"id": "s"}],
    }
    text = yaml.safe_dump(r, sort_keys=False)
    with pytest.raises(hr.RoadmapError) as info:
        load_text(text)
    issue = info.value.issues[0]
    assert message in issue.message, issue
    assert issue.location.path == "indicators[4].compare"


def test_the_roadmap_view_shows_percentiles_missing_policies_and_trends() -> None:
    r = _trend_roadmap([
        {"id": "trend", "family": "process", "expr": "utilisation", "compare": "delta",
         "missing": "worst", "bands": BANDS},
    ])
    r2 = _roadmap([{"id": "p95", "family": "process", "aggregate": "percentile", "q": 0.95,
                    "of": "minutes"}])
    page = r._repr_html_() + r2._repr_html_()
    assert "percentile 0.95 of" in page
    assert "(missing: worst)" in page
    assert "compared with the previous windows of what it reads (delta)" in page
    text = hr.compile(r2).describe()
    assert "p95: float = percentile(minutes) over all time at q 0.95" in text
