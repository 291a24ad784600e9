"""The sign of a zero: engine, reference, history, one account alone and explain agree.

Which of two equal values ``min`` / ``max`` keeps is not defined where the order of rows is
not (the events of an account, the children of a parent): polars' group min kept one or the
other depending on the order and the length of the group, the reference kept the first. So
a value column reads ``-0.0`` as ``0.0`` (as sums and percentiles already gave), and a
roll-up's min / max of zeros is ``0.0``. An expression keeps the IEEE sign of its zeros:
``-x`` of 0.0 is -0.0, ``x + 0.0`` of -0.0 is 0.0 (docs/semantics.md).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.history import history
from healthrules.roadmap import Roadmap
from reference import evaluate_reference
from test_engine_vs_reference import compare

AS_OF = dt.date(2026, 6, 30)
ORDERS = {"a": [0.0, -0.0], "b": [-0.0, 0.0], "c": [-0.0], "d": [0.0, -0.0, -0.0, 0.0],
          "e": [-0.0] * 40 + [0.0], "f": [0.0] * 40 + [-0.0], "g": [-0.0, 1.0]}


def _sign(v: object) -> str:
    assert isinstance(v, float), v
    return f"{'-' if math.copysign(1.0, v) < 0 else '+'}{abs(v)!r}"


def _roadmap() -> Roadmap:
    return Roadmap.model_validate({
        "id": "z", "goal": "g",
        "data": {"events": {"values": {"value": "float"}, "timezone": "UTC"},
                 "accounts": {"attributes": {"ratio": "float"}, "parent": "parent"}},
        "indicators": [
            {"id": "mn", "family": "process", "aggregate": "min", "of": "value"},
            {"id": "mx", "family": "process", "aggregate": "max", "of": "value"},
            {"id": "md", "family": "process", "aggregate": "median", "of": "value"},
            {"id": "mn7", "family": "process", "aggregate": "min", "of": "value",
             "window": "7d", "compare": "previous"},
            {"id": "neg", "family": "process", "expr": "-coalesce(ratio, 1.0)"},
            {"id": "plus", "family": "process", "expr": "neg + 0.0"},
            {"id": "kid_min", "kind": "rollup", "family": "outcome", "aggregate": "min",
             "of": "neg"},
            {"id": "kid_max", "kind": "rollup", "family": "outcome", "aggregate": "max",
             "of": "-ratio"},
        ],
        "stages": [{"id": "s", "actions": [
            {"id": "t", "kind": "challenge", "when": "True",
             "do": "{mn} {mx} {neg} {neg:.0%} {neg:d} {kid_min:.1f}"}]}],
    })


def _frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    rows: list[dict[str, Any]] = []
    for account, values in ORDERS.items():
        for i, v in enumerate(values):
            rows.append({"account_id": account, "user_id": "u", "event": "x",
                         "timestamp": dt.datetime(2026, 6, 1 + i % 28, tzinfo=dt.UTC),
                         "value": v})
    events = pl.DataFrame(rows, schema={
        "account_id": pl.String, "user_id": pl.String, "event": pl.String,
        "timestamp": pl.Datetime("us", "UTC"), "value": pl.Float64})
    accounts = pl.DataFrame({
        "account_id": [*ORDERS, "p1", "p2"],
        "ratio": [0.0, -0.0, 0.0, -0.0, 0.0, -0.0, -0.0, 0.0, -0.0],
        "parent": ["p1", "p1", "p1", "p2", "p2", "p2", "p2", None, None],
    })
    return events, accounts


def test_min_and_max_of_zeros_are_positive_zero_everywhere() -> None:
    roadmap = _roadmap()
    events, accounts = _frames()
    result = hr.evaluate(roadmap, events, accounts, AS_OF)
    ref = evaluate_reference(roadmap, events, accounts, AS_OF)
    assert not compare(result, ref, roadmap)
    rows = {r["account_id"]: r for r in result.indicators.to_dicts()}
    for account in ORDERS:
        assert _sign(rows[account]["mn"]) == "+0.0", account
        assert _sign(rows[account]["md"]) == "+0.0" or account == "g"
        if account != "g":
            assert _sign(rows[account]["mx"]) == "+0.0", account
    # an expression keeps the IEEE sign: -(0.0) is -0.0, -(-0.0) + 0.0 is 0.0
    assert _sign(rows["a"]["neg"]) == "-0.0" and _sign(rows["b"]["neg"]) == "+0.0"
    assert _sign(rows["a"]["plus"]) == "+0.0"
    # roll-ups: children's -0.0 and 0.0 in any order give 0.0
    for parent in ("p1", "p2"):
        assert _sign(rows[parent]["kid_min"]) == "+0.0", parent
    assert rows["p2"]["kid_max"] == 0.0 and _sign(rows["p2"]["kid_max"]) == "+0.0"
    texts = dict(result.actions.select("account_id", "text").rows())
    assert texts["a"] == "0.00 0.00 0.00 0% 0 n/a"  # a zero never renders as -0


def test_one_account_alone_and_history_give_the_same_zeros() -> None:
    roadmap = _roadmap()
    events, accounts = _frames()
    plan = hr.compile(roadmap)
    batch = hr.evaluate(plan, events, accounts, AS_OF)
    for account in ("a", "b", "c"):
        alone = hr.evaluate(plan, events.filter(pl.col("account_id") == account),
                            accounts.filter(pl.col("account_id") == account)
                            .with_columns(parent=pl.lit(None, pl.String)), AS_OF)
        want = batch.indicators.filter(pl.col("account_id") == account).drop(
            "kid_min", "kid_max")
        assert_frame_equal(alone.indicators.drop("kid_min", "kid_max"), want)
    h = history(roadmap, events, accounts, dt.date(2026, 6, 20), AS_OF, every="10d")
    for d in h.dates:
        got = h.at(d).indicators
        exp = hr.evaluate(roadmap, events, accounts, d).indicators
        assert_frame_equal(got, exp)
        for col in ("mn", "mx", "mn7", "kid_min"):
            for v in got[col].to_list():
                assert v is None or v != 0 or _sign(v) == "+0.0", (d, col)


@pytest.mark.parametrize("account", ["a", "b", "c"])
def test_explain_recomputes_the_engine_values(account: str) -> None:
    """explain reads the engine's values and recomputes expressions row by row (scalar.py):
    ``neg + 0.0`` gives the sign the engine gave."""
    from healthrules.scalar import evaluate

    roadmap = _roadmap()
    events, accounts = _frames()
    result = hr.evaluate(roadmap, events, accounts, AS_OF)
    why = result.explain(account)
    row = result.indicators.filter(pl.col("account_id") == account).row(0, named=True)
    assert _sign(why.values["neg"]) == _sign(row["neg"])
    again = evaluate("neg + 0.0", {"neg": why.values["neg"]}, as_of=AS_OF,
                     types={"neg": "float"})
    assert _sign(again) == _sign(row["plus"]) == "+0.0"


# Columns whose rows are all alike: polars holds them as one value and adds them with its
# scalar kernel, which dropped a zero operand (``0.0 - x`` as ``-x``, ``x + 0.0`` as ``x``).
# Every account below has no `seats` and `ratio` a zero, so each operand is such a column.
_ALIKE = {
    "minus": ("coalesce(seats, 0.0) - ratio", "+0.0"),     # 0.0 - 0.0
    "plus": ("coalesce(seats, 0.0) + -ratio", "+0.0"),     # 0.0 + (-0.0)
    "rplus": ("-ratio + coalesce(seats, 0.0)", "+0.0"),    # -0.0 + 0.0
    "both": ("-ratio + coalesce(seats, -0.0)", "-0.0"),    # -0.0 + (-0.0)
    "rminus": ("-ratio - coalesce(seats, -0.0)", "+0.0"),  # -0.0 - (-0.0)
    "keep": ("-ratio - coalesce(seats, 0.0)", "-0.0"),     # -0.0 - 0.0
    "when": ("(0.0 if ratio == 0 else 1.0) - ratio", "+0.0"),
    "ints": ("coalesce(seats, 0) + -ratio", "+0.0"),       # an int zero is +0
}


@pytest.mark.parametrize("accounts_n", [1, 3, 40])
def test_sums_of_columns_held_as_one_value_keep_the_ieee_sign(accounts_n: int) -> None:
    roadmap = Roadmap.model_validate({
        "id": "z", "goal": "g",
        "data": {"events": {"timezone": "UTC"},
                 "accounts": {"attributes": {"ratio": "float", "seats": "int"}}},
        "indicators": [
            {"id": "n", "family": "process", "aggregate": "count", "window": "7d"},
            *({"id": k, "family": "process", "expr": e} for k, (e, _) in _ALIKE.items()),
            {"id": "d", "family": "process", "expr": "n - ratio", "compare": "delta"},
        ],
        "stages": [{"id": "s", "actions": [
            {"id": "t", "kind": "challenge", "when": "True", "do": "{minus} {d}"}]}],
    })
    events = pl.DataFrame(schema={"account_id": pl.String, "user_id": pl.String,
                                  "event": pl.String, "timestamp": pl.Datetime("us", "UTC")})
    accounts = pl.DataFrame({"account_id": [f"a{i}" for i in range(accounts_n)],
                             "ratio": [0.0] * accounts_n, "seats": [None] * accounts_n},
                            schema={"account_id": pl.String, "ratio": pl.Float64,
                                    "seats": pl.Int64})
    result = hr.evaluate(roadmap, events, accounts, AS_OF)
    ref = evaluate_reference(roadmap, events, accounts, AS_OF)
    assert not compare(result, ref, roadmap)
    for row in result.indicators.to_dicts():
        for ident, (_, sign) in _ALIKE.items():
            assert _sign(row[ident]) == sign, (ident, row[ident])
        assert _sign(row["d"]) == "+0.0"  # 0.0 - 0.0, the previous window's too
