"""Read event and account frames named on the command line: Parquet, CSV, NDJSON files and
folders, or a table or query of a DuckDB file or of a database by URI."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from healthrules.cli._exit import UsageError
from healthrules.errors import Code, InputDataError, Issue, Location

if TYPE_CHECKING:
    from healthrules.compiler import Plan

__all__ = ["add_source_arguments", "contract_types", "has_input", "input_frame", "scan_frame"]

Side = Literal["events", "accounts"]

_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".ndjson": "ndjson",
             ".jsonl": "ndjson"}


def contract_types(plan: Plan, side: Side) -> dict[str, str]:
    """The type the data contract declares for each column of one frame: ``str`` for keys,
    users and event names (ids such as ``00001`` stay text), else the declared type
    (``datetime`` for the timestamp; dates for the accounts' validity columns)."""
    if side == "accounts":
        validity = plan.roadmaps[0].roadmap.data.accounts.validity if plan.roadmaps else ()
        return {plan.account_key: "str", **plan.attributes, **dict.fromkeys(validity, "date")}
    ev = plan.events
    types = {ev.account: "str", ev.timestamp: "datetime", **ev.values}
    if ev.event is not None:
        types[ev.event] = "str"
    if ev.user is not None:
        types[ev.user] = "str"
    return types


def _typed(lf: pl.LazyFrame, types: dict[str, str], timezone: str | None) -> pl.LazyFrame:
    """Text columns brought to their declared types; nothing else is touched."""
    schema = lf.collect_schema()
    exprs: list[pl.Expr] = []
    for name, typ in types.items():
        if name not in schema:
            continue  # the contract check names it
        c = pl.col(name)
        is_text = schema[name] == pl.String
        if typ == "str":
            if schema[name] != pl.String:
                exprs.append(c.cast(pl.String))
        elif not is_text:
            continue  # NDJSON numbers and booleans are typed already
        elif typ == "int":
            exprs.append(c.cast(pl.Int64))
        elif typ == "float":
            exprs.append(c.cast(pl.Float64))
        elif typ == "bool":
            low = c.str.strip_chars().str.to_lowercase()
            exprs.append(pl.when(low.is_in(["true", "1"])).then(True)
                         .when(low.is_in(["false", "0"])).then(False).alias(name))
        elif typ == "date":
            exprs.append(c.str.to_date())
        elif typ == "datetime":
            exprs.append(c.str.to_datetime(time_unit="us", time_zone=timezone))
    return lf.with_columns(exprs) if exprs else lf


def scan_frame(path: str | Path, what: str, plan: Plan | None = None,
               side: Side | None = None) -> pl.LazyFrame:
    """Scan a file or a folder lazily; a folder is read as a (hive-partitioned) Parquet dataset.

    With a ``plan``, a CSV or NDJSON file is read with the types the plan's data contract
    declares for ``side`` (``events`` or ``accounts``): keys, users, event names and text
    attributes stay text (``00001`` is not the number 1), numbers and dates are parsed as
    declared, and every other CSV column is read as text (no type is guessed).

    Raises
    ------
    UsageError
        If the path does not exist.
    InputDataError
        If the folder holds no Parquet file or the file's format is not known.
    """
    p = Path(path)
    where = Location(file=str(p))
    if not p.exists():
        raise UsageError(f"{what} file or folder not found: {p}")
    if p.is_dir():
        files = sorted(p.rglob("*.parquet"))
        if not files:
            raise InputDataError([Issue(code=Code.FILE_NOT_FOUND.value, location=where,
                                        message=f"{what} folder holds no .parquet files")])
        _check_parquet(files, what)
        return pl.scan_parquet(p / "**" / "*.parquet", hive_partitioning=True)
    kind = _SUFFIXES.get(p.suffix.lower())
    if kind == "parquet":
        _check_parquet([p], what)
        return pl.scan_parquet(p)
    if plan is not None and side is not None and kind in ("csv", "ndjson"):
        types = contract_types(plan, side)
        lf = pl.scan_csv(p, infer_schema=False) if kind == "csv" else pl.scan_ndjson(p)
        return _typed(lf, types, plan.events.timezone)
    if kind == "csv":
        return pl.scan_csv(p, try_parse_dates=True)
    if kind == "ndjson":
        return pl.scan_ndjson(p)
    raise InputDataError([Issue(
        code=Code.FILE_UNREADABLE.value, location=where,
        message=f"cannot tell the format of the {what} file from its name",
        hint="use .parquet, .csv, .ndjson or .jsonl, or a folder of .parquet files")])


def _check_parquet(files: list[Path], what: str) -> None:
    """Read the footer of every Parquet file (not the data): a damaged or foreign file is an
    input problem reported by name, not a failure in the middle of the evaluation."""
    issues = []
    for f in files:
        try:
            pl.read_parquet_schema(f)
        except (OSError, pl.exceptions.PolarsError) as exc:
            issues.append(Issue(code=Code.FILE_UNREADABLE.value, location=Location(file=str(f)),
                                message=f"{what}: not a readable Parquet file ({exc})"))
    if issues:
        raise InputDataError(issues)


SOURCES_HELP = """\
inputs: each of the events and the accounts comes from a file or folder (--events FILE,
--accounts FILE), or from a table (--events-table NAME) or a query (--events-query SQL) of
the database given by --duckdb FILE (opened read-only) or --database URI (connectorx, or
ADBC with --sql-engine adbc). The columns and the time range the roadmap reads are written
into the SQL that runs (docs/sources.md).
"""


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The input options: a file per side, or a table or a query of a database."""
    group = parser.add_argument_group("inputs", SOURCES_HELP)
    group.add_argument("--events", metavar="FILE", help="events file or folder")
    group.add_argument("--accounts", metavar="FILE", help="accounts file")
    group.add_argument("--events-table", dest="events_table", metavar="NAME",
                       help="events table (or view) of --duckdb / --database")
    group.add_argument("--events-query", dest="events_query", metavar="SQL",
                       help="events query (a SELECT) of --duckdb / --database")
    group.add_argument("--accounts-table", dest="accounts_table", metavar="NAME",
                       help="accounts table (or view) of --duckdb / --database")
    group.add_argument("--accounts-query", dest="accounts_query", metavar="SQL",
                       help="accounts query (a SELECT) of --duckdb / --database")
    db = group.add_mutually_exclusive_group()
    db.add_argument("--duckdb", metavar="FILE", help="a DuckDB database file")
    db.add_argument("--database", metavar="URI",
                    help="a database URI, e.g. postgresql://user@host:5432/db")
    group.add_argument("--sql-engine", dest="sql_engine", choices=["connectorx", "adbc"],
                       default="connectorx", help="how --database is read (default connectorx)")


def has_input(args: argparse.Namespace, side: Side) -> bool:
    """Whether the command line names an input for ``side``."""
    return any(getattr(args, f"{side}{x}", None) for x in ("", "_table", "_query"))


def input_frame(args: argparse.Namespace, side: Side, plan: Plan) -> Any:
    """The input of ``side`` the command line names: a LazyFrame of a file, or a source
    of a database table or query (read with pushdown by ``healthrules.evaluate``).

    Raises
    ------
    UsageError
        If no input or several are given for ``side``, or a table or query has no database.
    """
    path = getattr(args, side, None)
    table = getattr(args, f"{side}_table", None)
    query = getattr(args, f"{side}_query", None)
    given = [f"--{side}{x}" for x, v in (("", path), ("-table", table), ("-query", query)) if v]
    if len(given) != 1:
        raise UsageError(
            f"give one of --{side}, --{side}-table, --{side}-query"
            + (f" (got {', '.join(given)})" if given else ""),
            hint=f"--{side} FILE, or --duckdb FILE --{side}-table NAME")
    if path:
        return scan_frame(path, side, plan, side)
    from healthrules.sources import DuckDBSource, SQLSource

    try:
        if args.duckdb:
            if not Path(args.duckdb).exists():
                raise UsageError(f"DuckDB database file not found: {args.duckdb}")
            return DuckDBSource(args.duckdb, table=table, query=query)
        if args.database:
            return SQLSource(args.database, table=table, query=query, engine=args.sql_engine)
    except ValueError as exc:
        raise UsageError(f"--{given[0].removeprefix('--')}: {exc}") from None
    raise UsageError(f"{given[0]} needs a database: --duckdb FILE or --database URI")
