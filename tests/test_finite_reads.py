"""The float values as the events are read, in the vectorised finite test (issues #10, #14).

Every pass over the events reads a float value column through
:func:`healthrules.inputs.read_event_exprs`: NaN and infinities as null, ``-0.0`` as ``0.0``,
and a per-row flag of the values so read (``NOT_FINITE``), which the events pass's data
checks count. The finite test is ``|x| < inf`` (:func:`healthrules.aggregates.finite_test`:
two vectorised kernels, where polars' ``is_finite`` loops per value), and with one float
column the flag is that test's Boolean (no cast to Int64). These tests pin the new forms
against the ones they replace, value for value, on both engines, with and without polars'
optimisation (which rewrites ``not (a < b)`` into ``a >= b``), and the data checks they feed.
"""

from __future__ import annotations

import datetime as dt
import math
import struct

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
from adversarial_events import AMOUNTS, adversarial_events
from healthrules.aggregates import finite_test, finite_value
from healthrules.engine.aggregate import EventsPass, read_source
from healthrules.engine.evaluator import clock_for
from healthrules.inputs import NOT_FINITE
from healthrules.query_flags import EVENTS_QUERY_FLAGS
from healthrules.roadmap import Roadmap
from reference import evaluate_reference

AS_OF = dt.date(2026, 3, 30)

NEG_NAN = struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000001))[0]
"""A NaN with the sign bit and a payload."""

EDGES = [*AMOUNTS, 1.7976931348623157e308, -1.7976931348623157e308, -5e-324,
         2.2250738585072014e-308, NEG_NAN, -math.nan, 2.0**53, -(2.0**51) - 0.5]

ENGINES = [("in-memory", pl.QueryOptFlags.none()), ("in-memory", pl.QueryOptFlags()),
           ("streaming", EVENTS_QUERY_FLAGS)]


def _old_value(x: pl.Expr) -> pl.Expr:
    """The read value before this change: ``is_finite`` in the guard."""
    return pl.when(x == 0).then(pl.lit(0.0, pl.Float64)).when(x.is_finite()).then(x)


def _old_flag(x: pl.Expr) -> pl.Expr:
    """The not-finite flag before this change: an Int64 0 or 1."""
    return x.is_finite().not_().fill_null(False).cast(pl.Int64)


@pytest.mark.parametrize(("engine", "flags"), ENGINES)
def test_the_finite_test_gives_is_finite_s_values(engine: str, flags: pl.QueryOptFlags,
                                                  ) -> None:
    frame = pl.DataFrame({"x": EDGES * 3}, schema={"x": pl.Float64})
    x = pl.col("x")
    got = frame.lazy().select(
        finite_test(x).alias("test"), x.is_finite().alias("old"),
        finite_test(x).not_().fill_null(False).alias("flag"),
        finite_value(x).alias("value"), _old_value(x).alias("old_value"),
        finite_value(x, finite_test(x)).alias("given"),
    ).collect(engine=engine, optimizations=flags)  # type: ignore[arg-type]
    assert got["test"].to_list() == got["old"].to_list()
    assert got["flag"].dtype == pl.Boolean
    assert got["flag"].cast(pl.Int64).to_list() == frame.select(_old_flag(x)).to_series(
    ).to_list()
    # bit for bit: -0.0 read as 0.0, NaN and infinities as null
    for col in ("value", "given"):
        assert_frame_equal(got.select(pl.col(col).alias("v")),
                           got.select(pl.col("old_value").alias("v")))
        bits = got[col].to_list()
        assert [None if v is None else struct.pack("<d", v) for v in bits] == [
            None if v is None else struct.pack("<d", v) for v in got["old_value"].to_list()]
    assert got["test"].to_list()[:len(AMOUNTS)] == [
        None if v is None else math.isfinite(v) for v in AMOUNTS]


def _plan(values: dict[str, str], zone: str | None = None) -> hr.Plan:
    floats = [c for c, t in values.items() if t == "float"]
    return hr.compile(Roadmap.model_validate({
        "id": "q", "goal": "g",
        "data": {"events": {"user": "user_id", "values": values,
                            **({"timezone": zone} if zone else {})}},
        "indicators": [
            *[{"id": f"total_{c}", "family": "outcome", "aggregate": "sum", "of": c,
               "window": "30d"} for c in floats],
            *[{"id": f"top_{c}", "family": "outcome", "aggregate": "max", "of": c,
               "window": "30d"} for c in floats],
            {"id": "n", "family": "process", "aggregate": "count", "window": "30d"},
        ],
        "stages": [{"id": "s"}]}))


def _events(zone: str | None) -> pl.DataFrame:
    frame = adversarial_events(zone, hours=7, varied_users=True)
    # a second float column: the amounts rotated, so its flaws fall on other rows
    return frame.with_columns(pl.col("amount").shift(3).alias("price"))


