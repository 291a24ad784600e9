"""Plan + events + accounts + as_of -> Evaluation, as vectorised polars queries.

One ``group_by(account)`` over the events computes every aggregate indicator of every roadmap
of the plan with conditional aggregations (the events are scanned once, lazily, with only the
needed columns and time range, and never collected whole). Everything after that (derived
indicators, bands, stages, scores, actions) is column expressions over one row per account.
No per-row Python anywhere.
"""

from __future__ import annotations

import ast
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from healthrules.analysis import Analysis, TemplateField
from healthrules.compiler import CompiledRoadmap, Plan, compile
from healthrules.errors import Code, InputDataError, Issue, Location
from healthrules.evaluation import Evaluation
from healthrules.expressions import Parsed, Type, lag_column, names_in, time_references
from healthrules.inputs import Clock, check_accounts, check_events_schema, clock_for, lazy
from healthrules.polars_expr import round_decimal, to_polars
from healthrules.roadmap import (
    UNASSIGNED_STAGE,
    AggregateIndicator,
    Bands,
    DerivedIndicator,
    Pack,
    Roadmap,
    Weights,
)

__all__ = ["evaluate", "events_query", "read_range"]

FAMILIES = ("process", "relationship", "outcome")
PRIORITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
_ZERO_WHEN_EMPTY = {"count", "distinct", "active_days", "sum"}
_OP_TEXT = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
            ast.GtE: ">=", ast.In: "in", ast.NotIn: "not in"}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}

_EVIDENCE_DTYPE = pl.List(pl.Struct({
    "name": pl.String, "value": pl.String, "band": pl.String, "op": pl.String,
    "threshold": pl.String,
}))
# how evaluate() collects events_query(): each branch streams its own scan (see
# _Run._join_distinct_counts)
_EVENTS_QUERY_FLAGS = pl.QueryOptFlags(comm_subplan_elim=False)
_TASK_DTYPE = pl.List(pl.Struct({"list": pl.String, "text": pl.String, "done": pl.Boolean}))


def evaluate(
    source: Roadmap | Pack | Plan,
    events: pl.DataFrame | pl.LazyFrame,
    accounts: pl.DataFrame | pl.LazyFrame,
    as_of: dt.date | dt.datetime | str,
    *,
    partition_column: str | None = None,
    low_memory: bool = False,
) -> Evaluation:
    """Evaluate a roadmap (or pack) over all accounts as of a date.

    Parameters
    ----------
    source
        A roadmap, a loaded pack, or a compiled :class:`Plan` (compile once, evaluate often).
    events
        Usage events, a ``DataFrame`` or a ``LazyFrame`` (``pl.scan_parquet`` works and is
        never collected whole): the columns declared in ``data.events``.
    accounts
        One row per account: the key and the attributes declared in ``data.accounts``.
    as_of
        A ``date`` (the whole day counts), a ``datetime`` (events strictly before it count), or
        an ISO string of either.
    partition_column
        The name of a ``Date`` (or ISO date string) column of the events that holds each
        event's calendar date, typically the key of a hive-partitioned dataset
        (``events/date=2026-06-30/part.parquet``). The time range the roadmap reads is then
        also applied to this column, so whole folders outside it are never opened. The
        filter keeps one extra day on each side (the partition date may be taken in another
        time zone than the events'); the exact timestamp filter still applies. See
        ``docs/scale.md``.
    low_memory
        Count ``distinct`` and ``active_days`` from (account, value) pairs, one extra pass
        over the events per distinct column, so that memory grows with the number of distinct
        pairs rather than with the number of events. Use it for event stores larger than
        memory; the default counts them inside the single ``group_by`` (one pass, faster).
        The results are the same.

    Returns
    -------
    Evaluation
        Frames ``indicators``, ``stages``, ``scores``, ``actions`` and ``conditions``, plus
        ``diagnostics``.

    Raises
    ------
    RoadmapError
        If the roadmap does not compile.
    InputDataError
        If the frames do not match the data contract (every problem at once).

    Examples
    --------
    >>> import datetime as dt, polars as pl, healthrules as hr
    >>> roadmap = hr.Roadmap.model_validate({
    ...     "id": "demo", "goal": "Weekly use",
    ...     "data": {"events": {"user": None}},
    ...     "indicators": [{"id": "logins_7d", "family": "process", "aggregate": "count",
    ...                     "where": "event == 'login'", "window": "7d"}],
    ...     "stages": [{"id": "operation", "actions": [{
    ...         "id": "no_logins", "kind": "challenge", "when": "logins_7d == 0",
    ...         "do": "Call them: {logins_7d} logins in a week", "owner": "csm"}]}],
    ... })
    >>> events = pl.DataFrame({
    ...     "account_id": ["a", "a"], "event": ["login", "login"],
    ...     "timestamp": [dt.datetime(2026, 6, 29, 9), dt.datetime(2026, 6, 30, 9)]})
    >>> accounts = pl.DataFrame({"account_id": ["a", "b"]})
    >>> ev = hr.evaluate(roadmap, events, accounts, dt.date(2026, 6, 30))
    >>> ev.indicators.select("account_id", "logins_7d").rows()
    [('a', 2), ('b', 0)]
    >>> ev.actions.select("account_id", "action_id", "text").rows()
    [('b', 'no_logins', 'Call them: 0 logins in a week')]
    """
    run, ev_lf = _prepare(source, events, accounts, as_of, partition_column, low_memory)
    return run.evaluate(ev_lf)


# ---------------------------------------------------------------------- reading range
# What the evaluator reads from the events: the query it collects, the time range it needs,
# and the optional filter on a date partition column (docs/scale.md).


def events_query(
    source: Roadmap | Pack | Plan,
    events: pl.DataFrame | pl.LazyFrame,
    accounts: pl.DataFrame | pl.LazyFrame,
    as_of: dt.date | dt.datetime | str,
    *,
    partition_column: str | None = None,
    low_memory: bool = False,
) -> pl.LazyFrame:
    """Return the lazy aggregation query that :func:`evaluate` runs over the events.

    Nothing is read: call ``.explain()`` on the result to see which columns and which time
    range are pushed down to the scan. The arguments are those of :func:`evaluate`.

    Returns
    -------
    polars.LazyFrame
        One row per account key of the events, with the raw aggregates.

    Raises
    ------
    InputDataError
        If the frames do not match the data contract.
    """
    run, ev_lf = _prepare(source, events, accounts, as_of, partition_column, low_memory)
    return run.events_query(ev_lf)


