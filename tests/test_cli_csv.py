"""The CLI reads CSV and NDJSON with the data contract's types (issue #11, item 4).

``healthrules evaluate --events x.csv`` inferred types: customer ids ``00001``-``09999``
became the integers 1-9999 and no longer matched the accounts. Keys, users, event names and
text attributes now stay text; numbers and dates are parsed as declared.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from healthrules.cli import main

ROADMAP = """\
id: csv
goal: Weekly use
data:
  events:
    user: member
    values: {amount: float}
  accounts:
    attributes: {plan: str, seats: int, start: date}
indicators:
  - id: logins
    family: process
    aggregate: count
    where: event == 'login'
  - id: total
    family: outcome
    aggregate: sum
    of: amount
  - id: members
    family: process
    aggregate: distinct
stages:
  - id: s
"""


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    roadmap = tmp_path / "roadmap.yaml"
    roadmap.write_text(ROADMAP)
    events = tmp_path / "events.csv"
    events.write_text(
        "account_id,member,event,timestamp,amount,note\n"
        "00001,007,login,2026-06-29T09:00:00,1.5,0012\n"
        "00001,7,login,2026-06-29T10:00:00,2,x\n"
        "09999,0001,login,2026-06-30,3,\n")
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("account_id,plan,seats,start\n00001,0100,5,2026-01-01\n"
                        "09999,pro,3,2026-02-01\n1,free,1,2026-03-01\n")
    return roadmap, events, accounts


def test_zero_padded_ids_from_csv_match_through_the_cli(tmp_path: Path) -> None:
    roadmap, events, accounts = _files(tmp_path)
    out = tmp_path / "out"
    code = main(["evaluate", str(roadmap), "--events", str(events), "--accounts",
                 str(accounts), "--as-of", "2026-06-30", "--out", str(out), "--format", "csv"])
    assert code == 0
    got = pl.read_csv(out / "indicators.csv", infer_schema=False).sort("account_id")
    # 00001 is not account 1; members 007 and 7 are two users
    assert got.select("account_id", "logins", "total", "members").rows() == [
        ("00001", "2", "3.5", "2"), ("09999", "1", "3.0", "1"), ("1", "0", "0.0", "0")]


def test_ndjson_keys_stay_text(tmp_path: Path) -> None:
    roadmap, _, accounts = _files(tmp_path)
    events = tmp_path / "events.ndjson"
    events.write_text(
        '{"account_id": "00001", "member": "007", "event": "login", '
        '"timestamp": "2026-06-29T09:00:00", "amount": 1}\n'
        '{"account_id": "09999", "member": 1, "event": "login", '
        '"timestamp": "2026-06-30T09:00:00", "amount": 2.5}\n')
    out = tmp_path / "out"
    code = main(["evaluate", str(roadmap), "--events", str(events), "--accounts",
                 str(accounts), "--as-of", "2026-06-30", "--out", str(out), "--format", "csv"])
    assert code == 0
    got = pl.read_csv(out / "indicators.csv", infer_schema=False).sort("account_id")
    assert got.select("account_id", "logins", "total").rows() == [
        ("00001", "1", "1.0"), ("09999", "1", "2.5"), ("1", "0", "0.0")]
