"""Incremental aggregation: every aggregate indicator at many dates from one pass over the events.

:func:`healthrules.evaluate` runs one ``group_by(account)`` per date. Over 52 dates that scans
the events 52 times. Here the events are scanned once into a table of partial aggregates per
account and calendar day, and the value of each indicator at each (account, date) is read from
that table with prefix sums, as-of lookups and rolling windows. The output has exactly the raw
columns that :meth:`healthrules.engine.EventsPass.collect` returns (``__{i}__{x}`` and
``__{i}__{x}__prev``), so the evaluator's own assembly turns them into indicators, stages,
scores and actions.

Why it is exact
---------------
Dates are calendar days and so is every window edge: the instant of ``as_of = D`` is the
midnight that ends ``D`` and a trailing window of ``N`` days starts at the midnight that
starts ``D - N + 1`` (both on the events' wall clock). An event is therefore in the window
exactly when its local calendar day is in ``[D - N + 1, D]``, and in a cumulative window
(``all``, or anchored) exactly when its day is at most ``D``. Anchored windows add a condition
that does not depend on the date (``anchor <= ts < anchor + days``), which is evaluated once
per event like the ``where`` filter. So, per account:

- ``count``, ``sum`` and the number of non-null values (for ``mean``) are differences of prefix
  sums over days: ``P(D) - P(D - N)``. Prefix sums of integers are exact (Int64 differences,
  exact modulo 2**64, of a window sum that fits); float values are summed as their exact
  integer limbs (:func:`healthrules.aggregates.exact_limbs`), so a window's sum is the
  engine's exact sum bit for bit, and an empty window is exactly 0.
- ``active_days`` is the prefix sum of "this day had a matching event".
- ``distinct``: per (account, value), an occurrence on day ``d`` counts at the dates
  ``[d, d + N)``; overlapping spans merge into runs, and the count at ``D`` is the prefix sum
  at ``D`` of +1 where a run starts and -1 where it ends. Cumulative windows count first
  occurrences. Every distinct indicator is a column of one presence table.
- ``last_time`` (and ``days_since_last``): the last matching event on or before ``D`` (a
  forward fill within the account), kept when its day is in the window.
- ``first_time`` (and ``days_since_first``): the first matching event on or after the window's
  first day (a backward fill within the account), kept when its day is at most ``D``;
  cumulative windows take the account's first event when one happened by ``D``.
- ``min`` / ``max``: a rolling minimum / maximum over the days of a trailing window (probe rows
  at each date are merged into the day table); cumulative windows use running extremes.

A ``where`` filter that reads ``as_of`` (by name, or through ``days_since()``) depends on the
date; such indicators (rare) fall back to one plain aggregation query per date, and are
counted in the diagnostics (``history_fallback_indicators``). So do windows that start at
another indicator's time (``window: {from: first_purchase}``, with the anchors joined onto the
events of their source, as the engine does), and so do the kinds without an incremental form
(``median``, ``percentile``: history form ``per_date``): a percentile needs every value of its
window, so it is computed by the evaluator's own aggregation, one query over all accounts per
date, exactly as a single evaluation computes it.

Lookups at a date use a single sorted integer key per (account, day) (``account * stride +
day``): one as-of join per table and date offset, for every column at once. Running sums
run over the whole table (sorted by account, then day): the sum of every row up to a key. A
trailing window is the difference of two lookups inside the account's key range (a lookup
before the account's first row lands on an earlier account's last row, which both lookups
share); a cumulative window, and a distinct count, is one lookup less the account's base
(the running sum before its first row, one value per account, gathered by position). Int64
sums wrap, so the differences are exact whenever the account's own sums fit.

Counts (of events, active days, values, and the distinct counts of the presence table) are
never negative and at most their column's total over the table, so they are packed into
words of 63 bits, each count in as many bits as its total needs: a running sum of words is
the words of the running sums, and every window reads each count back exactly
(:func:`_pack`). One running sum per word instead of one per count.
"""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Literal, assert_never

import polars as pl

from healthrules.aggregates import (
    AGGREGATE_KINDS,
    EXACT_SCALE,
    AggregateKind,
    Incremental,
    exact_columns,
    from_grid,
    value_column,
)
from healthrules.compiler import Plan
from healthrules.engine import (
    EventsPass,
    abs_sum_expr,
    aggregate_expr,
    check_sum_range,
    raw_column,
    read_source,
)
from healthrules.engine.aggregate import abs_sum_column, summed_columns
from healthrules.errors import InputDataError
from healthrules.expressions import names_in
from healthrules.inputs import NOT_FINITE, Clock
from healthrules.polars_expr import exact_division
from healthrules.query_flags import OPTIMISED
from healthrules.roadmap import AggregateIndicator

__all__ = ["IncrementalAggregator", "aggregate_attributes", "day_number"]

_ACC = "__acc"
_FIRST = "__first_unit"
_KEY = "__k"
_DAYN = "__dn"
_VAL = "__val"
_EPOCH = dt.date(1970, 1, 1)


def day_number(d: dt.date) -> int:
    """Days since 1970-01-01 (the physical value of a polars Date)."""
    return (d - _EPOCH).days


@dataclass(frozen=True)
class _Spec:
    """One aggregate indicator of one roadmap, as the incremental path computes it."""

    i: int
    ind: AggregateIndicator
    cond: str  # condition column in the day table
    value: str | None  # value column (sum/mean/min/max), cast already
    value_float: bool

    @property
    def out(self) -> str:
        return f"__{self.i}__{self.ind.id}"

    @property
    def kind(self) -> AggregateKind:
        return AGGREGATE_KINDS[self.ind.aggregate]

    @property
    def form(self) -> Incremental:
        """How the indicator is computed incrementally (the registry's history form)."""
        return self.kind.history

    @property
    def trailing(self) -> int | None:
        w = self.ind.window
        return w.days if w.kind == "trailing" else None


@dataclass
class _Fetch:
    """Columns to read from one table at one date offset, by as-of lookup."""

    table: str
    strategy: Literal["backward", "forward"]
    offset: int
    columns: set[str] = field(default_factory=set)

    @property
    def suffix(self) -> str:
        return f"@{self.table}{self.strategy[0]}{self.offset}"


