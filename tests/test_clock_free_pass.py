"""The events pass of a new date builds only what depends on the date (issues #10, #14).

An event filter that reads no ``as_of`` is translated once per plan (``compile`` does it),
not at every clock; a filter that reads ``as_of`` is still translated at each clock. A
split aggregation (sum, mean) is told equal to another by its kind and reductions instead
of its whole expression. These are speed changes of the pass: the expressions must be
those of the former forms, and every value here is checked against the reference
evaluator at several dates with one plan.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules.engine import EventsPass
from healthrules.engine.aggregate import clock_free_filter
from healthrules.engine.binding import LiteralTime, translate
from healthrules.engine.evaluator import prepare
from healthrules.inputs import clock_for
from healthrules.roadmap import Roadmap
from reference import evaluate_reference

EXAMPLES = Path(__file__).resolve().parents[1] / "rules" / "examples"
AS_OF = dt.date(2026, 6, 30)


def _roadmap(zone: str | None = None) -> Roadmap:
    events: dict[str, Any] = {"values": {"amount": "float"}}
    if zone is not None:
        events["timezone"] = zone
    return Roadmap.model_validate({
        "id": "p", "goal": "g",
        "data": {"events": events},
        "indicators": [
            {"id": "logins_30d", "family": "process", "aggregate": "count",
             "where": "event == 'login'", "window": "30d"},
            # a filter that reads as_of: its expression holds the date
            {"id": "recent_logins", "family": "process", "aggregate": "count",
             "where": "event == 'login' and days_since(timestamp) <= 3", "window": "30d"},
            {"id": "late_spend", "family": "outcome", "aggregate": "sum", "of": "amount",
             "where": "days_since(timestamp) >= 10", "window": "90d"},
            # split aggregations: equal ones copied, a sum and a mean of the same
            # reductions kept apart
            {"id": "spend", "family": "outcome", "aggregate": "sum", "of": "amount",
             "where": "event != 'view'", "window": "30d"},
            {"id": "spend_again", "family": "outcome", "aggregate": "sum", "of": "amount",
             "where": "event != 'view'", "window": "30d"},
            {"id": "spend_avg", "family": "outcome", "aggregate": "mean", "of": "amount",
             "where": "event != 'view'", "window": "30d"},
            {"id": "spend_avg_again", "family": "outcome", "aggregate": "mean",
             "of": "amount", "where": "event != 'view'", "window": "30d"},
            {"id": "spend_all", "family": "outcome", "aggregate": "sum", "of": "amount",
             "window": "90d", "compare": "delta"},
            {"id": "spend_avg_all", "family": "outcome", "aggregate": "mean", "of": "amount",
             "window": "90d"},
        ],
        "stages": [{"id": "s", "actions": [{
            "id": "quiet", "kind": "challenge", "when": "recent_logins < 1", "do": "call",
            "owner": "csm"}]}],
    })


IDS = ["logins_30d", "recent_logins", "late_spend", "spend", "spend_again", "spend_avg",
       "spend_avg_again", "spend_all", "spend_avg_all"]


def _events(zone: str | None = None) -> pl.DataFrame:
    n = 400
    frame = pl.DataFrame({
        "account_id": [f"a{k % 7}" for k in range(n)],
        "user_id": [f"u{k % 5}" if k % 11 else None for k in range(n)],
        "event": [("login", "view", "buy", None)[k % 4] if k % 37 else None
                  for k in range(n)],
        "timestamp": [None if k % 53 == 0 else
                      dt.datetime(2026, 3, 1) + dt.timedelta(hours=7 * k + k % 5)
                      for k in range(n)],
        "amount": [(math.nan if k % 29 == 0 else math.inf if k % 31 == 0
                    else -0.0 if k % 17 == 0 else None if k % 13 == 0
                    else (k % 9 - 4) * 1.25 + k / 1000) for k in range(n)],
    }, schema_overrides={"timestamp": pl.Datetime("us")})
    if zone is None:
        return frame
    # wall times a daylight-saving change skips or repeats (8 March, 1 November) among them
    return frame.with_columns(pl.col("timestamp").dt.replace_time_zone(
        zone, ambiguous="earliest", non_existent="null"))


ACCOUNTS = pl.DataFrame({"account_id": [f"a{k}" for k in range(9)]})


def _filters(plan: hr.Plan) -> list[tuple[Any, Any, str]]:
    out = []
    for source in plan.sources:
        for i, idx, _ in plan.source_indicators(source):
            analysis = plan.roadmaps[i].analysis
            parsed = analysis.expressions.get(f"indicators[{idx}].where")
            if parsed is not None:
                out.append((analysis, parsed, source))
    return out


def test_clock_free_filters_are_the_filters_of_every_clock() -> None:
    """Over every example pack and the roadmap above, in two zones and at three dates:
    a filter translated once is the expression each clock's translation gives; one that
    reads ``as_of`` is not taken from the plan."""
    paths = sorted(EXAMPLES.glob("*/roadmap.yaml")) + sorted(EXAMPLES.glob("*/pack.yaml"))
    sources: list[Any] = [hr.load(p) for p in paths]
    sources += [_roadmap(), _roadmap("Europe/Amsterdam")]
    free = reading = 0
    for source in sources:
        plan = hr.compile(source)
        # compile translated them: the plan holds every filter already
        held = plan.memo.get("clock-free-filters", {})
        filters = _filters(plan)
        assert len(held) == len({(id(a), s, p.source) for a, p, s in filters})
        schema = pl.Schema({"timestamp": pl.Datetime("us", plan.events.timezone)})
        for as_of in (AS_OF, dt.date(2024, 3, 31), dt.datetime(2026, 10, 25, 2, 30)):
            clock = clock_for(plan, schema, as_of)
            for analysis, parsed, source in filters:
                want = translate(parsed, analysis, LiteralTime(clock), filter_scope=True,
                                 source=source)
                got = clock_free_filter(plan, analysis, parsed, source)
                if "as_of" in parsed.names or "days_since" in parsed.source:
                    assert got is None, parsed.source
                    reading += 1
                    continue
                assert got is not None, parsed.source
                free += 1
                assert got[0].meta.eq(want), parsed.source
                assert got[1] == parsed.names
    assert free > 50 and reading >= 6


@pytest.mark.parametrize("zone", [None, "America/New_York"])
def test_one_plan_at_several_dates_matches_the_reference(zone: str | None) -> None:
    """One compiled plan evaluated at dates in turn (the clock-free filters and the
    pass's shapes shared, the as_of filters per date), against the reference evaluator,
    with NaN, infinities, -0.0, nulls and an unknown account in the events."""
    roadmap = _roadmap(zone)
    plan = hr.compile(roadmap)
    base = _events(zone)
    events = base.vstack(pl.DataFrame({
        "account_id": ["zz"], "user_id": ["q"], "event": ["login"],
        "timestamp": [dt.datetime(2026, 6, 28)], "amount": [2.5]},
        schema_overrides={"timestamp": pl.Datetime("us")}).with_columns(
        pl.col("timestamp").dt.replace_time_zone(zone)).select(base.columns).cast(
        base.schema))
    for as_of in (AS_OF, dt.date(2026, 5, 3), dt.datetime(2026, 4, 12, 13, 30), AS_OF,
                  dt.date(2026, 3, 8)):
        got = hr.evaluate(plan, events, ACCOUNTS, as_of)
        lazy = hr.evaluate(plan, events.lazy(), ACCOUNTS, as_of)
        assert lazy.indicators.equals(got.indicators)
        ref = evaluate_reference(roadmap, events, ACCOUNTS, as_of)
        for row in got.indicators.to_dicts():
            want = ref.accounts[row["account_id"]].indicators
            for k in IDS:
                a, b = row[k], want[k]
                if isinstance(a, float) and isinstance(b, float):
                    assert (math.isnan(a) and math.isnan(b)) or (
                        a == b and math.copysign(1, a) == math.copysign(1, b)), (k, as_of)
                else:
                    assert a == b, (k, as_of, row["account_id"])
        assert got.diagnostics["values_not_finite"] > 0
        assert got.diagnostics["unknown_accounts"] == (1 if as_of == AS_OF else 0)


def test_equal_split_aggregations_are_copied_and_others_kept_apart() -> None:
    plan = hr.compile(_roadmap())
    _, clock, _, accounts = prepare(plan, _events(), ACCOUNTS, AS_OF)
    shape = EventsPass(plan, clock, accounts, optimistic=True)._shape()
    copies = dict(shape.copies)
    assert copies["__0__spend_again"] == "__0__spend"
    assert copies["__0__spend_avg_again"] == "__0__spend_avg"
    assert not {"__0__spend", "__0__spend_avg", "__0__spend_all",
                "__0__spend_avg_all"} & set(copies)
    # the mean's sum is the sum's reduction: one reduction each, shared
    assert len(shape.parts) == len({str(a) for a in shape.aggs if "__part" in str(a)})
    empty = pl.DataFrame(schema=_events().schema)
    got = hr.evaluate(plan, empty, ACCOUNTS, AS_OF)
    assert got.indicators["spend_again"].to_list() == [0.0] * ACCOUNTS.height
    assert got.indicators["spend_avg_again"].null_count() == ACCOUNTS.height


def test_compile_finds_the_columns_of_each_actions_rendering() -> None:
    """The columns each action's branch reads (rendering many rows' actions) are found by
    ``compile``; an evaluation of many accounts finds none of them again, and renders the
    same actions as a plan that found them during the evaluation."""
    from healthrules.datasets import sample
    from healthrules.engine import assemble

    data = sample(300, days=120)
    b2b = EXAMPLES / "b2b-saas" / "roadmap.yaml"
    plan = hr.compile(hr.load(b2b))
    program = assemble.program_for(plan, 0, "us")
    n = len(program.compiled.roadmap.all_actions())
    found = dict(program._branch_reads)
    assert {k for k, _, carried in found if carried} == set(range(n))
    got = hr.evaluate(plan, data.events, data.accounts, data.as_of)
    assert got.actions.height > 0
    assert program._branch_reads == found
    # a plan whose reads are found during the evaluation renders the same actions
    fresh = hr.compile(hr.load(b2b))
    assemble.program_for(fresh, 0, "us")._branch_reads.clear()
    again = hr.evaluate(fresh, data.events, data.accounts, data.as_of)
    assert again.actions.equals(got.actions)
