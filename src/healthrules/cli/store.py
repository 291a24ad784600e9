"""``healthrules store``: look inside, check, back up and restore the state store of the daily
job."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "run"]

EPILOG = """\
examples:
  healthrules store runs state.db                     # the runs kept, oldest first
  healthrules store actions state.db --owner ann@example.com
  healthrules store holds state.db --format csv       # snoozes and dismissals, as CSV
  healthrules store deliveries state.db --fail-on-pending   # exit 1 if a change is not sent
  healthrules store check state.db                    # exit 1 if it is damaged
  healthrules store backup state.db backups/state-$(date +%F).db
  healthrules store restore backups/state-2026-06-30.db state.db

check runs SQLite's full integrity check and checks the tables, the schema version and
every stored date, without changing the file. backup copies the store with SQLite's
online backup (safe while a run is going on), checks the copy and renames it into place;
a damaged store is never copied over a backup. restore replaces a store (damaged or not)
by a checked copy of a backup; run it under the same lock as the daily job. runs, actions,
holds and deliveries print what the store keeps (read only) as a table, or --format json|csv.
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``store`` command: its views (``runs``, ``actions``, ``holds``,
    ``deliveries``) and its ``check``, ``backup`` and ``restore`` actions."""
    from healthrules.cli.store_views import register_views

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "store", help="look inside, check, back up or restore the state store of `run`",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="store_action", metavar="ACTION", required=True,
                                    parser_class=type(parser))
    register_views(actions)
    check = actions.add_parser("check", help="check a store thoroughly (read only)")
    check.add_argument("state", help="the state store file")
    backup = actions.add_parser("backup", help="copy a store with SQLite's online backup")
    backup.add_argument("state", help="the state store file")
    backup.add_argument("dest", help="the backup file to write (replaced atomically)")
    restore = actions.add_parser("restore", help="replace a store by a copy of a backup")
    restore.add_argument("backup", help="the backup file")
    restore.add_argument("state", help="the state store file to replace")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print a view, or check, back up or restore."""
    from healthrules.cli.store_views import VIEWS, run_view

    if args.store_action in VIEWS:
        return run_view(args)
    from healthrules.cli._args import output_file
    from healthrules.cli._exit import Exit, UsageError
    from healthrules.history.store import (
        StoreCorruptError,
        backup_store,
        check_store,
        restore_store,
    )

    source = Path(args.backup if args.store_action == "restore" else args.state)
    if not source.is_file():
        raise UsageError(f"no such store file: {source}")
    if args.store_action == "check":
        problems = check_store(source)
        for problem in problems:
            print(f"{source}: error: {problem}", file=sys.stderr)
        if problems:
            print(f"{source}: damaged; restore the latest backup "
                  "(healthrules store restore BACKUP STATE)", file=sys.stderr)
            return int(Exit.NOT_CLEAN)
        print(f"{source}: ok")
        return int(Exit.OK)
    if args.store_action == "backup":
        dest = output_file(args.dest, "DEST")
        if dest.exists() and dest.resolve() == source.resolve():
            raise UsageError("the backup must be another file than the store")
        backup_store(source, dest)
        print(f"backed up {source} to {dest}")
        return int(Exit.OK)
    target = output_file(args.state, "STATE")
    if target.exists() and target.resolve() == source.resolve():
        raise UsageError("the backup and the store are the same file")
    try:
        restore_store(source, target)
    except StoreCorruptError as exc:
        raise StoreCorruptError(f"the backup is damaged too ({exc.problem})",
                                path=source) from exc
    print(f"restored {target} from {source}")
    return int(Exit.OK)
