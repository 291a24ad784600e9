"""Benchmark: a roadmap evaluated from a DuckDB file, with and without the pushdown.

Usage::

    python benchmarks/bench_sources.py                 # 5M events over two years
    python benchmarks/bench_sources.py --events 1000000

The DuckDB file holds ``--events`` events spread evenly over two years (and a column no
roadmap reads); the roadmap's widest window is 60 days, so the pushdown reads about a
twelfth of the rows. Each side runs in its own fresh subprocess (peak RSS is its own),
``--repeat`` times; the median wall time is reported:

- ``pushdown``: ``hr.evaluate(roadmap, DuckDBSource(file, table="events"), ...)``;
- ``full_read``: the whole table read into polars (``con.table("events").pl()``), then
  ``hr.evaluate`` on the frame: what one does without a source.

Both give the same result (checked). The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROADMAP = {
    "id": "bench_sources", "goal": "Weekly use",
    "data": {"events": {"user": "user_id", "values": {"value": "float"}},
             "accounts": {"attributes": {"plan": "str"}}},
    "indicators": [
        {"id": "logins_7d", "family": "process", "aggregate": "count",
         "where": "event == 'login'", "window": "7d"},
        {"id": "users_30d", "family": "process", "aggregate": "distinct", "window": "30d"},
        {"id": "days_14d", "family": "process", "aggregate": "active_days", "window": "14d"},
        {"id": "value_30d", "family": "outcome", "aggregate": "sum", "of": "value",
         "window": "30d", "compare": "previous"},
    ],
    "stages": [{"id": "operation", "actions": [{
        "id": "quiet", "kind": "challenge", "when": "logins_7d < 5",
        "do": "Call them", "owner": "csm"}]}],
}

CHILD = r"""
import hashlib, json, resource, sys, time
import duckdb
import healthrules as hr
from healthrules.sources import DuckDBSource
side, path, roadmap = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
plan = hr.compile(hr.Roadmap.model_validate(roadmap))
t = time.perf_counter()
if side == "pushdown":
    src = DuckDBSource(path, table="events")
    result = hr.evaluate(plan, src, DuckDBSource(path, table="accounts"), "2026-06-30")
    rows = src.rows_read
else:
    con = duckdb.connect(path, read_only=True)
    events, accounts = con.table("events").pl(), con.table("accounts").pl()
    con.close()
    result = hr.evaluate(plan, events, accounts, "2026-06-30")
    rows = events.height
elapsed = time.perf_counter() - t
digest = hashlib.sha256(result.scores.sort("account_id").write_csv().encode()).hexdigest()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"s": elapsed, "rows": rows, "rss_mb": round(rss), "digest": digest}))
"""


def build(path: Path, events: int, accounts: int) -> None:
    import duckdb

    step = 2 * 365 * 86400 / events  # seconds between events: two years in all
    con = duckdb.connect(str(path))
    con.execute(f"""
        CREATE TABLE events AS SELECT
            'a' || lpad((i % {accounts})::VARCHAR, 6, '0') AS account_id,
            'u' || (i % 11)::VARCHAR AS user_id,
            CASE i % 3 WHEN 0 THEN 'login' WHEN 1 THEN 'feature_used' ELSE 'ticket' END
                AS event,
            TIMESTAMP '2024-07-01 00:00:00' + to_microseconds((i * {step} * 1e6)::BIGINT)
                AS timestamp,
            (i % 13)::DOUBLE AS value,
            repeat('x', 40) AS payload
        FROM range({events}) t(i)""")
    con.execute(f"""
        CREATE TABLE accounts AS SELECT 'a' || lpad(i::VARCHAR, 6, '0') AS account_id,
            CASE WHEN i % 4 = 0 THEN 'pro' ELSE 'basic' END AS plan
        FROM range({accounts}) t(i)""")
    con.close()


def run(side: str, path: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, side, str(path), json.dumps(ROADMAP)],
                         capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "warehouse.duckdb"
        build(path, args.events, args.accounts)
        report: dict[str, object] = {"events": args.events, "accounts": args.accounts}
        digests = set()
        for side in ("pushdown", "full_read"):
            runs = [run(side, path) for _ in range(args.repeat)]
            digests |= {r["digest"] for r in runs}
            report[f"{side}_s"] = round(statistics.median(r["s"] for r in runs), 3)
            report[f"{side}_rows"] = runs[0]["rows"]
            report[f"{side}_rss_mb"] = max(r["rss_mb"] for r in runs)
            print(f"{side}: {report[f'{side}_s']} s, {report[f'{side}_rows']} rows read, "
                  f"peak RSS {report[f'{side}_rss_mb']} MiB", file=sys.stderr)
        report["same_result"] = len(digests) == 1
        print(json.dumps(report))


if __name__ == "__main__":
    main()
