"""The engine's public class, :class:`Evaluator`, and :func:`evaluate`.

An evaluation runs in three collects (four for large inputs where some action fired),
whatever the size of the plan:

1. the events pass (:mod:`healthrules.engine.aggregate`): one lazy ``group_by(account)``;
2. the routed rows and the roadmap frame of every roadmap
   (:mod:`healthrules.engine.assemble`), one ``collect_all``;
3. the output frames (indicators, stages with their task lists, scores: each stacked over
   the roadmaps and sorted inside the query; one roadmap without roll-ups is built from
   the accounts sorted by key in step 2, and its frames need no sort) and the fired
   actions with texts and evidence (the collected roadmap frames tell which actions
   fired; each action renders only the values it shows on its own rows,
   :meth:`RoadmapProgram.rendered_actions`), one ``collect_all``; the condition counts
   are sums of the collected frames' columns;
4. above ``SMALL_ROWS`` rows, step 3 collects the unrendered rows where some action fired
   instead, and the fired actions are rendered from those in a fourth collect (each
   action's filter then runs over the fired rows, not over every row).

One account (a service's request) takes step 2 in two collects where that pays
(:meth:`RoadmapProgram.splits`): the routed row with the indicators, stage and segment
(:meth:`RoadmapProgram.head`), then the rest of the roadmap frame with only what that
stage and segment need (:meth:`RoadmapProgram.tail`: its tasks, achievement and action
conditions, the one weight set that applies), some 300 fewer expression nodes to plan and
run for the B2B example.

Steps 2 to 4 run on one row per account and on the in-memory engine
(:func:`~healthrules.engine.frames.collect_rows`): without query optimisation up to
``SMALL_ROWS`` rows, with every optimisation above (the streaming engine costs more for
these wide queries over frames in memory).

Every polars expression involved is built once per plan and timestamp unit and kept in the
plan (``Plan.memo``); ``as_of`` is bound late (a literal over the events, columns over the
per-account rows), so a service that compiles once pays only for binding its frames.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from healthrules.compiler import Plan, compile
from healthrules.engine.aggregate import (
    EventsPass,
    collect_passes,
    keys_known,
    prepare_filters,
    prepare_passes,
    read_source,
    small_events_run,
)
from healthrules.engine.assemble import (
    RoadmapOutputs,
    RoadmapProgram,
    program_for,
)
from healthrules.engine.binding import ColumnTime
from healthrules.engine.frames import (
    AS_OF,
    END,
    END_NAIVE,
    ROUTE,
    SMALL_ROWS,
    TASK_DTYPE,
    collect_all,
    collect_rows,
    empty_actions,
)
from healthrules.errors import Code, InputDataError, Issue, Location
from healthrules.evaluation import Evaluation
from healthrules.expressions import Parsed, did_you_mean
from healthrules.inputs import (
    ZONE_DATES,
    Clock,
    account_validity,
    accounts_at,
    check_accounts,
    check_events_schema,
    check_source_key,
    clock_for,
    early_events_bounds,
    event_inputs,
    fixed_offset,
    hierarchy_issues,
    instant_lit,
    int_range_issues,
    is_dated,
    source_clock,
    source_label,
    text_filter_columns,
    zone_dates_issue,
)
from healthrules.query_flags import OPTIMISED
from healthrules.roadmap import UNASSIGNED_STAGE, Pack, Roadmap
from healthrules.sources import FrameInput, resolve, schema_of, source_of

__all__ = ["CollectedOutputs", "Evaluator", "Events", "PartitionColumn", "evaluate",
           "events_query", "read_range"]


@dataclass(frozen=True)
class CollectedOutputs:
    """The collected output frames of every roadmap of a plan (one list entry per roadmap).

    ``counts`` holds a frame only for roadmaps with actions, ``actions`` only for roadmaps
    where some action fired (and with ``outputs(render=True)``); ``fired_rows`` the
    unrendered rows where some action fired (see :meth:`RoadmapProgram.render`).
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
        # the first roadmap applies to every account (the route is 0 for every row)
        self._every = bool(plan.roadmaps) and (
            "applies_to" not in plan.roadmaps[0].analysis.expressions)

    def prepare(self) -> None:
        """Build now what evaluations build on first use and does not depend on the data
        (``compile`` calls it): the frame of the actions' names, the event columns that
        filters read as text, each source's indicators, the event filters that read no
        ``as_of`` (the same at every date), each events pass's aggregations without their
        windows (:func:`prepare_passes`) and the columns each action's rendering reads.
        A daily job compiles and then evaluates once:
        its evaluation should pay for the data only."""
        plan = self.plan
        plan.cached("conditions", lambda: _action_names(plan))
        text_filter_columns(plan)
        for name in plan.sources:
            plan.source_indicators(name)
        prepare_filters(plan)
        prepare_passes(plan)
        # the columns each action's branch reads when many rows render their actions: the
        # rows carry their number when one roadmap without roll-ups is sorted by key
        # (``_results``)
        carried = len(self.programs) == 1 and not self.programs[0].has_rollups
        for program in self.programs:
            program.prepare_reads(plan.account_key, carried=carried)

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
        return collect_all(self._frames(routed.lazy(), agg, key, set(routed.columns)),
                           routed.height)

    def _frames(self, routed: pl.LazyFrame, agg: pl.DataFrame, key: str,
                columns: set[str], rows: int | None = None, *,
                every: pl.LazyFrame | None = None) -> list[pl.LazyFrame]:
        # (collected: each roadmap takes the columns it reads by name, no select to plan)
        # (``every``: the rows without ``__route``, all of them routed to the first roadmap)
        return [p.frame(routed, agg, key, columns, rows) if i or every is None
                else p.frame(every, agg, key, columns, rows, every=True)
                for i, p in enumerate(self.programs)]

    def outputs(self, frames: list[pl.DataFrame], key: str,
                by: str | None = None, *, render: bool = True) -> CollectedOutputs:
        """Every output frame of every roadmap: one ``collect_all`` for the frames and the
        fired rows, then, when some action fired, one for the fired actions with their
        texts and evidence (:meth:`RoadmapProgram.rendered_actions`: only the actions that
        fired, each rendering only the values it shows).

        ``key`` is the row key; ``by`` groups the condition counts (a date column). With
        ``render=False`` nothing is rendered: ``fired_rows`` holds the fired rows, for
        :meth:`RoadmapProgram.render` and :meth:`RoadmapProgram.actions` (or
        :meth:`RoadmapProgram.fired`) later, and ``actions`` holds nothing.
        """
        rows = sum(f.height for f in frames)
        lazies: list[pl.LazyFrame] = []
        shapes: list[RoadmapOutputs] = []
        for p, frame in zip(self.programs, frames, strict=True):
            # the fired rows unrendered: texts and evidence are rendered below, for the
            # actions that fired only (none fired: no rendering query at all)
            o = p.outputs(frame, key, by, render=False)
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
            if fired_rows is not None and fired_rows.height and render:
                lf = self.programs[i].rendered_actions(fired_rows, key)
                if lf is not None:
                    fired.append((i, lf))
        if fired:
            for (i, _), frame in zip(fired, collect_all([lf for _, lf in fired], rows),
                                     strict=True):
                result.actions[i] = frame
        return result

    # ------------------------------------------------------------------ one date

    def aggregates(self, events: pl.LazyFrame | Mapping[str, pl.LazyFrame],
                   accounts: pl.DataFrame, clock: Clock, *,
                   partition_column: str | Mapping[str, str] | None = None,
                   low_memory: bool = False,
                   event_rows: int | Mapping[str, int | None] | None = None,
                   ) -> tuple[pl.DataFrame, dict[str, int]]:
        """The raw aggregates of every aggregate indicator (keyed by the account key) and
        the data checks' counters, from one events pass per source.

        Each source is read once, by its own pass (its own read range, columns and
        partition filter); the raw aggregates of the sources are joined per account.
        ``events`` maps each source to its frame (a single frame: the default source).
        With named sources, the counters are the totals under their plain names
        (``events_read``, ...) and, per source, under ``<source>:<name>``.
        """
        plan = self.plan
        frames = dict(events) if isinstance(events, Mapping) else {plan.default_source: events}
        key = plan.account_key
        passes: list[EventsPass] = []
        sizes: list[int | None] = []
        onto = False  # the sources' aggregates joined onto the first's (below)
        for name in plan.sources:
            part = (partition_column.get(name) if isinstance(partition_column, Mapping)
                    else partition_column)
            sizes.append(event_rows.get(name) if isinstance(event_rows, Mapping)
                         else event_rows)
            # optimistic sums: finish() checks them and runs the pass again if they could wrap
            passes.append(EventsPass(plan, clock, accounts, source=name, partition_column=part,
                                     low_memory=low_memory, optimistic=True, rows=sizes[-1]))
        if len(passes) == 1:
            results = [passes[0].collect(frames[plan.default_source], sizes[0])]
        else:
            # the passes of the sources run together, each its own query (small inputs: one
            # collect_all on the in-memory engine; else each on a thread, collect_passes)
            small = all(n is not None and n <= SMALL_ROWS for n in sizes)
            shared, flags = small_events_run(sum(n for n in sizes if n is not None))
            # (the streaming passes in the shared form: built at compile but for the
            # windows, docs/performance.md, "Ninth round on the events pass")
            queries = [p.query(frames[p.source], small=small,
                               shared=shared if small else p.streams_shared(),
                               folded=not small) for p in passes]
            if small:
                collected = pl.collect_all(queries, engine="in-memory", optimizations=flags)
            else:
                # the streaming engine, each pass beside the others (docs/performance.md,
                # "Tenth round on the events pass")
                collected = collect_passes(queries)
            # every source's keys known accounts (the usual case): told by one count of
            # distinct keys over them all, not one per pass
            known_keys = accounts.get_column(key)
            pass_keys = [df.get_column(p.columns.account)
                         for p, df in zip(passes, collected, strict=True)]
            distinct = known_keys.n_unique()
            known = (all(k.dtype == known_keys.dtype for k in pass_keys)
                     and keys_known(known_keys, pass_keys, distinct))
            results = [p.finish(df, frames[p.source], in_memory=small, known=known)
                       for p, df in zip(passes, collected, strict=True)]
            # the first source's aggregates hold every account (every key known, as many
            # rows as distinct accounts): the others' are joined onto them (a left join
            # costs about two thirds of a full one, and gives the same rows and columns)
            onto = known and results[0][0].height == distinct
        agg: pl.DataFrame | None = None
        diagnostics: dict[str, int] = {}
        for p, (got, counts) in zip(passes, results, strict=True):
            if agg is None:
                agg = got
            elif onto:
                agg = agg.join(got, on=key, how="left", maintain_order="left")
            else:
                agg = agg.join(got, on=key, how="full", coalesce=True)
            for k, v in counts.items():
                diagnostics[k] = diagnostics.get(k, 0) + v
                if plan.named_sources:
                    diagnostics[f"{p.source}:{k}"] = v
        assert agg is not None
        return agg, diagnostics

    def evaluate(self, events: Events, accounts: pl.DataFrame | FrameInput, clock: Clock, *,
                 partition_column: PartitionColumn = None,
                 low_memory: bool = False,
                 event_rows: int | Mapping[str, int | None] | None = None) -> Evaluation:
        """Evaluate checked inputs at one clock (see :func:`evaluate` for the public form).

        ``events`` is one lazy frame per event source (a single frame: the default source);
        ``event_rows`` the number of events when known (in-memory frames). A source's
        events may also be any input :func:`evaluate` takes (a DuckDB relation, a source,
        an Arrow object): it is read with that source's columns and the time range of this
        clock pushed down. ``accounts`` other than a ``DataFrame`` are read with the key and
        the declared attributes.
        """
        plan = self.plan
        key = plan.account_key
        if not isinstance(accounts, pl.DataFrame):
            accounts = resolve(accounts, [key, *plan.attributes, *plan.parent_columns],
                               time_zone=clock.time_zone,
                               what="accounts").collect(optimizations=OPTIMISED)
        given = dict(events) if isinstance(events, Mapping) else {plan.default_source: events}
        rows = (dict(event_rows) if isinstance(event_rows, Mapping)
                else {plan.default_source: event_rows})
        lazy_events: dict[str, pl.LazyFrame] = {}
        for name, obj in event_inputs(plan, given).items():
            frame = given[name]
            if isinstance(frame, pl.DataFrame) and rows.get(name) is None:
                rows[name] = frame.height
            if isinstance(obj, pl.LazyFrame):
                lazy_events[name] = obj
                continue
            part = (partition_column.get(name) if isinstance(partition_column, Mapping)
                    else partition_column)
            lazy_events[name] = events_frame(
                plan, obj, clock, EventsPass(plan, clock, accounts, source=name).read_range(),
                part, source=name, schema=schema_of(obj, plan.sources[name].timezone))
        agg, diagnostics = self.aggregates(lazy_events, accounts, clock,
                                           partition_column=partition_column,
                                           low_memory=low_memory, event_rows=rows)
        # the routed rows and the roadmap frames built from them in one collect (above
        # SMALL_ROWS accounts on the in-memory engine: collect_rows)
        timed_lf = accounts.lazy().with_columns(self.time_columns(clock))
        routed_lf = self.route(timed_lf)
        routed_columns = {*accounts.columns, ROUTE, AS_OF, END, END_NAIVE}
        # one roadmap: its frame is built from the rows sorted by key (narrow rows: one
        # cheap sort), so that the output frames come out in key order and need no sort of
        # their own (three sorts of wider frames); not where roll-ups group the rows (their
        # sums run in row order)
        in_key_order = (accounts.height > 1 and len(self.programs) == 1
                        and not self.programs[0].has_rollups)
        # the first roadmap applies to every account: its frame reads the rows as they
        # are, no route to test (not where the accounts carry a column of that name)
        every = self._every and ROUTE not in accounts.columns
        routed: pl.DataFrame | None
        if accounts.height == 1 and all(p.splits(routed_columns) for p in self.programs):
            # one account: its stage and segment are known after a first collect, and the
            # rest of its roadmap frame computes only what they need (RoadmapProgram.tail)
            # (the aggregates collected: each roadmap takes its columns by name)
            routed, *heads = collect_rows(
                [routed_lf, *[p.head(timed_lf, agg, key, every=True) if i == 0 and every
                              else p.head(routed_lf, agg, key)
                              for i, p in enumerate(self.programs)]], 1)
            frames = collect_rows([p.tail(head, routed_columns)
                                   for p, head in zip(self.programs, heads, strict=True)], 1)
        elif every and not {AS_OF, END, END_NAIVE} & set(accounts.columns):
            # every row routed to the first roadmap, the accounts' columns as they are: no
            # routed rows to collect (none is unrouted, the attributes are the accounts)
            routed = None
            frames = collect_rows(self._frames(
                routed_lf.sort(key) if in_key_order else routed_lf, agg, key,
                routed_columns, accounts.height,
                every=timed_lf.sort(key) if in_key_order else timed_lf), accounts.height)
        else:
            rows_lf = routed_lf.sort(key) if in_key_order else routed_lf
            routed, *frames = collect_rows(
                [routed_lf, *self._frames(rows_lf, agg, key, routed_columns, accounts.height)],
                accounts.height)
        unrouted = 0 if routed is None else routed.get_column(ROUTE).null_count()
        diagnostics["accounts"] = accounts.height
        diagnostics["accounts_unrouted"] = unrouted
        indicators, stages, scores, actions, counts = self._results(
            frames, None if routed is None or not unrouted
            else routed.filter(pl.col(ROUTE).is_null()), key,
            sort=accounts.height > 1, in_key_order=in_key_order)
        sums: dict[str, list[Any]] = {"considered": [], "fired": [], "unknown": []}
        for i, cr in enumerate(plan.roadmaps):
            row = counts[i]
            for k in range(len(cr.roadmap.all_actions())):
                for name, sum_name in (("considered", "scope"), ("fired", "fired"),
                                       ("unknown", "unknown")):
                    sums[name].append(row[f"{sum_name}_{k}"])
        # the actions' names are the same at every call: a frame of the plan
        conditions = plan.cached("conditions", lambda: _action_names(plan)).hstack(
            [pl.Series(name, values, dtype=pl.Int64) for name, values in sums.items()])
        if actions is None:
            actions = empty_actions(key, accounts.schema[key])
        # the rows are the accounts with the route and time columns added (a query less)
        attributes = (routed.select(accounts.columns)
                      if routed is not None and {ROUTE, AS_OF, END, END_NAIVE}
                      & set(accounts.columns) else accounts)
        return Evaluation(
            plan=plan, as_of=clock.as_of, account_key=key, indicators=indicators,
            stages=stages, scores=scores, actions=actions, conditions=conditions,
            diagnostics=diagnostics, attributes=attributes,
        )

    def _results(self, frames: list[pl.DataFrame], unrouted: pl.DataFrame | None, key: str,
                 *, sort: bool, in_key_order: bool = False,
                 ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame,
                            pl.DataFrame | None, list[dict[str, int]]]:
        """The frames of an :class:`Evaluation` from the roadmap frames, stacked over the
        roadmaps and sorted inside the queries (``sort``: more than one row; with
        ``in_key_order`` the roadmap frames' rows are sorted by ``key`` already, keys are
        unique, and a frame that is not stacked with another is not sorted again), with
        the fired actions in one ``collect_all`` (large inputs: the fired rows there, then
        one more for the fired actions when some fired): indicators, stages, scores, actions
        (None: none fired) and each roadmap's condition counts (sums of the collected
        frame's columns, no query)."""
        rows = sum(f.height for f in frames)
        # small frames: the fired actions are rendered from the roadmap frames in the same
        # collect_all as the other outputs (the actions that fired are known from the
        # collected frames); large ones collect the fired rows first, then render those
        # (each action's filter then runs over the fired rows, not over every row)
        small = rows <= SMALL_ROWS
        shapes = [p.outputs(frame, key, render=False, fired=not small, counts=False)
                  for p, frame in zip(self.programs, frames, strict=True)]
        order = [key, "roadmap"]

        def stack(parts: list[pl.LazyFrame], how: Any, by: list[str],
                  rows_sorted: bool = sort) -> pl.LazyFrame:
            if len(parts) == 1:
                return (parts[0].sort(by, nulls_last=True)
                        if rows_sorted and not (in_key_order and by == order) else parts[0])
            lf = pl.concat(parts, how=how)
            return lf.sort(by, nulls_last=True) if rows_sorted else lf

        stage_parts = [o.stages for o in shapes]
        if unrouted is not None:
            stage_parts.append(unrouted_stages(unrouted, key).lazy())
        lazies = [stack([o.indicators for o in shapes], "diagonal_relaxed", order),
                  stack(stage_parts, "vertical_relaxed", order),
                  stack([o.scores for o in shapes], "diagonal_relaxed", order)]
        lazies += [o.fired_rows for o in shapes if o.fired_rows is not None]

        def sorted_actions(fired: list[pl.LazyFrame]) -> pl.LazyFrame:
            # always sorted: one account's actions come out in declared order, and the
            # output lists them by priority whatever else is evaluated with the account
            if in_key_order:  # one roadmap, its rows in key order: the row's number for
                # the key (keys are unique), one Int64 sort key (row, rank, order) instead
                # of three columns, one of them a string; the actions' literal columns are
                # read after the sort (RoadmapProgram.sorted_actions)
                lf = fired[0] if len(fired) == 1 else pl.concat(fired, how="vertical_relaxed")
                return self.programs[0].sorted_actions(lf, key)
            lf = stack(fired, "vertical_relaxed", [key, "__rank", "__order"], rows_sorted=True)
            return lf.drop("__rank", "__order")

        def numbered(rows: pl.DataFrame) -> pl.DataFrame:
            # the rows' numbers in key order, carried by the actions (rendered_actions)
            return rows.with_row_index(_ROW) if in_key_order else rows

        fired: list[pl.LazyFrame] = []
        if small:
            # one row (a service's account): its actions come in order, no sort to run
            one = rows == 1
            for p, frame in zip(self.programs, frames, strict=True):
                lf = p.rendered_actions(numbered(p.fired_columns(frame, key)), key,
                                        sorted_one=one, stacked_only=in_key_order)
                if lf is not None:
                    fired.append(lf)
            if fired:
                lazies.append(fired[0] if one else sorted_actions(fired))
        got = iter(collect_rows(lazies, rows))
        indicators, stages, scores = next(got), next(got), next(got)
        counts = [p.condition_counts(frame) for p, frame in zip(self.programs, frames,
                                                                strict=True)]
        for p, o in zip(self.programs, shapes, strict=True):
            fired_rows = next(got) if o.fired_rows is not None else None
            if fired_rows is not None and fired_rows.height:
                lf = p.rendered_actions(numbered(fired_rows), key,
                                        stacked_only=in_key_order)
                if lf is not None:
                    fired.append(lf)
        actions = None
        if fired:
            actions = (next(got) if small
                       else collect_rows([sorted_actions(fired)], rows)[0])
        return indicators, stages, scores, actions, counts

    # ------------------------------------------------------------------ building

    def _route_expr(self) -> pl.Expr:
        chain: Any = None
        for i, program in enumerate(self.programs):
            parsed = program.compiled.analysis.expressions.get("applies_to")
            then = pl.lit(i, pl.Int64)
            if parsed is None:  # applies to every account: no test, and no roadmap after it
                route: pl.Expr = then if chain is None else chain.otherwise(then)
                return route.alias(ROUTE)
            cond = program.expr(parsed).fill_null(False)
            chain = pl.when(cond).then(then) if chain is None else chain.when(cond).then(then)
        route = chain.otherwise(pl.lit(None, pl.Int64))
        return route.alias(ROUTE)


