"""Score segments, windows anchored at an event-time indicator, and roll-ups over account
hierarchies: values, load-time errors, input-data errors, history and explain."""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.analysis import analyze
from healthrules.engine import read_range
from healthrules.errors import InputDataError, RoadmapError
from healthrules.explain import explain
from healthrules.history import history
from healthrules.loader import load_text
from healthrules.roadmap import Roadmap
from healthrules.testing.strategies import accounts_for
from reference import evaluate_reference
from test_engine_vs_reference import ZONES, assert_matches_reference, compare, data, roadmaps

AS_OF = dt.date(2026, 6, 30)
BANDS = {"levels": [{"name": "red", "lt": 2}, {"name": "amber", "ge": 2, "lt": 5},
                    {"name": "green", "ge": 5}]}


def spec(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "portfolio", "goal": "g",
        "data": {"events": {"user": None, "values": {"amount": "float"}},
                 "accounts": {"attributes": {"tier": "str", "arr": "float"},
                              "parent": "parent_id"}},
        "indicators": [
            {"id": "first_purchase", "family": "outcome", "aggregate": "first_time",
             "where": "event == 'purchase'"},
            {"id": "first_day_spend", "family": "outcome", "aggregate": "sum", "of": "amount",
             "where": "event == 'purchase'", "window": {"from": "first_purchase", "days": 1}},
            {"id": "logins", "family": "process", "aggregate": "count",
             "where": "event == 'login'", "window": "30d", "bands": BANDS},
            {"id": "kids_logins", "kind": "rollup", "family": "process", "aggregate": "sum",
             "of": "logins"},
            {"id": "kids_at_risk", "kind": "rollup", "family": "process", "aggregate": "count",
             "of": "band(logins) == 'red'"},
            {"id": "kids_share_at_risk", "kind": "rollup", "family": "process",
             "aggregate": "share", "of": "band(logins) == 'red'"},
            {"id": "kids_worst", "kind": "rollup", "family": "process",
             "aggregate": "worst_band", "of": "logins"},
            {"id": "kids_usage", "kind": "rollup", "family": "process",
             "aggregate": "weighted_mean", "of": "logins", "weight": "arr", "bands": BANDS},
            {"id": "kids_mean", "kind": "rollup", "family": "process", "aggregate": "mean",
             "of": "logins"},
            {"id": "kids_min", "kind": "rollup", "family": "process", "aggregate": "min",
             "of": "logins"},
            {"id": "kids_max", "kind": "rollup", "family": "process", "aggregate": "max",
             "of": "arr"},
            {"id": "group_logins", "family": "process", "expr": "kids_logins + logins"},
        ],
        "stages": [{"id": "onboarding",
                    "entry": "first_purchase is None and kids_logins == 0"},
                   {"id": "operation", "actions": [
                       {"id": "subsidiaries_at_risk", "kind": "challenge",
                        "when": "kids_at_risk >= 2",
                        "do": "{kids_at_risk} subsidiaries at risk ({segment})"}]}],
        "score": {
            "bands": {"levels": [{"name": "low", "lt": 50}, {"name": "high", "ge": 50}]},
            "stages": {"onboarding": {"weights": {"indicators": {"logins": 1}}}},
            "segments": [
                {"id": "group", "applies_to": "kids_logins > 0 or tier == 'group'",
                 "weights": {"indicators": {"kids_usage": 3, "logins": 1}},
                 "bands": {"levels": [{"name": "watch", "lt": 80}, {"name": "fine", "ge": 80}]}},
                {"id": "smb", "applies_to": "tier == 'smb'",
                 "stages": {"operation": {"weights": {"indicators": {"logins": 2}}}}},
            ],
        },
    }
    base.update(over)
    return base


def frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    def ev(acc: str, event: str, day: int, hour: int = 9,
           amount: float | None = None) -> dict[str, Any]:
        return {"account_id": acc, "event": event, "amount": amount,
                "timestamp": dt.datetime(2026, 6, day, hour)}

    events = pl.DataFrame([
        ev("c1", "purchase", 1, 9, 10.0), ev("c1", "purchase", 1, 20, 5.0),
        ev("c1", "purchase", 2, 10, 99.0), ev("c1", "login", 20),
        ev("c2", "purchase", 25, 0, 7.0), *[ev("c2", "login", d) for d in range(10, 17)],
        ev("c3", "login", 12),
    ], schema={"account_id": pl.String, "event": pl.String, "amount": pl.Float64,
               "timestamp": pl.Datetime("us")})
    accounts = pl.DataFrame({
        "account_id": ["holding", "c1", "c2", "c3", "solo"],
        "parent_id": [None, "holding", "holding", "holding", None],
        "tier": ["group", "smb", "smb", None, "smb"],
        "arr": [None, 100.0, 300.0, 50.0, 10.0],
    })
    return events, accounts


def run(s: dict[str, Any]) -> tuple[hr.Evaluation, Roadmap]:
    roadmap = Roadmap.model_validate(s)
    events, accounts = frames()
    result = hr.evaluate(roadmap, events, accounts, AS_OF)
    ref = evaluate_reference(roadmap, events, accounts, AS_OF)
    assert not compare(result, ref, roadmap)
    return result, roadmap


def row(frame: pl.DataFrame, account: str) -> dict[str, Any]:
    return frame.filter(pl.col("account_id") == account).row(0, named=True)


