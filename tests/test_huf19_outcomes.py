"""``backtest --outcomes``: a CSV or NDJSON outcomes file is read with its documented types
(the account key text, ``renewal_date`` a date ``YYYY-MM-DD``, ``arr`` a number), and what
cannot be read so is refused by file, column, row and value.

Before: the file was read with polars guessing its types. ``30/06/2026`` was read day-first
without a word (so ``01/04/2026`` was the 1st of April, whatever the writer meant), a
zoned ``renewal_date`` became a UTC datetime refused without a row, an impossible date
(``2026-06-31``) became a null counted as "no renewal date" without a row or value, and a
key ``00001`` became the number 1, which names no account. A CSV ``date`` attribute of the
accounts was likewise read with a format guessed from its first value.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from healthrules.cli import main

ROADMAP = {
    "id": "bt", "goal": "renew", "data": {"events": {"user": None}},
    "indicators": [{"id": "logins", "family": "process", "aggregate": "count",
                    "window": "30d", "bands": {"levels": [
                        {"name": "red", "lt": 2}, {"name": "green", "ge": 2}]}}],
    "stages": [{"id": "customer"}],
    "score": {"bands": {"levels": [{"name": "red", "lt": 50}, {"name": "green", "ge": 50}]}},
}
KEYS = ["00001", "00002", "00003", "00004"]
OUTCOMES = ("account_id,renewal_date,outcome,arr\n00001,2026-06-30,churned,100\n"
            "00002,2026-06-30,renewed,200\n00003,2026-06-30,renewed,300\n"
            "00004,2026-06-30,churned,400\n")


@pytest.fixture
def w(tmp_path: Path) -> Path:
    (tmp_path / "roadmap.yaml").write_text(json.dumps(ROADMAP))
    pl.DataFrame({"account_id": KEYS}).write_parquet(tmp_path / "accounts.parquet")
    stamps = [dt.datetime(2026, 3, 20, 9, k) for k in range(3)]
    pl.DataFrame({"account_id": ["00002"] * 3 + ["00003"] * 3, "event": ["login"] * 6,
                  "timestamp": stamps * 2}).write_parquet(tmp_path / "events.parquet")
    (tmp_path / "outcomes.csv").write_text(OUTCOMES)
    return tmp_path


def _backtest(w: Path, outcomes: str) -> list[str]:
    return ["backtest", str(w / "roadmap.yaml"), "--events", str(w / "events.parquet"),
            "--accounts", str(w / "accounts.parquet"), "--outcomes", str(w / outcomes),
            "--start", "2026-06-01", "--end", "2026-06-30", "--lookback", "7",
            "--format", "json"]


def test_text_keys_and_iso_dates_are_read(w: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_backtest(w, "outcomes.csv")) == 0
    sep = json.loads(capsys.readouterr().out)["separation"]
    # every outcome names an account (00001 stays text), and the score separates them
    assert (sep["renewals"], sep["churned"], sep["unscored"]) == (4, 2, 0)
    assert sep["auc"] == 1.0


@pytest.mark.parametrize(("written", "row"), [
    ("01/06/2026", 1),  # day-first or month-first: not guessed
    ("2026-06-30T23:30:00-05:00", 1),  # a zoned time is not a day
    ("2026-06-31", 1),  # no such day
    ("20260630", 1),
])
def test_a_date_not_written_yyyy_mm_dd_is_refused_by_row(
        w: Path, written: str, row: int, capsys: pytest.CaptureFixture[str]) -> None:
    (w / "bad.csv").write_text(OUTCOMES.replace("00001,2026-06-30", f"00001,{written}"))
    assert main(_backtest(w, "bad.csv")) == 1
    err = capsys.readouterr().err
    assert str(w / "bad.csv") in err
    assert (f"column 'renewal_date' is declared date, but row {row} holds {written!r}, "
            "which is not a date (YYYY-MM-DD)") in err
    assert "internal error" not in err and "Traceback" not in err


def test_ndjson_outcomes_are_read_alike(w: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = pl.read_csv(w / "outcomes.csv", infer_schema=False).to_dicts()
    (w / "o.ndjson").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(_backtest(w, "o.ndjson")) == 0
    assert json.loads(capsys.readouterr().out)["separation"]["auc"] == 1.0
    rows[2]["renewal_date"] = "30/06/2026"
    (w / "o.ndjson").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(_backtest(w, "o.ndjson")) == 1
    assert "row 3 holds '30/06/2026'" in capsys.readouterr().err


def test_a_bad_arr_and_a_missing_date_are_located(
        w: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (w / "arr.csv").write_text(OUTCOMES.replace("renewed,300", "renewed,\"1,300\""))
    assert main(_backtest(w, "arr.csv")) == 1
    err = capsys.readouterr().err
    assert "column 'arr' is declared float, but row 3 holds '1,300'" in err
    assert "declare 'arr'" not in err  # the outcomes' types are not the user's to declare
    (w / "gap.csv").write_text(OUTCOMES.replace("00002,2026-06-30", "00002,"))
    assert main(_backtest(w, "gap.csv")) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{w / 'gap.csv'}: error: 1 outcome(s) have no account or renewal "
                          "date (the first: row 2, no renewal_date)"), err


def test_an_accounts_csv_date_is_not_guessed(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    roadmap = {"id": "d", "goal": "g", "data": {"events": {"user": None}, "accounts": {
        "attributes": {"start": "date"}}},
        "indicators": [{"id": "n", "family": "process", "aggregate": "count"}],
        "stages": [{"id": "s", "actions": [
            {"id": "new", "kind": "positive", "when": "start >= date('2026-03-01')",
             "do": "x"}]}]}
    (tmp_path / "roadmap.yaml").write_text(json.dumps(roadmap))
    (tmp_path / "events.csv").write_text("account_id,event,timestamp\na,e,2026-06-01T10:00:00\n")
    argv = ["evaluate", str(tmp_path / "roadmap.yaml"), "--events", str(tmp_path / "events.csv"),
            "--accounts", str(tmp_path / "accounts.csv"), "--as-of", "2026-06-30",
            "--out", str(tmp_path / "out")]
    (tmp_path / "accounts.csv").write_text("account_id,start\na,2026-04-01\n")
    assert main(argv) == 0
    assert pl.read_parquet(tmp_path / "out" / "actions.parquet").height == 1
    (tmp_path / "accounts.csv").write_text("account_id,start\na,01/04/2026\n")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "column 'start' is declared date, but row 1 holds '01/04/2026'" in err
