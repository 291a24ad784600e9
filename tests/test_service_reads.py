"""What a service's call keeps from call to call and what it skips on small inputs: the
events pass's optimisations by size, the read steps and read range kept per plan, the
accounts taken by name, one account's actions in order without a sort. Each cheaper form
gives the results of the form it replaces."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.datasets import DEFAULT_AS_OF, sample
from healthrules.engine.aggregate import (
    EVENTS_QUERY_FLAGS,
    PLAIN_EVENTS,
    EventsPass,
    raw_column,
    small_events_flags,
)
from healthrules.engine.evaluator import prepare, read_range
from healthrules.engine.frames import SMALL_ROWS
from healthrules.inputs import accounts_at, check_accounts

ROOT = Path(__file__).resolve().parent.parent
B2B = ROOT / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"


@pytest.fixture(scope="module")
def data() -> Any:
    return sample(60)


def _accounts(data: Any, n: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    ids = data.accounts["account_id"].head(n).to_list()
    return (data.events.filter(pl.col("account_id").is_in(ids)),
            data.accounts.filter(pl.col("account_id").is_in(ids)))


def test_small_inputs_take_the_optimisations_that_pay_at_their_size() -> None:
    plain = small_events_flags(PLAIN_EVENTS)
    shared = small_events_flags(PLAIN_EVENTS + 1)
    assert not plain.comm_subexpr_elim and not plain.predicate_pushdown
    assert shared.comm_subexpr_elim
    assert not shared.predicate_pushdown and not shared.projection_pushdown
    assert small_events_flags(SMALL_ROWS).comm_subexpr_elim


@pytest.mark.parametrize("n", [1, 60])
def test_the_events_pass_gives_the_same_aggregates_with_any_optimisations(
        data: Any, n: int) -> None:
    plan = hr.compile(hr.load(B2B))
    events, accounts = _accounts(data, n)
    plan, clock, ev_lf, acc_df = prepare(plan, events, accounts, DEFAULT_AS_OF)
    query = EventsPass(plan, clock, acc_df).query(ev_lf[plan.default_source])
    want = query.collect(optimizations=EVENTS_QUERY_FLAGS).sort("account_id")
    assert want.height == n
    for flags in (small_events_flags(1), small_events_flags(PLAIN_EVENTS + 1)):
        got = query.collect(engine="in-memory", optimizations=flags).sort("account_id")
        assert_frame_equal(got, want)
    # and the pass as evaluate runs it (optimistic sums, finished), by the number of events
    for rows in (events.height, max(events.height, PLAIN_EVENTS + 1)):
        got_agg, counts = EventsPass(plan, clock, acc_df, optimistic=True).collect(
            ev_lf[plan.default_source], rows)
        want_agg, want_counts = EventsPass(plan, clock, acc_df).collect(
            ev_lf[plan.default_source])
        assert_frame_equal(got_agg.sort("account_id"), want_agg.sort("account_id"))
        assert counts == want_counts


def test_the_read_steps_are_kept_per_schema_and_serve_other_frames(data: Any) -> None:
    plan = hr.compile(hr.load(B2B))
    ids = data.accounts["account_id"].head(3).to_list()
    results = []
    for account in ids:
        events, accounts = (data.events.filter(pl.col("account_id") == account),
                            data.accounts.filter(pl.col("account_id") == account))
        results.append(hr.evaluate(plan, events, accounts, DEFAULT_AS_OF))
        fresh = hr.evaluate(hr.compile(hr.load(B2B)), events, accounts, DEFAULT_AS_OF)
        assert_frame_equal(results[-1].indicators, fresh.indicators)
        assert results[-1].diagnostics == fresh.diagnostics
    assert len(plan.memo["event-reads"]) == 1
    # timestamps of another unit: steps of their own, the same indicators
    events, accounts = _accounts(data, 1)
    ms = events.with_columns(pl.col("timestamp").dt.cast_time_unit("ms"))
    got = hr.evaluate(plan, ms, accounts, DEFAULT_AS_OF)
    assert len(plan.memo["event-reads"]) == 2
    assert_frame_equal(got.indicators, results[0].indicators)


def _anchored_roadmap() -> hr.Roadmap:
    return hr.Roadmap.model_validate({
        "id": "anchored", "goal": "Use since the start",
        "data": {"events": {"user": None}, "accounts": {"attributes": {"start": "date"}}},
        "indicators": [
            {"id": "logins_since_start", "family": "process", "aggregate": "count",
             "where": "event == 'login'", "window": {"from": "start"}},
            {"id": "logins_7d", "family": "process", "aggregate": "count",
             "where": "event == 'login'", "window": "7d"}],
        "stages": [{"id": "operation"}],
    })


def test_the_read_range_kept_per_plan_follows_each_call_s_anchors() -> None:
    """The trailing windows' start is kept per plan and clock; the start of windows
    anchored at an attribute is each call's (the earliest value of its accounts)."""
    plan = hr.compile(_anchored_roadmap())
    events = pl.DataFrame({"account_id": ["a"], "event": ["login"],
                           "timestamp": [dt.datetime(2026, 6, 29, 9)]})
    as_of = dt.date(2026, 6, 30)
    cases = [(pl.DataFrame({"account_id": ["a"], "start": [dt.date(2026, 1, 5)]}),
              dt.datetime(2026, 1, 5)),
             (pl.DataFrame({"account_id": ["a", "b"],
                            "start": [dt.date(2026, 6, 28), dt.date(2026, 6, 27)]}),
              dt.datetime(2026, 6, 24)),  # the 7-day window starts first
             (pl.DataFrame({"account_id": ["a"], "start": [None]},
                           schema={"account_id": pl.String, "start": pl.Date}),
              dt.datetime(2026, 6, 24))]
    for accounts, start in cases:
        got = read_range(plan, events, accounts, as_of)
        assert got == (start, dt.datetime(2026, 7, 1))
        assert got == read_range(hr.compile(_anchored_roadmap()), events, accounts, as_of)
        ev = hr.evaluate(plan, events, accounts, as_of)
        assert ev.indicators.filter(pl.col("account_id") == "a")["logins_7d"][0] == 1
    assert len(plan.memo["read-range"]) == 1


