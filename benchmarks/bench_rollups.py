"""Roll-ups over an account hierarchy: one evaluation of a roadmap with roll-ups on
``sample(N, hierarchy=True)``, with one level of roll-ups or with a roll-up of roll-ups too.

Write the data once, then time whole processes (one evaluation each)::

    python benchmarks/bench_rollups.py --write /tmp/rollups --accounts 100000
    /usr/bin/time -v python benchmarks/bench_rollups.py --data /tmp/rollups --levels 1
    /usr/bin/time -v python benchmarks/bench_rollups.py --data /tmp/rollups --levels 2

The roadmap uses the public API only, so the same script times another checkout of the
library (``PYTHONPATH=<checkout>/src``) at ``--levels 1``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import polars as pl

import healthrules as hr

LEVEL_1: list[dict[str, Any]] = [
    {"id": "logins_30d", "family": "process", "aggregate": "count",
     "where": "event == 'login'", "window": "30d",
     "bands": {"levels": [{"name": "red", "lt": 6}, {"name": "amber", "ge": 6, "lt": 12},
                          {"name": "green", "ge": 12}]}},
    {"id": "active_users_30d", "family": "process", "aggregate": "distinct",
     "where": "event == 'login'", "window": "30d"},
    {"id": "seat_use", "family": "process", "expr": "active_users_30d / seats"},
    {"id": "subsidiaries", "family": "relationship", "kind": "rollup", "aggregate": "count",
     "of": "True"},
    {"id": "at_risk", "family": "process", "kind": "rollup", "aggregate": "count",
     "of": "band(logins_30d) == 'red'"},
    {"id": "group_seat_use", "family": "process", "kind": "rollup",
     "aggregate": "weighted_mean", "of": "seat_use", "weight": "arr",
     "bands": {"levels": [{"name": "low", "lt": 0.5}, {"name": "high", "ge": 0.5}]}},
    {"id": "worst", "family": "process", "kind": "rollup", "aggregate": "worst_band",
     "of": "logins_30d"},
]
LEVEL_2: list[dict[str, Any]] = [
    {"id": "at_risk_below", "family": "process", "kind": "rollup", "aggregate": "sum",
     "of": "at_risk"},
    {"id": "at_risk_in_group", "family": "process", "expr": "at_risk + at_risk_below"},
]


def roadmap(levels: int) -> hr.Roadmap:
    risk = "at_risk_in_group" if levels == 2 else "at_risk"
    return hr.Roadmap.model_validate({
        "id": "rollups", "goal": "Every company of every group works in the product.",
        "data": {"events": {"timezone": "UTC", "values": {"value": "float"}},
                 "accounts": {"parent": "parent_id",
                              "attributes": {"seats": "int", "arr": "float"}}},
        "indicators": LEVEL_1 + (LEVEL_2 if levels == 2 else []),
        "stages": [{"id": "group", "entry": "subsidiaries > 0", "actions": [
            {"id": "review", "kind": "challenge", "when": f"{risk} >= 2",
             "do": "{" + risk + "} companies at risk (worst {worst})", "owner": "csm"}]},
                   {"id": "company"}],
        "score": {"weights": {"indicators": {"group_seat_use": 1}}},
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="write the sample here and stop")
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--data", type=Path, help="a folder written by --write")
    parser.add_argument("--levels", type=int, choices=(1, 2), default=1)
    args = parser.parse_args()
    if args.write is not None:
        from healthrules.datasets import sample

        data = sample(args.accounts, hierarchy=True)
        args.write.mkdir(parents=True, exist_ok=True)
        data.events.write_parquet(args.write / "events.parquet")
        data.accounts.write_parquet(args.write / "accounts.parquet")
        return
    assert args.data is not None, "give --data (or --write)"
    events = pl.read_parquet(args.data / "events.parquet")
    accounts = pl.read_parquet(args.data / "accounts.parquet")
    plan = hr.compile(roadmap(args.levels))
    start = time.perf_counter()
    result = hr.evaluate(plan, events, accounts, "2026-06-30")
    took = time.perf_counter() - start
    print(f"levels={args.levels} accounts={accounts.height} events={events.height} "
          f"actions={result.actions.height} evaluate={took:.3f}s")


if __name__ == "__main__":
    main()
