"""Task lists of large frames (history's grid) built once per combination of stage and task
flags and joined to the rows (``RoadmapProgram.tasks`` above ``TASK_COMBINATION_ROWS``
rows): they must equal the lists built row by row, for every stage, flag value (true,
false, null) and stage without tasks, in evaluate() and in history() at every date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.datasets import DEFAULT_AS_OF, sample
from healthrules.engine import assemble
from healthrules.history import history

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 3, 1, 9)
AS_OF = dt.date(2026, 3, 20)
ACCOUNTS = pl.DataFrame({"account_id": [f"a{k}" for k in range(8)],
                         "seats": [1, 2, 3, None, 5, 6, 7, 8]})


def _roadmap() -> hr.Roadmap:
    """Three stages: two with tasks (flags that can be true, false or null: ``seats`` may
    be missing, ``logins`` may be null-free but 0), one without tasks."""
    return hr.Roadmap.model_validate({
        "id": "tasks", "goal": "g",
        "data": {"events": {"user": None}, "accounts": {"attributes": {"seats": "int"}}},
        "indicators": [{"id": "logins", "family": "process", "aggregate": "count",
                        "where": "event == 'login'", "window": "7d"}],
        "stages": [
            {"id": "start", "entry": "logins < 2", "tasks": {
                "joint": [{"text": "log in twice", "done_when": "logins >= 1"}],
                "customer": [{"text": "buy seats", "done_when": "seats > 3"},
                             {"text": "say hello"}]}},
            {"id": "middle", "entry": "logins < 4", "tasks": {
                "ours": [{"text": "call", "done_when": "seats * logins > 6"}]}},
            {"id": "done"}]})


def _events(rows: list[tuple[int, int]]) -> pl.DataFrame:
    return pl.DataFrame({
        "account_id": [f"a{a}" for a, _ in rows],
        "event": ["login"] * len(rows),
        "timestamp": [T0 + dt.timedelta(days=d, hours=a) for a, d in rows],
    }, schema={"account_id": pl.String, "event": pl.String, "timestamp": pl.Datetime("us")})


def _both(monkeypatch: pytest.MonkeyPatch, run: Any) -> tuple[Any, Any]:
    """``run()`` with the lists built per combination (threshold 0) and row by row."""
    monkeypatch.setattr(assemble, "TASK_COMBINATION_ROWS", 0)
    shared = run()
    monkeypatch.setattr(assemble, "TASK_COMBINATION_ROWS", 10**12)
    plain = run()
    return shared, plain


ROWS = st.lists(st.tuples(st.integers(0, 7), st.integers(0, 19)), min_size=0, max_size=40)


@settings(max_examples=25, deadline=None)
@given(rows=ROWS)
def test_history_task_lists_per_combination(rows: list[tuple[int, int]]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        plan = hr.compile(_roadmap())
        events = _events(rows)
        shared, plain = _both(mp, lambda: history(
            plan, events, ACCOUNTS, AS_OF - dt.timedelta(days=12), AS_OF, "2d"))
    assert_frame_equal(shared.stages, plain.stages)
    assert shared.stages.height == 8 * 7
    for day in shared.dates:  # and evaluate() at every date, row by row
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(assemble, "TASK_COMBINATION_ROWS", 10**12)
            one = hr.evaluate(plan, events, ACCOUNTS, day)
        assert_frame_equal(shared.at(day).stages, one.stages)


def test_every_flag_value_and_a_stage_without_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows in all three stages, with true, false and null flags: the combinations path
    gives the same lists, in row order."""
    rows = [(0, 18), (1, 18), (1, 17), (2, 18), (2, 17), (2, 16), (3, 18), (3, 17),
            (4, 18), (4, 17), (4, 16), (4, 15), (4, 14), (5, 18)]
    plan = hr.compile(_roadmap())
    events = _events(rows)
    calls: list[int] = []
    by_combination = assemble.RoadmapProgram._tasks_by_combination

    def spy(self: Any, frame: pl.DataFrame) -> Any:
        calls.append(frame.height)
        return by_combination(self, frame)

    monkeypatch.setattr(assemble.RoadmapProgram, "_tasks_by_combination", spy)
    shared, plain = _both(monkeypatch, lambda: hr.evaluate(plan, events, ACCOUNTS, AS_OF))
    assert calls == [8]  # the first run only: the second builds the lists row by row
    assert_frame_equal(shared.stages, plain.stages)
    stages = set(shared.stages["stage"].to_list())
    assert stages == {"start", "middle", "done"}
    done = shared.stages.select(pl.col("tasks").list.eval(pl.element().struct.field("done"))
                                ).to_series().explode()
    assert {True, False, None} <= set(done.to_list())


def test_b2b_example_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    """The B2B example's history over sample data: the same stages frame either way."""
    s = sample(40)
    plan = hr.compile(hr.load(ROOT / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"))
    end = DEFAULT_AS_OF
    shared, plain = _both(monkeypatch, lambda: history(
        plan, s.events, s.accounts, end - dt.timedelta(weeks=8), end, "1w"))
    assert_frame_equal(shared.stages, plain.stages)
    assert shared.stages["stage"].n_unique() > 1
