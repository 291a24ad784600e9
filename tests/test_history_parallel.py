"""history() in parallel parts: grid chunks assembled two at a time in threads, the day and
presence tables built side by side, text values of distinct counts coded as integers in the
events pass, the pass's data checks counted with a mask. Each must give exactly the frames
and counts of the plain path (one chunk) and of evaluate() at every date."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.history import history, snapshots

T0 = dt.datetime(2026, 2, 1, 10)
START, END = dt.date(2026, 2, 4), dt.date(2026, 3, 20)
ACCOUNTS = pl.DataFrame({"account_id": [f"a{k}" for k in range(5)]})


def _roadmap() -> hr.Roadmap:
    """Distinct counts of a text column (the user) and of an integer one (``seat``), in
    trailing and cumulative windows, next to counts; an action whose text shows them."""
    indicators: list[dict[str, Any]] = []
    for k, w in enumerate(["5d", "all"]):
        indicators += [
            {"id": f"users_{k}", "family": "process", "aggregate": "distinct", "window": w},
            {"id": f"seats_{k}", "family": "process", "aggregate": "distinct", "of": "seat",
             "where": "event == 'login'", "window": w},
            {"id": f"logins_{k}", "family": "process", "aggregate": "count",
             "where": "event == 'login'", "window": w},
        ]
    return hr.Roadmap.model_validate({
        "id": "par", "goal": "g",
        "data": {"events": {"values": {"seat": "int"}}},
        "indicators": indicators,
        "stages": [{"id": "only", "actions": [{
            "id": "few_users", "kind": "challenge", "when": "users_0 < 2",
            "do": "{users_0} users and {seats_1} seats lately"}]}]})


def _events(rows: list[tuple[int, int, int, int, str]]) -> pl.DataFrame:
    return pl.DataFrame({
        "account_id": [f"a{a}" for a, _, _, _, _ in rows],
        "user_id": [f"u{u}" for _, u, _, _, _ in rows],
        "seat": [s for _, _, s, _, _ in rows],
        "event": [e for _, _, _, _, e in rows],
        "timestamp": [T0 + dt.timedelta(days=d) for _, _, _, d, _ in rows],
    }, schema={"account_id": pl.String, "user_id": pl.String, "seat": pl.Int64,
               "event": pl.String, "timestamp": pl.Datetime("us")})


ROWS = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3), st.integers(-2, 3),
                          st.integers(0, 48), st.sampled_from(["login", "report"])),
                min_size=1, max_size=50)


def _frames(h: Any) -> dict[str, pl.DataFrame]:
    return {**h.frames, "changes": h.lifecycle.changes, "states": h.lifecycle.states}


@settings(max_examples=10)
@given(ROWS, st.sampled_from(["1d", "3d", "1w"]), st.integers(1, 9))
def test_chunks_in_threads_give_the_frames_of_one_chunk(
        rows: list[tuple[int, int, int, int, str]], every: str, most: int) -> None:
    plan = hr.compile(_roadmap())
    events = _events(rows)
    whole = history(plan, events, ACCOUNTS, START, END, every=every)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(snapshots, "MAX_GRID_ROWS", most)
        parts = history(plan, events, ACCOUNTS, START, END, every=every)
    for name, frame in _frames(whole).items():
        assert_frame_equal(_frames(parts)[name], frame)


@settings(max_examples=10)
@given(ROWS, st.sampled_from(["1d", "4d"]))
def test_distinct_text_and_integer_values_equal_evaluate_at_every_date(
        rows: list[tuple[int, int, int, int, str]], every: str) -> None:
    plan = hr.compile(_roadmap())
    events = _events(rows)
    h = history(plan, events, ACCOUNTS, START, END, every=every)
    for d in h.dates:
        one = hr.evaluate(plan, events, ACCOUNTS, d)
        assert_frame_equal(h.at(d).indicators, one.indicators)
        assert_frame_equal(h.at(d).actions, one.actions)


def test_chunks_are_equal_and_a_multiple_of_the_workers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    plan = hr.compile(_roadmap())
    engine = snapshots.Engine(plan, _events([(0, 0, 1, 3, "login")]).lazy(), ACCOUNTS,
                              [START, END])
    dates = [START + dt.timedelta(days=k) for k in range(9)]
    pairs = engine.pairs(dates)  # 45 pairs
    monkeypatch.setattr(snapshots, "MAX_GRID_ROWS", 20)  # at most 10 rows a chunk
    chunks = engine._chunks(pairs)
    assert [size for _, size in chunks] == [8, 8, 8, 8, 8, 5]
    assert [lo for lo, _ in chunks] == [0, 8, 16, 24, 32, 40]
    monkeypatch.setattr(snapshots, "MAX_GRID_ROWS", 1000)
    assert engine._chunks(pairs) == [(0, 45)]


def test_data_checks_of_the_events_pass_equal_evaluate() -> None:
    """Null accounts and timestamps, unknown accounts (two, one of them twice), null event
    names and non-finite values: history over one date counts them as evaluate does."""
    roadmap = hr.Roadmap.model_validate({
        "id": "q", "goal": "g",
        "data": {"events": {"user": None, "values": {"amount": "float"}}},
        "indicators": [{"id": "n", "family": "process", "aggregate": "count"},
                       {"id": "total", "family": "outcome", "aggregate": "sum",
                        "of": "amount"}],
        "stages": [{"id": "s"}]})
    ts = [dt.datetime(2026, 6, d, 9) for d in range(20, 28)]
    events = pl.DataFrame({
        "account_id": ["a", None, "x", "x", "y", "a", "b", "a"],
        "event": ["login", "login", "login", None, "buy", None, "login", "buy"],
        "timestamp": [*ts[:5], None, *ts[6:]],
        "amount": [1.0, 2.0, math.nan, 3.0, math.inf, 4.0, -math.inf, 5.0],
    })
    accounts = pl.DataFrame({"account_id": ["a", "b"]})
    day = dt.date(2026, 6, 30)
    one = hr.evaluate(roadmap, events, accounts, day)
    h = history(roadmap, events, accounts, day, day)
    keys = ["events_read", "events_null_account", "events_null_timestamp", "events_null_event",
            "values_not_finite", "events_unknown_account", "unknown_accounts"]
    assert {k: h.diagnostics[k] for k in keys} == {k: one.diagnostics[k] for k in keys}
    assert {k: h.diagnostics[k] for k in keys} == {
        "events_read": 8, "events_null_account": 1, "events_null_timestamp": 1,
        "events_null_event": 2, "values_not_finite": 3, "events_unknown_account": 3,
        "unknown_accounts": 2}


@pytest.mark.parametrize("big", [False, True])
def test_presence_rows_sort_by_one_packed_integer_or_by_three_columns(big: bool) -> None:
    """The packed key sorts as (account, value, day) does; values too large to pack (``big``:
    codes and accounts near 2**32, 63 bits before the days) fall back to the three columns."""
    from healthrules.history.aggregation import _sort_by_account_value_day

    scale = (1 << 29, 1 << 29) if big else (1, 1)
    rows = [(a, v, d) for a in (3, 0, 2) for v in (5, 1, 4) for d in (19_000, 18_990, 19_400)]
    pres = pl.DataFrame({
        "__acc": [a * scale[0] for a, _, _ in rows],
        "__val": [v * scale[1] + v for _, v, _ in rows],
        "__dn": [d for _, _, d in rows],
        "__flag": [k % 2 == 0 for k in range(len(rows))],
    }, schema={"__acc": pl.UInt32, "__val": pl.UInt32, "__dn": pl.Int64,
               "__flag": pl.Boolean})
    got = _sort_by_account_value_day(pres)
    assert_frame_equal(got, pres.sort("__acc", "__val", "__dn"))
    assert_frame_equal(_sort_by_account_value_day(pres.head(1)), pres.head(1))
