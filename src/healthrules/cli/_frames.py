"""Read event and account frames named on the command line: Parquet, CSV, NDJSON files and
folders, or a table or query of a DuckDB file or of a database by URI."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from healthrules.cli._exit import UsageError
from healthrules.errors import Code, InputDataError, Issue, Location

if TYPE_CHECKING:
    from healthrules.compiler import Plan

__all__ = ["add_source_arguments", "contract_types", "has_input", "input_frame",
           "partition_columns", "scan_events", "scan_frame"]

Side = Literal["events", "accounts"]

_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".ndjson": "ndjson",
             ".jsonl": "ndjson"}


def contract_types(plan: Plan, side: Side, source: str | None = None) -> dict[str, str]:
    """The type the data contract declares for each column of one frame: ``str`` for keys,
    users and event names (ids such as ``00001`` stay text), else the declared type
    (``datetime`` for the timestamp; dates for the accounts' validity columns). ``source``
    names the event source (default: the default source)."""
    if side == "accounts":
        validity = plan.roadmaps[0].roadmap.data.accounts.validity if plan.roadmaps else ()
        # a parent key is a key: text, like the account key
        return {plan.account_key: "str", **plan.attributes,
                **dict.fromkeys(plan.parent_columns, "str"), **dict.fromkeys(validity, "date")}
    ev = plan.sources[plan.default_source if source is None else source]
    types = {ev.account: "str", ev.timestamp: "datetime", **ev.values}
    if ev.event is not None:
        types[ev.event] = "str"
    if ev.user is not None:
        types[ev.user] = "str"
    return types


_PARSED = {"int": "a whole number", "float": "a number", "bool": "true or false (or 1 / 0)",
           "date": "a date", "datetime": "a date and time"}


def _parse(c: pl.Expr, typ: str) -> pl.Expr:
    """A text column parsed as ``typ``; a value that does not parse is null (found after)."""
    if typ == "int":
        return c.cast(pl.Int64, strict=False)
    if typ == "float":
        return c.cast(pl.Float64, strict=False)
    low = c.str.strip_chars().str.to_lowercase()  # bool
    return (pl.when(low.is_in(["true", "1"])).then(True)
            .when(low.is_in(["false", "0"])).then(False))


def _dates(text: pl.Series) -> pl.Series:
    """A text column of dates; a value that is not one is null (reported after)."""
    try:
        return text.str.to_date(strict=False)
    except pl.exceptions.ComputeError:  # no value in a form polars knows: all reported
        return pl.Series(text.name, [None] * len(text), pl.Date)


def _datetimes(text: pl.Series, timezone: str | None) -> pl.Series:
    """A text column of datetimes parsed as the engine reads times: a wall time (no offset)
    in ``timezone``, one that a daylight-saving change skips or repeats read as the engine
    reads it (the offset before the change, the earlier instant; docs/semantics.md); a time
    with an offset is its instant, shown in ``timezone``."""
    from healthrules.inputs import zoned_wall_time

    try:
        parsed = text.str.to_datetime(time_unit="us", strict=False)
    except pl.exceptions.ComputeError:  # no value in a form polars knows: all reported
        return pl.Series(text.name, [None] * len(text), pl.Datetime("us", timezone))
    if timezone is None:
        return parsed
    zone = parsed.dtype.time_zone if isinstance(parsed.dtype, pl.Datetime) else None
    frame = parsed.to_frame("t")
    if zone is not None:
        return frame.select(pl.col("t").dt.convert_time_zone(timezone)).to_series()
    return frame.select(zoned_wall_time(pl.col("t"), timezone)).to_series()


def _typed(df: pl.DataFrame, types: dict[str, str], timezone: str | None, what: str,
           path: Path) -> pl.DataFrame:
    """Text columns brought to their declared types; nothing else is touched. A value that
    is not of its column's type is an input problem naming the file, the column, the row and
    the value (it was a polars error deep in the evaluation, exit code 3, or for a boolean a
    silent null)."""
    exprs: list[pl.Expr] = []
    checks: list[tuple[str, str]] = []
    for name, typ in types.items():
        if name not in df.columns:
            continue  # the contract check names it
        c = pl.col(name)
        is_text = df.schema[name] == pl.String
        if typ == "str":
            if not is_text:
                exprs.append(c.cast(pl.String))
        elif not is_text:
            continue  # NDJSON numbers and booleans are typed already
        elif typ == "datetime":
            exprs.append(pl.lit(_datetimes(df[name], timezone)).alias(name))
            checks.append((name, typ))
        elif typ == "date":
            exprs.append(pl.lit(_dates(df[name])).alias(name))
            checks.append((name, typ))
        elif typ in _PARSED:
            exprs.append(_parse(c, typ).alias(name))
            checks.append((name, typ))
    try:
        out = df.with_columns(exprs) if exprs else df
    except pl.exceptions.PolarsError as exc:  # a format polars cannot use at all
        raise InputDataError([Issue(
            code=Code.WRONG_DTYPE.value, location=Location(file=str(path)),
            message=f"{what} file: a column cannot be read as declared ({exc})")]) from None
    issues = []
    for name, typ in checks:
        bad = df[name].is_not_null() & out[name].is_null()
        if not bad.any():
            continue
        rows = bad.arg_true()
        first = int(rows[0])
        value = df[name][first]
        more = f" ({len(rows) - 1} more rows like it)" if len(rows) > 1 else ""
        issues.append(Issue(
            code=Code.WRONG_DTYPE.value, location=Location(file=str(path), path=name),
            message=f"{what} file: column {name!r} is declared {typ}, but row {first + 1} "
                    f"holds {value!r}, which is not {_PARSED[typ]}{more}",
            hint=(f"fix the value, or declare {name!r} with the type it holds" if typ not in (
                "date", "datetime") else "fix the value; the values of a column share the "
                "form of its first one (2026-06-01, 2026-06-01T09:00:00, or all with an "
                "offset: 2026-06-01T09:00:00+02:00)")))
    if issues:
        raise InputDataError(issues)
    return out


def _read_text(p: Path, kind: str, what: str, typed: bool) -> pl.DataFrame:
    """A CSV or NDJSON file read whole (every CSV column as text when ``typed``): an empty,
    malformed or unreadable file is an input problem naming it, not a failure in the middle
    of the evaluation."""
    where = Location(file=str(p))
    try:
        if kind == "csv":
            return (pl.read_csv(p, infer_schema=False) if typed
                    else pl.read_csv(p, try_parse_dates=True))
        return pl.read_ndjson(p)
    except pl.exceptions.NoDataError:
        raise InputDataError([Issue(code=Code.EMPTY_FILE.value, location=where,
                                    message=f"the {what} file is empty (not even a header)")]
                             ) from None
    except (OSError, pl.exceptions.PolarsError) as exc:
        form = "CSV" if kind == "csv" else "NDJSON"
        raise InputDataError([Issue(code=Code.FILE_UNREADABLE.value, location=where,
                                    message=f"{what}: not a readable {form} file ({exc})")]
                             ) from None


_NAMED = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)=(.+)$")


def _named(value: str, option: str) -> tuple[str | None, str]:
    """``NAME=VALUE`` -> (NAME, VALUE); a plain value (or an existing path holding ``=``,
    such as a hive folder ``date=2026-06-01``) -> (None, value)."""
    m = _NAMED.match(value)
    if m is None or Path(value).exists():
        return None, value
    return m.group(1), m.group(2)


_EVENT_OPTIONS = (("--events", "events"), ("--events-table", "events_table"),
                  ("--events-query", "events_query"))


def scan_events(values: list[str], plan: Plan) -> pl.LazyFrame | dict[str, pl.LazyFrame]:
    """The events named by one or more ``--events`` options: ``PATH`` (the default source,
    alone) or ``NAME=PATH`` per event source of the roadmap (``--events usage=u.parquet
    --events tickets=t.csv``). Each is scanned lazily with :func:`scan_frame`, CSV and
    NDJSON with the types its source declares.

    Raises
    ------
    UsageError
        A source named twice or unknown (with a did-you-mean), a plain path next to named
        ones or given twice, or a source of the roadmap without its ``--events``.
    """
    got: pl.LazyFrame | dict[str, pl.LazyFrame] = _events_input(
        [("--events", v) for v in values], plan, None)
    return got


def _events_input(entries: list[tuple[str, str]], plan: Plan,
                  args: argparse.Namespace | None) -> Any:
    """The events of ``(option, value)`` pairs: ``--events [NAME=]PATH``,
    ``--events-table [NAME=]TABLE``, ``--events-query [NAME=]SQL``; a plain value is the
    default source (alone), ``NAME=...`` one event source of the roadmap. One input (the
    default source) or a dict of one input per source."""
    from healthrules.expressions import did_you_mean

    declared = list(plan.sources)
    given: dict[str, tuple[str, str]] = {}
    plain: list[tuple[str, str]] = []
    for option, value in entries:
        name, rest = _named(value, option)
        if name is None:
            plain.append((option, rest))
            continue
        if name not in plan.sources:
            raise UsageError(
                f"{option} {value}: the roadmap has no event source {name!r} (its sources: "
                f"{', '.join(declared)})", hint=did_you_mean(name, declared))
        if name in given:
            first = given[name][0]
            raise UsageError(f"{option} names source {name!r} twice" if first == option
                             else f"the events of source {name!r} are given twice ({first} "
                             f"and {option})")
        given[name] = (option, rest)
    options = list(dict.fromkeys(option for option, _ in plain))
    if not given and len(options) > 1:
        raise UsageError(
            f"give one of --events, --events-table, --events-query (got {', '.join(options)})",
            hint="--events FILE, or --duckdb FILE --events-table NAME; with several event "
            "sources, NAME=... once per source")
    if plain and (given or len(plain) > 1):
        raise UsageError(
            "give one --events PATH (or --events-table / --events-query: the events of a "
            "roadmap with one source), or one --events NAME=PATH (or --events-table "
            "NAME=TABLE, --events-query NAME=SQL) per event source",
            hint="event sources of the roadmap: " + ", ".join(declared))
    if plain:
        if len(declared) > 1:
            raise UsageError(
                f"the roadmap reads {len(declared)} event sources: give one --events "
                "NAME=PATH for each", hint=" ".join(f"--events {n}=..." for n in declared)
                + " (or --events-table NAME=TABLE, --events-query NAME=SQL)")
        option, value = plain[0]
        return _open_events(option, value, plan, None, "events", args)
    missing = [n for n in declared if n not in given]
    if missing:
        raise UsageError(
            f"no --events for event source{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} of the roadmap",
            hint=" ".join(f"--events {n}=..." for n in missing))
    return {name: _open_events(*given[name], plan, name, f"events of source {name!r}", args)
            for name in declared}


def _open_events(option: str, value: str, plan: Plan, source: str | None, what: str,
                 args: argparse.Namespace | None) -> Any:
    """One source's events: a scanned file, or a table or query of the database."""
    if option == "--events":
        return scan_frame(value, what, plan, "events", source)
    assert args is not None
    kind = "table" if option == "--events-table" else "query"
    return _database_source(args, option, **{kind: value})


def partition_columns(values: list[str] | None, plan: Plan) -> str | dict[str, str] | None:
    """``--partition-column``: ``COL`` (every source) or ``NAME=COL`` per source."""
    from healthrules.expressions import did_you_mean

    if not values:
        return None
    per: dict[str, str] = {}
    for value in values:
        name, col = _named(value, "--partition-column")
        if name is None:
            if len(values) > 1:
                raise UsageError("give one --partition-column COL, or NAME=COL per source")
            return col
        if name not in plan.sources:
            raise UsageError(f"--partition-column {value}: the roadmap has no event source "
                             f"{name!r}", hint=did_you_mean(name, list(plan.sources)))
        per[name] = col
    return per


def scan_frame(path: str | Path, what: str, plan: Plan | None = None,
               side: Side | None = None, source: str | None = None) -> pl.LazyFrame:
    """Scan a file or a folder lazily; a folder is read as a (hive-partitioned) Parquet dataset.

    With a ``plan``, a CSV or NDJSON file is read with the types the plan's data contract
    declares for ``side`` (``events`` or ``accounts``): keys, users, event names and text
    attributes stay text (``00001`` is not the number 1), numbers and dates are parsed as
    declared, and every other CSV column is read as text (no type is guessed). A CSV or
    NDJSON file is read whole here, so an empty or malformed file, or a value that is not of
    its declared type, is an input problem (exit code 1) naming the file, not an error in
    the middle of the evaluation.

    Raises
    ------
    UsageError
        If the path does not exist.
    InputDataError
        If the folder holds no Parquet file, the file's format is not known, a CSV or NDJSON
        file is empty or malformed, or one of its values is not of its declared type.
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
    if kind in ("csv", "ndjson"):
        typed = plan is not None and side is not None
        df = _read_text(p, kind, what, typed)
        if plan is not None and side is not None:
            types = contract_types(plan, side, source)
            zone = (plan.sources[source].timezone if side == "events" and source is not None
                    else plan.events.timezone)
            df = _typed(df, types, zone, what, p)
        return df.lazy()
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
inputs: each of the events and the accounts comes from a file (.parquet, .csv, .ndjson) or
a folder of Parquet files (--events PATH, --accounts PATH; hive folders such as
snapshot_date=2026-06-30/ become columns, so a folder of account snapshots works), or from a
table (--events-table NAME) or a query (--events-query SQL) of the database given by
--duckdb FILE (opened read-only) or --database URI (connectorx, or ADBC with --sql-engine
adbc). The columns and the time range the roadmap reads are written into the SQL that runs
(docs/sources.md). A roadmap with several event sources takes one events option per source,
named: --events NAME=PATH, --events-table NAME=TABLE or --events-query NAME=SQL (they may be
mixed).
"""


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The input options: a file per side, or a table or a query of a database; the events
    once per event source (``NAME=...``) when the roadmap has several."""
    group = parser.add_argument_group("inputs", SOURCES_HELP)
    group.add_argument("--events", action="append", metavar="[NAME=]PATH",
                       help="events file or folder; with several event sources, NAME=PATH "
                       "once per source (--events usage=u.parquet --events tickets=t.csv)")
    group.add_argument("--accounts", metavar="PATH",
                       help="accounts file, or folder of Parquet files (for example one "
                       "snapshot_date=YYYY-MM-DD/ folder per snapshot)")
    group.add_argument("--events-table", dest="events_table", action="append",
                       metavar="[NAME=]TABLE",
                       help="events table (or view) of --duckdb / --database")
    group.add_argument("--events-query", dest="events_query", action="append",
                       metavar="[NAME=]SQL",
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
                       default=None, help="how --database is read (default connectorx)")


def has_input(args: argparse.Namespace, side: Side) -> bool:
    """Whether the command line names an input for ``side``."""
    return any(getattr(args, f"{side}{x}", None) for x in ("", "_table", "_query"))


def input_frame(args: argparse.Namespace, side: Side, plan: Plan) -> Any:
    """The input of ``side`` the command line names: a LazyFrame of a file, or a source
    of a database table or query (read with pushdown by ``healthrules.evaluate``). The
    events are one input (the default source) or, with ``NAME=...`` values, a dict of one
    input per event source.

    Raises
    ------
    UsageError
        If no input or several are given for ``side`` (for the events: for one source),
        or a table or query has no database, or ``--sql-engine`` is given without
        ``--database``.
    """
    if getattr(args, "sql_engine", None) and not getattr(args, "database", None):
        raise UsageError("--sql-engine says how --database is read, and no --database is given",
                         hint="--database URI --sql-engine adbc")
    if side == "events":
        entries = [(option, v) for option, attr in _EVENT_OPTIONS
                   for v in (getattr(args, attr, None) or [])]
        if not entries:
            raise UsageError("give one of --events, --events-table, --events-query",
                             hint="--events FILE, or --duckdb FILE --events-table NAME")
        return _events_input(entries, plan, args)
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
    return _database_source(args, given[0], table=table, query=query)


def _database_source(args: argparse.Namespace, option: str, *, table: str | None = None,
                     query: str | None = None) -> Any:
    """A table or query of ``--duckdb`` or ``--database``."""
    from healthrules.sources import DuckDBSource, SQLSource

    try:
        if args.duckdb:
            if not Path(args.duckdb).exists():
                raise UsageError(f"DuckDB database file not found: {args.duckdb}")
            return DuckDBSource(args.duckdb, table=table, query=query)
        if args.database:
            return SQLSource(args.database, table=table, query=query,
                             engine=args.sql_engine or "connectorx")
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None
    raise UsageError(f"{option} needs a database: --duckdb FILE or --database URI")
