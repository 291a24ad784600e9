"""history()'s running counts packed into words: one running sum per word of counts instead
of one per count (the day table's counts, active days and value counts, and the presence
table's distinct counts), read back exactly at every date."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.history import history
from healthrules.history.aggregation import _field, _pack, _pack_words, _words
from healthrules.history.snapshots import date_range, evaluate_dates, prepare_inputs

T0 = dt.datetime(2026, 2, 1, 10)
KINDS = ["a", "b", "c", "d", "e", "f", "g", "h"]


def test_pack_fields_are_the_totals_widths_in_words_of_63_bits() -> None:
    totals = {"x": 0, "y": 1, "z": 2**40, "w": 2**30 - 1, "v": 7, "u": 2**62}
    packed = _pack(totals, "__W")
    assert {c: width for c, (_, _, width) in packed.items()} == {
        "x": 1, "y": 1, "z": 41, "w": 30, "v": 3, "u": 63}
    for word in _words(packed):
        fields = sorted((lo, width) for w, lo, width in packed.values() if w == word)
        assert fields[-1][0] + fields[-1][1] <= 63
        assert all(a[0] + a[1] <= b[0] for a, b in itertools.pairwise(fields))
    assert packed["u"] == ("__W0__P", 0, 63)  # widest first, a word of its own
    assert _pack(totals, "__W") == packed  # the same packing for the same totals


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 2**20), min_size=5, max_size=5), min_size=1,
                max_size=30),
       st.lists(st.tuples(st.integers(0, 29), st.integers(0, 29)), min_size=1, max_size=20))
def test_running_sums_of_words_read_back_every_window(rows: list[list[int]],
                                                     spans: list[tuple[int, int]]) -> None:
    """Any window of the running sums of the words (a difference of two rows, or a row
    less nothing) gives every column's window sum, for counts up to their totals."""
    cols = [f"c{k}" for k in range(5)]
    frame = pl.DataFrame(rows, schema={c: pl.Int64 for c in cols}, orient="row")
    totals = frame.select(pl.col(cols).sum()).row(0, named=True)
    packed = _pack(totals, "__W")
    words = frame.select(_pack_words(packed, {c: pl.col(c) for c in cols})).select(
        pl.all().cum_sum())
    sums = frame.select(pl.col(cols).cum_sum())
    for lo, hi in spans:
        lo, hi = sorted((lo % frame.height, hi % frame.height))
        for c, (word, lowest, width) in packed.items():
            got = pl.select(_field(pl.lit(words[word][hi] - words[word][lo], pl.Int64),
                                   lowest, width)).item()
            assert got == sums[c][hi] - sums[c][lo]
            whole = pl.select(_field(pl.lit(words[word][hi], pl.Int64), lowest,
                                     width)).item()
            assert whole == sums[c][hi]


def _roadmap() -> hr.Roadmap:
    """A count, an active-days count and a distinct count per event kind, trailing and
    cumulative, and a mean: more running counts than one word holds."""
    indicators: list[dict[str, Any]] = []
    for kind in KINDS:
        for w in ("3d", "all"):
            tag = f"{kind}_{w}"
            where = f"event == '{kind}'"
            indicators += [
                {"id": f"n_{tag}", "family": "process", "aggregate": "count", "where": where,
                 "window": w},
                {"id": f"days_{tag}", "family": "process", "aggregate": "active_days",
                 "where": where, "window": w},
                {"id": f"users_{tag}", "family": "process", "aggregate": "distinct",
                 "where": where, "window": w},
            ]
    indicators += [{"id": "mean_n", "family": "process", "aggregate": "mean", "of": "n",
                    "window": "7d", "compare": "previous"},
                   {"id": "first_use", "family": "process", "aggregate": "first_time",
                    "window": "all"}]
    return hr.Roadmap.model_validate({
        "id": "packed", "goal": "g",
        "data": {"events": {"values": {"n": "int"}}},
        "indicators": indicators, "stages": [{"id": "only"}]})


def _events(rows: list[tuple[int, int, int, str]]) -> pl.DataFrame:
    return pl.DataFrame({
        "account_id": [f"a{a}" for a, _, _, _ in rows],
        "user_id": [f"u{u}" for _, u, _, _ in rows],
        "event": [e for _, _, _, e in rows],
        "timestamp": [T0 + dt.timedelta(days=d, hours=u % 12) for _, u, d, _ in rows],
        "n": [d * 1000 + u for _, u, d, _ in rows],
    }, schema={"account_id": pl.String, "user_id": pl.String, "event": pl.String,
               "timestamp": pl.Datetime("us"), "n": pl.Int64})


ACCOUNTS = pl.DataFrame({"account_id": ["a0", "a1", "a2", "a3"]})


def _check(rows: list[tuple[int, int, int, str]], start: dt.date, end: dt.date,
           every: str) -> Any:
    plan = hr.compile(_roadmap())
    events = _events(rows)
    h = history(plan, events, ACCOUNTS, start, end, every=every)
    for d in h.dates:
        one = hr.evaluate(plan, events, ACCOUNTS, d)
        assert_frame_equal(h.at(d).indicators, one.indicators)
    return plan


def test_counts_at_their_totals_in_several_words() -> None:
    """Totals of 2**k - 1 and 2**k (a field exactly full, and one a bit wider), a kind
    without events (a field that stays 0), and a cumulative window that reaches the total:
    the day table and the presence table each need more than one word, and every count
    reads back as evaluate() gives it at every date."""
    rows: list[tuple[int, int, int, str]] = []
    for k, kind in enumerate(KINDS[:-1]):  # "h" never happens
        n = 2 ** (k + 2) - (k % 2)  # 4, 7, 16, 31, 64, 127, 256
        rows += [(j % 3, j, (j * 7 + k) % 30, kind) for j in range(n)]
    plan = _check(rows, T0.date(), (T0 + dt.timedelta(days=34)).date(), "1d")
    dates = date_range(T0.date(), (T0 + dt.timedelta(days=35)).date(), "1w")
    plan, ev, acc = prepare_inputs(plan, _events(rows), ACCOUNTS, dates[-1], dates[0])
    engine, _ = evaluate_dates(plan, ev, acc, dates)
    (agg,) = engine.aggregators.values()
    # one running sum per word: no count column of its own in either table
    assert len(_words(agg.packed)) > 1 and len(_words(agg.presence_packed)) > 1
    assert not [c for c in agg.table.columns if c.endswith(("__n__P", "__n__A", "__nn__P"))]
    assert set(agg.presence.columns) == {"__k", "__acc", *_words(agg.presence_packed)}
    # the widths follow the totals: each kind's count (0 for "h": width 1), and every
    # event for the first use
    widths = sorted(width for c, (_, _, width) in agg.packed.items() if c.endswith("__n__P"))
    assert widths == sorted([3, 3, 5, 5, 7, 7, 9, 1, len(rows).bit_length()])


@settings(max_examples=10, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4), st.integers(0, 30),
                          st.sampled_from(KINDS)), min_size=1, max_size=60),
       st.sampled_from(["1d", "3d", "1w"]))
def test_history_equals_evaluate_with_packed_counts(
        rows: list[tuple[int, int, int, str]], every: str) -> None:
    _check(rows, (T0 + dt.timedelta(days=2)).date(), (T0 + dt.timedelta(days=36)).date(),
           every)
