"""The types a database hands over: the same events and accounts read through each kind of
source evaluate exactly like the same data given as polars frames, or are refused with an
error that names the column.

Tables are generated with the widths and types real tables have (integer widths, unsigned
keys and values, REAL and DOUBLE with NaN, inf and -0.0, nulls in keys, times and values,
timestamps in ms, us and ns, naive, UTC and zoned, dates, text and integer keys, empty
tables, duplicate account keys) and read through a DuckDB table, a DuckDB relation, an
Arrow stream, a Parquet scan and SQLite (by URI, through connectorx). "The same data" is
what the database holds, read whole into polars (a DuckDB ``TIMESTAMPTZ`` keeps
microseconds, SQLite keeps no NaN): the source's pushdown must not change what it means.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.errors import InputDataError
from healthrules.sources import DuckDBSource, SQLSource
from healthrules.sources.arrow import ArrowStreamSource

AS_OF = dt.date(2026, 6, 30)
END = dt.datetime(2026, 7, 1)  # the end of AS_OF
START = END - dt.timedelta(days=30)  # the widest window's start


def _roadmap(timezone: str | None) -> hr.Roadmap:
    events: dict[str, Any] = {"user": "user_id", "values": {"value": "float"}}
    if timezone is not None:
        events["timezone"] = timezone
    return hr.Roadmap.model_validate({
        "id": "types", "goal": "Weekly use",
        "data": {"events": events, "accounts": {"attributes": {"seats": "int"}}},
        "indicators": [
            {"id": "logins_7d", "family": "process", "aggregate": "count",
             "where": "event == 'login'", "window": "7d"},
            {"id": "users_30d", "family": "process", "aggregate": "distinct",
             "window": "30d"},
            {"id": "days_14d", "family": "process", "aggregate": "active_days",
             "window": "14d"},
            {"id": "value_30d", "family": "outcome", "aggregate": "sum", "of": "value",
             "window": "30d"},
            {"id": "mean_7d", "family": "outcome", "aggregate": "mean", "of": "value",
             "window": "7d"},
            {"id": "top_30d", "family": "outcome", "aggregate": "max", "of": "value",
             "window": "30d"},
            {"id": "last_login", "family": "process", "aggregate": "days_since_last",
             "where": "event == 'login'", "window": "30d"},
            {"id": "per_seat", "family": "process", "expr": "users_30d / seats"},
        ],
        "stages": [{"id": "operation", "actions": [{
            "id": "quiet", "kind": "challenge", "when": "logins_7d < 2",
            "do": "Call them: {logins_7d} logins, {value_30d} in 30 days", "owner": "csm"}]}],
    })


def _evaluations_equal(a: Any, b: Any) -> None:
    for name in ("indicators", "stages", "scores", "actions", "conditions"):
        assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    assert a.diagnostics == b.diagnostics


def _outcome(roadmap: hr.Roadmap, events: Any, accounts: Any) -> Any:
    """The evaluation, or the text of the input error it raised."""
    try:
        return hr.evaluate(roadmap, events, accounts, AS_OF)
    except InputDataError as exc:
        return f"refused: {exc}"


def _same(got: Any, want: Any) -> None:
    if isinstance(want, str) or isinstance(got, str):
        assert got == want
    else:
        _evaluations_equal(got, want)


# ---------------------------------------------------------------- generated tables

# the edges of the read range and of the windows, and a few times between
_EDGES = [START, END, END - dt.timedelta(days=7), END - dt.timedelta(days=14)]
_NEAR = [dt.timedelta(0), dt.timedelta(microseconds=-1), dt.timedelta(microseconds=1),
         dt.timedelta(milliseconds=-1), dt.timedelta(hours=5), dt.timedelta(days=-3)]

KEYS = {"str": pl.String(), "int64": pl.Int64(), "int32": pl.Int32(), "uint32": pl.UInt32(),
        "uint8": pl.UInt8()}
VALUES = {"f64": pl.Float64(), "f32": pl.Float32(), "i64": pl.Int64(), "i16": pl.Int16(),
          "u8": pl.UInt8(), "u64": pl.UInt64()}
ZONES = [None, "UTC", "Europe/Paris", "America/New_York"]


@st.composite
def tables(draw: st.DrawFn, sqlite: bool = False,
           spark: bool = False) -> tuple[pl.DataFrame, pl.DataFrame, str | None]:
    """Events and accounts of one key type, timestamp type and value type, and the zone of
    the roadmap that reads them (``spark``: the types Spark holds, no unsigned integers
    and no nanoseconds)."""
    signed = [k for k in KEYS if not k.startswith("u")]
    key = draw(st.sampled_from(["str", "int64"] if sqlite else signed if spark else list(KEYS)))
    value = draw(st.sampled_from(["f64", "i64"] if sqlite else [
        v for v in VALUES if not v.startswith("u")] if spark else list(VALUES)))
    if sqlite:  # SQLite has no zone and keeps text with microseconds at most
        zone, unit, dates = None, "us", draw(st.booleans())
    else:
        zone = draw(st.sampled_from(ZONES))
        unit = draw(st.sampled_from(["ms", "us"] if spark else ["ms", "us", "ns"]))
        dates = draw(st.integers(0, 5)) == 3
    n_accounts = draw(st.integers(1, 6))
    pool = list(range(n_accounts + 2))  # two keys without an account
    n_events = draw(st.sampled_from([0, 1, 5, 30]))

    def key_of(i: int | None) -> Any:
        return None if i is None else (f"a{i}" if key == "str" else i + 1)

    floats = value.startswith("f")
    value_pool: list[Any] = [None, 0, 1, 2, 7, 250]
    if floats:
        value_pool += [0.1, -0.0, 2.5, 1e15, -3.75]
        if not sqlite:  # SQLite keeps a NaN as a null
            value_pool += [math.nan]
        value_pool += [math.inf, -math.inf]
    elif value.startswith("i"):
        value_pool += [-5, -1]
    if value in ("i64", "u64"):
        value_pool += [2**62]  # a sum beyond the exact range: refused alike
    if value == "u64":
        value_pool += [2**63 + 5]  # beyond Int64: refused alike
    rows = []
    for _ in range(n_events):
        at: dt.datetime | None = draw(st.sampled_from(_EDGES)) + draw(st.sampled_from(_NEAR))
        if draw(st.integers(0, 9)) == 0:
            at = None
        k = draw(st.sampled_from([*pool, None])) if draw(st.booleans()) else draw(
            st.sampled_from(pool[:2]))
        rows.append({"account_id": key_of(k), "timestamp": at,
                     "event": draw(st.sampled_from(["login", "ticket", None])),
                     "user_id": draw(st.sampled_from(["u1", "u2", None])),
                     "value": draw(st.sampled_from(value_pool))})
    events = pl.DataFrame(rows, schema={
        "account_id": KEYS[key], "timestamp": pl.Datetime("us"), "event": pl.String(),
        "user_id": pl.String(), "value": pl.Float64()}, strict=False)
    ts = pl.col("timestamp").cast(pl.Datetime(unit))  # type: ignore[arg-type]
    if dates:
        ts = ts.dt.date()
    elif zone is not None:
        ts = ts.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
    events = events.with_columns(ts, pl.col("value").cast(VALUES[value], strict=False)
                                 if not floats else pl.col("value").cast(VALUES[value]))
    keys = [key_of(i) for i in range(n_accounts)]
    if draw(st.integers(0, 7)) == 5:
        keys.append(keys[0])  # a duplicate account key: refused alike
    accounts = pl.DataFrame({"account_id": keys,
                             "seats": [draw(st.sampled_from([None, 0, 1, 3])) for _ in keys]},
                            schema={"account_id": KEYS[key], "seats": pl.Int64()})
    if key != "str" and not sqlite and draw(st.booleans()):
        accounts = accounts.with_columns(pl.col("seats").cast(pl.Int16))
    return events, accounts, zone


def _in_zone(frame: pl.DataFrame, zone: str | None) -> pl.DataFrame:
    """The zoned columns of what a database held, shown in ``zone`` (the same instants)."""
    if zone is None:
        return frame
    return frame.with_columns(pl.col(pl.Datetime).dt.convert_time_zone(zone))


@settings(max_examples=60)
@given(case=tables())
def test_duckdb_tables_and_relations_evaluate_like_the_frames_they_hold(
        case: tuple[pl.DataFrame, pl.DataFrame, str | None]) -> None:
    events, accounts, zone = case
    roadmap = _roadmap(zone)
    con = duckdb.connect()
    try:
        con.register("ev", events.to_arrow())
        con.register("ac", accounts.to_arrow())
        con.execute("CREATE TABLE events AS SELECT * FROM ev")
        con.execute("CREATE TABLE accounts AS SELECT * FROM ac")
        held = _in_zone(con.table("events").pl(), zone)
        held_accounts = con.table("accounts").pl()
        want = _outcome(roadmap, held, held_accounts)
        src = DuckDBSource(con, table="events")
        _same(_outcome(roadmap, src, DuckDBSource(con, table="accounts")), want)
        _same(_outcome(roadmap, con.table("events"), con.table("accounts")), want)
    finally:
        con.close()


@settings(max_examples=60)
@given(case=tables(), chunk=st.sampled_from([1, 3, 1000]))
def test_arrow_streams_and_parquet_evaluate_like_the_frames(
        case: tuple[pl.DataFrame, pl.DataFrame, str | None], chunk: int,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    events, accounts, zone = case
    roadmap = _roadmap(zone)
    want = _outcome(roadmap, events, accounts)
    table = events.to_arrow()
    stream = ArrowStreamSource(table.to_reader(max_chunksize=chunk))
    _same(_outcome(roadmap, stream, accounts.to_arrow()), want)
    _same(_outcome(roadmap, table, accounts.to_arrow()), want)
    where = tmp_path_factory.mktemp("pq")
    events.write_parquet(where / "events.parquet")
    accounts.write_parquet(where / "accounts.parquet")
    _same(_outcome(roadmap, pl.scan_parquet(where / "events.parquet"),
                   pl.scan_parquet(where / "accounts.parquet")), want)


def _sqlite(path: Path, events: pl.DataFrame, accounts: pl.DataFrame) -> str:
    """The frames as SQLite tables (timestamps as text, as SQLite keeps them); the URI."""
    date = events.schema["timestamp"] == pl.Date
    key = "TEXT" if events.schema["account_id"] == pl.String else "INTEGER"
    value = "REAL" if events.schema["value"].is_float() else "INTEGER"
    con = sqlite3.connect(path)
    con.execute(f"CREATE TABLE events (account_id {key}, timestamp "
                f"{'DATE' if date else 'DATETIME'}, event TEXT, user_id TEXT, value {value})")
    con.execute(f"CREATE TABLE accounts (account_id {key}, seats INTEGER)")
    text = pl.col("timestamp").dt.to_string("%Y-%m-%d" if date else "%Y-%m-%d %H:%M:%S%.6f")
    con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                    events.with_columns(text).rows())
    con.executemany("INSERT INTO accounts VALUES (?, ?)", accounts.rows())
    con.commit()
    con.close()
    return f"sqlite://{path}"


@settings(max_examples=40)
@given(case=tables(sqlite=True))
def test_sqlite_tables_evaluate_like_the_frames_they_hold(
        case: tuple[pl.DataFrame, pl.DataFrame, str | None],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    events, accounts, _ = case
    roadmap = _roadmap(None)
    uri = _sqlite(tmp_path_factory.mktemp("lite") / "db.sqlite", events, accounts)
    held = pl.read_database_uri("SELECT * FROM events", uri)
    held_accounts = pl.read_database_uri("SELECT * FROM accounts", uri)
    want = _outcome(roadmap, held, held_accounts)
    src = SQLSource(uri, table="events")
    _same(_outcome(roadmap, src, SQLSource(uri, table="accounts")), want)


def test_sqlite_timestamps_are_not_compared_in_sql(tmp_path: Path) -> None:
    """SQLite keeps timestamps as text (in any format) and ``CAST('2026-06-01 ...' AS
    TIMESTAMP)`` is the number 2026 there: a time range in the SQL dropped every event.
    The read sends the declared columns of every row; the range is applied in polars."""
    path = tmp_path / "events.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE events (account_id TEXT, timestamp DATETIME, event TEXT, "
                "user_id TEXT, value REAL, payload TEXT)")
    con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, 'x')", [
        ("a1", "2026-06-29 10:00:00", "login", "u1", 1.5),
        ("a1", "2026-06-24T00:00:00", "login", "u2", 2.0),       # ISO 8601 with a T
        ("a1", "2026-06-01 00:00:00", "ticket", "u1", 4.0),      # the start of the range
        ("a1", "2026-05-31 23:59:59.999999", "login", "u1", 8.0),  # just before it
        ("a1", "2026-07-01 00:00:00", "login", "u1", 16.0),      # the end: not read
        ("a1", None, "login", "u1", 32.0),                       # counted as a null time
        ("a2", "2026-06-30 23:59:59.999999", "login", "u3", 64.0)])
    con.execute("CREATE TABLE accounts (account_id TEXT, seats INTEGER)")
    con.executemany("INSERT INTO accounts VALUES (?, ?)", [("a1", 2), ("a2", 1), ("a3", 4)])
    con.commit()
    con.close()
    uri = f"sqlite://{path}"
    roadmap = _roadmap(None)
    src = SQLSource(uri, table="events")
    got = hr.evaluate(roadmap, src, SQLSource(uri, table="accounts"), AS_OF)
    want = hr.evaluate(roadmap, pl.read_database_uri("SELECT * FROM events", uri),
                       pl.read_database_uri("SELECT * FROM accounts", uri), AS_OF)
    _evaluations_equal(got, want)
    assert got.indicators.filter(pl.col("account_id") == "a1")["value_30d"].to_list() == [7.5]
    assert src.last_query == ('SELECT "account_id", "event", "timestamp", "user_id", "value" '
                              'FROM "events" AS "healthrules_source"')
    assert src.rows_read == 5  # the range and the null time, applied in polars


def test_a_sqlite_column_of_values_its_type_does_not_hold_is_refused(tmp_path: Path) -> None:
    """SQLite's dynamic types: an INTEGER column holding a REAL is an error naming the
    column, never a truncated value."""
    path = tmp_path / "events.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE events (account_id TEXT, timestamp DATETIME, event TEXT, "
                "user_id TEXT, value INTEGER)")
    con.execute("INSERT INTO events VALUES ('a1', '2026-06-29 10:00:00', 'login', 'u1', 1.5)")
    con.execute("CREATE TABLE accounts (account_id TEXT, seats INTEGER)")
    con.execute("INSERT INTO accounts VALUES ('a1', 2)")
    con.commit()
    con.close()
    uri = f"sqlite://{path}"
    with pytest.raises(InputDataError, match=r"name: value") as err:
        hr.evaluate(_roadmap(None), SQLSource(uri, table="events"),
                    SQLSource(uri, table="accounts"), AS_OF)
    assert 'FROM "events"' in str(err.value)


def test_computed_columns_of_a_sqlite_query_have_the_type_of_their_values(
        tmp_path: Path) -> None:
    """A computed column of a SQLite query has no declared type, and a read of no row says
    text: the schema is read from the first row, so the query evaluates like its frame
    (it was refused as a text column)."""
    path = tmp_path / "events.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE events (account_id TEXT, timestamp DATETIME, event TEXT, "
                "user_id TEXT, cents INTEGER)")
    con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", [
        ("a1", "2026-06-29 10:00:00", "login", "u1", 150),
        ("a1", "2026-06-20 10:00:00", "login", "u2", 5),
        ("a2", "2026-05-01 10:00:00", "login", "u1", 7)])
    con.execute("CREATE TABLE accounts (account_id TEXT, seats INTEGER)")
    con.executemany("INSERT INTO accounts VALUES (?, ?)", [("a1", 2), ("a2", 1)])
    con.commit()
    con.close()
    uri = f"sqlite://{path}"
    query = ("SELECT account_id, timestamp, event, user_id, cents / 100.0 AS value "
             "FROM events")
    accounts_query = "SELECT account_id, seats + 1 AS seats FROM accounts"
    roadmap = _roadmap(None)
    got = hr.evaluate(roadmap, SQLSource(uri, query=query),
                      SQLSource(uri, query=accounts_query), AS_OF)
    want = hr.evaluate(roadmap, pl.read_database_uri(query, uri),
                       pl.read_database_uri(accounts_query, uri), AS_OF)
    _evaluations_equal(got, want)
    assert got.indicators.filter(pl.col("account_id") == "a1")["value_30d"].to_list() == [1.55]
    # an empty query keeps what a read of no row says, and is refused as text
    with pytest.raises(InputDataError, match="column 'value' is String"):
        hr.evaluate(roadmap, SQLSource(uri, query=query + " WHERE 1 = 0"),
                    SQLSource(uri, query=accounts_query), AS_OF)
