"""Tables of any database polars reads by URI (PostgreSQL, MySQL, SQLite, Snowflake,
BigQuery ... through connectorx or ADBC), and the SQL text of a read with pushdown.

:func:`pushdown_sql` writes the projection and the time filter into the query itself, so
the database sends only the rows and columns a roadmap reads. :class:`SQLSource` runs it
with :func:`polars.read_database_uri`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import polars as pl

from healthrules.sources.base import (
    ReadRange,
    Source,
    SourceError,
    optional_import,
    range_filter,
)

__all__ = ["ANSI", "DIALECTS", "Dialect", "SQLSource", "dialect_of", "pushdown_sql", "quote",
           "timestamp_literal"]

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$")


@dataclass(frozen=True)
class Dialect:
    """How a database spells what a pushed-down read needs.

    Parameters
    ----------
    quote
        The identifier quote: ``"`` (ANSI) or a backtick (MySQL, BigQuery).
    naive
        The type of a timestamp without time zone (``TIMESTAMP``, ``DATETIME(6)`` ...).
    zoned
        The type of an instant (``TIMESTAMP WITH TIME ZONE`` ...), written with its UTC
        offset; None: the database has none, the instant is written as UTC wall time.
    range_in_sql
        Whether the time range is written into the SQL. False for a database that cannot
        compare its timestamps with a literal exactly (SQLite keeps them as text, numbers
        or anything else, and ``CAST('2026-06-01 ...' AS TIMESTAMP)`` is the number 2026
        there): the read then sends the declared columns of every row, and the time range
        is applied in polars to the rows as they arrive.
    schema_from_rows
        Whether a column's type is known only from its values (SQLite: a computed column of
        a query has no declared type, and a read of no row says text). The schema is then
        read from the first row, where a read of no row says text.
    """

    quote: str = '"'
    naive: str = "TIMESTAMP"
    zoned: str | None = "TIMESTAMP WITH TIME ZONE"
    range_in_sql: bool = True
    schema_from_rows: bool = False

    def name(self, name: str) -> str:
        """An identifier, quoted (inner quotes doubled)."""
        q = self.quote
        return q + name.replace(q, q + q) + q


ANSI = Dialect()
"""PostgreSQL, DuckDB, Redshift and every database that follows the SQL standard here."""

DIALECTS: dict[str, Dialect] = {
    "postgresql": ANSI, "postgres": ANSI, "redshift": ANSI, "duckdb": ANSI,
    "mysql": Dialect("`", "DATETIME(6)", None), "mariadb": Dialect("`", "DATETIME(6)", None),
    "bigquery": Dialect("`", "DATETIME", "TIMESTAMP"),
    "mssql": Dialect('"', "DATETIME2", "DATETIMEOFFSET"),
    "snowflake": Dialect('"', "TIMESTAMP_NTZ", "TIMESTAMP_TZ"),
    "sqlite": Dialect('"', "TIMESTAMP", None, range_in_sql=False, schema_from_rows=True),
}
"""The dialect of a URI scheme (``postgresql://`` ...); other schemes read as :data:`ANSI`.
Tested against PostgreSQL, DuckDB and SQLite; the others follow their SQL reference."""


def dialect_of(uri: str) -> Dialect:
    """The dialect of a database URI, by its scheme (``postgresql+psycopg`` -> ``postgresql``)."""
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower()
    return DIALECTS.get(scheme, ANSI)


def quote(name: str, dialect: Dialect = ANSI) -> str:
    """A column name as a quoted SQL identifier (``"name"``, inner quotes doubled)."""
    return dialect.name(name)


def table_name(name: str, dialect: Dialect = ANSI) -> str:
    """A table name, optionally qualified (``schema.table``), each part quoted.

    Raises
    ------
    ValueError
        If ``name`` is not a plain (optionally dotted) identifier.
    """
    if not _TABLE.match(name):
        raise ValueError(f"{name!r} is not a table name (letters, digits, _ and dots); "
                         "pass a query instead")
    return ".".join(quote(part, dialect) for part in name.split("."))


def timestamp_literal(value: dt.datetime, dtype: pl.DataType, dialect: Dialect = ANSI) -> str:
    """``value`` as a SQL literal comparable with a column of ``dtype``.

    A ``Date`` or naive ``Datetime`` column compares with the wall time (an aware value
    keeps its wall clock, the events' zone); a zoned column with the instant, written with
    its UTC offset.
    """
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        if value.tzinfo is None:
            raise ValueError(f"the read range is naive ({value}) but the column is in time zone "
                             f"{dtype.time_zone}")
        utc = value.astimezone(dt.UTC)
        if dialect.zoned is None:
            return f"CAST('{utc:%Y-%m-%d %H:%M:%S.%f}' AS {dialect.naive})"
        return f"CAST('{utc:%Y-%m-%d %H:%M:%S.%f}+00:00' AS {dialect.zoned})"
    text = value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"CAST('{text}' AS {dialect.naive})"


def pushdown_sql(base: str, schema: pl.Schema, columns: Sequence[str] | None,
                 time_column: str | None, read_range: ReadRange | None, *,
                 alias: str = "healthrules_source", dialect: Dialect = ANSI) -> str:
    """``SELECT <columns> FROM (<base>) AS <alias> WHERE <time range> OR <time> IS NULL``.

    ``base`` is a table reference (quoted) or a parenthesised query. Rows whose time is null
    are kept: the engine counts them (``diagnostics["events_null_timestamp"]``). A dialect
    without ``range_in_sql`` gets no ``WHERE``, and the time column among the columns.
    """
    if not dialect.range_in_sql and read_range is not None and time_column is not None:
        # the range is applied in polars (SQLSource._run): the time column is read for it
        if columns is not None and time_column not in columns:
            columns = [*columns, time_column]
        read_range = None
    cols = ", ".join(quote(c, dialect) for c in columns) if columns is not None else "*"
    sql = f"SELECT {cols} FROM {base} AS {quote(alias, dialect)}"
    if read_range is not None and time_column is not None:
        start, end = read_range
        t = quote(time_column, dialect)
        dtype = schema[time_column]
        keep = f"{t} < {timestamp_literal(end, dtype, dialect)}"
        if start is not None:
            keep = f"{t} >= {timestamp_literal(start, dtype, dialect)} AND {keep}"
        sql += f" WHERE ({keep}) OR {t} IS NULL"
    return sql


def base_of(table: str | None, query: str | None, dialect: Dialect = ANSI) -> str:
    """The FROM item of a table name or a query (exactly one of them)."""
    if (table is None) == (query is None):
        raise ValueError("give exactly one of table= and query=")
    if table is not None:
        return table_name(table, dialect)
    assert query is not None
    text = query.strip().rstrip(";").strip()
    if not text:
        raise ValueError("the query is empty")
    return f"({text})"


Engine = Literal["connectorx", "adbc"]

# a driver's words for a server it could not reach (connectorx, ADBC, libpq, MySQL)
_NO_CONNECTION = re.compile(
    r"error connecting|could not connect|connection refused|timed out waiting for connection"
    r"|failed to lookup address|name or service not known|could not translate host name"
    r"|unable to open database file", re.IGNORECASE)


def sqlite_file_missing(uri: str) -> str | None:
    """The file of a ``sqlite://`` URI when it does not exist (None: it does, or the URI
    names no file: another database, ``:memory:``). ``sqlite:///abs.db`` names ``/abs.db``,
    ``sqlite://rel.db`` a file relative to the current folder."""
    import os
    from urllib.parse import unquote

    scheme, _, rest = uri.partition("://")
    if scheme.split("+", 1)[0].lower() != "sqlite":
        return None
    path = rest.split("?", 1)[0]
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    if os.path.exists(path) or os.path.exists(unquote(path)):
        return None
    return unquote(path)


class SQLSource(Source):
    """A table or a query of a database reached by URI, read with pushdown.

    Parameters
    ----------
    uri
        A connection URI (``postgresql://user:pass@host:5432/db``, ``sqlite:///file.db``,
        ``snowflake://...``): what :func:`polars.read_database_uri` takes.
    table, query
        Exactly one: a table name (``events`` or ``analytics.events``) or a ``SELECT``.
    engine
        ``"connectorx"`` (the default) or ``"adbc"`` (needs the ADBC driver of the
        database, e.g. ``adbc-driver-postgresql``).
    dialect
        How the database spells identifiers and timestamps; by default the one of the URI's
        scheme (:data:`DIALECTS`), else :data:`ANSI`.

    Examples
    --------
    >>> from healthrules.sources import SQLSource
    >>> src = SQLSource("postgresql://hr@127.0.0.1:5432/crm", table="events")
    >>> src.name
    'sql'
    """

    name = "sql"

    def __init__(self, uri: str, *, table: str | None = None, query: str | None = None,
                 engine: Engine = "connectorx", dialect: Dialect | None = None) -> None:
        super().__init__()
        if engine not in ("connectorx", "adbc"):
            raise ValueError(f"engine must be 'connectorx' or 'adbc', got {engine!r}")
        if "://" not in uri:
            raise ValueError(f"{uri!r} is not a database URI (scheme://...)")
        self.uri = uri
        self.engine: Engine = engine
        self.dialect = dialect if dialect is not None else dialect_of(uri)
        self.base = base_of(table, query, self.dialect)
        self._schema: pl.Schema | None = None

    def where(self) -> str:
        """The URI without its password, for messages."""
        return re.sub(r"//([^:@/]*):[^@/]*@", r"//\1:***@", self.uri)

    def __repr__(self) -> str:
        return f"SQLSource({self.where()!r}, {self.base!r}, engine={self.engine!r})"

    def _read(self, sql: str) -> pl.DataFrame:
        optional_import("connectorx" if self.engine == "connectorx" else "adbc_driver_manager",
                        "sql")
        missing = sqlite_file_missing(self.uri)
        if missing is not None:  # the driver would create an empty database there
            raise SourceError(f"SQLite database file not found: {missing}", self.where(),
                              hint="sqlite:///absolute/path.db or sqlite://relative/path.db")
        try:
            return pl.read_database_uri(sql, self.uri, engine=self.engine)
        except Exception as exc:  # the driver's own error types: say which query failed
            said = self._masked(f"{type(exc).__name__}: {str(exc).strip()}")
            if _NO_CONNECTION.search(said):
                raise SourceError(f"could not connect to the database ({said})", self.where(),
                                  hint="check the host, port, database name and user of "
                                  "the URI, and that the server is running") from exc
            raise SourceError(f"the database refused the query ({said})", self.where(),
                              hint=f"the query was: {sql}") from exc

    def _masked(self, text: str) -> str:
        """``text`` without the URI's password (a driver's message may quote the URI)."""
        m = re.search(r"//[^:@/]*:([^@/]+)@", self.uri)
        return text.replace(m.group(1), "***") if m else text

    def schema(self) -> pl.Schema:
        """The columns of the table or query, from a query that returns no row."""
        if self._schema is None:
            alias = quote("healthrules_source", self.dialect)
            schema = self._read(f"SELECT * FROM {self.base} AS {alias} WHERE 1 = 0").schema
            if self.dialect.schema_from_rows and pl.String() in schema.values():
                first = self._read(f"SELECT * FROM {self.base} AS {alias} LIMIT 1")
                schema = pl.Schema({name: first.schema[name] if dtype == pl.String()
                                    and first.height else dtype
                                    for name, dtype in schema.items()})
            self._schema = schema
        return self._schema

    def sql_for(self, columns: Sequence[str] | None, time_column: str | None,
                read_range: ReadRange | None) -> str:
        return pushdown_sql(self.base, self.schema(), columns, time_column, read_range,
                            dialect=self.dialect)

    def _run(self, sql: str, batch_size: int | None) -> Iterator[pl.DataFrame]:
        frame = self._read(sql)
        columns, time_column, read_range = self._asked.get(sql, (None, None, None))
        if not self.dialect.range_in_sql and time_column is not None \
                and read_range is not None \
                and isinstance(frame.schema[time_column], (pl.Datetime, pl.Date)):
            # the database compares no timestamps: the range is applied here, exactly
            frame = frame.filter(range_filter(time_column, frame.schema[time_column],
                                              read_range))
            if columns is not None:
                frame = frame.select(columns)
        yield frame

