"""Events -> one row per account of raw aggregates: the engine's single pass over the events.

One ``group_by(account)`` computes every aggregate indicator of every roadmap of a plan with
conditional aggregations. The events are scanned lazily, with only the columns the plan reads
and only the time range its widest window needs (pushed down to the scan), and optionally a
filter on a date partition column so that whole folders are never opened (docs/scale.md).

The raw aggregate of indicator ``x`` of roadmap ``i`` is the column ``__{i}__{x}`` (and
``__{i}__{x}__prev`` for ``compare``); :mod:`healthrules.engine.assemble` finishes them.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import datetime as dt
import functools
import math
import operator
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import polars as pl

from healthrules.aggregates import (
    AGGREGATE_KINDS,
    EXACT_BOUND,
    ONE_LIMB_BOUND,
    AggregateInputs,
    Split,
    exact_columns,
    exact_limbs,
    exact_one_column,
    exact_one_limb,
)
from healthrules.analysis import Analysis
from healthrules.compiler import Plan
from healthrules.engine.binding import (
    ColumnTime,
    LiteralTime,
    anchored_bounds,
    translate,
    window,
)
from healthrules.engine.frames import AS_OF, SMALL_ROWS
from healthrules.errors import Code, InputDataError, Issue, Location
from healthrules.expressions import Parsed, names_in
from healthrules.inputs import NOT_FINITE, Clock, read_event_exprs, source_clock, source_label
from healthrules.query_flags import (
    EVENTS_QUERY_FLAGS,
    NO_OPTIMISATION,
    OPTIMISED,
    SUBEXPRESSIONS_ONLY,
)
from healthrules.roadmap import AggregateIndicator

__all__ = ["PLAIN_EVENTS", "EventsPass", "abs_sum_column", "abs_sum_expr",
           "aggregate_expr", "aggregate_split", "anchor_column", "check_sum_range",
           "clock_free_filter", "collect_passes", "flawed_abs_sum_expr", "keys_known",
           "prepare_filters", "prepare_passes", "raw_column", "read_source",
           "small_events_flags", "small_events_run", "summed_columns"]


PLAIN_EVENTS = 0
"""Up to this many events (an in-memory frame), the events pass runs in its plain form on
the in-memory engine without query optimisation; from there up to ``SMALL_ROWS`` with the
window and filter tests the aggregations share computed once per event
(:func:`small_events_run`: as columns of their own, which common subexpression elimination
found before, at a planning cost). The shared form runs without optimisation and has fewer
expression nodes to plan than the plain one, so it pays from one account's events on (the
B2B example's account of 619 events: about 0.97 million instructions less per evaluation,
docs/performance.md, "Thirteenth round"); the plain form is left for a pass over no
events. Common subexpression elimination, which the shared form replaces, paid only from
about 5,000 events (one account, 619 events: 1.73 against 1.37 ms CPU without it; 27,296
events: 6.05 ms with it only, 6.29 with every optimisation, 6.63 with none):
:func:`small_events_flags` still gives it to the plain form above ``PLAIN_EVENTS``."""


def small_events_flags(rows: int) -> pl.QueryOptFlags:
    """The optimisations of an events pass over ``rows`` in-memory events (at most
    ``SMALL_ROWS``), on the in-memory engine: see :data:`PLAIN_EVENTS`."""
    return NO_OPTIMISATION if rows <= PLAIN_EVENTS else SUBEXPRESSIONS_ONLY


def small_events_run(rows: int) -> tuple[bool, pl.QueryOptFlags]:
    """How an events pass over ``rows`` in-memory events runs on the in-memory engine:
    (``shared`` for :meth:`EventsPass.query`, the optimisations to collect it with).

    Where :func:`small_events_flags` asks for common subexpression elimination (above
    :data:`PLAIN_EVENTS`: any events), the query computes the windows and filters its aggregations
    share as columns of their own before the ``group_by`` (``_Shape.shared``) and runs
    without optimisation: the sharing the elimination found, without planning it (its
    rewrite was 6.0 of the 47.9 million instructions of the B2B example's pass over
    27,296 events; the shared form runs in 44.7 million), and the filters it left alone
    inside aggregations (a mean's sum and count) computed once too."""
    flags = small_events_flags(rows)
    return (True, NO_OPTIMISATION) if flags.comm_subexpr_elim else (False, flags)


def raw_column(i: int, ident: str, prev: bool = False) -> str:
    """The column of the raw aggregate of indicator ``ident`` of roadmap ``i``."""
    return f"__{i}__{ident}" + ("__prev" if prev else "")


def anchor_column(i: int, ident: str) -> str:
    """The events column holding the time of indicator ``ident`` of roadmap ``i``, where a
    window starts (``window: {from: <indicator>}``), joined onto the events by account."""
    return f"__anchor__{i}__{ident}"


def summed_columns(plan: Plan, source: str) -> dict[str, str]:
    """The value columns of a source that some ``sum`` or ``mean`` adds, with their types
    (``int`` or ``float``): float ones get their exact limbs before any ``group_by``
    (:func:`read_source`), and every one's absolute sum per account is checked against
    :data:`healthrules.aggregates.EXACT_BOUND` (:func:`check_sum_range`)."""
    values = plan.sources[source].values
    return {ind.of: values[ind.of] for _, _, ind in plan.source_indicators(source)
            if AGGREGATE_KINDS[ind.aggregate].sums and ind.of is not None
            and ind.of in values}


def abs_sum_column(column: str) -> str:
    """The column of an account's sum of absolute values of a summed column (a check)."""
    return f"__abs__{column}"


def abs_sum_expr(column: str) -> pl.Expr:
    """An account's sum of the absolute values of a summed value column, as a double (only
    compared with :data:`healthrules.aggregates.EXACT_BOUND`)."""
    return pl.col(column).cast(pl.Float64).abs().sum().alias(abs_sum_column(column))


def flawed_abs_sum_expr(column: str, flawed: pl.Expr) -> pl.Expr:
    """:func:`abs_sum_expr` with the data checks' flaw count folded in: an event with a
    flaw (``flawed``) adds ``inf`` instead of its absolute value. An account's sum is
    then finite exactly when none of its events has a flaw (or its absolute values add
    up to more than the largest double, far beyond
    :data:`healthrules.aggregates.EXACT_BOUND`), and then it is :func:`abs_sum_expr`'s,
    bit for bit: the same values added in the same order. One Float64 reduction in place
    of it and a Boolean one (see :meth:`EventsPass.query`'s ``folded``). A null value adds
    ``0.0`` (to a sum that is never negative: the same bits as leaving it out), so that the
    column summed has no nulls (polars' streaming ``group_by`` adds it without a validity
    test, about 12 instructions an event fewer)."""
    absolute = pl.col(column).cast(pl.Float64).abs().fill_null(0.0)
    return pl.when(flawed).then(float("inf")).otherwise(absolute).sum().alias(
        abs_sum_column(column))


def is_event_test(parsed: Parsed, expr: pl.Expr, event: str | None) -> bool:
    """Whether an event filter is ``<event> == '<text>'`` (or ``'<text>' == <event>``) and
    ``expr``, its polars expression, is that comparison as it is: a column of it is then
    null exactly where the event name is null, and the events pass's flaw test reads that
    column's validity (``_Shape.event_test``) instead of ``col(event).is_null()``. polars
    2.2 reads a Parquet column stored with a dictionary as a dictionary column, and its
    ``is_null`` costs about 48 instructions an event there (the codes used, then a gather
    of the result), where the comparison the pass computes anyway reads the codes
    (docs/performance.md, "Eleventh round on the events pass")."""
    tree = parsed.tree
    if (event is None or not isinstance(tree, ast.Compare) or len(tree.ops) != 1
            or not isinstance(tree.ops[0], ast.Eq)):
        return False
    sides = (tree.left, tree.comparators[0])
    names = [n.id for n in sides if isinstance(n, ast.Name)]
    texts = [n.value for n in sides if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    if names != [event] or len(texts) != 1:
        return False
    return expr.meta.eq(pl.col(event) == pl.lit(texts[0]))


def _collect_checks(query: pl.LazyFrame, in_memory: bool) -> pl.DataFrame:
    """A data checks' query over a pass's read (:meth:`EventsPass.flaws` and the folded
    pass's sums apart), collected on the engine the pass ran on."""
    if in_memory:
        return query.collect(engine="in-memory", optimizations=OPTIMISED)
    return query.collect(optimizations=EVENTS_QUERY_FLAGS)


_PROBE_TIME = ColumnTime("us", None)
"""A binding of time whose ``as_of`` is the column ``AS_OF``: a filter translated with it
reads that column exactly when it reads ``as_of`` (see :func:`clock_free_filter`)."""


def clock_free_filter(plan: Plan, analysis: Analysis, parsed: Parsed, source: str,
                      ) -> tuple[pl.Expr, frozenset[str]] | None:
    """The polars expression of an event filter (``where``) of ``source`` that reads no
    ``as_of``, with the names it reads, built once per plan and filter text; None for a
    filter that reads ``as_of`` (its expression holds the clock's date: one per clock).

    ``translate`` reads the clock only through ``as_of``: a filter translated with a
    column for it (:data:`_PROBE_TIME`) that does not read the column is the expression
    every clock gives. The events pass of a new date (a daily job's first evaluation,
    each date of a history) then builds only its windows; ``compile`` builds these
    (:func:`prepare_filters`)."""
    filters: dict[tuple[int, str, str],
                  tuple[Analysis, tuple[pl.Expr, frozenset[str]] | None]] = plan.cached(
        "clock-free-filters", dict)
    key = (id(analysis), source, parsed.source)
    got = filters.get(key)
    if got is None or got[0] is not analysis:
        expr = translate(parsed, analysis, _PROBE_TIME, filter_scope=True, source=source)
        free = None if AS_OF in expr.meta.root_names() else (expr, names_in(parsed.tree))
        got = filters[key] = (analysis, free)
    return got[1]


def prepare_filters(plan: Plan) -> None:
    """Translate every event filter of the plan that reads no ``as_of`` now
    (:func:`clock_free_filter`): ``compile`` calls it, so that an evaluation builds only
    what depends on its date."""
    for source in plan.sources:
        for i, idx, _ in plan.source_indicators(source):
            analysis = plan.roadmaps[i].analysis
            parsed = analysis.expressions.get(f"indicators[{idx}].where")
            if parsed is not None:
                clock_free_filter(plan, analysis, parsed, source)


_TEMPLATE_CLOCK = Clock(as_of=dt.date(2000, 1, 1), end=dt.datetime(2000, 1, 2),
                        time_zone=None, time_unit="us")
"""A clock for building what the events passes compute without one (:func:`prepare_passes`:
the template reads none of it)."""


def prepare_passes(plan: Plan) -> None:
    """Build each source's events pass without its clock now (``compile`` calls it): the
    aggregations, reductions and finishes of the shared form, in the form an evaluation
    runs (optimistic sums, the flaws folded), so that an evaluation at a new date builds
    only its windows, the filters that read ``as_of`` and its read (``EventsPass._template``).
    """
    accounts = pl.DataFrame()
    for source in plan.sources:
        EventsPass(plan, _TEMPLATE_CLOCK, accounts, source=source,
                   optimistic=True)._template(True)


def check_sum_range(plan: Plan, source: str, sums: pl.DataFrame, key: str) -> None:
    """Refuse an account whose values of a summed column add up, in absolute value, to
    :data:`healthrules.aggregates.EXACT_BOUND` or more (their exact sum could leave Int64).

    ``sums`` holds, per account (``key``), the :func:`abs_sum_column` of every summed
    column of ``source``.
    """
    issues: list[Issue] = []
    for column in sorted(summed_columns(plan, source)):
        name = abs_sum_column(column)
        # a Series maximum first (no query): the usual answer is that no account is near
        if name not in sums.columns:
            continue
        largest_any = sums.get_column(name).max()  # a Float64 column: a float or None
        if not isinstance(largest_any, float) or largest_any < EXACT_BOUND:
            continue
        over = sums.filter(pl.col(name) >= float(EXACT_BOUND))
        if over.height:
            row = over.sort(key, nulls_last=True).row(0, named=True)
            first, largest = row[key], float(row[name])
            issues.append(Issue(
                code=Code.VALUES_OUT_OF_RANGE.value,
                location=Location(file=source_label(plan, source), path=column),
                message=f"the values of column {column!r} of account {first!r}"
                f"{f' (and {over.height - 1} more)' if over.height > 1 else ''} add up to "
                f"{largest:.4g} in absolute value: sums and means are exact only "
                f"below 2**62 (about 4.6e18)",
                hint="rescale the column (e.g. thousands instead of units) or drop the "
                "values that are not real measurements"))
    if issues:
        raise InputDataError(issues)


def _inputs(plan: Plan, ind: AggregateIndicator, cond: pl.Expr,
            finite: bool, one_limb: bool = False) -> AggregateInputs:
    ev = plan.sources[plan.source_of(ind)]
    return AGGREGATE_KINDS[ind.aggregate].inputs(
        condition=cond, timestamp=pl.col(ev.timestamp), of=ind.of, user=ev.user,
        value_types=ev.values, day="__day", q=ind.q, finite=finite, one_limb=one_limb)


def aggregate_expr(plan: Plan, ind: AggregateIndicator, cond: pl.Expr, *,
                   finite: bool = False, one_limb: bool = False) -> pl.Expr:
    """The aggregation of one indicator over the events of its source where ``cond`` holds
    (the polars form of its kind in :data:`healthrules.aggregates.AGGREGATE_KINDS`).

    ``finite``: the events are read by :func:`read_source` (float value columns already
    Float64 with NaN and inf as null; see :meth:`healthrules.aggregates.AggregateKind.inputs`).
    ``one_limb``: float sums read one column of billionths (``read_source(...,
    one_limb=True)``), exact only below :data:`healthrules.aggregates.ONE_LIMB_BOUND`.
    """
    return AGGREGATE_KINDS[ind.aggregate].polars(_inputs(plan, ind, cond, finite, one_limb))


def aggregate_split(plan: Plan, ind: AggregateIndicator, cond: pl.Expr, *,
                    finite: bool = False, one_limb: bool = False) -> Split | None:
    """The two-step form of :func:`aggregate_expr` (:class:`healthrules.aggregates.Split`),
    None where the aggregation is one reduction."""
    kind = AGGREGATE_KINDS[ind.aggregate]
    return None if kind.split is None else kind.split(
        _inputs(plan, ind, cond, finite, one_limb))


@dataclass(frozen=True)
class _Dated:
    """A column of the shared form (``_Shape.shared``) that reads the clock, as a template
    holds it: the window of ``ind`` (``prev``: its previous one; ``index``: its roadmap) or,
    with ``parsed``, an event filter that reads ``as_of`` (of ``analysis``); built at each
    clock by :meth:`EventsPass._dated` as the column ``name``."""

    name: str
    ind: AggregateIndicator | None = None
    prev: bool = False
    index: int = 0
    analysis: Analysis | None = None
    parsed: Parsed | None = None


@dataclass(frozen=True)
class _Shape:
    """What the events pass of a plan computes at one clock (built once, then reused)."""

    columns: tuple[str, ...]
    attributes: tuple[str, ...]
    aggs: tuple[pl.Expr, ...]
    # raw aggregates equal to one computed in ``aggs`` (same kind, column, window and
    # filter): (its column, the column computed), copied after the group_by
    copies: tuple[tuple[str, str], ...]
    pair_flags: tuple[tuple[str, tuple[pl.Expr, ...]], ...]
    use_day: bool
    # aggregations in two steps (sums and means): their reductions are columns of ``aggs``
    # (``parts``, each distinct one computed once), finished after the group_by
    finishes: tuple[pl.Expr, ...] = ()
    parts: tuple[str, ...] = ()
    # ``finishes`` in two steps (:attr:`healthrules.aggregates.Split.values`, then
    # ``combine``) for a pass over a few events, where planning is the cost: the values
    # (columns ``values``), then the finishes from them; the same bits as ``finishes``
    staged: tuple[tuple[pl.Expr, ...], tuple[pl.Expr, ...]] = ((), ())
    values: tuple[str, ...] = ()
    # windows that start at an indicator: per anchor level, (which events can matter, the
    # anchor times); then the indicators anchored so, over the events that can matter
    anchor_steps: tuple[tuple[pl.Expr, tuple[pl.Expr, ...]], ...] = ()
    anchored: tuple[pl.Expr, tuple[pl.Expr, ...]] | None = None
    # windows anchored at an account attribute: their start and stop instants, computed
    # once per account on the accounts frame (aliased ``__start__...``/``__stop__...``)
    # and joined to the events with the attributes the filters read (``joined``)
    instants: tuple[pl.Expr, ...] = ()
    joined: tuple[str, ...] = ()
    # the per-account absolute sums of the summed value columns (see ``check_sum_range``)
    checks: tuple[str, ...] = ()
    # the float ones: their sums were computed as one Int64 of billionths (optimistic: exact
    # only while these are below ONE_LIMB_BOUND, see ``EventsPass.finish``)
    one_limb_checks: tuple[str, ...] = ()
    # ``aggs`` with the windows and filters the aggregations share read from columns
    # computed once per event before the ``group_by`` (``shared``: each distinct window and
    # filter once), for a pass collected without common subexpression elimination (see
    # ``EventsPass.query``); the same values, column for column
    shared: tuple[pl.Expr, ...] = ()
    shared_aggs: tuple[pl.Expr, ...] = ()
    # a shape built without a clock (``EventsPass._template``): only the shared form, whose
    # aggregations read every window and filter from ``shared``'s columns; ``shared_at``
    # holds those columns, each built (and aliased) once or, where it reads the clock (a
    # window's instants, a filter reading ``as_of``), how to build it at a clock
    # (:class:`_Dated`); ``attribute_windows`` the indicators whose windows start at an
    # account attribute (their ``instants`` are built at each clock)
    templated: bool = False
    shared_at: tuple[pl.Expr | _Dated, ...] = ()
    attribute_windows: tuple[AggregateIndicator, ...] = ()
    # a column of ``shared`` that is ``col(<event>) == <a text>``: null exactly where the
    # event name is, so the folded flaw test reads its validity instead of testing the
    # event column (see :func:`event_test_column`)
    event_test: str | None = None

    # (the expressions of the steps after the group_by, built once: a call builds none)
    @functools.cached_property
    def copy_exprs(self) -> tuple[pl.Expr, ...]:
        """``copies`` as expressions."""
        return tuple(pl.col(same).alias(name) for name, same in self.copies)

    @functools.cached_property
    def without_parts(self) -> pl.Expr:
        """Every column but ``parts``."""
        return pl.all().exclude(*self.parts)

    @functools.cached_property
    def without_values(self) -> pl.Expr:
        """Every column but ``parts`` and ``values`` (after the staged finishes)."""
        return pl.all().exclude(*self.parts, *self.values)


def _split_key(ind: AggregateIndicator, split: Split) -> pl.Expr:
    """What identifies a split aggregation among a pass's aggregations (never run): its
    kind and parameter, and its reductions. Two indicators with equal keys have the same
    finish (the kind's function of the reductions), so one is computed and copied."""
    return pl.struct([p.alias(f"__{j}") for j, p in enumerate(split.parts)]).alias(
        f"__split__{ind.aggregate}__{ind.q}")


class _Computed:
    """The aggregations of a pass so far, to find one equal to a new one: by their text
    first (cheap), then by polars' structural equality (exact)."""

    def __init__(self) -> None:
        self._by_text: dict[str, list[tuple[pl.Expr, str]]] = {}

    def find(self, expr: pl.Expr) -> str | None:
        """The column of an aggregation equal to ``expr``, or None."""
        for other, name in self._by_text.get(str(expr), ()):
            if other.meta.eq(expr):
                return name
        return None

    def add(self, expr: pl.Expr, name: str) -> None:
        """Record that column ``name`` holds ``expr``."""
        self._by_text.setdefault(str(expr), []).append((expr, name))


class EventsPass:
    """The pass over the events of one source in one evaluation: query, read range and
    diagnostics.

    Each event source of a plan is read by its own pass (its own read range, columns and
    partition filter), computing the aggregate indicators that read that source; the
    evaluator joins their raw aggregates per account.

    Parameters
    ----------
    plan
        The compiled plan.
    clock
        The evaluation instant (a literal here: the events are read for one date).
    accounts
        The checked accounts (anchored windows read their attributes).
    source
        The event source (default: the plan's default source).
    partition_column
        A ``Date`` (or ISO date string) column of the events holding each event's date.
    low_memory
        Count distinct values from (account, value) pairs, one extra pass per column.
    optimistic
        Add each summed float column's billionths as one Int64 instead of two limbs (one
        reduction per sum or mean less). Exact only while every account's absolute sum of
        the column is below :data:`healthrules.aggregates.ONE_LIMB_BOUND`: :meth:`finish`
        (and :meth:`collect`) check that and, when it fails, run the pass again with two
        limbs. A caller that takes :meth:`query` without :meth:`finish` must leave it False.
    rows
        The number of events when known (an in-memory frame; :meth:`collect` takes it too):
        small inputs run on the in-memory engine (see :data:`PLAIN_EVENTS`).
    """

    def __init__(self, plan: Plan, clock: Clock, accounts: pl.DataFrame, *,
                 source: str | None = None,
                 partition_column: str | None = None, low_memory: bool = False,
                 optimistic: bool = False, rows: int | None = None) -> None:
        self.plan = plan
        self.clock = clock
        self.time = LiteralTime(clock)
        self.accounts = accounts
        self.key = plan.account_key
        self.source = plan.default_source if source is None else source
        self.columns = plan.sources[self.source]
        self.partition_column = partition_column
        self.low_memory = low_memory
        self.optimistic = optimistic
        self.rows = rows

    def indicators(self) -> list[tuple[int, int, AggregateIndicator]]:
        """(roadmap index, indicator index, indicator) of every aggregate indicator this
        pass computes (those that read its source)."""
        return self.plan.source_indicators(self.source)

    def window(self, ind: AggregateIndicator, prev: bool,
               index: int | None = None) -> tuple[pl.Expr, pl.Expr]:
        """(condition on the event timestamp, the window's stop) at this clock.

        ``index`` is the roadmap's position in the plan: a window that starts at an indicator
        reads that indicator's column joined onto the events (:meth:`with_anchors`).
        """
        anchors = None
        if index is not None and ind.window.from_ is not None:
            anchors = {ind.window.from_: anchor_column(index, ind.window.from_)}
        return window(ind, prev, self.columns.timestamp, self.plan.attributes, self.time,
                      anchors)

    def read_columns(self) -> tuple[set[str], set[str]]:
        """(event columns, account attributes) the whole pass reads at this clock."""
        shape = self._base()
        return set(shape.columns), set(shape.attributes)

    def attribute_instants(self) -> tuple[pl.Expr, ...]:
        """The start and stop instants of the windows anchored at an account attribute,
        over the accounts' columns (joined to the events by account, as :meth:`query`
        does)."""
        return self._shape().instants

    def with_anchors(self, lf: pl.LazyFrame,
                     source: pl.LazyFrame | None = None) -> pl.LazyFrame:
        """The events ``lf`` with the anchor columns (:func:`anchor_column`) joined by
        account: the times where windows anchored at an indicator start, computed from the
        events ``source`` (default ``lf``) of this pass's source (an anchor indicator reads
        the same source as the indicators anchored at it) in a ``group_by`` of their own over
        the events that can match them, level by level (an anchor may itself be anchored)."""
        account = self.columns.account
        src = lf if source is None else source
        steps = self._shape().anchor_steps
        for k, (matters, aggs) in enumerate(steps):
            times = src.filter(matters).group_by(account).agg(aggs)
            lf = lf.join(times, on=account, how="left")
            if k + 1 < len(steps):  # the next level's windows start at these
                src = src.join(times, on=account, how="left")
        return lf

    def filter_expr(self, analysis: Analysis, parsed: Parsed) -> pl.Expr:
        """The polars expression of an event filter (``where``) of this source at this
        clock: translated once per plan when it does not read ``as_of``
        (:func:`clock_free_filter`), at this clock otherwise."""
        free = clock_free_filter(self.plan, analysis, parsed, self.source)
        if free is not None:
            return free[0]
        return translate(parsed, analysis, self.time, filter_scope=True, source=self.source)

    def _shape(self, folded: bool = False, shared: bool = False) -> _Shape:
        """The pass's expressions at this clock, built once per plan, source and clock
        (``folded``: the data checks' form of :meth:`query`'s ``folded``; ``shared``: its
        shared form, from the clock-free template where there is one, :meth:`_template`)."""
        shapes: dict[tuple[str, Clock, bool, bool, bool, bool], _Shape] = self.plan.cached(
            "events-pass", dict)
        folded = folded and self.optimistic
        template = self._template(folded) if shared else None
        key = (self.source, self.clock, self.low_memory, self.optimistic, folded,
               template is not None)
        shape = shapes.get(key)
        if shape is None:
            # (the folded form from the plain one, which the read and ``finish`` use too:
            # the pass's expressions are built once per date)
            if template is not None:
                shape = self._dated(template)
            else:
                shape = self._folded(self._shape()) if folded else self._build_shape()
            if len(shapes) >= 64:  # many dates (a backfill by a loop): keep the newest
                shapes.clear()
            shapes[key] = shape
        return shape

    def streams_shared(self) -> bool:
        """Whether the pass's streaming query runs in the shared form (``query(...,
        shared=True)``): where it has a template (:meth:`_template`), which ``compile``
        built, so that a new date builds only the columns that read the clock; otherwise
        the plain form, as built at each clock (the same results either way)."""
        return self._template(self.optimistic) is not None

    def _base(self) -> _Shape:
        """What the pass reads and checks (its columns, attributes and absolute sums, the
        same at every clock): from the clock-free template where there is one, so that an
        evaluation in the shared form builds nothing else at a new date."""
        template = self._template(False)
        return self._shape() if template is None else template

    def _template(self, folded: bool) -> _Shape | None:
        """The shared form of the pass (``query(shared=True)``) without a clock: every
        aggregation, reduction and finish built once per plan and source (``compile``
        builds it: :func:`prepare_passes`), the columns that read the clock built at each
        clock by :meth:`_dated`. None where the pass has no such form: distinct counts
        from pairs (``low_memory``), windows that start at an indicator."""
        if self.low_memory:
            return None
        templates: dict[tuple[str, bool, bool], _Shape | None] = self.plan.cached(
            "events-pass-template", dict)
        folded = folded and self.optimistic
        key = (self.source, self.optimistic, folded)
        if key not in templates:
            if folded:
                plain = self._template(False)
                templates[key] = None if plain is None else self._folded(plain)
            elif any(self.plan.roadmaps[i].analysis.anchored_on_indicator(ind)
                     for i, _, ind in self.indicators()):
                templates[key] = None
            else:
                templates[key] = self._build_shape(template=True)
        return templates[key]

    def _dated(self, template: _Shape) -> _Shape:
        """``template`` (:meth:`_template`) at this clock: its columns that read the clock
        (windows, filters reading ``as_of``) and the instants of the windows that start at
        an account attribute; the same expressions as :meth:`_build_shape`'s shared form."""
        shared = tuple(c if isinstance(c, pl.Expr) else self._dated_column(c)
                       for c in template.shared_at)
        instants: dict[str, pl.Expr] = {}
        for ind in template.attribute_windows:
            self._attribute_window(ind, instants)
        return dataclasses.replace(
            template, shared=shared,
            instants=tuple(e.alias(n) for n, e in sorted(instants.items())))

    def _dated_column(self, column: _Dated) -> pl.Expr:
        """A column of the shared form that reads the clock (:class:`_Dated`), at this
        clock."""
        if column.ind is not None:
            expr, _ = self.window(column.ind, column.prev, column.index)
        else:
            assert column.analysis is not None and column.parsed is not None
            expr = translate(column.parsed, column.analysis, self.time, filter_scope=True,
                             source=self.source)
        return expr.alias(column.name)

    def _folded(self, shape: _Shape) -> _Shape:
        """``shape`` with the flaw count folded into the first absolute sum
        (:func:`flawed_abs_sum_expr`; the same shape where nothing is summed). The first
        aggregations of both forms are ``__n``, ``__flawed`` and the absolute sums
        (``checks``), in that order (a template has the shared form only)."""
        if not shape.checks:
            return shape
        summed = sorted(summed_columns(self.plan, self.source))
        first = flawed_abs_sum_expr(summed[0], self._flawed())
        # the shared form: the event name's null test from a column it computes anyway
        shared_first = (first if shape.event_test is None else
                        flawed_abs_sum_expr(summed[0], self._flawed(shape.event_test)))
        return dataclasses.replace(
            shape, aggs=(shape.aggs[0], first, *shape.aggs[3:]) if shape.aggs else (),
            shared_aggs=(shape.shared_aggs[0], shared_first, *shape.shared_aggs[3:]))

    def _build_shape(self, template: bool = False) -> _Shape:
        """The pass's expressions at this clock: the plain form (``aggs``) and the shared
        form (``shared_aggs`` reading ``shared``). ``template``: the shared form alone,
        without the clock (:meth:`_template`): a column that reads the clock is a
        :class:`_Dated`, built by :meth:`_dated`; the same columns in the same order as
        the shared form built at a clock, told equal by the window (its kind, days and
        ``prev``) or the filter's text instead of their expressions at a clock."""
        ev = self.columns
        needed_cols = {ev.account, ev.timestamp}
        if ev.event is not None:
            needed_cols.add(ev.event)
        needed_attrs: set[str] = set()
        joined_attrs: set[str] = set()  # the attributes the filters read, joined as they are
        instants: dict[str, pl.Expr] = {}
        summed_types = summed_columns(self.plan, self.source)
        summed = sorted(summed_types)
        one = self.optimistic  # float sums as one Int64 of billionths (checked in finish)
        # the data checks: events per account, and the events with a flaw (a null
        # timestamp or event, a NaN or infinite value) in one count; the kinds of flaw are
        # counted apart only when there are some (``finish``), three reductions less
        aggs: list[pl.Expr] = [
            pl.len().alias("__n"), self._flawed().sum().alias("__flawed"),
            *[abs_sum_expr(c) for c in summed]]
        pair_flags: dict[str, list[pl.Expr]] = {}
        computed = _Computed()
        # the shared form of the aggregations (``_Shape.shared_aggs``), built alongside
        shared_aggs: list[pl.Expr] = list(aggs)
        if template:
            aggs = []
        shared: list[pl.Expr | _Dated] = []
        seen = _Computed()
        seen_dated: dict[Hashable, str] = {}
        by_key: dict[Hashable, str] = {}  # a template's aggregations by what they read
        agg_key: Hashable = None
        attribute_windows: list[AggregateIndicator] = []
        event_test: str | None = None  # (``_Shape.event_test``)

        def column(expr: pl.Expr) -> pl.Expr:
            """A window or filter as a column of its own, each distinct one once."""
            name = seen.find(expr)
            if name is None:
                name = f"__shared{len(shared)}"
                seen.add(expr, name)
                shared.append(expr.alias(name))
            return pl.col(name)

        def dated(key: Hashable, make: _Dated) -> str:
            """A window or filter that reads the clock as a column of its own (a
            template's), each distinct one (by ``key``) once: its name."""
            name = seen_dated.get(key)
            if name is None:
                name = seen_dated[key] = f"__shared{len(shared)}"
                shared.append(dataclasses.replace(make, name=name))
            return name

        def keyed(key: Hashable, make: pl.Expr | Callable[[], pl.Expr]) -> str:
            """A template's window or filter that reads no clock (``make``, or what it
            builds) as a column of its own, each distinct one once: found by ``key`` (an
            attribute window's bounds, a filter's text: the same expression), else by its
            expression."""
            name = seen_dated.get(key)
            if name is None:
                expr = make if isinstance(make, pl.Expr) else make()
                name = seen_dated[key] = column(expr).meta.output_name()
            return name
        copies: list[tuple[str, str]] = []
        finishes: list[pl.Expr] = []
        parts: list[str] = []
        value_exprs: list[pl.Expr] = []
        staged: list[pl.Expr] = []
        values: list[str] = []

        def reduction(expr: pl.Expr, shared_expr: pl.Expr) -> str:
            """The column of a reduction of a split aggregation, computed once
            (``shared_expr``: the same reduction in the shared form)."""
            same = computed.find(expr)
            if same is not None:
                return same
            name = f"__part{len(parts)}"
            computed.add(expr, name)
            parts.append(name)
            if not template:
                aggs.append(expr.alias(name))
            shared_aggs.append(shared_expr.alias(name))
            return name

        def finish_split(name: str, split: Split, cols: list[str]) -> None:
            """The finishes of a split aggregation ``name`` from its reductions'
            columns ``cols`` (``finishes``, and ``staged`` for a pass over a few events)."""
            finishes.append(split.finish([pl.col(c) for c in cols]).alias(name))
            if split.values is not None and split.combine is not None:
                first = len(values)
                for v in split.values([pl.col(c) for c in cols]):
                    values.append(f"__value{len(values)}")
                    value_exprs.append(v.alias(values[-1]))
                staged.append(split.combine(
                    [pl.col(c) for c in values[first:]]).alias(name))
            else:
                staged.append(finishes[-1])
        use_day = False
        anchor_steps: dict[int, list[pl.Expr]] = {}
        anchor_matters: dict[int, list[pl.Expr]] = {}
        anchored_aggs: list[pl.Expr] = []
        anchored_matters: list[pl.Expr] = []
        mine = self.indicators()
        # (roadmap, indicator) pairs where windows of this source start
        used_as_anchor = {(i, ind.window.from_) for i, _, ind in mine
                          if self.plan.roadmaps[i].analysis.anchored_on_indicator(ind)}
        for i, idx, ind in mine:
            a = self.plan.roadmaps[i].analysis
            where_parsed = a.expressions.get(f"indicators[{idx}].where")
            where = None
            # a template's filter: its expression, or how to build it at a clock (each a
            # column of the shared form, numbered after the window's, as at a clock)
            swhere: pl.Expr | _Dated | None = None
            if where_parsed is not None:
                free = clock_free_filter(self.plan, a, where_parsed, self.source)
                names = names_in(where_parsed.tree) if free is None else free[1]
                columns = a.source_types.get(self.source, {})
                needed_cols |= {n for n in names if n in columns}
                attrs = {n for n in names if n in a.attribute_types}
                needed_attrs |= attrs
                joined_attrs |= attrs
                if not template:
                    where = self.filter_expr(a, where_parsed)
                elif free is not None:
                    swhere = free[0]
                else:  # (it reads ``as_of``: built at each clock)
                    swhere = _Dated("", analysis=a, parsed=where_parsed)
            kind = AGGREGATE_KINDS[ind.aggregate]
            of = kind.of_column(ind.of, ev.user)
            if of is not None:
                needed_cols.add(of)
            if kind.history == "running_days":
                use_day = True
            if ind.window.from_ is not None and not a.anchored_on_indicator(ind):
                needed_attrs.add(ind.window.from_)
            for prev in (False, True) if ind.id in a.previous_windows else (False,):
                if template:
                    # (no plain form: the shared one's condition, from its columns; a
                    # window at an attribute reads its instants' columns, the same at
                    # every clock)
                    w = ind.window
                    if w.kind == "anchored":
                        if ind not in attribute_windows:
                            attribute_windows.append(ind)
                        wname = keyed(("attribute", w.from_, w.days),
                                      functools.partial(self._attribute_window, ind, {}))
                    else:
                        wname = dated(("window", w.kind, w.days, prev),
                                      _Dated("", ind=ind, prev=prev, index=i))
                    fname = None
                    if isinstance(swhere, _Dated):
                        assert swhere.parsed is not None
                        fname = dated(("where", id(a), swhere.parsed.source), swhere)
                    elif swhere is not None:
                        assert where_parsed is not None
                        fname = keyed(("free", id(a), where_parsed.source), swhere)
                        if event_test is None and is_event_test(where_parsed, swhere,
                                                                ev.event):
                            event_test = fname
                    cond = pl.col(wname) if fname is None else (pl.col(wname) & pl.col(fname))
                    # what the aggregation is a function of (its kind, column, q and
                    # condition): equal keys, equal expressions, so a copy is found without
                    # building it (others are still compared by their expressions)
                    agg_key = (ind.aggregate, ind.of, ind.q, wname, fname)
                elif ind.window.kind == "anchored" and not a.anchored_on_indicator(ind):
                    wcond = self._attribute_window(ind, instants)
                else:
                    wcond, _ = self.window(ind, prev, i)
                if not template:
                    cond = wcond if where is None else (wcond & where)
                # a null condition counts as false: every aggregate form reads it so
                if (i, ind.id) in used_as_anchor and not prev:
                    level = a.anchor_levels.get(ind.id, 0)
                    anchor_steps.setdefault(level, []).append(
                        aggregate_expr(self.plan, ind, cond, finite=True, one_limb=one).alias(
                            anchor_column(i, ind.id)))
                    anchor_matters.setdefault(level, []).append(cond)
                name = raw_column(i, ind.id, prev)
                if a.anchored_on_indicator(ind):
                    # computed apart, over the events its filter keeps, with the anchors
                    anchored_aggs.append(
                        aggregate_expr(self.plan, ind, cond, finite=True, one_limb=one).alias(name))
                    anchored_matters.append(
                        pl.lit(True) if where is None else where.fill_null(False))
                    continue
                pair_col = self._pair_column(ind) if self.low_memory else None
                if pair_col is not None:
                    pair_flags.setdefault(pair_col, []).append(cond.any().alias(name))
                elif template:  # the shared form alone (``cond`` reads its columns)
                    same = by_key.get(agg_key)
                    if same is None:
                        split = aggregate_split(self.plan, ind, cond, finite=True,
                                                one_limb=one)
                        expr = (aggregate_expr(self.plan, ind, cond, finite=True, one_limb=one)
                                if split is None else _split_key(ind, split))
                        same = computed.find(expr)
                    if same is not None:
                        by_key[agg_key] = same
                        copies.append((name, same))
                        continue
                    by_key[agg_key] = name
                    computed.add(expr, name)
                    if split is None:
                        shared_aggs.append(expr.alias(name))
                    else:
                        finish_split(name, split, [reduction(part, part)
                                                   for part in split.parts])
                else:
                    # the events are read by read_source: float values finite or null
                    split = aggregate_split(self.plan, ind, cond, finite=True, one_limb=one)
                    # (a split aggregation is compared by its kind and reductions: its
                    # finish is the kind's function of them, and building the whole
                    # expression only to compare it cost about a third of this loop)
                    expr = (aggregate_expr(self.plan, ind, cond, finite=True, one_limb=one)
                            if split is None else _split_key(ind, split))
                    same = computed.find(expr)
                    if same is not None:  # computed once, copied (``count`` and ``compare``)
                        copies.append((name, same))
                        continue
                    computed.add(expr, name)
                    # the same condition from the shared columns (null where it is null)
                    scond = column(wcond) if where is None else (column(wcond) & column(where))
                    if (event_test is None and where is not None and where_parsed is not None
                            and is_event_test(where_parsed, where, ev.event)):
                        event_test = column(where).meta.output_name()
                    if split is None:
                        aggs.append(expr.alias(name))
                        shared_aggs.append(aggregate_expr(
                            self.plan, ind, scond, finite=True, one_limb=one).alias(name))
                    else:  # its reductions shared with other indicators', finished after
                        ssplit = aggregate_split(self.plan, ind, scond, finite=True,
                                                 one_limb=one)
                        assert ssplit is not None
                        finish_split(name, split, [
                            reduction(part, spart) for part, spart
                            in zip(split.parts, ssplit.parts, strict=True)])
        return _Shape(
            columns=tuple(sorted(needed_cols)), attributes=tuple(sorted(needed_attrs)),
            instants=tuple(e.alias(n) for n, e in sorted(instants.items())),
            joined=tuple(sorted(joined_attrs)),
            aggs=tuple(aggs), copies=tuple(copies),
            finishes=tuple(finishes), parts=tuple(parts),
            staged=(tuple(value_exprs), tuple(staged)), values=tuple(values),
            pair_flags=tuple((c, tuple(f)) for c, f in sorted(pair_flags.items())),
            use_day=use_day,
            anchor_steps=tuple((pl.any_horizontal(anchor_matters[k]), tuple(anchor_steps[k]))
                               for k in sorted(anchor_steps)),
            anchored=((pl.any_horizontal(anchored_matters), tuple(anchored_aggs))
                      if anchored_aggs else None),
            checks=tuple(abs_sum_column(c) for c in summed),
            one_limb_checks=tuple(abs_sum_column(c) for c in summed
                                  if one and summed_types[c] == "float"),
            shared=() if template else tuple(e for e in shared if isinstance(e, pl.Expr)),
            shared_aggs=tuple(shared_aggs),
            templated=template, shared_at=tuple(shared) if template else (),
            attribute_windows=tuple(attribute_windows), event_test=event_test)

    def _flawed(self, event_test: str | None = None) -> pl.Expr:
        """Whether an event read has a flaw the data checks count: a null timestamp, a null
        event name, a float value that is NaN or infinite (read as null). ``event_test``: a
        column null exactly where the event name is (``_Shape.event_test``), whose null
        test then stands for the event column's."""
        ev = self.columns
        flaws = [pl.col(ev.timestamp).is_null()]
        if ev.event is not None:
            flaws.append(pl.col(ev.event if event_test is None else event_test).is_null())
        if any(t == "float" for t in ev.values.values()):
            # (a Boolean with one float column read, the usual case: the cast is none)
            flaws.append(pl.col(NOT_FINITE).cast(pl.Boolean))
        return functools.reduce(operator.or_, flaws)

    def _read(self, events: pl.LazyFrame, schema: pl.Schema | None = None) -> pl.LazyFrame:
        """The events this pass reads: the partition filter, the read range and the columns
        pushed down to the scan (:func:`read_source`). ``schema``: that of ``events``, when
        the caller has it (resolving it is a planning step, 20 to 40 us per call)."""
        start, end = self.read_range()
        if schema is None:
            schema = events.collect_schema()
        if self.partition_column is not None:
            dtype = schema[self.partition_column]
            events = events.filter(
                _partition_filter(self.partition_column, dtype, start, end))
        return read_source(events, self.plan, self.source, self.clock, schema,
                           self._base().columns, start, end, one_limb=self.optimistic)

    def flaws(self, events: pl.LazyFrame, in_memory: bool = False) -> dict[str, int]:
        """The events read with a null timestamp, with a null event name, and the float
        values read as null because NaN or infinite (the data checks' counters), counted
        by a query of their own over the same events as :meth:`query`."""
        counts, _, _ = self._flaw_query(events, in_memory, ())
        return counts

    def _flaw_query(self, events: pl.LazyFrame, in_memory: bool, summed: tuple[str, ...],
                    ) -> tuple[dict[str, int], int, list[float | None]]:
        """:meth:`flaws`, with the number of events read and, for each column of
        ``summed``, the absolute sum of its values over every event read (one query)."""
        ev = self.columns
        counts = [pl.col(ev.timestamp).null_count().alias("events_null_timestamp"),
                  (pl.col(ev.event).null_count() if ev.event is not None
                   else pl.lit(0, pl.UInt32)).alias("events_null_event"),
                  pl.col(NOT_FINITE).sum().alias("values_not_finite")]
        extra = ([pl.len().alias("__rows"), *[abs_sum_expr(c) for c in summed]]
                 if summed else [])
        query = self._read(events).select(counts + extra)
        got = _collect_checks(query, in_memory).row(0, named=True)
        flaws = {k: int(got[k] or 0) for k in
                 ("events_null_timestamp", "events_null_event", "values_not_finite")}
        if not summed:
            return flaws, 0, []
        return flaws, int(got["__rows"]), [got[abs_sum_column(c)] for c in summed]

    def _some_flaw(self, agg_df: pl.DataFrame) -> bool:
        """Whether a ``folded`` frame (:meth:`query`) says some event may have a flaw: its
        first summed column's absolute sum is infinite for some account."""
        largest = agg_df.get_column(self._base().checks[0]).max()
        return isinstance(largest, float) and math.isinf(largest)

    def _flaws_and_sums(self, events: pl.LazyFrame, in_memory: bool,
                        ) -> tuple[dict[str, int], pl.DataFrame | None]:
        """For a ``folded`` frame that says some event may have a flaw (:meth:`_some_flaw`),
        what the flaw count and the absolute sums would have said: (the kinds of flaw,
        as :meth:`flaws` counts them; the per-account absolute sums of the summed columns,
        keyed by the source's account column, or None when no account's can reach
        :data:`healthrules.aggregates.ONE_LIMB_BOUND`).

        One query counts the kinds of flaw and adds up the absolute values of each summed
        column over every event read (what :meth:`flaws` reads, one reduction more per
        column): when each total is below the bound (over fewer than 2**32 events: the
        float total is off by less than 2**-21 of itself, as each account's is, see
        ``ONE_LIMB_BOUND``), so is every account's. Otherwise a ``group_by`` computes each
        account's absolute sums (:func:`abs_sum_expr`), as the pass without the fold does."""
        summed = tuple(sorted(summed_columns(self.plan, self.source)))
        flaws, rows, totals = self._flaw_query(events, in_memory, summed)
        if rows < 2**32 and all(t is None or t < ONE_LIMB_BOUND for t in totals):
            return flaws, None
        query = self._read(events).group_by(self.columns.account).agg(
            [abs_sum_expr(c) for c in summed])
        return flaws, _collect_checks(query, in_memory)

    def _attribute_window(self, ind: AggregateIndicator, instants: dict[str, pl.Expr],
                          ) -> pl.Expr:
        """The condition on the event timestamp of a window anchored at an account
        attribute, reading its start and stop instants as columns computed once per
        account (added to ``instants``, joined to the events by :meth:`query`): the same
        instants as :meth:`window`'s, without computing them again for every event."""
        w = ind.window
        assert w.from_ is not None
        start, stop = anchored_bounds(w.from_, w.days, self.plan.attributes, self.time)
        ts = pl.col(self.columns.timestamp)
        start_col = f"__start__{w.from_}"
        instants[start_col] = start
        cond = ts >= pl.col(start_col)
        if stop is not None:
            stop_col = f"__stop__{w.from_}__{w.days}"
            instants[stop_col] = stop
            cond = cond & (ts < pl.col(stop_col))
        return cond

    def query(self, events: pl.LazyFrame, small: bool = False,
              shared: bool = False, folded: bool = False) -> pl.LazyFrame:
        """The lazy ``group_by(account)`` over the events of this source, with the read
        range, the columns and the partition filter pushed down to its scan.

        ``small``: for polars' in-memory engine over a few events, where planning is the
        cost: the finishes of the two-step aggregations in two steps (``_Shape.staged``:
        a sub-expression read twice is a column of its own; one account of the B2B
        example, about 0.9 million instructions less), the same bits.

        ``shared``: each distinct window and filter the aggregations read is a column
        computed once before the ``group_by`` (``_Shape.shared``), for a collect without
        common subexpression elimination (:func:`small_events_run`); the same frame.

        ``folded`` (an ``optimistic`` pass with summed value columns): the data checks'
        flaw count (``__flawed``) folded into the first summed column's absolute sum
        (:func:`flawed_abs_sum_expr`: infinite for an account with a flaw), one reduction
        less; :meth:`finish` counts the flaws and computes the absolute sums apart only
        when some account's is infinite (the same results, the same errors)."""
        ev = self.columns
        ts = pl.col(ev.timestamp)
        shape = self._shape(folded, shared)
        schema = events.collect_schema()
        lf = self._read(events, schema)
        if shape.joined or shape.instants:
            right = self.accounts.lazy().select(pl.col(self.key).alias("__key"),
                                                *shape.joined, *shape.instants)
            key_dtype = schema.get(ev.account)
            if (key_dtype is not None
                    and self.accounts.get_column(self.key).dtype != key_dtype):
                right = right.with_columns(pl.col("__key").cast(key_dtype, strict=False))
            lf = lf.join(right, left_on=ev.account, right_on="__key", how="left")
        if shape.use_day:
            lf = lf.with_columns(day_of(ts, schema.get(ev.timestamp), self.clock, small)
                                 .alias("__day"))
        if shared and (shape.shared or shape.templated):
            out = (lf.with_columns(shape.shared) if shape.shared else lf).group_by(
                ev.account).agg(shape.shared_aggs)
        else:
            out = lf.group_by(ev.account).agg(shape.aggs)
        staged = small and bool(shape.values)
        if staged:
            out = out.with_columns(shape.staged[0]).with_columns(shape.staged[1])
        elif shape.finishes:
            out = out.with_columns(shape.finishes)
        if shape.copies:  # (a copy may read a reduction of a split aggregation)
            out = out.with_columns(shape.copy_exprs)
        if staged:
            out = out.select(shape.without_values)
        elif shape.parts:
            out = out.select(shape.without_parts)
        out = self._join_distinct_counts(out, lf, shape.pair_flags)
        if shape.anchored is not None:
            # only the events an anchored indicator can count get the anchor times joined
            matters, aggs = shape.anchored
            got = self.with_anchors(lf.filter(matters), lf).group_by(ev.account).agg(aggs)
            out = out.join(got, on=ev.account, how="left", nulls_equal=True)
        return out

    def collect(self, events: pl.LazyFrame, rows: int | None = None,
                ) -> tuple[pl.DataFrame, dict[str, int]]:
        """Run the pass: the raw aggregates (keyed by the account key) and the counters.

        ``rows`` is the number of events when known (an in-memory frame): small inputs run
        on polars' in-memory engine, which starts faster (see ``frames.SMALL_ROWS``).
        """
        # ``rows`` holds for this call only: the pass keeps the size it was made with (a
        # copy of it runs this call, sharing everything but the size)
        run = self
        if rows is not None and rows != self.rows:
            run = copy.copy(self)
            run.rows = rows
        small = run.rows is not None and run.rows <= SMALL_ROWS
        return run.finish(run._run(events, small), events, in_memory=small)

    def _run(self, events: pl.LazyFrame, in_memory: bool) -> pl.DataFrame:
        """:meth:`query` collected (small inputs on the in-memory engine, in the form and
        with the optimisations of :func:`small_events_run` for ``rows`` events)."""
        if in_memory:
            shared, flags = small_events_run(
                self.rows if self.rows is not None else SMALL_ROWS)
            return self.query(events, small=True, shared=shared).collect(
                engine="in-memory", optimizations=flags)
        return self.query(events, shared=self.streams_shared(), folded=True).collect(
            optimizations=EVENTS_QUERY_FLAGS)

    def beyond_one_limb(self, agg_df: pl.DataFrame) -> bool:
        """Whether some account's absolute sum of a float column that this (optimistic)
        pass added as one Int64 reaches :data:`healthrules.aggregates.ONE_LIMB_BOUND`:
        its totals may then have wrapped, and the pass must run with two limbs. (In a
        ``folded`` frame, :meth:`query`, an account with a flaw has an infinite absolute
        sum: true; :meth:`finish` then computes the sums apart to tell.)"""
        for name in self._base().one_limb_checks:
            largest = agg_df.get_column(name).max()  # a Float64 column: a float or None
            if isinstance(largest, float) and not largest < ONE_LIMB_BOUND:  # (NaN too)
                return True
        return False

    def finish(self, agg_df: pl.DataFrame, events: pl.LazyFrame, *, in_memory: bool = False,
               known: bool = False) -> tuple[pl.DataFrame, dict[str, int]]:
        """The raw aggregates (keyed by the account key) and the counters, from the
        collected :meth:`query` of ``events`` (to collect the passes of several sources
        together). When some events read have a flaw, the kinds of flaw are counted by
        :meth:`flaws` (one more query over the events: only data with flaws pays it).

        ``known``: the caller has checked that every account key of ``agg_df`` is a key of
        the accounts, none null, in the accounts' dtype (:func:`keys_known`: the passes of
        several sources checked in one count), so no key is counted here.

        An optimistic pass (``optimistic=True``) whose one-Int64 sums could have wrapped
        (:meth:`beyond_one_limb`) is run again with two limbs, and that result finished
        instead: the totals are exact either way (the same events: the same keys).

        A ``folded`` query's frame (no ``__flawed``, :meth:`query`) whose first absolute
        sum is infinite somewhere is resolved by :meth:`_flaws_and_sums` first: the kinds
        of flaw, and the absolute sums apart (or none, when their totals prove them)."""
        folded = "__flawed" not in agg_df.columns
        # where the per-account absolute sums are: ``agg_df``'s columns, a frame computed
        # apart (``apart``), or nowhere (``proven``: their totals are below the bound)
        apart: pl.DataFrame | None = None
        proven = False
        flaw_counts: dict[str, int] | None = None  # the kinds of flaw, when counted
        if folded and self._some_flaw(agg_df):
            flaw_counts, apart = self._flaws_and_sums(events, in_memory)
            proven = apart is None
        if (self.optimistic and not proven
                and self.beyond_one_limb(agg_df if apart is None else apart)):
            exact = EventsPass(self.plan, self.clock, self.accounts, source=self.source,
                               partition_column=self.partition_column,
                               low_memory=self.low_memory, rows=self.rows)
            return exact.finish(exact._run(events, in_memory), events, in_memory=in_memory,
                                known=known)
        ev = self.columns
        if ev.account != self.key:
            # (renamed by name, no query: ``DataFrame.rename`` plans a lazy one)
            agg_df = agg_df.clone()
            agg_df.columns = [self.key if c == ev.account else c for c in agg_df.columns]
        if known:
            null_keys, other_key, unknown = 0, False, None
        else:
            # (one column's dtype: ``DataFrame.schema`` builds the whole schema, about 1.5
            # us per column)
            key_dtype = self.accounts.get_column(self.key).dtype
            agg_key_dtype = agg_df.get_column(self.key).dtype
            other_key = agg_key_dtype != key_dtype  # a source with another key dtype
            # the usual case, every key known and none null, is told by Series counts, and
            # the frames are taken apart by name (no query: a service evaluating one
            # account pays each query's planning per call; an eager drop or select is a
            # query)
            known_keys = self.accounts.get_column(self.key)
            if other_key:
                known_keys = known_keys.cast(agg_key_dtype, strict=False)
            keys = agg_df.get_column(self.key)
            null_keys = keys.null_count()
            all_known = not null_keys and keys_known(known_keys, [keys])
            # (every key known: nothing to count, no empty frame to make; ``clear`` of a
            # frame is about 0.4 us per column)
            unknown = (None if all_known else agg_df.filter(
                pl.col(self.key).is_not_null()).join(known_keys.to_frame(), on=self.key,
                                                     how="anti"))
        diagnostics = {
            "events_read": int(agg_df.get_column("__n").sum()),
            "events_null_account": int(agg_df.filter(pl.col(self.key).is_null())["__n"].sum())
            if null_keys else 0,
            "events_null_timestamp": 0, "events_null_event": 0, "values_not_finite": 0,
            "events_unknown_account": (0 if unknown is None
                                       else int(unknown.get_column("__n").sum())),
            "unknown_accounts": 0 if unknown is None else unknown.height,
        }
        if flaw_counts is not None:
            diagnostics.update(flaw_counts)
        elif not folded and agg_df.get_column("__flawed").sum():
            diagnostics.update(self.flaws(events, in_memory))
        if null_keys:
            agg_df = agg_df.filter(pl.col(self.key).is_not_null())
        checks = list(self._base().checks)
        if apart is not None:  # (keyed by the source's account column, null keys kept)
            if ev.account != self.key:
                apart.columns = [self.key if c == ev.account else c for c in apart.columns]
            check_sum_range(self.plan, self.source,
                            apart.filter(pl.col(self.key).is_not_null()), self.key)
        elif checks and not proven:
            check_sum_range(self.plan, self.source, agg_df[:, [self.key, *checks]], self.key)
        if other_key:  # the known accounts' keys fit; the others are counted above
            agg_df = agg_df.join(known_keys.to_frame(), on=self.key, how="semi").with_columns(
                pl.col(self.key).cast(self.accounts.get_column(self.key).dtype))
        dropped = {"__n", "__flawed", *checks}
        # (columns by name as ``frame[:, names]``: see engine.frames.narrow)
        return agg_df[:, [c for c in agg_df.columns if c not in dropped]], diagnostics

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
        ev = self.columns
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
        account = self.columns.account
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

        ``start`` is the earliest window start of every aggregate indicator of this source,
        ``None`` when one of them reads all history (or there is none). The instants are on
        the evaluation clock (the default source's zone).
        """
        span, anchors, unbounded = self._range_parts()
        if unbounded:
            return None, self.clock.end
        # (the earliest trailing window's start: the longest one's)
        lows = [self.clock.end - span] if span is not None else []
        lows += [self._anchor_start(a) for a in anchors]
        return min(lows), self.clock.end

    def _range_parts(self) -> tuple[dt.timedelta | None, tuple[str, ...], bool]:
        """What :meth:`read_range` reads, built once per plan and source (the same at every
        clock): the longest of the trailing windows (None: none), the attributes where
        anchored windows start (their earliest value is the accounts' data), and whether
        some window reads all history (or no indicator reads this source)."""
        parts: dict[str, tuple[dt.timedelta | None, tuple[str, ...], bool]] = (
            self.plan.cached("read-range", dict))
        got = parts.get(self.source)
        if got is not None:
            return got
        spans: list[int] = []
        anchors: set[str] = set()
        mine = self.indicators()
        unbounded = not mine
        by_ids: dict[int, dict[str, AggregateIndicator]] = {}
        for i, _, ind in mine:
            cr = self.plan.roadmaps[i]
            by_id = by_ids.get(i)
            if by_id is None:  # once per roadmap, not once per indicator
                by_id = by_ids[i] = {x.id: x for x in cr.roadmap.indicators
                                     if isinstance(x, AggregateIndicator)}
            # a window that starts at an indicator's time starts after that indicator's own
            # window starts
            while ind.window.from_ in by_id:
                ind = by_id[ind.window.from_]
            w = ind.window
            if w.kind == "trailing":
                assert w.days is not None
                spans.append(w.days * (2 if ind.id in cr.analysis.previous_windows else 1))
            elif w.kind == "anchored":
                assert w.from_ is not None
                anchors.add(w.from_)
            else:
                unbounded = True
        got = parts[self.source] = (dt.timedelta(days=max(spans)) if spans else None,
                                    tuple(sorted(anchors)), unbounded)
        return got

    def _anchor_start(self, attribute: str) -> dt.datetime:
        """The earliest start of the windows anchored at an account attribute: its
        smallest value over the accounts (the evaluation instant when every one is
        null)."""
        col = self.accounts[attribute]
        if col.null_count() == len(col):
            return self.clock.end
        lo = col.min()
        if isinstance(lo, dt.datetime):
            if lo.tzinfo is not None and self.clock.time_zone is not None:
                lo = lo.astimezone(ZoneInfo(self.clock.time_zone))
            return lo.replace(tzinfo=None)
        assert isinstance(lo, dt.date)
        return dt.datetime.combine(lo, dt.time())


def collect_passes(queries: list[pl.LazyFrame]) -> list[pl.DataFrame]:
    """The streaming events passes of several sources (:meth:`EventsPass.query`), collected
    at the same time: each on a thread of its own (the first on the calling thread; polars
    releases the interpreter while it runs a query), all on polars' one pool of threads.

    ``pl.collect_all`` runs them as one streaming graph whose pipelines run one after
    another (each source's scan and ``group_by``, then each ``group_by``'s finish), so a
    small source's pipeline (a few morsels) keeps one core busy while the other waits;
    run apart, a small pass runs beside the large one's. The same queries and results;
    the error raised is the first source's (in ``queries``' order) that failed."""
    got: list[pl.DataFrame | None] = [None] * len(queries)
    errors: list[BaseException | None] = [None] * len(queries)

    def run(i: int) -> None:
        try:
            got[i] = queries[i].collect(optimizations=EVENTS_QUERY_FLAGS, engine="streaming")
        except BaseException as exc:  # (raised on the calling thread below)
            errors[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True)
               for i in range(1, len(queries))]
    for thread in threads:
        thread.start()
    run(0)
    for thread in threads:
        thread.join()
    for error in errors:
        if error is not None:
            raise error
    return [df for df in got if df is not None]


def keys_known(known: pl.Series, keys: list[pl.Series], distinct: int | None = None,
               ) -> bool:
    """Whether every value of ``keys`` (the account keys of one or more passes, each in
    ``known``'s dtype) is a value of ``known`` (the accounts' keys), none null: one count
    of distinct values over them all (:meth:`EventsPass.finish` counts the keys it is not
    told are known; :meth:`healthrules.engine.Evaluator.aggregates` counts the keys of
    the passes of several sources together, once). ``distinct``: ``known.n_unique()``,
    when the caller has it."""
    if known.null_count() or any(k.null_count() for k in keys):
        return False
    if distinct is None:
        distinct = known.n_unique()
    return pl.concat([known, *keys]).n_unique() == distinct


_DAY_UNITS: dict[str, int] = {"us": 86_400_000_000, "ns": 86_400_000_000_000}
"""The ticks of a day of the timestamp units whose days :func:`day_of` counts in an
``Int32`` whatever the instant (``2**63`` microseconds are about 107 million days)."""


def day_of(ts: pl.Expr, dtype: pl.DataType | None, clock: Clock, small: bool) -> pl.Expr:
    """The date of the events pass's timestamps (``__day``: what ``active_days`` counts),
    ``ts.dt.date()``'s values.

    ``dtype``: the source's timestamp dtype as stored. When the pass reads it without a
    zone or in UTC, and in the evaluation clock's zone, a day is the floor of the instant's
    ticks over a day's (no zone to convert to): an Int64 floor division and a wrapping
    cast to Int32 (exact: the days of a microsecond or nanosecond timestamp fit, see
    :data:`_DAY_UNITS`), then the date those days since 1970 are, about 16 instructions an
    event where ``dt.date()`` takes about 41 (its cast to Int32 checks every value for
    overflow). Other zones, units and ``Date`` timestamps, and ``small`` (in-memory) passes,
    where planning three more steps would cost more than a few events save, keep
    ``dt.date()``."""
    ticks = _DAY_UNITS.get(clock.time_unit)
    if (small or ticks is None or not isinstance(dtype, pl.Datetime)
            or dtype.time_zone not in (None, "UTC") or dtype.time_zone != clock.time_zone):
        return ts.dt.date()
    # (the stored timestamps are read in the clock's unit and, being in its zone, not
    # converted: healthrules.inputs.read_event_exprs)
    return (ts.to_physical() // ticks).cast(pl.Int32, wrap_numerical=True).cast(pl.Date)


def read_source(events: pl.LazyFrame, plan: Plan, source: str, clock: Clock,
                schema: pl.Schema, columns: set[str] | tuple[str, ...],
                start: dt.datetime | None, end: dt.datetime, *,
                one_limb: bool = False) -> pl.LazyFrame:
    """The events of one source in ``[start, end)`` (instants of the evaluation clock; rows
    with a null timestamp kept for the data checks), with ``columns``, as the engine reads
    them (:func:`healthrules.inputs.read_event_exprs`).

    The range is applied to the source's own timestamps (in its zone and unit), so that
    polars pushes it down to the scan even when the timestamps are then converted to the
    evaluation clock.

    The float values that sums add get their exact limbs (:func:`exact_columns`) or, with
    ``one_limb``, their billionths as one Int64 (:func:`exact_one_column`).
    """
    ts = pl.col(plan.sources[source].timestamp)
    ts_dtype = schema.get(plan.sources[source].timestamp)
    # ``Date`` timestamps: the exact range applies to the instants they become (below); a
    # wider one on the dates as stored goes first, so that polars pushes it down to the
    # scan (it cannot push a filter on the converted column)
    dates = _date_range(ts, start, end) if isinstance(ts_dtype, pl.Date) else None
    if dates is not None:
        events = events.filter(dates)

    def in_range(own: Clock) -> pl.Expr:
        keep = ts < own.datetime_lit(clock.wall_time(end, own.time_zone))
        if start is not None:
            keep = keep & (ts >= own.datetime_lit(clock.wall_time(start, own.time_zone)))
        return keep | ts.is_null()

    cols, exprs, limbs = _read_steps(plan, source, clock, schema, columns, one_limb)
    if isinstance(ts_dtype, pl.Datetime):
        events = events.filter(in_range(source_clock(clock, plan, source, schema)))
        read = events.select(cols).with_columns(exprs)
    else:  # dates at midnight; NaN and inf read as null everywhere (filters, aggregates)
        read = events.select(cols).with_columns(exprs).filter(in_range(clock))
    return read.with_columns(limbs) if limbs else read


def _read_steps(plan: Plan, source: str, clock: Clock, schema: pl.Schema,
                columns: set[str] | tuple[str, ...], one_limb: bool,
                ) -> tuple[list[pl.Expr], list[pl.Expr], list[pl.Expr]]:
    """The columns and expressions of :func:`read_source` other than its time range:
    those of :func:`healthrules.inputs.read_event_exprs`, then the float values' limbs. Built
    once per plan, source, clock zone and unit (they read nothing else of the clock: the
    same at every date), schema of the columns read and form of the limbs, and kept (a
    service evaluating one account per call reads frames of one schema; a daily job's
    evaluation at a new date builds none)."""
    steps: dict[Hashable, tuple[list[pl.Expr], list[pl.Expr], list[pl.Expr]]] = plan.cached(
        "event-reads", dict)
    ts = plan.sources[source].timestamp
    key = (source, clock.time_zone, clock.time_unit,
           tuple((n, schema.get(n)) for n in sorted(columns)), schema.get(ts), one_limb)
    got = steps.get(key)
    if got is not None:
        return got
    cols, exprs = read_event_exprs(plan, clock, schema, columns, source)
    # float values that sums add: their exact limbs, computed once per event
    summed = [c for c, t in sorted(summed_columns(plan, source).items())
              if t == "float" and c in columns]
    # (one Int64: a null value's billionths are 0, so that the sums read a column without
    # nulls; see healthrules.aggregates.AggregateInputs.exact)
    limbs = ([exact_one_limb(pl.col(c)).fill_null(0).alias(exact_one_column(c))
              for c in summed]
             if one_limb else
             [e.alias(n) for c in summed
              for e, n in zip(exact_limbs(pl.col(c)), exact_columns(c), strict=True)])
    if len(steps) >= 64:  # many dates or schemas: keep the newest
        steps.clear()
    # the columns as expressions built once (a name is parsed into one at every select)
    got = steps[key] = ([pl.col(c) for c in cols], exprs, limbs)
    return got


def _partition_filter(column: str, dtype: pl.DataType, start: dt.datetime | None,
                      end: dt.datetime) -> pl.Expr:
    """Keep the partitions of the days in ``[start, end)``, one day of margin each side.

    A text partition is a day only where it reads ``YYYY-MM-DD`` as a real date; any other
    text (``garbage``, ``2026-6-5``) places its events on no day, so its partition is kept
    and its events meet the read range by their own timestamps, like a null partition's."""
    part = pl.col(column)
    margin = dt.timedelta(days=1)
    day = part if dtype != pl.String else pl.when(
        part.str.contains(r"^\d{4}-\d{2}-\d{2}$")).then(
        part.str.to_date("%Y-%m-%d", strict=False))
    cond = day <= pl.lit((end + margin).date(), pl.Date)
    if start is not None:
        cond = cond & (day >= pl.lit((start - margin).date(), pl.Date))
    return cond | day.is_null()


def _date_range(day: pl.Expr, start: dt.datetime | None, end: dt.datetime) -> pl.Expr | None:
    """The dates whose midnight can fall in ``[start, end)`` (wall times of the evaluation
    clock) on any source's clock, and null dates (kept for the data checks): two days of
    margin on each side, as time zones differ by up to 26 hours. A bound beyond the
    representable dates is left out (None: no bound at all)."""
    margin = dt.timedelta(days=2)
    bounds: list[pl.Expr] = []
    try:
        bounds.append(day <= pl.lit((end + margin).date(), pl.Date))
    except OverflowError:
        pass
    if start is not None:
        try:
            bounds.append(day >= pl.lit((start - margin).date(), pl.Date))
        except OverflowError:
            pass
    if not bounds:
        return None
    return functools.reduce(operator.and_, bounds) | day.is_null()