def read_range(
    source: Roadmap | Pack | Plan,
    events: pl.DataFrame | pl.LazyFrame,
    accounts: pl.DataFrame | pl.LazyFrame,
    as_of: dt.date | dt.datetime | str,
) -> tuple[dt.datetime | None, dt.datetime]:
    """Return the half-open time range ``[start, end)`` of the events a plan reads.

    ``start`` is the earliest window start over every aggregate indicator (``None`` when
    some window reads all history); ``end`` is the evaluation instant. Both are in the
    events' time zone (aware when the timestamps are). Anchored windows make ``start``
    depend on the smallest anchor attribute of the accounts, and on nothing else of them.

    Returns
    -------
    tuple of (datetime or None, datetime)

    Raises
    ------
    InputDataError
        If the frames do not match the data contract.
    """
    run, _ = _prepare(source, events, accounts, as_of, None)
    start, end = run.read_range()
    zone = ZoneInfo(run.clock.time_zone) if run.clock.time_zone else None
    if zone is not None:
        end = end.replace(tzinfo=zone)
        start = start.replace(tzinfo=zone) if start is not None else None
    return start, end


def _prepare(source: Roadmap | Pack | Plan, events: Any, accounts: Any, as_of: Any,
             partition_column: str | None,
             low_memory: bool = False) -> tuple[_Run, pl.LazyFrame]:
    plan = compile(source)
    ev_lf = lazy(events, "events")
    acc_lf = lazy(accounts, "accounts")
    try:
        ev_schema = ev_lf.collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise InputDataError(f"cannot read the events frame: {exc}") from exc
    issues = check_events_schema(plan, ev_schema)
    if partition_column is not None:
        issues += _check_partition_column(ev_schema, partition_column)
    clock = clock_for(plan, ev_schema, as_of)
    acc_df, acc_issues = check_accounts(plan, acc_lf, ev_schema, clock)
    issues += acc_issues
    if issues:
        raise InputDataError(issues)
    return _Run(plan, clock, acc_df, partition_column=partition_column,
                low_memory=low_memory), ev_lf


def _check_partition_column(schema: pl.Schema, name: str) -> list[Issue]:
    where = Location(file="<events>", path=name)
    if name not in schema:
        return [Issue(code=Code.MISSING_COLUMN.value, location=where,
                      message=f"events frame has no partition column {name!r}",
                      hint="scan the dataset with pl.scan_parquet(..., hive_partitioning=True)")]
    if schema[name] not in (pl.Date, pl.String):
        return [Issue(code=Code.WRONG_DTYPE.value, location=where,
                      message=f"events partition column {name!r} is {schema[name]}, "
                      "expected Date or an ISO date String")]
    return []


