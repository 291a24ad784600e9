"""Read event and account frames named on the command line: Parquet, CSV, NDJSON files and
folders, or a table or query of a DuckDB file or of a database by URI."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from healthrules.cli._exit import UsageError
from healthrules.errors import Code, InputDataError, Issue, Location
from healthrules.query_flags import OPTIMISED

if TYPE_CHECKING:
    from healthrules.compiler import Plan

__all__ = ["OUTCOME_TYPES", "add_source_arguments", "check_partition_folders", "contract_types",
           "csv_rows", "has_input", "input_frame", "partition_columns", "scan_events", "scan_frame",
           "scan_outcomes"]

Side = Literal["events", "accounts"]

_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".ndjson": "ndjson",
             ".jsonl": "ndjson", ".arrow": "ipc", ".ipc": "ipc", ".feather": "ipc"}


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


# a timestamp's UTC offset (Z, +01, +0100, +01:00, to the second: +00:09:21), read only
# after a time of day (so 2026-06-01 is a date, not 2026-06 at -01)
_OFFSET = r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)$"
_DATE_ONLY = r"^\s*\d{4}-\d{2}-\d{2}\s*$"
_NS = r"[.,]\d{7,}"


def _stamp_kinds(lf: pl.LazyFrame, names: list[str]) -> dict[str, tuple[str, bool]]:
    """Per text timestamp column: ``ns`` when a value has more than six digits of a second
    (else ``us``), and whether every value is a date alone (read as a ``Date``, the midnight
    starting it on the events' wall clock, as a frame's ``Date`` column is)."""
    if not names:
        return {}
    row = lf.select([e for n in names for e in (
        pl.col(n).str.contains(_NS).any().alias(f"{n}\0ns"),
        (pl.col(n).is_null() | pl.col(n).str.contains(_DATE_ONLY)).all().alias(f"{n}\0d"),
        pl.col(n).is_not_null().any().alias(f"{n}\0any"))]
    ).collect(optimizations=OPTIMISED).row(0, named=True)
    return {n: ("ns" if row[f"{n}\0ns"] else "us", bool(row[f"{n}\0d"] and row[f"{n}\0any"]))
            for n in names}


Stages = list[list[pl.Expr]]
"""Columns added one ``with_columns`` after another (each read by name from the next, so a
regular expression or a parse runs once per value, not once per use)."""


def _stamp(name: str, zone: str | None, unit: str,
           dates: bool) -> tuple[Stages, pl.Expr, pl.Expr, list[str]]:
    """A text timestamp column parsed exactly: the stages of temporary columns, the value,
    why a value cannot be parsed (null: it can) and the temporary columns' names.

    A value with a UTC offset is that instant (offsets to the second: pre-1911 Paris is
    +00:09:21), shown in ``zone``; an offset cut to the minute from the zone's own offset
    then is refused (the instant it names is not the one meant). A value without one is a
    wall time of ``zone``, read as the engine reads wall times
    (:func:`healthrules.inputs.zoned_wall_time`, docs/semantics.md): one that a
    daylight-saving change skips has the offset before the change, a repeated one is its
    earlier instant. In a roadmap without a zone an offset is refused (the events are wall
    times).
    """
    def t(part: str) -> str:
        return f"\0{name}\0{part}"

    def c(part: str) -> pl.Expr:
        return pl.col(t(part))

    text = pl.col(name).str.strip_chars()
    if dates:
        day = text.str.to_date("%Y-%m-%d", strict=False)
        return [[day.alias(t("day"))]], c("day").alias(name), pl.when(
            c("day").is_null() & pl.col(name).is_not_null()).then(
            pl.lit("is not a date (YYYY-MM-DD)")), [t("day")]
    stages: Stages = [[text.alias(t("text"))],
                       [c("text").str.extract(_OFFSET, 1).alias(t("off"))]]
    stages.append([pl.when(c("off").is_null()).then(c("text")).otherwise(
        c("text").str.head(c("text").str.len_chars() - c("off").str.len_chars())
        .str.strip_chars_end()).alias(t("wt"))])
    digits = c("off").str.replace_all(":", "").str.slice(1)
    parsed = [c("wt").str.to_datetime(time_unit=unit,  # type: ignore[arg-type]
                                      strict=False).alias(t("wall")),
              digits.str.slice(0, 2).cast(pl.Int64, strict=False).alias(t("hh")),
              pl.when(digits.str.len_chars() >= 4).then(
                  digits.str.slice(2, 2).cast(pl.Int64, strict=False)).otherwise(0)
              .alias(t("mm")),
              pl.when(digits.str.len_chars() >= 6).then(
                  digits.str.slice(4, 2).cast(pl.Int64, strict=False)).otherwise(0)
              .alias(t("ss")),
              c("off").is_not_null().alias(t("has_off")),
              (c("off").str.to_uppercase() == "Z").alias(t("z"))]
    if unit == "ns":
        # (polars wraps a nanosecond value out of its range round: the year read in us)
        parsed.append(c("wt").str.to_datetime(time_unit="us", strict=False).dt.year()
                      .alias(t("year")))
    stages.append(parsed)
    sign = pl.when(c("off").str.starts_with("-")).then(-1).otherwise(1)
    stages.append([
        pl.when(c("z")).then(0).otherwise(sign * (c("hh") * 3600 + c("mm") * 60 + c("ss")))
        .alias(t("secs")),
        (c("has_off") & ~c("z") & ((c("hh") > 23) | (c("mm") > 59) | (c("ss") > 59)
                                   | c("hh").is_null())).alias(t("bad_off"))])
    stages.append([(c("wall") - pl.duration(seconds=c("secs"),
                                            time_unit=unit))  # type: ignore[arg-type]
                   .alias(t("utc"))])
    temps = [t(x) for x in ("text", "wt", "off", "wall", "hh", "mm", "ss", "has_off", "z",
                            "secs", "bad_off", "utc")]
    nanos = pl.lit(None, pl.String)
    if unit == "ns":
        temps.append(t("year"))
        nanos = pl.when(c("year").is_not_null() & ((c("year") < 1678) | (c("year") > 2261))
                        ).then(pl.lit("is outside the years 1678 to 2261 that nanosecond "
                                      "timestamps hold"))
    value: pl.Expr
    why: pl.Expr
    if zone is None:
        value = c("wall")
        why = pl.when(c("has_off")).then(pl.lit(
            "has a UTC offset, but the roadmap declares no time zone (its events are wall "
            "times): write wall times, or declare the zone (data.events.timezone)"))
    else:
        from healthrules.inputs import zoned_wall_time

        stages.append([
            c("utc").dt.replace_time_zone("UTC").dt.convert_time_zone(zone).alias(t("at")),
            zoned_wall_time(c("wall"), zone).alias(t("local"))])
        temps += [t("at"), t("local")]
        value = pl.when(c("has_off")).then(c("at")).otherwise(c("local"))
        # how far the offset written is from the zone's own offset at that instant
        cut = ((c("at").dt.replace_time_zone(None) - c("utc")).dt.total_seconds()
               - c("secs")).abs()
        why = pl.when(c("has_off") & (cut > 0) & (cut < 60)).then(
            pl.format(f"has the UTC offset {{}}, cut to the minute from {zone}'s offset "
                      "then (the instant it names is not the one meant): write the offset "
                      "to the second, UTC, or wall times without an offset", c("off")))
    why = (pl.when(pl.col(name).is_null()).then(pl.lit(None, pl.String))
           .when(c("wall").is_null()).then(pl.lit("is not a date and time"))
           .when(c("bad_off")).then(pl.format("has no valid UTC offset ({})", c("off")))
           .otherwise(pl.coalesce(nanos, why)))
    return stages, value.alias(name), why, temps


_PARSED = {"int": "a whole number", "float": "a number", "bool": "true or false (or 1 / 0)",
           "date": "a date (YYYY-MM-DD)"}
_ISO_DAY_TEXT = r"^\d{4}-\d{1,2}-\d{1,2}$"


@dataclass
class _Parsers:
    """The parse of every text column to type (see :func:`_parsers`)."""

    stages: Stages
    values: list[pl.Expr]
    why: dict[str, pl.Expr]
    temps: list[str]

    def staged(self, lf: pl.LazyFrame) -> pl.LazyFrame:
        for stage in self.stages:
            lf = lf.with_columns(stage)
        return lf


def _parsers(lf: pl.LazyFrame, types: dict[str, str], timezone: str | None,
             stamps: dict[str, tuple[str, bool]]) -> _Parsers:
    """Per text column to type: its parsed value, and why a value cannot be parsed (null:
    it can), so a bad value is an input error naming it, never a null or a shifted time."""
    schema = lf.collect_schema()
    out = _Parsers([], [], {}, [])
    for name, typ in types.items():
        if name not in schema:
            continue  # the contract check names it
        col = pl.col(name)
        is_text = schema[name] == pl.String
        if typ == "str":
            if schema[name] != pl.String:
                out.values.append(col.cast(pl.String))
            continue
        if not is_text:
            continue  # NDJSON numbers and booleans are typed already
        if typ == "datetime":
            stages, value, why, temps = _stamp(name, timezone,
                                               *stamps.get(name, ("us", False)))
            for i, stage in enumerate(stages):
                if i == len(out.stages):
                    out.stages.append([])
                out.stages[i] += stage
            out.values.append(value)
            out.why[name] = why
            out.temps += temps
            continue
        if typ == "int":
            v = col.str.strip_chars().cast(pl.Int64, strict=False)
        elif typ == "float":
            v = col.str.strip_chars().cast(pl.Float64, strict=False)
        elif typ == "bool":
            low = col.str.strip_chars().str.to_lowercase()
            v = (pl.when(low.is_in(["true", "1"])).then(True)
                 .when(low.is_in(["false", "0"])).then(False))
        elif typ == "date":
            # one written form: a format guessed from the first value would read 01/04/2026
            # as the 1st of April in one file and the 4th of January in another
            day = col.str.strip_chars()
            v = pl.when(day.str.contains(_ISO_DAY_TEXT)).then(
                day.str.to_date("%Y-%m-%d", strict=False))
        else:
            continue
        out.values.append(v.alias(name))
        out.why[name] = pl.when(col.is_not_null() & v.is_null()).then(
            pl.lit(f"is not {_PARSED[typ]}"))
    return out


def _parsed(lf: pl.LazyFrame, types: dict[str, str], timezone: str | None,
            where: Location, what: str) -> pl.LazyFrame:
    """``lf`` (text) with the declared types, after one read of the typed columns that
    refuses, by file, column, row and value, what cannot be read exactly."""
    schema = lf.collect_schema()  # an unreadable file: scan_frame names it
    nulls = [n for n in types if schema.get(n) == pl.Null]  # NDJSON: null in every row
    if nulls:
        lf = lf.with_columns(pl.col(n).cast(pl.String) for n in nulls)
        schema = lf.collect_schema()
    stamps = _stamp_kinds(lf, [n for n, t in types.items()
                               if t == "datetime" and schema.get(n) == pl.String])
    parsers = _parsers(lf, types, timezone, stamps)
    checks = parsers.why
    if not checks:
        return lf.with_columns(parsers.values)
    # one read: the typed columns and why each value cannot be read, kept in memory (the
    # file is parsed once, not once to check and again to evaluate)
    flags = [why.alias(f"\0why{n}") for n, why in checks.items()]
    frame = (parsers.staged(lf).with_columns(flags).with_columns(parsers.values)
             .drop(parsers.temps).collect(optimizations=OPTIMISED))
    refused = frame.select(pl.any_horizontal(pl.col(f"\0why{n}").is_not_null()
                                             for n in checks).any()).item()
    if refused:
        found = (parsers.staged(lf.with_row_index("\0row")).select(
                     pl.col("\0row"), *(why.alias(f"\0{n}") for n, why in checks.items()),
                     *(pl.col(n).alias(f"\0v{n}") for n in checks))
                 .filter(pl.any_horizontal(pl.col(f"\0{n}").is_not_null() for n in checks))
                 .head(20).collect(optimizations=OPTIMISED))
        issues = []
        for n in checks:
            bad = found.filter(pl.col(f"\0{n}").is_not_null())
            if bad.height:
                row, why, value = bad.row(0)[0], bad[f"\0{n}"][0], bad[f"\0v{n}"][0]
                more = f" (and {bad.height - 1} more of the first 20 refused)" \
                    if bad.height > 1 else ""
                typ = types[n]
                issues.append(Issue(
                    code=Code.WRONG_DTYPE.value, location=Location(file=where.file, path=n),
                    message=f"{what} file: column {n!r} is declared {typ}, but row {row + 1} "
                            f"holds {value!r}, which {why}{more}",
                    hint=(f"fix the value, or declare {n!r} with the type it holds"
                          if typ not in ("date", "datetime") and what != "outcomes"
                          else None)))
        raise InputDataError(issues)
    return frame.drop([f"\0why{n}" for n in checks]).lazy()


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


def partition_columns(values: list[str] | None, plan: Plan,
                      args: argparse.Namespace | None = None) -> str | dict[str, str] | None:
    """``--partition-column``: ``COL`` (every source) or ``NAME=COL`` per source. With
    ``args``, every ``COL=VALUE`` folder of an ``--events`` folder is checked to name a
    date (see :func:`check_partition_folders`)."""
    from healthrules.expressions import did_you_mean

    if not values:
        return None
    per: dict[str, str] = {}
    for value in values:
        name, col = _named(value, "--partition-column")
        if name is None:
            if len(values) > 1:
                raise UsageError("give one --partition-column COL, or NAME=COL per source")
            if args is not None:
                check_partition_folders(args, plan, col)
            return col
        if name not in plan.sources:
            raise UsageError(f"--partition-column {value}: the roadmap has no event source "
                             f"{name!r}", hint=did_you_mean(name, list(plan.sources)))
        per[name] = col
    if args is not None:
        check_partition_folders(args, plan, per)
    return per


_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# how polars (and Hive) write a null partition value
_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


def _is_day(text: str) -> bool:
    """Whether ``text`` is a real date written ``YYYY-MM-DD``."""
    if not _ISO_DAY.match(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def check_partition_folders(args: argparse.Namespace, plan: Plan,
                            column: str | dict[str, str]) -> None:
    """Refuse an ``--events`` folder whose partition folders (``COL=VALUE``) do not all
    name a date ``YYYY-MM-DD``: the partition filter keeps the folders of the days the
    roadmap reads by comparing those values, so one such as ``date=garbage`` or
    ``date=2026-6-5`` would have its events silently left out (or kept on the wrong day).
    Only folder names are read, no file."""
    issues: list[Issue] = []
    for value in getattr(args, "events", None) or []:
        name, path = _named(value, "--events")
        source = plan.default_source if name is None else name
        col = column.get(source) if isinstance(column, dict) else column
        folder = Path(path)
        if col is None or not folder.is_dir():
            continue
        bad: dict[str, Path] = {}
        for f in sorted(folder.rglob("*.parquet")):
            for part in f.relative_to(folder).parts[:-1]:
                key, eq, day = part.partition("=")
                if not eq or key != col or day == _NULL_PARTITION or day in bad:
                    continue
                if not _is_day(day):
                    bad[day] = folder / f.relative_to(folder).parent
        if bad:
            first, where = next(iter(bad.items()))
            more = f" (and {len(bad) - 1} more such folders)" if len(bad) > 1 else ""
            issues.append(Issue(
                code=Code.WRONG_DTYPE.value, location=Location(file=str(where), path=col),
                message=f"events folder {folder}: partition folder {col}={first} does not "
                        f"name a date (YYYY-MM-DD){more}; --partition-column {col} keeps "
                        "the folders of the days the roadmap reads by their names, so its "
                        "events would be left out",
                hint=f"rename the folder to {col}=YYYY-MM-DD (the day of its events), or "
                     "leave out --partition-column"))
    if issues:
        raise InputDataError(issues)


def scan_frame(path: str | Path, what: str, plan: Plan | None = None,
               side: Side | None = None, source: str | None = None) -> pl.LazyFrame:
    """Scan a file or a folder lazily; a folder is read as a (hive-partitioned) Parquet dataset.

    With a ``plan``, a CSV or NDJSON file is read with the types the plan's data contract
    declares for ``side`` (``events`` or ``accounts``): keys, users, event names and text
    attributes stay text (``00001`` is not the number 1), numbers and dates are parsed as
    declared, and every other CSV column is read as text (no type is guessed). Such a file
    is parsed whole here (docs/sources.md, "Time zones"), so an empty or malformed file, or a
    value that cannot be read exactly as its declared type, is an input problem (exit code 1)
    naming the file, the column, the row and the value, not an error in the middle of the
    evaluation. Zoned Parquet, Arrow IPC and CSV/NDJSON timestamps are shown in the zone of
    the roadmap's source.

    Raises
    ------
    UsageError
        If the path does not exist.
    InputDataError
        If the folder holds no Parquet file, the file's format is not known, a CSV or NDJSON
        file is empty or malformed, or one of its values cannot be read as its declared type.
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
        return _in_zone(pl.scan_parquet(p / "**" / "*.parquet", hive_partitioning=True),
                        plan, side, source)
    kind = _SUFFIXES.get(p.suffix.lower())
    if kind == "parquet":
        _check_parquet([p], what)
        return _in_zone(pl.scan_parquet(p), plan, side, source)
    if kind == "ipc":
        try:
            lf = pl.scan_ipc(p)
            lf.collect_schema()
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise InputDataError([Issue(
                code=Code.FILE_UNREADABLE.value, location=where,
                message=f"{what}: not a readable Arrow IPC file ({exc})")]) from None
        return _in_zone(lf, plan, side, source)
    if kind in ("csv", "ndjson"):
        form = "CSV" if kind == "csv" else "NDJSON"
        if kind == "csv" and _blank(p):
            raise InputDataError([Issue(
                code=Code.EMPTY_FILE.value, location=where,
                message=f"the {what} file is empty (not even a header)")])
        if plan is None or side is None:
            try:
                if kind == "csv":
                    lf = pl.scan_csv(p, try_parse_dates=True)
                    return csv_rows(lf, p, len(lf.collect_schema().names()), what
                                     ).collect(optimizations=OPTIMISED).lazy()
                return pl.read_ndjson(p).lazy()
            except (OSError, pl.exceptions.PolarsError) as exc:
                raise InputDataError([Issue(
                    code=Code.FILE_UNREADABLE.value, location=where,
                    message=f"{what}: not a readable {form} file ({exc})")]) from None
        return _read_text(p, kind, contract_types(plan, side, source),
                          _zone(plan, side, source), what)
    raise InputDataError([Issue(
        code=Code.FILE_UNREADABLE.value, location=where,
        message=f"cannot tell the format of the {what} file from its name",
        hint="use .parquet, .arrow (Arrow IPC), .csv, .ndjson or .jsonl, or a folder of "
        ".parquet files")])


