"""Events -> one row per account of raw aggregates: the engine's single pass over the events.

One ``group_by(account)`` computes every aggregate indicator of every roadmap of a plan with
conditional aggregations. The events are scanned lazily, with only the columns the plan reads
and only the time range its widest window needs (pushed down to the scan), and optionally a
filter on a date partition column so that whole folders are never opened (docs/scale.md).

The raw aggregate of indicator ``x`` of roadmap ``i`` is the column ``__{i}__{x}`` (and
``__{i}__{x}__prev`` for ``compare``); :mod:`healthrules.engine.assemble` finishes them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import polars as pl

from healthrules.aggregates import AGGREGATE_KINDS
from healthrules.analysis import Analysis
from healthrules.compiler import Plan
from healthrules.engine.binding import LiteralTime, translate, window
from healthrules.engine.frames import SMALL_ROWS
from healthrules.expressions import Parsed, names_in
from healthrules.inputs import NOT_FINITE, Clock, read_events
from healthrules.roadmap import AggregateIndicator

__all__ = ["EVENTS_QUERY_FLAGS", "EventsPass", "aggregate_expr", "raw_column"]

# how the events query is collected: each branch streams its own scan (see
# EventsPass._join_distinct_counts)
EVENTS_QUERY_FLAGS = pl.QueryOptFlags(comm_subplan_elim=False)


def raw_column(i: int, ident: str, prev: bool = False) -> str:
    """The column of the raw aggregate of indicator ``ident`` of roadmap ``i``."""
    return f"__{i}__{ident}" + ("__prev" if prev else "")


def aggregate_expr(plan: Plan, ind: AggregateIndicator, cond: pl.Expr) -> pl.Expr:
    """The aggregation of one indicator over the events where ``cond`` holds (the polars
    form of its kind in :data:`healthrules.aggregates.AGGREGATE_KINDS`)."""
    ev = plan.events
    kind = AGGREGATE_KINDS[ind.aggregate]
    return kind.polars(kind.inputs(condition=cond, timestamp=pl.col(ev.timestamp), of=ind.of,
                                   user=ev.user, value_types=ev.values, day="__day", q=ind.q))


@dataclass(frozen=True)
class _Shape:
    """What the events pass of a plan computes at one clock (built once, then reused)."""

    columns: tuple[str, ...]
    attributes: tuple[str, ...]
    aggs: tuple[pl.Expr, ...]
    pair_flags: tuple[tuple[str, tuple[pl.Expr, ...]], ...]
    use_day: bool


class EventsPass:
    """The pass over the events of one evaluation: query, read range and diagnostics.

    Parameters
    ----------
    plan
        The compiled plan.
    clock
        The evaluation instant (a literal here: the events are read for one date).
    accounts
        The checked accounts (anchored windows read their attributes).
    partition_column
        A ``Date`` (or ISO date string) column of the events holding each event's date.
    low_memory
        Count distinct values from (account, value) pairs, one extra pass per column.
    """

    def __init__(self, plan: Plan, clock: Clock, accounts: pl.DataFrame, *,
                 partition_column: str | None = None, low_memory: bool = False) -> None:
        self.plan = plan
        self.clock = clock
        self.time = LiteralTime(clock)
        self.accounts = accounts
        self.key = plan.account_key
        self.partition_column = partition_column
        self.low_memory = low_memory

    def window(self, ind: AggregateIndicator, prev: bool) -> tuple[pl.Expr, pl.Expr]:
        """(condition on the event timestamp, the window's stop) at this clock."""
        return window(ind, prev, self.plan.events.timestamp, self.plan.attributes, self.time)

    def filter_expr(self, analysis: Analysis, parsed: Parsed) -> pl.Expr:
        """The polars expression of an event filter (``where``) at this clock."""
        return translate(parsed, analysis, self.time, filter_scope=True)

    def _shape(self) -> _Shape:
        """The pass's expressions at this clock, built once per plan and clock."""
        shapes: dict[tuple[Clock, bool], _Shape] = self.plan.cached("events-pass", dict)
        key = (self.clock, self.low_memory)
        if key not in shapes:
            if len(shapes) >= 64:  # many dates (a backfill by a loop): keep the newest
                shapes.clear()
            shapes[key] = self._build_shape()
        return shapes[key]

    def _build_shape(self) -> _Shape:
        ev = self.plan.events
        ts = pl.col(ev.timestamp)
        needed_cols = {ev.account, ev.timestamp}
        if ev.event is not None:
            needed_cols.add(ev.event)
        needed_attrs: set[str] = set()
        aggs: list[pl.Expr] = [
            pl.len().alias("__n"), ts.is_null().sum().alias("__null_ts"),
            (pl.col(ev.event).is_null().sum() if ev.event is not None
             else pl.lit(0, pl.UInt32)).alias("__null_event"),
            pl.col(NOT_FINITE).sum().alias("__not_finite")]
        pair_flags: dict[str, list[pl.Expr]] = {}
        use_day = False
        for i, cr in enumerate(self.plan.roadmaps):
            a = cr.analysis
            for idx, ind in enumerate(cr.roadmap.indicators):
                if not isinstance(ind, AggregateIndicator):
                    continue
                where_parsed = a.expressions.get(f"indicators[{idx}].where")
                where = None
                if where_parsed is not None:
                    names = names_in(where_parsed.tree)
                    needed_cols |= {n for n in names if n in a.event_types}
                    needed_attrs |= {n for n in names if n in a.attribute_types}
                    where = self.filter_expr(a, where_parsed)
                kind = AGGREGATE_KINDS[ind.aggregate]
                of = kind.of_column(ind.of, ev.user)
                if of is not None:
                    needed_cols.add(of)
                if kind.history == "running_days":
                    use_day = True
                if ind.window.from_ is not None:
                    needed_attrs.add(ind.window.from_)
                for prev in (False, True) if ind.id in a.previous_windows else (False,):
                    wcond, _ = self.window(ind, prev)
                    cond = wcond if where is None else (wcond & where)
                    cond = cond.fill_null(False)
                    name = raw_column(i, ind.id, prev)
                    pair_col = self._pair_column(ind) if self.low_memory else None
                    if pair_col is not None:
                        pair_flags.setdefault(pair_col, []).append(cond.any().alias(name))
                    else:
                        aggs.append(aggregate_expr(self.plan, ind, cond).alias(name))
        return _Shape(
            columns=tuple(sorted(needed_cols)), attributes=tuple(sorted(needed_attrs)),
            aggs=tuple(aggs),
            pair_flags=tuple((c, tuple(f)) for c, f in sorted(pair_flags.items())),
            use_day=use_day)

    def query(self, events: pl.LazyFrame) -> pl.LazyFrame:
        """The lazy ``group_by(account)`` over the events, with the read range pushed down."""
        ev = self.plan.events
        ts = pl.col(ev.timestamp)
        shape = self._shape()
        start, end = self.read_range()
        schema = events.collect_schema()
        if self.partition_column is not None:
            dtype = schema[self.partition_column]
            events = events.filter(
                _partition_filter(self.partition_column, dtype, start, end))
        # dates at midnight; NaN and inf read as null everywhere (filters, distinct, aggregates)
        lf = read_events(events, self.plan, self.clock, schema, shape.columns)
        keep = ts < self.clock.datetime_lit(end)
        if start is not None:
            keep = keep & (ts >= self.clock.datetime_lit(start))
        lf = lf.filter(keep | ts.is_null())
        if shape.attributes:
            right = self.accounts.lazy().select(pl.col(self.key).alias("__key"),
                                                *shape.attributes)
            lf = lf.join(right, left_on=ev.account, right_on="__key", how="left")
        if shape.use_day:
            lf = lf.with_columns(ts.dt.date().alias("__day"))
        out = lf.group_by(ev.account).agg(shape.aggs)
        return self._join_distinct_counts(out, lf, shape.pair_flags)

    def collect(self, events: pl.LazyFrame, rows: int | None = None,
                ) -> tuple[pl.DataFrame, dict[str, int]]:
        """Run the pass: the raw aggregates (keyed by the account key) and the counters.

        ``rows`` is the number of events when known (an in-memory frame): small inputs run
        on polars' in-memory engine, which starts faster (see ``frames.SMALL_ROWS``).
        """
        ev = self.plan.events
        query = self.query(events)
        if rows is not None and rows <= SMALL_ROWS:
            agg_df = query.collect(engine="in-memory")
        else:
            agg_df = query.collect(optimizations=EVENTS_QUERY_FLAGS)
        if ev.account != self.key:
            agg_df = agg_df.rename({ev.account: self.key})
        known = self.accounts.select(self.key)
        unknown = agg_df.filter(pl.col(self.key).is_not_null()).join(
            known, on=self.key, how="anti")
        diagnostics = {
            "events_read": int(agg_df["__n"].sum()),
            "events_null_account": int(agg_df.filter(pl.col(self.key).is_null())["__n"].sum()),
            "events_null_timestamp": int(agg_df["__null_ts"].sum()),
            "events_null_event": int(agg_df["__null_event"].sum()),
            "values_not_finite": int(agg_df["__not_finite"].sum()),
            "events_unknown_account": int(unknown["__n"].sum()),
            "unknown_accounts": unknown.height,
        }
        agg_df = agg_df.filter(pl.col(self.key).is_not_null())
        return agg_df.drop("__n", "__null_ts", "__null_event", "__not_finite"), diagnostics

    # Distinct counts (``distinct``, ``active_days``) in two steps, so that memory grows with
    # the number of distinct (account, value) pairs rather than with the number of events:
    # one row per pair with a flag per indicator (did any event of the pair match?), then
    # the flags summed per account. A single ``col.filter(cond).n_unique()`` inside the main
    # ``group_by`` keeps every event of a group in memory (measured: 10x the events, 4x the
    # peak RSS; see docs/scale.md). The query is collected without common-subplan
    # elimination (EVENTS_QUERY_FLAGS): with it, polars caches the filtered scan that the
    # branches share, which materialises every event read.

    def _pair_column(self, ind: AggregateIndicator) -> str | None:
        """The column whose distinct values an indicator counts (None: not a distinct count)."""
        kind = AGGREGATE_KINDS[ind.aggregate]
        ev = self.plan.events
        if kind.history == "running_days":
            return "__day"
        if kind.history == "presence":
            col = kind.of_column(ind.of, ev.user)
            return col if col != ev.account else None
        return None

    def _join_distinct_counts(
        self, out: pl.LazyFrame, lf: pl.LazyFrame,
        pair_flags: tuple[tuple[str, tuple[pl.Expr, ...]], ...],
    ) -> pl.LazyFrame:
        account = self.plan.events.account
        for col, flags in pair_flags:
            names = [f.meta.output_name() for f in flags]
            counts = (
                lf.filter(pl.col(col).is_not_null())
                .group_by(account, col).agg(flags)
                .group_by(account).agg([pl.col(n).sum().cast(pl.Int64) for n in names])
            )
            out = out.join(counts, on=account, how="left", nulls_equal=True).with_columns(
                pl.col(names).fill_null(0))
        return out

    def read_range(self) -> tuple[dt.datetime | None, dt.datetime]:
        """``[start, end)`` of the events read, as naive wall times in the events' zone.

        ``start`` is the earliest window start of every aggregate indicator, ``None`` when
        one of them reads all history (or there is none).
        """
        lows: list[dt.datetime | None] = []
        for cr in self.plan.roadmaps:
            for ind in cr.roadmap.indicators:
                if isinstance(ind, AggregateIndicator):
                    lows.append(self._lower_instant(
                        ind, ind.id in cr.analysis.previous_windows))
        if not lows or any(lo is None for lo in lows):
            return None, self.clock.end
        return min(lo for lo in lows if lo is not None), self.clock.end

    def _lower_instant(self, ind: AggregateIndicator, previous: bool) -> dt.datetime | None:
        w = ind.window
        if w.kind == "trailing":
            assert w.days is not None
            span = w.days * (2 if previous else 1)
            return self.clock.end - dt.timedelta(days=span)
        if w.kind == "anchored":
            assert w.from_ is not None
            col = self.accounts[w.from_]
            if col.null_count() == len(col):
                return self.clock.end
            lo = col.min()
            if isinstance(lo, dt.datetime):
                if lo.tzinfo is not None and self.clock.time_zone is not None:
                    lo = lo.astimezone(ZoneInfo(self.clock.time_zone))
                return lo.replace(tzinfo=None)
            assert isinstance(lo, dt.date)
            return dt.datetime.combine(lo, dt.time())
        return None


def _partition_filter(column: str, dtype: pl.DataType, start: dt.datetime | None,
                      end: dt.datetime) -> pl.Expr:
    """Keep the partitions of the days in ``[start, end)``, one day of margin each side."""
    part = pl.col(column)
    day = dt.timedelta(days=1)

    def lit(d: dt.date) -> pl.Expr:
        # an ISO date string partition compares as text, in the same order as dates
        return pl.lit(d.isoformat()) if dtype == pl.String else pl.lit(d, pl.Date)

    cond = part <= lit((end + day).date())
    if start is not None:
        cond = cond & (part >= lit((start - day).date()))
    return cond | part.is_null()
