"""The value ranges lint assumes hold for the values the engine computes.

Lint reports "never true" from the base range of each name (counts are whole numbers >= 0,
active days in an N-day window at most N + 1 ...). Here the engine evaluates roadmaps that use
every kind of aggregate on the synthetic sample, as of a date and as of a datetime in the
middle of a day, and every value must lie in the range lint assumes for it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import healthrules as hr
from healthrules.datasets import sample
from healthrules.lint.context import LintContext
from healthrules.loader import load_text
from healthrules.roadmap import Roadmap

ROOT = Path(__file__).resolve().parents[1]

AGGREGATES = """\
id: facts
goal: g
data:
  events: {timezone: UTC, values: {value: float}}
  accounts:
    attributes: {seats: int, contract_start: date, trial_start: date}
indicators:
  - {id: logins_30d, family: process, aggregate: count, where: "event == 'login'", window: 30d}
  - {id: users_30d, family: process, aggregate: distinct, window: 30d}
  - {id: active_days_7d, family: process, aggregate: active_days, window: 7d}
  - {id: active_days_all, family: process, aggregate: active_days}
  - {id: trial_days, family: process, aggregate: active_days,
     window: {from: trial_start, days: 14}}
  - {id: since_login_30d, family: process, aggregate: days_since_last,
     where: "event == 'login'", window: 30d}
  - {id: since_first, family: process, aggregate: days_since_first}
  - {id: since_contract, family: process, aggregate: days_since_first,
     window: {from: contract_start, days: 60}}
  - {id: logins_delta, family: process, aggregate: count, where: "event == 'login'",
     window: 14d, compare: delta}
  - {id: active_delta, family: process, aggregate: active_days, window: 7d, compare: delta}
  - {id: logins_change, family: process, aggregate: count, where: "event == 'login'",
     window: 14d, compare: pct_change}
  - {id: logins_before, family: process, aggregate: count, where: "event == 'login'",
     window: 14d, compare: previous}
  - {id: since_login_prev, family: process, aggregate: days_since_last,
     where: "event == 'login'", window: 14d, compare: previous}
  - {id: per_seat, family: process, expr: logins_30d / seats}
  - {id: capped, family: process, expr: "min(users_30d / seats, 1)"}
  - {id: clipped, family: process, expr: "clip(logins_change, 0, 1)"}
  - id: banded
    family: outcome
    aggregate: count
    bands: {levels: [{name: low, lt: 10}, {name: high, ge: 10}]}
stages:
  - id: s
"""


SAMPLE_EXAMPLES = ("b2b-saas", "subscription-upsell", "trial-conversion")
"""Example roadmaps whose data contract the synthetic sample meets."""


def _roadmaps() -> list[Roadmap]:
    out = [load_text(AGGREGATES)]
    for name in SAMPLE_EXAMPLES:
        out.append(hr.load(ROOT / "rules" / "examples" / name / "roadmap.yaml"))
    return [r for r in out if isinstance(r, Roadmap)]


@pytest.mark.parametrize(
    "as_of", [dt.date(2026, 6, 30), dt.datetime(2026, 6, 30, 13, 30)], ids=["date", "datetime"])
@pytest.mark.parametrize("roadmap", _roadmaps(), ids=lambda r: r.id)
def test_engine_values_lie_in_the_assumed_ranges(roadmap: Roadmap, as_of: dt.date) -> None:
    data = sample(120)
    result = hr.evaluate(roadmap, data.events, data.accounts, as_of=as_of)
    facts = LintContext(roadmap).facts
    assumed = {n: f for n, f in facts.names.items() if n in result.indicators.columns}
    assert assumed, "no indicator with a known range"
    for name, fact in assumed.items():
        outside = [v for v in result.indicators[name].to_list() if not fact.dom.contains(v)]
        assert outside == [], (name, fact.dom.describe(name), outside[:5])
    score = facts.names["score"].dom
    assert all(score.contains(v) for v in result.scores["score"].to_list())
    stage = facts.names["stage"].dom
    assert all(stage.contains(v) for v in result.stages["stage"].to_list())


def test_the_assumed_ranges_are_tight_enough_to_matter() -> None:
    facts = LintContext(load_text(AGGREGATES)).facts.names  # type: ignore[arg-type]
    shown = {n: facts[n].dom.describe(n) for n in (
        "logins_30d", "active_days_7d", "trial_days", "since_login_30d", "logins_change",
        "active_delta", "capped", "clipped")}
    assert shown == {
        "logins_30d": "logins_30d >= 0",
        "active_days_7d": "0 <= active_days_7d <= 8",
        "trial_days": "0 <= trial_days <= 14",
        "since_login_30d": "0 <= since_login_30d <= 30",
        "logins_change": "logins_change >= -1",
        "active_delta": "-8 <= active_delta <= 8",
        "capped": "capped <= 1",
        "clipped": "0 <= clipped <= 1",
    }
