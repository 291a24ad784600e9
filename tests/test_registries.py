"""The registries (aggregate kinds, functions) cover the format, and their forms agree.

- every aggregate kind of the format has one registry entry, with every field, and its polars
  form (plus ``finish``) gives what ``healthrules.evaluate`` gives today;
- every function of the allow-list has one entry, and its polars and scalar forms agree on
  values and nulls (the differential test's harness, focused on each function);
- the reference evaluator of the tests stays independent of the registries.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import random
from pathlib import Path
from typing import Any, get_args

import polars as pl
import pytest
from polars.testing import assert_series_equal
from pydantic import ValidationError

import healthrules as hr
from healthrules._typing import Type
from healthrules.aggregates import (
    AGGREGATE_KINDS,
    Aggregate,
    AggregateKind,
    Incremental,
    LintRange,
    OfRule,
    exact_columns,
    exact_limbs,
)
from healthrules.expressions import (
    _ALLOWED_NODES,
    EXPR_NODES,
    FUNCTIONS,
    TIME_FUNCTIONS,
    ExprNode,
    lag_column,
)
from healthrules.functions import FUNCTION_TABLE, Function, IntervalRule
from healthrules.roadmap import AGGREGATES, AggregateIndicator
from test_differential import LAGS, ZONES, _seeded_row, run_both

# --------------------------------------------------------------------------- aggregate kinds


def test_aggregate_registry_equals_the_format_literal() -> None:
    assert tuple(AGGREGATE_KINDS) == get_args(Aggregate)
    assert AGGREGATES == get_args(Aggregate)
    field = AggregateIndicator.model_fields["aggregate"].annotation
    assert get_args(field) == tuple(AGGREGATE_KINDS)


KINDS = pytest.mark.parametrize("kind", list(AGGREGATE_KINDS.values()), ids=list(AGGREGATE_KINDS))


@KINDS
def test_every_aggregate_kind_is_complete(kind: AggregateKind) -> None:
    assert AGGREGATE_KINDS[kind.name] is kind
    assert kind.label
    assert kind.of in get_args(OfRule)
    assert kind.history in get_args(Incremental)
    assert isinstance(kind.lint, LintRange)
    assert kind.empty in (0, None)
    assert callable(kind.polars)
    for of_type in ("int", "float", None):
        assert kind.result_type(of_type) in get_args(Type)
    if kind.lint.low is not None:
        assert kind.result_type(None) == "int"
        assert kind.lint.reason
        if kind.lint.upper != "none":
            assert kind.lint.reason_in_window
    if kind.days_since:
        assert kind.result == "int"


def test_every_incremental_form_is_used() -> None:
    assert {k.history for k in AGGREGATE_KINDS.values()} == set(get_args(Incremental))


def test_aggregate_entries_need_every_field() -> None:
    for f in dataclasses.fields(AggregateKind):
        assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, (
            f.name)


@KINDS
def test_of_rules_of_the_format_follow_the_registry(kind: AggregateKind) -> None:
    base: dict[str, Any] = {"id": "x", "family": "process", "aggregate": kind.name}
    if kind.q == "required":
        base["q"] = 0.9

    def ok(**extra: Any) -> bool:
        try:
            AggregateIndicator.model_validate({**base, **extra})
        except ValidationError:
            return False
        return True

    assert ok() == (kind.of != "value")
    assert ok(of="amount") == (kind.of != "refused")
    assert ok(window="30d", compare="delta") == (kind.compare and kind.of != "value")
    # q: required by percentile, refused by every other kind
    of = {"of": "amount"} if kind.of == "value" else {}
    assert ok(**of, q=0.25) == (kind.q == "required")
    if kind.q == "required":
        base.pop("q")
        assert not ok(**of)


# the same tiny event log for every kind: in and out of the window, nulls, NaN, no events
AS_OF = dt.date(2026, 6, 30)
END = dt.datetime(2026, 7, 1)  # the instant of AS_OF: the midnight that ends the day
VALUE_TYPES = {"amount": "float", "seats": "int"}


def _events() -> pl.DataFrame:
    def at(days: int, hour: int) -> dt.datetime:
        return END - dt.timedelta(days=days) + dt.timedelta(hours=hour)

    rows = [
        ("a", "u1", "login", at(1, 9), 1.5, 2),
        ("a", "u2", "login", at(3, 10), float("nan"), None),
        ("a", "u1", "export", at(3, 11), None, 5),
        ("a", "u1", "login", at(10, 8), -4.25, 7),
        ("a", "u3", "login", at(40, 12), 100.0, 100),
        ("b", "u4", "export", at(2, 15), 2.0, 1),
        ("b", None, "login", at(5, 1), -1.0, 3),
        ("b", None, "login", at(5, 2), None, -3),
        ("d", "u5", "login", at(50, 6), 9.0, 9),
    ]
    return pl.DataFrame(rows, orient="row", schema={
        "account_id": pl.String, "user_id": pl.String, "event": pl.String,
        "timestamp": pl.Datetime("us"), "amount": pl.Float64, "seats": pl.Int64})


ACCOUNTS = pl.DataFrame({"account_id": ["a", "b", "c", "d"]})


def _variants() -> list[tuple[AggregateKind, str | None, str | None, int | None]]:
    """(kind, of, where, window days) to try for every kind."""
    out: list[tuple[AggregateKind, str | None, str | None, int | None]] = []
    for kind in AGGREGATE_KINDS.values():
        choices: dict[str, list[str | None]] = {
            "value": ["amount", "seats"], "column": [None, "event"], "refused": [None]}
        for of in choices[kind.of]:
            out.append((kind, of, "event == 'login'", 30))
            out.append((kind, of, None, None))
    return out


def _q(kind: AggregateKind) -> float | None:
    """The ``q`` a kind is tried with (p90), None for the kinds that take none."""
    return 0.9 if kind.q == "required" else None


def _direct(kind: AggregateKind, of: str | None, where: str | None,
            days: int | None) -> pl.Series:
    """The registry's forms, by hand: group_by(account) with the polars form, then finish."""
    ts = pl.col("timestamp")
    cond = ts.is_not_null() if days is None else ts >= pl.lit(END - dt.timedelta(days=days))
    if where is not None:
        cond = cond & (pl.col("event") == "login")
    inputs = kind.inputs(condition=cond.fill_null(False), timestamp=ts, of=of, user="user_id",
                         value_types=VALUE_TYPES, day="__day", q=_q(kind))
    events = _events().lazy().filter(ts < pl.lit(END)).with_columns(
        pl.col("amount").fill_nan(None), ts.dt.date().alias("__day"))
    # the exact limbs that sums of a float column read, computed before the group_by
    events = events.with_columns(
        e.alias(n) for e, n in zip(exact_limbs(pl.col("amount")), exact_columns("amount"),
                                   strict=True))
    raw = events.group_by("account_id").agg(kind.polars(inputs).alias("raw"))
    out = ACCOUNTS.lazy().join(raw, on="account_id", how="left").select(
        "account_id", kind.finish(pl.col("raw"), pl.lit(AS_OF)).alias("value"))
    return out.sort("account_id").collect()["value"]


