"""History against evaluate near the Int64 bounds: the same values, or the same refusal.

Sums and means are exact or refused (``values_out_of_range``) when an account's absolute
values of a summed column add up to 2**62 or more over the events one evaluation reads
(docs/semantics.md, "Floating point"). ``history(...)`` refuses the whole grid when, and
only when, ``evaluate(..., d)`` refuses at one of its dates ``d``; otherwise every date's
values are evaluate's, bit for bit (docs/time.md, "History").

Found here (before the fix): history refused a grid of which every date was computable
(two values of 2**61 read by no one date together), and computed a grid where evaluate
refused (a value near the Int64 bounds in an event with no timestamp, or of an account
missing from the accounts frame: evaluate's range check counts them).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import healthrules as hr
from healthrules.history import history
from healthrules.history.snapshots import date_range

MAX = 2**63 - 1
MIN = -(2**63)
FIRST, LAST = dt.date(2026, 6, 1), dt.date(2026, 7, 1)

ROADMAP = hr.Roadmap.model_validate({
    "id": "bounds", "goal": "g",
    "data": {"events": {"values": {"qty": "int", "amount": "float"}}},
    "indicators": [
        {"id": "qty_7d", "family": "outcome", "aggregate": "sum", "of": "qty", "window": "7d"},
        {"id": "qty_mean_30d", "family": "outcome", "aggregate": "mean", "of": "qty",
         "window": "30d"},
        {"id": "qty_delta_10d", "family": "outcome", "aggregate": "sum", "of": "qty",
         "window": "10d", "compare": "delta"},
        {"id": "amount_14d", "family": "outcome", "aggregate": "sum", "of": "amount",
         "window": "14d"},
        {"id": "amount_mean_3d", "family": "outcome", "aggregate": "mean", "of": "amount",
         "window": "3d"},
        {"id": "events_7d", "family": "process", "aggregate": "count", "window": "7d"},
    ],
    "stages": [{"id": "s"}],
})
ALL_TIME = hr.Roadmap.model_validate({
    "id": "bounds_all", "goal": "g",
    "data": {"events": {"values": {"qty": "int", "amount": "float"}}},
    "indicators": [
        {"id": "qty_all", "family": "outcome", "aggregate": "sum", "of": "qty",
         "window": "all"},
        {"id": "qty_7d", "family": "outcome", "aggregate": "mean", "of": "qty",
         "window": "7d"},
    ],
    "stages": [{"id": "s"}],
})
ACCOUNTS = pl.DataFrame({"account_id": ["a", "b"]})
SCHEMA = {"account_id": pl.String, "user_id": pl.String, "event": pl.String,
          "timestamp": pl.Datetime("us"), "qty": pl.Int64, "amount": pl.Float64}

Row = tuple[str | None, dt.datetime | None, int | None, float | None]


def _events(rows: list[Row]) -> pl.DataFrame:
    return pl.DataFrame([(acc, "u", "e", ts, qty, amount) for acc, ts, qty, amount in rows],
                        schema=SCHEMA, orient="row")


def _at(day: int, hour: int = 12) -> dt.datetime:
    """Noon of the ``day``-th day after 2026-06-01 (negative: before)."""
    return dt.datetime.combine(FIRST + dt.timedelta(days=day), dt.time(hour))


def _refused(e: hr.InputDataError) -> bool:
    codes = {i.code for i in e.issues}
    assert codes == {"values_out_of_range"}, e
    return True


def problems(roadmap: hr.Roadmap, events: pl.DataFrame, every: str,
             accounts: pl.DataFrame = ACCOUNTS) -> tuple[list[str], bool]:
    """Where ``history(...).at(d)`` and ``evaluate(..., d)`` disagree (values, or one side
    refusing), and whether history refused."""
    dates = date_range(FIRST, LAST, every)
    try:
        h: Any = history(roadmap, events, accounts, FIRST, LAST, every=every)
    except hr.InputDataError as e:
        h = None if _refused(e) else e
    out: list[str] = []
    refused_at: list[dt.date] = []
    for d in dates:
        try:
            one = hr.evaluate(roadmap, events, accounts, d).indicators
        except hr.InputDataError as e:
            _refused(e)
            refused_at.append(d)
            if h is not None:
                out.append(f"{d}: evaluate refuses, history computes {h.at(d).indicators}")
            continue
        if h is not None:
            at = h.at(d).indicators.sort("account_id")
            if at.rows() != one.sort("account_id").rows():
                out.append(f"{d}: history {at.rows()} != evaluate {one.sort('account_id').rows()}")
    if h is None and not refused_at:
        out.append("history refuses the grid, evaluate computes every date of it")
    return out, h is None


# events per case; the expected answer: does history (and so evaluate at some date) refuse
CASES: dict[str, tuple[list[Row], bool]] = {
    # two values of 2**61 no one date reads together (30 days apart, the widest window
    # 30 days): every date is computable, so history computes the grid (it refused it)
    "apart": ([("a", _at(-25), 2**61, None), ("a", _at(19), 2**61, None)], False),
    # the same values 10 days apart: the dates after the second refuse, so history does
    "together": ([("a", _at(2), 2**61, None), ("a", _at(12), 2**61, None)], True),
    # Int64 max where no date reads it (before the first date's widest window, 20 days
    # before it: the previous window of the 10-day delta), and far apart
    "max_unread": ([("a", _at(-45), MAX, None), ("a", _at(5), 3, None)], False),
    "max_read": ([("a", _at(5), MAX, None)], True),
    "min_read": ([("b", _at(5), MIN, None), ("b", _at(5), 7, None)], True),
    # a sum that fits (0) of terms that do not: refused on both sides, never wrapped
    "max_and_min": ([("a", _at(5), MAX, None), ("a", _at(5), -MAX, None)], True),
    # evaluate counts an event with no timestamp, and one of an unknown account, in its
    # range check: history refused neither
    "no_timestamp": ([("a", None, MAX, None), ("a", _at(5), 1, None)], True),
    "unknown_account": ([("zz", _at(5), MAX, None), ("a", _at(5), 1, None)], True),
    # an event with no account is not in the check (nor anywhere)
    "no_account": ([(None, _at(5), MAX, None), ("a", _at(15), 5, None)], False),
    # floats: 3e18 twice within 14 days, and once each far apart
    "floats_together": ([("a", _at(3), None, 3e18), ("a", _at(9), None, 3e18)], True),
    "floats_apart": ([("a", _at(-14), None, 3e18), ("a", _at(21), None, -3e18),
                      ("a", _at(21), None, 0.1)], False),
    "float_beyond_int64": ([("b", _at(20), None, 1e19)], True),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("every", ["1d", "10d"])
def test_history_and_evaluate_agree_near_the_int64_bounds(name: str, every: str) -> None:
    rows, refused = CASES[name]
    found, history_refused = problems(ROADMAP, _events(rows), every)
    assert not found, "\n".join(found)
    assert history_refused == refused


def test_a_window_of_all_history_reads_every_earlier_event() -> None:
    """``window: all``: each date reads everything before it, so a value far back is in
    every date's check (history refuses, as evaluate does at every date)."""
    rows: list[Row] = [("a", _at(-300), 2**62, None), ("a", _at(5), 1, None)]
    found, refused = problems(ALL_TIME, _events(rows), "10d")
    assert not found and refused