class IncrementalAggregator:
    """Raw aggregates of every aggregate indicator of a plan, at many (account, date) pairs.

    Build it once over the events (:meth:`prepare` reads them in one pass), then ask for the
    values of any pairs with :meth:`values`, in chunks if the pairs are many.

    Parameters
    ----------
    plan
        The compiled plan.
    accounts
        The checked accounts frame (``healthrules.inputs.check_accounts``), one row per key,
        sorted by key. An account's position in it is its internal index. For dated
        accounts, one row per account and set of values of :func:`aggregate_attributes`
        (sorted by key): a position then stands for an account with those values.
    clock
        The clock of the last date (its time zone and time unit are those of the events).
    source
        The event source whose indicators this aggregator computes (default: the default
        source); history builds one aggregator per source.
    """

    def __init__(self, plan: Plan, accounts: pl.DataFrame, clock: Clock,
                 source: str | None = None) -> None:
        self.plan = plan
        self.accounts = accounts
        self.clock = clock
        self.key = plan.account_key
        self.source = plan.default_source if source is None else source
        self.columns = plan.sources[self.source]
        self.events_pass = EventsPass(plan, clock, accounts, source=self.source)
        self.specs: list[_Spec] = []
        self.fallback: list[tuple[int, int, AggregateIndicator]] = []
        self._conds: dict[tuple[str | None, str | None, int | None], str] = {}
        self._cond_exprs: dict[str, pl.Expr] = {}
        self._values: dict[tuple[str, bool], str] = {}
        self._value_exprs: dict[str, pl.Expr] = {}
        self._coded: set[str] = set()  # value columns of distinct counts coded as integers
        self._plan_specs()
        # key = account * stride + (day - base): days from 1970 - 2870 years to 1970 + 2870
        # years, and a trailing window never reaches the previous account's keys
        self.base = -(1 << 20)
        self.stride = 1 << 21
        self._last_day = 0
        self.table = pl.DataFrame()
        self.extremes = pl.DataFrame()
        self.constants = pl.DataFrame()
        self.presence = pl.DataFrame()
        # per account position (row a: account a), the running sums of the day table and
        # of the presence table just before the account's first row (see _account_bases)
        self.table_base = pl.DataFrame()
        self.presence_base = pl.DataFrame()
        # running sums of counts packed into words (see _pack): per column of a running
        # count, its word, the field's lowest bit and its width
        self.packed: dict[str, tuple[str, int, int]] = {}
        self.presence_packed: dict[str, tuple[str, int, int]] = {}
        self.accounts_with_events = pl.DataFrame({_ACC: []}, schema={_ACC: pl.UInt32})
        self.diagnostics: dict[str, int] = {}

    # ------------------------------------------------------------------ planning

    def _plan_specs(self) -> None:
        plan = self.plan
        ev = self.columns
        for i, idx, ind in plan.source_indicators(self.source):
            a = plan.roadmaps[i].analysis
            where = a.expressions.get(f"indicators[{idx}].where")
            per_date = AGGREGATE_KINDS[ind.aggregate].history == "per_date"
            if per_date or (where is not None and _reads_as_of(where.tree)) or (
                    a.anchored_on_indicator(ind)):  # an anchor moves with the date
                self.fallback.append((i, idx, ind))
                continue
            w = ind.window
            anchor = (w.from_, w.days) if w.kind == "anchored" else (None, None)
            ckey = (where.source if where is not None else None, *anchor)
            cond = self._conds.get(ckey)
            if cond is None:
                cond = f"__c{len(self._conds)}"
                self._conds[ckey] = cond
                expr = pl.lit(True)
                if where is not None:
                    expr = self.events_pass.filter_expr(a, where)
                if w.kind == "anchored":
                    expr = expr & self.events_pass.window(ind, False)[0]
                self._cond_exprs[cond] = expr.fill_null(False)
            value: str | None = None
            is_float = False
            if AGGREGATE_KINDS[ind.aggregate].of == "value":
                assert ind.of is not None
                is_float = ev.values.get(ind.of) == "float"
                value = self._values.get((ind.of, is_float))
                if value is None:
                    value = f"__v{len(self._values)}"
                    self._values[(ind.of, is_float)] = value
                    self._value_exprs[value] = value_column(ind.of, ev.values.get(ind.of))
            self.specs.append(_Spec(i, ind, cond, value, is_float))


    def _previous(self, s: _Spec) -> bool:
        """Whether the indicator's previous window is computed too (``compare``, or read by
        a derived trend)."""
        return s.ind.id in self.plan.roadmaps[s.i].analysis.previous_windows

    def _needed_columns(self) -> tuple[set[str], set[str]]:
        return _needed_columns(self.plan, self.source)

    # ------------------------------------------------------------------ the one pass

    def partials(self) -> dict[str, pl.Expr]:
        """The per-(account, day) partial aggregates, by column name."""
        ts = pl.col(self.columns.timestamp)
        out: dict[str, pl.Expr] = {}
        for s in self.specs:
            c = pl.col(s.cond)
            form = s.form
            match form:
                case "running_count" | "running_days":
                    out[f"{s.cond}__n"] = c.sum().cast(pl.Int64)
                case "running_sum" | "running_mean":
                    assert s.value is not None
                    v = pl.when(c).then(pl.col(s.value))
                    if s.value_float:  # the exact limbs (see healthrules.aggregates)
                        assert s.ind.of is not None
                        hi, lo = exact_columns(s.ind.of)
                        out[f"{s.cond}{s.value}__sh"] = pl.when(c).then(pl.col(hi)).sum()
                        out[f"{s.cond}{s.value}__sl"] = pl.when(c).then(pl.col(lo)).sum()
                    else:
                        out[f"{s.cond}{s.value}__s"] = v.sum()
                    out[f"{s.cond}{s.value}__nn"] = v.count().cast(pl.Int64)
                case "running_min" | "running_max":
                    assert s.value is not None
                    v = pl.when(c).then(pl.col(s.value))
                    ext = _extreme(form)
                    out[f"{s.cond}{s.value}__{ext}"] = v.min() if ext == "min" else v.max()
                    out[f"{s.cond}__n"] = c.sum().cast(pl.Int64)
                case "first_event":
                    out[f"{s.cond}__tmin"] = pl.when(c).then(ts).min()
                    out[f"{s.cond}__n"] = c.sum().cast(pl.Int64)
                case "last_event":
                    out[f"{s.cond}__tmax"] = pl.when(c).then(ts).max()
                case "presence":
                    pass  # from the presence tables (prepare), not from the day table
                case "per_date":
                    raise AssertionError("per-date kinds are computed by the fallback")
                case _:
                    assert_never(form)
        return out

    def prepare(self, events: pl.LazyFrame, dates: Sequence[dt.date]) -> dict[str, int]:
        """Read the events once and build the day tables for dates up to ``max(dates)``.

        Returns the diagnostics of the read (events read, dropped, ignored).
        """
        plan = self.plan
        ev = self.columns
        ts = pl.col(ev.timestamp)
        first, last = min(dates), max(dates)
        schema = events.collect_schema()
        first_clock = replace(self.clock, as_of=first, end=dt.datetime.combine(
            first + dt.timedelta(days=1), dt.time()))
        start, _ = EventsPass(plan, first_clock, self.accounts,
                              source=self.source).read_range()
        end = self.clock.end
        cols, attrs = self._needed_columns()
        # as the engine reads them: dates at midnight, NaN and inf as null, the range
        # pushed down to the scan
        lf = read_source(events, plan, self.source, self.clock, schema,
                         cols | ({ev.event} if ev.event is not None else set()), start, end)
        # the account's position (null for unknown accounts) and the attributes filters read
        # (dated accounts: one row per account and set of values of those attributes, so
        # an account's events are aggregated once per set; they are counted once)
        right = self.accounts.lazy().with_row_index(_ACC).select(
            pl.col(self.key).alias("__key"), _ACC, *sorted(attrs),
            pl.col(self.key).is_first_distinct().alias(_FIRST))
        key_dtype = schema.get(ev.account)
        if key_dtype is not None and self.accounts.schema[self.key] != key_dtype:
            right = right.with_columns(pl.col("__key").cast(key_dtype, strict=False))
        lf = lf.join(right, left_on=ev.account, right_on="__key", how="left")
        # read and joined once for the three queries below (the counts, the day table and
        # the presence rows): about a tenth less CPU for this step at 5M events
        lf = lf.cache()
        account = pl.col(ev.account)
        known = pl.col(_ACC).is_not_null() & ts.is_not_null()
        # counted once per event (a mask, not a filter: filtering would copy every column)
        once = pl.col(_FIRST).fill_null(True)
        unknown = once & account.is_not_null() & pl.col(_ACC).is_null()
        diag_lf = lf.select(
            once.sum().alias("events_read"),
            (once & account.is_null()).sum().alias("events_null_account"),
            (once & ts.is_null()).sum().alias("events_null_timestamp"),
            ((once & pl.col(ev.event).is_null()).sum() if ev.event is not None
             else pl.lit(0, pl.UInt32)).alias("events_null_event"),
            pl.col(NOT_FINITE).filter(once).sum().alias("values_not_finite"),
            unknown.sum().alias("events_unknown_account"),
            account.filter(unknown).n_unique().alias("unknown_accounts"))
        day = ts.dt.date().cast(pl.Int32).cast(pl.Int64)
        summed = sorted(summed_columns(plan, self.source))
        # the rows the day table leaves out (an unknown account, a null timestamp) that an
        # evaluation's range check adds all the same: their absolute sums per account (as
        # the events spell it) and day (null: no timestamp), so that history refuses what
        # evaluate refuses (see _check_sum_ranges)
        dropped = once & ~known & account.is_not_null()
        left_out_lf = (lf.filter(dropped).group_by(account, day.alias(_DAYN)).agg(
            abs_sum_expr(c) for c in summed) if summed else None)
        lf = lf.filter(known).with_columns(
            (pl.col(_ACC).cast(pl.Int64) * self.stride + (day - self.base)).alias(_KEY),
            *[e.alias(n) for n, e in self._cond_exprs.items()],
            *[e.alias(n) for n, e in self._value_exprs.items()])
        parts = self.partials()
        # the absolute sums of summed columns, per (account, day): checked per account
        parts.update({abs_sum_column(c): abs_sum_expr(c)
                      for c in sorted(summed_columns(plan, self.source))})
        # one integer key per (account, day): faster to group by than the pair
        day_lf = lf.group_by(_KEY).agg(*[e.alias(n) for n, e in parts.items()]) if parts \
            else lf.group_by(_KEY).agg(pl.len().alias("__n_all"))
        distinct = [s for s in self.specs if s.form == "presence"]
        of_cols = sorted({s.kind.of_column(s.ind.of, ev.user) or "" for s in distinct})
        presence_lfs: list[pl.LazyFrame] = []
        read_schema = lf.collect_schema()
        for of in of_cols:
            flags = sorted({s.cond for s in distinct
                            if s.kind.of_column(s.ind.of, ev.user) == of})
            # text values as small integers (a dictionary code) before the group_by: grouping
            # and then sorting by an integer costs less than by the text
            val = pl.col(of)
            if read_schema[of] == pl.String:
                val = val.cast(pl.Categorical).to_physical()
                self._coded.add(of)
            presence_lfs.append(
                lf.filter(pl.col(of).is_not_null() & pl.any_horizontal([pl.col(f) for f in flags]))
                .group_by(_KEY, val.alias(_VAL)).agg([pl.col(f).any() for f in flags]))
        collected = pl.collect_all([diag_lf, day_lf, *presence_lfs,
                                    *([left_out_lf] if left_out_lf is not None else [])],
                                   optimizations=OPTIMISED)
        left_out = collected.pop() if left_out_lf is not None else None
        diag = collected[0].row(0, named=True)
        self.diagnostics = {k: int(v) for k, v in diag.items()}
        self.diagnostics["history_fallback_indicators"] = len(self.fallback)
        self._last_day = day_number(last)
        groups = [(of, pres, [s for s in distinct if s.kind.of_column(s.ind.of, ev.user) == of])
                  for of, pres in zip(of_cols, collected[2:], strict=True)]
        # the presence table in a thread (polars releases the GIL) while this one checks the
        # day table and builds it: each is a chain of sorts and scans that keeps about one
        # core busy
        with ThreadPoolExecutor(max_workers=1) as pool:
            presence = pool.submit(self._presence_table, groups) if groups else None
            day_df = self._split_key(collected[1])
            checks = [abs_sum_column(c) for c in summed]
            if checks:
                assert left_out is not None
                keys = self.accounts.get_column(self.key)
                if key_dtype is not None and keys.dtype != key_dtype:
                    keys = keys.cast(key_dtype, strict=False)
                self._check_sum_ranges(day_df.select(_ACC, _DAYN, *checks),
                                       left_out.rename({ev.account: self.key}), keys, dates)
                day_df = day_df.drop(checks)
            lo = day_df[_DAYN].min()
            if isinstance(lo, int) and lo - self.base <= max(
                    [s.trailing or 0 for s in self.specs] + [0]):
                raise ValueError(f"events dated before {_EPOCH + dt.timedelta(days=self.base)} "
                                 "are not supported by history()")
            self._build_table(day_df)
            self.presence = presence.result() if presence is not None else pl.DataFrame()
        return dict(self.diagnostics)

    def _check_sum_ranges(self, days: pl.DataFrame, left_out: pl.DataFrame,
                          keys: pl.Series, dates: Sequence[dt.date]) -> None:
        """Refuse (``check_sum_range``) exactly what ``evaluate`` refuses at some date of
        ``dates``: an account whose absolute values of a summed column add up to
        :data:`healthrules.aggregates.EXACT_BOUND` or more over the events that date's
        evaluation reads (its :meth:`EventsPass.read_range`, and the rows with no timestamp),
        the rows of unknown accounts included.

        ``days``: the day table's absolute sums per account position (``__acc``) and day;
        ``left_out``: those of the rows the day table leaves out, per account key and day
        (null: no timestamp); ``keys``: the account key of each position, in the events'
        dtype. One check over everything read first (the usual answer: nothing is near);
        only when it fails, one per date, which names the first date that cannot be
        computed. Within a date's range, the running sums' differences are then exact
        (they wrap modulo 2**64, and each window's own sum fits).
        """
        plan, checks = self.plan, [c for c in days.columns if c not in (_ACC, _DAYN)]

        def sums(where: pl.Expr | None) -> pl.DataFrame:
            known = days if where is None else days.filter(where)
            other = left_out if where is None else left_out.filter(
                where | pl.col(_DAYN).is_null())
            per = known.group_by(_ACC).agg(pl.col(checks).sum()).select(
                pl.col(_ACC).replace_strict(range(keys.len()), keys, default=None,
                                            return_dtype=keys.dtype).alias(self.key),
                *checks)
            both = pl.concat([per, other.select(pl.col(self.key).cast(keys.dtype), *checks)])
            return both.group_by(self.key).agg(pl.col(checks).sum())

        try:
            check_sum_range(plan, self.source, sums(None), self.key)
            return
        except InputDataError:
            pass  # too much over everything read: which dates cannot be computed
        for d in sorted(set(dates)):
            clock = replace(self.clock, as_of=d, end=dt.datetime.combine(
                d + dt.timedelta(days=1), dt.time()))
            start, _ = EventsPass(plan, clock, self.accounts, source=self.source).read_range()
            last = pl.col(_DAYN) <= day_number(d)
            # a range that starts within a day (a window from a datetime attribute) counts
            # that whole day: a refusal there may be one the evaluation would not make
            where = last if start is None else last & (pl.col(_DAYN) >= day_number(start.date()))
            try:
                check_sum_range(plan, self.source, sums(where), self.key)
            except InputDataError as e:
                raise InputDataError([replace(
                    i, message=f"{i.message}; over the events the history's date {d} reads "
                    "(as evaluate at that date would; other dates may be computable: ask "
                    "for a history without this one)")
                    for i in e.issues]) from None

    def _split_key(self, df: pl.DataFrame) -> pl.DataFrame:
        """Add the account position and the day number encoded in ``__k``."""
        k = pl.col(_KEY)
        return df.with_columns((k // self.stride).cast(pl.UInt32).alias(_ACC),
                               (k % self.stride + self.base).alias(_DAYN))

    def _with_key(self, df: pl.DataFrame) -> pl.DataFrame:
        return df.with_columns(
            (pl.col(_ACC).cast(pl.Int64) * self.stride + (pl.col(_DAYN) - self.base)).alias(_KEY))

    def _build_table(self, day_df: pl.DataFrame) -> None:
        """Day table sorted by key, with per-account prefix sums, fills and constants."""
        acc = pl.col(_ACC)
        # only the columns that some lookup reads (a count's active days only for
        # active_days, ...)
        fetches, _, based = self._fetch_plan()
        wanted = {c for f in fetches.values() if f.table == "t" for c in f.columns}
        # the running counts some lookup reads, packed into words before the sort: a
        # count of events per day and its active day (0 or 1) are never negative
        counts: dict[str, pl.Expr] = {}
        for name in day_df.columns:
            if name.endswith(("__n", "__nn")):
                c0 = pl.col(name).fill_null(0)
                if f"{name}__P" in wanted:
                    counts[f"{name}__P"] = c0
                if name.endswith("__n") and f"{name}__A" in wanted:
                    counts[f"{name}__A"] = (c0 > 0).cast(pl.Int64)
        words: list[pl.Expr] = []
        self.packed = {}
        if counts:
            totals = day_df.select(e.sum().alias(n) for n, e in counts.items()).row(
                0, named=True)
            self.packed = _pack({n: int(v or 0) for n, v in totals.items()}, "__Wt")
            words = _pack_words(self.packed, counts)
        packed_raw = {n for n in day_df.columns if n.endswith(("__n", "__nn"))
                      and all(f"{n}__{x}" not in wanted or f"{n}__{x}" in self.packed
                              for x in ("P", "A"))}
        t = day_df.with_columns(words).drop(*packed_raw).sort(_KEY)
        exprs: list[pl.Expr] = [pl.col(w).cum_sum() for w in _words(self.packed)]
        extremes: list[str] = []
        const: list[pl.Expr] = []
        for name in t.columns:
            if name in (_ACC, _DAYN, _KEY, "__n_all") or name in _words(self.packed):
                continue
            c = pl.col(name)
            if name.endswith(("__n", "__nn", "__sh", "__sl")) or (
                    name.endswith("__s") and t.schema[name] == pl.Int64):
                c0 = c.fill_null(0)
                exprs.append(c0.cum_sum().alias(f"{name}__P"))
                if name.endswith("__n"):
                    exprs.append((c0 > 0).cast(pl.Int64).cum_sum().alias(f"{name}__A"))
            elif name.endswith(("__min", "__max")):
                extremes.append(name)
                running = c.cum_min() if name.endswith("__min") else c.cum_max()
                exprs.append(_ffill_within(running.over(_ACC), acc).alias(f"{name}__C"))
            elif name.endswith("__tmax"):
                exprs.append(_ffill_within(c, acc).alias(f"{name}__F"))
            elif name.endswith("__tmin"):
                exprs.append(_bfill_within(c, acc).alias(f"{name}__B"))
                const.append(c.min().alias(f"{name}__first"))
        keep = wanted | set(_words(self.packed))
        self.table = t.select(_KEY, _ACC, _DAYN,
                              *[e for e in exprs if e.meta.output_name() in keep])
        self.table_base = _account_bases(self.table, sorted(self._stored(based)),
                                         self.accounts.height)
        self.extremes = t.select(_KEY, *extremes) if extremes else pl.DataFrame()
        self.constants = (t.group_by(_ACC).agg(const) if const else pl.DataFrame())
        self.accounts_with_events = t.select(pl.col(_ACC).unique())

    def _presence_table(self, groups: list[tuple[str, pl.DataFrame, list[_Spec]]],
                        ) -> pl.DataFrame:
        """One table of the distinct counts of every ``distinct`` indicator: per (account,
        day) where a count changes, the count of each (``__D<j>``, see the module notes),
        sorted by key.

        ``groups``: per value column, its presence rows (``__k``, the value, a flag per
        condition: one row per (account, day, value) with a matching event) and its
        indicators.
        """
        deltas: list[pl.DataFrame] = []
        last = self._last_day
        acc, val, day = pl.col(_ACC), pl.col(_VAL), pl.col(_DAYN)
        for of, pres, specs in groups:
            pres = self._split_key(pres)
            if all(s.trailing is None for s in specs):
                for s in specs:  # +1 on the day a value is first seen (no order needed)
                    deltas.append(pres.filter(pl.col(s.cond)).group_by(_ACC, _VAL).agg(
                        day.min()).select(_ACC, _DAYN, pl.lit(1, pl.Int64).alias(
                            self._presence_column(s))))
                continue
            # values as small integers (a dictionary code: text is coded by the events
            # pass), sorted once by (account, value, day) for every indicator of this
            # column; a filter keeps that order
            if of not in self._coded:
                pres = pres.with_columns(pl.col(_VAL).rank("dense"))
            ordered = _sort_by_account_value_day(pres)
            for s in specs:
                col = self._presence_column(s)
                occ = ordered.filter(pl.col(s.cond)).select(_ACC, _VAL, _DAYN)
                before = ((acc.shift(1) == acc) & (val.shift(1) == val)).fill_null(False)
                n = s.trailing
                if n is None:  # +1 at the first occurrence of each value
                    deltas.append(occ.filter(~before).select(
                        _ACC, _DAYN, pl.lit(1, pl.Int64).alias(col)))
                    continue
                # a value counts on the days [d, d + n) after each occurrence d: +1 where a
                # run of overlapping spans starts, -1 where it ends
                after = ((acc.shift(-1) == acc) & (val.shift(-1) == val)).fill_null(False)
                starts = ~before | (day - day.shift(1) >= n)
                ends = ~after | (day.shift(-1) - day >= n)
                marks = occ.select(_ACC, _DAYN, starts.fill_null(True).alias("__s"),
                                   ends.fill_null(True).alias("__e"))
                deltas.append(marks.filter("__s").select(
                    _ACC, _DAYN, pl.lit(1, pl.Int64).alias(col)))
                deltas.append(marks.filter(pl.col("__e") & (day + n <= last)).select(
                    _ACC, (day + n).alias(_DAYN), pl.lit(-1, pl.Int64).alias(col)))
        if not deltas:
            return pl.DataFrame()
        # the counts packed into words: a count at a date is at most the number of its +1
        # rows (one per value and run), and never negative
        ups: dict[str, int] = {}
        for d in deltas:
            col = d.columns[-1]
            ups[col] = ups.get(col, 0) + (d.height if d[col].first() == 1 else 0)
        packed = _pack(ups, "__Wp")
        words = []
        for d in deltas:
            word, shift, _ = packed[d.columns[-1]]
            words.append(d.select(_ACC, _DAYN, (pl.col(d.columns[-1]) * (1 << shift))
                                  .alias(word)))
        cols = _words(packed)
        # several rows may share a key: the as-of lookup takes the last one, whose running
        # sums include them all
        t = self._with_key(pl.concat(words, how="diagonal")).with_columns(
            pl.col(cols).fill_null(0)).sort(_KEY)
        t = t.select(_KEY, _ACC, *[pl.col(c).cum_sum() for c in cols])
        self.presence_base = _account_bases(t, cols, self.accounts.height)
        self.presence_packed = packed
        return t

    def _stored(self, columns: set[str], table: str = "t") -> set[str]:
        """The columns of a table that hold ``columns``: a packed count's word."""
        packed = self.packed if table == "t" else self.presence_packed
        return {packed[c][0] if c in packed else c for c in columns}

    @staticmethod
    def _presence_column(s: _Spec) -> str:
        """The column of a ``distinct`` indicator's counts in the presence table."""
        return f"__D{s.i}__{s.ind.id}"

    # ------------------------------------------------------------------ values at dates

    def values(self, pairs: pl.DataFrame, events: pl.LazyFrame | None = None) -> pl.DataFrame:
        """Raw aggregates at (account, date) pairs.

        Parameters
        ----------
        pairs
            Columns ``__hk`` (the output row id), ``__acc`` (the account's position in the
            accounts frame) and ``__as_of`` (Date).
        events
            The events again, only needed when some indicator falls back to plain queries.

        Returns
        -------
        polars.DataFrame
            ``__hk`` and the ``__{i}__{x}`` / ``__{i}__{x}__prev`` columns, one row per pair
            whose account has events (the others are null, as in a single evaluation).
        """
        # sorted by (account, day): by the one integer key of the pair (a sort by one
        # integer column costs less than by two)
        g = pairs.join(self.accounts_with_events, on=_ACC, how="semi").with_columns(
            pl.col("__as_of").cast(pl.Int32).cast(pl.Int64).alias(_DAYN))
        g = g.sort(pl.col(_ACC).cast(pl.Int64) * self.stride + (pl.col(_DAYN) - self.base))
        fetched = self._fetch_all(g)
        out = self._assemble(fetched)
        if self.fallback and events is not None:
            out = self._with_fallback(out, pairs, events)
        return out

    def _probe_keys(self, g: pl.DataFrame, offset: int) -> pl.Expr:
        day = pl.max_horizontal(pl.col(_DAYN) - offset - self.base, pl.lit(0, pl.Int64))
        return pl.col(_ACC).cast(pl.Int64) * self.stride + day

    def _fetch_plan(self) -> tuple[dict[tuple[str, str, int], _Fetch], dict[int, set[str]],
                                   set[str]]:
        """The as-of lookups (per table, strategy and date offset: the columns read), the
        rolling extremes (per offset) and the running sums of the day table that some
        cumulative window reads (those need the account's base, :func:`_account_bases`)."""
        fetches: dict[tuple[str, str, int], _Fetch] = {}
        rolling: dict[int, set[str]] = {}
        based: set[str] = set()

        def need(table: str, strategy: Literal["backward", "forward"], offset: int,
                 column: str) -> None:
            k = (table, strategy, offset)
            fetches.setdefault(k, _Fetch(table, strategy, offset)).columns.add(column)

        for s in self.specs:
            form = s.form
            n = s.trailing
            ends = [0, n] if (n is not None and self._previous(s)) else [0]

            def running(col: str, e: int, n: int | None = n) -> None:
                """A running sum over a window: two lookups (trailing), or one lookup less
                the account's base (cumulative)."""
                need("t", "backward", e, col)
                if n is not None:
                    need("t", "backward", e + n, col)
                else:
                    based.add(col)

            for e in ends:
                match form:
                    case "running_count":
                        running(f"{s.cond}__n__P", e)
                    case "running_days":
                        running(f"{s.cond}__n__A", e)
                    case "running_sum" | "running_mean":
                        running(f"{s.cond}{s.value}__nn__P", e)
                        for limb in ("sh", "sl") if s.value_float else ("s",):
                            running(f"{s.cond}{s.value}__{limb}__P", e)
                    case "running_min" | "running_max":
                        ext = _extreme(form)
                        if n is None:
                            need("t", "backward", e, f"{s.cond}{s.value}__{ext}__C")
                        else:
                            rolling.setdefault(e, set()).add(f"{s.cond}{s.value}__{ext}")
                    case "first_event":
                        if n is None:
                            running(f"{s.cond}__n__P", e)
                        else:
                            need("t", "forward", e + n - 1, f"{s.cond}__tmin__B")
                    case "last_event":
                        need("t", "backward", e, f"{s.cond}__tmax__F")
                    case "presence":
                        need("p", "backward", e, self._presence_column(s))
                    case "per_date":
                        raise AssertionError("per-date kinds are computed by the fallback")
                    case _:
                        assert_never(form)
        return fetches, rolling, based

    def _fetch_all(self, g: pl.DataFrame) -> pl.DataFrame:
        fetches, rolling, based = self._fetch_plan()
        cols: list[pl.Series] = [g["__hk"], g[_ACC], g[_DAYN]]
        # the bases of the account of each pair (a gather by position)
        where = g[_ACC]
        cols.extend(self.table_base[c].gather(where).alias(f"{c}@base")
                    for c in sorted(self._stored(based)))
        if self.presence_base.width:
            cols.extend(self.presence_base[c].gather(where).alias(f"{c}@base")
                        for c in self.presence_base.columns)
        # one lazy as-of join per lookup, collected together: polars runs them in parallel
        # (run one after the other, eagerly, they used one core)
        me = pl.col(_ACC).cast(pl.Int64)
        lookups: list[pl.LazyFrame] = []
        for f in fetches.values():
            right = self.table if f.table == "t" else self.presence
            f = replace(f, columns=self._stored(f.columns, f.table))
            sums = {c for c in f.columns if c.endswith(("__P", "__A")) or f.table == "p"}
            fills = sorted(f.columns - sums)
            left = g.lazy().select(self._probe_keys(g, f.offset).alias(_KEY),
                                   *([me.alias("__me")] if fills else []))
            picked = right.lazy().select(
                _KEY, *([pl.col(_ACC).cast(pl.Int64).alias("__src")] if fills else []),
                *sorted(f.columns))
            same = pl.col("__src") == pl.col("__me")
            picks: list[pl.Expr] = []
            for c in sorted(f.columns):
                if c in sums:
                    # running sums over the whole table: the sum of every row up to the key
                    # (0 before the table's first row), whatever account the row found is of
                    picked_c = pl.col(c).fill_null(0)
                else:  # fills: another account's value is no value
                    picked_c = pl.when(same).then(pl.col(c))
                picks.append(picked_c.alias(f"{c}{f.suffix}"))
            lookups.append(left.set_sorted(_KEY).join_asof(
                picked.set_sorted(_KEY), on=_KEY, strategy=f.strategy).select(picks))
        for frame in pl.collect_all(lookups, engine="in-memory", optimizations=OPTIMISED):
            cols.extend(frame.get_columns())
        for e, names in rolling.items():
            cols.extend(self._rolling(g, e, names))
        out = pl.DataFrame(cols)
        if self.constants.width:
            out = out.join(self.constants, on=_ACC, how="left", maintain_order="left")
        return out

    def _rolling(self, g: pl.DataFrame, offset: int, names: set[str]) -> list[pl.Series]:
        """Trailing min/max: probe rows merged into the day table, then a rolling extreme."""
        windows: dict[str, set[int]] = {}
        for s in self.specs:
            n = s.trailing
            form = s.form
            if (form == "running_min" or form == "running_max") and n is not None:
                windows.setdefault(f"{s.cond}{s.value}__{_extreme(form)}", set()).add(n)
        probes = g.select(self._probe_keys(g, offset).alias(_KEY)).with_row_index("__row")
        ext = self.extremes.select(_KEY, *sorted(names)).with_columns(
            pl.lit(None, pl.UInt32).alias("__row"))
        merged = pl.concat([ext, probes], how="diagonal_relaxed").sort(
            _KEY, "__row", nulls_last=False, maintain_order=True)
        out: list[pl.Series] = []
        exprs: list[pl.Expr] = []
        for name in sorted(names):
            for n in sorted(windows[name]):
                fn = (pl.col(name).rolling_min_by if name.endswith("__min")
                      else pl.col(name).rolling_max_by)
                exprs.append(fn(_KEY, window_size=f"{n}i").alias(f"{name}__R{n}@{offset}"))
        rolled = merged.with_columns(exprs).filter(pl.col("__row").is_not_null()).sort("__row")
        for e in exprs:
            name = e.meta.output_name()
            out.append(rolled[name])
        return out

    def _assemble(self, f: pl.DataFrame) -> pl.DataFrame:
        """Turn fetched columns into the raw aggregate of every indicator (and previous)."""
        exprs: list[pl.Expr] = [pl.col("__hk")]
        dn = pl.col(_DAYN)
        for s in self.specs:
            n = s.trailing
            ends = [0, n] if (n is not None and self._previous(s)) else [0]
            for e in ends:
                name = s.out + ("__prev" if e else "")
                exprs.append(self._value(s, e, n, dn).alias(name))
        return f.select(exprs)

    def _value(self, s: _Spec, e: int, n: int | None, dn: pl.Expr) -> pl.Expr:
        form = s.form

        def at(col: str, offset: int, strategy: str = "b") -> pl.Expr:
            return pl.col(f"{col}@t{strategy}{offset}")

        def window(col: str) -> pl.Expr:
            # running sums over the whole table (sorted by account, then day): a trailing
            # window is the difference of two lookups in the account's key range, a
            # cumulative one the lookup less the sum of the rows before the account's
            word, lowest, width = self.packed.get(col, (col, 0, 0))
            if n is None:
                total = at(word, e) - pl.col(f"{word}@base")
            else:
                total = at(word, e) - at(word, e + n)
            return _field(total, lowest, width) if col in self.packed else total

        match form:
            case "running_count":
                return window(f"{s.cond}__n__P")
            case "running_days":
                return window(f"{s.cond}__n__A")
            case "presence":
                word, lowest, width = self.presence_packed[self._presence_column(s)]
                return _field(pl.col(f"{word}@pb{e}") - pl.col(f"{word}@base"), lowest, width)
            case "running_sum" | "running_mean":
                # differences of Int64 running sums within the account: exact (modulo 2**64,
                # and a window's own sum fits, see healthrules.aggregates.EXACT_BOUND)
                if s.value_float:
                    hi = window(f"{s.cond}{s.value}__sh__P").cast(pl.Int128)
                    lo = window(f"{s.cond}{s.value}__sl__P").cast(pl.Int128)
                    total = from_grid(hi * EXACT_SCALE + lo)
                else:
                    total = window(f"{s.cond}{s.value}__s__P")
                present = window(f"{s.cond}{s.value}__nn__P")
                if form == "running_mean":
                    return pl.when(present > 0).then(exact_division(total, present))
                zero = pl.lit(0.0 if s.value_float else 0,
                              pl.Float64 if s.value_float else pl.Int64)
                return pl.when(present > 0).then(total).otherwise(zero)
            case "running_min" | "running_max":
                col = f"{s.cond}{s.value}__{_extreme(form)}"
                if n is None:
                    return at(f"{col}__C", e)
                return pl.col(f"{col}__R{n}@{e}")
            case "last_event":
                last = at(f"{s.cond}__tmax__F", e)
                if n is None:
                    return last
                lo = dn - e - n + 1
                return pl.when(_local_day(last) >= lo).then(last)
            case "first_event":
                if n is None:
                    seen = window(f"{s.cond}__n__P") > 0
                    return pl.when(seen).then(pl.col(f"{s.cond}__tmin__first"))
                first = pl.col(f"{s.cond}__tmin__B@tf{e + n - 1}")
                return pl.when(_local_day(first) <= dn - e).then(first)
            case "per_date":
                raise AssertionError("per-date kinds are computed by the fallback")
            case _:
                assert_never(form)

    # ------------------------------------------------------------------ fallback

    def _with_fallback(self, out: pl.DataFrame, pairs: pl.DataFrame,
                       events: pl.LazyFrame) -> pl.DataFrame:
        """Indicators whose filter reads ``as_of``, and the kinds without an incremental form
        (percentiles): one plain query per date, over all accounts."""
        ev = self.columns
        schema = events.collect_schema()
        parts: list[pl.DataFrame] = []
        # no pair (a grid where no account exists): one date all the same, joined with no
        # pair, so that the columns are there (empty) as in every other grid
        for d in pairs["__as_of"].unique().sort().to_list() or [self.clock.as_of]:
            clock = replace(self.clock, as_of=d, end=dt.datetime.combine(
                d + dt.timedelta(days=1), dt.time()))
            run = EventsPass(self.plan, clock, self.accounts, source=self.source)
            aggs: list[pl.Expr] = []
            attrs: set[str] = set()
            cols = {ev.account, ev.timestamp}
            anchored = False
            for i, idx, ind in self.fallback:
                a = self.plan.roadmaps[i].analysis
                where = a.expressions.get(f"indicators[{idx}].where")
                names = names_in(where.tree) if where is not None else set()
                cols |= {x for x in names if x in a.source_types.get(self.source, {})}
                attrs |= {x for x in names if x in a.attribute_types}
                kind = AGGREGATE_KINDS[ind.aggregate]
                of = kind.of_column(ind.of, ev.user)
                if of is not None:
                    cols.add(of)
                if a.anchored_on_indicator(ind):
                    anchored = True
                elif ind.window.from_ is not None:
                    attrs.add(ind.window.from_)
                for prev in (False, True) if ind.id in a.previous_windows else (False,):
                    wcond, _ = run.window(ind, prev, i)
                    if where is not None:
                        wcond = wcond & run.filter_expr(a, where)
                    cond = wcond.fill_null(False)
                    aggs.append(aggregate_expr(self.plan, ind, cond).alias(
                        raw_column(i, ind.id, prev)))
            if anchored:  # the anchors' own filters and columns
                more_cols, more_attrs = run.read_columns()
                cols |= more_cols
                attrs |= more_attrs
            lf = read_source(events, self.plan, self.source, clock, schema, cols, None,
                             clock.end).filter(pl.col(ev.timestamp).is_not_null())
            # the account's positions (one per unit of dated accounts) and the attributes
            # (and the instants of the windows anchored at an attribute: an anchor
            # indicator's own window may be one, which its per-date query reads)
            right = self.accounts.lazy().with_row_index(_ACC).select(
                pl.col(self.key).alias("__key"), _ACC, *sorted(attrs),
                *(run.attribute_instants() if anchored else ()))
            key_dtype = schema.get(ev.account)
            if key_dtype is not None and self.accounts.schema[self.key] != key_dtype:
                right = right.with_columns(pl.col("__key").cast(key_dtype, strict=False))
            lf = lf.join(right, left_on=ev.account, right_on="__key", how="inner")
            lf = lf.with_columns(pl.col(ev.timestamp).dt.date().alias("__day"))
            if anchored:
                lf = run.with_anchors(lf)
            got = lf.group_by(_ACC).agg(aggs).collect(optimizations=OPTIMISED)
            day_pairs = pairs.filter(pl.col("__as_of") == d).select("__hk", _ACC)
            parts.append(day_pairs.join(got, on=_ACC, how="inner").drop(_ACC))
        extra = pl.concat(parts, how="diagonal_relaxed")
        return out.join(extra, on="__hk", how="full", coalesce=True)


_AS_OF_FUNCTIONS = frozenset({"days_since"})
"""Functions whose value depends on ``as_of`` without naming it (``days_since(t)``)."""


def _reads_as_of(tree: ast.AST) -> bool:
    """Whether an expression depends on the evaluation date: it names ``as_of`` or calls a
    function that reads it."""
    if "as_of" in names_in(tree):
        return True
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
               and node.func.id in _AS_OF_FUNCTIONS for node in ast.walk(tree))


