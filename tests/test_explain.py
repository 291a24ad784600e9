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


def test_explaining_a_valid_plan_computes_no_did_you_mean(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the traces type every sub-expression (which are Float64 in the engine); on a valid plan
    # no problem is reported, so no did-you-mean may be computed (it was most of the cost of
    # an explanation: difflib over every name of the roadmap, for every function name node)
    from healthrules import expressions
    from healthrules.datasets import sample

    data = sample(30)
    roadmap = hr.load("rules/examples/b2b-saas/roadmap.yaml")
    result = hr.evaluate(roadmap, data.events, data.accounts, as_of=data.as_of)
    calls: list[str] = []

    def counting(name: str, *args: object, **kwargs: object) -> None:
        calls.append(name)
        return None

    monkeypatch.setattr(expressions, "did_you_mean", counting)
    for account in result.scores["account_id"].to_list()[:10]:
        why = result.explain(account)
        assert why.actions and why.stages
    assert calls == []
