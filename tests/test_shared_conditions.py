"""The events pass over some thousands of in-memory events (a service's batch) with its
shared windows and filters computed as columns.

From ``PLAIN_EVENTS`` events up to ``SMALL_ROWS`` the pass ran on polars' in-memory engine
with common subexpression elimination, so that the window and filter tests the
aggregations share are computed once per event. Planning that elimination was about an
eighth of the pass's instructions at 27,296 events. Now the query computes each distinct
window and filter as a column of its own before the ``group_by``
(``EventsPass.query(..., shared=True)``) and runs without optimisation
(``small_events_run``). Both forms must give the same frame, bit for bit, as must the
plain and the streaming forms (docs/performance.md, "Twelfth round"). Since the thirteenth
round every in-memory pass over some events takes the shared form, one account's too
(``PLAIN_EVENTS`` at 0; patched to 10**9, the plain form runs as before).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings

import healthrules as hr
from adversarial_events import adversarial_events, some_rows
from healthrules.engine import aggregate
from healthrules.engine.aggregate import (
    EVENTS_QUERY_FLAGS,
    PLAIN_EVENTS,
    EventsPass,
    small_events_flags,
    small_events_run,
)
from healthrules.engine.frames import SMALL_ROWS
from healthrules.inputs import Clock
from healthrules.query_flags import NO_OPTIMISATION
from test_engine_vs_reference import (
    assert_matches_reference,
    cases,
    evaluate_unless_out_of_range,
)
from test_sources_engine import multi_source_cases

AS_OF = dt.date(2026, 3, 30)
ZONE = "Europe/Amsterdam"  # summer time from 2026-03-29 02:00

SPEC: dict[str, Any] = {
    "indicators": [
        {"id": "buyers", "family": "process", "aggregate": "distinct",
         "where": "event == 'buy'", "window": {"from": "start"}},
        {"id": "early_buyers", "family": "process", "aggregate": "distinct",
         "where": "event == 'buy'", "window": {"from": "start", "days": 10}},
        {"id": "key_buys", "family": "process", "aggregate": "count",
         "where": "event == 'buy' and user_id == key_user", "window": "7d",
         "compare": "delta"},
        {"id": "buys_30d", "family": "process", "aggregate": "count",
         "where": "event == 'buy'", "window": "30d"},
        {"id": "buys_30d_again", "family": "process", "aggregate": "count",
         "where": "event == 'buy'", "window": "30d"},
        {"id": "view_days", "family": "process", "aggregate": "active_days",
         "where": "event == 'view'", "window": {"from": "start", "days": 10}},
        {"id": "since_buy", "family": "process", "aggregate": "days_since_last",
         "where": "event == 'buy'"},
        {"id": "last_view", "family": "process", "aggregate": "last_time",
         "where": "event == 'view'"},
        {"id": "avg_buy", "family": "outcome", "aggregate": "mean", "of": "amount",
         "where": "event == 'buy'", "window": "30d"},
        {"id": "spend_buy", "family": "outcome", "aggregate": "sum", "of": "amount",
         "where": "event == 'buy'", "window": "30d"},
        {"id": "spend", "family": "outcome", "aggregate": "sum", "of": "amount",
         "window": "30d"},
        {"id": "avg_seats", "family": "process", "aggregate": "mean", "of": "seats",
         "window": "7d", "compare": "delta"},
        {"id": "big", "family": "process", "aggregate": "count",
         "where": "amount > 1 or event in ('view', 'buy')", "window": "all"},
    ],
    "stages": [{"id": "s"}],
}


def _roadmap(zone: str | None) -> hr.Roadmap:
    events: dict[str, Any] = {"values": {"amount": "float", "seats": "int"}}
    if zone is not None:
        events["timezone"] = zone
    return hr.Roadmap.model_validate({
        "id": "shared", "goal": "g",
        "data": {"events": events,
                 "accounts": {"key": "account_id",
                              "attributes": {"key_user": "str", "start": "date"}}},
        **SPEC})


def _events(zone: str | None) -> pl.DataFrame:
    return adversarial_events(zone, hours=17, varied_users=True)


ACCOUNTS = pl.DataFrame({
    "account_id": ["a", "b", "c", "d"], "key_user": ["u1", None, "u2", "u0"],
    "start": [dt.date(2026, 3, 20), dt.date(2026, 2, 1), None, dt.date(2026, 3, 29)]})


def _exact(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame sorted by account, its floats as their shortest texts (-0.0, NaN and
    every distinct double told apart)."""
    return frame.sort("account_id", nulls_last=True).with_columns(
        pl.col(pl.Float64).cast(pl.String))


