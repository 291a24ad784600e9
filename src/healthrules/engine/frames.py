"""Column names, dtypes and small frame helpers shared by the engine's stages."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from healthrules.expressions import Type
from healthrules.polars_expr import typed_lit
from healthrules.query_flags import NO_OPTIMISATION, OPTIMISED

__all__ = [
    "AS_OF",
    "END",
    "END_NAIVE",
    "EVIDENCE_DTYPE",
    "FAMILIES",
    "PRIORITY_RANK",
    "ROUTE",
    "SMALL_ROWS",
    "SPECIAL_COLUMNS",
    "TASK_DTYPE",
    "ColumnTake",
    "cast_to",
    "collect_all",
    "collect_rows",
    "column_take",
    "empty_actions",
    "filter_reading",
    "lazy_reading",
    "narrow",
    "read_names",
    "row_positions",
    "take_columns",
    "typed_lit",
]

FAMILIES = ("process", "relationship", "outcome")
PRIORITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}

AS_OF = "__as_of"
"""Column of the evaluation date (Date) of each row: ``as_of`` is bound late, as a column."""
END = "__end"
"""Column of the evaluation instant of each row, in the events' timestamp dtype."""
END_NAIVE = "__end_naive"
"""The same instant as a naive wall-clock datetime (shifts are taken on the wall clock)."""
ROUTE = "__route"
"""Column of the index of the roadmap (track) an account is routed to."""

SPECIAL_COLUMNS = {"score": "__score", "score_band": "__score_band", "stage": "__stage",
                   "stage_achieved": "__achieved", "goal_reached": "__goal_reached"}
"""Where the reserved names of the actions scope live in a roadmap frame."""

EVIDENCE_DTYPE = pl.List(pl.Struct({
    "name": pl.String, "value": pl.String, "band": pl.String, "op": pl.String,
    "threshold": pl.String,
}))
TASK_DTYPE = pl.List(pl.Struct({"list": pl.String, "text": pl.String, "done": pl.Boolean}))

_POLARS_TYPES: dict[str, pl.DataType] = {
    "int": pl.Int64(), "float": pl.Float64(), "bool": pl.Boolean(), "str": pl.String(),
    "date": pl.Date(),
}


SMALL_ROWS = 50_000
"""Up to this many rows, per-row queries run on polars' in-memory engine without query
optimisation: for a service evaluating a few accounts, planning (not computing) is most of
the cost, and the in-memory engine starts faster than the streaming one. The results are the
same; larger frames get the streaming engine and every optimisation."""


def collect_all(frames: list[pl.LazyFrame], rows: int) -> list[pl.DataFrame]:
    """Collect lazy frames together, on the engine that suits ``rows`` rows of input."""
    if not frames:
        return []
    if rows <= SMALL_ROWS:
        return pl.collect_all(frames, engine="in-memory", optimizations=NO_OPTIMISATION)
    return pl.collect_all(frames, optimizations=OPTIMISED)


def collect_rows(frames: list[pl.LazyFrame], rows: int) -> list[pl.DataFrame]:
    """Collect the per-account queries of one evaluation date together (rows are accounts:
    the routed rows, roadmap frames, output frames and fired actions).

    Like :func:`collect_all` up to ``SMALL_ROWS`` rows; above, on the in-memory engine with
    every optimisation rather than the streaming one: these queries are wide (a column per
    indicator, band, score part and condition) and their inputs are in memory already, and
    the streaming engine's morsels cost about 1.6x the CPU for them (100k accounts: about
    0.44 CPU s against 0.27). History's grids keep :func:`collect_all` (millions of rows).
    """
    if not frames or rows <= SMALL_ROWS:
        return collect_all(frames, rows)
    return pl.collect_all(frames, engine="in-memory", optimizations=OPTIMISED)


def cast_to(expr: pl.Expr, typ: Type) -> pl.Expr:
    """Cast to the polars dtype of an expression type (datetimes are left as they are)."""
    target = _POLARS_TYPES.get(typ)
    return expr.cast(target) if target is not None else expr


def read_names(*exprs: pl.Expr | str) -> list[str] | None:
    """The column names ``exprs`` read, first use of each, in order; None when one reads
    columns by a selector (``pl.all()``, an ``exclude``, a regex): its names are not known
    without the frame."""
    names: dict[str, None] = {}
    for e in exprs:
        if isinstance(e, str):
            names[e] = None
            continue
        if e.meta.has_multiple_outputs() or e.meta.is_regex_projection():
            return None
        names.update(dict.fromkeys(e.meta.root_names()))
    return list(names)


