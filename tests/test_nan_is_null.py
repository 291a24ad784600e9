"""A NaN computed by an expression is null (docs/semantics.md, "Expressions").

``inf - inf``, ``inf * 0``, ``inf / inf``, ``inf ** 0`` and ``change()`` of two ``inf`` give
NaN even from values that are not NaN (a float attribute may hold ``inf``, ``1e308 * 10``
overflows to it). The engine used to keep that NaN, which polars orders above every number
(``f1 - f2 > 0`` true), while ``explain`` (scalar.py) compared it as Python does (false) and
a derived indicator holding it read as null downstream. Every evaluator now reads it as null
at once: the vectorised form (polars_expr), the scalar form (scalar.py, explain), the
reference of the tests, the engine, history.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.expressions import Type, lag_column, parse
from healthrules.history import history
from healthrules.polars_expr import computed_nan_to_null, to_polars
from healthrules.roadmap import Roadmap
from healthrules.scalar import evaluate, trace
from reference import evaluate_reference
from test_engine_vs_reference import compare

INF = math.inf
DAY = dt.date(2024, 6, 30)
LAG = lag_column("f1", 7)
ENV: dict[str, Type] = {"f1": "float", "f2": "float", "i1": "int", "days_in_stage": "int"}
SCHEMA = {"f1": pl.Float64, "f2": pl.Float64, "i1": pl.Int64, "days_in_stage": pl.Int64}

BOTH_INF = {"f1": INF, "f2": INF, "i1": 0}
HUGE = {"f1": 1e308, "f2": -1e308, "i1": 3}

# (expression, row, value): the value both evaluators must give, by docs/semantics.md
CASES: list[tuple[str, dict[str, Any], object]] = [
    # the cases of the bug report
    ("1 if f1 - f2 > 0 else 2", BOTH_INF, None),
    ("f1 * 0 > -1", BOTH_INF, None),
    ("min(f1 - f2, 1.0)", BOTH_INF, 1.0),
    ("max(f1 - f2, 1.0)", BOTH_INF, 1.0),
    ("f1 / f2", BOTH_INF, None),
    ("f1 * 10 - f2 * 10 < 0", HUGE, False),  # inf - (-inf) is inf, a value
    ("f1 * 10 + f2 * 10", HUGE, None),  # inf + (-inf)
    ("f1 * 10 - f1 * 10", HUGE, None),  # overflow, then a subtraction
    ("f1 * 10 / (f1 * 10)", HUGE, None),
    ("f1 ** 0", BOTH_INF, None),  # inf * 0 + 1
    ("(f1 - f2) ** 2", BOTH_INF, None),
    ("-(f1 - f2) * 2 < 3", BOTH_INF, None),
    # a null like any other: coalesce, is None, in, if, not, and / or, functions
    ("coalesce(f1 - f2, 5.0)", BOTH_INF, 5.0),
    ("(f1 - f2) is None", BOTH_INF, True),
    ("(f1 - f2) is not None", BOTH_INF, False),
    ("(f1 - f2) in (1, 2)", BOTH_INF, None),
    ("(f1 - f2) not in (1, 2)", BOTH_INF, None),
    ("(f1 - f2 if i1 == 0 else 1.0) > 0", BOTH_INF, None),
    ("not (f1 - f2)", BOTH_INF, None),
    ("f1 - f2 > 0 or i1 == 0", BOTH_INF, True),
    ("f1 - f2 > 0 and i1 == 1", BOTH_INF, False),
    ("round(f1 - f2, 2)", BOTH_INF, None),
    ("abs(f1 * 0)", BOTH_INF, None),
    ("clip(f1 - f2, 0, 1)", BOTH_INF, None),
    ("change(f1, 7) > 0", {**BOTH_INF, LAG: INF}, None),
    ("change(f1, 7)", {**BOTH_INF, LAG: 1.0}, INF),
    # inf itself is a value everywhere
    ("f1 > 1e308", BOTH_INF, True),
    ("min(f1, 1.0) + min(-f2, -1.0)", BOTH_INF, -INF),
    ("round(f1, 2)", BOTH_INF, INF),
    ("abs(-f1)", BOTH_INF, INF),
    ("clip(f1, 0, 1)", BOTH_INF, 1.0),
    ("f1 / 0", BOTH_INF, None),
    ("1 / f1", BOTH_INF, 0.0),
    ("f1 * 10", HUGE, INF),
    ("i1 / i1", BOTH_INF, None),  # 0 / 0: a zero divisor, as always
    ("f1 in (1,)", BOTH_INF, False),
]


def _polars(source: str, rows: list[dict[str, Any]]) -> list[object]:
    frame = pl.DataFrame(rows, schema={**SCHEMA, LAG: pl.Float64})
    expr = to_polars(parse(source), column=pl.col, band=pl.col, as_of=DAY, types=ENV)
    return frame.lazy().select(expr.alias("v")).collect()["v"].to_list()


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize(("source", "row", "want"), CASES)
def test_both_evaluators_read_a_computed_nan_as_null(
        source: str, row: dict[str, Any], want: object) -> None:
    values = {LAG: None, "days_in_stage": 1, **row}
    scalar = evaluate(parse(source), values, as_of=DAY, types=ENV)
    (vectorised,) = _polars(source, [values])
    assert _same(scalar, want), f"scalar {scalar!r}"
    assert _same(vectorised, want), f"polars {vectorised!r}"


def test_explain_traces_the_nan_as_null() -> None:
    steps = trace(parse("f1 - f2 > 0"), BOTH_INF, as_of=DAY, types=ENV)
    assert [(s.text, s.value) for s in steps] == [
        ("f1", INF), ("f2", INF), ("f1 - f2", None), ("0", 0), ("f1 - f2 > 0", None)]


def test_the_guard_reads_nan_as_null_and_leaves_the_rest() -> None:
    # ``replace`` matches NaN by total equality; this pins it (a polars upgrade that changed
    # it would bring the bug back) and that -0.0, inf and null stay what they are
    s = pl.Series("x", [math.nan, INF, -INF, -0.0, 0.0, None, 1.5], dtype=pl.Float64)
    got = pl.select(computed_nan_to_null(pl.lit(s))).to_series()
    assert got.dtype == pl.Float64
    assert [(v, None if v is None else math.copysign(1, v)) for v in got.to_list()] == [
        (None, None), (INF, 1), (-INF, -1), (-0.0, -1), (0.0, 1), (None, None), (1.5, 1)]


def test_one_guard_where_the_arithmetic_ends() -> None:
    # the plan stays small: arithmetic passes a NaN on as it passes a null, so the guard is
    # one node where a value leaves the arithmetic, not one per operation; int division and
    # names need none (they read NaN as null already)
    def guards(source: str) -> int:
        expr = to_polars(parse(source), column=pl.col, band=pl.col, as_of=DAY, types=ENV)
        return str(expr).count("replace(")

    assert guards("(f1 - f2) * 2 + f1 / f2 > 0") == 1
    assert guards("min(f1 - f2, f1 * 2)") == 2
    assert guards("i1 / (i1 + 1) > 0.5") == 0
    assert guards("f1 > 0 and i1 * 2 < 3") == 0
    assert guards("-f1 ** 2 > 0") == 0


# --------------------------------------------------------------------------- whole roadmaps

AS_OF = dt.date(2026, 6, 30)


def _roadmap() -> Roadmap:
    levels = {"levels": [{"name": "low", "lt": 0}, {"name": "high", "ge": 0}]}
    return Roadmap.model_validate({
        "id": "nan", "goal": {"text": "g", "target": "gap > 0"},
        "data": {"events": {"values": {"value": "float"}},
                 "accounts": {"attributes": {"a": "float", "b": "float"}}},
        "indicators": [
            {"id": "logins", "family": "process", "aggregate": "count", "window": "30d"},
            {"id": "gap", "family": "outcome", "expr": "a - b", "bands": levels},
            {"id": "pick", "family": "outcome", "expr": "1 if a - b > 0 else 2"},
            {"id": "low", "family": "outcome", "expr": "min(a - b, 1.0)"},
            {"id": "big", "family": "outcome", "expr": "a * 10 - b * 10"},
            {"id": "reads_gap", "family": "outcome", "expr": "coalesce(gap, -1.0)"},
            {"id": "trend", "family": "outcome", "expr": "a + logins", "compare": "delta"},
        ],
        "stages": [
            {"id": "zero", "entry": "a * 0 > -1"},
            {"id": "rest", "actions": [
                {"id": "ahead", "kind": "positive", "when": "a - b > 0",
                 "do": "ahead by {a - b}"}]},
        ],
        "score": {"missing": "worst"},
    })


def _frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    events = pl.DataFrame({
        "account_id": ["x1", "x2", "x3"], "user_id": ["u", "u", "u"],
        "event": ["login"] * 3, "value": [1.0, 2.0, 3.0],
        "timestamp": [dt.datetime(2026, 6, 20)] * 3})
    accounts = pl.DataFrame({
        "account_id": ["x1", "x2", "x3", "x4"],
        "a": [INF, 1e308, 1.0, INF],
        "b": [INF, -1e308, 2.0, 1.0]}, schema={"account_id": pl.String, "a": pl.Float64,
                                                 "b": pl.Float64})
    return events, accounts


def test_engine_reference_and_explain_agree_on_a_computed_nan() -> None:
    roadmap = _roadmap()
    events, accounts = _frames()
    result = hr.evaluate(roadmap, events, accounts, AS_OF)
    assert not compare(result, evaluate_reference(roadmap, events, accounts, AS_OF), roadmap)
    ind = {r["account_id"]: r for r in result.indicators.to_dicts()}
    # x1: a = b = inf, so a - b is NaN: null
    assert ind["x1"]["gap"] is None and ind["x1"]["gap__band"] is None
    assert ind["x1"]["pick"] is None and ind["x1"]["low"] == 1.0
    assert ind["x1"]["reads_gap"] == -1.0  # stored and computed NaN read alike
    assert ind["x1"]["trend"] is None  # inf - inf between the two windows
    # x2: 1e308 - (-1e308) overflows to inf, a value; a * 10 - b * 10 is inf too
    assert ind["x2"]["gap"] == INF and ind["x2"]["gap__band"] == "high"
    assert ind["x2"]["pick"] == 1 and ind["x2"]["big"] == INF
    assert ind["x3"]["gap"] == -1.0 and ind["x3"]["pick"] == 2
    assert ind["x3"]["trend"] == 1.0  # (1.0 + 1) - (1.0 + 0): a login in this window only
    # x4: inf - 1 is inf; inf * 0 > -1 is unknown, so x4 is not in stage zero; its trend is
    # (inf + 0) - (inf + 0), NaN: null
    assert ind["x4"]["gap"] == INF and ind["x4"]["trend"] is None
    stages = dict(result.stages.select("account_id", "stage").rows())
    assert stages == {"x1": "rest", "x2": "zero", "x3": "zero", "x4": "rest"}
    fired = result.actions.select("account_id", "action_id").rows()
    assert fired == [("x4", "ahead")]
    conditions = result.conditions.row(0, named=True)
    assert (conditions["fired"], conditions["unknown"]) == (1, 1)  # x1's a - b is unknown
    goal = dict(result.scores.select("account_id", "goal_reached").rows())
    assert goal == {"x1": None, "x2": True, "x3": False, "x4": True}
    for account in ("x1", "x2", "x3", "x4"):  # explain (scalar.py) reads the same
        why = result.explain(account)
        entered = [s.stage for s in why.stages if s.result is True]
        assert why.stage == (entered[0] if entered else "_unassigned") == stages[account]
        assert [a.fired for a in why.actions] == [(account, "ahead") in fired]


def test_one_account_alone_reads_a_computed_nan_as_the_batch_does() -> None:
    # the service path (one account's frame, evaluated in two parts) against the batch
    roadmap = _roadmap()
    events, accounts = _frames()
    plan = hr.compile(roadmap)
    batch = hr.evaluate(plan, events, accounts, AS_OF)
    for account in ("x1", "x2", "x3", "x4"):
        alone = hr.evaluate(plan, events.filter(pl.col("account_id") == account),
                            accounts.filter(pl.col("account_id") == account), AS_OF)
        for name in ("indicators", "stages", "scores", "actions"):
            want = batch.frames[name].filter(pl.col("account_id") == account)
            assert_frame_equal(alone.frames[name], want)


def test_history_reads_a_computed_nan_as_evaluate_does() -> None:
    roadmap = _roadmap()
    events, accounts = _frames()
    h = history(roadmap, events, accounts, dt.date(2026, 6, 20), AS_OF, every="5d")
    for d in h.dates:
        want = hr.evaluate(roadmap, events, accounts, d)
        for name, frame in want.frames.items():
            assert_frame_equal(h.at(d).frames[name], frame)
    assert h.at(AS_OF).indicators.filter(pl.col("account_id") == "x1")["gap"].to_list() == [
        None]


@pytest.mark.parametrize("agg", ["min", "max"])
def test_a_rollup_min_or_max_never_sees_a_computed_nan(agg: str) -> None:
    """The roll-up reads its children's ``of`` as translated (one guard where the arithmetic
    ends reads a computed NaN as null), so its min / max needs no NaN guard of its own: a
    parent whose every child computes ``inf - inf`` gets null (polars' min / max of NaN
    alone would give NaN), one with a finite child gets that child's value."""
    roadmap = Roadmap.model_validate({
        "id": "r", "goal": "g",
        "data": {"accounts": {"attributes": {"a": "float", "b": "float"}, "parent": "parent"}},
        "indicators": [
            {"id": "gap", "kind": "rollup", "family": "outcome", "aggregate": agg,
             "of": "a - b"},
            {"id": "gap_of_gap", "kind": "rollup", "family": "outcome", "aggregate": agg,
             "of": "gap * 0"},
        ],
        "stages": [{"id": "s"}],
    })
    accounts = pl.DataFrame({
        "account_id": ["top", "p1", "p2", "c1", "c2", "c3", "c4"],
        "parent": [None, "top", "top", "p1", "p1", "p2", "p2"],
        "a": [0.0, 0.0, 0.0, INF, INF, INF, 2.0],
        "b": [0.0, 0.0, 0.0, INF, INF, INF, 1.0],
    })
    events = pl.DataFrame(schema={"account_id": pl.String, "user_id": pl.String,
                                  "event": pl.String, "timestamp": pl.Datetime("us")})
    result = hr.evaluate(roadmap, events, accounts, AS_OF)
    assert not compare(result, evaluate_reference(roadmap, events, accounts, AS_OF), roadmap)
    got = {r["account_id"]: (r["gap"], r["gap_of_gap"]) for r in result.indicators.to_dicts()}
    assert got["p1"] == (None, None)  # inf - inf for every child: null, not NaN
    assert got["p2"] == (1.0, None)  # c3's NaN is left out
    # top: its children's gaps are null and 1.0; gap * 0 of those is null and 0.0
    assert got["top"][1] == 0.0
