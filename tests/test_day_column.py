"""The events pass's day column without ``dt.date()`` (issues #10, #14).

``active_days`` counts the distinct dates of an account's events, so a streaming events pass
that has one computes the date of every event (``__day``). For timestamps without a zone or
in UTC, in the evaluation clock's zone and in microseconds or nanoseconds, the pass now takes
the floor of the instant's ticks over a day's and reads it as a date
(:func:`healthrules.engine.aggregate.day_of`), about a third of ``dt.date()``'s instructions
(whose cast to Int32 checks every value). These tests pin the new form against
``dt.date()``, value for value, on adversarial instants (nulls, the extremes of Int64,
instants before 1970, one tick either side of midnight), on both engines with and without
optimisation, and the evaluation against the reference evaluator and against the in-memory
path (which keeps ``dt.date()``), from in-memory frames, lazy frames and Parquet scans.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal, assert_series_equal

import healthrules as hr
from healthrules.engine.aggregate import EventsPass, day_of
from healthrules.engine.evaluator import clock_for
from healthrules.inputs import Clock
from healthrules.query_flags import EVENTS_QUERY_FLAGS
from healthrules.roadmap import Roadmap
from test_engine_vs_reference import assert_matches_reference

AS_OF = dt.date(2026, 3, 30)
TICKS = {"us": 86_400_000_000, "ns": 86_400_000_000_000}
ENGINES = [("in-memory", pl.QueryOptFlags.none()), ("in-memory", pl.QueryOptFlags()),
           ("streaming", pl.QueryOptFlags()), ("streaming", EVENTS_QUERY_FLAGS)]


def _ticks(unit: str) -> list[int | None]:
    """Adversarial instants as ticks of ``unit``: null, 0, the Int64 extremes, one tick
    either side of midnights before and after 1970, and random ones over the whole range."""
    day = TICKS[unit]
    low, high = -(2**63) + 1, 2**63 - 1  # (-2**63 is polars' null sentinel for some casts)
    edges: list[int | None] = [None, 0, -1, 1, low, high, low + 1, high - 1]
    for k in (-30_000, -1, 0, 1, 20_000, 20_539, 20_540):
        edges += [k * day - 1, k * day, k * day + 1]
    draw = random.Random(17)
    return edges + [draw.randint(low, high) for _ in range(20_000)] + [
        draw.randint(-40_000 * day, 40_000 * day) for _ in range(20_000)]


@pytest.mark.parametrize("unit", ["us", "ns"])
@pytest.mark.parametrize("zone", [None, "UTC"])
@pytest.mark.parametrize(("engine", "flags"), ENGINES)
def test_the_day_is_dt_date_s(unit: str, zone: str | None, engine: str,
                              flags: pl.QueryOptFlags) -> None:
    frame = pl.DataFrame({"t": pl.Series(_ticks(unit), dtype=pl.Int64)}).select(
        pl.col("t").cast(pl.Datetime(unit, zone)))  # type: ignore[arg-type]
    clock = Clock(AS_OF, dt.datetime(2026, 3, 31), zone, unit)
    got = day_of(pl.col("t"), frame.schema["t"], clock, small=False)
    assert not got.meta.eq(pl.col("t").dt.date())  # the new form, not dt.date()
    new = frame.lazy().select(got.alias("d")).collect(engine=engine,  # type: ignore[arg-type]
                                                       optimizations=flags)
    old = frame.lazy().select(pl.col("t").dt.date().alias("d")).collect(
        engine=engine, optimizations=flags)  # type: ignore[arg-type]
    assert new.schema == old.schema == pl.Schema({"d": pl.Date})
    assert_series_equal(new["d"], old["d"])
    assert new["d"].null_count() == 1


@pytest.mark.parametrize(("dtype", "clock_zone", "unit", "small"), [
    (pl.Datetime("ms", None), None, "ms", False),  # days of ms ticks may overflow an Int32
    (pl.Datetime("us", "Europe/Amsterdam"), "Europe/Amsterdam", "us", False),  # local dates
    (pl.Datetime("us", "UTC"), "Europe/Amsterdam", "us", False),  # converted to the clock
    (pl.Datetime("us", None), "UTC", "us", False),
    (pl.Date(), None, "us", False),
    (None, None, "us", False),
    (pl.Datetime("us", "UTC"), "UTC", "us", True),  # the in-memory pass plans less
])
def test_other_timestamps_keep_dt_date(dtype: pl.DataType | None, clock_zone: str | None,
                                       unit: str, small: bool) -> None:
    clock = Clock(AS_OF, dt.datetime(2026, 3, 31), clock_zone, unit)
    assert day_of(pl.col("t"), dtype, clock, small).meta.eq(pl.col("t").dt.date())


def _roadmap(zone: str | None) -> Roadmap:
    return Roadmap.model_validate({
        "id": "days", "goal": "g",
        "data": {"events": {"user": "user_id", "values": {"amount": "float"},
                            **({"timezone": zone} if zone else {})},
                 "accounts": {"attributes": {"start": "date"}}},
        "indicators": [
            {"id": "days_1", "family": "process", "aggregate": "active_days", "window": "1d"},
            {"id": "days_7", "family": "process", "aggregate": "active_days", "window": "7d",
             "compare": "previous"},
            {"id": "buy_days_30", "family": "process", "aggregate": "active_days",
             "window": "30d", "where": "event == 'buy'"},
            {"id": "days_open", "family": "process", "aggregate": "active_days",
             "window": {"from": "start"}},
            {"id": "users_30", "family": "process", "aggregate": "distinct", "window": "30d"},
            {"id": "total", "family": "outcome", "aggregate": "sum", "of": "amount",
             "window": "30d"},
        ],
        "stages": [{"id": "s"}]})


def _events(unit: str, zone: str | None, rows: int, seed: int) -> pl.DataFrame:
    """Events of four accounts (one unknown) around midnights, before 1970 included, with
    null timestamps, events, users and values, NaN and infinities."""
    draw = random.Random(seed)
    day = TICKS[unit]
    end = (dt.date(2026, 3, 31) - dt.date(1970, 1, 1)).days * day
    pre = (dt.date(1969, 12, 20) - dt.date(1970, 1, 1)).days * day
    stamps: list[int | None] = []
    for _ in range(rows):
        pick = draw.random()
        if pick < 0.03:
            stamps.append(None)
        elif pick < 0.2:  # one tick either side of a midnight of the last 40 days
            stamps.append(end - draw.randint(0, 40) * day + draw.choice((-1, 0, 1)))
        elif pick < 0.3:  # around 1970
            stamps.append(pre + draw.randint(0, 25 * day))
        else:
            stamps.append(end - draw.randint(1, 60 * day))
    values = [draw.choice((1.5, -0.0, 0.0, 2.25, None, float("nan"), float("inf"), 1e6))
              for _ in range(rows)]
    return pl.DataFrame({
        "account_id": [draw.choice(("a", "b", "c", "zz")) for _ in range(rows)],
        "event": [draw.choice(("buy", "view", None)) for _ in range(rows)],
        "user_id": [draw.choice(("u1", "u2", "u3", None)) for _ in range(rows)],
        "timestamp": pl.Series(stamps, dtype=pl.Int64),
        "amount": values,
    }, schema={"account_id": pl.String, "event": pl.String, "user_id": pl.String,
               "timestamp": pl.Int64, "amount": pl.Float64}).with_columns(
        pl.col("timestamp").cast(pl.Datetime(unit, zone)))  # type: ignore[arg-type]


def _accounts() -> pl.DataFrame:
    return pl.DataFrame({"account_id": ["a", "b", "c", "d"],
                         "start": [dt.date(1969, 12, 25), dt.date(2026, 3, 1), None,
                                   dt.date(2026, 3, 30)]})


@pytest.mark.parametrize("unit", ["us", "ns"])
@pytest.mark.parametrize("zone", [None, "UTC"])
def test_the_evaluation_equals_the_reference_and_the_in_memory_pass(
        tmp_path: Path, unit: str, zone: str | None) -> None:
    roadmap = _roadmap(zone)
    events = _events(unit, zone, 3_000, seed=len(unit) + (zone is None))
    accounts = _accounts()
    path = tmp_path / "events.parquet"
    events.write_parquet(path)
    small = hr.evaluate(roadmap, events, accounts, AS_OF)  # in memory: dt.date()
    assert_matches_reference(small, roadmap, events, accounts, AS_OF)
    for given in (events.lazy(), pl.scan_parquet(path)):  # streaming: the new day
        got = hr.evaluate(roadmap, given, accounts, AS_OF)
        assert_frame_equal(got.indicators, small.indicators)
        assert got.diagnostics == small.diagnostics


@pytest.mark.parametrize("zone", [None, "UTC"])
def test_the_streaming_pass_equals_its_dt_date_form(zone: str | None) -> None:
    """The raw frame of the streaming pass, with the new day and with ``dt.date()``."""
    roadmap = _roadmap(zone)
    plan = hr.compile(roadmap)
    events = _events("us", zone, 5_000, seed=3)
    accounts = _accounts()
    clock = clock_for(plan, events.schema, AS_OF)
    run = EventsPass(plan, clock, accounts, optimistic=True)
    query = run.query(events.lazy(), folded=True)
    assert "dt.date" not in query.explain(optimizations=EVENTS_QUERY_FLAGS)
    got = query.collect(optimizations=EVENTS_QUERY_FLAGS)
    import healthrules.engine.aggregate as aggregate

    def old_day(ts: pl.Expr, dtype: Any, clock: Clock, small: bool) -> pl.Expr:
        return ts.dt.date()

    original = aggregate.day_of
    aggregate.day_of = old_day
    try:
        old = EventsPass(plan, clock, accounts, optimistic=True).query(
            events.lazy(), folded=True).collect(optimizations=EVENTS_QUERY_FLAGS)
    finally:
        aggregate.day_of = original
    key = plan.sources[plan.default_source].account
    assert_frame_equal(got.sort(key), old.sort(key))


def test_empty_events() -> None:
    roadmap = _roadmap("UTC")
    events = _events("us", "UTC", 0, seed=1)
    got = hr.evaluate(roadmap, events.lazy(), _accounts(), AS_OF)
    small = hr.evaluate(roadmap, events, _accounts(), AS_OF)
    assert_frame_equal(got.indicators, small.indicators)
