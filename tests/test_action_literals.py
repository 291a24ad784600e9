"""The fired actions' literal columns read from tables by the action's number (docs/
performance.md, "After the events pass, fifth round"), pinned against the form they
replace: each action's branch of ``RoadmapProgram.rendered_actions`` gave its id, kind,
title, role, channel, priority and sort helpers as literals; it now gives its number
``__k``, and one select over the stacked branches reads those columns from tables.
``_literal_tables`` patched to return no table is the former form (every literal in its
branch)."""

from __future__ import annotations

import copy
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
import healthrules.engine.assemble as assemble_module
import healthrules.engine.evaluator as evaluator_module
import healthrules.engine.frames as frames_module
from healthrules.datasets import DEFAULT_AS_OF, sample
from test_after_pass_forms import B2B, OUTPUTS, WORKLOAD


def _two_roadmaps() -> list[hr.Roadmap]:
    """The benchmark's roadmap for basic plans, and a copy for the rest: actions with a
    title, without a channel, with an owner read from an attribute (null on some rows) and
    of every priority, so that the literal tables hold nulls and the second roadmap's
    ``__order`` starts at ``ORDER_STEP``."""
    first = WORKLOAD.roadmap_dict()
    first["applies_to"] = "plan == 'basic'"
    second = copy.deepcopy(WORKLOAD.roadmap_dict())
    second["id"] = "bench_rest"
    actions = [a for s in second["stages"] for a in s.get("actions", [])] + second["actions"]
    for i, action in enumerate(actions):
        action["priority"] = ("critical", "high", "medium", "low")[i % 4]
        if i % 3 == 0:
            action["title"] = f"Title {i}"
        if i % 3 == 1:
            action.pop("channel", None)
        if i % 2 == 0:
            action["owner"] = {"attribute": "plan", "fallback": "nobody", "role": "csm"}
    return [hr.Roadmap.model_validate(first), hr.Roadmap.model_validate(second)]


def _adversarial(accounts: pl.DataFrame) -> pl.DataFrame:
    """Accounts with a null plan (the owner's fallback) and arr values NaN, inf, -0.0,
    null, huge and tiny."""
    n = accounts.height
    odd = [float("nan"), float("inf"), -0.0, None, 1e300, 5e-324, 0.125, 2.675]
    return accounts.with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 3).then(None).otherwise(pl.col("plan"))
        .alias("plan"),
        pl.Series("arr", [odd[i % len(odd)] for i in range(n)], dtype=pl.Float64))


