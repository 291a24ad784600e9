"""A database by URI: its problems in the user's terms, and no file created by a typo.

Before: ``--database sqlite:///data/evnts.db`` (a path that does not exist) made the driver
create an empty database file there and then said "no such table: events"; a server that
could not be reached was reported as "the database refused the query" with the query as
the hint; and a driver's message quoting the URI would have shown its password.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from healthrules.cli import main
from healthrules.errors import InputDataError
from healthrules.sources import SQLSource
from healthrules.sources.sql import sqlite_file_missing

ROADMAP = {"id": "q", "goal": "g", "data": {"events": {"user": None}},
           "indicators": [{"id": "n", "family": "process", "aggregate": "count"}],
           "stages": [{"id": "s"}]}


def test_sqlite_file_missing() -> None:
    assert sqlite_file_missing("postgresql://u@h/db") is None
    assert sqlite_file_missing("sqlite://:memory:") is None
    assert sqlite_file_missing("sqlite:///no/such/file.db") == "/no/such/file.db"
    assert sqlite_file_missing("sqlite:///no/such/my%20file.db?mode=ro") == \
        "/no/such/my file.db"


def test_a_missing_sqlite_file_is_named_and_not_created(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("connectorx")
    (tmp_path / "roadmap.yaml").write_text(json.dumps(ROADMAP))
    pl.DataFrame({"account_id": ["a"]}).write_parquet(tmp_path / "accounts.parquet")
    good = tmp_path / "events.db"
    with sqlite3.connect(good) as con:
        con.execute("CREATE TABLE events (account_id TEXT, event TEXT, timestamp DATETIME)")
        con.execute("INSERT INTO events VALUES ('a', 'e', '2026-06-01 10:00:00')")
    con.close()
    typo = tmp_path / "evnts.db"

    def argv(db: Path) -> list[str]:
        return ["evaluate", str(tmp_path / "roadmap.yaml"), "--database", f"sqlite://{db}",
                "--events-table", "events", "--accounts", str(tmp_path / "accounts.parquet"),
                "--as-of", "2026-06-30", "--out", str(tmp_path / "out")]

    assert main(argv(typo)) == 1
    err = capsys.readouterr().err
    assert f"SQLite database file not found: {typo}" in err
    assert "no such table" not in err and "internal error" not in err
    assert not typo.exists()
    assert main(argv(good)) == 0
    assert pl.read_parquet(tmp_path / "out" / "indicators.parquet")["n"].to_list() == [1]


def _raising(message: str) -> Any:
    def read(*_: Any, **__: Any) -> pl.DataFrame:
        raise RuntimeError(message)
    return read


def test_an_unreachable_server_is_not_a_refused_query(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("connectorx")
    uri = "postgresql://hr:s3cret@127.0.0.1:1/crm"
    monkeypatch.setattr(pl, "read_database_uri", _raising(
        "timed out waiting for connection: error connecting to server: Connection refused "
        f"(os error 111) [{uri}]"))
    with pytest.raises(InputDataError) as info:
        SQLSource(uri, table="events").schema()
    text = str(info.value)
    assert "could not connect to the database" in text
    assert "refused the query" not in text and "the query was" not in text
    assert "s3cret" not in text and "postgresql://hr:***@127.0.0.1:1/crm" in text


def test_a_refused_query_still_shows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("connectorx")
    monkeypatch.setattr(pl, "read_database_uri", _raising('relation "evnts" does not exist'))
    with pytest.raises(InputDataError) as info:
        SQLSource("postgresql://hr:s3cret@db/crm", table="evnts").schema()
    text = str(info.value)
    assert "the database refused the query (RuntimeError: relation \"evnts\" does not exist)" \
        in text
    assert 'the query was: SELECT * FROM "evnts"' in text and "s3cret" not in text
