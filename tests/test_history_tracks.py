"""Packs in a history: accounts that move between tracks over the grid, against a replay.

tests/test_history_replay.py replays single roadmaps; tests/test_generated_corners.py
evaluates packs at one date. Here a pack's history is replayed at each date of its grid
(``replay``: the reference at each date, with the change-over-time values computed from
the reference at the earlier dates), on packs whose accounts change tracks over the grid:
plain accounts routed by ``applies_to`` over ``as_of`` (``days_since(start) < 60``), dated
accounts routed by the attributes valid at each date, accounts in no track at some dates,
tracks that share indicator ids (of one type) or declare their own.

What the replay defines (docs/time.md, "Change over time in expressions"): ``prev(x, N)``
is ``x`` at ``d - N`` only where the account was routed to the *same* roadmap then (null
where it was in another track or in none), so that neither a shared indicator id nor
``score`` carries one track's value into another's; ``days_in_stage`` starts again when
the account changes track. The daily store run on the grid's dates gives the same
evaluations and lifecycle changes.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import healthrules as hr
from healthrules.analysis import analyze
from healthrules.history import history, run
from healthrules.roadmap import Pack, Roadmap
from test_dated_accounts import dated_cases
from test_engine_vs_reference import AS_OF
from test_generated_corners import APPLIES_TO, _clashes, _pack, pack_cases, pack_dated_cases
from test_generated_paths import TIME_FUNCTIONS, frame_problems
from test_history_replay import (
    Holds,
    grid_history,
    grids,
    holds,
    replay_problems,
    store_problems,
    with_time_actions,
)

Case = tuple[Pack, pl.DataFrame, pl.DataFrame]
SLOW = [HealthCheck.too_slow, HealthCheck.filter_too_much]
"""(a pack of two or three tracks is refused more often than one roadmap: a clash of
indicator types, a drawn condition over a name of the wrong type)"""


@st.composite
def timed_packs(draw: Any, base: st.SearchStrategy[Any], lifecycle: bool = False) -> Case:
    """A drawn pack whose every track has actions that read earlier dates (``prev``,
    ``change`` of its indicators and ``score``, ``stuck``, ``days_in_stage``, in conditions
    and texts; tests/test_history_replay.py, ``timed``)."""
    tracks, events, accounts, _ = draw(base)
    assume(not _clashes(tracks))
    return (_pack([with_time_actions(draw, r, lifecycle) for r in tracks]), events,
            accounts)


@st.composite
def twin_packs(draw: Any) -> tuple[list[Roadmap], pl.DataFrame, pl.DataFrame, Any]:
    """Two tracks of one drawn roadmap of dated accounts, the second with other windows:
    every indicator id in both, of one type, with other values. Accounts move between them
    at a drawn date (the first track's ``applies_to`` reads ``as_of``) and with their
    attributes, so a lag that read the other track's value shows (the generated packs reach
    that rarely: their accounts seldom change tracks, and their tracks mostly declare ids of
    their own)."""
    roadmap, events, accounts, as_of = draw(dated_cases())
    spec = roadmap.model_dump(by_alias=True, exclude_unset=True)
    twin = copy.deepcopy(spec)
    twin["id"] = "twin"
    for ind in twin["indicators"]:
        window = ind.get("window")
        if isinstance(window, dict) and window.get("days") is not None:
            window["days"] = draw(st.sampled_from([1, 3, 60]))
    # every account moves at a drawn date (as its attributes allow), the grid's and the
    # lags' dates on both sides of it
    cut = AS_OF - dt.timedelta(days=draw(st.sampled_from([1, 3, 8, 20, 40])))
    move = f"as_of < date('{cut.isoformat()}')"
    spec["applies_to"] = draw(st.sampled_from(
        [move, move, f"{move} or ({draw(st.sampled_from(APPLIES_TO))})",
         f"{move} and ({draw(st.sampled_from(APPLIES_TO))})"]))
    if draw(st.booleans()):
        twin["applies_to"] = draw(st.sampled_from(APPLIES_TO))
    # both tracks render the lags of every indicator and of the score, across the move
    days = draw(st.sampled_from([2, 9, 21, 41]))
    text = " ".join(f"{{prev({i['id']}, {days})}}" for i in spec["indicators"])
    for track in (spec, twin):
        track.setdefault("actions", []).append(
            {"id": "lagged", "kind": "positive", "when": "days_in_stage >= 0",
             "do": f"{text} {{prev(score, {days})}}"})
    tracks = [Roadmap.model_validate(spec), Roadmap.model_validate(twin)]
    assume(all(analyze(t).ok for t in tracks))
    return tracks, events, accounts, as_of


@settings(max_examples=8, deadline=None, suppress_health_check=SLOW)
@given(timed_packs(twin_packs()), grids(3))
def test_a_pack_of_twin_tracks_equals_the_replay(case: Case, grid: tuple[int, int]) -> None:
    pack, events, accounts = case
    problems = replay_problems(pack, events, accounts, grid)
    assert not problems, "\n".join(problems[:20])


@settings(max_examples=6, deadline=None, suppress_health_check=SLOW)
@given(timed_packs(pack_cases()), grids(3))
def test_a_pack_history_equals_the_replay(case: Case, grid: tuple[int, int]) -> None:
    pack, events, accounts = case
    problems = replay_problems(pack, events, accounts, grid)
    assert not problems, "\n".join(problems[:20])


@settings(max_examples=8, deadline=None, suppress_health_check=SLOW)
@given(timed_packs(pack_dated_cases()), grids(3))
def test_a_pack_history_of_dated_accounts_equals_the_replay(case: Case,
                                                            grid: tuple[int, int]) -> None:
    pack, events, accounts = case
    problems = replay_problems(pack, events, accounts, grid)
    assert not problems, "\n".join(problems[:20])


@settings(max_examples=5, deadline=None, suppress_health_check=SLOW)
@given(timed_packs(pack_dated_cases(), lifecycle=True), grids(4), holds())
def test_the_daily_store_agrees_with_a_pack_history(case: Case, grid: tuple[int, int],
                                                    drawn: Holds) -> None:
    """With holds (``ROADMAP/ACTION``) at some runs: replayed with the store's holds."""
    pack, events, accounts = case
    problems = store_problems(pack, events, accounts, grid, drawn=drawn)
    assert not problems, "\n".join(problems[:20])