def narrow(frame: pl.DataFrame, *exprs: pl.Expr | str) -> pl.DataFrame:
    """The columns of ``frame`` that ``exprs`` read, as a frame of their own (no copy).

    A roadmap frame is wide (a column per indicator, band, score part and action condition).
    An eager query on it costs a pass over every column in polars 2.1, up to a second for a
    history chunk of a million rows, even when it reads two; taking the columns it reads
    first is free. Falls back to the whole frame when a name is not a plain column.
    """
    names = read_names(*exprs)
    have = set(frame.columns)
    if not names or any(n not in have for n in names):
        return frame
    # by name: no query, no copy; ``frame[:, names]``, not ``frame[names]``, which in polars
    # 2.1 first reads ``names`` as row indices and catches the TypeError (60 to 100 us per
    # call whatever the columns; 6 us for two columns this way, 25 us for 23)
    return frame[:, list(names)]


def lazy_reading(frame: pl.DataFrame, *exprs: pl.Expr | str) -> pl.LazyFrame:
    """``frame`` as a LazyFrame for a query that reads only the columns of ``exprs`` and
    keeps none of the others (a ``select``, a ``group_by``): :func:`narrow` for large
    frames, small frames as they are (there, taking the columns costs more than the query
    saves)."""
    if frame.height <= SMALL_ROWS:
        return frame.lazy()
    return narrow(frame, *exprs).lazy()


@dataclass(frozen=True)
class ColumnTake:
    """A ``select`` of columns by name, some renamed (``pl.col(a).alias(b)``), done on a
    collected frame without a query (:func:`take_columns`); made once by
    :func:`column_take`."""

    sources: list[str]
    names: list[str]


def column_take(*exprs: pl.Expr | str) -> ColumnTake | None:
    """``exprs`` as a :class:`ColumnTake` when each is a column's name or a column read
    as it is, renamed or not, and no column is read or written twice; None otherwise
    (any other expression: the select stays a query). Reading the expressions costs a
    few microseconds each: make it once and keep it."""
    sources: list[str] = []
    names: list[str] = []
    for e in exprs:
        if isinstance(e, str):
            sources.append(e)
            names.append(e)
            continue
        base = e.meta.undo_aliases()
        if (not base.meta.is_column() or base.meta.has_multiple_outputs()
                or base.meta.is_regex_projection()):
            return None
        sources.append(base.meta.output_name())
        names.append(e.meta.output_name())
    if len(set(sources)) != len(sources) or len(set(names)) != len(names):
        return None
    return ColumnTake(sources, names)


def take_columns(frame: pl.DataFrame, take: ColumnTake) -> pl.DataFrame | None:
    """The columns of ``take`` from ``frame`` under their new names, as a frame of their
    own (no query, no copy: the same frame as ``frame.select`` of the expressions); None
    when ``frame`` lacks one of them (the caller runs the query, which raises)."""
    have = set(frame.columns)
    if any(n not in have for n in take.sources):
        return None
    taken = frame[:, take.sources]  # (by name: see narrow)
    if take.names != take.sources:
        taken.columns = take.names  # renames the new frame's columns, not frame's
    return taken


def row_positions(height: int) -> pl.Series:
    """The positions ``0 .. height - 1`` (UInt32), made once per height: filtered by a
    Boolean column (``Series.filter``, no query), they pick that column's rows of a frame
    by position (``frame[positions]``, no query either), where ``frame.filter`` plans and
    runs a query."""
    got = _POSITIONS.get(height)
    if got is None:
        if len(_POSITIONS) >= 64:  # frames of many heights: start again
            _POSITIONS.clear()
        got = _POSITIONS[height] = pl.int_range(0, height, dtype=pl.UInt32, eager=True)
    return got


_POSITIONS: dict[int, pl.Series] = {}


def filter_reading(frame: pl.DataFrame, *exprs: pl.Expr | str) -> pl.LazyFrame:
    """``frame`` as a LazyFrame of only the columns ``exprs`` read (a lazy ``select`` of
    columns by name: no copy), for a query that filters its rows before it reads them.

    A filter copies every column of its input, and the queries of small frames run without
    optimisation (no projection pushdown): on the 200 rows of a batch's roadmap frame (142
    columns) four stages' filters for the task lists cost 1.06 ms over the whole frame,
    0.68 ms over its five columns read. Falls back to the whole frame when a name is not a
    plain column (as :func:`narrow`).
    """
    names = read_names(*exprs)
    have = set(frame.columns)
    if not names or any(n not in have for n in names):
        return frame.lazy()
    return frame.lazy().select(pl.col(list(names)))  # (one expression: parsed once)


def empty_actions(key: str, key_dtype: pl.DataType) -> pl.DataFrame:
    """The actions frame with no rows (its columns and dtypes)."""
    return pl.DataFrame(schema={
        key: key_dtype, "roadmap": pl.String, "stage": pl.String, "action_id": pl.String,
        "kind": pl.String, "title": pl.String, "owner": pl.String, "owner_role": pl.String,
        "channel": pl.String, "priority": pl.String, "due_date": pl.Date, "text": pl.String,
        "evidence": EVIDENCE_DTYPE,
    })
