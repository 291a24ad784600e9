"""``healthrules store runs|actions|holds|deliveries`` on real stores made by ``healthrules
run``, with webhooks sent to a real HTTP server on 127.0.0.1 that fails, then recovers."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from healthrules.cli import main
from healthrules.cli.store_views import text_table
from test_webhooks import serving

ROADMAP = """\
id: routing
goal: Accounts use the product every week
data:
  events: {user: null}
  accounts: {attributes: {csm_email: str}}
indicators:
  - {id: logins_7d, family: process, aggregate: count, where: "event == 'login'", window: 7d}
stages:
  - id: operation
    actions:
      - id: no_logins
        kind: challenge
        when: logins_7d == 0
        do: "No login in a week: call the admin before {due_date}"
        due: 3d
        escalate_from: due
        owner: {attribute: csm_email, role: csm, fallback: cs-team@example.com}
        priority: high
"""


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers ``status`` (500 until told otherwise)."""

    def __init__(self) -> None:
        self.status = 500
        self.received: list[str] = []
        self.url = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(self.headers["Idempotency-Key"])
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler, "/hooks") as url:
        state.url = url
        yield state


@pytest.fixture
def job(tmp_path: Path) -> Iterator[Any]:
    """The files of a daily job, and a function that runs ``healthrules run`` on a date."""
    (tmp_path / "routing.yaml").write_text(ROADMAP)
    days = [dt.date(2026, 2, 20) + dt.timedelta(days=k) for k in range(15)]
    rows = [(acc, dt.datetime.combine(d, dt.time(9)), "login") for d in days
            for acc in ("A1", "A2", "A3") if acc == "A1" or d <= dt.date(2026, 2, 25)]
    pl.DataFrame(rows, schema={"account_id": pl.String, "timestamp": pl.Datetime("us"),
                               "event": pl.String}, orient="row").write_parquet(
        tmp_path / "logins.parquet")
    pl.DataFrame({"account_id": ["A1", "A2", "A3", "A4"],
                  "csm_email": ["ann@example.com", "bob@example.com", "ann@example.com",
                                None]}).write_parquet(tmp_path / "owners.parquet")
    state = tmp_path / "state.db"

    def run(as_of: str, *extra: str) -> int:
        return main(["run", str(tmp_path / "routing.yaml"), "--state", str(state),
                     "--events", str(tmp_path / "logins.parquet"),
                     "--accounts", str(tmp_path / "owners.parquet"), "--as-of", as_of,
                     *extra])

    run.state = state  # type: ignore[attr-defined]
    yield run


