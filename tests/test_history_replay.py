"""History against a replay: the change-over-time names, other steps, dated accounts.

tests/test_generated_paths.py compares ``history(...).at(d)`` with ``evaluate(..., d)``
bit for bit, but only where no action reads an earlier date: ``prev(x, N)``,
``change(x, N)``, ``stuck(N)`` and ``days_in_stage`` are null in one evaluation and filled in
by history (docs/time.md, "Change over time in expressions"). Here a *replay* computes them
the way the docs define them, from the reference evaluator alone, and history must agree
with the reference at every date of its grid:

- ``prev(x, N)`` is ``x`` as the reference computes it at ``d - N`` (the events and, with
  dated accounts, the attributes valid then); null when the account was not evaluated then;
- ``days_in_stage`` counts from the first date of the grid the account was observed at in
  its current (roadmap, stage), without a break of stage between observations (a stage
  change between two snapshots is seen at the next one); 0 at the first observation;
- ``stuck(N)`` is ``days_in_stage >= N``.

The grids are drawn: steps of one day to five weeks, a first date up to four months before
the events (dates before the first event, daylight-saving changes of the zoned roadmaps
in March between two snapshots or between a date and its lag).
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, reject, settings
from hypothesis import strategies as st

import healthrules as hr
from healthrules.analysis import analyze
from healthrules.expressions import lag_column
from healthrules.history import history, run
from healthrules.history.holds import Hold
from healthrules.history.lifecycle import replay as replay_lifecycle
from healthrules.history.store import StateStore
from healthrules.roadmap import Pack, Roadmap
from reference import Reference, evaluate_reference
from test_dated_accounts import dated_cases
from test_engine_vs_reference import AS_OF, cases, compare
from test_generated_paths import explain_problems, frame_problems

Case = tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any]
LAG = re.compile(r"\b(?:prev|change)\(\s*(\w+)\s*,\s*(\d+)\s*\)")


def grids(most: int = 5) -> st.SearchStrategy[tuple[int, int]]:
    """(step in days, number of dates, up to ``most``): the last date is AS_OF."""
    return st.tuples(st.sampled_from([1, 2, 7, 14, 30, 35]), st.integers(1, most))


def replay(roadmap: Roadmap | Pack, events: Any, accounts: pl.DataFrame,
           dates: list[dt.date]) -> dict[dt.date, Reference]:
    """The reference at each of ``dates`` (ascending), with the change-over-time values of
    docs/time.md computed from the reference at the earlier dates. ``roadmap`` may be a
    (loaded) pack: an earlier date's value counts where the account was routed to the same
    roadmap then (null where it was in another track, or in none)."""
    # the lags the actions read, from the roadmaps' text (not from the engine's analysis)
    tracks = roadmap.loaded if isinstance(roadmap, Pack) else [roadmap]
    lags = sorted({(m[1], int(m[2])) for r in tracks
                   for m in LAG.finditer(r.model_dump_json())})
    plain: dict[dt.date, Reference] = {}

    def at(day: dt.date) -> Reference:
        if day not in plain:
            plain[day] = evaluate_reference(roadmap, events, accounts, day)
        return plain[day]

    # the stage run of each account: (roadmap, stage, since) at the previous date of the
    # grid; the stage is observed at the dates of the grid only (not at the lags' dates),
    # and an account not evaluated at a date (dated accounts) is in no stage then
    runs: dict[object, tuple[str | None, str, dt.date]] = {}
    ages: dict[tuple[object, dt.date], int] = {}
    for day in dates:
        now_runs: dict[object, tuple[str | None, str, dt.date]] = {}
        for key, res in at(day).accounts.items():
            run = runs.get(key)
            if run is not None and run[:2] == (res.roadmap, res.stage):
                ages[key, day] = (day - run[2]).days
                now_runs[key] = run
            else:
                ages[key, day] = 0
                now_runs[key] = (res.roadmap, res.stage, day)
        runs = now_runs
    out: dict[dt.date, Reference] = {}
    for day in dates:
        values: dict[object, dict[str, object]] = {}
        for key, now in at(day).accounts.items():
            mine: dict[str, object] = {"days_in_stage": ages[key, day]}
            for name, days in lags:
                before = at(day - dt.timedelta(days=days)).accounts.get(key)
                value = None
                if (before is not None and before.roadmap is not None
                        and before.roadmap == now.roadmap):
                    value = before.score if name == "score" else before.indicators.get(name)
                mine[lag_column(name, days)] = value
            values[key] = mine
        out[day] = evaluate_reference(roadmap, events, accounts, day, time_values=values)
    return out


def _tracks(roadmap: Roadmap | Pack) -> list[Roadmap]:
    return list(roadmap.loaded) if isinstance(roadmap, Pack) else [roadmap]


def grid_history(roadmap: Roadmap | Pack, events: Any, accounts: pl.DataFrame,
                 grid: tuple[int, int], end: dt.date) -> tuple[dt.date, Any]:
    """The grid's first date and the history over its ``n`` dates ``every`` days apart
    ending at ``end`` (an example whose sums come near the Int64 bounds is rejected)."""
    every, n = grid
    start = end - dt.timedelta(days=every * (n - 1))
    try:
        return start, history(roadmap, events, accounts, start, end, every=f"{every}d")
    except hr.InputDataError as e:
        assert {i.code for i in e.issues} <= {"values_out_of_range"}, e
        reject()


def replay_problems(roadmap: Roadmap | Pack, events: Any, accounts: pl.DataFrame,
                    grid: tuple[int, int], end: dt.date = AS_OF) -> list[str]:
    start, h = grid_history(roadmap, events, accounts, grid, end)
    every, n = grid
    assert list(h.dates) == [start + dt.timedelta(days=every * k) for k in range(n)]
    problems: list[str] = []
    for day, ref in replay(roadmap, events, accounts, list(h.dates)).items():
        at = h.at(day)
        problems += [f"{day} {p}" for p in compare(at, ref, _tracks(roadmap))]
        # explain traces the actions with the same values (it once knew no past)
        problems += [f"{day} {p}" for p in explain_problems(at, _tracks(roadmap))]
    return problems


LAGS = [1, 2, 3, 7, 14, 30, 31, 60]


@st.composite
def reshaped(draw: Any, base: st.SearchStrategy[Case]) -> Case:
    """Dated accounts the generator of tests/test_dated_accounts.py does not draw: rows
    dropped (gaps between an account's rows, an account valid at some dates only) and
    ``Datetime`` validity columns (naive, or in the events' time zone), starting and
    ending at any hour (a gap of hours between two rows too)."""
    roadmap, events, accounts, as_of = draw(base)
    validity = roadmap.data.accounts.validity
    if accounts.height > 1 and draw(st.booleans()):
        keep = draw(st.lists(st.booleans(), min_size=accounts.height,
                             max_size=accounts.height))
        accounts = accounts.filter(pl.Series(keep))
    if len(validity) == 2 and draw(st.booleans()):
        zone = events.schema["timestamp"].time_zone  # type: ignore[attr-defined]
        # a row ends at or before the hour the next one starts (else they overlap: refused)
        start = draw(st.integers(0, 23))
        hours = [start, draw(st.integers(0, start))]
        accounts = accounts.with_columns(
            (pl.col(c).cast(pl.Datetime("us")) + pl.duration(hours=h)).alias(c)
            for c, h in zip(validity, hours, strict=True))
        if zone is not None:
            accounts = accounts.with_columns(
                pl.col(c).dt.replace_time_zone(zone, ambiguous="earliest",
                                               non_existent="null").alias(c)
                for c in validity)
            assume(accounts[validity[0]].null_count() == 0)
    return roadmap, events, accounts, as_of


@st.composite
def timed(draw: Any, base: st.SearchStrategy[Case], lifecycle: bool = False) -> Case:
    """A drawn case with more actions that read earlier dates: ``prev`` and ``change`` of
    every indicator type (and ``score``) at lags of one day to two months, ``stuck`` and
    ``days_in_stage`` at thresholds around the steps, in conditions and in texts, of every
    stage and of one stage."""
    roadmap, events, accounts, as_of = draw(base)
    return with_time_actions(draw, roadmap, lifecycle), events, accounts, as_of


def with_time_actions(draw: Any, roadmap: Roadmap, lifecycle: bool = False) -> Roadmap:
    """``roadmap`` with the actions of :func:`timed` (drawn with ``draw``)."""
    types = analyze(roadmap).indicator_types
    numbers = [n for n, t in types.items() if t in ("int", "float")] + ["score"]
    names = [*types, "score"]
    spec = roadmap.model_dump(by_alias=True, exclude_unset=True)

    def cond() -> str:
        n = draw(st.sampled_from(LAGS))
        x, y = draw(st.sampled_from(names)), draw(st.sampled_from(numbers))
        k = draw(st.sampled_from([0, 1, 3, 7, 14, 30]))
        return draw(st.sampled_from([
            f"prev({x}, {n}) is None", f"prev({x}, {n}) is not None",
            f"change({y}, {n}) > 0", f"change({y}, {n}) < 0", f"change({y}, {n}) == 0",
            f"prev({y}, {n}) > {y}", f"prev(score, {n}) - score >= 5",
            f"stuck({k})", f"not stuck({k})", f"days_in_stage == {k}",
            f"days_in_stage >= {k} and prev({x}, {n}) is None",
            f"stuck({k}) or change({y}, {n}) != 0"]))

    def text() -> str:
        n = draw(st.sampled_from(LAGS))
        x, y = draw(st.sampled_from(names)), draw(st.sampled_from(numbers))
        return "t " + " ".join(draw(st.lists(st.sampled_from(
            ["{days_in_stage}", f"{{prev({x}, {n})}}", f"{{change({y}, {n})}}",
             f"{{stuck({n})}}"]), max_size=2)))

    # one action that fires at every account and date of a history, whose text renders the
    # ages and lags themselves
    spec.setdefault("actions", []).append(
        {"id": "every", "kind": "positive", "when": "days_in_stage >= 0",
         "do": f"{{days_in_stage}} {text()} {text()}"})
    for k in range(draw(st.integers(1, 3))):
        action = {"id": f"t{k}", "kind": "challenge", "when": cond(), "do": text()}
        if lifecycle:  # the settings that act across runs (docs/time.md)
            for setting, values in (("for", ["1d", "7d"]), ("cooldown", ["2d", "14d"]),
                                    ("escalate_after", ["1d", "14d"]),
                                    ("resolved_when", ["stuck(7)", "days_in_stage == 0"])):
                if draw(st.booleans()):
                    action[setting] = draw(st.sampled_from(values))
        stages = spec["stages"]
        where = draw(st.integers(-1, len(stages) - 1))
        if where < 0:
            spec.setdefault("actions", []).append(action)
        else:
            stages[where].setdefault("actions", []).append(action)
    out = Roadmap.model_validate(spec)
    assume(analyze(out).ok)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timed(cases()), grids())
def test_history_equals_the_replay_on_generated_roadmaps(case: Case,
                                                         grid: tuple[int, int]) -> None:
    roadmap, events, accounts, _ = case
    problems = replay_problems(roadmap, events, accounts, grid)
    assert not problems, "\n".join(problems[:20])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timed(reshaped(dated_cases())), grids())
def test_history_equals_the_replay_on_dated_accounts(case: Case,
                                                     grid: tuple[int, int]) -> None:
    roadmap, events, accounts, _ = case
    problems = replay_problems(roadmap, events, accounts, grid)
    assert not problems, "\n".join(problems[:20])


# ---------------------------------------------------------------------- the daily store


Holds = list[tuple[int, int, int, bool, int]]
"""Snoozes and dismissals drawn as numbers: (run, account, action, dismiss, days), each
taken modulo what the case has (:func:`holds_of`)."""


def holds_of(drawn: Holds, roadmap: Roadmap | Pack, accounts: pl.DataFrame,
             dates: Sequence[dt.date]) -> dict[int, list[Hold]]:
    """The holds to record with the run of each date (by its index): an account of the
    accounts frame, an action of some track (``ROADMAP/ACTION``), for 1 to 30 days."""
    keys = sorted(set(accounts["account_id"].to_list()))
    actions = [f"{r.id}/{a.id}" for r in _tracks(roadmap) for _, a in r.all_actions()]
    out: dict[int, list[Hold]] = {}
    for at, account, action, dismiss, days in drawn:
        k = at % len(dates)
        out.setdefault(k, []).append(Hold(
            account=keys[account % len(keys)], action=actions[action % len(actions)],
            hold="dismiss" if dismiss else "snooze", reason="drawn",
            until=dates[k] + dt.timedelta(days=days)))
    return out


def holds() -> st.SearchStrategy[Holds]:
    return st.lists(st.tuples(st.integers(0, 4), st.integers(0, 7), st.integers(0, 9),
                              st.booleans(), st.sampled_from([1, 2, 7, 30])), max_size=4)


def store_problems(roadmap: Roadmap | Pack, events: Any, accounts: pl.DataFrame,
                   grid: tuple[int, int], end: dt.date = AS_OF,
                   drawn: Holds | None = None) -> list[str]:
    """The daily job run at each date of the grid (one store) against the history: each
    run's evaluation against ``history(...).at(d)``, the store's changes against
    ``history.lifecycle`` (with ``drawn`` holds: against ``replay(history, holds=...)`` of
    the store's holds, docs/operations.md)."""
    _, h = grid_history(roadmap, events, accounts, grid, end)
    held = holds_of(drawn, roadmap, accounts, h.dates) if drawn else {}
    problems: list[str] = []
    changes = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.db"
        for k, day in enumerate(h.dates):
            got = run(roadmap, path, events, accounts, day, holds=held.get(k, ()))
            at = h.at(day)
            key = h.account_key
            problems += [f"{day} run: {p}"
                         for p in explain_problems(got.evaluation, _tracks(roadmap))]
            for what, order in (("indicators", [key, "roadmap"]), ("stages", [key, "roadmap"]),
                                ("scores", [key, "roadmap"]), ("actions", [key, "action_id"]),
                                ("conditions", ["roadmap", "action_id"])):
                problems += frame_problems(what, day, getattr(at, what),
                                           getattr(got.evaluation, what), order)
            changes.append(got.changes.select(pl.lit(day).alias("as_of"), pl.all()))
        with StateStore(path) as store:
            kept = store.holds()
    stored = pl.concat(changes).drop("text", "rules_hash")
    replayed = (replay_lifecycle(h, holds=kept) if held else h.lifecycle).changes.drop("text")
    if not stored.equals(replayed):
        problems.append(f"changes: store\n{stored}\nhistory\n{replayed}")
    return problems


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timed(cases(), lifecycle=True), grids(), holds())
def test_the_daily_store_agrees_with_history_on_generated_roadmaps(
        case: Case, grid: tuple[int, int], drawn: Holds) -> None:
    """With snoozes and dismissals recorded at some runs: history has no holds, and
    ``lifecycle.replay(history, holds=store.holds())`` replays the runs' changes."""
    roadmap, events, accounts, _ = case
    problems = store_problems(roadmap, events, accounts, grid, drawn=drawn)
    assert not problems, "\n".join(problems[:20])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timed(reshaped(dated_cases()), lifecycle=True), grids(), holds())
def test_the_daily_store_agrees_with_history_on_dated_accounts(
        case: Case, grid: tuple[int, int], drawn: Holds) -> None:
    roadmap, events, accounts, _ = case
    problems = store_problems(roadmap, events, accounts, grid, drawn=drawn)
    assert not problems, "\n".join(problems[:20])


# ---------------------------------------------------------------------- found here


def _one_stage_change(actions: list[dict[str, Any]], dated: bool = False) -> Roadmap:
    accounts: dict[str, Any] = {"snapshot": "snapshot_date"} if dated else {}
    return Roadmap.model_validate({
        "id": "r", "goal": "g", "data": {"events": {"user": None}, "accounts": accounts},
        "indicators": [{"id": "n", "family": "process", "aggregate": "count",
                        "window": "1d"}],
        "stages": [{"id": "busy", "entry": "n > 0"}, {"id": "idle"}],
        "actions": actions})


STUCK = {"id": "stuck", "kind": "challenge", "when": "stuck(7)", "do": "{days_in_stage} days"}
LAGGED = {"id": "lagged", "kind": "positive", "when": "prev(n, 1) > 0", "do": "{prev(n, 1)}"}


def test_the_stage_age_counts_from_the_snapshots_only(tmp_path: Path) -> None:
    """``days_in_stage`` observes the stage at the snapshot dates of the history, as the
    daily job observes it at its runs. History also evaluated the dates another action's
    ``prev(x, 1)`` reads and took them for observations: an event on 7 June (a stage change
    for that day only) reset the age of a weekly history at 8 June when, and only when,
    some action read ``prev(n, 1)``, and the daily store run on the same dates disagreed."""
    events = pl.DataFrame({"account_id": ["a"], "event": ["x"],
                           "timestamp": [dt.datetime(2026, 6, 7, 12)]})
    accounts = pl.DataFrame({"account_id": ["a"]})
    fired = {}
    for actions in ([STUCK], [STUCK, LAGGED]):
        roadmap = _one_stage_change(actions)
        h = history(roadmap, events, accounts, "2026-06-01", "2026-06-15", every="7d")
        got = h.actions.filter(pl.col("action_id") == "stuck")
        fired[len(actions)] = got.select("as_of", "text").rows()
        path = tmp_path / f"{len(actions)}.db"
        runs = [run(roadmap, path, events, accounts, d) for d in h.dates]
        assert [r.evaluation.actions.filter(pl.col("action_id") == "stuck")["text"].to_list()
                for r in runs] == [[], ["7 days"], ["14 days"]]
    assert fired[1] == fired[2] == [(dt.date(2026, 6, 8), "7 days"),
                                    (dt.date(2026, 6, 15), "14 days")]
    assert h.actions.filter(pl.col("action_id") == "lagged")["as_of"].to_list() == [
        dt.date(2026, 6, 8)]


@pytest.mark.parametrize("per_date", [False, True])
def test_a_lag_before_every_account_existed(per_date: bool) -> None:
    """Dated accounts none of which exists at any date a ``prev`` reads: the first pass of
    history has no (account, date) pair; its frames had the key column only and history
    failed (``ColumnNotFoundError: score``) instead of giving ``prev`` null. With an
    indicator computed by one query per date (its filter reads ``as_of``), the empty pass
    then failed in that query (``cannot concat empty list``)."""
    indicators: list[dict[str, Any]] = [{"id": "n", "family": "process", "aggregate": "count"}]
    if per_date:
        indicators.append({"id": "late", "family": "process", "aggregate": "count",
                           "where": "as_of > date('2026-06-21')"})
    roadmap = Roadmap.model_validate({
        "id": "r", "goal": "g",
        "data": {"events": {"user": None}, "accounts": {"snapshot": "snapshot_date"}},
        "indicators": indicators,
        "stages": [{"id": "s"}],
        "actions": [{"id": "new", "kind": "positive", "when": "prev(score, 3) is None",
                     "do": "new {prev(n, 3)}"}]})
    events = pl.DataFrame({"account_id": ["a"], "event": ["x"],
                           "timestamp": [dt.datetime(2026, 6, 20)]})
    accounts = pl.DataFrame({"account_id": ["a"], "snapshot_date": [dt.date(2026, 6, 20)]})
    h = history(roadmap, events, accounts, "2026-06-20", "2026-06-22", every="1d")
    assert h.actions.select("as_of", "text").rows() == [
        (dt.date(2026, 6, d), "new n/a") for d in (20, 21, 22)]
    assert not replay_problems(roadmap, events, accounts, (1, 3), end=dt.date(2026, 6, 22))


def test_a_history_without_accounts_has_the_columns_of_evaluate() -> None:
    """No account at any date of a history (dated accounts, all later): its frames have
    the columns ``evaluate`` gives (they had the key column only)."""
    roadmap = _one_stage_change([STUCK, LAGGED], dated=True)
    events = pl.DataFrame({"account_id": ["a"], "event": ["x"],
                           "timestamp": [dt.datetime(2026, 6, 20)]})
    accounts = pl.DataFrame({"account_id": ["a"], "snapshot_date": [dt.date(2026, 6, 20)]})
    h = history(roadmap, events, accounts, "2026-06-01", "2026-06-08", every="7d")
    one = hr.evaluate(roadmap, events, accounts, dt.date(2026, 6, 8))
    for what in ("indicators", "stages", "scores", "actions"):
        at = getattr(h.at("2026-06-08"), what)
        assert at.height == 0 and at.schema == getattr(one, what).schema, what
        assert getattr(h, what).columns == ["as_of", *getattr(one, what).columns], what


def test_an_account_back_after_a_gap_starts_its_stage_again(tmp_path: Path) -> None:
    """Dated accounts: an account without a valid row at a snapshot date is not in any
    stage then; back at the next one, its stage starts again (0 days), as in the daily
    store, which forgets an account at a run where it does not exist. History counted the
    age on across the gap (14 days at 15 June)."""
    roadmap = _one_stage_change([STUCK], dated=True)
    events = pl.DataFrame({"account_id": ["z"], "event": ["x"],
                           "timestamp": [dt.datetime(2026, 5, 1)]})
    accounts = pl.DataFrame({"account_id": ["a", "b", "a"],
                             "snapshot_date": [dt.date(2026, 6, 1), dt.date(2026, 6, 8),
                                               dt.date(2026, 6, 15)]})
    h = history(roadmap, events, accounts, "2026-06-01", "2026-06-22", every="7d")
    ages = (h.at(d).actions.filter(pl.col("account_id") == "a")["text"].to_list()
            for d in h.dates)
    assert list(ages) == [[], [], [], ["7 days"]]
    assert not store_problems(roadmap, events, accounts, (7, 4), end=dt.date(2026, 6, 22))


def test_days_in_stage_is_none_in_a_single_evaluation_only(tmp_path: Path) -> None:
    """``days_in_stage is None`` (drawn by tests/test_engine_vs_reference.py) holds in one
    ``evaluate`` (no past) and never in a history or a daily run, where an account's age is
    0 at its first observation (docs/time.md)."""
    roadmap = _one_stage_change([{"id": "no_age", "kind": "positive",
                                  "when": "days_in_stage is None", "do": "none"}])
    events = pl.DataFrame({"account_id": ["a"], "event": ["x"],
                           "timestamp": [dt.datetime(2026, 6, 7, 12)]})
    accounts = pl.DataFrame({"account_id": ["a"]})
    one = hr.evaluate(roadmap, events, accounts, dt.date(2026, 6, 8))
    assert one.actions["action_id"].to_list() == ["no_age"]
    h = history(roadmap, events, accounts, "2026-06-01", "2026-06-15", every="7d")
    assert h.actions.is_empty() and h.conditions["fired"].sum() == 0
    assert [h.at(d).explain("a").actions[0].fired for d in h.dates] == [False] * 3
    path = tmp_path / "state.db"
    assert [run(roadmap, path, events, accounts, d).evaluation.actions.height
            for d in h.dates] == [0, 0, 0]
