"""The cheaper forms of the per-account work after the events pass, pinned against the
forms they replace (docs/performance.md, "After the events pass, fourth round"):

- a band's position counted by comparisons with the cut points (up to four of them)
  instead of a binary search of them;
- a row's stage tested by its ``__stage_index`` instead of comparing ``__stage`` with the
  stage's id (an action's scope, a weight set's stage, a single stage's achievement);
- where the first roadmap applies to every account, its frame reads the rows without a
  route to filter by, and no routed rows are collected.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import healthrules as hr
import healthrules.engine.assemble as assemble_module
import healthrules.engine.evaluator as evaluator_module
import healthrules.engine.frames as frames_module
from healthrules.datasets import DEFAULT_AS_OF, sample
from healthrules.engine import Evaluator
from healthrules.engine.assemble import _band_position
from healthrules.roadmap import Bands
from test_service_path import _roadmap_frames

ROOT = Path(__file__).resolve().parent.parent
B2B = ROOT / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"
OUTPUTS = ("indicators", "stages", "scores", "actions", "conditions", "attributes")


def _workload() -> Any:
    spec = importlib.util.spec_from_file_location("workload", ROOT / "benchmarks" / "workload.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WORKLOAD = _workload()


# ------------------------------------------------------------------ band positions


def _bands(cuts: list[float], inclusive: bool) -> Bands:
    upper, lower = ("le", "gt") if inclusive else ("lt", "ge")
    levels: list[dict[str, Any]] = []
    for i in range(len(cuts) + 1):
        level: dict[str, Any] = {"name": f"b{i}"}
        if i > 0:
            level[lower] = cuts[i - 1]
        if i < len(cuts):
            level[upper] = cuts[i]
        levels.append(level)
    return Bands.model_validate({"levels": levels})


def _positions(bands: Bands, frame: pl.DataFrame, *, searched: bool,
               monkeypatch: pytest.MonkeyPatch) -> pl.DataFrame:
    """Each column's band position, without and with a position for null, by comparisons
    (the form up to ``_COMPARED_CUTS`` cut points) or by the binary search (``searched``)."""
    with monkeypatch.context() as m:
        if searched:
            m.setattr(assemble_module, "_COMPARED_CUTS", 0)
        exprs = []
        for name in frame.columns:
            for missing in (None, len(bands.levels)):
                got = _band_position(pl.col(name), bands, missing=missing)
                assert got is not None
                exprs.append(got.alias(f"{name}_{missing}"))
        return frame.select(exprs)


ADVERSARIAL = [-0.0, 0.0, math.nan, math.inf, -math.inf, None, 5e-324, -5e-324, 1e308,
               -1e308, 0.1, 1 / 3]

CUTS = st.lists(st.one_of(st.integers(-1000, 1000).map(float),
                          st.floats(-1e6, 1e6, allow_nan=False), st.just(0.0),
                          st.just(-1e300), st.just(1e300)),
                min_size=1, max_size=4, unique=True).map(sorted)


@given(cuts=CUTS, inclusive=st.booleans(), data=st.data())
def test_compared_positions_equal_the_binary_search(
        cuts: list[float], inclusive: bool, data: st.DataObject) -> None:
    """Up to four cut points, the position counted by comparisons is the binary search's,
    value for value and in dtype (UInt32): on the cut points and next to them, -0.0,
    NaN (the last band), infinities, subnormals, null (null, or the missing position),
    and integer columns (large ones too, cast to floats alike)."""
    bands = _bands(cuts, inclusive)
    extra = data.draw(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                         st.none()), max_size=8))
    nudged = [math.nextafter(c, d) for c in cuts for d in (-math.inf, math.inf)]
    values = [*cuts, *[-c for c in cuts], *nudged, *ADVERSARIAL, *extra]
    ints = data.draw(st.lists(st.one_of(st.integers(-(2**63), 2**63 - 1), st.none()),
                              max_size=8))
    ints += [int(c) for c in cuts if abs(c) < 2**62] + [None, 0, 2**53 + 1, -(2**63)]
    floats = pl.DataFrame({"x": pl.Series(values, dtype=pl.Float64)})
    integers = pl.DataFrame({"n": pl.Series(ints, dtype=pl.Int64)})
    with pytest.MonkeyPatch.context() as mp:
        for frame in (floats, integers, floats.head(1), floats.clear()):
            compared = _positions(bands, frame, searched=False, monkeypatch=mp)
            searched = _positions(bands, frame, searched=True, monkeypatch=mp)
            assert_frame_equal(compared, searched, check_exact=True)
            assert set(compared.schema.values()) <= {pl.UInt32}


def test_more_cut_points_keep_the_binary_search() -> None:
    """From five cut points the position is still the binary search (one node, where the
    comparisons would be one node per cut point)."""
    few = _band_position(pl.col("x"), _bands([1.0, 2.0, 3.0, 4.0], False))
    many = _band_position(pl.col("x"), _bands([1.0, 2.0, 3.0, 4.0, 5.0], False))
    assert few is not None and many is not None
    assert "search_sorted" not in str(few) and "search_sorted" in str(many)


# ------------------------------------------------------------------ stages by index


def _unassigning_roadmap() -> dict[str, Any]:
    """The benchmark's roadmap with every stage behind an entry test (no fallback stage),
    so that some accounts have no stage (null ``__stage_index``, stage ``_unassigned``)."""
    spec = WORKLOAD.roadmap_dict()
    stages = spec["stages"]
    stages[2]["entry"] = "days_since(contract_start) >= 400"
    stages[3]["entry"] = "days_since(contract_start) < 0"
    return spec


def _by_stage_name(r: Any, stage: str) -> pl.Expr:
    return pl.col("__stage") == stage


@pytest.mark.parametrize("which", ["workload", "unassigning", "b2b"])
def test_stage_tests_by_index_equal_the_stage_names(
        which: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An action's scope, a weight set's stage and a single stage's achievement read by
    ``__stage_index`` give the columns and outputs of comparing ``__stage`` with the id:
    with rows of every stage, and with rows of no stage."""
    if which == "b2b":
        data = sample(80)
        events, accounts, as_of = data.events, data.accounts, DEFAULT_AS_OF

        def compiled() -> hr.Plan:
            return hr.compile(hr.load(B2B))
    else:
        events, accounts = WORKLOAD.generate(20_000, 300)
        as_of = WORKLOAD.AS_OF
        spec = WORKLOAD.roadmap_dict() if which == "workload" else _unassigning_roadmap()

        def compiled() -> hr.Plan:
            return hr.compile(hr.Roadmap.model_validate(spec))
    plan = compiled()
    frame = _roadmap_frames(plan, events, accounts, as_of, accounts.height)[0]
    if which == "unassigning":
        assert frame["__stage_index"].null_count() > 0
        assert (frame["__stage"] == "_unassigned").sum() > 0
    assert frame["__stage"].n_unique() > 2
    r = plan.roadmaps[0].roadmap
    for k, (stage, _) in enumerate(r.all_actions()):
        if stage is not None:
            expected = frame["__stage"] == stage.id
            assert frame[f"__scope_{k}"].to_list() == expected.to_list()
    by_index = hr.evaluate(plan, events, accounts, as_of)
    monkeypatch.setattr(assemble_module, "_on_stage", _by_stage_name)
    by_name_plan = compiled()
    by_name = hr.evaluate(by_name_plan, events, accounts, as_of)
    assert_frame_equal(
        _roadmap_frames(by_name_plan, events, accounts, as_of, accounts.height)[0], frame,
        check_exact=True)
    for name in OUTPUTS:
        assert_frame_equal(getattr(by_index, name), getattr(by_name, name), check_exact=True)


