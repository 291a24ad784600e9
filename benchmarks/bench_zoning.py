"""Benchmark: what reading wall times as instants costs in a zone with daylight-saving changes.

Usage::

    python benchmarks/bench_zoning.py                       # America/Santiago, 1M dates
    python benchmarks/bench_zoning.py --zone Europe/Berlin --rows 2000000
    python benchmarks/bench_zoning.py --service             # plus the service call

``healthrules.inputs.zoned_wall_time`` turns a column of naive wall times (a ``Date`` event
timestamp at midnight, a ``date`` attribute, the end of each date of ``history``) into
instants, reading a wall time that a change skips with the offset before the change and a
repeated one as its earlier instant (docs/semantics.md, "Time"). It is timed against a single
``replace_time_zone`` (``non_existent="null"``: the cost of one zoning, which loses the
skipped midnights), in one lazy query each, alternating, ``--repeat`` rounds; the medians
and the median of the per-round ratios are printed.

With ``--service`` the B2B example's service call (one account, then the 200 accounts of the
sample, as ``benchmarks/bench_service.py`` calls it) runs with the roadmap's events in
``--zone`` and ``Date`` timestamps: the median CPU milliseconds of ``--calls`` calls each.
The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

from healthrules.inputs import zoned_wall_time

ROOT = Path(__file__).resolve().parents[1]


def zoning(zone: str, rows: int, repeat: int) -> dict[str, float]:
    """Median seconds of one zoning and of ``zoned_wall_time`` over ``rows`` dates."""
    days = pl.date_range(dt.date(2016, 1, 1), dt.date(2030, 12, 31), eager=True)
    frame = pl.DataFrame({"d": days.sample(rows, with_replacement=True, seed=7)}).lazy()
    naive = pl.col("d").cast(pl.Datetime("us"))
    one = naive.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
    forms = {"one_zoning_s": one, "zoned_wall_time_s": zoned_wall_time(naive, zone)}
    times: dict[str, list[float]] = {k: [] for k in forms}
    for _ in range(repeat):
        for name, expr in forms.items():
            start = time.perf_counter()
            frame.select(expr).collect()
            times[name].append(time.perf_counter() - start)
    out = {k: round(statistics.median(v), 4) for k, v in times.items()}
    out["ratio"] = round(statistics.median(
        a / b for a, b in zip(times["zoned_wall_time_s"], times["one_zoning_s"], strict=True)), 3)
    return out


def service(zone: str, calls: int) -> dict[str, float]:
    """Median CPU ms of the B2B service call, one account and the batch, in ``zone``."""
    import healthrules as hr
    from healthrules.datasets import DEFAULT_AS_OF, sample

    data = sample(200, days=240)
    events = data.events.with_columns(pl.col("timestamp").dt.date())
    text = (ROOT / "rules/examples/b2b-saas/roadmap.yaml").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "roadmap.yaml"
        path.write_text(text.replace("timezone: UTC", f"timezone: {zone}"), encoding="utf-8")
        plan = hr.compile(hr.load(path))
    key = "account_id"
    top = events.group_by(key).len().sort(["len", key], descending=[True, False])[key][0]
    cases = {"one_account_ms": (events.filter(pl.col(key) == top),
                                data.accounts.filter(pl.col(key) == top)),
             "batch_ms": (events, data.accounts)}
    out: dict[str, float] = {}
    for name, (ev, acc) in cases.items():
        for _ in range(10):
            hr.evaluate(plan, ev, acc, DEFAULT_AS_OF)
        cpu = []
        for _ in range(calls):
            start = time.process_time()
            hr.evaluate(plan, ev, acc, DEFAULT_AS_OF)
            cpu.append(time.process_time() - start)
        out[name] = round(statistics.median(cpu) * 1e3, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--zone", default="America/Santiago")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--service", action="store_true")
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    result: dict[str, object] = {"zone": args.zone, "rows": args.rows,
                                 **zoning(args.zone, args.rows, args.repeat)}
    if args.service:
        result.update(service(args.zone, args.calls))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