_ROW = "__row"
"""The number of a fired row among the rows of a roadmap frame in key order (the actions'
sort key, with their priority rank and declared order)."""

_CONDITIONS = {"roadmap": pl.String, "stage": pl.String, "action_id": pl.String,
               "considered": pl.Int64, "fired": pl.Int64, "unknown": pl.Int64}
"""The columns of ``Evaluation.conditions``."""


def _action_names(plan: Plan) -> pl.DataFrame:
    """The roadmap, stage and action id of every action of a plan (the first columns of
    ``Evaluation.conditions``), in order."""
    names = [(cr.id, st.id if st else None, action.id)
             for cr in plan.roadmaps for st, action in cr.roadmap.all_actions()]
    schema = {name: _CONDITIONS[name] for name in ("roadmap", "stage", "action_id")}
    return pl.DataFrame(names, schema=schema, orient="row")


def unrouted_stages(unrouted: pl.DataFrame, key: str) -> pl.DataFrame:
    """The stages rows of accounts no roadmap applies to (stage ``unassigned``)."""
    return unrouted.select(
        key, pl.lit(None, pl.String).alias("roadmap"),
        pl.lit(UNASSIGNED_STAGE).alias("stage"), pl.lit(None, pl.Int64).alias("stage_index"),
        pl.lit(None, pl.Boolean).alias("achieved"), pl.lit(0, pl.Int64).alias("tasks_done"),
        pl.lit(0, pl.Int64).alias("tasks_total"), pl.lit([], dtype=TASK_DTYPE).alias("tasks"))


