"""The finishes of two-step aggregations in two steps, on the events pass over a few events.

A mean is finished after the ``group_by`` from its reductions: the double of the exact
sum (``from_grid`` of its billionths, or of its two limbs) over the count. As one
expression the sum's double is read twice (its test for NaN and the division), a subtree
of about a dozen nodes each time; planning it is most of the cost of a one-account events
pass's finish. Over a few events (polars' in-memory engine, ``EventsPass.query(...,
small=True)``) the finish runs in two ``with_columns``: the values of the reductions
(``Split.values``, columns of their own), then ``Split.combine`` of those columns. The
many-row pass keeps the one-expression form. Both forms give the same bits
(docs/performance.md, "Eleventh round").
"""

from __future__ import annotations

import datetime as dt
import struct
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from adversarial_events import adversarial_events, some_rows
from healthrules.aggregates import AGGREGATE_KINDS, EXACT_SCALE
from healthrules.engine.aggregate import EventsPass
from healthrules.inputs import Clock
from reference import evaluate_reference

AS_OF = dt.date(2026, 3, 30)
CLOCK = Clock(AS_OF, dt.datetime(2026, 3, 31), None, "us")

# totals (billionths) around the limits of the exact double, the Int64 range and 0; counts
# 0, null and a few
TOTALS: list[int | None] = [0, None, 2**53, 2**53 + 1, -(2**53) - 1, -(2**53), 2**62,
                            -(2**62), 1, -1, 123456789, 10**9, 3 * 10**9 + 1, 2**63 - 1,
                            -(2**63), 7]
COUNTS: list[int | None] = [1, 0, 3, 7, None, 1, 3, 2, 0, 9, 3, 1, 6, 5, 2, None]


def _bits(xs: list[Any]) -> list[Any]:
    return [None if x is None else struct.pack("<d", x) for x in xs]


def _split(one_limb: bool, value_type: str) -> Any:
    kind = AGGREGATE_KINDS["mean"]
    inputs = kind.inputs(condition=pl.col("keep"), timestamp=pl.col("t"), of="v", user=None,
                         value_types={"v": value_type}, day="__day", finite=True,
                         one_limb=one_limb)
    assert kind.split is not None
    split = kind.split(inputs)
    assert split is not None and split.values is not None and split.combine is not None
    return split


@pytest.mark.parametrize(("one_limb", "value_type", "parts"),
                         [(True, "float", 2), (False, "float", 3), (False, "int", 2)])
