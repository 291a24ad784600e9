"""Probes: score weights at the edges of the doubles (docs/format.md, "Score").

Only the ratios of weights matter, but the score is a weighted mean of band scores (0 to
100) computed in doubles: weights whose total times 100 overflows made a score ``inf`` or
NaN (the reference's own check that a score is within 0..100 failed). A set of weights
(indicators or families) that adds up to more than 1e300 is refused at load time, located
at the weights; up to it, and with subnormal weights, the engine gives the reference's
score, within 0..100.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules.errors import RoadmapError, ValidationError
from healthrules.loader import load_text
from healthrules.roadmap import Roadmap
from reference import evaluate_reference
from test_engine_vs_reference import compare
from test_roadmap_models import at, pos, scored

AS_OF = dt.date(2026, 6, 30)
BANDS = {"levels": [{"name": "red", "lt": 2}, {"name": "green", "ge": 2}]}
EVENTS = pl.DataFrame({"account_id": ["x", "x", "y", "z", "z"], "user_id": ["u"] * 5,
                       "event": ["x", "x", "y", "y", "y"],
                       "timestamp": [dt.datetime(2026, 6, 29)] * 5})
ACCOUNTS = pl.DataFrame({"account_id": ["x", "y", "z", "w"]})


def _spec(weights: dict[str, Any], missing: str = "skip") -> dict[str, Any]:
    return {
        "id": "p", "goal": "g",
        "indicators": [
            {"id": "a", "family": "process", "aggregate": "count", "window": "7d",
             "bands": BANDS},
            {"id": "b", "family": "outcome", "aggregate": "count", "window": "30d",
             "bands": BANDS, "where": "event == 'y'"},
            {"id": "c", "family": "outcome", "expr": "a / (b - 1)", "bands": BANDS}],
        "stages": [{"id": "s"}], "score": {"missing": missing, "weights": weights}}


@pytest.mark.parametrize("weights", [
    {"indicators": {"a": 1e308, "b": 1e308, "c": 1}},
    {"indicators": {"a": 1e306, "b": 1e306, "c": 1}},
    {"indicators": {"a": 1.7e308}},
    {"families": {"process": 1e308, "outcome": 1e308}},
    {"families": {"process": 6e299, "outcome": 6e299}},
])
def test_weights_that_overflow_the_score_are_refused(weights: dict[str, Any]) -> None:
    with pytest.raises(Exception) as got:
        Roadmap.model_validate(_spec(weights))
    assert "weights_invalid" in str(got.value) and "1e300" in str(got.value)


def test_the_refusal_is_located_at_the_weights() -> None:
    text = scored("{indicators: {logins_30d: 1e300, x: 1e300}}")
    with pytest.raises((RoadmapError, ValidationError)) as got:
        load_text(text)
    issue, = got.value.issues
    assert issue.code == "weights_invalid" and "add up to 2e+300" in issue.message
    assert at(issue) == (*pos(text, "{logins_30d: 1e300"), "score.weights.indicators")


@pytest.mark.parametrize("weights", [
    {"indicators": {"a": 5e299, "b": 5e299, "c": 1}},
    {"indicators": {"a": 1e300, "b": 0, "c": 0}},
    {"indicators": {"a": 5e-324, "b": 5e-324, "c": 1}},
    {"indicators": {"a": 1e-320, "b": 0, "c": 5e-324}},
    {"indicators": {"a": 0.1, "b": 0.2, "c": 0.7}},
    {"families": {"process": 5e299, "outcome": 5e299}},
    {"families": {"process": 5e-324, "outcome": 1e-323}},
])
@pytest.mark.parametrize("missing", ["skip", "neutral", "worst"])
def test_weights_up_to_the_bound_match_the_reference(weights: dict[str, Any],
                                                     missing: str) -> None:
    roadmap = Roadmap.model_validate(_spec(weights, missing))
    got = hr.evaluate(roadmap, EVENTS, ACCOUNTS, AS_OF)
    ref = evaluate_reference(roadmap, EVENTS, ACCOUNTS, AS_OF)
    assert not compare(got, ref, roadmap)
    for score in got.scores["score"].to_list():
        assert score is None or (math.isfinite(score) and 0 <= score <= 100)
