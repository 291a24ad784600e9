"""The one-Int64 billionths of a float value (``exact_one_limb``), made without a
float-to-integer cast, are the integers of the two limbs (``exact_limbs``) combined; a total
of billionths read back as a double (``from_grid``: one division up to 2**53, the decimal
text beyond) is the double nearest it, as Python's ``total / 10**9``."""

from __future__ import annotations

from typing import Literal

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from healthrules.aggregates import EXACT_SCALE, exact_limbs, exact_one_limb, from_grid, quantise

# |v| < 2**51: the range where the limbs are read from the bits of a double
LIMIT = 2.0**51 - 1


def _by_limbs(x: pl.Expr) -> pl.Expr:
    hi, lo = exact_limbs(x)
    return hi * EXACT_SCALE + lo  # Int64, wrapping beyond about 9.2e9 as the one limb does


def _both(values: list[float | None], engine: Literal["in-memory", "streaming"] = "in-memory",
          ) -> tuple[list[int | None], list[int | None]]:
    frame = pl.LazyFrame({"v": values}, schema={"v": pl.Float64})
    got = frame.select(exact_one_limb(pl.col("v")).alias("one"),
                       _by_limbs(pl.col("v")).alias("two")).collect(engine=engine)
    assert got.schema == pl.Schema({"one": pl.Int64, "two": pl.Int64})
    return got["one"].to_list(), got["two"].to_list()


EDGES: list[float | None] = [
    0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 0.5e-9, 1.5e-9, 2.5e-9, -2.5e-9,
    3.5e-9, 0.4999999999e-9, 1 - 2.0**-53, -(1 - 2.0**-53), 0.9999999995, -0.9999999995,
    0.1, 0.3, 1 / 3, -1 / 3, 59.9, 2.0**32 + 0.5, 4.6e9 - 0.25, -4.6e9 + 0.25, 9.2e9, -9.2e9,
    9.223e9, 4.503599627370497e6, 2.0**52 / 1e9, 1e15 + 0.5, 2.0**50 + 0.5, -(2.0**50 + 0.5),
    LIMIT, -LIMIT, None]


def test_edges_match_the_two_limbs_on_both_engines() -> None:
    for engine in ("in-memory", "streaming"):
        one, two = _both(EDGES, engine)
        assert one == two
    one, _ = _both(EDGES)
    # and the Python billionths wherever the Int64 does not wrap (|v| below about 9.2e9)
    for v, got in zip(EDGES, one, strict=True):
        if v is None:
            assert got is None
        elif abs(v) < 9.2e9:
            assert got == quantise(v), v


@given(st.lists(st.one_of(st.none(), st.floats(min_value=-LIMIT, max_value=LIMIT,
                                                  allow_nan=False, allow_subnormal=True)),
                min_size=1, max_size=40))
def test_any_values_below_two_to_the_51_match_the_two_limbs(values: list[float | None]) -> None:
    one, two = _both(values)
    assert one == two
    assert [v is None for v in values] == [q is None for q in one]


# --------------------------------------------------------------------------- from_grid

GRID_EDGES = [0, 1, -1, 5, 999_999_999, 1_000_000_001, 2**53 - 1, 2**53, 2**53 + 1, -2**53,
              -2**53 - 1, 2**53 + 3, 10**17 + 7, -(10**17) - 7, 2**62, -(2**62), 2**63 - 1,
              -(2**63), 123_456_789_012_345_678]


def _from_grid(totals: list[int | None], dtype: pl.DataType,
               engine: Literal["in-memory", "streaming"] = "in-memory") -> list[float | None]:
    frame = pl.LazyFrame({"t": totals}, schema={"t": dtype})
    got = frame.select(from_grid(pl.col("t")).alias("x")).collect(engine=engine)
    assert got.schema == pl.Schema({"x": pl.Float64})
    return got["x"].to_list()


def test_from_grid_is_the_nearest_double_on_both_sides_of_two_to_the_53() -> None:
    want = [t / 10**9 for t in GRID_EDGES]
    for engine in ("in-memory", "streaming"):
        assert _from_grid([*GRID_EDGES, None], pl.Int64(), engine) == [*want, None]
        assert _from_grid(GRID_EDGES, pl.Int128(), engine) == want
    wide = [2**100 + 1, -(2**90) - 3, 10**30]  # two-limb totals are Int128
    assert _from_grid(wide, pl.Int128()) == [t / 10**9 for t in wide]


def test_from_grid_on_one_row_divides_element_by_element() -> None:
    # a one-row frame: no reciprocal multiply (which gives other bits for many totals)
    for t in (1, 7, 333_333_333_333, 2**53 - 5, 98_765_432_123_457, -3):
        for engine in ("in-memory", "streaming"):
            assert _from_grid([t], pl.Int64(), engine) == [t / 10**9]


@given(st.lists(st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
                          st.integers(min_value=-(2**54), max_value=2**54)),
                min_size=1, max_size=30))
def test_from_grid_is_python_division(totals: list[int | None]) -> None:
    assert _from_grid(totals, pl.Int64()) == [None if t is None else t / 10**9 for t in totals]
