"""A ``UInt64`` int value column holding a value beyond the Int64 range: refused wherever the
evaluation is handed that row, whether or not an indicator adds it, and an input that never
hands the row over (a database source reads only its read range) gives the answer of the
events without it.

The data contract declares an ``int`` a 64-bit signed integer; the value cannot be read as
one, so a row that carries it is refused like a CSV ``1.5`` in an ``int`` column (a
property of the input, not of which windows read it: ``evaluate`` at another date, or
history, would otherwise accept and refuse the same frame). What the check cannot see it
never reads, so no answer depends on it (docs/semantics.md, "Input checking").
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

import healthrules as hr
from healthrules.loader import load_text

BIG = 2**63


def _plan(where: str | None = None) -> hr.Plan:
    total: dict[str, object] = {"id": "total", "family": "process", "aggregate": "sum",
                                "of": "q", "window": "30d"}
    if where is not None:
        total["where"] = where
    return hr.compile(load_text(json.dumps({
        "id": "u", "goal": "g",
        "data": {"events": {"user": None, "values": {"q": "int", "k": "int"}}},
        "indicators": [total, {"id": "n", "family": "process", "aggregate": "count",
                               "window": "30d"}],
        "stages": [{"id": "s"}]})))


def _events(at: dt.datetime) -> pl.DataFrame:
    return pl.DataFrame({
        "account_id": ["a", "a"], "event": ["e", "e"],
        "timestamp": [dt.datetime(2026, 6, 20), at],
        "q": pl.Series([5, BIG], dtype=pl.UInt64), "k": pl.Series([1, 2], dtype=pl.UInt64)})


ACCOUNTS = pl.DataFrame({"account_id": ["a"]})
INSIDE = dt.datetime(2026, 6, 25)
OUTSIDE = dt.datetime(2025, 1, 1)


@pytest.mark.parametrize(("where", "at"), [
    (None, INSIDE),  # read by the sum
    ("k == 1", INSIDE),  # a row the pass reads, its value filtered out
    (None, OUTSIDE),  # outside every window of a frame handed over whole
])
def test_a_polars_frame_with_a_value_beyond_int64_is_refused(
        where: str | None, at: dt.datetime) -> None:
    with pytest.raises(hr.InputDataError, match=r"int value column 'q' holds 1 value\(s\) "
                       r"beyond the Int64 range \(e.g. an event of account 'a'\)"):
        hr.evaluate(_plan(where), _events(at), ACCOUNTS, "2026-06-30")


def test_a_database_hands_over_only_its_read_range(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    from healthrules.sources import DuckDBSource

    def table(at: dt.datetime) -> DuckDBSource:
        path = tmp_path / f"{at:%Y}.duckdb"
        frame = _events(at)  # noqa: F841 (read by name by the SQL below)
        con = duckdb.connect(str(path))
        con.execute("CREATE TABLE events AS SELECT * FROM frame")
        con.close()
        return DuckDBSource(path, table="events")

    with pytest.raises(hr.InputDataError, match="beyond the Int64 range"):
        hr.evaluate(_plan(), table(INSIDE), ACCOUNTS, "2026-06-30")
    got = hr.evaluate(_plan(), table(OUTSIDE), ACCOUNTS, "2026-06-30")
    # the row outside the read range is never read: the answer of the events without it
    want = hr.evaluate(_plan(), _events(OUTSIDE).head(1), ACCOUNTS, "2026-06-30")
    assert got.indicators.equals(want.indicators)
    assert got.indicators.select("total", "n").row(0) == (5, 1)
