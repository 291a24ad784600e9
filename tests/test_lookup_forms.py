"""The cheaper polars forms of the roadmap frame give the columns of the forms they replace.

Band scores, stage names and task totals read literal tables by an index (``gather``)
instead of ``replace_strict``; the stage index is the first true entry test (``arg_max``)
instead of a ``when`` chain; NaN guards are one ``when``; conditions inside ``and``/``or``/
``not``/``if`` are not cast to Boolean again. Each is checked here against the form it
replaced, on every value it can meet (null, NaN, every band, every combination of tests),
on the in-memory engine without optimisation (the service path) and on the default one.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.datasets import sample
from healthrules.engine.assemble import _band_score, program_for
from healthrules.engine.frames import EVIDENCE_DTYPE, empty_actions
from healthrules.engine.render import Renderer, render_value
from healthrules.expressions import parse
from healthrules.polars_expr import nan_to_null, to_polars
from healthrules.roadmap import UNASSIGNED_STAGE, Bands
from healthrules.scalar import evaluate as scalar_evaluate

NONE = pl.QueryOptFlags.none()


def _both(lf: pl.LazyFrame) -> pl.DataFrame:
    """Collect on both engines; they must agree."""
    small = lf.collect(engine="in-memory", optimizations=NONE)
    assert_frame_equal(small, lf.collect())
    return small


def _bands(levels: list[dict[str, Any]]) -> Bands:
    return Bands.model_validate({"levels": levels})


BANDS = [
    _bands([{"name": "low", "lt": 0.3}, {"name": "medium", "ge": 0.3, "lt": 0.6},
            {"name": "high", "ge": 0.6}]),
    _bands([{"name": "many", "le": 2}, {"name": "some", "gt": 2, "le": 5},
            {"name": "few", "gt": 5}]),
    _bands([{"name": "not_yet", "lt": 1}, {"name": "reached", "ge": 1}]),
]


@pytest.mark.parametrize("bands", BANDS)
@pytest.mark.parametrize("missing", [0.0, 50.0])
def test_band_scores_read_by_index_equal_replace_strict(bands: Bands, missing: float) -> None:
    scores = bands.level_scores()
    names = list(scores)
    frame = pl.DataFrame({"band": [*names, None, *reversed(names)]},
                         schema={"band": pl.String})
    old_value = pl.col("band").replace_strict(
        names, [float(scores[n]) for n in names], default=None, return_dtype=pl.Float64)
    got = _both(frame.lazy().select(
        value=_band_score(pl.col("band"), bands, missing),
        present=_band_score(pl.col("band"), bands, 0.0, present=True),
        old_value=old_value.fill_null(missing),
        old_present=old_value.is_not_null().cast(pl.Float64)))
    assert got["value"].to_list() == got["old_value"].to_list()
    assert got["present"].to_list() == got["old_present"].to_list()
    assert got.schema["value"] == got.schema["present"] == pl.Float64


def test_nan_to_null_is_fill_nan() -> None:
    values = [1.5, float("nan"), -float("nan"), None, float("inf"), -float("inf"), -0.0, 0.0]
    frame = pl.DataFrame({"x": values}, schema={"x": pl.Float64})
    ints = pl.DataFrame({"x": [1, None, -3]}, schema={"x": pl.Int64})
    for f in (frame, ints):
        got = _both(f.lazy().select(
            new=nan_to_null(pl.col("x")), old=pl.col("x").cast(pl.Float64).fill_nan(None)))
        assert got.schema["new"] == pl.Float64
        new, old = got["new"].to_list(), got["old"].to_list()
        assert [None if v is None else (math.copysign(1, v), v) for v in new] == [
            None if v is None else (math.copysign(1, v), v) for v in old]


def _stage_roadmap(entries: list[str | None]) -> hr.Roadmap:
    stages: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        st: dict[str, Any] = {"id": f"s{i}", "tasks": {"joint": [
            {"text": f"task {j}"} for j in range(i + 1)]}}
        if entry is not None:
            st["entry"] = entry
        stages.append(st)
    return hr.Roadmap.model_validate({
        "id": "st", "goal": "g",
        "data": {"events": {"user": None},
                 "accounts": {"attributes": {"a": "bool", "b": "bool", "c": "bool"}}},
        "indicators": [{"id": "n", "family": "process", "aggregate": "count",
                        "window": "7d"}],
        "stages": stages,
    })


@pytest.mark.parametrize("entries", [
    ["a", "b", "c"],             # no test may hold: unassigned
    ["a", "b", None],            # the last stage takes every row left
    [None, "a"],                 # the first stage takes every row
    ["a"],
])
def test_stage_index_is_the_first_entry_that_holds(entries: list[str | None]) -> None:
    """Every combination of true, false and null tests: the index, the name and the task
    total of the first stage whose entry holds (a null test does not hold)."""
    roadmap = _stage_roadmap(entries)
    plan = hr.compile(roadmap)
    combos = list(itertools.product([True, False, None], repeat=3))
    accounts = pl.DataFrame({"account_id": [f"x{i}" for i in range(len(combos))],
                             "a": [c[0] for c in combos], "b": [c[1] for c in combos],
                             "c": [c[2] for c in combos]},
                            schema={"account_id": pl.String, "a": pl.Boolean,
                                    "b": pl.Boolean, "c": pl.Boolean})
    events = pl.DataFrame(schema={"account_id": pl.String, "event": pl.String,
                                  "timestamp": pl.Datetime("us")})
    program = program_for(plan, 0, "us")
    index_expr, name_expr = program._stage
    got = _both(accounts.lazy().with_columns(index_expr).with_columns(name_expr))
    expected_index: list[int | None] = []
    for combo in combos:
        value = dict(zip("abc", combo, strict=True))
        first = next((i for i, e in enumerate(entries) if e is None or value[e] is True),
                     None)
        expected_index.append(first)
    assert got["__stage_index"].to_list() == expected_index
    assert got["__stage"].to_list() == [
        UNASSIGNED_STAGE if i is None else f"s{i}" for i in expected_index]
    ev = hr.evaluate(plan, events, accounts, "2026-06-30")
    stages = ev.stages.sort("account_id")
    by_account = dict(zip(accounts["account_id"], expected_index, strict=True))
    assert stages.select("account_id", "stage_index", "tasks_total").rows() == [
        (a, by_account[a], 0 if by_account[a] is None else by_account[a] + 1)
        for a in sorted(by_account)]


@pytest.mark.parametrize("text", [
    "x > 1 and y < 2", "not (x > 1)", "not (x > 1 or y is None)",
    "(1 if x > 1 else 2) == 1", "x > 1 and flag", "not flag", "x in (0, 5) or y >= 3",
])
def test_conditions_cast_to_boolean_only_when_not_boolean(text: str) -> None:
    """A condition built of comparisons, and/or/not has no cast to Boolean left in it; its
    values are the scalar evaluator's (Kleene nulls, NaN read as null) on every row."""
    types: dict[str, Any] = {"x": "int", "y": "float", "flag": "bool"}
    parsed = parse(text)
    expr = to_polars(parsed, column=pl.col, band=pl.col, as_of=pl.lit(None, pl.Date),
                     types=types)
    xs, ys, flags = [0, 2, None, 5], [1.0, None, float("nan"), 3.0], [True, None, False]
    rows = list(itertools.product(xs, ys, flags))
    frame = pl.DataFrame(rows, schema={"x": pl.Int64, "y": pl.Float64, "flag": pl.Boolean},
                         orient="row")
    got = _both(frame.lazy().select(expr.alias("c")))
    assert got.schema["c"] == pl.Boolean
    expected = [scalar_evaluate(parsed, dict(zip("x y flag".split(), row, strict=True)),
                                as_of=dt.date(2026, 6, 30), types=types) for row in rows]
    assert got["c"].to_list() == expected
    if "flag" not in text and " if " not in text:
        assert "Boolean" not in str(expr)


