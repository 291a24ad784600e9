"""A roadmap frame's band positions found once per banded indicator (docs/performance.md,
"After the events pass, sixth round"): the frame computes each aggregate indicator's band
position as a column (``__bpos__<id>``) and reads both the band name and the band score
from it, where the former form found the position twice (for the name, then again from
the value for the score). Pinned here against that former form (the same program with
its former steps put back) over every output and every roadmap frame, on aggregate
values chosen to be adversarial (NaN, infinities, -0.0, nulls, values on and next to the
cut points, huge and tiny numbers, Int64 counts), for one cut point to the binary search's
many, both edge kinds, bands of mixed edge kinds, the three missing policies, the forms
for many rows, pinned values, one row and none, and rows where no action fired."""

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
import healthrules.engine.assemble as assemble_module
import healthrules.engine.evaluator as evaluator_module
from healthrules.engine.assemble import RoadmapProgram, program_for

AS_OF = dt.date(2026, 6, 30)
OUTPUTS = ("indicators", "stages", "scores", "actions", "conditions", "attributes")

SPEC: dict[str, Any] = {
    "id": "positions",
    "goal": "g",
    "data": {"events": {"values": {"value": "float"}},
             "accounts": {"attributes": {"tier": "str"}}},
    "indicators": [
        # le edges, one cut point; missing: skip (the roadmap's)
        {"id": "a", "family": "process", "aggregate": "max", "of": "value", "window": "30d",
         "bands": {"levels": [{"name": "lo", "le": 0}, {"name": "hi", "gt": 0}]}},
        # lt edges, three cut points; missing: worst
        {"id": "b", "family": "process", "aggregate": "min", "of": "value", "window": "30d",
         "missing": "worst",
         "bands": {"levels": [{"name": "b0", "lt": -1}, {"name": "b1", "ge": -1, "lt": 0},
                              {"name": "b2", "ge": 0, "lt": 1e300},
                              {"name": "b3", "ge": 1e300, "score": 10}]}},
        # le edges, four cut points; missing: neutral
        {"id": "c", "family": "relationship", "aggregate": "max", "of": "value",
         "window": "7d", "missing": "neutral",
         "bands": {"levels": [{"name": "c0", "le": -5e-324}, {"name": "c1", "gt": -5e-324, "le": 0},
                              {"name": "c2", "gt": 0, "le": 5e-324},
                              {"name": "c3", "gt": 5e-324, "le": 2.0**53},
                              {"name": "c4", "gt": 2.0**53}]}},
        # lt edges, six cut points (the binary search); missing: worst
        {"id": "d", "family": "outcome", "aggregate": "sum", "of": "value", "window": "30d",
         "missing": "worst",
         "bands": {"levels": [{"name": f"d{i}", **({"ge": float(i - 3)} if i else {}),
                               **({"lt": float(i - 2)} if i < 6 else {})}
                              for i in range(7)]}},
        # edges of both kinds: a when/then chain (no position column); missing: neutral
        {"id": "e", "family": "outcome", "aggregate": "max", "of": "value", "window": "30d",
         "missing": "neutral",
         "bands": {"levels": [{"name": "e0", "lt": 0}, {"name": "e1", "ge": 0, "le": 1},
                              {"name": "e2", "gt": 1}]}},
        # derived indicators (their bands keep their form, found from the value, next to
        # the positioned ones): le edges, two cut points, missing: worst; lt edges over an
        # Int64 count; one of mixed edges (a chain)
        {"id": "f", "family": "relationship", "expr": "a * 2 + c", "missing": "worst",
         "bands": {"levels": [{"name": "f0", "le": -1}, {"name": "f1", "gt": -1, "le": 1e300},
                              {"name": "f2", "gt": 1e300}]}},
        {"id": "g", "family": "outcome", "expr": "n * 2",
         "bands": {"levels": [{"name": "g0", "lt": 4}, {"name": "g1", "ge": 4}]}},
        {"id": "h", "family": "outcome", "expr": "f", "missing": "neutral",
         "bands": {"levels": [{"name": "h0", "lt": 0}, {"name": "h1", "ge": 0, "le": 1},
                              {"name": "h2", "gt": 1}]}},
        # an Int64 count, lt edges, two cut points; missing: skip
        {"id": "n", "family": "relationship", "aggregate": "count", "window": "30d",
         "bands": {"levels": [{"name": "few", "lt": 2}, {"name": "some", "ge": 2, "lt": 4},
                              {"name": "many", "ge": 4}]}},
    ],
    "stages": [
        {"id": "top", "entry": "n >= 2",
         "actions": [{"id": "hi", "kind": "positive", "when": "a > 0 or b >= 0",
                      "do": "a {a:.2f} b {b}"}]},
        {"id": "rest",
         "actions": [{"id": "lo", "kind": "challenge", "when": "c <= 0 and d < 1",
                      "do": "c {c} d {d:.1f}"}]},
    ],
    "actions": [{"id": "any", "kind": "challenge", "when": "e > 1", "do": "{e}",
                 "priority": "high"}],
    "score": {
        "weights": {"families": {"process": 2, "relationship": 1, "outcome": 1}},
        "stages": {"top": {"weights": {"indicators": {"a": 3, "c": 1, "e": 1}}}},
        "segments": [{"id": "gold", "applies_to": "tier == 'gold'",
                      "weights": {"families": {"process": 1, "relationship": 3,
                                               "outcome": 1}}}],
        "bands": {"levels": [{"name": "red", "lt": 50}, {"name": "green", "ge": 50}]},
    },
}

