"""Benchmark: a Python service that compiled a roadmap once evaluates a few accounts.

Usage::

    python benchmarks/bench_service.py                  # B2B example, 200 repeats
    python benchmarks/bench_service.py --repeat 500

What a service does per request: take the events and attributes of one account (or of a
batch of accounts) as in-memory polars frames and call ``healthrules.evaluate(plan, ...)``
with a plan compiled at start-up. The data are generated first, in a process of their own,
and written to Parquet; the timing process reads them into memory, compiles once, warms up,
and then times each call (wall clock, ``time.perf_counter``):

- ``one``: the sample account with the most events (about 500: ``sample(200, days=240)``);
- ``batch``: all 200 accounts of the sample (about 25,000 events).

The last line printed is JSON: roadmap, indicators, actions, events_one, events_batch,
one_p50_ms, one_p95_ms, batch_p50_ms, batch_p95_ms, compile_ms, and one_cpu_p50_ms,
batch_cpu_p50_ms: the median CPU time of the process per call (all threads;
``time.process_time``), which a busy shared machine disturbs less than the wall clock.
Targets (docs/performance.md): one p50 < 10 ms and p95 < 25 ms, batch p50 < 20 ms, on an
idle machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ROADMAP = ROOT / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"

GENERATE = r"""
import sys
import polars as pl
from healthrules.datasets import sample
s = sample(200, days=240)
key = "account_id"
top = s.events.group_by(key).len().sort(["len", key], descending=[True, False])[key][0]
s.events.write_parquet(sys.argv[1] + "/events.parquet")
s.accounts.write_parquet(sys.argv[1] + "/accounts.parquet")
s.events.filter(pl.col(key) == top).write_parquet(sys.argv[1] + "/events_one.parquet")
s.accounts.filter(pl.col(key) == top).write_parquet(sys.argv[1] + "/accounts_one.parquet")
"""

TIME = r"""
import json, sys, time
import polars as pl
import healthrules as hr
from healthrules.datasets import DEFAULT_AS_OF
folder, roadmap_path, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
roadmap = hr.load(roadmap_path)
t0 = time.perf_counter()
plan = hr.compile(roadmap)  # every polars expression of the roadmap is built here
compile_ms = (time.perf_counter() - t0) * 1e3
frames = {name: (pl.read_parquet(f"{folder}/events{sfx}.parquet"),
                 pl.read_parquet(f"{folder}/accounts{sfx}.parquet"))
          for name, sfx in (("one", "_one"), ("batch", ""))}
out = {"compile_ms": round(compile_ms, 1)}
for name, (events, accounts) in frames.items():
    for _ in range(5):
        hr.evaluate(plan, events, accounts, DEFAULT_AS_OF)
    times, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        hr.evaluate(plan, events, accounts, DEFAULT_AS_OF)
        times.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
    times.sort()
    cpu.sort()
    out[f"events_{name}"] = events.height
    out[f"{name}_p50_ms"] = round(times[len(times) // 2], 2)
    out[f"{name}_p95_ms"] = round(times[int(len(times) * 0.95)], 2)
    out[f"{name}_cpu_p50_ms"] = round(cpu[len(cpu) // 2], 2)
r = plan.roadmaps[0].roadmap
out["indicators"] = len(r.indicators)
out["actions"] = len(r.all_actions())
print(json.dumps(out))
"""


def main() -> None:
    """Generate the data, time the service calls in a fresh process, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--roadmap", type=Path, default=ROADMAP)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-c", GENERATE, folder], check=True)
        done = subprocess.run(
            [sys.executable, "-c", TIME, folder, str(args.roadmap), str(args.repeat)],
            check=True, capture_output=True, text=True)
    result = {"roadmap": args.roadmap.name, **json.loads(done.stdout.strip().splitlines()[-1])}
    print(f"one account ({result['events_one']} events): p50 {result['one_p50_ms']} ms, "
          f"p95 {result['one_p95_ms']} ms")
    print(f"batch of 200 accounts ({result['events_batch']} events): "
          f"p50 {result['batch_p50_ms']} ms, p95 {result['batch_p95_ms']} ms")
    print(f"CPU time per call, p50: one account {result['one_cpu_p50_ms']} ms, batch "
          f"{result['batch_cpu_p50_ms']} ms")
    print(f"roadmap: {result['indicators']} indicators, {result['actions']} actions; "
          f"compile {result['compile_ms']} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
