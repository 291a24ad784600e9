"""Evaluate one parsed expression for one row, with Kleene nulls (the reference for polars_expr).

This is the scalar counterpart of :func:`healthrules.polars_expr.to_polars`: a subclass of
``simpleeval.SimpleEval`` whose handlers for ``and`` / ``or`` / ``not``, comparisons, ``if``
and the operators never call ``bool()`` on an unknown value. Both follow the same semantics,
which ``tests/test_differential.py`` checks on random expressions and null-rich rows:

- ``None`` is null. Arithmetic and comparisons with a null operand are null; ``and`` / ``or``
  / ``not`` are three-valued (``None and False`` is ``False``, ``None or True`` is ``True``,
  ``not None`` is ``None``); a chained comparison is the Kleene ``and`` of its pairs; after an
  ``in`` inside a chain, the next pair compares the same left operand again (``x in (1, 2) < 3``
  is ``x in (1, 2) and x < 3``), as the type checker reads it.
- ``x if c else y`` is null when ``c`` is null. ``x is None`` / ``x is not None`` are never null.
- ``a / b`` is always a float and is null when ``b`` is 0. ``+ - *`` keep ints as ints and give
  a float as soon as one side is a float; ``x ** n`` (``n`` a literal 0 to 16) is ``x``
  multiplied ``n`` times, left to right (``x ** 0`` is ``x * 0 + 1``). An int result (of
  ``+ - * **``, unary minus, ``abs``, ``change``) that leaves the 64-bit range is null, never
  wrapped (polars computes it in 128 bits and casts back). A float result may be ``inf`` or
  ``-inf`` (an overflow, an infinite value); a NaN result (``inf - inf``, ``inf * 0``,
  ``inf / inf``, ``inf ** 0``) is null, the moment it is computed.
- Ints compared with floats are compared as floats, and ``x in (...)`` with a list of numbers
  compares as floats too. A float NaN read from ``values`` is null.
- Two datetimes compare as instants. A date compared with a datetime is read as midnight on
  the datetime's wall clock (so ``ts >= date('2024-06-01')`` means "on or after that day in
  the time zone of ``ts``"). ``days_since(x)`` and ``days_between(a, b)`` take a datetime at
  its date in its own time zone.
- Functions are exactly :data:`healthrules.expressions.FUNCTIONS`: ``min`` / ``max`` skip
  nulls (null when all are null); ``coalesce`` gives the first non-null argument; ``abs``;
  ``clip(x, lo, hi)`` is a float (``lo`` when ``x < lo``, else ``hi`` when ``x > hi``, else
  ``x``); ``round(x, n)`` rounds the shortest decimal form of ``x`` (the one ``repr`` prints)
  to ``n`` places, halves away from zero, and gives a float; ``date('YYYY-MM-DD')`` is a date;
  ``band(x)`` reads the band of indicator ``x`` (see :func:`evaluate`). The change-over-time
  functions ``prev(x, N)`` / ``change(x, N)`` read the value named
  ``healthrules.expressions.lag_column(x, N)`` and ``stuck(N)`` reads ``days_in_stage``; both
  are null when ``values`` does not have them (a single evaluation has no history).

Evaluation never raises because a value is null. Only expressions accepted by
:func:`healthrules.expressions.parse` are evaluated: a :class:`~healthrules.expressions.Parsed`
whose tree does not match what ``parse`` makes of its source is refused, and the handler table
holds only the allow-listed node types, so nothing else (attribute access, subscripts, other
functions) can run even on a tampered tree. Types are not checked here: an expression that
:func:`healthrules.expressions.infer` rejects may raise ``TypeError``.
"""

from __future__ import annotations

import ast
import datetime as dt
import functools
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simpleeval import (  # type: ignore[import-untyped]
    FeatureNotAvailable,
    NameNotDefined,
    SimpleEval,
)

from healthrules._typing import fits_int, not_nan
from healthrules.expressions import (
    MAX_POWER,
    TIME_NAMES,
    ExprProblem,
    Parsed,
    Type,
    lag_column,
    node_types,
    parse,
)
from healthrules.functions import FUNCTION_TABLE

