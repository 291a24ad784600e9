"""A store that survives faults: every kind of damage is refused on open with exit code 1 and
what to do (never reset, never a raw exception); store check / backup / restore; a read-only
store; outputs that fail after a commit can be replayed; pins are part of their run."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from healthrules.cli import main
from healthrules.history import StateStore, StoreError
from healthrules.history.store import SCHEMA_VERSION, StoreCorruptError, check_store
from test_cli_contract import AS_OF, ROADMAP, workspace


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return workspace(tmp_path_factory.mktemp("faults"))


def _argv(w: Path, state: Path, as_of: str = AS_OF, *extra: str) -> list[str]:
    return ["run", str(w / "roadmap.yaml"), "--state", str(state), "--events",
            str(w / "events.parquet"), "--accounts", str(w / "accounts.parquet"),
            "--as-of", as_of, *extra]


def _store(w: Path, tmp_path: Path) -> Path:
    state = tmp_path / "state.db"
    assert main(_argv(w, state, "2026-03-03")) == 0
    assert main(_argv(w, state, "2026-03-04")) == 0
    return state


def _sql(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def _truncate(path: Path) -> None:
    path.write_bytes(b"")
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _garbage_page(path: Path) -> None:
    _sql(path, "PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = 4096
    data[page * 2: page * 3] = os.urandom(page)  # a page of the tables, not the header
    path.write_bytes(bytes(data))


FAULTS: list[tuple[str, Callable[[Path], None], str]] = [
    ("truncated to 0 bytes", _truncate, "the file is empty (0 bytes)"),
    ("a page overwritten with garbage", _garbage_page, "corrupted"),
    ("an empty meta table", lambda p: _sql(p, "DELETE FROM meta"), "no schema_version"),
    ("schema_version abc", lambda p: _sql(
        p, "UPDATE meta SET value = 'abc' WHERE key = 'schema_version'"),
     "schema_version is 'abc'"),
    ("a bad date in runs", lambda p: _sql(
        p, "UPDATE runs SET as_of = '2026-02-30' WHERE as_of = '2026-03-03'"),
     "runs: as_of '2026-02-30' is not a date"),
    ("a bad date in action_state", lambda p: _sql(
        p, "UPDATE action_state SET since = 'yesterday'"),
     "action_state: since 'yesterday' is not a date"),
    ("a dropped changes table", lambda p: _sql(p, "DROP TABLE changes"),
     "table(s) missing: changes"),
    ("all tables dropped", lambda p: _sql(p, *[f"DROP TABLE {t}" for t in (
        "meta", "runs", "action_state", "stage_state", "changes", "overrides", "holds",
        "deliveries", "run_scores")]),
     "no tables"),
]


@pytest.mark.parametrize(("damage", "words"), [f[1:] for f in FAULTS],
                         ids=[f[0] for f in FAULTS])
def test_a_damaged_store_is_refused_not_reset(w: Path, tmp_path: Path,
                                              damage: Callable[[Path], None], words: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    state = _store(w, tmp_path)
    damage(state)
    before = state.read_bytes()
    capsys.readouterr()
    assert main(_argv(w, state, "2026-03-05")) == 1
    err = capsys.readouterr().err
    assert words in err, err
    assert "restore" in err and "internal error" not in err
    assert state.read_bytes() == before  # never reset, never written
    assert main(["store", "check", str(state)]) == 1
    assert "damaged" in capsys.readouterr().err
    with pytest.raises(StoreCorruptError), StateStore(state) as store:
        store.runs(), store.actions(), store.stages(), store.changes()  # dates on read


def test_a_new_store_is_created_only_where_no_file_is(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no state store"):
        StateStore(tmp_path / "new.db", create=False)
    with StateStore(tmp_path / "new.db") as store:
        assert store.schema_version == SCHEMA_VERSION == 4
    assert check_store(tmp_path / "new.db") == []
    assert not list(tmp_path.glob(".new.db.*"))  # the temporary file is gone


def test_check_backup_and_restore(w: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    state = _store(w, tmp_path)
    backup = tmp_path / "backups" / "state.db"
    assert main(["store", "check", str(state)]) == 0
    assert main(["store", "backup", str(state), str(backup)]) == 0
    assert check_store(backup) == []
    assert not Path(f"{backup}-wal").exists()  # one self-contained file
    with StateStore(backup, readonly=True) as copy:
        assert [str(d) for d in copy.runs()["as_of"]] == ["2026-03-03", "2026-03-04"]
    _garbage_page(state)
    capsys.readouterr()
    # a damaged store never overwrites a good backup
    assert main(["store", "backup", str(state), str(backup)]) == 1
    assert check_store(backup) == []
    assert main(["store", "restore", str(backup), str(state)]) == 0
    assert main(_argv(w, state, "2026-03-05")) == 0
    with StateStore(state) as store:
        assert [str(d) for d in store.runs()["as_of"]] == ["2026-03-03", "2026-03-04",
                                                           "2026-03-05"]


def test_a_read_only_store_is_an_error_about_the_file(w: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str],
                                                      ) -> None:
    state = _store(w, tmp_path)
    state.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    capsys.readouterr()
    if os.geteuid() != 0:
        assert main(_argv(w, state, "2026-03-05")) == 1
        err = capsys.readouterr().err
    else:
        # root writes any file: run the command with the effective user nobody, who can read
        # the store, the inputs and their folders but write none of them
        for path in {tmp_path, w, *tmp_path.parents, *w.parents}:
            if path != Path("/"):
                path.chmod(path.stat().st_mode | 0o005)  # others may enter and list
        for path in (*w.iterdir(), *tmp_path.iterdir()):
            path.chmod(path.stat().st_mode | 0o004)
        os.setegid(65534)
        os.seteuid(65534)
        try:
            code = main(_argv(w, state, "2026-03-05"))
        finally:
            os.seteuid(0)
            os.setegid(0)
        assert code == 1
        err = capsys.readouterr().err
    assert "read-only" in err and "internal error" not in err, err
    assert str(state) in err
    assert main(["store", "check", str(state)]) == 0


def test_a_read_only_store_from_sqlite_is_an_error_about_the_file(tmp_path: Path) -> None:
    # what SQLite says when the file cannot be written (checked for root too)
    from healthrules.history.store import _store_error

    error = _store_error(sqlite3.OperationalError("attempt to write a readonly database"),
                         tmp_path / "s.db")
    assert not isinstance(error, StoreCorruptError)
    assert "read-only" in str(error)


def test_outputs_that_fail_after_the_commit_can_be_replayed(
        w: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state.db"
    feed = tmp_path / "feed" / "changes.ndjson"
    assert main(_argv(w, state, "2026-03-03", "--ndjson", str(feed))) == 0
    first = feed.read_text()
    assert first

    def full(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device", str(feed))

    monkeypatch.setattr("healthrules.history.daily.RunResult.write_ndjson", full)
    capsys.readouterr()
    assert main(_argv(w, state, "2026-03-04", "--ndjson", str(feed))) == 1
    err = capsys.readouterr().err
    assert "was committed" in err and "--replay 2026-03-04" in err
    monkeypatch.undo()
    assert main(["run", "--state", str(state), "--replay", "2026-03-04", "--ndjson",
                 str(feed)]) == 0
    replayed = feed.read_text()
    # the same bytes a clean run writes
    clean = tmp_path / "clean.db"
    clean_feed = tmp_path / "clean.ndjson"
    assert main(_argv(w, clean, "2026-03-03")) == 0
    assert main(_argv(w, clean, "2026-03-04", "--ndjson", str(clean_feed))) == 0
    assert replayed == clean_feed.read_text()
    assert main(["run", "--state", str(state), "--replay", "2026-03-01"]) == 1


def test_a_pin_is_part_of_its_run(w: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state.db"
    pin = ["--pin", "a", "score", "80", "--reason", "sponsor call", "--expires", "2026-04-01"]
    assert main(_argv(w, state, "2026-03-03", *pin)) == 0
    assert main(_argv(w, state, "2026-03-03", *pin)) == 0  # a rerun: same pin, once
    with StateStore(state) as store:
        assert store.overrides().height == 1
    # a run that is refused stores no pin
    other = ["--pin", "b", "score", "70", "--reason", "r", "--expires", "2026-04-01"]
    assert main(_argv(w, state, "2026-03-09", "--max-staleness", "1d", *other)) == 1
    assert main(_argv(w, state, "2026-03-02", *other)) == 1  # before the latest run
    with StateStore(state) as store:
        assert store.overrides()["account_id"].to_list() == ["a"]
    assert "pinned score of a to 80" in capsys.readouterr().err


def test_output_files_get_the_umask_permissions(w: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert main(_argv(w, tmp_path / "s.db", "2026-03-03", "--out", str(tmp_path / "o"),
                          "--ndjson", str(tmp_path / "c.ndjson"))) == 0
        assert main(["schema", "-o", str(tmp_path / "s.json")]) == 0
    finally:
        os.umask(old)
    for f in [*(tmp_path / "o").iterdir(), tmp_path / "c.ndjson", tmp_path / "s.json"]:
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["as_of"] == "2026-03-03" and manifest["rules"]["rules_hash"]
    assert ROADMAP["id"] == manifest["roadmap"]
