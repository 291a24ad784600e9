"""``--partition-column`` over a hive folder whose partition folders do not all name a date.

Before: ``evaluate --partition-column date`` over a folder with one ``date=garbage/`` read
the partition column as text, and the partition filter (which compares the folder names
with the days the roadmap reads) left that folder's events out without a word: different
scores, exit code 0. Now the folder is refused by name (exit code 1).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

import healthrules as hr
from healthrules.cli import main
from healthrules.loader import load_text

ROADMAP = {
    "id": "parts", "goal": "g",
    "indicators": [{"id": "n", "family": "process", "aggregate": "count", "window": "30d"}],
    "stages": [{"id": "s", "actions": [
        {"id": "busy", "kind": "positive", "when": "n >= 2", "do": "x"}]}],
}
EVENTS = pl.DataFrame({
    "account_id": ["a", "a", "b"],
    "event": ["e", "e", "e"],
    "user_id": ["u", "u", "v"],
    "timestamp": [dt.datetime(2026, 6, 28, 10), dt.datetime(2026, 6, 29, 10),
                  dt.datetime(2026, 6, 29, 11)],
})


@pytest.fixture
def w(tmp_path: Path) -> Path:
    (tmp_path / "roadmap.yaml").write_text(json.dumps(ROADMAP))
    pl.DataFrame({"account_id": ["a", "b"]}).write_parquet(tmp_path / "accounts.parquet")
    EVENTS.with_columns(pl.col("timestamp").dt.date().cast(pl.String).alias("date")
                        ).write_parquet(tmp_path / "events", partition_by="date")
    return tmp_path


def _evaluate(w: Path, events: str, *extra: str) -> list[str]:
    return ["evaluate", str(w / "roadmap.yaml"), "--events", str(w / events), "--accounts",
            str(w / "accounts.parquet"), "--as-of", "2026-06-30", "--out", str(w / "out"),
            *extra]


def test_good_date_folders_are_read(w: Path) -> None:
    assert main(_evaluate(w, "events", "--partition-column", "date")) == 0
    got = pl.read_parquet(w / "out" / "indicators.parquet").sort("account_id")
    assert got["n"].to_list() == [2, 1]


@pytest.mark.parametrize("name", ["garbage", "2026-6-29", "2026-06-31"])
def test_a_folder_that_names_no_date_is_refused(
        w: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.move(w / "events" / "date=2026-06-29", w / "events" / f"date={name}")
    assert main(_evaluate(w, "events", "--partition-column", "date")) == 1
    err = capsys.readouterr().err
    assert f"partition folder date={name} does not name a date" in err
    assert str(w / "events" / f"date={name}") in err
    assert not (w / "out").exists()
    # without --partition-column nothing is pruned: every event is read
    assert main(_evaluate(w, "events")) == 0
    got = pl.read_parquet(w / "out" / "indicators.parquet").sort("account_id")
    assert got["n"].to_list() == [2, 1]


def test_a_named_source_folder_is_checked(w: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.move(w / "events" / "date=2026-06-29", w / "events" / "date=garbage")
    assert main(_evaluate(w, "events", "--partition-column", "events=date")) == 1
    assert "partition folder date=garbage" in capsys.readouterr().err


def test_other_hive_columns_are_not_dates(w: Path) -> None:
    """Only the partition column's folders must name dates."""
    (w / "events").rename(w / "region=eu")
    (w / "events").mkdir()
    (w / "region=eu").rename(w / "events" / "region=eu")
    assert main(_evaluate(w, "events", "--partition-column", "date")) == 0
    got = pl.read_parquet(w / "out" / "indicators.parquet").sort("account_id")
    assert got["n"].to_list() == [2, 1]


def test_engine_reads_a_text_partition_value_that_names_no_date() -> None:
    """Through the Python API the same folder is read by polars with a text column: a value
    that is no ``YYYY-MM-DD`` day places its events on no day, so they are read and meet the
    read range by their timestamps (they were compared as text and left out)."""
    plan = hr.compile(load_text(json.dumps(ROADMAP)))
    accounts = pl.DataFrame({"account_id": ["a", "b"]})
    for odd in ("garbage", "2026-6-5", "2026-02-30", "9999-99-99"):
        events = EVENTS.with_columns(pl.Series("date", ["2026-06-28", odd, odd]))
        got = hr.evaluate(plan, events.lazy(), accounts, "2026-06-30", partition_column="date")
        assert got.indicators.sort("account_id")["n"].to_list() == [2, 1], odd
    # a real day far outside the read range is still pruned, with its events (the folder
    # name is the store's contract: docs/scale.md)
    events = EVENTS.with_columns(pl.Series("date", ["2026-06-28", "2020-01-01", "2020-01-01"]))
    got = hr.evaluate(plan, events.lazy(), accounts, "2026-06-30", partition_column="date")
    assert got.indicators.sort("account_id")["n"].to_list() == [1, 0]
