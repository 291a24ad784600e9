"""Databases by URI: a real PostgreSQL server, started by the test suite on 127.0.0.1.

The server logs every statement it runs (``log_statement=all``), so the tests check the
query PostgreSQL actually received: the projection and the time range are in its SQL. The
results must equal those of the same rows evaluated from polars frames, read through
connectorx and through ADBC alike. If the server cannot start, the tests fail and say why.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.datasets import sample
from healthrules.errors import InputDataError
from healthrules.sources import SourceError, SQLSource
from test_source_types import _outcome as source_outcome
from test_source_types import _roadmap as source_roadmap
from test_source_types import _same as source_same
from test_source_types import tables as source_tables

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2026, 6, 30)
TOTAL = 300_000  # events over two years, 210 s apart
ENGINES = ("connectorx", "adbc")

ROADMAP = {
    "id": "pg", "goal": "Weekly use",
    "data": {"events": {"user": "user_id", "values": {"value": "float"}},
             "accounts": {"attributes": {"plan": "str", "seats": "int"}}},
    "indicators": [
        {"id": "logins_7d", "family": "process", "aggregate": "count",
         "where": "event == 'login'", "window": "7d"},
        {"id": "users_30d", "family": "process", "aggregate": "distinct", "window": "30d"},
        {"id": "value_30d", "family": "outcome", "aggregate": "mean", "of": "value",
         "window": "30d"},
        {"id": "per_seat", "family": "process", "expr": "users_30d / seats"},
    ],
    "stages": [{"id": "operation", "actions": [{
        "id": "quiet", "kind": "challenge", "when": "logins_7d < 10",
        "do": "Call them: {logins_7d} logins in a week", "owner": "csm"}]}],
}


@dataclass(frozen=True)
class Server:
    """A running PostgreSQL server: its URI and the file it logs statements to."""

    uri: str
    log: Path

    def statements(self) -> list[str]:
        """Every statement the server logged, oldest first (connectorx and ADBC run a
        query as ``COPY (<query>) TO STDOUT`` through the extended protocol: ``execute``)."""
        text = self.log.read_text(errors="replace")
        return re.findall(r"LOG:  (?:statement|execute [^:]*): (.*)", text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _initdb() -> Path:
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb") or (
        [p] if (p := shutil.which("initdb")) else [])
    if not found:
        pytest.fail("PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/initdb and no "
                    "initdb on PATH (apt-get install postgresql; scripts/system-deps installs it)")
    return Path(max(found, key=lambda p: int(re.sub(r"\D", "", p.split("/")[4]) or 0)
                    if p.startswith("/usr/lib/postgresql/") else 0))


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    """A throw-away PostgreSQL cluster on 127.0.0.1 (as the ``postgres`` user, or ``nobody``,
    when the tests run as root: PostgreSQL refuses to run as root)."""
    bindir = _initdb().parent
    base = Path(tempfile.mkdtemp(prefix="healthrules-pg-"))
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:
        for name in ("postgres", "nobody"):
            try:
                user = pwd.getpwnam(name)
            except KeyError:
                continue
            os.chown(base, user.pw_uid, user.pw_gid)
            run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
            break
        else:
            pytest.fail("the tests run as root and there is no 'postgres' or 'nobody' user "
                        "to run PostgreSQL as")
    port = _free_port()
    log = base / "server.log"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, capture_output=True, text=True, cwd=base, timeout=120,
                              **run_as)

    init = run(str(bindir / "initdb"), "-D", str(base / "data"), "--auth=trust", "-U", "hr",
               "-E", "UTF8", "--no-locale")
    if init.returncode != 0:
        pytest.fail(f"initdb failed ({init.returncode}): {init.stderr or init.stdout}")
    options = (f"-h 127.0.0.1 -p {port} -k {base} -c log_statement=all -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off")
    start = run(str(bindir / "pg_ctl"), "-D", str(base / "data"), "-l", str(log),
                "-o", options, "-w", "-t", "60", "start")
    if start.returncode != 0:
        text = log.read_text(errors="replace") if log.exists() else ""
        pytest.fail(f"PostgreSQL did not start ({start.returncode}): {start.stderr}\n{text}")
    try:
        yield Server(f"postgresql://hr@127.0.0.1:{port}/postgres", log)
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(base / "data"), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def _execute(uri: str, *statements: str) -> None:
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(uri) as con, con.cursor() as cur:
        for sql in statements:
            cur.execute(sql)
        con.commit()


@pytest.fixture(scope="session")
def database(postgres: Server) -> Server:
    """Tables ``events`` (300,000 rows over two years, a few null times and values, and a
    column no roadmap reads), ``accounts`` (320, 20 without events), and the sample data
    (``sample_events`` with UTC timestamps, ``sample_accounts``)."""
    _execute(postgres.uri, f"""
        CREATE TABLE events AS SELECT
            'a' || lpad((i % 300)::text, 3, '0') AS account_id,
            'u' || (i % 5)::text AS user_id,
            CASE i % 3 WHEN 0 THEN 'login' WHEN 1 THEN 'feature_used' ELSE 'ticket' END
                AS event,
            CASE WHEN i % 9973 = 0 THEN NULL
                 ELSE TIMESTAMP '2024-07-01 00:00:00' + i * INTERVAL '210 seconds' END
                AS "timestamp",
            CASE WHEN i % 101 = 0 THEN NULL ELSE (i % 13)::double precision END AS value,
            repeat('x', 40) AS payload
        FROM generate_series(0, {TOTAL - 1}) AS i""", """
        CREATE TABLE accounts AS SELECT
            'a' || lpad(i::text, 3, '0') AS account_id,
            CASE WHEN i % 4 = 0 THEN 'pro' ELSE 'basic' END AS plan,
            (i % 9 + 1)::bigint AS seats, 'note' AS notes
        FROM generate_series(0, 319) AS i""")
    s = sample()
    s.events.write_database("sample_events", postgres.uri, engine="adbc")
    s.accounts.write_database("sample_accounts", postgres.uri, engine="adbc")
    return postgres


@pytest.fixture(scope="session")
def frames(database: Server) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The whole tables as polars frames."""
    events = pl.read_database_uri("SELECT * FROM events", database.uri, engine="adbc")
    accounts = pl.read_database_uri("SELECT * FROM accounts", database.uri, engine="adbc")
    return events, accounts


