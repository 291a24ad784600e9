"""One machine, larger than memory: pushdown into a hive-partitioned Parquet store, and a run
under a memory cap (issue #7).

- The optimised plan (``events_query(...).explain()``) shows the projection, the time range and
  the date-partition filter pushed into the Parquet scan, and lists only the files of the days
  the roadmap reads.
- A file-level proof: the files older than the read range are overwritten with garbage; the
  evaluation still succeeds and equals the in-memory one, while the same scan without the
  partition option fails on the first garbage file (so the garbage is really there and the
  option is what keeps those files closed).
- A memory-capped run: the evaluation runs in a subprocess whose private writable memory
  (``RLIMIT_DATA``: heap and anonymous mappings, where polars keeps its buffers) is capped.
  The streaming evaluation of the Parquet store succeeds under the cap; reading the same store
  into memory first fails under the same cap, which shows that the cap binds at this size.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.engine import events_query, read_range
from healthrules.errors import InputDataError

AS_OF = dt.date(2026, 6, 30)
DAYS = 120

SPEC_30D = {
    "id": "last30",
    "goal": "g",
    "data": {"events": {"user": "user_id", "timezone": "UTC", "values": {"value": "float"}}},
    "indicators": [
        {"id": "logins_30d", "family": "process", "aggregate": "count",
         "where": "event == 'login'", "window": "30d"},
        {"id": "users_14d", "family": "process", "aggregate": "distinct", "window": "14d",
         "compare": "delta"},
        {"id": "days_30d", "family": "process", "aggregate": "active_days", "window": "30d"},
        {"id": "last_login", "family": "process", "aggregate": "days_since_last",
         "where": "event == 'login'", "window": "30d"},
    ],
    "stages": [{"id": "live", "actions": [{
        "id": "quiet", "kind": "challenge", "when": "logins_30d < 3",
        "do": "{logins_30d} logins in 30 days"}]}],
}
ROADMAP_30D = hr.Roadmap.model_validate(SPEC_30D)


def _events(accounts: int = 30, days: int = DAYS, per_day: int = 4) -> pl.DataFrame:
    """Deterministic events: ``per_day`` per account and day over ``days`` days to AS_OF."""
    n = accounts * days * per_day
    i = pl.int_range(n, dtype=pl.Int64)
    h = (i * 2654435761) % 1_000_003
    end = dt.datetime.combine(AS_OF, dt.time())
    return pl.select(
        pl.format("a{}", i % accounts).alias("account_id"),
        pl.format("u{}", h % 5).alias("user_id"),
        pl.when(h % 3 == 0).then(pl.lit("login")).otherwise(pl.lit("report")).alias("event"),
        (pl.lit(end) - pl.duration(days=(i // (accounts * per_day)) % days)
         + pl.duration(seconds=h % 86_000)).dt.replace_time_zone("UTC").alias("timestamp"),
        (h % 10).cast(pl.Float64).alias("value"),
    )


def _write_store(root: Path, events: pl.DataFrame) -> Path:
    """Write ``events`` hive-partitioned by date: ``events/date=YYYY-MM-DD/<part>.parquet``."""
    store = root / "events"
    events.with_columns(pl.col("timestamp").dt.date().alias("date")).write_parquet(
        store, partition_by="date")
    return store


def _scan(store: Path, events: pl.DataFrame, date_type: type[pl.DataType] = pl.Date
          ) -> pl.LazyFrame:
    # the schema is given, so polars reads no file footer just to learn it
    return pl.scan_parquet(store, hive_partitioning=True, schema=events.schema,
                           hive_schema={"date": date_type})


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, pl.DataFrame, Path]:
    events = _events()
    accounts = pl.DataFrame({"account_id": [f"a{k}" for k in range(32)]})  # 2 without events
    return events, accounts, _write_store(tmp_path_factory.mktemp("store"), events)


def test_read_range_is_the_largest_window() -> None:
    events = _events(accounts=2, days=3)
    start, end = read_range(ROADMAP_30D, events, pl.DataFrame({"account_id": ["a0"]}), AS_OF)
    utc = dt.UTC
    assert end == dt.datetime(2026, 7, 1, tzinfo=utc).astimezone(end.tzinfo)
    assert start == end - dt.timedelta(days=30)  # 30d, and 2 x 14d for the compare


def test_explain_shows_projection_time_range_and_partition_pruning(
        data: tuple[pl.DataFrame, pl.DataFrame, Path]) -> None:
    events, accounts, store = data
    plan = events_query(ROADMAP_30D, _scan(store, events), accounts, AS_OF,
                        partition_column="date").explain()
    scan = plan[plan.index("Parquet SCAN"):]
    # only the needed columns: account, user, event, timestamp (+ the partition key), not value
    assert re.search(r"PROJECT 5/6 COLUMNS", scan), scan
    assert '"value"' not in scan.split("SELECTION")[0]
    selection = scan[scan.index("SELECTION"):].splitlines()[0]
    assert 'col("date") >= 2026-05-31' in selection
    assert 'col("timestamp") >= 2026-06-01 00:00:00 UTC' in selection
    assert 'col("timestamp") < 2026-07-01 00:00:00 UTC' in selection
    # hive pruning at plan time: the days 2026-05-31 .. 2026-06-30 only (the range and a day
    # of margin), not the 120 days of the store
    sources = re.search(r"Parquet SCAN \[.*?date=(\S+?)/.*?, \.\.\. (\d+) other sources\]", scan)
    assert sources is not None, scan
    assert sources.group(1) == "2026-05-31" and int(sources.group(2)) + 1 == 31


def test_explain_without_partition_column_still_pushes_the_time_range(
        data: tuple[pl.DataFrame, pl.DataFrame, Path]) -> None:
    events, accounts, store = data
    plan = events_query(ROADMAP_30D, _scan(store, events), accounts, AS_OF).explain()
    scan = plan[plan.index("Parquet SCAN"):]
    assert 'col("timestamp") >= 2026-06-01 00:00:00 UTC' in scan  # row groups are skipped
    assert f"{DAYS - 1} other sources" in scan  # but every file's footer is read


def _corrupt_before(store: Path, first_kept: dt.date) -> int:
    broken = 0
    for folder in store.iterdir():
        day = dt.date.fromisoformat(folder.name.split("=", 1)[1])
        if day < first_kept:
            for f in folder.iterdir():
                f.write_bytes(b"not a parquet file")
                broken += 1
    return broken


@pytest.mark.parametrize("date_type", [pl.Date, pl.String])
def test_only_the_files_of_the_last_30_days_are_read(
        tmp_path: Path, date_type: type[pl.DataType]) -> None:
    events = _events()
    accounts = pl.DataFrame({"account_id": [f"a{k}" for k in range(32)]})
    store = _write_store(tmp_path, events)
    want = hr.evaluate(ROADMAP_30D, events, accounts, AS_OF)
    # read range [2026-06-01, 2026-07-01): the filter keeps 2026-05-31 as a day of margin
    broken = _corrupt_before(store, dt.date(2026, 5, 31))
    assert broken == DAYS - 31
    got = hr.evaluate(ROADMAP_30D, _scan(store, events, date_type), accounts, AS_OF,
                      partition_column="date")
    for name, frame in want.frames.items():
        assert_frame_equal(got.frames[name], frame)
    assert got.diagnostics == want.diagnostics
    # control: without the option, polars opens the old files and hits the garbage
    with pytest.raises(pl.exceptions.ComputeError, match=r"(?i)parquet"):
        hr.evaluate(ROADMAP_30D, _scan(store, events, date_type), accounts, AS_OF)


def test_partition_column_must_exist_and_be_a_date(
        data: tuple[pl.DataFrame, pl.DataFrame, Path]) -> None:
    events, accounts, _ = data
    with pytest.raises(InputDataError, match="no partition column 'day'"):
        hr.evaluate(ROADMAP_30D, events, accounts, AS_OF, partition_column="day")
    with pytest.raises(InputDataError, match="partition column 'value' is Float64"):
        hr.evaluate(ROADMAP_30D, events, accounts, AS_OF, partition_column="value")


# ---------------------------------------------------------------------- memory cap

_CAP_MIB = 400
_CHILD = textwrap.dedent("""
    import json, resource, sys
    mode, root, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_DATA, (cap << 20, cap << 20))
    import polars as pl
    import healthrules as hr
    roadmap = hr.Roadmap.model_validate(json.loads(sys.argv[4]))
    accounts = pl.read_parquet(root + "/accounts.parquet")
    if mode == "stream":
        events = pl.scan_parquet(root + "/events", hive_partitioning=True)
    else:
        events = pl.read_parquet(root + "/events", hive_partitioning=True)
    ev = hr.evaluate(roadmap, events, accounts, "2026-06-30", partition_column="date",
                     low_memory=True)
    print(json.dumps({"read": ev.diagnostics["events_read"],
                      "logins": int(ev.indicators["logins_30d"].sum())}))
