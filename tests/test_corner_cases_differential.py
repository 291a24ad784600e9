"""The engine, ``explain`` (the scalar evaluator) and the reference evaluator on the corners
the other generators rarely draw.

tests/test_engine_vs_reference.py draws events at random minutes of June in New York, UTC
or naive, values mostly small, and an ``as_of`` of 30 June. Here the instants, values and
roadmaps are drawn from small pools of boundary cases instead, so that every example meets
several of them:

- **time**: windows whose edges fall on a daylight-saving change (New York and London, both
  changes of 2026; the change day itself, 1, 7, 14 and 30 days after), ``as_of`` as a date
  or a datetime in the skipped or the repeated hour, events exactly at the evaluation
  instant (never counted) and one microsecond before, exactly on a window's start, in both
  01:30 of a fall-back night, and several events at the same instant;
- **accounts**: one with no events, one with one event, one whose events hold only nulls,
  attributes null or at the Int64 and float bounds;
- **values**: ties (percentiles, medians and distinct counts of equal values), -0.0, NaN,
  inf, ints and floats around 2**53, values at the Int64 bounds (a sum of them is refused,
  which the test expects);
- **expressions**: ints and floats mixed around 2**53, division by zero (also of a computed
  zero), comparisons with null, ``x is None``;
- **bands** whose cut points are the values the indicators compute (0, 1, 2, 2**53 and
  2**53 + 1, both edge kinds), stage entry tests that are all false or all true, roll-ups
  over a forest of accounts;
- **evidence** of ``and``/``or``/``not`` conditions: it must name only what made the
  condition true (the reference's evidence, docs/semantics.md "Actions").

The ``ci`` profile keeps the example counts small; HYPOTHESIS_PROFILE=explore with a larger
``--hypothesis-seed`` range (or a local edit of ``max_examples``) runs many more.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import healthrules as hr
from healthrules.analysis import analyze
from healthrules.roadmap import AGGREGATES, Roadmap
from reference import evaluate_reference
from test_engine_vs_reference import (
    ATTRIBUTES,
    Draw,
    compare,
    edged_levels,
    evaluate_unless_out_of_range,
    roadmaps,
)
from test_generated_corners import _evidence_problems, _explained_values
from test_generated_paths import explain_problems

ZONES = ["America/New_York", "Europe/London", None, "UTC"]
CHANGE_DAYS = {
    None: [dt.date(2026, 3, 8), dt.date(2026, 11, 1)],
    "UTC": [dt.date(2026, 3, 29), dt.date(2026, 10, 25)],
    "America/New_York": [dt.date(2026, 3, 8), dt.date(2026, 11, 1)],
    "Europe/London": [dt.date(2026, 3, 29), dt.date(2026, 10, 25)],
}
"""The daylight-saving changes of 2026 (for UTC and naive events: the same days, no change)."""

BIG = 2**53
FLOATS = [0.0, -0.0, 0.5, 1.0, 1.0, 2.0, 2.0, 0.1, 0.3, float(BIG), float(BIG + 2), 5e-324,
          math.nan, math.inf, -math.inf, 1e300, -1.5]
"""Float event values: ties are frequent (1.0, 2.0), then the boundary values."""
INTS = [0, 1, 1, 2, -1, BIG, BIG + 1, -BIG - 1, 2**62, 2**63 - 1, -(2**63)]
"""Int event values: ties, 2**53 and its neighbours, the Int64 bounds (a sum of those is
refused: ``values_out_of_range``)."""

WINDOWS: list[Any] = ["1d", "7d", "2w", "30d", "all", {"from": "start", "days": 1},
                      {"from": "start"}, {"from": "since", "days": 7}, {"from": "since"}]
FILTERS = [
    "value == 0",
    "value >= 9007199254740992",
    "qty == 9007199254740993",
    "qty > 9007199254740992.0",
    "value is None",
    "not (qty > 0)",
    "timestamp >= since",
    "timestamp < start",
    "value / qty > 1",
    "qty / 0 is None",
    "event == 'login' or value > 1",
    "seats > 9223372036854775806",
]
DERIVED = [
    "{a} + 9007199254740993",
    "{a} * 1.0 + 9007199254740993",
    "{a} == 9007199254740993",
    "{a} - {b}",
    "{a} / ({b} - {b})",
    "{a} / 0",
    "{a} / seats",
    "seats + {a}",
    "seats * 2",
    "ratio * {a}",
    "{a} if {b} > 1 else ratio",
    "max({a}, ratio, seats)",
    "coalesce({a}, seats, 0)",
    "{a} is None",
    "{a} > ratio",
    "round({a} / 3, 2)",
]
CUTS = [0, 1, 2, 0.5, BIG, BIG + 2, 1e300]  # 2**53 + 1 is refused: not a double
CONDITIONS = [
    "{a} > 1 and {b} <= 2",
    "{a} > 1 or {b} <= 2",
    "not ({a} > 1)",
    "not vip or {a} == 0",
    "({a} > 0 or vip) and ({a} > 0 or {b} is None)",
    "{a} is None or {b} is None",
    "{a} >= 9007199254740993 or seats < 0",
    "vip and not ({b} < 1)",
    "1 < {a} <= 2 or plan == 'pro'",
    "{a} > {b} or {b} > {a}",
    "({a} > 1 and {b} > 9) or ({b} >= 0 and {a} > 1)",
    "(vip or {a} > 1) and not (vip and {a} > 1)",
    "band({x}) == 'lo' or band({x}) != 'hi'",
    "True",
    "False",
]


# --------------------------------------------------------------------------- time


def as_of_choices(zone: str | None) -> st.SearchStrategy[dt.date | dt.datetime]:
    """A date or a (naive or aware) datetime on or a few days after a change day, in the
    skipped or repeated hour, at midnight or at the last microsecond of a day."""
    def build(day: dt.date, after: int, kind: int) -> dt.date | dt.datetime:
        d = day + dt.timedelta(days=after)
        if kind == 0:
            return d
        wall = [dt.time(1, 30), dt.time(2, 30), dt.time(0, 0), dt.time(23, 59, 59, 999999),
                dt.time(12, 0), dt.time(12, 0)][kind - 1]
        at = dt.datetime.combine(d, wall)
        if zone is not None and kind == 5:  # aware: the later 01:30 of a fall-back night
            at = dt.datetime.combine(d, dt.time(1, 30, fold=1), tzinfo=ZoneInfo(zone))
        if zone is not None and kind == 6:  # aware in another zone: 06:30 UTC
            at = dt.datetime.combine(d, dt.time(6, 30), tzinfo=dt.UTC)
        return at

    return st.builds(build, st.sampled_from(CHANGE_DAYS[zone]),
                     st.sampled_from([0, 1, 7, 14, 30, 31]), st.integers(0, 6))


def _end(as_of: dt.date | dt.datetime, zone: str | None) -> dt.datetime:
    """The evaluation instant as a naive wall time (the events' clock)."""
    if isinstance(as_of, dt.datetime):
        if as_of.tzinfo is not None and zone is not None:
            return as_of.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
        return as_of.replace(tzinfo=None)
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())