def _both(compiled: Any, events: pl.DataFrame, accounts: pl.DataFrame, as_of: Any,
          monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    got = hr.evaluate(compiled(), events, accounts, as_of)
    with monkeypatch.context() as m:
        m.setattr(assemble_module, "_literal_tables", lambda r, index: {})
        want = hr.evaluate(compiled(), events, accounts, as_of)
    return got, want


@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("rows", ["many", "one", "none", "nothing fired"])
@pytest.mark.parametrize("which", ["workload", "two roadmaps", "b2b"])
def test_literal_columns_from_tables_equal_the_literals(
        which: str, rows: str, large: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every output (the actions frame above all: its columns, dtypes, order and rows) is
    the same with the literal columns read from tables as with each branch's literals:
    on the small-input and large-input paths, for many rows (evidence in the form for
    many rows), one row (actions in order, no sort helpers), none, and rows where no
    action fired; one roadmap and two (the second's sort helpers start at
    ``ORDER_STEP``)."""
    if large:
        monkeypatch.setattr(frames_module, "SMALL_ROWS", 0)
        monkeypatch.setattr(evaluator_module, "SMALL_ROWS", 0)
    if which == "b2b":
        data = sample(60)
        events, accounts, as_of = data.events, data.accounts, DEFAULT_AS_OF

        def compiled() -> hr.Plan:
            return hr.compile(hr.load(B2B))
    else:
        events, accounts = WORKLOAD.generate(20_000, 150)
        as_of = WORKLOAD.AS_OF
        if which == "two roadmaps":
            accounts = _adversarial(accounts)

            def compiled() -> hr.Plan:
                return hr.compile(_two_roadmaps())
        else:
            def compiled() -> hr.Plan:
                return hr.compile(hr.Roadmap.model_validate(WORKLOAD.roadmap_dict()))
    if rows == "one":
        accounts = accounts.head(1)
    elif rows == "none":
        accounts = accounts.clear()
    elif rows == "nothing fired":
        events = events.clear()
        accounts = accounts.head(3)
    got, want = _both(compiled, events, accounts, as_of, monkeypatch)
    for name in OUTPUTS:
        assert_frame_equal(getattr(got, name), getattr(want, name), check_exact=True)
    if rows == "many":
        assert got.actions.height > 20
        assert got.actions["action_id"].n_unique() > 3
        if which == "two roadmaps":
            assert got.actions["roadmap"].n_unique() == 2
            assert got.actions["title"].null_count() not in (0, got.actions.height)
            assert got.actions["owner"].to_list().count("nobody") > 0
    if rows == "nothing fired":
        assert "__k" not in got.actions.columns


def test_the_branches_give_their_number_and_the_stacked_select_the_literals() -> None:
    """A branch's outputs hold ``__k`` and none of the literal columns; the stacked
    select gives the outputs of the former branch in order, without ``__k``."""
    plan = hr.compile(hr.Roadmap.model_validate(WORKLOAD.roadmap_dict()))
    program = evaluator_module.Evaluator(plan).programs[0]
    names = [e.meta.output_name() for e in program._action_exprs(0, 1)]
    branch = [e.meta.output_name() for e in program._branch_outputs(0, 1, False)]
    assert branch[0] == "__k"
    assert not set(branch) & set(program._literal_tables)
    assert set(program._literal_tables) <= set(names)
    stacked = [e.meta.output_name() for e in program._stacked_outputs("account_id", True,
                                                                       False)]
    assert stacked == ["account_id", "__row", *names]
    one = [e.meta.output_name() for e in program._stacked_outputs("account_id", False, True)]
    assert "__rank" not in one and "__order" not in one


def test_each_table_row_is_the_action_literal() -> None:
    """Row ``k`` of each table is the literal of action ``k``'s former branch (value and
    dtype), in both roadmaps of a plan (the second's ``__order`` from ``ORDER_STEP``)."""
    plan = hr.compile(_two_roadmaps())
    programs = evaluator_module.Evaluator(plan).programs
    assert len(programs) == 2
    for program in programs:
        n = len(program._outputs[3])
        for k in range(n):
            exprs = {e.meta.output_name(): e for e in program._action_exprs(k, 1)}
            for name, table in program._literal_tables.items():
                got = pl.select(table.gather(pl.lit(k, pl.UInt32)).alias(name))
                want = pl.select(exprs[name])
                assert_frame_equal(got, want, check_exact=True)
    assert pl.select(programs[1]._literal_tables["__order"].gather(pl.lit(0, pl.UInt32))
                     ).item() == assemble_module.ORDER_STEP


def test_the_action_columns_are_the_outputs_in_order() -> None:
    plan = hr.compile(hr.load(B2B))
    program = evaluator_module.Evaluator(plan).programs[0]
    for k in range(len(program._outputs[3])):
        names = tuple(e.meta.output_name() for e in program._action_exprs(k, 1))
        assert names == assemble_module._ACTION_COLUMNS
        many = [e.meta.output_name() for e in program._branch_outputs(k, 100, False)]
        assert many[-1] == "evidence" and many[0] == "__k"


def test_the_sort_key_and_the_stacked_select_are_built_at_compile() -> None:
    """``compile`` builds the fired actions' sort key and the stacked branches' select
    (``RoadmapProgram.prepare_reads``), which the first evaluation then reuses: with one
    roadmap the rows carry their number (the select without the sort helpers); with two,
    they do not (the select with them)."""
    plan = hr.compile(hr.load(B2B))
    program = assemble_module.program_for(plan, 0, "us")
    assert program._action_sort_key is not None
    assert set(program._stacked_exprs) == {(plan.account_key, False, True)}
    key, exprs = program._action_sort_key, program._stacked_exprs[(plan.account_key, False, True)]
    data = sample(30, seed=5)
    assert hr.evaluate(plan, data.events, data.accounts, DEFAULT_AS_OF).actions.height
    assert program._action_sort_key is key
    assert program._stacked_exprs[(plan.account_key, False, True)] is exprs
