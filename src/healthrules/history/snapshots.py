"""Evaluate a plan at many dates at once: history() and the grid engine behind it.

A *grid* is a set of (account, date) pairs, one row each. The aggregates of every pair come
from :class:`~healthrules.history.aggregation.IncrementalAggregator` (one pass over the events);
then the evaluator's own per-roadmap assembly runs once over all rows of a chunk of dates,
with ``as_of`` and the window end read from columns instead of literals. The frames are the
frames of :func:`healthrules.evaluate`, each with an ``as_of`` column first, and the rows of
one date equal what ``evaluate`` returns for that date.

Change-over-time expressions (``prev``, ``change``, ``stuck``, ``days_in_stage``) need values
at other dates. When a roadmap uses them, a first pass evaluates the dates they read (each
date minus each lag, and the snapshot dates for the stage age); the second pass gets those
values as extra columns (docs/time.md).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import polars as pl

from healthrules.compiler import CompiledRoadmap, Plan
from healthrules.engine import (
    Evaluator,
    Events,
    empty_actions,
    narrow,
    prepare,
    roadmap_time_needs,
    unrouted_stages,
)
from healthrules.engine.assemble import ORDER_STEP, end_columns
from healthrules.engine.frames import ROUTE, collect_all
from healthrules.errors import InputDataError
from healthrules.evaluation import Evaluation
from healthrules.expressions import lag_column
from healthrules.history.aggregation import IncrementalAggregator, aggregate_attributes
from healthrules.inputs import (
    VALID_FROM,
    VALID_TO,
    clock_for,
    hierarchy_issues,
    is_dated,
    valid_at,
)
from healthrules.query_flags import OPTIMISED
from healthrules.roadmap import Pack, Roadmap
from healthrules.sources import FrameInput

if TYPE_CHECKING:
    from healthrules.history.lifecycle import Lifecycle

__all__ = ["ONE_SNAPSHOT", "History", "attribute_source", "history", "parse_every"]

ONE_SNAPSHOT = (
    "attributes: one snapshot for every date (no validity columns in data.accounts): a later "
    "plan, stage or contract date is seen in the past")
"""What :attr:`History.attribute_source` says when the accounts are not dated."""


def attribute_source(plan: Plan, dated: bool) -> str:
    """Where the attributes of each date came from, in one sentence."""
    if not dated:
        return ONE_SNAPSHOT
    columns = plan.roadmaps[0].roadmap.data.accounts.validity
    how = (f"valid_from {columns[0]!r} / valid_to {columns[1]!r}" if len(columns) == 2
           else f"snapshot column {columns[0]!r}")
    return (f"attributes: as of each date ({how}); an account without a row valid then is "
            "not evaluated")

HK = "__hk"
ACC = "__acc"
AS_OF = "__as_of"
ROW = "__row"
MAX_GRID_ROWS = 1_000_000
"""Rows (accounts x dates) assembled at once, over every chunk being assembled (larger grids
are split into chunks of at most ``MAX_GRID_ROWS // GRID_WORKERS`` rows)."""
GRID_WORKERS = 2
"""Chunks of a grid assembled at the same time (threads: polars releases the GIL)."""

Signals = Callable[[Evaluator, int, CompiledRoadmap, pl.DataFrame, str], pl.DataFrame | None]
"""Called with the evaluator, the roadmap index, the roadmap, its frame and the row key."""


def parse_every(every: str | int | dt.timedelta) -> int:
    """Turn ``"1w"``, ``"7d"``, ``7`` or ``timedelta(days=7)`` into a number of days.

    Raises
    ------
    ValueError
        If the step is not a whole, positive number of days or weeks.
    """
    if isinstance(every, dt.timedelta):
        if every.days < 1 or every != dt.timedelta(days=every.days):
            raise ValueError(f"every must be a whole number of days, got {every}")
        return every.days
    if isinstance(every, int) and not isinstance(every, bool):
        if every < 1:
            raise ValueError(f"every must be at least one day, got {every}")
        return every
    if isinstance(every, str):
        m = re.fullmatch(r"\s*(\d+)\s*([dw])\s*", every)
        if m and int(m.group(1)) >= 1:
            return int(m.group(1)) * (7 if m.group(2) == "w" else 1)
    raise ValueError(f"every must be like '1d', '7d' or '1w', got {every!r}")


def _as_date(value: Any, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        raise ValueError(f"{what} must be a date (history evaluates whole days), got {value!r}")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{what} must be a date or a YYYY-MM-DD string, got {value!r}")


def date_range(start: Any, end: Any, every: str | int | dt.timedelta) -> list[dt.date]:
    """The dates ``start, start + every, ...`` up to and including ``end``."""
    first, last = _as_date(start, "start"), _as_date(end, "end")
    if last < first:
        raise ValueError(f"end {last} is before start {first}")
    step = parse_every(every)
    n = (last - first).days // step
    return [first + dt.timedelta(days=step * k) for k in range(n + 1)]


# ---------------------------------------------------------------------- what history reads


@dataclass(frozen=True)
class TimeNeeds:
    """The change-over-time values a plan's actions read."""

    lags: frozenset[tuple[str, int]] = frozenset()
    stage_age: bool = False

    @property
    def any(self) -> bool:
        """True when some action reads history."""
        return bool(self.lags) or self.stage_age


def time_needs(plan: Plan) -> TimeNeeds:
    """Collect the lags and stage-age reads of every action of every roadmap."""
    lags: set[tuple[str, int]] = set()
    age = False
    for cr in plan.roadmaps:
        found, uses = roadmap_time_needs(cr.analysis)
        lags |= found
        age = age or uses
    return TimeNeeds(frozenset(lags), age)


# ---------------------------------------------------------------------- fired actions


class FiredActions:
    """The actions that fired in a grid, with texts and evidence rendered on demand.

    Rendering (numbers, dates and bands as text, evidence lists) costs more than deciding
    what fired, and most readers of a history need few texts: the lifecycle shows the text
    of an action where it opens or changes, the backtest only counts. This holds the rows
    where some action fired with the values their texts and evidence read, unrendered;
    :attr:`index` lists every fired (account, date, action) without rendering anything,
    and :meth:`render` renders the texts and evidence of the chosen ones only (all of them
    for :attr:`History.actions`).

    Parameters
    ----------
    evaluator
        The evaluator whose roadmap programs took the rows.
    keys
        ``as_of`` and the account key of each grid row, in ``__hk`` order.
    rows
        Per roadmap index, the fired rows (``outputs(render=False)``), keyed by ``__hk``.
    """

    def __init__(self, evaluator: Evaluator, keys: pl.DataFrame,
                 rows: dict[int, list[pl.DataFrame]]) -> None:
        self._evaluator = evaluator
        self._keys = keys
        self._rows = {i: pl.concat(parts, how="vertical", rechunk=False)
                      for i, parts in rows.items() if parts}
        self.rendered_rows = 0
        """Rows rendered so far (one row: one account at one date, whatever the number of
        its actions): what :meth:`render` cost."""

    @cached_property
    def index(self) -> pl.DataFrame:
        """Every fired action, in the order of :attr:`History.actions`, with its columns
        except ``text`` and ``evidence``, plus ``__hk`` (the grid row) and ``__order`` (the
        roadmap and action), which identify it for :meth:`render`."""
        programs = self._evaluator.programs
        lazies = [programs[i].fired(rows, HK) for i, rows in self._rows.items()]
        return self._finish(collect_all(lazies, self._height())).drop(
            "text", "evidence", strict=False)

    def render(self, chosen: pl.DataFrame | None = None) -> pl.DataFrame:
        """The actions frame of :attr:`History.actions` (texts and evidence rendered).

        Parameters
        ----------
        chosen
            Rows of :attr:`index` (its ``__hk`` and ``__order`` columns are read): render
            only these actions. None renders every fired action and leaves out ``__hk``
            and ``__order``.
        """
        programs = self._evaluator.programs
        todo: list[tuple[int, pl.DataFrame]] = []
        for i, rows in self._rows.items():
            if chosen is not None:
                rows = self._only(i, rows, chosen)
            if rows.height:
                todo.append((i, rows))
        n = sum(r.height for _, r in todo)
        self.rendered_rows += n
        rendered = collect_all([programs[i].render(r.lazy()) for i, r in todo], n)
        frames = collect_all([programs[i].actions(r, HK) for (i, _), r in
                              zip(todo, rendered, strict=True)], n)
        out = self._finish(frames)
        return out if chosen is not None else out.drop(HK, "__order")

    def _only(self, i: int, rows: pl.DataFrame, chosen: pl.DataFrame) -> pl.DataFrame:
        """The fired rows of roadmap ``i`` with an action in ``chosen``, each flag kept
        only for the chosen (row, action) pairs."""
        lo = i * ORDER_STEP
        mine = chosen.filter(pl.col("__order").is_between(lo, lo + ORDER_STEP - 1))
        flags = [c for c in rows.columns if c.startswith("__fired_")]
        keep = []
        for c in flags:
            k = int(c[len("__fired_"):])
            hks = mine.filter(pl.col("__order") == lo + k)[HK]
            keep.append((pl.col(c) & pl.col(HK).is_in(hks.implode())).alias(c))
        rows = rows.with_columns(keep)
        return rows.filter(pl.any_horizontal(flags))

    def _height(self) -> int:
        return sum(r.height for r in self._rows.values())

    def _finish(self, frames: list[pl.DataFrame]) -> pl.DataFrame:
        if not frames:
            key = self._keys.columns[1]
            empty = empty_actions(key, self._keys.schema[key])
            return pl.DataFrame(schema={"as_of": pl.Date, **empty.schema, HK: pl.Int64,
                                        "__order": pl.Int64})
        frame = pl.concat(frames, how="vertical_relaxed").sort(HK, "__rank", "__order")
        head = self._keys[frame[HK]]
        return pl.concat([head, frame.drop(HK, "__rank", "__order"),
                          frame.select(HK, "__order")], how="horizontal")


# ---------------------------------------------------------------------- the grid engine


@dataclass
class GridFrames:
    """The result frames of a grid, keyed by ``__hk`` (before the keys are put back)."""

    indicators: list[pl.DataFrame] = field(default_factory=list)
    stages: list[pl.DataFrame] = field(default_factory=list)
    scores: list[pl.DataFrame] = field(default_factory=list)
    counts: list[pl.DataFrame] = field(default_factory=list)
    fired: dict[int, list[pl.DataFrame]] = field(default_factory=dict)
    signals: list[pl.DataFrame] = field(default_factory=list)
    extras: list[pl.DataFrame] = field(default_factory=list)

    def extend(self, other: GridFrames) -> None:
        """Append the frames of a later chunk."""
        self.indicators += other.indicators
        self.stages += other.stages
        self.scores += other.scores
        self.counts += other.counts
        for i, rows in other.fired.items():
            self.fired.setdefault(i, []).extend(rows)
        self.signals += other.signals
        self.extras += other.extras


class Engine:
    """Evaluate one plan over grids of (account, date) pairs, reading the events once.

    Parameters
    ----------
    plan
        The compiled plan.
    events
        The events, lazily: one frame per event source (a single frame: the default
        source). Each source is read once, by its own aggregator.
    accounts
        The checked accounts frame (sorted here by key). Dated accounts (validity columns
        declared) hold one row per account and version: every (account, date) pair reads
        the row valid at its date (:meth:`existing`).
    dates
        Every date any grid will ask for (they fix the range of events read).
    """

    def __init__(self, plan: Plan, events: pl.LazyFrame | Mapping[str, pl.LazyFrame],
                 accounts: pl.DataFrame, dates: Sequence[dt.date]) -> None:
        self.plan = plan
        self.events: dict[str, pl.LazyFrame] = (
            dict(events) if isinstance(events, Mapping) else {plan.default_source: events})
        self.key = plan.account_key
        self.dated = is_dated(accounts)
        self.accounts = accounts.sort(
            [self.key, VALID_FROM] if self.dated else [self.key], nulls_last=True)
        self.schema = self.events[plan.default_source].collect_schema()
        clock_for(plan, self.schema, min(dates))  # refuses a first date out of range
        self.clock = clock_for(plan, self.schema, max(dates))
        units = self.accounts
        if self.dated:
            # the aggregators' unit: an account with one set of values of the attributes
            # the aggregates read (filters, anchors); most accounts have one, whatever
            # else of them changes, and an account's events are aggregated once per unit
            read = aggregate_attributes(plan)
            units = self.accounts.select(self.key, *read).unique(maintain_order=True)
            rows = self.accounts.with_row_index(ROW).join(
                units.with_row_index(ACC), on=[self.key, *read], how="left",
                nulls_equal=True, maintain_order="left")
            self.rows = rows.select(self.key, VALID_FROM, VALID_TO, ROW, ACC).sort(VALID_FROM)
            self.row_attributes = rows.select(ROW, *[
                c for c in self.accounts.columns if c not in (self.key, VALID_FROM, VALID_TO)])
        self.aggregators = {
            name: IncrementalAggregator(plan, units, self.clock, source=name)
            for name in plan.sources}
        self.diagnostics: dict[str, int] = {}
        for name, aggregator in self.aggregators.items():
            for k, v in aggregator.prepare(self.events[name], dates).items():
                self.diagnostics[k] = self.diagnostics.get(k, 0) + v
                if plan.named_sources:
                    self.diagnostics[f"{name}:{k}"] = v
        self.index = (self.accounts.select(self.key).unique(maintain_order=True)
                      .with_row_index(ACC))
        self.absent: dict[dt.date, tuple[int, int]] = {}
        """Per date asked for: accounts that had not started and accounts that had ended
        (dated accounts only)."""
        self.evaluator = Evaluator(plan, self.clock.time_unit)

    def pairs(self, dates: Sequence[dt.date]) -> pl.DataFrame:
        """Every account at every date (that exists then), sorted by date then account."""
        d = pl.DataFrame({AS_OF: sorted(set(dates))}, schema={AS_OF: pl.Date})
        return self.existing(d.join(self.index.select(self.key), how="cross"))

    def existing(self, wanted: pl.DataFrame) -> pl.DataFrame:
        """The (date, account) pairs of ``wanted`` (columns ``__as_of`` and the key) whose
        account exists at the date, with ``__acc`` (and ``__row``, the dated row valid then,
        for dated accounts); sorted by date then account.

        Dated accounts: one as-of join over every pair finds the row that started last
        before the date's evaluation instant; the pair is kept when that row has not ended
        by then. The pairs dropped are counted per date in :attr:`absent`.
        """
        key = self.key
        if not self.dated:
            return wanted.join(self.index, on=key).sort(AS_OF, ACC).select(AS_OF, key, ACC)
        end = "__end_at"
        cand = wanted.select(AS_OF, key).with_columns(
            (pl.col(AS_OF).cast(pl.Datetime("us")) + pl.duration(days=1)).alias(end)
        ).sort(end)
        found = cand.join_asof(self.rows, left_on=end, right_on=VALID_FROM, by=key,
                               strategy="backward", allow_exact_matches=False,
                               check_sortedness=False)
        alive = pl.col(VALID_TO).is_null() | (pl.col(VALID_TO) >= pl.col(end))
        tally = found.group_by(AS_OF).agg(
            pl.col(VALID_FROM).is_null().sum().alias("__not_started"),
            (pl.col(VALID_FROM).is_not_null() & ~alive).sum().alias("__ended"))
        self.absent.update(zip(tally[AS_OF].to_list(), zip(
            tally["__not_started"].cast(pl.Int64).to_list(),
            tally["__ended"].cast(pl.Int64).to_list(), strict=True), strict=True))
        return (found.filter(pl.col(VALID_FROM).is_not_null() & alive)
                .join(self.index.select(key, pl.col(ACC).alias("__order")), on=key)
                .sort(AS_OF, "__order").select(AS_OF, key, ACC, ROW))

    def evaluate(self, pairs: pl.DataFrame, *, overlay: pl.DataFrame | None = None,
                 signals: Signals | None = None,
                 dates: Sequence[dt.date] | None = None) -> dict[str, Any]:
        """Evaluate (account, date) pairs.

        Parameters
        ----------
        pairs
            Columns ``__as_of`` (Date), the account key and ``__acc``; sorted by date, then
            account.
        overlay
            Extra per-(account, date) columns joined on ``(key, __as_of)``: lags, stage
            history, pinned values (see :meth:`healthrules.engine.RoadmapProgram.frame`).
        signals
            Called with every roadmap frame; what it returns is collected (the lifecycle's
            per-action conditions). Chunks of pairs are assembled two at a time, in
            threads, so it may be called from two threads at once.
        dates
            The dates of the ``conditions`` frame (default: those of ``pairs``): a date at
            which no account exists has its rows too, of zeros, as ``evaluate`` gives.

        Returns
        -------
        dict
            Frames ``indicators``, ``stages``, ``scores``, ``conditions``, ``signals`` and
            ``extras`` (``as_of`` and the key first), ``actions`` (a :class:`FiredActions`:
            rendered on demand) and ``unrouted`` (per date).
        """
        pairs = pairs.with_row_index(HK).with_columns(pl.col(HK).cast(pl.Int64))
        out = GridFrames()
        parent = self.plan.parent
        if parent is not None and self.dated:
            self._check_hierarchy(pairs, parent)
        # no pair at all (dated accounts none of which exists at these dates) is one empty
        # chunk: the frames then have evaluate's columns (the lags read them), not the keys
        chunks = self._chunks(pairs) or [(0, 0)]
        if len(chunks) == 1:
            self._chunk(pairs.slice(*chunks[0]), overlay, signals, out)
        else:
            # two chunks at a time, each in a thread of its own: polars releases the GIL while
            # it collects, and a chunk's roadmap and output frames run mostly on one core
            # (long chains of dependent steps), so the second core takes the other chunk
            with ThreadPoolExecutor(max_workers=GRID_WORKERS) as pool:
                parts = list(pool.map(
                    lambda c: self._chunk(pairs.slice(*c), overlay, signals, GridFrames()),
                    chunks))
            for part in parts:
                out.extend(part)
        keys = pairs.select(pl.col(AS_OF).alias("as_of"), self.key)

        def finish(frames: list[pl.DataFrame], sort: list[str] | None = None) -> pl.DataFrame:
            if not frames:
                frame = pl.DataFrame({HK: []}, schema={HK: pl.Int64})
            elif all(f.schema == frames[0].schema for f in frames):
                # the row key taken apart from the other columns, chunk by chunk: dropping
                # it from the concatenated frame copies every column when the chunks'
                # columns are split differently (a column that is constant in one chunk is
                # one piece there): about 0.25 CPU s for the indicators at 5M events
                hk = pl.concat([f.get_column(HK) for f in frames], rechunk=False)
                rest = pl.concat([f.drop(HK) for f in frames], how="vertical", rechunk=False)
                if sort is None and hk.is_sorted():
                    return pl.concat([keys_of(keys, hk), rest], how="horizontal")
                frame = pl.concat([hk.to_frame(), rest], how="horizontal")
            else:  # the roadmaps of a pack have other indicator columns
                frame = pl.concat(frames, how="diagonal_relaxed")
            if sort is not None:
                frame = frame.sort(sort)
            elif not frame[HK].is_sorted():
                frame = frame.sort(HK)
            return pl.concat([keys_of(keys, frame[HK]), frame.drop(HK)], how="horizontal")

        actions = FiredActions(self.evaluator, keys, out.fired)
        days = (pl.Series(AS_OF, sorted(set(dates)), dtype=pl.Date) if dates is not None
                else pairs[AS_OF].unique().sort())
        conditions = self._conditions(out.counts, days)
        stages = finish(out.stages) if out.stages else keys.clear()
        unrouted = (stages.filter(pl.col("roadmap").is_null()).group_by("as_of").len()
                    if out.stages else pl.DataFrame())
        return {
            "indicators": finish(out.indicators) if out.indicators else keys.clear(),
            "stages": stages,
            "scores": finish(out.scores) if out.scores else keys.clear(),
            "actions": actions,
            "conditions": conditions,
            "signals": finish(out.signals) if out.signals else None,
            "extras": finish(out.extras) if out.extras else None,
            "unrouted": dict(unrouted.rows()) if unrouted.height else {},
        }

    def _chunks(self, pairs: pl.DataFrame) -> list[tuple[int, int]]:
        """(offset, length) of the chunks of ``pairs`` evaluated one after the other: at
        most ``MAX_GRID_ROWS`` rows each; with a hierarchy, whole dates (roll-ups read every
        child at the same date; pairs are sorted by date, then account), so a date with more
        pairs than that is a chunk of its own."""
        most = max(1, MAX_GRID_ROWS // GRID_WORKERS)
        if self.plan.parent is None:
            # chunks of equal size, as many as the workers (or a multiple): none waits alone
            k = -(-pairs.height // most)
            k = -(-k // GRID_WORKERS) * GRID_WORKERS if k > 1 else 1
            size = max(1, -(-pairs.height // k))
            return [(lo, min(size, pairs.height - lo)) for lo in range(0, pairs.height, size)]
        per_date = pairs.group_by(AS_OF, maintain_order=True).len()["len"].to_list()
        out: list[tuple[int, int]] = []
        lo = size = 0
        for n in per_date:
            if size and size + n > most:
                out.append((lo, size))
                lo, size = lo + size, 0
            size += n
        if size:
            out.append((lo, size))
        return out

    def _check_hierarchy(self, pairs: pl.DataFrame, parent: str) -> None:
        """Dated accounts: at every date, the parent links of the rows valid then form a
        forest of accounts that exist then (:func:`healthrules.inputs.hierarchy_issues`)."""
        links = pairs.select(AS_OF, self.key, ROW).join(
            self.row_attributes.select(ROW, parent), on=ROW, how="left")
        issues = hierarchy_issues(links.rename({AS_OF: "as_of"}), self.key, parent, by="as_of",
                                  plan=self.plan)
        if issues:
            raise InputDataError(issues)

    def _chunk(self, chunk: pl.DataFrame, overlay: pl.DataFrame | None,
               signals: Signals | None, out: GridFrames) -> GridFrames:
        plan = self.plan
        key = self.key
        pairs = chunk.select(HK, ACC, AS_OF)
        agg: pl.DataFrame | None = None
        for name, aggregator in self.aggregators.items():
            values = aggregator.values(pairs, self.events[name])
            agg = values if agg is None else agg.join(values, on=HK, how="full",
                                                      coalesce=True)
        assert agg is not None
        grid = self._attributes(chunk)
        if overlay is not None:
            grid = grid.join(overlay, on=[key, AS_OF], how="left", maintain_order="left")
        # roll-ups group the rows by their parent's key: the key stays (see engine/rollup.py)
        grid = grid.drop(*([] if plan.parent is not None else [key]), ACC,
                         *([ROW] if self.dated else []))
        ev = self.evaluator
        routed = ev.route(grid.lazy()).collect(optimizations=OPTIMISED)
        frames = grid_frames(ev, routed, agg)
        outputs = ev.outputs(frames, HK, by=AS_OF, render=False)
        for i, cr in enumerate(plan.roadmaps):
            frame = frames[i]
            out.indicators.append(outputs.indicators[i])
            out.stages.append(outputs.stages[i])
            out.scores.append(outputs.scores[i])
            counts, fired = outputs.counts[i], outputs.fired_rows[i]
            if counts is not None:
                out.counts.append(counts.with_columns(pl.lit(i, pl.Int64).alias(
                    "__roadmap_index")))
            if fired is not None and fired.height:
                out.fired.setdefault(i, []).append(fired)
            if signals is not None:
                got = signals(ev, i, cr, frame, HK)
                if got is not None:
                    out.signals.append(got)
            extra = [c for c in frame.columns if c.startswith("__computed__")]
            if extra:
                out.extras.append(narrow(frame, HK, "roadmap", *extra))
        unrouted = routed.filter(pl.col("__route").is_null())
        if unrouted.height:
            out.stages.append(unrouted_stages(unrouted, HK))
        return out

    def _attributes(self, chunk: pl.DataFrame) -> pl.DataFrame:
        """The pairs of ``chunk`` with the attributes valid at their date and the time
        columns (``__end``, ...): what routing and the roadmap frames read."""
        if self.dated:  # the attributes of the row valid at each pair's date
            grid = chunk.join(self.row_attributes, on=ROW, how="left", maintain_order="left")
        else:
            grid = chunk.join(self.accounts, on=self.key, how="left", maintain_order="left")
        return grid.with_columns(
            end_columns(pl.col(AS_OF), self.clock.time_unit, self.clock.time_zone))

    def routes(self, pairs: pl.DataFrame) -> pl.DataFrame:
        """The roadmap each (account, date) pair of ``pairs`` is routed to: the key,
        ``__as_of`` and ``__roadmap_now`` (the roadmap's id; null for an account no roadmap
        takes). Routing reads the attributes and the date only, not the events."""
        ids = pl.DataFrame({ROUTE: range(len(self.plan.roadmaps)),
                            "__roadmap_now": [cr.id for cr in self.plan.roadmaps]},
                           schema={ROUTE: pl.Int64, "__roadmap_now": pl.String})
        routed = self.evaluator.route(self._attributes(pairs).lazy()).select(
            self.key, AS_OF, ROUTE).collect(optimizations=OPTIMISED)
        return routed.join(ids, on=ROUTE, how="left", maintain_order="left").select(
            self.key, AS_OF, "__roadmap_now")

    def _conditions(self, counts: list[pl.DataFrame], dates: pl.Series) -> pl.DataFrame:
        rows: list[dict[str, Any]] = []
        for i, cr in enumerate(self.plan.roadmaps):
            for k, (st, action) in enumerate(cr.roadmap.all_actions()):
                rows.append({"__roadmap_index": i, "__k": k, "roadmap": cr.id,
                             "stage": st.id if st else None, "action_id": action.id})
        schema = {"as_of": pl.Date, "roadmap": pl.String, "stage": pl.String,
                  "action_id": pl.String, "considered": pl.Int64, "fired": pl.Int64,
                  "unknown": pl.Int64}
        if not rows:
            return pl.DataFrame(schema=schema)
        decl = pl.DataFrame(rows, schema={"__roadmap_index": pl.Int64, "__k": pl.Int64,
                                          "roadmap": pl.String, "stage": pl.String,
                                          "action_id": pl.String})
        base = pl.DataFrame({"as_of": dates}).join(decl, how="cross")
        longs: list[pl.DataFrame] = []
        for c in counts:
            idx = c.select(pl.col(AS_OF).alias("as_of"), "__roadmap_index")
            n = (c.width - 2) // 3
            for k in range(n):
                longs.append(pl.concat([idx, c.select(
                    pl.lit(k, pl.Int64).alias("__k"),
                    pl.col(f"scope_{k}").cast(pl.Int64).alias("considered"),
                    pl.col(f"fired_{k}").cast(pl.Int64).alias("fired"),
                    pl.col(f"unknown_{k}").cast(pl.Int64).alias("unknown"))],
                    how="horizontal"))
        if longs:
            summed = pl.concat(longs).group_by("as_of", "__roadmap_index", "__k").agg(
                pl.col("considered", "fired", "unknown").sum())
            base = base.join(summed, on=["as_of", "__roadmap_index", "__k"], how="left",
                             maintain_order="left")
        else:
            base = base.with_columns(pl.lit(None, pl.Int64).alias(c)
                                     for c in ("considered", "fired", "unknown"))
        return base.with_columns(pl.col("considered", "fired", "unknown").fill_null(0)).sort(
            "as_of", "__roadmap_index", "__k").select(list(schema))


def keys_of(keys: pl.DataFrame, hk: pl.Series) -> pl.DataFrame:
    """The rows of ``keys`` (one per grid row, in ``__hk`` order) of the grid rows ``hk``:
    ``keys`` itself when ``hk`` is every row in order (a frame with a row per pair, the
    usual case), which spares gathering the account keys of a million rows."""
    n = keys.height
    if hk.len() == n and (n == 0 or (hk[0] == 0 and bool((hk.diff().drop_nulls() == 1).all()))):
        return keys
    return keys[hk]


def grid_frames(ev: Evaluator, routed: pl.DataFrame, agg: pl.DataFrame) -> list[pl.DataFrame]:
    """The roadmap frames of a grid chunk (:meth:`Evaluator.roadmap_frames`, keyed by
    ``__hk``), collected on polars' in-memory engine.

    A grid chunk is up to ``MAX_GRID_ROWS // GRID_WORKERS`` rows with a hundred columns and
    more; on such frames the in-memory engine needs about 30% less CPU than the streaming
    one (the join of the raw aggregates alone, a quarter of the CPU), measured on the B2B
    example at 5M events (docs/performance.md, History). It runs on about one core: the
    chunks run two at a time (:meth:`Engine.evaluate`). The chunk's row count is passed
    to :meth:`RoadmapProgram.frame`: from ``MANY_ROWS`` rows on, the forms for many rows.
    """
    columns = set(routed.columns)
    lazy_routed, lazy_agg = routed.lazy(), agg.lazy()
    # the row count picks the frames' forms for many rows (MANY_ROWS), as evaluate() does
    rows = routed.height
    return pl.collect_all([p.frame(lazy_routed, lazy_agg, HK, columns, rows)
                           for p in ev.programs], engine="in-memory", optimizations=OPTIMISED)


# ---------------------------------------------------------------------- the overlay


def stage_history(stages: pl.DataFrame, key: str, dates: Sequence[dt.date]) -> pl.DataFrame:
    """For each (account, date), the previous date's roadmap and stage, and since when.

    ``stages`` has ``as_of``, the key, ``roadmap`` and ``stage`` at the observation dates
    ``dates``. Returns ``key``, ``__as_of``, ``__roadmap_before``, ``__stage_before`` and
    ``__stage_since`` (the first date of the unbroken run of the previous observation). An
    account that was not observed at the date before (dated accounts: no row valid then)
    has no previous stage, as in the daily store, which forgets an account at a run where
    it does not exist.
    """
    days = sorted(set(dates))
    before = pl.DataFrame({"as_of": days[1:], "__date_before": days[:-1]},
                          schema={"as_of": pl.Date, "__date_before": pl.Date})
    s = (stages.select("as_of", key, "roadmap", "stage")
         .join(before, on="as_of", how="left").sort(key, "as_of"))
    same_acc = (pl.col(key) == pl.col(key).shift(1)) & (
        pl.col("as_of").shift(1) == pl.col("__date_before")).fill_null(False)
    changed = ~same_acc.fill_null(False) | (pl.col("roadmap") != pl.col("roadmap").shift(1)
                                            ).fill_null(True) | (
        pl.col("stage") != pl.col("stage").shift(1)).fill_null(True)
    s = s.with_columns(changed.cum_sum().alias("__run"))
    s = s.with_columns(pl.col("as_of").min().over("__run").alias("__since"))
    return s.select(
        pl.col(key), pl.col("as_of").alias(AS_OF),
        pl.when(same_acc).then(pl.col("roadmap").shift(1)).alias("__roadmap_before"),
        pl.when(same_acc).then(pl.col("stage").shift(1)).alias("__stage_before"),
        pl.when(same_acc).then(pl.col("__since").shift(1)).alias("__stage_since"),
    )


def lag_overlay(plan: Plan, first: dict[str, Any], dates: Sequence[dt.date],
                lags: frozenset[tuple[str, int]], key: str,
                routes: pl.DataFrame | None = None) -> pl.DataFrame | None:
    """Lag columns ``lag_column(x, N)`` at each (account, date) from an earlier evaluation.

    ``routes`` (a pack: :meth:`Engine.routes` at ``dates``) keeps a lagged value only where
    the account was routed to the same roadmap at the earlier date as at its own (null
    otherwise): two tracks may give an indicator id, and always ``score``, two meanings,
    and a value must not cross from one to the other (docs/time.md)."""
    if not lags:
        return None
    target = pl.DataFrame({AS_OF: sorted(set(dates))}, schema={AS_OF: pl.Date})
    out: pl.DataFrame | None = None
    ind, scores = first["indicators"], first["scores"]
    for days in sorted({d for _, d in lags}):
        names = sorted(x for x, d in lags if d == days)
        parts = []
        ind_names = [x for x in names if x != "score" and x in ind.columns]
        src = ind.select("as_of", key, *ind_names)
        if "score" in names:
            src = src.join(scores.select("as_of", key, "score"), on=["as_of", key], how="full",
                           coalesce=True)
        cols = [lag_column(x, days) for x in names if x in src.columns]
        then: list[pl.Expr] = []
        if routes is not None:
            src = src.join(first["stages"].select("as_of", key, "roadmap"),
                           on=["as_of", key], how="left")
            then = [pl.col("roadmap").alias("__roadmap_then")]
        shifted = src.select(
            (pl.col("as_of") + pl.duration(days=days)).alias(AS_OF), pl.col(key),
            *[pl.col(x).alias(lag_column(x, days)) for x in names if x in src.columns],
            *then).join(target, on=AS_OF, how="semi")
        if routes is not None:
            same = pl.col("__roadmap_then") == pl.col("__roadmap_now")  # null: not the same
            shifted = shifted.join(routes, on=[key, AS_OF], how="left").select(
                AS_OF, key, *[pl.when(same).then(pl.col(c)).alias(c) for c in cols])
        parts.append(shifted)
        for p in parts:
            out = p if out is None else out.join(p, on=[key, AS_OF], how="full", coalesce=True)
    for x, days in lags:
        col = lag_column(x, days)
        if out is not None and col not in out.columns:
            out = out.with_columns(pl.lit(None).alias(col))
    return out


def merge_overlays(key: str, *frames: pl.DataFrame | None) -> pl.DataFrame | None:
    """Full-join per-(account, date) overlay frames."""
    out: pl.DataFrame | None = None
    for f in frames:
        if f is None:
            continue
        out = f if out is None else out.join(f, on=[key, AS_OF], how="full", coalesce=True)
    return out


# ---------------------------------------------------------------------- history()


@dataclass(frozen=True)
class History:
    """The result of :func:`history`: the frames of :func:`healthrules.evaluate` at every date.

    Every frame has an ``as_of`` column first; the rows of one date are exactly those of
    ``evaluate`` at that date (change-over-time names are filled in from the other dates).

    Attributes
    ----------
    dates
        The snapshot dates, ascending.
    indicators, stages, scores, actions, conditions
        As in :class:`~healthrules.Evaluation`, for every date. The texts and evidence of
        ``actions`` are rendered when it is first read (:class:`FiredActions`).
    diagnostics
        Counts of events read (over the whole range), dropped and ignored,
        ``history_fallback_indicators`` (indicators computed with one query per date), and
        ``attributes_one_snapshot`` (1 when the accounts frame has no validity columns: every
        date read today's attributes). With dated accounts, ``account_dates_not_started`` and
        ``account_dates_ended``: (account, date) pairs not evaluated, summed over the dates.
    attribute_source
        Where each date's attributes came from, in words (:data:`ONE_SNAPSHOT` for a plain
        accounts frame).
    """

    plan: Plan
    account_key: str
    dates: tuple[dt.date, ...]
    indicators: pl.DataFrame
    stages: pl.DataFrame
    scores: pl.DataFrame
    fired: FiredActions = field(repr=False)
    conditions: pl.DataFrame
    diagnostics: dict[str, int]
    attributes: pl.DataFrame = field(repr=False)
    signals: pl.DataFrame | None = field(default=None, repr=False)
    unrouted: dict[dt.date, int] = field(default_factory=dict, repr=False)
    attribute_source: str = field(default=ONE_SNAPSHOT, repr=False)
    absent: dict[dt.date, tuple[int, int]] = field(default_factory=dict, repr=False)
    time_overlay: pl.DataFrame | None = field(default=None, repr=False)
    """The lags and stage history the actions read (:func:`evaluate_dates`); ``at`` gives
    its date's to ``Evaluation.explain`` (:func:`time_values`)."""

    @cached_property
    def actions(self) -> pl.DataFrame:
        """The fired actions of every date, with texts and evidence (rendered on first
        read)."""
        return self.fired.render()

    @property
    def frames(self) -> dict[str, pl.DataFrame]:
        """The frames by name."""
        return {"indicators": self.indicators, "stages": self.stages, "scores": self.scores,
                "actions": self.actions, "conditions": self.conditions}

    def at(self, as_of: dt.date | str) -> Evaluation:
        """The evaluation of one snapshot date (an :class:`~healthrules.Evaluation`).

        Raises
        ------
        KeyError
            If ``as_of`` is not one of :attr:`dates`.
        """
        day = _as_date(as_of, "as_of")
        if day not in self.dates:
            raise KeyError(f"{day} is not a snapshot date of this history")

        def pick(frame: pl.DataFrame) -> pl.DataFrame:
            return frame.filter(pl.col("as_of") == day).drop("as_of")

        stages = pick(self.stages)
        if "actions" in self.__dict__:
            actions = pick(self.actions)
        else:  # render that date only
            chosen = self.fired.index.filter(pl.col("as_of") == day)
            actions = self.fired.render(chosen).drop("as_of", HK, "__order")
        diagnostics = dict(self.diagnostics)
        diagnostics["accounts"] = stages.height
        diagnostics["accounts_unrouted"] = self.unrouted.get(day, 0)
        attributes = self.attributes
        if is_dated(attributes):
            not_started, ended = self.absent.get(day, (0, 0))
            diagnostics["accounts_not_started"] = not_started
            diagnostics["accounts_ended"] = ended
            for name in ("account_dates_not_started", "account_dates_ended"):
                diagnostics.pop(name, None)
            attributes = valid_rows(attributes, day)
        return Evaluation(
            plan=self.plan, as_of=day, account_key=self.account_key,
            indicators=pick(self.indicators), stages=stages, scores=pick(self.scores),
            actions=actions, conditions=pick(self.conditions),
            diagnostics=diagnostics, attributes=attributes,
            time_values=self._time_values(day))

    def _time_values(self, day: dt.date) -> pl.DataFrame | None:
        needs = time_needs(self.plan)
        if not needs.any:
            return None
        on_day = pl.col("as_of") == day
        overlay = (None if self.time_overlay is None
                   else self.time_overlay.filter(pl.col(AS_OF) == day))
        return time_values(needs, self.account_key, self.stages.filter(on_day),
                           overlay).drop("as_of")

    def __iter__(self) -> Iterator[Evaluation]:
        return (self.at(d) for d in self.dates)

    @cached_property
    def lifecycle(self) -> Lifecycle:
        """The action lifecycle over the snapshots (opened, open, resolved, escalated).

        Computed on first access: the transitions of every (account, action) from one
        snapshot to the next, with ``for``, ``cooldown``, hysteresis and escalation
        (see :mod:`healthrules.history.lifecycle`).
        """
        from healthrules.history.lifecycle import replay

        return replay(self)

    def score_series(self) -> pl.DataFrame:
        """One row per account and date: ``as_of``, key, roadmap, stage, score, score band."""
        return self.scores.select("as_of", self.account_key, "roadmap", "stage", "score",
                                  "score_band")

    def __repr__(self) -> str:
        span = f"{self.dates[0]}..{self.dates[-1]}" if self.dates else "no dates"
        accounts = self.attributes[self.account_key].n_unique() if self.attributes.width else 0
        return (f"History({span}, snapshots={len(self.dates)}, "
                f"accounts={accounts}, actions={self.fired.index.height})")


def valid_rows(accounts: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """The rows of a checked dated accounts frame valid at the end of ``day``, without the
    validity columns."""
    end = pl.lit(dt.datetime.combine(day + dt.timedelta(days=1), dt.time()), pl.Datetime("us"))
    return accounts.filter(valid_at(end)).drop(VALID_FROM, VALID_TO)


def history_diagnostics(engine: Engine, dates: Sequence[dt.date]) -> dict[str, int]:
    """The diagnostics of a history at ``dates``: the engine's counts and where the
    attributes came from."""
    out = dict(engine.diagnostics)
    out["attributes_one_snapshot"] = 0 if engine.dated else 1
    if engine.dated:
        absent = [engine.absent.get(d, (0, 0)) for d in set(dates)]
        out["account_dates_not_started"] = sum(a for a, _ in absent)
        out["account_dates_ended"] = sum(b for _, b in absent)
    return out


def history_of(plan: Plan, engine: Engine, dates: Sequence[dt.date],
               result: dict[str, Any]) -> History:
    """The :class:`History` of ``dates`` from the frames :func:`evaluate_dates` returned."""
    return History(
        plan=plan, account_key=plan.account_key, dates=tuple(dates),
        indicators=result["indicators"], stages=result["stages"], scores=result["scores"],
        fired=result["actions"], conditions=result["conditions"],
        diagnostics=history_diagnostics(engine, dates), attributes=engine.accounts,
        signals=result["signals"], unrouted=result["unrouted"],
        attribute_source=attribute_source(plan, engine.dated),
        absent={d: engine.absent[d] for d in dates if d in engine.absent},
        time_overlay=result.get("time_overlay"))


def prepare_inputs(source: Roadmap | Pack | Plan, events: Any, accounts: Any,
                   last: dt.date, first: dt.date | None = None,
                   ) -> tuple[Plan, dict[str, pl.LazyFrame], pl.DataFrame]:
    """Compile, and check the frames against the data contract (every problem at once);
    the events come back as one lazy frame per source.

    ``first`` is the earliest date evaluated (None: not known, every event before
    ``last`` is read); the lags of the plan's actions reach further back, and a source
    outside polars reads only from there (:func:`healthrules.engine.evaluator.prepare`).
    """
    if first is not None:
        from healthrules.compiler import compile

        plan = compile(source)
        lags = [n for _, n in time_needs(plan).lags]
        first = first - dt.timedelta(days=max(lags, default=0))
        source = plan
    plan, _, ev_lf, acc_df = prepare(source, events, accounts, last, first=first)
    return plan, ev_lf, acc_df


def evaluate_dates(plan: Plan, events: pl.LazyFrame | Mapping[str, pl.LazyFrame],
                   accounts: pl.DataFrame,
                   dates: Sequence[dt.date], *, extra_dates: Sequence[dt.date] = (),
                   overlay: Callable[[Sequence[dt.date]], pl.DataFrame | None] | None = None,
                   signals: Signals | None = None,
                   stage_before: pl.DataFrame | None = None,
                   engine: Engine | None = None) -> tuple[Engine, dict[str, Any]]:
    """Evaluate every account at ``dates``, with change over time filled in.

    Parameters
    ----------
    plan, events, accounts
        The plan, the events (lazy; one frame per event source) and the checked accounts.
    dates
        The dates to return.
    extra_dates
        More dates the events must cover (e.g. the renewal dates of a backtest).
    overlay
        Given a list of dates, returns per-(account, date) columns to add (pins).
    signals
        Collects per-action conditions (see :meth:`Engine.evaluate`).
    stage_before
        Stage history from outside (the state store): ``key``, ``__as_of``,
        ``__roadmap_before``, ``__stage_before``, ``__stage_since``. Without it, the stage age
        counts from the first of ``dates``.
    engine
        An engine to reuse (its events must cover the dates).
    """
    needs = time_needs(plan)
    key = plan.account_key
    snap = sorted(set(dates))
    lag_dates = sorted({d - dt.timedelta(days=n) for d in snap for _, n in needs.lags})
    if engine is None:
        engine = Engine(plan, events, accounts, sorted({*snap, *lag_dates, *extra_dates}))
    pins = overlay
    extra: pl.DataFrame | None = None
    if needs.any:
        first_dates = sorted(set(lag_dates) | (set(snap) if needs.stage_age and
                                                stage_before is None else set()))
        lagged: pl.DataFrame | None = None
        first: dict[str, Any] | None = None
        if first_dates:
            first_overlay = pins(first_dates) if pins is not None else None
            first = engine.evaluate(engine.pairs(first_dates), overlay=first_overlay)
            # a pack: a lag reads the earlier date in the same roadmap only (docs/time.md)
            routes = (engine.routes(engine.pairs(snap)) if len(plan.roadmaps) > 1 and
                      needs.lags else None)
            lagged = lag_overlay(plan, first, snap, needs.lags, key, routes)
        ages: pl.DataFrame | None = stage_before
        if needs.stage_age and stage_before is None and first is not None:
            # the stage is observed at the snapshot dates only, as the daily job observes it
            # at its runs: a lag date another action reads is no observation (docs/time.md)
            stages = first["stages"]
            ages = stage_history(stages.filter(pl.col("as_of").is_in(snap)), key, snap)
        extra = merge_overlays(key, lagged, ages)
    final_overlay = merge_overlays(key, pins(snap) if pins is not None else None, extra)
    result = engine.evaluate(engine.pairs(snap), overlay=final_overlay, signals=signals,
                             dates=snap)
    if needs.any:  # (Evaluation.explain reads them: see time_values)
        result["time_overlay"] = final_overlay
    return engine, result


def time_values(needs: TimeNeeds, key: str, stages: pl.DataFrame,
                overlay: pl.DataFrame | None) -> pl.DataFrame:
    """The change-over-time values the actions read at each (account, date) of ``stages``:
    the lag columns (``lag_column(x, N)``) as the overlay gave them and ``days_in_stage``
    as the roadmap frames compute it (:class:`healthrules.engine.RoadmapProgram`), with
    ``as_of``, the key and ``roadmap``. ``Evaluation.explain`` reads them: its scalar
    evaluator otherwise knows no past, and traced an action that fired in a history as
    unknown."""
    lags = sorted({lag_column(x, n) for x, n in needs.lags})
    ages = ["__roadmap_before", "__stage_before", "__stage_since"]
    out = stages.select("as_of", key, "roadmap", "stage")
    if overlay is not None:
        have = [c for c in (*lags, *ages) if c in overlay.columns]
        out = out.join(overlay.select(pl.col(AS_OF).alias("as_of"), key, *have),
                       on=["as_of", key], how="left", maintain_order="left")
    values = [pl.col(c) if c in out.columns else pl.lit(None).alias(c) for c in lags]
    if needs.stage_age:
        if set(ages) <= set(out.columns):
            same = (pl.col("stage") == pl.col("__stage_before")) & (
                pl.col("roadmap") == pl.col("__roadmap_before"))
            since = (pl.col("as_of") - pl.col("__stage_since")).dt.total_days()
            values.append(pl.when(same).then(since).otherwise(pl.lit(0, pl.Int64))
                          .cast(pl.Int64).alias("days_in_stage"))
        else:
            values.append(pl.lit(None, pl.Int64).alias("days_in_stage"))
    return out.select("as_of", key, "roadmap", *values)


def history(
    roadmap: Roadmap | Pack | Plan,
    events: Events,
    accounts: FrameInput,
    start: dt.date | str,
    end: dt.date | str,
    every: str | int | dt.timedelta = "1w",
) -> History:
    """Evaluate a roadmap at every date from ``start`` to ``end``, reading the events once.

    The frames are those of :func:`healthrules.evaluate` with an ``as_of`` column first, and
    the rows of each date equal what ``evaluate`` gives at that date: a snapshot never sees an
    event after its own ``as_of``. It costs far less than one ``evaluate`` per date: the
    events are aggregated once per account and day and every date is read from that table
    (see :mod:`healthrules.history.aggregation`), then all dates are assembled together.

    Parameters
    ----------
    roadmap
        A roadmap, a pack or a compiled plan.
    events, accounts
        As for :func:`healthrules.evaluate` (``DataFrame`` or ``LazyFrame``).
    start, end
        The first date and the last possible date (``date`` or ``YYYY-MM-DD``).
    every
        The step: ``"1w"`` (default), ``"1d"``, ``"14d"``, a number of days or a
        ``timedelta`` of whole days.

    Returns
    -------
    History
        The frames, :meth:`History.at` for one date's :class:`~healthrules.Evaluation`, and
        :attr:`History.lifecycle` for the action lifecycle across the snapshots.

    Raises
    ------
    RoadmapError
        If the roadmap does not compile.
    InputDataError
        If the frames do not match the data contract.
    ValueError
        If the dates or the step are malformed.

    Examples
    --------
    >>> import datetime as dt, polars as pl, healthrules as hr
    >>> from healthrules.history import history
    >>> roadmap = hr.Roadmap.model_validate({
    ...     "id": "demo", "goal": "Weekly use", "data": {"events": {"user": None}},
    ...     "indicators": [{"id": "logins_7d", "family": "process", "aggregate": "count",
    ...                     "where": "event == 'login'", "window": "7d"}],
    ...     "stages": [{"id": "operation"}]})
    >>> events = pl.DataFrame({"account_id": ["a", "a", "a"], "event": ["login"] * 3,
    ...     "timestamp": [dt.datetime(2026, 6, 1, 9), dt.datetime(2026, 6, 9, 9),
    ...                   dt.datetime(2026, 6, 10, 9)]})
    >>> h = history(roadmap, events, pl.DataFrame({"account_id": ["a"]}),
    ...             "2026-06-01", "2026-06-15", every="1w")
    >>> [str(d) for d in h.dates]
    ['2026-06-01', '2026-06-08', '2026-06-15']
    >>> h.indicators["logins_7d"].to_list()
    [1, 0, 2]
    """
    dates = date_range(start, end, every)
    plan, ev_lf, acc_df = prepare_inputs(roadmap, events, accounts, dates[-1], dates[0])
    from healthrules.history.lifecycle import signals_for

    engine, result = evaluate_dates(plan, ev_lf, acc_df, dates, signals=signals_for(plan))
    return history_of(plan, engine, dates, result)