OUTCOME_TYPES = {"renewal_date": "date", "outcome": "str", "arr": "float"}
"""The columns of a backtest's outcomes besides the account key (a ``str``), and their
types."""


def scan_outcomes(path: str | Path, plan: Plan) -> pl.LazyFrame:
    """A backtest's outcomes file, read like an events or accounts file (:func:`scan_frame`):
    a CSV or NDJSON file with the declared types (the account key text, ``renewal_date`` a
    date ``YYYY-MM-DD``, ``outcome`` text, ``arr`` a number), never guessed, a value that
    cannot be read so refused by file, column, row and value; a Parquet or Arrow file as it
    is typed (the backtest checks its columns' types)."""
    p = Path(path)
    kind = _SUFFIXES.get(p.suffix.lower())
    if p.is_dir() or kind not in ("csv", "ndjson"):
        return scan_frame(p, "outcomes")
    if not p.exists():
        raise UsageError(f"outcomes file not found: {p}")
    if kind == "csv" and _blank(p):
        raise InputDataError([Issue(code=Code.EMPTY_FILE.value, location=Location(file=str(p)),
                                    message="the outcomes file is empty (not even a header)")])
    return _read_text(p, kind, {plan.account_key: "str", **OUTCOME_TYPES}, None, "outcomes")


