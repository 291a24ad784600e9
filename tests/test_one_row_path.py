"""One account evaluated alone: the roadmap frame in two parts (the indicators and the
stage first, then only what that stage and segment need) gives the batch's rows, bit for
bit, in every stage (unassigned too), segment and weight set."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import healthrules as hr
import healthrules.engine.evaluator as evaluator_module
from adversarial_events import assert_each_alone_equals_batch
from healthrules.engine.assemble import program_for

AS_OF = dt.date(2026, 6, 30)

ROADMAP = hr.Roadmap.model_validate({
    "id": "one",
    "goal": "Weekly use",
    "data": {"events": {"values": {"value": "float"}},
             "accounts": {"attributes": {"start": "date", "seats": "int", "plan": "str"}}},
    "indicators": [
        {"id": "logins_7d", "family": "process", "aggregate": "count",
         "where": "event == 'login'", "window": "7d",
         "bands": {"levels": [{"name": "low", "lt": 2}, {"name": "high", "ge": 2}]}},
        {"id": "users_30d", "family": "process", "aggregate": "distinct", "window": "30d",
         "bands": {"levels": [{"name": "red", "lt": 2}, {"name": "green", "ge": 2}]}},
        {"id": "nps", "family": "relationship", "aggregate": "mean", "of": "value",
         "where": "event == 'nps'", "window": "90d", "missing": "neutral",
         "bands": {"levels": [{"name": "red", "lt": 7}, {"name": "yellow", "ge": 7, "lt": 9},
                              {"name": "green", "ge": 9}]}},
        {"id": "tickets_30d", "family": "outcome", "aggregate": "count",
         "where": "event == 'ticket'", "window": "30d",
         "bands": {"levels": [{"name": "few", "le": 2}, {"name": "many", "gt": 2}]}},
        {"id": "util", "family": "outcome", "expr": "users_30d / seats",
         "bands": {"levels": [{"name": "red", "lt": 0.5}, {"name": "green", "ge": 0.5}]}},
    ],
    "stages": [
        {"id": "trial", "entry": "plan == 'trial'",
         "achievement": {"text": "uses it", "when": "logins_7d >= 3"},
         "tasks": {"joint": [{"text": "log in", "done_when": "logins_7d >= 1"},
                             {"text": "invite", "done_when": "users_30d >= 2"}]},
         "actions": [{"id": "idle", "kind": "challenge", "when": "logins_7d < 1",
                      "do": "{logins_7d} logins"},
                     {"id": "ready", "kind": "positive", "when": "stage_achieved",
                      "do": "ready at {util:.0%}"}]},
        {"id": "onboarding", "entry": "days_since(start) < 60",
         "tasks": {"ours": [{"text": "call", "done_when": "nps >= 7"},
                            {"text": "write"}]},
         "actions": [{"id": "unhappy", "kind": "challenge", "when": "nps < 7",
                      "do": "nps {nps:.1f}"}]},
        {"id": "live", "entry": "seats > 0",
         "achievement": {"text": "half the seats", "when": "util >= 0.5"},
         "actions": [{"id": "grow", "kind": "positive", "when": "util >= 0.8",
                      "do": "{util:.1%} of {seats} seats"}]},
    ],
    "actions": [{"id": "tickets", "kind": "challenge", "when": "tickets_30d > 2",
                 "do": "{tickets_30d} tickets, score {score:.0f}"}],
    "score": {
        "weights": {"families": {"process": 2, "relationship": 1, "outcome": 1}},
        "stages": {"trial": {"weights": {"indicators": {"logins_7d": 3, "users_30d": 1}}}},
        "segments": [
            {"id": "big", "applies_to": "seats >= 4",
             "weights": {"indicators": {"util": 2, "tickets_30d": 1, "nps": 1}},
             "stages": {"live": {"weights": {"indicators": {"util": 1, "nps": 2}}}},
             "bands": {"levels": [{"name": "bad", "lt": 40}, {"name": "good", "ge": 40}]}},
            {"id": "small", "applies_to": "seats < 2"},
        ],
        "bands": {"levels": [{"name": "red", "lt": 50}, {"name": "green", "ge": 50}]},
    },
})
PLAN = hr.compile(ROADMAP)
IDS = [f"a{i}" for i in range(10)]
EVENTS = ["login", "nps", "ticket", "report"]


def _accounts(plans: list[str | None], seats: list[int | None],
              starts: list[dt.date | None]) -> pl.DataFrame:
    return pl.DataFrame({"account_id": IDS[: len(plans)], "plan": plans, "seats": seats,
                         "start": starts},
                        schema={"account_id": pl.String, "plan": pl.String,
                                "seats": pl.Int64, "start": pl.Date})


def _each_alone_equals_the_batch(events: pl.DataFrame, accounts: pl.DataFrame) -> None:
    assert_each_alone_equals_batch(PLAN, events, accounts, AS_OF, conditions=True)


def _events(rows: list[tuple[str, str, str, int, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(a, u, e, dt.datetime(2026, 6, 30, 12) - dt.timedelta(days=d), v)
         for a, u, e, d, v in rows],
        schema={"account_id": pl.String, "user_id": pl.String, "event": pl.String,
                "timestamp": pl.Datetime("us"), "value": pl.Float64}, orient="row")


def test_every_stage_segment_and_weight_set_alone_equals_the_batch() -> None:
    """Accounts in each stage (trial, onboarding, live, and none: unassigned), in each
    segment (big, small, none) and so under each weight set, evaluated one by one."""
    accounts = _accounts(
        ["trial", "trial", None, None, None, None, None, "trial", None],
        [5, 1, 3, 5, 1, 6, 0, None, None],
        [None, None, dt.date(2026, 6, 1), dt.date(2026, 6, 10), None, None, None, None, None])
    events = _events([
        ("a0", "u1", "login", 1, None), ("a0", "u2", "login", 2, None),
        ("a0", "u1", "login", 3, None), ("a0", "u1", "ticket", 4, None),
        ("a1", "u1", "report", 1, None), ("a2", "u1", "nps", 5, 6.0),
        ("a2", "u2", "login", 2, None), ("a3", "u1", "nps", 9, 9.5),
        ("a4", "u1", "ticket", 1, None), ("a4", "u1", "ticket", 2, None),
        ("a4", "u2", "ticket", 3, None), ("a5", "u1", "login", 1, None),
        ("a5", "u2", "login", 1, None), ("a5", "u3", "login", 1, None),
        ("a5", "u4", "login", 1, None), ("a5", "u5", "login", 1, None),
        ("a7", "u1", "login", 1, None), ("a8", "u1", "nps", 3, 8.0),
    ])
    batch = hr.evaluate(PLAN, events, accounts, AS_OF)
    stages = set(batch.stages["stage"].to_list())
    assert {"trial", "onboarding", "live", hr.roadmap.UNASSIGNED_STAGE} <= stages
    assert {"big", "small", None} <= set(batch.scores["segment"].to_list())
    assert batch.actions.height > 0
    _each_alone_equals_the_batch(events, accounts)


def test_one_account_runs_the_two_part_frame_with_only_its_stage(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One account: the indicators and the stage are collected with the routed rows, the
    rest of the frame in a second collect, the outputs in a third; the rest computes the
    conditions of the actions in the account's stage and of every stage only, and one
    weight set."""
    calls: list[int] = []
    real = evaluator_module.collect_rows

    def counting(frames: list[pl.LazyFrame], rows: int) -> list[pl.DataFrame]:
        calls.append(len(frames))
        return cast(list[pl.DataFrame], real(frames, rows))

    monkeypatch.setattr(evaluator_module, "collect_rows", counting)
    accounts = _accounts(["trial"], [5], [None])
    events = _events([("a0", "u1", "login", 1, None)])
    result = hr.evaluate(PLAN, events, accounts, AS_OF)
    assert calls == [2, 1, 3 + (result.actions.height > 0)], calls
    program = program_for(PLAN, 0, "us")
    rest, conditions = program.one_row_steps(0, "big")
    written = {e.meta.output_name() for step in [*rest, *conditions] for e in step}
    # trial's actions (0, 1) and the roadmap's (4): their conditions; onboarding's and
    # live's (2, 3) are out of scope, false without being computed
    assert {"__when_0", "__when_1", "__when_4"} <= written
    assert not {"__when_2", "__when_3"} & written
    assert "__task_0_0" in written and not any(n.startswith("__task_1_") for n in written)
    # one weight set, written under the output names: the big segment has no trial
    # weights, so its own (indicator weights, no families) come before the roadmap's
    # trial weights (indicator weights too: logins and users only)
    assert not any(n.startswith("__sp") or n == "__ws" for n in written)
    assert {"__score", "__score_process", "__scored", "__missing"} <= written
    big = {n for n in written if n.startswith("__bv__")}
    assert big == {"__bv__util", "__bv__tickets_30d", "__bv__nps"}
    rest, _ = program.one_row_steps(0, None)
    trial = {e.meta.output_name() for step in rest for e in step}
    assert {n for n in trial if n.startswith("__bv__")} == {"__bv__logins_7d",
                                                            "__bv__users_30d"}