# --------------------------------------------------------------------------- anchors


def test_a_window_can_start_at_the_first_purchase() -> None:
    result, _ = run(spec())
    c1 = row(result.indicators, "c1")
    assert c1["first_purchase"] == dt.datetime(2026, 6, 1, 9)
    assert c1["first_day_spend"] == 15.0  # 09:00 and 20:00, not the next day's 10:00
    assert row(result.indicators, "c2")["first_day_spend"] == 7.0
    assert row(result.indicators, "c3")["first_day_spend"] is None  # no purchase: unknown


def test_anchor_chains_and_read_range() -> None:
    s = spec()
    s["indicators"] = [
        *s["indicators"][:2],
        {"id": "second_login", "family": "process", "aggregate": "first_time",
         "where": "event == 'login'", "window": {"from": "first_purchase"}},
        {"id": "logins_after", "family": "process", "aggregate": "count",
         "window": {"from": "second_login", "days": 2}},
    ]
    s["score"] = {}
    s["stages"] = [{"id": "only"}]
    result, roadmap = run(s)
    assert row(result.indicators, "c1")["second_login"] == dt.datetime(2026, 6, 20, 9)
    assert row(result.indicators, "c1")["logins_after"] == 1
    events, accounts = frames()
    # the widest window is the first purchase's own: all history
    assert read_range(roadmap, events, accounts, AS_OF)[0] is None
    s["indicators"][0]["window"] = "30d"
    start, end = read_range(Roadmap.model_validate(s), events, accounts, AS_OF)
    assert (start, end) == (dt.datetime(2026, 6, 1), dt.datetime(2026, 7, 1))


def test_anchor_errors_name_the_cycle_and_the_type() -> None:
    s = spec()
    s["indicators"] = [
        {"id": "a", "family": "process", "aggregate": "first_time", "window": {"from": "b"}},
        {"id": "b", "family": "process", "aggregate": "last_time", "window": {"from": "a"}},
        {"id": "n", "family": "process", "aggregate": "count", "window": {"from": "c"}},
        {"id": "c", "family": "process", "aggregate": "count"},
        {"id": "d", "family": "process", "expr": "c * 2"},
        {"id": "e", "family": "process", "aggregate": "count", "window": {"from": "d"}},
        {"id": "f", "family": "process", "aggregate": "count", "window": {"from": "firts"}},
    ]
    s["stages"], s["score"] = [{"id": "only"}], {}
    issues = analyze(Roadmap.model_validate(s)).issues
    text = "\n".join(f"{i.location.path}: {i.message} {i.hint or ''}" for i in issues)
    assert "windows start at each other in a cycle: a -> b -> a" in text
    assert "indicators[2].window.from: a window starts at a time; indicator 'c' is int" in text
    assert "'d' is a derived indicator" in text
    assert "unknown account attribute or time indicator 'firts'" in text


# --------------------------------------------------------------------------- roll-ups


def test_rollups_aggregate_the_children() -> None:
    result, _ = run(spec())
    h = row(result.indicators, "holding")
    # logins: c1 1 (red), c2 7 (green), c3 1 (red)
    assert (h["kids_logins"], h["kids_at_risk"], h["kids_worst"]) == (9, 2, "red")
    assert h["kids_share_at_risk"] == pytest.approx(2 / 3)
    assert h["kids_usage"] == pytest.approx((1 * 100 + 7 * 300 + 1 * 50) / 450)
    assert h["kids_mean"] == pytest.approx(3.0)
    assert (h["kids_min"], h["kids_max"]) == (1, 300.0)
    assert h["group_logins"] == 9
    solo = row(result.indicators, "solo")  # no children
    assert (solo["kids_logins"], solo["kids_at_risk"]) == (0, 0)
    assert solo["kids_share_at_risk"] is None and solo["kids_worst"] is None
    assert solo["kids_usage"] is None and solo["kids_mean"] is None
    fired = result.actions.select("account_id", "text").rows()
    assert fired == [("holding", "2 subsidiaries at risk (group)")]


def three_levels(s: dict[str, Any]) -> dict[str, Any]:
    """``spec()`` with roll-ups of roll-ups: a group's subsidiaries' subsidiaries."""
    s["indicators"] = [*s["indicators"],
        # level 2: the children's level-1 roll-ups (a grandparent sees its grandchildren)
        {"id": "tree_logins", "kind": "rollup", "family": "process", "aggregate": "sum",
         "of": "group_logins"},
        {"id": "kids_groups_at_risk", "kind": "rollup", "family": "process",
         "aggregate": "count", "of": "kids_at_risk >= 1", "bands": BANDS},
        # a derived indicator of level 2, and a level-3 roll-up reading it and a level-2 band
        {"id": "whole_tree", "family": "process", "expr": "tree_logins + logins"},
        {"id": "worst_groups", "kind": "rollup", "family": "process",
         "aggregate": "worst_band", "of": "kids_groups_at_risk"},
        {"id": "max_tree", "kind": "rollup", "family": "process", "aggregate": "max",
         "of": "whole_tree"}]
    return s