def _evaluations_equal(a: Any, b: Any) -> None:
    for name in ("indicators", "stages", "scores", "actions", "conditions"):
        assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    assert a.diagnostics == b.diagnostics


@pytest.mark.parametrize("engine", ENGINES)
def test_postgresql_runs_the_query_with_the_range_and_columns(
        database: Server, frames: tuple[pl.DataFrame, pl.DataFrame], engine: str) -> None:
    events, accounts = frames
    roadmap = hr.Roadmap.model_validate(ROADMAP)
    src = SQLSource(database.uri, table="events", engine=engine)  # type: ignore[arg-type]
    acc = SQLSource(database.uri, table="accounts", engine=engine)  # type: ignore[arg-type]
    before = len(database.statements())
    got = hr.evaluate(roadmap, src, acc, AS_OF)

    want_sql = (
        'SELECT "account_id", "event", "timestamp", "user_id", "value" FROM "events" AS '
        '"healthrules_source" WHERE ("timestamp" >= CAST(\'2026-06-01 00:00:00.000000\' AS '
        'TIMESTAMP) AND "timestamp" < CAST(\'2026-07-01 00:00:00.000000\' AS TIMESTAMP)) '
        'OR "timestamp" IS NULL')
    assert src.queries == [want_sql]
    ran = database.statements()[before:]
    assert any(f"COPY ({want_sql})" in s for s in ran), ran  # what the server received
    assert any('SELECT "account_id", "plan", "seats" FROM "accounts" AS "healthrules_source"'
               in s for s in ran), ran
    assert not any("payload" in s or "notes" in s for s in ran)
    ts = pl.col("timestamp")
    in_range = events.filter(((ts >= dt.datetime(2026, 6, 1)) & (ts < dt.datetime(2026, 7, 1)))
                             | ts.is_null()).height
    assert src.rows_read == in_range and in_range * 10 < TOTAL

    _evaluations_equal(got, hr.evaluate(roadmap, events, accounts, AS_OF))
    assert got.actions.height > 0


@pytest.mark.parametrize("engine", ENGINES)
def test_zoned_timestamps_of_the_sample_data_agree(database: Server, engine: str) -> None:
    """``timestamptz`` columns, a real roadmap of the examples and its sample data."""
    s = sample()
    roadmap = hr.load(ROOT / "rules" / "examples" / "b2b-saas" / "roadmap.yaml")
    src = SQLSource(database.uri, table="sample_events", engine=engine)  # type: ignore[arg-type]
    got = hr.evaluate(roadmap, src,
                      SQLSource(database.uri, table="sample_accounts",
                                engine=engine),  # type: ignore[arg-type]
                      s.as_of)
    assert "CAST('2026-07-01 00:00:00.000000+00:00' AS TIMESTAMP WITH TIME ZONE)" in \
        (src.last_query or "")
    _evaluations_equal(got, hr.evaluate(roadmap, s.events, s.accounts, s.as_of))