__all__ = ["BandLookup", "Step", "evaluate", "trace"]

BandLookup = Callable[[str], object]
"""A function from an indicator id to the name of its band for the row (``None`` if null)."""

_UTC = dt.UTC


@dataclass(frozen=True, slots=True)
class Step:
    """The value of one sub-expression, as recorded by :func:`trace`.

    Attributes
    ----------
    text
        The sub-expression's source text. A pair of a chained comparison (``b <= c`` in
        ``a < b <= c``) is written out from its operands.
    value
        Its value for the row (``None`` for null).
    depth
        How deep it sits in the expression: 0 for the whole expression, 1 for its operands...
    """

    text: str
    value: object
    depth: int


def evaluate(
    parsed: Parsed | str,
    values: Mapping[Any, object],
    *,
    as_of: dt.date,
    band: BandLookup | None = None,
    types: Mapping[str, Type] | None = None,
) -> object:
    """Evaluate an expression for one row.

    Parameters
    ----------
    parsed
        An expression from :func:`healthrules.expressions.parse` (or its source text, which
        is parsed here). It should have passed :func:`healthrules.expressions.infer`.
    values
        The value of every name the expression reads (``None`` for null). A name that is
        missing raises ``simpleeval.NameNotDefined``: missing is not the same as null.
    as_of
        The evaluation date, read by ``days_since``. A datetime is taken at its date.
    band
        Returns the band of an indicator for ``band(x)``. Without it, ``band(x)`` reads
        ``values[("band", "x")]`` (null when that key is absent).
    types
        The type of every name (the ``env`` given to ``infer``), as for
        :func:`healthrules.polars_expr.to_polars`. Pass it: with it, an int value of a
        sub-expression typed float (``i if c else f``, ``coalesce(i, f)``) is a float, as in
        polars, so the later arithmetic is float arithmetic there too (an int one is checked
        for 64-bit overflow).

    Returns
    -------
    object
        ``None`` (null), or a ``bool``, ``int``, ``float``, ``str``, ``date`` or ``datetime``.

    Raises
    ------
    healthrules.expressions.ExprProblem
        If ``parsed`` is not an allow-listed expression.
    simpleeval.NameNotDefined
        If a name the expression reads is missing from ``values``.

    See Also
    --------
    trace : the value of every sub-expression, for explanations.
    healthrules.polars_expr.to_polars : the vectorised translation, with the same semantics.

    Examples
    --------
    >>> import datetime as dt
    >>> day = dt.date(2024, 6, 30)
    >>> evaluate("logins < 5 and plan == 'pro'", {"logins": None, "plan": "free"}, as_of=day)
    False
    >>> print(evaluate("logins < 5 and plan == 'pro'", {"logins": None, "plan": "pro"}, as_of=day))
    None
    >>> evaluate("seats / licenses", {"seats": 3, "licenses": 0}, as_of=day) is None
    True
    >>> evaluate("round(x, 2)", {"x": 2.675}, as_of=day)
    2.68
    >>> evaluate("days_since(d)", {"d": dt.date(2024, 6, 1)}, as_of=day)
    29
    >>> evaluate("band(nps) == 'red'", {"nps": -20, ("band", "nps"): "red"}, as_of=day)
    True
    """
    checked = _checked(parsed)
    return _Kleene(checked, values, as_of=as_of, band=band, steps=None, types=types).run()


