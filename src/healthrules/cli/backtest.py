"""``healthrules backtest``: evaluate a roadmap in the past and compare it with renewal outcomes:
retention and churn per health band, AUC and red-band lift, how early the score turned red
before each churn, and how often each action would have fired."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register", "run"]

EPILOG = """\
examples:
  healthrules backtest rules/examples/b2b-saas/roadmap.yaml --events events.parquet \\
      --accounts accounts.parquet --outcomes renewals.csv --start 2025-07-01 --end 2026-06-30
  healthrules backtest roadmap.yaml ... --horizon 60 --every 1w --format json

--outcomes is a .parquet, .csv or .ndjson file with one row per renewal: the account key,
renewal_date (YYYY-MM-DD), outcome (renewed or churned) and arr (recurring revenue); a CSV or
NDJSON file is read with those types, a value that is not one refused by row. Renewals
dated from --start to --end are scored --horizon days before the renewal (default 90).
Snapshots every --every (default 1w) from --lookback days (default 180) before --start, and
on --end, give the lead times and the action counts. --out DIR writes every frame as Parquet.
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``backtest`` command."""
    from healthrules.cli import _args

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "backtest", help="how well the score foresaw renewals and churns",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roadmap", help="a roadmap file or a pack file")
    from healthrules.cli._frames import add_source_arguments

    add_source_arguments(parser)
    parser.add_argument("--outcomes", required=True, help="renewal outcomes file")
    parser.add_argument("--start", required=True, type=_args.date,
                        help="first renewal date to score")
    parser.add_argument("--end", required=True, type=_args.date,
                        help="last renewal date to score")
    parser.add_argument("--horizon", type=_args.count, default=90,
                        help="days before each renewal to read the score (default 90)")
    parser.add_argument("--every", default="1w", type=_args.days,
                        help="snapshot step (default 1w)")
    parser.add_argument("--lookback", type=_args.count, default=180,
                        help="days of snapshots before --start (default 180)")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="write the frames (bands, separation, roc, lead_times, "
                        "lead_summary, actions, goal) to DIR")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> Any:
    """Run the backtest and print the report."""
    from dataclasses import replace
    from pathlib import Path

    import healthrules as hr
    from healthrules.cli._args import output_dir
    from healthrules.cli._exit import Exit, UsageError
    from healthrules.cli._frames import input_frame, scan_outcomes
    from healthrules.history.backtest import backtest

    if args.end < args.start:
        raise UsageError(f"--end {args.end} is before --start {args.start}")
    if not Path(args.roadmap).exists():
        raise UsageError(f"roadmap file not found: {args.roadmap}")
    if args.out:
        output_dir(args.out, "--out")
    roadmap = hr.load(args.roadmap)
    plan = hr.compile(roadmap)  # CSV and NDJSON files are read with the contract's types
    events = input_frame(args, "events", plan)
    accounts = input_frame(args, "accounts", plan)
    outcomes = scan_outcomes(args.outcomes, plan)
    try:
        result = backtest(roadmap, events, accounts, outcomes, args.start, args.end,
                          horizon=args.horizon, every=args.every, lookback=args.lookback)
    except hr.InputDataError as exc:  # the outcomes' problems named by their file
        raise hr.InputDataError([
            replace(i, location=replace(i.location, file=args.outcomes))
            if i.location.file == "<outcomes>" else i for i in exc.issues]) from None
    if args.out:
        from healthrules.output import write_frames

        write_frames({"bands": result.bands, "separation": result.separation,
                      "roc": result.roc, "lead_times": result.lead_times,
                      "lead_summary": result.lead_summary, "actions": result.actions,
                      "goal": result.goal},
                     args.out, format="parquet",
                     manifest={"start": str(result.start), "end": str(result.end),
                               "horizon": result.horizon})
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print(result.table())
    return Exit.OK
