"""Sinks: webhook delivery against a real HTTP server on 127.0.0.1, and the CRM-import export.

The server (``http.server`` in a thread, started by each test) answers each request by a
script: ``fail`` (HTTP 503), ``slow`` (answers after the client's time-out) or ``ok`` (200),
and records every request it receives (headers and body), so the tests see what was
actually sent over the wire: retries, idempotency keys, nothing sent twice, and a failed
delivery retried by the next run.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules.cli import main
from healthrules.history import StateStore, run
from healthrules.history.daily import EXPORT_COLUMNS
from healthrules.history.webhooks import PAYLOAD_FIELDS, Webhook

D0 = dt.date(2026, 3, 1)
SLOW = 1.5
"""Seconds the server waits before answering a ``slow`` request (client time-out: 0.5 s)."""


def day(k: int) -> dt.date:
    return D0 + dt.timedelta(days=k - 1)


@dataclass
class Server:
    """A scripted HTTP receiver: the answers to give, in order (``ok`` once they run out)."""

    script: list[str] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_answer(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else "ok"

    def bodies(self, status: str | None = None) -> list[dict[str, Any]]:
        return [r["body"] for r in self.received if status is None or r["answer"] == status]


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            answer = state.next_answer()
            with state.lock:
                state.received.append({"answer": answer, "body": body,
                                       "headers": dict(self.headers.items()),
                                       "path": self.path})
            if answer == "garbage":  # not an HTTP answer at all
                self.wfile.write(b"NOT HTTP\r\n\r\n")
                self.close_connection = True
                return
            if answer == "slow":
                time.sleep(SLOW)
            code = 200 if answer in ("ok", "slow") else 503
            try:
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (time-out)

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler, "/hooks/health") as url:
        state.url = url
        yield state


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler], path: str) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (a free port) answering with ``handler``, stopped
    on exit; yields the URL of ``path``."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}{path}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _events(values: dict[str, list[float | None]]) -> pl.DataFrame:
    rows = [(acc, dt.datetime.combine(day(k + 1), dt.time(12)), v)
            for acc, vs in values.items() for k, v in enumerate(vs) if v is not None]
    return pl.DataFrame(rows, schema={"account_id": pl.String, "timestamp": pl.Datetime("us"),
                                      "x": pl.Float64}, orient="row").with_columns(
        pl.lit("ping").alias("event"))


ROADMAP = hr.Roadmap.model_validate({
    "id": "hooks", "goal": "g",
    "data": {"events": {"user": None, "values": {"x": "float"}},
             "accounts": {"attributes": {"csm_email": "str"}}},
    "indicators": [{"id": "x", "family": "process", "aggregate": "max", "of": "x",
                    "window": "1d"}],
    "stages": [{"id": "all", "actions": [
        {"id": "fix", "kind": "challenge", "when": "x < 3", "do": "x is {x}, due {due_date}",
         "due": "3d", "owner": {"attribute": "csm_email", "role": "csm"},
         "channel": "high-touch", "priority": "high", "escalate_after": "2d"}]}],
})
ACCOUNTS = pl.DataFrame({"account_id": ["a", "b", "c"],
                         "csm_email": ["ann@example.com", "bob@example.com", None]})
VALUES = {"a": [2, 2, 2, 5], "b": [5, 2, 2, 2], "c": [2, 5, 5, 5]}
EVENTS = _events(VALUES)


def _hook(server: Server, retries: int = 3) -> Webhook:
    return Webhook(server.url, retries=retries, backoff=0.01, timeout=0.5,
                   headers={"Authorization": "Bearer test-token"})


def test_each_change_is_posted_as_json_with_its_idempotency_key(
        server: Server, tmp_path: Path) -> None:
    res = run(ROADMAP, tmp_path / "s.db", EVENTS, ACCOUNTS, day(1), webhook=_hook(server))
    assert res.deliveries is not None
    assert (res.deliveries.delivered, res.deliveries.pending) == (2, 0)
    assert len(server.received) == 2
    first = server.received[0]
    body = first["body"]
    assert list(body) == list(PAYLOAD_FIELDS)
    assert body["idempotency_key"] == first["headers"]["Idempotency-Key"]
    assert first["headers"]["Content-Type"] == "application/json"
    assert first["headers"]["Authorization"] == "Bearer test-token"
    assert first["path"] == "/hooks/health"
    assert {k: body[k] for k in ("change", "as_of", "account", "account_key", "roadmap",
                                 "stage", "action_id", "kind", "owner", "owner_role",
                                 "channel", "priority", "due_date", "text")} == {
        "change": "opened", "as_of": "2026-03-01", "account": "a",
        "account_key": "account_id", "roadmap": "hooks", "stage": "all", "action_id": "fix",
        "kind": "challenge", "owner": "ann@example.com", "owner_role": "csm",
        "channel": "high-touch", "priority": "high", "due_date": "2026-03-04",
        "text": "x is 2.00, due 2026-03-04"}
    assert body["rules_hash"] == res.rules.hash  # type: ignore[union-attr]
    assert body["evidence"] == [{"name": "x", "value": "2.00", "band": None, "op": "<",
                                 "threshold": "3"}]
    assert server.received[1]["body"]["account"] == "c"
    assert server.received[1]["body"]["owner"] is None  # no csm_email, no fallback
    keys = [r["body"]["idempotency_key"] for r in server.received]
    assert len(set(keys)) == 2


def test_failures_and_time_outs_are_retried_with_backoff(server: Server, tmp_path: Path) -> None:
    server.script = ["fail", "slow", "ok", "fail", "ok"]
    res = run(ROADMAP, tmp_path / "s.db", EVENTS, ACCOUNTS, day(1), webhook=_hook(server))
    assert res.deliveries is not None and res.deliveries.pending == 0
    attempts = [(r["answer"], r["body"]["account"]) for r in server.received]
    assert attempts == [("fail", "a"), ("slow", "a"), ("ok", "a"), ("fail", "c"), ("ok", "c")]
    # every retry of one change carries the same key
    assert len({r["headers"]["Idempotency-Key"] for r in server.received[:3]}) == 1
    assert [d.attempts for d in res.deliveries.deliveries] == [3, 2]
    with StateStore(tmp_path / "s.db") as store:
        rows = store.deliveries().select("account_id", "status", "attempts").rows()
    assert rows == [("a", "delivered", 3), ("c", "delivered", 2)]


def test_a_malformed_answer_is_a_failed_attempt(server: Server, tmp_path: Path) -> None:
    server.script = ["garbage"]
    res = run(ROADMAP, tmp_path / "s.db", EVENTS, ACCOUNTS, day(1),
              webhook=_hook(server, retries=0))
    assert res.deliveries is not None and res.deliveries.pending == 2
    assert res.deliveries.deliveries[0].error == "bad answer (BadStatusLine)"
    with StateStore(tmp_path / "s.db") as store:
        assert store.deliveries()["last_error"].to_list() == [
            "bad answer (BadStatusLine)", None]
    again = run(ROADMAP, tmp_path / "s.db", EVENTS, ACCOUNTS, day(1), webhook=_hook(server))
    assert again.deliveries is not None and again.deliveries.delivered == 2


def test_a_failed_delivery_is_retried_by_the_next_run_and_never_sent_twice(
        server: Server, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    server.script = ["ok"] + ["fail"] * 3  # a is delivered, c fails all its attempts
    first = run(ROADMAP, path, EVENTS, ACCOUNTS, day(1), webhook=_hook(server, retries=2))
    assert first.deliveries is not None
    assert (first.deliveries.delivered, first.deliveries.pending) == (1, 1)
    assert "1 pending" in first.summary() and "HTTP 503" in first.summary()
    assert [r["body"]["account"] for r in server.received] == ["a", "c", "c", "c"]
    # the same date run again: a was delivered, so only c is sent (once, now it succeeds)
    server.received.clear()
    again = run(ROADMAP, path, EVENTS, ACCOUNTS, day(1), webhook=_hook(server))
    assert again.deliveries is not None and again.deliveries.pending == 0
    assert [r["body"]["account"] for r in server.received] == ["c"]
    # the next day: only its own changes (c resolved, b opened); nothing from day 1 again
    server.received.clear()
    run(ROADMAP, path, EVENTS, ACCOUNTS, day(2), webhook=_hook(server))
    assert [(r["body"]["account"], r["body"]["change"]) for r in server.received] == [
        ("b", "opened"), ("c", "resolved")]
    resolved = server.received[1]["body"]
    assert resolved["reason"] == "condition_cleared" and resolved["evidence"] == []
    assert resolved["due_date"] == "2026-03-04"  # kept from the opening
    server.received.clear()
    run(ROADMAP, path, EVENTS, ACCOUNTS, day(3), webhook=_hook(server))
    assert [(r["body"]["account"], r["body"]["change"]) for r in server.received] == [
        ("a", "escalated")]


def test_pending_changes_wait_for_a_run_with_the_url(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    server.script = ["fail"] * 10
    first = run(ROADMAP, path, EVENTS, ACCOUNTS, day(1), webhook=_hook(server, retries=1))
    assert first.deliveries is not None and first.deliveries.pending == 2
    assert len(server.received) == 2  # stops at the first change that keeps failing
    run(ROADMAP, path, EVENTS, ACCOUNTS, day(2))  # no webhook: nothing sent, nothing lost
    server.received.clear()
    server.script = []
    third = run(ROADMAP, path, EVENTS, ACCOUNTS, day(3), webhook=_hook(server))
    assert third.deliveries is not None and third.deliveries.pending == 0
    # oldest run first, in each run's order; day 2 had no webhook, so it queued nothing
    assert [(r["body"]["as_of"], r["body"]["account"], r["body"]["change"])
            for r in server.received] == [
        ("2026-03-01", "a", "opened"), ("2026-03-01", "c", "opened"),
        ("2026-03-03", "a", "escalated")]


def test_an_unreachable_receiver_leaves_the_run_committed(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hook = Webhook(f"http://127.0.0.1:{port}/x", retries=1, backoff=0.01, timeout=0.5)
    res = run(ROADMAP, tmp_path / "s.db", EVENTS, ACCOUNTS, day(1), webhook=hook)
    assert res.deliveries is not None and res.deliveries.pending == 2
    assert "cannot connect" in res.deliveries.summary()
    with StateStore(tmp_path / "s.db") as store:
        assert store.last_run() == day(1)
        assert store.deliveries()["last_error"].to_list()[0].startswith("cannot connect")


def test_a_webhook_url_is_http(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="http"):
        Webhook("ftp://example.com/x")


# ---------------------------------------------------------------------- the command


def _workspace(tmp_path: Path) -> dict[str, str]:
    import yaml

    roadmap = tmp_path / "roadmap.yaml"
    roadmap.write_text(yaml.safe_dump(ROADMAP.model_dump(mode="json", by_alias=True,
                                                         exclude_defaults=True)))
    EVENTS.write_parquet(tmp_path / "events.parquet")
    ACCOUNTS.write_parquet(tmp_path / "accounts.parquet")
    return {"roadmap": str(roadmap), "events": str(tmp_path / "events.parquet"),
            "accounts": str(tmp_path / "accounts.parquet"), "state": str(tmp_path / "s.db")}


def _argv(w: dict[str, str], as_of: dt.date, *extra: str) -> list[str]:
    return ["run", w["roadmap"], "--state", w["state"], "--events", w["events"],
            "--accounts", w["accounts"], "--as-of", as_of.isoformat(), *extra]


def test_the_run_command_posts_exports_and_exits_1_while_deliveries_are_pending(
        server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    w = _workspace(tmp_path)
    monkeypatch.setenv("HEALTHRULES_WEBHOOK_AUTHORIZATION", "Bearer from-the-environment")
    server.script = ["fail"] * 2
    hook = ["--webhook", server.url, "--webhook-retries", "1", "--webhook-backoff", "0.01",
            "--webhook-timeout", "0.5", "--webhook-header", "Authorization: Bearer t"]
    export = tmp_path / "out" / "open.csv"
    assert main(_argv(w, day(1), *hook, "--export", str(export))) == 1
    err = capsys.readouterr().err
    assert "2 pending" in err and "retries them" in err
    assert server.received[0]["headers"]["Authorization"] == "Bearer t"  # the option wins
    rows = list(csv.DictReader(io.StringIO(export.read_text())))
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert [(r["account"], r["owner"], r["due_date"], r["opened_at"]) for r in rows] == [
        ("a", "ann@example.com", "2026-03-04", "2026-03-01"), ("c", "", "2026-03-04",
                                                              "2026-03-01")]
    assert rows[0]["external_id"] == "hooks/fix/a/2026-03-01"
    assert json.loads(rows[0]["evidence"])[0]["name"] == "x"
    server.received.clear()
    ndjson = tmp_path / "open.ndjson"
    assert main(_argv(w, day(2), *hook[:-2], "--export", str(ndjson))) == 0
    assert server.received[0]["headers"]["Authorization"] == "Bearer from-the-environment"
    assert [(r["body"]["as_of"], r["body"]["account"]) for r in server.received] == [
        ("2026-03-01", "a"), ("2026-03-01", "c"), ("2026-03-02", "b"), ("2026-03-02", "c")]
    lines = [json.loads(x) for x in ndjson.read_text().splitlines()]
    assert [(x["account"], x["action_id"], x["due_date"]) for x in lines] == [
        ("a", "fix", "2026-03-04"), ("b", "fix", "2026-03-05")]
    assert list(lines[0]) == list(EXPORT_COLUMNS)
    assert isinstance(lines[0]["evidence"], list)


def test_the_run_command_snoozes_lists_and_unsnoozes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    w = _workspace(tmp_path)
    assert main(_argv(w, day(1), "--snooze", "a", "fix", "--until", "2026-03-03",
                      "--reason", "customer on holiday", "--set-by", "ann")) == 0
    out = capsys.readouterr()
    assert "snoozed fix of a until 2026-03-03 (hold 1)" in out.err
    assert "snooze 1: a fix until 2026-03-03 (2 day(s) left), applied: customer on holiday" in (
        out.out)
    assert "opened    c" in out.out and "opened    a" not in out.out
    assert main(_argv(w, day(2))) == 0
    assert "snooze 1: a fix until 2026-03-03 (1 day(s) left)" in capsys.readouterr().out
    assert main(_argv(w, day(3), "--dismiss", "b", "fix", "--until", "2026-03-10",
                      "--reason", "handled by sales", "--unsnooze", "1")) == 0
    out = capsys.readouterr()
    assert "hold 1 ends on 2026-03-03" in out.err
    assert "resolved  b            fix                  [high] (dismissed)" in out.out
    assert "snooze 1 ended on 2026-03-03: a fix (customer on holiday)" in out.out
    assert "opened    a" in out.out
    assert main(_argv(w, day(4), "--format", "json")) == 0
    listed = json.loads(capsys.readouterr().out)["holds"]
    assert [(h["id"], h["account_id"], h["hold"], h["until"], h["reason"]) for h in listed] == [
        (2, "b", "dismiss", "2026-03-10", "handled by sales")]


@pytest.mark.parametrize(("extra", "words"), [
    (["--snooze", "a", "fix", "--until", "2026-03-05"], "need --reason and --until"),
    (["--snooze", "a", "fix", "--reason", "r"], "need --reason and --until"),
    (["--snooze", "a", "fixx", "--until", "2026-03-05", "--reason", "r"],
     "no action 'fixx'"),
    (["--dismiss", "zz", "fix", "--until", "2026-03-05", "--reason", "r"], "no account 'zz'"),
    (["--snooze", "a", "fix", "--until", "2026-03-01", "--reason", "r"], "must be after"),
    (["--until", "2026-03-05"], "--until goes with --snooze or --dismiss"),
    (["--webhook", "ftp://x"], "--webhook"),
    (["--webhook-header", "nocolon", "--webhook", "http://127.0.0.1:9/x"], "NAME: VALUE"),
    (["--export", "open.parquet"], "name a .csv or .ndjson file"),
])
def test_run_command_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  extra: list[str], words: str) -> None:
    w = _workspace(tmp_path)
    assert main(_argv(w, day(1), *extra)) == 2
    err = capsys.readouterr().err
    assert words in err, err
    assert not Path(w["state"]).exists()  # nothing ran
