"""The per-call path of a service that compiled once: what an evaluation renders, how many
queries it runs, and that the cheaper forms give the results of the forms they replace."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, cast

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
import healthrules.engine.evaluator as evaluator_module
import healthrules.engine.frames as frames_module
from healthrules.datasets import DEFAULT_AS_OF, sample
from healthrules.engine import Evaluator
from healthrules.engine.assemble import _fuse, _present, _weighted_mean
from healthrules.engine.evaluator import prepare
from healthrules.engine.frames import TASK_DTYPE, column_take, empty_actions, take_columns
from healthrules.engine.render import Renderer, render_value
from healthrules.inputs import accounts_at

ROOT = Path(__file__).resolve().parent.parent
B2B = ROOT / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"
AS_OF = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def b2b() -> tuple[hr.Plan, Any]:
    return hr.compile(hr.load(B2B)), sample(60)


def _fired_rows(plan: hr.Plan, data: Any) -> tuple[Evaluator, pl.DataFrame, str]:
    """The unrendered fired rows of the B2B example on sample data, through the hooks."""
    plan, clock, ev_lf, acc_df = prepare(plan, data.events, data.accounts, DEFAULT_AS_OF)
    accounts = accounts_at(acc_df, clock, plan.account_key).frame
    ev = Evaluator(plan, clock.time_unit)
    key = plan.account_key
    agg, _ = ev.aggregates(ev_lf, accounts, clock, event_rows=data.events.height)
    routed = ev.route(accounts.lazy().with_columns(ev.time_columns(clock))).collect()
    out = ev.outputs(ev.roadmap_frames(routed, agg, key), key, render=False)
    fired = out.fired_rows[0]
    assert fired is not None
    return ev, fired, key


def test_rendered_actions_equal_rendering_then_building_the_actions(b2b: Any) -> None:
    """One query per fired action (its own values only) gives the frame of the two-step
    path (render every value on every fired row, then build every action)."""
    plan, data = b2b
    ev, fired, key = _fired_rows(plan, data)
    program = ev.programs[0]
    assert fired.height > 10
    order = [key, "__order"]
    two_steps = program.actions(program.render(fired.lazy()).collect(), key).collect()
    lf = program.rendered_actions(fired, key)
    assert lf is not None
    one_step = lf.collect()
    assert one_step.schema == two_steps.schema
    assert one_step.sort(order).equals(two_steps.sort(order))
    # a row alone: only the actions that fired on it, as they were among all rows
    row = fired.head(1)
    lf = program.rendered_actions(row, key)
    assert lf is not None
    alone = lf.collect().sort(order)
    among = two_steps.filter(pl.col(key) == row[key][0]).sort(order)
    assert alone.equals(among)
    flags = [c for c in row.columns if c.startswith("__fired_")]
    assert alone.height == sum(bool(row[c][0]) for c in flags)


def test_no_fired_row_renders_nothing(b2b: Any) -> None:
    plan, data = b2b
    ev, fired, key = _fired_rows(plan, data)
    assert ev.programs[0].rendered_actions(fired.clear(), key) is None


def _count_collects(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    # both collect helpers of the evaluator: collect_rows (one date's per-account
    # queries) and collect_all (the hooks history uses)
    for name in ("collect_all", "collect_rows"):
        real = getattr(evaluator_module, name)

        def counting(frames: list[pl.LazyFrame], rows: int,
                     real: Any = real) -> list[pl.DataFrame]:
            calls.append(len(frames))
            return cast(list[pl.DataFrame], real(frames, rows))

        monkeypatch.setattr(evaluator_module, name, counting)
    return calls


def _alert_roadmap(when: str) -> hr.Roadmap:
    return hr.Roadmap.model_validate({
        "id": "svc", "goal": "Weekly use", "data": {"events": {"user": None}},
        "indicators": [{"id": "logins_7d", "family": "process", "aggregate": "count",
                        "where": "event == 'login'", "window": "7d",
                        "bands": {"levels": [{"name": "low", "lt": 2},
                                             {"name": "high", "ge": 2}]}}],
        "stages": [{"id": "operation", "actions": [{
            "id": "quiet", "kind": "challenge", "when": when,
            "do": "Call them: {logins_7d} logins in a week", "owner": "csm"}]}],
    })


def _one_account() -> tuple[pl.DataFrame, pl.DataFrame]:
    events = pl.DataFrame({"account_id": ["a", "a"], "event": ["login", "login"],
                           "timestamp": [dt.datetime(2026, 6, 29, 9),
                                         dt.datetime(2026, 6, 30, 9)]})
    return events, pl.DataFrame({"account_id": ["a"]})


def test_an_evaluation_runs_two_collects_and_renders_fired_actions_in_the_second(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The routed rows come with the roadmap frames, the output frames (stacked and sorted
    over the roadmaps) in one collect; on a small input the fired actions' texts and
    evidence are rendered in that same collect (which actions fired is read from the
    collected roadmap frames), so an action firing costs no third collect. (This roadmap
    has one stage and one weight set; one account of a roadmap with several takes its
    roadmap frame in two collects, one more: RoadmapProgram.splits, test_one_row_path.)"""
    events, accounts = _one_account()
    calls = _count_collects(monkeypatch)
    quiet = hr.evaluate(hr.compile(_alert_roadmap("logins_7d < 0")), events, accounts, AS_OF)
    assert len(calls) == 2, calls
    assert quiet.actions.height == 0
    assert quiet.actions.schema == empty_actions("account_id", pl.String).schema
    calls.clear()
    loud = hr.evaluate(hr.compile(_alert_roadmap("logins_7d >= 2")), events, accounts, AS_OF)
    assert len(calls) == 2, calls
    assert loud.actions.schema == quiet.actions.schema
    assert loud.actions.select("action_id", "text").rows() == [
        ("quiet", "Call them: 2 logins in a week")]
    assert loud.conditions.select("considered", "fired", "unknown").rows() == [(1, 1, 0)]