class _Run:
    """One evaluation: the plan, the clock and the collected accounts."""

    def __init__(self, plan: Plan, clock: Clock, accounts: pl.DataFrame, *,
                 partition_column: str | None = None, low_memory: bool = False) -> None:
        self.plan = plan
        self.low_memory = low_memory
        self.clock = clock
        self.key = plan.account_key
        self.accounts = accounts
        self.partition_column = partition_column

    # ------------------------------------------------------------------ routing

    def route(self) -> pl.DataFrame:
        """Add ``__route``: the index of the first roadmap whose applies_to holds."""
        expr: pl.Expr | None = None
        chain: Any = None
        for i, cr in enumerate(self.plan.roadmaps):
            parsed = cr.analysis.expressions.get("applies_to")
            cond = pl.lit(True) if parsed is None else self.expr(parsed, cr.analysis)
            cond = cond.fill_null(False)
            chain = pl.when(cond).then(pl.lit(i, pl.Int64)) if chain is None else chain.when(
                cond).then(pl.lit(i, pl.Int64))
        expr = chain.otherwise(pl.lit(None, pl.Int64))
        return self.accounts.lazy().with_columns(expr.alias("__route")).collect()

    # ------------------------------------------------------------------ expressions

    def expr(self, parsed: Parsed, analysis: Analysis, *, filter_scope: bool = False) -> pl.Expr:
        """Translate a parsed expression against this run's columns."""
        special = {
            "as_of": self.as_of_expr(),
            "score": pl.col("__score"),
            "score_band": pl.col("__score_band"),
            "stage": pl.col("__stage"),
            "stage_achieved": pl.col("__achieved"),
        }

        def column(name: str) -> pl.Expr:
            if name in special:
                return special[name]
            return pl.col(name)

        types = analysis.env("filter" if filter_scope else "actions")
        return to_polars(parsed, column=column, band=lambda n: pl.col(f"{n}__band"),
                         as_of=self.as_of_expr(), types=types)

    # ------------------------------------------------------------------ hooks for history
    # healthrules.history evaluates many dates in one frame (one row per account and date):
    # it overrides these two methods to read ``as_of`` and the window end from columns, and
    # passes extra account columns that _time_columns and _pinned read. By default they are
    # literals and no-ops, so a single evaluation is unchanged.

    def as_of_expr(self) -> pl.Expr:
        """``as_of`` as a Date expression (a literal here)."""
        return pl.lit(self.clock.as_of, dtype=pl.Date)

    def end_expr(self, shift: dt.timedelta = dt.timedelta(0)) -> pl.Expr:
        """The evaluation instant ``end + shift`` as an expression (a literal here)."""
        return self.clock.lit_end(shift)

    def _time_columns(self, lf: pl.LazyFrame, cr: CompiledRoadmap,
                      columns: set[str]) -> pl.LazyFrame:
        """Add what change-over-time expressions read: lags and ``days_in_stage``.

        A lag ``prev(x, N)`` reads the column ``lag_column(x, N)``; ``days_in_stage`` is the
        days since ``__stage_since`` when the roadmap and stage equal ``__roadmap_before`` and
        ``__stage_before`` (0 on a change or a first sighting). Without those columns (a single
        evaluation has no history) they are null.
        """
        a = cr.analysis
        lags: set[tuple[str, int]] = set()
        age = False
        for path, parsed in a.expressions.items():
            if path.endswith((".when", ".resolved_when")) and ".actions[" in f".{path}":
                found, uses_age = time_references(parsed.tree)
                lags |= found
                age = age or uses_age
        for pieces in a.templates.values():
            age = age or any(not isinstance(p, str) and p.name == "days_in_stage"
                             for p in pieces)
        add: list[pl.Expr] = []
        for name, days in sorted(lags):
            col = lag_column(name, days)
            if col not in columns:
                typ = "float" if name == "score" else a.indicator_types[name]
                add.append(_cast(pl.lit(None), typ).alias(col))
        if age:
            if {"__roadmap_before", "__stage_before", "__stage_since"} <= columns:
                same = (pl.col("__stage") == pl.col("__stage_before")) & (
                    pl.col("__roadmap_before") == cr.id)
                since = (self.as_of_expr() - pl.col("__stage_since")).dt.total_days()
                add.append(pl.when(same).then(since).otherwise(pl.lit(0, pl.Int64)).cast(
                    pl.Int64).alias("days_in_stage"))
            else:
                add.append(pl.lit(None, pl.Int64).alias("days_in_stage"))
        return lf.with_columns(add) if add else lf

    @staticmethod
    def _pinned(lf: pl.LazyFrame, names: list[str], pins: set[str]) -> pl.LazyFrame:
        """Replace values pinned by a manual override (columns ``__pin__<name>``)."""
        todo = [n for n in names if n in pins]
        if not todo:
            return lf
        col = {"score": "__score"}
        return lf.with_columns(
            *[pl.col(col.get(n, n)).alias(f"__computed__{n}") for n in todo],
        ).with_columns(
            pl.coalesce(pl.col(f"__pin__{n}"), pl.col(col.get(n, n))).alias(col.get(n, n))
            for n in todo
        )

    # ------------------------------------------------------------------ aggregation

    def _attr_ts(self, name: str) -> pl.Expr:
        typ = self.plan.attributes[name]
        col = pl.col(name)
        unit = self.clock.time_unit
        if typ == "date":
            e = col.cast(pl.Datetime(unit))  # type: ignore[arg-type]
            if self.clock.time_zone is not None:
                e = e.dt.replace_time_zone(self.clock.time_zone)
            return e
        return col.dt.cast_time_unit(unit)  # type: ignore[arg-type]

    def _window(self, ind: AggregateIndicator, prev: bool) -> tuple[pl.Expr, pl.Expr]:
        """Return (condition on the event timestamp, the window's stop instant)."""
        ts = pl.col(self.plan.events.timestamp)
        w = ind.window
        end = self.end_expr()
        if w.kind == "trailing":
            assert w.days is not None
            n = dt.timedelta(days=w.days)
            if prev:
                stop = self.end_expr(-n)
                return (ts >= self.end_expr(-2 * n)) & (ts < stop), stop
            return ts >= self.end_expr(-n), end
        if w.kind == "all":
            return ts.is_not_null(), end
        assert w.from_ is not None
        start = self._attr_ts(w.from_)
        if w.days is None:
            return ts >= start, end
        stop = pl.min_horizontal(start + pl.duration(days=w.days), end)
        return (ts >= start) & (ts < stop), stop

    def _agg(self, ind: AggregateIndicator, cond: pl.Expr, analysis: Analysis) -> pl.Expr:
        ev = self.plan.events
        ts = pl.col(ev.timestamp)
        agg = ind.aggregate
        if agg == "count":
            return cond.sum().cast(pl.Int64)
        if agg == "distinct":
            col = ind.of or ev.user
            assert col is not None
            return pl.col(col).filter(cond).drop_nulls().n_unique().cast(pl.Int64)
        if agg == "active_days":
            return pl.col("__day").filter(cond).n_unique().cast(pl.Int64)
        if agg in ("first_time", "days_since_first"):
            return pl.when(cond).then(ts).min()
        if agg in ("last_time", "days_since_last"):
            return pl.when(cond).then(ts).max()
        assert ind.of is not None
        v = pl.col(ind.of)
        if ev.values.get(ind.of) == "float":
            v = v.cast(pl.Float64).fill_nan(None)
        else:
            v = v.cast(pl.Int64)
        picked = pl.when(cond).then(v)
        if agg == "sum":
            return picked.sum()
        if agg == "mean":
            return picked.mean()
        if agg == "min":
            return picked.min()
        return picked.max()

    def aggregate(self, events: pl.LazyFrame) -> tuple[pl.DataFrame, dict[str, int]]:
        """Scan the events once and aggregate every aggregate indicator of every roadmap."""
        ev = self.plan.events
        agg_df = self.events_query(events).collect(optimizations=_EVENTS_QUERY_FLAGS)
        if ev.account != self.key:
            agg_df = agg_df.rename({ev.account: self.key})
        known = self.accounts.select(self.key)
        unknown = agg_df.filter(pl.col(self.key).is_not_null()).join(
            known, on=self.key, how="anti")
        diagnostics = {
            "events_read": int(agg_df["__n"].sum()),
            "events_null_account": int(agg_df.filter(pl.col(self.key).is_null())["__n"].sum()),
            "events_null_timestamp": int(agg_df["__null_ts"].sum()),
            "events_unknown_account": int(unknown["__n"].sum()),
            "unknown_accounts": unknown.height,
        }
        return agg_df.filter(pl.col(self.key).is_not_null()).drop("__n", "__null_ts"), diagnostics

    def events_query(self, events: pl.LazyFrame) -> pl.LazyFrame:
        """The lazy ``group_by(account)`` over the events, with the read range pushed down."""
        ev = self.plan.events
        ts = pl.col(ev.timestamp)
        needed_cols = {ev.account, ev.timestamp}
        needed_attrs: set[str] = set()
        aggs: list[pl.Expr] = [pl.len().alias("__n"), ts.is_null().sum().alias("__null_ts")]
        pair_flags: dict[str, list[pl.Expr]] = {}  # distinct column -> one flag per indicator
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
                    where = self.expr(where_parsed, a, filter_scope=True)
                if ind.of is not None:
                    needed_cols.add(ind.of)
                elif ind.aggregate == "distinct" and ev.user is not None:
                    needed_cols.add(ev.user)
                if ind.aggregate == "active_days":
                    use_day = True
                if ind.window.from_ is not None:
                    needed_attrs.add(ind.window.from_)
                for prev in (False, True) if ind.compare != "none" else (False,):
                    wcond, _ = self._window(ind, prev)
                    cond = wcond if where is None else (wcond & where)
                    cond = cond.fill_null(False)
                    name = f"__{i}__{ind.id}" + ("__prev" if prev else "")
                    pair_col = self._pair_column(ind) if self.low_memory else None
                    if pair_col is not None:
                        pair_flags.setdefault(pair_col, []).append(cond.any().alias(name))
                    else:
                        aggs.append(self._agg(ind, cond, a).alias(name))
        start, end = self.read_range()
        if self.partition_column is not None:
            dtype = events.collect_schema()[self.partition_column]
            events = events.filter(
                self._partition_filter(self.partition_column, dtype, start, end))
        lf = events.select(sorted(needed_cols))
        floats = [c for c in sorted(needed_cols) if ev.values.get(c) == "float"]
        if floats:  # NaN is read as null everywhere (filters, distinct, aggregates)
            lf = lf.with_columns(pl.col(c).cast(pl.Float64).fill_nan(None) for c in floats)
        keep = ts < self.clock.datetime_lit(end)
        if start is not None:
            keep = keep & (ts >= self.clock.datetime_lit(start))
        lf = lf.filter(keep | ts.is_null())
        if needed_attrs:
            right = self.accounts.lazy().select(pl.col(self.key).alias("__key"),
                                                *sorted(needed_attrs))
            lf = lf.join(right, left_on=ev.account, right_on="__key", how="left")
        if use_day:
            lf = lf.with_columns(ts.dt.date().alias("__day"))
        out = lf.group_by(ev.account).agg(aggs)
        return self._join_distinct_counts(out, lf, pair_flags)

    # Distinct counts (``distinct``, ``active_days``) in two steps, so that memory grows with
    # the number of distinct (account, value) pairs rather than with the number of events:
    # one row per pair with a flag per indicator (did any event of the pair match?), then
    # the flags summed per account. A single ``col.filter(cond).n_unique()`` inside the main
    # ``group_by`` keeps every event of a group in memory (measured: 10x the events, 4x the
    # peak RSS; see docs/scale.md). The query is collected without common-subplan
    # elimination (_EVENTS_QUERY_FLAGS): with it, polars caches the filtered scan that the
    # branches share, which materialises every event read.

    def _pair_column(self, ind: AggregateIndicator) -> str | None:
        """The column whose distinct values an indicator counts, or None for other aggregates."""
        if ind.aggregate == "active_days":
            return "__day"
        if ind.aggregate == "distinct":
            col = ind.of or self.plan.events.user
            return col if col != self.plan.events.account else None
        return None

    def _join_distinct_counts(self, out: pl.LazyFrame, lf: pl.LazyFrame,
                              pair_flags: dict[str, list[pl.Expr]]) -> pl.LazyFrame:
        account = self.plan.events.account
        for col, flags in sorted(pair_flags.items()):
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
                    lows.append(self._lower_instant(ind))
        if not lows or any(lo is None for lo in lows):
            return None, self.clock.end
        return min(lo for lo in lows if lo is not None), self.clock.end

    def _lower_instant(self, ind: AggregateIndicator) -> dt.datetime | None:
        w = ind.window
        if w.kind == "trailing":
            assert w.days is not None
            span = w.days * (2 if ind.compare != "none" else 1)
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

    @staticmethod
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

    # ------------------------------------------------------------------ one roadmap

    def roadmap_frame(self, i: int, cr: CompiledRoadmap, routed: pl.DataFrame,
                      agg: pl.DataFrame) -> pl.DataFrame:
        """Every per-account column of one roadmap, collected once (small: one row/account)."""
        r, a = cr.roadmap, cr.analysis
        key = self.key
        prefix = f"__{i}__"
        mine = [c for c in agg.columns if c.startswith(prefix)]
        right = agg.select(key, *[pl.col(c).alias(c[len(prefix):]) for c in mine])
        lf = routed.lazy().filter(pl.col("__route") == i).drop("__route").join(
            right.lazy(), on=key, how="left")
        pins = {c[len("__pin__"):] for c in routed.columns if c.startswith("__pin__")}
        # aggregate indicators: fill empties, days-since, compare, null anchors
        posts: list[pl.Expr] = []
        for ind in r.indicators:
            if isinstance(ind, AggregateIndicator):
                posts.append(self._post(ind).alias(ind.id))
        lf = lf.with_columns(posts)
        drop = [c for c in lf.collect_schema().names() if c.endswith("__prev")]
        lf = lf.drop(drop)
        lf = self._pinned(lf, [i.id for i in r.indicators if isinstance(i, AggregateIndicator)],
                          pins)
        # derived indicators, in dependency order
        by_id = {ind.id: (idx, ind) for idx, ind in enumerate(r.indicators)}
        # bands of aggregate indicators first: derived indicators may read them with band()
        bands = [
            _band_expr(pl.col(ind.id), ind.bands).alias(f"{ind.id}__band")
            for ind in r.indicators if ind.bands is not None and ind.id not in a.derived_order
        ]
        if bands:
            lf = lf.with_columns(bands)
        for ident in a.derived_order:
            idx, dind = by_id[ident]
            assert isinstance(dind, DerivedIndicator)
            parsed = a.expressions[f"indicators[{idx}].expr"]
            lf = lf.with_columns(
                _cast(self.expr(parsed, a), a.indicator_types[ident]).alias(ident))
            lf = self._pinned(lf, [ident], pins)
            if dind.bands is not None:
                lf = lf.with_columns(_band_expr(pl.col(ident), dind.bands).alias(
                    f"{ident}__band"))
        # stage, achievement, tasks
        lf = lf.with_columns(self._stage_exprs(r, a))
        lf = lf.with_columns(self._achievement_exprs(r, a))
        # score
        for step in self._score_steps(r):  # band scores, then families, then totals
            lf = lf.with_columns(step)
        lf = self._pinned(lf, ["score"], pins)
        if r.score.bands is not None:
            lf = lf.with_columns(_band_expr(pl.col("__score"), r.score.bands).alias(
                "__score_band"))
        else:
            lf = lf.with_columns(pl.lit(None, pl.String).alias("__score_band"))
        # action conditions
        lf = self._time_columns(lf, cr, set(routed.columns))
        conds: list[pl.Expr] = []
        for k, (st, action) in enumerate(r.all_actions()):
            path = _action_path(r, st, action.id)
            scope = pl.lit(True) if st is None else (pl.col("__stage") == st.id)
            when = self.expr(a.expressions[f"{path}.when"], a).cast(pl.Boolean)
            conds.append((scope & when.fill_null(False)).alias(f"__fired_{k}"))
            conds.append((scope & when.is_null()).alias(f"__unknown_{k}"))
            conds.append(scope.alias(f"__scope_{k}"))
        if conds:
            lf = lf.with_columns(conds)
        frame = lf.with_columns(pl.lit(r.id, pl.String).alias("roadmap")).collect()
        return self._with_tasks(frame, r, a)

    def _with_tasks(self, frame: pl.DataFrame, r: Roadmap, a: Analysis) -> pl.DataFrame:
        """Add ``__tasks``: the task list of each account's stage, built per stage.

        Building every stage's list for every row and picking one with ``when`` costs a list
        per stage per row; filtering each stage's rows first builds one list per row.
        """
        per_stage: list[tuple[str, list[pl.Expr]]] = []
        for si, st in enumerate(r.stages):
            items = [pl.struct(pl.lit(lst).alias("list"), pl.lit(task.text).alias("text"),
                               flag.alias("done"))
                     for lst, task, flag in self._task_flags(si, st, a)]
            per_stage.append((st.id, items))
        flat = [e for _, items in per_stage for e in items]
        rows = narrow(frame, "__stage", *flat).lazy().with_row_index("__row")
        parts: list[pl.LazyFrame] = []
        with_tasks: list[str] = []
        for stage_id, items in per_stage:
            if items:
                # concat_list of struct columns is ~50x slower than concat_arr in polars 2.1
                parts.append(rows.filter(pl.col("__stage") == stage_id).select(
                    "__row", pl.concat_arr(items).arr.to_list().cast(_TASK_DTYPE).alias(
                        "__tasks")))
                with_tasks.append(stage_id)
        empty = pl.lit([], dtype=_TASK_DTYPE)
        if not parts:
            return frame.with_columns(empty.alias("__tasks"))
        parts.append(rows.filter(~pl.col("__stage").is_in(with_tasks)).select(
            "__row", empty.alias("__tasks")))
        # back in row order (sorting one column; a join would copy every column of the frame)
        tasks = pl.concat(parts).sort("__row").collect()
        return frame.with_columns(tasks["__tasks"])

    def _task_flags(self, si: int, st: Any, a: Analysis) -> list[tuple[str, Any, pl.Expr]]:
        """(list, task, done flag) of every task of stage ``si``, in list order."""
        out: list[tuple[str, Any, pl.Expr]] = []
        for lst in ("joint", "customer", "ours"):
            for ti, task in enumerate(getattr(st.tasks, lst)):
                tp = a.expressions.get(f"stages[{si}].tasks.{lst}[{ti}].done_when")
                flag = (pl.lit(None, pl.Boolean) if tp is None
                        else self.expr(tp, a).cast(pl.Boolean))
                out.append((lst, task, flag))
        return out

    def _post(self, ind: AggregateIndicator) -> pl.Expr:
        cur = pl.col(ind.id)
        prev = pl.col(f"{ind.id}__prev")
        agg = ind.aggregate

        def finish(x: pl.Expr, is_prev: bool) -> pl.Expr:
            if agg in _ZERO_WHEN_EMPTY:
                x = x.fill_null(0)
            if agg in ("days_since_first", "days_since_last"):
                _, stop = self._window(ind, is_prev)
                x = (stop - x).dt.total_days().cast(pl.Int64)
            return x

        value = finish(cur, False)
        if ind.compare != "none":
            before = finish(prev, True)
            if ind.compare == "previous":
                value = before
            elif ind.compare == "delta":
                value = value - before
            else:
                value = pl.when(before != 0).then(
                    (value.cast(pl.Float64) - before.cast(pl.Float64)) / before.cast(pl.Float64))
        if ind.window.from_ is not None:
            value = pl.when(pl.col(ind.window.from_).is_not_null()).then(value)
        return value

    def _stage_exprs(self, r: Roadmap, a: Analysis) -> list[pl.Expr]:
        name: Any = None
        index: Any = None
        for si, st in enumerate(r.stages):
            parsed = a.expressions.get(f"stages[{si}].entry")
            cond = pl.lit(True) if parsed is None else self.expr(parsed, a).fill_null(False)
            if name is None:
                name = pl.when(cond).then(pl.lit(st.id))
                index = pl.when(cond).then(pl.lit(si, pl.Int64))
            else:
                name = name.when(cond).then(pl.lit(st.id))
                index = index.when(cond).then(pl.lit(si, pl.Int64))
        return [
            name.otherwise(pl.lit(UNASSIGNED_STAGE)).alias("__stage"),
            index.otherwise(pl.lit(None, pl.Int64)).alias("__stage_index"),
        ]

    def _achievement_exprs(self, r: Roadmap, a: Analysis) -> list[pl.Expr]:
        stage = pl.col("__stage")
        achieved: Any = None
        done: Any = None
        total: Any = None
        for si, st in enumerate(r.stages):
            on = stage == st.id
            parsed = a.expressions.get(f"stages[{si}].achievement.when")
            if parsed is not None:
                x = self.expr(parsed, a).cast(pl.Boolean)
                achieved = pl.when(on).then(x) if achieved is None else achieved.when(on).then(x)
            flags = [flag for _, _, flag in self._task_flags(si, st, a)]
            if not flags:
                continue
            # the lists themselves are built after collecting (_with_tasks)
            n_done = pl.sum_horizontal([f.fill_null(False).cast(pl.Int64) for f in flags])
            done = pl.when(on).then(n_done) if done is None else done.when(on).then(n_done)
            n = pl.lit(len(flags), pl.Int64)
            total = pl.when(on).then(n) if total is None else total.when(on).then(n)
        return [
            (pl.lit(None, pl.Boolean) if achieved is None
             else achieved.otherwise(pl.lit(None, pl.Boolean))).alias("__achieved"),
            (pl.lit(0, pl.Int64) if done is None else done.otherwise(pl.lit(0, pl.Int64))).alias(
                "__tasks_done"),
            (pl.lit(0, pl.Int64) if total is None else total.otherwise(pl.lit(0, pl.Int64))
             ).alias("__tasks_total"),
        ]

    def _score_steps(self, r: Roadmap) -> list[list[pl.Expr]]:
        """The score in steps, each reading the columns of the step before.

        One expression per weight set would repeat every band score many times inside nested
        weighted means (polars does not share them), which made scoring the slowest part of
        an evaluation; columns keep each value computed once.
        """
        policy = r.score.missing
        band_scores: list[pl.Expr] = []
        for ind in r.indicators:
            if ind.bands is None:
                continue
            s = _band_score(pl.col(ind.id), ind.bands)
            if policy == "neutral":
                s = s.fill_null(50.0)
            elif policy == "worst":
                s = s.fill_null(0.0)
            band_scores.append(s.alias(f"__bs__{ind.id}"))
        sets: list[tuple[str | None, Weights]] = [(None, r.score.weights)]
        sets += [(sid, s.weights) for sid, s in r.score.stages.items()]
        families: list[pl.Expr] = []
        totals: list[pl.Expr] = []
        names = ["__score", *[f"__score_{f}" for f in FAMILIES], "__scored", "__missing"]
        for t, (_, weights) in enumerate(sets):
            fam, total = _score_parts(r, weights, f"__sp{t}")
            families += [e.alias(f"__sp{t}{n}") for n, e in fam.items()]
            totals.append(total.alias(f"__sp{t}__score"))
        out: list[pl.Expr] = []
        for name in names:
            default = pl.col(f"__sp0{name}")
            chain: Any = None
            for t, (sid, _) in enumerate(sets):
                if sid is None:
                    continue
                on = pl.col("__stage") == sid
                col = pl.col(f"__sp{t}{name}")
                chain = pl.when(on).then(col) if chain is None else chain.when(on).then(col)
            out.append((default if chain is None else chain.otherwise(default)).alias(name))
        return [band_scores, families, totals, out]

    # ------------------------------------------------------------------ outputs

    def evaluate(self, events: pl.LazyFrame) -> Evaluation:
        """Aggregate the events, then assemble the result frames."""
        agg, diagnostics = self.aggregate(events)
        return self.assemble(agg, diagnostics)

    def assemble(self, agg: pl.DataFrame, diagnostics: dict[str, int]) -> Evaluation:
        """Build the result from the per-account aggregates of :meth:`aggregate`.

        ``agg`` has the account key and, per roadmap ``i`` and aggregate indicator ``x``, the
        raw aggregate ``__{i}__{x}`` (and ``__{i}__{x}__prev`` for compare), as returned by
        :meth:`aggregate`. Anything that produces the same columns for this run's ``as_of``
        (for instance an incremental computation over many dates) can be assembled here.
        """
        routed = self.route()
        key = self.key
        ind_frames: list[pl.DataFrame] = []
        stage_frames: list[pl.DataFrame] = []
        score_frames: list[pl.DataFrame] = []
        action_frames: list[pl.LazyFrame] = []
        cond_rows: list[dict[str, Any]] = []
        for i, cr in enumerate(self.plan.roadmaps):
            r = cr.roadmap
            frame = self.roadmap_frame(i, cr, routed, agg)
            inds, stages, scores, fired = roadmap_outputs(self, i, cr, frame, key)
            ind_frames.append(inds)
            stage_frames.append(stages)
            score_frames.append(scores)
            if fired is not None:
                action_frames.append(fired)
            actions = r.all_actions()
            if actions:
                sums = [pl.col(f"__{w}_{k}").sum().alias(f"{w}_{k}")
                        for k in range(len(actions)) for w in ("scope", "fired", "unknown")]
                counts = narrow(frame, *sums).select(sums).row(0, named=True)
            for k, (st, action) in enumerate(actions):
                cond_rows.append({
                    "roadmap": r.id, "stage": st.id if st else None, "action_id": action.id,
                    "considered": counts[f"scope_{k}"], "fired": counts[f"fired_{k}"],
                    "unknown": counts[f"unknown_{k}"],
                })
        unrouted = routed.filter(pl.col("__route").is_null())
        diagnostics["accounts"] = routed.height
        diagnostics["accounts_unrouted"] = unrouted.height
        if unrouted.height:
            stage_frames.append(unrouted.select(
                key, pl.lit(None, pl.String).alias("roadmap"),
                pl.lit(UNASSIGNED_STAGE).alias("stage"), pl.lit(None, pl.Int64).alias(
                    "stage_index"), pl.lit(None, pl.Boolean).alias("achieved"),
                pl.lit(0, pl.Int64).alias("tasks_done"), pl.lit(0, pl.Int64).alias(
                    "tasks_total"), pl.lit([], dtype=_TASK_DTYPE).alias("tasks")))
        order = [key, "roadmap"]
        indicators = pl.concat(ind_frames, how="diagonal_relaxed").sort(order, nulls_last=True)
        stages = pl.concat(stage_frames, how="vertical_relaxed").sort(order, nulls_last=True)
        scores = pl.concat(score_frames, how="vertical_relaxed").sort(order, nulls_last=True)
        if action_frames:
            actions_df = pl.concat(action_frames, how="vertical_relaxed").sort(
                [key, "__rank", "__order"]).drop("__rank", "__order").collect()
        else:
            actions_df = _empty_actions(key, self.accounts.schema[key])
        conditions = pl.DataFrame(cond_rows, schema={
            "roadmap": pl.String, "stage": pl.String, "action_id": pl.String,
            "considered": pl.Int64, "fired": pl.Int64, "unknown": pl.Int64})
        return Evaluation._from_frames(
            plan=self.plan, as_of=self.clock.as_of, account_key=key, indicators=indicators,
            stages=stages, scores=scores, actions=actions_df, conditions=conditions,
            diagnostics=diagnostics, attributes=routed.drop("__route"),
        )