""")


def _run_capped(mode: str, root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POLARS_MAX_THREADS": "2"}
    # the 30-day roadmap plus one indicator over all history, so that every file is read
    spec = {**SPEC_30D, "indicators": [
        *SPEC_30D["indicators"],  # type: ignore[misc]
        {"id": "days_all", "family": "process", "aggregate": "active_days"}]}
    return subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(root), str(_CAP_MIB), json.dumps(spec)],
        capture_output=True, text=True, env=env, timeout=600, check=False)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA is Linux-only")
def test_streaming_evaluation_runs_under_a_memory_cap_that_a_full_read_exceeds(
        tmp_path: Path) -> None:
    # 2,000 accounts x 60 days x 60 events = 7.2M events (about 190 MB in polars, several
    # hundred MB of RSS when read whole and evaluated); every day is read (one indicator
    # reads all history); the value column is not read (no indicator needs it)
    events = _events(accounts=2000, days=60, per_day=60)
    _write_store(tmp_path, events)
    pl.DataFrame({"account_id": [f"a{k}" for k in range(2000)]}).write_parquet(
        tmp_path / "accounts.parquet")
    since = AS_OF - dt.timedelta(days=29)
    logins = events.filter((pl.col("event") == "login")
                           & (pl.col("timestamp").dt.date() >= since)).height
    del events
    streamed = _run_capped("stream", tmp_path)
    assert streamed.returncode == 0, streamed.stderr[-2000:]
    assert json.loads(streamed.stdout) == {"read": 7_200_000, "logins": logins}
    # control: the same data read into memory first does not fit under the same cap
    whole = _run_capped("eager", tmp_path)
    assert whole.returncode != 0, "the cap does not bind: a full read fit under it"
