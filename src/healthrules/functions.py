"""The functions of the expression language: one registry entry per function.

Each :class:`Function` holds what the library needs to know about one function: its help
text, its arity, whether it reads history (allowed in action conditions only), its type rule,
its polars form, its scalar form (one row, Kleene nulls) and the rule lint uses for the range
of its values. The allow-list and the type checker (:mod:`healthrules.expressions`), the
vectorised translation (:mod:`healthrules.polars_expr`), the scalar evaluator
(:mod:`healthrules.scalar`) and lint (:mod:`healthrules.lint.intervals`) all read
:data:`FUNCTION_TABLE`, so a new function is one entry here; every form is a required field,
so an entry cannot leave one out. ``docs/design.md`` lists what else changes with it.

The forms reach the expression they are part of through small protocols (:class:`TypeCheck`,
:class:`PolarsCall`, :class:`ScalarCall`): the type of an argument, its translation or value,
a band, a lagged value, the stage age and ``as_of``. No polars at import time (loading and
linting stay engine-free): the polars forms import it when they run.
"""

from __future__ import annotations

import ast
import datetime as dt
import decimal
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from healthrules._typing import NUMERIC, TEMPORAL, Type, fits_int, not_nan, unify

if TYPE_CHECKING:
    import polars as pl

    from healthrules.expressions import ExprProblem

__all__ = [
    "ARG_COPIES",
    "FUNCTION_TABLE",
    "MAX_LAG_DAYS",
    "Function",
    "IntervalRule",
    "PolarsCall",
    "PolarsForm",
    "ScalarCall",
    "ScalarForm",
    "TypeCheck",
    "TypeRule",
    "checked_int",
    "float_difference",
    "float_sum",
    "round_decimal",
    "round_half_away",
]

MAX_LAG_DAYS = 3660
"""The longest lag ``prev``, ``change`` and ``stuck`` may read, in days."""

IntervalRule = Literal[
    "absolute", "least", "greatest", "first_present", "rounded", "clipped", "unknown"
]
"""How lint bounds a call's values from its arguments' ranges (:mod:`healthrules.lint.intervals`).

``absolute``: ``|x|``; ``least`` / ``greatest``: the smallest / largest present argument;
``first_present``: the union of the arguments' ranges; ``rounded``: x's range widened to the
rounding step; ``clipped``: x's range cut to the literal bounds; ``unknown``: any value of the
result type, maybe null.
"""


class TypeCheck(Protocol):
    """What a type rule can ask of the type checker (:func:`healthrules.expressions.infer`)."""

    @property
    def env(self) -> Mapping[str, Type]:
        """The type of every name the expression may read."""
        ...

    @property
    def banded(self) -> frozenset[str]:
        """The indicators ``band()`` accepts."""
        ...

    def visit(self, node: ast.AST) -> Type:
        """The type of a sub-expression (checking it)."""
        ...

    def fail(self, node: ast.AST, message: str, code: str = "expr_type",
             hint: str | None = None) -> ExprProblem:
        """A problem at a node's column, to raise."""
        ...

    def suggest(self, name: str, candidates: set[str]) -> str | None:
        """A did-you-mean hint for an unknown name."""
        ...


class PolarsCall(Protocol):
    """What a polars form can ask of the translation (:func:`healthrules.polars_expr.to_polars`)."""

    def arg(self, node: ast.expr) -> pl.Expr:
        """The polars expression of an argument."""
        ...

    def band_of(self, indicator: str) -> pl.Expr:
        """The band name of an indicator."""
        ...

    def lag(self, name: str, days: int) -> pl.Expr:
        """The value of an indicator (or the score) ``days`` days before ``as_of``."""
        ...

    def stage_age(self) -> pl.Expr:
        """The days the account has been in its stage (``days_in_stage``)."""
        ...

    def as_of_date(self) -> pl.Expr:
        """``as_of`` as a Date expression."""
        ...

    def is_int(self, node: ast.expr) -> bool:
        """Whether a sub-expression is of type int (its arithmetic is then checked)."""
        ...

    def static_type(self, node: ast.expr) -> Type | None:
        """The type of a sub-expression (None: not known)."""
        ...