def test_a_query_source_and_history(database: Server,
                                    frames: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, accounts = frames
    roadmap = hr.Roadmap.model_validate(ROADMAP)
    src = SQLSource(database.uri, query="SELECT * FROM events WHERE event <> 'ticket';")
    got = hr.history(roadmap, src, accounts, "2026-06-01", "2026-06-29", every="1w")
    want = hr.history(roadmap, events.filter(pl.col("event") != "ticket"), accounts,
                      "2026-06-01", "2026-06-29", every="1w")
    for name in ("indicators", "stages", "scores", "actions"):
        assert_frame_equal(getattr(got, name), getattr(want, name), check_exact=True)
    assert len(src.queries) == 1
    sql = src.queries[0]
    assert sql.startswith('SELECT "account_id", "event", "timestamp", "user_id", "value" '
                          "FROM (SELECT * FROM events WHERE event <> 'ticket') AS")
    # the first date's end (2026-06-02) minus the widest window (30 days)
    assert "\"timestamp\" >= CAST('2026-05-03 00:00:00.000000' AS TIMESTAMP)" in sql
    assert any(f"COPY ({sql})" in s for s in database.statements())


def test_database_errors_are_input_errors(database: Server) -> None:
    roadmap = hr.Roadmap.model_validate(ROADMAP)
    with pytest.raises(SourceError, match="evnts") as err:
        hr.evaluate(roadmap, SQLSource(database.uri, table="evnts"),
                    SQLSource(database.uri, table="accounts"), AS_OF)
    assert isinstance(err.value, InputDataError)
    assert "the query was: SELECT" in str(err.value)
    with pytest.raises(InputDataError, match="no attribute column 'seats'"):
        hr.evaluate(roadmap, SQLSource(database.uri, table="events"),
                    SQLSource(database.uri, query="SELECT account_id, plan FROM accounts"),
                    AS_OF)
    with pytest.raises(ValueError, match="not a database URI"):
        SQLSource("events.db", table="events")
    secret = SQLSource("postgresql://hr:s3cret@127.0.0.1:1/x", table="events")
    assert "s3cret" not in repr(secret)


def test_cli_reads_a_database_by_uri(database: Server, tmp_path: Path,
                                     frames: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, accounts = frames
    roadmap_file = tmp_path / "roadmap.yaml"
    roadmap_file.write_text(yaml.safe_dump(ROADMAP))
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "healthrules", "evaluate", str(roadmap_file),
         "--database", database.uri, "--sql-engine", "adbc", "--events-table", "events",
         "--accounts-query", "SELECT account_id, plan, seats FROM accounts",
         "--as-of", "2026-06-30", "--out", "out"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    want = hr.evaluate(hr.Roadmap.model_validate(ROADMAP), events, accounts, AS_OF)
    assert_frame_equal(pl.read_parquet(tmp_path / "out" / "scores.parquet"), want.scores)
    assert_frame_equal(pl.read_parquet(tmp_path / "out" / "actions.parquet"), want.actions)


_TABLES = iter(range(10**6))


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                               HealthCheck.too_slow])
@given(case=source_tables(spark=True), engine=st.sampled_from(ENGINES))
def test_generated_tables_evaluate_like_the_frames_postgresql_holds(
        database: Server, case: tuple[pl.DataFrame, pl.DataFrame, str | None],
        engine: str) -> None:
    """Integer and text keys, real and double precision with NaN, inf and -0.0, smallint
    values, timestamp and timestamptz in ms and us around daylight-saving changes, dates,
    nulls, empty tables and duplicate account keys, written by ADBC: read through each
    engine with the pushdown, they evaluate like the whole tables read into polars."""
    events, accounts, zone = case
    n = next(_TABLES)
    ev, ac = f"gen_events_{n}", f"gen_accounts_{n}"
    events.write_database(ev, database.uri, engine="adbc")
    accounts.write_database(ac, database.uri, engine="adbc")
    roadmap = source_roadmap(zone)
    held = pl.read_database_uri(f"SELECT * FROM {ev}", database.uri, engine=engine)  # type: ignore[arg-type]
    if zone is not None:
        held = held.with_columns(pl.col(pl.Datetime).dt.convert_time_zone(zone))
    held_accounts = pl.read_database_uri(f"SELECT * FROM {ac}", database.uri,
                                         engine=engine)  # type: ignore[arg-type]
    want = source_outcome(roadmap, held, held_accounts)
    got = source_outcome(roadmap,
                         SQLSource(database.uri, table=ev, engine=engine),  # type: ignore[arg-type]
                         SQLSource(database.uri, table=ac, engine=engine))  # type: ignore[arg-type]
    source_same(got, want)
