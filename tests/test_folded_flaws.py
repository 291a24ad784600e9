"""The events pass's flaw count folded into an absolute sum (``EventsPass.query(folded=True)``).

An evaluation's streaming events pass with summed value columns no longer counts the
events with a flaw (null timestamp, null event, NaN or infinite value) in a reduction of
its own: an event with a flaw adds ``inf`` to the first summed column's absolute sum
(``flawed_abs_sum_expr``). Where no account's sum is infinite, the sums are the unfolded
pass's bit for bit and nothing else runs; where one is, ``finish`` counts the kinds of
flaw and the absolute sums' totals over the events read in one query, and only when a
total reaches ``ONE_LIMB_BOUND`` computes each account's absolute sums in a query of its
own. These tests pin the folded pass against the unfolded one (frames, counters, errors,
runs again with two limbs) and against the reference evaluator, on the boundaries of
each branch (docs/performance.md, "Seventh round on the events pass").
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import healthrules as hr
from healthrules.aggregates import ONE_LIMB_BOUND
from healthrules.engine.aggregate import EventsPass, abs_sum_column
from healthrules.errors import InputDataError
from healthrules.query_flags import EVENTS_QUERY_FLAGS
from reference import evaluate_reference
from test_one_limb_sums import BELOW, CLOCK, IDS, ROADMAP, _accounts, _events, _rows

AS_OF = dt.date(2026, 7, 1)
DAY = dt.datetime(2026, 6, 20, 12)


def _both(events: pl.LazyFrame, accounts: pl.DataFrame, plan: hr.Plan | None = None,
          source: str | None = None,
          ) -> tuple[tuple[pl.DataFrame, dict[str, int]], tuple[pl.DataFrame, dict[str, int]]]:
    """(the folded pass finished, the unfolded pass finished), streaming, sorted by key."""
    plan = hr.compile(ROADMAP) if plan is None else plan
    out = []
    for folded in (True, False):
        p = EventsPass(plan, CLOCK, accounts, source=source, optimistic=True)
        raw = p.query(events, folded=folded).collect(optimizations=EVENTS_QUERY_FLAGS)
        assert ("__flawed" in raw.columns) is not folded
        got, counts = p.finish(raw, events)
        out.append((got.sort(p.key, nulls_last=True), counts))
    return out[0], out[1]


def _spy(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Record the flaw queries and the per-account absolute sums computed apart."""
    seen: dict[str, list[Any]] = {"flaw_queries": [], "apart": [], "runs": []}
    real_query = EventsPass._flaw_query
    real_sums = EventsPass._flaws_and_sums
    real_run = EventsPass._run

    def flaw_query(self: EventsPass, *args: Any) -> Any:
        seen["flaw_queries"].append(args[-1])
        return real_query(self, *args)

    def sums(self: EventsPass, *args: Any) -> Any:
        got = real_sums(self, *args)
        seen["apart"].append(got[1] is not None)
        return got

    def run(self: EventsPass, *args: Any) -> Any:
        seen["runs"].append(self.optimistic)
        return real_run(self, *args)

    monkeypatch.setattr(EventsPass, "_flaw_query", flaw_query)
    monkeypatch.setattr(EventsPass, "_flaws_and_sums", sums)
    monkeypatch.setattr(EventsPass, "_run", run)
    return seen


def _flawed_events(values: dict[str, list[float | None]]) -> pl.DataFrame:
    """``_events`` with a null timestamp, a null event and a null account added."""
    ev = _events(values)
    extra = pl.DataFrame(
        {"account_id": [next(iter(values)), next(iter(values)), None],
         "user_id": ["u"] * 3, "event": ["buy", None, "buy"],
         "timestamp": [None, DAY, DAY], "amount": [1.5, 2.5, 3.5], "seats": [1, 2, 3]},
        schema=ev.schema)
    return pl.concat([ev, extra])


ADVERSARIAL = [0.1, -0.0, 0.0, None, math.nan, math.inf, -math.inf, 5e-324, -2.5e-9,
               1e9, -1e9 + 0.5]


