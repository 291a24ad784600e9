"""The raw aggregates of several sources joined per account (``Evaluator.aggregates``).

The passes' keys are checked known in one count over every source (``keys_known``, then
``EventsPass.finish(known=True)``), and, when the first source holds every account, the
others' aggregates are joined onto it with left joins. Both are pinned here against the
form before them (each pass finished alone, counting its own keys, and the aggregates
joined with full joins) on inputs that take each branch: the first source holding every
account or not, unknown and null keys in one source only, an empty source, a source key
of another integer dtype, on the streaming engine and on the in-memory one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from healthrules.engine.aggregate import EventsPass, keys_known
from healthrules.engine.evaluator import Evaluator, prepare
from healthrules.inputs import accounts_at
from test_sources import AS_OF, _frames, _roadmap


def _old_form(plan: Any, clock: Any, accounts: pl.DataFrame,
              frames: dict[str, pl.LazyFrame]) -> tuple[pl.DataFrame, dict[str, int]]:
    """Each pass collected and finished alone (its own count of its keys), the aggregates
    joined with full joins: ``Evaluator.aggregates`` as it was."""
    agg: pl.DataFrame | None = None
    diagnostics: dict[str, int] = {}
    for name in plan.sources:
        got, counts = EventsPass(plan, clock, accounts, source=name,
                                 optimistic=True).collect(frames[name])
        agg = got if agg is None else agg.join(got, on=plan.account_key, how="full",
                                               coalesce=True)
        for k, v in counts.items():
            diagnostics[k] = diagnostics.get(k, 0) + v
            diagnostics[f"{name}:{k}"] = v
    assert agg is not None
    return agg, diagnostics


def _both(events: dict[str, pl.DataFrame], accounts: pl.DataFrame, *, rows: bool,
          ) -> tuple[tuple[pl.DataFrame, dict[str, int]], tuple[pl.DataFrame, dict[str, int]]]:
    plan, clock, frames, acc = prepare(_roadmap(), events, accounts, AS_OF)
    acc = accounts_at(acc, clock, plan.account_key).frame
    sizes = {name: frame.height for name, frame in events.items()} if rows else None
    new = Evaluator(plan).aggregates(frames, acc, clock, event_rows=sizes)
    return new, _old_form(plan, clock, acc, frames)


def _cases() -> dict[str, tuple[dict[str, pl.DataFrame], pl.DataFrame]]:
    events, accounts = _frames()
    cases: dict[str, tuple[dict[str, pl.DataFrame], pl.DataFrame]] = {}
    # usage holds both accounts, the others only known ones: the left joins
    known = dict(events)
    known["tickets"] = events["tickets"].filter(pl.col("customer") != "ghost")
    known["usage"] = pl.concat([events["usage"], events["usage"].tail(1).with_columns(
        pl.col("timestamp").dt.offset_by("9d"))])  # b's login within the 7 days read
    cases["first holds every account"] = (known, accounts)
    # a ghost in tickets only: each pass counts its own keys, full joins
    cases["unknown in the second"] = (events, accounts)
    # usage misses account c, which tickets and surveys have
    more = pl.concat([accounts, pl.DataFrame({"account_id": ["c"], "plan": ["pro"]})])
    extra = dict(known)
    extra["tickets"] = pl.concat([known["tickets"], known["tickets"].head(1).with_columns(
        pl.lit("c").alias("customer"))])
    extra["surveys"] = pl.concat([events["surveys"], events["surveys"].head(1).with_columns(
        pl.lit("c").alias("account_id"))])
    cases["first misses an account"] = (extra, more)
    # a null key in surveys only
    nulls = dict(known)
    nulls["surveys"] = pl.concat([events["surveys"], events["surveys"].head(1).with_columns(
        pl.lit(None, pl.String).alias("account_id"))])
    cases["null key in the third"] = (nulls, accounts)
    # no survey at all
    empty = dict(known)
    empty["surveys"] = events["surveys"].clear()
    cases["empty third"] = (empty, accounts)
    # integer keys, tickets' of another integer dtype (its pass casts them)
    ints = {name: frame.with_columns(pl.col(col).replace_strict({"a": 1, "b": 2, "ghost": 9},
                                                                return_dtype=dtype))
            for (name, frame), col, dtype in zip(
                known.items(), ("account_id", "customer", "account_id"),
                (pl.Int64, pl.Int32, pl.Int64), strict=True)}
    cases["tickets key of another dtype"] = (
        ints, accounts.with_columns(pl.col("account_id").replace_strict(
            {"a": 1, "b": 2}, return_dtype=pl.Int64)))
    return cases


@pytest.mark.parametrize("rows", [False, True], ids=["streaming", "in-memory"])
@pytest.mark.parametrize("case", list(_cases()))
def test_aggregates_of_several_sources_equal_the_full_joins_of_each_pass(case: str,
                                                                          rows: bool) -> None:
    events, accounts = _cases()[case]
    (agg, diagnostics), (old, old_diagnostics) = _both(events, accounts, rows=rows)
    assert diagnostics == old_diagnostics
    key = "account_id"
    assert agg.columns == old.columns
    assert_frame_equal(agg.sort(key, nulls_last=True), old.sort(key, nulls_last=True))
    assert agg.get_column(key).n_unique() == agg.height


def test_unknown_and_null_keys_are_counted_per_source() -> None:
    events, accounts = _cases()["unknown in the second"]
    (_, diagnostics), _ = _both(events, accounts, rows=False)
    assert diagnostics["tickets:unknown_accounts"] == 1
    assert diagnostics["tickets:events_unknown_account"] == 1
    assert diagnostics["usage:unknown_accounts"] == 0
    events, accounts = _cases()["null key in the third"]
    (_, diagnostics), _ = _both(events, accounts, rows=False)
    assert diagnostics["surveys:events_null_account"] == 1
    assert diagnostics["events_null_account"] == 1


def test_known_keys_are_counted_once_and_joined_onto_the_first_source(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every key known and the first source holding every account: one count of distinct
    keys over the three passes (and one of the accounts'), two left joins."""
    events, accounts = _cases()["first holds every account"]
    plan, clock, frames, acc = prepare(_roadmap(), events, accounts, AS_OF)
    acc = accounts_at(acc, clock, plan.account_key).frame
    counted: list[int] = []
    joins: list[str] = []
    n_unique, join = pl.Series.n_unique, pl.DataFrame.join

    def counting(self: pl.Series) -> int:
        counted.append(self.len())
        return n_unique(self)

    def joining(self: pl.DataFrame, *args: Any, **kwargs: Any) -> pl.DataFrame:
        joins.append(kwargs.get("how", "inner"))
        return join(self, *args, **kwargs)

    monkeypatch.setattr(pl.Series, "n_unique", counting)
    monkeypatch.setattr(pl.DataFrame, "join", joining)
    Evaluator(plan).aggregates(frames, acc, clock)
    assert len(counted) == 2, counted
    assert joins == ["left", "left"]


