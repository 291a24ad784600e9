"""Turn an events or accounts input into a polars LazyFrame, pushing the columns and the
time range a roadmap reads into the source when the source can take them.

:func:`resolve` is the one place an input object becomes a ``LazyFrame``. It takes

- a polars ``DataFrame`` or ``LazyFrame`` (returned lazily as it is: the engine's own
  ``select`` and ``filter`` reach polars' scans, ``pl.scan_parquet`` included);
- a :class:`~healthrules.sources.Source` (:class:`~healthrules.sources.DuckDBSource`,
  :class:`~healthrules.sources.SQLSource`): the projection and the time filter are written
  into its SQL;
- a DuckDB relation (read as a ``DuckDBSource``);
- an Arrow table or record batch, or a pandas frame: taken into polars (zero-copy where Arrow
  allows);
- any other object with ``__arrow_c_stream__`` (the Arrow PyCapsule interface: a
  ``RecordBatchReader``, an ADBC or Flight result, nanoarrow ...): read once, batch by batch,
  each batch cut to the columns and the time range asked for
  (:class:`~healthrules.sources.arrow.ArrowStreamSource`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any, Protocol, TypeAlias

import polars as pl

from healthrules.sources.base import ReadRange, Source, in_zone

__all__ = ["ArrowStream", "FrameInput", "is_input", "resolve", "schema_of", "source_of"]


class ArrowStream(Protocol):
    """An object of the Arrow PyCapsule stream interface (pyarrow, nanoarrow, DuckDB ...)."""

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """Export the data as an ``ArrowArrayStream`` PyCapsule."""


FrameInput: TypeAlias = pl.DataFrame | pl.LazyFrame | Source | ArrowStream
"""What ``evaluate``, ``history`` and the daily run take as events or accounts."""


def is_input(obj: Any) -> bool:
    """Whether :func:`resolve` takes ``obj``."""
    from healthrules.sources.duckdb import is_relation

    return (isinstance(obj, (pl.DataFrame, pl.LazyFrame, Source)) or is_relation(obj)
            or hasattr(obj, "__arrow_c_stream__") or hasattr(obj, "__arrow_c_array__"))


def source_of(obj: Any, what: str = "input") -> Source | pl.LazyFrame:
    """``obj`` as a :class:`Source` (to read with pushdown) or as a LazyFrame.

    Call it once per input and pass the result on: an Arrow stream can be read only once.

    Raises
    ------
    TypeError
        If ``obj`` is none of the inputs :func:`resolve` takes.
    """
    from healthrules.sources.duckdb import DuckDBSource, is_relation

    if isinstance(obj, Source):
        return obj
    if isinstance(obj, pl.LazyFrame):
        return obj
    if isinstance(obj, pl.DataFrame):
        return obj.lazy()
    if is_relation(obj):
        return DuckDBSource(relation=obj)
    if hasattr(obj, "__arrow_c_stream__") or hasattr(obj, "__arrow_c_array__"):
        from healthrules.sources.arrow import (
            ArrowStreamSource,
            ArrowTableSource,
            in_memory,
            zoned,
        )

        if in_memory(obj) or importlib.util.find_spec("pyarrow") is None:
            frame = pl.DataFrame(obj)  # zero-copy where Arrow allows
            # zoned timestamps shown in the roadmap's zone, as a stream's are
            return ArrowTableSource(frame) if zoned(frame.schema) else frame.lazy()
        return ArrowStreamSource(obj)
    raise TypeError(
        f"{what} must be a polars DataFrame or LazyFrame, a DuckDB relation, an Arrow table "
        f"or stream (__arrow_c_stream__), or a healthrules.sources.Source; got "
        f"{type(obj).__name__}")


def resolve(obj: Any, columns: Sequence[str] | None = None, time_column: str | None = None,
            read_range: ReadRange | None = None, *, time_zone: str | None = None,
            what: str = "input") -> pl.LazyFrame:
    """The LazyFrame of an input, reading only ``columns`` and the rows of ``read_range``.

    Parameters
    ----------
    obj
        A polars frame, a :class:`Source`, a DuckDB relation or an Arrow object (see the
        module's docstring), or what :func:`source_of` returned for one.
    columns
        The columns to read (None: every column).
    time_column
        The column ``read_range`` applies to.
    read_range
        ``(start, end)``: read the rows with ``start <= time < end`` (``start`` None: no
        lower bound), and the rows whose time is null. A source writes this into its SQL; a
        polars frame is returned unfiltered (the engine's own filter reaches polars' scans).
    time_zone
        A source's zoned timestamp columns are shown in this zone (the same instants: a
        database hands them over in its session's zone). A polars frame is left as it is.

    Returns
    -------
    polars.LazyFrame

    Examples
    --------
    >>> import polars as pl
    >>> from healthrules.sources import resolve
    >>> resolve(pl.DataFrame({"a": [1]})).collect().rows()
    [(1,)]
    """
    src = source_of(obj, what)
    if isinstance(src, pl.LazyFrame):
        return src.select(columns) if columns is not None else src
    return src.scan(columns, time_column, read_range, time_zone=time_zone)


def schema_of(src: Source | pl.LazyFrame, time_zone: str | None = None) -> pl.Schema:
    """The schema of what :func:`source_of` returned (no row is read), with a source's
    zoned datetime columns in ``time_zone`` as :func:`resolve` reads them."""
    if isinstance(src, pl.LazyFrame):
        return src.collect_schema()
    return in_zone(src.schema(), time_zone)