def three_level_frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    events, _ = frames()
    accounts = pl.DataFrame({  # top -> (holding, solo); holding -> c1, c2, c3; c1 -> g1
        "account_id": ["top", "holding", "c1", "c2", "c3", "solo", "g1"],
        "parent_id": [None, "top", "holding", "holding", "holding", "top", "c1"],
        "tier": ["group", "group", "smb", "smb", None, "smb", "smb"],
        "arr": [None, None, 100.0, 300.0, 50.0, 10.0, 5.0]})
    more = pl.DataFrame([{"account_id": "g1", "event": "login", "amount": None,
                          "timestamp": dt.datetime(2026, 6, d)} for d in (3, 4, 5)],
                        schema=events.schema)
    return pl.concat([events, more]), accounts


def test_rollups_of_rollups_read_the_childrens_rollups() -> None:
    roadmap = Roadmap.model_validate(three_levels(spec()))
    a = analyze(roadmap)
    assert a.ok, a.issues
    assert [a.rollup_levels[i] for i in ("kids_logins", "group_logins", "tree_logins",
                                          "whole_tree", "worst_groups", "max_tree")] == [
        1, 1, 2, 2, 3, 3]
    events, accounts = three_level_frames()
    result = hr.evaluate(roadmap, events, accounts, AS_OF)
    ref = evaluate_reference(roadmap, events, accounts, AS_OF)
    assert not compare(result, ref, roadmap)
    got = {r["account_id"]: r for r in result.indicators.to_dicts()}
    # logins: c1 1, c2 7, c3 1, g1 3, solo 0; group_logins = kids_logins + logins
    assert [got[k]["group_logins"] for k in ("c1", "holding", "top")] == [4, 9, 0]
    # tree_logins: the children's group_logins (c1's includes its child g1)
    assert got["holding"]["tree_logins"] == 4 + 7 + 1
    assert got["c1"]["tree_logins"] == 3 and got["g1"]["tree_logins"] == 0
    assert got["top"]["tree_logins"] == 9 + 0
    assert got["top"]["kids_groups_at_risk"] == 1  # holding has red subsidiaries
    assert got["top"]["kids_groups_at_risk__band"] == "red"
    assert got["top"]["worst_groups"] == "red"  # holding: 1 child with red kids (c1)
    # whole_tree: holding 12 + 0, solo 0 + 0: top's max over them
    assert got["top"]["max_tree"] == 12 and got["top"]["whole_tree"] == 9
    assert got["holding"]["max_tree"] == max(got[c]["whole_tree"] for c in ("c1", "c2", "c3"))


def _non_finite_children(arr: dict[str, float]) -> dict[str, Any]:
    """The holding's roll-ups over children whose ``arr`` attribute is set as given (a
    float attribute may hold inf: only NaN reads as null in expressions)."""
    s = spec()
    s["indicators"] += [
        {"id": "arr2", "family": "process", "expr": "arr * 2"},
        {"id": "k_sum", "kind": "rollup", "family": "process", "aggregate": "sum", "of": "arr"},
        {"id": "k_mean", "kind": "rollup", "family": "process", "aggregate": "mean",
         "of": "arr"},
        {"id": "k_min", "kind": "rollup", "family": "process", "aggregate": "min", "of": "arr"},
        {"id": "k_nan_sum", "kind": "rollup", "family": "process", "aggregate": "sum",
         "of": "arr2 - arr2"},
        {"id": "k_nan_min", "kind": "rollup", "family": "process", "aggregate": "min",
         "of": "arr2 - arr2"},
        {"id": "k_nan_max", "kind": "rollup", "family": "process", "aggregate": "max",
         "of": "arr2 - arr2"},
    ]
    roadmap = Roadmap.model_validate(s)
    events, accounts = frames()
    accounts = accounts.with_columns(
        pl.col("account_id").replace_strict(arr, default=pl.col("arr"), return_dtype=pl.Float64)
        .alias("arr"))
    result = hr.evaluate(roadmap, events, accounts, AS_OF)
    ref = evaluate_reference(roadmap, events, accounts, AS_OF)
    assert not compare(result, ref, roadmap)
    return row(result.indicators, "holding")


def test_gap_a_rollup_over_an_infinite_child_value() -> None:
    # docs/semantics.md, "Floating point": a child's value that is not finite makes the
    # parent's sum, mean and weighted_mean null; min and max read inf as a value. The
    # reference used to read inf as null (as in an event value column) and gave 150.0
    h = _non_finite_children({"c2": float("inf")})
    assert h["k_sum"] is None and h["k_mean"] is None and h["kids_usage"] is None
    assert h["kids_max"] == math.inf and h["k_min"] == 50.0
    # arr2 - arr2 is inf - inf for c2: a NaN computed is null ("Expressions"), so c2 has no
    # value there and the sum is that of the others, 0.0 (it was null while NaN was a value)
    assert h["k_nan_sum"] == 0.0
    assert (h["k_nan_min"], h["k_nan_max"]) == (0.0, 0.0)
    assert _non_finite_children({"c3": -math.inf})["k_min"] == -math.inf


def test_gap_a_min_or_max_rollup_over_nan_children_only_is_null() -> None:
    # the engine gave NaN (polars' min of NaN values), the reference null: inf - inf is null
    # for every child ("Expressions"), so min and max have no value ("smallest / largest
    # non-null value") and the sum is that of no value, 0.0
    h = _non_finite_children({c: float("inf") for c in ("c1", "c2", "c3")})
    assert h["k_nan_min"] is None and h["k_nan_max"] is None
    assert h["k_nan_sum"] == 0.0 and h["kids_max"] == math.inf