def instants(zone: str | None, as_of: dt.date | dt.datetime) -> list[dt.datetime]:
    """The instants events are drawn from: the evaluation instant and one microsecond
    before, the starts of the windows (same wall time N days earlier) and around them, every
    hour of the change days' nights (both 01:30 of a fall-back night)."""
    end = _end(as_of, zone)
    walls = [end, end - dt.timedelta(microseconds=1)]
    for days in (1, 7, 14, 28, 30, 60):
        start = end - dt.timedelta(days=days)
        walls += [start, start - dt.timedelta(microseconds=1), start + dt.timedelta(hours=1)]
    for day in CHANGE_DAYS[zone]:
        for hour in (0, 1, 2, 3):
            walls.append(dt.datetime.combine(day, dt.time(hour, 30)))
        walls.append(dt.datetime.combine(day, dt.time()))
    if zone is None:
        return walls
    tz = ZoneInfo(zone)
    # a skipped wall time is read with the offset before the change (fold 0), as the
    # engine reads one; normalised to a wall time that exists
    out = [wall.replace(tzinfo=tz).astimezone(dt.UTC).astimezone(tz) for wall in walls]
    out += [wall.replace(tzinfo=tz, fold=1).astimezone(dt.UTC).astimezone(tz) for wall in walls
            if (wall.hour, wall.minute) == (1, 30)]
    return out


# --------------------------------------------------------------------------- data