def _attribute_windows_roadmap(zone: str | None) -> hr.Roadmap:
    return hr.Roadmap.model_validate({
        "id": "attribute_windows", "goal": "Use since the contract and the trial",
        "data": {"events": {"user": None, "timezone": zone},
                 "accounts": {"attributes": {"start": "date", "trial": "datetime",
                                             "tier": "str"}}},
        "indicators": [
            {"id": "all_since_start", "family": "process", "aggregate": "count",
             "window": {"from": "start"}},
            {"id": "first_30d", "family": "process", "aggregate": "count",
             "where": "event == 'login'", "window": {"from": "start", "days": 30}},
            {"id": "trial_week", "family": "process", "aggregate": "count",
             "window": {"from": "trial", "days": 7}},
            {"id": "trial_since", "family": "process", "aggregate": "count",
             "where": "tier == 'gold'", "window": {"from": "trial"}},
            {"id": "logins_7d", "family": "process", "aggregate": "count",
             "where": "event == 'login'", "window": "7d"}],
        "stages": [{"id": "operation"}],
    })


@pytest.mark.parametrize("zone", [None, "America/New_York"])
def test_windows_anchored_at_attributes_read_per_account_instants(
        monkeypatch: pytest.MonkeyPatch, zone: str | None) -> None:
    """The start and stop of windows anchored at account attributes are computed once per
    account and joined to the events: the events pass gives the aggregates of the form
    that computes them for every event (its window conditions), at the edges too (an
    event at the start, one at the stop, a stop across a change of summer time, a null
    attribute, events of an account not in the accounts frame)."""
    naive = [dt.datetime(2026, 2, 28, 23, 59), dt.datetime(2026, 3, 1),
             dt.datetime(2026, 3, 15, 12), dt.datetime(2026, 3, 31),
             dt.datetime(2026, 3, 30, 23, 59, 59), dt.datetime(2026, 4, 2, 8),
             dt.datetime(2026, 3, 10, 6), dt.datetime(2026, 3, 17, 6),
             dt.datetime(2026, 3, 17, 5, 59), dt.datetime(2026, 5, 1)]
    n = len(naive)
    events = pl.DataFrame({
        "account_id": ["a"] * n + ["b"] * n + ["c"] * n + ["zz"] * n,
        "event": ["login", "view"] * (2 * n),
        "timestamp": naive * 4})
    if zone is not None:
        events = events.with_columns(pl.col("timestamp").dt.replace_time_zone(zone))
    accounts = pl.DataFrame({
        "account_id": ["a", "b", "c"],
        "start": [dt.date(2026, 3, 1), None, dt.date(2026, 2, 1)],
        "trial": [dt.datetime(2026, 3, 10, 6), dt.datetime(2026, 3, 1), None],
        "tier": ["gold", "silver", None]})
    if zone is not None:
        accounts = accounts.with_columns(pl.col("trial").dt.replace_time_zone(zone))
    as_of = dt.date(2026, 6, 30)

    def per_event(self: EventsPass, ind: Any, instants: dict[str, pl.Expr]) -> pl.Expr:
        instants[ind.window.from_] = pl.col(ind.window.from_)  # the attribute joined
        return self.window(ind, False)[0]

    def aggregates() -> tuple[pl.DataFrame, tuple[int, int]]:
        plan = hr.compile(_attribute_windows_roadmap(zone))
        plan, clock, ev_lf, acc_df = prepare(plan, events, accounts, as_of)
        run = EventsPass(plan, clock, acc_df)
        shape = run._shape()
        got = run.query(ev_lf[plan.default_source]).collect().sort("account_id")
        return got, (len(shape.instants), len(shape.joined))

    got, (instants, joined) = aggregates()
    assert (instants, joined) == (4, 1)  # two starts, two stops; the tier as it is
    monkeypatch.setattr(EventsPass, "_attribute_window", per_event)
    want, (instants, joined) = aggregates()
    assert (instants, joined) == (2, 1)  # the two attributes as they are
    assert_frame_equal(got, want)
    counts = got.filter(pl.col("account_id") == "a").row(0, named=True)
    assert counts[raw_column(0, "first_30d")] > 0 and counts[raw_column(0, "trial_week")] > 0


