"""``healthrules explain``: why one account has its stage, score and actions."""

from __future__ import annotations

import argparse
import json
from typing import Any

from healthrules.cli._exit import Exit
from healthrules.cli.evaluate import add_input_arguments, evaluate_from_args

__all__ = ["register", "run"]

EPILOG = """\
examples:
  healthrules explain rules/examples/b2b-saas/roadmap.yaml --events events.parquet \\
      --accounts accounts.parquet --as-of 2026-06-30 --account acc_0007
  healthrules explain roadmap.yaml ... --account acc_0007 --format json
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``explain`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "explain", help="explain one account's score and actions",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_arguments(parser)
    parser.add_argument("--account", required=True, help="the account key")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> Exit:
    """Evaluate, then print the account's explanation."""
    result = evaluate_from_args(args)
    account: Any = args.account
    dtype = result.stages.schema[result.account_key]
    if dtype.is_integer():
        try:
            account = int(account)
        except ValueError:
            pass
    try:
        why = result.explain(account)
    except KeyError:
        from healthrules.errors import Code, InputDataError, Issue, Location

        raise InputDataError([Issue(code=Code.UNKNOWN_NAME.value,
                                    location=Location(file=args.accounts or '<accounts>'),
                                    message=f"no account {args.account!r} in the accounts "
                                    "frame")]) from None
    if args.format == "json":
        print(json.dumps(why.to_dict(), indent=2))
    else:
        print(why)
    return Exit.OK