def evaluate_problems(pack: Pack, events: pl.DataFrame, accounts: pl.DataFrame,
                      grid: tuple[int, int]) -> list[str]:
    """``history(...).at(d)`` against ``evaluate(pack, ..., d)`` at each date, bit for bit
    (a pack of the generators, whose actions read no earlier date)."""
    _, h = grid_history(pack, events, accounts, grid, AS_OF)
    key = h.account_key
    frames = [("indicators", [key, "roadmap"]), ("stages", [key, "roadmap"]),
              ("scores", [key, "roadmap"])]
    # actions that read earlier dates see them in history only: compared with the replay
    if not any(f in r.model_dump_json() for r in pack.loaded for f in TIME_FUNCTIONS):
        frames += [("actions", [key, "action_id"]), ("conditions", ["roadmap", "action_id"])]
    problems: list[str] = []
    for day in h.dates:
        one, at = hr.evaluate(pack, events, accounts, day), h.at(day)
        for what, order in frames:
            problems += frame_problems(what, day, getattr(at, what), getattr(one, what),
                                       order)
        assert at.diagnostics["accounts_unrouted"] == one.diagnostics["accounts_unrouted"]
    return problems


@settings(max_examples=8, deadline=None, suppress_health_check=SLOW)
@given(pack_cases(), grids(4))
def test_a_pack_history_equals_evaluate_at_each_date(
        case: tuple[list[Roadmap], pl.DataFrame, pl.DataFrame, Any],
        grid: tuple[int, int]) -> None:
    tracks, events, accounts, _ = case
    assume(not _clashes(tracks))
    problems = evaluate_problems(_pack(tracks), events, accounts, grid)
    assert not problems, "\n".join(problems[:20])


@settings(max_examples=8, deadline=None, suppress_health_check=SLOW)
@given(pack_dated_cases(), grids(4))
def test_a_pack_history_of_dated_accounts_equals_evaluate_at_each_date(
        case: tuple[list[Roadmap], pl.DataFrame, pl.DataFrame, Any],
        grid: tuple[int, int]) -> None:
    tracks, events, accounts, _ = case
    problems = evaluate_problems(_pack(tracks), events, accounts, grid)
    assert not problems, "\n".join(problems[:20])


# ---------------------------------------------------------------------- found here


def _track(ident: str, applies_to: str | None, window: str) -> Roadmap:
    return Roadmap.model_validate({
        "id": ident, "goal": "g", "applies_to": applies_to,
        "data": {"events": {"user": None},
                 "accounts": {"snapshot": "snapshot_date", "attributes": {"plan": "str"}}},
        "indicators": [{"id": "n", "family": "process", "aggregate": "count",
                        "window": window,
                        "bands": {"levels": [{"name": "low", "lt": 1},
                                             {"name": "high", "ge": 1}]}}],
        "stages": [{"id": "s"}],
        "actions": [{"id": "lag", "kind": "positive", "when": "days_in_stage >= 0",
                     "do": "{prev(n, 7)} {prev(score, 7)} {days_in_stage}"}]})


def test_a_lag_does_not_read_another_tracks_value(tmp_path: Path) -> None:
    """An account moves from the ``free`` track (``n``: events of 30 days) to the ``pro``
    track (``n``: events of the day) on 10 June. Its ``prev(n, 7)`` on 10 June read the
    ``free`` track's ``n`` of 3 June (3, a count of another window) and its
    ``prev(score, 7)`` the ``free`` track's score (100, with bands of another indicator): a
    drop of the score that no rule of the ``pro`` track saw. A lag now reads the earlier
    date only in the same track (null: ``n/a``), in the history and in the daily store."""
    pack = _pack([_track("pro", "plan == 'pro'", "1d"), _track("free", None, "30d")])
    events = pl.DataFrame({"account_id": ["a"] * 5, "event": ["x"] * 5,
                           "timestamp": [dt.datetime(2026, 6, d, 12) for d in range(1, 6)]})
    accounts = pl.DataFrame({"account_id": ["a", "a"], "plan": ["free", "pro"],
                             "snapshot_date": [dt.date(2026, 6, 1), dt.date(2026, 6, 10)]})
    h = history(pack, events, accounts, "2026-06-03", "2026-06-17", every="7d")
    want = [(dt.date(2026, 6, 3), "free", "n/a n/a 0"),
            (dt.date(2026, 6, 10), "pro", "n/a n/a 0"),
            (dt.date(2026, 6, 17), "pro", "0 0.00 7")]
    assert h.actions.select("as_of", "roadmap", "text").rows() == want
    path = tmp_path / "state.db"
    runs = [run(pack, path, events, accounts, d) for d in h.dates]
    assert [(d, *r.evaluation.actions.select("roadmap", "text").row(0))
            for d, r in zip(h.dates, runs, strict=True)] == want
    assert not replay_problems(pack, events, accounts, (7, 3), end=dt.date(2026, 6, 17))