def test_rollups_of_rollups_in_history_equal_evaluate() -> None:
    roadmap = Roadmap.model_validate(three_levels(spec()))
    events, accounts = three_level_frames()
    h = history(roadmap, events, accounts, dt.date(2026, 6, 5), AS_OF, every="5d")
    for d in h.dates:
        want = hr.evaluate(roadmap, events, accounts, d)
        assert not compare(want, evaluate_reference(roadmap, events, accounts, d), roadmap)
        for name, frame in want.frames.items():
            assert_frame_equal(h.at(d).frames[name], frame)


def test_explain_shows_a_grandparents_rollup_of_rollups() -> None:
    roadmap = Roadmap.model_validate(three_levels(spec()))
    events, accounts = three_level_frames()
    result = hr.evaluate(roadmap, events, accounts, AS_OF)
    e = explain(result, "top")
    assert e.children == ["holding", "solo"]
    assert e.values["tree_logins"] == 9 and e.values["max_tree"] == 12
    assert "children (2, read by its roll-ups): holding, solo" in str(e)


def test_rollup_errors() -> None:
    s = spec()
    s["indicators"] = [
        {"id": "n", "family": "process", "aggregate": "count", "bands": BANDS},
        {"id": "u", "kind": "rollup", "family": "process", "aggregate": "sum", "of": "n"},
        {"id": "v", "kind": "rollup", "family": "process", "aggregate": "sum", "of": "v + n"},
        {"id": "w", "family": "process", "expr": "u + 1"},
        {"id": "x", "kind": "rollup", "family": "process", "aggregate": "max", "of": "w"},
        {"id": "y", "kind": "rollup", "family": "process", "aggregate": "count", "of": "n"},
        {"id": "z", "kind": "rollup", "family": "process", "aggregate": "worst_band",
         "of": "tier"},
    ]
    s["stages"], s["score"] = [{"id": "only"}], {}
    issues = analyze(Roadmap.model_validate(s)).issues
    text = "\n".join(f"{i.location.path}: {i.message}" for i in issues)
    # a roll-up of roll-ups is fine (x reads w, which reads u); one that reads itself is a cycle
    assert "indicators[2].of: indicators depend on each other in a cycle: v -> v" in text
    assert "'x'" not in text
    assert "indicators[5].of: count counts the children where `of` is true" in text
    assert "indicators[6].of: worst_band reads a banded indicator; 'tier' has no bands" in text
    no_parent = spec()
    no_parent["data"]["accounts"].pop("parent")
    issues = analyze(Roadmap.model_validate(no_parent)).issues
    assert any("needs a hierarchy: name the parent key column in data.accounts.parent"
               in i.message for i in issues)
    with pytest.raises(RoadmapError, match="weighted_mean needs `weight:`"):
        load_text("""
id: r
goal: g
data: {accounts: {parent: p}}
indicators:
  - {id: u, kind: rollup, family: process, aggregate: weighted_mean, of: "1"}
stages: [{id: s}]
""")


def test_missing_parents_and_cycles_are_input_errors_naming_the_accounts() -> None:
    roadmap = Roadmap.model_validate(spec())
    events, accounts = frames()
    bad = accounts.with_columns(
        pl.when(pl.col("account_id") == "c2").then(pl.lit("ghost"))
        .otherwise(pl.col("parent_id")).alias("parent_id"))
    with pytest.raises(InputDataError, match=r"'c2' \(parent 'ghost'\)"):
        hr.evaluate(roadmap, events, bad, AS_OF)
    loop = accounts.with_columns(
        pl.when(pl.col("account_id") == "holding").then(pl.lit("c3"))
        .otherwise(pl.col("parent_id")).alias("parent_id"))
    with pytest.raises(InputDataError, match=r"form a cycle.*'c3', 'holding'"):
        hr.evaluate(roadmap, events, loop, AS_OF)
    with pytest.raises(InputDataError, match="no parent key column 'parent_id'"):
        hr.evaluate(roadmap, events, accounts.drop("parent_id"), AS_OF)


def test_parents_are_read_in_the_key_dtype() -> None:
    s = spec()
    s["indicators"] = [
        {"id": "n", "family": "process", "aggregate": "count"},
        {"id": "kids", "kind": "rollup", "family": "process", "aggregate": "sum", "of": "n"}]
    s["stages"], s["score"] = [{"id": "only"}], {}
    events = pl.DataFrame({"account_id": [2, 2, 3], "event": ["x"] * 3, "amount": [None] * 3,
                           "timestamp": [dt.datetime(2026, 6, 1)] * 3},
                          schema_overrides={"amount": pl.Float64})
    accounts = pl.DataFrame({"account_id": [1, 2, 3], "parent_id": [None, 1, 1],
                             "tier": ["a"] * 3, "arr": [1.0] * 3},
                            schema_overrides={"parent_id": pl.Int32})
    result = hr.evaluate(Roadmap.model_validate(s), events, accounts, AS_OF)
    assert result.indicators.sort("account_id")["kids"].to_list() == [3, 0, 0]


# --------------------------------------------------------------------------- segments


