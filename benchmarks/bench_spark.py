"""Benchmark: local Spark (``healthrules.spark.evaluate``) versus plain polars on the same data.

Usage::

    python benchmarks/bench_spark.py                        # 2,000 and 20,000 accounts
    python benchmarks/bench_spark.py --accounts 2000 20000 100000 --cores 2

For each size, the sample data (``healthrules.datasets.sample``, about 100 events per account
over 180 days) is written to Parquet once; then, interleaved ``--repeat`` times:

- **polars**: ``healthrules.evaluate`` over ``pl.scan_parquet`` (fresh subprocess), wall time;
- **spark**: one ``local[cores]`` Spark session (started once: its start-up time is reported
  apart), ``spark.read.parquet`` of the same files, ``healthrules.spark.evaluate`` with the
  example roadmap, then ``write`` of every frame to Parquet (the daily job's work), wall time.

Both evaluate ``rules/examples/b2b-saas/roadmap.yaml``. The ratio spark / polars is computed
from the medians of the same run. The last line printed is JSON.

``--hierarchy`` adds an account hierarchy case, interleaved with the others: the same roadmap
with ``data.accounts.parent`` and two roll-ups (the children's logins summed, their worst
seat utilisation band), over the same data with groups of ten accounts (the first of each
group is the parent of the other nine) and one larger tree (every 1,000th account under the
first one). It reports that case on polars and on Spark, and Spark with the hierarchy against
Spark without
(the cost of the roots and of partitioning by them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROADMAP = HERE.parent / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"

POLARS_CHILD = r"""
import json, resource, sys, time
import polars as pl
import healthrules as hr
plan = hr.compile(hr.load(sys.argv[1]))
t = time.perf_counter()
ev = hr.evaluate(plan, pl.scan_parquet(sys.argv[2]), pl.scan_parquet(sys.argv[3]), "2026-06-30")
ev.write(sys.argv[4])
print(json.dumps({"seconds": time.perf_counter() - t, "rows": ev.stages.height,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_data(root: Path, accounts: int) -> tuple[Path, Path, int]:
    from healthrules.datasets import sample

    root.mkdir(parents=True, exist_ok=True)
    ev, acc = root / f"events_{accounts}.parquet", root / f"accounts_{accounts}.parquet"
    data = sample(accounts)
    if not ev.exists():
        data.events.write_parquet(ev)
        data.accounts.write_parquet(acc)
    return ev, acc, data.events.height


def write_hierarchy(root: Path, acc: Path) -> tuple[Path, Path]:
    """The hierarchy case: the example roadmap with a parent and two roll-ups, and the
    accounts with ``parent_id`` (groups of ten, and every 1,000th account under the first)."""
    import polars as pl

    spec = yaml.safe_load(ROADMAP.read_text())
    spec["data"]["accounts"]["parent"] = "parent_id"
    spec["indicators"] += [
        {"id": "children_logins", "kind": "rollup", "family": "process", "aggregate": "sum",
         "of": "logins_28d"},
        {"id": "worst_child_utilisation", "kind": "rollup", "family": "process",
         "aggregate": "worst_band", "of": "seat_utilisation"}]
    roadmap = root / "roadmap_hierarchy.yaml"
    roadmap.write_text(yaml.safe_dump(spec, sort_keys=False))
    frame = pl.read_parquet(acc).with_row_index("__i")
    i = pl.col("__i")
    frame = frame.with_columns(
        pl.when(i == 0).then(pl.lit(None, pl.String))
        .when(i % 1000 == 0).then(pl.lit(frame["account_id"][0]))
        .when(i % 10 == 0).then(pl.lit(None, pl.String))
        .otherwise(pl.col("account_id").gather(i // 10 * 10)).alias("parent_id")).drop("__i")
    out = acc.with_name(acc.stem + "_hierarchy.parquet")
    frame.write_parquet(out)
    return roadmap, out


def run_polars(ev: Path, acc: Path, roadmap: Path = ROADMAP) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run(
            [sys.executable, "-c", POLARS_CHILD, str(roadmap), str(ev), str(acc), out + "/r"],
            capture_output=True, text=True, check=True)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def run_spark(spark: Any, ev: Path, acc: Path, partitions: int,
              roadmap: Path = ROADMAP) -> dict[str, Any]:
    from healthrules.spark import evaluate

    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        result = evaluate(str(roadmap), spark.read.parquet(str(ev)),
                          spark.read.parquet(str(acc)), "2026-06-30", partitions=partitions)
        result.write(out + "/r")
        seconds = time.perf_counter() - t
        result.unpersist()
    return {"seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, nargs="+", default=[2_000, 20_000])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=None,
                        help="default: 2 per core")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=HERE / ".data" / "spark")
    parser.add_argument("--hierarchy", action="store_true",
                        help="add the account hierarchy case (see above)")
    args = parser.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    partitions = args.partitions or 2 * args.cores
    t = time.perf_counter()
    spark = (SparkSession.builder.master(f"local[{args.cores}]").appName("bench")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", str(partitions))
             .config("spark.driver.memory", "4g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    startup = time.perf_counter() - t
    rows = []
    try:
        for n in args.accounts:
            ev, acc, events = write_data(args.data, n)
            hier = write_hierarchy(args.data, acc) if args.hierarchy else None
            run_spark(spark, ev, acc, partitions)  # warm-up: Python workers, JIT
            pol, spk, hpol, hspk = [], [], [], []
            for _ in range(args.repeat):  # interleaved, so drift hits every case alike
                pol.append(run_polars(ev, acc)["seconds"])
                spk.append(run_spark(spark, ev, acc, partitions)["seconds"])
                if hier is not None:
                    hpol.append(run_polars(ev, hier[1], hier[0])["seconds"])
                    hspk.append(run_spark(spark, ev, hier[1], partitions, hier[0])["seconds"])
            p, s = statistics.median(pol), statistics.median(spk)
            row = {"accounts": n, "events": events, "polars_s": round(p, 2),
                   "spark_s": round(s, 2), "ratio": round(s / p, 2),
                   "polars_events_per_s": round(events / p),
                   "spark_events_per_s": round(events / s)}
            if hier is not None:
                hp, hs = statistics.median(hpol), statistics.median(hspk)
                row.update(hierarchy_polars_s=round(hp, 2), hierarchy_spark_s=round(hs, 2),
                           hierarchy_ratio=round(hs / hp, 2),
                           spark_hierarchy_over_flat=round(hs / s, 2))
            print(row, file=sys.stderr)
            rows.append(row)
    finally:
        spark.stop()
        if args.data == HERE / ".data" / "spark":
            shutil.rmtree(args.data, ignore_errors=True)
    print(json.dumps({"cores": args.cores, "partitions": partitions,
                      "spark_startup_s": round(startup, 1), "runs": rows}))


if __name__ == "__main__":
    main()