def test_a_single_stage_and_weight_set_keeps_one_frame_query(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing to leave out (one stage, one weight set): one account's frame is one query,
    as for many accounts."""
    roadmap = hr.Roadmap.model_validate({
        "id": "flat", "goal": "g", "data": {"events": {"user": None}},
        "indicators": [{"id": "n", "family": "process", "aggregate": "count",
                        "window": "7d"}],
        "stages": [{"id": "only", "actions": [{"id": "none", "kind": "challenge",
                                               "when": "n == 0", "do": "{n}"}]}],
    })
    program = program_for(hr.compile(roadmap), 0, "us")
    assert not program.splits({"account_id"})
    assert program_for(PLAN, 0, "us").splits({"account_id"})
    assert not program_for(PLAN, 0, "us").splits({"account_id", "__pin__logins_7d"})


@st.composite
def _data(draw: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = draw(st.integers(1, 6))
    accounts = _accounts(
        [draw(st.sampled_from(["trial", "paid", None])) for _ in range(n)],
        [draw(st.none() | st.integers(0, 6)) for _ in range(n)],
        [draw(st.none() | st.dates(dt.date(2026, 3, 1), dt.date(2026, 7, 5)))
         for _ in range(n)])
    rows = draw(st.lists(st.tuples(
        st.sampled_from(IDS[:n]), st.sampled_from(["u1", "u2", "u3"]),
        st.sampled_from(EVENTS), st.integers(0, 40),
        st.none() | st.floats(0, 10, allow_nan=False)), max_size=30))
    return _events(rows), accounts


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_data())
def test_any_account_alone_equals_its_rows_of_the_batch(
        data: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, accounts = data
    _each_alone_equals_the_batch(events, accounts)