# ---------------------------------------------------------------------- public functions


Events = FrameInput | Mapping[str, FrameInput]
"""The events of an evaluation: one input (the default source), or one input per event
source by name. Each input is a polars frame or anything
:func:`healthrules.sources.resolve` takes (a DuckDB relation, a source, Arrow)."""
PartitionColumn = str | Mapping[str, str] | None
"""A partition column of every source's events, or per source by name."""


def evaluate(
    source: Roadmap | Pack | Plan,
    events: Events,
    accounts: FrameInput,
    as_of: dt.date | dt.datetime | str,
    *,
    partition_column: PartitionColumn = None,
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
        never collected whole): the columns declared in ``data.events``. When
        ``data.events`` declares named sources, a dict of one frame per source
        (``{"usage": ..., "tickets": ...}``); a single frame is the default (first) source.
        Each source is read once, with its own read range and columns. Each frame may also
        be a DuckDB relation, a :class:`healthrules.sources.DuckDBSource` or
        :class:`~healthrules.sources.SQLSource` (the columns and the time range the roadmap
        reads from that source are written into their SQL), or an Arrow table or stream
        (``docs/sources.md``); a dict may mix them.
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
        ``docs/scale.md``. With several event sources, a name applies to every source; a
        dict gives it per source (sources it does not name are not partitioned).
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
    given = events if isinstance(events, Mapping) else {plan.default_source: events}
    rows = {name: f.height if isinstance(f, pl.DataFrame) else None
            for name, f in given.items()}
    at = accounts_at(acc_df, clock, plan.account_key)
    if plan.parent is not None and is_dated(acc_df):
        # dated accounts: the hierarchy is the parent links of the rows valid at the date
        on_day = at.frame.with_columns(pl.lit(clock.as_of, pl.Date).alias("as_of"))
        issues = hierarchy_issues(on_day, plan.account_key, plan.parent, by="as_of",
                                  plan=plan)
        if issues:
            raise InputDataError(issues)
    result = Evaluator(plan, clock.time_unit).evaluate(
        ev_lf, at.frame, clock, partition_column=partition_column, low_memory=low_memory,
        event_rows=rows)
    if is_dated(acc_df):  # dated accounts: who did not exist at the date
        result.diagnostics["accounts_not_started"] = at.not_started
        result.diagnostics["accounts_ended"] = at.ended
    return result


