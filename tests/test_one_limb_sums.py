"""Optimistic exact sums: the events pass adds a float column's billionths as ONE Int64.

The pass of :func:`healthrules.evaluate` (``EventsPass(..., optimistic=True)``) sums each
value's billionths (``hi * 10**9 + lo`` of the two exact limbs) as one Int64 per sum or mean
instead of one per limb. Int64 sums wrap silently in polars, so the totals are trusted only
when every account's absolute sum of the column is below
:data:`healthrules.aggregates.ONE_LIMB_BOUND`; otherwise the pass runs again with two limbs.
Either way the results are the bits of the two-limb pass and of the reference evaluator
(docs/performance.md, "Optimistic exact sums").
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

import healthrules as hr
from healthrules.aggregates import (
    EXACT_SCALE,
    ONE_LIMB_BOUND,
    exact_columns,
    exact_one_column,
    exact_one_limb,
    quantise,
)
from healthrules.engine.aggregate import EventsPass
from healthrules.engine.evaluator import events_query
from healthrules.errors import InputDataError
from healthrules.inputs import Clock
from reference import evaluate_reference

AS_OF = dt.date(2026, 7, 1)
DAY = dt.datetime(2026, 6, 20, 12)
CLOCK = Clock(AS_OF, dt.datetime(2026, 7, 2), None, "us")

ROADMAP = hr.Roadmap.model_validate({
    "id": "money", "goal": "g",
    "data": {"events": {"values": {"amount": "float", "seats": "int"}}},
    "indicators": [
        {"id": "spend_30d", "family": "outcome", "aggregate": "sum", "of": "amount",
         "window": "30d"},
        {"id": "spend_all", "family": "outcome", "aggregate": "sum", "of": "amount",
         "window": "all"},
        {"id": "avg_spend", "family": "outcome", "aggregate": "mean", "of": "amount",
         "window": "30d"},
        {"id": "spend_delta", "family": "outcome", "aggregate": "sum", "of": "amount",
         "window": "7d", "compare": "delta"},
        {"id": "buys", "family": "outcome", "aggregate": "sum", "of": "amount",
         "window": "all", "where": "event == 'buy'"},
        {"id": "seats_total", "family": "process", "aggregate": "sum", "of": "seats",
         "window": "all"},
    ],
    "stages": [{"id": "s"}],
})
IDS = ["spend_30d", "spend_all", "avg_spend", "spend_delta", "buys", "seats_total"]

# an account's absolute sum just below the bound, and values whose billionths are near the
# largest a single Int64 holds (9.22e18: 9.22e9 units)
BELOW = ONE_LIMB_BOUND * (1 - 1e-9)


def _events(values: dict[str, list[float | None]]) -> pl.DataFrame:
    rows = [{"account_id": acc, "user_id": "u", "event": "buy" if i % 3 else "view",
             "timestamp": DAY - dt.timedelta(days=4 * i, minutes=i), "amount": v, "seats": i}
            for acc, vs in values.items() for i, v in enumerate(vs)]
    return pl.DataFrame(rows, schema={"account_id": pl.String, "user_id": pl.String,
                                      "event": pl.String, "timestamp": pl.Datetime("us"),
                                      "amount": pl.Float64, "seats": pl.Int64})


def _accounts(values: dict[str, list[float | None]]) -> pl.DataFrame:
    return pl.DataFrame({"account_id": sorted(values)})


def _passes(values: dict[str, list[float | None]]) -> tuple[EventsPass, EventsPass, pl.LazyFrame]:
    plan = hr.compile(ROADMAP)
    events = _events(values).lazy()
    acc = _accounts(values)
    return (EventsPass(plan, CLOCK, acc, optimistic=True), EventsPass(plan, CLOCK, acc),
            events)


def _collect(p: EventsPass, events: pl.LazyFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    got, counts = p.collect(events)
    return got.sort(p.key), counts


def _exact(values: list[float | None]) -> float:
    return sum(quantise(v) for v in values if v is not None and math.isfinite(v)) / EXACT_SCALE


def _rows(result: hr.Evaluation) -> dict[str, dict[str, Any]]:
    return {r["account_id"]: {k: r[k] for k in IDS} for r in result.indicators.to_dicts()}


# --------------------------------------------------------------------------- one limb


ONE_LIMB_EDGES = [0.1, 0.3, 1 / 3, 2.5e-9, -2.5e-9, 1.5e-9, 0.5e-9, 5e-324, -0.0,
                  2.0**32 + 0.5, 4.6e9 - 0.25, -4.6e9 + 0.25, 9.2e9, -9.2e9, 9.223e9,
                  12345678.123456789, -123.456789012, 0.9999999995, 4.503599627370497e6]


def _count_runs(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record each run of an events pass (whether it was the optimistic one)."""
    runs: list[bool] = []
    real_run = EventsPass._run

    def counting(self: EventsPass, ev: pl.LazyFrame, in_memory: bool) -> pl.DataFrame:
        runs.append(self.optimistic)
        return real_run(self, ev, in_memory)

    monkeypatch.setattr(EventsPass, "_run", counting)
    return runs


