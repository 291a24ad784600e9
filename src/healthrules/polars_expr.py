"""Translate a checked expression tree into one polars expression (Kleene nulls, safe division)."""

from __future__ import annotations

import ast
import datetime as dt
import functools
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any, assert_never

import polars as pl

from healthrules.expressions import (
    ExprProblem,
    Parsed,
    Type,
    expr_node,
    infer,
    lag_column,
    literal_value,
)
from healthrules.functions import (
    FUNCTION_TABLE,
    checked_int,
    float_difference,
    float_sum,
    round_decimal,
)

__all__ = ["computed_nan_to_null", "exact_division", "float_difference", "float_sum",
           "nan_to_null", "positive_zero", "round_decimal", "to_polars", "typed_lit"]

_CMP: dict[type[ast.cmpop], Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def to_polars(
    parsed: Parsed | ast.expr,
    *,
    column: Callable[[str], pl.Expr],
    band: Callable[[str], pl.Expr],
    as_of: dt.date | pl.Expr,
    types: Mapping[str, Type] | None = None,
) -> pl.Expr:
    """Return the polars expression of a parsed, type-checked expression.

    Parameters
    ----------
    parsed
        An expression accepted by :func:`healthrules.expressions.parse` and ``infer``.
    column
        Maps a name to the polars expression holding its value.
    band
        Maps an indicator id to the expression of its band name (for ``band(x)``).
    as_of
        The evaluation date, used by ``days_since``: a date, or a Date expression when many
        dates are evaluated at once (history).
    types
        The type of every name (the ``env`` given to :func:`healthrules.expressions.infer`).
        Pass it: without it, a date compared with a time-zone-aware datetime is read as
        midnight UTC (polars' own cast) instead of midnight on the datetime's wall clock, and
        a NaN in a float column is not read as null.

    Notes
    -----
    Semantics match :mod:`healthrules.scalar` (its module docstring states them; the
    differential test checks them): three-valued logic, division by zero is null,
    ``x if c else y`` is null when ``c`` is null, ``min``/``max`` skip nulls, ``round`` rounds
    the shortest decimal form of a float halves away from zero, a NaN computed (``inf - inf``)
    is null (one guard where the arithmetic ends: :meth:`_Translate.value`).
    """
    tree = parsed.tree if isinstance(parsed, Parsed) else parsed
    return _Translate(column, band, as_of, types).value(tree)


def _is_boolean(node: ast.expr) -> bool:
    """Whether the polars form of a node is Boolean already: a comparison, ``and``/``or``,
    ``not``."""
    return isinstance(node, (ast.Compare, ast.BoolOp)) or (
        isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not))


def typed_lit(value: Any, dtype: pl.DataType | type[pl.DataType]) -> pl.Expr:
    """``pl.lit(value, dtype)``, built once per distinct value and dtype.

    polars builds a literal of a given dtype through a one-value Series and a cast (tens
    of microseconds; a roadmap's bands and actions ask for some hundreds, most of them the
    same few cut points and names). Expressions are immutable, so one serves every place.
    The key tells ``-0.0`` from ``0.0`` and ``True`` from ``1``, which compare equal."""
    key = (type(value), repr(value), repr(dtype))
    got = _LITERALS.get(key)
    if got is None:
        if len(_LITERALS) >= 4096:  # a long-lived process compiling many plans: start again
            _LITERALS.clear()
        got = _LITERALS[key] = pl.lit(value, dtype)
    return got


_LITERALS: dict[tuple[Any, ...], pl.Expr] = {}


def _lit(value: object) -> pl.Expr:
    if value is None:
        return typed_lit(None, pl.Null)
    if isinstance(value, bool):
        return typed_lit(value, pl.Boolean)
    if isinstance(value, int):
        return typed_lit(value, pl.Int64)
    if isinstance(value, float):
        return typed_lit(value, pl.Float64)
    return typed_lit(value, pl.String)