def trace(
    parsed: Parsed | str,
    values: Mapping[Any, object],
    *,
    as_of: dt.date,
    band: BandLookup | None = None,
    types: Mapping[str, Type] | None = None,
) -> list[Step]:
    """Evaluate an expression for one row and return the value of every sub-expression.

    Every operand is evaluated (``and``, ``or``, ``if`` and ``coalesce`` do not stop early, as
    in the vectorised engine), so the steps answer "why is this true, false or unknown". Steps
    come in evaluation order: operands before the expression that uses them, and the whole
    expression last. There is one step per sub-expression, plus one per pair of a chained
    comparison; function names and the indicator named in ``band(x)`` (a reference, not a
    value) have none.

    Parameters
    ----------
    parsed, values, as_of, band, types
        As for :func:`evaluate`.

    Returns
    -------
    list[Step]
        The last step is the whole expression; its value is what :func:`evaluate` returns.

    Raises
    ------
    healthrules.expressions.ExprProblem
        If ``parsed`` is not an allow-listed expression.
    simpleeval.NameNotDefined
        If a name the expression reads is missing from ``values``.

    Examples
    --------
    >>> import datetime as dt
    >>> for s in trace("0 < x <= 10 or y", {"x": 12, "y": None}, as_of=dt.date(2024, 1, 1)):
    ...     print("  " * s.depth + f"{s.text} = {s.value}")
        0 = 0
        x = 12
        0 < x = True
        10 = 10
        x <= 10 = False
      0 < x <= 10 = False
      y = None
    0 < x <= 10 or y = None
    """
    checked = _checked(parsed)
    steps: list[Step] = []
    _Kleene(checked, values, as_of=as_of, band=band, steps=steps, types=types).run()
    return steps


# --------------------------------------------------------------------------- checking


def _checked(parsed: Parsed | str) -> Parsed:
    if isinstance(parsed, str):
        return parse(parsed)
    if not isinstance(parsed, Parsed):
        raise TypeError(f"expected a Parsed expression or its text, got {type(parsed).__name__}")
    _verify(parsed)
    return parsed


@functools.lru_cache(maxsize=1024)
def _verify(parsed: Parsed) -> None:
    """Refuse a Parsed whose tree is not what the allow-listed parser makes of its source."""
    again = parse(parsed.source)
    if ast.dump(again.tree) != ast.dump(parsed.tree):
        raise ExprProblem("expr_disallowed", "the expression tree does not match its source text")


# --------------------------------------------------------------------------- values


def _read(value: object) -> object:
    """A value as read from ``values``: a float NaN is null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _truth(v: object) -> bool | None:
    """Read a value as true / false / unknown, as polars' cast to Boolean does."""
    if v is None or isinstance(v, bool):
        return v
    return bool(v)


def _comparable(a: object, b: object) -> tuple[Any, Any]:
    """Bring two non-null operands to the form in which they compare (see the module notes)."""
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return _instant(a), _instant(b)
    if isinstance(a, dt.datetime) and isinstance(b, dt.date):
        return a.replace(tzinfo=None), dt.datetime.combine(b, dt.time())
    if isinstance(a, dt.date) and isinstance(b, dt.datetime):
        return dt.datetime.combine(a, dt.time()), b.replace(tzinfo=None)
    if isinstance(a, float) and _is_number(b):
        return a, float(b)  # type: ignore[arg-type]
    if isinstance(b, float) and _is_number(a):
        return float(a), b  # type: ignore[arg-type]
    return a, b


def _instant(v: dt.datetime) -> dt.datetime:
    return v if v.tzinfo is None else v.astimezone(_UTC)


def _comparison(fn: Callable[[Any, Any], Any]) -> Callable[[object, object], bool | None]:
    def run(a: object, b: object) -> bool | None:
        if a is None or b is None:
            return None
        x, y = _comparable(a, b)
        return bool(fn(x, y))

    return run


def _arithmetic(fn: Callable[[Any, Any], Any]) -> Callable[[object, object], object]:
    def run(a: object, b: object) -> object:
        if a is None or b is None:
            return None
        return not_nan(fits_int(fn(a, b)))  # an int that leaves 64 bits is null

    return run


def _divide(a: object, b: object) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return not_nan(float(a) / float(b))  # type: ignore[arg-type]


def _power(base: object, exponent: object) -> object:
    if not isinstance(exponent, int) or isinstance(exponent, bool):
        raise FeatureNotAvailable("the exponent of ** must be a whole-number literal")
    if not 0 <= exponent <= MAX_POWER:
        raise FeatureNotAvailable(f"the exponent of ** must be from 0 to {MAX_POWER}")
    if base is None:
        return None
    b: Any = base
    if exponent == 0:
        return not_nan(b * 0 + 1)  # inf ** 0 is inf * 0 + 1: NaN, so null
    out = b
    for _ in range(exponent - 1):
        out = fits_int(out * b)  # each step fits 64 bits, or the result is null
        if out is None:
            return None
    return out


