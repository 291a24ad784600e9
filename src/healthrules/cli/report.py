"""``healthrules report``: one self-contained HTML report of an evaluation, for people without
Python."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from healthrules.cli._exit import EXIT_CODES_HELP, Exit

__all__ = ["register", "run"]

EPILOG = """\
examples:
  healthrules report rules/examples/b2b-saas/roadmap.yaml --events events.parquet \\
      --accounts accounts.parquet --as-of 2026-06-30 --out report.html
  healthrules report roadmap.yaml ... --as-of 2026-06-30 --history-weeks 12 --out report.html
  healthrules report pack.yaml ... --out report.html --list-accounts 5000 --explain-accounts 300
  healthrules report roadmap.yaml ... --state state.db --out report.html

The report is one HTML file with no script and no external resource (a
Content-Security-Policy in the file forbids any): open it in any browser, attach it to an
e-mail or put it on a file share. It holds the accounts per stage and score band, the score
distribution, the actions with their evidence, the roadmap as its table, the accounts (most
urgent first) and the explanation of the first --explain-accounts of them. With
--history-weeks N it evaluates every week from N weeks before --as-of and adds the trends
(score bands and median score per date, a chart per stage, a sparkline per account);
--partition-column then prunes nothing (the history reads the weeks it needs by time).
The overview shows the goal attainment (the share of accounts that reached the goal, per
stage and per score segment). With --state (or --store) it adds the daily job's state store
(of `healthrules run`, read only): the changes each run reported, the score trends from the
runs kept (accounts per band, mean score, share that reached the goal, per stage), the open
actions and since when, the latest run's changes and the pins in force. The file is written
atomically.

""" + EXIT_CODES_HELP


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` command."""
    from healthrules.cli._args import count, positive_int
    from healthrules.cli.evaluate import add_input_arguments

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report", help="write a self-contained HTML report for people without Python",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_arguments(parser)
    parser.add_argument("--out", required=True, help="the HTML file to write")
    parser.add_argument("--history-weeks", type=count, default=0, metavar="N",
                        help="also evaluate every week of the N weeks before --as-of and show "
                        "the trends (default 0: no history)")
    parser.add_argument("--state", "--store", dest="state", default=None, metavar="STATE",
                        help="the state store of `healthrules run` for this roadmap (read "
                        "only): add its score trends, open actions, changes and pins")
    parser.add_argument("--title", default=None, help="the report's heading (default: the "
                        "roadmaps' titles)")
    parser.add_argument("--top", type=positive_int, default=25,
                        help="fired actions in the top-actions table (default 25)")
    parser.add_argument("--list-accounts", type=count, default=1000, metavar="N",
                        help="accounts in the accounts table, most urgent first (default 1000)")
    parser.add_argument("--explain-accounts", type=count, default=100, metavar="N",
                        help="accounts explained in full, the first of the table (default 100)")
    parser.set_defaults(run=run)
    return parser


def _history(args: argparse.Namespace) -> Any:
    """Evaluate every week from ``--history-weeks`` weeks before ``--as-of`` up to it."""
    import healthrules as hr
    from healthrules.cli._exit import UsageError
    from healthrules.cli._frames import input_frame
    from healthrules.history import history

    try:
        end = dt.date.fromisoformat(args.as_of)
    except ValueError:
        raise UsageError(f"--as-of {args.as_of}: --history-weeks needs a date YYYY-MM-DD, "
                         "not a datetime") from None
    if not Path(args.roadmap).exists():
        raise UsageError(f"roadmap file not found: {args.roadmap}")
    roadmap = hr.load(args.roadmap)
    plan = hr.compile(roadmap)
    events = input_frame(args, "events", plan)
    accounts = input_frame(args, "accounts", plan)
    if sys.stderr.isatty():
        print(f"evaluating {args.history_weeks + 1} weekly snapshots up to {end} ...",
              file=sys.stderr)
    start = end - dt.timedelta(weeks=args.history_weeks)
    return history(plan, events, accounts, start=start, end=end, every="1w")


def run(args: argparse.Namespace) -> Exit:
    """Evaluate (or evaluate the history), then write the report."""
    from healthrules.cli._args import output_file
    from healthrules.cli._exit import UsageError
    from healthrules.cli.evaluate import evaluate_from_args
    from healthrules.report import Limits, write_report

    target = output_file(args.out, "--out")
    if args.state is not None and not Path(args.state).is_file():
        raise UsageError(f"--state {args.state}: no state store there",
                         hint="give the SQLite file of `healthrules run --state`")
    source = _history(args) if args.history_weeks else evaluate_from_args(args)
    limits = Limits(top=args.top, list_accounts=args.list_accounts,
                    explain_accounts=min(args.explain_accounts, args.list_accounts))
    write_report(source, target, title=args.title, limits=limits, store=args.state)
    ev = source.at(source.dates[-1]) if args.history_weeks else source
    accounts = ev.stages.height
    listed = min(accounts, limits.list_accounts)
    explained = min(listed, limits.explain_accounts)
    span = f", {len(source.dates)} weekly snapshots" if args.history_weeks else ""
    print(f"as of {ev.as_of.isoformat()}: {accounts} accounts ({listed} listed, {explained} "
          f"explained), {ev.actions.height} actions{span}")
    print(f"wrote {target}")
    return Exit.OK
