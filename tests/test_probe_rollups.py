"""Probes: roll-ups over children's values at the edge of the grid (docs/semantics.md,
"Floating point"). A child's value of 2**63 or more in absolute value cannot be put on the
grid, and its parent's ``sum`` / ``mean`` / ``weighted_mean`` of floats is null: on both
sides, ``-2**63`` included (the engine's Int64 limbs could hold ``-2**63`` but not ``2**63``,
so it once summed the one and not the other, where the reference nulls both).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules.history import history
from healthrules.roadmap import Roadmap
from reference import evaluate_reference

AS_OF = dt.date(2026, 6, 30)
EVENTS = pl.DataFrame({"account_id": ["c0"], "user_id": ["u"], "event": ["x"],
                       "timestamp": [dt.datetime(2026, 6, 29)]})


def _roadmap(agg: str, typ: str) -> Roadmap:
    rollup: dict[str, Any] = {"id": "u", "kind": "rollup", "aggregate": agg,
                              "family": "process", "of": "seats"}
    if agg == "weighted_mean":
        rollup["weight"] = "w"
    return Roadmap.model_validate({
        "id": "p", "goal": "g",
        "data": {"accounts": {"attributes": {"seats": typ, "w": "float"},
                              "parent": "parent_id"}},
        "indicators": [{"id": "n", "family": "process", "aggregate": "count", "window": "7d"},
                       rollup],
        "stages": [{"id": "s"}]})


def _accounts(values: list[float], typ: str) -> pl.DataFrame:
    k = len(values)
    return pl.DataFrame({
        "account_id": ["p"] + [f"c{i}" for i in range(k)], "parent_id": [None] + ["p"] * k,
        "seats": pl.Series([None, *values], dtype=pl.Int64 if typ == "int" else pl.Float64),
        "w": [1.0] * (k + 1)})


@pytest.mark.parametrize("values", [[-(2**63)], [-(2**63), 5], [-(2**63) + 1, -1],
                                    [2**63 - 1], [-(2**63), 2**63 - 1], [2**62, 2**62],
                                    [-(2**62), 3]])
@pytest.mark.parametrize("typ", ["int", "float"])
@pytest.mark.parametrize("agg", ["sum", "mean", "weighted_mean", "min", "max"])
def test_rollups_at_the_edge_of_the_grid_match_the_reference(values: list[float], typ: str,
                                                              agg: str) -> None:
    roadmap, accounts = _roadmap(agg, typ), _accounts(values, typ)
    got = hr.evaluate(roadmap, EVENTS, accounts, AS_OF)
    engine = {r["account_id"]: r["u"] for r in got.indicators.to_dicts()}["p"]
    want = evaluate_reference(roadmap, EVENTS, accounts, AS_OF).accounts["p"].indicators["u"]
    assert engine == want and type(engine) is type(want), (engine, want)
    # history's roll-ups are the same program over (account, date) rows
    at = history(roadmap, EVENTS, accounts, AS_OF, AS_OF).at(AS_OF)
    past = {r["account_id"]: r["u"] for r in at.indicators.to_dicts()}["p"]
    assert past == want and type(past) is type(want), (past, want)


def test_minus_two_to_the_63_is_off_the_grid_as_two_to_the_63_is() -> None:
    for value in (-(2.0**63), 2.0**63):
        got = hr.evaluate(_roadmap("mean", "float"), EVENTS, _accounts([value, 1], "float"),
                          AS_OF)
        assert {r["account_id"]: r["u"] for r in got.indicators.to_dicts()}["p"] is None
