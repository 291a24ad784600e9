"""Read event and account frames named on the command line (Parquet, CSV, NDJSON, folders)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from healthrules.cli._exit import UsageError
from healthrules.errors import Code, InputDataError, Issue, Location

__all__ = ["scan_frame"]

_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".ndjson": "ndjson",
             ".jsonl": "ndjson"}


def scan_frame(path: str | Path, what: str) -> pl.LazyFrame:
    """Scan a file or a folder lazily; a folder is read as a (hive-partitioned) Parquet dataset.

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