def test_history_names_the_date_it_cannot_compute() -> None:
    rows: list[Row] = [("a", _at(2), 2**61, None), ("a", _at(12), 2**61, None)]
    with pytest.raises(hr.InputDataError) as e:
        history(ROADMAP, _events(rows), ACCOUNTS, FIRST, LAST, every="1d")
    (issue,) = e.value.issues
    assert issue.code == "values_out_of_range" and issue.location.path == "qty"
    assert "2026-06-13" in issue.message  # the first date whose windows read both


VALUES = st.sampled_from([MAX, MIN, -MAX, 2**62, -(2**62), 2**62 - 1, 2**61, 2**61 + 1,
                          -(2**61), 2**60, 3, -1, 0, None])
AMOUNTS = st.sampled_from([9.3e18, -9.3e18, 3e18, -3e18, 2.0**61, 2.0**62, 1e18, 0.1,
                           -2.5, 0.0, None])


@st.composite
def _rows(draw: st.DrawFn) -> list[Row]:
    n = draw(st.integers(1, 8))
    out: list[Row] = []
    for _ in range(n):
        acc = draw(st.sampled_from(["a", "a", "b", "zz", None]))
        ts = draw(st.one_of(st.integers(-50, 31).map(_at), st.just(None))
                  if draw(st.integers(0, 9)) == 0 else st.integers(-50, 31).map(_at))
        out.append((acc, ts, draw(VALUES), draw(AMOUNTS)))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_rows(), st.sampled_from(["1d", "4d", "10d"]), st.booleans())
def test_history_and_evaluate_agree_on_drawn_extremes(rows: list[Row], every: str,
                                                       all_time: bool) -> None:
    found, _ = problems(ALL_TIME if all_time else ROADMAP, _events(rows), every)
    assert not found, "\n".join(found)


SHORT = hr.Roadmap.model_validate({
    "id": "bounds_short", "goal": "g",
    "data": {"events": {"values": {"qty": "int", "amount": "float"}}},
    "indicators": [
        {"id": "qty_7d", "family": "outcome", "aggregate": "sum", "of": "qty", "window": "7d"},
        {"id": "qty_mean_3d", "family": "outcome", "aggregate": "mean", "of": "qty",
         "window": "3d"},
        {"id": "amount_7d", "family": "outcome", "aggregate": "sum", "of": "amount",
         "window": "7d"},
        {"id": "amount_mean_5d", "family": "outcome", "aggregate": "mean", "of": "amount",
         "window": "5d"},
    ],
    "stages": [{"id": "s"}],
})


@pytest.mark.parametrize("sign", [1, -1])
def test_running_sums_that_leave_int64_give_each_window_its_exact_sum(sign: int) -> None:
    """History's windows are differences of running sums over the account's days: with
    the check per date, those running sums may leave the Int64 range (they wrap, modulo
    2**64) while each window's own sum fits; the differences are still exact."""
    big = 2**62 - 1024  # the largest int whose double is below 2**62
    rows: list[Row] = [("a", _at(day), sign * big, sign * 4e18) for day in (0, 9, 18, 27)]
    rows += [("a", _at(day, 15), sign * 7, sign * 0.25) for day in (0, 9, 18, 27)]
    found, refused = problems(SHORT, _events(rows), "1d")
    assert not found and not refused, "\n".join(found)
    h = history(SHORT, _events(rows), ACCOUNTS, FIRST, LAST, every="1d")
    day = h.at(FIRST + dt.timedelta(days=27)).indicators.filter(pl.col("account_id") == "a")
    assert day["qty_7d"].item() == sign * (big + 7)
    assert day["amount_7d"].item() == sign * (4e18 + 0.25)
