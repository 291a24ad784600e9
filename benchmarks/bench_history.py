"""Benchmark: history() over 52 weekly snapshots versus a plain loop of evaluate(), same run.

Usage::

    python benchmarks/bench_history.py                   # about 1M events
    python benchmarks/bench_history.py --events 5000000
    python benchmarks/bench_history.py --events 200000 --snapshots 12

Data: :func:`healthrules.datasets.sample` with enough history for the first snapshot's
longest window (545 days for 52 weekly snapshots and 180-day windows), about 230 events per
account, so ``--events`` fixes the number of accounts. Roadmap: the B2B SaaS example
(``rules/examples/b2b-saas/roadmap.yaml``, 27 indicators of every window kind, 4 stages, 9
actions). The events are written to Parquet once and read lazily with ``pl.scan_parquet``
by every side, as a service would.

Measured, in this order and in one process, after one warm-up evaluate(): one evaluate() at
the last date (``one_snapshot_s``, the best of ``--repeat``), history() over every snapshot
(``history_s``, best of ``--repeat``), and the plain loop of one evaluate() per date
(``loop_s``, once; earlier dates read fewer events, so ``loop_s / snapshots`` is below
``one_snapshot_s``). The last line printed is JSON: snapshots, events, accounts, history_s,
loop_s, one_snapshot_s, ratio_to_one_snapshot, ratio_to_loop.
Target (docs/time.md): ratio_to_one_snapshot <= 10 for 52 weekly snapshots.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ROADMAP = ROOT / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"
EVENTS_PER_ACCOUNT = 228


def data(folder: Path, n_events: int, days: int) -> tuple[Path, Path, dt.date]:
    """Generate (once, cached by size) and write the sample as Parquet."""
    from healthrules.datasets import DEFAULT_AS_OF, sample

    n_accounts = max(10, n_events // EVENTS_PER_ACCOUNT)
    ev_path = folder / f"history_events_{n_accounts}_{days}.parquet"
    acc_path = folder / f"history_accounts_{n_accounts}_{days}.parquet"
    if not ev_path.exists() or not acc_path.exists():
        s = sample(n_accounts, days=days)
        folder.mkdir(parents=True, exist_ok=True)
        for frame, path in ((s.events, ev_path), (s.accounts, acc_path)):
            tmp = path.with_suffix(".tmp")
            frame.write_parquet(tmp, row_group_size=1_000_000)
            tmp.replace(path)
    return ev_path, acc_path, DEFAULT_AS_OF


def best(fn: object, repeat: int) -> float:
    """The best wall time of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="about this many events")
    parser.add_argument("--snapshots", type=int, default=52, help="weekly snapshots")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each fast side")
    parser.add_argument("--data", default=None, help="folder for the Parquet files")
    args = parser.parse_args()

    import healthrules as hr
    from healthrules.history import history

    days = 180 + 7 * args.snapshots
    folder = Path(args.data) if args.data else Path(tempfile.gettempdir()) / "healthrules-bench"
    ev_path, acc_path, as_of = data(folder, args.events, days)
    events = pl.scan_parquet(ev_path)
    accounts = pl.scan_parquet(acc_path)
    n_events = events.select(pl.len()).collect().item()
    n_accounts = accounts.select(pl.len()).collect().item()
    plan = hr.compile(hr.load(ROADMAP))
    start = as_of - dt.timedelta(weeks=args.snapshots - 1)
    dates = [start + dt.timedelta(weeks=k) for k in range(args.snapshots)]
    print(f"{n_events:,} events, {n_accounts:,} accounts, {len(dates)} snapshots "
          f"{dates[0]}..{dates[-1]}", file=sys.stderr)

    hr.evaluate(plan, events, accounts, as_of)  # warm-up: file cache, thread pool
    one = best(lambda: hr.evaluate(plan, events, accounts, as_of), args.repeat)
    print(f"one evaluate(): {one:.2f} s", file=sys.stderr)
    hist = best(lambda: history(plan, events, accounts, dates[0], dates[-1], "1w"), args.repeat)
    print(f"history(): {hist:.2f} s", file=sys.stderr)
    t = time.perf_counter()
    for d in dates:
        hr.evaluate(plan, events, accounts, d)
    loop = time.perf_counter() - t
    print(f"plain loop: {loop:.2f} s", file=sys.stderr)
    print(json.dumps({
        "snapshots": len(dates), "events": n_events, "accounts": n_accounts,
        "history_s": round(hist, 3), "loop_s": round(loop, 3), "one_snapshot_s": round(one, 3),
        "ratio_to_one_snapshot": round(hist / one, 2), "ratio_to_loop": round(hist / loop, 3),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