def test_segments_choose_weights_and_bands_in_the_documented_order() -> None:
    result, roadmap = run(spec())
    scores = {r["account_id"]: r for r in result.scores.to_dicts()}
    stages = {r["account_id"]: r["stage"] for r in result.stages.to_dicts()}
    assert scores["holding"]["segment"] == "group"
    assert scores["c1"]["segment"] == "smb" and scores["c3"]["segment"] is None
    # group: its own weights (kids_usage 3: 5.0 is green = 100, logins 1: red = 0), its
    # own bands
    assert stages["holding"] == "operation"
    assert scores["holding"]["score"] == pytest.approx(75.0)
    assert scores["holding"]["score_band"] == "watch"
    # smb in operation: the segment's stage weights (logins only)
    assert stages["c2"] == "operation" and scores["c2"]["score"] == 100.0
    assert scores["c2"]["score_band"] == "high"
    score = roadmap.score
    assert score.weights_for("smb", "onboarding") == score.stages["onboarding"].weights
    assert score.weights_for("group", "onboarding") == score.segments[0].weights
    assert score.weights_for(None, "operation") == score.weights


def test_segment_errors() -> None:
    s = spec()
    s["score"]["segments"][1]["stages"] = {"operatoin": {"weights": {"indicators": {"logins": 1}}}}
    s["score"]["segments"][0]["applies_to"] = "tier == 'group' and kids_logins"
    s["indicators"].append({"id": "segment", "family": "process", "expr": "1"})
    issues = analyze(Roadmap.model_validate(s)).issues
    text = "\n".join(f"{i.location.path}: {i.message}" for i in issues)
    assert "score.segments[1].stages.operatoin: unknown stage 'operatoin'" in text
    assert "score.segments[0].applies_to:" in text
    assert "indicator id 'segment' is a reserved name" in text
    s = spec()
    s["score"]["segments"].append(dict(s["score"]["segments"][0]))
    with pytest.raises(ValueError, match="segment ids must be unique; repeated: group"):
        Roadmap.model_validate(s)


def test_without_segments_the_scores_frame_is_unchanged_and_segment_is_a_plain_name() -> None:
    s = spec()
    del s["score"]["segments"]
    s["data"]["accounts"]["attributes"]["segment"] = "str"
    s["stages"][1]["actions"][0]["do"] = "{kids_at_risk} at risk ({segment})"
    roadmap = Roadmap.model_validate(s)
    events, accounts = frames()
    result = hr.evaluate(roadmap, events, accounts.with_columns(segment=pl.lit("x")), AS_OF)
    assert "segment" not in result.scores.columns
    assert result.actions["text"].to_list() == ["2 at risk (x)"]


def test_explain_uses_the_segment_weights() -> None:
    result, _ = run(spec())
    why = explain(result, "holding")
    assert why.segment == "group"
    weights = {c.indicator: c.weight for c in why.contributions}
    assert weights == {"kids_usage": 0.75, "logins": 0.25}  # effective: 3 to 1
    assert "segment group" in str(why)
    assert "group: applies_to kids_logins > 0 or tier == 'group' -> holds" in str(why)
    assert why.children == ["c1", "c2", "c3"]
    assert "children (3, read by its roll-ups): c1, c2, c3" in str(why)
    assert explain(result, "c1").children == []


# --------------------------------------------------------------------------- history


@pytest.mark.parametrize("seed", range(3))
def test_history_equals_evaluate_at_every_date(seed: int, monkeypatch: Any) -> None:
    if seed == 2:  # chunks smaller than one date's accounts: a chunk still holds whole dates
        import healthrules.history.snapshots as snapshots

        monkeypatch.setattr(snapshots, "MAX_GRID_ROWS", 5)
    rng = random.Random(seed)
    roadmap = Roadmap.model_validate(spec())
    ids = [f"a{k}" for k in range(12)]
    parents = [None if k < 3 or rng.random() < 0.2 else ids[rng.randrange(k)]
               for k in range(len(ids))]
    accounts = pl.DataFrame({
        "account_id": ids, "parent_id": parents,
        "tier": [rng.choice(["group", "smb", None]) for _ in ids],
        "arr": [rng.choice([None, 10.0, 250.0]) for _ in ids]})
    events = pl.DataFrame([
        {"account_id": rng.choice(ids), "event": rng.choice(["login", "purchase"]),
         "amount": rng.choice([None, 5.0, 12.5]),
         "timestamp": dt.datetime(2026, 5, 1) + dt.timedelta(hours=rng.randrange(24 * 60))}
        for _ in range(300)], schema={"account_id": pl.String, "event": pl.String,
                                      "amount": pl.Float64, "timestamp": pl.Datetime("us")})
    h = history(roadmap, events, accounts, dt.date(2026, 5, 10), AS_OF, every="10d")
    assert h.diagnostics["history_fallback_indicators"] == 1  # first_day_spend
    for d in h.dates:
        want = hr.evaluate(roadmap, events, accounts, d)
        got = h.at(d)
        for name, frame in want.frames.items():
            assert_frame_equal(got.frames[name], frame, check_exact=True)


# --------------------------------------------------------------------------- around the engine


def test_a_missing_parent_column_points_at_its_declaration(tmp_path: Any) -> None:
    path = tmp_path / "portfolio.yaml"
    path.write_text(yaml.safe_dump(spec()), encoding="utf-8")
    roadmap = hr.load(path)
    events, accounts = frames()
    with pytest.raises(InputDataError) as info:
        hr.evaluate(roadmap, events, accounts.drop("parent_id"), AS_OF)
    (issue,) = info.value.errors()
    assert issue.related is not None and issue.related.path == "data.accounts.parent"
    assert issue.related.line is not None


