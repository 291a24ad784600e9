"""Read event and account frames named on the command line (Parquet, CSV, NDJSON, folders)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import polars as pl

from healthrules.cli._exit import UsageError
from healthrules.errors import Code, InputDataError, Issue, Location

if TYPE_CHECKING:
    from healthrules.compiler import Plan

__all__ = ["contract_types", "scan_frame"]

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
