"""``healthrules run``: the daily job. Evaluate as of a date against a state store and report
only what changed (opened, resolved, escalated actions); keep the rest in the store."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["WEBHOOK_AUTH_ENV", "register", "run"]

WEBHOOK_AUTH_ENV = "HEALTHRULES_WEBHOOK_AUTHORIZATION"
"""An environment variable whose value, when set, is sent as the webhook's ``Authorization``
header (``--webhook-header 'Authorization: ...'`` overrides it)."""

EPILOG = """\
examples:
  healthrules run rules/examples/b2b-saas/roadmap.yaml --state state.db \\
      --events events.parquet --accounts accounts.parquet --as-of 2026-06-30
  healthrules run roadmap.yaml --state state.db ... --as-of 2026-07-01 --ndjson changes.ndjson
  healthrules run roadmap.yaml --state state.db ... --as-of 2026-07-01 --format json
  healthrules run roadmap.yaml --state state.db ... --as-of 2026-07-01 \\
      --pin A000042 score 35 --reason "renewal call went badly" --expires 2026-07-31
  healthrules run roadmap.yaml --state state.db ... --as-of 2026-07-01 \\
      --snooze A000042 low_adoption --until 2026-07-15 --reason "on holiday until mid-July"
  healthrules run roadmap.yaml --state state.db ... --as-of 2026-07-01 \\
      --webhook https://crm.example.com/hooks/health --export open-actions.csv

The state store is an SQLite file (created on the first run, one per roadmap or pack). Each
run is one transaction: a run that fails or is killed leaves the previous state as it was,
and running the same date again replaces that run (idempotent). A date before the latest
run is refused unless --rewind is given (the later runs are undone).

--pin ACCOUNT TARGET VALUE pins an indicator (or the score) of an account from --as-of until
--expires, with a --reason (both required); it survives later runs until it expires.
--unpin ID ends one from --as-of. Pins in force are listed after the changes.

--snooze ACCOUNT ACTION holds one action of one account from --as-of until --until, with a
--reason: it does not open or escalate meanwhile (an open one stays open, marked snoozed).
--dismiss ACCOUNT ACTION resolves an open action now (reason dismissed) and keeps it from
opening again until --until. --unsnooze ID ends either from --as-of. Both are kept in the
store and listed with every run until they end; ACTION may be ROADMAP/ACTION in a pack.

--webhook URL POSTs each change (opened, resolved, escalated) as JSON, with an
Idempotency-Key header; failures are retried with backoff, and what is still undelivered is
retried by the next run with the same URL (exit 1 until then). A delivered change is never
sent again. The environment variable HEALTHRULES_WEBHOOK_AUTHORIZATION, when set, is sent as
the Authorization header (a secret is better kept out of the command line).
--export FILE writes one row per open action (.csv or .ndjson) for a CRM import.

--ndjson FILE writes the changes as NDJSON atomically (- for standard output). Every output
is checked before the run; if writing one still fails after the run was committed,
--replay DATE writes the changes of the stored run again (without running it).