class ScalarCall(Protocol):
    """What a scalar form can ask of the row evaluator (:func:`healthrules.scalar.evaluate`)."""

    def arg(self, node: ast.expr) -> object:
        """The value of an argument for the row (recorded by ``trace``)."""
        ...

    def band_of(self, indicator: str) -> object:
        """The band name of an indicator for the row."""
        ...

    def lag(self, name: str, days: int) -> object:
        """The value of an indicator (or the score) ``days`` days before ``as_of``."""
        ...

    def stage_age(self) -> object:
        """The days the account has been in its stage (``days_in_stage``), or None."""
        ...

    def as_of_date(self) -> dt.date:
        """The evaluation date."""
        ...


TypeRule = Callable[[TypeCheck, ast.Call], Type]
"""Check a call's arguments (its arity is checked already) and return its result type."""
PolarsForm = Callable[[PolarsCall, ast.Call], "pl.Expr"]
"""The polars expression of a call."""
ScalarForm = Callable[[ScalarCall, ast.Call], object]
"""The value of a call for one row; null (None) arguments give the same value as polars."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Function:
    """One function of the expression language.

    Attributes
    ----------
    name
        What expressions call it.
    doc
        One line of help: the signature and what it returns.
    arity
        The least and the most arguments (None: no limit).
    history
        Reads history (lags, the stage age): allowed in action conditions only, null in a
        single evaluation (docs/time.md).
    type_rule, polars, scalar
        The type rule, the polars form and the scalar form.
    interval
        How lint bounds its values.
    """

    name: str
    doc: str
    arity: tuple[int, int | None]
    history: bool
    type_rule: TypeRule
    polars: PolarsForm
    scalar: ScalarForm
    interval: IntervalRule

    def arity_problem(self, given: int) -> str | None:
        """The message for a call with ``given`` arguments, or None when the count is right."""
        lo, hi = self.arity
        if lo <= given and (hi is None or given <= hi):
            return None
        want = f"{lo}" if hi == lo else (f"{lo} or more" if hi is None else f"{lo} to {hi}")
        return f"{self.name}() takes {want} arguments, got {given}"


# --------------------------------------------------------------------------- shared helpers


def _name(node: ast.Call) -> str:
    return node.func.id if isinstance(node.func, ast.Name) else "?"


def _numeric_literal(tc: TypeCheck, node: ast.expr, what: str) -> None:
    inner = node.operand if isinstance(node, ast.UnaryOp) else node
    ok = isinstance(inner, ast.Constant) and isinstance(inner.value, (int, float)) and not (
        isinstance(inner.value, bool)
    )
    if not ok:
        raise tc.fail(node, f"{what} must be a number literal")


def _days_literal(tc: TypeCheck, node: ast.expr, what: str) -> None:
    ok = (isinstance(node, ast.Constant) and isinstance(node.value, int)
          and not isinstance(node.value, bool) and 1 <= node.value <= MAX_LAG_DAYS)
    if not ok:
        raise tc.fail(node, f"{what} must be a whole number of days from 1 to {MAX_LAG_DAYS}")


def _literal_number(node: ast.expr) -> float:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_literal_number(node.operand)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
        return _literal_number(node.operand)
    assert isinstance(node, ast.Constant)
    value = node.value
    assert isinstance(value, (int, float))
    return float(value)


def _lag_args(node: ast.Call) -> tuple[str, int]:
    """The indicator name and the days of ``prev(x, N)`` / ``change(x, N)``."""
    subject, days = node.args
    if not (isinstance(subject, ast.Name) and isinstance(days, ast.Constant)
            and isinstance(days.value, int)):
        raise TypeError(f"{_name(node)}() takes an indicator name and a number of days")
    return subject.id, days.value


def _stuck_days(node: ast.Call) -> int:
    (days,) = node.args
    if not isinstance(days, ast.Constant) or not isinstance(days.value, int):
        raise TypeError("stuck() takes a number of days")
    return days.value


def _on_values(fn: Callable[[ScalarCall, list[object]], object]) -> ScalarForm:
    """A scalar form that reads the values of all its arguments, in order."""

    def form(ctx: ScalarCall, node: ast.Call) -> object:
        return fn(ctx, [ctx.arg(a) for a in node.args])

    return form


def _local_date(v: object) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    raise TypeError(f"expected a date or a datetime, got {type(v).__name__}")


def checked_int(wide: pl.Expr) -> pl.Expr:
    """An Int128 result as an int of the language: null when it leaves Int64 (never wraps)."""
    import polars as pl

    return wide.cast(pl.Int64, strict=False)


def float_sum(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """``a + b`` of two computed floats as IEEE gives it, signed zeros included.

    polars adds a column whose rows are all alike (a ``coalesce`` or a ``when`` that took its
    literal on every row, a column a frame holds as one value) with its scalar kernel, which
    returns the other operand unchanged when the scalar is a zero: ``0.0 + (-0.0)`` gave
    ``-0.0`` where IEEE (and Python) give ``0.0``. ``sum_horizontal`` adds the two columns
    element by element whatever their form (``tests/test_signed_zero.py``); with
    ``ignore_nulls=False`` a null operand gives null, as ``+`` does."""
    import polars as pl

    return pl.sum_horizontal(a, b, ignore_nulls=False)


def float_difference(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """``a - b`` of two computed floats as IEEE gives it: ``a + (-b)`` (the same value for
    every pair of doubles, zeros included) by :func:`float_sum`; polars' scalar kernel
    gave ``0.0 - x`` as ``-x``, ``-0.0`` for ``x == 0.0``."""
    return float_sum(a, -b)


def _as_date(x: pl.Expr, typ: Type | None = None) -> pl.Expr:
    """A date or datetime argument as a Date (a datetime's date on its own wall clock).

    ``typ`` is the argument's type when known: a date is used as it is and a datetime
    takes ``dt.date()`` (each node costs time on a small frame); otherwise (a bare ``None``
    argument is of type Null) it is coalesced with a typed null first."""
    import polars as pl

    if typ == "date":
        return x
    if typ == "datetime":
        return x.dt.date()
    return pl.coalesce([x, pl.lit(None, dtype=pl.Date)]).dt.date()


_ROUND_GUARD = 2.0**52  # every float at least this large is a whole number
_DECIMAL_CONTEXT = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_UP)


def round_half_away(x: object, digits: object) -> float | None:
    """Round the shortest decimal form of a number to ``digits`` places, halves away from zero.

    The scalar form of ``round``; None stays None.
    """
    if not isinstance(digits, int) or isinstance(digits, bool):
        raise TypeError("round()'s second argument must be a whole-number literal")
    if x is None:
        return None
    f = float(x)  # type: ignore[arg-type]  # a number: infer() checked the argument
    if not math.isfinite(f) or abs(f) >= _ROUND_GUARD:
        return f
    exact = decimal.Decimal(repr(f))
    quantum = decimal.Decimal(1).scaleb(-digits)
    # + 0.0: a negative number that rounds to zero is 0.0, not -0.0, as in the polars form
    # (polars' decimals have no negative zero)
    return float(exact.quantize(quantum, context=_DECIMAL_CONTEXT)) + 0.0


def round_decimal(x: pl.Expr, decimals: int) -> pl.Expr:
    """Round the shortest decimal form of x (what repr prints) halves away from zero.

    The polars form of ``round``. polars' own float rounding scales by 10**decimals in
    binary, so it rounds 0.125 to 0.13 but 1.005 to 1.0; going through the decimal text is
    exact: the shortest form of a float has at most 17 significant digits, which a
    Decimal(38, 22) holds for 1 <= |x| < 2**52 and a Decimal(38, 37) for |x| < 1 (below 1e-21
    the digits that do not fit cannot reach a half at 10 decimals). Floats of 2**52 and more
    are whole numbers already.
    """
    import polars as pl

    f = x.cast(pl.Float64)
    text = f.cast(pl.String)

    def via(scale: int) -> pl.Expr:
        exact = text.cast(pl.Decimal(38, scale), strict=False)
        rounded = exact.round(decimals, mode="half_away_from_zero")
        return rounded.cast(pl.String).cast(pl.Float64)

    size = f.abs()
    return (
        pl.when(f.is_nan() | (size >= 2.0**52))
        .then(f)
        .when(size < 1)
        .then(via(37))
        .otherwise(via(22))
    )


ARG_COPIES: Mapping[str, int] = {"round": 6}
"""Functions whose polars form reads its argument's expression more than once, and how often
(``round_decimal`` reads ``x`` six times). The loader bounds the size of an expression's polars
form with it (:func:`healthrules.expressions.lowered_cost`); ``tests/test_expressions.py``
counts the copies in every function's polars form."""


def _extreme(args: Sequence[object], better: Callable[[Any, Any], bool]) -> object:
    """The smallest / largest present argument, as polars' ``min_horizontal`` /
    ``max_horizontal`` fold it: with a float among them all are floats, and a later argument
    replaces the one kept unless the kept one is strictly better, so of equal values the
    last is given (``min(-0.0, 0)`` is ``0.0``, ``min(0.0, -0.0)`` is ``-0.0``)."""
    present: list[Any] = [a for a in args if a is not None]
    if not present:
        return None
    if any(isinstance(a, float) for a in present):
        present = [float(a) for a in present]
    best = present[0]
    for a in present[1:]:
        if not better(best, a):
            best = a
    return best


# --------------------------------------------------------------------------- abs


def _abs_type(tc: TypeCheck, node: ast.Call) -> Type:
    (a,) = node.args
    t = tc.visit(a)
    if t not in NUMERIC:
        raise tc.fail(a, f"abs() needs a number, got {t}")
    return t


def _abs_polars(ctx: PolarsCall, node: ast.Call) -> pl.Expr:
    import polars as pl

    x = ctx.arg(node.args[0])
    if ctx.is_int(node.args[0]):  # abs(-2**63) does not fit: null, as in the scalar form
        return checked_int(x.cast(pl.Int128).abs())
    return x.abs()


def _abs_scalar(ctx: ScalarCall, args: list[object]) -> object:
    (x,) = args
    return None if x is None else fits_int(abs(x))  # type: ignore[arg-type]  # a number


# --------------------------------------------------------------------------- min, max, coalesce


def _extreme_type(tc: TypeCheck, node: ast.Call) -> Type:
    name = _name(node)
    out: Type = "null"
    for a in node.args:
        t = tc.visit(a)
        if name != "coalesce" and t not in NUMERIC and t != "null":
            raise tc.fail(a, f"{name}() needs numbers, got {t}")
        u = unify(out, t)
        if u is None:
            raise tc.fail(a, f"{name}() arguments must share one type: {out} and {t}")
        out = u
    return out


def _min_polars(ctx: PolarsCall, node: ast.Call) -> pl.Expr:
    import polars as pl

    return pl.min_horizontal([ctx.arg(a) for a in node.args])


def _max_polars(ctx: PolarsCall, node: ast.Call) -> pl.Expr:
    import polars as pl

    return pl.max_horizontal([ctx.arg(a) for a in node.args])


def _coalesce_polars(ctx: PolarsCall, node: ast.Call) -> pl.Expr:
    import polars as pl

    return pl.coalesce([ctx.arg(a) for a in node.args])


def _min_scalar(ctx: ScalarCall, args: list[object]) -> object:
    return _extreme(args, operator.lt)


def _max_scalar(ctx: ScalarCall, args: list[object]) -> object:
    return _extreme(args, operator.gt)


def _coalesce_scalar(ctx: ScalarCall, args: list[object]) -> object:
    return next((a for a in args if a is not None), None)


# --------------------------------------------------------------------------- round, clip


def _round_type(tc: TypeCheck, node: ast.Call) -> Type:
    args = node.args
    t = tc.visit(args[0])
    if t not in NUMERIC:
        raise tc.fail(args[0], f"round() needs a number, got {t}")
    if len(args) == 2:
        d = args[1]
        if not (
            isinstance(d, ast.Constant)
            and isinstance(d.value, int)
            and not isinstance(d.value, bool)
            and 0 <= d.value <= 10
        ):
            raise tc.fail(d, "round()'s second argument must be a literal 0 to 10")
    return "float"


def _round_polars(ctx: PolarsCall, node: ast.Call) -> pl.Expr:
    args = node.args
    decimals = 0
    if len(args) == 2 and isinstance(args[1], ast.Constant):
        assert isinstance(args[1].value, int)
        decimals = args[1].value
    return round_decimal(ctx.arg(args[0]), decimals)


def _round_scalar(ctx: ScalarCall, args: list[object]) -> object:
    if len(args) not in (1, 2):
        raise TypeError(f"round() takes 1 or 2 arguments, got {len(args)}")
    return round_half_away(args[0], args[1] if len(args) == 2 else 0)


def _clip_type(tc: TypeCheck, node: ast.Call) -> Type:
    args = node.args
    t = tc.visit(args[0])
    if t not in NUMERIC:
        raise tc.fail(args[0], f"clip() needs a number, got {t}")
    _numeric_literal(tc, args[1], "clip()'s lower bound")
    _numeric_literal(tc, args[2], "clip()'s upper bound")
    return "float"


def _clip_polars(ctx: PolarsCall, node: ast.Call) -> pl.Expr:
    import polars as pl

    lo = _literal_number(node.args[1])
    hi = _literal_number(node.args[2])
    return ctx.arg(node.args[0]).cast(pl.Float64).clip(lo, hi)


def _clip_scalar(ctx: ScalarCall, args: list[object]) -> object:
    x, lo, hi = args
    if x is None:
        return None
    f = float(x)  # type: ignore[arg-type]  # a number (infer)
    low = float(lo)  # type: ignore[arg-type]  # a number literal (infer)
    high = float(hi)  # type: ignore[arg-type]  # a number literal (infer)
    if f < low:
        return low
    if f > high:
        return high
    return f


# --------------------------------------------------------------------------- dates


def _days_type(tc: TypeCheck, node: ast.Call) -> Type:
    name = _name(node)
    for a in node.args:
        t = tc.visit(a)
        if t not in TEMPORAL and t != "null":
            raise tc.fail(a, f"{name}() needs dates, got {t}")
    return "int"


def _days_between_polars(ctx: PolarsCall, node: ast.Call) -> pl.Expr:
    a = _as_date(ctx.arg(node.args[0]), ctx.static_type(node.args[0]))
    b = _as_date(ctx.arg(node.args[1]), ctx.static_type(node.args[1]))
    return (b - a).dt.total_days()


def _days_between_scalar(ctx: ScalarCall, args: list[object]) -> object:
    a, b = args
    return None if a is None or b is None else (_local_date(b) - _local_date(a)).days


def _days_since_polars(ctx: PolarsCall, node: ast.Call) -> pl.Expr:
    since = ctx.as_of_date() - _as_date(ctx.arg(node.args[0]), ctx.static_type(node.args[0]))
    return since.dt.total_days()


def _days_since_scalar(ctx: ScalarCall, args: list[object]) -> object:
    (d,) = args
    return None if d is None else (ctx.as_of_date() - _local_date(d)).days


def _date_type(tc: TypeCheck, node: ast.Call) -> Type:
    (arg,) = node.args
    if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
        raise tc.fail(arg, "date() takes a literal 'YYYY-MM-DD'")
    try:
        dt.date.fromisoformat(arg.value)
    except ValueError:
        raise tc.fail(arg, f"{arg.value!r} is not a date like 'YYYY-MM-DD'") from None
    return "date"


def _date_polars(ctx: PolarsCall, node: ast.Call) -> pl.Expr:
    import polars as pl

    arg = node.args[0]
    assert isinstance(arg, ast.Constant)
    return pl.lit(dt.date.fromisoformat(str(arg.value)), dtype=pl.Date)


def _date_scalar(ctx: ScalarCall, args: list[object]) -> object:
    (text,) = args
    if not isinstance(text, str):
        raise TypeError("date() takes a literal 'YYYY-MM-DD'")
    return dt.date.fromisoformat(text)


# --------------------------------------------------------------------------- band


def _band_type(tc: TypeCheck, node: ast.Call) -> Type:
    (arg,) = node.args
    if not isinstance(arg, ast.Name):
        raise tc.fail(arg, "band() takes the name of an indicator")
    if arg.id not in tc.env:
        hint = tc.suggest(arg.id, set(tc.banded) or set(tc.env))
        raise tc.fail(arg, f"unknown indicator {arg.id!r}", "unknown_name", hint)
    if arg.id not in tc.banded:
        raise tc.fail(arg, f"{arg.id!r} has no bands, so band() cannot be used on it")
    return "str"


def _band_polars(ctx: PolarsCall, node: ast.Call) -> pl.Expr:
    arg = node.args[0]
    assert isinstance(arg, ast.Name)
    return ctx.band_of(arg.id)


def _band_scalar(ctx: ScalarCall, node: ast.Call) -> object:
    (arg,) = node.args
    if not isinstance(arg, ast.Name):
        raise TypeError("band() takes the name of an indicator")
    return ctx.band_of(arg.id)  # a reference, not a value: the argument has no trace step


# --------------------------------------------------------------------------- change over time


def _lag_type(tc: TypeCheck, node: ast.Call) -> Type:
    name = _name(node)
    x, n = node.args
    if not isinstance(x, ast.Name):
        raise tc.fail(x, f"{name}() takes the name of an indicator or score")
    t = tc.visit(x)
    _days_literal(tc, n, f"{name}()'s second argument")
    if name == "change" and t not in NUMERIC:
        raise tc.fail(x, f"change() needs a number, got {t}")
    return t


def _stuck_type(tc: TypeCheck, node: ast.Call) -> Type:
    (n,) = node.args
    _days_literal(tc, n, "stuck()'s argument")
    return "bool"


def _prev_polars(ctx: PolarsCall, node: ast.Call) -> pl.Expr:
    name, days = _lag_args(node)
    return ctx.lag(name, days)


def _change_polars(ctx: PolarsCall, node: ast.Call) -> pl.Expr:
    import polars as pl

    name, days = _lag_args(node)
    now, before = ctx.arg(node.args[0]), ctx.lag(name, days)
    if ctx.is_int(node.args[0]):
        return checked_int(now.cast(pl.Int128) - before.cast(pl.Int128))
    return float_difference(now, before)


def _stuck_polars(ctx: PolarsCall, node: ast.Call) -> pl.Expr:
    return ctx.stage_age() >= _stuck_days(node)


def _prev_scalar(ctx: ScalarCall, node: ast.Call) -> object:
    name, days = _lag_args(node)
    return ctx.lag(name, days)


def _change_scalar(ctx: ScalarCall, node: ast.Call) -> object:
    name, days = _lag_args(node)
    before = ctx.lag(name, days)
    now = ctx.arg(node.args[0])
    if now is None or before is None:
        return None
    return not_nan(fits_int(now - before))  # type: ignore[operator]  # numbers: infer() checked it


def _stuck_scalar(ctx: ScalarCall, node: ast.Call) -> object:
    days = _stuck_days(node)
    age = ctx.stage_age()
    return None if not isinstance(age, int) else age >= days


# --------------------------------------------------------------------------- the table

_ENTRIES = (
    Function(
        name="abs", doc="abs(x): absolute value", arity=(1, 1), history=False,
        type_rule=_abs_type, polars=_abs_polars, scalar=_on_values(_abs_scalar),
        interval="absolute",
    ),
    Function(
        name="min", doc="min(a, b, ...): smallest non-null argument (null when all are null)",
        arity=(2, None), history=False, type_rule=_extreme_type, polars=_min_polars,
        scalar=_on_values(_min_scalar), interval="least",
    ),
    Function(
        name="max", doc="max(a, b, ...): largest non-null argument (null when all are null)",
        arity=(2, None), history=False, type_rule=_extreme_type, polars=_max_polars,
        scalar=_on_values(_max_scalar), interval="greatest",
    ),
    Function(
        name="round", doc="round(x, n=0): x rounded to n decimals, halves away from zero",
        arity=(1, 2), history=False, type_rule=_round_type, polars=_round_polars,
        scalar=_on_values(_round_scalar), interval="rounded",
    ),
    Function(
        name="coalesce", doc="coalesce(a, b, ...): the first argument that is not null",
        arity=(1, None), history=False, type_rule=_extreme_type, polars=_coalesce_polars,
        scalar=_on_values(_coalesce_scalar), interval="first_present",
    ),
    Function(
        name="clip",
        doc="clip(x, lo, hi): x limited to [lo, hi] (lo and hi are number literals)",
        arity=(3, 3), history=False, type_rule=_clip_type, polars=_clip_polars,
        scalar=_on_values(_clip_scalar), interval="clipped",
    ),
    Function(
        name="days_between", doc="days_between(a, b): whole days from date a to date b",
        arity=(2, 2), history=False, type_rule=_days_type, polars=_days_between_polars,
        scalar=_on_values(_days_between_scalar), interval="unknown",
    ),
    Function(
        name="days_since", doc="days_since(a): whole days from date a to as_of",
        arity=(1, 1), history=False, type_rule=_days_type, polars=_days_since_polars,
        scalar=_on_values(_days_since_scalar), interval="unknown",
    ),
    Function(
        name="date", doc="date('YYYY-MM-DD'): a date literal", arity=(1, 1), history=False,
        type_rule=_date_type, polars=_date_polars, scalar=_on_values(_date_scalar),
        interval="unknown",
    ),
    Function(
        name="band", doc="band(indicator): the name of the band the indicator's value falls in",
        arity=(1, 1), history=False, type_rule=_band_type, polars=_band_polars,
        scalar=_band_scalar, interval="unknown",
    ),
    # change over time (action conditions only; see docs/time.md)
    Function(
        name="prev", doc="prev(x, N): the value of indicator x (or score) N days earlier",
        arity=(2, 2), history=True, type_rule=_lag_type, polars=_prev_polars,
        scalar=_prev_scalar, interval="unknown",
    ),
    Function(
        name="change", doc="change(x, N): x minus its value N days earlier", arity=(2, 2),
        history=True, type_rule=_lag_type, polars=_change_polars, scalar=_change_scalar,
        interval="unknown",
    ),
    Function(
        name="stuck",
        doc="stuck(N): the account has been in its current stage for at least N days",
        arity=(1, 1), history=True, type_rule=_stuck_type, polars=_stuck_polars,
        scalar=_stuck_scalar, interval="unknown",
    ),
)

FUNCTION_TABLE: Mapping[str, Function] = {f.name: f for f in _ENTRIES}
"""Every function expressions may call, by name (the allow-list)."""
