"""Data that was quietly changed is counted, and bad inputs are errors (issue #11, item 3).

Null event names and non-finite float values are counted in ``Evaluation.diagnostics``;
``inf`` is read as null like NaN (engine, history, reference); inputs the engine cannot
compare or compute with give an :class:`healthrules.InputDataError` naming the column.
"""

from __future__ import annotations

import datetime as dt
import math

import polars as pl

import healthrules as hr
from healthrules.roadmap import Roadmap
from reference import evaluate_reference

AS_OF = dt.date(2026, 6, 30)


def _roadmap() -> Roadmap:
    return Roadmap.model_validate({
        "id": "q", "goal": "g",
        "data": {"events": {"user": None, "values": {"amount": "float"}}},
        "indicators": [
            {"id": "n", "family": "process", "aggregate": "count"},
            {"id": "logins", "family": "process", "aggregate": "count",
             "where": "event == 'login'"},
            {"id": "total", "family": "outcome", "aggregate": "sum", "of": "amount"},
            {"id": "avg", "family": "outcome", "aggregate": "mean", "of": "amount"},
            {"id": "top", "family": "outcome", "aggregate": "max", "of": "amount",
             "bands": {"levels": [{"name": "low", "lt": 10}, {"name": "high", "ge": 10}]}},
            {"id": "big", "family": "outcome", "aggregate": "count", "where": "amount > 5"},
        ],
        "stages": [{"id": "s"}],
    })


def _events() -> pl.DataFrame:
    return pl.DataFrame({
        "account_id": ["a", "a", "a", "a", "b"],
        "event": ["login", None, "login", "buy", "login"],
        "timestamp": [dt.datetime(2026, 6, d, 9) for d in (26, 27, 28, 29, 29)],
        "amount": [1.0, math.inf, -math.inf, math.nan, 3.0],
    })


ACCOUNTS = pl.DataFrame({"account_id": ["a", "b"]})


def test_null_event_names_and_non_finite_values_are_counted() -> None:
    result = hr.evaluate(_roadmap(), _events(), ACCOUNTS, AS_OF)
    assert result.diagnostics["events_null_event"] == 1
    assert result.diagnostics["values_not_finite"] == 3
    a = result.indicators.filter(pl.col("account_id") == "a").row(0, named=True)
    # inf and -inf are null like NaN: never summed, banded or scored
    assert (a["n"], a["logins"], a["total"], a["avg"], a["top"], a["big"]) == (
        4, 2, 1.0, 1.0, 1.0, 0)
    assert a["top__band"] == "low"
    ref = evaluate_reference(_roadmap(), _events(), ACCOUNTS, AS_OF).accounts["a"].indicators
    assert {k: ref[k] for k in ("n", "logins", "total", "avg", "top", "big")} == {
        "n": 4, "logins": 2, "total": 1.0, "avg": 1.0, "top": 1.0, "big": 0}


def test_history_reads_non_finite_values_as_evaluate_does() -> None:
    h = hr.history(_roadmap(), _events(), ACCOUNTS, "2026-06-29", "2026-06-30", every="1d")
    one = hr.evaluate(_roadmap(), _events(), ACCOUNTS, AS_OF)
    cols = ["account_id", "n", "logins", "total", "avg", "top", "big"]
    got = h.indicators.filter(pl.col("as_of") == AS_OF).select(cols).sort("account_id")
    assert got.rows() == one.indicators.select(cols).rows()
    assert h.diagnostics["events_null_event"] == 1
    assert h.diagnostics["values_not_finite"] == 3