def test_one_limb_is_the_python_billionths() -> None:
    got = pl.DataFrame({"v": ONE_LIMB_EDGES}).select(exact_one_limb(pl.col("v")))
    assert got.to_series().to_list() == [quantise(v) for v in ONE_LIMB_EDGES]


@given(st.floats(min_value=-9.2e9, max_value=9.2e9, allow_nan=False))
def test_one_limb_is_the_python_billionths_below_the_int64_range(v: float) -> None:
    got = pl.DataFrame({"v": [v]}).select(exact_one_limb(pl.col("v"))).item()
    assert got == quantise(v)


def test_the_bound_leaves_room_for_the_rounding_of_each_value() -> None:
    # 2**32 values (the most a group holds), each off its exact billionths by one half,
    # plus the float absolute sum's own relative error: still inside Int64
    worst = ONE_LIMB_BOUND * (1 + 2.0**-21) * EXACT_SCALE + 2**32
    assert worst < 2**63 - 1


# --------------------------------------------------------------------------- the pass


def test_the_evaluation_pass_sums_one_column_and_events_query_keeps_two_limbs() -> None:
    values: dict[str, list[float | None]] = {"a": [0.1, 0.2]}
    optimistic, _, events = _passes(values)
    text = optimistic.query(events).explain()
    assert f'col("{exact_one_column("amount")}")' in text
    assert exact_columns("amount")[0] not in text
    # the public lazy query is taken without the check: it keeps the two limbs
    public = events_query(ROADMAP, _events(values), _accounts(values), AS_OF).explain()
    assert exact_one_column("amount") not in public
    assert exact_columns("amount")[0] in public and exact_columns("amount")[1] in public


MAGNITUDES = st.one_of(
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    st.sampled_from([0.1, -0.2, 2.5e-9, 1.5e-9, -0.0, None, math.nan, math.inf, -math.inf,
                     2.0e9 + 0.123456789, -2.0e9 - 0.5e-9]),
)


@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.lists(MAGNITUDES, max_size=6),
                       min_size=1))
def test_the_optimistic_pass_gives_the_bits_of_two_limbs(
        values: dict[str, list[float | None]]) -> None:
    optimistic, exact, events = _passes(values)
    got, got_counts = _collect(optimistic, events)
    want, want_counts = _collect(exact, events)
    assert got.equals(want)
    assert got_counts == want_counts


def _account_crossing() -> dict[str, list[float | None]]:
    return {
        # just below the bound: one Int64, exact
        "below": [BELOW / 2, -BELOW / 2 + 0.5, 0.25],
        # mixed signs whose billionths add up beyond Int64 (3 * 4e18 > 9.22e18) before
        # coming back: the partial sums wrap, the total is exact (modular arithmetic), but
        # the pass cannot know that from the absolute sum: it runs again
        "wraps": [4e9, 4e9 + 0.5, 4e9, -4e9, -4e9 + 1e-9],
        # one value whose billionths alone leave Int64 (1e10 * 1e9), and so does the total
        "huge": [1e10, 0.5, math.nan, None],
        "small": [0.1, 0.2, math.inf, 0.3],
    }