@pytest.mark.parametrize("form", ["in-memory", "parquet"])
@pytest.mark.parametrize("flawed", [False, True])
def test_the_folded_pass_is_the_unfolded_one(form: str, flawed: bool, tmp_path: Path) -> None:
    values: dict[str, list[float | None]] = {
        "a": ADVERSARIAL, "b": [0.25, -0.0, None], "c": [], "unknown": [1.0, -2.0]}
    if not flawed:
        values["a"] = [v for v in ADVERSARIAL if v is None or math.isfinite(v)]
    frame = _flawed_events(values) if flawed else _events(values)
    accounts = _accounts({k: v for k, v in values.items() if k != "unknown"})
    if form == "parquet":
        frame.write_parquet(tmp_path / "events.parquet")
        events = pl.scan_parquet(tmp_path / "events.parquet")
    else:
        events = frame.lazy()
    (got, got_counts), (want, want_counts) = _both(events, accounts)
    assert got.equals(want)
    assert got_counts == want_counts
    assert (got_counts["values_not_finite"] > 0) is flawed
    assert (got_counts["events_null_timestamp"] == 1) is flawed


def test_an_empty_frame() -> None:
    events = _events({"a": [0.5]}).clear().lazy()
    (got, got_counts), (want, want_counts) = _both(events, _accounts({"a": [0.5]}))
    assert got.equals(want) and got.height == 0
    assert got_counts == want_counts


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(
    st.sampled_from(["a", "b", "c"]),
    st.lists(st.one_of(st.floats(min_value=-5e9, max_value=5e9, allow_nan=False),
                       st.sampled_from([None, math.nan, math.inf, -math.inf, -0.0,
                                        BELOW, -BELOW, 3e18])),
             max_size=5),
    min_size=1), st.booleans())
def test_the_folded_pass_is_the_unfolded_one_drawn(
        values: dict[str, list[float | None]], flawed: bool) -> None:
    frame = _flawed_events(values) if flawed else _events(values)
    accounts = _accounts(values)
    try:
        folded = _both(frame.lazy(), accounts)
    except InputDataError as e:
        with pytest.raises(InputDataError) as want:
            p = EventsPass(hr.compile(ROADMAP), CLOCK, accounts, optimistic=True)
            p.finish(p.query(frame.lazy()).collect(optimizations=EVENTS_QUERY_FLAGS),
                     frame.lazy())
        assert str(e) == str(want.value)
        return
    (got, got_counts), (want_frame, want_counts) = folded
    assert got.equals(want_frame)
    assert got_counts == want_counts


def test_clean_data_runs_nothing_more(monkeypatch: pytest.MonkeyPatch) -> None:
    values: dict[str, list[float | None]] = {"a": [BELOW / 2, -BELOW / 2 + 0.5], "b": [0.1]}
    seen = _spy(monkeypatch)
    got, counts = EventsPass(hr.compile(ROADMAP), CLOCK, _accounts(values),
                             optimistic=True).collect(_events(values).lazy())
    assert seen == {"flaw_queries": [], "apart": [], "runs": [True]}
    assert counts["values_not_finite"] == 0
    assert got.height == 2


def test_flawed_data_with_small_totals_counts_the_flaws_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the totals of |amount| over every event read: just below the bound (a flaw elsewhere)
    values: dict[str, list[float | None]] = {
        "a": [BELOW / 2 - 8.0, math.nan], "b": [-BELOW / 2 + 8.0], "c": [0.1, None]}
    frame = _flawed_events(values)
    assert frame["amount"].fill_nan(None).abs().sum() < ONE_LIMB_BOUND
    seen = _spy(monkeypatch)
    p = EventsPass(hr.compile(ROADMAP), CLOCK, _accounts(values), optimistic=True)
    got, counts = p.collect(frame.lazy())
    assert seen == {"flaw_queries": [("amount", "seats")], "apart": [False], "runs": [True]}
    monkeypatch.undo()
    (_, _), (want, want_counts) = _both(frame.lazy(), _accounts(values))
    assert got.sort("account_id", nulls_last=True).equals(want)
    assert counts == want_counts
    assert counts["values_not_finite"] == 1 and counts["events_null_timestamp"] == 1