Data freshness: the newest event is reported with every run; past --max-staleness (or the
roadmap's data.events.max_staleness) the run is refused (exit 1). A day without a run
since the previous one is reported as a gap. Every run records a SHA-256 of each rule file
and the healthrules version (in the store, on each action row and change, and in the --out
manifest) and says when the rules changed since the previous run.

The store is checked when it is opened: a damaged or foreign file is refused (exit 1),
never reset; see `healthrules store` to check, back up and restore it.
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``run`` command."""
    from healthrules.cli import _args

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run", help="the daily job: evaluate, move the action lifecycle on, report changes",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roadmap", nargs="?", help="a roadmap file or a pack file")
    parser.add_argument("--state", required=True, help="the state store (an SQLite file)")
    from healthrules.cli._frames import add_source_arguments

    add_source_arguments(parser)
    parser.add_argument("--as-of", dest="as_of", type=_args.date, help="run date YYYY-MM-DD")
    parser.add_argument("--rewind", action="store_true",
                        help="allow a date before the latest run (undoes the later runs)")
    parser.add_argument("--max-staleness", dest="max_staleness", type=_args.days,
                        metavar="DURATION", help="refuse the run when the newest event is "
                        "older than this at the end of --as-of (e.g. 2d; default: the "
                        "roadmap's data.events.max_staleness, else no limit)")
    parser.add_argument("--ndjson", default=None, metavar="FILE",
                        help="write the changes as NDJSON to FILE (- for standard output)")
    parser.add_argument("--format", choices=["text", "json"], default="text",
                        help="how to print the changes (default: text)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="also write the evaluation frames to DIR (parquet)")
    parser.add_argument("--replay", type=_args.date, metavar="DATE", default=None,
                        help="do not run: print (and --ndjson) the changes of the stored run "
                        "of DATE again")
    parser.add_argument("--pin", nargs=3, action="append", default=[],
                        metavar=("ACCOUNT", "TARGET", "VALUE"),
                        help="pin an indicator or 'score' of an account (repeatable)")
    parser.add_argument("--reason", default=None, help="why (required with --pin)")
    parser.add_argument("--expires", type=_args.date, default=None,
                        help="first date a pin no longer applies")
    parser.add_argument("--set-by", default=None, dest="set_by", help="who pins")
    parser.add_argument("--unpin", type=_args.positive_int, action="append", default=[],
                        metavar="ID", help="end an override from --as-of on (repeatable)")
    parser.add_argument("--snooze", nargs=2, action="append", default=[],
                        metavar=("ACCOUNT", "ACTION"), help="snooze one action of one account "
                        "until --until, with --reason (repeatable)")
    parser.add_argument("--dismiss", nargs=2, action="append", default=[],
                        metavar=("ACCOUNT", "ACTION"), help="dismiss one action of one account "
                        "(it resolves now and stays closed until --until), with --reason")
    parser.add_argument("--until", type=_args.date, default=None, metavar="DATE",
                        help="first date a snooze or dismissal no longer applies")
    parser.add_argument("--unsnooze", type=_args.positive_int, action="append", default=[],
                        metavar="ID", help="end a snooze or dismissal from --as-of on "
                        "(repeatable)")
    parser.add_argument("--webhook", default=None, metavar="URL",
                        help="POST each change as JSON to URL (retried; kept in the store "
                        "until delivered)")
    parser.add_argument("--webhook-retries", dest="webhook_retries", type=_args.count,
                        default=3, metavar="N", help="retries per change within a run "
                        "(default 3)")
    parser.add_argument("--webhook-backoff", dest="webhook_backoff", type=_seconds,
                        default=1.0, metavar="SECONDS",
                        help="wait before the first retry, doubled each time (default 1)")
    parser.add_argument("--webhook-timeout", dest="webhook_timeout", type=_seconds,
                        default=10.0, metavar="SECONDS", help="time-out of one POST "
                        "(default 10)")
    parser.add_argument("--webhook-header", dest="webhook_header", action="append",
                        default=[], metavar="'NAME: VALUE'",
                        help="an extra request header, e.g. 'Authorization: Bearer ...'")
    parser.add_argument("--export", default=None, metavar="FILE",
                        help="write the open actions for a CRM import (.csv or .ndjson)")
    parser.set_defaults(run=run)
    return parser


def _seconds(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"seconds must be a number >= 0, got {text!r}")
    return value


def _holds(args: argparse.Namespace) -> list[Any]:
    """The --snooze and --dismiss options as holds, checked as far as the command line can."""
    from healthrules.cli._exit import UsageError
    from healthrules.history.holds import Hold

    given = [("snooze", a, b) for a, b in args.snooze] + [
        ("dismiss", a, b) for a, b in args.dismiss]
    if not given:
        if args.until is not None:
            raise UsageError("--until goes with --snooze or --dismiss")
        return []
    if not args.reason or not args.reason.strip() or args.until is None:
        raise UsageError("--snooze and --dismiss need --reason and --until",
                         hint='--snooze A42 low_adoption --until 2026-07-15 --reason '
                         '"on holiday"')
    if args.until <= args.as_of:
        raise UsageError(f"--until {args.until} must be after --as-of {args.as_of}")
    return [Hold(account=account, action=action, hold=kind, reason=args.reason,
                 until=args.until, set_by=args.set_by) for kind, account, action in given]


def _webhook(args: argparse.Namespace) -> Any:
    from healthrules.cli._exit import UsageError
    from healthrules.history.webhooks import Webhook

    if args.webhook is None:
        return None
    import os

    headers: dict[str, str] = {}
    secret = os.environ.get(WEBHOOK_AUTH_ENV)
    if secret:  # kept out of the command line (ps shows arguments to every user)
        headers["Authorization"] = secret
    for text in args.webhook_header:
        name, sep, value = text.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"--webhook-header {text!r} is not 'NAME: VALUE'")
        headers[name.strip()] = value.strip()
    try:
        return Webhook(args.webhook, retries=args.webhook_retries,
                       backoff=args.webhook_backoff, timeout=args.webhook_timeout,
                       headers=headers)
    except ValueError as exc:
        raise UsageError(f"--webhook: {exc}") from None


def _pins(args: argparse.Namespace) -> list[Any]:
    """The --pin options as pins, each checked as far as the command line can."""
    import math

    from healthrules.cli._exit import UsageError
    from healthrules.history.overrides import Pin

    if not args.pin:
        if args.expires:
            raise UsageError("--expires goes with --pin")
        if (args.reason or args.set_by) and not (args.snooze or args.dismiss):
            raise UsageError("--reason and --set-by go with --pin, --snooze or --dismiss")
        return []
    if not args.reason or not args.reason.strip() or args.expires is None:
        raise UsageError("--pin needs --reason and --expires",
                         hint='--pin A42 score 60 --reason "renewal confirmed" '
                         "--expires 2026-07-31")
    if args.expires <= args.as_of:
        raise UsageError(f"--expires {args.expires} must be after --as-of {args.as_of}")
    out = []
    for account, target, value in args.pin:
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"--pin value {value!r} is not a number") from None
        if not math.isfinite(number):
            raise UsageError(f"--pin value {value!r} is not a finite number")
        out.append(Pin(account=account, target=target, value=number, reason=args.reason,
                       expires=args.expires, set_by=args.set_by))
    return out


def _outputs(args: argparse.Namespace) -> None:
    """Check every output before the run, so a bad path never costs a committed run."""
    from healthrules.cli._args import output_dir, output_file

    if args.ndjson and args.ndjson != "-":
        output_file(args.ndjson, "--ndjson")
    if args.out:
        output_dir(args.out, "--out")
    if args.export:
        from healthrules.cli._exit import UsageError

        if not args.export.lower().endswith((".csv", ".ndjson", ".jsonl")):
            raise UsageError(f"--export {args.export}: name a .csv or .ndjson file")
        output_file(args.export, "--export")


def run(args: argparse.Namespace) -> int:
    """Run the daily job (or replay a stored run) and print what changed."""
    from pathlib import Path

    from healthrules.cli._exit import Exit, UsageError

    if args.replay is not None:
        return _replay(args)
    from healthrules.cli._frames import has_input

    missing = [o for o, v in (("ROADMAP", args.roadmap), ("--events", has_input(args, "events")),
                              ("--accounts", has_input(args, "accounts")),
                              ("--as-of", args.as_of)) if not v]
    if missing:
        raise UsageError(f"missing {', '.join(missing)} (only --replay runs without them)",
                         hint="healthrules run --help")
    if not Path(args.roadmap).exists():
        raise UsageError(f"roadmap file not found: {args.roadmap}")
    pins = _pins(args)
    holds = _holds(args)
    hook = _webhook(args)
    _outputs(args)

    import healthrules as hr
    from healthrules.cli._frames import input_frame
    from healthrules.history import run as daily
    from healthrules.history.daily import check_pin, provenance
    from healthrules.history.holds import HoldError, check_hold
    from healthrules.history.overrides import OverrideError
    from healthrules.query_flags import OPTIMISED

    source = hr.load(args.roadmap)
    plan = hr.compile(source)
    events = input_frame(args, "events", plan)
    accounts = input_frame(args, "accounts", plan)
    if pins:
        from healthrules.sources import resolve, schema_of, source_of

        accounts = source_of(accounts, "accounts")  # read once, here and by the run
    if pins and plan.account_key in schema_of(accounts, plan.events.timezone):
        keys = resolve(accounts, [plan.account_key]).collect(optimizations=OPTIMISED)
        try:
            for pin in pins:
                check_pin(plan, keys, pin)
        except OverrideError as exc:
            raise UsageError(exc.issues[0].message) from None
    if holds and plan.account_key in accounts.collect_schema():
        keys = accounts.select(plan.account_key).collect(optimizations=OPTIMISED)
        try:
            for hold in holds:
                check_hold(plan, keys, hold)
        except HoldError as exc:
            raise UsageError(exc.issues[0].message, exc.issues[0].hint) from None
    result = daily(plan, args.state, events, accounts, args.as_of, rewind=args.rewind,
                   pins=pins, unpins=args.unpin, max_staleness=args.max_staleness,
                   rules=provenance(source), holds=holds, unholds=args.unsnooze,
                   webhook=hook)
    for hid, hold in zip(result.held, holds, strict=True):
        print(f"{hold.hold}d {hold.action} of {hold.account} until {args.until} "
              f"(hold {hid})", file=sys.stderr)
    for hid in args.unsnooze:
        print(f"hold {hid} ends on {args.as_of}", file=sys.stderr)
    for oid, (account, target, value) in zip(result.pinned, args.pin, strict=True):
        print(f"pinned {target} of {account} to {value} until {args.expires} "
              f"(override {oid})", file=sys.stderr)
    for oid in args.unpin:
        print(f"override {oid} ends on {args.as_of}", file=sys.stderr)
    _write_outputs(args, result)
    if args.format == "json":
        from healthrules.history.daily import changes_json

        holds = result.holds.to_dicts() if result.holds is not None else []
        print(json.dumps({**result.manifest(), "changes": changes_json(result),
                          "holds": holds}, indent=2,
                         default=str))
    elif args.ndjson != "-":
        print(format_result(result, result.evaluation.account_key))
    if result.deliveries is not None and result.deliveries.pending:
        print(f"error: {result.deliveries.summary()}", file=sys.stderr)
        return int(Exit.NOT_CLEAN)
    return int(Exit.OK)


def _write_outputs(args: argparse.Namespace, result: Any) -> None:
    """Write --out and --ndjson; a failure says how to get the committed run's outputs."""
    from healthrules.errors import HealthRulesError, Issue, Location

    try:
        if args.out:
            from healthrules.output import write_frames

            ev = result.evaluation
            write_frames(ev.frames, args.out, format="parquet",
                         manifest={"roadmap": ev.plan.id, "diagnostics": dict(ev.diagnostics),
                                   **result.manifest()})
        if args.ndjson == "-":
            sys.stdout.write(result.to_ndjson())
        elif args.ndjson:
            result.write_ndjson(args.ndjson)
        if args.export:
            result.export_open(args.export)
    except OSError as exc:
        raise HealthRulesError([Issue(
            code="output_failed", location=Location(file=exc.filename),
            message=f"the run of {result.as_of} was committed, but writing its outputs "
            f"failed: {exc.strerror or exc}",
            hint=f"healthrules run --state {args.state} --replay {result.as_of} --ndjson FILE "
            "writes its changes again")]) from exc


def _replay(args: argparse.Namespace) -> int:
    from healthrules.cli._exit import Exit, UsageError
    from healthrules.history.daily import replay

    given = [o for o, v in (("--pin", args.pin), ("--unpin", args.unpin), ("--out", args.out),
                            ("--rewind", args.rewind), ("--snooze", args.snooze),
                            ("--dismiss", args.dismiss), ("--unsnooze", args.unsnooze),
                            ("--webhook", args.webhook), ("--export", args.export)) if v]
    if given:
        raise UsageError(f"--replay only re-emits a stored run; it takes no {given[0]}")
    if args.ndjson and args.ndjson != "-":
        from healthrules.cli._args import output_file

        output_file(args.ndjson, "--ndjson")
    from pathlib import Path

    if not Path(args.state).exists():
        raise UsageError(f"no state store at {args.state}")
    stored = replay(args.state, args.replay)
    if args.ndjson == "-":
        sys.stdout.write(stored.to_ndjson())
    elif args.ndjson:
        stored.write_ndjson(args.ndjson)
    if args.format == "json":
        print(json.dumps({"as_of": stored.as_of.isoformat(), "counts": stored.counts,
                          "newest_event": stored.newest_event, "rules_hash": stored.rules_hash,
                          "rules_diff": stored.rules_diff,
                          "changes": [json.loads(x) for x in stored.to_ndjson().splitlines()
                                      if x]}, indent=2, default=str))
    elif args.ndjson != "-":
        print(stored.summary())
    return int(Exit.OK)


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
    hd = result.holds
    if hd is not None and hd.height:
        text = hd.select(pl.format(
            "  {} {}: {} {} until {} ({} day(s) left), {}: {}", pl.col("hold"), pl.col("id"),
            pl.col(key).cast(pl.String), pl.col("action_id"), pl.col("until"),
            pl.col("days_left"), pl.col("status"), pl.col("reason")))
        lines.extend(text.to_series().to_list())
    he = result.expired_holds
    if he is not None and he.height:
        text = he.select(pl.format(
            "  {} {} ended on {}: {} {} ({})", pl.col("hold"), pl.col("id"),
            pl.col("ended_on"), pl.col(key).cast(pl.String), pl.col("action_id"),
            pl.col("reason")))
        lines.extend(text.to_series().to_list())
    ex = result.expired_overrides
    if ex.height:
        text = ex.select(pl.format(
            "  override {} ended on {}: {} {} ({})", pl.col("id"), pl.col("ended_on"),
            pl.col(key).cast(pl.String), pl.col("target"), pl.col("reason")))
        lines.extend(text.to_series().to_list())
    return "\n".join(lines)
