"""``healthrules store runs|actions|holds|deliveries``: what the daily job keeps, without Python.

Each view reads the state store read-only (a run may go on meanwhile: SQLite's WAL mode gives
the reader the last committed run) and prints one table on standard output, or the same rows
as JSON (``--format json``, a list of objects) or CSV (``--format csv``, dates ``YYYY-MM-DD``,
an empty cell is a null). The table leaves out the long and the wall-clock columns (start and
end times of runs, delivery attempt times, full hashes, the release; the webhook URL when
there is one); JSON and CSV have every column.

Dates that depend on "now" are taken at the store's last run (``--on DATE`` to pick another):
whether a hold is still in force, how many days an open action is overdue. The same store
prints the same views on any day.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from healthrules.history.store import StateStore

__all__ = ["VIEWS", "register_views", "run_view"]

VIEWS = ("runs", "actions", "holds", "deliveries")
"""The store's views, in ``--help`` order."""

_TEXT_WIDTH = 60
"""Characters of an action's text the table shows (JSON and CSV have all of it)."""


def register_views(actions: Any) -> None:
    """Add the view subcommands to the ``store`` command's subparsers."""
    from healthrules.cli import _args

    def view(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(
            name, help=help_text, description=description,
            formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("state", help="the state store file (read only)")
        parser.add_argument("--format", choices=["table", "json", "csv"], default="table",
                            help="a table (default), or every column as JSON or CSV")
        return parser

    runs = view("runs", "list the stored runs",
                "One row per stored run, oldest first: the date, the accounts evaluated, the "
                "changes it reported,\nthe newest event it read, the days skipped before it "
                "and the hash of its rule files.")
    runs.add_argument("--last", type=_args.positive_int, metavar="N",
                      help="only the N latest runs")
    acts = view("actions", "list the open (or pending, resolved) actions",
                "The actions as the last run left them, overdue first: owner, due date, "
                "opened on, escalated on,\nand the days past the due date at the last run "
                "(or --on DATE).")
    acts.add_argument("--status", choices=["open", "pending", "resolved", "all"],
                      default="open", help="which actions (default open)")
    acts.add_argument("--account", help="only this account")
    acts.add_argument("--owner", help="only the actions of this owner")
    acts.add_argument("--on", type=_args.date, metavar="DATE",
                      help="count the days overdue at DATE (default the last run)")
    holds = view("holds", "list the snoozes and dismissals",
                 "Every snooze and dismissal, newest first, with its reason, expiry and status "
                 "at the last run\n(or --on DATE): in_force, superseded (a newer hold of the "
                 "same action applies), upcoming,\nexpired (its --until has passed) or ended "
                 "(by --unsnooze).")
    holds.add_argument("--on", type=_args.date, metavar="DATE",
                       help="the date of the status (default the last run)")
    holds.add_argument("--in-force", dest="in_force", action="store_true",
                       help="only the holds in force (applied or superseded)")
    deliveries = view(
        "deliveries", "list the webhook deliveries",
        "Every change queued for a webhook, oldest first: pending (not tried yet), failed "
        "(tried, with\nthe attempts and the last error; the next run with the same --webhook "
        "retries it) or delivered.\n--fail-on-pending exits with 1 while a change is not "
        "delivered (for a monitoring check).")
    deliveries.add_argument("--status", choices=["pending", "failed", "delivered", "all"],
                            default="all", help="which deliveries (default all)")
    deliveries.add_argument("--url", help="only the deliveries to this URL")
    deliveries.add_argument("--fail-on-pending", dest="fail_on_pending", action="store_true",
                            help="exit with 1 if a change (of the listed URL) is not delivered")


def run_view(args: argparse.Namespace) -> int:
    """Print one view of a store."""
    from healthrules.cli._exit import Exit, UsageError
    from healthrules.history.store import StateStore

    path = Path(args.state)
    if not path.is_file():
        what = "is a folder, not a store file" if path.is_dir() else "no such store file"
        raise UsageError(f"{what}: {path}", hint="give the --state file of `healthrules run`")
    with StateStore(path, readonly=True, create=False) as store:
        key = store.meta().get("account_key", "account_id")
        last = store.last_run()
        on = getattr(args, "on", None) or last
        frame, full, empty = _VIEW[args.store_action](store, args, key, on)
        verdict = int(Exit.OK)
        if args.store_action == "deliveries" and args.fail_on_pending:
            verdict = _pending_verdict(store, args, path)
    _print(frame, full, args.format, empty)
    return verdict


def _runs(store: StateStore, args: argparse.Namespace, key: str,
          on: dt.date | None) -> tuple[pl.DataFrame, pl.DataFrame, str]:
    import polars as pl

    full = store.runs()
    if args.last:
        full = full.tail(args.last)
    table = full.select("as_of", "accounts", "opened", "resolved", "escalated",
                        pl.col("newest_event").str.replace("T", " ").str.slice(0, 16),
                        "skipped", pl.col("rules_hash").str.slice(0, 12))
    return table, full, "no runs in the store yet"


def _actions(store: StateStore, args: argparse.Namespace, key: str,
             on: dt.date | None) -> tuple[pl.DataFrame, pl.DataFrame, str]:
    import polars as pl

    statuses = (("pending", "open", "resolved") if args.status == "all" else (args.status,))
    frame = store.actions(key=key, statuses=statuses)
    if args.account is not None:
        frame = frame.filter(pl.col(key).cast(pl.String) == args.account)
    if args.owner is not None:
        frame = frame.filter(pl.col("owner") == args.owner)
    day = pl.lit(on, pl.Date)
    overdue = (day - pl.col("due_date")).dt.total_days()
    full = frame.with_columns(
        pl.when((pl.col("status") == "open") & (overdue > 0)).then(overdue)
        .otherwise(pl.lit(None, pl.Int64)).alias("days_overdue"),
        pl.when(pl.col("status") == "open").then((day - pl.col("opened_at")).dt.total_days())
        .otherwise(pl.lit(None, pl.Int64)).alias("days_open"),
    ).sort(pl.col("days_overdue").fill_null(-1), pl.col("due_date"), key, "roadmap",
           "action_id", descending=[True, False, False, False, False], nulls_last=True)
    full = full.select(key, "roadmap", "action_id", "status", "stage", "priority", "owner",
                       "opened_at", "days_open", "due_date", "days_overdue", "escalated_at",
                       "resolved_at", "since", "text")
    text = pl.col("text").fill_null("")
    short = pl.when(text.str.len_chars() > _TEXT_WIDTH).then(
        text.str.slice(0, _TEXT_WIDTH - 3) + pl.lit("...")).otherwise(text)
    cols: list[Any] = [key, "action_id", "status", "owner", "priority", "opened_at",
                       "due_date", "days_overdue", "escalated_at", short.alias("text")]
    if full["roadmap"].n_unique() > 1:  # a pack: which track
        cols.insert(1, "roadmap")
    if args.status == "open":
        cols.remove("status")
    what = "" if args.status == "all" else f"{args.status} "
    return full.select(cols), full, f"no {what}actions"


def _holds(store: StateStore, args: argparse.Namespace, key: str,
           on: dt.date | None) -> tuple[pl.DataFrame, pl.DataFrame, str]:
    import polars as pl

    frame = store.holds(key=key)
    day = pl.lit(on or dt.date.today(), pl.Date)
    ended = pl.col("removed_on").is_not_null() & (pl.col("removed_on") <= day)
    live = (pl.col("created_on") <= day) & (day < pl.col("until")) & ~ended
    newest = pl.col("id") == pl.col("id").filter(live).max().over(key, "roadmap",
                                                                   "action_id")
    status = (pl.when(ended).then(pl.lit("ended"))
              .when(pl.col("until") <= day).then(pl.lit("expired"))
              .when(pl.col("created_on") > day).then(pl.lit("upcoming"))
              .when(newest).then(pl.lit("in_force"))
              .otherwise(pl.lit("superseded")))
    full = frame.with_columns(
        status.alias("status"),
        pl.when(live).then((pl.col("until") - day).dt.total_days())
        .otherwise(pl.lit(None, pl.Int64)).alias("days_left"))
    if args.in_force:
        full = full.filter(pl.col("status").is_in(["in_force", "superseded"]))
    table = full.select("id", key, "action_id", "hold", "status", "created_on", "until",
                        "days_left", "set_by", "reason")
    return table, full, "no snoozes or dismissals"


def _deliveries(store: StateStore, args: argparse.Namespace, key: str,
                on: dt.date | None) -> tuple[pl.DataFrame, pl.DataFrame, str]:
    import polars as pl

    frame = store.deliveries(key=key)
    if args.url is not None:
        frame = frame.filter(pl.col("url") == args.url)
    full = frame.with_columns(
        pl.when((pl.col("status") == "pending") & (pl.col("attempts") > 0))
        .then(pl.lit("failed")).otherwise(pl.col("status")).alias("status"))
    if args.status != "all":
        full = full.filter(pl.col("status") == args.status)
    cols = ["as_of", key, "action_id", "change", "status", "attempts", "last_error"]
    if full["url"].n_unique() > 1:  # several receivers: which one
        cols.append("url")
    table = full.select(cols)
    return table, full, "no webhook deliveries"


_VIEW = {"runs": _runs, "actions": _actions, "holds": _holds, "deliveries": _deliveries}


def _pending_verdict(store: StateStore, args: argparse.Namespace, path: Path) -> int:
    import polars as pl

    from healthrules.cli._exit import Exit

    frame = store.deliveries()
    if args.url is not None:
        frame = frame.filter(pl.col("url") == args.url)
    waiting = frame.filter(pl.col("status") == "pending")
    if waiting.height == 0:
        return int(Exit.OK)
    failed = int((waiting["attempts"] > 0).sum())
    oldest = str(waiting["as_of"].min())
    print(f"{path}: {waiting.height} webhook change(s) not delivered ({failed} failed), the "
          f"oldest of {oldest}; the next run with the same --webhook retries them",
          file=sys.stderr)
    return int(Exit.NOT_CLEAN)


def _print(table: pl.DataFrame, full: pl.DataFrame, fmt: str, empty: str) -> None:
    if fmt == "json":
        sys.stdout.write(full.write_json() + "\n")
    elif fmt == "csv":
        sys.stdout.write(full.write_csv())
    elif table.height == 0:
        print(f"({empty})")
    else:
        sys.stdout.write(text_table(table))


def text_table(frame: pl.DataFrame) -> str:
    """A frame as an aligned plain-text table: a header, a rule, one line per row (nulls
    empty), columns two spaces apart, numbers right-aligned (built as polars text)."""
    import polars as pl

    cells = frame.select(pl.col(c).cast(pl.String).fill_null("") for c in frame.columns)
    longest = cells.select(pl.col(c).str.len_chars().max() for c in frame.columns).row(0)
    widths = {c: max(len(c), int(n or 0)) for c, n in zip(frame.columns, longest, strict=True)}
    numeric = {c for c, t in frame.schema.items() if t.is_numeric()}

    def pad(expr: pl.Expr, name: str) -> pl.Expr:
        return (expr.str.pad_start(widths[name]) if name in numeric
                else expr.str.pad_end(widths[name]))

    header = "  ".join(c.rjust(widths[c]) if c in numeric else c.ljust(widths[c])
                       for c in frame.columns)
    rule = "  ".join("-" * widths[c] for c in frame.columns)
    lines = cells.select(pl.concat_str([pad(pl.col(c), c) for c in frame.columns],
                                       separator="  ").str.strip_chars_end()).to_series()
    return "\n".join([header.rstrip(), rule, *lines.to_list()]) + "\n"
