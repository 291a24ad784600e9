"""Bands read by position: a binary search of the cut points gives each value's band, and
band names and band scores are read from literal tables by it (docs/performance.md, "After
the events pass, second round").

The positional form must give the band of the when/then chain over the levels' edges for
every value (cut points themselves, -0.0, NaN, infinities, null, integers), and the band
scores those of the band names' positions as they were read before (an ``Enum`` cast).
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from healthrules.engine.assemble import _band_chain, _band_expr, _band_position, _band_score
from healthrules.roadmap import Bands

EDGE_VALUES = [-0.0, 0.0, math.nan, math.inf, -math.inf, None, 1e-300, -1e-300]


def _bands(cuts: list[float], inclusive: bool, direction: str,
           scores: list[float | None]) -> Bands:
    names = [f"b{i}" for i in range(len(cuts) + 1)]
    upper, lower = ("le", "gt") if inclusive else ("lt", "ge")
    levels: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        level: dict[str, Any] = {"name": name}
        if i > 0:
            level[lower] = cuts[i - 1]
        if i < len(cuts):
            level[upper] = cuts[i]
        if scores[i] is not None:
            level["score"] = scores[i]
        levels.append(level)
    return Bands.model_validate({"direction": direction, "levels": levels})


def _enum_score(band: pl.Expr, bands: Bands, missing: float, present: bool) -> pl.Expr:
    """The band score as it was read before: the name's position in an ``Enum``."""
    scores = bands.level_scores()
    names = list(scores)
    values = [1.0 if present else float(scores[n]) for n in names]
    return pl.lit(pl.Series([*values, missing], dtype=pl.Float64)).gather(
        band.cast(pl.Enum(names)).to_physical().fill_null(len(names)))


def _check(bands: Bands, values: pl.Series) -> None:
    x = pl.col("x")
    frame = pl.DataFrame({"x": values})
    got = frame.select(
        _band_expr(x, bands).alias("band"), _band_chain(x, bands).alias("chain"),
        *[_band_score(_band_chain(x, bands), bands, m, present=p, value=x).alias(f"s{i}")
          for i, (m, p) in enumerate([(0.0, False), (50.0, False), (1.0, True), (0.0, True)])],
        *[_enum_score(_band_chain(x, bands), bands, m, p).alias(f"e{i}")
          for i, (m, p) in enumerate([(0.0, False), (50.0, False), (1.0, True), (0.0, True)])],
    )
    assert got["band"].to_list() == got["chain"].to_list(), (values.to_list(), got)
    assert got.schema["band"] == pl.String
    for i in range(4):
        assert got[f"s{i}"].to_list() == got[f"e{i}"].to_list(), (values.to_list(), got)


CUTS = st.lists(st.one_of(st.integers(-1000, 1000).map(float),
                          st.floats(-1e6, 1e6, allow_nan=False), st.just(0.0)),
                min_size=1, max_size=6, unique=True).map(sorted)


@given(cuts=CUTS, inclusive=st.booleans(),
       direction=st.sampled_from(["higher_is_better", "lower_is_better"]),
       data=st.data())
def test_positions_give_the_chains_band_and_the_names_score(
        cuts: list[float], inclusive: bool, direction: str, data: st.DataObject) -> None:
    scores = data.draw(st.lists(st.one_of(st.none(), st.floats(0, 100)),
                                min_size=len(cuts) + 1, max_size=len(cuts) + 1))
    bands = _bands(cuts, inclusive, direction, scores)
    extra = data.draw(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                         st.none()), max_size=8))
    nudged = [c + d for c in cuts for d in (-1e-9, 1e-9)]
    values = [*cuts, *[-c for c in cuts], *nudged, *EDGE_VALUES, *extra]
    _check(bands, pl.Series("x", values, dtype=pl.Float64))


def test_integer_values_and_a_one_row_frame() -> None:
    bands = _bands([0.0, 10.0, 20.0], True, "higher_is_better", [None] * 4)
    _check(bands, pl.Series("x", [-5, 0, 1, 10, 11, 20, 21, None], dtype=pl.Int64))
    for v in (0, 10, 15, None):
        _check(bands, pl.Series("x", [v], dtype=pl.Int64))
    lower = _bands([0.0, 10.0], False, "lower_is_better", [100.0, None, 0.0])
    _check(lower, pl.Series("x", [-1, 0, 9, 10, None], dtype=pl.Int64))


def test_mixed_edge_kinds_keep_the_chain() -> None:
    bands = Bands.model_validate({"levels": [
        {"name": "low", "lt": 1}, {"name": "mid", "ge": 1, "le": 5}, {"name": "high", "gt": 5}]})
    assert _band_position(pl.col("x"), bands) is None
    frame = pl.DataFrame({"x": [0.0, 1.0, 5.0, 5.5, math.nan, None]})
    got = frame.select(_band_expr(pl.col("x"), bands).alias("band"),
                       _band_score(_band_expr(pl.col("x"), bands), bands, 0.0,
                                   value=pl.col("x")).alias("score"))
    assert got["band"].to_list() == ["low", "mid", "mid", "high", "high", None]
    assert got["score"].to_list() == [0.0, 50.0, 50.0, 100.0, 100.0, 0.0]


def test_positions_are_the_levels_and_missing_for_null() -> None:
    bands = _bands([1.0, 2.0], False, "higher_is_better", [None] * 3)
    position = _band_position(pl.col("x"), bands, missing=3)
    assert position is not None
    got = pl.DataFrame({"x": [0.5, 1.0, 2.0, None, math.nan]}).select(position.alias("p"))
    assert got["p"].to_list() == [0, 1, 2, 3, 2]
