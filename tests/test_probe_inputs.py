"""Probes: the engine against the reference (and ``explain``) on inputs the data contract
accepts that the strategies of tests/test_engine_vs_reference.py do not draw.

The cases of that file are drawn, then their frames are rewritten to another accepted
shape: timestamps in ns / ms (or ``Date``), integer value columns and attributes of every
width, ``Float32`` values and ratios, ``Categorical`` / ``Enum`` account ids, extra account
columns, a shuffled frame, and the whole case moved in time so that ``as_of`` falls on a
daylight-saving change (New York's 8 March and 1 November 2026).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import healthrules as hr
from healthrules.explain import explain
from reference import evaluate_reference
from test_engine_vs_reference import cases, compare, evaluate_unless_out_of_range

Draw = Callable[[st.SearchStrategy[Any]], Any]

INTS = [pl.Int8, pl.Int16, pl.Int32, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64, pl.Int64]


def _fits(s: pl.Series, dtype: pl.DataType) -> bool:
    return s.cast(dtype, strict=False).null_count() == s.null_count()


def _int_dtype(draw: Draw, s: pl.Series) -> Any:
    return draw(st.sampled_from([d for d in INTS if _fits(s, d())]))


@st.composite
def reshaped(draw: Draw) -> tuple[Any, pl.DataFrame, pl.DataFrame, Any, list[str]]:
    roadmap, events, accounts, as_of = draw(cases())
    how: list[str] = []
    zone = events.schema["timestamp"].time_zone  # type: ignore[attr-defined]
    # the whole case moved in time: as_of on a daylight-saving change
    shift_to = draw(st.sampled_from([None, dt.date(2026, 3, 8), dt.date(2026, 11, 1),
                                     dt.date(2026, 3, 9), dt.date(2026, 11, 2)]))
    if shift_to is not None:
        base = as_of.date() if isinstance(as_of, dt.datetime) else as_of
        days = (shift_to - base).days
        # on the wall clock: naive times move by days, zoned ones keep their wall time
        wall = pl.col("timestamp").dt.replace_time_zone(None) + pl.duration(days=days)
        events = events.with_columns(
            (wall.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
             if zone else wall).alias("timestamp"))
        accounts = accounts.with_columns(
            pl.col("start") + pl.duration(days=days),
            (pl.col("since").dt.replace_time_zone(None) + pl.duration(days=days))
            .dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
            if zone else pl.col("since") + pl.duration(days=days))
        as_of = as_of + dt.timedelta(days=days)
        how.append(f"shift {days}d")
    # as_of an instant in the repeated or skipped hour of the change (aware: either 01:30
    # of 1 November; naive: 02:30 of 8 March, which does not exist in New York)
    at = draw(st.sampled_from([None, None, "05:30Z", "06:30Z", "02:30", "01:59:59.999999"]))
    if at is not None and shift_to is not None:
        day = as_of.date() if isinstance(as_of, dt.datetime) else as_of
        if at.endswith("Z"):
            if zone is not None:
                as_of = dt.datetime.combine(day, dt.time.fromisoformat(at[:-1]), dt.UTC)
                how.append(f"as_of {as_of.isoformat()}")
        else:
            as_of = dt.datetime.combine(day, dt.time.fromisoformat(at))
            how.append(f"as_of {as_of.isoformat()}")
    unit = draw(st.sampled_from(["us", "ns", "ms", "date"]))
    if unit == "date":
        if draw(st.booleans()):
            events = events.with_columns(pl.col("timestamp").dt.date())
            how.append("Date timestamps")
    elif unit != "us":
        events = events.with_columns(pl.col("timestamp").dt.cast_time_unit(unit))
        how.append(unit)
    qty = _int_dtype(draw, events["qty"])
    events = events.with_columns(pl.col("qty").cast(qty))
    seats = _int_dtype(draw, accounts["seats"])
    accounts = accounts.with_columns(pl.col("seats").cast(seats))
    how.append(f"qty {qty}, seats {seats}")
    if draw(st.booleans()):
        events = events.with_columns(pl.col("value").cast(pl.Float32))
        how.append("value Float32")
    if draw(st.booleans()):
        accounts = accounts.with_columns(pl.col("ratio").cast(pl.Float32))
        how.append("ratio Float32")
    keys = draw(st.sampled_from(["str", "cat-events", "cat-both", "enum-events", "enum-both"]))
    if keys != "str":
        names = sorted({*accounts["account_id"].to_list(),
                        *[k for k in events["account_id"].to_list() if k is not None]})
        dtype: Any = pl.Categorical() if keys.startswith("cat") else pl.Enum(names)
        events = events.with_columns(pl.col("account_id").cast(dtype),
                                     pl.col("user_id").cast(pl.Categorical()),
                                     pl.col("event").cast(pl.Categorical()))
        if keys.endswith("both"):
            accounts = accounts.with_columns(pl.col("account_id").cast(dtype),
                                             pl.col("parent_id").cast(dtype),
                                             pl.col("plan").cast(pl.Categorical()))
        how.append(keys)
    if draw(st.booleans()):
        accounts = accounts.with_columns(pl.lit("x").alias("extra"),
                                         pl.col("seats").alias("seats_copy"))
        events = events.with_columns(pl.lit(1).alias("other"))
        how.append("extra columns")
    if draw(st.booleans()):
        events = events.sample(fraction=1.0, shuffle=True, seed=draw(st.integers(0, 9)))
        accounts = accounts.reverse()
        how.append("shuffled")
    return roadmap, events, accounts, as_of, how


def _explained(result: hr.Evaluation) -> list[str]:
    """``explain`` of every routed account: the actions it says fired are those fired."""
    problems: list[str] = []
    fired: dict[Any, set[str]] = {}
    for row in result.actions.to_dicts():
        fired.setdefault(row["account_id"], set()).add(row["action_id"])
    for row in result.scores.to_dicts():
        account = row["account_id"]
        why = explain(result, account)
        said = {t.action_id for t in why.actions if t.fired}
        if said != fired.get(account, set()):
            problems.append(f"{account} explain fired {said}, engine {fired.get(account)}")
        # the conditions explain evaluates again hold as the engine decided them
        if why.goal is not None and why.goal.result != row["goal_reached"]:
            problems.append(f"{account} explain goal {why.goal.result}, engine "
                            f"{row['goal_reached']}")
        entered = [t for t in why.stages if t.stage == row["stage"]]
        if entered and entered[0].entry is not None and entered[0].result is not True:
            problems.append(f"{account} explain: stage {row['stage']}'s entry is "
                            f"{entered[0].result}")
        segment = row.get("segment")
        for t in why.segments:
            if t.stage == segment:
                if t.result is not True:
                    problems.append(f"{account} explain: segment {segment} is {t.result}")
                break
            if t.result is True:
                problems.append(f"{account} explain: segment {t.stage} holds before "
                                f"{segment}")
    return problems


def _check(roadmap: Any, events: pl.DataFrame | pl.LazyFrame, accounts: pl.DataFrame,
           as_of: Any, how: str) -> None:
    """The engine against the reference and explain's traces (``how``: the case's shape)."""
    result = evaluate_unless_out_of_range(roadmap, events, accounts, as_of, how)
    ref = evaluate_reference(roadmap, events.collect() if isinstance(events, pl.LazyFrame)
                             else events, accounts, as_of)
    problems = compare(result, ref, roadmap) + _explained(result)
    assert not problems, "\n".join([how, *problems[:20]])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reshaped())
def test_reshaped_inputs_match_the_reference(
        case: tuple[Any, pl.DataFrame, pl.DataFrame, Any, list[str]]) -> None:
    roadmap, events, accounts, as_of, how = case
    _check(roadmap, events, accounts, as_of, ", ".join(how))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.sampled_from(["empty", "empty-lazy", "no-accounts", "null-timestamps",
                                 "all-after-as_of"]))
def test_edge_frames_match_the_reference(
        case: tuple[Any, pl.DataFrame, pl.DataFrame, Any], how: str) -> None:
    """No events (an empty frame, eager or lazy), no accounts, every timestamp null, every
    event after ``as_of``: every account's windows are empty, as the reference says."""
    roadmap, events, accounts, as_of = case
    if how.startswith("empty"):
        events = events.clear()
    elif how == "no-accounts":
        accounts = accounts.clear()
    elif how == "null-timestamps":
        events = events.with_columns(pl.lit(None, events.schema["timestamp"]).alias("timestamp"))
    else:
        events = events.with_columns(pl.col("timestamp") + pl.duration(days=400))
    _check(roadmap, events.lazy() if how == "empty-lazy" else events, accounts, as_of, how)
