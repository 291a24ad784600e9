"""An evaluation's streaming events pass picks the values it reduces by ``filter``.

Over many events (more than ``SMALL_ROWS``, or a lazy frame), the evaluation's own pass
reduces ``values.filter(condition)`` instead of ``when(condition).then(values)``: a column
of the kept rows instead of one of the length of the events per aggregation
(docs/performance.md, "Fourth round on the events pass"). Small in-memory inputs, the query
handed to callers and history keep ``when/then``. The values must be the same: the forms
are compared here on many events with nulls, NaN, infinities, null timestamps and events,
unknown accounts and empty windows, and on few events against the reference evaluator.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.engine import EventsPass
from healthrules.engine.frames import SMALL_ROWS
from healthrules.roadmap import Roadmap
from reference import evaluate_reference

AS_OF = dt.date(2026, 6, 30)
KINDS = ["sum", "mean", "min", "max", "median", "percentile"]


def _roadmap() -> Roadmap:
    indicators: list[dict[str, Any]] = []
    for kind in KINDS:
        for of in ("amount", "seats"):
            ind: dict[str, Any] = {"id": f"{kind}_{of}", "family": "outcome",
                                   "aggregate": kind, "of": of, "window": "30d",
                                   "where": "event == 'buy'"}
            if kind == "percentile":
                ind["q"] = 0.9
            indicators.append(ind)
    indicators.append({"id": "avg_trend", "family": "outcome", "aggregate": "mean",
                       "of": "amount", "window": "30d", "compare": "delta"})
    for kind in ("first_time", "last_time", "days_since_first", "days_since_last"):
        indicators.append({"id": kind, "family": "process", "aggregate": kind,
                           "where": "event == 'login'", "window": "90d"})
    indicators.append({"id": "buys", "family": "process", "aggregate": "count",
                       "where": "event == 'buy'", "window": "30d"})
    return Roadmap.model_validate({
        "id": "p", "goal": "g",
        "data": {"events": {"values": {"amount": "float", "seats": "int"}}},
        "indicators": indicators,
        "stages": [{"id": "s", "actions": [{
            "id": "quiet", "kind": "challenge", "when": "buys < 1", "do": "call",
            "owner": "csm"}]}],
    })


IDS = [ind.id for ind in _roadmap().indicators]


def _events(n: int) -> pl.DataFrame:
    i = pl.int_range(0, n, dtype=pl.Int64)

    def u(seed: int) -> pl.Expr:
        return (i.hash(seed) % 1_000_003).cast(pl.Float64) / 1_000_003.0

    start = dt.datetime(2026, 3, 1)
    amount = (u(4) * 200 - 50).round(2)
    return pl.select(
        pl.format("a{}", (u(1).pow(2) * 400).cast(pl.Int64)).alias("account_id"),
        pl.lit("u").alias("user_id"),
        pl.when(u(9) < 0.01).then(None).when(u(2) < 0.5).then(pl.lit("buy"))
        .when(u(2) < 0.8).then(pl.lit("login")).otherwise(pl.lit("view")).alias("event"),
        pl.when(u(8) < 0.01).then(None).otherwise(
            pl.lit(start) + pl.duration(seconds=(u(3) * 122 * 86_400).cast(pl.Int64)))
        .alias("timestamp"),
        pl.when(u(5) < 0.03).then(None).when(u(5) < 0.035).then(float("nan"))
        .when(u(5) < 0.037).then(float("inf")).when(u(5) < 0.04).then(-0.0)
        .otherwise(amount).alias("amount"),
        pl.when(u(6) < 0.05).then(None).otherwise((u(7) * 40).cast(pl.Int64) - 10)
        .alias("seats"),
    )


ACCOUNTS = pl.DataFrame({"account_id": [f"a{k}" for k in range(0, 420, 1) if k != 7]})


def test_many_events_give_the_values_of_when_then(monkeypatch: pytest.MonkeyPatch) -> None:
    events = _events(SMALL_ROWS + 20_000)
    roadmap = _roadmap()
    plan = hr.compile(roadmap)
    picked: list[bool] = []
    original = EventsPass._filtered

    def spy(self: EventsPass) -> bool:
        picked.append(original(self))
        return picked[-1]

    monkeypatch.setattr(EventsPass, "_filtered", spy)
    got = hr.evaluate(plan, events, ACCOUNTS, AS_OF)
    lazy = hr.evaluate(plan, events.lazy(), ACCOUNTS, AS_OF)
    assert picked and all(picked)
    monkeypatch.setattr(EventsPass, "_filtered", lambda self: False)
    want = hr.evaluate(plan, events, ACCOUNTS, AS_OF)
    for frame in (got, lazy):
        assert_frame_equal(frame.indicators, want.indicators)
        assert frame.diagnostics == want.diagnostics
    assert got.diagnostics["values_not_finite"] > 0
    assert got.diagnostics["events_null_timestamp"] > 0
    assert got.diagnostics["events_unknown_account"] > 0


def test_the_filtered_pass_reduces_filtered_values() -> None:
    roadmap = _roadmap()
    plan = hr.compile(roadmap)
    accounts = ACCOUNTS
    from healthrules.engine.evaluator import prepare
    from healthrules.inputs import accounts_at
    plan, clock, ev_lf, acc_df = prepare(plan, _events(10), accounts, AS_OF)
    acc = accounts_at(acc_df, clock, plan.account_key).frame
    events = ev_lf[plan.default_source]
    many = EventsPass(plan, clock, acc, optimistic=True).query(events).explain()
    few = EventsPass(plan, clock, acc, optimistic=True, rows=10).query(events).explain()
    aggregate = many[many.index("AGGREGATE"):many.index("FROM")]
    assert ".filter(" in aggregate and ".then(col(" not in aggregate
    aggregate = few[few.index("AGGREGATE"):few.index("FROM")]
    assert ".then(col(" in aggregate


@pytest.mark.parametrize("n", [40, 400])
def test_few_events_lazy_and_eager_match_the_reference(n: int) -> None:
    events = _events(n)
    roadmap = _roadmap()
    ref = evaluate_reference(roadmap, events, ACCOUNTS, AS_OF)
    for given in (events, events.lazy()):  # when/then in memory; filter, streaming
        got = hr.evaluate(roadmap, given, ACCOUNTS, AS_OF)
        for row in got.indicators.to_dicts():
            want = ref.accounts[row["account_id"]].indicators
            assert {k: row[k] for k in IDS} == {k: want[k] for k in IDS}, row["account_id"]