# ------------------------------------------------------------------ every account routed


def _routed_to_all(spec: dict[str, Any]) -> dict[str, Any]:
    """The same roadmap with an ``applies_to`` that holds for every account: its rows are
    routed by a test and filtered by the route (the path before)."""
    return {**spec, "applies_to": "1 == 1"}


@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("shuffled", [False, True])
@pytest.mark.parametrize("rows", ["all", "unknown accounts", "one", "none"])
def test_a_roadmap_of_every_account_equals_the_routed_path(
        large: bool, shuffled: bool, rows: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first roadmap without ``applies_to`` reads the rows without a route (no filter,
    no routed rows collected): every output, the attributes and the diagnostics equal
    those of the same roadmap routed by a test that always holds, on the small-input and
    large-input paths, with the accounts in any order, with events of unknown accounts,
    for one account and for none."""
    events, accounts = WORKLOAD.generate(20_000, 120)
    if shuffled:
        accounts = accounts.sample(fraction=1.0, shuffle=True, seed=5)
    if rows == "unknown accounts":
        accounts = accounts.head(80)
    elif rows == "one":
        accounts = accounts.head(1)
    elif rows == "none":
        accounts = accounts.clear()
    if large:
        monkeypatch.setattr(frames_module, "SMALL_ROWS", 0)
        monkeypatch.setattr(evaluator_module, "SMALL_ROWS", 0)
    spec = WORKLOAD.roadmap_dict()
    every = hr.compile(hr.Roadmap.model_validate(spec))
    routed = hr.compile(hr.Roadmap.model_validate(_routed_to_all(spec)))
    assert Evaluator(every)._every and not Evaluator(routed)._every
    collected: list[int] = []
    real = evaluator_module.collect_rows

    def counting(frames: list[pl.LazyFrame], n: int) -> list[pl.DataFrame]:
        collected.append(len(frames))
        return real(frames, n)

    monkeypatch.setattr(evaluator_module, "collect_rows", counting)
    got = hr.evaluate(every, events, accounts, WORKLOAD.AS_OF)
    first = collected[0]
    collected.clear()
    want = hr.evaluate(routed, events, accounts, WORKLOAD.AS_OF)
    # the roadmap frame alone (no routed rows) where more than one row takes one collect
    assert first == (2 if rows == "one" else 1) and collected[0] == 2
    for name in OUTPUTS:
        assert_frame_equal(getattr(got, name), getattr(want, name), check_exact=True)
    assert got.diagnostics == want.diagnostics
    if rows == "unknown accounts":
        assert got.diagnostics["unknown_accounts"] > 0


def test_accounts_with_a_time_column_keep_the_routed_rows() -> None:
    """Accounts that carry a column named like a time column the rows get (``__as_of``)
    keep the path that collects the routed rows: their attributes are read from them,
    as before."""
    events, accounts = WORKLOAD.generate(5_000, 40)
    accounts = accounts.with_columns(pl.lit(1).alias("__as_of"))
    spec = WORKLOAD.roadmap_dict()
    got = hr.evaluate(hr.compile(hr.Roadmap.model_validate(spec)), events, accounts,
                      WORKLOAD.AS_OF)
    want = hr.evaluate(hr.compile(hr.Roadmap.model_validate(_routed_to_all(spec))),
                       events, accounts, WORKLOAD.AS_OF)
    for name in OUTPUTS:
        assert_frame_equal(getattr(got, name), getattr(want, name), check_exact=True)
    assert got.diagnostics == want.diagnostics
