"""Benchmark: explaining accounts one by one (``Evaluation.explain``), as a report does.

Usage::

    python benchmarks/bench_explain.py                 # 200 accounts, all explained
    python benchmarks/bench_explain.py --accounts 500

Generates the sample data in the process, evaluates the B2B example as of the last day, then
times ``explain`` of every account. The last line printed is JSON: accounts, evaluate_s,
explain_s, explain_ms_per_account.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import healthrules as hr
from healthrules.datasets import sample

ROADMAP = Path(__file__).resolve().parents[1] / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=200)
    args = parser.parse_args()
    data = sample(args.accounts)
    roadmap = hr.load(ROADMAP)
    start = time.perf_counter()
    result = hr.evaluate(roadmap, data.events, data.accounts, as_of=data.as_of)
    evaluated = time.perf_counter()
    ids = result.scores["account_id"].to_list()
    for account in ids:
        result.explain(account)
    done = time.perf_counter()
    print(json.dumps({"accounts": len(ids), "evaluate_s": round(evaluated - start, 3),
                      "explain_s": round(done - evaluated, 3),
                      "explain_ms_per_account": round((done - evaluated) / len(ids) * 1000, 2)}))


if __name__ == "__main__":
    main()
