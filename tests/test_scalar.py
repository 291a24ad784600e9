"""Unit tests of the scalar evaluator (healthrules.scalar): every construct, with nulls."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import math
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from simpleeval import FeatureNotAvailable, NameNotDefined

from healthrules.expressions import ExprProblem, Parsed, parse
from healthrules.scalar import Step, _Kleene, evaluate, trace

AS_OF = dt.date(2024, 6, 30)
NY = ZoneInfo("America/New_York")
T, F, N = True, False, None


def ev(source: str, **values: Any) -> object:
    return evaluate(parse(source), values, as_of=AS_OF)


def same(got: object, want: object) -> bool:
    """Equal values of the same type (1 is not 1.0, True is not 1)."""
    return type(got) is type(want) and got == want


# --------------------------------------------------------------------------- Kleene logic

AND_TABLE = [
    (T, T, T), (T, F, F), (T, N, N),
    (F, T, F), (F, F, F), (F, N, F),
    (N, T, N), (N, F, F), (N, N, N),
]  # fmt: skip

OR_TABLE = [
    (T, T, T), (T, F, T), (T, N, T),
    (F, T, T), (F, F, F), (F, N, N),
    (N, T, T), (N, F, N), (N, N, N),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b", "want"), AND_TABLE)
def test_and_truth_table(a: bool | None, b: bool | None, want: bool | None) -> None:
    assert ev("a and b", a=a, b=b) is want


@pytest.mark.parametrize(("a", "b", "want"), OR_TABLE)
def test_or_truth_table(a: bool | None, b: bool | None, want: bool | None) -> None:
    assert ev("a or b", a=a, b=b) is want


@pytest.mark.parametrize(("a", "want"), [(T, F), (F, T), (N, N)])
def test_not_truth_table(a: bool | None, want: bool | None) -> None:
    assert ev("not a", a=a) is want


def test_and_or_with_many_operands_and_literals() -> None:
    assert ev("a and b and c", a=True, b=None, c=False) is False
    assert ev("a and b and c", a=True, b=None, c=True) is None
    assert ev("a or b or c", a=False, b=None, c=True) is True
    assert ev("a or b or c", a=False, b=None, c=False) is None
    assert ev("None and False") is False
    assert ev("None or True") is True
    assert ev("not None") is None
    assert ev("not (a and b)", a=None, b=False) is True


# --------------------------------------------------------------------------- arithmetic


def test_arithmetic_keeps_ints_and_widens_to_float() -> None:
    assert same(ev("a + b * 2 - 1", a=3, b=4), 10)
    assert same(ev("a + b", a=3, b=0.5), 3.5)
    assert same(ev("a * b", a=2, b=1.5), 3.0)
    assert same(ev("-a", a=3), -3)
    assert same(ev("+a", a=2.5), 2.5)


@pytest.mark.parametrize("source", ["a + 1", "1 - a", "a * 2.5", "a / 2", "2 / a", "-a", "a ** 2"])
def test_arithmetic_with_null_is_null(source: str) -> None:
    assert ev(source, a=None) is None


def test_division_is_always_float_and_null_by_zero() -> None:
    assert same(ev("a / b", a=4, b=2), 2.0)
    assert same(ev("a / b", a=1, b=4), 0.25)
    assert ev("a / b", a=1, b=0) is None
    assert ev("a / b", a=1, b=0.0) is None
    assert ev("a / b", a=1, b=-0.0) is None
    assert ev("a / b", a=0, b=0) is None
    assert ev("a / b", a=None, b=0) is None


def test_power_multiplies_left_to_right() -> None:
    assert same(ev("a ** 3", a=-2), -8)
    assert same(ev("a ** 2", a=1.5), 2.25)
    assert same(ev("a ** 1", a=7), 7)
    assert same(ev("a ** 0", a=5), 1)
    assert same(ev("a ** 0", a=2.5), 1.0)
    assert ev("a ** 0", a=None) is None
    x = 1.1
    assert ev("a ** 3", a=x) == x * x * x


# --------------------------------------------------------------------------- comparisons


def test_comparisons_with_null_are_null() -> None:
    for op in ("==", "!=", "<", "<=", ">", ">="):
        assert ev(f"a {op} 5", a=None) is None
        assert ev(f"5 {op} a", a=None) is None
        assert ev(f"a {op} b", a=None, b=None) is None


def test_comparisons_of_each_type() -> None:
    assert ev("a < b", a=1, b=1.5) is True
    assert ev("a == b", a=2, b=2.0) is True
    assert ev("a != b", a="x", b="y") is True
    assert ev("a < b", a="B", b="a") is True
    assert ev("a == b", a=True, b=False) is False
    assert ev("a >= date('2024-06-30')", a=dt.date(2024, 6, 30)) is True


def test_chained_comparison_is_the_kleene_and_of_its_pairs() -> None:
    assert ev("0 < x <= 10", x=10) is True
    assert ev("0 < x <= 10", x=11) is False
    assert ev("0 < x <= 10", x=None) is None
    assert ev("x < 1 < 0", x=None) is False  # 1 < 0 is false whatever x is
    assert ev("a < b < c", a=1, b=None, c=0) is None
    assert ev("a < b < c", a=2, b=None, c=None) is None
    assert ev("a < b == c", a=1, b=2, c=2.0) is True


def test_in_lists() -> None:
    assert ev("x in (1, 2)", x=2) is True
    assert ev("x in (1, 2)", x=2.0) is True  # numbers compare as floats
    assert ev("x in (1, 2.5)", x=2.5) is True
    assert ev("x in [1, 2]", x=3) is False
    assert ev("x not in (1, 2)", x=3) is True
    assert ev("x in ('pro', 'ent')", x="pro") is True
    assert ev("x not in ('pro', 'ent')", x="pro") is False
    assert ev("x in (True,)", x=False) is False
    assert ev("x in (1, 2)", x=None) is None
    assert ev("x not in (1, 2)", x=None) is None


def test_in_inside_a_chain_keeps_its_left_operand() -> None:
    # as the type checker and polars_expr read it: `x in (1, 2) and x < 3`
    assert ev("x in (1, 2) < 3", x=2) is True
    assert ev("x in (1, 5) < 3", x=5) is False


def test_is_none_is_never_null() -> None:
    assert ev("x is None", x=None) is True
    assert ev("x is None", x=0) is False
    assert ev("x is not None", x=None) is False
    assert ev("x is not None", x="") is True
    assert ev("None is None") is True
    assert ev("a < b is None", a=1, b=None) is None  # (a < b) and (b is None)
    assert ev("a < b is not None", a=1, b=2) is True


# --------------------------------------------------------------------------- if-else


def test_if_else() -> None:
    assert ev("a if c else b", a=1, b=2, c=True) == 1
    assert ev("a if c else b", a=1, b=2, c=False) == 2
    assert ev("a if c else b", a=1, b=2, c=None) is None
    assert ev("a if c else b", a=None, b=2, c=True) is None
    assert ev("'hi' if x > 3 else 'lo'", x=None) is None


# --------------------------------------------------------------------------- functions


def test_min_max_skip_nulls() -> None:
    assert same(ev("min(a, b, c)", a=3, b=None, c=2), 2)
    assert same(ev("max(a, b)", a=3, b=None), 3)
    assert same(ev("min(a, b)", a=1, b=2.5), 1.0)  # mixed: a float, like polars' supertype
    assert same(ev("max(a, b)", a=1, b=0.5), 1.0)
    assert ev("min(a, b)", a=None, b=None) is None
    assert ev("max(None, None)") is None


def test_coalesce() -> None:
    assert ev("coalesce(a, b, c)", a=None, b=None, c="x") == "x"
    assert ev("coalesce(a, b)", a=0, b=5) == 0
    assert ev("coalesce(a, b)", a=None, b=None) is None
    assert ev("coalesce(a, 3)", a=False) is False


def test_abs() -> None:
    assert same(ev("abs(a)", a=-3), 3)
    assert same(ev("abs(a)", a=-0.5), 0.5)
    assert ev("abs(a)", a=None) is None


def test_clip_is_a_float() -> None:
    assert same(ev("clip(a, 0, 10)", a=12), 10.0)
    assert same(ev("clip(a, 0, 10)", a=-1), 0.0)
    assert same(ev("clip(a, -1.5, 10)", a=3), 3.0)
    assert same(ev("clip(a, -1.5, +10)", a=-2), -1.5)
    assert ev("clip(a, 0, 1)", a=None) is None
    # an empty interval (lo > hi): lo below lo, else hi, as polars' clip does
    assert ev("clip(a, 10, 0)", a=-5) == 10.0
    assert ev("clip(a, 10, 0)", a=5) == 10.0
    assert ev("clip(a, 10, 0)", a=10) == 0.0
    assert ev("clip(a, 10, 0)", a=20) == 0.0


@pytest.mark.parametrize(
    ("x", "n", "want"),
    [
        (2.675, 2, 2.68),  # the binary value is just below 2.675; the decimal form is a half
        (1.005, 2, 1.01),
        (0.285, 2, 0.29),
        (-0.285, 2, -0.29),
        (0.125, 2, 0.13),
        (4.35, 1, 4.4),
        (2.5, 0, 3.0),
        (-2.5, 0, -3.0),
        (0.5, 0, 1.0),
        (-0.5, 0, -1.0),
        (1.4999999999999998, 0, 1.0),
        (0.1 + 0.2, 1, 0.3),
        (123456789.125, 10, 123456789.125),
        (123456789.125, 2, 123456789.13),
        (7, 0, 7.0),
        (-7, 2, -7.0),
        (1e300, 2, 1e300),
        (4503599627370497.0, 0, 4503599627370497.0),
        (1e-22, 10, 0.0),
    ],
)
def test_round_halves_away_from_zero_on_the_decimal_form(x: float, n: int, want: float) -> None:
    got = ev(f"round(x, {n})", x=x)
    assert same(got, want)


def test_round_defaults_and_nulls() -> None:
    assert same(ev("round(x)", x=2.5), 3.0)
    assert same(ev("round(x)", x=3), 3.0)
    assert ev("round(x, 2)", x=None) is None


def test_dates() -> None:
    assert ev("date('2024-02-29')") == dt.date(2024, 2, 29)
    assert same(ev("days_since(d)", d=dt.date(2024, 6, 1)), 29)
    assert same(ev("days_since(d)", d=dt.date(2024, 7, 2)), -2)
    assert ev("days_since(d)", d=None) is None
    assert ev("days_since(None)") is None
    assert same(ev("days_between(a, b)", a=dt.date(2024, 1, 1), b=dt.date(2024, 3, 1)), 60)
    assert ev("days_between(a, b)", a=None, b=dt.date(2024, 3, 1)) is None
    assert ev("days_between(a, None)", a=dt.date(2024, 3, 1)) is None


def test_datetimes_are_taken_at_their_local_date() -> None:
    late = dt.datetime(2024, 6, 29, 23, 30, tzinfo=NY)  # 03:30 UTC on June 30
    assert ev("days_since(t)", t=late) == 1
    assert ev("days_between(t, date('2024-07-01'))", t=late) == 2
    naive = dt.datetime(2024, 6, 29, 23, 30)
    assert ev("days_since(t)", t=naive) == 1
    assert (
        evaluate("days_since(d)", {"d": dt.date(2024, 6, 1)}, as_of=dt.datetime(2024, 6, 30, 5))
        == 29
    )


def test_date_against_datetime_is_midnight_on_the_wall_clock() -> None:
    late = dt.datetime(2024, 6, 29, 23, 30, tzinfo=NY)
    midnight = dt.datetime(2024, 6, 30, 0, 0, tzinfo=NY)
    assert ev("t < date('2024-06-30')", t=late) is True
    assert ev("t >= date('2024-06-30')", t=late) is False
    assert ev("date('2024-06-30') <= t", t=midnight) is True
    assert ev("t == date('2024-06-30')", t=midnight) is True
    assert ev("t == d", t=midnight, d=dt.date(2024, 6, 30)) is True
    assert ev("t != d", t=late, d=dt.date(2024, 6, 30)) is True
    assert ev("t < d", t=None, d=dt.date(2024, 6, 30)) is None


def test_datetimes_compare_as_instants() -> None:
    # 01:30 EDT comes before 01:10 EST on the night the clocks go back (same wall clock day)
    first = dt.datetime(2024, 11, 3, 1, 30, tzinfo=NY, fold=0)
    second = dt.datetime(2024, 11, 3, 1, 10, tzinfo=NY, fold=1)
    assert ev("a < b", a=first, b=second) is True
    utc = dt.datetime(2024, 6, 30, 4, 0, tzinfo=dt.UTC)
    ny = dt.datetime(2024, 6, 30, 0, 0, tzinfo=NY)
    assert ev("a == b", a=utc, b=ny) is True


def test_band() -> None:
    assert ev("band(x)", x=5, **{}) is None  # no ("band", "x") key
    values: dict[Any, object] = {"x": 5, ("band", "x"): "green"}
    assert evaluate("band(x) == 'green'", values, as_of=AS_OF) is True
    got = evaluate("band(x)", {"x": 5}, as_of=AS_OF, band=lambda name: f"{name}-red")
    assert got == "x-red"


def test_nan_is_read_as_null() -> None:
    assert ev("x > 0.8", x=float("nan")) is None
    assert ev("x is None", x=float("nan")) is True


# --------------------------------------------------------------------------- no raising on nulls

NULL_SAFE = [
    "a + b * c - d / e", "a ** 3", "-a", "not p", "p and q or not r", "a < b <= c",
    "a in (1, 2, 3.5)", "s not in ('x', 'y')", "a if p else b", "min(a, b, c)", "max(a, b)",
    "coalesce(a, b)", "clip(a, 0, 1)", "round(a, 2)", "abs(a)", "days_since(d)",
    "days_between(d, t)", "d < t", "t >= date('2024-01-01')", "band(a)", "a is None",
]  # fmt: skip


@pytest.mark.parametrize("source", NULL_SAFE)
def test_all_null_rows_never_raise(source: str) -> None:
    names = {n: None for n in "abcdepqrst"}
    got = evaluate(source, names, as_of=AS_OF)
    assert got is None or isinstance(got, bool)


# --------------------------------------------------------------------------- API and safety


def test_missing_name_is_not_null() -> None:
    with pytest.raises(NameNotDefined):
        ev("x + 1")


def test_evaluate_accepts_source_text() -> None:
    assert evaluate("1 + 2", {}, as_of=AS_OF) == 3
    with pytest.raises(ExprProblem):
        evaluate("x.real", {"x": 1}, as_of=AS_OF)


def test_refuses_what_is_not_a_parsed_expression() -> None:
    with pytest.raises(TypeError):
        evaluate(ast.parse("1", mode="eval").body, {}, as_of=AS_OF)  # type: ignore[arg-type]


def test_refuses_a_tampered_tree() -> None:
    bad = ast.parse("x.__class__", mode="eval").body
    with pytest.raises(ExprProblem):
        evaluate(Parsed(source="x", tree=bad), {"x": 1}, as_of=AS_OF)
    with pytest.raises(ExprProblem):
        evaluate(Parsed(source="x.__class__", tree=bad), {"x": 1}, as_of=AS_OF)
    call = ast.parse("open('f')", mode="eval").body
    with pytest.raises(ExprProblem):
        evaluate(Parsed(source="abs(1)", tree=call), {}, as_of=AS_OF)


@pytest.mark.parametrize(
    "source",
    ["x.__class__", "x[0]", "open('f')", "abs(x=1)", "[i for i in x]", "x ** y", "{1: 2}"],
)
def test_the_handler_table_itself_refuses_everything_outside_the_grammar(source: str) -> None:
    # even if the allow-list check were bypassed, the evaluator has no handler for these
    parsed = Parsed(source=source, tree=ast.parse(source, mode="eval").body)
    ev_ = _Kleene(parsed, {"x": [1], "y": 2}, as_of=AS_OF, band=None, steps=None)
    with pytest.raises((FeatureNotAvailable, TypeError)):
        ev_.run()


# --------------------------------------------------------------------------- trace


def test_trace_lists_every_sub_expression_in_evaluation_order() -> None:
    steps = trace(parse("a + 1 > b or not c"), {"a": 1, "b": None, "c": False}, as_of=AS_OF)
    assert [(s.text, s.value, s.depth) for s in steps] == [
        ("a", 1, 3),
        ("1", 1, 3),
        ("a + 1", 2, 2),
        ("b", None, 2),
        ("a + 1 > b", None, 1),
        ("c", False, 2),
        ("not c", True, 1),
        ("a + 1 > b or not c", True, 0),
    ]


def test_trace_evaluates_every_operand() -> None:
    steps = trace("x if c else y", {"x": 1, "y": 2, "c": None}, as_of=AS_OF)
    assert [(s.text, s.value) for s in steps] == [
        ("c", None),
        ("x", 1),
        ("y", 2),
        ("x if c else y", None),
    ]
    steps = trace("False and x > 1", {"x": 5}, as_of=AS_OF)
    assert [s.text for s in steps] == ["False", "x", "1", "x > 1", "False and x > 1"]


def test_trace_of_chains_lists_each_pair() -> None:
    steps = trace("(a or b) == c < 3", {"a": True, "b": None, "c": True}, as_of=AS_OF)
    texts = [s.text for s in steps]
    assert "(a or b) == c" in texts
    assert "c < 3" in texts
    assert steps[-1].text == "(a or b) == c < 3"


def test_trace_of_calls() -> None:
    values: dict[Any, object] = {"x": 4, ("band", "x"): "red", "d": None}
    steps = trace("band(x) == 'red' and days_since(d) > 3", values, as_of=AS_OF)
    texts = [s.text for s in steps]
    assert "x" not in texts  # band(x) names an indicator, it does not read its value
    assert ("band(x)", "red") in [(s.text, s.value) for s in steps]
    assert ("days_since(d)", None) in [(s.text, s.value) for s in steps]


def test_trace_ends_with_the_value_of_evaluate() -> None:
    values = {"a": 3, "b": None, "s": "x"}
    for source in ["a > 2 and b < 1", "coalesce(b, a) * 2", "s in ('x', 'y')", "min(a, b)"]:
        steps = trace(source, values, as_of=AS_OF)
        assert steps[-1].depth == 0
        assert steps[-1].text == source
        assert steps[-1].value == evaluate(source, values, as_of=AS_OF)


def test_step_is_frozen() -> None:
    step = Step("x", 1, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.value = 2  # type: ignore[misc]


def test_values_are_plain_python() -> None:
    assert isinstance(ev("x / 3", x=1), float)
    assert math.isclose(ev("x / 3", x=1), 1 / 3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- change over time


def test_change_over_time_reads_lags_and_the_stage_age() -> None:
    from healthrules.expressions import lag_column

    values: dict[Any, object] = {
        "x": 5,
        "f": 0.5,
        lag_column("x", 7): 2,
        lag_column("f", 30): float("nan"),
        "days_in_stage": 10,
    }
    assert evaluate("prev(x, 7)", values, as_of=AS_OF) == 2
    assert evaluate("change(x, 7)", values, as_of=AS_OF) == 3
    assert evaluate("prev(f, 30)", values, as_of=AS_OF) is None  # NaN is null
    assert evaluate("change(f, 30)", values, as_of=AS_OF) is None
    assert evaluate("stuck(10)", values, as_of=AS_OF) is True
    assert evaluate("stuck(11)", values, as_of=AS_OF) is False
    assert evaluate("days_in_stage > 3", values, as_of=AS_OF) is True


def test_change_over_time_is_null_without_history() -> None:
    values = {"x": 5}
    assert evaluate("prev(x, 7)", values, as_of=AS_OF) is None
    assert evaluate("change(x, 7)", values, as_of=AS_OF) is None
    assert evaluate("stuck(3)", values, as_of=AS_OF) is None
    assert evaluate("days_in_stage", values, as_of=AS_OF) is None
    assert evaluate("stuck(3) or x > 1", values, as_of=AS_OF) is True
    steps = trace("change(x, 7) > 1", values, as_of=AS_OF)
    assert [(s.text, s.value) for s in steps] == [
        ("x", 5),
        ("change(x, 7)", None),
        ("1", 1),
        ("change(x, 7) > 1", None),
    ]