@st.composite
def corner_data(draw: Draw, zone: str | None, as_of: dt.date | dt.datetime,
                ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Accounts ``a0`` (no events), ``a1`` (one event), ``a2`` (events of null values only)
    and maybe ``a3``, ``a4`` (many events at few instants), in a forest."""
    pool = instants(zone, as_of)
    ids = [f"a{k}" for k in range(draw(st.integers(3, 5)))]
    parents = [None if k == 0 or draw(st.booleans()) else ids[draw(st.integers(0, k - 1))]
               for k in range(len(ids))]
    day = as_of if not isinstance(as_of, dt.datetime) else as_of.date()

    def maybe(strategy: st.SearchStrategy[Any]) -> Any:
        return draw(st.none() | strategy)

    accounts = pl.DataFrame(
        [{
            "account_id": ident,
            "parent_id": parent,
            "start": maybe(st.sampled_from([day, day - dt.timedelta(days=1),
                                            day + dt.timedelta(days=1), *CHANGE_DAYS[zone]])),
            "since": maybe(st.sampled_from(pool)),
            "seats": maybe(st.sampled_from([0, 1, 2, 2**63 - 1, -(2**63), BIG + 1])),
            "plan": maybe(st.sampled_from(["pro", "free"])),
            "ratio": maybe(st.sampled_from([0.0, -0.0, 1.0, 0.5, float(BIG), 1.7976931348623157e308,
                                            -1.7976931348623157e308, math.inf, 5e-324])),
            "vip": maybe(st.booleans()),
        } for ident, parent in zip(ids, parents, strict=True)],
        schema={"account_id": pl.String, "parent_id": pl.String, "start": pl.Date,
                "since": pl.Datetime("us", zone), "seats": pl.Int64, "plan": pl.String,
                "ratio": pl.Float64, "vip": pl.Boolean},
    )
    rare = draw(st.integers(0, 9)) == 0  # values at the bounds: sums then refused

    def value() -> float | None:
        got = draw(st.none() | st.sampled_from(FLOATS if rare else FLOATS[:9]))
        return None if got is None else float(got)

    def qty() -> int | None:
        return draw(st.none() | st.sampled_from(INTS if rare else INTS[:8]))

    rows: list[dict[str, Any]] = []

    def add(account: str, *, nulls: bool = False) -> None:
        rows.append({
            "account_id": account,
            "user_id": None if nulls else maybe(st.sampled_from(["u1", "u2"])),
            "event": None if nulls else draw(st.sampled_from(["login", "report"])),
            "timestamp": draw(st.sampled_from(pool)),
            "value": None if nulls else value(),
            "qty": None if nulls else qty(),
        })

    add("a1")
    for _ in range(draw(st.integers(1, 3))):
        add("a2", nulls=True)
    busy = ids[3:]
    if busy:
        for _ in range(draw(st.integers(1, 12))):
            add(draw(st.sampled_from(busy)))
    events = pl.DataFrame(rows, schema={
        "account_id": pl.String, "user_id": pl.String, "event": pl.String,
        "timestamp": pl.Datetime("us", zone), "value": pl.Float64, "qty": pl.Int64})
    return events, accounts


# --------------------------------------------------------------------------- roadmaps


@st.composite
def corner_roadmaps(draw: Draw, zone: str | None) -> dict[str, Any]:
    """A roadmap of aggregates over the corner windows and filters, derived indicators
    mixing ints and floats, bands cut at the computed values, stages whose tests may be
    all false or all true, a roll-up, and actions whose conditions combine and/or/not."""
    indicators: list[dict[str, Any]] = []
    for k in range(draw(st.integers(1, 4))):
        agg = draw(st.sampled_from(list(AGGREGATES)))
        ind: dict[str, Any] = {"id": f"i{k}", "family": "process", "aggregate": agg,
                               "window": draw(st.sampled_from(WINDOWS))}
        if agg in ("sum", "mean", "min", "max", "median", "percentile"):
            ind["of"] = draw(st.sampled_from(["value", "qty"]))
        elif agg == "distinct":
            ind["of"] = draw(st.sampled_from(["value", "qty", "user_id", "event"]))
        if agg == "percentile":
            ind["q"] = draw(st.sampled_from([0, 0.25, 0.5, 0.333333, 1]))
        if draw(st.booleans()):
            ind["where"] = draw(st.sampled_from(FILTERS))
        if (ind["window"] in ("1d", "7d", "2w", "30d") and agg not in ("first_time", "last_time")
                and draw(st.integers(0, 2)) == 0):
            ind["compare"] = draw(st.sampled_from(["previous", "delta", "pct_change"]))
        indicators.append(ind)
    numeric = [i["id"] for i in indicators if i["aggregate"] not in ("first_time", "last_time")]
    pool = [*numeric, "seats", "ratio"]
    for k in range(draw(st.integers(0, 3))):
        template = draw(st.sampled_from(DERIVED))
        expr = template.format(a=draw(st.sampled_from(pool)), b=draw(st.sampled_from(pool)))
        derived: dict[str, Any] = {"id": f"d{k}", "family": "outcome", "expr": expr}
        indicators.append(derived)
        if " is None" not in template and " == " not in template and " > ratio" not in template:
            pool.append(f"d{k}")
    if draw(st.booleans()):
        agg = draw(st.sampled_from(["sum", "mean", "min", "max", "count"]))
        of = draw(st.sampled_from(pool))
        indicators.append({"id": "u0", "kind": "rollup", "aggregate": agg, "family": "process",
                           "of": f"{of} >= 1" if agg == "count" else of})
        pool.append("u0")
    banded: list[str] = []
    for ind in indicators:
        if ind["id"] not in pool or not draw(st.booleans()):
            continue
        cuts = sorted(set(draw(st.lists(st.sampled_from(CUTS), min_size=1, max_size=3))))
        names = ["lo", "mid", "hi", "top"][: len(cuts) + 1]
        ind["bands"] = {"direction": draw(st.sampled_from(["higher_is_better",
                                                           "lower_is_better"])),
                        "levels": edged_levels(draw, names, cuts)}
        banded.append(ind["id"])

    def cond(literal: bool = True) -> str:
        options = CONDITIONS if banded else CONDITIONS[:-3] + CONDITIONS[-2:]
        if not literal:
            options = [c for c in options if c not in ("True", "False")]
        return str(draw(st.sampled_from(options))).format(
            a=draw(st.sampled_from(pool)), b=draw(st.sampled_from(pool)),
            x=draw(st.sampled_from(banded)) if banded else "")

    # the first stage's test reads a value: tests that are all literals fail in the engine
    # (test_stage_tests_that_are_all_literals_pick_a_stage below)
    stages = [{"id": f"s{k}", "entry": cond(literal=k > 0)}
              for k in range(draw(st.integers(1, 3)))]
    if draw(st.booleans()):
        stages.append({"id": "last"})  # no entry: always matches
    actions = [{"id": f"act{k}", "kind": "challenge", "when": cond(), "do": f"{{{pool[0]}}}"}
               for k in range(draw(st.integers(1, 3)))]
    return {
        "id": "r",
        "goal": {"text": "g"},
        "data": {"events": {"values": {"value": "float", "qty": "int"}, "timezone": zone},
                 "accounts": {"attributes": ATTRIBUTES, "parent": "parent_id"}},
        "indicators": indicators,
        "stages": stages,
        "actions": actions,
        "score": {"missing": draw(st.sampled_from(["skip", "neutral", "worst"]))},
    }


# --------------------------------------------------------------------------- comparing


def problems_of(roadmap: Roadmap, events: pl.DataFrame, accounts: pl.DataFrame,
                as_of: Any) -> list[str]:
    """Every difference between the engine, the reference and ``explain`` (values, stages,
    scores, fired actions and their evidence)."""
    result = evaluate_unless_out_of_range(roadmap, events, accounts, as_of)
    ref = evaluate_reference(roadmap, events, accounts, as_of)
    return (compare(result, ref, roadmap) + _evidence_problems(result, ref)
            + explain_problems(result, roadmap) + _explained_values(result, [roadmap], ref))


@st.composite
def corner_cases(draw: Draw) -> tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any]:
    zone = draw(st.sampled_from(ZONES))
    roadmap = Roadmap.model_validate(draw(corner_roadmaps(zone)))
    assume(analyze(roadmap).ok)
    as_of = draw(as_of_choices(zone))
    events, accounts = draw(corner_data(zone, as_of))
    event(f"zone {zone}, as_of {type(as_of).__name__}")
    return roadmap, events, accounts, as_of


@st.composite
def generated_roadmaps_on_corner_data(draw: Draw,
                                      ) -> tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any]:
    """The main generator's roadmaps (tests/test_engine_vs_reference.py) on these data."""
    zone = draw(st.sampled_from(ZONES))
    roadmap = Roadmap.model_validate(draw(roadmaps(zone)))
    assume(analyze(roadmap).ok)
    as_of = draw(as_of_choices(zone))
    events, accounts = draw(corner_data(zone, as_of))
    return roadmap, events, accounts, as_of


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corner_cases())
def test_corner_roadmaps_agree_with_the_reference_and_explain(
        case: tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any]) -> None:
    problems = problems_of(*case)
    assert not problems, "\n".join(problems[:20])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated_roadmaps_on_corner_data())
