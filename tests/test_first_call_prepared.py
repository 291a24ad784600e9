"""What the first evaluation of a process built on first use, built at compile or shared
(docs/performance.md, "After the events pass, seventh round"):

- ``compile`` finds the column takes of the selects that only take columns (the raw
  aggregates of a roadmap frame, the indicators, stages and scores), the fired columns
  and each action branch's columns of the rows its actions render from; they depend on
  no data;
- the forms for many rows (``MANY_ROWS``) reuse the entry tests and the stages' values
  translated for the few-row forms, the stage name and the task totals (the same
  expressions in both forms), and are fused as the few-row forms were (their steps read
  and write the same columns), instead of translating and reading every expression again.

Pinned here against plans whose caches are emptied after compile (the former first use)
and whose forms for many rows are built the former way, on adversarial aggregate values
(NaN, infinities, -0.0, nulls, values on and next to the cut points, Int64 counts), for
none, one and many rows, no action fired, a second date in one process, and the structure
of the fused steps over every example roadmap and pack."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
import healthrules.engine.assemble as assemble_module
from healthrules.datasets import sample
from healthrules.engine.assemble import RoadmapProgram, program_for
from test_band_position_columns import COUNTS, OUTPUTS, SPEC, VALUES, _accounts, _run

EXAMPLES = Path(__file__).resolve().parents[1] / "rules" / "examples"
B2B = EXAMPLES / "b2b-saas" / "roadmap.yaml"
KEY = "account_id"


def _programs(plan: hr.Plan) -> list[RoadmapProgram]:
    return [program_for(plan, i, "us") for i in range(len(plan.roadmaps))]


def _stage_steps(p: RoadmapProgram, many: bool) -> list[list[pl.Expr]]:
    """The stage's steps of :meth:`RoadmapProgram._fused_steps` before fusing."""
    stage_index, stage_name = p._stage_exprs(many) if many else p._stage
    achievement = p._achievement_exprs(many) if many else p._achievement
    scores = p._score_exprs(many, at=True) if many else p._score_steps_at
    stage: list[list[pl.Expr]] = [[stage_index], [stage_name]]
    if p._task_columns:
        stage.append(p._task_columns)
    stage.append([*achievement, p._goal])
    if p._segment is not None:
        stage += [[p._segment], [pl.col("__segment").alias("segment")]]
    return [*stage, *scores, [p._score_band]]


def _former(monkeypatch: pytest.MonkeyPatch, spec: dict[str, Any] | None = None) -> Any:
    """A plan as the first evaluation found it before: nothing of this round prepared at
    compile, and the forms for many rows translated again and fused by reading every
    expression's names (``_fuse``)."""
    plan = (hr.compile(hr.Roadmap.model_validate(spec)) if spec is not None
            else hr.compile(hr.load(B2B)))
    for p in _programs(plan):
        p._takes.clear()
        p._branch_cols.clear()
        p._fired_reads = None
        p._fused_many = None
        p._entries = None
        p._stage_values = None
    monkeypatch.setattr(assemble_module, "_fused_as",
                        lambda steps, sizes, fused: assemble_module._fuse(steps))
    return plan