def test_large_inputs_collect_the_fired_rows_first_with_the_same_actions(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Above ``SMALL_ROWS`` rows the fired rows are collected with the outputs and the
    fired actions rendered from them in a third collect (each action then filters the fired
    rows, not every row): the actions frame is the same as the small path's."""
    data = sample(30, days=120)
    plan = hr.compile(hr.load(B2B))
    small = hr.evaluate(plan, data.events, data.accounts, DEFAULT_AS_OF)
    assert small.actions.height > 0
    calls = _count_collects(monkeypatch)
    monkeypatch.setattr(evaluator_module, "SMALL_ROWS", 0)
    large = hr.evaluate(plan, data.events, data.accounts, DEFAULT_AS_OF)
    assert len(calls) == 3, calls
    assert_frame_equal(large.actions, small.actions)
    assert_frame_equal(large.conditions, small.conditions)


@pytest.mark.parametrize("rows", [
    [(None, None, None)],
    [(10.0, None, 50.0)],
    [(100.0 / 3, 200.0 / 7, 0.1)],
    [(0.0, 0.0, None), (None, 100.0, 1e-9)],
])
def test_weighted_mean_is_the_declared_order_fold(rows: list[tuple[float | None, ...]]) -> None:
    """Bit for bit the fold sum(s * w) / sum(w) over the present values, left to right;
    null when none is present; a weight of 1 multiplies nothing."""
    weights = [2.0, 1.0, 3.0]
    frame = pl.DataFrame(rows, schema={"a": pl.Float64, "b": pl.Float64, "c": pl.Float64},
                         orient="row")
    got = frame.select(_weighted_mean(
        [_present(pl.col(c), w) for c, w in zip("abc", weights, strict=True)]).alias("m"))["m"]
    for values, value in zip(rows, got.to_list(), strict=True):
        num = den = 0.0
        for s, w in zip(values, weights, strict=True):
            num += 0.0 if s is None else s * w
            den += 0.0 if s is None else w
        assert value == (num / den if den else None)


def test_conditions_keep_their_boolean_dtype() -> None:
    """Conditions that are already Boolean (comparisons, and/or, not) are not cast again;
    a bare Boolean attribute still is; the outputs' dtypes do not change."""
    roadmap = hr.Roadmap.model_validate({
        "id": "svc", "goal": "Weekly use",
        "data": {"events": {"user": None},
                 "accounts": {"attributes": {"seats": "int", "vip": "bool"}}},
        "indicators": [{"id": "logins_7d", "family": "process", "aggregate": "count",
                        "window": "7d"}],
        "stages": [
            {"id": "trial", "entry": "seats < 5",
             "achievement": {"text": "calm", "when": "not (logins_7d > 10)"},
             "tasks": {"joint": [{"text": "log in", "done_when": "logins_7d >= 1"},
                                 {"text": "invite"}]}},
            {"id": "operation", "achievement": {"text": "vip", "when": "vip"},
             "actions": [{"id": "vip_quiet", "kind": "challenge",
                          "when": "vip and logins_7d < 5", "do": "Call", "owner": "csm"}]},
        ],
    })
    events, _ = _one_account()
    accounts = pl.DataFrame({"account_id": ["a", "b", "c"], "seats": [3, 10, 10],
                             "vip": [None, True, False]})
    ev = hr.evaluate(roadmap, events, accounts, AS_OF)
    stages = ev.stages.sort("account_id")
    assert stages.schema["achieved"] == pl.Boolean
    assert stages.select("stage", "achieved", "tasks_done", "tasks_total").rows() == [
        ("trial", True, 1, 2), ("operation", True, 0, 0), ("operation", False, 0, 0)]
    assert ev.actions.select("account_id", "action_id").rows() == [("b", "vip_quiet")]


def test_fuse_merges_independent_steps_only() -> None:
    """A step joins the one before unless it reads or rewrites a column that step writes;
    the fused steps give the frame of the steps one by one."""
    steps = [
        [pl.col("a").alias("b")],
        [(pl.col("a") + 1).alias("c")],           # independent: joins
        [(pl.col("b") * 2).alias("d")],           # reads b: a new step
        [pl.lit(0).alias("e"), (pl.col("a") - 1).alias("f")],  # independent of d: joins
        [(pl.col("c") + 1).alias("c")],           # rewrites c (written two steps before)
        [(pl.col("e") + 1).alias("e")],           # rewrites e, written by the step before
    ]
    fused = _fuse(steps)
    assert [[e.meta.output_name() for e in step] for step in fused] == [
        ["b", "c"], ["d", "e", "f", "c"], ["e"]]
    frame = pl.DataFrame({"a": [1, 2, 3]})
    one_by_one, together = frame.lazy(), frame.lazy()
    for step in steps:
        one_by_one = one_by_one.with_columns(step)
    for step in fused:
        together = together.with_columns(step)
    assert_frame_equal(together.collect(), one_by_one.collect(), check_column_order=False)


@pytest.mark.parametrize("spec", ["", ".0f", ".2f", ".0%", ".1%", "d"])
def test_renderer_steps_give_render_value(spec: str) -> None:
    """The renderer's numbers from a step of exact decimal forms (shared by the values
    shown at one scale) are the texts of the one-expression form."""
    values = [0.0, -0.0, 0.005, 0.125, -0.125, 1.005, 2.675, 242.5, -3.5, 1e15, 4.5036e13,
              2.0**52, 1e300, float("nan"), float("inf"), float("-inf"), None]
    renderer = Renderer()
    shown = renderer.rendered("x", "float", spec)
    other = renderer.rendered("x", "float", ".3f")  # another scale: its own exact form
    frame = pl.DataFrame({"x": values}, schema={"x": pl.Float64}).lazy()
    for step in renderer.steps():
        frame = frame.with_columns(step)
    got = frame.with_columns(renderer.columns).select(
        shown.alias("text"), other.alias("other")).collect()
    want = pl.DataFrame({"x": values}, schema={"x": pl.Float64}).select(
        render_value(pl.col("x"), "float", spec).alias("text"),
        render_value(pl.col("x"), "float", ".3f").alias("other"))
    assert_frame_equal(got, want)
    assert len(renderer.exacts) == (1 if spec == ".1%" else 2)  # .1% reads 3 places too


def test_renderer_reads_exact_decimal_forms_in_one_step() -> None:
    """One step of exact decimal forms, one per value and scale (``{x}`` and ``{x:.0%}``
    are both read to 2 places, ``.1f`` to 1); they are null where a value has none (NaN,
    infinities, beyond 38 digits), and the texts are those of the one-expression form:
    rounded halves away from zero on the shortest form, as they are from 2**52 on."""
    values = [1.005, -2.675, 0.0, -0.004, 2.0**52, -(2.0**53), 1e300, float("nan"),
              float("inf"), float("-inf"), None, 4.5035996273704955e13, 72274617766.30334]
    renderer = Renderer()
    shown = [renderer.rendered("x", "float", spec) for spec in ("", ".0%", ".1f")]
    shown.append(renderer.rendered("y", "float", ".2f"))
    steps = renderer.steps()
    assert len(steps) == 1
    assert {n for e in steps[0] for n in e.meta.root_names()} <= {"x", "y"}
    assert len(steps[0]) == len(renderer.exacts) == 2 + 1
    frame = pl.DataFrame({"x": values, "y": values[::-1]},
                         schema={"x": pl.Float64, "y": pl.Float64}).lazy()
    for step in steps:
        frame = frame.with_columns(step)
    exacts = [e.meta.output_name() for e in renderer.exacts]
    got = frame.with_columns(renderer.columns).collect()
    assert all(isinstance(got.schema[n], pl.Decimal) for n in exacts)
    unread = got.filter(pl.col("x").is_nan() | pl.col("x").is_infinite()
                        | (pl.col("x").abs() >= 1e300))
    assert unread.height == 4
    assert unread.select(exacts[:2]).null_count().row(0) == (4, 4)
    want = pl.DataFrame({"x": values, "y": values[::-1]},
                        schema={"x": pl.Float64, "y": pl.Float64}).select(
        *[render_value(pl.col("x"), "float", spec).alias(f"t{i}")
          for i, spec in enumerate(("", ".0%", ".1f"))],
        render_value(pl.col("y"), "float", ".2f").alias("t3"))
    assert_frame_equal(got.select([c.alias(f"t{i}") for i, c in enumerate(shown)]), want)
    assert want["t0"].to_list()[:4] == ["1.01", "-2.68", "0.00", "0.00"]
    assert want["t0"].to_list()[4:7] == ["4503599627370496.0", "-9007199254740992.0", "1e+300"]
    # the shortest form ends below the half: 72274617766.30334 with 4 decimals is .3033
    assert want.select(render_value(pl.lit(72274617766.30334), "float", ".4f")).item() == (
        "72274617766.3033")


def test_accounts_evaluated_one_by_one_equal_the_batch(b2b: Any) -> None:
    """The one-account path (one stage: its task list without a filter; actions rendered in
    the outputs' collect) gives each account's rows of the batch."""
    plan, data = b2b
    batch = hr.evaluate(plan, data.events, data.accounts, DEFAULT_AS_OF)
    key = plan.account_key
    ids = batch.actions[key].unique(maintain_order=True).head(4).to_list()
    ids += [a for a in batch.stages[key].to_list() if a not in ids][:2]
    for account in ids:
        alone = hr.evaluate(plan, data.events.filter(pl.col(key) == account),
                            data.accounts.filter(pl.col(key) == account), DEFAULT_AS_OF)
        for name in ("indicators", "stages", "scores", "actions"):
            assert_frame_equal(getattr(alone, name),
                               getattr(batch, name).filter(pl.col(key) == account))


def test_rows_all_in_one_stage_get_a_task_list_each() -> None:
    """Several rows in one stage whose tasks are all literals (no ``done_when``): each row
    gets the list (a list of literals is not one row for the whole frame)."""
    roadmap = hr.Roadmap.model_validate({
        "id": "svc", "goal": "Weekly use", "data": {"events": {"user": None}},
        "indicators": [{"id": "logins_7d", "family": "process", "aggregate": "count",
                        "window": "7d"}],
        "stages": [{"id": "only", "tasks": {"joint": [{"text": "invite"}, {"text": "call"}]}}],
    })
    events, _ = _one_account()
    accounts = pl.DataFrame({"account_id": ["a", "b", "c"]})
    stages = hr.evaluate(roadmap, events, accounts, AS_OF).stages.sort("account_id")
    assert stages.height == 3
    assert stages["tasks"].to_list() == [[
        {"list": "joint", "text": "invite", "done": None},
        {"list": "joint", "text": "call", "done": None}]] * 3


def test_task_lists_of_literal_and_flagged_tasks() -> None:
    """A stage whose tasks have no ``done_when`` is one literal list, a mixed stage an
    array of literal structs and structs of the flags; every row of a batch over the
    stages, and each account alone, gets its stage's list in order, with the flags'
    values (true, false, null) and null for a task without ``done_when``."""
    roadmap = hr.Roadmap.model_validate({
        "id": "svc", "goal": "Weekly use",
        "data": {"events": {"user": None}, "accounts": {"attributes": {"tier": "int"}}},
        "indicators": [{"id": "logins_7d", "family": "process", "aggregate": "count",
                        "window": "7d"}],
        "stages": [
            {"id": "plain", "entry": "tier == 1",
             "tasks": {"joint": ["invite"], "ours": [{"text": "call"}, "write"]}},
            {"id": "mixed", "entry": "tier == 2",
             "tasks": {"joint": [{"text": "log in", "done_when": "logins_7d >= 1"}],
                       "customer": ["read"],
                       "ours": [{"text": "log in twice", "done_when": "logins_7d >= 2"}]}},
            {"id": "bare", "entry": "tier == 3"},
        ],
    })
    plan = hr.compile(roadmap)
    program = Evaluator(plan).programs[0]
    forms = dict(program._tasks)
    assert set(forms) == {"plain", "mixed"}
    assert forms["plain"].meta.is_literal()
    events = pl.DataFrame({"account_id": ["a", "b", "b"], "event": ["login"] * 3,
                           "timestamp": [dt.datetime(2026, 6, 29, 9)] * 3})
    accounts = pl.DataFrame({"account_id": ["a", "b", "c", "d", "e"],
                             "tier": [2, 2, 2, 1, 3]})

    def task(lst: str, text: str, done: bool | None) -> dict[str, Any]:
        return {"list": lst, "text": text, "done": done}

    plain = [task("joint", "invite", None), task("ours", "call", None),
             task("ours", "write", None)]
    want = {
        "a": [task("joint", "log in", True), task("customer", "read", None),
              task("ours", "log in twice", False)],
        "b": [task("joint", "log in", True), task("customer", "read", None),
              task("ours", "log in twice", True)],
        "c": [task("joint", "log in", False), task("customer", "read", None),
              task("ours", "log in twice", False)],
        "d": plain, "e": [],
    }
    batch = hr.evaluate(plan, events, accounts, AS_OF).stages
    assert batch.schema["tasks"] == TASK_DTYPE
    assert dict(zip(batch["account_id"], batch["tasks"].to_list(), strict=True)) == want
    for account in want:
        alone = hr.evaluate(plan, events.filter(pl.col("account_id") == account),
                            accounts.filter(pl.col("account_id") == account), AS_OF).stages
        assert alone.schema["tasks"] == TASK_DTYPE
        assert alone["tasks"].to_list() == [want[account]], account


def test_large_per_account_queries_run_in_memory_with_the_same_results(
        b2b: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above SMALL_ROWS accounts, the routed rows, roadmap frames, output frames and fired
    actions of one date are collected on the in-memory engine with every optimisation but
    polars' cluster_with_columns (collect_rows, frames.OPTIMISED), not the streaming one;
    every output frame is the same as on the small-input path (no optimisation) and as
    history's helper (the streaming engine)."""
    plan, data = b2b
    small = hr.evaluate(plan, data.events, data.accounts, DEFAULT_AS_OF)
    engines: list[tuple[object, bool]] = []
    real = pl.collect_all

    def recording(frames: list[pl.LazyFrame], **kwargs: Any) -> list[pl.DataFrame]:
        opts = kwargs.get("optimizations")
        engines.append((kwargs.get("engine"), opts is frames_module.OPTIMISED))
        return real(frames, **kwargs)

    # every input counts as large: the same 60 accounts take the large-input path
    monkeypatch.setattr(frames_module, "SMALL_ROWS", 0)
    monkeypatch.setattr(evaluator_module, "SMALL_ROWS", 0)
    monkeypatch.setattr(pl, "collect_all", recording)
    large = hr.evaluate(plan, data.events, data.accounts, DEFAULT_AS_OF)
    monkeypatch.undo()
    # every per-account collect after the events pass runs in memory, optimised: the
    # frames, the outputs, and the fired actions rendered in a collect of their own
    assert engines == [("in-memory", True)] * 3, engines
    assert large.actions.height > 0
    for name in ("indicators", "stages", "scores", "actions", "conditions"):
        assert_frame_equal(getattr(large, name), getattr(small, name))
    # the streaming engine (collect_all, history's helper) gives the same frames too
    monkeypatch.setattr(frames_module, "SMALL_ROWS", 0)
    monkeypatch.setattr(evaluator_module, "SMALL_ROWS", 0)
    monkeypatch.setattr(evaluator_module, "collect_rows", frames_module.collect_all)
    streamed = hr.evaluate(plan, data.events, data.accounts, DEFAULT_AS_OF)
    for name in ("indicators", "stages", "scores", "actions", "conditions"):
        assert_frame_equal(getattr(streamed, name), getattr(small, name))


def _roadmap_frames(plan: hr.Plan, events: pl.DataFrame, accounts: pl.DataFrame,
                    as_of: dt.date, rows: int | None) -> list[pl.DataFrame]:
    """Every roadmap frame (all columns) built through the hooks for ``rows`` rows."""
    plan, clock, ev_lf, acc_df = prepare(plan, events, accounts, as_of)
    at = accounts_at(acc_df, clock, plan.account_key).frame
    ev = Evaluator(plan, clock.time_unit)
    key = plan.account_key
    agg, _ = ev.aggregates(ev_lf, at, clock, event_rows=events.height)
    routed = ev.route(at.lazy().with_columns(ev.time_columns(clock))).collect()
    return pl.collect_all(ev._frames(routed.lazy(), agg, key, set(routed.columns), rows))


@pytest.mark.parametrize("which", ["b2b", "workload"])
def test_forms_for_many_rows_give_the_same_roadmap_frames(
        which: str, b2b: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """From MANY_ROWS rows a roadmap frame takes when/then chains for the stage index,
    the achievement columns and the weight set's picks instead of arrays indexed per row:
    every column of every roadmap frame is the same either way, and so is every output
    of an evaluation (the benchmark's roadmap has two weight sets and five stages)."""
    import importlib.util

    import healthrules.engine.assemble as assemble_module

    spec = importlib.util.spec_from_file_location("workload", ROOT / "benchmarks" / "workload.py")
    assert spec is not None and spec.loader is not None
    workload = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(workload)

    if which == "b2b":
        plan, data = b2b
        events, accounts, as_of = data.events, data.accounts, DEFAULT_AS_OF
    else:
        plan = hr.compile(hr.Roadmap.model_validate(workload.roadmap_dict()))
        events, accounts = workload.generate(20_000, 300)
        as_of = workload.AS_OF
    few = _roadmap_frames(plan, events, accounts, as_of, None)
    many = _roadmap_frames(plan, events, accounts, as_of, assemble_module.MANY_ROWS)
    assert few[0].height >= 50
    assert len(set(few[0]["__stage"].to_list())) > 1  # several stages to pick between
    if which == "workload":
        assert few[0]["__ws"].n_unique() > 1  # both weight sets are picked
    for a, b in zip(few, many, strict=True):
        assert_frame_equal(a, b)
    outputs = []
    for bound in (10**9, 1):  # no evaluation takes the forms for many rows, then all do
        monkeypatch.setattr(assemble_module, "MANY_ROWS", bound)
        outputs.append(hr.evaluate(plan, events, accounts, as_of))
    for name in ("indicators", "stages", "scores", "actions", "conditions"):
        assert_frame_equal(getattr(outputs[0], name), getattr(outputs[1], name))


@pytest.mark.parametrize("large", [False, True])
def test_rows_sorted_once_give_the_outputs_of_sorting_each_one(
        large: bool, b2b: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """One roadmap without roll-ups: its frame is built from the accounts sorted by key, the
    indicators, stages and scores are not sorted again and the actions are sorted by one
    integer (row, priority, declared order); every output equals that of the path that
    sorts each output by key (taken where a roadmap has roll-ups), on the small-input and
    the large-input paths, with the accounts in any order."""
    from healthrules.engine.assemble import RoadmapProgram

    plan, data = b2b
    accounts = data.accounts.sample(fraction=1.0, shuffle=True, seed=3)
    if large:
        monkeypatch.setattr(frames_module, "SMALL_ROWS", 0)
        monkeypatch.setattr(evaluator_module, "SMALL_ROWS", 0)
    once = hr.evaluate(plan, data.events, accounts, DEFAULT_AS_OF)
    monkeypatch.setattr(RoadmapProgram, "has_rollups", property(lambda self: True))
    each = hr.evaluate(plan, data.events, accounts, DEFAULT_AS_OF)
    key = plan.account_key
    for name in ("indicators", "stages", "scores", "actions", "conditions"):
        assert_frame_equal(getattr(once, name), getattr(each, name))
    assert once.indicators[key].is_sorted()
    per_account = once.actions.group_by(key).len()["len"]
    assert per_account.max() > 1  # the order within an account is checked too


def test_column_take_reads_plain_columns_only() -> None:
    """A select is taken by name only when each expression is a column read as it is,
    renamed or not, and no column is read or written twice."""
    got = column_take("k", pl.col("a"), pl.col("b").alias("c"), pl.col("d").alias("e").alias("f"))
    assert got is not None
    assert (got.sources, got.names) == (["k", "a", "b", "d"], ["k", "a", "c", "f"])
    for exprs in ([pl.col("a") + 1], [pl.col("a").cast(pl.Int64)], [pl.lit(1).alias("a")],
                  [pl.all()], [pl.col("^a.*$")], [pl.col("a", "b")],
                  [pl.col("a").fill_null(0).alias("a")], [pl.col("a"), pl.col("a").alias("b")],
                  [pl.col("a").alias("c"), pl.col("b").alias("c")]):
        assert column_take(*exprs) is None, exprs


@pytest.mark.parametrize("height", [0, 1, 5])
def test_taken_columns_equal_the_select(height: int) -> None:
    """Columns taken by name are the frame ``select`` gives (NaN, infinities, -0.0, nulls,
    datetimes in a zone across a change of summer time), and the frame they are taken
    from keeps its names; a missing column leaves the select to the query."""
    zone = "Europe/Paris"
    full = pl.DataFrame({
        "k": ["a", "b", None, "d", "e"],
        "x": [float("nan"), float("inf"), -0.0, None, -float("inf")],
        "n": [None, 2**62, -1, 0, None],
        "t": pl.datetime_range(dt.datetime(2026, 3, 29, 0), dt.datetime(2026, 3, 29, 5),
                               "1h", time_zone=zone, eager=True),
        "l": [[1], None, [], [None], [2, 3]],
    }).head(height)
    exprs = ["k", pl.col("x").alias("value"), pl.col("t"), pl.col("n").alias("count"),
             pl.col("l").alias("lists")]
    take = column_take(*exprs)
    assert take is not None
    taken = take_columns(full, take)
    assert taken is not None
    assert_frame_equal(taken, full.select(exprs), check_exact=True)
    assert full.columns == ["k", "x", "n", "t", "l"]
    assert take_columns(full.drop("t"), take) is None


def test_one_rows_plain_outputs_are_taken_without_a_query(b2b: Any) -> None:
    """One account's indicators, scores and stage columns (its stage's task list a
    literal) are its collected roadmap frame's columns taken by name: no select to plan,
    the frames of the query form."""
    plan, data = b2b
    key = plan.account_key
    ev = Evaluator(plan)
    program = ev.programs[0]
    batch = hr.evaluate(plan, data.events, data.accounts, DEFAULT_AS_OF)
    # an account in a stage whose tasks are all literals (no done_when)
    literal = {s for s, e in program._tasks if e.meta.is_literal()}
    assert literal
    account = batch.stages.filter(pl.col("stage").is_in(sorted(literal)))[key][0]
    one_events = data.events.filter(pl.col(key) == account)
    one_accounts = data.accounts.filter(pl.col(key) == account)
    _, clock, ev_lf, acc_df = prepare(plan, one_events, one_accounts, DEFAULT_AS_OF)
    accounts = accounts_at(acc_df, clock, key).frame
    agg, _ = ev.aggregates(ev_lf, accounts, clock, event_rows=one_events.height)
    routed = ev.route(accounts.lazy().with_columns(ev.time_columns(clock))).collect()
    (frame,) = ev.roadmap_frames(routed, agg, key)
    assert frame.height == 1
    out = program.outputs(frame, key, render=False, fired=False, counts=False)
    none = pl.QueryOptFlags.none()
    _, stage_exprs, score_exprs, _, _ = program._outputs
    one = program._one_task_list(frame)
    assert one is not None
    for lf, exprs in ((out.indicators, [key, "roadmap", *program._indicator_cols]),
                      (out.scores, [key, "roadmap", *score_exprs]),
                      (out.stages, [key, "roadmap", *stage_exprs, one.alias("tasks")])):
        assert "SELECT" not in lf.explain(optimizations=none)
        assert_frame_equal(lf.collect(), frame.select(exprs), check_exact=True)
    assert_frame_equal(out.stages.collect(),
                       batch.stages.filter(pl.col(key) == account), check_exact=True)