def test_keys_known() -> None:
    known = pl.Series("k", ["a", "b", "c"])
    assert keys_known(known, [pl.Series(["a", "c"]), pl.Series(["b"])])
    assert keys_known(known, [pl.Series([], dtype=pl.String)])
    assert keys_known(known, [])
    assert not keys_known(known, [pl.Series(["a"]), pl.Series(["d"])])
    assert not keys_known(known, [pl.Series(["a", None])])
    assert not keys_known(pl.Series(["a", None]), [pl.Series(["a"])])
    # accounts' keys repeated (the count is of distinct keys)
    assert keys_known(pl.Series(["a", "a", "b"]), [pl.Series(["b", "a"])])
    assert not keys_known(pl.Series(["a", "a", "b"]), [pl.Series(["b", "c"])])
    assert keys_known(known, [pl.Series(["a"])], distinct=3)
    assert not keys_known(pl.Series([], dtype=pl.String), [pl.Series(["a"])])
    assert keys_known(pl.Series([1, 2], dtype=pl.Int64), [pl.Series([2], dtype=pl.Int64)])


def test_the_benchmark_dates_kind_of_inputs_still_agree() -> None:
    """Timestamps of three kinds (zoned microseconds, UTC milliseconds, dates) around the
    window edges, the first source holding every account: the same aggregates."""
    events, accounts = _cases()["first holds every account"]
    edge = dt.datetime(2026, 6, 1)
    events = dict(events)
    events["tickets"] = pl.concat([events["tickets"], pl.DataFrame({
        "customer": ["b", "b"], "kind": ["opened", None],
        "opened_at": [edge, edge - dt.timedelta(milliseconds=1)],
        "severity": [None, 0]}, schema=events["tickets"].schema)])
    for rows in (False, True):
        (agg, diagnostics), (old, old_diagnostics) = _both(events, accounts, rows=rows)
        assert diagnostics == old_diagnostics
        assert_frame_equal(agg.sort("account_id"), old.sort("account_id"))
