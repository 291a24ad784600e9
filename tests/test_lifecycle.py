"""Action lifecycle over a history: for, cooldown, hysteresis, resolved_when, escalation, scope;
and the change-over-time names (prev, change, days_in_stage, stuck)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules.errors import RoadmapError
from healthrules.expressions import parse
from healthrules.history import history
from healthrules.history.lifecycle import relax

D0 = dt.date(2026, 3, 1)


def day(k: int) -> dt.date:
    """Day k of the scenario (day 1 is D0)."""
    return D0 + dt.timedelta(days=k - 1)


def _events(values: list[float | None], account: str = "a") -> pl.DataFrame:
    """One event per day with value v (None: no event that day)."""
    rows = [(account, dt.datetime.combine(day(k + 1), dt.time(12)), v)
            for k, v in enumerate(values) if v is not None]
    return pl.DataFrame(rows, schema={"account_id": pl.String, "timestamp": pl.Datetime("us"),
                                      "x": pl.Float64}, orient="row").with_columns(
        pl.lit("ping").alias("event"))


def _roadmap(action: dict[str, Any], *, stages: list[dict[str, Any]] | None = None,
             extra: list[dict[str, Any]] | None = None) -> hr.Roadmap:
    base = {"id": "fix", "kind": "challenge", "do": "x is {x}", "when": "x < 3"}
    return hr.Roadmap.model_validate({
        "id": "lc", "goal": "g",
        "data": {"events": {"user": None, "values": {"x": "float"}},
                 "accounts": {"attributes": {"start": "date"}}},
        "indicators": [{"id": "x", "family": "process", "aggregate": "max", "of": "x",
                        "window": "1d",
                        "bands": {"levels": [{"name": "low", "lt": 3}, {"name": "ok", "ge": 3}]}},
                       *(extra or [])],
        "stages": stages or [{"id": "all"}],
        "actions": [{**base, **action}],
    })


ACCOUNTS = pl.DataFrame({"account_id": ["a"], "start": [dt.date(2026, 3, 3)]})


def _changes(roadmap: hr.Roadmap, values: list[float | None]) -> list[tuple[int, str, Any]]:
    h = history(roadmap, _events(values), ACCOUNTS, day(1), day(len(values)), every="1d")
    ch = h.lifecycle.changes
    return [((d - D0).days + 1, c, r)
            for d, c, r in ch.select("as_of", "change", "reason").rows()]


def test_opens_once_and_resolves_when_the_condition_clears() -> None:
    got = _changes(_roadmap({}), [2, 2, 1, 5, 5])
    assert got == [(1, "opened", None), (4, "resolved", "condition_cleared")]


def test_for_waits_until_the_condition_has_held_long_enough() -> None:
    r = _roadmap({"for": "2d"})
    assert _changes(r, [2, 2, 2, 5]) == [(3, "opened", None), (4, "resolved",
                                                              "condition_cleared")]
    # an interruption restarts the clock: pending from day 3, open on day 5
    assert _changes(r, [2, 5, 2, 2, 2]) == [(5, "opened", None)]


def test_pending_is_visible_in_the_states() -> None:
    h = history(_roadmap({"for": 2}), _events([2, 2, 2]), ACCOUNTS, day(1), day(3), every="1d")
    states = h.lifecycle.states.select("as_of", "status", "since", "opened_at").rows()
    assert states == [(day(1), "pending", day(1), None), (day(2), "pending", day(1), None),
                      (day(3), "open", day(1), day(3))]


def test_cooldown_keeps_a_resolved_action_closed() -> None:
    r = _roadmap({"cooldown": "3d"})
    assert _changes(r, [2, 5, 2, 2, 2, 5]) == [
        (1, "opened", None), (2, "resolved", "condition_cleared"), (5, "opened", None),
        (6, "resolved", "condition_cleared")]


def test_a_value_hovering_at_the_threshold_flaps_without_hysteresis() -> None:
    values = [2.9, 3.1, 2.9, 3.1, 2.9, 3.6]
    flapping = _changes(_roadmap({}), values)
    assert [c for _, c, _ in flapping] == ["opened", "resolved"] * 3
    steady = _changes(_roadmap({"hysteresis": 0.5}), values)
    assert steady == [(1, "opened", None), (6, "resolved", "condition_cleared")]
    per_name = _changes(_roadmap({"hysteresis": {"x": 0.5}}), values)
    assert per_name == steady


def test_resolved_when_decides_alone() -> None:
    r = _roadmap({"resolved_when": "x >= 8"})
    assert _changes(r, [2, 5, 9, 2]) == [(1, "opened", None), (3, "resolved", "resolved_when"),
                                         (4, "opened", None)]


def test_an_unknown_condition_never_resolves() -> None:
    assert _changes(_roadmap({}), [2, None, None, 5]) == [
        (1, "opened", None), (4, "resolved", "condition_cleared")]


def test_escalation_happens_once() -> None:
    r = _roadmap({"escalate_after": "2d"})
    got = _changes(r, [1, 1, 1, 1, 1])
    assert got == [(1, "opened", None), (3, "escalated", None)]


def test_leaving_the_stage_resolves() -> None:
    stages = [{"id": "early", "entry": "as_of < start",
               "actions": [{"id": "early_fix", "kind": "challenge", "when": "x < 3",
                            "do": "early"}]},
              {"id": "late"}]
    r = _roadmap({"when": "x < 0"}, stages=stages)
    h = history(r, _events([1, 1, 1, 1]), ACCOUNTS, day(1), day(4), every="1d")
    rows = h.lifecycle.changes.select("as_of", "action_id", "change", "reason").rows()
    assert rows == [(day(1), "early_fix", "opened", None),
                    (day(3), "early_fix", "resolved", "left_stage")]


def test_summary_counts() -> None:
    h = history(_roadmap({}), _events([2, 5, 2, 5]), ACCOUNTS, day(1), day(4), every="1d")
    s = h.lifecycle.summary().row(0, named=True)
    assert (s["opened"], s["resolved"], s["escalated"], s["mean_days_open"]) == (2, 2, 0, 1.0)


# ---------------------------------------------------------------------- change over time


def test_prev_and_change_read_earlier_snapshots_even_between_dates() -> None:
    r = _roadmap({"when": "change(x, 2) <= -3 and prev(x, 1) > 0", "do": "{x}"})
    values = [9, 8, 5, 4, 4, 1]
    h = history(r, _events(values), ACCOUNTS, day(1), day(6), every="1d")
    fired = [(d - D0).days + 1 for d in h.actions["as_of"].to_list()]
    assert fired == [3, 4, 6]  # 5-9, 4-8 and 1-4; day 5 is 4-5
    # weekly snapshots: the 2-day lag is read from dates that are not snapshots
    h2 = history(r, _events(values), ACCOUNTS, day(3), day(6), every="3d")
    assert h2.dates == (day(3), day(6))
    assert h2.actions["as_of"].to_list() == [day(3), day(6)]
    # a single evaluation has no history: the condition is unknown
    ev = hr.evaluate(r, _events(values), ACCOUNTS, day(6))
    assert ev.actions.height == 0 and ev.conditions["unknown"].to_list() == [1]


def test_days_in_stage_and_stuck() -> None:
    stages = [{"id": "early", "entry": "as_of < start"}, {"id": "late"}]
    r = _roadmap({"when": "stuck(2)", "do": "{stage} for {days_in_stage} days"},
                 stages=stages)
    h = history(r, _events([1] * 6), ACCOUNTS, day(1), day(6), every="1d")
    texts = h.actions.select("as_of", "text").rows()
    # early on days 1-2 (first seen day 1), late from day 3 (start): stuck from 2 days in
    assert texts == [(day(5), "late for 2 days"), (day(6), "late for 3 days")]
    h3 = history(r, _events([1] * 6), ACCOUNTS, day(1), day(6), every="2d")
    assert h3.actions.select("as_of", "text").rows() == [(day(5), "late for 2 days")]


def test_time_functions_are_checked() -> None:
    with pytest.raises(RoadmapError, match="only allowed in action conditions"):
        hr.compile(_roadmap({}, extra=[{"id": "bad", "family": "process",
                                        "expr": "prev(x, 7)"}]))
    with pytest.raises(RoadmapError, match="neither"):
        hr.compile(_roadmap({"when": "prev(start, 7) is None"}))
    with pytest.raises(RoadmapError, match="whole number of days"):
        hr.compile(_roadmap({"when": "stuck(0)"}))
    with pytest.raises(RoadmapError, match="does not read"):
        hr.compile(_roadmap({"hysteresis": {"score": 1}}))
    with pytest.raises(ValueError, match="resolved_when and hysteresis"):
        _roadmap({"hysteresis": 1, "resolved_when": "x > 5"})


def test_relax_widens_every_threshold_in_the_right_direction() -> None:
    assert relax(parse("x < 3 and y >= 10"), 1).source == "x < 4 and y >= 9"
    assert relax(parse("1 < x <= 2"), 0.5).source == "0.5 < x <= 2.5"
    assert relax(parse("not (x > 5) or x == 1"), {"x": 2}).source == "not x > 7 or x == 1"
    assert relax(parse("x < 3"), {"y": 2}).source == "x < 3"
    assert relax(parse("change(x, 7) < -5"), 1).source == "change(x, 7) < -4"
