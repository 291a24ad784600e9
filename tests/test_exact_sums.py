"""Exact float sums and means (issue #11, "Scores depend on which other rows are present").

``sum`` and ``mean`` of a float value column add the values on a grid of 1e-9 as integers,
so one account's value is the same bits alone, in a batch, in any row order, in history, in
a roll-up whatever the order of the children, and in Spark; the grid and the conversion back
are checked against plain Python integers; sums that could leave the integer range are
refused with a located error (docs/semantics.md, "Floating point").
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import os
import random
import shutil
import sys
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.aggregates import (
    EXACT_BOUND,
    exact_limbs,
    exact_mean,
    from_grid,
    quantise,
)
from healthrules.errors import InputDataError
from healthrules.history import history
from healthrules.testing.strategies import SUM_PROBES
from reference import evaluate_reference

AS_OF = dt.date(2026, 7, 1)
DAY = dt.datetime(2026, 6, 20, 12)

# 1e16 + 1.0 - 1e16 is 0.0 or 1.0 in floats depending on the order, ten 0.1s add up to
# 0.9999999999999999 left to right: exactly 1.0 and 1.0 on the grid
ORDER_PROBE = [1e16, 1.0, -1e16] + [0.1] * 10
EXPECTED_SUM = 2.0
EXPECTED_MEAN = 2.0 / len(ORDER_PROBE)

ROADMAP = hr.Roadmap.model_validate({
    "id": "money", "goal": "g",
    "data": {"events": {"values": {"amount": "float", "seats": "int"}}},
    "indicators": [
        {"id": "spend_30d", "family": "outcome", "aggregate": "sum", "of": "amount",
         "window": "30d", "bands": {"levels": [
             {"name": "low", "lt": 2.0}, {"name": "ok", "ge": 2.0}]}},
        {"id": "spend_all", "family": "outcome", "aggregate": "sum", "of": "amount",
         "window": "all"},
        {"id": "avg_spend", "family": "outcome", "aggregate": "mean", "of": "amount",
         "window": "30d"},
        {"id": "spend_delta", "family": "outcome", "aggregate": "sum", "of": "amount",
         "window": "7d", "compare": "delta"},
        {"id": "seats_total", "family": "process", "aggregate": "sum", "of": "seats",
         "window": "all"},
        {"id": "seats_avg", "family": "process", "aggregate": "mean", "of": "seats",
         "window": "all"},
    ],
    "stages": [{"id": "s"}],
})


def _events(values: dict[str, list[float]], day: dt.datetime = DAY) -> pl.DataFrame:
    rows = [{"account_id": acc, "user_id": "u", "event": "buy",
             "timestamp": day + dt.timedelta(minutes=i), "amount": v, "seats": 1}
            for acc, vs in values.items() for i, v in enumerate(vs)]
    return pl.DataFrame(rows, schema={"account_id": pl.String, "user_id": pl.String,
                                      "event": pl.String, "timestamp": pl.Datetime("us"),
                                      "amount": pl.Float64, "seats": pl.Int64})


def _accounts(ids: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"account_id": ids})


def _row(result: hr.Evaluation, account: str) -> dict[str, Any]:
    return result.indicators.filter(pl.col("account_id") == account).row(0, named=True)


# --------------------------------------------------------------------------- the grid


EDGES = [0.1, 0.3, 1 / 3, 2.5e-9, -2.5e-9, 1.5e-9, -1.5e-9, 0.5e-9, 3.5e-9, 5e-324, -5e-324,
         -0.0, 0.0, 2.0**53 + 2, -(2.0**53) - 2, 2.0**62, -(2.0**62), 1e16, 12345678.123456789,
         123.456789012, -123.456789012, 9.999999999, 0.9999999995, 1e-10, 7e15 + 0.5,
         -7.000000000000001, 4.503599627370497e15]


def test_polars_limbs_give_the_python_billionths() -> None:
    frame = pl.DataFrame({"v": EDGES}).select(*(e.alias(n) for e, n in zip(
        exact_limbs(pl.col("v")), ("hi", "lo"), strict=True)))
    got = [hi * 10**9 + lo for hi, lo in frame.iter_rows()]
    assert got == [quantise(v) for v in EDGES]


def test_the_grid_rounds_half_to_even_and_keeps_decimals() -> None:
    # ties on the grid: to even, the sign kept
    assert [quantise(v) for v in (0.5e-9, 1.5e-9, 2.5e-9, 3.5e-9)] == [0, 2, 2, 4]
    assert [quantise(v) for v in (-1.5e-9, -2.5e-9)] == [-2, -2]
    # tiny and signed zeros are 0
    assert [quantise(v) for v in (5e-324, -5e-324, -0.0, 1e-10)] == [0, 0, 0, 0]
    # values with at most 9 decimals are exactly their decimal's billionths
    for text in ("0.1", "0.3", "123.456789012", "-123.456789012", "9.999999999", "19.99",
                 "1234567.89", "-0.000000001"):
        assert quantise(float(text)) == int(Fraction(text) * 10**9), text
    # beyond 2**53 a double is an integer: exact
    assert quantise(2.0**53 + 2) == (2**53 + 2) * 10**9
    assert quantise(1e16) == 10**25
    # within half a billionth of the value, plus the rounding of the product frac * 1e9
    # (which decides ties such as the double nearest 2.5e-9, a hair above the tie)
    for v in EDGES:
        assert abs(Fraction(quantise(v), 10**9) - Fraction(v)) <= (
            Fraction(1, 2 * 10**9) + Fraction(1, 2**24 * 10**9))


def test_from_grid_is_correctly_rounded() -> None:
    rng = random.Random(11)
    totals = ([rng.randrange(-10**30, 10**30) for _ in range(2000)]
              + [rng.randrange(-2**60, 2**60) for _ in range(2000)]
              + [0, 1, -1, 5 * 10**8, 2**53 * 10**9 + 1, 10**25, -(10**25) + 1])
    got = pl.DataFrame({"n": totals}, schema={"n": pl.Int128}).select(
        from_grid(pl.col("n")))["n"].to_list()
    assert got == [n / 10**9 for n in totals]  # Python's int / int is correctly rounded
    assert exact_mean(3 * 10**9, 3) == 1.0 and exact_mean(0, 0) is None


# --------------------------------------------------------------------------- partitions


def test_one_account_alone_in_a_batch_in_any_order_and_in_history_is_the_same_bits() -> None:
    """Failed before: the float sum of ORDER_PROBE depended on the order (and the batch)."""
    rng = random.Random(3)
    probe = _events({"probe": ORDER_PROBE})
    alone = hr.evaluate(ROADMAP, probe, _accounts(["probe"]), AS_OF)
    others = {f"a{k:05d}": [rng.choice(SUM_PROBES) for _ in range(40)] for k in range(1500)}
    # more rows than the in-memory threshold: the streaming engine, in chunks
    batch_events = pl.concat([_events(others), probe]).sample(fraction=1.0, shuffle=True,
                                                               seed=5)
    ids = ["probe", *others]
    batch = hr.evaluate(ROADMAP, batch_events, _accounts(ids), AS_OF)
    reversed_rows = hr.evaluate(ROADMAP, batch_events.reverse(), _accounts(ids[::-1]), AS_OF)
    want = _row(alone, "probe")
    assert want["spend_30d"] == EXPECTED_SUM and want["spend_all"] == EXPECTED_SUM
    assert want["avg_spend"] == EXPECTED_MEAN
    assert want["spend_30d__band"] == "ok"
    for result in (batch, reversed_rows):
        assert _row(result, "probe") == want
    assert_frame_equal(batch.indicators, reversed_rows.indicators, check_exact=True)
    # history computes the same sums from prefix sums of the limbs, bit for bit
    h = history(ROADMAP, batch_events, _accounts(ids), AS_OF - dt.timedelta(days=14), AS_OF,
                every="7d")
    for d in h.dates:
        assert_frame_equal(h.at(d).indicators, hr.evaluate(ROADMAP, batch_events,
                                                           _accounts(ids), d).indicators,
                           check_exact=True)
    assert _row(h.at(AS_OF), "probe") == want


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.sampled_from(SUM_PROBES) | st.floats(-1e6, 1e6), min_size=1,
                       max_size=25),
       seed=st.integers(0, 2**16))
def test_any_row_order_gives_the_reference_sum(values: list[float], seed: int) -> None:
    events = _events({"a": values, "b": [1.0, 2.0]})
    shuffled = events.sample(fraction=1.0, shuffle=True, seed=seed)
    accounts = _accounts(["a", "b"])
    got = hr.evaluate(ROADMAP, events, accounts, AS_OF).indicators
    assert_frame_equal(hr.evaluate(ROADMAP, shuffled, accounts, AS_OF).indicators, got,
                       check_exact=True)
    ref = evaluate_reference(ROADMAP, events, accounts, AS_OF).accounts["a"].indicators
    row = got.filter(pl.col("account_id") == "a").row(0, named=True)
    exact = sum(quantise(v) for v in values)
    assert row["spend_all"] == ref["spend_all"] == exact / 10**9
    assert row["avg_spend"] == ref["avg_spend"] == (exact / 10**9) / len(values)


# --------------------------------------------------------------------------- roll-ups

PARENTS_SPEC: dict[str, Any] = {
    "id": "groups", "goal": "g",
    "data": {"events": {"values": {"amount": "float"}},
             "accounts": {"parent": "parent_id"}},
    "indicators": [
        {"id": "spend", "family": "outcome", "aggregate": "sum", "of": "amount",
         "window": "all"},
        {"id": "kids_spend", "family": "outcome", "kind": "rollup", "aggregate": "sum",
         "of": "spend"},
        {"id": "kids_mean", "family": "outcome", "kind": "rollup", "aggregate": "mean",
         "of": "spend"},
        {"id": "kids_weighted", "family": "outcome", "kind": "rollup",
         "aggregate": "weighted_mean", "of": "spend", "weight": "spend * 0 + 0.1"},
    ],
    "stages": [{"id": "s"}],
}
PARENTS = hr.Roadmap.model_validate(PARENTS_SPEC)


def test_a_parent_does_not_depend_on_the_order_of_its_children() -> None:
    kids = [f"k{i}" for i in range(len(ORDER_PROBE))]
    events = _events({k: [v] for k, v in zip(kids, ORDER_PROBE, strict=True)})
    got = []
    for order in (kids, kids[::-1], [kids[i] for i in (2, 0, 1, *range(3, len(kids)))]):
        accounts = pl.DataFrame({"account_id": ["p", *order],
                                 "parent_id": [None, *["p"] * len(order)]})
        result = hr.evaluate(PARENTS, events, accounts, AS_OF)
        got.append(_row(result, "p"))
        ref = evaluate_reference(PARENTS, events, accounts, AS_OF).accounts["p"].indicators
        for name in ("kids_spend", "kids_mean", "kids_weighted"):
            assert got[-1][name] == ref[name], name
    assert got[0] == got[1] == got[2]
    assert got[0]["kids_spend"] == EXPECTED_SUM
    assert got[0]["kids_mean"] == EXPECTED_MEAN
    # sum(0.1 * x) / sum(0.1): the products on the grid, then one division
    num = sum(quantise(0.1 * v) for v in ORDER_PROBE) / 10**9
    den = sum(quantise(0.1) for _ in ORDER_PROBE) / 10**9
    assert got[0]["kids_weighted"] == num / den


def test_a_child_value_off_the_grid_makes_the_parent_null() -> None:
    spec = copy.deepcopy(PARENTS_SPEC)
    spec["indicators"][1]["of"] = "spend * 1e19"  # beyond 2**63: no exact sum on the grid
    roadmap = hr.Roadmap.model_validate(spec)
    events = _events({"k1": [1.0], "k2": [2.0]})
    accounts = pl.DataFrame({"account_id": ["p", "k1", "k2", "q"],
                             "parent_id": [None, "p", "p", None]})
    got = hr.evaluate(roadmap, events, accounts, AS_OF)
    ref = evaluate_reference(roadmap, events, accounts, AS_OF).accounts
    assert _row(got, "p")["kids_spend"] is None and ref["p"].indicators["kids_spend"] is None
    assert _row(got, "q")["kids_spend"] == ref["q"].indicators["kids_spend"] == 0.0
    assert _row(got, "p")["kids_mean"] == 1.5


def test_an_integer_sum_over_children_does_not_wrap() -> None:
    spec = {"id": "ints", "goal": "g",
            "data": {"accounts": {"parent": "parent_id", "attributes": {"big": "int"}}},
            "indicators": [{"id": "kids_big", "family": "outcome", "kind": "rollup",
                            "aggregate": "sum", "of": "big"}],
            "stages": [{"id": "s"}]}
    roadmap = hr.Roadmap.model_validate(spec)
    accounts = pl.DataFrame({"account_id": ["p", "k1", "k2", "k3", "q", "k4"],
                             "parent_id": [None, "p", "p", "p", None, "q"],
                             "big": [0, 2**62, 2**62, 2**62, 0, 2**62]})
    events = _events({}).clear()
    got = hr.evaluate(roadmap, events, accounts, AS_OF)
    ref = evaluate_reference(roadmap, events, accounts, AS_OF).accounts
    # 3 * 2**62 is beyond Int64: null, where an Int64 sum would wrap to -2**62
    assert _row(got, "p")["kids_big"] is None and ref["p"].indicators["kids_big"] is None
    assert _row(got, "q")["kids_big"] == ref["q"].indicators["kids_big"] == 2**62


# --------------------------------------------------------------------------- the range


@pytest.mark.parametrize("values", [[3e18, 3e18], [1e19], [-5e18]])
def test_sums_that_could_leave_the_integer_range_are_refused(values: list[float]) -> None:
    events = _events({"big": values, "small": [1.0]})
    with pytest.raises(InputDataError) as err:
        hr.evaluate(ROADMAP, events, _accounts(["big", "small"]), AS_OF)
    issue = err.value.issues[0]
    assert issue.code == "values_out_of_range"
    assert issue.location is not None and issue.location.path == "amount"
    assert "'big'" in issue.message and "2**62" in issue.message
    with pytest.raises(InputDataError, match="amount"):
        history(ROADMAP, events, _accounts(["big", "small"]), AS_OF - dt.timedelta(days=7),
                AS_OF, every="7d")


def test_integer_sums_are_refused_before_they_wrap() -> None:
    events = _events({"a": [1.0, 1.0]}).with_columns(
        pl.Series("seats", [2**62, 2**62], dtype=pl.Int64))
    with pytest.raises(InputDataError, match="'seats'"):
        hr.evaluate(ROADMAP, events, _accounts(["a"]), AS_OF)


def test_sums_just_below_the_bound_are_exact() -> None:
    v = float(EXACT_BOUND // 2 - 2**10)
    values = [v, 1.5, -v / 2]  # absolute sum 1.5 v, below 2**62
    events = _events({"a": values})
    row = _row(hr.evaluate(ROADMAP, events, _accounts(["a"]), AS_OF), "a")
    assert row["spend_all"] == sum(quantise(x) for x in values) / 10**9 == v / 2 + 1.5
    assert math.isfinite(row["avg_spend"])


# --------------------------------------------------------------------------- Spark


def _java_found() -> bool:
    return shutil.which("java") is not None or bool(os.environ.get("JAVA_HOME"))


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    if not _java_found():
        pytest.fail("the Spark check needs a Java 17+ runtime: no `java` on PATH, no JAVA_HOME")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[2]").appName("healthrules-exact")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "3")
               .config("spark.driver.memory", "1g")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_spark_gives_the_same_bits(spark: Any) -> None:
    from healthrules.integrations import spark as hs

    rng = random.Random(8)
    values = {"probe": ORDER_PROBE,
              **{f"a{k}": [rng.choice(SUM_PROBES) for _ in range(12)] for k in range(30)}}
    events = _events(values).sample(fraction=1.0, shuffle=True, seed=2)
    accounts = _accounts(list(values))
    want = hr.evaluate(ROADMAP, events, accounts, AS_OF)
    result = hs.evaluate(
        ROADMAP,
        spark.createDataFrame(events.to_arrow(compat_level=pl.CompatLevel.oldest())),
        spark.createDataFrame(accounts.to_arrow(compat_level=pl.CompatLevel.oldest())),
        AS_OF, partitions=3)
    try:
        got = result.to_polars()["indicators"].sort("account_id")
    finally:
        result.unpersist()
    assert_frame_equal(got, want.indicators.sort("account_id"), check_exact=True)
    assert _row(want, "probe")["spend_all"] == EXPECTED_SUM