@pytest.mark.parametrize("zone", [None, "Europe/Amsterdam"])
@pytest.mark.parametrize(("engine", "flags"), ENGINES)
@pytest.mark.parametrize("columns", [("amount",), ("amount", "price")])
def test_the_read_values_and_flags_are_the_old_ones(
        zone: str | None, engine: str, flags: pl.QueryOptFlags,
        columns: tuple[str, ...]) -> None:
    values = {c: "float" for c in columns}
    plan = _plan(values, zone)
    events = _events(zone)
    clock = clock_for(plan, events.schema, AS_OF)
    source = plan.default_source
    cols = ("account_id", "timestamp", *columns)
    start = dt.datetime(2025, 1, 1)
    end = clock.end
    # a row number read along, to line the rows read up with the events as stored
    events = events.with_row_index("__i")
    got = read_source(events.lazy(), plan, source, clock, events.schema, (*cols, "__i"),
                      start, end).collect(engine=engine, optimizations=flags)  # type: ignore[arg-type]
    old = events.join(got.select("__i"), on="__i", how="semi").select(
        "__i", *[_old_value(pl.col(c)).alias(c) for c in columns],
        (_old_flag(pl.col(columns[0])) if len(columns) == 1
         else pl.sum_horizontal([_old_flag(pl.col(c)) for c in columns])).alias(NOT_FINITE))
    got = got.sort("__i")
    assert got.height == old.height
    assert got["__i"].to_list() == old["__i"].to_list()
    for c in columns:
        assert [None if v is None else struct.pack("<d", v) for v in got[c].to_list()] == [
            None if v is None else struct.pack("<d", v) for v in old[c].to_list()]
    flag = got[NOT_FINITE]
    if len(columns) == 1:  # one float column: a Boolean, never null
        assert flag.dtype == pl.Boolean
        assert flag.null_count() == 0
    else:
        assert flag.dtype == pl.Int64
    assert flag.cast(pl.Int64).to_list() == old[NOT_FINITE].to_list()
    assert int(flag.sum()) == int(old[NOT_FINITE].sum()) > 0


@pytest.mark.parametrize("zone", [None, "Europe/Amsterdam"])
@pytest.mark.parametrize("columns", [("amount",), ("amount", "price")])
@pytest.mark.parametrize("rows", ["all", "clean", "none"])
def test_the_data_checks_count_the_flaws_as_before(
        zone: str | None, columns: tuple[str, ...], rows: str) -> None:
    plan = _plan({c: "float" for c in columns}, zone)
    events = _events(zone)
    if rows == "clean":  # no flaw at all: the kinds are not counted apart
        events = events.filter(
            pl.col("timestamp").is_not_null() & pl.col("event").is_not_null()
        ).with_columns([pl.when(pl.col(c).is_finite()).then(pl.col(c)).otherwise(1.5)
                        .alias(c) for c in columns])
    elif rows == "none":
        events = events.clear()
    accounts = pl.DataFrame({"account_id": ["a", "b", "c"]})
    clock = clock_for(plan, events.schema, AS_OF)
    for engine in ("in-memory", "streaming"):
        p = EventsPass(plan, clock, accounts, optimistic=True)
        q = p.query(events.lazy())
        agg = (q.collect(engine="in-memory") if engine == "in-memory"
               else q.collect(optimizations=EVENTS_QUERY_FLAGS))
        _, diagnostics = p.finish(agg, events.lazy(), in_memory=engine == "in-memory")
        start, end = p.read_range()
        ts = pl.col("timestamp")
        lo = pl.lit(start).dt.replace_time_zone(zone) if start is not None else None
        keep = ts < pl.lit(end).dt.replace_time_zone(zone)
        if lo is not None:
            keep = keep & (ts >= lo)
        read = events.filter(keep | ts.is_null())
        expected_values = sum(
            sum(1 for v in read[c].to_list() if v is not None and not math.isfinite(v))
            for c in columns)
        flawed = read.filter(ts.is_null() | pl.col("event").is_null() | pl.any_horizontal(
            [pl.col(c).is_finite().not_().fill_null(False) for c in columns]))
        assert int(agg["__flawed"].sum() or 0) == flawed.height
        assert diagnostics["values_not_finite"] == expected_values
        assert diagnostics["events_null_timestamp"] == read["timestamp"].null_count()
        assert diagnostics["events_null_event"] == (
            read["event"].null_count() if flawed.height else 0)
        assert diagnostics["events_read"] == read.height


@pytest.mark.parametrize("zone", [None, "Europe/Amsterdam"])
def test_the_engine_equals_the_reference_on_the_adversarial_values(zone: str | None) -> None:
    from test_engine_vs_reference import compare

    plan_roadmap = Roadmap.model_validate({
        "id": "q", "goal": "g",
        "data": {"events": {"user": "user_id", "values": {"amount": "float"},
                            **({"timezone": zone} if zone else {})}},
        "indicators": [
            {"id": "total", "family": "outcome", "aggregate": "sum", "of": "amount",
             "window": "30d"},
            {"id": "avg", "family": "outcome", "aggregate": "mean", "of": "amount",
             "window": "30d", "where": "event == 'buy'"},
            {"id": "low", "family": "outcome", "aggregate": "min", "of": "amount",
             "window": "30d"},
            {"id": "top", "family": "outcome", "aggregate": "max", "of": "amount",
             "window": "30d"},
            {"id": "big", "family": "process", "aggregate": "count", "window": "30d",
             "where": "amount > 0"},
        ],
        "stages": [{"id": "s"}]})
    events = adversarial_events(zone, hours=7, varied_users=True)
    accounts = pl.DataFrame({"account_id": ["a", "b", "c"]})
    got = hr.evaluate(plan_roadmap, events, accounts, AS_OF)
    ref = evaluate_reference(plan_roadmap, events, accounts, AS_OF)
    assert compare(got, ref, plan_roadmap) == []


def test_the_events_pass_reads_no_per_value_finite_loop() -> None:
    """The plan of the events pass tests finiteness by the vectorised form only."""
    plan = _plan({"amount": "float"})
    events = _events(None)
    clock = clock_for(plan, events.schema, AS_OF)
    p = EventsPass(plan, clock, pl.DataFrame({"account_id": ["a"]}), optimistic=True)
    text = p.query(events.lazy()).explain(optimizations=EVENTS_QUERY_FLAGS)
    assert "is_finite" not in text
    assert "< inf" in text
    assert "strict_cast(Int64).alias(\"__not_finite\")" not in text