# ---------------------------------------------------------------------- helpers


def narrow(frame: pl.DataFrame, *exprs: pl.Expr | str) -> pl.DataFrame:
    """The columns of ``frame`` that ``exprs`` read, as a frame of their own (no copy).

    A roadmap frame is wide (a column per indicator, band, score part and action condition).
    An eager query on it costs a pass over every column in polars 2.1, up to a second for a
    history chunk of a million rows, even when it reads two; taking the columns it reads
    first is free. Falls back to the whole frame when a name is not a plain column.
    """
    names: dict[str, None] = {}
    for e in exprs:
        for name in ([e] if isinstance(e, str) else e.meta.root_names()):
            names[name] = None
    if not names or any(n not in frame.schema for n in names):
        return frame
    return pl.DataFrame([frame.get_column(n) for n in names])


def roadmap_outputs(run: _Run, i: int, cr: CompiledRoadmap, frame: pl.DataFrame, key: str,
                    ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.LazyFrame | None]:
    """The indicators, stages and scores frames of one roadmap, and its fired actions.

    Shared by :meth:`_Run.assemble` (one date, ``key`` is the account key) and the history
    grid (many dates, ``key`` is the grid's row key). The actions frame is lazy, with the
    sort helpers ``__rank`` (priority) and ``__order`` (declaration order).
    """
    r, a = cr.roadmap, cr.analysis

    def take(*exprs: pl.Expr | str) -> pl.DataFrame:
        return narrow(frame, *exprs).select(exprs)

    ind_cols: list[str] = []
    for ind in r.indicators:
        ind_cols.append(ind.id)
        if ind.bands is not None:
            ind_cols.append(f"{ind.id}__band")
    indicators = take(key, "roadmap", *ind_cols)
    stages = take(
        key, "roadmap", pl.col("__stage").alias("stage"),
        pl.col("__stage_index").alias("stage_index"),
        pl.col("__achieved").alias("achieved"),
        pl.col("__tasks_done").alias("tasks_done"),
        pl.col("__tasks_total").alias("tasks_total"),
        pl.col("__tasks").alias("tasks"),
    )
    scores = take(
        key, "roadmap", pl.col("__stage").alias("stage"),
        pl.col("__score").alias("score"), pl.col("__score_band").alias("score_band"),
        *[pl.col(f"__score_{f}").alias(f"score_{f}") for f in FAMILIES],
        pl.col("__scored").alias("indicators_scored"),
        pl.col("__missing").alias("indicators_missing"),
    )
    env = a.env("actions")
    parts: list[pl.LazyFrame] = []
    for k, (st, action) in enumerate(r.all_actions()):
        path = _action_path(r, st, action.id)
        text = _render_template(a.templates[f"{path}.do"], env, run)
        evidence = _evidence(a.expressions[f"{path}.when"], env, a.banded, run)
        fired = pl.col(f"__fired_{k}")
        exprs = [
            pl.col(key), pl.col("roadmap"), pl.col("__stage").alias("stage"),
            pl.lit(action.id).alias("action_id"), pl.lit(action.kind).alias("kind"),
            pl.lit(action.title, pl.String).alias("title"),
            pl.lit(action.owner, pl.String).alias("owner"),
            pl.lit(action.channel, pl.String).alias("channel"),
            pl.lit(action.priority).alias("priority"),
            text.alias("text"), evidence.alias("evidence"),
            pl.lit(PRIORITY_RANK[action.priority], pl.Int64).alias("__rank"),
            pl.lit(i * 10_000 + k, pl.Int64).alias("__order"),
        ]
        parts.append(narrow(frame, fired, *exprs).lazy().filter(fired).select(exprs))
    actions = pl.concat(parts, how="vertical_relaxed") if parts else None
    return indicators, stages, scores, actions