class _Translate:
    def __init__(
        self,
        column: Callable[[str], pl.Expr],
        band: Callable[[str], pl.Expr],
        as_of: dt.date | pl.Expr,
        types: Mapping[str, Type] | None,
    ) -> None:
        self.column = column
        self.band = band
        self.as_of = as_of
        self.types = types
        # a node's type, by node (kept, so that its id is not reused): may_be_nan and the
        # operators ask for the same subtrees again, and inferring one walks all of it
        self._static: dict[int, tuple[ast.expr, Type | None]] = {}
        self._banded: frozenset[str] | None = None  # the names, made on the first inference

    # ---- what function forms read (healthrules.functions.PolarsCall)

    def arg(self, node: ast.expr) -> pl.Expr:
        return self.value(node)

    def band_of(self, indicator: str) -> pl.Expr:
        return self.band(indicator)

    def lag(self, name: str, days: int) -> pl.Expr:
        # change over time: the lagged value is the column lag_column(x, N) (docs/time.md)
        before = self.column(lag_column(name, days))
        if self.types is not None and self.types.get(name) == "float":
            before = nan_to_null(before)
        return before

    def stage_age(self) -> pl.Expr:
        return self.column("days_in_stage")

    def as_of_date(self) -> pl.Expr:
        return self.as_of if isinstance(self.as_of, pl.Expr) else typed_lit(
            self.as_of, pl.Date)

    def is_int(self, node: ast.expr) -> bool:
        return self.static_type(node) == "int"

    def static_type(self, node: ast.expr) -> Type | None:
        """The type of a sub-expression, when the types of the names are known."""
        if self.types is None:
            return None
        known = self._static.get(id(node))
        if known is not None:
            return known[1]
        if self._banded is None:
            self._banded = frozenset(self.types)
        try:
            typ: Type | None = infer(node, self.types, banded=self._banded)
        except ExprProblem:
            typ = None
        self._static[id(node)] = (node, typ)
        return typ

    def may_be_nan(self, node: ast.expr) -> bool:
        """Whether a node's polars form can hold a NaN it computed (``inf - inf``, ``inf * 0``,
        ``inf / inf``, ``inf * 0 + 1`` for ``x ** 0``, an overflow followed by one of those).

        Names read NaN as null already and literals are never NaN; int arithmetic cannot give
        NaN and neither can ``int / int`` (no int is infinite); ``-x``, ``x ** n`` (n >= 1) and
        ``x if c else y`` give NaN only when an operand is NaN. Only known float nodes count
        (without ``types`` nothing does)."""
        match node:
            case ast.BinOp(left=left, op=op, right=right):
                if self.static_type(node) != "float":
                    return False
                if isinstance(op, ast.Pow):
                    return (isinstance(right, ast.Constant) and right.value == 0) or (
                        self.may_be_nan(left))
                if isinstance(op, ast.Div):
                    return not (self.is_int(left) and self.is_int(right))
                return True
            case ast.UnaryOp(op=ast.USub() | ast.UAdd(), operand=operand):
                return self.may_be_nan(operand)
            case ast.IfExp(body=body, orelse=orelse):
                return self.may_be_nan(body) or self.may_be_nan(orelse)
            case ast.Call(func=ast.Name(id="change")):
                return self.static_type(node) == "float"
            case _:
                return False

    def value(self, node: ast.expr) -> pl.Expr:
        """A node's polars form as read by what is not arithmetic (a comparison, a function,
        a condition, the expression's result): a NaN it computed is null (docs/semantics.md,
        "Expressions"). Arithmetic reads its operands with :meth:`visit`: a NaN operand gives
        NaN exactly where a null one gives null, so one guard where the arithmetic ends does
        the work of one at every operation."""
        expr = self.visit(node)
        return computed_nan_to_null(expr) if self.may_be_nan(node) else expr

    def visit(self, node: ast.AST) -> pl.Expr:
        n = expr_node(node)
        if n is None:
            raise TypeError(f"{type(node).__name__} is not supported")
        match n:
            case ast.Name():
                return self.visit_Name(n)
            case ast.Constant():
                return self.visit_Constant(n)
            case ast.UnaryOp():
                return self.visit_UnaryOp(n)
            case ast.BinOp():
                return self.visit_BinOp(n)
            case ast.BoolOp():
                return self.visit_BoolOp(n)
            case ast.Compare():
                return self.visit_Compare(n)
            case ast.IfExp():
                return self.visit_IfExp(n)
            case ast.Call():
                return self.visit_Call(n)
            case ast.Tuple() | ast.List():
                raise TypeError("a list is only allowed after `in`")
            case _:
                assert_never(n)

    def visit_Name(self, node: ast.Name) -> pl.Expr:
        expr = self.column(node.id)
        if self.types is not None and self.types.get(node.id) == "float":
            expr = nan_to_null(expr)
        return expr

    def visit_Constant(self, node: ast.Constant) -> pl.Expr:
        return _lit(node.value)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> pl.Expr:
        if isinstance(node.op, ast.Not):
            x = self.value(node.operand)
            return (x if _is_boolean(node.operand) else x.cast(pl.Boolean)).not_()
        x = self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            if self.is_int(node.operand):  # -(-2**63) does not fit: null
                return checked_int(typed_lit(0, pl.Int128) - x.cast(pl.Int128))
            return -x
        return x

    def visit_BinOp(self, node: ast.BinOp) -> pl.Expr:
        a = self.visit(node.left)
        b = self.visit(node.right)
        op = node.op
        if self.is_int(node.left) and (isinstance(op, ast.Pow) or self.is_int(node.right)):
            return _checked_arithmetic(op, a, b, node.right)
        if isinstance(op, (ast.Add, ast.Sub)):
            left, right = self._folded(node.left), self._folded(node.right)
            signed = _zero_operand(op, left, right, a, b)
            if signed is not None:
                return signed
            # neither operand a constant: either may be a column whose rows are all alike,
            # which polars holds as one value (see float_sum); a non-zero constant operand
            # is safe as it is, a zero one was handled above
            both_vary = left is None and right is None
            if isinstance(op, ast.Add):
                return float_sum(a, b) if both_vary else a + b
            return float_difference(a, b) if both_vary else a - b
        if isinstance(op, ast.Mult):
            return a * b
        if isinstance(op, ast.Div):
            return exact_division(a, b)
        if isinstance(op, ast.Pow):
            assert isinstance(node.right, ast.Constant)
            exponent = node.right.value
            assert isinstance(exponent, int)
            return _pow(a, exponent)
        raise TypeError(f"operator {type(op).__name__} is not supported")

    def _folded(self, node: ast.expr) -> object:
        """The value of an operand that reads no name (polars folds it to a constant when it
        plans the query), or None for any other operand. A call is folded only when
        ``as_of`` is a date (``days_since(date('...'))`` reads it)."""
        calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)]
        funcs = {id(c.func) for c in calls}
        if any(isinstance(n, ast.Name) and id(n) not in funcs for n in ast.walk(node)):
            return None
        if calls and isinstance(self.as_of, pl.Expr):
            return None
        from healthrules.scalar import evaluate

        as_of = self.as_of if isinstance(self.as_of, dt.date) else dt.date(2000, 1, 1)
        try:
            return evaluate(ast.unparse(node), {}, as_of=as_of)
        except Exception:  # a call that reads a value after all (stuck): not a constant
            return None

    def boolean(self, node: ast.expr) -> pl.Expr:
        """A condition as a Boolean: a comparison, ``and``/``or`` or ``not`` already is one
        (a cast that changes nothing is one more node to plan and run per call)."""
        expr = self.value(node)
        return expr if _is_boolean(node) else expr.cast(pl.Boolean)

    def visit_BoolOp(self, node: ast.BoolOp) -> pl.Expr:
        parts = [self.boolean(v) for v in node.values]
        fn = operator.and_ if isinstance(node.op, ast.And) else operator.or_
        return functools.reduce(fn, parts)

    def visit_Compare(self, node: ast.Compare) -> pl.Expr:
        results: list[pl.Expr] = []
        left_node: ast.expr = node.left
        left = self.value(left_node)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.Is):
                results.append(left.is_null())
                left_node, left = right_node, _lit(None)
                continue
            if isinstance(op, ast.IsNot):
                results.append(left.is_not_null())
                left_node, left = right_node, _lit(None)
                continue
            if isinstance(op, (ast.In, ast.NotIn)):
                assert isinstance(right_node, (ast.Tuple, ast.List))
                values = [literal_value(e) for e in right_node.elts]
                if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                    # each item as `left == item` compares them: an int left and an int
                    # item exactly (2**53 is not in (2**53 + 1,)), else as floats
                    ints = [v for v in values if isinstance(v, int)]
                    exact = ints if self.static_type(left_node) == "int" else []
                    floats = [float(v) for v in values  # type: ignore[arg-type]
                              if not (exact and isinstance(v, int))]
                    parts: list[pl.Expr] = []
                    if exact:
                        parts.append(left.is_in(pl.lit(pl.Series(exact, dtype=pl.Int64))
                                                .implode()))
                    if floats:
                        parts.append(left.cast(pl.Float64).is_in(
                            pl.lit(pl.Series(floats, dtype=pl.Float64)).implode()))
                    member = parts[0] if len(parts) == 1 else parts[0] | parts[1]
                else:
                    member = left.is_in(pl.lit(pl.Series(values)).implode())
                member = pl.when(left.is_not_null()).then(member)
                results.append(member.not_() if isinstance(op, ast.NotIn) else member)
                continue
            right = self.value(right_node)
            a, b = left, right
            # a date against a datetime: midnight on the datetime's wall clock
            kinds = (self.static_type(left_node), self.static_type(right_node))
            if kinds == ("datetime", "date"):
                a = a.dt.replace_time_zone(None)
            elif kinds == ("date", "datetime"):
                b = b.dt.replace_time_zone(None)
            results.append(_CMP[type(op)](a, b))
            left_node, left = right_node, right
        return functools.reduce(operator.and_, results)

    def visit_IfExp(self, node: ast.IfExp) -> pl.Expr:
        cond = self.boolean(node.test)
        body = self.visit(node.body)
        orelse = self.visit(node.orelse)
        return pl.when(cond).then(body).when(cond.not_()).then(orelse)

    def visit_Call(self, node: ast.Call) -> pl.Expr:
        assert isinstance(node.func, ast.Name)
        fn = FUNCTION_TABLE.get(node.func.id)
        if fn is None:
            raise TypeError(f"function {node.func.id!r} is not supported")
        return fn.polars(self, node)