def test_staged_mean_finish_is_the_one_expression_bit_for_bit(
        one_limb: bool, value_type: str, parts: int) -> None:
    split = _split(one_limb, value_type)
    assert len(split.parts) == parts
    cols = [f"p{k}" for k in range(parts)]
    if parts == 2:
        frame = pl.DataFrame({"p0": TOTALS, "p1": COUNTS},
                             schema={"p0": pl.Int64, "p1": pl.UInt32})
    else:  # two limbs: units and billionths below 10**9 (summed), and the count
        frame = pl.DataFrame(
            {"p0": [None if t is None else t // EXACT_SCALE for t in TOTALS],
             "p1": [None if t is None else t % EXACT_SCALE for t in TOTALS],
             "p2": COUNTS}, schema={"p0": pl.Int64, "p1": pl.Int64, "p2": pl.UInt32})
    one = frame.with_columns(split.finish([pl.col(c) for c in cols]).alias("x"))
    values = split.values([pl.col(c) for c in cols])
    named = [v.alias(f"__v{k}") for k, v in enumerate(values)]
    two = frame.with_columns(named).with_columns(
        split.combine([pl.col(f"__v{k}") for k in range(len(named))]).alias("x"))
    for engine in ("in-memory", "streaming"):
        lazy_one = frame.lazy().with_columns(
            split.finish([pl.col(c) for c in cols]).alias("x")).collect(engine=engine)
        assert _bits(lazy_one["x"].to_list()) == _bits(one["x"].to_list())
    assert one["x"].dtype == two["x"].dtype == pl.Float64
    assert _bits(two["x"].to_list()) == _bits(one["x"].to_list())
    # a count of 0 (or null) is null, never NaN
    assert [x for x, c in zip(two["x"].to_list(), COUNTS, strict=True) if not c] == [None] * 4


def _roadmap(zone: str | None) -> hr.Roadmap:
    events: dict[str, Any] = {"values": {"amount": "float", "seats": "int"}}
    if zone is not None:
        events["timezone"] = zone
    return hr.Roadmap.model_validate({"id": "staged", "goal": "g", "data": {"events": events},
                                      **SPEC})


SPEC: dict[str, Any] = {
    "indicators": [
        {"id": "avg_spend", "family": "outcome", "aggregate": "mean", "of": "amount",
         "window": "30d"},
        {"id": "avg_spend_again", "family": "outcome", "aggregate": "mean", "of": "amount",
         "window": "30d"},
        {"id": "spend", "family": "outcome", "aggregate": "sum", "of": "amount",
         "window": "30d"},
        {"id": "avg_buy", "family": "outcome", "aggregate": "mean", "of": "amount",
         "window": "10d", "where": "event == 'buy'", "compare": "delta"},
        {"id": "avg_seats", "family": "process", "aggregate": "mean", "of": "seats",
         "window": "7d", "compare": "delta"},
        {"id": "buys", "family": "process", "aggregate": "count", "window": "all",
         "where": "event == 'buy'"},
    ],
    "stages": [{"id": "s"}],
}

ZONE = "Europe/Amsterdam"  # summer time from 2026-03-29 02:00


def _events(zone: str | None) -> pl.DataFrame:
    return adversarial_events(zone, hours=5, varied_users=False)


ACCOUNTS = pl.DataFrame({"account_id": ["a", "b", "c", "d"]})


def _collected(p: EventsPass, events: pl.LazyFrame, small: bool) -> pl.DataFrame:
    return p.query(events, small=small).collect(engine="in-memory",
                                                optimizations=pl.QueryOptFlags.none())


@pytest.mark.parametrize("zone", [None, ZONE])
@pytest.mark.parametrize("optimistic", [True, False])
@pytest.mark.parametrize("rows", ["all", "one account", "none"])
def test_small_query_stages_the_finishes_and_gives_the_same_frame(
        zone: str | None, optimistic: bool, rows: str) -> None:
    roadmap = _roadmap(zone)
    plan = hr.compile(roadmap)
    events = some_rows(_events(zone), rows)
    clock = CLOCK if zone is None else Clock(AS_OF, dt.datetime(2026, 3, 31), zone, "us")
    p = EventsPass(plan, clock, ACCOUNTS, optimistic=optimistic)
    small = _collected(p, events.lazy(), small=True)
    large = _collected(p, events.lazy(), small=False)
    assert small.columns == large.columns
    assert small.schema == large.schema
    assert small.sort("account_id", nulls_last=True).equals(
        large.sort("account_id", nulls_last=True))
    # the small form computes the means' values as columns of their own; the other does not
    plan_small = p.query(events.lazy(), small=True).explain(
        optimizations=pl.QueryOptFlags.none())
    plan_large = p.query(events.lazy(), small=False).explain(
        optimizations=pl.QueryOptFlags.none())
    assert "__value0" in plan_small
    assert "__value" not in plan_large
    # the whole pass (finish, counters) as a service runs it: one account's rows
    got, counts = p.collect(events.lazy(), rows=events.height)
    want, want_counts = EventsPass(plan, clock, ACCOUNTS, optimistic=optimistic,
                                   rows=10**9).collect(events.lazy())
    assert counts == want_counts
    assert got.sort("account_id").equals(want.sort("account_id"))


@pytest.mark.parametrize("zone", [None, ZONE])
def test_one_account_evaluation_equals_the_reference(zone: str | None) -> None:
    roadmap = _roadmap(zone)
    events = _events(zone).filter(pl.col("account_id").is_in(["b"]))
    accounts = ACCOUNTS.filter(pl.col("account_id") == "b")
    got = hr.evaluate(roadmap, events, accounts, AS_OF).indicators.row(0, named=True)
    want = evaluate_reference(roadmap, events, accounts, AS_OF).accounts["b"].indicators
    for ind in roadmap.indicators:
        if isinstance(got[ind.id], float):
            assert _bits([got[ind.id]]) == _bits([want[ind.id]]), ind.id
        else:
            assert got[ind.id] == want[ind.id], ind.id
