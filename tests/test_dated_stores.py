"""Dated accounts in Parquet and CSV stores: hive-partitioned events keep their partition
pruning, accounts come as a type-2 file or as a folder of snapshots, and the CLI reads both.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.cli import main
from healthrules.datasets import renewal_outcomes, sample
from healthrules.engine import events_query
from healthrules.history import history

ROOT = Path(__file__).resolve().parents[1]
B2B = ROOT / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"
VALIDITY = "  accounts:\n    key: account_id\n"


def _roadmap_file(folder: Path, extra: str) -> Path:
    """The B2B example with validity columns declared under data.accounts."""
    text = B2B.read_text()
    assert VALIDITY in text
    path = folder / "roadmap.yaml"
    path.write_text(text.replace(VALIDITY, VALIDITY + extra))
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("dated-store")
    data = sample(60, seed=5, dated=True, days=200)
    data.events.with_columns(pl.col("timestamp").dt.date().alias("date")).write_parquet(
        root / "events", partition_by="date")
    data.accounts.write_parquet(root / "accounts.parquet")
    data.accounts.write_csv(root / "accounts.csv")
    # the same history as weekly snapshots, one folder per snapshot date
    days = [data.as_of - dt.timedelta(weeks=k) for k in range(12)][::-1]
    snaps = pl.concat([
        data.accounts.filter((pl.col("valid_from") <= d) & (
            pl.col("valid_to").is_null() | (pl.col("valid_to") > d)))
        .drop("valid_from", "valid_to").with_columns(pl.lit(d).alias("snapshot_date"))
        for d in days])
    snaps.write_parquet(root / "snapshots", partition_by="snapshot_date")
    renewal_outcomes(data).write_csv(root / "outcomes.csv")
    return root, data


def _scan(root: Path) -> pl.LazyFrame:
    return pl.scan_parquet(root / "events", hive_partitioning=True,
                           hive_schema={"date": pl.Date})


TRAILING = hr.Roadmap.model_validate({
    "id": "recent", "goal": "g",
    "data": {"events": {"timezone": "UTC"},
             "accounts": {"attributes": {"plan": "str", "seats": "int", "csm": "str"},
                          "valid_from": "valid_from", "valid_to": "valid_to"}},
    "indicators": [
        {"id": "users_30d", "family": "process", "aggregate": "distinct", "window": "30d"},
        {"id": "per_seat", "family": "outcome", "expr": "users_30d / seats",
         "bands": {"levels": [{"name": "low", "lt": 0.5}, {"name": "ok", "ge": 0.5}]}}],
    "stages": [{"id": "trial", "entry": "plan == 'trial'"}, {"id": "paying"}],
})


def test_partition_pruning_keeps_working_with_dated_accounts(store: tuple[Path, object]) -> None:
    root, data = store
    roadmap = TRAILING
    accounts = pl.scan_parquet(root / "accounts.parquet")
    as_of = data.as_of  # type: ignore[attr-defined]
    plan = events_query(roadmap, _scan(root), accounts, as_of, partition_column="date").explain()
    scan = plan[plan.index("Parquet SCAN"):]
    sources = re.search(r"Parquet SCAN \[.*?date=(\S+?)/.*?, \.\.\. (\d+) other sources\]", scan)
    assert sources is not None, scan
    # the 30 days of the window and a day of margin, not the 200 days of the store
    assert int(sources.group(2)) + 1 == 31
    got = hr.evaluate(roadmap, _scan(root), accounts, as_of, partition_column="date")
    want = hr.evaluate(roadmap, data.events, data.accounts, as_of)  # type: ignore[attr-defined]
    assert_frame_equal(got.scores, want.scores)
    assert got.diagnostics["accounts_ended"] == want.diagnostics["accounts_ended"] > 0


def test_a_folder_of_snapshots_is_read_as_dated_accounts(store: tuple[Path, object]) -> None:
    root, data = store
    dated = hr.load(_roadmap_file(root, "    valid_from: valid_from\n    valid_to: valid_to\n"))
    snap = hr.load(_roadmap_file(root, "    snapshot: snapshot_date\n"))
    snapshots = pl.scan_parquet(root / "snapshots" / "**" / "*.parquet", hive_partitioning=True)
    as_of = data.as_of  # type: ignore[attr-defined]
    # the snapshot dates are the weekly dates: there both sources say the same
    start = as_of - dt.timedelta(weeks=11)
    h = history(snap, _scan(root), snapshots, start, as_of)
    h2 = history(dated, data.events, data.accounts, start, as_of)  # type: ignore[attr-defined]
    assert_frame_equal(h.scores, h2.scores)
    assert "snapshot column 'snapshot_date'" in h.attribute_source


def test_the_cli_backtest_reads_dated_accounts_and_says_so(store: tuple[Path, object],
                                                           tmp_path: Path) -> None:
    root, data = store
    roadmap = _roadmap_file(tmp_path, "    valid_from: valid_from\n    valid_to: valid_to\n")
    as_of = data.as_of  # type: ignore[attr-defined]
    for accounts in ("accounts.parquet", "accounts.csv"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["backtest", str(roadmap), "--events", str(root / "events"),
                         "--accounts", str(root / accounts), "--outcomes",
                         str(root / "outcomes.csv"), "--start", str(as_of - dt.timedelta(60)),
                         "--end", str(as_of), "--horizon", "30", "--lookback", "28",
                         "--format", "json"])
        assert code == 0, out.getvalue()
        report = json.loads(out.getvalue())
        assert report["attributes_dated"] is True
        assert report["attribute_source"].startswith("attributes: as of each date")
    plain = io.StringIO()
    with contextlib.redirect_stdout(plain):
        code = main(["backtest", str(B2B), "--events", str(root / "events"), "--accounts",
                     str(root / "accounts.parquet"), "--outcomes", str(root / "outcomes.csv"),
                     "--start", str(as_of - dt.timedelta(60)), "--end", str(as_of)])
    assert code == 1  # two rows per account without validity columns: not clean input


def test_the_cli_run_reads_dated_accounts(store: tuple[Path, object], tmp_path: Path) -> None:
    root, data = store
    roadmap = _roadmap_file(tmp_path, "    valid_from: valid_from\n    valid_to: valid_to\n")
    as_of = data.as_of  # type: ignore[attr-defined]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["run", str(roadmap), "--state", str(tmp_path / "state.db"), "--events",
                     str(root / "events"), "--accounts", str(root / "accounts.csv"),
                     "--as-of", str(as_of), "--format", "json"])
    assert code == 0, out.getvalue()


def test_dated_accounts_from_a_duckdb_table(store: tuple[Path, object], tmp_path: Path) -> None:
    """A database source reads the validity columns with the key and the attributes."""
    import duckdb

    from healthrules.sources import DuckDBSource

    _, data = store
    accounts = data.accounts  # type: ignore[attr-defined]
    events = data.events  # type: ignore[attr-defined]
    con = duckdb.connect(str(tmp_path / "crm.duckdb"))
    try:
        con.register("frame", accounts.to_arrow())
        con.execute("CREATE TABLE accounts AS SELECT * FROM frame")
        con.unregister("frame")
        source = DuckDBSource(con, table="accounts")
        for as_of in (dt.date(2026, 3, 2), data.as_of):  # type: ignore[attr-defined]
            got = hr.evaluate(TRAILING, events, source, as_of)
            want = hr.evaluate(TRAILING, events, accounts, as_of)
            assert_frame_equal(got.stages, want.stages)
            assert got.diagnostics == want.diagnostics
    finally:
        con.close()
