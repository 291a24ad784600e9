"""DuckDB as a source: a real DuckDB file much larger than what a roadmap reads.

The events table spans two years; the roadmap's widest window is 60 days. Each test checks
the SQL that ran (the source keeps every query text and the rows it returned, and DuckDB's
EXPLAIN shows the filter and the projection in the table scan) and that the results equal
those of the same rows evaluated from a polars frame.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.errors import InputDataError
from healthrules.sources import DuckDBSource, SourceError, resolve
from healthrules.sources.arrow import ArrowStreamSource
from healthrules.testing.strategies import inputs_for, roadmaps

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2026, 6, 30)
TOTAL = 600_000  # events over two years, 105 s apart

ROADMAP = {
    "id": "pushdown", "goal": "Weekly use",
    "data": {"events": {"user": "user_id", "values": {"value": "float"}},
             "accounts": {"attributes": {"plan": "str"}}},
    "indicators": [
        {"id": "logins_7d", "family": "process", "aggregate": "count",
         "where": "event == 'login'", "window": "7d"},
        {"id": "users_30d", "family": "process", "aggregate": "distinct", "window": "30d"},
        {"id": "days_14d", "family": "process", "aggregate": "active_days", "window": "14d"},
        {"id": "value_30d", "family": "outcome", "aggregate": "sum", "of": "value",
         "window": "30d", "compare": "previous"},
        {"id": "last_ticket", "family": "process", "aggregate": "days_since_last",
         "where": "event == 'ticket'", "window": "30d"},
    ],
    "stages": [{"id": "operation", "actions": [{
        "id": "quiet", "kind": "challenge", "when": "logins_7d < 20",
        "do": "Call them: {logins_7d} logins in a week", "owner": "csm"}]}],
}
WIDEST = dt.timedelta(days=60)  # value_30d compares with the 30 days before


def _evaluations_equal(a: Any, b: Any) -> None:
    for name in ("indicators", "stages", "scores", "actions", "conditions"):
        assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    assert a.diagnostics == b.diagnostics


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file: 600,000 events over two years (a few with a null time or value, and
    a column no roadmap reads), 520 accounts (20 without events)."""
    path = tmp_path_factory.mktemp("duck") / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute(f"""
        CREATE TABLE events AS SELECT
            'a' || lpad((i % 500)::VARCHAR, 3, '0') AS account_id,
            'u' || (i % 7)::VARCHAR AS user_id,
            CASE i % 3 WHEN 0 THEN 'login' WHEN 1 THEN 'feature_used' ELSE 'ticket' END
                AS event,
            CASE WHEN i % 9973 = 0 THEN NULL
                 ELSE TIMESTAMP '2024-07-01 00:00:00' + to_seconds(i * 105) END AS timestamp,
            CASE WHEN i % 101 = 0 THEN NULL ELSE (i % 13)::DOUBLE END AS value,
            repeat('x', 40) AS payload
        FROM range({TOTAL}) t(i)""")
    con.execute("""
        CREATE TABLE accounts AS SELECT
            'a' || lpad(i::VARCHAR, 3, '0') AS account_id,
            CASE WHEN i % 4 = 0 THEN 'pro' ELSE 'basic' END AS plan,
            'note' AS notes
        FROM range(520) t(i)""")
    con.close()
    return path