def events_query(
    source: Roadmap | Pack | Plan,
    events: Events,
    accounts: FrameInput,
    as_of: dt.date | dt.datetime | str,
    *,
    partition_column: PartitionColumn = None,
    low_memory: bool = False,
    event_source: str | None = None,
) -> pl.LazyFrame:
    """Return the lazy aggregation query that :func:`evaluate` runs over the events of one
    source.

    Nothing is read: call ``.explain()`` on the result to see which columns and which time
    range are pushed down to the scan. The arguments are those of :func:`evaluate`;
    ``event_source`` names the source whose query to return (default: the default source).

    Returns
    -------
    polars.LazyFrame
        One row per account key of the source's events, with the raw aggregates of the
        indicators that read it.

    Raises
    ------
    InputDataError
        If the frames do not match the data contract.
    """
    plan, clock, ev_lf, acc_df = prepare(source, events, accounts, as_of, partition_column,
                                         early=False)
    name = plan.default_source if event_source is None else event_source
    if name not in plan.sources:
        raise ValueError(f"unknown event source {name!r}; the plan reads "
                         f"{', '.join(plan.sources)}")
    acc_df = accounts_at(acc_df, clock, plan.account_key).frame
    part = (partition_column.get(name) if isinstance(partition_column, Mapping)
            else partition_column)
    return EventsPass(plan, clock, acc_df, source=name, partition_column=part,
                      low_memory=low_memory).query(ev_lf[name])