def view(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["store", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def rows_of(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    code, out, err = view(capsys, *argv, "--format", "json")
    assert code == 0, err
    got: list[dict[str, Any]] = json.loads(out)
    return got


def test_the_views_show_what_the_daily_job_keeps(
        job: Any, receiver: Receiver, capsys: pytest.CaptureFixture[str]) -> None:
    hook = ["--webhook", receiver.url, "--webhook-retries", "1", "--webhook-backoff", "0"]
    assert job("2026-03-04", *hook) == 1  # the receiver fails: 3 changes stay pending
    assert job("2026-03-05", "--snooze", "A2", "no_logins", "--until", "2026-03-12",
               "--reason", "customer on holiday", "--set-by", "ann") == 0
    assert job("2026-03-06", "--snooze", "A4", "no_logins", "--until", "2026-03-08",
               "--reason", "short one") == 0
    assert job("2026-03-09", "--dismiss", "A3", "no_logins", "--until", "2026-04-01",
               "--reason", "account is being closed") == 0
    capsys.readouterr()
    state = str(job.state)

    # runs: one per date, with the counts each reported
    runs = rows_of(capsys, "runs", state)
    assert [(r["as_of"], r["opened"], r["resolved"], r["escalated"], r["skipped"])
            for r in runs] == [("2026-03-04", 3, 0, 0, 0), ("2026-03-05", 0, 0, 0, 0),
                               ("2026-03-06", 0, 0, 0, 0), ("2026-03-09", 0, 1, 1, 2)]
    assert all(len(r["rules_hash"]) == 64 and r["accounts"] == 4 for r in runs)
    assert [r["as_of"] for r in rows_of(capsys, "runs", state, "--last", "2")] == [
        "2026-03-06", "2026-03-09"]
    code, out, _ = view(capsys, "runs", state)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["as_of", "accounts", "opened", "resolved", "escalated",
                                "newest_event", "skipped", "rules_hash"]
    assert lines[-1].split()[:8] == ["2026-03-09", "4", "0", "1", "1", "2026-03-06", "09:00",
                                     "2"]
    assert lines[-1].split()[8] == runs[-1]["rules_hash"][:12]

    # actions: the open ones, overdue first, with owner, due date, opening and escalation
    acts = rows_of(capsys, "actions", state)
    assert [(a["account_id"], a["owner"], a["opened_at"], a["due_date"], a["days_overdue"],
             a["escalated_at"]) for a in acts] == [
        ("A2", "bob@example.com", "2026-03-04", "2026-03-07", 2, None),
        ("A4", "cs-team@example.com", "2026-03-04", "2026-03-07", 2, "2026-03-09")]
    assert [a["account_id"] for a in rows_of(capsys, "actions", state, "--owner",
                                             "bob@example.com")] == ["A2"]
    assert rows_of(capsys, "actions", state, "--account", "A1") == []
    every = rows_of(capsys, "actions", state, "--status", "all")
    assert {(a["account_id"], a["status"]) for a in every} >= {("A3", "resolved")}
    assert rows_of(capsys, "actions", state, "--on", "2026-03-07")[0]["days_overdue"] is None
    code, out, _ = view(capsys, "actions", state, "--status", "pending")
    assert (code, out) == (0, "(no pending actions)\n")

    # holds: every snooze and dismissal with its status at the last run, or --on a date
    holds = rows_of(capsys, "holds", state)
    assert [(h["id"], h["account_id"], h["hold"], h["status"], h["until"], h["days_left"],
             h["reason"]) for h in holds] == [
        (3, "A3", "dismiss", "in_force", "2026-04-01", 23, "account is being closed"),
        (2, "A4", "snooze", "expired", "2026-03-08", None, "short one"),
        (1, "A2", "snooze", "in_force", "2026-03-12", 3, "customer on holiday")]
    at = {h["id"]: h["status"] for h in rows_of(capsys, "holds", state, "--on", "2026-03-05")}
    assert at == {1: "in_force", 2: "upcoming", 3: "upcoming"}
    assert [h["id"] for h in rows_of(capsys, "holds", state, "--in-force")] == [3, 1]
    code, out, _ = view(capsys, "holds", state)
    assert "expired" in out.splitlines()[3] and "short one" in out

    # deliveries: failed after its attempts, with the receiver's answer; the others pending
    sent = rows_of(capsys, "deliveries", state)
    assert [(d["account_id"], d["change"], d["status"], d["attempts"], d["last_error"])
            for d in sent] == [("A2", "opened", "failed", 2, "HTTP 500"),
                               ("A3", "opened", "pending", 0, None),
                               ("A4", "opened", "pending", 0, None)]
    code, out, err = view(capsys, "deliveries", state, "--fail-on-pending")
    assert code == 1 and "3 webhook change(s) not delivered (1 failed)" in err
    assert "HTTP 500" in out

    # the receiver recovers: the next run sends them all, and the check passes
    receiver.status = 204
    assert job("2026-03-10", *hook) == 0
    capsys.readouterr()
    sent = rows_of(capsys, "deliveries", state)
    assert {d["status"] for d in sent} == {"delivered"}
    assert all(d["delivered_at"] and d["last_error"] is None for d in sent)
    assert len(receiver.received) == 2 + len(sent)  # 2 failed attempts, then each once
    code, _, err = view(capsys, "deliveries", state, "--fail-on-pending")
    assert (code, err) == (0, "")
    assert rows_of(capsys, "deliveries", state, "--status", "failed") == []
    assert rows_of(capsys, "deliveries", state, "--url", "http://elsewhere/") == []


def test_csv_has_every_column_and_json_the_same_rows(
        job: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert job("2026-03-04") == 0
    capsys.readouterr()
    state = str(job.state)
    for what in ("runs", "actions", "holds", "deliveries"):
        code, out, err = view(capsys, what, state, "--format", "csv")
        assert code == 0, err
        table = list(csv.DictReader(io.StringIO(out)))
        assert table == [{k: "" if v is None else str(v) for k, v in row.items()}
                         for row in rows_of(capsys, what, state)], what
    code, out, _ = view(capsys, "runs", state, "--format", "csv")
    header = out.splitlines()[0].split(",")
    assert {"started_at", "finished_at", "plan_id", "healthrules_version"} <= set(header)
    code, out, _ = view(capsys, "deliveries", state)
    assert (code, out) == (0, "(no webhook deliveries)\n")


def test_exit_codes(job: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = view(capsys, "runs", str(tmp_path / "missing.db"))
    assert code == 2 and "no such store file" in err
    code, _, err = view(capsys, "holds", str(tmp_path))
    assert code == 2 and "is a folder" in err
    code, _, err = view(capsys, "holds", str(tmp_path / "x.db"), "--on", "2026-13-01")
    assert code == 2 and "is not a date" in err
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\x07" * 4000)
    code, _, err = view(capsys, "actions", str(damaged))
    assert code == 1 and "corrupted" in err
    assert job("2026-03-04") == 0
    before = job.state.read_bytes()
    for what in ("runs", "actions", "holds", "deliveries"):
        assert view(capsys, what, str(job.state))[0] == 0
    assert job.state.read_bytes() == before  # the views only read


def test_text_table_aligns_text_left_and_numbers_right() -> None:
    frame = pl.DataFrame({"name": ["a", "long name", None], "n": [1, 100, None]})
    assert text_table(frame) == (
        "name         n\n"
        "---------  ---\n"
        "a            1\n"
        "long name  100\n"
        "\n")