def _action_path(r: Roadmap, st: Any, action_id: str) -> str:
    if st is None:
        k = next(j for j, x in enumerate(r.actions) if x.id == action_id)
        return f"actions[{k}]"
    si = next(j for j, x in enumerate(r.stages) if x.id == st.id)
    k = next(j for j, x in enumerate(st.actions) if x.id == action_id)
    return f"stages[{si}].actions[{k}]"


def _cast(expr: pl.Expr, typ: Type) -> pl.Expr:
    target = {"int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean, "str": pl.String,
              "date": pl.Date}.get(typ)
    return expr.cast(target) if target is not None else expr


def _band_expr(x: pl.Expr, bands: Bands) -> pl.Expr:
    chain: Any = pl.when(x.is_null()).then(pl.lit(None, pl.String))
    for level in bands.levels[:-1]:
        upper = level.upper
        assert upper is not None
        cond = x <= upper[0] if upper[1] else x < upper[0]
        chain = chain.when(cond).then(pl.lit(level.name))
    result: pl.Expr = chain.otherwise(pl.lit(bands.levels[-1].name))
    return result


def _band_score(x: pl.Expr, bands: Bands) -> pl.Expr:
    scores = bands.level_scores()
    chain: Any = pl.when(x.is_null()).then(pl.lit(None, pl.Float64))
    for level in bands.levels[:-1]:
        upper = level.upper
        assert upper is not None
        cond = x <= upper[0] if upper[1] else x < upper[0]
        chain = chain.when(cond).then(pl.lit(scores[level.name], pl.Float64))
    result: pl.Expr = chain.otherwise(pl.lit(scores[bands.levels[-1].name], pl.Float64))
    return result


