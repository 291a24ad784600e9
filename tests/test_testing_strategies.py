"""Hypothesis strategies on the example packs: the fuzzing recipes of docs/testing.md."""

from __future__ import annotations

import datetime as dt
import importlib
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import healthrules as hr
from healthrules.roadmap import AggregateIndicator, Pack, Roadmap
from healthrules.testing.strategies import (
    accounts_for,
    contract_facts,
    events_for,
    inputs_for,
    roadmaps,
)
from test_engine_vs_reference import assert_matches_reference

EXAMPLES = Path(__file__).resolve().parent.parent / "rules" / "examples"
AS_OF = dt.date(2026, 6, 30)
PACKS = {
    "b2b-saas": EXAMPLES / "b2b-saas" / "roadmap.yaml",
    "goal-tracks": EXAMPLES / "goal-tracks" / "pack.yaml",
    "trial-conversion": EXAMPLES / "trial-conversion" / "roadmap.yaml",
    "subscription-upsell": EXAMPLES / "subscription-upsell" / "roadmap.yaml",
}
FAST = settings(max_examples=6, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEWER = settings(FAST, max_examples=4)
_loaded: dict[str, Roadmap | Pack] = {}


def load(name: str) -> Roadmap | Pack:
    if name not in _loaded:
        _loaded[name] = hr.load(PACKS[name])
    return _loaded[name]


def roadmaps_of(source: Roadmap | Pack) -> list[Roadmap]:
    return list(source.loaded) if isinstance(source, Pack) else [source]


def sort(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    return frame.sort([c for c in (key, "roadmap", "action_id") if c in frame.columns],
                      nulls_last=True)


def test_missing_hypothesis_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    monkeypatch.setitem(sys.modules, "hypothesis.strategies", None)
    monkeypatch.delitem(sys.modules, "healthrules.testing.strategies")
    with pytest.raises(ImportError, match=r"pip install 'healthrules\[testing\]'"):
        importlib.import_module("healthrules.testing.strategies")


def test_contract_facts_read_the_pack() -> None:
    facts = contract_facts(load("goal-tracks"))
    assert "login" in facts.event_names and "roi_goal_reached" in facts.event_names
    assert facts.strings("goal") == ["do_it_for_us", "self_sufficient"]
    assert facts.timezone == "UTC" and facts.attributes["seats"] == "int"
    assert 28 in facts.windows and 56 in facts.windows  # 4w, and its previous window


@pytest.mark.parametrize("name", sorted(PACKS))
@FAST
@given(data=st.data())
def test_no_input_makes_evaluation_fail(name: str, data: st.DataObject) -> None:
    pack = load(name)
    accounts, events = data.draw(inputs_for(pack, as_of=AS_OF))
    result = hr.evaluate(pack, events, accounts, AS_OF)
    assert result.stages.height == accounts.height
    scores = result.scores["score"].drop_nulls()
    assert scores.is_between(0, 100).all()
    stages = {s.id for r in roadmaps_of(pack) for s in r.stages} | {"_unassigned"}
    assert set(result.stages["stage"].to_list()) <= stages


@FEWER
@given(data=st.data())
def test_partition_invariance(data: st.DataObject) -> None:
    pack = load("goal-tracks")
    accounts, events = data.draw(inputs_for(pack, as_of=AS_OF, max_accounts=6))
    key = "account_id"
    left_ids = set(data.draw(st.lists(st.sampled_from(accounts[key].to_list()), unique=True)))
    whole = hr.evaluate(pack, events, accounts, AS_OF)
    parts = [hr.evaluate(pack, events, accounts.filter(pl.col(key).is_in(ids)), AS_OF)
             for ids in (sorted(left_ids), sorted(set(accounts[key]) - left_ids)) if ids]
    for name in ("indicators", "stages", "scores", "actions"):
        joined = pl.concat([getattr(p, name) for p in parts], how="diagonal_relaxed")
        expected = sort(getattr(whole, name), key)
        assert sort(joined.select(expected.columns), key).equals(expected), name


@FEWER
@given(data=st.data())
def test_adding_a_login_never_lowers_a_usage_indicator(data: st.DataObject) -> None:
    pack = load("b2b-saas")
    accounts, events = data.draw(inputs_for(pack, as_of=AS_OF, max_accounts=3))
    who = data.draw(st.sampled_from(accounts["account_id"].to_list()))
    user = data.draw(st.sampled_from(["u0", "u1", "u2"]))
    login = pl.DataFrame({
        "account_id": [who], "user_id": [user], "event": ["login"],
        "timestamp": [dt.datetime(2026, 6, 30, 9)], "value": [None]},
        schema=events.schema)
    before = hr.evaluate(pack, events, accounts, AS_OF).indicators
    after = hr.evaluate(pack, pl.concat([events, login]), accounts, AS_OF).indicators
    usage = [i.id for r in roadmaps_of(pack) for i in r.indicators
             if isinstance(i, AggregateIndicator) and i.compare == "none"
             and i.aggregate in ("count", "distinct", "active_days")]
    assert usage
    b = before.filter(pl.col("account_id") == who).row(0, named=True)
    a = after.filter(pl.col("account_id") == who).row(0, named=True)
    for name in usage:
        if b[name] is not None:
            assert a[name] >= b[name], name


@settings(max_examples=12, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(roadmap=roadmaps(), data=st.data())
def test_generated_roadmaps_compile_and_evaluate(roadmap: Roadmap, data: st.DataObject) -> None:
    plan = hr.compile(roadmap)
    accounts, events = data.draw(inputs_for(roadmap, as_of=AS_OF, max_events=30))
    result = hr.evaluate(plan, events, accounts, AS_OF)
    assert result.stages.height == accounts.height
    assert result.scores["score"].drop_nulls().is_between(0, 100).all()


@settings(max_examples=10, deadline=None, database=None)
@given(data=st.data())
def test_frames_fit_the_data_contract(data: st.DataObject) -> None:
    pack = load("subscription-upsell")
    accounts = data.draw(accounts_for(pack, as_of=AS_OF, min_size=2, max_size=4))
    assert 2 <= accounts.height <= 4 and accounts["account_id"].is_unique().all()
    assert accounts.schema["contract_start"] == pl.Date
    assert accounts.schema["seats"] == pl.Int64
    events = data.draw(events_for(pack, as_of=AS_OF, accounts=["x"], max_events=10))
    assert events.height <= 10
    assert events.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert set(events["account_id"].to_list()) <= {"x"}
    assert set(events["event"].to_list()) <= set(contract_facts(pack).event_names) | {
        "unrelated_event"}


def test_the_recipes_of_the_docs_run() -> None:
    """The hypothesis recipes of docs/testing.md, with fewer examples."""
    text = (EXAMPLES.parent.parent / "docs" / "testing.md").read_text(encoding="utf-8")
    block = next(b.split("```", 1)[0] for b in text.split("```python\n")[1:]
                 if "test_partition_invariance" in b)
    block = block.replace("max_examples=25", "max_examples=2").replace(
        '"rules/b2b-saas/roadmap.yaml"', repr(str(PACKS["b2b-saas"])))
    namespace: dict[str, object] = {}
    # a name no file has: hypothesis reads the source of a test by its file name and line
    exec(compile(block, "<docs/testing.md recipes>", "exec"), namespace)
    tests = [v for k, v in namespace.items() if k.startswith("test_") and callable(v)]
    assert len(tests) == 3
    for test in tests:
        test()


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(roadmap=roadmaps(), data=st.data())
def test_generated_hierarchies_and_segments_match_the_reference(
        roadmap: Roadmap, data: st.DataObject) -> None:
    accounts, events = data.draw(inputs_for(roadmap, as_of=AS_OF, max_events=30))
    if roadmap.data.accounts.parent is not None:
        assert accounts["parent_id"].dtype == pl.String
    result = hr.evaluate(roadmap, events, accounts, AS_OF)
    assert_matches_reference(result, roadmap, events, accounts, AS_OF)
