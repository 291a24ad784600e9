"""Benchmark: the engine's first evaluation and the hand-written query, in instructions.

Usage::

    python benchmarks/bench_instructions.py                 # 1M events, one source
    python benchmarks/bench_instructions.py --sources 3     # usage + tickets + surveys
    python benchmarks/bench_instructions.py --service       # the service's calls

The wall clock of ``bench_engine.py`` spreads by 0.1 to 0.3 between runs of one code on the
project's 2-core machine, more than the gaps left to its targets. Instruction counts do not
depend on the load: this benchmark counts them with valgrind's cachegrind (``valgrind`` must
be on the ``PATH``; Debian's package ``valgrind``), every process with
``POLARS_MAX_THREADS=1`` and ``PYTHONHASHSEED=0``, on the same Parquet files and workload as
``bench_engine.py`` (generated in ``--data`` if missing).

A measured part is counted as the difference of two fresh processes, one that runs it and
one that stops just before it:

- ``engine``: read (``pl.scan_parquet``), validate, compile, **evaluate once**, less the same
  process stopped after ``compile`` (what ``bench_engine.py`` times: compile is outside);
- ``handwritten``: read, **the hand-written query** (``workload.handwritten`` or
  ``workload.handwritten_sources``), less the same process stopped after the read.

Each is counted ``--repeat`` times (counts spread by 10M to 30M at 1M events) and the medians
are reported; ``ratio`` is the engine's over the hand-written query's, the figure the 1.10
targets of ``docs/performance.md`` are read against when the wall clock cannot separate.

``--service`` counts, instead, one call of a service (``bench_service.py``'s data: the B2B
example compiled once, five warm-up calls; one account of about 500 events, and all 200
accounts): ten calls less none, divided by ten. There is no hand-written side there: the
targets are wall-clock milliseconds, and the counts say whether a change moved the code.

The last line printed is JSON: events, sources, engine_m, handwritten_m, ratio, and every
count (millions of instructions); with ``--service``: one_m and batch_m, per call.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

ENGINE = r"""
import sys
sys.path.insert(0, {here!r})
import polars as pl
import workload
import healthrules as hr
mode, ev, acc = sys.argv[1], sys.argv[2], sys.argv[3]
extra = sys.argv[4:]
events, accounts = pl.scan_parquet(ev), pl.scan_parquet(acc)
if extra:
    tickets, surveys = pl.scan_parquet(extra[0]), pl.scan_parquet(extra[1])
    given = {{"usage": events, "tickets": tickets, "surveys": surveys}}
    spec = workload.roadmap_sources_dict()
else:
    given, spec = events, workload.roadmap_dict()
if mode in ("engine", "compiled"):
    plan = hr.compile(hr.Roadmap.model_validate(spec))
if mode == "engine":
    assert hr.evaluate(plan, given, accounts, workload.AS_OF).indicators.height > 0
elif mode == "handwritten":
    out = (workload.handwritten_sources(events, tickets, surveys, accounts) if extra
           else workload.handwritten(events, accounts))
    assert out.height > 0
"""

SERVICE = r"""
import sys
import polars as pl
import healthrules as hr
from healthrules.datasets import DEFAULT_AS_OF
folder, roadmap, kind, calls = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sfx = "_one" if kind == "one" else ""
events = pl.read_parquet(f"{{folder}}/events{{sfx}}.parquet")
accounts = pl.read_parquet(f"{{folder}}/accounts{{sfx}}.parquet")
plan = hr.compile(hr.load(roadmap))
for _ in range(5 + calls):
    hr.evaluate(plan, events, accounts, DEFAULT_AS_OF)
"""

_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def count(code: str, *args: str) -> int:
    """Instructions of one fresh process running ``code`` with ``args`` (cachegrind)."""
    env = {**os.environ, "POLARS_MAX_THREADS": "1", "PYTHONHASHSEED": "0"}
    proc = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, "-c", code, *args],
        capture_output=True, text=True, env=env, check=False)
    found = _REFS.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"a counted process failed (exit {proc.returncode}):\n"
                         f"{proc.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def millions(n: float) -> float:
    return round(n / 1e6, 1)


def engine_counts(args: argparse.Namespace) -> dict[str, object]:
    import workload

    n_acc = args.accounts or max(10, args.events // 100)
    args.data.mkdir(parents=True, exist_ok=True)
    ev, acc = workload.write(args.data, args.events, n_acc)
    extra = tuple(str(p) for p in workload.write_sources(args.data, args.events, n_acc)) \
        if args.sources == 3 else ()
    code = ENGINE.format(here=str(HERE))
    files = (str(ev), str(acc), *extra)
    engine, hand = [], []
    for _ in range(args.repeat):  # the sides in turn, so that nothing drifts apart
        engine.append(count(code, "engine", *files) - count(code, "compiled", *files))
        hand.append(count(code, "handwritten", *files) - count(code, "read", *files))
    e, h = statistics.median(engine), statistics.median(hand)
    return {"events": args.events, "sources": args.sources, "accounts": n_acc,
            "engine_m": millions(e), "handwritten_m": millions(h), "ratio": round(e / h, 3),
            "engine_runs_m": [millions(x) for x in engine],
            "handwritten_runs_m": [millions(x) for x in hand]}


def service_counts(args: argparse.Namespace) -> dict[str, object]:
    from bench_service import GENERATE, ROADMAP

    folder = args.data / "service"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "events_one.parquet").exists():
        subprocess.run([sys.executable, "-c", GENERATE, str(folder)], check=True)
    code = SERVICE.format()
    out: dict[str, object] = {}
    for kind in ("one", "batch"):
        runs = [(count(code, str(folder), str(ROADMAP), kind, "10")
                 - count(code, str(folder), str(ROADMAP), kind, "0")) / 10
                for _ in range(args.repeat)]
        out[f"{kind}_m"] = millions(statistics.median(runs))
        out[f"{kind}_runs_m"] = [round(x / 1e6, 2) for x in runs]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=None, help="default: events / 100")
    parser.add_argument("--sources", type=int, choices=[1, 3], default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=HERE / ".data")
    parser.add_argument("--service", action="store_true",
                        help="count a service's calls instead (bench_service.py's data)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not on the PATH (Debian: apt-get install valgrind)")
    result = service_counts(args) if args.service else engine_counts(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