def test_the_shared_form_runs_from_plain_events_on() -> None:
    assert small_events_run(PLAIN_EVENTS) == (False, small_events_flags(PLAIN_EVENTS))
    for rows in (PLAIN_EVENTS + 1, 27_296, SMALL_ROWS):
        assert small_events_flags(rows).comm_subexpr_elim  # (the unshared form's flags)
        assert small_events_run(rows) == (True, NO_OPTIMISATION)


@pytest.mark.parametrize("zone", [None, ZONE])
@pytest.mark.parametrize("optimistic", [True, False])
@pytest.mark.parametrize("rows", ["all", "one account", "none"])
def test_shared_form_gives_the_frame_of_every_other_form(
        zone: str | None, optimistic: bool, rows: str) -> None:
    plan = hr.compile(_roadmap(zone))
    events = some_rows(_events(zone), rows)
    clock = CLOCK if zone is None else Clock(AS_OF, dt.datetime(2026, 3, 31), zone, "us")
    p = EventsPass(plan, clock, ACCOUNTS, optimistic=optimistic)
    lf = events.lazy()
    shared = p.query(lf, small=True, shared=True)
    got = shared.collect(engine="in-memory", optimizations=NO_OPTIMISATION)
    for flags in (small_events_flags(PLAIN_EVENTS + 1), NO_OPTIMISATION):
        want = p.query(lf, small=True).collect(engine="in-memory", optimizations=flags)
        assert got.columns == want.columns
        assert got.schema == want.schema
        assert _exact(got).equals(_exact(want))
    # the streaming engine adds the absolute values of the data check in another order
    # (a float sum only compared with a bound, dropped by the finish): the rest is equal
    want = p.query(lf).collect(optimizations=EVENTS_QUERY_FLAGS)
    assert got.schema == want.schema
    assert _exact(got.select(pl.exclude("^__abs__.*$"))).equals(
        _exact(want.select(pl.exclude("^__abs__.*$"))))
    # the windows and filters are columns of their own, each computed once: the filter on
    # 'buy' (read by eight aggregations; once more inside the key user's filter) and the
    # 30-day window (by four)
    text = shared.explain(optimizations=NO_OPTIMISATION)
    unshared = p.query(lf, small=True).explain(optimizations=NO_OPTIMISATION)
    assert "__shared" in text and "__shared" not in unshared
    buy, window = 'col("event") == "buy"', 'col("timestamp") >= 2026-03-01'
    if zone is None:
        assert (text.count(buy), text.count(window)) == (2, 1)
        assert unshared.count(buy) >= 8 and unshared.count(window) >= 4
    # the whole pass as a batch runs it (finish, counters) against the streaming pass
    got_agg, counts = p.collect(lf, rows=PLAIN_EVENTS + 1)
    want_agg, want_counts = EventsPass(plan, clock, ACCOUNTS, optimistic=optimistic,
                                       rows=10**9).collect(lf)
    assert counts == want_counts
    assert _exact(got_agg).equals(_exact(want_agg))


CLOCK = Clock(AS_OF, dt.datetime(2026, 3, 31), None, "us")


@pytest.mark.parametrize("zone", [None, ZONE])
def test_an_evaluation_with_the_shared_form_equals_the_plain_one(zone: str | None) -> None:
    roadmap = _roadmap(zone)
    events = _events(zone)
    with mock.patch.object(aggregate, "PLAIN_EVENTS", 0):
        got = hr.evaluate(roadmap, events, ACCOUNTS, AS_OF)
    with mock.patch.object(aggregate, "PLAIN_EVENTS", 10**9):
        want = hr.evaluate(roadmap, events, ACCOUNTS, AS_OF)
    for name in ("indicators", "stages", "scores", "actions"):
        assert _exact(getattr(got, name)).equals(_exact(getattr(want, name))), name
    assert got.conditions.equals(want.conditions)
    assert got.diagnostics == want.diagnostics