def test_accounts_needing_no_cast_are_taken_by_name(data: Any) -> None:
    plan = hr.compile(hr.load(B2B))
    _, accounts = _accounts(data, 5)
    plan, clock, ev_lf, acc_df = prepare(plan, data.events, accounts, DEFAULT_AS_OF)
    schema = ev_lf[plan.default_source].collect_schema()
    wanted = ["account_id", *plan.attributes]
    by_name, issues = check_accounts(plan, accounts[wanted], schema, clock)
    by_query, query_issues = check_accounts(plan, accounts[wanted].lazy(), schema, clock)
    assert issues == query_issues == []
    assert_frame_equal(by_name, by_query)
    # a column of another dtype is cast, by the query
    narrow = accounts.with_columns(pl.col("seats").cast(pl.Int32))
    cast, issues = check_accounts(plan, narrow[wanted], schema, clock)
    assert issues == []
    assert cast.schema["seats"] == pl.Int64
    assert_frame_equal(cast, by_query)
    assert_frame_equal(acc_df, accounts_at(by_query, clock, "account_id").frame)


def _priorities_roadmap() -> hr.Roadmap:
    actions = [{"id": f"a_{p}", "kind": "challenge", "when": "logins_7d >= 1",
                "do": f"{p}: {{logins_7d}} logins", "owner": "csm", "priority": p}
               for p in ("low", "critical", "medium", "high")]
    actions.append({"id": "a_high_2", "kind": "challenge", "when": "logins_7d >= 2",
                    "do": "again {logins_7d}", "owner": "csm", "priority": "high"})
    return hr.Roadmap.model_validate({
        "id": "svc", "goal": "Weekly use", "data": {"events": {"user": None}},
        "indicators": [{"id": "logins_7d", "family": "process", "aggregate": "count",
                        "where": "event == 'login'", "window": "7d"}],
        "stages": [{"id": "operation", "actions": actions}],
    })


def test_one_account_s_actions_come_by_priority_then_declared_order() -> None:
    plan = hr.compile(_priorities_roadmap())
    events = pl.DataFrame({"account_id": ["a", "a", "b"], "event": ["login"] * 3,
                           "timestamp": [dt.datetime(2026, 6, 29, 9),
                                         dt.datetime(2026, 6, 30, 9),
                                         dt.datetime(2026, 6, 30, 10)]})
    accounts = pl.DataFrame({"account_id": ["a", "b"]})
    as_of = dt.date(2026, 6, 30)
    alone = hr.evaluate(plan, events.filter(pl.col("account_id") == "a"),
                        accounts.head(1), as_of)
    assert alone.actions["action_id"].to_list() == [
        "a_critical", "a_high", "a_high_2", "a_medium", "a_low"]
    assert alone.actions["text"].to_list()[:3] == [
        "critical: 2 logins", "high: 2 logins", "again 2"]
    batch = hr.evaluate(plan, events, accounts, as_of)
    assert_frame_equal(alone.actions, batch.actions.filter(pl.col("account_id") == "a"))
    assert batch.actions.filter(pl.col("account_id") == "b")["action_id"].to_list() == [
        "a_critical", "a_high", "a_medium", "a_low"]
