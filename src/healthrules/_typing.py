"""The value types of the expression language, shared by the parser and the registries."""

from __future__ import annotations

from typing import Literal

__all__ = ["NUMERIC", "TEMPORAL", "Type", "unify"]

Type = Literal["int", "float", "bool", "str", "date", "datetime", "null"]
"""The type of an expression's value (``null`` is the type of the literal ``None``)."""

NUMERIC: frozenset[str] = frozenset({"int", "float"})
TEMPORAL: frozenset[str] = frozenset({"date", "datetime"})


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
