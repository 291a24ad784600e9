"""Probes: an int read in a float expression is a float (docs/expressions.md, "Integers":
``coalesce(i, f)``, ``max(i, f)`` and ``i if c else f`` are floats), also when the float
operand is null. The engine and ``explain`` (which pass the names' types to the row-by-row
evaluator) read ``coalesce(seats, r)`` for 2**53 + 1 seats and a null ``r`` as
9007199254740992.0; the reference evaluated it without the types and kept the int, so a
condition ``> 9007199254740992`` held there and not in the engine.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import healthrules as hr
from healthrules.explain import explain
from healthrules.roadmap import Roadmap
from reference import evaluate_reference
from test_engine_vs_reference import compare

B = 2**53
AS_OF = dt.date(2026, 6, 30)


@pytest.mark.parametrize("expr", ["coalesce(seats, r)", "max(seats, r)", "min(seats, r)",
                                  "(seats if vip else r)", "coalesce(r, seats)"])
@pytest.mark.parametrize("cmp", ["> 9007199254740992", "== 9007199254740993",
                                 ">= 9223372036854775807", "< 9007199254740993"])
def test_an_int_in_a_float_expression_is_a_float(expr: str, cmp: str) -> None:
    when = f"{expr} {cmp}"
    roadmap = Roadmap.model_validate({
        "id": "p", "goal": "g",
        "data": {"accounts": {"attributes": {"seats": "int", "r": "float", "vip": "bool"}}},
        "indicators": [{"id": "n", "family": "process", "aggregate": "count", "window": "7d"},
                       {"id": "d", "family": "process", "expr": expr}],
        "stages": [{"id": "s", "entry": when,
                    "actions": [{"id": "a", "kind": "positive", "when": when, "do": "{d}",
                                 "owner": "csm"}]},
                   {"id": "t"}]})
    events = pl.DataFrame({"account_id": ["a"], "user_id": ["u"], "event": ["x"],
                           "timestamp": [dt.datetime(2026, 6, 29)]})
    accounts = pl.DataFrame({"account_id": ["a", "b", "c", "d"],
                             "seats": [B + 1, 2**63 - 1, B + 1, B - 1],
                             "r": [None, None, 0.5, None], "vip": [True, True, True, None]})
    got = hr.evaluate(roadmap, events, accounts, AS_OF)
    assert not compare(got, evaluate_reference(roadmap, events, accounts, AS_OF), roadmap)
    fired = set(got.actions["account_id"].to_list())
    for account in "abcd":
        why = explain(got, account)
        assert any(t.fired for t in why.actions) == (account in fired), account
