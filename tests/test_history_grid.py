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