def _read_text(p: Path, kind: str, types: dict[str, str], zone: str | None,
               what: str) -> pl.LazyFrame:
    """A CSV or NDJSON file read with ``types`` (every other CSV column text)."""
    where = Location(file=str(p))
    form = "CSV" if kind == "csv" else "NDJSON"
    try:
        if kind == "csv":
            lf = pl.scan_csv(p, infer_schema=False)
            names = lf.collect_schema().names()
            _check_header(names, types, where, what)
            lf = csv_rows(lf, p, len(names), what)
        elif _blank(p):  # no line, no column: no rows of the declared columns
            lf = pl.LazyFrame(schema=dict.fromkeys(types, pl.String))
        else:
            lf = _parsed(_scan_ndjson(p, types), types, zone, where, what)
            # (on the frame read, in memory when a column was parsed: not a second read)
            _check_ndjson_text(lf, p, [n for n, t in types.items() if t == "str"], what)
            return lf
        return _parsed(lf, types, zone, where, what)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputDataError([Issue(
            code=Code.FILE_UNREADABLE.value, location=where,
            message=f"{what}: not a readable {form} file ({exc})")]) from None


def _scan_ndjson(p: Path, types: dict[str, str]) -> pl.LazyFrame:
    """An NDJSON file, its declared columns read as text (a number as polars writes it back,
    the nearest double's shortest form, or an integer's digits), as a CSV file's are: the
    types polars gives a column would lose which row holds a value not of the declared type
    (a ``1.5`` among ints read as a float column, a ``true`` among floats failing the whole
    read, a number for a timestamp), which :func:`_parsed` then names by row and value.
    A file whose columns polars cannot type (an object in one row, a list in another) is
    read with its declared columns only: a declared column that is then null in every row
    may be missing from the file, and is refused as such."""
    try:
        schema = pl.scan_ndjson(p, infer_schema_length=None).collect_schema()
    except pl.exceptions.PolarsError as exc:
        lf = pl.scan_ndjson(p, schema=dict.fromkeys(types, pl.String()))
        empty = lf.select(pl.all().is_null().all()).collect(optimizations=OPTIMISED).row(
            0, named=True)
        if any(empty.values()):
            names = ", ".join(repr(n) for n, e in empty.items() if e)
            raise InputDataError([Issue(
                code=Code.FILE_UNREADABLE.value, location=Location(file=str(p)),
                message=f"not a readable NDJSON file ({exc}); read by its declared columns, "
                f"it has none or only nulls of {names}")]) from None
        return lf
    text = {n: pl.String() for n in types if n in schema
            and schema[n] not in (pl.String, pl.Null)}
    return pl.scan_ndjson(p, schema={**schema, **text}) if text else pl.scan_ndjson(p)


