"""Where event and account frames come from: polars frames, DuckDB, Arrow, databases by URI.

:func:`resolve` turns an input into a polars ``LazyFrame``, with the columns and the time
range a roadmap reads pushed into the source's SQL (see ``docs/sources.md``):

>>> import polars as pl
>>> from healthrules.sources import resolve
>>> resolve(pl.DataFrame({"a": [1], "b": [2]}), ["a"]).collect().columns
['a']
"""

from __future__ import annotations

from healthrules.sources.arrow import ArrowStreamSource
from healthrules.sources.base import ReadRange, Source, SourceError
from healthrules.sources.duckdb import DuckDBSource
from healthrules.sources.resolve import (
    ArrowStream,
    FrameInput,
    is_input,
    resolve,
    schema_of,
    source_of,
)
from healthrules.sources.sql import Dialect, SQLSource, pushdown_sql

__all__ = [
    "ArrowStream",
    "ArrowStreamSource",
    "Dialect",
    "DuckDBSource",
    "FrameInput",
    "ReadRange",
    "SQLSource",
    "Source",
    "SourceError",
    "is_input",
    "pushdown_sql",
    "resolve",
    "schema_of",
    "source_of",
]