def _weighted_mean(items: list[tuple[pl.Expr, float]]) -> pl.Expr:
    if not items:
        return pl.lit(None, pl.Float64)
    num = pl.sum_horizontal([pl.when(s.is_not_null()).then(s * w) for s, w in items])
    den = pl.sum_horizontal([pl.when(s.is_not_null()).then(pl.lit(w, pl.Float64))
                             for s, w in items])
    return pl.when(den > 0).then(num / den)


def _score_parts(r: Roadmap, weights: Weights,
                 tag: str) -> tuple[dict[str, pl.Expr], pl.Expr]:
    """One weight set (see docs/semantics.md): family scores and counts, then the total.

    Band scores are read from the ``__bs__<id>`` columns; the total reads the family columns
    of the same set (``<tag>__score_<family>``) or, without family weights, the band scores.
    """
    banded = {ind.id: ind for ind in r.indicators if ind.bands is not None}
    if weights.indicators:
        chosen = [(i, w) for i, w in weights.indicators.items() if w > 0 and i in banded]
    else:
        chosen = [(i, 1.0) for i in banded]
    if weights.families:
        chosen = [(i, w) for i, w in chosen if weights.families.get(banded[i].family, 0) > 0]
    scored: dict[str, list[tuple[pl.Expr, float]]] = {f: [] for f in FAMILIES}
    flat: list[tuple[pl.Expr, float]] = []
    missing: list[pl.Expr] = []
    present: list[pl.Expr] = []
    for ident, w in chosen:
        s = pl.col(f"__bs__{ident}")
        scored[banded[ident].family].append((s, float(w)))
        flat.append((s, float(w)))
        missing.append(pl.col(ident).is_null().cast(pl.Int64))
        present.append(s.is_not_null().cast(pl.Int64))
    out = {f"__score_{f}": _weighted_mean(scored[f]) for f in FAMILIES}
    zero = pl.lit(0, pl.Int64)
    out["__scored"] = pl.sum_horizontal(present) if present else zero
    out["__missing"] = pl.sum_horizontal(missing) if missing else zero
    if weights.families:
        total = _weighted_mean([(pl.col(f"{tag}__score_{f}"),
                                 float(weights.families.get(f, 0.0)))  # type: ignore[call-overload]
                                for f in FAMILIES if weights.families.get(f, 0) > 0])  # type: ignore[call-overload]
    else:
        total = _weighted_mean(flat)
    return out, total