def test_b2b_outputs_equal_on_one_account_and_in_the_batch() -> None:
    """The changed forms on the B2B example: each account evaluated alone gives its rows
    of the batch (the service path runs one-row frames)."""
    plan = hr.compile(hr.load("rules/examples/b2b-saas/roadmap.yaml"))
    data = sample(40, days=240)
    batch = hr.evaluate(plan, data.events, data.accounts, "2026-06-30")
    for account in data.accounts["account_id"].to_list()[:8]:
        one = hr.evaluate(plan, data.events.filter(pl.col("account_id") == account),
                          data.accounts.filter(pl.col("account_id") == account),
                          "2026-06-30")
        for name in ("indicators", "stages", "scores", "actions"):
            mine = getattr(batch, name).filter(pl.col("account_id") == account)
            assert_frame_equal(getattr(one, name), mine, check_dtypes=True)


def test_a_value_shown_twice_at_one_scale_shares_its_exact_form() -> None:
    """``{x:.0%}`` in a text and ``x`` with two decimals in evidence both round x at 2
    places: one exact decimal form, and each text is still :func:`render_value`'s."""
    values = [0.0, -0.0, 0.125, -0.125, 0.905, 2.675, 1e15, 2.0**52, float("nan"),
              float("inf"), None]
    renderer = Renderer()
    pct = renderer.rendered("x", "float", ".0%")
    two = renderer.rendered("x", "float", "")
    assert len(renderer.exacts) == 1
    frame = pl.DataFrame({"x": values}, schema={"x": pl.Float64})
    lf = frame.lazy()
    for step in renderer.steps():
        lf = lf.with_columns(step)
    got = _both(lf.with_columns(renderer.columns).select(
        pct.alias("pct"), two.alias("two"),
        render_value(pl.col("x"), "float", ".0%").alias("pct_one"),
        render_value(pl.col("x"), "float").alias("two_one")))
    assert got["pct"].to_list() == got["pct_one"].to_list()
    assert got["two"].to_list() == got["two_one"].to_list()


def test_actions_keep_their_dtypes_without_the_evidence_cast() -> None:
    """Evidence is built of String fields only, so it is an EVIDENCE_DTYPE list with no
    cast: the actions frame has the dtypes of the empty one, fired or not."""
    plan = hr.compile(hr.load("rules/examples/b2b-saas/roadmap.yaml"))
    data = sample(30, days=240)
    ev = hr.evaluate(plan, data.events, data.accounts, "2026-06-30")
    assert ev.actions.height > 0
    assert ev.actions.schema == empty_actions("account_id", pl.String).schema
    assert ev.actions.schema["evidence"] == EVIDENCE_DTYPE
