"""The value types of the expression language, shared by the parser and the registries."""

from __future__ import annotations

from typing import Literal, TypeVar

__all__ = ["INT_MAX", "INT_MIN", "NUMERIC", "TEMPORAL", "Type", "fits_int", "not_nan", "unify"]

Type = Literal["int", "float", "bool", "str", "date", "datetime", "null"]
"""The type of an expression's value (``null`` is the type of the literal ``None``)."""

NUMERIC: frozenset[str] = frozenset({"int", "float"})
TEMPORAL: frozenset[str] = frozenset({"date", "datetime"})

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
"""The range of an ``int`` value (polars' Int64). Integer ``+ - *``, ``**``, unary minus,
``abs`` and ``change`` whose exact result leaves it give null, in polars and in the scalar
evaluator alike (docs/expressions.md)."""


_V = TypeVar("_V")


def fits_int(value: object) -> object:
    """An int result as the language defines it: null (None) when it leaves 64 bits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if INT_MIN <= value <= INT_MAX else None
    return value


def not_nan(value: _V) -> _V | None:
    """A computed value as the language defines it: a float NaN (``inf - inf``, ``inf * 0``,
    ``inf / inf``) is null (None)."""
    return None if isinstance(value, float) and value != value else value


def unify(a: Type, b: Type) -> Type | None:
    """The one type two values can share (ints widen to float, null joins anything), or None."""
    if a == b:
        return a
    if a == "null":
        return b
    if b == "null":
        return a
    if a in NUMERIC and b in NUMERIC:
        return "float"
    return None