def _negate(v: object) -> object:
    if v is None:
        return None
    return fits_int(-v)  # type: ignore[operator]


def _plus(v: object) -> object:
    return v


def _not(v: object) -> bool | None:
    t = _truth(v)
    return None if t is None else not t


def _kleene_and(values: Sequence[object]) -> bool | None:
    truths = [_truth(v) for v in values]
    if any(t is False for t in truths):
        return False
    return None if any(t is None for t in truths) else True


def _kleene_or(values: Sequence[object]) -> bool | None:
    truths = [_truth(v) for v in values]
    if any(t is True for t in truths):
        return True
    return None if any(t is None for t in truths) else False


def _member(left: object, items: Sequence[object]) -> bool | None:
    if left is None:
        return None
    if all(_is_number(v) for v in items):
        # each item as `left == item` compares them: two ints exactly, an int and a float
        # as floats (2**53 is not in (2**53 + 1,), as it is not == 2**53 + 1)
        equal = _OPERATORS[ast.Eq]
        return any(equal(left, v) is True for v in items)
    return any(left == v for v in items)


_OPERATORS: dict[type[ast.AST], Callable[..., object]] = {
    ast.Add: _arithmetic(operator.add),
    ast.Sub: _arithmetic(operator.sub),
    ast.Mult: _arithmetic(operator.mul),
    ast.Div: _divide,
    ast.Pow: _power,
    ast.Eq: _comparison(operator.eq),
    ast.NotEq: _comparison(operator.ne),
    ast.Lt: _comparison(operator.lt),
    ast.LtE: _comparison(operator.le),
    ast.Gt: _comparison(operator.gt),
    ast.GtE: _comparison(operator.ge),
    ast.Not: _not,
    ast.USub: _negate,
    ast.UAdd: _plus,
}

_LOW_PRECEDENCE = (ast.BoolOp, ast.IfExp, ast.Compare)

_SYMBOLS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}


# --------------------------------------------------------------------------- the evaluator


