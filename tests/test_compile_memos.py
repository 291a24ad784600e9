"""What compile builds once and shares (typed literals, a column's band position, an
expression text's check, the column takes of the raw aggregates and the indicators): each
gives what the form it replaces gave."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.analysis import analyze
from healthrules.engine import Evaluator
from healthrules.engine.assemble import _band_position, _built_position
from healthrules.engine.frames import TASK_DTYPE, column_take, typed_lit
from healthrules.roadmap import Bands

ROOT = Path(__file__).resolve().parent.parent
B2B = ROOT / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"


@pytest.mark.parametrize(("value", "dtype"), [
    (0.5, pl.Float64), (-0.0, pl.Float64), (0.0, pl.Float64), (float("nan"), pl.Float64),
    (1, pl.Int64), (True, pl.Boolean), (2, pl.UInt32), (None, pl.String), (None, pl.Date),
    ("n/a", pl.String), ([], TASK_DTYPE),
    ([{"list": "ours", "text": "call", "done": None}], TASK_DTYPE),
])
def test_typed_literal_is_the_literal_polars_builds(value: Any, dtype: Any) -> None:
    """The shared literal is the expression ``pl.lit`` builds, and the same object the
    second time."""
    got = typed_lit(value, dtype)
    assert got.meta.eq(pl.lit(value, dtype))
    assert typed_lit(value, dtype) is got
    frame = pl.select(got.alias("x"))
    assert frame.schema["x"] == dtype
    assert_frame_equal(frame, pl.select(pl.lit(value, dtype).alias("x")))


def test_typed_literals_keep_values_that_compare_equal_apart() -> None:
    """``-0.0`` and ``0.0``, ``True`` and ``1`` compare equal in Python: each keeps its own
    literal."""
    neg = pl.select(typed_lit(-0.0, pl.Float64)).item()
    pos = pl.select(typed_lit(0.0, pl.Float64)).item()
    assert str(neg) == "-0.0" and str(pos) == "0.0"
    assert pl.select(typed_lit(1, pl.Int64)).dtypes == [pl.Int64]
    assert pl.select(typed_lit(True, pl.Boolean)).dtypes == [pl.Boolean]


def _bands(edge: str, *cuts: float) -> Bands:
    names = ["low", "mid", "high", "top", "peak", "max"]
    levels: list[dict[str, Any]] = [{"name": names[0], edge: cuts[0]}]
    for i in range(1, len(cuts)):
        levels.append({"name": names[i], {"lt": "ge", "le": "gt"}[edge]: cuts[i - 1],
                       edge: cuts[i]})
    levels.append({"name": names[len(cuts)], {"lt": "ge", "le": "gt"}[edge]: cuts[-1]})
    return Bands.model_validate({"levels": levels})


@pytest.mark.parametrize("bands", [
    _bands("lt", 0.5), _bands("le", 0.5), _bands("lt", 0.0, 1.0),
    _bands("le", -1.0, 0.0, 2.5, 7.0, 9.0),
])
@pytest.mark.parametrize("missing", [None, 7])
def test_a_columns_band_position_is_built_once_and_equals_a_fresh_one(
        bands: Bands, missing: int | None) -> None:
    """A column's position, asked for twice, is one expression, the one built fresh; on
    values at, around and between the cut points (NaN, ±inf, -0.0, null) it gives the
    fresh expression's positions."""
    uppers = [level.upper for level in bands.levels[:-1]]
    got = _band_position(pl.col("v"), bands, missing)
    assert got is not None
    assert _band_position(pl.col("v"), bands, missing) is got
    fresh = _built_position(pl.col("v"), uppers, missing)  # type: ignore[arg-type]
    assert got.meta.eq(fresh)
    values = [None, float("nan"), float("inf"), -float("inf"), -0.0, 0.0, -1.0, 0.5,
              0.4999999999999999, 1.0, 2.5, 7.0, 9.0, 10.0]
    frame = pl.DataFrame({"v": values}, schema={"v": pl.Float64})
    assert_frame_equal(frame.select(got.alias("p")), frame.select(fresh.alias("p")))


def test_band_positions_of_other_edges_and_other_values_are_their_own() -> None:
    """Edges at -0.0 and 0.0 are told apart, another column or missing value is another
    expression, and a value that is not a column is built each time, not shared."""
    zero, neg = _bands("lt", 0.0), _bands("lt", -0.0)
    a, b = _band_position(pl.col("v"), zero), _band_position(pl.col("v"), neg)
    assert a is not None and b is not None and a is not b
    assert _band_position(pl.col("w"), zero) is not a
    assert _band_position(pl.col("v"), zero, 2) is not a
    computed = pl.col("v") * 2
    c, d = _band_position(computed, zero), _band_position(computed, zero)
    assert c is not None and d is not None and c is not d and c.meta.eq(d)
    mixed = Bands.model_validate({"levels": [{"name": "a", "lt": 1.0},
                                             {"name": "b", "ge": 1.0, "le": 2.0},
                                             {"name": "c", "gt": 2.0}]})
    assert _band_position(pl.col("v"), mixed) is None


