"""The events pass's sums over columns without nulls (issues #10, #14).

polars' streaming ``group_by`` adds a column without nulls in a loop with no validity test,
about 12 instructions an event fewer than one with nulls. The optimistic events pass now
reads each summed float column's billionths with 0 for a null value
(:func:`healthrules.engine.aggregate.read_source`), picks them with
``when(cond).then(q).otherwise(0)`` for sums and means (a mean counts the values of ``of``,
null exactly where the billionths were), and adds 0.0 for a null value to the folded absolute
sum (:func:`healthrules.engine.aggregate.flawed_abs_sum_expr`). These tests pin each new
form against the one it replaces, bit for bit, on NaN, infinities, -0.0, nulls, null
timestamps, events and accounts, unknown accounts and empty frames, on both engines; and
the evaluation against the two-limb pass and the reference evaluator, from in-memory frames,
lazy frames and Parquet scans, with one source and three.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
from adversarial_events import AMOUNTS, adversarial_events
from healthrules.aggregates import (
    AGGREGATE_KINDS,
    AggregateInputs,
    exact_one_column,
    exact_one_limb,
)
from healthrules.engine.aggregate import (
    EventsPass,
    abs_sum_column,
    flawed_abs_sum_expr,
    read_source,
)
from healthrules.engine.evaluator import clock_for
from healthrules.query_flags import EVENTS_QUERY_FLAGS
from healthrules.roadmap import Roadmap
from test_engine_vs_reference import assert_matches_reference

AS_OF = dt.date(2026, 3, 30)
ENGINES = [("in-memory", pl.QueryOptFlags.none()), ("in-memory", pl.QueryOptFlags()),
           ("streaming", pl.QueryOptFlags()), ("streaming", EVENTS_QUERY_FLAGS)]
VALUES = [*AMOUNTS, 1e-9, -1e-9, 0.5, -0.5, 2.0**40, -(2.0**40), 7.25, None, None]


def _frame(rows: int, seed: int) -> pl.DataFrame:
    """Values read as the pass reads them (NaN and infinities null, as ``finite_value``),
    their billionths with nulls (the old column) and without (the new), a flaw flag and a
    condition with nulls, over five accounts (one null)."""
    draw = random.Random(seed)
    raw = [draw.choice(VALUES) for _ in range(rows)]
    read = [None if v is None or not math.isfinite(v) else v for v in raw]
    frame = pl.DataFrame({
        "account": [draw.choice(("a", "b", "c", "d", None)) for _ in range(rows)],
        "value": read,
        "cond": [draw.choice((True, False, None)) for _ in range(rows)],
        "flawed": [(v is not None and not math.isfinite(v)) or draw.random() < 0.05
                   for v in raw],
    }, schema={"account": pl.String, "value": pl.Float64, "cond": pl.Boolean,
               "flawed": pl.Boolean})
    return frame.with_columns(
        exact_one_limb(pl.col("value")).alias("q_old"),
        exact_one_limb(pl.col("value")).fill_null(0).alias("q"))


def _inputs(q: str) -> AggregateInputs:
    return AggregateInputs(condition=pl.col("cond"), timestamp=pl.col("ts"),
                           of=pl.col("value"), day="__day", user=None,
                           exact=(pl.col(q),))


@pytest.mark.parametrize(("engine", "flags"), ENGINES)
@pytest.mark.parametrize("rows", [0, 1, 40, 5_000])
def test_the_new_sums_means_and_absolute_sums_are_the_old_ones(
        engine: str, flags: pl.QueryOptFlags, rows: int) -> None:
    frame = _frame(rows, seed=rows)
    assert frame["q"].null_count() == 0
    cond, q_old = pl.col("cond"), pl.col("q_old")
    mean = AGGREGATE_KINDS["mean"].split
    total = AGGREGATE_KINDS["sum"].split
    assert mean is not None and total is not None
    new_mean, new_sum = mean(_inputs("q")), total(_inputs("q"))
    assert new_sum is not None
    # the old forms: the billionths with nulls, picked with nulls, counted where not null
    old_parts = [pl.when(cond).then(q_old).sum(), pl.when(cond).then(q_old).count()]
    old_abs = pl.when(pl.col("flawed")).then(float("inf")).otherwise(
        pl.col("value").abs()).sum()
    got = frame.lazy().group_by("account").agg(
        new_sum.parts[0].alias("sum"), new_mean.parts[0].alias("mean_sum"),
        new_mean.parts[1].alias("mean_count"), new_mean.whole().alias("mean"),
        new_sum.whole().alias("total"),
        flawed_abs_sum_expr("value", pl.col("flawed")).alias("abs"),
    ).collect(engine=engine, optimizations=flags)  # type: ignore[arg-type]
    want = frame.lazy().group_by("account").agg(
        old_parts[0].alias("sum"), old_parts[0].alias("mean_sum"),
        old_parts[1].alias("mean_count"),
        mean(_inputs("q_old")).whole().alias("mean"),
        pl.when(cond).then(q_old).sum().pipe(
            lambda s: total(_inputs("q_old")).finish([s])).alias("total"),  # type: ignore[union-attr]
        old_abs.alias("abs"),
    ).collect(engine=engine, optimizations=flags)  # type: ignore[arg-type]
    got, want = got.sort("account"), want.sort("account")
    assert_frame_equal(got, want)
    # the same bits for the doubles (assert_frame_equal compares -0.0 and 0.0 equal)
    for c in ("mean", "total"):
        assert [math.copysign(1, v) if v == 0 else v for v in got[c].to_list()
                if v is not None] == [math.copysign(1, v) if v == 0 else v
                                      for v in want[c].to_list() if v is not None]
    # an account's sum of absolute values is a check, only compared with EXACT_BOUND: a
    # plain double sum, which polars' group_by adds in the order its threads meet the rows
    # (two collects of 5,000 rows differ in the last bits), so it is compared to 1e-12
    # relative; infinite (a flaw) exactly where the old one is
    for x, y in zip(got["abs"].to_list(), want["abs"].to_list(), strict=True):
        assert x == y or (x is not None and y is not None and math.isfinite(x)
                          and math.isclose(x, y, rel_tol=1e-12)), (x, y)


def test_the_read_billionths_have_no_nulls() -> None:
    plan = _plan()
    events = adversarial_events(None, hours=7, varied_users=True)
    clock = clock_for(plan, events.schema, AS_OF)
    read = read_source(events.lazy(), plan, plan.default_source, clock, events.schema,
                       ("account_id", "timestamp", "event", "amount"), None,
                       dt.datetime(2026, 3, 31), one_limb=True).collect()
    q = read[exact_one_column("amount")]
    assert q.null_count() == 0
    assert read["amount"].null_count() > 0  # null, NaN and infinities read as null
    assert (q.filter(read["amount"].is_null()) == 0).all()
    assert q.filter(read["amount"].is_not_null()).to_list() == read.select(
        exact_one_limb(pl.col("amount"))).to_series().drop_nulls().to_list()


def _plan(zone: str | None = None) -> hr.Plan:
    return hr.compile(_roadmap(zone))


def _roadmap(zone: str | None) -> Roadmap:
    return Roadmap.model_validate({
        "id": "q", "goal": "g",
        "data": {"events": {"user": "user_id", "values": {"amount": "float"},
                            **({"timezone": zone} if zone else {})}},
        "indicators": [
            {"id": "total", "family": "outcome", "aggregate": "sum", "of": "amount",
             "window": "30d"},
            {"id": "buys", "family": "outcome", "aggregate": "sum", "of": "amount",
             "window": "30d", "where": "event == 'buy'"},
            {"id": "avg", "family": "outcome", "aggregate": "mean", "of": "amount",
             "window": "30d", "where": "event == 'buy'"},
            {"id": "avg_all", "family": "outcome", "aggregate": "mean", "of": "amount",
             "window": "7d", "compare": "previous"},
            {"id": "n", "family": "process", "aggregate": "count", "window": "30d",
             "where": "event == 'buy'"},
        ],
        "stages": [{"id": "s"}]})


@pytest.mark.parametrize("zone", [None, "Europe/Amsterdam"])
def test_the_streaming_pass_gives_the_two_limb_pass_s_values(zone: str | None) -> None:
    plan = _plan(zone)
    events = adversarial_events(zone, hours=7, varied_users=True)
    accounts = pl.DataFrame({"account_id": ["a", "b", "c", "d"]})
    clock = clock_for(plan, events.schema, AS_OF)
    one = EventsPass(plan, clock, accounts, optimistic=True)
    two = EventsPass(plan, clock, accounts, optimistic=False)
    text = one.query(events.lazy(), folded=True).explain(optimizations=EVENTS_QUERY_FLAGS)
    assert "fill_null" in text and "otherwise(0)" in text.replace("dyn int: ", "")
    key = "account_id"
    got, _ = one.finish(one.query(events.lazy(), folded=True).collect(
        optimizations=EVENTS_QUERY_FLAGS), events.lazy())
    want, _ = two.finish(two.query(events.lazy()).collect(
        optimizations=EVENTS_QUERY_FLAGS), events.lazy())
    cols = [c for c in want.columns if not c.startswith("__") or c.startswith("__0__")]
    assert_frame_equal(got.select(cols).sort(key), want.select(cols).sort(key))
    assert abs_sum_column("amount") not in got.columns or got[
        abs_sum_column("amount")].null_count() == 0


@pytest.mark.parametrize("zone", [None, "Europe/Amsterdam"])
def test_the_evaluation_equals_the_reference(tmp_path: Path, zone: str | None) -> None:
    roadmap = _roadmap(zone)
    events = adversarial_events(zone, hours=7, varied_users=True)
    accounts = pl.DataFrame({"account_id": ["a", "b", "c", "d"]})
    path = tmp_path / "events.parquet"
    events.write_parquet(path)
    small = hr.evaluate(roadmap, events, accounts, AS_OF)
    assert_matches_reference(small, roadmap, events, accounts, AS_OF)
    for given in (events.lazy(), pl.scan_parquet(path)):
        got = hr.evaluate(roadmap, given, accounts, AS_OF)
        assert_frame_equal(got.indicators, small.indicators)
        assert got.diagnostics == small.diagnostics
    empty = hr.evaluate(roadmap, events.clear().lazy(), accounts, AS_OF)
    assert_frame_equal(empty.indicators, hr.evaluate(
        roadmap, events.clear(), accounts, AS_OF).indicators)


def test_three_sources_equal_the_reference() -> None:
    roadmap = Roadmap.model_validate({
        "id": "three", "goal": "g",
        "data": {"events": {
            "usage": {"user": "user_id", "values": {"amount": "float"}},
            "tickets": {"user": None, "values": {"minutes": "float"}},
            "surveys": {"user": None, "values": {"score": "float"}}}},
        "indicators": [
            {"id": "total", "family": "outcome", "aggregate": "sum", "of": "amount",
             "window": "30d", "source": "usage"},
            {"id": "avg", "family": "outcome", "aggregate": "mean", "of": "amount",
             "window": "30d", "where": "event == 'buy'", "source": "usage"},
            {"id": "minutes", "family": "outcome", "aggregate": "sum", "of": "minutes",
             "window": "30d", "source": "tickets"},
            {"id": "avg_score", "family": "outcome", "aggregate": "mean", "of": "score",
             "window": "30d", "source": "surveys"},
        ],
        "stages": [{"id": "s"}]})
    usage = adversarial_events(None, hours=7, varied_users=True)
    tickets = usage.select("account_id", "event", "timestamp",
                           pl.col("amount").reverse().alias("minutes"))
    surveys = usage.select("account_id", "event", "timestamp",
                           (pl.col("amount") * 2).shift(3).alias("score"))
    accounts = pl.DataFrame({"account_id": ["a", "b", "c", "d"]})
    frames = {"usage": usage, "tickets": tickets, "surveys": surveys}
    small = hr.evaluate(roadmap, frames, accounts, AS_OF)
    assert_matches_reference(small, roadmap, frames, accounts, AS_OF)
    got = hr.evaluate(roadmap, {k: v.lazy() for k, v in frames.items()}, accounts, AS_OF)
    assert_frame_equal(got.indicators, small.indicators)
