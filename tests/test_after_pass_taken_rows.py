"""The rows of each fired action's branch and of each stage's task list, taken from the
collected frame by name and position (docs/performance.md, "After the events pass, eighth
round"): no ``select``, row index or ``filter`` left in those queries to plan.

Pinned against the former query forms (the branch's columns selected, then its rows
filtered by its fired flag; the stage's rows numbered, their columns selected, then
filtered by the stage's name), which the tests put back: every output and every collected
frame equal, on the B2B sample (one, a few and 200 accounts), on adversarial aggregate
values (NaN, infinities, -0.0, nulls, values on and next to the cut points, Int64
counts; none to 40 accounts), on task lists over rows of every stage and of stages
without tasks, and with a branch whose columns are not known (the query's form)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
import healthrules.engine.frames as frames_module
from healthrules.datasets import sample
from healthrules.engine.assemble import RoadmapProgram, _stages_in, program_for
from healthrules.engine.frames import TASK_DTYPE, filter_reading, row_positions, typed_lit
from healthrules.query_flags import NO_OPTIMISATION
from test_band_position_columns import COUNTS, OUTPUTS, SPEC, VALUES, _accounts, _run

B2B = Path(__file__).resolve().parents[1] / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"


def _former_branch_rows(self: RoadmapProgram, fired_rows: pl.DataFrame, k: int, key: str,
                        carried: list[pl.Expr], columns: tuple[str, ...],
                        fired: int) -> pl.LazyFrame:
    """The former branch: its columns selected, then its rows filtered, in the query."""
    reads = self._branch_columns(k, key, carried, columns)
    rows = fired_rows.lazy()
    return (rows if reads is None else rows.select(reads)).filter(
        pl.col(f"__fired_{k}"))


def _former_tasks_by_stage(self: RoadmapProgram, frame: pl.DataFrame,
                           present: set[str]) -> pl.LazyFrame:
    """The former task lists: the rows numbered, each stage's rows filtered."""
    with_tasks = [stage_id for stage_id, _ in self._tasks]
    flat = [e for stage_id, e in self._tasks if stage_id in present]
    rows = filter_reading(frame, "__stage", *flat).with_row_index("__row")
    parts: list[pl.LazyFrame] = []
    for stage_id, tasks in self._tasks:
        if stage_id not in present:
            continue
        parts.append(rows.filter(pl.col("__stage") == stage_id).select(
            "__row", tasks.alias("__tasks")))
    if not parts or not present <= set(with_tasks):
        parts.append(rows.filter(~pl.col("__stage").is_in(with_tasks)).select(
            "__row", typed_lit([], TASK_DTYPE).alias("__tasks")))
    return pl.concat(parts).sort("__row").select(pl.col("__tasks").alias("tasks"))


def _former(m: pytest.MonkeyPatch) -> None:
    m.setattr(RoadmapProgram, "_branch_rows", _former_branch_rows)
    m.setattr(RoadmapProgram, "_tasks_by_stage", _former_tasks_by_stage)


def _equal(got: Any, want: Any) -> None:
    for name in OUTPUTS:
        assert_frame_equal(getattr(got, name), getattr(want, name), check_exact=True)
    assert got.diagnostics == want.diagnostics