def test_generated_roadmaps_on_corner_data_agree_with_the_reference_and_explain(
        case: tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any]) -> None:
    problems = problems_of(*case)
    assert not problems, "\n".join(problems[:20])


# --------------------------------------------------------------------------- found here


@pytest.mark.parametrize("entries", [["True"], ["False", "True"], ["False"]])
def test_stage_tests_that_are_all_literals_pick_a_stage(entries: list[str]) -> None:
    spec = {"id": "r", "goal": "g", "data": {"events": {}, "accounts": {"attributes": {}}},
            "indicators": [{"id": "n", "family": "process", "aggregate": "count"}],
            "stages": [{"id": f"s{k}", "entry": e} for k, e in enumerate(entries)]}
    roadmap = Roadmap.model_validate(spec)
    events = pl.DataFrame({"account_id": ["a0"], "user_id": ["u"], "event": ["x"],
                           "timestamp": [dt.datetime(2026, 6, 1)]})
    accounts = pl.DataFrame({"account_id": ["a0", "a1"]})
    result = hr.evaluate(roadmap, events, accounts, dt.date(2026, 6, 30))
    want = f"s{entries.index('True')}" if "True" in entries else "_unassigned"
    assert result.stages["stage"].to_list() == [want, want]
    problems = compare(result, evaluate_reference(roadmap, events, accounts,
                                                  dt.date(2026, 6, 30)), roadmap)
    assert not problems, problems
    # the forms for many rows (300 accounts) and history's grid pick the same stage
    many = pl.DataFrame({"account_id": [f"a{i}" for i in range(300)]})
    wide = hr.evaluate(roadmap, events, many, dt.date(2026, 6, 30))
    assert wide.stages["stage"].unique().to_list() == [want]
    grid = hr.history(roadmap, events, many, start=dt.date(2026, 6, 1),
                      end=dt.date(2026, 6, 29), every="1w")
    assert grid.stages["stage"].unique().to_list() == [want]
    assert grid.stages.height == 300 * len(grid.dates)