def _needed_columns(plan: Plan, source: str | None = None) -> tuple[set[str], set[str]]:
    """The event columns of one source (default: the default source) and the account
    attributes its aggregate indicators read."""
    name = plan.default_source if source is None else source
    ev = plan.sources[name]
    cols = {ev.account, ev.timestamp}
    attrs: set[str] = set()
    for i, idx, ind in plan.source_indicators(name):
        a = plan.roadmaps[i].analysis
        where = a.expressions.get(f"indicators[{idx}].where")
        if where is not None:
            names = names_in(where.tree)
            cols |= {n for n in names if n in a.source_types.get(name, {})}
            attrs |= {n for n in names if n in a.attribute_types}
        of = AGGREGATE_KINDS[ind.aggregate].of_column(ind.of, ev.user)
        if of is not None:
            cols.add(of)
        if ind.window.from_ is not None and not a.anchored_on_indicator(ind):
            attrs.add(ind.window.from_)
    return cols, attrs


def aggregate_attributes(plan: Plan) -> list[str]:
    """The account attributes an aggregate of any source reads (in a filter or as a
    window's anchor), sorted: the value an aggregate has at a date depends on the
    account's values of these."""
    attrs: set[str] = set()
    for name in plan.sources:
        attrs |= _needed_columns(plan, name)[1]
    return sorted(attrs)


