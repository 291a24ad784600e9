"""Raw aggregates -> the per-account frame of one roadmap, and its output frames.

A :class:`RoadmapProgram` holds every polars expression of one roadmap that comes after the
events pass: finishing the aggregates (empty windows, days-since, ``compare``), derived
indicators in dependency order, bands, the stage and its achievement and tasks, the score in
steps, action conditions, texts and evidence. It is built once per plan and timestamp dtype
(``as_of`` and the evaluation instant are read from columns, see
:mod:`healthrules.engine.binding`), so evaluating again builds nothing.

A roadmap frame has one row per evaluated row (an account, or an (account, date) pair in
history) and these engine columns: ``__stage``, ``__stage_index``, ``__achieved``,
``__tasks_done``, ``__tasks_total``, ``__goal_reached``, ``__score``, ``__score_<family>``,
``__scored``, ``__missing``, ``__score_band``, with score segments ``__segment`` (and its
copy ``segment``, which actions read), and per action ``k`` (in ``all_actions()``
order) ``__fired_k``, ``__unknown_k`` and ``__scope_k``; plus a column per indicator and
``<id>__band`` per banded indicator.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from healthrules.aggregates import AGGREGATE_KINDS
from healthrules.analysis import Analysis
from healthrules.compiler import Plan
from healthrules.engine.aggregate import raw_column
from healthrules.engine.binding import ColumnTime, last_day, translate
from healthrules.engine.frames import (
    AS_OF,
    FAMILIES,
    PRIORITY_RANK,
    SMALL_ROWS,
    TASK_DTYPE,
    ColumnTake,
    cast_to,
    column_take,
    filter_reading,
    lazy_reading,
    narrow,
    read_names,
    row_positions,
    take_columns,
    typed_lit,
)
from healthrules.engine.render import Renderer
from healthrules.engine.rollup import RollupProgram
from healthrules.expressions import Parsed, infer, lag_column, time_references
from healthrules.functions import checked_int
from healthrules.inputs import zoned_wall_time
from healthrules.polars_expr import (
    computed_nan_to_null,
    exact_division,
    float_difference,
    to_polars,
)
from healthrules.roadmap import (
    UNASSIGNED_STAGE,
    Action,
    AggregateIndicator,
    Bands,
    DerivedIndicator,
    Owner,
    Roadmap,
    RollupIndicator,
    Weights,
)

__all__ = ["ORDER_STEP", "RoadmapOutputs", "RoadmapProgram", "action_path",
           "roadmap_time_needs"]

EVIDENCE_MANY_ROWS = 16
"""From this many rows an action's evidence with ``or`` branches drops the branches that
did not hold with the form for many rows (see :meth:`Renderer.evidence`): about 3.6 us less
per row, about 40 us more per query."""

MANY_ROWS = 256
"""From this many rows a roadmap frame takes the forms that cost less per row and more to
plan (:meth:`RoadmapProgram.frame`): when/then chains instead of arrays indexed per row."""

ORDER_STEP = 10_000
"""The ``__order`` of action ``k`` of roadmap ``i`` (actions frames) is ``i * ORDER_STEP + k``."""

TASK_COMBINATION_ROWS = SMALL_ROWS
"""Above this many rows, a frame's task lists are built once per combination of stage and
task flags and joined to the rows (:meth:`RoadmapProgram.tasks`)."""

_NO_TASKS = typed_lit([], TASK_DTYPE)
"""The task list of a stage without tasks (one expression, kept: see
:meth:`RoadmapProgram._literal_row`)."""


def action_path(r: Roadmap, stage_id: str | None, action_id: str) -> str:
    """The YAML path of an action (``stages[i].actions[k]`` or ``actions[k]``)."""
    if stage_id is None:
        k = next(j for j, x in enumerate(r.actions) if x.id == action_id)
        return f"actions[{k}]"
    si = next(j for j, x in enumerate(r.stages) if x.id == stage_id)
    k = next(j for j, x in enumerate(r.stages[si].actions) if x.id == action_id)
    return f"stages[{si}].actions[{k}]"


@dataclass(frozen=True)
class RoadmapOutputs:
    """The output frames of one roadmap, lazy, ready for one ``collect_all``.

    ``fired_rows`` holds the rows where some action fired, with the values their texts and
    evidence show rendered (see :meth:`RoadmapProgram.actions`); ``counts`` has per action
    ``k`` the sums ``scope_k``, ``fired_k``, ``unknown_k`` (grouped by ``by`` when given).
    """

    indicators: pl.LazyFrame
    stages: pl.LazyFrame
    scores: pl.LazyFrame
    fired_rows: pl.LazyFrame | None
    counts: pl.LazyFrame | None


class RoadmapProgram:
    """Every expression of one roadmap after the events pass, built once.

    Parameters
    ----------
    plan
        The plan the roadmap belongs to.
    index
        The roadmap's position in the plan (its raw aggregates are ``__{index}__<id>``).
    time_unit
        The events' time unit (the unit of ``__end`` and of timestamp aggregates).
    """

    def __init__(self, plan: Plan, index: int, time_unit: str) -> None:
        cr = plan.roadmaps[index]
        self.plan = plan
        self.index = index
        self.compiled = cr
        self.time = ColumnTime(time_unit, plan.events.timezone)
        r, a = cr.roadmap, cr.analysis
        self.aggregate_ids = [i.id for i in r.indicators if isinstance(i, AggregateIndicator)]
        # the raw aggregates' columns in the events pass and their names here
        self._raw_names = [
            (raw_column(index, ind.id, prev), ind.id + ("__prev" if prev else ""))
            for ind in r.indicators if isinstance(ind, AggregateIndicator)
            for prev in ((False, True) if ind.id in a.previous_windows else (False,))
        ]
        self._raw = [pl.col(source).alias(name) for source, name in self._raw_names]
        # raw previous-window columns: dropped once the values are finished
        self._raw_prev = [f"{ind.id}__prev" for ind in r.indicators
                          if isinstance(ind, AggregateIndicator) and ind.id in a.previous_windows]
        self._prev: list[str] = []  # previous values of derived trends, dropped after them
        # by anchor level: a window that starts at an indicator reads its finished value
        levels: dict[int, list[pl.Expr]] = {}
        for ind in r.indicators:
            if isinstance(ind, AggregateIndicator):
                levels.setdefault(a.anchor_levels.get(ind.id, 0), []).append(
                    self._post(ind).alias(ind.id))
        self._posts = [levels[k] for k in sorted(levels)]
        # the previous window's values that derived trends read (__prev<N>__<id>)
        read = [ind for ind in r.indicators if isinstance(ind, AggregateIndicator)
                and ind.id in a.trend_reads and ind.window.days is not None]
        if read:
            self._posts.append([self._previous_value(ind) for ind in read])
        self._prev += [f"__prev{ind.window.days}__{ind.id}" for ind in read]
        self._aggregate_bands = [
            _band_expr(pl.col(ind.id), ind.bands).alias(f"{ind.id}__band")
            for ind in r.indicators if ind.bands is not None and isinstance(ind, AggregateIndicator)
        ]
        # the frame's form of those bands (frame, not head): each band's position a column
        # (__bpos__<id>, the levels' count for no band) in one step, the band name and the
        # band score (_build_score_base) both read from it, so that the position is found
        # once per banded indicator, not twice; a band of a when/then chain stays as it is
        self._positioned: set[str] = set()
        positions: list[pl.Expr] = []
        names: list[pl.Expr] = []
        for ind in r.indicators:
            if ind.bands is None or not isinstance(ind, AggregateIndicator):
                continue
            position = _band_position(pl.col(ind.id), ind.bands,
                                      missing=len(ind.bands.levels))
            if position is None:
                names.append(_band_expr(pl.col(ind.id), ind.bands).alias(f"{ind.id}__band"))
                continue
            self._positioned.add(ind.id)
            positions.append(position.alias(_position_column(ind.id)))
            names.append(_table([*[level.name for level in ind.bands.levels], None],
                                pl.String).gather(pl.col(_position_column(ind.id)))
                         .alias(f"{ind.id}__band"))
        self._frame_bands = [step for step in (positions, names) if step]
        self._rollups = RollupProgram(r, a, plan.account_key, self.expr)
        self._rollup_bands = {
            ind.id: _band_expr(pl.col(ind.id), ind.bands).alias(f"{ind.id}__band")
            for ind in r.indicators if ind.bands is not None and isinstance(ind, RollupIndicator)
        }
        by_id = {ind.id: (idx, ind) for idx, ind in enumerate(r.indicators)}
        self._derived: list[tuple[str, list[pl.Expr], pl.Expr, pl.Expr | None]] = []
        for ident in a.derived_order:
            idx, dind = by_id[ident]
            assert isinstance(dind, DerivedIndicator)
            parsed = a.expressions[f"indicators[{idx}].expr"]
            value = cast_to(self.expr(parsed), a.indicator_types[ident])
            previous = [self._previous_derived(ident, parsed, n).alias(f"__prev{n}__{ident}")
                        for d, n in sorted(a.previous_derived) if d == ident]
            self._prev += [e.meta.output_name() for e in previous]
            n_trend = a.derived_trends.get(ident)
            if n_trend is not None:
                value = _trend(dind.compare, value, pl.col(f"__prev{n_trend}__{ident}"),
                               integer=a.indicator_types[ident] == "int")
                if dind.compare != "previous" and a.indicator_types[ident] == "float":
                    value = computed_nan_to_null(value)  # inf - inf: a NaN is null
            band = (None if dind.bands is None
                    else _band_expr(pl.col(ident), dind.bands).alias(f"{ident}__band"))
            self._derived.append((ident, previous, value.alias(ident), band))
        # derived indicators that read no roll-up come before the roll-ups (which read them);
        # those that read roll-ups come after their level's roll-ups (and before the next)
        self._derived_after = {
            level: [d for d in self._derived if a.rollup_levels.get(d[0], 0) == level]
            for level in self._rollups.levels}
        self._derived = [d for d in self._derived if d[0] not in a.after_rollups]
        self._segment = _segment_expr(r, self.expr, a)
        self._task_columns: list[pl.Expr] = []
        self._task_flags = [self._flags(si) for si in range(len(r.stages))]
        self._entries: tuple[list[pl.Expr], int | None] | None = None
        self._stage_values: tuple[list[pl.Expr | None], list[pl.Expr | None],
                                  dict[str, int]] | None = None
        self._stage = self._stage_exprs()
        self._achievement = self._achievement_exprs()
        target = a.expressions.get("goal.target")
        self._goal = (typed_lit(None, pl.Boolean) if target is None
                      else self._boolean(target)).alias("__goal_reached")
        self._score_parts_built: tuple[list[pl.Expr], list[pl.Expr], list[pl.Expr],
                                       int] | None = None
        self._score_steps = self._score_exprs()  # (head then tail: bands from the values)
        self._score_steps_at = self._score_exprs(at=True)  # (frame: from __bpos__)
        self._score_band = _score_band_expr(r)
        lags, self._age = roadmap_time_needs(a)
        self._lags = sorted(lags)
        self._lag_nulls = {
            lag_column(name, days): cast_to(
                pl.lit(None), "float" if name == "score" else a.indicator_types[name]
            ).alias(lag_column(name, days))
            for name, days in self._lags
        }
        same = (pl.col("__stage") == pl.col("__stage_before")) & (
            pl.col("__roadmap_before") == cr.id)
        since = (self.time.as_of() - pl.col("__stage_since")).dt.total_days()
        self._age_expr = pl.when(same).then(since).otherwise(typed_lit(0, pl.Int64)).cast(
            pl.Int64).alias("days_in_stage")
        # each condition is computed once (a column), then read by fired / unknown
        # (with its scope: the stage test, also a column, read by fired and unknown; an
        # action of every stage has no test to read)
        self._whens: list[pl.Expr] = []
        self._conds: list[pl.Expr] = []
        for k, (st, action) in enumerate(r.all_actions()):
            path = action_path(r, st.id if st else None, action.id)
            self._whens.append(
                self._boolean(a.expressions[f"{path}.when"]).alias(f"__when_{k}"))
            when = pl.col(f"__when_{k}")
            fired, unknown = when.fill_null(False), when.is_null()
            if st is None:
                self._whens.append(pl.lit(True).alias(f"__scope_{k}"))
            else:
                self._whens.append(_on_stage(r, st.id).alias(f"__scope_{k}"))
                scope = pl.col(f"__scope_{k}")
                fired, unknown = scope & fired, scope & unknown
            self._conds += [fired.alias(f"__fired_{k}"), unknown.alias(f"__unknown_{k}")]
        self._roadmap_id = typed_lit(r.id, pl.String).alias("roadmap")
        self._tasks = self._task_lists()
        # per action with `or` branches: its evidence in the form for many rows
        # (Renderer.evidence), which rendered_actions takes from EVIDENCE_MANY_ROWS rows on
        self._evidence_many: dict[int, pl.Expr] = {}
        actions_env = a.env("actions")
        self._renderer = Renderer(
            translate=lambda node: translate(node, a, self.time),
            infer=lambda node: infer(node, actions_env, banded=a.banded))
        self._outputs = self._output_exprs()
        self._indicator_cols = [pl.col(name) for name in self._outputs[0]]
        self._stage_sizes: list[int] = []  # (the stage's steps' sizes: _fused_steps)
        self._fused = self._fused_steps()
        self._fused_many: tuple[list[list[pl.Expr]], list[list[pl.Expr]],
                                list[list[pl.Expr]]] | None = None  # built on first use
        self._one_row: dict[tuple[int | None, str | None],
                            tuple[list[list[pl.Expr]], list[list[pl.Expr]]]] = {}
        self._fired_reads: list[str] | None = None
        # the output selects that only take columns (by output and row key), read once
        self._takes: dict[tuple[str, str], ColumnTake | None] = {}
        # one row's literal task lists as columns, by the identity of their expression
        self._task_rows: dict[int, tuple[pl.Expr, pl.Series | None]] = {}
        self._head_steps: list[list[pl.Expr]] | None = None
        self._no_age = typed_lit(None, pl.Int64).alias("days_in_stage")
        self._one_row_levels: dict[tuple[Any, ...], list[list[pl.Expr]]] = {}
        self._one_row_split: dict[tuple[int | None, str | None], tuple[
            list[list[pl.Expr]], list[list[pl.Expr]], list[str], list[pl.Series]]] = {}
        self._cells: dict[str, dict[str | None, tuple[pl.Series, pl.Series]]] | None = None
        dropped = [*self._raw_prev, *self._prev]
        self._dropped = dropped
        self._without_prev = pl.all().exclude(*dropped) if dropped else pl.all()
        self._join_exprs: dict[str, tuple[pl.Expr, pl.Expr, list[pl.Expr]]] = {}
        # the conditions' Boolean columns, in the order of the counts (condition_counts)
        self._count_names = [f"__{w}_{k}" for k in range(len(self._outputs[3]))
                             for w in ("scope", "fired", "unknown")]
        # one row's fired actions: the actions in the output's order (priority rank, then
        # declared order) and their output columns without the sort helpers
        self._one_row_order: list[int] | None = None
        self._one_row_exprs: dict[int, list[pl.Expr]] = {}
        # per action, key and carried row number: the columns its rendering branch reads
        self._branch_reads: dict[tuple[int, str, bool], list[str] | None] = {}
        self._branch_cols: dict[tuple[int, str, bool, tuple[str, ...]],
                                list[str] | None] = {}
        # per action: the rendering step its text and evidence read (the exact decimal
        # forms of the numbers shown), then the values
        self._action_renders = [self._render_steps(exprs) for _, exprs in self._outputs[3]]
        # the actions' literal columns (id, kind, title, role, channel, priority, sort
        # helpers) as tables read by the action's number after the branches are stacked
        # (rendered_actions): one literal per branch instead of eight
        self._literal_tables = _literal_tables(r, index)
        self._stacked_exprs: dict[tuple[str, bool, bool], list[pl.Expr]] = {}
        self._action_sort_key: pl.Expr | None = None

    # ------------------------------------------------------------------ public hooks

    @property
    def has_rollups(self) -> bool:
        """Whether the roadmap has roll-ups (its frame groups rows by their parent)."""
        return bool(self._rollups.levels)

    def expr(self, parsed: Parsed) -> pl.Expr:
        """The polars expression of a parsed expression of this roadmap (actions scope)."""
        return translate(parsed, self.compiled.analysis, self.time)

    def _boolean(self, parsed: Parsed) -> pl.Expr:
        """A condition as a Boolean column: a comparison, ``and``/``or`` or ``not`` already
        is one (a cast that changes nothing is one more node to plan and run per call)."""
        tree = parsed.tree
        expr = self.expr(parsed)
        if isinstance(tree, (ast.Compare, ast.BoolOp)) or (
                isinstance(tree, ast.UnaryOp) and isinstance(tree.op, ast.Not)):
            return expr
        return expr.cast(pl.Boolean)

    def _fused_steps(self, many: bool = False, *, head: bool = False) -> tuple[
            list[list[pl.Expr]], list[list[pl.Expr]], list[list[pl.Expr]]]:
        """The ``with_columns`` steps of :meth:`frame` for rows without pins and a roadmap
        without roll-ups, fused (:func:`_fuse`): the indicators (finished aggregates, bands,
        derived indicators), the stage and the score, then the action conditions (after
        the time columns, which depend on the rows).

        ``many``: the forms for many rows (``MANY_ROWS``) of the stage index, the
        achievement columns and the weight set's picks (when/then chains, not arrays).

        ``head``: the indicators' steps of :meth:`head` in the first of the three (the
        bands found by their own positions, no position columns: one account's tail reads
        no band score from them)."""
        stage_index, stage_name = self._stage_exprs(many) if many else self._stage
        achievement = self._achievement_exprs(many) if many else self._achievement
        score_steps = self._score_exprs(many, at=True) if many else self._score_steps_at
        indicators: list[list[pl.Expr]] = [*self._posts]
        if head:
            if self._aggregate_bands:
                indicators.append(self._aggregate_bands)
        else:
            indicators += self._frame_bands
        for _, previous, value, band in self._derived:
            if previous:
                indicators.append(previous)
            indicators.append([value])
            if band is not None:
                indicators.append([band])
        stage: list[list[pl.Expr]] = [[stage_index], [stage_name]]
        if self._task_columns:
            stage.append(self._task_columns)
        stage.append([*achievement, self._goal])
        if self._segment is not None:
            stage += [[self._segment], [pl.col("__segment").alias("segment")]]
        stage += score_steps
        stage.append([self._score_band])
        conditions: list[list[pl.Expr]] = []
        if self._conds:
            conditions += [self._whens, self._conds]
        conditions.append([self._roadmap_id])
        # the indicators' steps and the conditions' are the same in both forms: fused once;
        # the stage's steps of both forms read and write the same columns, step by step
        # (the same tests, values and picks, in chains or arrays): fused as the first was
        if many:
            return self._fused[0], _fused_as(stage, self._stage_sizes, self._fused[1]), \
                self._fused[2]
        self._stage_sizes = [len(step) for step in stage]
        return _fuse(indicators), _fuse(stage), _fuse(conditions)

    def frame(self, routed: pl.LazyFrame, agg: pl.LazyFrame | pl.DataFrame, key: str,
              columns: set[str], rows: int | None = None, *,
              every: bool = False) -> pl.LazyFrame:
        """The lazy roadmap frame of the rows routed to this roadmap.

        Parameters
        ----------
        routed
            The rows (accounts, or (account, date) pairs) with ``__route``, the time columns
            ``__as_of``, ``__end``, ``__end_naive``, the attributes, and optional overlay
            columns: lags (``lag_column(x, N)``), stage history (``__roadmap_before``,
            ``__stage_before``, ``__stage_since``) and pins (``__pin__<name>``).
        agg
            The raw aggregates keyed by ``key`` (lazy, or collected: then the columns
            this roadmap reads are taken by name, no select to plan).
        key
            The row key shared by ``routed`` and ``agg``.
        columns
            The column names of ``routed`` (decides which overlays are present).
        rows
            The number of rows when known: from ``MANY_ROWS`` on, the forms that cost
            less per row and more to plan (see :meth:`_fused_steps`).
        every
            ``routed`` are the rows without ``__route``, every one of them routed to this
            roadmap (no filter by the route to plan and run: see :meth:`head`).
        """
        pins = {c[len("__pin__"):] for c in columns if c.startswith("__pin__")}
        lf = self._joined(routed, agg, key, every=every)
        if not pins and not self._rollups.levels:
            # the same steps, fused: fewer steps over a wide frame (each costs per call)
            if rows is not None and rows >= MANY_ROWS:
                if self._fused_many is None:
                    self._fused_many = self._fused_steps(many=True)
                indicators, stage, conditions = self._fused_many
            else:
                indicators, stage, conditions = self._fused
            return self._finish(self._indicators(lf, indicators), stage, conditions, columns)
        for posts in self._posts:
            lf = lf.with_columns(posts)
        if self._raw_prev:
            lf = lf.drop(self._raw_prev)
        lf = _pinned(lf, self.aggregate_ids, pins)
        for bands in self._frame_bands:
            lf = lf.with_columns(bands)
        lf = self._derive(lf, self._derived, pins)
        for level in self._rollups.levels:  # roll-ups of roll-ups: one level after the other
            ids = self._rollups.level_ids(level)
            lf = _pinned(self._rollups.apply(lf, level), ids, pins)
            bands = [self._rollup_bands[i] for i in ids if i in self._rollup_bands]
            if bands:
                lf = lf.with_columns(bands)
            lf = self._derive(lf, self._derived_after[level], pins)
        if self._prev:
            lf = lf.drop(self._prev)
        lf = lf.with_columns(self._stage[0]).with_columns(self._stage[1])
        if self._task_columns:
            lf = lf.with_columns(self._task_columns)
        lf = lf.with_columns(*self._achievement, self._goal)
        if self._segment is not None:  # actions read it as `segment` (a reserved name then)
            lf = lf.with_columns(self._segment).with_columns(
                pl.col("__segment").alias("segment"))
        for step in self._score_steps_at:  # band scores, then families, then totals
            lf = lf.with_columns(step)
        lf = _pinned(lf, ["score"], pins)
        lf = lf.with_columns(self._score_band)
        time_cols = self._time_columns(columns)
        if time_cols:
            lf = lf.with_columns(time_cols)
        if self._conds:
            lf = lf.with_columns(self._whens).with_columns(self._conds)
        return lf.with_columns(self._roadmap_id)

    def splits(self, columns: set[str]) -> bool:
        """Whether evaluating one row as :meth:`head` then :meth:`tail` pays: rows without
        pins, a roadmap without roll-ups, and more than one stage or weight set (so that
        knowing the row's stage leaves expressions out: with one stage and one weight set
        the tail is the whole rest, and the extra collect would be pure cost)."""
        r = self.compiled.roadmap
        return (not self._rollups.levels
                and (len(r.stages) > 1 or len(self._weight_sets) > 1)
                and not any(c.startswith("__pin__") for c in columns))

    def head(self, routed: pl.LazyFrame, agg: pl.LazyFrame | pl.DataFrame, key: str, *,
             every: bool = False) -> pl.LazyFrame:
        """The first part of :meth:`frame` (rows without pins, see :meth:`splits`): the
        indicators, ``__stage_index``, ``__stage`` and the segment. Collected, it tells the
        stage and segment of each row; :meth:`tail` adds the rest.

        ``every``: ``routed`` are the rows without ``__route``, every one of them routed
        to this roadmap (no filter by the route to plan and run)."""
        lf = self._joined(routed, agg, key, every=every)
        steps = self._head_steps
        if steps is None:  # built once
            indicators, _, _ = self._fused_steps(head=True)
            head: list[list[pl.Expr]] = [*indicators, [self._stage[0]], [self._stage[1]]]
            if self._segment is not None:
                head += [[self._segment], [pl.col("__segment").alias("segment")]]
            steps = self._head_steps = _levelled(head)
        # (the previous windows' columns: dropped by tail, by name)
        for step in steps:
            lf = lf.with_columns(step)
        return lf

    def tail(self, head: pl.DataFrame, columns: set[str]) -> pl.LazyFrame:
        """The rest of :meth:`frame` from a collected :meth:`head` (its frame: the
        previous windows' columns are dropped from it in place): the same columns with
        the same values (in another order). A single row's stage and segment are known, so
        only what they need is computed (:meth:`one_row_steps`), its band scores are
        columns made once per band (read by the band the head computed), the literal
        columns are made once per stage and segment, and the steps are levelled; other
        rows get every stage's parts."""
        head = self._without_previous(head)
        if head.height == 1:
            index = head.get_column("__stage_index")[0]
            segment = (head.get_column("__segment")[0] if self._segment is not None
                       else None)
            rest, conditions, bands, literals = self._one_row_parts(index, segment)
            # the band scores of the row's bands and the literals: columns made once
            cells = self._band_cells(head, bands) if bands else []
            if cells or literals:
                head = head.hstack([*cells, *literals])
            # the steps levelled (built once per stage, segment and time columns)
            time_cols = self._time_columns(columns)
            got = self._one_row_levels.get((index, segment, *map(id, time_cols)))
            if got is None:
                if len(self._one_row_levels) >= 256:  # (a bound: keys hold ids)
                    self._one_row_levels.clear()
                got = self._one_row_levels[(index, segment, *map(id, time_cols))] = (
                    _levelled([*rest, time_cols, *conditions]))
            lf = head.lazy()
            for step in got:
                lf = lf.with_columns(step)
            return lf
        else:
            rest, conditions = self._rest_steps()
        return self._finish(head.lazy(), rest, conditions, columns)

    def _without_previous(self, head: pl.DataFrame) -> pl.DataFrame:
        """A collected :meth:`head` without the previous windows' columns, dropped in place
        (the frame is the head's own; a ``select`` of the rest in the head's query was
        one node per column to plan, taking the rest by name about 17 us)."""
        for name in self._dropped:
            head.drop_in_place(name)
        return head

    def _band_cells(self, head: pl.DataFrame, bands: list[str]) -> list[pl.Series]:
        """The ``__bv__``/``__bp__`` columns of one row's bands (``bands``: banded
        indicators), as :meth:`_build_score_base` computes them from the band's position:
        a band name is the name of one level (names are unique), so its score is that
        level's; no band (a null value) is the missing policy's. Each column is a Series
        made once per indicator and band and kept."""
        cells = self._cells
        if cells is None:
            cells = self._cells = self._build_band_cells()
        row = head.row(0)  # (the whole row: one call, cheaper than a frame of the bands)
        out: list[pl.Series] = []
        for ident in bands:
            out += cells[ident][row[head.get_column_index(f"{ident}__band")]]
        return out

    def _build_band_cells(self) -> dict[str, dict[str | None, tuple[pl.Series, pl.Series]]]:
        r = self.compiled.roadmap
        cells: dict[str, dict[str | None, tuple[pl.Series, pl.Series]]] = {}
        for ind in r.indicators:
            if ind.bands is None:
                continue
            policy = ind.missing or r.score.missing
            fill = 50.0 if policy == "neutral" else 0.0 if policy == "worst" else None
            scores = ind.bands.level_scores()

            def cell(value: float, present: float, ident: str = ind.id,
                     ) -> tuple[pl.Series, pl.Series]:
                return (pl.Series(f"__bv__{ident}", [value], dtype=pl.Float64),
                        pl.Series(f"__bp__{ident}", [present], dtype=pl.Float64))

            by_name: dict[str | None, tuple[pl.Series, pl.Series]] = {
                level.name: cell(float(scores[level.name]), 1.0)
                for level in ind.bands.levels}
            by_name[None] = cell(0.0 if fill is None else fill,
                                 0.0 if fill is None else 1.0)
            cells[ind.id] = by_name
        return cells

    def _joined(self, routed: pl.LazyFrame, agg: pl.LazyFrame | pl.DataFrame, key: str,
                *, every: bool = False) -> pl.LazyFrame:
        """The rows routed to this roadmap with their raw aggregates (``agg`` collected:
        its columns taken by name and renamed, no select to plan; ``every``: ``routed``
        has no ``__route``, every row is routed here)."""
        route, rest, raw = self._join_parts(key)
        if isinstance(agg, pl.DataFrame):
            take = self._take("raw", key, raw)
            taken = take_columns(agg, take) if take is not None else None
            right = taken.lazy() if taken is not None else agg.lazy().select(raw)
        else:
            right = agg.select(raw)
        left = routed if every else routed.filter(route).select(rest)
        return left.join(right, on=key, how="left", maintain_order="left")

    def _join_parts(self, key: str) -> tuple[pl.Expr, pl.Expr, list[pl.Expr]]:
        """The route test, the routed rows' columns and the raw aggregates' columns of
        :meth:`_joined` (the expressions built once: a call builds none and parses no
        name)."""
        return self._join_exprs.get(key) or self._join_exprs.setdefault(key, (
            pl.col("__route") == self.index, pl.all().exclude("__route"),
            [pl.col(key), *self._raw]))

    def _take(self, name: str, key: str, exprs: Sequence[pl.Expr | str]) -> ColumnTake | None:
        """The :func:`column_take` of the select ``name`` (``raw``: the aggregates of
        :meth:`_joined`; ``indicators``, ``stages``, ``scores``: the outputs of
        :meth:`outputs`) of row key ``key``, made once (:meth:`prepare_reads` makes them
        at compile)."""
        memo = (name, key)
        if memo not in self._takes:
            if name == "raw":  # known by name (some hundreds of expressions not read)
                sources = [key, *[n for n, _ in self._raw_names]]
                names = [key, *[n for _, n in self._raw_names]]
                self._takes[memo] = (ColumnTake(sources, names)
                                     if len(set(sources)) == len(sources)
                                     and len(set(names)) == len(names) else None)
            else:
                self._takes[memo] = column_take(*exprs)
        return self._takes[memo]

    def _output_reads(self, key: str) -> dict[str, list[pl.Expr | str]]:
        """The expressions of the selects of :meth:`outputs` that only take columns, by
        their name for :meth:`_take`."""
        _, stage_exprs, score_exprs, _, _ = self._outputs
        # the indicators by name: the same take, without reading some hundreds of
        # expressions (a 200-indicator roadmap's compile)
        return {"indicators": [key, "roadmap", *self._outputs[0]],
                "stages": [key, "roadmap", *stage_exprs],
                "scores": [key, "roadmap", *score_exprs]}

    def _indicators(self, lf: pl.LazyFrame, steps: list[list[pl.Expr]]) -> pl.LazyFrame:
        """The fused indicator ``steps``, then the previous windows' columns dropped."""
        for step in steps:
            lf = lf.with_columns(step)
        if self._raw_prev or self._prev:  # (one expression built once, not names parsed)
            lf = lf.select(self._without_prev)
        return lf

    def _finish(self, lf: pl.LazyFrame, steps: list[list[pl.Expr]],
                conditions: list[list[pl.Expr]], columns: set[str]) -> pl.LazyFrame:
        """``steps``, then the time columns the conditions read, then the conditions."""
        for step in steps:
            lf = lf.with_columns(step)
        time_cols = self._time_columns(columns)
        if time_cols:
            lf = lf.with_columns(time_cols)
        for step in conditions:
            lf = lf.with_columns(step)
        return lf

    def _rest_steps(self) -> tuple[list[list[pl.Expr]], list[list[pl.Expr]]]:
        """The steps of :meth:`frame` after :meth:`head` for rows of any stages."""
        rest: list[list[pl.Expr]] = []
        if self._task_columns:
            rest.append(self._task_columns)
        rest.append([*self._achievement, self._goal])
        rest += self._score_steps
        rest.append([self._score_band])
        _, _, conditions = self._fused
        return _fuse(rest), conditions

    def one_row_steps(self, index: int | None, segment: str | None,
                      ) -> tuple[list[list[pl.Expr]], list[list[pl.Expr]]]:
        """The steps after :meth:`head` for rows all in stage ``index`` (None: unassigned)
        and segment ``segment``, built once per (stage, segment) and kept: only that
        stage's task flags, achievement and done count, only the weight set that applies
        (the one the ``__ws`` chain picks) and only the conditions of the actions in
        scope (the others are not in scope: scope, fired and unknown are false, as the
        general steps make them). A service evaluating one account plans and runs these
        instead of every stage's and every weight set's expressions."""
        got = self._one_row.get((index, segment))
        if got is not None:
            return got
        pre, band_step, post, conditions = self._one_row_steps(index, segment)
        steps = self._one_row[(index, segment)] = (
            _fuse([*pre, band_step, *post]), _fuse(conditions))
        return steps

    def _one_row_parts(self, index: int | None, segment: str | None,
                       ) -> tuple[list[list[pl.Expr]], list[list[pl.Expr]], list[str],
                                  list[pl.Series]]:
        """:meth:`one_row_steps` without the band scores' step and without the columns
        that are literals (the actions out of scope, the task total, the roadmap's id...),
        the banded indicators whose band scores that step computes (:meth:`tail` puts
        them next to the row as columns made once, from the bands the head computed: no
        lookup done again), and the literals as one-row columns, computed once."""
        got = self._one_row_split.get((index, segment))
        if got is not None:
            return got
        pre, band_step, post, conditions = self._one_row_steps(index, segment)
        bands = [e.meta.output_name()[len("__bv__"):] for e in band_step
                 if e.meta.output_name().startswith("__bv__")]
        steps = [*pre, *post, *conditions]
        read = {n for step in steps for e in step for n in e.meta.root_names()}
        constant = [e for step in steps for e in step
                    if e.meta.is_literal(allow_aliasing=True)
                    and e.meta.output_name() not in read]
        done = {id(e) for e in constant}

        def computed(steps: list[list[pl.Expr]]) -> list[list[pl.Expr]]:
            return _fuse([[e for e in step if id(e) not in done] for step in steps])

        literals = pl.select(constant).get_columns() if constant else []
        parts = self._one_row_split[(index, segment)] = (
            computed([*pre, *post]), computed(conditions), bands, literals)
        return parts

    def _one_row_steps(self, index: int | None, segment: str | None,
                       ) -> tuple[list[list[pl.Expr]], list[pl.Expr], list[list[pl.Expr]],
                                  list[list[pl.Expr]]]:
        """The unfused steps of :meth:`one_row_steps`: those before the band scores, the
        band scores' step, those after it, and the conditions."""
        r = self.compiled.roadmap
        stage_id = r.stages[index].id if index is not None else UNASSIGNED_STAGE
        rest: list[list[pl.Expr]] = []
        prefix = f"__task_{index}_"
        tasks = [c for c in self._task_columns if c.meta.output_name().startswith(prefix)]
        if index is not None and tasks:
            rest.append(tasks)
        achieved = self._stage_achieved[index] if index is not None else None
        done = self._stage_done[index] if index is not None else None
        rest.append([
            (typed_lit(None, pl.Boolean) if achieved is None else achieved).alias("__achieved"),
            (typed_lit(0, pl.Int64) if done is None
             else done.fill_null(typed_lit(0, pl.Int64))).alias("__tasks_done"),
            typed_lit(self._stage_totals.get(stage_id, 0), pl.Int64).alias("__tasks_total"),
            self._goal])
        # the weight set: the first (after the default) whose segment and stage match
        pick = next((t for t, (sg, st, _) in enumerate(self._weight_sets)
                     if t and (sg is None or sg == segment) and (st is None or st == stage_id)),
                    0)
        # that set's parts under the output names (no per-set columns to pick from)
        fam, total = _score_parts(r, self._weight_sets[pick][2], "")
        families = [e.alias(n) for n, e in fam.items()]
        reads = {n for e in [*families, total] for n in e.meta.root_names()}
        band_step = [e for e in self._band_scores if e.meta.output_name() in reads]
        post = [families, [total.alias("__score")], [self._score_band]]
        whens: list[pl.Expr] = []
        conds: list[pl.Expr] = []
        no = pl.lit(False)
        for k, (st, _) in enumerate(r.all_actions()):
            if st is not None and st.id != stage_id:  # not in scope: nothing to compute
                conds += [no.alias(f"__scope_{k}"), no.alias(f"__fired_{k}"),
                          no.alias(f"__unknown_{k}")]
                continue
            when = pl.col(f"__when_{k}")
            whens += [self._whens[2 * k], pl.lit(True).alias(f"__scope_{k}")]
            conds += [when.fill_null(False).alias(f"__fired_{k}"),
                      when.is_null().alias(f"__unknown_{k}")]
        conditions = [step for step in (whens, conds) if step]
        conditions.append([self._roadmap_id])
        return rest, band_step, post, conditions

    def _time_columns(self, columns: set[str]) -> list[pl.Expr]:
        """The lags the rows do not carry (null) and ``days_in_stage``, as the actions read
        them."""
        time_cols = [e for c, e in self._lag_nulls.items() if c not in columns]
        if self._age:
            history = {"__roadmap_before", "__stage_before", "__stage_since"} <= columns
            time_cols.append(self._age_expr if history else self._no_age)
        return time_cols

    @staticmethod
    def _derive(lf: pl.LazyFrame,
                derived: list[tuple[str, list[pl.Expr], pl.Expr, pl.Expr | None]],
                pins: set[str]) -> pl.LazyFrame:
        """Derived indicators in order: (id, previous values, value, band)."""
        for ident, previous, value, band in derived:
            if previous:  # previous values of a derived trend's chain, before the value
                lf = lf.with_columns(previous)
            lf = lf.with_columns(value)
            lf = _pinned(lf, [ident], pins)
            if band is not None:
                lf = lf.with_columns(band)
        return lf

    def tasks(self, frame: pl.DataFrame) -> pl.LazyFrame | None:
        """The task list (``tasks``) of each row of a collected roadmap frame, in row order,
        lazily (None: no stage has tasks).

        Building every stage's list for every row and picking one with ``when`` costs a list
        per stage per row; filtering each stage's rows first builds one list per row.
        """
        if not self._tasks:
            return None
        # only the stages some row is in: a stage no row is in costs no query branch
        present = _stages_in(frame)
        flat = [e for stage_id, e in self._tasks if stage_id in present]
        only = [e for stage_id, e in self._tasks if {stage_id} == present]
        if only:  # every row in one stage (one account): its list, no filter nor sort
            # (with_columns: a literal list, tasks without done_when, is one per row)
            return lazy_reading(frame, "__stage", *flat).with_columns(
                only[0].alias("tasks")).select("tasks")
        if frame.height > TASK_COMBINATION_ROWS:
            shared = self._tasks_by_combination(frame)
            if shared is not None:
                return shared
        return self._tasks_by_stage(frame, present)

    def _tasks_by_stage(self, frame: pl.DataFrame, present: set[str]) -> pl.LazyFrame:
        """The task lists of the rows of ``frame`` (in the stages ``present``), the rows of
        each stage filtered and put back in row order."""
        with_tasks = [stage_id for stage_id, _ in self._tasks]
        flat = [e for stage_id, e in self._tasks if stage_id in present]
        # each stage's rows of the columns the lists read, with their positions, taken by
        # name and position (no row index, select and filter to plan per stage)
        reads = narrow(frame, "__stage", *flat)
        stage = frame.get_column("__stage")
        positions = row_positions(frame.height)
        parts: list[pl.LazyFrame] = []
        for stage_id, tasks in self._tasks:
            if stage_id not in present:
                continue
            at = positions.filter(stage == stage_id).alias("__row")
            parts.append(reads[at].hstack([at]).lazy().select(
                "__row", tasks.alias("__tasks")))
        if not parts or not present <= set(with_tasks):
            # (the columns the lists read, then the rows: a filter copies every column)
            rows = filter_reading(frame, "__stage", *flat).with_row_index("__row")
            parts.append(rows.filter(~pl.col("__stage").is_in(with_tasks)).select(
                "__row", typed_lit([], TASK_DTYPE).alias("__tasks")))
        # back in row order (sorting one column; a join would copy every column of the frame)
        return pl.concat(parts).sort("__row").select(pl.col("__tasks").alias("tasks"))

    def _tasks_by_combination(self, frame: pl.DataFrame) -> pl.LazyFrame | None:
        """The task lists of a large frame, each distinct list built once.

        A row's list depends only on its stage and its task flags (true, false or null),
        and a large frame (history's grid: accounts x dates) holds few combinations of
        them: each row gets one integer for its combination, the lists are built for the
        first row of each combination only, and a join on that integer gives every row its
        list (on 285,000 grid rows of the B2B example, 0.18 -> 0.02 CPU s; a ``gather`` of
        the lists costs more than the join in polars 2). None when the integer would not
        fit (more than 35 flags).
        """
        flags = sorted({n for _, e in self._tasks for n in e.meta.root_names()})
        if len(flags) > 35 or "__stage_index" not in frame.columns:
            return None
        # the stage is one-to-one with its index (both from the same entry tests)
        code = pl.col("__stage_index").cast(pl.Int64).fill_null(-1) + 1
        for c in flags:
            code = code * 3 + pl.col(c).cast(pl.Int64).fill_null(2)
        codes = narrow(frame, "__stage_index", *flags).select(code.alias("__code")).to_series()
        first = codes.arg_unique()
        combos = narrow(frame, "__stage", *flags)[first]
        lists = self._tasks_by_stage(combos, _stages_in(combos))
        table = pl.concat([codes.gather(first).to_frame().lazy(), lists], how="horizontal")
        return codes.to_frame().lazy().join(table, on="__code", how="left",
                                            maintain_order="left").select("tasks")

    def _literal_row(self, tasks: pl.Expr) -> pl.Series | None:
        """The one-row column ``tasks`` of a task list that is a literal (no task with
        ``done_when``: the same list for every row), computed once per list; None for a
        list that reads task flags. ``tasks`` is one of the expressions built once
        (:meth:`_one_task_list`), kept by its identity."""
        got = self._task_rows.get(id(tasks))
        if got is None:
            row = (pl.select(tasks.alias("tasks")).to_series()
                   if tasks.meta.is_literal() else None)
            got = self._task_rows[id(tasks)] = (tasks, row)
        return got[1]

    def _one_task_list(self, frame: pl.DataFrame) -> pl.Expr | None:
        """The task list of every row as one expression when one serves them all (no stage
        has tasks, or every row is in one stage: one account), to take with the other
        stage columns in one ``select``; None otherwise (:meth:`tasks`)."""
        if not self._tasks:
            return _NO_TASKS
        present = _stages_in(frame)
        if len(present) != 1:
            return None
        (stage_id,) = present
        tasks = dict(self._tasks).get(stage_id)
        if tasks is None:  # a stage without tasks (or unassigned)
            return _NO_TASKS
        return tasks

    def fired_columns(self, frame: pl.DataFrame, key: str) -> pl.DataFrame:
        """The columns of a collected roadmap frame that the fired actions read (the key,
        the roadmap, the stage, the fired flags and what texts and evidence show), taken
        by name (no query)."""
        return narrow(frame, key, *self._fired_names())

    def _fired_names(self) -> list[str]:
        """The columns :meth:`fired_columns` takes besides the key, built once (the
        renderer's reads are complete after ``__init__``; :meth:`prepare_reads` builds
        them at compile)."""
        reads = self._fired_reads
        if reads is None:
            reads = self._fired_reads = [
                "roadmap", "__stage", *[f"__fired_{k}" for k in range(len(self._outputs[3]))],
                *sorted(self._renderer.reads)]
        return reads

    def outputs(self, frame: pl.DataFrame, key: str, by: str | None = None, *,
                render: bool = True, fired: bool = True, counts: bool = True,
                ) -> RoadmapOutputs:
        """The indicators, stages and scores of a collected roadmap frame, its condition
        counts, and the rows where some action fired with every shown value rendered once
        (:meth:`actions` turns those into the actions frame).

        ``key`` is the row key (the account key, or history's grid key); ``by`` groups the
        condition counts (history counts per date). With ``render=False`` the fired rows
        hold only what rendering reads: :meth:`render` renders them later (history renders
        only the rows it shows). With ``fired=False`` there are no ``fired_rows`` (the
        caller renders from the frame itself: :meth:`rendered_actions` of
        :meth:`fired_columns`). With ``counts=False`` there are no ``counts`` (the caller
        reads :meth:`condition_counts` of the frame).
        """
        _, stage_exprs, score_exprs, actions, sums = self._outputs
        # the indicators' columns as expressions built once (a name is parsed into one at
        # every select: about 2 us each, some forty per call)
        ind_cols = self._indicator_cols

        def take(*exprs: pl.Expr | str, name: str = "",
                 then: pl.Expr | None = None) -> pl.LazyFrame:
            # columns read as they are (the indicators, the scores, one row's stage
            # columns and its literal task list ``then``): taken by name from the
            # collected frame, no query to plan (about 2 us per column less)
            plain = self._take(name, key, exprs) if name else None
            taken = take_columns(frame, plain) if plain is not None else None
            row = self._literal_row(then) if then is not None and frame.height == 1 else None
            if taken is not None and (then is None or row is not None):
                if row is not None:
                    taken.hstack([row], in_place=True)
                return taken.lazy()
            if then is not None:
                exprs = (*exprs, then.alias("tasks"))
            return lazy_reading(frame, *exprs).select(exprs)

        fired_rows: pl.LazyFrame | None = None
        if actions and fired:
            flags = [f for f, _ in actions]
            fired_rows = self.fired_columns(frame, key).lazy().filter(pl.any_horizontal(flags))
            if render:
                fired_rows = self.render(fired_rows)
        count_frame: pl.LazyFrame | None = None
        if sums and counts:
            src = lazy_reading(frame, *([by] if by else []), *sums)
            count_frame = src.group_by(by).agg(sums) if by else src.select(sums)
        one = self._one_task_list(frame)
        if one is not None:  # one list form for every row: taken with the stage columns
            stages = take(key, "roadmap", *stage_exprs, name="stages", then=one)
        else:
            tasks = self.tasks(frame)
            assert tasks is not None
            # (the stage columns taken as they are, the lists next to them)
            stages = pl.concat([take(key, "roadmap", *stage_exprs, name="stages"), tasks],
                               how="horizontal")
        return RoadmapOutputs(
            indicators=take(key, "roadmap", *ind_cols, name="indicators"),
            stages=stages,
            scores=take(key, "roadmap", *score_exprs, name="scores"),
            fired_rows=fired_rows,
            counts=count_frame,
        )

    def condition_counts(self, frame: pl.DataFrame) -> dict[str, int]:
        """The condition counts of a collected roadmap frame over all its rows
        (``scope_k``, ``fired_k``, ``unknown_k`` per action ``k``, as ``outputs().counts``
        without ``by``), read as sums of its Boolean columns: no query (one row: its
        values, read at once)."""
        names = self._count_names
        if frame.height == 1 and names:
            return {n[2:]: int(v or 0) for n, v in zip(names, frame[:, names].row(0),
                                                        strict=True)}
        return {n[2:]: int(frame.get_column(n).sum()) for n in names}

    def render(self, fired_rows: pl.LazyFrame) -> pl.LazyFrame:
        """Every value the texts and evidence show, rendered once per row: the rendering
        step of :meth:`outputs`, for fired rows taken with ``render=False``."""
        for step in self._renderer.steps():
            fired_rows = fired_rows.with_columns(step)
        return fired_rows.with_columns(self._renderer.columns)

    def actions(self, fired_rows: pl.DataFrame, key: str) -> pl.LazyFrame:
        """The fired actions (texts and evidence) from the collected, rendered
        ``fired_rows`` of :meth:`outputs`, with the sort helpers ``__rank`` and
        ``__order``. An action that fired on ``EVIDENCE_MANY_ROWS`` rows or more takes
        the evidence form for many rows (as :meth:`rendered_actions`)."""
        parts = []
        for k, (fired, _) in enumerate(self._outputs[3]):
            exprs = self._action_exprs(k, int(fired_rows.get_column(f"__fired_{k}").sum()))
            parts.append(fired_rows.lazy().filter(fired).select(pl.col(key), *exprs))
        return pl.concat(parts, how="vertical_relaxed")

    def _action_exprs(self, k: int, fired: int) -> list[pl.Expr]:
        """The output columns of action ``k`` for ``fired`` fired rows: its evidence in the
        form for many rows from ``EVIDENCE_MANY_ROWS`` on, when it has one."""
        exprs = self._outputs[3][k][1]
        many = self._evidence_many.get(k)
        if many is None or fired < EVIDENCE_MANY_ROWS:
            return exprs
        return [many if e.meta.output_name() == "evidence" else e for e in exprs]

    def rendered_actions(self, fired_rows: pl.DataFrame, key: str, *,
                         sorted_one: bool = False,
                         stacked_only: bool = False) -> pl.LazyFrame | None:
        """The fired actions (texts and evidence) from the *unrendered* fired rows of
        ``outputs(render=False)`` (or from any rows with the :meth:`fired_columns`: each
        action keeps the rows it fired on), in one query: :meth:`render` and
        :meth:`actions` in one step, for the actions that fired on some row only (None:
        none did).

        Each action's branch renders, on its own fired rows, only the values its text and
        evidence show; an action that fired nowhere costs nothing. A column ``__row`` of
        ``fired_rows`` (a sort key of the caller's) is kept after the key.

        With ``sorted_one`` and a single row (a service's account), the actions come in
        the order the actions frame lists them (priority rank, then declared order), with
        neither the sort helpers ``__rank`` and ``__order`` nor a filter (the row fired
        each of them): the caller has no sort to run.
        """
        parts: list[pl.LazyFrame] = []
        rows = fired_rows.lazy()
        # a row number the caller added (the actions' sort key) is kept
        carried = [pl.col("__row")] if "__row" in fired_rows.columns else []
        one = sorted_one and fired_rows.height == 1
        actions = self._outputs[3]
        columns_in = tuple(fired_rows.columns)
        for k in self._one_row_actions() if one else range(len(actions)):
            n = int(fired_rows.get_column(f"__fired_{k}").sum())
            if not n:
                continue
            # one row: the former outputs, literals in the branch (for a few branches of
            # one row, the literals cost less to plan than a select of table reads)
            exprs = self._one_row_outputs(k) if one else self._branch_outputs(k, n, False)
            steps, columns = self._action_renders[k]
            if one:
                lf = rows
            else:  # the branch's own columns, then its rows, taken without a query
                lf = self._branch_rows(fired_rows, k, key, carried, columns_in, n)
            for step in steps:
                lf = lf.with_columns(step)
            if columns:
                lf = lf.with_columns(columns)
            parts.append(lf.select(pl.col(key), *carried, *exprs))
        if not parts:
            return None
        stacked = parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical_relaxed")
        if one:
            return stacked
        if stacked_only:  # for sorted_actions: the literal columns after the sort
            return stacked
        return stacked.select(self._stacked_outputs(key, bool(carried), one))

    def _branch_rows(self, fired_rows: pl.DataFrame, k: int, key: str,
                     carried: list[pl.Expr], columns: tuple[str, ...],
                     fired: int) -> pl.LazyFrame:
        """The rows action ``k`` fired on, with the columns its branch in
        :meth:`rendered_actions` reads: taken from the collected ``fired_rows`` by name and
        by position (no ``select`` and ``filter`` to plan in the query; a frame whose
        columns are not all known takes the query's form)."""
        reads = self._branch_columns(k, key, carried, columns)
        if reads is None:
            return fired_rows.lazy().filter(self._outputs[3][k][0])
        taken = fired_rows[:, reads]  # (by name: see frames.narrow)
        if fired == fired_rows.height:  # every row fired it
            return taken.lazy()
        mask = fired_rows.get_column(f"__fired_{k}")
        return taken[row_positions(fired_rows.height).filter(mask)].lazy()

    def sorted_actions(self, stacked: pl.LazyFrame, key: str) -> pl.LazyFrame:
        """The fired actions of ``rendered_actions(rows, key, stacked_only=True)`` where
        ``rows`` carry ``__row`` (their number in key order), sorted by row, priority rank
        and declared order, without the sort helpers: sorted by one Int64 key read from
        the action's number, then the literal columns read from their tables (the sort
        moves the branches' own columns only)."""
        if not self._literal_tables:  # the former form (tests)
            return stacked.select(self._stacked_outputs(key, True, False)).sort(
                _ACTION_SORT_KEY).select(_WITHOUT_SORT_KEYS)
        return stacked.sort(self._sort_key()).select(self._stacked_outputs(key, False, True))

    def _sort_key(self) -> pl.Expr:
        """The Int64 sort key of :meth:`sorted_actions` (row, priority rank, declared
        order; the rank and order read from the tables by the action's number), built
        once (:meth:`prepare_reads` builds it at compile)."""
        if self._action_sort_key is None:
            number = pl.col(_ACTION_NUMBER)
            self._action_sort_key = (
                (pl.col("__row").cast(pl.Int64) * len(PRIORITY_RANK)
                 + self._literal_tables["__rank"].gather(number)) * ORDER_STEP
                + self._literal_tables["__order"].gather(number))
        return self._action_sort_key

    def _branch_outputs(self, k: int, fired: int, one: bool) -> list[pl.Expr]:
        """The output columns of action ``k``'s branch in :meth:`rendered_actions` (for
        ``fired`` rows; ``one``: one row, no sort helpers): its outputs but the literal
        columns of :func:`_literal_tables`, which the branch gives as its number
        ``__k``."""
        # built in _output_exprs, the evidence last (no expression's name is read per call)
        if not self._literal_tables:  # no actions, or the former form (tests)
            return [typed_lit(k, pl.UInt32).alias(_ACTION_NUMBER),
                    *(self._one_row_outputs(k) if one else self._action_exprs(k, fired))]
        got = self._branch_exprs[k]
        many = self._evidence_many.get(k)
        if many is None or fired < EVIDENCE_MANY_ROWS or one:
            return got
        return [*got[:-1], many]

    def _stacked_outputs(self, key: str, carried: bool, one: bool) -> list[pl.Expr]:
        """The output columns of :meth:`rendered_actions` from its stacked branches
        (:meth:`_branch_outputs`): the key, the carried ``__row``, then every output in
        order, the literal ones read from their tables by the action's number."""
        memo = (key, carried, one)
        got = self._stacked_exprs.get(memo)
        if got is None:
            number = pl.col(_ACTION_NUMBER)
            names = [n for n in _ACTION_COLUMNS
                     if not (one and n in ("__rank", "__order"))]
            got = self._stacked_exprs[memo] = [
                pl.col(key), *([pl.col("__row")] if carried else []),
                *[self._literal_tables[n].gather(number).alias(n)
                  if n in self._literal_tables else pl.col(n) for n in names]]
        return got

    def _action_reads(self, k: int, key: str, carried: list[pl.Expr]) -> list[str] | None:
        """The column names the branch of action ``k`` in :meth:`rendered_actions` reads
        (its fired flag, rendering steps and output columns in both evidence forms, the key
        and the carried row number; some are written by its rendering steps), in a fixed
        order; built once per action, key and carried columns. None where an expression
        reads columns by a selector: the branch then takes every column."""
        memo = (k, key, bool(carried))
        if memo in self._branch_reads:
            return self._branch_reads[memo]
        fired, exprs = self._outputs[3][k]
        steps, columns = self._action_renders[k]
        read = [*carried, fired, *[e for step in steps for e in step], *columns, *exprs,
                *self._action_exprs(k, EVIDENCE_MANY_ROWS)]
        got = self._branch_reads[memo] = read_names(key, *read)
        return got

    def _branch_columns(self, k: int, key: str, carried: list[pl.Expr],
                        columns: tuple[str, ...]) -> list[str] | None:
        """The names of the columns of a frame of ``columns`` that the branch of action
        ``k`` reads (:meth:`_action_reads`; a name not among them is one its rendering
        steps write), in a fixed order, found once per action and frame columns."""
        memo = (k, key, bool(carried), columns)
        got = self._branch_cols.get(memo)
        if got is None and memo not in self._branch_cols:
            reads = self._action_reads(k, key, carried)
            have = set(columns)
            got = None if reads is None else [n for n in reads if n in have]
            if len(self._branch_cols) >= 64:  # frames of many shapes: keep the newest
                self._branch_cols.clear()
            self._branch_cols[memo] = got
        return got

    def prepare_reads(self, key: str, *, carried: bool) -> None:
        """Find now the columns the branch of each action in :meth:`rendered_actions`
        reads (:meth:`_action_reads`; ``carried``: the rows carry the caller's ``__row``).
        They depend on no data: ``compile`` finds them (``Evaluator.prepare``), so that a
        daily job's one evaluation does not."""
        row = [pl.col("__row")] if carried else []
        for k in range(len(self._outputs[3])):
            self._action_reads(k, key, row)
        # the selects that only take columns (the raw aggregates of _joined, the outputs
        # of outputs()) and the columns of the rows the fired actions render from: the
        # fired columns of the frame (fired_columns), led by the caller's ``__row`` when
        # carried; each branch's columns of those rows (_branch_columns) found now
        self._take("raw", key, self._join_parts(key)[2])
        for name, exprs in self._output_reads(key).items():
            self._take(name, key, exprs)
        names = read_names(key, *self._fired_names())
        if names is not None:
            columns = ("__row", *names) if carried else tuple(names)
            for k in range(len(self._outputs[3])):
                self._branch_columns(k, key, row, columns)
        if self._literal_tables:
            # the stacked branches' select and (rows carrying their number) the sort key
            # of rendered_actions and sorted_actions: built now, not on the first call
            if carried:
                self._sort_key()
            self._stacked_outputs(key, False, carried)

    def _one_row_actions(self) -> list[int]:
        """The actions in the order of the actions frame for one row: by priority rank,
        then as declared (what sorting by ``__rank`` and ``__order`` gives)."""
        if self._one_row_order is None:
            ranks = [PRIORITY_RANK[a.priority] for _, a in self.compiled.roadmap.all_actions()]
            self._one_row_order = sorted(range(len(ranks)), key=lambda k: (ranks[k], k))
        return self._one_row_order

    def _one_row_outputs(self, k: int) -> list[pl.Expr]:
        """The output columns of action ``k`` for one fired row: without ``__rank`` and
        ``__order`` (one row's actions come in order, :meth:`_one_row_actions`)."""
        got = self._one_row_exprs.get(k)
        if got is None:
            got = self._one_row_exprs[k] = [
                e for e in self._action_exprs(k, 1)
                if e.meta.output_name() not in ("__rank", "__order")]
        return got

    def fired(self, fired_rows: pl.DataFrame, key: str) -> pl.LazyFrame:
        """The fired actions of :meth:`actions` without ``text`` and ``evidence``: nothing
        is rendered, so ``fired_rows`` may come from ``outputs(render=False)``."""
        parts = [fired_rows.lazy().filter(fired).select(
            pl.col(key), *[e for e in exprs
                           if e.meta.output_name() not in ("text", "evidence")])
            for fired, exprs in self._outputs[3]]
        return pl.concat(parts, how="vertical_relaxed")

    # ------------------------------------------------------------------ building

    def _due_expr(self, path: str, action: Action) -> pl.Expr:
        """The due date of an action fired on a row: ``due: 3d`` counts from the row's date
        (the day it fires), ``due: renewal_date`` is the expression's date (a datetime's
        date in its own time zone); null without ``due``."""
        if action.due_days is not None:
            return pl.col(AS_OF) + pl.duration(days=action.due_days)
        parsed = self.compiled.analysis.expressions.get(f"{path}.due")
        if parsed is None:
            return typed_lit(None, pl.Date)
        a = self.compiled.analysis
        value = self.expr(parsed)
        if infer(parsed, a.env("actions"), banded=a.banded) == "datetime":
            value = value.dt.date()
        return value.cast(pl.Date)

    def _owner_expr(self, action: Action) -> pl.Expr:
        """Who acts: the owner attribute's value (``fallback`` when it is null), else the
        role."""
        attr = action.owner_attribute
        if attr is None:
            return typed_lit(action.owner_role, pl.String)
        fallback = action.owner.fallback if isinstance(action.owner, Owner) else None
        value = self._unrendered(pl.col(attr).cast(pl.String))
        return value if fallback is None else value.fill_null(pl.lit(fallback))

    def _render_steps(self, exprs: list[pl.Expr],
                      ) -> tuple[list[list[pl.Expr]], list[pl.Expr]]:
        """The renderer's step (the exact decimal forms of numbers: :meth:`Renderer.steps`)
        and rendered values that ``exprs`` (one action's output columns) read, in the
        renderer's order."""
        renderer = self._renderer
        reads = {n for e in exprs for n in e.meta.root_names()}
        columns = [e for e in renderer.columns if e.meta.output_name() in reads]
        return renderer.steps(columns), columns

    def _unrendered(self, expr: pl.Expr) -> pl.Expr:
        """A value of the fired rows shown as it is (a due date, an owner): computed from
        the columns the fired rows carry (added to the renderer's ``reads``), so it needs no
        rendering step (history takes its fired rows unrendered)."""
        self._renderer.reads |= set(expr.meta.root_names())
        return expr

    def _post(self, ind: AggregateIndicator) -> pl.Expr:
        cur = pl.col(ind.id)
        prev = pl.col(f"{ind.id}__prev")
        kind = AGGREGATE_KINDS[ind.aggregate]

        def finish(x: pl.Expr, is_prev: bool) -> pl.Expr:
            return kind.finish(x, last_day(ind, is_prev, self.plan.attributes, self.time))

        value = finish(cur, False)
        if ind.compare != "none":
            value = _trend(ind.compare, value, finish(prev, True),
                           integer=self.compiled.analysis.indicator_types[ind.id] == "int")
        if ind.window.from_ is not None:
            value = pl.when(pl.col(ind.window.from_).is_not_null()).then(value)
        return value

    def _previous_value(self, ind: AggregateIndicator) -> pl.Expr:
        """An aggregate's value over its previous window (``__prev<N>__<id>``), which derived
        trends read."""
        kind = AGGREGATE_KINDS[ind.aggregate]
        day = last_day(ind, True, self.plan.attributes, self.time)
        return kind.finish(pl.col(f"{ind.id}__prev"), day).alias(
            f"__prev{ind.window.days}__{ind.id}")

    def _previous_derived(self, ident: str, parsed: Parsed, days: int) -> pl.Expr:
        """A derived indicator's expression over the previous window: the indicators it reads
        at their previous values (``__prev<N>__<id>``), ``as_of`` N days earlier."""
        a = self.compiled.analysis
        r = self.compiled.roadmap
        bands = {ind.id: ind.bands for ind in r.indicators if ind.bands is not None}
        earlier = self.time.as_of() - pl.duration(days=days)

        def column(name: str) -> pl.Expr:
            if name == "as_of":
                return earlier
            if name in a.indicator_types:
                return pl.col(f"__prev{days}__{name}")
            return pl.col(name)

        def band(name: str) -> pl.Expr:
            return _band_expr(pl.col(f"__prev{days}__{name}"), bands[name])

        expr = to_polars(parsed, column=column, band=band, as_of=earlier,
                         types=a.env("actions"))
        return cast_to(expr, a.indicator_types[ident])

    def _flags(self, si: int) -> list[tuple[str, Any, pl.Expr | None]]:
        """(list, task, done flag) of every task of stage ``si``, in list order (None: the
        task has no ``done_when``, it is never done).

        A flag with a ``done_when`` is a column (``__task_<si>_<j>``, computed once, see
        :attr:`_task_columns`), read by the achievement counts and the task lists.
        """
        a = self.compiled.analysis
        st = self.compiled.roadmap.stages[si]
        out: list[tuple[str, Any, pl.Expr | None]] = []
        for lst in ("joint", "customer", "ours"):
            for ti, task in enumerate(getattr(st.tasks, lst)):
                tp = a.expressions.get(f"stages[{si}].tasks.{lst}[{ti}].done_when")
                if tp is None:
                    flag = None
                else:
                    column = f"__task_{si}_{len(out)}"
                    self._task_columns.append(self._boolean(tp).alias(column))
                    flag = pl.col(column)
                out.append((lst, task, flag))
        return out

    def _task_lists(self) -> list[tuple[str, pl.Expr]]:
        """The task list of each stage that has tasks, as one expression of TASK_DTYPE.

        A task without ``done_when`` is one literal struct (not a struct of three
        expressions), and a stage whose tasks all lack one is a literal list: a node
        instead of four per task to plan and run at every call (the B2B example's
        operation and renewal stages). The other lists are an array of the tasks' structs
        made a list (``concat_list`` of struct columns is about 50x slower than
        ``concat_arr`` in polars 2.1); their fields are the dtype's already (no cast)."""
        out: list[tuple[str, pl.Expr]] = []
        task = TASK_DTYPE.inner
        for si, st in enumerate(self.compiled.roadmap.stages):
            flags = self._task_flags[si]
            if not flags:
                continue
            fixed = [{"list": lst, "text": t.text, "done": None} for lst, t, _ in flags]
            if all(flag is None for _, _, flag in flags):
                out.append((st.id, typed_lit(fixed, TASK_DTYPE)))
                continue
            items = [pl.lit(value, dtype=task) if flag is None
                     else pl.struct(typed_lit(lst, pl.String).alias("list"),
                                    typed_lit(t.text, pl.String).alias("text"),
                                    flag.alias("done"))
                     for value, (lst, t, flag) in zip(fixed, flags, strict=True)]
            out.append((st.id, pl.concat_arr(items).arr.to_list()))
        return out

    def _stage_exprs(self, many: bool = False) -> tuple[pl.Expr, pl.Expr]:
        """``__stage_index`` (the first stage whose entry holds), then ``__stage`` from it:
        each entry criterion is evaluated once.

        The first stage that holds is the first ``true`` of an array of the entry tests
        (``arg_max``, with a ``true`` appended for "none"), and the index and the name are
        read from literal tables by that position (``gather``): a ``when`` per stage, or a
        ``replace_strict``, costs several times more to plan and run on a few rows. On
        ``many`` rows the index is a when/then chain: the array costs about ten times more
        per row."""
        r = self.compiled.roadmap
        conds, fallback = self._entry_tests()
        index: pl.Expr
        if not conds:
            index = typed_lit(fallback, pl.Int64)
        elif many or not any(c.meta.root_names() for c in conds):
            # every test a literal: the array's position would be one value, and a table
            # gathered by it a one-row column that polars does not spread over the rows
            chain: Any = None
            for si, cond in enumerate(conds):
                then = typed_lit(si, pl.Int64)
                chain = pl.when(cond).then(then) if chain is None else chain.when(cond).then(then)
            index = chain.otherwise(typed_lit(fallback, pl.Int64))
        else:
            first = pl.concat_arr([*conds, pl.lit(True)]).arr.arg_max()
            index = _table([*range(len(conds)), fallback], pl.Int64).gather(first)
        if many:  # the name: the same expression in both forms
            return index.alias("__stage_index"), self._stage[1]
        ids = [st.id for st in r.stages]
        name = _table([*ids, UNASSIGNED_STAGE], pl.String).gather(
            pl.col("__stage_index").fill_null(len(ids)))
        return index.alias("__stage_index"), name.alias("__stage")

    def _entry_tests(self) -> tuple[list[pl.Expr], int | None]:
        """The stages' entry tests in order, up to the first stage without one, and that
        stage (None: every stage has a test): translated once, read by both forms of
        :meth:`_stage_exprs`."""
        if self._entries is None:
            r, a = self.compiled.roadmap, self.compiled.analysis
            conds: list[pl.Expr] = []
            fallback: int | None = None  # the stage of a row no entry test holds for
            for si in range(len(r.stages)):
                parsed = a.expressions.get(f"stages[{si}].entry")
                if parsed is None:  # no test: every row left gets this stage, none after it
                    fallback = si
                    break
                conds.append(self.expr(parsed).fill_null(False))
            self._entries = (conds, fallback)
        return self._entries

    def _achievement_exprs(self, many: bool = False) -> list[pl.Expr]:
        """``__achieved``, ``__tasks_done`` and ``__tasks_total`` of the row's stage.

        A value per stage is picked by ``__stage_index`` from an array of the stages' values
        (null: no stage, or a stage without one); one ``when`` per stage costs several
        times more to plan and run, so a chain is kept for a single stage only (and on
        ``many`` rows, where the array costs more per row)."""
        r, a = self.compiled.roadmap, self.compiled.analysis
        index = pl.col("__stage_index")
        if self._stage_values is None:  # (built once: both forms read the same values)
            achieved: list[pl.Expr | None] = []
            done: list[pl.Expr | None] = []
            totals: dict[str, int] = {}
            for si, st in enumerate(r.stages):
                parsed = a.expressions.get(f"stages[{si}].achievement.when")
                achieved.append(None if parsed is None else self._boolean(parsed))
                flags = [flag for _, _, flag in self._task_flags[si]]
                if flags:
                    totals[st.id] = len(flags)
                # the lists themselves are built after collecting (tasks()); a task without
                # done_when is never done (adds 0): only the task columns are counted
                counted = [f.fill_null(False).cast(pl.Int64) for f in flags if f is not None]
                done.append(None if not counted else counted[0] if len(counted) == 1
                            else pl.sum_horizontal(counted))
            self._stage_values = (achieved, done, totals)
        achieved, done, totals = self._stage_values

        def by_stage(values: list[pl.Expr | None], none: pl.Expr) -> pl.Expr | None:
            present = [(si, v) for si, v in enumerate(values) if v is not None]
            if not present:
                return None
            if len(present) == 1:
                si, v = present[0]
                return pl.when(index == si).then(v)
            if many:
                chain: Any = None
                for si, v in present:
                    on = index == si
                    chain = pl.when(on).then(v) if chain is None else chain.when(on).then(v)
                picked: pl.Expr = chain.otherwise(none)
                return picked
            return pl.concat_arr([none if v is None else v for v in values]).arr.get(
                index, null_on_oob=True)

        # each stage's own values, for rows whose stage is known (see one_row_steps)
        self._stage_achieved, self._stage_done, self._stage_totals = achieved, done, totals
        ach = by_stage(achieved, typed_lit(None, pl.Boolean))
        n_done = by_stage(done, typed_lit(0, pl.Int64))
        # the number of tasks is read from a table by the stage index (a when/then per
        # stage, or a replace_strict of the stage, costs more)
        total = (self._achievement[2] if many  # (the same expression in both forms)
                 else (typed_lit(0, pl.Int64) if not totals else _table(
                     [*[totals.get(st.id, 0) for st in r.stages], 0], pl.Int64).gather(
                         index.fill_null(len(r.stages)))).alias("__tasks_total"))
        return [
            (typed_lit(None, pl.Boolean) if ach is None else ach).alias("__achieved"),
            (typed_lit(0, pl.Int64) if n_done is None
             else n_done.fill_null(typed_lit(0, pl.Int64))).alias("__tasks_done"),
            total,
        ]

    def _score_exprs(self, many: bool = False, *, at: bool = False) -> list[list[pl.Expr]]:
        """The score in steps, each reading the columns of the step before (``at``: the
        band scores of the frame's positioned bands read from their position columns,
        ``__bpos__<id>``, rather than found again from the values).

        One expression per weight set would repeat every band score many times inside nested
        weighted means (polars does not share them); columns keep each value computed once.
        The steps before the last (band scores, family scores, totals, the weight set of
        each row) are the same in both forms and built once (:meth:`_score_base`).
        """
        band_scores, families, totals, n_sets = self._score_base()
        if at:
            band_scores = self._band_scores_at
        names = ["__score", *[f"__score_{f}" for f in FAMILIES], "__scored", "__missing"]
        if n_sets == 1:
            return [band_scores, families, totals,
                    [pl.col(f"__sp0{name}").alias(name) for name in names]]
        pick = pl.col("__ws")
        if many:  # many rows: a when/then chain costs less per row than an array
            def picked(name: str) -> pl.Expr:
                out: Any = None
                for t in range(1, n_sets):
                    on, then = pick == t, pl.col(f"__sp{t}{name}")
                    out = pl.when(on).then(then) if out is None else out.when(on).then(then)
                result: pl.Expr = out.otherwise(pl.col(f"__sp0{name}")).alias(name)
                return result
            return [band_scores, families, totals, [picked(name) for name in names]]
        out = [pl.concat_arr([pl.col(f"__sp{t}{name}") for t in range(n_sets)]).arr.get(
            pick).alias(name) for name in names]
        return [band_scores, families, totals, out]

    def _score_base(self) -> tuple[list[pl.Expr], list[pl.Expr], list[pl.Expr], int]:
        """(band scores, family scores with the weight set of each row, totals, number of
        weight sets) of :meth:`_score_exprs`, built on first use and kept."""
        if self._score_parts_built is None:
            self._score_parts_built = self._build_score_base()
        return self._score_parts_built

    def _build_score_base(self) -> tuple[list[pl.Expr], list[pl.Expr], list[pl.Expr], int]:
        r = self.compiled.roadmap
        band_scores: list[pl.Expr] = []
        band_scores_at: list[pl.Expr] = []
        for ind in r.indicators:
            if ind.bands is None:
                continue
            policy = ind.missing or r.score.missing  # the indicator's own policy first
            # the band score with its missing policy applied, as the weighted means read
            # it: its value with null as 0 (__bv__) and 1.0 where it is not null (__bp__)
            fill = 50.0 if policy == "neutral" else 0.0 if policy == "worst" else None
            band, value = pl.col(f"{ind.id}__band"), pl.col(ind.id)
            # skipped when missing: present where the band is (3 nodes, not a table read);
            # filled: present everywhere, a column read from the table like the value (a
            # literal 1.0 could make a denominator a scalar, see _weighted_mean). A band of
            # a when/then chain (edges of both kinds) is a scalar column where every row
            # takes one branch, and its score read from the table is not: its presence is
            # read from the table too (1.0 for a band, 0.0 for none), or the mean of its
            # rows was a reciprocal multiply where one row alone is divided
            chained = _band_position(value, ind.bands) is None
            presence = (band.is_not_null().cast(pl.Float64) if fill is None and not chained
                        else _band_score(band, ind.bands, 1.0 if fill is not None else 0.0,
                                         present=True, value=value))
            band_scores += [
                _band_score(band, ind.bands, 0.0 if fill is None else fill,
                            value=value).alias(f"__bv__{ind.id}"),
                presence.alias(f"__bp__{ind.id}")]
            # the frame's form: a positioned band's scores read from its position column
            at = pl.col(_position_column(ind.id)) if ind.id in self._positioned else None
            band_scores_at += [
                _band_score(band, ind.bands, 0.0 if fill is None else fill, value=value,
                            position=at).alias(f"__bv__{ind.id}"),
                (presence if at is None or fill is None
                 else _band_score(band, ind.bands, 1.0, present=True, value=value,
                                  position=at)).alias(f"__bp__{ind.id}")]
        # the weight sets in the order they are tried (see ScoreSpec.weights_for): the
        # segment's for the stage, the segment's, the roadmap's for the stage; the default last
        # (segment, stage) each requires (None: any), kept for rows whose stage and segment
        # are known (see one_row_steps)
        weight_sets: list[tuple[str | None, str | None, Weights]] = [
            (None, None, r.score.weights)]
        for sg in r.score.segments:
            weight_sets += [(sg.id, sid, ss.weights) for sid, ss in sg.stages.items()]
            if not sg.weights.empty:
                weight_sets.append((sg.id, None, sg.weights))
        weight_sets += [(None, sid, s.weights) for sid, s in r.score.stages.items()]
        self._weight_sets, self._band_scores = weight_sets, band_scores
        self._band_scores_at = band_scores_at
        sets = [(_weight_set_condition(r, sg, sid), weights) for sg, sid, weights in weight_sets]
        families: list[pl.Expr] = []
        totals: list[pl.Expr] = []
        for t, (_, weights) in enumerate(sets):
            fam, total = _score_parts(r, weights, f"__sp{t}")
            families += [e.alias(f"__sp{t}{n}") for n, e in fam.items()]
            totals.append(total.alias(f"__sp{t}__score"))
        if len(sets) > 1:
            # the weight set of each row, decided once (the first whose condition holds; 0,
            # the default, otherwise); each output is then picked from its set's column
            chain: Any = None
            for t, (on, _) in enumerate(sets):
                if on is not None:
                    then = typed_lit(t, pl.Int64)
                    chain = (pl.when(on).then(then) if chain is None
                             else chain.when(on).then(then))
            families.append(chain.otherwise(typed_lit(0, pl.Int64)).alias("__ws"))
        return band_scores, families, totals, len(sets)

    def _output_exprs(self) -> tuple[
        list[str], list[pl.Expr], list[pl.Expr], list[tuple[pl.Expr, list[pl.Expr]]],
        list[pl.Expr],
    ]:
        r, a = self.compiled.roadmap, self.compiled.analysis
        ind_cols: list[str] = []
        for ind in r.indicators:
            ind_cols.append(ind.id)
            if ind.bands is not None:
                ind_cols.append(f"{ind.id}__band")
        stage_exprs = [
            pl.col("__stage").alias("stage"), pl.col("__stage_index").alias("stage_index"),
            pl.col("__achieved").alias("achieved"), pl.col("__tasks_done").alias("tasks_done"),
            pl.col("__tasks_total").alias("tasks_total"),
        ]
        score_exprs = [
            pl.col("__stage").alias("stage"),
            pl.col("__score").alias("score"), pl.col("__score_band").alias("score_band"),
            *[pl.col(f"__score_{f}").alias(f"score_{f}") for f in FAMILIES],
            pl.col("__scored").alias("indicators_scored"),
            pl.col("__missing").alias("indicators_missing"),
            pl.col("__goal_reached").alias("goal_reached"),
            *([pl.col("__segment").alias("segment")] if r.score.segments else []),
        ]
        env = a.env("actions")
        renderer = self._renderer
        actions: list[tuple[pl.Expr, list[pl.Expr]]] = []
        self._branch_exprs: list[list[pl.Expr]] = []
        for k, (st, action) in enumerate(r.all_actions()):
            path = action_path(r, st.id if st else None, action.id)
            due = self._due_expr(path, action)
            values = {"due_date": (due, "date")}
            evidence, evidence_many = renderer.evidence(a.expressions[f"{path}.when"], env,
                                                        a.banded)
            if evidence_many is not None:
                self._evidence_many[k] = evidence_many.alias("evidence")
            owner = self._owner_expr(action).alias("owner")
            due_date = (typed_lit(None, pl.Date) if action.due is None
                        else self._unrendered(due)).alias("due_date")
            text = renderer.template(a.templates[f"{path}.do"], env, values).alias("text")
            # the branch of rendered_actions: the columns that are not literal, the
            # evidence last (see _branch_outputs, _literal_tables)
            self._branch_exprs.append([
                typed_lit(k, pl.UInt32).alias(_ACTION_NUMBER), pl.col("roadmap"),
                pl.col("__stage").alias("stage"), owner, due_date, text,
                evidence.alias("evidence")])
            actions.append((pl.col(f"__fired_{k}"), [
                pl.col("roadmap"), pl.col("__stage").alias("stage"),
                pl.lit(action.id).alias("action_id"), pl.lit(action.kind).alias("kind"),
                typed_lit(action.title, pl.String).alias("title"),
                owner,
                typed_lit(action.owner_role, pl.String).alias("owner_role"),
                typed_lit(action.channel, pl.String).alias("channel"),
                pl.lit(action.priority).alias("priority"),
                due_date, text, evidence.alias("evidence"),
                typed_lit(PRIORITY_RANK[action.priority], pl.Int64).alias("__rank"),
                typed_lit(self.index * ORDER_STEP + k, pl.Int64).alias("__order"),
            ]))
        sums = [pl.col(f"__{w}_{k}").sum().cast(pl.Int64).alias(f"{w}_{k}")
                for k in range(len(actions)) for w in ("scope", "fired", "unknown")]
        return ind_cols, stage_exprs, score_exprs, actions, sums


# ---------------------------------------------------------------------- helpers


_ACTION_COLUMNS = ("roadmap", "stage", "action_id", "kind", "title", "owner", "owner_role",
                   "channel", "priority", "due_date", "text", "evidence", "__rank", "__order")
"""The output columns of an action (:meth:`RoadmapProgram._output_exprs`), in order."""

_ACTION_SORT_KEY = ((pl.col("__row").cast(pl.Int64) * len(PRIORITY_RANK) + pl.col("__rank"))
                    * ORDER_STEP + pl.col("__order"))
"""The fired actions' sort key from their sort helpers (rows in key order, numbered
``__row``)."""
_WITHOUT_SORT_KEYS = pl.all().exclude("__row", "__rank", "__order")
"""Every column but the sort keys."""

_ACTION_NUMBER = "__k"
"""The number of the action a row of :meth:`RoadmapProgram.rendered_actions`'s stacked
branches fired (the row of the literal tables, :func:`_literal_tables`)."""


def _literal_tables(r: Roadmap, index: int) -> dict[str, pl.Expr]:
    """The literal output columns of the actions (the same values as the literals of
    :meth:`RoadmapProgram._output_exprs`, with their dtypes), as tables with a row per
    action, by output column name."""
    actions = [action for _, action in r.all_actions()]
    if not actions:
        return {}
    texts: dict[str, list[str | None]] = {
        "action_id": [a.id for a in actions], "kind": [a.kind for a in actions],
        "title": [a.title for a in actions], "owner_role": [a.owner_role for a in actions],
        "channel": [a.channel for a in actions], "priority": [a.priority for a in actions]}
    out = {name: _table(values, pl.String) for name, values in texts.items()}
    out["__rank"] = _table([PRIORITY_RANK[a.priority] for a in actions], pl.Int64)
    out["__order"] = _table([index * ORDER_STEP + k for k in range(len(actions))], pl.Int64)
    return out


_COUNTED_STAGES_ROWS = 10_000
"""Up to this many rows, :func:`_stages_in` reads the stages from their counts."""


def _stages_in(frame: pl.DataFrame) -> set[str]:
    """The stages the rows of a collected roadmap frame are in (one row: read, no query).

    Up to ``_COUNTED_STAGES_ROWS`` rows, the values of the stages' counts: in polars 2.1
    ``Series.value_counts`` takes about 10 us for 200 rows where ``Series.unique`` takes
    140 to 190 us however few the rows (0.20 against 0.28 ms at 5,000 rows; from about
    50,000 rows ``unique`` is the faster)."""
    stage = frame.get_column("__stage")
    if frame.height == 1:
        return {stage[0]}
    if frame.height <= _COUNTED_STAGES_ROWS:
        return set(stage.value_counts().get_column(stage.name).to_list())
    return set(stage.unique().to_list())


def _fuse(steps: list[list[pl.Expr]]) -> list[list[pl.Expr]]:
    """Consecutive ``with_columns`` steps merged where that gives the same frame: a step
    joins the one before unless it reads a column that step writes or writes a column that
    step writes too (in one ``with_columns`` every expression reads the input frame).
    Each step costs time per call over a wide frame; the expressions are the same."""
    fused: list[list[pl.Expr]] = []
    written: set[str] = set()
    for step in steps:
        if not step:
            continue
        reads = {n for e in step for n in e.meta.root_names()}
        writes = {e.meta.output_name() for e in step}
        if fused and not (reads & written) and not (writes & written):
            fused[-1] = [*fused[-1], *step]
            written |= writes
        else:
            fused.append(list(step))
            written = set(writes)
    return fused


def _fused_as(steps: list[list[pl.Expr]], sizes: list[int],
              fused: list[list[pl.Expr]]) -> list[list[pl.Expr]]:
    """``_fuse(steps)`` for steps that read and write the same columns as the steps of
    ``sizes`` expressions each that ``_fuse`` made ``fused`` of: the same groups of whole
    steps, without reading every expression's names again (``_fuse`` itself where the
    sizes differ)."""
    if [len(step) for step in steps] != sizes:
        return _fuse(steps)
    flat = [e for step in steps for e in step]
    out: list[list[pl.Expr]] = []
    at = 0
    for group in fused:
        out.append(flat[at:at + len(group)])
        at += len(group)
    return out


def _levelled(steps: list[list[pl.Expr]]) -> list[list[pl.Expr]]:
    """The expressions of ``steps`` (``with_columns`` steps, applied in order) in as few
    steps as give the same frame values: each expression goes to the first step after
    every expression of an earlier step that writes a column it reads or writes (they
    must have run), and no earlier than any expression of an earlier step that reads a
    column it writes (which must read the value before it; in the same step it does, as
    every expression of a step reads the step's input). A step whose expressions read a
    column another of them writes (they read the value before it) stays together.
    :func:`_fuse` only merges neighbouring steps, so a chain of steps that each read the
    step before (a derived indicator, then its band, then the next) stays one step per
    link even where the links do not read each other. The columns the steps add come in
    another order (by step, then as declared)."""
    placed: list[tuple[int, set[str], str]] = []  # (step, reads, writes), earlier steps
    levels: list[list[pl.Expr]] = []
    for step in steps:
        parts = [(e, set(e.meta.root_names()), e.meta.output_name()) for e in step]
        writes = {w for _, _, w in parts}
        together = any((r - {w}) & writes for _, r, w in parts)
        at: list[int] = []
        for _, reads, out in parts:
            level = 0
            for done, r, w in placed:
                if w in reads or w == out:
                    level = max(level, done + 1)
                elif out in r:
                    level = max(level, done)
            at.append(level)
        if together:
            at = [max(at)] * len(at)
        for (e, reads, out), level in zip(parts, at, strict=True):
            while len(levels) <= level:
                levels.append([])
            levels[level].append(e)
            placed.append((level, reads, out))
    return levels


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


def _segment_expr(r: Roadmap, expr: Callable[[Parsed], pl.Expr],
                  a: Analysis) -> pl.Expr | None:
    """``__segment``: the id of the first score segment whose ``applies_to`` holds (null:
    none, or the roadmap has no segments)."""
    chain: Any = None
    for k, sg in enumerate(r.score.segments):
        cond = expr(a.expressions[f"score.segments[{k}].applies_to"]).fill_null(False)
        then = typed_lit(sg.id, pl.String)
        chain = pl.when(cond).then(then) if chain is None else chain.when(cond).then(then)
    if chain is None:
        return None
    result: pl.Expr = chain.otherwise(typed_lit(None, pl.String)).alias("__segment")
    return result


def _score_band_expr(r: Roadmap) -> pl.Expr:
    """``__score_band``: the band of the score, by the bands of the account's segment."""
    default = (_band_expr(pl.col("__score"), r.score.bands) if r.score.bands is not None
               else typed_lit(None, pl.String))
    chain: Any = None
    for sg in r.score.segments:
        if sg.bands is None:
            continue
        on = pl.col("__segment") == sg.id
        band = _band_expr(pl.col("__score"), sg.bands)
        chain = pl.when(on).then(band) if chain is None else chain.when(on).then(band)
    result: pl.Expr = default if chain is None else chain.otherwise(default)
    return result.alias("__score_band")
def _weight_set_condition(r: Roadmap, segment: str | None, stage: str | None,
                          ) -> pl.Expr | None:
    """Where a weight set applies: the row's segment and stage (None: any; both None: the
    default set, no condition)."""
    on_segment = None if segment is None else pl.col("__segment") == segment
    on_stage = None if stage is None else _on_stage(r, stage)
    if on_segment is None:
        return on_stage
    return on_segment if on_stage is None else on_segment & on_stage


def _on_stage(r: Roadmap, stage: str) -> pl.Expr:
    """Whether a row is in ``stage`` (never null): its ``__stage_index`` is the stage's
    position. ``__stage`` is read from the stage ids by that index (no stage: the
    unassigned stage, which no stage id can equal), so this is ``__stage == stage``
    without a string comparison per row (about 18 instructions per row, against 1)."""
    ids = [st.id for st in r.stages]
    if stage not in ids:
        return pl.col("__stage") == stage
    return pl.col("__stage_index").eq_missing(typed_lit(ids.index(stage), pl.Int64))


def _trend(compare: str, value: pl.Expr, before: pl.Expr, *, integer: bool = False,
           ) -> pl.Expr:
    """An indicator's value under ``compare``: the previous value, the difference (of two
    ints: null when it leaves Int64, as int arithmetic is, never wrapped) or the relative
    change (an IEEE division; null when the previous value is 0)."""
    if compare == "previous":
        return before
    if compare == "delta":
        if integer:
            return checked_int(value.cast(pl.Int128) - before.cast(pl.Int128))
        return float_difference(value, before)
    return exact_division(value.cast(pl.Float64) - before.cast(pl.Float64), before)


def _band_expr(x: pl.Expr, bands: Bands) -> pl.Expr:
    """The band name of a value: read from a literal table by the band's position
    (:func:`_band_position`) when every level's upper edge is of the same kind (all ``lt``
    or all ``le``; a when/then chain costs several times more to plan and run), else a
    when/then chain."""
    position = _band_position(x, bands)
    if position is not None:
        return _table([level.name for level in bands.levels], pl.String).gather(position)
    return _band_chain(x, bands)


def _band_chain(x: pl.Expr, bands: Bands) -> pl.Expr:
    """The band name of a value by a when/then chain over the levels' upper edges (any
    mix of edge kinds)."""
    chain: Any = pl.when(x.is_null()).then(typed_lit(None, pl.String))
    for level in bands.levels[:-1]:
        upper = level.upper
        assert upper is not None
        cond = x <= upper[0] if upper[1] else x < upper[0]
        chain = chain.when(cond).then(pl.lit(level.name))
    result: pl.Expr = chain.otherwise(pl.lit(bands.levels[-1].name))
    return result


def _band_position(x: pl.Expr, bands: Bands, missing: int | None = None) -> pl.Expr | None:
    """The position of a value's band among the levels (0 for the lowest), ``missing``
    (default null) for a null value; None when the levels' upper edges are of both kinds.

    The number of cut points below the value (``le`` edges: right-closed ``(a, b]`` bins)
    or at or below it (``lt`` edges: left-closed ``[a, b)``), by a binary search of the
    cut points: the bins of ``bin_intervals`` (NaN above every cut point, -0.0 equal to
    0.0) at about a quarter of its cost over many rows, and no string made per row (a
    band name is read by position, a band score too, with no cast of the name to an
    ``Enum``)."""
    uppers = [level.upper for level in bands.levels[:-1]]
    if not uppers or not all(u is not None and u[1] == uppers[0][1] for u in uppers):  # type: ignore[index]
        return None
    if not x.meta.is_column():
        return _built_position(x, uppers, missing)  # type: ignore[arg-type]
    # a column's position is asked for by its band name, its band score and the frame's
    # position column (tens of microseconds to build each time): built once per column,
    # edges (by their texts: -0.0 is not 0.0) and missing; expressions are immutable
    memo = (x.meta.output_name(), tuple((repr(u[0]), u[1]) for u in uppers if u), missing)
    got = _POSITIONS.get(memo)
    if got is None:
        if len(_POSITIONS) >= 4096:  # a long-lived process compiling many plans
            _POSITIONS.clear()
        got = _POSITIONS[memo] = _built_position(x, uppers, missing)  # type: ignore[arg-type]
    return got


def _built_position(x: pl.Expr, uppers: list[tuple[float, bool]],
                    missing: int | None) -> pl.Expr:
    """The expression of :func:`_band_position` (edges all of one kind)."""
    value = x.cast(pl.Float64)
    cuts = [float(u[0]) for u in uppers]
    if len(cuts) <= _COMPARED_CUTS:
        # the cut points below the value counted by comparisons (a boolean sum is UInt32,
        # null for a null value; polars compares floats in total order: NaN above every
        # cut point, -0.0 equal to 0.0, as the binary search)
        found: pl.Expr | None = None
        for cut in cuts:
            at = typed_lit(cut, pl.Float64)
            below = value > at if uppers[0][1] else value >= at
            found = below if found is None else found + below
        assert found is not None
        if len(cuts) == 1:
            found = found.cast(pl.UInt32)
        return found if missing is None else found.fill_null(typed_lit(missing, pl.UInt32))
    breaks = _table(cuts, pl.Float64)
    searched = breaks.search_sorted(value, side="left" if uppers[0][1] else "right")
    position = pl.when(value.is_not_null()).then(searched)
    return position if missing is None else position.otherwise(typed_lit(missing, pl.UInt32))


_COMPARED_CUTS = 4

_POSITIONS: dict[tuple[Any, ...], pl.Expr] = {}


def _position_column(ident: str) -> str:
    """The column of a banded indicator's band position in a roadmap frame (see
    ``RoadmapProgram._frame_bands``)."""
    return f"__bpos__{ident}"


def _table(values: list[Any], dtype: pl.DataType | type[pl.DataType]) -> pl.Expr:
    """A literal lookup table: ``_table(values, dtype).gather(index)`` reads ``values`` by
    an integer column (null where the index is null), one cheap node.

    Built once per distinct table (a Series costs tens of microseconds to build, and a
    roadmap's bands ask for the same cut points and names several times): expressions are
    immutable, so one serves every place. The key tells ``-0.0`` from ``0.0`` and ``True``
    from ``1``, which compare equal."""
    key = (tuple((type(v), repr(v)) for v in values), repr(dtype))
    got = _TABLES.get(key)
    if got is None:
        if len(_TABLES) >= 4096:  # a long-lived process compiling many plans: start again
            _TABLES.clear()
        got = _TABLES[key] = pl.lit(pl.Series(values, dtype=dtype))
    return got


_TABLES: dict[tuple[Any, ...], pl.Expr] = {}


def _band_score(band: pl.Expr, bands: Bands, missing: float, *,
                present: bool = False, value: pl.Expr | None = None,
                position: pl.Expr | None = None) -> pl.Expr:
    """The 0-100 score of a band name (the column ``band``), ``missing`` for no band
    (``present``: 1.0 for a band, ``missing`` for none), read from a literal table by the
    band's position among the levels: given the ``value`` the band is of,
    :func:`_band_position` of the value; otherwise, or when that has none, the name's
    position (an ``Enum``'s physical index; a ``replace_strict`` of the name costs several
    times more to plan and run). ``position``: that position given (a column of it, no
    band being the levels' count), not found again from ``value``."""
    scores = bands.level_scores()
    if position is None and value is not None:
        position = _band_position(value, bands, missing=len(bands.levels))
    if position is not None:
        by_level = [1.0 if present else float(scores[level.name]) for level in bands.levels]
        return _table([*by_level, missing], pl.Float64).gather(position)
    names = list(scores)
    values = [1.0 if present else float(scores[n]) for n in names]
    return _table([*values, missing], pl.Float64).gather(
        band.cast(pl.Enum(names)).to_physical().fill_null(len(names)))


def _weighted_mean(items: list[tuple[pl.Expr, pl.Expr, float]]) -> pl.Expr:
    """The weighted mean of the non-null values, summed left to right in declared order.

    Each item is (the value with null as 0, 1.0 where the value is not null else 0.0,
    the weight): band scores carry both as columns (``__bv__``/``__bp__``, computed once
    and read by every weight set), :func:`_present` makes them for other values.

    Written so that the result does not depend on which other rows are evaluated with a
    row (partition invariance, bit for bit):

    - a binary fold, not ``sum_horizontal`` (which adds in another order), in declared
      order;
    - polars divides a column by a *scalar* with a reciprocal multiply (``160 / 3`` gives
      53.33333333333334, not 53.333333333333336), and a column whose rows are all alike can
      become a scalar (``when(mask).then(1.0).otherwise(0.0)`` with an all-true mask). So the
      denominator's terms are ``value.is_not_null()`` as a float, times the weight: the
      denominator is a column exactly when the numerator is, and the division is an IEEE
      division either way.

    The values are never NaN (band scores, or means of them), so a null value adds 0 to
    both sums, and an empty mean (every value null) divides by a denominator of 0 made null
    (``replace``: one node, where ``fill_nan`` or a ``when`` would repeat the sums). A weight
    of 1 is no multiplication (``x * 1.0 == x``): each node costs time on a one-row frame.
    """
    if not items:
        return typed_lit(None, pl.Float64)
    num: pl.Expr | None = None
    den: pl.Expr | None = None
    for term, weight, w in items:
        if w != 1.0:
            term, weight = term * w, weight * w
        num = term if num is None else num + term
        den = weight if den is None else den + weight
    assert num is not None and den is not None
    return num / den.replace(0.0, None)


def _present(s: pl.Expr, w: float) -> tuple[pl.Expr, pl.Expr, float]:
    """A weighted mean's item of a nullable value (see :func:`_weighted_mean`)."""
    return s.fill_null(typed_lit(0.0, pl.Float64)), s.is_not_null().cast(pl.Float64), w


def _score_parts(r: Roadmap, weights: Weights,
                 tag: str) -> tuple[dict[str, pl.Expr], pl.Expr]:
    """One weight set (see docs/semantics.md): family scores and counts, then the total.

    Band scores are read from the ``__bv__<id>`` and ``__bp__<id>`` columns; the total reads
    the family columns of the same set (``<tag>__score_<family>``) or, without family
    weights, the band scores.
    """
    banded = {ind.id: ind for ind in r.indicators if ind.bands is not None}
    if weights.indicators:
        chosen = [(i, w) for i, w in weights.indicators.items() if w > 0 and i in banded]
    else:
        chosen = [(i, 1.0) for i in banded]
    if weights.families:
        chosen = [(i, w) for i, w in chosen if weights.families.get(banded[i].family, 0) > 0]
    scored: dict[str, list[tuple[pl.Expr, pl.Expr, float]]] = {f: [] for f in FAMILIES}
    flat: list[tuple[pl.Expr, pl.Expr, float]] = []
    missing: list[pl.Expr] = []
    present: list[pl.Expr] = []
    for ident, w in chosen:
        item = (pl.col(f"__bv__{ident}"), pl.col(f"__bp__{ident}"), float(w))
        scored[banded[ident].family].append(item)
        flat.append(item)
        missing.append(pl.col(ident).is_null())
        present.append(pl.col(f"__bp__{ident}"))
    out = {f"__score_{f}": _weighted_mean(scored[f]) for f in FAMILIES}
    zero = typed_lit(0, pl.Int64)
    # counts: the presences (1.0/0.0, summed exactly) and the null tests summed as they are,
    # one cast of the sum (a cast per term is a node per term to plan and run per call)
    out["__scored"] = (pl.sum_horizontal(present).cast(pl.Int64) if present else zero)
    out["__missing"] = (pl.sum_horizontal(missing).cast(pl.Int64) if missing else zero)
    if weights.families:
        total = _weighted_mean([_present(pl.col(f"{tag}__score_{f}"),
                                         float(weights.families.get(f, 0.0)))  # type: ignore[call-overload]
                                for f in FAMILIES if weights.families.get(f, 0) > 0])  # type: ignore[call-overload]
    else:
        total = _weighted_mean(flat)
    return out, total


def roadmap_time_needs(a: Analysis) -> tuple[set[tuple[str, int]], bool]:
    """The lags (``prev``/``change``: (name, days)) the actions of a roadmap read (in a
    condition or a ``do`` text), and whether they read ``days_in_stage``."""
    lags: set[tuple[str, int]] = set()
    age = False
    for path, parsed in a.expressions.items():
        if path.endswith((".when", ".resolved_when")) and ".actions[" in f".{path}":
            found, uses_age = time_references(parsed.tree)
            lags |= found
            age = age or uses_age
    for pieces in a.templates.values():
        for p in pieces:
            if isinstance(p, str):
                continue
            if p.parsed is None:
                age = age or p.name == "days_in_stage"
                continue
            found, uses_age = time_references(p.parsed.tree)  # {prev(score, 14)} in a text
            lags |= found
            age = age or uses_age
    return lags, age


def program_for(plan: Plan, index: int, time_unit: str) -> RoadmapProgram:
    """The program of roadmap ``index`` of a plan, built on first use and kept in the plan."""
    return plan.cached(("program", index, time_unit),
                       lambda: RoadmapProgram(plan, index, time_unit))


def end_columns(as_of: pl.Expr, time_unit: str, time_zone: str | None) -> list[pl.Expr]:
    """``__end_naive`` and ``__end`` from a Date column of evaluation dates (end of day)."""
    naive = as_of.cast(pl.Datetime(time_unit)) + pl.duration(days=1)  # type: ignore[arg-type]
    zoned = zoned_wall_time(naive, time_zone)
    return [naive.alias("__end_naive"), zoned.alias("__end")]