def test_a_total_just_beyond_the_bound_takes_each_accounts_sums(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # every account below the bound, their total beyond it: the sums apart prove them
    values: dict[str, list[float | None]] = {
        "a": [BELOW, math.inf], "b": [-BELOW], "c": [0.5, -0.0]}
    frame = _flawed_events(values)
    seen = _spy(monkeypatch)
    p = EventsPass(hr.compile(ROADMAP), CLOCK, _accounts(values), optimistic=True)
    got, counts = p.collect(frame.lazy())
    assert seen == {"flaw_queries": [("amount", "seats")], "apart": [True], "runs": [True]}
    monkeypatch.undo()
    (_, _), (want, want_counts) = _both(frame.lazy(), _accounts(values))
    assert got.sort("account_id", nulls_last=True).equals(want)
    assert counts == want_counts


def test_one_account_beyond_among_many_runs_two_limbs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    values: dict[str, list[float | None]] = {
        f"acc{i:03d}": [0.1 * i, -0.0, None] for i in range(200)}
    values["acc077"] = [5e9, 0.5, math.nan]  # the one beyond, with a flaw
    frame = _flawed_events(values)
    seen = _spy(monkeypatch)
    p = EventsPass(hr.compile(ROADMAP), CLOCK, _accounts(values), optimistic=True)
    got, counts = p.collect(frame.lazy())
    assert seen["apart"] == [True] and seen["runs"] == [True, False]
    monkeypatch.undo()
    (_, _), (want, want_counts) = _both(frame.lazy(), _accounts(values))
    assert got.sort("account_id", nulls_last=True).equals(want)
    assert counts == want_counts
    row = got.filter(pl.col("account_id") == "acc077").row(0, named=True)
    assert row["__0__spend_all"] == 5e9 + 0.5


def test_one_account_beyond_without_a_flaw_reads_nothing_more(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # no flaw: the folded sums are the absolute sums, checked as they are
    values: dict[str, list[float | None]] = {"a": [5e9, 0.5], "b": [0.25]}
    seen = _spy(monkeypatch)
    p = EventsPass(hr.compile(ROADMAP), CLOCK, _accounts(values), optimistic=True)
    p.collect(_events(values).lazy())
    assert seen == {"flaw_queries": [], "apart": [], "runs": [True, False]}


@pytest.mark.parametrize("flawed", [False, True])
def test_sums_beyond_the_int64_range_are_refused_alike(flawed: bool) -> None:
    values: dict[str, list[float | None]] = {"big": [3e18, 3e18], "small": [1.0, math.nan]}
    frame = (_flawed_events(values) if flawed else _events(values)).lazy()
    errors = []
    for folded in (True, False):
        p = EventsPass(hr.compile(ROADMAP), CLOCK, _accounts(values), optimistic=True)
        raw = p.query(frame, folded=folded).collect(optimizations=EVENTS_QUERY_FLAGS)
        with pytest.raises(InputDataError, match="2\\*\\*62") as e:
            p.finish(raw, frame)
        errors.append(str(e.value))
    assert errors[0] == errors[1]
    assert "'big'" in errors[0]


def test_the_folded_sum_is_infinite_exactly_where_an_event_has_a_flaw() -> None:
    values: dict[str, list[float | None]] = {"a": [1.0, math.nan], "b": [2.0, -3.0],
                                             "c": [math.inf], "d": [None, 0.5]}
    p = EventsPass(hr.compile(ROADMAP), CLOCK, _accounts(values), optimistic=True)
    ev = _events(values).lazy()
    folded = p.query(ev, folded=True).collect(optimizations=EVENTS_QUERY_FLAGS)
    plain = p.query(ev).collect(optimizations=EVENTS_QUERY_FLAGS)
    col = abs_sum_column("amount")
    both = folded.select("account_id", col).join(
        plain.select("account_id", col, "__flawed"), on="account_id", suffix="_plain")
    for r in both.to_dicts():
        if r["__flawed"]:
            assert r[col] == math.inf
        else:
            assert r[col] == r[f"{col}_plain"]


@pytest.mark.parametrize("zone", [None, "Europe/Amsterdam"])
def test_evaluate_with_flaws_and_large_sums_equals_the_reference(zone: str | None) -> None:
    values: dict[str, list[float | None]] = {
        "edge": [BELOW, -0.5e-9], "beyond": [5e9, 0.25, math.nan], "small": [0.1, None],
        "zero": [-0.0, 0.0], "empty": []}
    events, accounts = _events(values), _accounts(values)
    roadmap = ROADMAP
    if zone is not None:
        spec = ROADMAP.model_dump(mode="json", by_alias=True, exclude_none=True)
        spec["data"]["events"]["timezone"] = zone
        roadmap = hr.Roadmap.model_validate(spec)
        # the wall times of a daylight-saving change (2026-03-29 and 2026-10-25 in Amsterdam)
        events = events.with_columns(
            pl.col("timestamp").dt.replace_time_zone(zone, ambiguous="earliest",
                                                     non_existent="null"))
    got = _rows(hr.evaluate(roadmap, events.lazy(), accounts, AS_OF))
    ref = evaluate_reference(roadmap, events, accounts, AS_OF)
    for acc in values:
        assert got[acc] == {k: ref.accounts[acc].indicators[k] for k in IDS}, acc


def test_three_sources_where_one_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    roadmap = hr.Roadmap.model_validate({
        "id": "three", "goal": "g",
        "data": {"events": {
            "usage": {"values": {"amount": "float"}},
            "billing": {"account": "customer", "user": None, "event": None,
                        "timestamp": "at", "values": {"paid": "float"}},
            "notes": {"account": "customer", "user": None, "event": None,
                      "timestamp": "at", "values": {"words": "int"}}}},
        "indicators": [
            {"id": "spend", "family": "outcome", "aggregate": "sum", "of": "amount",
             "window": "all", "source": "usage"},
            {"id": "paid", "family": "outcome", "aggregate": "mean", "of": "paid",
             "window": "all", "source": "billing"},
            {"id": "words", "family": "outcome", "aggregate": "sum", "of": "words",
             "window": "all", "source": "notes"},
        ],
        "stages": [{"id": "s"}],
    })
    usage = _events({"a": [0.1, 0.2, math.nan], "b": [0.3]}).drop("seats")
    # billing: a flaw (NaN) and an account beyond the one-Int64 bound: its sums apart,
    # then two limbs
    billing = pl.DataFrame({"customer": ["a", "a", "b", "b", "b"],
                            "at": [DAY] * 5, "paid": [5e9, 5e9 + 0.5, -1.5, 2.25, math.nan]})
    notes = pl.DataFrame({"customer": ["a", "b"], "at": [DAY, None], "words": [3, 4]})
    accounts = pl.DataFrame({"account_id": ["a", "b"]})
    frames = {"usage": usage.lazy(), "billing": billing.lazy(), "notes": notes.lazy()}
    seen = _spy(monkeypatch)
    result = hr.evaluate(roadmap, frames, accounts, AS_OF)
    got = result.indicators.sort("account_id")
    assert seen["runs"] == [False]  # only billing's pass ran again, with two limbs
    assert sorted(seen["apart"]) == [False, False, True]
    assert got["spend"].to_list() == [0.3, 0.3]  # (exact sums)
    assert got["paid"].to_list() == [(5e9 + 5e9 + 0.5) / 2, (2.25 - 1.5) / 2]
    assert got["words"].to_list() == [3, 0]
    ref = evaluate_reference(roadmap, {k: v.collect() for k, v in frames.items()}, accounts,
                             AS_OF)
    for r in got.to_dicts():
        for k in ("spend", "paid", "words"):
            assert r[k] == ref.accounts[r["account_id"]].indicators[k], (r["account_id"], k)