def _extreme(form: Literal["running_min", "running_max"]) -> Literal["min", "max"]:
    """The extreme a running min / max form keeps (the suffix of its day-table column)."""
    return "min" if form == "running_min" else "max"


def _sort_by_account_value_day(pres: pl.DataFrame) -> pl.DataFrame:
    """Presence rows sorted by (account, value code, day).

    When the three fit in 62 bits (the account's position, the code and the day from the
    first day, each in as many bits as its largest value needs), the sort is by one integer
    built from them: sorting one integer column costs a fraction of sorting by three (a
    row encoding). Otherwise by the three columns.
    """
    if pres.height < 2:
        return pres
    lo, hi = pres[_DAYN].min(), pres[_DAYN].max()
    acc_max, val_max = pres[_ACC].max(), pres[_VAL].max()
    assert isinstance(lo, int) and isinstance(hi, int)
    assert isinstance(acc_max, int) and isinstance(val_max, int) and val_max >= 0
    day_bits, val_bits = (hi - lo).bit_length(), val_max.bit_length()
    if acc_max.bit_length() + val_bits + day_bits > 62:
        return pres.sort(_ACC, _VAL, _DAYN)
    packed = ((pl.col(_ACC).cast(pl.Int64) * (1 << (val_bits + day_bits)))
              + pl.col(_VAL).cast(pl.Int64) * (1 << day_bits) + (pl.col(_DAYN) - lo))
    return pres.sort(packed)


