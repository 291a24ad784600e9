"""The parts of healthrules.sources that need no database: the SQL text of a read, the
lazy scan over a source (polars' own pushdown applied on top), the zone of timestamps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from healthrules.errors import InputDataError
from healthrules.sources import (
    ReadRange,
    Source,
    SourceError,
    SQLSource,
    is_input,
    pushdown_sql,
    resolve,
    source_of,
)
from healthrules.sources.base import conform, in_zone
from healthrules.sources.sql import base_of, quote, table_name, timestamp_literal

NAIVE = pl.Datetime("us")
UTC = pl.Datetime("us", "UTC")


def test_identifiers_are_quoted() -> None:
    assert quote("ts") == '"ts"'
    assert quote('we"ird') == '"we""ird"'
    assert table_name("analytics.events") == '"analytics"."events"'
    assert table_name("db.schema.t") == '"db"."schema"."t"'
    for bad in ("events; DROP TABLE x", "a b", "", "a..b", "1abc", "a.b.c.d"):
        with pytest.raises(ValueError, match="not a table name"):
            table_name(bad)


def test_a_query_becomes_a_subquery_and_one_of_table_or_query_is_required() -> None:
    assert base_of(None, "  SELECT 1 ;  ") == "(SELECT 1)"
    assert base_of("events", None) == '"events"'
    with pytest.raises(ValueError, match="exactly one"):
        base_of("a", "SELECT 1")
    with pytest.raises(ValueError, match="exactly one"):
        base_of(None, None)
    with pytest.raises(ValueError, match="empty"):
        base_of(None, " ; ")


def test_timestamp_literals_follow_the_column() -> None:
    berlin = dt.datetime(2026, 6, 24, tzinfo=ZoneInfo("Europe/Berlin"))
    # a zoned column: the instant, in UTC
    assert timestamp_literal(berlin, UTC) == \
        "CAST('2026-06-23 22:00:00.000000+00:00' AS TIMESTAMP WITH TIME ZONE)"
    # a naive or date column: the wall time in the events' zone
    assert timestamp_literal(berlin, NAIVE) == "CAST('2026-06-24 00:00:00.000000' AS TIMESTAMP)"
    assert timestamp_literal(dt.datetime(2026, 6, 24, 9, 30, 1, 5), pl.Date()) == \
        "CAST('2026-06-24 09:30:01.000005' AS TIMESTAMP)"
    with pytest.raises(ValueError, match="naive"):
        timestamp_literal(dt.datetime(2026, 6, 24), UTC)


def test_pushdown_sql() -> None:
    schema = pl.Schema({"a": pl.String(), "ts": NAIVE, "x": pl.Float64()})
    rng: ReadRange = (dt.datetime(2026, 6, 1), dt.datetime(2026, 7, 1))
    assert pushdown_sql('"t"', schema, ["a", "ts"], "ts", rng) == (
        'SELECT "a", "ts" FROM "t" AS "healthrules_source" WHERE ("ts" >= '
        "CAST('2026-06-01 00:00:00.000000' AS TIMESTAMP) AND \"ts\" < "
        "CAST('2026-07-01 00:00:00.000000' AS TIMESTAMP)) OR \"ts\" IS NULL")
    # no lower bound (a window over all history), no range, every column
    assert pushdown_sql('"t"', schema, None, "ts", (None, rng[1])) == (
        'SELECT * FROM "t" AS "healthrules_source" WHERE ("ts" < '
        "CAST('2026-07-01 00:00:00.000000' AS TIMESTAMP)) OR \"ts\" IS NULL")
    assert pushdown_sql("(SELECT 1)", schema, ["a"], None, None) == \
        'SELECT "a" FROM (SELECT 1) AS "healthrules_source"'


class FrameSource(Source):
    """A source over a polars frame, in batches: what the generic scan does on top of a
    source's SQL (the SQL text here only records what was asked)."""

    name = "frames"

    def __init__(self, frame: pl.DataFrame, batch: int = 3) -> None:
        super().__init__()
        self.frame = frame
        self.batch = batch
        self.asked: list[tuple[Sequence[str] | None, ReadRange | None]] = []

    def schema(self) -> pl.Schema:
        return self.frame.schema

    def sql_for(self, columns: Sequence[str] | None, time_column: str | None,
                read_range: ReadRange | None) -> str:
        self.asked.append((columns, read_range))
        return pushdown_sql('"frame"', self.frame.schema, columns, time_column, read_range)

    def _run(self, sql: str, batch_size: int | None) -> Iterator[pl.DataFrame]:
        cols = self.asked[-1][0] or self.frame.columns
        rng = self.asked[-1][1]
        frame = self.frame.select(cols)
        if rng is not None:
            ts = pl.col("ts")
            keep = ts < rng[1]
            if rng[0] is not None:
                keep = keep & (ts >= rng[0])
            frame = frame.filter(keep | ts.is_null())
        yield from frame.iter_slices(self.batch)