@pytest.fixture(scope="module")
def frames(warehouse: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The whole tables as polars frames (what a user without DuckDB would evaluate)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.table("events").pl(), con.table("accounts").pl()
    finally:
        con.close()


def _in_range(events: pl.DataFrame, start: dt.datetime, end: dt.datetime) -> int:
    ts = pl.col("timestamp")
    return events.filter(((ts >= start) & (ts < end)) | ts.is_null()).height


def test_the_read_range_and_the_columns_are_in_the_sql_that_ran(
        warehouse: Path, frames: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, accounts = frames
    roadmap = hr.Roadmap.model_validate(ROADMAP)
    src = DuckDBSource(warehouse, table="events")
    acc = DuckDBSource(warehouse, table="accounts")
    got = hr.evaluate(roadmap, src, acc, AS_OF)

    start, end = hr.engine.read_range(roadmap, events, accounts, AS_OF)
    assert start is not None and end - start == WIDEST
    assert len(src.queries) == 1, src.queries  # one read per evaluation
    sql = " ".join(src.queries[0].split())
    assert sql == (
        'SELECT "account_id", "event", "timestamp", "user_id", "value" FROM "events" AS '
        '"healthrules_source" WHERE ("timestamp" >= CAST(\'2026-05-02 00:00:00.000000\' AS '
        'TIMESTAMP) AND "timestamp" < CAST(\'2026-07-01 00:00:00.000000\' AS TIMESTAMP)) '
        'OR "timestamp" IS NULL')
    # DuckDB sent only the rows of the range (and the null-time ones), a small share
    assert src.rows_read == _in_range(events, start, end)
    assert src.rows_read is not None and src.rows_read * 10 < TOTAL
    # the accounts: the key and the declared attributes only
    assert acc.last_query == 'SELECT "account_id", "plan" FROM "accounts" AS "healthrules_source"'

    _evaluations_equal(got, hr.evaluate(roadmap, events, accounts, AS_OF))
    assert got.diagnostics["events_null_timestamp"] > 0  # the null-time rows were read
    assert got.actions.height > 0


def test_duckdb_plans_the_filter_and_projection_into_its_table_scan(warehouse: Path) -> None:
    src = DuckDBSource(warehouse, table="events")
    plan = src.explain(["account_id", "timestamp"], "timestamp",
                       (dt.datetime(2026, 5, 2), dt.datetime(2026, 7, 1)))
    scan = plan[plan.index("Seq Scan"):]
    # the filter is applied by the scan itself (DuckDB drops "< 2026-07-01": its statistics
    # show no later row), and only the two columns are read
    assert "Filters:" in scan and "timestamp >= '2026-05-02 00:00:00'" in scan
    assert "Projections: timestamp, account_id" in scan
    assert "payload" not in plan and "user_id" not in plan


def test_the_query_ran_in_duckdb_is_the_one_recorded(warehouse: Path) -> None:
    """DuckDB's own record: the profiler's JSON output of the last query names it."""
    src = DuckDBSource(warehouse, table="events")
    con = src.connection()
    rng = (dt.datetime(2026, 6, 1), dt.datetime(2026, 7, 1))
    frame = src.scan(["account_id", "timestamp"], "timestamp", rng).collect()
    assert frame.columns == ["account_id", "timestamp"]
    assert src.rows_read == frame.height
    # running the recorded text again in DuckDB returns the same rows
    again = con.sql(src.last_query).pl()
    assert_frame_equal(again, frame)
    assert frame["timestamp"].drop_nulls().min() >= rng[0]  # type: ignore[operator]
    assert frame["timestamp"].drop_nulls().max() < rng[1]  # type: ignore[operator]


def test_a_relation_an_arrow_table_and_an_arrow_stream_give_the_same_result(
        warehouse: Path, frames: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, accounts = frames
    roadmap = hr.Roadmap.model_validate(ROADMAP)
    want = hr.evaluate(roadmap, events, accounts, AS_OF)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rel = con.sql("SELECT * FROM events WHERE account_id < 'a250'")
        part_events = events.filter(pl.col("account_id") < "a250")
        got = hr.evaluate(roadmap, rel, con.table("accounts"), AS_OF)
        _evaluations_equal(got, hr.evaluate(roadmap, part_events, accounts, AS_OF))
    finally:
        con.close()

    table = events.to_arrow()
    _evaluations_equal(hr.evaluate(roadmap, table, accounts.to_arrow(), AS_OF), want)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(50_000))
    _evaluations_equal(hr.evaluate(roadmap, reader, accounts, AS_OF), want)
    # a stream is cut to the read range batch by batch: only those rows are kept
    stream = ArrowStreamSource(table.to_reader(max_chunksize=50_000))
    _evaluations_equal(hr.evaluate(roadmap, stream, accounts, AS_OF), want)
    start, end = hr.engine.read_range(roadmap, events, accounts, AS_OF)
    assert start is not None
    assert stream.rows_read == _in_range(events, start, end)

    class OnlyCapsule:  # any producer of the Arrow PyCapsule stream interface
        def __init__(self, t: pa.Table) -> None:
            self.t = t

        def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
            return self.t.__arrow_c_stream__(requested_schema)

    _evaluations_equal(hr.evaluate(roadmap, OnlyCapsule(table), accounts, AS_OF), want)


def test_history_reads_from_the_first_date_minus_the_widest_window(
        warehouse: Path, frames: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, accounts = frames
    roadmap = hr.Roadmap.model_validate(ROADMAP)
    src = DuckDBSource(warehouse, table="events")
    got = hr.history(roadmap, src, DuckDBSource(warehouse, table="accounts"),
                     "2026-05-01", "2026-06-30", every="1w")
    want = hr.history(roadmap, events, accounts, "2026-05-01", "2026-06-30", every="1w")
    for name in ("indicators", "stages", "scores", "actions"):
        assert_frame_equal(getattr(got, name), getattr(want, name), check_exact=True)
    assert len(src.queries) == 1
    # the end of the first date of the grid, minus the 60 days of the widest window
    first = dt.datetime.combine(got.dates[0] + dt.timedelta(days=1), dt.time()) - WIDEST
    assert f"CAST('{first:%Y-%m-%d %H:%M:%S}.000000' AS TIMESTAMP)" in src.queries[0]
    last = dt.datetime.combine(got.dates[-1] + dt.timedelta(days=1), dt.time())
    assert f"< CAST('{last:%Y-%m-%d %H:%M:%S}.000000' AS TIMESTAMP)" in src.queries[0]
    assert src.rows_read == _in_range(events, first, last)


def test_low_memory_reads_once_and_agrees(
        warehouse: Path, frames: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, accounts = frames
    roadmap = hr.Roadmap.model_validate(ROADMAP)
    src = DuckDBSource(warehouse, table="events")
    got = hr.evaluate(roadmap, src, accounts, AS_OF, low_memory=True)
    assert len(src.queries) == 1  # the distinct-count branches share the one read
    _evaluations_equal(got, hr.evaluate(roadmap, events, accounts, AS_OF))


def test_events_query_shows_the_sql_and_reads_nothing(warehouse: Path) -> None:
    roadmap = hr.Roadmap.model_validate(ROADMAP)
    src = DuckDBSource(warehouse, table="events")
    plan = hr.engine.events_query(roadmap, src, DuckDBSource(warehouse, table="accounts"),
                                  AS_OF).explain()
    assert "PYTHON[duckdb] SCAN" in plan
    assert "WHERE (\"timestamp\" >= CAST('2026-05-02" in plan
    assert src.queries == []


def test_zoned_timestamps_are_read_as_the_same_instants_in_the_roadmaps_zone(
        tmp_path: Path) -> None:
    """A TIMESTAMPTZ column comes out of DuckDB in its session's zone; the read range is
    written as UTC instants, and the rows equal those of the polars frame in the zone."""
    path = tmp_path / "tz.duckdb"
    con = duckdb.connect(str(path))
    con.execute("""CREATE TABLE events AS SELECT 'a' || (i % 3)::VARCHAR AS account_id,
        'login' AS event, TIMESTAMPTZ '2026-05-01 00:00:00+00' + to_seconds(i * 3600)
        AS timestamp FROM range(24 * 70) t(i)""")
    con.close()
    roadmap = hr.Roadmap.model_validate({
        "id": "tz", "goal": "g",
        "data": {"events": {"user": None, "timezone": "Europe/Berlin"}},
        "indicators": [{"id": "n_7d", "family": "process", "aggregate": "count",
                        "window": "7d"}],
        "stages": [{"id": "operation"}]})
    accounts = pl.DataFrame({"account_id": ["a0", "a1", "a2"]})
    src = DuckDBSource(path, table="events")
    got = hr.evaluate(roadmap, src, accounts, AS_OF)
    # 2026-06-24 00:00 and 2026-07-01 00:00 in Berlin (summer time: UTC+2)
    assert ("\"timestamp\" >= CAST('2026-06-23 22:00:00.000000+00:00' AS TIMESTAMP WITH TIME "
            "ZONE) AND \"timestamp\" < CAST('2026-06-30 22:00:00.000000+00:00' AS TIMESTAMP "
            "WITH TIME ZONE)") in " ".join(src.queries[0].split())
    full = duckdb.connect(str(path), read_only=True)
    events = full.table("events").pl().with_columns(
        pl.col("timestamp").dt.convert_time_zone("Europe/Berlin"))
    full.close()
    _evaluations_equal(got, hr.evaluate(roadmap, events, accounts, AS_OF))
    assert got.indicators["n_7d"].to_list() == [56, 56, 56]


def test_a_date_timestamp_column_is_compared_as_wall_time(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute("""CREATE TABLE events AS SELECT 'a' AS account_id, 'login' AS event,
        (DATE '2026-01-01' + i::INTEGER) AS timestamp FROM range(200) t(i)""")
    roadmap = hr.Roadmap.model_validate({
        "id": "dates", "goal": "g", "data": {"events": {"user": None}},
        "indicators": [{"id": "n_30d", "family": "process", "aggregate": "count",
                        "window": "30d"}],
        "stages": [{"id": "operation"}]})
    accounts = pl.DataFrame({"account_id": ["a"]})
    src = DuckDBSource(con, table="events")
    got = hr.evaluate(roadmap, src, accounts, "2026-06-30")
    assert "CAST('2026-06-01 00:00:00.000000' AS TIMESTAMP)" in src.queries[0]
    assert src.rows_read == 30
    _evaluations_equal(got, hr.evaluate(roadmap, con.table("events").pl(), accounts,
                                        "2026-06-30"))


@settings(max_examples=25)
@given(data=st.data(), roadmap=roadmaps())
def test_random_roadmaps_agree_on_duckdb_and_polars(data: st.DataObject,
                                                    roadmap: hr.Roadmap) -> None:
    accounts, events = data.draw(inputs_for(roadmap, as_of=AS_OF))
    con = duckdb.connect()
    try:
        con.register("ev", events.to_arrow())
        con.execute("CREATE TABLE events AS SELECT * FROM ev")
        src = DuckDBSource(con, table="events")
        got = hr.evaluate(roadmap, src, con.from_arrow(accounts.to_arrow()), AS_OF)
        _evaluations_equal(got, hr.evaluate(roadmap, events, accounts, AS_OF))
        assert len(src.queries) == 1
        assert src.rows_read is not None and src.rows_read <= events.height
    finally:
        con.close()


def test_a_missing_column_is_named_with_a_did_you_mean(warehouse: Path) -> None:
    roadmap = hr.Roadmap.model_validate({
        **ROADMAP, "data": {**ROADMAP["data"], "events": {"user": "userid",
                                                          "values": {"value": "float"}}}})
    with pytest.raises(InputDataError) as err:
        hr.evaluate(roadmap, DuckDBSource(warehouse, table="events"),
                    DuckDBSource(warehouse, table="accounts"), AS_OF)
    assert "events frame has no column 'userid'" in str(err.value)
    assert "user_id" in str(err.value)  # did you mean


def test_an_unknown_table_or_file_is_an_input_error(warehouse: Path, tmp_path: Path) -> None:
    roadmap = hr.Roadmap.model_validate(ROADMAP)
    with pytest.raises(SourceError, match="evnts") as err:
        hr.evaluate(roadmap, DuckDBSource(warehouse, table="evnts"),
                    DuckDBSource(warehouse, table="accounts"), AS_OF)
    assert isinstance(err.value, InputDataError)
    assert "events" in str(err.value)  # DuckDB's own did-you-mean
    with pytest.raises(SourceError, match="not found"):
        DuckDBSource(tmp_path / "nope.duckdb", table="events")
    with pytest.raises(ValueError, match="exactly one"):
        DuckDBSource(warehouse)
    with pytest.raises(ValueError, match="not a table name"):
        DuckDBSource(warehouse, table="events; DROP TABLE events")


def test_resolve_is_the_per_source_hook(warehouse: Path) -> None:
    """``resolve(obj, columns, time_column, read_range)``: one call per input."""
    rng = (dt.datetime(2026, 6, 1), dt.datetime(2026, 6, 2))
    src = DuckDBSource(warehouse, table="events")
    lf = resolve(src, ["account_id", "timestamp"], "timestamp", rng)
    assert lf.collect_schema().names() == ["account_id", "timestamp"]
    assert src.queries == []  # lazy
    n = lf.collect().height
    assert n == src.rows_read and 0 < n < 1000
    polars_lf = resolve(pl.DataFrame({"a": [1], "b": [2]}), ["b"])
    assert polars_lf.collect().columns == ["b"]
    with pytest.raises(TypeError, match="events must be a polars DataFrame"):
        resolve(42, what="events")


# ---------------------------------------------------------------------- the command line


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "healthrules", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def test_cli_evaluate_reads_a_duckdb_file(warehouse: Path, tmp_path: Path,
                                          frames: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, accounts = frames
    roadmap_file = tmp_path / "roadmap.yaml"
    import yaml

    roadmap_file.write_text(yaml.safe_dump(ROADMAP))
    events.write_parquet(tmp_path / "events.parquet")
    accounts.write_parquet(tmp_path / "accounts.parquet")
    db = _cli("evaluate", str(roadmap_file), "--duckdb", str(warehouse),
              "--events-table", "events",
              "--accounts-query", "SELECT account_id, plan FROM accounts",
              "--as-of", "2026-06-30", "--out", "db", cwd=tmp_path)
    assert db.returncode == 0, db.stderr
    files = _cli("evaluate", str(roadmap_file), "--events", "events.parquet",
                 "--accounts", "accounts.parquet", "--as-of", "2026-06-30", "--out", "files",
                 cwd=tmp_path)
    assert files.returncode == 0, files.stderr
    assert db.stdout.replace("db", "files") == files.stdout
    for name in ("indicators", "stages", "scores", "actions"):
        assert_frame_equal(pl.read_parquet(tmp_path / "db" / f"{name}.parquet"),
                           pl.read_parquet(tmp_path / "files" / f"{name}.parquet"))


def test_cli_input_mistakes(warehouse: Path, tmp_path: Path) -> None:
    roadmap = str(ROOT / "rules" / "examples" / "b2b-saas" / "roadmap.yaml")
    no_db = _cli("evaluate", roadmap, "--events-table", "events", "--accounts-table", "a",
                 "--as-of", "2026-06-30", "--out", "o", cwd=tmp_path)
    assert no_db.returncode == 2 and "needs a database" in no_db.stderr
    both = _cli("evaluate", roadmap, "--duckdb", str(warehouse), "--events", "x.parquet",
                "--events-table", "events", "--accounts-table", "accounts",
                "--as-of", "2026-06-30", "--out", "o", cwd=tmp_path)
    assert both.returncode == 2 and "give one of --events" in both.stderr
    none = _cli("evaluate", roadmap, "--accounts", "a.csv", "--as-of", "2026-06-30",
                "--out", "o", cwd=tmp_path)
    assert none.returncode == 2 and "give one of --events" in none.stderr
    bad = _cli("evaluate", roadmap, "--duckdb", str(warehouse), "--events-table", "evnts",
               "--accounts-table", "accounts", "--as-of", "2026-06-30", "--out", "o",
               cwd=tmp_path)
    assert bad.returncode == 1, bad.stderr
    assert re.search(r"DuckDB refused the query: Catalog Error: Table with name evnts",
                     bad.stderr)
    engine = _cli("evaluate", roadmap, "--duckdb", str(warehouse), "--sql-engine", "adbc",
                  "--events-table", "events", "--accounts-table", "accounts",
                  "--as-of", "2026-06-30", "--out", "o", cwd=tmp_path)
    assert engine.returncode == 2, engine.stderr
    assert "--sql-engine says how --database is read" in engine.stderr


def test_a_failure_while_reading_is_an_input_error_with_the_query() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 'x' AS a, TIMESTAMP '2026-01-01' AS ts")
    src = DuckDBSource(con, query="SELECT a, ts, CAST(a AS INTEGER) AS bad FROM t")
    with pytest.raises(SourceError, match="Could not convert string 'x'") as err:
        src.scan(["a", "bad"]).collect()
    assert "the query was: SELECT \"a\", \"bad\" FROM (SELECT" in str(err.value)


def test_a_source_closes_the_file_it_opened(warehouse: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy.duckdb"
    shutil.copy(warehouse, copy)
    with DuckDBSource(copy, table="accounts") as src:
        assert src.scan(["account_id"]).collect().height == 520
    # closed: the file opens read-write again in this process
    con = duckdb.connect(str(copy))
    con.execute("INSERT INTO accounts VALUES ('a999', 'pro', 'n')")
    con.close()
    # a connection handed in stays open
    mine = duckdb.connect()
    mine.execute("CREATE TABLE t AS SELECT 1 AS x")
    with DuckDBSource(mine, table="t") as src:
        assert src.scan().collect().item() == 1
    assert mine.sql("SELECT count(*) FROM t").fetchall() == [(1,)]


def test_the_evaluator_hook_reads_a_source_with_pushdown(
        warehouse: Path, frames: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    from healthrules.engine import Evaluator
    from healthrules.inputs import clock_for

    events, accounts = frames
    plan = hr.compile(hr.Roadmap.model_validate(ROADMAP))
    clock = clock_for(plan, events.schema, AS_OF)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        src = DuckDBSource(relation=con.table("events"))
        got = Evaluator(plan, clock.time_unit).evaluate(src, con.table("accounts"), clock)
    finally:
        con.close()
    _evaluations_equal(got, hr.evaluate(plan, events, accounts, AS_OF))
    start, end = hr.engine.read_range(plan, events, accounts, AS_OF)
    assert start is not None and src.rows_read == _in_range(events, start, end)
    assert '"healthrules_relation" AS "healthrules_source" WHERE' in (src.last_query or "")


def test_cli_report_with_history_reads_a_duckdb_file(warehouse: Path, tmp_path: Path) -> None:
    import yaml

    roadmap_file = tmp_path / "roadmap.yaml"
    roadmap_file.write_text(yaml.safe_dump(ROADMAP))
    out = _cli("report", str(roadmap_file), "--duckdb", str(warehouse), "--events-table",
               "events", "--accounts-table", "accounts", "--as-of", "2026-06-30",
               "--history-weeks", "2", "--out", "report.html", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "3 weekly snapshots" in out.stdout
    assert (tmp_path / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
