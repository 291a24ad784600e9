"""Probes: ``x in (...)`` of numbers compares each item as ``x == item`` does
(docs/expressions.md, "Integers"): an int and an int literal exactly, an int and a float as
floats. Beyond 2**53 an int is not its nearest float: ``2**53 in (2**53 + 1,)`` was true in
the engine, ``explain`` and the reference (all read the items as floats) while
``2**53 == 2**53 + 1`` is false.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules.expressions import parse
from healthrules.polars_expr import to_polars
from healthrules.scalar import evaluate as scalar_evaluate

B = 2**53
VALUES = [B - 1, B, B + 1, B + 2, 2**63 - 1, -(2**63), 0, None]
AS_OF = dt.date(2026, 6, 30)


def _both(source: str, typ: str, values: list[Any]) -> tuple[list[Any], list[Any]]:
    parsed = parse(source)
    frame = pl.DataFrame({"x": pl.Series(values, dtype=pl.Int64 if typ == "int"
                                         else pl.Float64)})
    expr = to_polars(parsed, column=pl.col, band=pl.col, as_of=AS_OF, types={"x": typ})
    vectorised = frame.select(expr.alias("r"))["r"].to_list()
    scalar = [scalar_evaluate(parsed, {"x": v}, as_of=AS_OF) for v in values]
    return vectorised, scalar


@pytest.mark.parametrize("items", [f"({B + 1},)", f"({B + 1}, 1)", f"({B - 1}, {B + 2})",
                                   f"({B + 1}, 2.5)", f"({float(B)}, {B + 1})",
                                   "(9223372036854775807, -9223372036854775807)",
                                   "(9.223372036854776e18,)", "(0.0, 1)"])
@pytest.mark.parametrize("negated", [False, True])
def test_membership_is_an_or_of_equalities(items: str, negated: bool) -> None:
    op = "not in" if negated else "in"
    elements = [e.strip() for e in items.strip("()").split(",") if e.strip()]
    ors = " or ".join(f"x == {e}" for e in elements)
    want_source = f"not ({ors})" if negated else ors
    for typ in ("int", "float"):
        values = VALUES if typ == "int" else [None if v is None else float(v) for v in VALUES]
        got_v, got_s = _both(f"x {op} {items}", typ, values)
        want_v, want_s = _both(want_source, typ, values)
        assert got_v == want_v == got_s == want_s, (typ, got_v, want_v, got_s, want_s)


def test_an_action_on_a_large_int_attribute() -> None:
    roadmap = hr.Roadmap.model_validate({
        "id": "p", "goal": "g",
        "data": {"accounts": {"attributes": {"seats": "int"}}},
        "indicators": [{"id": "n", "family": "process", "aggregate": "count",
                        "window": "7d"}],
        "stages": [{"id": "s", "actions": [{
            "id": "a", "kind": "positive", "when": f"seats in ({B + 1},)", "do": "x",
            "owner": "csm"}]}]})
    events = pl.DataFrame({"account_id": ["a"], "user_id": ["u"], "event": ["x"],
                           "timestamp": [dt.datetime(2026, 6, 29)]})
    accounts = pl.DataFrame({"account_id": ["a", "b"], "seats": [B + 1, B]})
    got = hr.evaluate(roadmap, events, accounts, AS_OF)
    assert got.actions["account_id"].to_list() == ["a"]
    from healthrules.explain import explain
    assert [t.fired for t in explain(got, "b").actions] == [False]