FRAME = pl.DataFrame({
    "a": ["x", "y", "x", "z", "y", "x", "z"],
    "ts": [dt.datetime(2026, 6, d) for d in (1, 2, 3, 4, 5, 6, 7)],
    "v": [1.0, 2.0, None, 4.0, 5.0, 6.0, 7.0],
    "extra": [0] * 7,
})


def test_a_scan_reads_once_and_polars_pushdown_applies_on_top() -> None:
    src = FrameSource(FRAME)
    rng: ReadRange = (dt.datetime(2026, 6, 2), dt.datetime(2026, 6, 7))
    lf = src.scan(["a", "ts", "v"], "ts", rng)
    assert lf.collect_schema().names() == ["a", "ts", "v"]
    assert src.queries == []  # lazy: nothing ran
    got = lf.filter(pl.col("a") != "z").select("a", "v").collect()
    assert_frame_equal(got, pl.DataFrame({"a": ["y", "x", "y", "x"],
                                          "v": [2.0, None, 5.0, 6.0]}))
    assert src.rows_read == 5  # 2..6 June
    assert lf.head(2).collect().height == 2
    both = pl.collect_all([lf.select(pl.len()), lf.select(pl.col("v").sum())])
    assert both[0].item() == 5 and both[1].item() == 17.0
    assert len(src.queries) == 1  # every collect of the frame shares the one read
    assert "PYTHON[frames]" in lf.explain() and "WHERE" in lf.explain()


def test_a_scan_of_a_missing_column_is_an_input_error() -> None:
    with pytest.raises(SourceError, match="has no column 'nope'") as err:
        FrameSource(FRAME).scan(["a", "nope"])
    assert isinstance(err.value, InputDataError)


def test_zoned_columns_are_shown_in_the_roadmaps_zone() -> None:
    schema = pl.Schema({"ts": pl.Datetime("us", "Etc/UTC"), "n": NAIVE, "d": pl.Date()})
    zoned = in_zone(schema, "Europe/Berlin")
    assert zoned["ts"] == pl.Datetime("us", "Europe/Berlin")
    assert zoned["n"] == NAIVE and zoned["d"] == pl.Date()
    assert in_zone(schema, None) == schema
    frame = pl.DataFrame({"ts": [dt.datetime(2026, 6, 30, 22)], "n": [dt.datetime(2026, 1, 1)],
                          "d": [dt.date(2026, 1, 1)]},
                         schema={"ts": pl.Datetime("ns", "Etc/UTC"), "n": NAIVE, "d": pl.Date})
    out = conform(frame, zoned)
    assert out.schema == zoned
    assert out["ts"].dt.replace_time_zone(None).item() == dt.datetime(2026, 7, 1, 0)
    # the same instant
    assert out["ts"].dt.epoch("us").item() == frame["ts"].dt.epoch("us").item()


def test_what_resolve_takes() -> None:
    import pyarrow as pa

    table = FRAME.to_arrow()
    for obj in (FRAME, FRAME.lazy(), table, table.to_reader(), table.to_batches()[0],
                FrameSource(FRAME)):
        assert is_input(obj)
        assert_frame_equal(resolve(obj, ["a", "v"]).collect(), FRAME.select("a", "v"))
    assert not is_input([1, 2]) and not is_input({"a": [1]})
    with pytest.raises(TypeError, match="accounts must be"):
        source_of({"a": [1]}, "accounts")
    assert isinstance(pa.table({"a": [1]}), pa.Table)


