"""The engine's public class, :class:`Evaluator`, and :func:`evaluate`.

An evaluation runs in three collects, whatever the size of the plan:

1. the events pass (:mod:`healthrules.engine.aggregate`): one lazy ``group_by(account)``;
2. the roadmap frames of every roadmap (:mod:`healthrules.engine.assemble`), one
   ``collect_all``, then their task lists in a second ``collect_all``;
3. every output frame of every roadmap (indicators, stages, scores, fired actions with texts
   and evidence, condition counts) in one ``collect_all``.

Every polars expression involved is built once per plan and timestamp unit and kept in the
plan (``Plan.memo``); ``as_of`` is bound late (a literal over the events, columns over the
per-account rows), so a service that compiles once pays only for binding its frames.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from healthrules.compiler import Plan, compile
from healthrules.engine.aggregate import EventsPass
from healthrules.engine.assemble import RoadmapOutputs, RoadmapProgram, program_for
from healthrules.engine.binding import ColumnTime
from healthrules.engine.frames import ROUTE, TASK_DTYPE, collect_all, empty_actions
from healthrules.errors import Code, InputDataError, Issue, Location
from healthrules.evaluation import Evaluation
from healthrules.expressions import Parsed
from healthrules.inputs import (
    Clock,
    account_validity,
    accounts_at,
    check_accounts,
    check_events_schema,
    clock_for,
    is_dated,
)
from healthrules.roadmap import UNASSIGNED_STAGE, Pack, Roadmap
from healthrules.sources import FrameInput, resolve, schema_of, source_of

__all__ = ["CollectedOutputs", "Evaluator", "evaluate", "events_query", "read_range"]


@dataclass(frozen=True)
class CollectedOutputs:
    """The collected output frames of every roadmap of a plan (one list entry per roadmap).

    ``actions`` and ``counts`` hold a frame only for roadmaps with actions; ``fired_rows``
    (``outputs(render=False)`` only, then ``actions`` holds nothing) the unrendered rows
    where some action fired (see :meth:`RoadmapProgram.render`).
    """

    indicators: list[pl.DataFrame]
    stages: list[pl.DataFrame]
    scores: list[pl.DataFrame]
    actions: list[pl.DataFrame | None]
    counts: list[pl.DataFrame | None]
    fired_rows: list[pl.DataFrame | None] = field(default_factory=list)


class Evaluator:
    """The engine of a plan: routing, roadmap frames and output frames, for any rows.

    ``evaluate`` uses it for one date (rows are accounts); ``healthrules.history`` uses the
    same hooks for a grid of (account, date) rows, and the lifecycle compiles its
    conditions with :meth:`expr`. The rows handed to :meth:`roadmap_frames` carry the time
    columns ``__as_of`` (Date), ``__end`` and ``__end_naive`` (see
    :mod:`healthrules.engine.binding`); :meth:`time_columns` makes them for one date.

    Parameters
    ----------
    plan
        The compiled plan.
    time_unit
        The time unit of the events' timestamps.
    """

    def __init__(self, plan: Plan, time_unit: str = "us") -> None:
        self.plan = plan
        self.time_unit = time_unit
        self.programs: list[RoadmapProgram] = [
            program_for(plan, i, time_unit) for i in range(len(plan.roadmaps))]
        self._route: pl.Expr = plan.cached(("route", time_unit), self._route_expr)

    # ------------------------------------------------------------------ hooks

    @staticmethod
    def time_columns(clock: Clock) -> list[pl.Expr]:
        """The time columns of one evaluation date, as literals to add to the rows."""
        return ColumnTime.columns(clock)

    def expr(self, index: int, parsed: Parsed) -> pl.Expr:
        """The polars expression of a parsed expression of roadmap ``index`` (actions scope),
        reading the columns of its roadmap frame."""
        return self.programs[index].expr(parsed)

    def route(self, rows: pl.LazyFrame) -> pl.LazyFrame:
        """Add ``__route``: the index of the first roadmap whose ``applies_to`` holds."""
        return rows.with_columns(self._route)

    def roadmap_frames(self, routed: pl.DataFrame, agg: pl.DataFrame,
                       key: str) -> list[pl.DataFrame]:
        """The collected roadmap frame of every roadmap (rows routed to it only), one
        ``collect_all``.

        ``routed`` has ``key``, ``__route``, the time columns, attributes and overlays;
        ``agg`` has ``key`` and the raw aggregates of the events pass.
        """
        columns = set(routed.columns)
        lazy_routed, lazy_agg = routed.lazy(), agg.lazy()
        return collect_all(
            [p.frame(lazy_routed, lazy_agg, key, columns) for p in self.programs],
            routed.height)

    def outputs(self, frames: list[pl.DataFrame], key: str,
                by: str | None = None, *, render: bool = True) -> CollectedOutputs:
        """Every output frame of every roadmap: one ``collect_all`` for the frames and the
        fired rows with their rendered values, one for the actions built from those.

        ``key`` is the row key; ``by`` groups the condition counts (a date column). With
        ``render=False`` nothing is rendered: ``fired_rows`` holds the fired rows, for
        :meth:`RoadmapProgram.render` and :meth:`RoadmapProgram.actions` (or
        :meth:`RoadmapProgram.fired`) later, and ``actions`` holds nothing.
        """
        rows = sum(f.height for f in frames)
        lazies: list[pl.LazyFrame] = []
        shapes: list[RoadmapOutputs] = []
        for p, frame in zip(self.programs, frames, strict=True):
            o = p.outputs(frame, key, by, render=render)
            shapes.append(o)
            lazies += [o.indicators, o.stages, o.scores]
            lazies += [x for x in (o.fired_rows, o.counts) if x is not None]
        got = iter(collect_all(lazies, rows))
        result = CollectedOutputs([], [], [], [], [])
        fired: list[tuple[int, pl.LazyFrame]] = []
        for i, o in enumerate(shapes):
            result.indicators.append(next(got))
            result.stages.append(next(got))
            result.scores.append(next(got))
            fired_rows = next(got) if o.fired_rows is not None else None
            result.counts.append(next(got) if o.counts is not None else None)
            result.actions.append(None)
            result.fired_rows.append(fired_rows)
            if fired_rows is not None and render:
                fired.append((i, self.programs[i].actions(fired_rows, key)))
        if fired:
            for (i, _), frame in zip(fired, collect_all([lf for _, lf in fired], rows),
                                     strict=True):
                result.actions[i] = frame
        return result

    # ------------------------------------------------------------------ one date

    def evaluate(self, events: pl.LazyFrame | FrameInput, accounts: pl.DataFrame | FrameInput,
                 clock: Clock, *,
                 partition_column: str | None = None, low_memory: bool = False,
                 event_rows: int | None = None) -> Evaluation:
        """Evaluate checked inputs at one clock (see :func:`evaluate` for the public form).

        ``events`` may also be any input :func:`evaluate` takes (a DuckDB relation, a
        source, an Arrow object): it is read with the columns and the time range of this
        clock pushed down. ``accounts`` other than a ``DataFrame`` are read with the key
        and the declared attributes. ``event_rows`` is the number of events when known (an
        in-memory frame).
        """
        plan = self.plan
        key = plan.account_key
        if not isinstance(accounts, pl.DataFrame):
            accounts = resolve(accounts, [key, *plan.attributes], time_zone=clock.time_zone,
                               what="accounts").collect()
        if not isinstance(events, pl.LazyFrame):
            if isinstance(events, pl.DataFrame):
                event_rows = events.height if event_rows is None else event_rows
            events = events_frame(plan, events, clock, EventsPass(plan, clock,
                                                                  accounts).read_range(),
                                  partition_column)
        agg, diagnostics = EventsPass(plan, clock, accounts, partition_column=partition_column,
                                      low_memory=low_memory).collect(events, event_rows)
        routed = collect_all(
            [self.route(accounts.lazy().with_columns(self.time_columns(clock)))],
            accounts.height)[0]
        frames = self.roadmap_frames(routed, agg, key)
        out = self.outputs(frames, key)
        cond_rows: list[dict[str, Any]] = []
        action_frames: list[pl.DataFrame] = []
        for i, cr in enumerate(plan.roadmaps):
            fired, counts = out.actions[i], out.counts[i]
            if fired is not None:
                action_frames.append(fired)
            row = counts.row(0, named=True) if counts is not None else {}
            for k, (st, action) in enumerate(cr.roadmap.all_actions()):
                cond_rows.append({
                    "roadmap": cr.id, "stage": st.id if st else None, "action_id": action.id,
                    "considered": row[f"scope_{k}"], "fired": row[f"fired_{k}"],
                    "unknown": row[f"unknown_{k}"],
                })
        unrouted = routed.filter(pl.col(ROUTE).is_null())
        diagnostics["accounts"] = routed.height
        diagnostics["accounts_unrouted"] = unrouted.height
        stage_frames = list(out.stages)
        if unrouted.height:
            stage_frames.append(unrouted_stages(unrouted, key))
        order = [key, "roadmap"]
        indicators = pl.concat(out.indicators, how="diagonal_relaxed").sort(
            order, nulls_last=True)
        stages = pl.concat(stage_frames, how="vertical_relaxed").sort(order, nulls_last=True)
        scores = pl.concat(out.scores, how="vertical_relaxed").sort(order, nulls_last=True)
        if action_frames:
            actions_df = pl.concat(action_frames, how="vertical_relaxed").sort(
                [key, "__rank", "__order"]).drop("__rank", "__order")
        else:
            actions_df = empty_actions(key, accounts.schema[key])
        conditions = pl.DataFrame(cond_rows, schema={
            "roadmap": pl.String, "stage": pl.String, "action_id": pl.String,
            "considered": pl.Int64, "fired": pl.Int64, "unknown": pl.Int64})
        attributes = routed.select(accounts.columns)
        return Evaluation(
            plan=plan, as_of=clock.as_of, account_key=key, indicators=indicators,
            stages=stages, scores=scores, actions=actions_df, conditions=conditions,
            diagnostics=diagnostics, attributes=attributes,
        )

    # ------------------------------------------------------------------ building

    def _route_expr(self) -> pl.Expr:
        chain: Any = None
        for i, program in enumerate(self.programs):
            parsed = program.compiled.analysis.expressions.get("applies_to")
            cond = pl.lit(True) if parsed is None else program.expr(parsed)
            cond = cond.fill_null(False)
            then = pl.lit(i, pl.Int64)
            chain = pl.when(cond).then(then) if chain is None else chain.when(cond).then(then)
        route: pl.Expr = chain.otherwise(pl.lit(None, pl.Int64)).alias(ROUTE)
        return route


def unrouted_stages(unrouted: pl.DataFrame, key: str) -> pl.DataFrame:
    """The stages rows of accounts no roadmap applies to (stage ``unassigned``)."""
    return unrouted.select(
        key, pl.lit(None, pl.String).alias("roadmap"),
        pl.lit(UNASSIGNED_STAGE).alias("stage"), pl.lit(None, pl.Int64).alias("stage_index"),
        pl.lit(None, pl.Boolean).alias("achieved"), pl.lit(0, pl.Int64).alias("tasks_done"),
        pl.lit(0, pl.Int64).alias("tasks_total"), pl.lit([], dtype=TASK_DTYPE).alias("tasks"))


# ---------------------------------------------------------------------- public functions


def evaluate(
    source: Roadmap | Pack | Plan,
    events: FrameInput,
    accounts: FrameInput,
    as_of: dt.date | dt.datetime | str,
    *,
    partition_column: str | None = None,
    low_memory: bool = False,
) -> Evaluation:
    """Evaluate a roadmap (or pack) over all accounts as of a date.

    Parameters
    ----------
    source
        A roadmap, a loaded pack, or a compiled :class:`Plan` (compile once, evaluate often:
        the plan keeps the polars expressions it builds on first use).
    events
        Usage events, a ``DataFrame`` or a ``LazyFrame`` (``pl.scan_parquet`` works and is
        never collected whole): the columns declared in ``data.events``. Also a DuckDB
        relation, a :class:`healthrules.sources.DuckDBSource` or
        :class:`~healthrules.sources.SQLSource` (the columns and the time range the roadmap
        reads are written into their SQL), or an Arrow table or stream (``docs/sources.md``).
    accounts
        One row per account: the key and the attributes declared in ``data.accounts``; any
        input ``events`` takes. With validity columns declared there (``valid_from``/
        ``valid_to`` or ``snapshot``), one row per account and version: each account is
        evaluated with its row valid at ``as_of``, and an account without one is not
        evaluated (counted in ``diagnostics["accounts_not_started"]`` and
        ``["accounts_ended"]``).
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
    plan, clock, ev_lf, acc_df = prepare(source, events, accounts, as_of, partition_column)
    rows = events.height if isinstance(events, pl.DataFrame) else None
    at = accounts_at(acc_df, clock, plan.account_key)
    result = Evaluator(plan, clock.time_unit).evaluate(
        ev_lf, at.frame, clock, partition_column=partition_column, low_memory=low_memory,
        event_rows=rows)
    if is_dated(acc_df):  # dated accounts: who did not exist at the date
        result.diagnostics["accounts_not_started"] = at.not_started
        result.diagnostics["accounts_ended"] = at.ended
    return result