def read_range(
    source: Roadmap | Pack | Plan,
    events: Events,
    accounts: FrameInput,
    as_of: dt.date | dt.datetime | str,
    *,
    event_source: str | None = None,
) -> tuple[dt.datetime | None, dt.datetime]:
    """Return the half-open time range ``[start, end)`` of the events a plan reads from one
    source (default: the default source).

    ``start`` is the earliest window start over every aggregate indicator of the source
    (``None`` when some window reads all history); ``end`` is the evaluation instant. Both
    are in the default source's time zone (aware when the timestamps are). Anchored
    windows make ``start`` depend on the smallest anchor attribute of the accounts, and on
    nothing else of them.

    Returns
    -------
    tuple of (datetime or None, datetime)

    Raises
    ------
    InputDataError
        If the frames do not match the data contract.
    """
    plan, clock, _, acc_df = prepare(source, events, accounts, as_of, None, early=False)
    name = plan.default_source if event_source is None else event_source
    if name not in plan.sources:
        raise ValueError(f"unknown event source {name!r}; the plan reads "
                         f"{', '.join(plan.sources)}")
    acc_df = accounts_at(acc_df, clock, plan.account_key).frame
    start, end = EventsPass(plan, clock, acc_df, source=name).read_range()
    zone = ZoneInfo(clock.time_zone) if clock.time_zone else None
    if zone is not None:
        end = end.replace(tzinfo=zone)
        start = start.replace(tzinfo=zone) if start is not None else None
    return start, end


