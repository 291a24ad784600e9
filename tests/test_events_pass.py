"""The events pass computes each distinct aggregation once, and counts the data checks'
flaws in one reduction, asking for the kinds of flaw only when there are some.

These are cost-cutting changes of the pass (docs/performance.md, "Where the time goes");
the results must not change: every value here is checked against the reference evaluator
or written out by hand.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules.engine import EventsPass
from healthrules.engine.evaluator import events_query
from healthrules.roadmap import Roadmap
from reference import evaluate_reference

AS_OF = dt.date(2026, 6, 30)


def _roadmap(sources: bool = False) -> Roadmap:
    spec: dict[str, Any] = {
        "id": "p", "goal": "g",
        "data": {"events": {"values": {"amount": "float"}}},
        "indicators": [
            {"id": "logins_30d", "family": "process", "aggregate": "count",
             "where": "event == 'login'", "window": "30d"},
            # the same count (and its previous window): computed once, copied
            {"id": "logins_trend", "family": "process", "aggregate": "count",
             "where": "event == 'login'", "window": "30d", "compare": "delta"},
            {"id": "logins_again", "family": "process", "aggregate": "count",
             "where": "event == 'login'", "window": "30d"},
            {"id": "users_7d", "family": "process", "aggregate": "distinct", "window": "7d"},
            {"id": "users_7d_too", "family": "process", "aggregate": "distinct",
             "window": "7d"},
            {"id": "spend", "family": "outcome", "aggregate": "sum", "of": "amount",
             "window": "30d"},
            {"id": "days", "family": "process", "aggregate": "active_days", "window": "30d"},
        ],
        "stages": [{"id": "s", "actions": [{
            "id": "quiet", "kind": "challenge", "when": "logins_again < 2", "do": "call",
            "owner": "csm"}]}],
    }
    if sources:
        spec["data"]["events"] = {
            "usage": spec["data"]["events"],
            "tickets": {"account": "customer", "user": None, "event": None, "timestamp": "at",
                        "values": {"minutes": "float"}},
        }
        spec["indicators"] += [
            {"id": "tickets_30d", "family": "relationship", "source": "tickets",
             "aggregate": "count", "window": "30d"},
            {"id": "minutes_30d", "family": "relationship", "source": "tickets",
             "aggregate": "sum", "of": "minutes", "window": "30d"},
        ]
    return Roadmap.model_validate(spec)


def _events(flawed: bool = False) -> pl.DataFrame:
    days = [29, 28, 20, 10, 2, 29, 25, 5, 30, 1]
    frame = pl.DataFrame({
        "account_id": ["a", "a", "a", "a", "a", "b", "b", "b", "c", "c"],
        "user_id": ["u1", "u2", "u1", None, "u3", "v1", None, "v1", "w1", "w2"],
        "event": ["login", "login", "view", "login", "login", "login", "view", "login",
                  "login", "view"],
        "timestamp": [dt.datetime(2026, 6, d, 9) for d in days],
        "amount": [1.5, 2.0, 0.25, 4.0, 8.0, 1.0, 3.0, 5.0, 7.0, 9.0],
    })
    if flawed:
        frame = frame.with_columns(
            pl.when(pl.int_range(pl.len()) == 1).then(None).otherwise(pl.col("event"))
            .alias("event"),
            pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("timestamp"))
            .alias("timestamp"),
            pl.when(pl.int_range(pl.len()) == 6).then(math.nan)
            .when(pl.int_range(pl.len()) == 8).then(math.inf)
            .otherwise(pl.col("amount")).alias("amount"))
    return frame


ACCOUNTS = pl.DataFrame({"account_id": ["a", "b", "c", "d"]})


def _tickets(flawed: bool = False) -> pl.DataFrame:
    return pl.DataFrame({
        "customer": ["a", "b", "b", "zz"],
        "at": [dt.datetime(2026, 6, 20), None if flawed else dt.datetime(2026, 6, 21),
               dt.datetime(2026, 6, 22), dt.datetime(2026, 6, 23)],
        "minutes": [10.0, 20.0, -math.inf if flawed else 30.0, 5.0],
    })


def _same_as_reference(got: hr.Evaluation, roadmap: Roadmap, events: Any,
                       ids: list[str]) -> None:
    ref = evaluate_reference(roadmap, events, ACCOUNTS, AS_OF)
    for row in got.indicators.to_dicts():
        want = ref.accounts[row["account_id"]].indicators
        assert {k: row[k] for k in ids} == {k: want[k] for k in ids}, row["account_id"]


def test_equal_aggregations_are_computed_once_and_copied() -> None:
    roadmap = _roadmap()
    query = events_query(roadmap, _events(), ACCOUNTS, AS_OF)
    plan_text = query.explain()
    aggregate = plan_text[plan_text.index("AGGREGATE"):]
    aggregate = aggregate[:aggregate.index("FROM")]
    # three indicators count the same logins: one aggregation in the group_by
    assert aggregate.count('col("event") == "login"') + aggregate.count(
        '(col("event")) == ("login")') <= 2  # the current window, and the previous one
    for copied in ("__0__logins_trend", "__0__logins_again", "__0__users_7d_too"):
        assert f'alias("{copied}")' not in aggregate
        assert copied in query.collect_schema().names()
    got = hr.evaluate(roadmap, _events(), ACCOUNTS, AS_OF)
    _same_as_reference(got, roadmap, _events(), [
        "logins_30d", "logins_trend", "logins_again", "users_7d", "users_7d_too", "spend",
        "days"])
    rows = {r["account_id"]: r for r in got.indicators.to_dicts()}
    # a: logins on 29, 28, 10 and 2 June in 30 days; a null user is not a user
    assert (rows["a"]["logins_30d"], rows["a"]["logins_again"]) == (4, 4)
    assert (rows["a"]["users_7d"], rows["a"]["users_7d_too"]) == (2, 2)
    assert rows["d"]["logins_trend"] == 0 and rows["d"]["users_7d"] == 0


def test_clean_events_never_run_the_flaw_query(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> dict[str, int]:
        raise AssertionError("the flaw query ran on clean events")

    monkeypatch.setattr(EventsPass, "flaws", refuse)
    got = hr.evaluate(_roadmap(), _events(), ACCOUNTS, AS_OF)
    for name in ("events_null_timestamp", "events_null_event", "values_not_finite"):
        assert got.diagnostics[name] == 0
    assert got.diagnostics["events_read"] == 10
    lazy = hr.evaluate(_roadmap(), _events().lazy(), ACCOUNTS, AS_OF)
    assert lazy.diagnostics == got.diagnostics


@pytest.mark.parametrize("lazy", [False, True])
def test_flaws_are_counted_by_kind(lazy: bool) -> None:
    events = _events(flawed=True)
    got = hr.evaluate(_roadmap(), events.lazy() if lazy else events, ACCOUNTS, AS_OF)
    assert got.diagnostics["events_null_event"] == 1
    assert got.diagnostics["events_null_timestamp"] == 1
    assert got.diagnostics["values_not_finite"] == 2
    assert got.diagnostics["events_read"] == 10
    _same_as_reference(got, _roadmap(), events,
                       ["logins_30d", "logins_trend", "users_7d", "spend", "days"])


def test_flaws_of_each_source_are_counted_apart() -> None:
    roadmap = _roadmap(sources=True)
    clean = hr.evaluate(roadmap, {"usage": _events(), "tickets": _tickets()}, ACCOUNTS,
                        AS_OF)
    assert clean.diagnostics["tickets:events_null_timestamp"] == 0
    assert clean.diagnostics["values_not_finite"] == 0
    got = hr.evaluate(roadmap, {"usage": _events(), "tickets": _tickets(flawed=True)},
                      ACCOUNTS, AS_OF)
    d = got.diagnostics
    assert (d["tickets:events_null_timestamp"], d["tickets:values_not_finite"]) == (1, 1)
    assert (d["usage:events_null_timestamp"], d["usage:values_not_finite"]) == (0, 0)
    assert (d["events_null_timestamp"], d["values_not_finite"]) == (1, 1)
    assert d["tickets:events_unknown_account"] == 1
    rows = {r["account_id"]: r for r in got.indicators.to_dicts()}
    # b's second ticket has no time (not counted); its third has a -inf (read as null)
    assert (rows["b"]["tickets_30d"], rows["b"]["minutes_30d"]) == (1, 0.0)
    assert (rows["a"]["tickets_30d"], rows["a"]["minutes_30d"]) == (1, 10.0)