def test_sql_sources_check_their_arguments() -> None:
    with pytest.raises(ValueError, match="engine"):
        SQLSource("postgresql://h/db", table="t", engine="odbc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="exactly one"):
        SQLSource("postgresql://h/db")
    src = SQLSource("postgresql://me:pw@h:5432/db", query="SELECT 1")
    assert src.where() == "postgresql://me:***@h:5432/db"
    assert "pw" not in repr(src)


def test_the_dialect_follows_the_uri_scheme() -> None:
    from healthrules.sources.sql import ANSI, dialect_of

    assert dialect_of("postgresql://h/db") is ANSI
    assert dialect_of("postgresql+psycopg://h/db") is ANSI
    assert dialect_of("oracle://h/db") is ANSI  # unknown: the standard's spelling
    # SQLite compares no timestamps exactly: the range is applied in polars, not in the SQL
    sqlite = dialect_of("sqlite:///x.db")
    assert not sqlite.range_in_sql and ANSI.range_in_sql
    assert pushdown_sql('"t"', pl.Schema({"a": pl.String(), "ts": NAIVE}), ["a"], "ts",
                        (None, dt.datetime(2026, 7, 1)), dialect=sqlite) == \
        'SELECT "a", "ts" FROM "t" AS "healthrules_source"'
    schema = pl.Schema({"a": pl.String(), "ts": UTC, "d": NAIVE})
    rng: ReadRange = (dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
                      dt.datetime(2026, 7, 1, tzinfo=dt.UTC))
    mysql = SQLSource("mysql://u@h:3306/db", table="app.events")
    assert mysql.base == "`app`.`events`"
    assert pushdown_sql(mysql.base, schema, ["a", "ts"], "ts", rng, dialect=mysql.dialect) == (
        "SELECT `a`, `ts` FROM `app`.`events` AS `healthrules_source` WHERE (`ts` >= "
        "CAST('2026-06-01 00:00:00.000000' AS DATETIME(6)) AND `ts` < "
        "CAST('2026-07-01 00:00:00.000000' AS DATETIME(6))) OR `ts` IS NULL")
    bq = SQLSource("bigquery://project", table="ds.events").dialect
    assert pushdown_sql("`t`", schema, ["d"], "d", rng, dialect=bq).endswith(
        "WHERE (`d` >= CAST('2026-06-01 00:00:00.000000' AS DATETIME) AND `d` < "
        "CAST('2026-07-01 00:00:00.000000' AS DATETIME)) OR `d` IS NULL")
    assert "CAST('2026-06-01 00:00:00.000000+00:00' AS TIMESTAMP)" in pushdown_sql(
        "`t`", schema, ["ts"], "ts", rng, dialect=bq)
    snow = SQLSource("snowflake://u@acct/db", table="events").dialect
    assert "AS TIMESTAMP_TZ)" in pushdown_sql('"t"', schema, None, "ts", rng, dialect=snow)
    assert quote("we`ird", bq) == "`we``ird`"


def test_the_range_filter_of_an_arrow_stream_is_exact() -> None:
    from healthrules.sources.arrow import range_filter

    start = dt.datetime(2026, 6, 1, tzinfo=ZoneInfo("Europe/Berlin"))
    end = dt.datetime(2026, 6, 2, tzinfo=ZoneInfo("Europe/Berlin"))
    ns = pl.Datetime("ns")
    wall = pl.DataFrame({"ts": [
        dt.datetime(2026, 5, 31, 23, 59, 59, 999999), dt.datetime(2026, 6, 1),
        dt.datetime(2026, 6, 1, 23, 59, 59, 999999), dt.datetime(2026, 6, 2), None]},
        schema={"ts": ns})
    wall = wall.with_columns(pl.col("ts") + pl.duration(nanoseconds=500))
    # naive (wall time of the zone), nanoseconds: 23:59:59.9999995 is before the start
    got = wall.filter(range_filter("ts", ns, (start, end)))["ts"].to_list()
    assert got == [*wall["ts"].to_list()[1:3], None]
    zoned = pl.DataFrame({"ts": [dt.datetime(2026, 5, 31, 21, 59), dt.datetime(2026, 5, 31, 22),
                                 dt.datetime(2026, 6, 1, 22)]},
                         schema={"ts": pl.Datetime("us", "UTC")})
    got = zoned.filter(range_filter("ts", zoned.schema["ts"], (start, end)))
    assert got["ts"].dt.replace_time_zone(None).to_list() == [dt.datetime(2026, 5, 31, 22)]
    dates = pl.DataFrame({"d": [dt.date(2026, 5, 31), dt.date(2026, 6, 1), dt.date(2026, 6, 2)]})
    got = dates.filter(range_filter("d", pl.Date(), (start, end)))
    assert got["d"].to_list() == [dt.date(2026, 6, 1)]


def test_an_arrow_stream_is_read_batch_by_batch_and_once() -> None:
    import pyarrow as pa

    from healthrules.sources.arrow import ArrowStreamSource

    table = FRAME.to_arrow()
    src = ArrowStreamSource(pa.RecordBatchReader.from_batches(table.schema,
                                                              table.to_batches(2)))
    assert src.schema() == FRAME.schema
    rng: ReadRange = (dt.datetime(2026, 6, 3), dt.datetime(2026, 6, 5))
    lf = resolve(src, ["a", "v"], "ts", rng)
    assert_frame_equal(lf.collect(), pl.DataFrame({"a": ["x", "z"], "v": [None, 4.0]}))
    assert src.rows_read == 2
    assert src.last_query is not None and "FROM arrow_stream" in src.last_query
    with pytest.raises(SourceError, match="read only once"):
        resolve(src, ["a"], "ts", rng).collect()


@pytest.mark.parametrize("module", ["healthrules.sources", "healthrules.sources.resolve",
                                    "healthrules.sources.duckdb", "healthrules.sources.sql",
                                    "healthrules.sources.arrow"])
def test_the_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    failures, tried = doctest.testmod(importlib.import_module(module),
                                      optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0
