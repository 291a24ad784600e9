"""Every claim lint makes about a value or a condition holds on every evaluation.

Lint's findings say things about what the engine will compute: a value lies in some range
(the base facts every check starts from), an action's condition is never true (HR501) or
never false (HR502), a stage is never reached (HR103), a band never given (HR301), a segment
never applies (HR407). A claim that is wrong is a silent wrong answer of its own: a user
deletes a rule that fires on real data. Here hypothesis draws the roadmaps and the
null-, NaN-, infinity- and Int64-edge-rich data of tests/test_engine_vs_reference.py, lints
each roadmap and checks every claim against what ``evaluate`` gives.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import healthrules as hr
from healthrules.errors import Issue
from healthrules.lint import lint
from healthrules.lint.context import LintContext
from healthrules.roadmap import Roadmap
from test_engine_vs_reference import cases, evaluate_unless_out_of_range

_STAGE_PATH = "stages["


def _index(path: str, prefix: str) -> int:
    return int(path[len(prefix):].split("]", 1)[0])


def claims_hold(roadmap: Roadmap, result: hr.Evaluation, findings: list[Issue]) -> list[str]:
    """Every lint claim (facts and findings) that the evaluation contradicts, as lines."""
    problems: list[str] = []
    ctx = LintContext(roadmap)
    facts = ctx.facts
    indicators = result.indicators
    # the base facts: every value lies in the range lint assumes for its name
    for name, fact in facts.names.items():
        frame: pl.DataFrame | None = None
        if name in indicators.columns:
            frame = indicators
        elif name in result.scores.columns:
            frame = result.scores
        elif name in result.stages.columns:
            frame = result.stages
        if frame is None:
            continue
        for account, value in zip(frame["account_id"].to_list(), frame[name].to_list(),
                                  strict=True):
            if isinstance(value, (dt.date, dt.datetime)):
                continue
            if not fact.dom.contains(value):
                problems.append(f"fact {fact.dom.describe(name)} ({fact.reason}): "
                                f"{account} has {name} = {value!r}")
    fired = {(r["action_id"]) for r in result.actions.to_dicts()}
    counts = {r["action_id"]: r for r in result.conditions.to_dicts()}
    stage_of = dict(zip(result.stages["account_id"].to_list(),
                        result.stages["stage"].to_list(), strict=True))
    refs = {ref.path: ref for ref in ctx.actions()}
    for issue in findings:
        path = issue.location.path or ""
        if issue.code == "HR501":
            ref = refs[path.removesuffix(".when")]
            if ref.action.id in fired:
                problems.append(f"HR501 {issue.message}, but {ref.action.id} fired")
        elif issue.code == "HR502":
            ref = refs[path.removesuffix(".when")]
            row = counts[ref.action.id]
            false = row["considered"] - row["fired"] - row["unknown"]
            if false:
                problems.append(f"HR502 {issue.message}, but it was false for {false} accounts")
        elif issue.code == "HR103" and path.startswith(_STAGE_PATH):
            stage = roadmap.stages[_index(path, _STAGE_PATH)].id
            inside = [a for a, s in stage_of.items() if s == stage]
            if inside:
                problems.append(f"HR103 {issue.message}, but {inside} are in it")
        elif issue.code == "HR301":
            m = re.fullmatch(r"(.*)\.levels\[(\d+)\]", path)
            assert m is not None, path
            where, k = m.group(1), int(m.group(2))
            im = re.fullmatch(r"indicators\[(\d+)\]\.bands", where)
            if im is not None:
                ind = roadmap.indicators[int(im.group(1))]
                assert ind.bands is not None
                level, values = ind.bands.levels[k].name, indicators[f"{ind.id}__band"]
            elif where == "score.bands" and roadmap.score.bands is not None:
                level, values = roadmap.score.bands.levels[k].name, result.scores["score_band"]
            else:
                continue  # a segment's own bands: the score_band of its accounts only
            if level in values.to_list():
                problems.append(f"HR301 {issue.message}, but {level!r} was given")
        elif issue.code == "HR407":
            seg = path.split("segments[", 1)[1].split("]", 1)[0]
            segment = roadmap.score.segments[int(seg)].id
            if "segment" in result.scores.columns:
                inside = result.scores.filter(pl.col("segment") == segment)["account_id"]
                if len(inside):
                    problems.append(f"HR407 {issue.message}, but {inside.to_list()} are in it")
        elif issue.code == "HR601":
            problems += _constant_holds(roadmap, result, issue, path)
    return problems


def _constant_holds(roadmap: Roadmap, result: hr.Evaluation, issue: Issue,
                    path: str) -> list[str]:
    """An HR601 claim on a goal's target or a stage's achievement against the evaluation."""
    never = "never" in issue.message.split(":", 1)[0]
    if path == "goal.target":
        reached = set(result.scores["goal_reached"].to_list())
        wrong = True if never else False
        if wrong in reached:
            return [f"HR601 {issue.message}, but goal_reached is {wrong} for an account"]
        return []
    m = re.fullmatch(r"stages\[(\d+)\]\.achievement\.when", path)
    if m is not None and never:
        stage = roadmap.stages[int(m.group(1))].id
        done = result.stages.filter((pl.col("stage") == stage) & pl.col("achieved"))
        if len(done):
            return [f"HR601 {issue.message}, but {done['account_id'].to_list()} achieved it"]
    return []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_lint_claims_hold_on_every_evaluation(
    case: tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any],
) -> None:
    roadmap, events, accounts, as_of = case
    findings = lint(roadmap)
    result = evaluate_unless_out_of_range(roadmap, events, accounts, as_of)
    problems = claims_hold(roadmap, result, findings)
    assert not problems, "\n".join(problems[:10])


# --------------------------------------------------------------------------- anchored windows

ANCHORED = """\
id: r
goal: g
data:
  events: {timezone: America/New_York}
  accounts: {attributes: {since: datetime, start: date}}
