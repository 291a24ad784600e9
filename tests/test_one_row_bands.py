"""One account's roadmap frame in two parts: the tail takes the band scores of the bands
the head computed (columns made once per band, no lookup done again), the head leaves the
previous windows' columns to be dropped by name, and both run their steps levelled
(each expression in the first step after what it reads). These forms give the frame and
the outputs of the query forms, bit for bit, on adversarial values: NaN, infinities,
-0.0, nulls, band edges, the three missing policies and bands of mixed edge kinds."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, cast

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import healthrules as hr
import healthrules.engine.evaluator as evaluator_module
from adversarial_events import assert_each_alone_equals_batch
from healthrules.engine.assemble import RoadmapProgram, _fuse, _levelled, program_for
from healthrules.query_flags import NO_OPTIMISATION

AS_OF = dt.date(2026, 6, 30)

ROADMAP = hr.Roadmap.model_validate({
    "id": "edges",
    "goal": "g",
    "data": {"events": {"values": {"value": "float"}},
             "accounts": {"attributes": {"v": "float", "seats": "int"}}},
    "indicators": [
        {"id": "n", "family": "process", "aggregate": "count", "window": "30d",
         "bands": {"levels": [{"name": "none", "lt": 1}, {"name": "some", "ge": 1}]}},
        {"id": "m", "family": "relationship", "aggregate": "mean", "of": "value",
         "window": "30d", "missing": "worst",
         "bands": {"levels": [{"name": "lo", "le": 0}, {"name": "hi", "gt": 0}]}},
        # lt edges (left-closed bins), -0.0 and 0.0 at an edge; missing: neutral
        {"id": "x", "family": "process", "expr": "v", "missing": "neutral",
         "bands": {"levels": [{"name": "neg", "lt": 0}, {"name": "small", "ge": 0, "lt": 1},
                              {"name": "big", "ge": 1}]}},
        # le edges (right-closed bins); missing: worst
        {"id": "y", "family": "relationship", "expr": "v * 2", "missing": "worst",
         "bands": {"levels": [{"name": "low", "le": 0}, {"name": "high", "gt": 0}]}},
        # edges of both kinds (a when/then chain, the score by the name); missing: skip
        {"id": "z", "family": "outcome", "expr": "v",
         "bands": {"levels": [{"name": "a", "lt": 0}, {"name": "b", "ge": 0, "le": 1},
                              {"name": "c", "gt": 1, "score": 70}]}},
        # a change against the window before: its raw previous window is a column of the
        # head, dropped after it
        {"id": "ch", "family": "process", "aggregate": "count", "window": "7d",
         "compare": "pct_change",
         "bands": {"levels": [{"name": "down", "lt": 0}, {"name": "up", "ge": 0}]}},
        {"id": "r", "family": "outcome", "expr": "n / seats",
         "bands": {"levels": [{"name": "red", "lt": 0.5}, {"name": "green", "ge": 0.5}]}},
    ],
    "stages": [
        {"id": "top", "entry": "v > 100",
         "actions": [{"id": "hi", "kind": "positive", "when": "x >= 100", "do": "{x}"}]},
        {"id": "rest",
         "actions": [{"id": "lo", "kind": "challenge", "when": "y <= 0", "do": "{y}"}]},
    ],
    "actions": [{"id": "any", "kind": "challenge", "when": "z > 1", "do": "{z}"}],
    "score": {
        "weights": {"families": {"process": 2, "relationship": 1, "outcome": 1}},
        "stages": {"top": {"weights": {"indicators": {"x": 3, "y": 1, "z": 1}}}},
        "bands": {"levels": [{"name": "red", "lt": 50}, {"name": "green", "ge": 50}]},
    },
})
PLAN = hr.compile(ROADMAP)

VALUES = [math.nan, math.inf, -math.inf, -0.0, 0.0, None, 1.0, 0.5, 1e308, 5e-324,
          -5e-324, -1.0, 100.5, 2.0**53, -2.0**62]


def _accounts(values: list[float | None]) -> pl.DataFrame:
    return pl.DataFrame({
        "account_id": [f"a{i:02d}" for i in range(len(values))],
        "v": values, "seats": [(i % 4) or None for i in range(len(values))],
    }, schema={"account_id": pl.String, "v": pl.Float64, "seats": pl.Int64})


def _events(accounts: pl.DataFrame) -> pl.DataFrame:
    ids = accounts["account_id"].to_list()
    rows = [(a, "u1", "login", dt.datetime(2026, 6, 29, 12) - dt.timedelta(days=i % 3),
             [None, 1.5, -0.0, math.nan, 0.0][i % 5])
            for i, a in enumerate(ids) if i % 3]
    return pl.DataFrame(rows, schema={"account_id": pl.String, "user_id": pl.String,
                                      "event": pl.String, "timestamp": pl.Datetime("us"),
                                      "value": pl.Float64}, orient="row")


def _alone_equals_batch(accounts: pl.DataFrame) -> None:
    assert_each_alone_equals_batch(PLAN, _events(accounts), accounts, AS_OF)


def test_one_account_alone_equals_the_batch_on_adversarial_values() -> None:
    """Each account alone (head, band cells, tail) gives the batch's rows (the band
    scores looked up by the query), NaN, infinities, -0.0, nulls and edges included."""
    _alone_equals_batch(_accounts(VALUES))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.none() | st.floats(allow_nan=True, allow_infinity=True)
                | st.sampled_from([0.0, -0.0, 1.0, 0.5, 100.0, 100.5]),
                min_size=1, max_size=4))
def test_one_account_alone_equals_the_batch_drawn(values: list[float | None]) -> None:
    _alone_equals_batch(_accounts(values))


def _collected(accounts: pl.DataFrame,
               monkeypatch: pytest.MonkeyPatch) -> list[list[pl.DataFrame]]:
    """The frames of each collect of one evaluation (copies: the tail drops the previous
    windows' columns of the head it is given)."""
    got: list[list[pl.DataFrame]] = []
    real = evaluator_module.collect_rows

    def keeping(frames: list[pl.LazyFrame], rows: int) -> list[pl.DataFrame]:
        out = cast(list[pl.DataFrame], real(frames, rows))
        got.append([f.clone() for f in out])
        return out

    monkeypatch.setattr(evaluator_module, "collect_rows", keeping)
    hr.evaluate(PLAN, _events(accounts), accounts, AS_OF)
    monkeypatch.undo()
    return got


@pytest.mark.parametrize("value", VALUES)
def test_tail_with_band_cells_equals_the_query_form(
        value: float | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tail (band scores and literals as columns made once, steps levelled) equals
    the one-row steps with the band scores looked up in the query (the form before),
    column for column, bit for bit; the tail's query computes no band score and no
    literal, the head's query keeps the previous windows' columns (dropped by name
    after it)."""
    accounts = _accounts([value])
    (_, head), (after,), *_ = _collected(accounts, monkeypatch)
    program = program_for(PLAN, 0, "us")
    assert set(program._dropped) <= set(head.columns)
    assert program._dropped == ["ch__prev"]
    index = head.get_column("__stage_index")[0]
    rest, conditions = program.one_row_steps(index, None)
    columns = {*accounts.columns, "__route", "__as_of", "__end", "__end_naive"}
    kept = head.drop(program._dropped)
    before = program._finish(kept.lazy(), rest, conditions, columns).collect()
    assert set(after.columns) == set(before.columns)
    assert not set(program._dropped) & set(after.columns)
    assert_frame_equal(after.select(before.columns), before, check_exact=True)
    assert any(n.startswith("__bv__") for n in after.columns)
    plan = program.tail(head.clone(), columns).explain(optimized=False)
    # one lookup left: the score's band; no literal column (made once, next to the row)
    # (a band is read from a table of names or scores by its position: a gather)
    assert plan.count("Series.gather(") == 1 and 'alias("__bv__' not in plan
    assert 'alias("__tasks_total")' not in plan and 'alias("roadmap")' not in plan


def test_band_cells_cover_every_band_and_no_band() -> None:
    """A cell per level of every banded indicator and one for no band, with the
    scores of the level tables and the missing policies (skip: 0 and absent; neutral:
    50 and present; worst: 0 and present)."""
    program = program_for(PLAN, 0, "us")
    cells = program._build_band_cells()
    assert set(cells) == {"n", "m", "x", "y", "z", "ch", "r"}
    assert set(cells["z"]) == {"a", "b", "c", None}
    assert cells["z"]["c"][0].to_list() == [70.0]
    assert [s.to_list() for s in cells["z"][None]] == [[0.0], [0.0]]
    assert [s.to_list() for s in cells["x"][None]] == [[50.0], [1.0]]
    assert [s.to_list() for s in cells["y"][None]] == [[0.0], [1.0]]
    assert [s.name for s in cells["x"]["big"]] == ["__bv__x", "__bp__x"]


_COLUMNS = ["a", "b", "c", "d"]
_READ = [*_COLUMNS, "e"]  # (e: read where a step before wrote it, else null)


@st.composite
def _steps(draw: Any) -> list[list[pl.Expr]]:
    steps: list[list[pl.Expr]] = []
    for _ in range(draw(st.integers(1, 6))):
        step: list[pl.Expr] = []
        for out in draw(st.lists(st.sampled_from([*_COLUMNS, "e", "f"]), min_size=1,
                                 max_size=3, unique=True)):
            x, y = draw(st.sampled_from(_READ)), draw(st.sampled_from(_READ))
            op = draw(st.sampled_from(["+", "*", "-"]))
            expr = (pl.col(x) + pl.col(y) if op == "+" else pl.col(x) * pl.col(y)
                    if op == "*" else pl.col(x) - pl.col(y) + 1)
            step.append(expr.alias(out))
        steps.append(step)
    return steps


@settings(max_examples=200, deadline=None)
@given(_steps())
def test_levelled_steps_give_the_same_values(steps: list[list[pl.Expr]]) -> None:
    """Steps levelled give the values of the steps in order (reads after writes,
    rewrites after reads), in no more steps than fusing neighbours."""
    frame = pl.DataFrame({c: [1, -2, 3] for c in [*_COLUMNS, "e"]})

    def run(steps: list[list[pl.Expr]]) -> pl.DataFrame:
        # without optimisation, as one row's queries run: polars 2.1's optimiser gives
        # another value where a name is rewritten between two equal expressions of
        # different steps (a+a as a, then b as a+a: b read the rewritten a)
        lf = frame.lazy()
        for step in steps:
            lf = lf.with_columns(step)
        return lf.collect(optimizations=NO_OPTIMISATION)

    want = run(steps)
    levelled = _levelled(steps)
    got = run(levelled)
    assert sorted(got.columns) == sorted(want.columns)
    assert_frame_equal(got.select(want.columns), want, check_exact=True)
    assert len(levelled) <= len(_fuse(steps))


def test_levelled_puts_unrelated_chains_side_by_side() -> None:
    """A value then its band, for two values that do not read each other: two steps
    (fusing neighbours gives three), and a rewrite stays after its readers."""
    steps = [[(pl.col("a") + 1).alias("x")], [(pl.col("x") * 2).alias("xb")],
             [(pl.col("b") + 1).alias("y")], [(pl.col("y") * 2).alias("yb")]]
    assert len(_fuse(steps)) == 3
    assert [[e.meta.output_name() for e in s] for s in _levelled(steps)] == [
        ["x", "y"], ["xb", "yb"]]
    rewrite = [[(pl.col("a") + 1).alias("x")], [(pl.col("b") * 2).alias("a")]]
    assert [[e.meta.output_name() for e in s] for s in _levelled(rewrite)] == [["x", "a"]]


def test_the_head_of_a_roadmap_for_every_account_reads_the_rows_unfiltered(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A roadmap that applies to every account, first in its plan: one account's head
    reads the rows without a route to filter by, and gives the frame of the routed form;
    accounts that carry a ``__route`` column of their own get the same outputs."""
    got: list[tuple[bool, str, pl.DataFrame, pl.DataFrame | None]] = []
    real = RoadmapProgram.head

    def both(self: RoadmapProgram, routed: pl.LazyFrame, agg: Any, key: str, *,
             every: bool = False) -> pl.LazyFrame:
        lf = real(self, routed, agg, key, every=every)
        want = None
        if every:
            routed_lf = routed.with_columns(pl.lit(0, pl.Int64).alias("__route"))
            want = real(self, routed_lf, agg, key).collect(optimizations=NO_OPTIMISATION)
        got.append((every, lf.explain(optimized=False),
                    lf.collect(optimizations=NO_OPTIMISATION), want))
        return lf

    monkeypatch.setattr(RoadmapProgram, "head", both)
    for value in VALUES:
        accounts = _accounts([value])
        hr.evaluate(PLAN, _events(accounts), accounts, AS_OF)
        every, plan, have, want = got.pop()
        assert every and "FILTER" not in plan
        assert want is not None
        assert_frame_equal(have, want, check_exact=True)
    # a column of the route's name in the accounts is not read as a route
    accounts = _accounts([1.0])
    plain = hr.evaluate(PLAN, _events(accounts), accounts, AS_OF)
    carried = hr.evaluate(PLAN, _events(accounts),
                          accounts.with_columns(pl.lit(5, pl.Int64).alias("__route")), AS_OF)
    for name in ("indicators", "stages", "scores", "actions"):
        assert_frame_equal(getattr(carried, name), getattr(plain, name), check_exact=True)
