"""Benchmark: an event store several times larger than the memory a run may use.

Usage::

    python benchmarks/bench_scale.py                       # 50M events, cap 512 MiB
    python benchmarks/bench_scale.py --accounts 2000 --per-day 60 --days 60 --cap-mib 400

Writes a hive-partitioned Parquet store (``events/date=YYYY-MM-DD/*.parquet``, one day at a
time, so writing it needs little memory either), then runs, each in a fresh subprocess:

1. ``stream``: ``healthrules.evaluate`` over ``pl.scan_parquet(store)`` with the process capped
   by ``RLIMIT_DATA`` (its private writable memory: heap and anonymous mappings, where polars
   keeps its buffers) at ``--cap-mib``;
2. ``eager``: the same evaluation after ``pl.read_parquet(store)``, under the same cap (the
   control: expected to fail, which shows the store does not fit under the cap);
3. ``stream`` again without a cap, for the uncapped time and peak RSS;
4. ``window30``: the store through a roadmap that only needs the last 30 days, with
   ``partition_column="date"``, to show what pushdown saves.

The roadmap (``ROADMAP`` below) reads every event: counts, a distinct count of users, active
days over all history, days since the last login. Each run reports wall time, events per
second (events in the read range / wall time) and its own peak RSS (``ru_maxrss``). The last
line printed is JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

HERE = Path(__file__).resolve().parent
AS_OF = dt.date(2026, 6, 30)

ROADMAP: dict[str, Any] = {
    "id": "scale",
    "goal": "Weekly use",
    "data": {"events": {"user": "user_id", "timezone": "UTC", "values": {"value": "float"}}},
    "indicators": [
        {"id": "logins_30d", "family": "process", "aggregate": "count",
         "where": "event == 'login'", "window": "30d",
         "bands": {"levels": [{"name": "red", "lt": 10}, {"name": "green", "ge": 10}]}},
        {"id": "reports_7d", "family": "outcome", "aggregate": "count",
         "where": "event == 'report'", "window": "7d", "compare": "pct_change"},
        {"id": "users_30d", "family": "process", "aggregate": "distinct", "window": "30d"},
        {"id": "active_days", "family": "process", "aggregate": "active_days"},
        {"id": "minutes", "family": "outcome", "aggregate": "mean", "of": "value",
         "where": "event == 'session'", "window": "90d"},
        {"id": "since_login", "family": "process", "aggregate": "days_since_last",
         "where": "event == 'login'"},
    ],
    "stages": [{"id": "live", "actions": [
        {"id": "quiet", "kind": "challenge", "when": "logins_30d < 10",
         "do": "{logins_30d} logins in 30 days"}]}],
}
WINDOW30 = {**ROADMAP, "indicators": ROADMAP["indicators"][:3]}

CHILD = r"""
import json, resource, sys, time
mode, root, cap, spec = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if cap:
    resource.setrlimit(resource.RLIMIT_DATA, (cap << 20, cap << 20))
import polars as pl
import healthrules as hr
plan = hr.compile(hr.Roadmap.model_validate(json.loads(spec)))
accounts = pl.read_parquet(root + "/accounts.parquet")
t = time.perf_counter()
if mode == "eager":
    events = pl.read_parquet(root + "/events", hive_partitioning=True)
else:
    events = pl.scan_parquet(root + "/events", hive_partitioning=True)
ev = hr.evaluate(plan, events, accounts, sys.argv[5], partition_column="date", low_memory=True)
elapsed = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "rss_mb": rss, "events_read": ev.diagnostics["events_read"],
                  "actions": ev.actions.height}))
"""


def write_store(root: Path, accounts: int, days: int, per_day: int) -> dict[str, float]:
    """Write ``accounts * days * per_day`` events, one day (one folder) at a time."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "events").mkdir(parents=True)
    pl.DataFrame({"account_id": [f"A{k:07d}" for k in range(accounts)]}).write_parquet(
        root / "accounts.parquet")
    names = pl.Series(["login", "session", "report", "click", "click", "view", "view", "view"])
    in_memory = 0.0
    n = accounts * per_day
    for d in range(days):
        day = AS_OF - dt.timedelta(days=d)
        i = pl.int_range(n, dtype=pl.Int64)
        h = ((i + d * n) * 2654435761) % 1_000_003
        frame = pl.select(
            pl.format("A{}", (i // per_day).cast(pl.String).str.zfill(7)).alias("account_id"),
            pl.format("u{}", h % 9).alias("user_id"),
            pl.lit(names).gather(h % len(names)).alias("event"),
            (pl.lit(dt.datetime.combine(day, dt.time())) + pl.duration(seconds=h % 86_000)
             ).dt.replace_time_zone("UTC").alias("timestamp"),
            (h % 60).cast(pl.Float64).alias("value"),
        )
        in_memory += frame.estimated_size("mb")
        folder = root / "events" / f"date={day.isoformat()}"
        folder.mkdir()
        frame.write_parquet(folder / "part-0.parquet")
    on_disk = sum(f.stat().st_size for f in (root / "events").rglob("*.parquet")) / 2**20
    return {"events": accounts * days * per_day, "in_memory_mb": round(in_memory, 1),
            "on_disk_mb": round(on_disk, 1)}


def run(mode: str, root: Path, cap_mib: int, spec: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "POLARS_MAX_THREADS": os.environ.get("POLARS_MAX_THREADS", "2")}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, "eager" if mode == "eager" else "stream", str(root),
         str(cap_mib), json.dumps(spec), AS_OF.isoformat()],
        capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"mode": mode, "cap_mib": cap_mib, "ok": False, "returncode": proc.returncode,
                "error": tail[:200]}
    out = dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    out.update(mode=mode, cap_mib=cap_mib, ok=True,
               events_per_s=round(out["events_read"] / out["seconds"]))
    out["seconds"] = round(out["seconds"], 2)
    out["rss_mb"] = round(out["rss_mb"], 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--per-day", type=int, default=14, help="events per account and day")
    parser.add_argument("--cap-mib", type=int, default=512)
    parser.add_argument("--data", type=Path, default=HERE / ".data" / "scale")
    parser.add_argument("--reuse", action="store_true", help="reuse a store already written")
    args = parser.parse_args()
    t = time.perf_counter()
    meta_path = args.data / "meta.json"
    if args.reuse and meta_path.exists():
        store = json.loads(meta_path.read_text())
    else:
        store = write_store(args.data, args.accounts, args.days, args.per_day)
        meta_path.write_text(json.dumps(store))
    print(f"store ready in {time.perf_counter() - t:.0f}s: {store}", file=sys.stderr)
    runs = [
        run("stream", args.data, args.cap_mib, ROADMAP),
        run("eager", args.data, args.cap_mib, ROADMAP),
        run("stream_uncapped", args.data, 0, ROADMAP),
        run("window30", args.data, args.cap_mib, WINDOW30),
    ]
    for r in runs:
        print(r, file=sys.stderr)
    print(json.dumps({"store": store, "cap_mib": args.cap_mib,
                      "store_to_cap": round(store["in_memory_mb"] / args.cap_mib, 1),
                      "runs": runs}))


if __name__ == "__main__":
    main()