def test_compile_prepares_the_takes_and_the_branch_columns(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """After ``compile`` the takes, the fired columns and each branch's columns are there;
    an evaluation of many rows (the fired actions of rows in key order, each branch
    taking its columns) makes none of them."""
    plan = hr.compile(hr.load(B2B))
    (p,) = _programs(plan)
    assert {("raw", KEY), ("indicators", KEY), ("stages", KEY), ("scores", KEY)} <= set(
        p._takes)
    assert all(p._takes[(name, KEY)] is not None for name in ("raw", "indicators", "scores"))
    assert p._fired_reads is not None
    prepared = dict(p._branch_cols)
    assert len(prepared) == len(p._outputs[3])
    made: list[Any] = []
    real = assemble_module.column_take
    monkeypatch.setattr(assemble_module, "column_take",
                        lambda *e: made.append(e) or real(*e))
    data = sample(40, days=120)
    result = hr.evaluate(plan, data.events, data.accounts, data.as_of)
    assert result.actions.height > 0
    assert not made
    assert p._branch_cols.keys() == prepared.keys()


@pytest.mark.parametrize("n", [0, 1, 2, 7, 40])
@pytest.mark.parametrize("many", [False, True])
def test_prepared_and_shared_forms_give_the_former_frames_and_outputs(
        n: int, many: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every output and every collected frame of the plan as compiled now equals that of
    the former first use (``many``: the forms for many rows from 8 rows on)."""
    if many:
        monkeypatch.setattr(assemble_module, "MANY_ROWS", 8)
    new = hr.compile(hr.Roadmap.model_validate(SPEC))
    got, frames = _run(new, _accounts(n), VALUES, COUNTS, monkeypatch)
    with monkeypatch.context() as m:
        former = _former(m, SPEC)
        want, former_frames = _run(former, _accounts(n), VALUES, COUNTS, monkeypatch)
    for name in OUTPUTS:
        assert_frame_equal(getattr(got, name), getattr(want, name), check_exact=True)
    assert got.diagnostics == want.diagnostics
    assert len(frames) == len(former_frames)
    for part, former_part in zip(frames, former_frames, strict=True):
        for frame, former_frame in zip(part, former_part, strict=True):
            assert_frame_equal(frame, former_frame, check_exact=True)
    # what the former first use built is what compile prepared
    (p,), (q,) = _programs(new), _programs(former)
    assert {k: v for k, v in p._takes.items() if k in q._takes} == q._takes
    for k, cols in q._branch_cols.items():
        assert k in p._branch_cols
        assert p._branch_cols[k] == cols  # the names each branch takes (or None)
    if many and n >= 8:
        assert p._fused_many is not None and q._fused_many is not None


def test_no_action_fired_and_every_value_null(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assemble_module, "MANY_ROWS", 8)
    new = hr.compile(hr.Roadmap.model_validate(SPEC))
    got, _ = _run(new, _accounts(12), [], [], monkeypatch)
    with monkeypatch.context() as m:
        want, _ = _run(_former(m, SPEC), _accounts(12), [], [], monkeypatch)
    for name in OUTPUTS:
        assert_frame_equal(getattr(got, name), getattr(want, name), check_exact=True)


def test_a_second_date_in_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """One plan evaluated at two dates (many rows: the forms for many rows) gives at each
    the frames of a plan built the former way and evaluated at that date alone."""
    data = sample(300, days=200)
    assert data.accounts.height >= assemble_module.MANY_ROWS
    plan = hr.compile(hr.load(B2B))
    for day in (data.as_of, data.as_of - dt.timedelta(days=3)):
        got = hr.evaluate(plan, data.events, data.accounts, day)
        with monkeypatch.context() as m:
            want = hr.evaluate(_former(m), data.events, data.accounts, day)
        for name in OUTPUTS:
            assert_frame_equal(getattr(got, name), getattr(want, name), check_exact=True)
        assert got.actions.height > 0


def _plans() -> list[hr.Plan]:
    paths = sorted(EXAMPLES.glob("*/roadmap.yaml")) + sorted(EXAMPLES.glob("*/pack.yaml"))
    assert len(paths) >= 8
    return [hr.compile(hr.load(path)) for path in paths] + [
        hr.compile(hr.Roadmap.model_validate(SPEC))]


@pytest.mark.parametrize("plan", _plans(), ids=lambda plan: str(plan.roadmaps[0].id))
def test_the_forms_for_many_rows_fuse_as_the_few(plan: hr.Plan) -> None:
    """The stage's steps of the forms for many rows have the sizes of the few-row forms'
    and ``_fuse`` groups them alike: the shared fusing gives ``_fuse``'s steps, expression
    by expression; the shared entry tests, stage values, stage name and task totals are
    those a fresh translation gives."""
    for p in _programs(plan):
        many = _stage_steps(p, True)
        assert [len(step) for step in many] == p._stage_sizes
        want = assemble_module._fuse(many)
        got = p._fused_steps(many=True)[1]
        assert [len(step) for step in got] == [len(step) for step in want]
        for step, former in zip(got, want, strict=True):
            for e, f in zip(step, former, strict=True):
                assert e.meta.eq(f)
        fresh = RoadmapProgram(plan, p.index, "us")
        fresh._entries = None
        fresh._stage_values = None
        for e, f in zip(p._stage_exprs(True), fresh._stage_exprs(True), strict=True):
            assert e.meta.eq(f)
        for e, f in zip(p._achievement_exprs(True), fresh._achievement_exprs(True),
                        strict=True):
            assert e.meta.eq(f)
