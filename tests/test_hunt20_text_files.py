"""CSV and NDJSON files on the command line: what a row's shape or a JSON value's kind would
have changed silently is refused by its line, or read as meant (docs/sources.md, "Time
zones", the text files' paragraph).

- a CSV row with fewer fields than the header was read with nulls in the fields it lacks
  (a missing ``amount`` summed as nothing, a missing ``seats`` attribute null); one with
  more was refused with polars' own message, which names no line;
- a blank line (in the middle, at the end, after CRLF lines) was a row of nulls: an events
  row with a null account, counted as ignored input, or an accounts row refused for its
  null key;
- a list or an object in an NDJSON text column (a key, a user, an event name) was read as
  its JSON text.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from healthrules.cli import main
from healthrules.cli._frames import csv_rows

ROADMAP = """\
id: csv
goal: Weekly use
data:
  events:
    user: member
    values: {amount: float}
  accounts:
    attributes: {plan: str, seats: int}
indicators:
  - id: logins
    family: process
    aggregate: count
    where: event == 'login'
  - id: total
    family: outcome
    aggregate: sum
    of: amount
stages:
  - id: s
"""

HEADER = "account_id,member,event,timestamp,amount\n"
ACCOUNTS = "account_id,plan,seats\n00001,pro,5\n09999,free,3\n"


def _evaluate(tmp_path: Path, events: str | bytes, accounts: str = ACCOUNTS,
              suffix: str = ".csv") -> tuple[int, str, Path]:
    roadmap = tmp_path / "roadmap.yaml"
    roadmap.write_text(ROADMAP)
    ev = tmp_path / f"events{suffix}"
    if isinstance(events, bytes):
        ev.write_bytes(events)
    else:
        ev.write_text(events)
    acc = tmp_path / "accounts.csv"
    acc.write_text(accounts)
    out = tmp_path / "out"
    code = main(["evaluate", str(roadmap), "--events", str(ev), "--accounts", str(acc),
                 "--as-of", "2026-06-30", "--out", str(out), "--format", "csv"])
    return code, str(ev), out


def _totals(out: Path) -> list[tuple[str, ...]]:
    got = pl.read_csv(out / "indicators.csv", infer_schema=False).sort("account_id")
    return got.select("account_id", "logins", "total").rows()


def test_an_events_row_with_a_field_missing_is_refused_by_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, ev, _ = _evaluate(tmp_path, HEADER + "00001,7,login,2026-06-29T09:00:00,1.5\n"
                            "09999,1,login,2026-06-30\n")
    err = capsys.readouterr().err
    assert code == 1
    assert f"{ev}:3:" in err and "line 3 has 4 field(s), but the header names 5" in err, err
    assert "read as nulls" in err


def test_an_accounts_row_with_a_field_missing_is_refused_by_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = _evaluate(tmp_path, HEADER + "00001,7,login,2026-06-29T09:00:00,1.5\n",
                           accounts="account_id,plan,seats\n00001,pro,5\n09999,free\n")
    err = capsys.readouterr().err
    assert code == 1
    assert "accounts.csv:3:" in err and "line 3 has 2 field(s), but the header names 3" in err


def test_a_row_with_a_field_too_many_is_refused_by_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, ev, _ = _evaluate(tmp_path, HEADER + "00001,7,login,2026-06-29T09:00:00,1.5\n"
                            "00001,7,login,2026-06-29T09:00:00,1.5,9\n"
                            "00001,7,login,2026-06-29T09:00:00,1.5,9\n")
    err = capsys.readouterr().err
    assert code == 1
    assert f"{ev}:3:" in err and "line 3 has 6 field(s), but the header names 5 (and line 4)" \
        in err, err
    assert "read as nulls" not in err


def test_quoted_fields_hold_commas_and_line_breaks(tmp_path: Path) -> None:
    # the member of the second event is one field over two lines, holding a comma
    code, _, out = _evaluate(tmp_path, HEADER + '00001,"7, a",login,2026-06-29T09:00:00,1.5\n'
                             '00001,"x\ny,z",login,2026-06-29T10:00:00,2\n'
                             '09999,"say ""hi""",login,2026-06-30T01:00:00,"3"\n')
    assert code == 0
    assert _totals(out) == [("00001", "2", "3.5"), ("09999", "1", "3.0")]


def test_quoted_commas_without_line_breaks_are_counted_as_one_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = '00001,"7, a",login,2026-06-29T09:00:00,1.5\n'
    code, _, out = _evaluate(tmp_path, HEADER + rows + "\n" + rows)
    assert code == 0 and _totals(out) == [("00001", "2", "3.0"), ("09999", "0", "0.0")]
    code, ev, _ = _evaluate(tmp_path, HEADER + rows + '00001,"7, a",login,"2026-06-29"\n')
    err = capsys.readouterr().err
    assert code == 1 and f"{ev}:3:" in err and "line 3 has 4 field(s)" in err, err


