"""explain(): score contributions add up, and the scalar traces agree with the engine."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings

import healthrules as hr
from test_partition_invariance import AS_OF, PLAN, frames


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=frames())
def test_explanations_agree_with_the_engine(data: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, accounts = data
    result = hr.evaluate(PLAN, events, accounts, AS_OF)
    fired = set(result.actions.select("account_id", "action_id").rows())
    for account in accounts["account_id"]:
        why = result.explain(account)
        for a in why.actions:
            assert a.fired == ((account, a.action_id) in fired), (account, a.action_id)
        if why.score is None:
            assert all(c.weight == 0 for c in why.contributions)
        else:
            assert sum(c.points for c in why.contributions) == pytest.approx(why.score)
            assert sum(c.weight for c in why.contributions) == pytest.approx(1.0)
        entered = [s.stage for s in why.stages if s.result is True]
        assert why.stage == (entered[0] if entered else "_unassigned")


def test_explanation_text_and_json() -> None:
    events = pl.DataFrame({"account_id": ["a0"], "user_id": ["u1"], "event": ["nps"],
                           "timestamp": [dt.datetime(2026, 6, 1)], "value": [3.0]})
    accounts = pl.DataFrame({"account_id": ["a0"], "start": [dt.date(2026, 1, 1)],
                             "seats": [4], "key_user": ["u1"]})
    why = hr.evaluate(PLAN, events, accounts, AS_OF).explain("a0")
    text = str(why)
    assert "stage live" in text and "why this score" in text and "happy [positive]" in text
    assert why.pulling_down[0].indicator in {"nps", "users_30d", "util"}
    assert why.to_dict()["as_of"] == "2026-06-30"
    with pytest.raises(KeyError):
        hr.evaluate(PLAN, events, accounts, AS_OF).explain("nobody")


def test_plan_is_picklable_and_evaluates_the_same() -> None:
    import pickle

    plan = pickle.loads(pickle.dumps(PLAN))
    events = pl.DataFrame({"account_id": ["a0"], "user_id": ["u1"], "event": ["login"],
                           "timestamp": [dt.datetime(2026, 6, 29)], "value": [None]},
                          schema_overrides={"value": pl.Float64})
    accounts = pl.DataFrame({"account_id": ["a0"], "start": [dt.date(2026, 6, 1)],
                             "seats": [1], "key_user": ["u1"]})
    a = hr.evaluate(plan, events, accounts, AS_OF)
    b = hr.evaluate(PLAN, events, accounts, AS_OF)
    assert a.indicators.equals(b.indicators) and a.actions.equals(b.actions)