@pytest.mark.parametrize(("kind", "of", "where", "days"), _variants(),
                         ids=lambda v: v.name if isinstance(v, AggregateKind) else str(v))
def test_the_polars_form_of_every_kind_gives_what_evaluate_gives(
    kind: AggregateKind, of: str | None, where: str | None, days: int | None
) -> None:
    ind: dict[str, Any] = {"id": "x", "family": "process", "aggregate": kind.name,
                           "window": "all" if days is None else f"{days}d"}
    if of is not None:
        ind["of"] = of
    if where is not None:
        ind["where"] = where
    if kind.q == "required":
        ind["q"] = _q(kind)
    roadmap = hr.Roadmap.model_validate({
        "id": "r", "goal": "g", "data": {"events": {"values": VALUE_TYPES}},
        "indicators": [ind], "stages": [{"id": "s"}],
    })
    evaluation = hr.evaluate(roadmap, _events(), ACCOUNTS, AS_OF)
    want = evaluation.indicators.sort("account_id")["x"].alias("value")
    got = _direct(kind, of, where, days)
    assert_series_equal(got, want, check_dtypes=True)
    if kind.lint.low is not None:  # lint's range holds
        assert all(v >= kind.lint.low for v in want.drop_nulls().to_list())


# --------------------------------------------------------------------------- functions


