"""A CSV header that names a declared column twice, or that is one column separated by
another character: refused by the file, not read silently or as six missing columns.

Before: ``account_id,...,q,...,q`` read the first ``q`` (polars renames the second
``q_duplicated_0``) without a word; a file separated by ``;`` was reported as six missing
columns of ``<events>``, none naming the file or the separator.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from healthrules.cli import main

ROADMAP = {"id": "h", "goal": "g", "data": {"events": {"values": {"q": "int"}}},
           "indicators": [{"id": "total", "family": "process", "aggregate": "sum", "of": "q"}],
           "stages": [{"id": "s"}]}
HEADER = "account_id,event,timestamp,q,user_id"
ROW = "a,e,2026-06-01T10:00:00,1,u"


def _run(tmp_path: Path, text: str) -> int:
    (tmp_path / "roadmap.yaml").write_text(json.dumps(ROADMAP))
    (tmp_path / "accounts.csv").write_text("account_id\na\n")
    (tmp_path / "events.csv").write_text(text)
    return main(["evaluate", str(tmp_path / "roadmap.yaml"), "--events",
                 str(tmp_path / "events.csv"), "--accounts", str(tmp_path / "accounts.csv"),
                 "--as-of", "2026-06-30", "--out", str(tmp_path / "out")])


def test_a_good_header_and_an_undeclared_column_twice(tmp_path: Path) -> None:
    assert _run(tmp_path, f"{HEADER},note,note\n{ROW},x,y\n") == 0
    assert pl.read_parquet(tmp_path / "out" / "indicators.parquet")["total"].to_list() == [1]


def test_a_declared_column_twice_is_refused(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path, f"{HEADER},q\n{ROW},7\n") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{tmp_path / 'events.csv'}: error: events file: the header names "
                          "column 'q' more than once"), err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("sep", [";", "\t"])
def test_another_separator_is_named(tmp_path: Path, sep: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path, f"{HEADER.replace(',', sep)}\n{ROW.replace(',', sep)}\n") == 1
    err = capsys.readouterr().err
    assert f"a CSV file's columns are separated by commas, not {sep!r}" in err
    assert str(tmp_path / "events.csv") in err and "has no column" not in err