def test_segment_band_names_are_known_to_actions_lint_and_test_files(tmp_path: Any) -> None:
    from healthrules.lint import lint_text

    s = spec()
    s["stages"][1]["actions"].append({
        "id": "watch", "kind": "challenge", "when": "score_band == 'watch'",
        "do": "{score_band}", "owner": "csm", "channel": "low-touch"})
    s["score"]["segments"][0]["bands"]["levels"][0]["name"] = "watch"
    roadmap = Roadmap.model_validate(s)
    assert analyze(roadmap).ok
    import yaml

    findings = lint_text(yaml.safe_dump(s))
    assert not [f for f in findings if f.code == "HR603"], findings
    misspelt = dict(s)
    misspelt["stages"] = [s["stages"][0], {**s["stages"][1], "actions": [
        {**s["stages"][1]["actions"][-1], "when": "score_band == 'wacth'"}]}]
    issues = analyze(Roadmap.model_validate(misspelt)).issues
    assert any("the score has no band 'wacth'" in i.message and "watch" in (i.hint or "")
               for i in issues)


def test_coverage_counts_segments_and_rollups() -> None:
    from healthrules.testing.coverage import CoverageTracker

    result, _ = run(spec())
    tracker = CoverageTracker()
    tracker.observe(result)
    report = tracker.report()
    got = {(i.kind, i.name): i.covered for i in report.items if i.kind in ("segment", "rollup")}
    assert got[("segment", "group")] and got[("segment", "smb")]
    assert got[("rollup", "kids_at_risk")] and got[("rollup", "kids_worst")]
    assert ("band", "score[group]=fine") in {(i.kind, i.name) for i in report.items}
    assert "segments" in report.render() and "rollups" in report.render()


def test_a_test_file_parent_must_be_an_account_of_the_case(tmp_path: Any) -> None:
    import yaml

    from healthrules.testing import run as run_tests

    (tmp_path / "roadmap.yaml").write_text(yaml.safe_dump(spec()), encoding="utf-8")
    (tmp_path / "roadmap.test.yaml").write_text("""
kind: test
roadmap: roadmap.yaml
as_of: 2026-06-30
cases:
  - name: a parent that is not listed
    accounts:
      holding: {tier: group}
      c1: {parent_id: holdign}
    expect:
      holding: {segment: group}
  - name: a parent and its child
    accounts:
      holding: {tier: group}
      c1: {parent_id: holding, tier: smb}
    events:
      c1: [login at -1d]
    expect:
      holding: {indicators: {kids_logins: 1, kids_at_risk: 1}, segment: group}
      c1: {segment: smb}
""", encoding="utf-8")
    report = run_tests([tmp_path])
    text = report.render()
    assert report.passed == 1 and not report.ok, text
    assert "parent 'holdign' of 'c1' is not an account of this case" in text
    assert "did you mean 'holding'" in text.lower() or "holding" in text


def test_hierarchy_check_deep_chains_and_cycles_behind_them() -> None:
    from healthrules.inputs import hierarchy_issues

    chain = pl.DataFrame({"k": [f"c{i}" for i in range(300)],
                          "p": [None, *[f"c{i}" for i in range(299)]]})
    assert hierarchy_issues(chain, "k", "p") == []  # deeper than the walk down: doubling
    looped = chain.with_columns(
        pl.when(pl.col("k") == "c0").then(pl.lit("c3")).otherwise(pl.col("p")).alias("p"))
    (issue,) = hierarchy_issues(looped, "k", "p")
    assert "the parents of 4 account(s) form a cycle" in issue.message
    assert "'c0', 'c1', 'c2', 'c3'" in issue.message
    selfish = pl.DataFrame({"k": ["a", "b"], "p": ["a", None]})
    assert "'a'" in hierarchy_issues(selfish, "k", "p")[0].message


def test_the_report_colours_segment_bands_and_shows_rollups() -> None:
    from healthrules.report import report_html
    from healthrules.report._page import _score_palette

    result, _ = run(spec())
    palette = _score_palette(result.plan)
    assert {"low", "high", "watch", "fine"} <= set(palette)
    page = report_html(result)
    assert "watch" in page and "holding" in page


def test_accounts_from_duckdb_keep_the_parent_column(tmp_path: Any) -> None:
    import duckdb

    from healthrules.sources import DuckDBSource

    roadmap = Roadmap.model_validate(spec())
    events, accounts = frames()
    path = str(tmp_path / "warehouse.duckdb")
    with duckdb.connect(path) as con:
        con.register("acc", accounts.to_arrow())
        con.execute("CREATE TABLE accounts AS SELECT * FROM acc")
    got = hr.evaluate(roadmap, events, DuckDBSource(path, table="accounts"), AS_OF)
    want = hr.evaluate(roadmap, events, accounts, AS_OF)
    assert_frame_equal(got.indicators, want.indicators)
    assert row(got.indicators, "holding")["kids_at_risk"] == 2


# --------------------------------------------------------------------------- with main's features