def _check_ndjson_text(lf: pl.LazyFrame, p: Path, names: list[str], what: str) -> None:
    """Refuse a list or an object in an NDJSON file's text column (a key, a user, an event
    name, a ``str`` attribute), by its line: read as text it would be the JSON it is written
    as, a key no account has. One pass over the text columns (a value that starts like a
    list or an object), then, only if one does, one over the file's lines, which tells a
    list from a string holding the same text. ``lf`` is the file as read, its text columns
    as text."""
    schema = lf.collect_schema()
    names = [n for n in names if schema.get(n) == pl.String and "'" not in n]
    if not names:
        return
    found = lf.select(pl.col(n).str.contains(r"^[\[{]").any() for n in names).collect(
        optimizations=OPTIMISED).row(0, named=True)
    names = [n for n in names if found[n]]
    if not names:
        return
    line = pl.col("t")
    issues = []
    for n in names:
        whole = line.str.json_path_match(f"$['{n}']")
        # a list's or an object's members ([*]); an empty one: written with [ or { after
        # its key
        bare = (line.str.json_path_match(f"$['{n}'][*]").is_not_null()
                | (whole.is_in(["[]", "{}"])
                   & line.str.contains(rf'"{re.escape(n)}"\s*:\s*[\[{{]')))
        hit = (pl.scan_lines(p, name="t").with_row_index("n", offset=1)
               .filter(bare).select("n", whole.alias("v")).head(1)
               .collect(optimizations=OPTIMISED))
        if hit.height:
            value = hit["v"][0]
            kind = "a list" if value.startswith("[") else "an object"
            issues.append(Issue(
                code=Code.WRONG_DTYPE.value,
                location=Location(file=str(p), line=int(hit["n"][0]), path=n),
                message=f"{what} file: column {n!r} is text (str), but line {hit['n'][0]} "
                f"holds {kind}, {value[:60]}",
                hint="write the value as a string, or leave the column out of that line"))
    if issues:
        raise InputDataError(issues)


