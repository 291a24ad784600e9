"""NDJSON inputs: a value not of its column's declared type is refused by file, column, row
and value, whatever type polars would have given the column.

Before: a ``1.5`` among the ints of an ``int`` column made polars type the column Float64,
refused as "events column 'q' is Float64" at ``<events>`` (no file, row or value); ``1e3``
likewise; an integer beyond Int64 made it Int128, refused the same way; a ``true`` among
the numbers of a ``float`` column stopped the read ("cannot parse 'true' (bool) as Float64",
no column); a list among them, "failed to determine supertype of struct[6] and struct[6]".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from healthrules.cli import main

ROADMAP = {
    "id": "nd", "goal": "g",
    "data": {"events": {"values": {"q": "int", "x": "float"}},
             "accounts": {"attributes": {"vip": "bool"}}},
    "indicators": [{"id": "total", "family": "process", "aggregate": "sum", "of": "q"},
                   {"id": "xs", "family": "process", "aggregate": "sum", "of": "x"},
                   ],
    "stages": [{"id": "s", "actions": [{"id": "v", "kind": "positive", "when": "vip",
                                        "do": "x"}]}],
}


def _row(**values: Any) -> dict[str, Any]:
    return {"account_id": "a", "event": "e", "timestamp": "2026-06-01T10:00:00",
            "user_id": "u", "q": 1, "x": 0.5, **values}


def _run(tmp_path: Path, rows: list[dict[str, Any]],
         accounts: list[dict[str, Any]] | None = None) -> int:
    (tmp_path / "roadmap.yaml").write_text(json.dumps(ROADMAP))
    accounts = accounts or [{"account_id": "a", "vip": True}]
    (tmp_path / "accounts.ndjson").write_text("".join(json.dumps(r) + "\n" for r in accounts))
    (tmp_path / "events.ndjson").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return main(["evaluate", str(tmp_path / "roadmap.yaml"), "--events",
                 str(tmp_path / "events.ndjson"), "--accounts",
                 str(tmp_path / "accounts.ndjson"), "--as-of", "2026-06-30",
                 "--out", str(tmp_path / "out")])


def test_numbers_are_read_exactly(tmp_path: Path) -> None:
    rows = [_row(q=3, x=0.1), _row(q=2**53 + 1, x=1e-7), _row(q=None, x=None), _row(account_id=7)]
    accounts = [{"account_id": "a", "vip": True}, {"account_id": "7", "vip": None}]
    assert _run(tmp_path, rows, accounts) == 0
    ind = pl.read_parquet(tmp_path / "out" / "indicators.parquet").sort("account_id")
    assert ind["account_id"].to_list() == ["7", "a"]  # the number 7 is the key "7"
    got = ind.row(1, named=True)
    assert got["total"] == 3 + 2**53 + 1  # beyond a double's integers: exact
    assert got["xs"] == 0.1000001  # sums are exact (docs/semantics.md), the double nearest
    fired = pl.read_parquet(tmp_path / "out" / "actions.parquet")
    assert fired["account_id"].to_list() == ["a"]


@pytest.mark.parametrize(("column", "value", "why"), [
    ("q", 1.5, "is declared int, but row 2 holds '1.5', which is not a whole number"),
    ("q", 2**63, "is declared int, but row 2 holds '9223372036854775808', which is not a "
                 "whole number"),
    ("x", True, "is declared float, but row 2 holds 'true', which is not a number"),
    ("x", [1], "is declared float, but row 2 holds '[1]', which is not a number"),
    ("timestamp", 12345, "is declared datetime, but row 2 holds '12345', which is not a date "
                         "and time"),
])
def test_a_value_not_of_its_type_is_refused_by_row(
        tmp_path: Path, column: str, value: Any, why: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path, [_row(), _row(**{column: value})]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{tmp_path / 'events.ndjson'}: error: events file: column "
                          f"{column!r} {why}"), err
    assert "internal error" not in err and "not a readable" not in err
    assert not (tmp_path / "out").exists()


def test_an_accounts_bool_that_is_a_number_is_refused_by_row(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    accounts = [{"account_id": "a", "vip": True}, {"account_id": "b", "vip": 0.5}]
    assert _run(tmp_path, [_row()], accounts) == 1
    assert ("column 'vip' is declared bool, but row 2 holds '0.5', which is not true or "
            "false") in capsys.readouterr().err


def test_a_file_polars_cannot_type_is_read_by_its_declared_columns(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An undeclared column holding an object in one row and a list in another."""
    rows = [_row(extra={"k": 1}), _row(extra=[1, 2], q=2)]
    assert _run(tmp_path, rows) == 0
    assert pl.read_parquet(tmp_path / "out" / "indicators.parquet")["total"].to_list() == [3]
    rows = [{k: v for k, v in r.items() if k != "user_id"} for r in rows]
    assert _run(tmp_path, rows) == 1
    err = capsys.readouterr().err
    assert "it has none or only nulls of 'user_id'" in err and "internal error" not in err