_AS_OF: Any = object()  # prepare(first=...): the events are read for as_of alone


def prepare(source: Roadmap | Pack | Plan, events: Any, accounts: Any, as_of: Any,
            partition_column: PartitionColumn = None, *, first: Any = _AS_OF,
            early: bool = True,
            ) -> tuple[Plan, Clock, dict[str, pl.LazyFrame], pl.DataFrame]:
    """Compile and check the inputs of one evaluation (every problem at once).

    Returns the plan, the clock of ``as_of``, the events (one lazy frame per source) and
    the checked accounts. The inputs become LazyFrames here, once: the events input is
    split per source (:func:`healthrules.inputs.event_inputs`), and each source is
    resolved by :func:`events_frame` (:func:`healthrules.sources.resolve`) with its own
    columns, timestamp, time zone and read range: a source outside polars (DuckDB, a
    database by URI) reads only the columns the plan declares for it and only the events
    of the time range its indicators need, both in its SQL. The checked accounts
    are every dated row when the accounts are dated (pick a date's rows with
    :func:`healthrules.inputs.accounts_at`).

    ``first`` is the earliest date the events are evaluated at (history: the first date
    of the grid, lags included); by default ``as_of`` alone; None reads every event
    before ``as_of``'s end. ``early``: refuse the events read before the zone's rules agree
    (:func:`early_events_issue`; False for the callers that read no events).

    Raises
    ------
    RoadmapError
        If the roadmap does not compile.
    InputDataError
        If the frames do not match the data contract.
    """
    plan = compile(source)
    inputs = event_inputs(plan, events)
    acc_src = source_of(accounts, "accounts")
    schemas: dict[str, pl.Schema] = {}
    issues: list[Issue] = []
    for name, src in inputs.items():
        try:
            schemas[name] = schema_of(src, plan.sources[name].timezone)
        except pl.exceptions.PolarsError as exc:
            what = f"the events frame of source {name!r}" if plan.named_sources else (
                "the events frame")
            issues.append(Issue(code=Code.EVALUATION_FAILED.value,
                                location=Location(file=source_label(plan, name)),
                                message=f"cannot read {what}: {exc}"))
    if issues:
        raise InputDataError(issues)
    zone = plan.events.timezone  # a database's zoned timestamps, shown in the roadmap's zone
    try:
        acc_schema = schema_of(acc_src, zone)
    except pl.exceptions.PolarsError as exc:
        raise InputDataError(f"cannot read the accounts frame: {exc}") from exc
    for name, schema in schemas.items():
        issues += check_events_schema(plan, schema, name)
        part = (partition_column.get(name) if isinstance(partition_column, Mapping)
                else partition_column)
        if part is not None:
            issues += _check_partition_column(schema, part, source_label(plan, name))
    if isinstance(partition_column, Mapping):
        for name in partition_column:
            if name not in plan.sources:
                issues.append(Issue(
                    code=Code.UNKNOWN_SOURCE.value, location=Location(file="<events>",
                                                                      path=str(name)),
                    message=f"partition_column names unknown event source {name!r}",
                    hint=did_you_mean(str(name), list(plan.sources))))
    ev_schema = schemas[plan.default_source]
    clock = clock_for(plan, ev_schema, as_of)
    wanted = [plan.account_key, *plan.attributes, *plan.parent_columns, *account_validity(plan)]
    acc_in: pl.LazyFrame | pl.DataFrame
    if isinstance(accounts, pl.DataFrame) and all(c in acc_schema for c in wanted):
        # by name: no query (``frame[:, names]``: see engine.frames.narrow)
        acc_in = accounts[:, list(dict.fromkeys(wanted))]
    else:
        acc_in = resolve(acc_src, wanted if all(c in acc_schema for c in wanted) else None,
                         time_zone=zone)
    acc_df, acc_issues = check_accounts(plan, acc_in, ev_schema, clock)
    issues += acc_issues
    if not acc_issues and len(schemas) > 1:  # (the key's dtype: another source's to match)
        key_dtype = acc_df.schema.get(plan.account_key)
        for name, schema in schemas.items():
            if name != plan.default_source:
                issues += check_source_key(plan, name, schema, key_dtype)
    if issues:
        raise InputDataError(issues)
    try:  # the widest window must stay within the dates Python and polars can hold
        ranges: dict[str, tuple[dt.datetime | None, dt.datetime]] = {}
        first_clock = (clock_for(plan, ev_schema, first)
                       if first is not None and first is not _AS_OF else None)
        for name in plan.sources:
            start, end = EventsPass(plan, clock, acc_df, source=name).read_range()
            if first is None:
                start = None
            elif first_clock is not None:
                start, _ = EventsPass(plan, first_clock, acc_df, source=name).read_range()
            ranges[name] = (start, end)
    except OverflowError:
        raise InputDataError([Issue(
            code=Code.BAD_AS_OF.value, location=Location(file="<as_of>"),
            message=f"as_of {clock.as_of.isoformat()} is too close to the first or last "
            "representable date: the roadmap's windows reach before 0001-01-01 or after "
            "9999-12-31", hint="pass a real evaluation date")]) from None
    frames: dict[str, pl.LazyFrame] = {}
    for name, src in inputs.items():
        part = (partition_column.get(name) if isinstance(partition_column, Mapping)
                else partition_column)
        frames[name] = events_frame(plan, src, clock, ranges[name], part, source=name,
                                    schema=schemas[name])
        issues += int_range_issues(plan, frames[name], schemas[name], name)
        for check in ((early_events_issue, foreign_dates_issue) if early else ()):
            refused = check(plan, clock, frames[name], schemas[name], name, ranges[name])
            if refused is not None:
                issues.append(refused)
    if issues:
        raise InputDataError(issues)
    return plan, clock, frames, acc_df


