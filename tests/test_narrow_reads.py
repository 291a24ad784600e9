"""Per-call shortcuts of a service call: the columns a filter reads taken before it, the
stages of several rows read from their counts, columns taken by name without polars'
row-index detour. Each gives what the longer form gave (docs/performance.md, the ninth
round)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
import healthrules.engine.assemble as assemble_module
from healthrules.datasets import DEFAULT_AS_OF, sample
from healthrules.engine.assemble import _stages_in
from healthrules.engine.frames import filter_reading, narrow

ROOT = Path(__file__).resolve().parent.parent
B2B = ROOT / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"


@pytest.mark.parametrize("rows", [2, 7, 200, 10_000, 10_001, 30_000])
def test_stages_of_several_rows_are_their_unique_values(rows: int) -> None:
    values = ["trial", None, "onboarding", "operation", "renewal", "unassigned", "trial"]
    stage = pl.Series("__stage", (values * (rows // len(values) + 1))[:rows], pl.String)
    frame = stage.to_frame().with_columns(pl.lit(1).alias("x"))
    assert _stages_in(frame) == set(stage.unique().to_list())
    assert _stages_in(frame.head(1)) == {stage[0]}


def test_filter_reading_takes_the_columns_read_or_the_whole_frame() -> None:
    frame = pl.DataFrame({"a": [1, 2, 3], "b": ["x", None, "z"], "c": [0.5, -0.0, None],
                          "d": [True, False, None]})
    got = filter_reading(frame, "d", pl.col("a") + pl.col("c"))
    assert got.collect_schema().names() == ["d", "a", "c"]
    assert_frame_equal(got.filter(pl.col("d")).collect(),
                       frame.filter(pl.col("d")).select("d", "a", "c"))
    # selectors and names that are not columns (written later): the whole frame
    for exprs in ([pl.all()], [pl.col("^[ab]$")], ["a", pl.col("later")], []):
        assert filter_reading(frame, *exprs).collect_schema().names() == frame.columns
    empty = frame.clear()
    assert_frame_equal(filter_reading(empty, "b").collect(), empty.select("b"))


@pytest.mark.parametrize("height", [0, 1, 5])
def test_columns_by_name_equal_a_select(height: int) -> None:
    frame = pl.DataFrame({"k": ["a", "b", "c", "d", "e"], "v": [1.0, float("nan"), None,
                                                                 float("inf"), -0.0],
                          "w": [1, 2, 3, 4, 5]}).head(height)
    for names in (["w", "k"], ["v"], ["k", "v", "w"]):
        assert_frame_equal(narrow(frame, *names), frame.select(names))


def _adversarial(as_of: dt.date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Sample data with NaN, infinite and -0.0 values, null attributes, events of unknown
    accounts and a batch over every stage."""
    data = sample(80)
    events, accounts = data.events, data.accounts
    n = events.height
    odd = pl.Series([float("nan"), float("inf"), float("-inf"), -0.0, None] * (n // 5 + 1))[:n]
    events = events.with_columns(
        pl.when(pl.int_range(n) % 7 == 0).then(odd).otherwise(pl.col("value")).alias("value"))
    day_before = dt.datetime.combine(as_of, dt.time(12), dt.UTC) - dt.timedelta(days=1)
    stranger = events.head(5).with_columns(pl.lit("ZZZ999").alias("account_id"),
                                           pl.lit(day_before).alias("timestamp"))
    events = pl.concat([events, stranger])
    accounts = accounts.with_columns(
        pl.when(pl.int_range(accounts.height) % 9 == 0).then(None)
        .otherwise(pl.col("seats")).alias("seats"),
        pl.when(pl.int_range(accounts.height) % 11 == 0).then(None)
        .otherwise(pl.col("key_user")).alias("key_user"))
    return events, accounts


def _whole_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """The task lists and the actions' branches over every column (the longer form)."""
    monkeypatch.setattr(assemble_module, "filter_reading",
                        lambda frame, *exprs: frame.lazy())
    monkeypatch.setattr(assemble_module.RoadmapProgram, "_action_reads",
                        lambda self, k, key, carried: None)


@pytest.mark.parametrize("as_of", [DEFAULT_AS_OF, dt.date(2026, 3, 29)])
def test_narrowed_task_lists_and_actions_equal_the_whole_frames(
        monkeypatch: pytest.MonkeyPatch, as_of: dt.date) -> None:
    plan = hr.compile(hr.load(B2B))
    events, accounts = _adversarial(as_of)
    got = hr.evaluate(plan, events, accounts, as_of)
    assert got.actions.height > 20
    assert got.stages.get_column("stage").n_unique() >= 3
    assert got.diagnostics["unknown_accounts"] == 1
    with monkeypatch.context() as m:
        _whole_frames(m)
        want = hr.evaluate(plan, events, accounts, as_of)
    for name in ("indicators", "stages", "scores", "actions", "conditions"):
        assert_frame_equal(getattr(got, name), getattr(want, name))
    assert got.diagnostics == want.diagnostics


def test_each_action_branch_reads_only_its_columns() -> None:
    plan = hr.compile(hr.load(B2B))
    program = hr.engine.Evaluator(plan).programs[0]
    key = plan.account_key
    for k in range(len(plan.roadmaps[0].roadmap.all_actions())):
        reads = program._action_reads(k, key, [pl.col("__row")])
        assert reads is not None
        assert reads[:2] == [key, "__row"]
        assert f"__fired_{k}" in reads
        assert not any(n.startswith("__fired_") and n != f"__fired_{k}" for n in reads)