def _roadmap(where: list[str | None], expr: str = "c0 + 1") -> hr.Roadmap:
    inds: list[dict[str, Any]] = []
    for i, w in enumerate(where):
        ind: dict[str, Any] = {"id": f"c{i}", "family": "process", "aggregate": "count",
                               "window": "7d"}
        if w is not None:
            ind["where"] = w
        inds.append(ind)
    inds.append({"id": "d", "family": "process", "expr": expr})
    return hr.Roadmap.model_validate({
        "id": "memo", "goal": "Weekly use", "data": {"events": {"user": None}},
        "indicators": inds, "stages": [{"id": "only"}],
    })


def test_a_text_checked_once_is_parsed_at_each_of_its_paths() -> None:
    """One ``where`` text at several indicators: each path has its parsed form (the same
    text and tree), and the analysis of the roadmap equals that of one whose texts differ
    only in spacing (each checked on its own)."""
    shared = analyze(_roadmap(["event == 'login'"] * 3 + ["event == 'call'"]))
    assert not shared.issues
    paths = [f"indicators[{i}].where" for i in range(4)]
    assert [shared.expressions[p].source for p in paths] == ["event == 'login'"] * 3 + [
        "event == 'call'"]
    apart = analyze(_roadmap(["event == 'login'", "event ==  'login'",
                              "event   == 'login'", "event == 'call'"]))
    assert not apart.issues
    for p in paths:
        assert shared.expressions[p].names == apart.expressions[p].names
    plan = hr.compile(_roadmap(["event == 'login'"] * 3 + [None]))
    events = pl.DataFrame({"account_id": ["a", "a", "b"], "event": ["login", "call", "login"],
                           "timestamp": [dt.datetime(2026, 6, 29, 9)] * 3})
    accounts = pl.DataFrame({"account_id": ["a", "b"]})
    got = hr.evaluate(plan, events, accounts, dt.date(2026, 6, 30)).indicators.sort(
        "account_id")
    assert got.select("c0", "c1", "c2", "c3").rows() == [(1, 1, 1, 2), (1, 1, 1, 1)]


@pytest.mark.parametrize(("where", "code"), [
    ("evnt == 'login'", "unknown_name"),
    ("event == ", "expr_syntax"),
    ("event", "expr_type"),
    ("count(event) > 1", None),
])
def test_a_bad_text_at_several_paths_is_reported_at_each(where: str, code: str | None) -> None:
    """A text with a problem at three indicators: the problem at each of the three paths,
    as a roadmap whose three texts differ in spacing reports it (same codes, messages,
    hints and columns), and none of the paths is in the parsed expressions."""
    shared = analyze(_roadmap([where] * 3))
    spaced = analyze(_roadmap([where, where + " ", where + "  "]))

    def key(issue: Any) -> tuple[Any, ...]:
        return (issue.code, issue.message, issue.hint, issue.location.path, issue.ctx)

    assert shared.issues
    if code is not None:
        assert {i.code for i in shared.issues} == {code}
    assert [key(i) for i in shared.issues] == [key(i) for i in spaced.issues]
    assert sorted({i.location.path for i in shared.issues}) == [
        f"indicators[{i}].where" for i in range(3)]
    assert not any(f"indicators[{i}].where" in shared.expressions for i in range(3))


def test_the_raw_aggregates_and_indicators_are_taken_as_their_expressions_read() -> None:
    """The column takes made from names (the raw aggregates renamed, the indicators and
    their bands) are those :func:`column_take` reads from the expressions, on the B2B
    example (previous windows included) and a roadmap whose raw names repeat none."""
    for plan in (hr.compile(hr.load(B2B)), hr.compile(_roadmap(["event == 'login'"] * 2))):
        program = Evaluator(plan).programs[0]
        key = plan.account_key
        raw = program._join_parts(key)[2]
        assert program._take("raw", key, raw) == column_take(*raw)
        assert program._take("indicators", key, []) == column_take(
            key, "roadmap", *program._indicator_cols)
    b2b = Evaluator(hr.compile(hr.load(B2B))).programs[0]
    take = b2b._take("raw", "account_id", [])
    assert take is not None and take.names != take.sources
    assert any(n.endswith("__prev") for n in take.names)
