"""Probes of the events pass's state: ``EventsPass.collect(rows=)`` holds for that call only.

A pass made without ``rows`` and collected once with ``rows=`` must not keep that size: a
second ``collect`` (with another size or none) picks its engine from its own argument.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from healthrules.engine import EventsPass
from healthrules.engine import aggregate as aggregate_module
from healthrules.engine.evaluator import prepare
from healthrules.inputs import accounts_at
from healthrules.roadmap import Roadmap

AS_OF = dt.date(2026, 6, 30)

ROADMAP = Roadmap.model_validate({
    "id": "p", "goal": "g",
    "data": {"events": {"values": {"amount": "float"}}},
    "indicators": [
        {"id": "logins", "family": "process", "aggregate": "count", "window": "30d"},
        {"id": "spend", "family": "outcome", "aggregate": "sum", "of": "amount",
         "window": "30d"},
    ],
    "stages": [{"id": "s"}],
})

EVENTS = pl.DataFrame({
    "account_id": ["a", "a", "b"],
    "user_id": ["u1", "u2", "v1"],
    "event": ["login", "login", "view"],
    "timestamp": [dt.datetime(2026, 6, d, 9) for d in (29, 3, 20)],
    "amount": [1.5, 0.1, 0.2],
})
ACCOUNTS = pl.DataFrame({"account_id": ["a", "b", "c"]})


def _pass(rows: int | None = None) -> tuple[EventsPass, pl.LazyFrame]:
    plan, clock, ev_lf, acc_df = prepare(ROADMAP, EVENTS, ACCOUNTS, AS_OF, None)
    acc_df = accounts_at(acc_df, clock, plan.account_key).frame
    return (EventsPass(plan, clock, acc_df, rows=rows),
            ev_lf[plan.default_source])


def _engines(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record the size each in-memory collect was planned for (None: streaming)."""
    seen: list[Any] = []
    real = aggregate_module.small_events_flags

    def spy(rows: int) -> pl.QueryOptFlags:
        seen.append(rows)
        return real(rows)

    monkeypatch.setattr(aggregate_module, "small_events_flags", spy)
    return seen


def test_collect_rows_does_not_stick(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _engines(monkeypatch)
    p, lf = _pass()
    first = p.collect(lf, rows=3)
    assert p.rows is None  # the pass keeps the size it was made with
    assert seen == [3]
    second = p.collect(lf)  # no size: not the first call's (the streaming engine)
    assert seen == [3]
    third = p.collect(lf, rows=2)
    assert seen == [3, 2]
    for other in (second, third):
        assert other[0].sort("account_id").equals(first[0].sort("account_id"))
        assert other[1] == first[1]


def test_collect_rows_overrides_for_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _engines(monkeypatch)
    p, lf = _pass(rows=3)
    p.collect(lf, rows=10**9)  # this call's size: streaming
    assert seen == [] and p.rows == 3
    p.collect(lf)  # the pass's own size again
    assert seen == [3]