def early_events_issue(plan: Plan, clock: Clock, events: pl.LazyFrame, schema: pl.Schema,
                       source: str, read_range: tuple[dt.datetime | None, dt.datetime],
                       ) -> Issue | None:
    """The issue of an event the evaluation reads (within ``read_range``, wall times of the
    evaluation clock) at an instant before which the engine's rules of the clock's zone and
    zoneinfo's may differ (:func:`healthrules.inputs.zone_agrees_from`: 1900-01-01 00:00
    UTC, or later for a zone whose older history the two place differently; at least two
    days before the zone's first date, :func:`healthrules.inputs.zone_rules_from`). Before
    it, the two rules may put the event on other local days (docs/semantics.md, "Time").

    Nothing is read when the range starts on or after the day after the first date (any
    wall time from then on is an instant after that bound; the common case), or in a naive,
    UTC or fixed-offset zone; else one min over the source's timestamps read before that
    day, read as the events pass reads them (:func:`read_source`)."""
    zone = clock.time_zone
    bounds = early_events_bounds(zone)
    if zone is None or bounds is None:
        return None
    first, bound = bounds
    start, end = read_range
    after = dt.datetime.combine(first + dt.timedelta(days=1), dt.time())
    if start is not None and start >= after:
        return None
    ts = plan.sources[source].timestamp
    read = read_source(events, plan, source, clock, schema, (ts,), start, min(after, end))
    col = pl.col(ts)
    got = read.select(col.filter(col < instant_lit(bound, clock.time_unit, zone)).min()
                      .dt.convert_time_zone("UTC").dt.replace_time_zone(None)).collect(
                          optimizations=OPTIMISED).item()
    if got is None:
        return None
    frame = (f"events frame {source!r}" if plan.named_sources else "events frame")
    return Issue(
        code=Code.VALUES_OUT_OF_RANGE.value,
        location=Location(file=source_label(plan, source), path=ts),
        message=f"{frame}: timestamp column {ts!r} holds an event at "
        f"{got:%Y-%m-%d %H:%M:%S} UTC that the roadmap's windows read, before "
        f"{bound:%Y-%m-%d %H:%M} UTC: before then the engine's time-zone rules (polars') "
        f"for {zone} and this machine's time-zone database (zoneinfo, which explain and "
        "the scalar evaluator read) may give other offsets, and so place it on other local "
        f"days (day counts and window edges would differ). {zone} is exact from "
        f"{first.isoformat()} to {ZONE_DATES[1].isoformat()}",
        hint=f"drop the events before {first.isoformat()}, use windows that start after "
        "it, or use UTC or a fixed-offset zone")


