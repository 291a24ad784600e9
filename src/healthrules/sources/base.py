"""What every source of frames is: a schema read without the data, and a lazy scan that
reads only the columns and the time range asked for.

A :class:`Source` stands for a table that lives outside polars (a DuckDB table or query, a
table of a database reached by URI). :meth:`Source.scan` returns a ``LazyFrame`` whose
read runs when the query is first collected, once, with the projection and the time
filter written into its SQL (:func:`healthrules.sources.sql.pushdown_sql`); the rows it
returns are held in memory for the other branches and collects of that frame. Every
SQL text a source runs is kept on it (:attr:`Source.queries`), with the rows it returned
(:attr:`Source.rows_read`), so a test or a log can show exactly what was asked of the
database.
"""

from __future__ import annotations

import abc
import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from healthrules.errors import Code, InputDataError, Issue, Location

__all__ = ["ReadRange", "Source", "SourceError", "conform", "in_zone", "lazy_scan",
           "optional_import", "range_filter", "to_zone"]

ReadRange = tuple[dt.datetime | None, dt.datetime]
"""The half-open time range ``[start, end)`` of the events to read (``start`` None: from
the beginning). Naive datetimes are wall times; aware ones are instants (see
:func:`healthrules.engine.read_range`)."""

Asked = tuple[Sequence[str] | None, str | None, ReadRange | None]
"""What one read asks (the ``columns``, ``time_column`` and ``read_range`` of
:meth:`Source.scan`), kept by its SQL text for a :meth:`Source._run` that applies them."""


_EPOCH = dt.datetime(1970, 1, 1)
_US = dt.timedelta(microseconds=1)


class SourceError(InputDataError):
    """A source could not be read (the database refused the query, the file is missing).

    An :class:`~healthrules.errors.InputDataError` (exit code 1 on the command line) with
    one issue located at the source (``<duckdb events.duckdb>``).
    """

    def __init__(self, message: str, where: str = "<source>", hint: str | None = None) -> None:
        super().__init__([Issue(code=Code.FILE_UNREADABLE.value, message=message, hint=hint,
                                location=Location(file=where))])