VALUES: list[float | None] = [
    math.nan, math.inf, -math.inf, -0.0, 0.0, None, 1.0, -1.0, 0.5, 1e300, 1e308,
    -1e308, 5e-324, -5e-324, 2.0**53, 2.0**53 + 2, -2.0, 3.0, 2.9999999999999996, -3.0]


def _former_init(real: Any) -> Any:
    """``RoadmapProgram.__init__`` giving the former form: the bands' names found by their
    own positions and the band scores found again from the values (no position column)."""
    def init(self: RoadmapProgram, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        self._positioned = set()
        self._frame_bands = [self._aggregate_bands] if self._aggregate_bands else []
        self._score_base()
        self._band_scores_at = self._band_scores
        self._score_steps_at = self._score_steps
        self._fused = self._fused_steps()
    return init


def _plans(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    new = hr.compile(hr.Roadmap.model_validate(SPEC))
    with monkeypatch.context() as m:
        m.setattr(RoadmapProgram, "__init__", _former_init(RoadmapProgram.__init__))
        former = hr.compile(hr.Roadmap.model_validate(SPEC))
    return new, former


def _accounts(n: int) -> pl.DataFrame:
    return pl.DataFrame({
        "account_id": [f"a{i:03d}" for i in range(n)],
        "tier": [("gold", "silver", None)[i % 3] for i in range(n)],
    }, schema={"account_id": pl.String, "tier": pl.String})


def _events(accounts: pl.DataFrame) -> pl.DataFrame:
    ids = accounts["account_id"].to_list()
    rows = [(a, "u1", "login", dt.datetime(2026, 6, 29, 12) - dt.timedelta(days=i % 3), 1.0)
            for i, a in enumerate(ids) if i % 5]
    return pl.DataFrame(rows, schema={"account_id": pl.String, "user_id": pl.String,
                                      "event": pl.String, "timestamp": pl.Datetime("us"),
                                      "value": pl.Float64}, orient="row")


def _run(plan: Any, accounts: pl.DataFrame, values: list[float | None],
         counts: list[int | None], monkeypatch: pytest.MonkeyPatch,
         ) -> tuple[Any, list[list[pl.DataFrame]]]:
    """One evaluation whose aggregates are replaced by ``values`` (the float indicators,
    shifted per indicator) and ``counts`` (the count), with every collect's frames."""
    got: list[list[pl.DataFrame]] = []
    real_collect = evaluator_module.collect_rows
    real_aggregates = evaluator_module.Evaluator.aggregates

    def keeping(frames: list[pl.LazyFrame], rows: int) -> list[pl.DataFrame]:
        out = cast(list[pl.DataFrame], real_collect(frames, rows))
        got.append([f.clone() for f in out])
        return out

    def replaced(self: Any, *args: Any, **kwargs: Any) -> tuple[pl.DataFrame, dict[str, int]]:
        agg, diagnostics = real_aggregates(self, *args, **kwargs)
        agg = agg.sort("account_id")  # (the pass's rows come in no order)
        n = agg.height
        columns = []
        for k, name in enumerate(("a", "b", "c", "d", "e")):
            raw = f"__0__{name}"
            column = [values[(i + k) % len(values)] for i in range(n)] if values else [None] * n
            columns.append(pl.Series(raw, column, dtype=agg.schema[raw]))
        raw = "__0__n"
        column_n = [counts[i % len(counts)] for i in range(n)] if counts else [None] * n
        columns.append(pl.Series(raw, column_n, dtype=agg.schema[raw]))
        return agg.with_columns(columns), diagnostics

    with monkeypatch.context() as m:
        m.setattr(evaluator_module, "collect_rows", keeping)
        m.setattr(evaluator_module.Evaluator, "aggregates", replaced)
        result = hr.evaluate(plan, _events(accounts), accounts, AS_OF)
    return result, got


def _same(accounts: pl.DataFrame, values: list[float | None], counts: list[int | None],
          monkeypatch: pytest.MonkeyPatch) -> Any:
    new, former = _plans(monkeypatch)
    got, frames = _run(new, accounts, values, counts, monkeypatch)
    want, former_frames = _run(former, accounts, values, counts, monkeypatch)
    for name in OUTPUTS:
        assert_frame_equal(getattr(got, name), getattr(want, name), check_exact=True)
    assert got.diagnostics == want.diagnostics
    # every collected frame: the same columns with the same values, but the positions
    assert len(frames) == len(former_frames)
    positioned = 0
    for part, former_part in zip(frames, former_frames, strict=True):
        assert len(part) == len(former_part)
        for frame, former_frame in zip(part, former_part, strict=True):
            positions = [c for c in frame.columns if c.startswith("__bpos__")]
            positioned += len(positions)
            assert_frame_equal(frame.drop(positions), former_frame, check_exact=True)
    return got, positioned


COUNTS: list[int | None] = [None, 0, 1, 2, 3, 4, 5, -1, 2**62]


@pytest.mark.parametrize("n", [0, 1, 2, 7, 40])
def test_positions_give_the_former_frames_and_outputs(
        n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    _, positioned = _same(_accounts(n), VALUES, COUNTS, monkeypatch)
    # the frame's form (not one row): five position columns (not the chained band's)
    assert positioned == (0 if n == 1 else 5)


@pytest.mark.parametrize("n", [1, 9])
def test_positions_with_pinned_values(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows with a pinned value (a manual override, ``__pin__<id>``): the frame's steps
    one by one, the bands of the pinned values; the same frame as the former form."""
    new, former = _plans(monkeypatch)
    accounts = _accounts(n)
    clock = evaluator_module.clock_for(new, _events(accounts).lazy().collect_schema(), AS_OF)
    routed = accounts.with_columns(
        pl.Series("__pin__a", [(None, 0.0, 7.5, math.nan, -0.0)[i % 5] for i in range(n)],
                  dtype=pl.Float64),
        pl.lit(0, pl.Int64).alias("__route"),
    ).lazy().with_columns(evaluator_module.Evaluator.time_columns(clock))
    columns = set(routed.collect_schema().names())
    agg = pl.DataFrame({"account_id": accounts["account_id"]}).with_columns(
        *[pl.Series(f"__0__{name}", [VALUES[(i + k) % len(VALUES)] for i in range(n)],
                    dtype=pl.Float64) for k, name in enumerate("abcde")],
        pl.Series("__0__n", [COUNTS[i % len(COUNTS)] for i in range(n)], dtype=pl.Int64))
    frames = [program_for(plan, 0, "us").frame(routed, agg, "account_id", columns).collect()
              for plan in (new, former)]
    positions = [c for c in frames[0].columns if c.startswith("__bpos__")]
    assert len(positions) == 5
    assert_frame_equal(frames[0].drop(positions), frames[1], check_exact=True)
    # the band of the pinned value where one is pinned (NaN above the cut point)
    pins = [(None, 0.0, 7.5, math.nan, -0.0)[i % 5] for i in range(n)]
    values = [VALUES[i % len(VALUES)] if pin is None else pin for i, pin in enumerate(pins)]
    assert frames[0]["a__band"].to_list() == [
        None if v is None else "lo" if v <= 0 else "hi" for v in values]


def test_positions_in_the_forms_for_many_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """From ``MANY_ROWS`` rows on (the when/then forms of the stage and the weight set's
    picks): the same frames and outputs."""
    monkeypatch.setattr(assemble_module, "MANY_ROWS", 8)
    _same(_accounts(30), VALUES, COUNTS, monkeypatch)


def test_rows_where_nothing_fired_and_every_value_null(
        monkeypatch: pytest.MonkeyPatch) -> None:
    got, _ = _same(_accounts(12), [], [], monkeypatch)
    assert got.actions.height == 0 or got.actions.height > 0  # (whatever the policies give)


def test_the_head_of_one_account_has_no_position_columns(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One account runs head then tail, whose band scores are cells read by the band the
    head found: the head keeps its former form (no position column to compute)."""
    _, frames = _run(hr.compile(hr.Roadmap.model_validate(SPEC)), _accounts(1), VALUES,
                     COUNTS, monkeypatch)
    assert not [c for part in frames for f in part for c in f.columns
                if c.startswith("__bpos__")]


@settings(max_examples=20, deadline=None)
@given(st.lists(st.none() | st.floats(allow_nan=True, allow_infinity=True)
                | st.sampled_from([0.0, -0.0, -1.0, 1.0, 1e300, 5e-324, -5e-324, 2.0**53,
                                   -3.0, 3.0]),
                min_size=1, max_size=12),
       st.lists(st.none() | st.integers(-(2**63), 2**63 - 1) | st.integers(-1, 5),
                min_size=1, max_size=6),
       st.integers(0, 20))
def test_positions_give_the_former_outputs_drawn(
        values: list[float | None], counts: list[int | None], n: int) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        _same(_accounts(n), values, counts, monkeypatch)
