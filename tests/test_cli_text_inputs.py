"""CSV and NDJSON inputs: an ordinary mistake in one is an input problem (exit code 1, the
file, column, row and value on standard error), never exit code 3; and a rule-pack test's
fixture files are read as ``healthrules evaluate`` reads them (never guessed).

Before: an empty CSV, a malformed NDJSON line, a timestamp, number or date that does not
parse stopped the evaluation with a polars error, reported as a bug in healthrules (exit 3);
a boolean attribute ``yes`` was read as null without a word; and a test's ``accounts_file``
read the key ``00001`` and the ``str`` attribute ``007`` as numbers, so the case's
expectations for ``00001`` named an unknown account and ``plan == '007'`` was false.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import polars as pl
import pytest

from healthrules.cli import main
from healthrules.testing import run

ROADMAP = {
    "id": "fx", "goal": "g",
    "data": {"events": {"values": {"q": "int", "x": "float"}},
             "accounts": {"attributes": {"plan": "str", "vip": "bool", "start": "date"}}},
    "indicators": [{"id": "n", "family": "process", "aggregate": "count"},
                   {"id": "total", "family": "process", "aggregate": "sum", "of": "q"}],
    "stages": [{"id": "s", "actions": [
        {"id": "pro", "kind": "positive", "when": "plan == '007'", "do": "x"},
        {"id": "v", "kind": "positive", "when": "vip", "do": "x"}]}],
}
EVENTS = "account_id,event,timestamp,q,x,user_id\n00001,e,2026-06-01T10:00:00,3,0.5,u1\n"
ACCOUNTS = "account_id,plan,vip,start\n00001,007,true,2026-01-02\n00002,,,\n"


@pytest.fixture
def w(tmp_path: Path) -> Path:
    (tmp_path / "roadmap.yaml").write_text(json.dumps(ROADMAP))
    (tmp_path / "events.csv").write_text(EVENTS)
    (tmp_path / "accounts.csv").write_text(ACCOUNTS)
    return tmp_path


def _evaluate(w: Path, events: str = "events.csv", accounts: str = "accounts.csv") -> list[str]:
    return ["evaluate", str(w / "roadmap.yaml"), "--events", str(w / events), "--accounts",
            str(w / accounts), "--as-of", "2026-06-30", "--out", str(w / "out")]


def test_good_csv_files_evaluate(w: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_evaluate(w)) == 0
    fired = pl.read_parquet(w / "out" / "actions.parquet")
    assert sorted(zip(fired["account_id"], fired["action_id"], strict=True)) == [
        ("00001", "pro"), ("00001", "v")]
    ind = pl.read_parquet(w / "out" / "indicators.parquet").sort("account_id")
    assert ind["total"].to_list() == [3, 0]  # a sum of no values is 0


BAD = [
    ("events.csv", "", "events", "is empty"),
    ("events.csv", "account_id,event,timestamp,q,x,user_id\na,e,yesterday,1,1,u\n", "events",
     "column 'timestamp' is declared datetime, but row 1 holds 'yesterday'"),
    ("events.csv", "account_id,event,timestamp,q,x,user_id\na,e,2026-06-01T10:00:00,1,1,u\n"
     "a,e,2026-06-02T10:00:00,1.5,1,u\n", "events",
     "column 'q' is declared int, but row 2 holds '1.5'"),
    ("events.csv", "account_id,event,timestamp,q,x,user_id\na,e,2026-06-01T10:00:00,1,abc,u\n",
     "events", "column 'x' is declared float, but row 1 holds 'abc'"),
    ("events.ndjson", '{"account_id": "a", "event": "e"\n', "events", "not a readable NDJSON"),
    ("accounts.csv", "account_id,plan,vip,start\na,pro,yes,2026-01-01\n", "accounts",
     "column 'vip' is declared bool, but row 1 holds 'yes'"),
    ("accounts.csv", "account_id,plan,vip,start\na,pro,true,2026-13-01\n", "accounts",
     "column 'start' is declared date, but row 1 holds '2026-13-01'"),
    ("accounts.csv", "", "accounts", "is empty"),
]


@pytest.mark.parametrize(("name", "text", "side", "words"), BAD,
                         ids=[f"{b[2]}-{b[3][:30]}" for b in BAD])
def test_a_bad_text_file_exits_1_naming_it(w: Path, capsys: pytest.CaptureFixture[str],
                                           name: str, text: str, side: str,
                                           words: str) -> None:
    (w / name).write_text(text)
    argv = (_evaluate(w, events=name) if side == "events" else _evaluate(w, accounts=name))
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert words in err and str(w / name) in err, err
    assert "internal error" not in err and "Traceback" not in err
    assert not (w / "out").exists()


def test_backtest_outcomes_empty_exits_1(w: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (w / "outcomes.csv").write_text("")
    argv = ["backtest", str(w / "roadmap.yaml"), "--events", str(w / "events.csv"),
            "--accounts", str(w / "accounts.csv"), "--outcomes", str(w / "outcomes.csv"),
            "--start", "2026-06-01", "--end", "2026-06-30"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "outcomes file is empty" in err and "internal error" not in err


def _test_file(w: Path, expect: str, accounts: str = "accounts.csv") -> Path:
    path = w / "fx.test.yaml"
    path.write_text(textwrap.dedent(f"""\
        kind: test
        roadmap: roadmap.yaml
        as_of: 2026-06-30
        cases:
          - name: files
            accounts_file: {accounts}
            events_file: events.csv
            expect:
        """) + textwrap.indent(textwrap.dedent(expect), "      "))
    return path


def test_fixture_files_are_read_as_evaluate_reads_them(w: Path) -> None:
    report = run([_test_file(w, """\
        "00001":
          indicators: {n: 1, total: 3}
          actions: {exactly: [pro, v]}
        "00002":
          actions: {none: true}
        """)])
    assert report.ok, report.render()
    # and a wrong expectation still fails
    report = run([_test_file(w, """\
        "00001":
          actions: {exactly: [pro]}
        """)])
    assert not report.ok


def test_a_fixture_value_of_the_wrong_type_is_a_case_error(w: Path) -> None:
    (w / "bad.csv").write_text("account_id,plan,vip,start\na,pro,yes,2026-01-01\n")
    report = run([_test_file(w, "a: {stage: s}\n", accounts="bad.csv")])
    assert not report.ok
    assert "'vip' holds 'yes'" in report.render(), report.render()


def test_csv_wall_times_a_daylight_saving_change_skips_or_repeats(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # read as the engine reads wall times (docs/semantics.md): 02:30 on New York's 8 March
    # 2026 with the offset before the change (07:30 UTC), 01:30 on 1 November as its earlier
    # instant (05:30 UTC); they were a polars error before (exit code 3)
    roadmap = dict(ROADMAP, data={"events": {"timezone": "America/New_York"},
                                  "accounts": {"attributes": {"since": "datetime"}}})
    roadmap["indicators"] = [{"id": "first", "family": "process", "aggregate": "first_time"},
                             {"id": "n", "family": "process", "aggregate": "count",
                              "window": {"from": "since"}}]
    roadmap["stages"] = [{"id": "s"}]
    (tmp_path / "roadmap.yaml").write_text(json.dumps(roadmap))
    (tmp_path / "events.csv").write_text(
        "account_id,event,timestamp,user_id\na,e,2026-03-08T02:30:00,u\n"
        "b,e,2026-11-01T01:30:00,u\n")
    (tmp_path / "accounts.csv").write_text(
        "account_id,since\na,2026-03-08T02:30:00\nb,2026-11-01T01:30:00\n")
    argv = ["evaluate", str(tmp_path / "roadmap.yaml"), "--events",
            str(tmp_path / "events.csv"), "--accounts", str(tmp_path / "accounts.csv"),
            "--as-of", "2026-11-02", "--out", str(tmp_path / "out")]
    assert main(argv) == 0, capsys.readouterr().err
    ind = pl.read_parquet(tmp_path / "out" / "indicators.parquet").sort("account_id")
    utc = [t.astimezone(dt.UTC).replace(tzinfo=None) for t in ind["first"]]
    assert utc == [dt.datetime(2026, 3, 8, 7, 30), dt.datetime(2026, 11, 1, 5, 30)]
    # `since` is read the same way: each account's own event is at its anchor, so counted
    assert ind["n"].to_list() == [1, 1]
    # times with an offset are their instants
    (tmp_path / "events.csv").write_text(
        "account_id,event,timestamp,user_id\na,e,2026-03-08T02:30:00-05:00,u\n"
        "b,e,2026-11-01T06:10:00+00:00,u\n")
    assert main([*argv[:-1], str(tmp_path / "out2")]) == 0, capsys.readouterr().err
    ind = pl.read_parquet(tmp_path / "out2" / "indicators.parquet").sort("account_id")
    utc = [t.astimezone(dt.UTC).replace(tzinfo=None) for t in ind["first"]]
    assert utc == [dt.datetime(2026, 3, 8, 7, 30), dt.datetime(2026, 11, 1, 6, 10)]
