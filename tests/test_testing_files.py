"""A test's ``accounts_file`` is read as its inline accounts are.

Two ways a file's accounts once differed from what the test file says:

- a typed file's (Parquet, NDJSON) column was cast to the declared type whatever it held:
  ``5`` in a ``date`` column became 1970-01-06, ``2.5`` in an ``int`` column 2, ``true`` in a
  ``float`` column 1.0, and the case ran on those values;
- ``account_defaults`` ("attributes every account of every case starts with") did not reach
  the file's accounts: an attribute the file has no column for was null.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from healthrules.testing import run

ROADMAP = """\
id: r
goal: g
data:
  events: {user: null}
  accounts: {attributes: {start: date, seats: int, ratio: float, plan: str, vip: bool}}
indicators:
  - {id: since, family: process, expr: "days_since(start)"}
  - {id: n, family: process, expr: seats}
  - {id: r, family: process, expr: ratio}
  - {id: pro, family: process, expr: "plan == 'pro'"}
  - {id: v, family: process, expr: vip}
stages:
  - id: s
"""


def _case(tmp_path: Path, rows: dict[str, list[Any]], schema: dict[str, Any],
          expect: str, defaults: str = "{}") -> Path:
    (tmp_path / "r.yaml").write_text(ROADMAP, encoding="utf-8")
    pl.DataFrame(rows, schema=schema).write_parquet(tmp_path / "acc.parquet")
    path = tmp_path / "t.test.yaml"
    path.write_text(textwrap.dedent(f"""\
        kind: test
        roadmap: r.yaml
        as_of: 2026-06-30
        account_defaults: {defaults}
        cases:
          - name: one
            accounts_file: acc.parquet
            expect:
              a: {{indicators: {expect}}}
        """), encoding="utf-8")
    return path


@pytest.mark.parametrize(("column", "values", "dtype", "shown"), [
    ("start", [5], pl.Int64, "column 'start' is Int64 (5), not a date"),
    ("start", [None], pl.Datetime("us"), "column 'start' is Datetime"),
    ("seats", [2.5], pl.Float64, "column 'seats' is Float64 (2.5), not an int"),
    ("seats", [True], pl.Boolean, "column 'seats' is Boolean (True), not an int"),
    ("ratio", [True], pl.Boolean, "column 'ratio' is Boolean (True), not a number"),
    ("vip", [1], pl.Int64, "column 'vip' is Int64 (1), not true or false"),
])
def test_a_typed_column_a_cast_would_change_is_refused(
        tmp_path: Path, column: str, values: list[Any], dtype: Any, shown: str) -> None:
    path = _case(tmp_path, {"account_id": ["a"], column: values},
                 {"account_id": pl.String, column: dtype}, "{n: null}")
    (case,) = run([path]).cases
    assert case.status == "error"
    (issue,) = case.issues
    assert (issue.code, issue.location.line, issue.location.path) == (
        "test_bad_file", 7, "cases[0].accounts_file")
    assert shown in issue.message


def test_values_a_cast_keeps_are_read(tmp_path: Path) -> None:
    path = _case(tmp_path, {"account_id": ["a"], "seats": [3.0], "ratio": [2],
                            "plan": ["pro"], "vip": [True]},
                 {"account_id": pl.String, "seats": pl.Float64, "ratio": pl.Int32,
                  "plan": pl.String, "vip": pl.Boolean},
                 "{n: 3, r: 2.0, pro: true, v: true}")
    report = run([path])
    assert report.ok, report.render()


def test_account_defaults_fill_the_columns_a_file_does_not_have(tmp_path: Path) -> None:
    path = _case(tmp_path, {"account_id": ["a"], "seats": [None]},
                 {"account_id": pl.String, "seats": pl.Int64},
                 "{since: 29, n: null, pro: true, r: null}",
                 defaults="{start: -29d, seats: 7, plan: pro}")
    report = run([path])
    assert report.ok, report.render()  # seats is in the file (null there): not the default
