"""``compile`` builds what does not depend on the data, so that the first ``evaluate`` of a
process (a daily job compiles, then evaluates once) builds only what depends on the date
and the frames; the forms of the roadmap frames for many rows share the score steps with
the few-row forms instead of building them again (issue #10)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.datasets import sample
from healthrules.engine import assemble

EXAMPLES = Path(__file__).resolve().parents[1] / "rules" / "examples"
B2B = EXAMPLES / "b2b-saas" / "roadmap.yaml"
DATA = sample(300, days=200)

# built by the first evaluation at a date (or for a timestamp unit other than
# microseconds): the events pass of one clock, its read range and its reads
PER_DATE = {"events-pass", "read-range", "event-reads"}
# of which built again at each new date: the pass's columns that read the clock (its
# aggregations are built at compile without it, its read range's lengths and its reads
# once per plan, source and zone)
AT_EACH_DATE = {"events-pass"}


def _key(k: Any) -> str:
    return k[0] if isinstance(k, tuple) else k


def test_evaluate_builds_only_what_depends_on_the_date() -> None:
    plan = hr.compile(hr.load(B2B))
    keys = set(plan.memo)
    assert {"conditions", "text-filter-columns"} <= {_key(k) for k in keys}
    assert {("source_indicators", s) for s in plan.sources} <= keys
    hr.evaluate(plan, DATA.events, DATA.accounts, DATA.as_of)
    assert {_key(k) for k in set(plan.memo) - keys} <= PER_DATE
    # a second date adds entries for its clock to those, and nothing else
    keys = set(plan.memo)
    sizes = {k: len(plan.memo[k]) for k in PER_DATE}
    hr.evaluate(plan, DATA.events, DATA.accounts, DATA.as_of - dt.timedelta(days=3))
    assert set(plan.memo) == keys
    assert {k: len(plan.memo[k]) for k in PER_DATE} == {
        k: n + (k in AT_EACH_DATE) for k, n in sizes.items()}
    assert any(v is not None for v in plan.memo["events-pass-template"].values())

def test_forms_for_many_rows_share_the_score_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """The band scores, family scores and totals are built once per roadmap, whichever
    forms the frames take; the results are those of the few-row forms."""
    calls: list[int] = []
    build = assemble.RoadmapProgram._build_score_base

    def spy(self: Any) -> Any:
        calls.append(self.index)
        return build(self)

    monkeypatch.setattr(assemble.RoadmapProgram, "_build_score_base", spy)
    plan = hr.compile(hr.load(B2B))
    assert len(calls) == len(plan.roadmaps)
    assert DATA.accounts.height >= assemble.MANY_ROWS
    many = hr.evaluate(plan, DATA.events, DATA.accounts, DATA.as_of)  # the many-row forms
    assert len(calls) == len(plan.roadmaps)
    monkeypatch.setattr(assemble, "MANY_ROWS", 10**12)
    few = hr.evaluate(hr.compile(hr.load(B2B)), DATA.events, DATA.accounts, DATA.as_of)
    for name in ("indicators", "stages", "scores", "actions", "conditions"):
        assert_frame_equal(getattr(many, name), getattr(few, name), check_exact=True)
    assert many.scores["score"].drop_nulls().n_unique() > 10
