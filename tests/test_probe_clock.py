"""Probes of ``Clock.lit_end(shift)`` across daylight-saving changes (docs/semantics.md,
"Time"): the evaluation instant keeps its own fold (an aware ``as_of`` in the second
occurrence of a repeated hour), and a shifted wall time (``end - N days``) is read as any
other wall time: a repeated one with the offset before the change (its earlier instant), a
skipped one with the offset before the change too, whatever the fold of ``end``.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from healthrules.compiler import compile as compile_plan
from healthrules.inputs import Clock, clock_for
from healthrules.roadmap import Roadmap

NY = "America/New_York"
UTC = dt.UTC


def _instant(expr: pl.Expr) -> dt.datetime:
    value = pl.select(expr.dt.convert_time_zone("UTC")).item()
    assert isinstance(value, dt.datetime)
    return value.astimezone(UTC)


def _clock(as_of: dt.datetime, unit: str = "us") -> Clock:
    roadmap = Roadmap.model_validate({
        "id": "p", "goal": "g", "data": {"events": {"timezone": NY}},
        "indicators": [{"id": "n", "family": "process", "aggregate": "count",
                        "window": "7d"}],
        "stages": [{"id": "s"}]})
    plan = compile_plan(roadmap)
    schema = pl.Schema({"account_id": pl.String, "timestamp": pl.Datetime(unit, NY)})
    return clock_for(plan, schema, as_of)


@pytest.mark.parametrize("unit", ["ns", "us", "ms"])
def test_second_repeated_hour_keeps_its_instant_and_shifts_read_fold_0(unit: str) -> None:
    # 06:30 UTC is the second 01:30 of New York's 1 November 2026 (EST)
    clock = _clock(dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC), unit)
    assert clock.end.fold == 1 and clock.fold == 1
    assert _instant(clock.lit_end()) == dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    # a week earlier: 25 October 01:30 EDT (a wall time that exists once)
    assert _instant(clock.lit_end(-dt.timedelta(days=7))) == dt.datetime(
        2026, 10, 25, 5, 30, tzinfo=UTC)
    # a day later: 2 November 01:30 EST
    assert _instant(clock.lit_end(dt.timedelta(days=1))) == dt.datetime(
        2026, 11, 2, 6, 30, tzinfo=UTC)
    # onto another repeated 01:30 (1 November 2020): the earlier instant (EDT), not the fold
    # of end
    back = dt.datetime(2026, 11, 1) - dt.datetime(2020, 11, 1)
    assert _instant(clock.lit_end(-back)) == dt.datetime(2020, 11, 1, 5, 30, tzinfo=UTC)
    # the literal of the shift is the instant zoneinfo gives the wall time with fold=0
    wall = dt.datetime(2020, 11, 1, 1, 30, tzinfo=ZoneInfo(NY))
    assert _instant(clock.lit_end(-back)) == wall.astimezone(UTC)


def test_first_repeated_hour_and_a_shift_onto_a_skipped_hour() -> None:
    clock = _clock(dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC))  # the first 01:30 (EDT)
    assert clock.end.fold == 0
    assert _instant(clock.lit_end()) == dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    # 15 March 2026 02:30 EDT; a week earlier 02:30 is skipped: the offset before (EST)
    clock = _clock(dt.datetime(2026, 3, 15, 2, 30))
    assert _instant(clock.lit_end()) == dt.datetime(2026, 3, 15, 6, 30, tzinfo=UTC)
    assert _instant(clock.lit_end(-dt.timedelta(days=7))) == dt.datetime(
        2026, 3, 8, 7, 30, tzinfo=UTC)


def test_the_same_wall_time_with_two_folds_gives_two_literals() -> None:
    first = _clock(dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC))
    second = _clock(dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC))
    assert first.end == second.end and first != second  # clocks are cache keys
    assert _instant(first.lit_end()) != _instant(second.lit_end())
    # after a shift both read the same wall time the same way
    week = -dt.timedelta(days=7)
    assert _instant(first.lit_end(week)) == _instant(second.lit_end(week))
