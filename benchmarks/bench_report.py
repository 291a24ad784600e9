"""Benchmark: the HTML report of a large evaluation, and of its history.

Usage::

    python benchmarks/bench_report.py                     # 10,000 accounts, 12 weeks
    python benchmarks/bench_report.py --accounts 2000 --weeks 4

The sample data (``healthrules.datasets.sample``) are generated first, in a process of their
own, and written to Parquet. The timing process reads them, evaluates the B2B example as of
the last day and times ``report_html`` of the evaluation; then it evaluates the history of
the ``--weeks`` weeks before (one snapshot a week) and times ``report_html`` of the history.
Both reports use the default limits (25 top actions, 1,000 listed accounts, 100 explained).
The last line printed is JSON: accounts, events, evaluate_s, report_s, report_mb,
history_s, history_report_s, history_report_mb, explained, listed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ROADMAP = ROOT / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"

GENERATE = r"""
import sys
from healthrules.datasets import sample, write_sample
write_sample(sys.argv[1], data=sample(int(sys.argv[2])))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--weeks", type=int, default=12)
    args = parser.parse_args()

    import datetime as dt

    import polars as pl

    import healthrules as hr
    from healthrules.history import history
    from healthrules.report import Limits, report_html

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-c", GENERATE, tmp, str(args.accounts)], check=True)
        events = pl.read_parquet(Path(tmp) / "events.parquet")
        accounts = pl.read_parquet(Path(tmp) / "accounts.parquet")
    as_of = events["timestamp"].max().date()  # type: ignore[union-attr]
    roadmap = hr.load(ROADMAP)
    t = time.perf_counter()
    ev = hr.evaluate(roadmap, events, accounts, as_of)
    evaluate_s = time.perf_counter() - t
    t = time.perf_counter()
    page = report_html(ev)
    report_s = time.perf_counter() - t
    t = time.perf_counter()
    h = history(roadmap, events, accounts, start=as_of - dt.timedelta(weeks=args.weeks),
                end=as_of, every="1w")
    history_s = time.perf_counter() - t
    t = time.perf_counter()
    page_h = report_html(h)
    history_report_s = time.perf_counter() - t
    limits = Limits()
    out = {
        "accounts": ev.stages.height, "events": events.height,
        "evaluate_s": round(evaluate_s, 2), "report_s": round(report_s, 2),
        "report_mb": round(len(page.encode()) / 1e6, 2),
        "history_s": round(history_s, 2), "history_report_s": round(history_report_s, 2),
        "history_report_mb": round(len(page_h.encode()) / 1e6, 2),
        "listed": min(ev.stages.height, limits.list_accounts),
        "explained": min(ev.stages.height, limits.explain_accounts),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
