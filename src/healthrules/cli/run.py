"""``healthrules run``: the daily job. Evaluate as of a date against a state store and report
only what changed (opened, resolved, escalated actions); keep the rest in the store."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register", "run"]

EPILOG = """\
examples:
  healthrules run rules/examples/b2b-saas/roadmap.yaml --state state.db \\
      --events events.parquet --accounts accounts.parquet --as-of 2026-06-30
  healthrules run roadmap.yaml --state state.db ... --as-of 2026-07-01 --ndjson changes.ndjson
  healthrules run roadmap.yaml --state state.db ... --as-of 2026-07-01 --format json
  healthrules run roadmap.yaml --state state.db ... --as-of 2026-07-01 \\
      --pin A000042 score 35 --reason "renewal call went badly" --expires 2026-07-31

The state store is an SQLite file (created on the first run, one per roadmap or pack). Each
run is one transaction: a run that fails or is killed leaves the previous state as it was,
and running the same date again replaces that run (idempotent). A date before the latest
run is refused unless --rewind is given (the later runs are undone).

--pin ACCOUNT TARGET VALUE pins an indicator (or the score) of an account from --as-of until
--expires, with a --reason (both required); it survives later runs until it expires.
--unpin ID ends one from --as-of. Pins in force are listed after the changes.

--ndjson FILE writes the changes as NDJSON atomically (- for standard output).
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``run`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run", help="the daily job: evaluate, move the action lifecycle on, report changes",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roadmap", help="a roadmap file or a pack file")
    parser.add_argument("--state", required=True, help="the state store (an SQLite file)")
    parser.add_argument("--events", required=True, help="events file or folder")
    parser.add_argument("--accounts", required=True, help="accounts file")
    parser.add_argument("--as-of", required=True, dest="as_of", help="run date YYYY-MM-DD")
    parser.add_argument("--rewind", action="store_true",
                        help="allow a date before the latest run (undoes the later runs)")
    parser.add_argument("--ndjson", default=None, metavar="FILE",
                        help="write the changes as NDJSON to FILE (- for standard output)")
    parser.add_argument("--format", choices=["text", "json"], default="text",
                        help="how to print the changes (default: text)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="also write the evaluation frames to DIR (parquet)")
    parser.add_argument("--pin", nargs=3, action="append", default=[],
                        metavar=("ACCOUNT", "TARGET", "VALUE"),
                        help="pin an indicator or 'score' of an account (repeatable)")
    parser.add_argument("--reason", default=None, help="why (required with --pin)")
    parser.add_argument("--expires", default=None, help="first date a pin no longer applies")
    parser.add_argument("--set-by", default=None, dest="set_by", help="who pins")
    parser.add_argument("--unpin", type=int, action="append", default=[], metavar="ID",
                        help="end an override from --as-of on (repeatable)")
    parser.set_defaults(run=run)
    return parser


def _account(value: str, integer: bool) -> Any:
    if integer:
        try:
            return int(value)
        except ValueError:
            return value
    return value


def run(args: argparse.Namespace) -> int:
    """Run the daily job and print what changed."""
    import polars as pl

    import healthrules as hr
    from healthrules.cli._frames import scan_frame
    from healthrules.history import StateStore
    from healthrules.history import run as daily

    if args.pin and (not args.reason or not args.expires):
        print("error: --pin needs --reason and --expires", file=sys.stderr)
        return 2
    plan = hr.compile(hr.load(args.roadmap))
    events = scan_frame(args.events, "events")
    accounts = scan_frame(args.accounts, "accounts")
    with StateStore(args.state) as store:
        if args.pin:
            from healthrules.history.overrides import pin_problem

            integer = accounts.collect_schema().get(plan.account_key, pl.String()).is_integer()
            for account, target, value in args.pin:
                try:
                    number = float(value)
                except ValueError:
                    print(f"error: --pin value {value!r} is not a number", file=sys.stderr)
                    return 2
                problem = pin_problem(plan, target, number)
                if problem is not None:
                    print(f"error: --pin {problem}", file=sys.stderr)
                    return 2
                oid = store.pin(_account(account, integer), target, number, reason=args.reason,
                                expires=args.expires, on=args.as_of, set_by=args.set_by)
                print(f"pinned {target} of {account} to {value} until {args.expires} "
                      f"(override {oid})", file=sys.stderr)
        for oid in args.unpin:
            store.unpin(oid, on=args.as_of)
            print(f"override {oid} ends on {args.as_of}", file=sys.stderr)
        result = daily(plan, store, events, accounts, args.as_of, rewind=args.rewind)
    if args.out:
        result.evaluation.write(args.out)
    if args.ndjson == "-":
        sys.stdout.write(result.to_ndjson())
    elif args.ndjson:
        result.write_ndjson(args.ndjson)
    if args.format == "json":
        from healthrules.history.daily import changes_json

        print(json.dumps({"as_of": result.as_of.isoformat(), "counts": result.counts(),
                          "changes": changes_json(result)}, indent=2, default=str))
    elif args.ndjson != "-":
        print(format_result(result, result.evaluation.account_key))
    return 0


def format_result(result: Any, key: str) -> str:
    """The summary line, then one line per change and per override (built as polars text)."""
    import polars as pl

    lines = [result.summary()]
    ch = result.changes
    if ch.height:
        unit = pl.when(pl.col("days_open") == 1).then(pl.lit("day")).otherwise(pl.lit("days"))
        after = pl.when(pl.col("change") != "opened").then(
            pl.format(" after {} {}", pl.col("days_open"), unit)).otherwise(pl.lit(""))
        reason = pl.when(pl.col("reason").is_not_null()).then(
            pl.format(" ({})", pl.col("reason"))).otherwise(pl.lit(""))
        text = ch.select(pl.format(
            "  {} {} {} [{}]{}{}: {}", pl.col("change").str.pad_end(9),
            pl.col(key).cast(pl.String).str.pad_end(12), pl.col("action_id").str.pad_end(20),
            pl.col("priority"), reason, after, pl.col("text").fill_null("")))
        lines.extend(text.to_series().to_list())
    ov = result.overrides
    if ov.height:
        text = ov.select(pl.format(
            "  override {}: {} {} = {} (computed {}), {}, until {}: {}", pl.col("id"),
            pl.col(key).cast(pl.String), pl.col("target"), pl.col("value"),
            pl.col("computed").round(2).cast(pl.String).fill_null("n/a"), pl.col("status"),
            pl.col("expires_on"), pl.col("reason")))
        lines.extend(text.to_series().to_list())
    ex = result.expired_overrides
    if ex.height:
        text = ex.select(pl.format(
            "  override {} ended on {}: {} {} ({})", pl.col("id"), pl.col("ended_on"),
            pl.col(key).cast(pl.String), pl.col("target"), pl.col("reason")))
        lines.extend(text.to_series().to_list())
    return "\n".join(lines)