@pytest.mark.parametrize("lazy", [False, True], ids=["in-memory", "streaming"])
def test_accounts_beyond_the_bound_run_the_pass_again_with_two_limbs(
        lazy: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    values = _account_crossing()
    optimistic, exact, events = _passes(values)
    raw = optimistic._run(events, in_memory=not lazy)
    assert optimistic.beyond_one_limb(raw)
    # the one-Int64 totals of "huge" are wrong (its values' billionths wrapped one by one):
    # that is what the check is for
    wrapped = raw.filter(pl.col("account_id") == "huge").row(0, named=True)
    assert wrapped["__0__spend_all"] != _exact(values["huge"])
    runs = _count_runs(monkeypatch)
    got, counts = optimistic.collect(events, None if lazy else 20)
    assert runs == [True, False]  # the optimistic pass, then the two-limb one
    want, want_counts = _collect(exact, events)
    assert got.sort("account_id").equals(want)
    assert counts == want_counts and counts["values_not_finite"] == 2
    rows = {r["account_id"]: r for r in got.to_dicts()}
    for acc, vs in values.items():
        assert rows[acc]["__0__spend_all"] == _exact(vs), acc
    assert rows["wraps"]["__0__spend_all"] == 4e9 + 0.5 + 1e-9


def test_accounts_just_below_the_bound_are_summed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    values: dict[str, list[float | None]] = {
        "a": [BELOW / 2, -BELOW / 2 + 0.5, 0.25], "b": [-BELOW + 0.125], "c": [0.1, -0.3]}
    optimistic, exact, events = _passes(values)
    runs = _count_runs(monkeypatch)
    got, _ = optimistic.collect(events)
    assert runs == [True]
    monkeypatch.undo()
    assert got.sort("account_id").equals(_collect(exact, events)[0])
    rows = {r["account_id"]: r for r in got.to_dicts()}
    for acc, vs in values.items():
        assert rows[acc]["__0__spend_all"] == _exact(vs), acc


def test_evaluate_at_the_bound_equals_the_reference() -> None:
    values = _account_crossing() | {"edge": [BELOW, -0.5e-9], "empty": []}
    events, accounts = _events(values), _accounts(values)
    for frame in (events, events.lazy()):
        got = _rows(hr.evaluate(ROADMAP, frame, accounts, AS_OF))
        ref = evaluate_reference(ROADMAP, events, accounts, AS_OF)
        for acc in values:
            assert got[acc] == {k: ref.accounts[acc].indicators[k] for k in IDS}, acc


def test_sums_beyond_the_int64_range_are_still_refused() -> None:
    # beyond the one-limb bound the pass runs with two limbs, whose range check refuses
    values: dict[str, list[float | None]] = {"big": [3e18, 3e18], "small": [1.0]}
    with pytest.raises(InputDataError, match="2\\*\\*62"):
        hr.evaluate(ROADMAP, _events(values), _accounts(values), AS_OF)


def test_several_sources_fall_back_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    roadmap = hr.Roadmap.model_validate({
        "id": "two", "goal": "g",
        "data": {"events": {
            "usage": {"values": {"amount": "float"}},
            "billing": {"account": "customer", "user": None, "event": None,
                        "timestamp": "at", "values": {"paid": "float"}}}},
        "indicators": [
            {"id": "spend", "family": "outcome", "aggregate": "sum", "of": "amount",
             "window": "all", "source": "usage"},
            {"id": "paid", "family": "outcome", "aggregate": "mean", "of": "paid",
             "window": "all", "source": "billing"},
        ],
        "stages": [{"id": "s"}],
    })
    usage = _events({"a": [0.1, 0.2], "b": [0.3]}).drop("seats")
    billing = pl.DataFrame({"customer": ["a", "a", "b", "b"],
                            "at": [DAY] * 4, "paid": [5e9, 5e9 + 0.5, -1.5, 2.25]})
    accounts = pl.DataFrame({"account_id": ["a", "b"]})
    frames = {"usage": usage.lazy(), "billing": billing.lazy()}
    runs: list[tuple[str, bool]] = []
    real_run = EventsPass._run

    def counting(self: EventsPass, ev: pl.LazyFrame, in_memory: bool) -> pl.DataFrame:
        runs.append((self.source, self.optimistic))
        return real_run(self, ev, in_memory)

    monkeypatch.setattr(EventsPass, "_run", counting)
    got = hr.evaluate(roadmap, frames, accounts, AS_OF).indicators.sort("account_id")
    assert got["spend"].to_list() == [_exact([0.1, 0.2]), _exact([0.3])]
    assert got["paid"].to_list() == [_exact([5e9, 5e9 + 0.5]) / 2, _exact([-1.5, 2.25]) / 2]
    # the two passes ran together (one collect_all); only billing's ran again, two limbs
    assert runs == [("billing", False)]


@pytest.mark.parametrize(("kind_name", "parts"), [("sum", 1), ("mean", 2)])
def test_one_limb_split_is_its_polars_form(kind_name: str, parts: int) -> None:
    from healthrules.aggregates import AGGREGATE_KINDS

    kind = AGGREGATE_KINDS[kind_name]  # type: ignore[index]
    inputs = kind.inputs(condition=pl.col("keep"), timestamp=pl.col("t"), of="v", user=None,
                         value_types={"v": "float"}, day="__day", finite=True, one_limb=True)
    assert inputs.exact is not None and len(inputs.exact) == 1
    assert kind.split is not None
    split = kind.split(inputs)
    assert split is not None and len(split.parts) == parts
    assert split.whole().meta.eq(kind.polars(inputs))
    frame = pl.DataFrame({"g": [0, 0, 1, 1, 1], "keep": [True, None, True, False, True],
                          "v": [0.1, 0.2, 2.5e-9, 7.0, None]})
    frame = frame.with_columns(exact_one_limb(pl.col("v")).alias(exact_one_column("v")))
    got = frame.group_by("g").agg(kind.polars(inputs).alias("x")).sort("g")["x"].to_list()
    want = [0.1, 2e-9]  # 2.5 billionths on the grid: 2, half to even; a null is no value
    assert got == want