_DUPLICATED = re.compile(r"^(.*)_duplicated_\d+$")


def _check_header(names: list[str], types: dict[str, str], where: Location,
                  what: str) -> None:
    """Refuse a CSV header that names a declared column twice (which of the two is meant?
    polars reads the first and renames the second), or that is one column holding another
    separator (a file separated by ``;`` or tabs: every declared column would be missing)."""
    twice = sorted({m.group(1) for n in names if (m := _DUPLICATED.match(n))
                    and m.group(1) in names and m.group(1) in types})
    issues = [Issue(code=Code.WRONG_DTYPE.value, location=Location(file=where.file, path=n),
                    message=f"{what} file: the header names column {n!r} more than once",
                    hint="rename or drop the other column") for n in twice]
    if len(names) == 1 and names[0] not in types:
        sep = next((c for c in (";", "\t", "|") if c in names[0]), None)
        if sep is not None:
            issues.append(Issue(
                code=Code.FILE_UNREADABLE.value, location=where,
                message=f"{what} file: its header is one column {names[0][:60]!r}: a CSV "
                f"file's columns are separated by commas, not {sep!r}",
                hint="write the file with commas between its columns"))
    if issues:
        raise InputDataError(issues)


def csv_rows(lf: pl.LazyFrame, p: Path, fields: int, what: str) -> pl.LazyFrame:
    """A CSV file's rows checked against its header: a record with fewer or more fields than
    the header names is refused by its line (polars reads the missing fields as nulls, and
    refuses extra ones without saying where), and a blank line is skipped, as it would
    otherwise be a row of nulls. The file's lines are read once more (vectorised, about
    0.15 s of CPU time per million lines; the lines holding quotes are counted again without
    their quoted fields, and only a file whose quoted fields hold line breaks has its lines
    put together into records)."""
    every = pl.scan_lines(p, name="t").with_row_index("n", offset=1)
    lines = every.filter(pl.col("n") > 1)
    text = pl.col("t")
    quotes = text.str.count_matches('"', literal=True)
    odd = lines.select(
        "n", (text.str.count_matches(",", literal=True) + 1).alias("got"),
        text.str.contains('"', literal=True).alias("q"),
        text.str.contains(r"^\s*$").alias("blank")).filter(
        pl.col("q") | pl.col("blank") | (pl.col("got") != fields)).collect(
        optimizations=OPTIMISED)
    if odd.is_empty():
        return lf
    # a quoted field's separators are not separators (``""`` inside one: two pieces)
    bare = text.str.replace_all(r'"[^"]*"', "")
    if odd["q"].any() and not lines.filter(quotes % 2 == 1).head(1).collect(
            optimizations=OPTIMISED).height:
        # quotes, but no quoted line break: a line is a record; only the lines holding
        # quotes are counted again, without their quoted fields
        again = lines.filter(text.str.contains('"', literal=True)).select(
            "n", (bare.str.count_matches(",", literal=True) + 1).alias("again")).collect(
            optimizations=OPTIMISED)
        odd = odd.join(again, on="n", how="left").with_columns(
            pl.coalesce("again", "got").alias("got"), (pl.col("n") - 2).alias("row")).filter(
            pl.col("blank") | (pl.col("got") != fields))
    elif odd["q"].any():
        # a line starts a record unless a quoted field left open by the lines before it
        # continues there (the quotes before it are odd in number)
        # (the header's record first: a quoted name may hold a line break too)
        starts = (quotes.cum_sum() - quotes) % 2 == 0
        records = every.with_columns(starts.cum_sum().alias("r")).group_by(
            "r", maintain_order=True).agg(pl.col("n").first(), text.str.join("\n")).filter(
            pl.col("r") > 1)
        odd = records.select(
            "n", (bare.str.count_matches(",", literal=True) + 1).alias("got"),
            text.str.contains(r"^\s*$").alias("blank"), (pl.col("r") - 2).alias("row")).filter(
            pl.col("blank") | (pl.col("got") != fields)).collect(optimizations=OPTIMISED)
    else:
        odd = odd.with_columns((pl.col("n") - 2).alias("row"))
    short = odd.filter(~pl.col("blank")).head(3)
    if short.height:
        n, got = short["n"][0], short["got"][0]
        more = (f" (and line {', '.join(map(str, short['n'][1:]))})" if short.height > 1
                else "")
        raise InputDataError([Issue(
            code=Code.FILE_UNREADABLE.value, location=Location(file=str(p), line=int(n)),
            message=f"{what} file: line {n} has {got} field(s), but the header names "
            f"{fields}{more}" + ("; its missing fields would be read as nulls" if got < fields
                                 else ""),
            hint="give every row one field per column of the header (an empty field is "
            "null: 1,,3)")])
    return lf.with_row_index("\0row").filter(~pl.col("\0row").is_in(
        odd["row"].implode())).drop("\0row")


def _blank(path: Path) -> bool:
    """Whether a file holds nothing but white space (read in pieces: it may be large)."""
    with path.open("rb") as f:
        while piece := f.read(1 << 16):
            if piece.strip():
                return False
    return True


def _zone(plan: Plan, side: Side | None, source: str | None) -> str | None:
    """The zone a file's timestamps are read in: its event source's, or the events'."""
    return (plan.sources[source].timezone if side == "events" and source is not None
            else plan.events.timezone)


def _in_zone(lf: pl.LazyFrame, plan: Plan | None, side: Side | None,
             source: str | None) -> pl.LazyFrame:
    """A typed file's zoned timestamps shown in the roadmap's zone (the same instants, as
    a CSV file's offsets, an Arrow table's and a database's are); naive ones are left to the
    data contract, which refuses them in a zoned roadmap."""
    if plan is None:
        return lf
    from healthrules.sources.base import to_zone

    return to_zone(lf, _zone(plan, side, source))


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
inputs: each of the events and the accounts comes from a file (.parquet, .arrow, .csv,
.ndjson) or a folder of Parquet files (--events PATH, --accounts PATH; hive folders such as
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