def foreign_dates_issue(plan: Plan, clock: Clock, events: pl.LazyFrame, schema: pl.Schema,
                        source: str, read_range: tuple[dt.datetime | None, dt.datetime],
                        ) -> Issue | None:
    """The issue of a date the evaluation reads from a ``Date`` timestamp of a source in
    another zone than the clock's, outside the dates where the engine's rules of that zone
    and zoneinfo's agree (:func:`healthrules.inputs.zone_dates_issue`: before the zone's
    first date, after 2099). A date is the midnight starting it in its source's zone, placed
    by that zone's rules: outside those dates the engine (polars' rules) and the scalar paths
    (zoneinfo's) place it at other instants, on other days of the clock, and neither the
    ``as_of`` check nor :func:`early_events_issue` (the clock zone's rules) sees it
    (docs/semantics.md, "Time").

    Nothing is read when the read range (wall times of the clock, which is within 26 hours
    of any zone) holds no such date (the common case), for a source in the clock's zone
    (the clock's checks hold) or in a fixed-offset zone; else one min and max over the
    dates in the read range widened by two days, and only when one of them is outside the
    zone's dates, one over the dates the events pass reads (:func:`read_source`): for 1M
    dates over all history, about 1 ms, and 290 ms for that second read
    (docs/performance.md, "Date sources in another zone")."""
    cols = plan.sources[source]
    zone, ts = cols.timezone, cols.timestamp
    if (zone is None or zone == clock.time_zone or schema.get(ts) != pl.Date
            or fixed_offset(zone)):
        return None
    start, end = read_range
    frame = source_label(plan, source)[1:-1]

    def what(which: str) -> str:
        return (f"the {which} date read of the events' timestamp column {ts!r} (a Date, the "
                f"midnight starting it in the source's zone, {zone}, read on the clock of "
                f"{clock.time_zone})")

    bounds = early_events_bounds(zone)  # (the zone's first date, ...)
    if bounds is None:  # a zone polars cannot read: refused as such (unknown_timezone)
        return zone_dates_issue(zone, end.date(), what("last"), frame, ts)
    margin = dt.timedelta(days=2)
    if start is not None and start.date() - margin >= bounds[0] and (
            end.date() + margin <= ZONE_DATES[1]):
        return None
    # the dates themselves first, in the range widened by two days (one min and max of the
    # column); only when one is outside the zone's dates, the dates the pass reads exactly
    col = pl.col(ts)
    near = col <= pl.lit(end.date() + margin, pl.Date)
    if start is not None:
        near = near & (col >= pl.lit(start.date() - margin, pl.Date))
    lo, hi = events.select(col.filter(near).min(), col.filter(near).max().alias("__hi")
                           ).collect(optimizations=OPTIMISED).row(0)
    if lo is None or (lo >= bounds[0] and hi <= ZONE_DATES[1]):
        return None
    read = read_source(events, plan, source, clock, schema, (ts,), start, end)
    day = col.dt.convert_time_zone(zone).dt.date()  # polars gives each date back
    lo, hi = read.select(day.min(), day.max().alias("__hi")).collect(
        optimizations=OPTIMISED).row(0)
    for which, got in (("earliest", lo), ("latest", hi)):
        issue = None if got is None else zone_dates_issue(zone, got, what(which), frame, ts)
        if issue is not None:
            return issue
    return None


def events_frame(plan: Plan, events: Any, clock: Clock,
                 read_range: tuple[dt.datetime | None, dt.datetime],
                 partition_column: str | None = None, *, source: str | None = None,
                 schema: pl.Schema | None = None) -> pl.LazyFrame:
    """The events of one source as the engine reads them: only the columns the plan reads
    from that source, and, for a source outside polars, only the rows of ``read_range``
    (naive wall times on the evaluation clock), both in its SQL
    (:func:`healthrules.sources.resolve`).

    This is the one place an events input of a source is resolved: it is called once per
    source (``source``, default: the default source), with that source's own columns,
    timestamp column, time zone and read range. ``schema`` (the source's, as
    :func:`healthrules.sources.schema_of` shows it) gives the zone of its timestamps, to
    whose wall clock the range is converted (as the engine's own filter is; a ``Date``
    timestamp compares on its source's declared zone, where its midnight is).
    """
    name = plan.default_source if source is None else source
    cols = plan.sources[name]
    start, end = read_range
    zone = clock.time_zone
    if schema is not None:
        if isinstance(schema.get(cols.timestamp), pl.Datetime):
            zone = source_clock(clock, plan, name, schema).time_zone
        else:  # a date is the midnight starting it on its own source's wall clock
            zone = cols.timezone
        start = clock.wall_time(start, zone) if start is not None else None
        end = clock.wall_time(end, zone)
    if zone is not None:
        info = ZoneInfo(zone)
        end = end.replace(tzinfo=info)
        start = start.replace(tzinfo=info) if start is not None else None
    columns = sorted(event_columns(plan, name)
                     | ({partition_column} if partition_column else set()))
    return resolve(events, columns, cols.timestamp, (start, end), time_zone=cols.timezone,
                   what=f"the events of source {name!r}" if plan.named_sources else "events")


def event_columns(plan: Plan, source: str | None = None) -> set[str]:
    """The event columns a plan reads from one source (default: the default source): its
    account and timestamp, and every column of its ``data.events`` declaration (event,
    user, values) in every roadmap."""
    name = plan.default_source if source is None else source
    ev = plan.sources[name]
    cols = {ev.account, ev.timestamp}
    for cr in plan.roadmaps:
        cols |= set(cr.analysis.source_types.get(name, {}))
        own = cr.roadmap.data.sources.get(name)
        if own is not None:
            cols |= {own.account, own.timestamp}
    return cols


def _check_partition_column(schema: pl.Schema, name: str, label: str = "<events>",
                            ) -> list[Issue]:
    where = Location(file=label, path=name)
    if name not in schema:
        return [Issue(code=Code.MISSING_COLUMN.value, location=where,
                      message=f"events frame has no partition column {name!r}",
                      hint="scan the dataset with pl.scan_parquet(..., hive_partitioning=True)")]
    if schema[name] not in (pl.Date, pl.String):
        return [Issue(code=Code.WRONG_DTYPE.value, location=where,
                      message=f"events partition column {name!r} is {schema[name]}, "
                      "expected Date or an ISO date String")]
    return []