indicators:
  - {id: first, family: process, aggregate: first_time}
  - {id: at_first, family: process, aggregate: active_days, window: {from: first, days: 1}}
  - {id: at_since, family: process, aggregate: active_days, window: {from: since, days: 1}}
  - {id: at_start, family: process, aggregate: active_days, window: {from: start, days: 1}}
stages:
  - id: s
    actions:
      - {id: a_first, kind: challenge, when: at_first > 1, do: x, owner: csm, channel: email}
      - {id: a_since, kind: challenge, when: at_since > 1, do: x, owner: csm, channel: email}
      - {id: a_start, kind: challenge, when: at_start > 1, do: x, owner: csm, channel: email}
"""


def test_a_window_anchored_at_an_instant_touches_one_more_calendar_day() -> None:
    # `{from: x, days: 1}` with x at 13:00 holds 13:00 to 13:00 the next day: two calendar
    # days. Lint once said `active_days <= 1` (HR501 "never true") of an action that fires.
    from healthrules.loader import load_text

    roadmap = load_text(ANCHORED)
    assert isinstance(roadmap, Roadmap)
    zone = "America/New_York"
    at = [dt.datetime(2026, 6, 1, 13), dt.datetime(2026, 6, 2, 9)]
    events = pl.DataFrame({
        "account_id": ["c", "c"], "event": ["x", "x"], "user_id": ["u", "u"],
        "timestamp": at,
    }).with_columns(pl.col("timestamp").dt.replace_time_zone(zone))
    accounts = pl.DataFrame({
        "account_id": ["c"], "since": [dt.datetime(2026, 6, 1, 12)],
        "start": [dt.date(2026, 6, 1)],
    }).with_columns(pl.col("since").dt.replace_time_zone(zone))
    result = hr.evaluate(roadmap, events, accounts, dt.date(2026, 6, 30))
    row = result.indicators.row(0, named=True)
    assert (row["at_first"], row["at_since"], row["at_start"]) == (2, 2, 1)
    findings = lint(roadmap)
    assert claims_hold(roadmap, result, findings) == []
    never = {i.location.path for i in findings if i.code == "HR501"}
    # a date anchor starts at midnight: its one day is one calendar day, and lint still says so
    assert never == {"stages[0].actions[2].when"}
    facts = LintContext(roadmap).facts.names
    shown = {n: facts[n].dom.describe(n) for n in ("at_first", "at_since", "at_start")}
    assert shown == {"at_first": "0 <= at_first <= 2", "at_since": "0 <= at_since <= 2",
                     "at_start": "0 <= at_start <= 1"}


# --------------------------------------------------------------------------- ranges at the edges

RANGE_AGGREGATES = ["count", "distinct", "active_days", "days_since_first", "days_since_last"]
RANGE_WINDOWS: list[Any] = [
    "1d", "2d", "7d", "all", {"from": "since", "days": 1}, {"from": "since", "days": 2},
    {"from": "start", "days": 1}, {"from": "start", "days": 2}, {"from": "first", "days": 1},
    {"from": "first", "days": 2}, {"from": "since"}, {"from": "first"},
]
RANGE_DERIVED = [
    "min({a}, 1)", "clip({a}, 0, 1)", "abs({a} - 3)", "round({a} / 3, 1)", "{a} / {b}",
    "{a} * {b}", "-{a}", "{a} ** 2", "{a} - {b}", "coalesce({a}, {b})", "max({a}, {b}) + 1",
    "{a} if vip else {b}", "{a} * ratio", "round({a} * 0.285, 2)", "{a} / seats",
    "{a} + seats", "min({a}, ratio)", "clip({a} * ratio, -1, 1)",
]
RANGE_ZONES = [None, "UTC", "America/New_York", "Europe/London"]
RANGE_AS_OF = [dt.date(2026, 3, 9), dt.date(2026, 11, 2), dt.date(2026, 6, 30),
               dt.datetime(2026, 3, 8, 13, 30), dt.datetime(2026, 11, 1, 1, 30)]


@st.composite
def range_cases(draw: Any) -> tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any]:
    """Roadmaps of the aggregates lint knows a range of (trailing, anchored at a date, a
    datetime and an indicator, all-time; compare modes) and derived indicators over them,
    with events crowded around the window edges, near daylight-saving changes."""
    zone = draw(st.sampled_from(RANGE_ZONES))
    as_of = draw(st.sampled_from(RANGE_AS_OF))
    indicators: list[dict[str, Any]] = [
        {"id": "first", "family": "process", "aggregate": "first_time"}]
    numeric: list[str] = []
    for k in range(draw(st.integers(1, 4))):
        window = draw(st.sampled_from(RANGE_WINDOWS))
        ind: dict[str, Any] = {"id": f"i{k}", "family": "process",
                               "aggregate": draw(st.sampled_from(RANGE_AGGREGATES)),
                               "window": window}
        if isinstance(window, str) and window != "all" and draw(st.booleans()):
            ind["compare"] = draw(st.sampled_from(["previous", "delta", "pct_change"]))
        indicators.append(ind)
        numeric.append(ind["id"])
    pool = [*numeric, "seats"]
    for k in range(draw(st.integers(0, 3))):
        expr = draw(st.sampled_from(RANGE_DERIVED)).format(
            a=draw(st.sampled_from(pool)), b=draw(st.sampled_from(pool)))
        indicators.append({"id": f"d{k}", "family": "process", "expr": expr})
        pool.append(f"d{k}")
    spec = {
        "id": "r", "goal": "g",
        "data": {"events": {"timezone": zone},
                 "accounts": {"attributes": {"since": "datetime", "start": "date",
                                             "seats": "int", "ratio": "float", "vip": "bool"}}},
        "indicators": indicators,
        "stages": [{"id": "s"}],
    }
    roadmap = Roadmap.model_validate(spec)
    day = as_of if not isinstance(as_of, dt.datetime) else as_of.date()
    end = dt.datetime.combine(day, dt.time())
    ids = [f"c{k}" for k in range(draw(st.integers(1, 3)))]
    rows_acc, rows_ev = [], []
    for ident in ids:
        since = end - dt.timedelta(hours=draw(st.integers(1, 24 * 9)))
        start = day - dt.timedelta(days=draw(st.integers(0, 9)))
        rows_acc.append({
            "account_id": ident,
            "since": draw(st.none() | st.just(since)),
            "start": draw(st.none() | st.just(start)),
            "seats": draw(st.none() | st.sampled_from([0, 1, 3, -2, 2**63 - 1, -(2**63)])),
            "ratio": draw(st.none() | st.sampled_from([0.0, -0.0, 0.5, 2.0, math.inf,
                                                       -math.inf, 1e308])),
            "vip": draw(st.none() | st.booleans()),
        })
        anchors = [since, dt.datetime.combine(start, dt.time()), end]
        for _ in range(draw(st.integers(0, 12))):
            base = draw(st.sampled_from(anchors))
            at = base + dt.timedelta(minutes=draw(st.integers(-60 * 30, 60 * 60)))
            rows_ev.append({"account_id": ident, "event": "e",
                            "user_id": draw(st.sampled_from(["u1", "u2", None])),
                            "timestamp": at})
    accounts = pl.DataFrame(rows_acc, schema={
        "account_id": pl.String, "since": pl.Datetime("us"), "start": pl.Date,
        "seats": pl.Int64, "ratio": pl.Float64, "vip": pl.Boolean})
    events = pl.DataFrame(rows_ev, schema={
        "account_id": pl.String, "event": pl.String, "user_id": pl.String,
        "timestamp": pl.Datetime("us")})
    if zone is not None:
        # wall times in the zone (a skipped one moves forward, a repeated one is the first)
        events = events.with_columns(pl.col("timestamp").dt.replace_time_zone(
            zone, ambiguous="earliest", non_existent="null")).drop_nulls("timestamp")
        accounts = accounts.with_columns(pl.col("since").dt.replace_time_zone(
            zone, ambiguous="earliest", non_existent="null"))
    return roadmap, events, accounts, as_of


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(range_cases())
def test_the_ranges_lint_assumes_hold_at_window_edges(
    case: tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any],
) -> None:
    roadmap, events, accounts, as_of = case
    result = evaluate_unless_out_of_range(roadmap, events, accounts, as_of)
    problems = claims_hold(roadmap, result, lint(roadmap))
    assert not problems, "\n".join(problems[:10])
