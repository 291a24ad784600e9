"""Benchmark: healthrules.evaluate versus a hand-written polars query, in the same run.

Usage::

    python benchmarks/bench_engine.py               # 10M events, 100k accounts
    python benchmarks/bench_engine.py --events 1000000
    python benchmarks/bench_engine.py --sources 3   # usage + tickets + surveys

With ``--sources 3`` the roadmap reads three event sources (``workload.roadmap_sources_dict``:
the usage events, a help desk's tickets, one row per 20 events, and a survey tool's answers,
one per 100 events, each with its own columns, time unit and timestamp type), and the
baseline is ``workload.handwritten_sources``: one group_by per source, joined, one collect.

Each side runs in its own fresh subprocess (so peak RSS is its own), reading the same Parquet
files lazily with ``pl.scan_parquet``, ``--repeat`` times; the median wall time is reported.
The last line printed is JSON: events, accounts, indicators, engine_s, handwritten_s, ratio,
engine_cpu_s, handwritten_cpu_s, cpu_ratio (CPU seconds of the timed call), peak_rss_mb (the
engine's), handwritten_rss_mb, compile_ms_200, in_memory_fallbacks.
Targets (docs/performance.md): ratio <= 1.00 at 10M events and <= 1.10 at 1M events (three
sources: <= 1.10), peak RSS < 1.5 GiB, no in-memory fallback in the streaming engine,
200-indicator compile < 100 ms. On a shared machine the wall times of one run move with the
load: compare ratios of the interleaved runs, and the CPU seconds of each side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {here!r})
import polars as pl
import workload
side, ev_path, acc_path = sys.argv[1], sys.argv[2], sys.argv[3]
extra = sys.argv[4:]  # tickets and surveys files: the three-source workload
events = pl.scan_parquet(ev_path)
accounts = pl.scan_parquet(acc_path)
if extra:
    tickets, surveys = pl.scan_parquet(extra[0]), pl.scan_parquet(extra[1])
if side == "engine":
    import healthrules as hr
    spec = workload.roadmap_sources_dict() if extra else workload.roadmap_dict()
    plan = hr.compile(hr.Roadmap.model_validate(spec))
    given = {{"usage": events, "tickets": tickets, "surveys": surveys}} if extra else events
    t, c = time.perf_counter(), time.process_time()
    result = hr.evaluate(plan, given, accounts, workload.AS_OF)
    elapsed, cpu = time.perf_counter() - t, time.process_time() - c
    rows = result.indicators.height
else:
    t, c = time.perf_counter(), time.process_time()
    if extra:
        out = workload.handwritten_sources(events, tickets, surveys, accounts)
    else:
        out = workload.handwritten(events, accounts)
    elapsed, cpu = time.perf_counter() - t, time.process_time() - c
    rows = out.height
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": elapsed, "cpu_seconds": cpu, "rss_mb": rss, "rows": rows}}))
"""


def run_side(side: str, ev: Path, acc: Path, extra: tuple[Path, ...] = (),
             env: dict[str, str] | None = None) -> dict[str, float]:
    code = CHILD.format(here=str(HERE))
    proc = subprocess.run(
        [sys.executable, "-c", code, side, str(ev), str(acc), *map(str, extra)],
        capture_output=True, text=True, check=True, env=env,
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def fallbacks(ev: Path, acc: Path, extra: tuple[Path, ...] = ()) -> int:
    """Count in-memory fallback notices of the engine run under POLARS_VERBOSE=1."""
    env = {**os.environ, "POLARS_VERBOSE": "1"}
    code = CHILD.format(here=str(HERE))
    proc = subprocess.run([sys.executable, "-c", code, "engine", str(ev), str(acc),
                           *map(str, extra)],
                          capture_output=True, text=True, check=True, env=env)
    text = proc.stderr.lower()
    return text.count("in-memory-map") + text.count("fallback")


def compile_ms(n_indicators: int = 200) -> float:
    """Median time to validate and compile a roadmap of ``n_indicators`` indicators."""
    import workload

    import healthrules as hr

    base = workload.roadmap_dict()
    inds = []
    for k in range(n_indicators):
        if k % 4 == 3:
            inds.append({"id": f"d{k}", "family": "process", "expr": f"c{k - 1} / max(c{k - 2}, 1)",
                         "bands": {"levels": [{"name": "red", "lt": 0.5},
                                              {"name": "green", "ge": 0.5}]}})
        else:
            inds.append({"id": f"c{k}", "family": "process", "aggregate": "count",
                         "where": f"event == 'e{k % 7}'", "window": f"{7 * (1 + k % 4)}d"})
    base["indicators"] = base["indicators"] + inds
    times = []
    for _ in range(5):
        t = time.perf_counter()
        hr.compile(hr.Roadmap.model_validate(base))
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--accounts", type=int, default=None,
                        help="default: events / 100")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=HERE / ".data")
    parser.add_argument("--sources", type=int, choices=[1, 3], default=1,
                        help="1: the usage events; 3: usage + tickets + surveys")
    args = parser.parse_args()
    n_acc = args.accounts or max(10, args.events // 100)
    import workload

    t = time.perf_counter()
    # generated in a process of its own: a child started by a parent that held the data
    # would report the parent's peak RSS as its own (ru_maxrss survives fork and exec)
    made = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import workload; "
         "print(*workload.write(__import__('pathlib').Path(sys.argv[2]), int(sys.argv[3]), "
         "int(sys.argv[4])), sep='|')", str(HERE), str(args.data), str(args.events), str(n_acc)],
        check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1].split("|")
    ev, acc = Path(made[0]), Path(made[1])
    extra: tuple[Path, ...] = ()
    if args.sources == 3:
        made = subprocess.run(
            [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
             "import workload; print(*workload.write_sources(__import__('pathlib').Path("
             "sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])), sep='|')", str(HERE),
             str(args.data), str(args.events), str(n_acc)],
            check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        extra = tuple(Path(p) for p in made.split("|"))
    print(f"data ready in {time.perf_counter() - t:.1f}s: {ev.name}", file=sys.stderr)
    engine, hand = [], []
    for _ in range(args.repeat):  # interleave the two sides so drift hits both alike
        engine.append(run_side("engine", ev, acc, extra))
        hand.append(run_side("handwritten", ev, acc, extra))
    e_s = statistics.median(x["seconds"] for x in engine)
    h_s = statistics.median(x["seconds"] for x in hand)
    spec = workload.roadmap_sources_dict() if extra else workload.roadmap_dict()
    result = {
        "events": args.events,
        "sources": args.sources,
        "accounts": n_acc,
        "indicators": len(spec["indicators"]),
        "engine_s": round(e_s, 3),
        "handwritten_s": round(h_s, 3),
        "ratio": round(e_s / h_s, 3),
        # CPU seconds of the evaluation (every thread): steadier than wall time when other
        # work shares the machine
        "engine_cpu_s": round(statistics.median(x["cpu_seconds"] for x in engine), 3),
        "handwritten_cpu_s": round(statistics.median(x["cpu_seconds"] for x in hand), 3),
        "cpu_ratio": round(statistics.median(x["cpu_seconds"] for x in engine)
                           / statistics.median(x["cpu_seconds"] for x in hand), 3),
        "peak_rss_mb": round(max(x["rss_mb"] for x in engine), 1),
        "handwritten_rss_mb": round(max(x["rss_mb"] for x in hand), 1),
        "compile_ms_200": round(compile_ms(), 1),
        "in_memory_fallbacks": fallbacks(ev, acc, extra),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