def two_sources_spec() -> dict[str, Any]:
    """Logins in the default source, orders in a named one; the first day's spend is
    anchored at the first order, both read the orders."""
    return {
        "id": "shop", "goal": "g",
        "data": {"events": {
            "logins": {"user": None},
            "orders": {"user": None, "event": None, "timestamp": "ordered_at",
                       "values": {"amount": "float"}}},
            "accounts": {"attributes": {"tier": "str"}}},
        "indicators": [
            {"id": "logins_30d", "family": "process", "aggregate": "count", "window": "30d"},
            {"id": "first_order", "family": "outcome", "source": "orders",
             "aggregate": "first_time"},
            {"id": "first_day_spend", "family": "outcome", "source": "orders",
             "aggregate": "sum", "of": "amount", "where": "amount > 1",
             "window": {"from": "first_order", "days": 1}}],
        "stages": [{"id": "s", "actions": [{"id": "big", "kind": "positive",
                                            "when": "first_day_spend > 10",
                                            "do": "{first_day_spend}"}]}],
        "score": {}}


def two_sources_frames() -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    logins = pl.DataFrame({
        "account_id": ["a", "a", "b", "c"], "event": ["login"] * 4,
        "timestamp": [dt.datetime(2026, 6, d) for d in (1, 28, 5, 29)]})
    orders = pl.DataFrame({
        "account_id": ["a", "a", "a", "b", "b"],
        "amount": [10.0, 5.0, 99.0, 0.5, 3.0],
        "ordered_at": [dt.datetime(2026, 6, 1, 9), dt.datetime(2026, 6, 1, 20),
                       dt.datetime(2026, 6, 2, 10), dt.datetime(2026, 6, 10),
                       dt.datetime(2026, 6, 10, 12)]})
    accounts = pl.DataFrame({"account_id": ["a", "b", "c"], "tier": ["smb", "smb", None]})
    return {"logins": logins, "orders": orders}, accounts


def test_an_anchored_window_reads_a_named_source() -> None:
    roadmap = Roadmap.model_validate(two_sources_spec())
    events, accounts = two_sources_frames()
    result = hr.evaluate(roadmap, events, accounts, AS_OF)
    ref = evaluate_reference(roadmap, events, accounts, AS_OF)
    assert not compare(result, ref, roadmap)
    got = {r["account_id"]: r for r in result.indicators.to_dicts()}
    assert got["a"]["first_order"] == dt.datetime(2026, 6, 1, 9)
    assert got["a"]["first_day_spend"] == 15.0  # not the next day's 99
    assert got["b"]["first_day_spend"] == 3.0  # the 0.5 order starts the day, the filter drops it
    assert got["c"]["first_day_spend"] is None  # no order: no anchor
    assert got["c"]["logins_30d"] == 1
    h = history(roadmap, events, accounts, dt.date(2026, 6, 1), AS_OF, every="3d")
    assert h.diagnostics["history_fallback_indicators"] == 1  # first_day_spend
    for d in h.dates:
        want = hr.evaluate(roadmap, events, accounts, d)
        for name, frame in want.frames.items():
            assert_frame_equal(h.at(d).frames[name], frame, check_exact=True)


def test_an_anchor_of_another_source_is_refused_at_load_time() -> None:
    s = two_sources_spec()
    s["indicators"][1].pop("source")  # the first order... of the logins source
    issues = analyze(Roadmap.model_validate(s)).issues
    text = "\n".join(f"{i.location.path}: {i.message}" for i in issues)
    assert ("indicators[2].window.from: a window starts at indicator 'first_order' of event "
            "source 'logins', but this indicator reads source 'orders'") in text


def dated_spec() -> dict[str, Any]:
    s = spec()
    s["data"]["accounts"].update(valid_from="valid_from", valid_to="valid_to")
    return s


def dated_accounts(rows: list[tuple[str, str | None, str, str | None]]) -> pl.DataFrame:
    """(account, parent, valid_from, valid_to) rows, with the spec's attributes."""
    return pl.DataFrame({
        "account_id": [r[0] for r in rows], "parent_id": [r[1] for r in rows],
        "tier": ["smb"] * len(rows), "arr": [100.0] * len(rows),
        "valid_from": [dt.date.fromisoformat(r[2]) for r in rows],
        "valid_to": [None if r[3] is None else dt.date.fromisoformat(r[3]) for r in rows]})


REPARENTED = [("holding", None, "2026-01-01", None), ("other", None, "2026-01-01", None),
              ("c1", "holding", "2026-01-01", None), ("c3", "holding", "2026-01-01", None),
              # c2 moves from holding to other on 2026-06-15
              ("c2", "holding", "2026-01-01", "2026-06-15"),
              ("c2", "other", "2026-06-15", None), ("solo", None, "2026-01-01", None)]


def test_a_reparented_account_rolls_up_into_its_new_parent_from_the_change() -> None:
    roadmap = load_text(yaml.safe_dump(dated_spec()))  # loads: no refusal
    events, _ = frames()
    accounts = dated_accounts(REPARENTED)
    before = hr.evaluate(roadmap, events, accounts, dt.date(2026, 6, 14))
    after = hr.evaluate(roadmap, events, accounts, AS_OF)
    # c2's logins (10..16 June) count for holding before the change (5 by the 14th, and
    # c3's on the 12th), for other after it (all 7); c1's on the 20th is later
    assert row(before.indicators, "holding")["kids_logins"] == 5 + 1
    assert row(before.indicators, "other")["kids_logins"] == 0
    assert row(after.indicators, "holding")["kids_logins"] == 2
    assert row(after.indicators, "other")["kids_logins"] == 7
    for day in (dt.date(2026, 6, 14), dt.date(2026, 6, 15), AS_OF):
        got = hr.evaluate(roadmap, events, accounts, day)
        assert not compare(got, evaluate_reference(roadmap, events, accounts, day), roadmap)
    h = history(roadmap, events, accounts, dt.date(2026, 6, 10), AS_OF, every="1d")
    for d in h.dates:
        want = hr.evaluate(roadmap, events, accounts, d)
        for name, frame in want.frames.items():
            assert_frame_equal(h.at(d).frames[name], frame)
    assert explain(after, "other").children == ["c2"]
    assert explain(before, "other").children == []