@pytest.mark.parametrize("n", [0, 1, 2, 7, 40])
def test_taken_rows_give_the_former_frames_and_outputs(
        n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Adversarial aggregate values: every output and every collected frame as before."""
    plan = hr.compile(hr.Roadmap.model_validate(SPEC))
    got, frames = _run(plan, _accounts(n), VALUES, COUNTS, monkeypatch)
    with monkeypatch.context() as m:
        _former(m)
        want, former_frames = _run(plan, _accounts(n), VALUES, COUNTS, monkeypatch)
    _equal(got, want)
    assert len(frames) == len(former_frames)
    for part, former_part in zip(frames, former_frames, strict=True):
        for frame, former_frame in zip(part, former_part, strict=True):
            assert_frame_equal(frame, former_frame, check_exact=True)


@pytest.mark.parametrize("n", [1, 2, 7, 40, 200])
def test_taken_rows_on_the_b2b_sample(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The B2B example (nine actions, task lists with done flags and literal ones): the
    same outputs as the former query forms, with actions fired on some rows and on all."""
    plan = hr.compile(hr.load(B2B))
    data = sample(n, days=120)
    got = hr.evaluate(plan, data.events, data.accounts, data.as_of)
    with monkeypatch.context() as m:
        _former(m)
        want = hr.evaluate(plan, data.events, data.accounts, data.as_of)
    _equal(got, want)
    if n >= 40:
        assert got.actions.height > 0
        assert got.stages.get_column("stage").n_unique() > 1


def test_branches_plan_no_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rendered branches of a batch read frames of their own rows: no filter and no
    select of columns left in the query."""
    plan = hr.compile(hr.load(B2B))
    data = sample(40, days=120)
    plans: list[str] = []
    real = RoadmapProgram.rendered_actions

    def keeping(self: RoadmapProgram, *args: Any, **kwargs: Any) -> pl.LazyFrame | None:
        lf = real(self, *args, **kwargs)
        if lf is not None:
            plans.append(lf.explain(optimizations=NO_OPTIMISATION))
        return lf

    monkeypatch.setattr(RoadmapProgram, "rendered_actions", keeping)
    hr.evaluate(plan, data.events, data.accounts, data.as_of)
    assert plans
    assert all("FILTER" not in p for p in plans)


def test_a_branch_of_unknown_columns_takes_the_query(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a branch's columns are not known (an expression reads a selector), its rows
    are filtered in the query, over every column, as before."""
    plan = hr.compile(hr.load(B2B))
    data = sample(40, days=120)
    want = hr.evaluate(plan, data.events, data.accounts, data.as_of)
    monkeypatch.setattr(RoadmapProgram, "_branch_columns", lambda *a: None)
    got = hr.evaluate(plan, data.events, data.accounts, data.as_of)
    _equal(got, want)


def _task_frame(p: RoadmapProgram, stages: list[str]) -> pl.DataFrame:
    flags = sorted({n for _, e in p._tasks for n in e.meta.root_names()} - {"__stage"})
    n = len(stages)
    cycle: list[bool | None] = [True, False, None]
    return pl.DataFrame([
        pl.Series("__stage", stages, dtype=pl.String),
        pl.Series("other", list(range(n)), dtype=pl.Int64),
        *[pl.Series(f, [cycle[(i + j) % 3] for i in range(n)], dtype=pl.Boolean)
          for j, f in enumerate(flags)],
    ])


@pytest.mark.parametrize("stages", [
    ["trial", "onboarding", "operation", "renewal", "trial", "renewal"],
    ["onboarding", "unassigned", "trial", "unassigned"],
    ["operation", "no such stage", "trial"],
    ["no such stage", "unassigned"],
    ["trial", "trial", "onboarding"],
])
def test_task_lists_by_stage_give_the_former_lists(stages: list[str]) -> None:
    """Rows of stages with task lists (done flags true, false, null; literal lists) and of
    stages without tasks: each row's list as the former form gave it."""
    plan = hr.compile(hr.load(B2B))
    (p,) = [program_for(plan, i, "us") for i in range(len(plan.roadmaps))]
    frame = _task_frame(p, stages)
    present = _stages_in(frame)
    got = p._tasks_by_stage(frame, present).collect()
    want = _former_tasks_by_stage(p, frame, present).collect()
    assert got.height == frame.height
    assert_frame_equal(got, want, check_exact=True)


@pytest.mark.parametrize("height", [0, 1, 3, 200])
def test_row_positions(height: int) -> None:
    """The positions 0 .. height - 1 (UInt32), one Series per height; filtered by a mask
    with nulls they pick the rows a lazy filter keeps."""
    positions = row_positions(height)
    assert positions.dtype == pl.UInt32
    assert positions.to_list() == list(range(height))
    assert row_positions(height) is positions
    mask = pl.Series("m", [(True, False, None)[i % 3] for i in range(height)],
                     dtype=pl.Boolean)
    frame = pl.DataFrame({"x": [float(i) for i in range(height)], "m": mask})
    assert_frame_equal(frame[positions.filter(mask)],
                       frame.lazy().filter(pl.col("m")).collect(), check_exact=True)


def test_row_positions_keep_a_bounded_number_of_heights() -> None:
    for h in range(100):
        assert row_positions(h).to_list() == list(range(h))
    assert len(frames_module._POSITIONS) <= 64