def _zero_operand(op: ast.operator, left: object, right: object, a: pl.Expr, b: pl.Expr,
                  ) -> pl.Expr | None:
    """A float ``x + 0.0``, ``0.0 + x``, ``x - (-0.0)`` or ``0.0 - x`` as IEEE gives it
    (``left`` / ``right``: the operands' folded values, None where not constant).

    polars plans ``x + 0`` as ``x`` and ``0 - x`` as ``-x`` when the zero is a constant it
    folds, which differs where ``x`` is a zero: IEEE gives ``-0.0 + 0.0 == 0.0`` and
    ``0.0 - 0.0 == 0.0`` (Python, and so the scalar evaluator, too). None for any other
    operation, which polars computes as IEEE does."""
    if isinstance(op, ast.Add):
        if _positive_zero(right):
            return positive_zero(a.cast(pl.Float64))
        if _positive_zero(left):
            return positive_zero(b.cast(pl.Float64))
        return None
    if _negative_zero(right):  # x - (-0.0) is x + 0.0
        return positive_zero(a.cast(pl.Float64))
    if _positive_zero(left):
        x = b.cast(pl.Float64)
        return pl.when(x == 0).then(typed_lit(0.0, pl.Float64)).otherwise(-x)
    return None


def _positive_zero(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == 0 and (
        math.copysign(1.0, v) > 0)


def _negative_zero(v: object) -> bool:
    return isinstance(v, float) and v == 0 and math.copysign(1.0, v) < 0


def positive_zero(x: pl.Expr) -> pl.Expr:
    """A Float64 ``x`` with ``-0.0`` read as ``0.0`` (``x + 0.0`` as IEEE gives it)."""
    return pl.when(x == 0).then(typed_lit(0.0, pl.Float64)).otherwise(x)


def nan_to_null(x: pl.Expr) -> pl.Expr:
    """A float value with NaN read as null (``fill_nan(None)``), in fewer nodes:
    ``fill_nan`` expands to a ``when`` over ``is_not_nan() | is_null()`` that reads the
    value three times; a ``when(is_nan())`` gives the same column (a null stays null) and
    costs less to plan and run on a few rows."""
    value = x.cast(pl.Float64)
    return pl.when(value.is_nan()).then(typed_lit(None, pl.Float64)).otherwise(value)


def computed_nan_to_null(x: pl.Expr) -> pl.Expr:
    """A computed float (``a - b``, ``a * b``...) with NaN read as null, in one node that reads
    ``x`` once: :func:`nan_to_null` gives the same values (``tests/test_nan_is_null.py`` and
    ``tests/test_lookup_forms.py`` pin both) but reads its operand twice, which for a column
    is cheaper to run than ``replace`` and for a computed subtree copies it into the plan
    (docs/performance.md, "A NaN computed by an expression is null"). ``replace`` matches NaN
    (polars compares floats by total equality there)."""
    return x.replace(float("nan"), None)


def exact_division(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """``a / b`` as an IEEE division (the double nearest the quotient, as Python's ``/``);
    null when ``b`` is 0.

    polars divides a column by a *scalar* (a literal, or a column whose rows are all alike)
    with a reciprocal multiply: ``x / 3`` gave 53.33333333333334 where Python gives
    53.333333333333336. The divisor gets ``0 * (a is NaN)`` added, which is a column exactly
    when ``a`` is one, so the division is element by element, whatever the partition.
    """
    fa = a.cast(pl.Float64)
    fb = b.cast(pl.Float64) + fa.is_nan().cast(pl.Float64) * 0.0
    return pl.when(b != 0).then(fa / fb)


def _checked_arithmetic(op: ast.operator, a: pl.Expr, b: pl.Expr, right: ast.expr) -> pl.Expr:
    """Integer ``+ - * **`` computed in 128 bits: null when the result leaves Int64.

    Each operand is read once (no copy of a subtree); ``/`` is a float division as usual.
    """
    wide_a = a.cast(pl.Int128)
    if isinstance(op, ast.Add):
        return checked_int(wide_a + b.cast(pl.Int128))
    if isinstance(op, ast.Sub):
        return checked_int(wide_a - b.cast(pl.Int128))
    if isinstance(op, ast.Mult):
        return checked_int(wide_a * b.cast(pl.Int128))
    if isinstance(op, ast.Div):
        return exact_division(a, b)
    if isinstance(op, ast.Pow):
        assert isinstance(right, ast.Constant) and isinstance(right.value, int)
        if right.value == 0:
            return _pow(a, 0)
        out = a
        for _ in range(right.value - 1):  # each step fits, or the rest is null
            out = checked_int(out.cast(pl.Int128) * wide_a)
        return out
    raise TypeError(f"operator {type(op).__name__} is not supported")


def _pow(base: pl.Expr, exponent: int) -> pl.Expr:
    if exponent == 0:
        return pl.when(base.is_not_null()).then(base * 0 + 1)
    out = base
    for _ in range(exponent - 1):
        out = out * base
    return out
