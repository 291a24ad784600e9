"""The other paths over the generated roadmaps: ``explain`` and ``history``.

tests/test_engine_vs_reference.py draws roadmaps with every kind of indicator, window,
compare mode, band, stage, segment, goal, action and roll-up, and checks ``evaluate``
against the reference. Two paths read the same roadmaps and no generator reached them:

- ``explain`` (the scalar evaluator, row by row, over the values the evaluation gives):
  its stage, segment and goal traces, which actions fired with their due dates and owners,
  and the score's contributions must be those of ``evaluate``
  (tests/test_explain.py checks one fixed roadmap only);
- ``history`` (one aggregation per account and day, every date read from it; other
  queries for roll-ups, anchored windows, percentiles): ``history(...).at(d)`` must equal
  ``evaluate(..., d)`` at every date (docs/time.md), for plain and dated accounts
  (the history tests elsewhere read fixed roadmaps, or several sources without roll-ups);
- account keys of other dtypes: every frame's key column of its own integer width and sign,
  or ``Categorical`` / ``Enum`` against ``String`` (docs/semantics.md, "Input checking" and
  "Several event sources": the keys are joined across them), which every other generator
  draws as ``String`` in every frame.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

import healthrules as hr
from healthrules.history import history
from healthrules.history.snapshots import date_range
from healthrules.roadmap import UNASSIGNED_STAGE, Roadmap
from test_dated_accounts import dated_cases
from test_engine_vs_reference import (
    AS_OF,
    Draw,
    assert_matches_reference,
    cases,
    evaluate_unless_out_of_range,
    same,
)
from test_hierarchies import dated_hierarchy_cases
from test_sources_engine import multi_source_cases

Case = tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any]
TIME_FUNCTIONS = ("change(", "prev(", "stuck(", "days_in_stage")


# --------------------------------------------------------------------------- explain


def explain_problems(result: hr.Evaluation, roadmap: Roadmap | Sequence[Roadmap]) -> list[str]:
    """Every difference between ``result`` and ``result.explain(account)``, per account
    (``roadmap``: one, or the tracks of a pack)."""
    tracks = {r.id: r for r in ([roadmap] if isinstance(roadmap, Roadmap) else roadmap)}
    key = result.account_key
    problems: list[str] = []
    fired = {(row[key], row["action_id"]): row for row in result.actions.to_dicts()}
    scores = {row[key]: row for row in result.scores.to_dicts()}

    def check(account: object, what: str, engine: object, explained: object) -> None:
        if not same(engine, explained):
            problems.append(f"{account} {what}: engine {engine!r}, explain {explained!r}")

    for srow in result.stages.to_dicts():
        account = srow[key]
        why = result.explain(account)
        check(account, "roadmap", srow["roadmap"], why.roadmap)
        check(account, "stage", srow["stage"], why.stage)
        if srow["roadmap"] is None:
            continue
        # the scalar evaluator's own verdicts over the evaluation's values
        entered = [s.stage for s in why.stages if s.result is True]
        check(account, "first stage entered", srow["stage"],
              entered[0] if entered else UNASSIGNED_STAGE)
        score = scores[account]
        check(account, "score", score["score"], why.score)
        check(account, "score_band", score["score_band"], why.score_band)
        check(account, "goal", score["goal_reached"],
              None if why.goal is None else why.goal.result)
        track = tracks[srow["roadmap"]]
        if track.score.segments:
            chosen = [s.stage for s in why.segments if s.result is True]
            check(account, "segment traced", score["segment"], chosen[0] if chosen else None)
            check(account, "segment", score["segment"], why.segment)
        for a in why.actions:
            row = fired.get((account, a.action_id))
            check(account, f"{a.action_id} fired", row is not None, a.fired)
            if row is not None and a.fired:
                check(account, f"{a.action_id} due_date", row["due_date"], a.due_date)
                check(account, f"{a.action_id} owner", row["owner"], a.owner)
                check(account, f"{a.action_id} owner_role", row["owner_role"], a.owner_role)
        # the contributions: the indicators the score reads, with the engine's counts
        scored = sum(1 for c in why.contributions if c.band_score is not None)
        missing = sum(1 for c in why.contributions if c.missing)
        check(account, "indicators_scored", score["indicators_scored"], scored)
        check(account, "indicators_missing", score["indicators_missing"], missing)
        points = sum(c.points for c in why.contributions)
        if why.score is None:
            if any(c.weight for c in why.contributions):
                problems.append(f"{account} contributions weigh, the score is null")
        elif points != pytest.approx(why.score, rel=1e-9, abs=1e-9):
            problems.append(f"{account} contributions add up to {points}, score {why.score}")
    return problems


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_explain_agrees_with_evaluate_on_generated_roadmaps(case: Case) -> None:
    roadmap, events, accounts, as_of = case
    result = evaluate_unless_out_of_range(roadmap, events, accounts, as_of)
    problems = explain_problems(result, roadmap)
    assert not problems, "\n".join(problems[:20])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dated_cases())
def test_explain_agrees_with_evaluate_on_dated_accounts(case: Case) -> None:
    roadmap, events, accounts, as_of = case
    result = hr.evaluate(roadmap, events, accounts, as_of)
    problems = explain_problems(result, roadmap)
    assert not problems, "\n".join(problems[:20])


# --------------------------------------------------------------------------- history

DATES = (dt.date(2026, 6, 16), AS_OF)


def _rows(frame: pl.DataFrame, order: list[str]) -> list[dict[str, Any]]:
    return frame.sort(order).to_dicts() if frame.height else []


def frame_problems(what: str, day: dt.date, at: pl.DataFrame, one: pl.DataFrame,
                   order: list[str]) -> list[str]:
    """The differences of two frames, bit for bit (`same`: the sign of a zero, NaN)."""
    if at.columns != one.columns:
        return [f"{day} {what} columns: history {at.columns}, evaluate {one.columns}"]
    left, right = _rows(at, order), _rows(one, order)
    if len(left) != len(right):
        return [f"{day} {what}: history {len(left)} rows, evaluate {len(right)}"]
    problems = []
    for a, b in zip(left, right, strict=True):
        for column in at.columns:
            if isinstance(a[column], list) or isinstance(b[column], list):
                ok = a[column] == b[column]
            else:
                ok = same(a[column], b[column])
            if not ok:
                problems.append(f"{day} {what} {[a[c] for c in order]} {column}: "
                                f"history {a[column]!r}, evaluate {b[column]!r}")
    return problems


def history_problems(roadmap: Roadmap, events: pl.DataFrame, accounts: pl.DataFrame,
                     ) -> list[str]:
    """``history(...).at(d)`` against ``evaluate(..., d)`` at each date of ``DATES``.

    Sums near the Int64 bounds: history refuses the grid (``values_out_of_range``) exactly
    when evaluate refuses at one of its dates (docs/time.md); a refusal on one side only is
    a problem."""
    try:
        h = history(roadmap, events, accounts, DATES[0], DATES[-1], every="14d")
    except hr.InputDataError as e:  # sums near the Int64 bounds, or a dated parent missing
        codes = {i.code for i in e.issues}
        assert codes <= {"values_out_of_range", "unknown_parent"}, e
        if codes != {"values_out_of_range"}:
            reject()
        refused = []
        for day in date_range(DATES[0], DATES[-1], "14d"):
            try:
                hr.evaluate(roadmap, events, accounts, day)
            except hr.InputDataError as one:
                assert {i.code for i in one.issues} == {"values_out_of_range"}, one
                refused.append(day)
        return [] if refused else [
            f"history refuses ({e}), evaluate computes every date of the grid"]
    # actions that read change over time (prev, change, stuck, days_in_stage) see the
    # earlier dates in history and nothing in one evaluation: those are compared elsewhere
    timed = any(f in roadmap.model_dump_json() for f in TIME_FUNCTIONS)
    problems: list[str] = []
    key = h.account_key
    for day in h.dates:
        try:
            one = hr.evaluate(roadmap, events, accounts, day)
        except hr.InputDataError as e:
            assert {i.code for i in e.issues} == {"values_out_of_range"}, e
            problems.append(f"{day}: evaluate refuses ({e}), history computes the date")
            continue
        at = h.at(day)
        for what in ("indicators", "stages", "scores"):
            problems += frame_problems(what, day, getattr(at, what), getattr(one, what),
                                       [key, "roadmap"])
        if not timed:
            problems += frame_problems("actions", day, at.actions, one.actions,
                                       [key, "action_id"])
            problems += frame_problems("conditions", day, at.conditions, one.conditions,
                                       ["roadmap", "action_id"])
    return problems


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_history_equals_evaluate_on_generated_roadmaps(case: Case) -> None:
    roadmap, events, accounts, _ = case
    problems = history_problems(roadmap, events, accounts)
    assert not problems, "\n".join(problems[:20])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dated_cases())
def test_history_equals_evaluate_on_generated_dated_accounts(case: Case) -> None:
    roadmap, events, accounts, _ = case
    problems = history_problems(roadmap, events, accounts)
    assert not problems, "\n".join(problems[:20])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dated_hierarchy_cases())
def test_history_equals_evaluate_on_generated_dated_hierarchies(case: Case) -> None:
    roadmap, events, accounts, _ = case
    problems = history_problems(roadmap, events, accounts)
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("dated", [False, True])
def test_history_of_a_window_from_an_anchor_anchored_at_an_attribute(dated: bool) -> None:
    """A window from ``first_time`` whose own window starts at a date attribute: history
    computes such indicators with one query per date, which did not join the attribute's
    start instant its anchor's window reads (a ColumnNotFoundError, found by the dated
    test above)."""
    accounts: dict[str, Any] = {"attributes": {"start": "date"}}
    frame = pl.DataFrame({"account_id": ["a", "b"],
                          "start": [dt.date(2026, 6, 1), dt.date(2026, 6, 21)]})
    if dated:
        accounts["snapshot"] = "snapshot_date"
        frame = frame.with_columns(pl.lit(dt.date(2026, 6, 1)).alias("snapshot_date"))
    roadmap = Roadmap.model_validate({
        "id": "r", "goal": "g", "data": {"events": {"user": None}, "accounts": accounts},
        "indicators": [
            {"id": "f", "family": "process", "aggregate": "first_time",
             "window": {"from": "start"}},
            {"id": "n", "family": "process", "aggregate": "count",
             "window": {"from": "f", "days": 3}}],
        "stages": [{"id": "s"}]})
    events = pl.DataFrame({"account_id": ["a", "a", "a", "b", "b"], "event": ["x"] * 5,
                           "timestamp": [dt.datetime(2026, 6, d) for d in (10, 12, 20, 20, 22)]})
    assert not history_problems(roadmap, events, frame)
    h = history(roadmap, events, frame, DATES[0], DATES[-1], every="14d")
    assert h.indicators.sort("as_of", "account_id")["n"].to_list() == [2, None, 2, 1]


def test_history_has_the_conditions_of_a_date_without_accounts() -> None:
    """A date at which no account exists yet (dated accounts) has its ``conditions`` rows,
    of zeros, as ``evaluate`` gives them; history left the date out (found by the dated
    test above)."""
    roadmap = Roadmap.model_validate({
        "id": "r", "goal": "g",
        "data": {"events": {"user": None}, "accounts": {"snapshot": "snapshot_date"}},
        "indicators": [{"id": "n", "family": "process", "aggregate": "count"}],
        "stages": [{"id": "s"}],
        "actions": [{"id": "hi", "kind": "positive", "when": "n > 0", "do": "hi"}]})
    events = pl.DataFrame({"account_id": ["a"], "event": ["x"],
                           "timestamp": [dt.datetime(2026, 6, 20)]})
    accounts = pl.DataFrame({"account_id": ["a"], "snapshot_date": [dt.date(2026, 6, 20)]})
    assert not history_problems(roadmap, events, accounts)
    h = history(roadmap, events, accounts, DATES[0], DATES[-1], every="14d")
    assert h.conditions.select("as_of", "considered", "fired", "unknown").rows() == [
        (DATES[0], 0, 0, 0), (DATES[-1], 1, 1, 0)]


# --------------------------------------------------------------------------- key dtypes

INT_KEYS: list[pl.DataType] = [pl.Int8(), pl.Int16(), pl.Int32(), pl.Int64(), pl.UInt8(),
                               pl.UInt16(), pl.UInt32(), pl.UInt64()]
KEY_NAMES = ["c0", "c1", "c2", "c3", "c4", "ghost"]
KEY_VALUES = [0, 1, 5, 100, 127, 255, 1000, 70000, 2**40]
"""Integer keys: every frame's key column of its own width (and sign). The accounts' keys
fit the accounts' and the default source's dtype (else the evaluation is refused: tested
in tests/test_loader.py); another source's column may be too narrow for some accounts, whose
events it then cannot hold."""
TEXT_KEYS: list[pl.DataType] = [pl.String(), pl.Categorical(), pl.Enum(KEY_NAMES)]


def _fits(dtype: pl.DataType, values: list[int]) -> bool:
    return pl.Series(values, dtype=pl.Int64).cast(dtype, strict=False).null_count() == 0


@st.composite
def rekeyed(draw: Draw, events: dict[str, tuple[pl.DataFrame, str]], default: str,
            accounts: pl.DataFrame) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """The frames with the keys ``c0``... (and ``ghost``) as integers or categories, a
    dtype drawn per frame."""
    if draw(st.booleans()):
        mapping = dict(zip(KEY_NAMES, draw(st.permutations(KEY_VALUES)), strict=False))
        used = [mapping[k] for k in accounts["account_id"].to_list()]
        fitting = [d for d in INT_KEYS if _fits(d, used)]
        acc_dtype = draw(st.sampled_from(fitting))

        def column(name: str, dtype: pl.DataType) -> pl.Expr:
            return (pl.col(name).replace_strict(mapping, default=None, return_dtype=pl.Int64)
                    .cast(dtype, strict=False))

        dtypes = {s: draw(st.sampled_from(fitting if s == default else INT_KEYS))
                  for s in events}
    else:
        acc_dtype = draw(st.sampled_from(TEXT_KEYS))

        def column(name: str, dtype: pl.DataType) -> pl.Expr:
            return pl.col(name).cast(dtype)

        dtypes = {s: draw(st.sampled_from(TEXT_KEYS)) for s in events}
    keyed_accounts = accounts.with_columns(
        column(c, acc_dtype) for c in ("account_id", "parent_id") if c in accounts.columns)
    return ({s: frame.with_columns(column(key, dtypes[s]))
             for s, (frame, key) in events.items()}, keyed_accounts)


@st.composite
def keyed_cases(draw: Draw) -> tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any]:
    roadmap, events, accounts, as_of = draw(cases())
    frames, accounts = draw(rekeyed({"": (events, "account_id")}, "", accounts))
    return roadmap, frames[""], accounts, as_of


@st.composite
def keyed_multi_source_cases(draw: Draw) -> tuple[Roadmap, dict[str, pl.DataFrame],
                                                  pl.DataFrame, Any]:
    roadmap, events, accounts, as_of = draw(multi_source_cases())
    keys = {"usage": "account_id", "tickets": "customer", "surveys": "account_id"}
    frames, accounts = draw(rekeyed({s: (f, keys[s]) for s, f in events.items()}, "usage",
                                    accounts))
    return roadmap, frames, accounts, as_of


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keyed_cases())
def test_keys_of_other_dtypes_match_the_reference(case: Any) -> None:
    roadmap, events, accounts, as_of = case
    result = evaluate_unless_out_of_range(roadmap, events, accounts, as_of)
    assert_matches_reference(result, roadmap, events, accounts, as_of,
                             note=(events.schema["account_id"], accounts.schema["account_id"]))
    problems = explain_problems(result, roadmap)
    assert not problems, "\n".join(problems[:20])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keyed_multi_source_cases())
def test_sources_keyed_by_other_dtypes_match_the_reference(case: Any) -> None:
    roadmap, events, accounts, as_of = case
    note = ({s: f.schema[c] for s, f in events.items() for c in f.columns
             if c in ("account_id", "customer")}, accounts.schema["account_id"])
    result = hr.evaluate(roadmap, events, accounts, as_of)
    assert_matches_reference(result, roadmap, events, accounts, as_of, note=note)
    read = sum(result.diagnostics[f"{name}:events_read"] for name in events)
    assert result.diagnostics["events_read"] == read


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keyed_multi_source_cases())
def test_history_of_sources_keyed_by_other_dtypes_equals_evaluate(case: Any) -> None:
    roadmap, events, accounts, _ = case
    problems = history_problems(roadmap, events, accounts)
    assert not problems, "\n".join(problems[:20])