class _Kleene(SimpleEval):  # type: ignore[misc]
    """simpleeval with three-valued handlers, restricted to the allow-listed node types."""

    def __init__(
        self,
        parsed: Parsed,
        values: Mapping[Any, object],
        *,
        as_of: dt.date,
        band: BandLookup | None,
        steps: list[Step] | None,
        types: Mapping[str, Type] | None = None,
    ) -> None:
        super().__init__(operators=dict(_OPERATORS), functions={}, names={})
        self.nodes = {
            ast.Name: self._eval_name,
            ast.Constant: self._eval_constant,
            ast.UnaryOp: self._eval_unaryop,
            ast.BinOp: self._eval_binop,
            ast.BoolOp: self._eval_boolop,
            ast.Compare: self._eval_compare,
            ast.IfExp: self._eval_ifexp,
            ast.Call: self._eval_call,
            ast.Tuple: self._eval_sequence,
            ast.List: self._eval_sequence,
        }
        self.parsed = parsed
        self.values = values
        self.as_of = as_of.date() if isinstance(as_of, dt.datetime) else as_of
        self.band = band
        self.steps = steps
        self.depth = -1
        self.types = types
        self.floats: set[int] = set()
        if types is not None:  # the sub-expressions polars computes as Float64
            self.floats = {node for node, t in node_types(
                parsed, types, banded=frozenset(types)).items() if t == "float"}

    def run(self) -> object:
        return self.eval(self.parsed.source, previously_parsed=self.parsed.tree)

    # every node goes through here: depth bookkeeping and the trace
    def _eval(self, node: ast.AST) -> object:
        self.depth += 1
        depth = self.depth
        try:
            value: object = super()._eval(node)
        finally:
            self.depth -= 1
        if (id(node) in self.floats and isinstance(value, int)
                and not isinstance(value, bool)):
            value = float(value)
        if self.steps is not None:
            self.steps.append(Step(self.parsed.segment(node), value, depth))
        return value

    def _record(self, text: str, value: object) -> None:
        if self.steps is not None:
            self.steps.append(Step(text, value, self.depth + 1))

    def _eval_name(self, node: ast.Name) -> object:
        if node.id not in self.values and node.id in TIME_NAMES:
            return None  # change over time is unknown without history (docs/time.md)
        if node.id not in self.values:
            raise NameNotDefined(node.id, self.parsed.source)
        return _read(self.values[node.id])

    @staticmethod
    def _eval_constant(node: ast.Constant) -> object:
        if not isinstance(node.value, (int, float, str, bool, type(None))):
            raise FeatureNotAvailable(f"literal {node.value!r} is not allowed")
        return node.value

    def _eval_sequence(self, node: ast.Tuple | ast.List) -> tuple[object, ...]:
        return tuple(self._eval(e) for e in node.elts)

    def _operator(self, op: ast.AST) -> Callable[..., object]:
        fn = self.operators.get(type(op))
        if fn is None:
            raise FeatureNotAvailable(f"the operator {type(op).__name__} is not allowed")
        return fn  # type: ignore[no-any-return]

    def _eval_unaryop(self, node: ast.UnaryOp) -> object:
        return self._operator(node.op)(self._eval(node.operand))

    def _eval_binop(self, node: ast.BinOp) -> object:
        fn = self._operator(node.op)
        return fn(self._eval(node.left), self._eval(node.right))

    def _eval_boolop(self, node: ast.BoolOp) -> bool | None:
        parts = [self._eval(v) for v in node.values]
        return _kleene_and(parts) if isinstance(node.op, ast.And) else _kleene_or(parts)

    def _eval_ifexp(self, node: ast.IfExp) -> object:
        test = _truth(self._eval(node.test))
        body = self._eval(node.body)
        orelse = self._eval(node.orelse)
        if test is None:
            return None
        return body if test else orelse

    def _pair_text(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> str:
        def side(n: ast.expr) -> str:
            text = self.parsed.segment(n)
            low = isinstance(n, _LOW_PRECEDENCE) or (
                isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not)
            )
            return f"({text})" if low else text

        return f"{side(left)} {_SYMBOLS.get(type(op), '?')} {side(right)}"

    def _eval_compare(self, node: ast.Compare) -> bool | None:
        chained = len(node.ops) > 1
        left_node: ast.expr = node.left
        left = self._eval(left_node)
        results: list[bool | None] = []
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self._eval(right_node)
            result: bool | None
            if isinstance(op, (ast.Is, ast.IsNot)):
                result = (left is None) == isinstance(op, ast.Is)
            elif isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right, tuple):
                    raise FeatureNotAvailable("`in` needs a literal list")
                result = _member(left, right)
                if isinstance(op, ast.NotIn):
                    result = _not(result)
            else:
                result = self._operator(op)(left, right)  # type: ignore[assignment]
            if chained:
                self._record(self._pair_text(left_node, op, right_node), result)
            results.append(result)
            if isinstance(op, (ast.In, ast.NotIn)):
                continue  # the next pair reads the same left operand (see the module notes)
            left_node, left = right_node, (None if isinstance(op, (ast.Is, ast.IsNot)) else right)
        return _kleene_and(results)

    # ---- what function forms read (healthrules.functions.ScalarCall)

    def arg(self, node: ast.expr) -> object:
        return self._eval(node)

    def band_of(self, indicator: str) -> object:
        if self.band is not None:
            return self.band(indicator)
        return self.values.get(("band", indicator))

    def lag(self, name: str, days: int) -> object:
        return _read(self.values.get(lag_column(name, days)))

    def stage_age(self) -> object:
        return self.values.get("days_in_stage")

    def as_of_date(self) -> dt.date:
        day: dt.date = self.as_of
        return day

    def _eval_call(self, node: ast.Call) -> object:
        func = node.func
        fn = FUNCTION_TABLE.get(func.id) if isinstance(func, ast.Name) else None
        if fn is None:
            raise FeatureNotAvailable("only the functions of healthrules.expressions can run")
        if node.keywords:
            raise FeatureNotAvailable("keyword arguments are not allowed")
        return fn.scalar(self, node)