def optional_import(module: str, extra: str) -> Any:
    """Import an optional dependency, or raise an ImportError naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{module} is not installed: pip install 'healthrules[{extra}]'") from exc


@dataclass
class QueryRecord:
    """One read of a source: the SQL text that ran and how many rows it returned."""

    sql: str
    rows: int = 0


class Source(abc.ABC):
    """A table outside polars that healthrules reads with pushdown.

    Subclasses implement :meth:`schema` (the columns and their polars dtypes, without
    reading rows), :meth:`sql_for` (the SQL text of one read) and :meth:`_run` (run a
    text, yield polars frames).
    """

    name = "source"

    def __init__(self) -> None:
        self.log: list[QueryRecord] = []
        # what each SQL text of scan asks: a source that applies the projection or the
        # time range itself (an Arrow stream, SQLite) reads it in _run
        self._asked: dict[str, Asked] = {}

    # ------------------------------------------------------------------ what was run

    @property
    def queries(self) -> list[str]:
        """Every SQL text this source ran, oldest first."""
        return [r.sql for r in self.log]

    @property
    def last_query(self) -> str | None:
        """The SQL text of the last read (None before the first)."""
        return self.log[-1].sql if self.log else None

    @property
    def rows_read(self) -> int | None:
        """The rows the last read returned (None before the first)."""
        return self.log[-1].rows if self.log else None

    # ------------------------------------------------------------------ to implement

    def where(self) -> str:
        """Where the source is, for messages (no password)."""
        return f"<{self.name}>"

    @abc.abstractmethod
    def schema(self) -> pl.Schema:
        """The columns of the table and their polars dtypes (no row is read)."""

    @abc.abstractmethod
    def sql_for(self, columns: Sequence[str] | None, time_column: str | None,
                read_range: ReadRange | None) -> str:
        """The SQL text of a read of ``columns`` within ``read_range``."""

    @abc.abstractmethod
    def _run(self, sql: str, batch_size: int | None) -> Iterator[pl.DataFrame]:
        """Run ``sql``; yield its rows as polars frames."""

    # ------------------------------------------------------------------ the scan

    def scan(self, columns: Sequence[str] | None = None, time_column: str | None = None,
             read_range: ReadRange | None = None, *,
             time_zone: str | None = None) -> pl.LazyFrame:
        """A LazyFrame of the table: ``columns`` only, rows of ``read_range`` only (and the
        rows whose ``time_column`` is null, which the engine counts), both in the SQL.

        ``time_zone``: zoned timestamp columns (``TIMESTAMP WITH TIME ZONE``) are shown in
        this zone (the same instants; a database hands them over in its session's zone).
        Nothing is read until the frame is first collected; that collect runs the query,
        and the rows it returned serve every later collect of the frame.
        """
        schema = self.schema()
        if columns is not None:
            missing = [c for c in columns if c not in schema]
            if missing:
                raise SourceError(f"{self.name} has no column {', '.join(map(repr, missing))}",
                                  self.where())
        sql = self.sql_for(columns, time_column, read_range)
        self._asked[sql] = (columns, time_column, read_range)
        schema = in_zone(schema, time_zone)
        if columns is not None:
            schema = pl.Schema({c: schema[c] for c in columns})

        lock = threading.Lock()
        read: list[pl.DataFrame] = []

        def run(batch_size: int | None) -> Iterator[pl.DataFrame]:
            # one read per scan: every branch of a query (history's passes, the distinct
            # counts of low_memory) and every collect of it see the same rows
            with lock:
                if not read:
                    record = QueryRecord(sql)
                    self.log.append(record)
                    parts = [conform(f, schema) for f in self._run(sql, batch_size)]
                    frame = pl.concat(parts) if parts else schema.to_frame()
                    record.rows = frame.height
                    read.append(frame)
            yield read[0]

        return lazy_scan(run, schema, self.name, " ".join(sql.split()))


def in_zone(schema: pl.Schema, time_zone: str | None) -> pl.Schema:
    """``schema`` with its zoned datetime columns in ``time_zone`` (None: unchanged)."""
    if time_zone is None:
        return schema
    return pl.Schema({
        name: pl.Datetime(dtype.time_unit, time_zone)
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None else dtype
        for name, dtype in schema.items()})


def to_zone(lf: pl.LazyFrame, time_zone: str | None) -> pl.LazyFrame:
    """``lf`` with its zoned datetime columns shown in ``time_zone`` (:func:`in_zone`: the
    same instants; None: unchanged)."""
    schema = lf.collect_schema()
    moved = [pl.col(c).dt.convert_time_zone(d.time_zone)  # type: ignore[attr-defined]
             for c, d in in_zone(schema, time_zone).items() if d != schema[c]]
    return lf.with_columns(moved) if moved else lf


def conform(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """A batch brought to ``schema``: the same instants in another zone, or a cast."""
    if frame.schema == schema:
        return frame
    exprs: list[pl.Expr] = []
    for name, want in schema.items():
        got = frame.schema[name]
        c = pl.col(name)
        if (isinstance(want, pl.Datetime) and isinstance(got, pl.Datetime)
                and want.time_zone is not None and got.time_zone is not None):
            c = c.dt.convert_time_zone(want.time_zone).dt.cast_time_unit(want.time_unit)
        elif got != want:
            c = c.cast(want)
        exprs.append(c)
    return frame.select(exprs)


def lazy_scan(run: Callable[[int | None], Iterator[pl.DataFrame]], schema: pl.Schema,
              name: str, detail: str) -> pl.LazyFrame:
    """A LazyFrame over batches that ``run`` yields (a polars IO source).

    polars may push a projection, a predicate and a row limit into the scan; they are
    applied here to each batch, in polars (vectorised), on top of what the SQL did.
    """
    from polars.io.plugins import register_io_source

    def source(with_columns: list[str] | None, predicate: pl.Expr | None,
               n_rows: int | None, batch_size: int | None) -> Iterator[pl.DataFrame]:
        left = n_rows
        for batch in run(batch_size):
            frame = batch
            if predicate is not None:
                frame = frame.filter(predicate)
            if with_columns is not None:
                frame = frame.select(with_columns)
            if left is not None:
                frame = frame.head(left)
                left -= frame.height
            yield frame
            if left is not None and left <= 0:
                return

    return register_io_source(source, schema=schema, explain_name=name,
                              explain_detail=detail[:2000])


def _micros(value: dt.datetime, zoned: bool) -> int:
    """Microseconds since the epoch: of the instant (a zoned column), or of the wall time
    read as UTC (a naive or date column, as ``dt.epoch`` reads it)."""
    if zoned:
        if value.tzinfo is None:
            raise ValueError(f"the read range is naive ({value}) but the column is zoned")
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    else:
        value = value.replace(tzinfo=None)
    return (value - _EPOCH) // _US


def range_filter(column: str, dtype: pl.DataType, read_range: ReadRange) -> pl.Expr:
    """The rows of ``read_range`` (and the null times): ``start <= time < end``."""
    col = pl.col(column)
    zoned = isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    at = (col.cast(pl.Datetime("us")) if isinstance(dtype, pl.Date) else col).dt.epoch("us")
    start, end = read_range
    keep = at < _micros(end, zoned)
    if start is not None:
        keep = keep & (at >= _micros(start, zoned))
    return keep | col.is_null()