def test_evidence_lists_an_entry_where_the_condition_first_names_it() -> None:
    """An entry is placed where the condition first names it, also when that place is a
    branch of an ``or`` that did not hold, and listed when some place naming it held
    (docs/semantics.md, "Actions"); the reference once placed it where it first held."""
    spec = {"id": "r", "goal": "g",
            "data": {"events": {}, "accounts": {"attributes": {"seats": "int", "vip": "bool"}}},
            "indicators": [{"id": "n", "family": "process", "aggregate": "count"}],
            "stages": [{"id": "s0"}],
            "actions": [
                {"id": "first", "kind": "challenge", "do": "x",
                 "when": "(n > 1 and seats > 9) or (vip and n > 1)"},
                {"id": "second", "kind": "challenge", "do": "x",
                 "when": "(vip or seats > 1) and not (vip and seats > 1)"}]}
    roadmap = Roadmap.model_validate(spec)
    events = pl.DataFrame({"account_id": ["a0", "a0"], "user_id": ["u", "u"],
                           "event": ["x", "x"], "timestamp": [dt.datetime(2026, 6, 1)] * 2})
    accounts = pl.DataFrame({"account_id": ["a0", "a1"], "seats": [0, 2], "vip": [True, False]})
    as_of = dt.date(2026, 6, 30)
    result = hr.evaluate(roadmap, events, accounts, as_of)
    got = {(row["account_id"], row["action_id"]):
           [(e["name"], e["op"], e["threshold"]) for e in row["evidence"]]
           for row in result.actions.to_dicts()}
    assert got == {
        ("a0", "first"): [("n", ">", "1"), ("vip", None, None)],
        ("a0", "second"): [("vip", None, None), ("seats", None, None)],
        ("a1", "second"): [("vip", None, None), ("seats", ">", "1"), ("seats", None, None)],
    }
    ref = evaluate_reference(roadmap, events, accounts, as_of)
    assert not _evidence_problems(result, ref)
