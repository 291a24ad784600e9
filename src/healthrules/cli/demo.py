"""``healthrules demo``: the B2B example on generated sample data, summarised in the terminal."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register", "run"]

EPILOG = """\
examples:
  healthrules demo                       # 200 accounts, writes ./healthrules-demo/
  healthrules demo --accounts 2000 --out /tmp/demo --format csv

What it does: generates a deterministic sample of usage events and accounts
(healthrules.datasets.sample), evaluates the bundled B2B SaaS success roadmap as of the
sample's last day, prints accounts per stage, score bands, the top actions with their
text and evidence, and one account explained, then writes the frames to --out.
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``demo`` command."""
    from healthrules.cli import _args

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="run the B2B example on sample data (the quick start)",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=_args.positive_int, default=200,
                        help="sample size (default 200)")
    parser.add_argument("--seed", type=_args.count, default=7,
                        help="seed of the generated sample (default 7; same seed, same data)")
    parser.add_argument("--out", default="healthrules-demo", help="output folder")
    parser.add_argument("--format", choices=["parquet", "csv", "ndjson"], default="parquet",
                        help="format of the written frames (default parquet)")
    parser.add_argument("--top", type=_args.count, default=8,
                        help="how many actions to show (default 8)")
    parser.set_defaults(run=run)
    return parser


def _say(text: str) -> None:
    if sys.stderr.isatty():
        print(text, file=sys.stderr)


def run(args: argparse.Namespace) -> Any:
    """Generate, evaluate, print, write."""
    import polars as pl

    import healthrules as hr
    from healthrules.cli._args import output_dir
    from healthrules.cli._exit import Exit
    from healthrules.cli.evaluate import format_summary, write_result
    from healthrules.datasets import sample
    from healthrules.examples import example_path
    from healthrules.history.daily import provenance

    out = output_dir(args.out, "--out")
    _say(f"generating a sample of {args.accounts} accounts ...")
    data = sample(args.accounts, seed=args.seed)
    path = example_path("b2b-saas")
    _say(f"evaluating {path} as of {data.as_of} ...")
    roadmap = hr.load(path)
    assert isinstance(roadmap, hr.Roadmap), "the B2B example is a single roadmap"
    result = hr.evaluate(roadmap, data.events, data.accounts, data.as_of)
    print(f"healthrules demo: {roadmap.title or roadmap.id}")
    print(f"goal: {roadmap.goal.text}")
    print(f"sample: {data.events.height} events, {data.accounts.height} accounts, "
          f"as of {data.as_of}")
    print()
    print(format_summary(result))
    print()
    key = result.account_key
    rank = pl.col("priority").replace_strict(
        {"critical": 0, "high": 1, "medium": 2, "low": 3}, default=4, return_dtype=pl.Int64)
    top = result.actions.sort(rank, key).head(args.top)
    print(f"top {top.height} actions:")
    for row in top.to_dicts():
        owner = " / ".join(x for x in (row["owner"], row["channel"]) if x)
        print(f"  [{row['priority']}] {row[key]} {row['action_id']} ({row['kind']}, {owner})")
        print(f"      {row['text']}")
        evidence = "; ".join(
            f"{e['name']} = {e['value']}"
            + (f" ({e['band']})" if e["band"] and not e["name"].startswith("band(") else "")
            + (f" {e['op']} {e['threshold']}" if e["op"] else "")
            for e in row["evidence"])
        if evidence:
            print(f"      evidence: {evidence}")
    red = result.scores.filter(pl.col("score").is_not_null()).sort("score", key).head(1)
    if red.height:
        account = red[key][0]
        print()
        print("one account explained (the lowest score):")
        text = result.explain(account).render(steps=False)
        print("\n".join("  " + line for line in text.splitlines()))
    files = write_result(result, out, args.format, {"rules": provenance(roadmap).to_dict()})
    print()
    print(f"wrote {len(files)} files to {out.resolve()}")
    return Exit.OK