def test_a_header_name_may_hold_a_quoted_line_break(tmp_path: Path) -> None:
    header = HEADER.replace("event,", '"event",').replace("member", '"mem\nber"')
    code, _, out = _evaluate(tmp_path, header.replace('"mem\nber"', "member")
                             + "00001,7,login,2026-06-29T09:00:00,1.5\n")
    assert code == 0 and _totals(out) == [("00001", "1", "1.5"), ("09999", "0", "0.0")]
    path = tmp_path / "quoted.csv"
    path.write_text(header + '00001,"7",login,2026-06-29T09:00:00,1.5\n\n'
                    "00001,7,login,2026-06-29T10:00:00,2\n")
    lf = pl.scan_csv(path, infer_schema=False)
    got = csv_rows(lf, path, 5, "events").collect()
    assert got.columns[1] == "mem\nber" and got.height == 2


def test_a_short_row_after_a_quoted_line_break_is_refused_by_its_first_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, ev, _ = _evaluate(tmp_path, HEADER + '00001,"x\ny",login,2026-06-29T10:00:00,2\n'
                            "00001,7,login,2026-06-29T09:00:00\n")
    err = capsys.readouterr().err
    assert code == 1
    assert f"{ev}:4:" in err and "line 4 has 4 field(s)" in err, err


@pytest.mark.parametrize("events", [
    HEADER + "00001,7,login,2026-06-29T09:00:00,1.5\n\n09999,1,login,2026-06-30T01:00:00,2\n",
    HEADER + "00001,7,login,2026-06-29T09:00:00,1.5\n09999,1,login,2026-06-30T01:00:00,2\n\n",
    (HEADER + "00001,7,login,2026-06-29T09:00:00,1.5\n09999,1,login,2026-06-30T01:00:00,2\n"
     "\n").replace("\n", "\r\n"),
    HEADER + '00001,"a\n\nb",login,2026-06-29T09:00:00,1.5\n  \n'
    "09999,1,login,2026-06-30T01:00:00,2\n",
])
def test_blank_lines_are_skipped_not_read_as_rows_of_nulls(
        tmp_path: Path, events: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, out = _evaluate(tmp_path, events.encode())
    text = capsys.readouterr().out
    assert code == 0
    assert "ignored input" not in text, text
    assert _totals(out) == [("00001", "1", "1.5"), ("09999", "1", "2.0")]


def test_a_blank_line_in_the_accounts_is_skipped(tmp_path: Path) -> None:
    code, _, out = _evaluate(tmp_path, HEADER + "00001,7,login,2026-06-29T09:00:00,1.5\n",
                             accounts=ACCOUNTS + "\n")
    assert code == 0
    assert _totals(out) == [("00001", "1", "1.5"), ("09999", "0", "0.0")]


def test_a_row_of_empty_fields_is_still_a_row_of_nulls(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # ",,,," is written: its fields are there, empty (null), unlike a blank line's
    code, _, _ = _evaluate(tmp_path, HEADER + "00001,7,login,2026-06-29T09:00:00,1.5\n,,,,\n")
    assert code == 0
    assert "events null account 1" in capsys.readouterr().out


NDJSON = ('{"account_id": "00001", "member": "7", "event": "login", '
          '"timestamp": "2026-06-29T09:00:00", "amount": 1}\n')


@pytest.mark.parametrize(("line", "column", "kind"), [
    ('{"account_id": ["09999"], "member": "1", "event": "login", '
     '"timestamp": "2026-06-30T09:00:00", "amount": 2}', "account_id", "a list"),
    ('{"account_id": "09999", "member": {"id": 1}, "event": "login", '
     '"timestamp": "2026-06-30T09:00:00", "amount": 2}', "member", "an object"),
    ('{"account_id": "09999", "member": "1", "event": [], '
     '"timestamp": "2026-06-30T09:00:00", "amount": 2}', "event", "a list"),
])
def test_a_list_or_an_object_in_an_ndjson_text_column_is_refused_by_its_line(
        tmp_path: Path, line: str, column: str, kind: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, ev, _ = _evaluate(tmp_path, NDJSON + "\n" + line + "\n", suffix=".ndjson")
    err = capsys.readouterr().err
    assert code == 1
    assert f"{ev}:3:" in err and f"column {column!r} is text (str), but line 3 holds {kind}" \
        in err, err


def test_an_ndjson_string_that_looks_like_a_list_is_text(tmp_path: Path) -> None:
    code, _, out = _evaluate(tmp_path, NDJSON + '{"account_id": "09999", "member": "[1]", '
                             '"event": "login", "timestamp": "2026-06-30T09:00:00", '
                             '"amount": 2, "meta": {"member": []}}\n', suffix=".ndjson")
    assert code == 0
    assert _totals(out) == [("00001", "1", "1.0"), ("09999", "1", "2.0")]
