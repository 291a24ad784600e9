"""docs/operations.md, "Routing actions to people and tools": the roadmap and the commands run
as written, against a real HTTP receiver on 127.0.0.1 (the page's port 8080 is replaced by the
receiver's), and the documented webhook fields and export columns are the ones the code
writes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from healthrules.history.daily import EXPORT_COLUMNS
from healthrules.history.webhooks import PAYLOAD_FIELDS
from test_docs import fenced_blocks

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "operations.md"


def _section() -> str:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index("## Routing actions to people and tools")
    return text[start:text.index("\n## ", start + 5)]


def _table_first_column(section: str, heading: str) -> list[str]:
    part = section[section.index(heading):]
    rows = re.findall(r"^\| `([a-z_]+)` \|", part.split("\n\n|", 1)[1].split("\n\n")[0],
                      flags=re.M)
    return rows


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append({"body": body, "key": self.headers["Idempotency-Key"]})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}", received
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_documented_fields_are_the_ones_written() -> None:
    section = _section()
    assert _table_first_column(section, "### Webhooks") == list(PAYLOAD_FIELDS)
    assert _table_first_column(section, "### CRM import") == list(EXPORT_COLUMNS)


def test_routing_recipe_runs(tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]) -> None:
    host, received = receiver
    blocks = fenced_blocks(PAGE.read_text(encoding="utf-8").split("\n"))
    roadmap = next(b for b in blocks if b.marker == "routing: rules/routing.yaml")
    commands = [line[2:] for b in blocks if b.marker == "routing" for line in b.lines
                if line.startswith("$ ")]
    assert len(commands) == 3
    for sub in ("rules", "data", "state", "out"):
        (tmp_path / sub).mkdir()
    (tmp_path / "rules" / "routing.yaml").write_text(roadmap.text)
    # A1 logs in every day; A2 and A3 stop after 2026-02-25; A4 (no CSM) never logs in
    days = [dt.date(2026, 2, 20) + dt.timedelta(days=k) for k in range(15)]
    rows = [(acc, dt.datetime.combine(d, dt.time(9)), "login") for d in days
            for acc in ("A1", "A2", "A3") if acc == "A1" or d <= dt.date(2026, 2, 25)]
    pl.DataFrame(rows, schema={"account_id": pl.String, "timestamp": pl.Datetime("us"),
                               "event": pl.String}, orient="row").write_parquet(
        tmp_path / "data" / "logins.parquet")
    pl.DataFrame({"account_id": ["A1", "A2", "A3", "A4"],
                  "csm_email": ["ann@example.com", "bob@example.com", "ann@example.com",
                                None]}).write_parquet(tmp_path / "data" / "owners.parquet")

    def run(command: str) -> subprocess.CompletedProcess[str]:
        argv = shlex.split(command.replace("127.0.0.1:8080", host))
        assert argv[0] == "healthrules"
        return subprocess.run([sys.executable, "-m", "healthrules", *argv[1:]], cwd=tmp_path,
                              text=True, capture_output=True, timeout=300,
                              env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})

    first = run(commands[0])
    assert first.returncode == 0, first.stderr
    assert [(r["body"]["account"], r["body"]["change"], r["body"]["owner"])
            for r in received] == [("A2", "opened", "bob@example.com"),
                                   ("A3", "opened", "ann@example.com"),
                                   ("A4", "opened", "cs-team@example.com")]
    assert all(r["key"] == r["body"]["idempotency_key"] for r in received)
    assert received[0]["body"]["due_date"] == "2026-03-07"
    assert received[0]["body"]["text"] == (
        "No login in a week: call the admin before 2026-03-07")
    export = list(csv.DictReader(io.StringIO(
        (tmp_path / "out" / "open-actions.csv").read_text())))
    assert [(r["account"], r["owner"], r["due_date"]) for r in export] == [
        ("A2", "bob@example.com", "2026-03-07"), ("A3", "ann@example.com", "2026-03-07"),
        ("A4", "cs-team@example.com", "2026-03-07")]

    received.clear()
    second = run(commands[1])
    assert second.returncode == 0, second.stderr
    assert "snoozed no_logins of A2 until 2026-03-12 (hold 1)" in second.stderr
    assert "snooze 1: A2 no_logins until 2026-03-12" in second.stdout
    assert received == []  # nothing changed; A2 stays open, snoozed

    third = run(commands[2])
    assert third.returncode == 0, third.stderr
    assert [(r["body"]["account"], r["body"]["change"], r["body"]["reason"])
            for r in received] == [("A3", "resolved", "dismissed")]
    assert "snooze 1: A2 no_logins" in third.stdout and "dismiss 2: A3" in third.stdout
    lines = [json.loads(x) for x in (tmp_path / "out" / "open-actions.ndjson").read_text(
    ).splitlines()]
    assert [(x["account"], x["snoozed_until"]) for x in lines] == [
        ("A2", "2026-03-12"), ("A4", None)]

    # "What the store keeps": the views of the store these runs left print what the page shows
    inspect = next(b for b in blocks if b.marker == "routing: inspect")
    problems = []
    commands = []
    for line in inspect.lines:
        if line.startswith("$ "):
            commands.append((line[2:], []))
        else:
            commands[-1][1].append(line.rstrip())
    assert len(commands) >= 4
    for command, expected in commands:
        line, _, comment = command.partition("#")
        m = re.search(r"exit code (\d+)", comment)
        done = run(line)
        got = done.stdout.replace(host, "127.0.0.1:8080").rstrip("\n").split("\n")
        if done.returncode != (int(m.group(1)) if m else 0) or got != expected:
            problems.append(f"$ {command}\n--- page\n" + "\n".join(expected)
                            + f"\n--- actual (exit code {done.returncode})\n"
                            + "\n".join(got) + done.stderr)
    assert not problems, "\n\n".join(problems)