# generated roadmaps and data (edges included) against the reference evaluator, every
# in-memory pass in the shared form (PLAIN_EVENTS at 0)

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_shared_form_matches_the_reference(
        case: tuple[hr.Roadmap, pl.DataFrame, pl.DataFrame, Any]) -> None:
    roadmap, events, accounts, as_of = case
    with mock.patch.object(aggregate, "PLAIN_EVENTS", 0):
        result = evaluate_unless_out_of_range(roadmap, events, accounts, as_of)
    assert_matches_reference(result, roadmap, events, accounts, as_of)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(multi_source_cases())
def test_shared_form_over_several_sources_matches_the_reference(case: Any) -> None:
    roadmap, events, accounts, as_of = case
    with mock.patch.object(aggregate, "PLAIN_EVENTS", 0):
        result = hr.evaluate(roadmap, events, accounts, as_of)
    assert_matches_reference(result, roadmap, events, accounts, as_of)


# one account (a service's call, some hundreds of events): the shared form too (thirteenth
# round: fewer expression nodes to plan than the plain form, PLAIN_EVENTS at 0)

def test_a_pass_over_any_events_takes_the_shared_form() -> None:
    assert PLAIN_EVENTS == 0
    for rows in (1, 2, 619, 5_000):
        assert small_events_run(rows) == (True, NO_OPTIMISATION)
    assert small_events_run(0) == (False, NO_OPTIMISATION)  # no events: the plain form


def _one_account_forms(roadmap: Any, events: pl.DataFrame, accounts: pl.DataFrame,
                       as_of: Any) -> None:
    """Each account evaluated alone (its events, with those of an unknown account and of
    a null key when there are some) in the shared form equals the plain form, and its
    events pass took the shared form."""
    seen: list[bool] = []
    real = EventsPass.query

    def spy(self: EventsPass, events: pl.LazyFrame, small: bool = False,
            shared: bool = False) -> pl.LazyFrame:
        seen.append(shared)
        return real(self, events, small, shared)

    key = pl.col("account_id")
    known = accounts.get_column("account_id")
    for account in known.to_list():
        mine = events.filter((key == account) | key.is_null() | ~key.is_in(known.implode()))
        one = accounts.filter(key == account)
        seen.clear()
        with mock.patch.object(EventsPass, "query", spy):
            got = hr.evaluate(roadmap, mine, one, as_of)
        # (twice where a sum near the one-limb bound runs the pass again with two limbs)
        assert seen and all(seen), seen
        with mock.patch.object(aggregate, "PLAIN_EVENTS", 10**9):
            want = hr.evaluate(roadmap, mine, one, as_of)
        for name in ("indicators", "stages", "scores", "actions"):
            g, w = getattr(got, name), getattr(want, name)
            assert g.schema == w.schema, name
            assert _exact(g).equals(_exact(w)), (account, name)
        assert got.conditions.equals(want.conditions)
        assert got.diagnostics == want.diagnostics


@pytest.mark.parametrize("zone", [None, ZONE])
def test_one_account_in_the_shared_form_equals_the_plain_one(zone: str | None) -> None:
    # NaN, ±inf, -0.0, 5e-324, nulls, an unknown account and a null key, an account
    # without events (d) and one without a start (c), across the change to summer time
    _one_account_forms(_roadmap(zone), _events(zone), ACCOUNTS, AS_OF)


def test_the_b2b_example_one_account_at_a_time_in_the_shared_form() -> None:
    from pathlib import Path

    from healthrules.datasets import DEFAULT_AS_OF, sample

    data = sample(12)
    roadmap = hr.load(Path(__file__).parents[1] / "rules" / "examples" / "b2b-saas"
                      / "roadmap.yaml")
    _one_account_forms(roadmap, data.events, data.accounts, DEFAULT_AS_OF)
