"""history()'s incremental tables: running sums that start again in every account, distinct
counts from runs of overlapping spans, on event days placed around the window edges."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.history import history

AS_OF = dt.date(2026, 3, 31)
T0 = dt.datetime(2026, 2, 1, 10)
WINDOWS = ["3d", "7d", "all", {"from": "start"}]


def _roadmap(windows: list[Any]) -> hr.Roadmap:
    indicators: list[dict[str, Any]] = []
    for k, w in enumerate(windows):
        indicators += [
            {"id": f"users_{k}", "family": "process", "aggregate": "distinct", "window": w},
            {"id": f"logins_{k}", "family": "process", "aggregate": "count",
             "where": "event == 'login'", "window": w},
            {"id": f"days_{k}", "family": "process", "aggregate": "active_days", "window": w},
            {"id": f"minutes_{k}", "family": "process", "aggregate": "sum", "of": "minutes",
             "window": w},
        ]
    return hr.Roadmap.model_validate({
        "id": "grid", "goal": "g",
        "data": {"events": {"values": {"minutes": "int"}},
                 "accounts": {"attributes": {"start": "date"}}},
        "indicators": indicators, "stages": [{"id": "only"}]})


def _events(rows: list[tuple[int, int, int, str]]) -> pl.DataFrame:
    return pl.DataFrame({
        "account_id": [f"a{a}" for a, _, _, _ in rows],
        "user_id": [f"u{u}" for _, u, _, _ in rows],
        "event": [e for _, _, _, e in rows],
        "timestamp": [T0 + dt.timedelta(days=d) for _, _, d, _ in rows],
        "minutes": [d + 1 for _, _, d, _ in rows],
    }, schema={"account_id": pl.String, "user_id": pl.String, "event": pl.String,
               "timestamp": pl.Datetime("us"), "minutes": pl.Int64})


ACCOUNTS = pl.DataFrame({"account_id": ["a0", "a1", "a2", "a3"],
                         "start": [dt.date(2026, 2, 3), None, dt.date(2026, 1, 1),
                                   dt.date(2026, 2, 20)]})


def _assert_every_date(plan: hr.Plan, events: pl.DataFrame, start: dt.date, end: dt.date,
                       every: str) -> None:
    h = history(plan, events, ACCOUNTS, start, end, every=every)
    for d in h.dates:
        one = hr.evaluate(plan, events, ACCOUNTS, d)
        assert_frame_equal(h.at(d).indicators, one.indicators)


def test_distinct_spans_touching_at_the_window_edge() -> None:
    """One user seen on days 0, 6, 13, 19, 20 and 27: a 7-day window's spans [d, d + 7)
    touch (0 and 7 would), overlap (13 and 19) or leave a gap; another account in between
    has no events, a third only late ones."""
    days = [0, 6, 13, 19, 20, 27]
    rows = [(0, 0, d, "login") for d in days] + [(0, 1, 7, "report"), (0, 1, 14, "login"),
                                                  (2, 0, 25, "login"), (2, 2, 25, "login"),
                                                  (3, 4, 2, "report")]
    plan = hr.compile(_roadmap(WINDOWS))
    _assert_every_date(plan, _events(rows), T0.date(), (T0 + dt.timedelta(days=36)).date(),
                       "1d")


@settings(max_examples=12)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 40),
                          st.sampled_from(["login", "report"])), min_size=1, max_size=40),
       st.sampled_from(["1d", "2d", "1w"]))
def test_history_equals_evaluate_on_random_event_days(
        rows: list[tuple[int, int, int, str]], every: str) -> None:
    plan = hr.compile(_roadmap(WINDOWS))
    _assert_every_date(plan, _events(rows), (T0 + dt.timedelta(days=3)).date(),
                       (T0 + dt.timedelta(days=45)).date(), every)


def test_running_sums_that_wrap_across_accounts() -> None:
    """The day table's running sums run over every account: with four accounts of about
    4e18 each (every account's own sum fits, the table's total does not), the Int64 sums
    wrap, and the windows (differences, or the sum less the account's base) stay exact."""
    roadmap = hr.Roadmap.model_validate({
        "id": "wrap", "goal": "g",
        "data": {"events": {"values": {"n": "int", "x": "float"}}},
        "indicators": [
            {"id": f"{col}_{k}", "family": "process", "aggregate": "sum", "of": col,
             "window": w}
            for col in ("n", "x") for k, w in enumerate(["3d", "all"])],
        "stages": [{"id": "only"}]})
    big, step = 4_000_000_000_000_000_000, 3
    rows = [(a, d) for a in range(4) for d in (a, a + 2, a + 5)]
    events = pl.DataFrame({
        "account_id": [f"a{a}" for a, _ in rows],
        "user_id": ["u"] * len(rows),
        "event": ["use"] * len(rows),
        "timestamp": [T0 + dt.timedelta(days=d) for _, d in rows],
        "n": [big // 3 + d * step for _, d in rows],
        "x": [float(big // 3) + d * 0.25 for _, d in rows],
    }, schema={"account_id": pl.String, "user_id": pl.String, "event": pl.String,
               "timestamp": pl.Datetime("us"), "n": pl.Int64, "x": pl.Float64})
    accounts = pl.DataFrame({"account_id": [f"a{a}" for a in range(5)]})
    total = events.select(pl.col("n").cast(pl.Int128).sum()).item()
    assert total > 2**63  # the table-wide running sum wraps
    plan = hr.compile(roadmap)
    h = history(plan, events, accounts, T0.date(), (T0 + dt.timedelta(days=10)).date(), "1d")
    for d in h.dates:
        assert_frame_equal(h.at(d).indicators, hr.evaluate(plan, events, accounts, d).indicators)
    last = h.at(h.dates[-1]).indicators.sort("account_id")
    assert last["n_1"].to_list()[:4] == [
        sum(big // 3 + d * step for a2, d in rows if a2 == a) for a in range(4)]