def _pack(totals: dict[str, int], prefix: str) -> dict[str, tuple[str, int, int]]:
    """Fields of 63-bit words for running counts: per column, its word (``<prefix><k>__P``),
    the field's lowest bit and its width.

    ``totals``: per column, the sum of its rows, none negative (a count per day, or the +1
    rows of a distinct count). A count over any window, or within an account, is then
    at most that total, so it fits in ``total.bit_length()`` bits. A running sum of words
    is the words of the running sums (a sum of integers times powers of two), modulo
    2**64 as Int64 sums wrap; the difference of two lookups, or a lookup less the
    account's base, is then the word of the window's counts, each within its width and
    the whole below 2**63: every count reads back exactly (:func:`_field`). One running
    sum per word instead of one per column: a running sum costs about six times an
    addition per row in polars.
    """
    out: dict[str, tuple[str, int, int]] = {}
    word, used = 0, 0
    # widest first, then by name: the same packing for the same totals
    for name in sorted(totals, key=lambda c: (-max(1, totals[c].bit_length()), c)):
        width = max(1, totals[name].bit_length())
        if used + width > 63:
            word, used = word + 1, 0
        out[name] = (f"{prefix}{word}__P", used, width)
        used += width
    return out


def _pack_words(packed: dict[str, tuple[str, int, int]],
                values: dict[str, pl.Expr]) -> list[pl.Expr]:
    """The words of :func:`_pack` from each column's rows (none negative, each at most its
    column's total: no field overflows into the next)."""
    fields: dict[str, list[pl.Expr]] = {}
    for name, (word, lowest, _) in packed.items():
        v = values[name]
        fields.setdefault(word, []).append(v * (1 << lowest) if lowest else v)
    return [pl.sum_horizontal(parts).alias(word) for word, parts in fields.items()]


