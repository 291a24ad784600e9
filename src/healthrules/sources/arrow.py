"""Arrow streams as a source: batches read one at a time, each cut down to the columns and
the time range asked for before it is kept, so a stream larger than memory can be evaluated
when its read range fits.

Any object of the Arrow PyCapsule stream interface (``__arrow_c_stream__``) that is not
already a table in memory: a ``pyarrow.RecordBatchReader``, an ADBC or Flight result, a
nanoarrow stream ... Reading one needs pyarrow (``pip install pyarrow``); without it the
stream is taken into polars whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import polars as pl

from healthrules.sources.base import (
    ReadRange,
    Source,
    SourceError,
    optional_import,
    range_filter,
    to_zone,
)
from healthrules.sources.sql import pushdown_sql

__all__ = ["ArrowStreamSource", "ArrowTableSource", "in_memory", "range_filter"]


def in_memory(obj: Any) -> bool:
    """Whether an Arrow object is data already in memory (a table, a batch, a pandas frame),
    which polars takes without a copy, rather than a stream to read."""
    cls = type(obj)
    module = cls.__module__.split(".")[0]
    return (hasattr(obj, "__arrow_c_array__") or module == "pandas"
            or (module == "pyarrow" and cls.__name__ in ("Table", "RecordBatch")))


def zoned(schema: pl.Schema) -> bool:
    """Whether a schema has a datetime column with a time zone."""
    return any(isinstance(d, pl.Datetime) and d.time_zone is not None for d in schema.values())


class ArrowTableSource(Source):
    """Arrow data already in memory (a table, a record batch, a pandas frame) whose
    datetime columns carry a time zone: taken into polars without a copy, like a frame, and
    its zoned columns shown in the zone asked for, as a stream's and a database's are (the
    same instants; converting a zone changes no stored value). The time range is left to
    the engine's own filter, as for a polars frame; the table can be read any number of
    times.
    """

    name = "arrow table"

    def __init__(self, obj: Any) -> None:
        super().__init__()
        self.frame = obj if isinstance(obj, pl.DataFrame) else pl.DataFrame(obj)

    def where(self) -> str:
        return "<arrow table>"

    def schema(self) -> pl.Schema:
        return self.frame.schema

    def sql_for(self, columns: Sequence[str] | None, time_column: str | None,
                read_range: ReadRange | None) -> str:
        """What a read asks of the table, in the words of SQL (no database runs it)."""
        return pushdown_sql("arrow_table", self.frame.schema, columns, time_column, read_range)

    def _run(self, sql: str, batch_size: int | None) -> Iterator[pl.DataFrame]:
        yield self.frame  # (scan reads the frame itself)

    def scan(self, columns: Sequence[str] | None = None, time_column: str | None = None,
             read_range: ReadRange | None = None, *,
             time_zone: str | None = None) -> pl.LazyFrame:
        schema = self.frame.schema
        if columns is not None:
            missing = [c for c in columns if c not in schema]
            if missing:
                raise SourceError(f"{self.name} has no column {', '.join(map(repr, missing))}",
                                  self.where())
        lf = self.frame.lazy()
        return to_zone(lf if columns is None else lf.select(columns), time_zone)


class ArrowStreamSource(Source):
    """An Arrow stream, read once, batch by batch, with the projection and the time range
    applied to each batch as it arrives.

    Parameters
    ----------
    stream
        An object with ``__arrow_c_stream__``.

    Examples
    --------
    >>> import datetime as dt, pyarrow as pa
    >>> from healthrules.sources import resolve
    >>> from healthrules.sources.arrow import ArrowStreamSource
    >>> t = pa.table({"a": [1, 2], "ts": [dt.datetime(2026, 6, 1), dt.datetime(2026, 7, 1)]})
    >>> src = ArrowStreamSource(t.to_reader())
    >>> resolve(src, ["a"], "ts", (None, dt.datetime(2026, 6, 30))).collect().rows()
    [(1,)]
    """

    name = "arrow"

    def __init__(self, stream: Any) -> None:
        super().__init__()
        pa = optional_import("pyarrow", "duckdb")
        try:
            self.reader = pa.RecordBatchReader.from_stream(stream)
        except Exception as exc:  # pyarrow's own errors: an exported or closed stream
            raise SourceError(f"cannot read the Arrow stream: {exc}", "<arrow stream>") from exc
        self._schema: pl.Schema = pl.DataFrame(self.reader.schema.empty_table()).schema
        self._consumed = False

    def where(self) -> str:
        return "<arrow stream>"

    def schema(self) -> pl.Schema:
        return self._schema

    def sql_for(self, columns: Sequence[str] | None, time_column: str | None,
                read_range: ReadRange | None) -> str:
        """What a read asks of the stream, in the words of SQL (no database runs it)."""
        return pushdown_sql("arrow_stream", self._schema, columns, time_column, read_range)

    def _run(self, sql: str, batch_size: int | None) -> Iterator[pl.DataFrame]:
        if self._consumed:
            raise SourceError("an Arrow stream can be read only once; pass a table, or a new "
                              "stream, to read it again", self.where())
        self._consumed = True
        columns, time_column, read_range = self._asked[sql]
        keep = (range_filter(time_column, self._schema[time_column], read_range)
                if time_column is not None and read_range is not None else None)
        read = list(columns) if columns is not None else None
        if read is not None and time_column is not None and keep is not None \
                and time_column not in read:
            read.append(time_column)  # filtered on, then dropped
        for batch in self.reader:
            frame = pl.DataFrame(batch.select(read) if read is not None else batch)
            if keep is not None:
                frame = frame.filter(keep)
            yield frame.select(columns) if columns is not None else frame