def render_value(x: pl.Expr, typ: str, spec: str = "") -> pl.Expr:
    """Render a value as text the way ``do`` templates and evidence show it."""
    if spec.endswith("%"):
        digits = int(spec[1:-1])
        ratio = round_decimal(x, digits + 2)
        out = pl.concat_str([_fixed(ratio * 100, digits), pl.lit("%")])
    elif spec.endswith("f"):
        out = _fixed(x.cast(pl.Float64), int(spec[1:-1]))
    elif spec == "d":
        out = _fixed(x.cast(pl.Float64), 0)
    elif typ == "float":
        out = _fixed(x, 2)
    elif typ == "bool":
        out = pl.when(x).then(pl.lit("true")).otherwise(pl.lit("false"))
    elif typ == "datetime":
        out = x.dt.to_string("%Y-%m-%d %H:%M:%S")
    else:
        out = x.cast(pl.String)
    return pl.when(x.is_null()).then(pl.lit("n/a")).otherwise(out)


def _fixed(x: pl.Expr, decimals: int) -> pl.Expr:
    scale = 10**decimals
    # round the decimal value first (as round() does), then scale: 0.145 -> "15%"
    rounded = round_decimal(x, decimals)
    scaled = (rounded * scale).round(0, mode="half_away_from_zero").cast(pl.Int64)
    sign: pl.Expr = pl.when(scaled < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    mag = scaled.abs()
    whole = (mag // scale).cast(pl.String)
    if decimals == 0:
        return pl.concat_str([sign, whole])
    frac = (mag % scale).cast(pl.String).str.zfill(decimals)
    return pl.concat_str([sign, whole, pl.lit("."), frac])


def _render_template(pieces: list[TemplateField | str], env: dict[str, Type],
                     run: _Run) -> pl.Expr:
    parts: list[pl.Expr] = []
    special = {"score": "__score", "score_band": "__score_band", "stage": "__stage",
               "stage_achieved": "__achieved"}
    for piece in pieces:
        if isinstance(piece, str):
            parts.append(pl.lit(piece))
            continue
        col = run.as_of_expr() if piece.name == "as_of" else pl.col(
            special.get(piece.name, piece.name))
        parts.append(render_value(col, env[piece.name], piece.spec))
    if not parts:
        return pl.lit("")
    return pl.concat_str(parts)


def _evidence(parsed: Parsed, env: dict[str, Type], banded: frozenset[str],
              run: _Run) -> pl.Expr:
    """One struct per comparison against a literal, then one per other name read."""
    entries: list[tuple[str, bool, str | None, str | None]] = []
    covered: set[str] = set()
    for node in ast.walk(parsed.tree):
        if not isinstance(node, ast.Compare) or len(node.ops) != 1:
            continue
        left, right, op = node.left, node.comparators[0], node.ops[0]
        op_text = _OP_TEXT.get(type(op))
        if op_text is None:
            continue
        lsub, rsub = _subject(left), _subject(right)
        if lsub and _is_literal(right):
            entries.append((*lsub, op_text, parsed.segment(right)))
            covered.add(lsub[0])
        elif rsub and _is_literal(left) and op_text in _FLIP:
            entries.append((*rsub, _FLIP[op_text], parsed.segment(left)))
            covered.add(rsub[0])
    for name in sorted(names_in(parsed.tree) - covered):
        entries.append((name, False, None, None))
    special = {"score": "__score", "score_band": "__score_band", "stage": "__stage",
               "stage_achieved": "__achieved"}
    structs: list[pl.Expr] = []
    for name, is_band, op_text, threshold in entries:
        col = run.as_of_expr() if name == "as_of" else pl.col(
            special.get(name, name))
        band = pl.col(f"{name}__band") if name in banded else pl.lit(None, pl.String)
        if name == "score":
            band = pl.col("__score_band")
        value = render_value(col, env.get(name, "str"))
        if is_band:  # band(x) == 'red': the compared value is the band; x's value stays shown
            value = pl.concat_str([render_value(band, "str"), pl.lit(" ("), value, pl.lit(")")])
        structs.append(pl.struct(
            pl.lit(f"band({name})" if is_band else name).alias("name"),
            value.alias("value"),
            band.cast(pl.String).alias("band"),
            pl.lit(op_text, pl.String).alias("op"),
            pl.lit(threshold, pl.String).alias("threshold"),
        ))
    if not structs:
        return pl.lit([], dtype=_EVIDENCE_DTYPE)
    return pl.concat_arr(structs).arr.to_list().cast(_EVIDENCE_DTYPE)


def _subject(node: ast.expr) -> tuple[str, bool] | None:
    """The name a comparison is about, and whether it compares the name's band."""
    if isinstance(node, ast.Name):
        return node.id, False
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "band" and node.args and isinstance(node.args[0], ast.Name)):
        return node.args[0].id, True
    return None


def _is_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
        return True
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(isinstance(e, ast.Constant) for e in node.elts)
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
        node.func.id == "date")


def _empty_actions(key: str, key_dtype: pl.DataType) -> pl.DataFrame:
    return pl.DataFrame(schema={
        key: key_dtype, "roadmap": pl.String, "stage": pl.String, "action_id": pl.String,
        "kind": pl.String, "title": pl.String, "owner": pl.String, "channel": pl.String,
        "priority": pl.String, "text": pl.String, "evidence": _EVIDENCE_DTYPE,
    })