def _words(packed: dict[str, tuple[str, int, int]]) -> list[str]:
    """The words of a packing, in order."""
    return sorted({w for w, _, _ in packed.values()})


def _field(word: pl.Expr, lowest: int, width: int) -> pl.Expr:
    """One count of a word of counts (:func:`_pack`): its ``width`` bits from ``lowest``."""
    shifted = word // (1 << lowest) if lowest else word
    return shifted & ((1 << width) - 1) if lowest + width < 63 else shifted


def _account_bases(t: pl.DataFrame, columns: Sequence[str], n_accounts: int) -> pl.DataFrame:
    """Per account position ``a`` (row ``a`` of the result), the running sums of ``columns``
    of the table ``t`` (sorted by key, so by account) at its last row before account ``a``:
    0 when there is none.

    A running sum over the whole table less the account's base is the running sum within
    the account. Int64 sums wrap, so the differences are exact whenever the account's own
    sums fit (see :data:`healthrules.aggregates.EXACT_BOUND`).
    """
    if not columns:
        return pl.DataFrame()
    acc = pl.col(_ACC)
    ends = t.select(_ACC, *columns).filter((acc != acc.shift(-1)).fill_null(True))
    every = pl.DataFrame({_ACC: pl.arange(0, n_accounts, dtype=pl.UInt32, eager=True)})
    return every.join(ends, on=_ACC, how="left", maintain_order="left").select(
        pl.col(c).forward_fill().shift(1).fill_null(0) for c in columns)


def _ffill_within(c: pl.Expr, acc: pl.Expr) -> pl.Expr:
    """Forward fill that never carries a value into the next account."""
    src = pl.when(c.is_not_null()).then(acc).forward_fill()
    return pl.when(src == acc).then(c.forward_fill())


def _bfill_within(c: pl.Expr, acc: pl.Expr) -> pl.Expr:
    """Backward fill that never carries a value into the previous account."""
    src = pl.when(c.is_not_null()).then(acc).backward_fill()
    return pl.when(src == acc).then(c.backward_fill())


def _local_day(ts: pl.Expr) -> pl.Expr:
    """The events' calendar day of a timestamp, as a day number."""
    return ts.dt.date().cast(pl.Int32).cast(pl.Int64)