def test_function_registry_is_the_allow_list() -> None:
    assert list(FUNCTION_TABLE) == list(FUNCTIONS)
    assert {n for n, f in FUNCTION_TABLE.items() if f.history} == TIME_FUNCTIONS
    for name, fn in FUNCTION_TABLE.items():
        assert fn.name == name
        assert FUNCTIONS[name] == fn.doc and fn.doc.startswith(f"{name}(")
        assert callable(fn.type_rule) and callable(fn.polars) and callable(fn.scalar)
        assert fn.interval in get_args(IntervalRule)
        lo, hi = fn.arity
        assert 0 <= lo and (hi is None or lo <= hi)


def test_function_entries_need_every_form() -> None:
    for f in dataclasses.fields(Function):
        assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, (
            f.name)
    abs_ = FUNCTION_TABLE["abs"]
    without_scalar: dict[str, Any] = {
        "name": "f", "doc": "f(x)", "arity": (1, 1), "history": False,
        "type_rule": abs_.type_rule, "polars": abs_.polars, "interval": "unknown"}
    with pytest.raises(TypeError, match="scalar"):
        Function(**without_scalar)


def test_expression_node_kinds() -> None:
    assert get_args(ExprNode) == EXPR_NODES
    assert set(EXPR_NODES) <= set(_ALLOWED_NODES)


def test_arity_messages() -> None:
    assert FUNCTION_TABLE["round"].arity_problem(3) == "round() takes 1 to 2 arguments, got 3"
    assert FUNCTION_TABLE["min"].arity_problem(1) == "min() takes 2 or more arguments, got 1"
    assert FUNCTION_TABLE["abs"].arity_problem(2) == "abs() takes 1 arguments, got 2"
    assert FUNCTION_TABLE["coalesce"].arity_problem(5) is None


# a few calls of every function over the differential test's names (i1, f1, s1, d1, t1, b1 ...,
# i1 and f1 have bands, lags of f1 / 7, i1 / 30 and s1 / 7 exist); nulls are in every column
CALLS: dict[str, list[str]] = {
    "abs": ["abs(i1)", "abs(f1)", "abs(i1 - f1)"],
    "min": ["min(i1, f1)", "min(i1, i2, None)", "min(None, None)"],
    "max": ["max(f1, f2)", "max(i1, None)", "max(i1, i2)"],
    "round": ["round(f1)", "round(f1, 2)", "round(i1 / 3, 1)"],
    "coalesce": ["coalesce(i1, i2)", "coalesce(s1, s2, 'x')", "coalesce(None, f1)"],
    "clip": ["clip(f1, -1, 1.5)", "clip(i1, 0, 2)"],
    "days_between": ["days_between(d1, t1)", "days_between(None, d2)", "days_between(t1, t2)"],
    "days_since": ["days_since(d1)", "days_since(t1)", "days_since(None)"],
    "date": ["date('2024-03-10')", "d1 < date('2024-03-10')"],
    "band": ["band(i1)", "band(f1) == 'red'"],
    "prev": ["prev(f1, 7)", "prev(s1, 7)", "prev(i1, 30) > 0"],
    "change": ["change(i1, 30)", "change(f1, 7)"],
    "stuck": ["stuck(5)", "stuck(1) or b1"],
}


def test_every_function_has_calls_to_check() -> None:
    assert set(CALLS) == set(FUNCTION_TABLE)
    for name, sources in CALLS.items():
        for source in sources:
            calls = {n.func.id for n in ast.walk(ast.parse(source, mode="eval"))
                     if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
            assert name in calls, source


def _rows(seed: str, zone: str | None) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [_seeded_row(rng, zone) for _ in range(30)] + [{}]  # and a row of nulls only


@pytest.mark.parametrize("zone", [None, ZONES[2]])
@pytest.mark.parametrize("source", [s for sources in CALLS.values() for s in sources])
def test_polars_and_scalar_forms_agree(source: str, zone: str | None) -> None:
    def must(ok: bool) -> None:
        assert ok

    run_both(source, zone, _rows(f"{source}|{zone}", zone), dt.date(2024, 3, 10), reject=must)


def test_the_lag_columns_of_the_checks_exist() -> None:
    for name, days in (("f1", 7), ("s1", 7), ("i1", 30)):
        assert lag_column(name, days) in LAGS


# --------------------------------------------------------------------------- safety net


def test_the_reference_evaluator_does_not_read_the_registries() -> None:
    text = (Path(__file__).parent / "reference.py").read_text()
    for module in ("healthrules.aggregates", "healthrules.functions"):
        assert module not in text