def test_history_of_a_dated_hierarchy_keeps_whole_dates_in_a_chunk(monkeypatch: Any) -> None:
    import healthrules.history.snapshots as snapshots

    monkeypatch.setattr(snapshots, "MAX_GRID_ROWS", 4)  # fewer than one date's accounts
    roadmap = Roadmap.model_validate(dated_spec())
    events, _ = frames()
    rows = [*REPARENTED, ("late", "other", "2026-06-20", None)]  # one more account later on
    accounts = dated_accounts(rows)
    h = history(roadmap, events, accounts, dt.date(2026, 6, 12), AS_OF, every="3d")
    for d in h.dates:
        want = hr.evaluate(roadmap, events, accounts, d)
        for name, frame in want.frames.items():
            assert_frame_equal(h.at(d).frames[name], frame)


def test_a_dated_parent_must_exist_whenever_a_child_names_it() -> None:
    roadmap = Roadmap.model_validate(dated_spec())
    events, _ = frames()
    # other starts on 2026-06-20, but c2 names it from 2026-06-15
    rows = [r if r[0] != "other" else ("other", None, "2026-06-20", None) for r in REPARENTED]
    accounts = dated_accounts(rows)
    assert hr.evaluate(roadmap, events, accounts, AS_OF).stages.height == 6
    with pytest.raises(InputDataError) as info:
        hr.evaluate(roadmap, events, accounts, dt.date(2026, 6, 16))
    assert ("1 account(s) name a parent that is not an account at that date: 'c2' (parent "
            "'other' at 2026-06-16)") in str(info.value)
    (issue,) = info.value.errors()  # pointing at the roadmap's parent declaration too
    assert issue.related is not None and issue.related.path == "data.accounts.parent"
    with pytest.raises(InputDataError, match=r"'c2' \(parent 'other' at 2026-06-15\)") as info:
        history(roadmap, events, accounts, dt.date(2026, 6, 12), AS_OF, every="3d")
    (issue,) = info.value.errors()
    assert issue.related is not None and issue.related.path == "data.accounts.parent"


def test_a_cycle_at_one_date_of_a_dated_hierarchy_names_the_date() -> None:
    roadmap = Roadmap.model_validate(dated_spec())
    events, _ = frames()
    # from 2026-06-20 holding's parent is c1, whose parent is holding
    rows = [r for r in REPARENTED if r[0] != "holding"] + [
        ("holding", None, "2026-01-01", "2026-06-20"), ("holding", "c1", "2026-06-20", None)]
    accounts = dated_accounts(rows)
    hr.evaluate(roadmap, events, accounts, dt.date(2026, 6, 19))
    with pytest.raises(InputDataError) as info:
        hr.evaluate(roadmap, events, accounts, AS_OF)
    assert ("the parents of 2 account(s) form a cycle (an account is its own ancestor): "
            "'c1' at 2026-06-30, 'holding' at 2026-06-30") in str(info.value)
    with pytest.raises(InputDataError, match="'c1' at 2026-06-20, 'holding' at 2026-06-20"):
        history(roadmap, events, accounts, dt.date(2026, 6, 14), AS_OF, every="3d")


@st.composite
def dated_hierarchy_cases(draw: Any) -> tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any]:
    """A generated roadmap with roll-ups (of roll-ups too) over dated accounts whose parent
    changes from version to version (each version's parent is an account listed earlier)."""
    zone = draw(st.sampled_from(ZONES))
    s = draw(roadmaps(zone))
    validity = draw(st.sampled_from([{"valid_from": "valid_from", "valid_to": "valid_to"},
                                     {"snapshot": "snapshot_date"}]))
    s["data"]["accounts"].update(validity)
    roadmap = Roadmap.model_validate(s)
    assume(analyze(roadmap).ok and roadmap.data.accounts.parent is not None)
    events, _ = draw(data(zone))
    ids = ["c0", "c1", "c2", "c3", "c4"]
    accounts = draw(accounts_for(roadmap, as_of=AS_OF, ids=ids))
    parents = [None if ids.index(k) == 0 or draw(st.booleans())
               else ids[draw(st.integers(0, ids.index(k) - 1))]
               for k in accounts["account_id"]]
    accounts = accounts.with_columns(pl.Series("parent_id", parents, dtype=pl.String))
    as_of: Any = AS_OF
    if draw(st.booleans()):
        as_of = dt.datetime(2026, 6, 30, draw(st.integers(0, 23)), 30)
    return roadmap, events, accounts, as_of


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dated_hierarchy_cases())
def test_engine_matches_reference_on_dated_hierarchies(
        case: tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any]) -> None:
    roadmap, events, accounts, as_of = case
    try:
        result = hr.evaluate(roadmap, events, accounts, as_of)
    except InputDataError as e:  # a version names a parent that does not exist then
        assert {i.code for i in e.issues} == {"unknown_parent"}, e
        assume(False)
        raise
    assert_matches_reference(result, roadmap, events, accounts, as_of)
