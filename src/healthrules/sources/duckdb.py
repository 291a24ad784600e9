"""DuckDB as a source: a table or a query of a DuckDB database file or connection, or a
DuckDB relation, read with the projection and the time range in its SQL.

DuckDB is imported only when a DuckDB source is read (``pip install 'healthrules[duckdb]'``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from healthrules.sources.base import ReadRange, Source, SourceError, optional_import
from healthrules.sources.sql import base_of, pushdown_sql, quote

__all__ = ["DuckDBSource", "is_relation"]

_VIEW = "healthrules_source"
_RELATION = "healthrules_relation"  # the name a relation goes by in the query over it


def is_relation(obj: Any) -> bool:
    """Whether ``obj`` is a DuckDB relation (without importing DuckDB)."""
    cls = type(obj)
    return cls.__module__.split(".")[0] in ("duckdb", "_duckdb") and \
        cls.__name__ == "DuckDBPyRelation"


class DuckDBSource(Source):
    """A DuckDB table, query or relation, read with pushdown.

    Parameters
    ----------
    database
        A DuckDB database file (opened read-only), an open ``duckdb`` connection, or None
        with ``relation``.
    table, query
        With ``database``, exactly one: a table (or view) name, or a ``SELECT``.
    relation
        A DuckDB relation (``con.sql(...)``, ``con.table(...)``, ``duckdb.read_parquet(...)``)
        instead of a database: the pushdown is written as a query over it.

    Examples
    --------
    >>> import duckdb, datetime as dt
    >>> from healthrules.sources import DuckDBSource
    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE events AS SELECT 'a' AS account_id, "
    ...                 "TIMESTAMP '2026-06-30 09:00' AS timestamp")
    >>> src = DuckDBSource(con, table="events")
    >>> src.scan(["account_id"], "timestamp",
    ...          (dt.datetime(2026, 6, 1), dt.datetime(2026, 7, 1))).collect().rows()
    [('a',)]
    >>> print(src.last_query)  # doctest: +NORMALIZE_WHITESPACE
    SELECT "account_id" FROM "events" AS "healthrules_source"
    WHERE ("timestamp" >= CAST('2026-06-01 00:00:00.000000' AS TIMESTAMP)
    AND "timestamp" < CAST('2026-07-01 00:00:00.000000' AS TIMESTAMP)) OR "timestamp" IS NULL
    """

    name = "duckdb"

    def __init__(self, database: str | Path | Any = None, *, table: str | None = None,
                 query: str | None = None, relation: Any = None) -> None:
        super().__init__()
        self.relation = relation
        self.database = database
        self._connection: Any = None
        self._schema: pl.Schema | None = None
        if relation is not None:
            if database is not None or table is not None or query is not None:
                raise ValueError("give a relation alone, or a database with table= or query=")
            if not is_relation(relation):
                raise TypeError(f"relation must be a DuckDB relation, got "
                                f"{type(relation).__name__}")
            self.base = quote(_RELATION)
        else:
            if database is None:
                raise ValueError("give a database (file or connection) or a relation")
            if isinstance(database, (str, Path)) and not Path(database).exists():
                raise SourceError(f"DuckDB database file not found: {database}", str(database))
            self.base = base_of(table, query)

    def __repr__(self) -> str:
        what = "relation" if self.relation is not None else repr(self.database)
        return f"DuckDBSource({what}, {self.base!r})"

    def where(self) -> str:
        """Where the source is, for messages: the file, or what else it reads."""
        if isinstance(self.database, (str, Path)):
            return str(self.database)
        return "<duckdb relation>" if self.relation is not None else "<duckdb connection>"

    def connection(self) -> Any:
        """The DuckDB connection (a database file is opened read-only, once)."""
        if self._connection is None:
            duckdb = optional_import("duckdb", "duckdb")
            if isinstance(self.database, (str, Path)):
                try:
                    self._connection = duckdb.connect(str(self.database), read_only=True)
                except duckdb.Error as exc:
                    raise SourceError(f"cannot open DuckDB database {self.database}: "
                                      f"{exc}", str(self.database)) from exc
            else:
                self._connection = self.database
        return self._connection

    def close(self) -> None:
        """Close the connection this source opened on a database file (a connection or a
        relation handed in stays open: it is the caller's)."""
        if self._connection is not None and isinstance(self.database, (str, Path)):
            self._connection.close()
        self._connection = None

    def __enter__(self) -> DuckDBSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _relation(self, sql: str) -> Any:
        """The relation of ``sql`` (a query over the base)."""
        duckdb = optional_import("duckdb", "duckdb")
        try:
            if self.relation is not None:
                return self.relation.query(_RELATION, sql)
            return self.connection().cursor().sql(sql)
        except duckdb.Error as exc:
            raise SourceError(f"DuckDB refused the query: {exc}", self.where(),
                              hint=f"the query was: {sql}") from exc

    def schema(self) -> pl.Schema:
        """The columns of the table, query or relation (a query that returns no row)."""
        if self._schema is None:
            rel = self._relation(f"SELECT * FROM {self.base} AS {quote(_VIEW + '_')} LIMIT 0")
            self._schema = pl.DataFrame(rel.to_arrow_table()).schema
        return self._schema

    def sql_for(self, columns: Sequence[str] | None, time_column: str | None,
                read_range: ReadRange | None) -> str:
        return pushdown_sql(self.base, self.schema(), columns, time_column, read_range)

    def explain(self, columns: Sequence[str] | None = None, time_column: str | None = None,
                read_range: ReadRange | None = None) -> str:
        """DuckDB's plan of the read of ``columns`` within ``read_range`` (``EXPLAIN``):
        the filter and the projection show up in the table scan."""
        rel = self._relation(self.sql_for(columns, time_column, read_range))
        text: str = rel.explain()
        return text

    def _run(self, sql: str, batch_size: int | None) -> Iterator[pl.DataFrame]:
        duckdb = optional_import("duckdb", "duckdb")
        rel = self._relation(sql)
        try:
            reader = rel.to_arrow_reader(batch_size or 1_000_000)
            try:
                for batch in reader:
                    yield pl.DataFrame(batch)
            finally:
                reader.close()
        except duckdb.Error as exc:  # a failure while reading (a bad cast, out of memory)
            raise SourceError(f"DuckDB failed reading the query: {exc}", self.where(),
                              hint=f"the query was: {sql}") from exc