def events_query(
    source: Roadmap | Pack | Plan,
    events: FrameInput,
    accounts: FrameInput,
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
    plan, clock, ev_lf, acc_df = prepare(source, events, accounts, as_of, partition_column)
    acc_df = accounts_at(acc_df, clock, plan.account_key).frame
    return EventsPass(plan, clock, acc_df, partition_column=partition_column,
                      low_memory=low_memory).query(ev_lf)


def read_range(
    source: Roadmap | Pack | Plan,
    events: FrameInput,
    accounts: FrameInput,
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
    plan, clock, _, acc_df = prepare(source, events, accounts, as_of, None)
    acc_df = accounts_at(acc_df, clock, plan.account_key).frame
    start, end = EventsPass(plan, clock, acc_df).read_range()
    zone = ZoneInfo(clock.time_zone) if clock.time_zone else None
    if zone is not None:
        end = end.replace(tzinfo=zone)
        start = start.replace(tzinfo=zone) if start is not None else None
    return start, end


_AS_OF: Any = object()  # prepare(first=...): the events are read for as_of alone


def prepare(source: Roadmap | Pack | Plan, events: Any, accounts: Any, as_of: Any,
            partition_column: str | None = None, *, first: Any = _AS_OF,
            ) -> tuple[Plan, Clock, pl.LazyFrame, pl.DataFrame]:
    """Compile and check the inputs of one evaluation (every problem at once).

    Returns the plan, the clock of ``as_of``, the events (lazy) and the checked accounts
    (every dated row when the accounts are dated: pick a date's rows with
    :func:`healthrules.inputs.accounts_at`).
    The inputs become LazyFrames here, once (:func:`healthrules.sources.resolve`): a
    source outside polars (DuckDB, a database by URI) reads only the event columns the
    plan declares and only the events of the time range it needs, both in its SQL.

    ``first`` is the earliest date the events are evaluated at (history: the first date
    of the grid, lags included); by default ``as_of`` alone; None reads every event
    before ``as_of``'s end.

    Raises
    ------
    RoadmapError
        If the roadmap does not compile.
    InputDataError
        If the frames do not match the data contract.
    """
    plan = compile(source)
    ev_src = source_of(events, "events")
    acc_src = source_of(accounts, "accounts")
    zone = plan.events.timezone  # a database's zoned timestamps, shown in the roadmap's zone
    try:
        ev_schema = schema_of(ev_src, zone)
    except pl.exceptions.PolarsError as exc:
        raise InputDataError(f"cannot read the events frame: {exc}") from exc
    try:
        acc_schema = schema_of(acc_src, zone)
    except pl.exceptions.PolarsError as exc:
        raise InputDataError(f"cannot read the accounts frame: {exc}") from exc
    issues = check_events_schema(plan, ev_schema)
    if partition_column is not None:
        issues += _check_partition_column(ev_schema, partition_column)
    clock = clock_for(plan, ev_schema, as_of)
    wanted = [plan.account_key, *plan.attributes, *account_validity(plan)]
    acc_lf = resolve(acc_src, wanted if all(c in acc_schema for c in wanted) else None,
                     time_zone=zone)
    acc_df, acc_issues = check_accounts(plan, acc_lf, ev_schema, clock)
    issues += acc_issues
    if issues:
        raise InputDataError(issues)
    try:  # the widest window must stay within the dates Python and polars can hold
        start, end = EventsPass(plan, clock, acc_df).read_range()
        if first is None:
            start = None
        elif first is not _AS_OF:
            start, _ = EventsPass(plan, clock_for(plan, ev_schema, first), acc_df).read_range()
    except OverflowError:
        raise InputDataError([Issue(
            code=Code.BAD_AS_OF.value, location=Location(file="<as_of>"),
            message=f"as_of {clock.as_of.isoformat()} is too close to the first or last "
            "representable date: the roadmap's windows reach before 0001-01-01 or after "
            "9999-12-31", hint="pass a real evaluation date")]) from None
    ev_lf = events_frame(plan, ev_src, clock, (start, end), partition_column)
    return plan, clock, ev_lf, acc_df


def events_frame(plan: Plan, events: Any, clock: Clock,
                 read_range: tuple[dt.datetime | None, dt.datetime],
                 partition_column: str | None = None) -> pl.LazyFrame:
    """The events as the engine reads them: only the columns the plan reads, and, for a
    source outside polars, only the rows of ``read_range`` (naive wall times in the events'
    zone), both in its SQL (:func:`healthrules.sources.resolve`)."""
    start, end = read_range
    if clock.time_zone is not None:
        info = ZoneInfo(clock.time_zone)
        end = end.replace(tzinfo=info)
        start = start.replace(tzinfo=info) if start is not None else None
    columns = sorted(event_columns(plan) | ({partition_column} if partition_column else set()))
    return resolve(events, columns, plan.events.timestamp, (start, end),
                   time_zone=plan.events.timezone, what="events")


def event_columns(plan: Plan) -> set[str]:
    """The event columns a plan reads: the account, the timestamp, and every column of
    ``data.events`` (event, user, values) of every roadmap."""
    cols = {plan.events.account}
    for cr in plan.roadmaps:
        cols |= set(cr.analysis.event_types)
        cols.add(cr.roadmap.data.events.account)
    return cols


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
