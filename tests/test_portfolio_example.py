"""The example pack rules/examples/portfolio-scorecard: it uses segments, a derived trend, a
percentile, goal attainment and roll-ups (of roll-ups too), its rule-pack tests cover it
fully, and it runs on ``sample(hierarchy=True)``, where every action fires and the engine
agrees with the reference evaluator and with history."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.analysis import analyze
from healthrules.datasets import PARENT_COLUMN, Sample, sample
from healthrules.history import history
from healthrules.inputs import hierarchy_issues
from healthrules.roadmap import AggregateIndicator, DerivedIndicator, Roadmap, RollupIndicator
from healthrules.testing import run
from reference import evaluate_reference
from test_engine_vs_reference import assert_matches_reference, compare

PACK = Path(__file__).resolve().parent.parent / "rules" / "examples" / "portfolio-scorecard"


def same_frames(got: hr.Evaluation, want: hr.Evaluation) -> None:
    """Equal frames, bit for bit, texts and evidence included: sums and means are exact
    (docs/semantics.md), so history's running sums give one evaluation's values."""
    for name, frame in want.frames.items():
        assert_frame_equal(got.frames[name], frame)


@pytest.fixture(scope="module")
def roadmap() -> Roadmap:
    loaded = hr.load(PACK / "roadmap.yaml")
    assert isinstance(loaded, Roadmap)
    return loaded


@pytest.fixture(scope="module")
def data() -> Sample:
    return sample(hierarchy=True)


def test_the_pack_uses_every_feature_of_issue_15(roadmap: Roadmap) -> None:
    a = analyze(roadmap)
    assert a.ok
    assert [s.id for s in roadmap.score.segments] == ["group", "enterprise", "smb"]
    trends = [i for i in roadmap.indicators
              if isinstance(i, DerivedIndicator) and i.compare != "none"]
    assert [t.id for t in trends] == ["hours_per_seat_change"]
    assert {i.aggregate for i in roadmap.indicators
            if isinstance(i, AggregateIndicator)} >= {"median", "percentile"}
    whens = [act.when for _s, act in roadmap.all_actions()]
    assert any("goal_reached" in w for w in whens)
    assert roadmap.goal.target is not None and roadmap.data.accounts.parent == PARENT_COLUMN
    rollups = [i.id for i in roadmap.indicators if isinstance(i, RollupIndicator)]
    assert max(a.rollup_levels[r] for r in rollups) == 2  # a roll-up of roll-ups
    anchored = [i for i in roadmap.indicators
                if isinstance(i, AggregateIndicator) and i.window.kind == "anchored"]
    assert [i.id for i in anchored] == ["survey_answer"]


def test_its_rule_pack_tests_pass_at_full_coverage() -> None:
    report = run([PACK], coverage=True)
    assert report.ok, report.render()
    assert report.coverage is not None
    assert report.coverage.percent() == 100.0, report.render()
    covered = {i.kind for i in report.coverage.items}
    assert {"stage", "action", "band", "boundary", "goal", "missing", "segment",
            "rollup"} <= covered


def test_every_indicator_is_checked_by_some_case(roadmap: Roadmap) -> None:
    spec = yaml.safe_load((PACK / "roadmap.test.yaml").read_text())
    named: set[str] = set()
    for case in spec["cases"]:
        for expected in case["expect"].values():
            named |= set(expected.get("indicators", {})) | set(expected.get("bands", {}))
    # the anchor is read through the window it starts, the trend's inputs through the trend
    read_through = {"last_survey", "session_minutes_30d"}
    assert {i.id for i in roadmap.indicators} - named == read_through


def test_the_sample_hierarchy_is_a_forest_with_three_levels(data: Sample) -> None:
    accounts = data.accounts
    assert hierarchy_issues(accounts, "account_id", PARENT_COLUMN) == []
    links = dict(accounts.select("account_id", PARENT_COLUMN).iter_rows())
    depth = {a: 0 for a in links}
    for a in links:
        p, d = links[a], 0
        while p is not None:
            p, d = links[p], d + 1
        depth[a] = d
    assert max(depth.values()) == 2
    # prospects have no parent; parents are customers
    prospects = accounts.filter(pl.col("lifecycle") == "prospect")
    assert prospects[PARENT_COLUMN].null_count() == prospects.height
    parents = set(accounts[PARENT_COLUMN].drop_nulls())
    lifecycle = dict(accounts.select("account_id", "lifecycle").iter_rows())
    assert {lifecycle[p] for p in parents} == {"customer"}


def test_every_action_fires_on_the_hierarchy_sample(roadmap: Roadmap, data: Sample) -> None:
    result = hr.evaluate(roadmap, data.events, data.accounts, data.as_of)
    fired = set(result.actions["action_id"])
    assert fired == {a.id for _s, a in roadmap.all_actions()}
    assert set(result.scores["segment"].drop_nulls()) == {"group", "enterprise", "smb"}
    assert set(result.scores["goal_reached"].drop_nulls()) == {True, False}
    # a holding's roll-up of roll-ups counts what its groups count
    ind = result.indicators
    kids = ind.join(data.accounts.select("account_id", PARENT_COLUMN), on="account_id")
    below = kids.group_by(PARENT_COLUMN).agg(pl.col("subsidiaries_at_risk").sum().alias("b"))
    check = ind.join(below, left_on="account_id", right_on=PARENT_COLUMN)
    assert (check["at_risk_below"] == check["b"]).all()
    assert check["at_risk_below"].max() >= 1  # some holding has companies at risk below


def test_the_engine_agrees_with_the_reference_on_the_hierarchy_sample(
        roadmap: Roadmap) -> None:
    small = sample(80, seed=3, hierarchy=True)
    result = hr.evaluate(roadmap, small.events, small.accounts, small.as_of)
    assert_matches_reference(result, roadmap, small.events, small.accounts, small.as_of)


def test_history_equals_evaluate_on_the_hierarchy_sample(roadmap: Roadmap) -> None:
    small = sample(60, seed=5, hierarchy=True)
    start = small.as_of - dt.timedelta(days=28)
    h = history(roadmap, small.events, small.accounts, start, small.as_of, every="14d")
    assert len(h.dates) == 3
    for d in h.dates:
        want = hr.evaluate(roadmap, small.events, small.accounts, d)
        same_frames(h.at(d), want)


def test_over_dated_accounts_history_follows_the_parent_of_each_date() -> None:
    """The pack with validity columns on ``sample(dated=True, hierarchy=True)``: each date
    reads the parent of the row valid then (a subsidiary has no group before the group
    became a customer), and history equals evaluate at every date."""
    from healthrules.loader import load_text

    text = (PACK / "roadmap.yaml").read_text().replace(
        "    parent: parent_id ",
        "    valid_from: valid_from\n    valid_to: valid_to\n    parent: parent_id ")
    dated_roadmap = load_text(text)
    assert dated_roadmap.data.accounts.validity == ("valid_from", "valid_to")
    small = sample(80, seed=5, dated=True, hierarchy=True)
    start = small.as_of - dt.timedelta(days=120)
    h = history(dated_roadmap, small.events, small.accounts, start, small.as_of, every="30d")
    kids = []
    for d in h.dates:
        want = hr.evaluate(dated_roadmap, small.events, small.accounts, d)
        same_frames(h.at(d), want)
        kids.append(int(want.indicators["subsidiaries"].sum()))
    assert kids[0] < kids[-1]  # groups gained subsidiaries as they became customers
    ref = evaluate_reference(dated_roadmap, small.events, small.accounts, h.dates[0])
    assert not compare(hr.evaluate(dated_roadmap, small.events, small.accounts, h.dates[0]),
                       ref, dated_roadmap)
