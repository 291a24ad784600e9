"""The state store and the daily run: changes only, idempotent reruns, rewinds, overrides,
stage age, schema versions, and a run killed mid-transaction."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules.history import StateStore, StoreError, history, run
from healthrules.history import store as store_module

D0 = dt.date(2026, 3, 1)


def day(k: int) -> dt.date:
    return D0 + dt.timedelta(days=k - 1)


def _events(values: dict[str, list[float | None]]) -> pl.DataFrame:
    rows = [(acc, dt.datetime.combine(day(k + 1), dt.time(12)), v)
            for acc, vs in values.items() for k, v in enumerate(vs) if v is not None]
    return pl.DataFrame(rows, schema={"account_id": pl.String, "timestamp": pl.Datetime("us"),
                                      "x": pl.Float64}, orient="row").with_columns(
        pl.lit("ping").alias("event"))


def _roadmap(actions: list[dict[str, Any]] | None = None, **action: Any) -> hr.Roadmap:
    return hr.Roadmap.model_validate({
        "id": "lc", "goal": "g",
        "data": {"events": {"user": None, "values": {"x": "float"}},
                 "accounts": {"attributes": {"start": "date"}}},
        "indicators": [
            {"id": "x", "family": "process", "aggregate": "max", "of": "x", "window": "1d",
             "bands": {"levels": [{"name": "low", "lt": 3}, {"name": "ok", "ge": 3}]}},
            {"id": "double", "family": "process", "expr": "x * 2"}],
        "stages": [{"id": "early", "entry": "as_of < start"}, {"id": "late"}],
        "score": {"bands": {"levels": [{"name": "red", "lt": 50}, {"name": "green", "ge": 50}]}},
        "actions": actions or [
            {"id": "fix", "kind": "challenge", "when": "x < 3", "do": "x is {x}", **action},
            {"id": "red", "kind": "challenge", "when": "score_band == 'red'",
             "do": "score {score:.0f}", "priority": "high"}],
    })


ACCOUNTS = pl.DataFrame({"account_id": ["a", "b"], "start": [day(3), day(3)]})
VALUES = {"a": [2, 2, 5, 5, 2, 2], "b": [5, 5, 5, 1, 1, 5]}


def _run_days(path: Path, roadmap: hr.Roadmap, days: range,
              values: dict[str, list[float | None]] = VALUES) -> list[Any]:
    return [run(roadmap, path, _events(values), ACCOUNTS, day(k)) for k in days]


def test_a_run_reports_only_what_changed(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    r1, r2, r3 = _run_days(path, _roadmap(), range(1, 4))
    assert r1.changes.select("account_id", "action_id", "change").rows() == [
        ("a", "fix", "opened"), ("a", "red", "opened")]
    assert r2.changes.height == 0 and r2.open.height == 2
    assert r3.changes.select("account_id", "action_id", "change", "reason").rows() == [
        ("a", "fix", "resolved", "condition_cleared"), ("a", "red", "resolved",
                                                        "condition_cleared")]
    assert r3.changes["days_open"].to_list() == [2, 2]
    assert r1.changes["text"].to_list() == ["x is 2.00", "score 0"]
    lines = [json.loads(x) for x in r1.to_ndjson().splitlines()]
    assert lines[0]["as_of"] == "2026-03-01" and lines[0]["change"] == "opened"
    out = r1.write_ndjson(tmp_path / "out" / "changes.ndjson")
    assert out.read_text().count("\n") == 2
    with StateStore(path) as store:
        assert store.runs()["as_of"].to_list() == [day(1), day(2), day(3)]
        assert store.changes().height == 4
        assert store.actions().height == 0 or set(store.actions()["status"]) == {"resolved"}


def test_the_store_agrees_with_the_history_replay(tmp_path: Path) -> None:
    roadmap = _roadmap(**{"for": "1d", "cooldown": "2d", "escalate_after": "1d"})
    values = {"a": [2, 2, 2, 5, 2, 2, 2, 2], "b": [1, 5, 1, 1, 1, 5, 1, 1]}
    results = _run_days(tmp_path / "s.db", roadmap, range(1, 9), values)
    stored = pl.concat([r.changes.select(pl.lit(r.as_of).alias("as_of"), pl.all())
                        for r in results])
    h = history(roadmap, _events(values), ACCOUNTS, day(1), day(8), every="1d")
    assert stored.drop("text", "rules_hash").equals(h.lifecycle.changes.drop("text"))
    assert set(stored["change"]) == {"opened", "resolved", "escalated"}


def test_a_rerun_of_the_same_date_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    roadmap = _roadmap()
    _run_days(path, roadmap, range(1, 3))
    with StateStore(path) as store:
        before = (store.actions(), store.stages(), store.changes(), store.runs().height)
    again = run(roadmap, path, _events(VALUES), ACCOUNTS, day(2))
    assert again.undone == (day(2),)
    with StateStore(path) as store:
        after = (store.actions(), store.stages(), store.changes(), store.runs().height)
    for b, a in zip(before, after, strict=True):
        assert b == a if isinstance(b, int) else b.equals(a)
    first = run(roadmap, path, _events(VALUES), ACCOUNTS, day(3))
    second = run(roadmap, path, _events(VALUES), ACCOUNTS, day(3))
    assert first.changes.equals(second.changes)


def test_an_earlier_date_needs_rewind(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    roadmap = _roadmap()
    _run_days(path, roadmap, range(1, 4))
    with pytest.raises(StoreError, match="rewind"):
        run(roadmap, path, _events(VALUES), ACCOUNTS, day(2))
    r = run(roadmap, path, _events(VALUES), ACCOUNTS, day(2), rewind=True)
    assert r.undone == (day(2), day(3))
    with StateStore(path) as store:
        assert store.last_run() == day(2)


def test_one_store_per_roadmap(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _run_days(path, _roadmap(), range(1, 2))
    other = _roadmap().model_copy(update={"id": "other"})
    with pytest.raises(StoreError, match="roadmap 'lc'"):
        run(other, path, _events(VALUES), ACCOUNTS, day(2))


def test_overrides_apply_until_they_expire(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    roadmap = _roadmap()
    with StateStore(path) as store:
        pid = store.pin("a", "x", 9, reason="data outage", expires=day(3), on=day(1),
                        set_by="kim")
        store.pin("b", "score", 10, reason="churn signal from the call", expires=day(5),
                  on=day(2))
        store.pin("b", "nope", 1, reason="typo", expires=day(5), on=day(1))
        with pytest.raises(StoreError, match="reason"):
            store.pin("a", "x", 1, reason=" ", expires=day(3))
        with pytest.raises(StoreError, match="expire after"):
            store.pin("a", "x", 1, reason="r", expires=day(1), on=day(1))
    r1, r2, r3 = _run_days(path, roadmap, range(1, 4))
    ind = r1.evaluation.indicators.filter(pl.col("account_id") == "a").row(0, named=True)
    assert (ind["x"], ind["x__band"], ind["double"]) == (9.0, "ok", 18.0)
    assert r1.changes.filter(pl.col("account_id") == "a").height == 0  # pinned out of trouble
    rep = r1.overrides.select("account_id", "target", "value", "computed", "status").rows()
    assert rep == [("a", "x", 9.0, 2.0, "applied"), ("b", "nope", 1.0, None, "unknown_target")]
    assert r2.evaluation.scores.filter(pl.col("account_id") == "b")["score"].item() == 10.0
    assert ("b", "red", "opened") in r2.changes.select("account_id", "action_id",
                                                       "change").rows()
    # day 3: a's pin has expired; x = 5 there anyway, but the report says it ended
    assert r3.expired_overrides["id"].to_list() == [pid]
    assert "a" not in r3.overrides["account_id"].to_list()
    with StateStore(path) as store:
        store.unpin(pid + 1, on=day(4))
        assert store.overrides(active_on=day(4))["target"].to_list() == ["nope"]
        with pytest.raises(StoreError, match="no override"):
            store.unpin(999)


def test_days_in_stage_comes_from_the_store(tmp_path: Path) -> None:
    roadmap = _roadmap([{"id": "stuck", "kind": "challenge", "when": "stuck(2)",
                         "do": "{stage} for {days_in_stage} days"}])
    results = _run_days(tmp_path / "s.db", roadmap, range(1, 7))
    opened = [(r.as_of, t) for r in results for t in r.changes.filter(
        pl.col("change") == "opened")["text"].to_list()]
    assert opened == [(day(5), "late for 2 days"), (day(5), "late for 2 days")]
    with StateStore(tmp_path / "s.db") as store:
        assert store.stages()["since"].to_list() == [day(3), day(3)]


# ---------------------------------------------------------------------- schema versions


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    StateStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer healthrules"):
        StateStore(path)


def test_an_older_schema_is_migrated_on_open(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.db"
    _run_days(path, _roadmap(), range(1, 3))
    # make it a version-1 file again: the columns version 2 added are dropped
    conn = sqlite3.connect(path)
    for table, column, _ in store_module._V2_COLUMNS:
        conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()

    def add_notes(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE overrides ADD COLUMN note TEXT")

    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(store_module, "MIGRATIONS", {**store_module.MIGRATIONS, 2: add_notes})
    with StateStore(path) as store:
        assert store.schema_version == 3
        assert store.runs().height == 2
        assert store.runs()["rules_hash"].null_count() == 2  # runs from before provenance
        cols = [r[1] for r in store.conn.execute("PRAGMA table_info(overrides)")]
        assert "note" in cols
    run(_roadmap(), path, _events(VALUES), ACCOUNTS, day(3))


def test_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a healthrules state store"):
        StateStore(path)
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError):
        StateStore(tmp_path / "junk.db")


# ---------------------------------------------------------------------- killed mid-run

CHILD = """
import datetime as dt, sys, polars as pl
sys.path.insert(0, {tests!r})
import test_store as t
from healthrules.history import run
run(t._roadmap(), {path!r}, t._events(t.VALUES), t.ACCOUNTS, t.day({k}))
print("committed")
"""


def _child(path: Path, k: int, pause: float | None, marker: Path) -> subprocess.Popen[str]:
    env = dict(os.environ)
    if pause is not None:
        env[store_module.PAUSE_ENV] = str(pause)
        env[store_module.PAUSE_MARKER_ENV] = str(marker)
    code = CHILD.format(tests=str(Path(__file__).parent), path=str(path), k=k)
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _snapshot(path: Path) -> tuple[Any, ...]:
    with StateStore(path) as store:
        return (store.actions().rows(), store.stages().rows(), store.changes().rows(),
                store.runs().drop("started_at", "finished_at").rows())


def test_a_killed_run_leaves_the_previous_state_intact(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    marker = tmp_path / "paused"
    _run_days(path, _roadmap(), range(1, 4))
    before = _snapshot(path)
    child = _child(path, 4, 60, marker)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the run never reached the pause"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert _snapshot(path) == before
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    # the rerun completes and gives what an uninterrupted run gives
    done = _child(path, 4, None, marker)
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0 and "committed" in out, err
    clean = tmp_path / "clean.db"
    _run_days(clean, _roadmap(), range(1, 5))
    assert _snapshot(path)[:3] == _snapshot(clean)[:3]


# ---------------------------------------------------------------------- the command line


def test_cli_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from healthrules.cli import main

    roadmap = tmp_path / "roadmap.yaml"
    roadmap.write_text(json.dumps(_roadmap().model_dump(mode="json", by_alias=True)))
    _events(VALUES).write_parquet(tmp_path / "events.parquet")
    ACCOUNTS.write_parquet(tmp_path / "accounts.parquet")
    base = [str(roadmap), "--state", str(tmp_path / "s.db"), "--events",
            str(tmp_path / "events.parquet"), "--accounts", str(tmp_path / "accounts.parquet")]
    assert main(["run", *base, "--as-of", str(day(1)), "--ndjson",
                 str(tmp_path / "c.ndjson")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("as of 2026-03-01: 2 opened, 0 resolved, 0 escalated; 2 open")
    assert "opened    a            fix" in out
    assert len((tmp_path / "c.ndjson").read_text().splitlines()) == 2
    assert main(["run", *base, "--as-of", str(day(3)), "--format", "json", "--pin", "b",
                 "score", "80", "--reason", "exec sponsor confirmed", "--expires",
                 str(day(10))]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"] == {"opened": 0, "resolved": 2, "escalated": 0, "open": 0}
    assert main(["run", *base, "--as-of", str(day(2))]) == 1  # earlier than the last run
    assert "rewind" in capsys.readouterr().err
    assert main(["run", *base, "--as-of", str(day(4)), "--ndjson", "-"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["account_id"] for x in lines] == ["b"]  # b's pinned score hides red
    assert main(["run", *base, "--as-of", str(day(5)), "--pin", "b", "x", "1"]) == 2


def test_cli_run_refuses_a_pin_of_an_unknown_target(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from healthrules.cli import main

    roadmap = tmp_path / "roadmap.yaml"
    roadmap.write_text(json.dumps(_roadmap().model_dump(mode="json", by_alias=True)))
    _events(VALUES).write_parquet(tmp_path / "events.parquet")
    ACCOUNTS.write_parquet(tmp_path / "accounts.parquet")
    state = tmp_path / "s.db"
    args = ["run", str(roadmap), "--state", str(state), "--events",
            str(tmp_path / "events.parquet"), "--accounts", str(tmp_path / "accounts.parquet"),
            "--as-of", str(day(1)), "--pin", "a", "scor", "80", "--reason", "typo",
            "--expires", str(day(9))]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "'scor'" in err and "did you mean 'score'?" in err
    assert not state.exists() or StateStore(state).overrides().height == 0
