"""A slow, obviously correct evaluator of whole roadmaps, written from docs/semantics.md.

Tests only: nothing in ``src/`` imports it. It loops over accounts and events in plain Python,
one rule of docs/semantics.md at a time, with :func:`healthrules.scalar.evaluate` for every
expression and :func:`healthrules.analysis.analyze` for types and the order of derived
indicators. Section names in the comments are those of docs/semantics.md.

Readings of the text where it leaves a choice (each is pinned by tests/test_reference_unit.py):

- Windows are measured in calendar days on the events' wall clock: ``end - 30 days`` is the
  same wall-clock time 30 days earlier, also across a daylight-saving change; window edges are
  then compared with event timestamps as instants.
- ``days_since_first`` / ``days_since_last`` are calendar days from the event's date on the
  events' wall clock to the window's last day: the ``as_of`` date when the window stops at
  ``end``, ``as_of - N`` for the previous window, else the date of the window's last instant.
- A datetime anchor starts the window at that instant; a date anchor at midnight starting that
  day in the events' time zone.
- ``{x}`` of a datetime renders ``YYYY-MM-DD HH:MM:SS`` on the events' wall clock; a number
  that rounds to zero renders without a minus sign.
- ``indicators_scored`` counts the scored indicators that have a score (after the missing
  policy); ``indicators_missing`` those whose value is null.
"""

from __future__ import annotations

import ast
import datetime as dt
import decimal
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from healthrules.analysis import Analysis, TemplateField, analyze
from healthrules.expressions import Parsed, Type, names_in, parse
from healthrules.roadmap import (
    UNASSIGNED_STAGE,
    AccountColumns,
    Action,
    AggregateIndicator,
    Bands,
    DerivedIndicator,
    EventColumns,
    Pack,
    Roadmap,
    RollupIndicator,
    Stage,
    Weights,
)
from healthrules.scalar import evaluate as scalar_evaluate

__all__ = [
    "AccountResult",
    "FiredAction",
    "Reference",
    "band_of",
    "evaluate_reference",
    "render",
]

FAMILIES = ("process", "relationship", "outcome")
PRIORITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
_UTC = dt.UTC
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class FiredAction:
    """One fired action of one account."""

    action_id: str
    kind: str
    stage: str
    priority: str
    title: str | None
    owner: str | None
    channel: str | None
    text: str
    owner_role: str | None = None
    due_date: dt.date | None = None
    # "Actions": what made the condition true, each entry once: (name, operator, literal)
    evidence: tuple[tuple[str, str | None, str | None], ...] = ()


@dataclass
class AccountResult:
    """Everything docs/semantics.md says about one account."""

    roadmap: str | None
    indicators: dict[str, object] = field(default_factory=dict)
    bands: dict[str, str | None] = field(default_factory=dict)
    stage: str = UNASSIGNED_STAGE
    stage_index: int | None = None
    achieved: bool | None = None
    goal_reached: bool | None = None
    tasks: list[tuple[str, str, bool | None]] = field(default_factory=list)
    tasks_done: int = 0
    tasks_total: int = 0
    score: float | None = None
    family_scores: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(FAMILIES))
    score_band: str | None = None
    indicators_scored: int = 0
    indicators_missing: int = 0
    segment: str | None = None
    actions: list[FiredAction] = field(default_factory=list)
    # the previous windows' values derived trends read, by period (not an output)
    previous: dict[int, dict[str, object]] = field(default_factory=dict)
    previous_bands: dict[int, dict[str, str | None]] = field(default_factory=dict)


@dataclass
class Reference:
    """The reference result: per account, and per (roadmap, action) the condition counts."""

    as_of: dt.date
    accounts: dict[object, AccountResult]
    conditions: dict[tuple[str, str], dict[str, int]]


# --------------------------------------------------------------------------- time


@dataclass(frozen=True)
class _Clock:
    """``as_of`` (a date), ``end`` (naive wall time in the events' zone) and the zone."""

    as_of: dt.date
    end: dt.datetime
    zone: ZoneInfo | None

    def at(self, wall: dt.datetime) -> dt.datetime:
        """The instant of a naive wall-clock time in the events' zone."""
        return wall if self.zone is None else wall.replace(tzinfo=self.zone)

    def wall(self, value: dt.datetime) -> dt.datetime:
        """The naive wall-clock time of a timestamp in the events' zone."""
        if value.tzinfo is None:
            return value
        assert self.zone is not None, "an aware timestamp needs data.events.timezone"
        return value.astimezone(self.zone).replace(tzinfo=None)


def _clock(as_of: dt.date | dt.datetime, timezone: str | None) -> _Clock:
    # "Time": a date D ends at the midnight that ends D; a datetime is that instant, read in
    # (naive) or converted to (aware) the events' time zone. The name as_of is a date.
    zone = ZoneInfo(timezone) if timezone is not None else None
    if isinstance(as_of, dt.datetime):
        if as_of.tzinfo is not None:
            assert zone is not None, "an aware as_of needs data.events.timezone"
            as_of = as_of.astimezone(zone).replace(tzinfo=None)
        return _Clock(as_of=as_of.date(), end=as_of, zone=zone)
    end = dt.datetime.combine(as_of + _DAY, dt.time())
    return _Clock(as_of=as_of, end=end, zone=zone)


def _instant(value: dt.datetime) -> dt.datetime:
    """A value that compares and subtracts as an instant (aware ones in UTC)."""
    return value if value.tzinfo is None else value.astimezone(_UTC)


# --------------------------------------------------------------------------- bands and text


def band_of(value: object, bands: Bands) -> str | None:
    """The level whose interval holds the value ("Bands"); null for a null value."""
    if value is None:
        return None
    x = float(value)  # type: ignore[arg-type]
    holding = []
    for level in bands.levels:
        lo, hi = level.lower, level.upper
        above = lo is None or (x >= lo[0] if lo[1] else x > lo[0])
        below = hi is None or (x <= hi[0] if hi[1] else x < hi[0])
        if above and below:
            holding.append(level.name)
    assert len(holding) == 1, (value, holding)
    return holding[0]


def _too_large(value: object, digits: int) -> bool:
    """Whether ``|value| * 10**digits`` (a double product) is 2**52 or more, or NaN: too
    large to round to ``digits`` exactly; such a number prints as it is."""
    return not abs(float(value)) * float(10**digits) < 2.0**52  # type: ignore[arg-type]


def _fixed(value: object, decimals: int, *, scale: int = 1) -> str:
    """``value * scale`` in its shortest decimal form, rounded halves away from zero; a
    number too large to round exactly (``|x| * 10**(decimals + 2 if a percentage)`` of
    2**52 or more, as a double) prints its shortest form as it is ("Actions")."""
    if _too_large(value, decimals + (2 if scale == 100 else 0)):
        f = float(value)  # type: ignore[arg-type]
        return "NaN" if f != f else repr(f)
    if isinstance(value, int) and not isinstance(value, bool):
        exact = decimal.Decimal(value)
    else:
        exact = decimal.Decimal(repr(float(value)))  # type: ignore[arg-type]
    exact *= scale
    quantum = decimal.Decimal(1).scaleb(-decimals)
    rounded = exact.quantize(
        quantum, rounding=decimal.ROUND_HALF_UP, context=decimal.Context(prec=80)
    )
    if rounded == 0:
        rounded = abs(rounded)
    return f"{rounded:f}"


def render(value: object, typ: Type, spec: str, clock: _Clock | None = None) -> str:
    """Render a value for ``do`` text ("Actions"): the type is the name's declared type."""
    if value is None:
        return "n/a"
    if spec.endswith("%"):
        text = _fixed(value, int(spec[1:-1]), scale=100)
        return text if _too_large(value, int(spec[1:-1]) + 2) else text + "%"
    if spec.endswith("f"):
        return _fixed(value, int(spec[1:-1]))
    if spec == "d":
        return _fixed(value, 0)
    if typ == "float":
        return _fixed(value, 2)
    if typ == "int":
        return str(int(value))  # type: ignore[call-overload]
    if typ == "bool":
        return "true" if value else "false"
    if typ == "datetime":
        assert isinstance(value, dt.datetime)
        wall = clock.wall(value) if clock is not None else value
        return wall.strftime("%Y-%m-%d %H:%M:%S")
    if typ == "date":
        assert isinstance(value, dt.date)
        return value.isoformat()
    return str(value)


# --------------------------------------------------------------------------- the evaluator


Rows = pl.DataFrame | Sequence[Mapping[str, Any]]


def evaluate_reference(
    source: Roadmap | Pack,
    events: Rows | Mapping[str, Rows],
    accounts: Rows,
    as_of: dt.date | dt.datetime,
    time_values: Mapping[object, Mapping[str, object]] | None = None,
) -> Reference:
    """Evaluate a roadmap (or a loaded pack) the slow way, following docs/semantics.md.

    ``time_values`` gives, per account key, the change-over-time values its actions read
    (docs/time.md): ``lag_column(x, N)`` (x as it was N days before) and ``days_in_stage``;
    without them those names are null, as in a single evaluation.

    ``events`` is one frame (the default source) or one frame per event source by name
    ("Event sources": each aggregate indicator reads the events of its source only; the
    evaluation clock is the default source's time zone).
    """
    roadmaps = [source] if isinstance(source, Roadmap) else list(source.loaded)
    analyses = [analyze(r) for r in roadmaps]
    for a in analyses:
        assert a.ok, a.issues
    # "Integers": the types of the names, so that an int in a float expression
    # (`coalesce(i, f)`, `max(i, f)`, `i if c else f`) is a float, whatever value is null
    _TYPES.clear()
    for a in reversed(analyses):
        _TYPES.update({**a.env("filter"), **a.env("actions")})
    contract = roadmaps[0].data
    key = contract.accounts.key
    sources: dict[str, EventColumns] = {}
    for r in roadmaps:
        for name, cols in r.data.sources.items():
            sources.setdefault(name, cols)
    default = contract.default_source
    clock = _clock(as_of, sources[default].timezone)
    given: Mapping[str, Rows] = (
        events if isinstance(events, Mapping) else {default: events})
    assert set(given) == set(sources), (set(given), set(sources))
    account_rows = _dated_rows(_rows(accounts), contract.accounts, key, clock)
    # "Tracks": every track reads its own attributes from the one accounts frame (the pack
    # gives a shared attribute one type)
    attribute_names = list(dict.fromkeys(
        n for r in roadmaps for n in r.data.accounts.attributes))

    # "Input checking": events with a null account or timestamp are dropped; events of
    # unknown accounts are ignored (they are never looked up).
    by_account: dict[str, dict[object, list[Mapping[str, Any]]]] = {}
    for name, ev_cols in sources.items():
        table = by_account.setdefault(name, {})
        for e in _rows(given[name]):
            if e[ev_cols.account] is None or e[ev_cols.timestamp] is None:
                continue
            table.setdefault(e[ev_cols.account], []).append(_event_read(e, ev_cols, clock))

    out: dict[object, AccountResult] = {}
    conditions: dict[tuple[str, str], dict[str, int]] = {}
    for r in roadmaps:
        for _, action in r.all_actions():
            conditions[(r.id, action.id)] = {"considered": 0, "fired": 0, "unknown": 0}
    parent_col = next((r.data.accounts.parent for r in roadmaps
                       if r.data.accounts.parent is not None), None)
    # "Tracks": the first roadmap whose applies_to is true takes the account; then each
    # account's own values (aggregates, and derived indicators that read no roll-up)
    routed: dict[object, tuple[Roadmap, Analysis, dict[str, object]]] = {}
    own: dict[object, AccountResult] = {}
    for acc in account_rows:
        ident = acc[key]
        attrs = {n: acc[n] for n in attribute_names}
        chosen = None
        for r, a in zip(roadmaps, analyses, strict=True):
            parsed = a.expressions.get("applies_to")
            if parsed is None or _eval(parsed, {**attrs, "as_of": clock.as_of}, clock) is True:
                chosen = (r, a)
                break
        if chosen is None:
            out[ident] = AccountResult(roadmap=None)
            continue
        r, a = chosen
        routed[ident] = (r, a, attrs)
        mine = {name: table.get(ident, []) for name, table in by_account.items()}
        own[ident] = _own(r, a, attrs, mine, clock)
    # "Account hierarchies": the children of an account are the accounts of the same
    # roadmap whose parent is its key
    children: dict[object, list[object]] = {}
    if parent_col is not None:
        for acc in account_rows:
            if acc[key] in routed and acc[parent_col] is not None:
                children.setdefault(acc[parent_col], []).append(acc[key])
    kids_of = {ident: [(own[c], routed[c][2]) for c in children.get(ident, [])
                       if routed[c][0] is r]
               for ident, (r, _, _) in routed.items()}
    # "Account hierarchies": roll-ups level by level over every account (a level-2 roll-up
    # reads the children's level-1 roll-ups), each level followed by the derived indicators
    # that read it
    top = max((lvl for _, (_, a, _) in routed.items() for lvl in a.rollup_levels.values()),
              default=0)
    for level in range(1, top + 1):
        for ident, (r, a, attrs) in routed.items():
            _rollups(r, a, attrs, own[ident], kids_of[ident], clock, level)
    for ident, (r, a, attrs) in routed.items():
        out[ident] = _account(r, a, attrs, own[ident], clock, conditions,
                              (time_values or {}).get(ident, {}))
    return Reference(as_of=clock.as_of, accounts=out, conditions=conditions)


def _event_read(e: Mapping[str, Any], ev: EventColumns, clock: _Clock) -> Mapping[str, Any]:
    """"Time" and "Aggregations": a date-only timestamp is the midnight starting that date
    on its source's wall clock; "Several event sources": a source in another zone is read on
    the default source's clock (its filters, calendar days and times are those of that
    zone); NaN and inf in a float value column are read as null."""
    out = dict(e)
    ts = out[ev.timestamp]
    if isinstance(ts, dt.date) and not isinstance(ts, dt.datetime):
        midnight = dt.datetime.combine(ts, dt.time())
        ts = midnight if ev.timezone is None else midnight.replace(tzinfo=ZoneInfo(ev.timezone))
    if isinstance(ts, dt.datetime) and ts.tzinfo is not None and clock.zone is not None:
        ts = ts.astimezone(clock.zone)
    out[ev.timestamp] = ts
    for name, typ in ev.values.items():
        if typ == "float" and name in out:
            out[name] = _clean(out[name])
    return out


def _dated_rows(rows: list[Mapping[str, Any]], acc: AccountColumns, key: str,
                clock: _Clock) -> list[Mapping[str, Any]]:
    """"Accounts over time": with validity columns, each account's row valid at the
    evaluation instant (started before it, not ended by it); accounts without one are not
    evaluated. A snapshot row is valid from its snapshot date to the frame's next one."""
    if acc.snapshot is not None:
        days = sorted({r[acc.snapshot] for r in rows})
        following = dict(zip(days, [*days[1:], None], strict=False))  # none: no rows
        spans = [(r, r[acc.snapshot], following[r[acc.snapshot]]) for r in rows]
    elif acc.valid_from is not None and acc.valid_to is not None:
        spans = [(r, r[acc.valid_from], r[acc.valid_to]) for r in rows]
    else:
        return rows

    def instant(value: dt.date | dt.datetime) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return clock.wall(value)
        return dt.datetime.combine(value, dt.time())

    valid = [r for r, lo, hi in spans
             if instant(lo) < clock.end and (hi is None or clock.end <= instant(hi))]
    assert len({r[key] for r in valid}) == len(valid), "overlapping rows"
    return valid


def _rows(frame: pl.DataFrame | Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return frame.to_dicts() if isinstance(frame, pl.DataFrame) else list(frame)


def _eval(
    parsed: Parsed,
    values: Mapping[str, object],
    clock: _Clock,
    bands: Mapping[str, str | None] | None = None,
) -> object:
    lookup = None if bands is None else bands.get
    types = {n: _TYPES[n] for n in values if isinstance(n, str) and n in _TYPES}
    return scalar_evaluate(parsed, values, as_of=clock.as_of, band=lookup, types=types)


_TYPES: dict[str, Type] = {}
"""The types of the names of the roadmaps :func:`evaluate_reference` is evaluating."""


def _own(
    r: Roadmap,
    a: Analysis,
    attrs: dict[str, object],
    events: Mapping[str, list[Mapping[str, Any]]],
    clock: _Clock,
) -> AccountResult:
    """An account's own values: aggregates and the derived indicators that read no roll-up."""
    res = AccountResult(roadmap=r.id)
    # "Aggregations": each indicator over the events of its source; a window that starts at
    # an indicator's time after that indicator (of the same source)
    aggregates = [(idx, ind) for idx, ind in enumerate(r.indicators)
                  if isinstance(ind, AggregateIndicator)]
    aggregates.sort(key=lambda t: a.anchor_levels.get(t[1].id, 0))
    for idx, ind in aggregates:
        where = a.expressions.get(f"indicators[{idx}].where")
        anchors = {**attrs, **res.indicators}
        source = ind.source or r.data.default_source
        res.indicators[ind.id] = _indicator(r, ind, where, anchors, events[source], clock, attrs)
    for _, ind in aggregates:
        if ind.bands is not None:
            res.bands[ind.id] = band_of(res.indicators[ind.id], ind.bands)
    # "Trends of derived indicators": the previous windows' values, by period
    previous, previous_bands = res.previous, res.previous_bands
    for idx, ind in enumerate(r.indicators):
        if isinstance(ind, AggregateIndicator) and ind.id in a.previous_windows:
            assert ind.window.days is not None
            n = ind.window.days
            where = a.expressions.get(f"indicators[{idx}].where")
            gap = dt.timedelta(days=n)
            value = _aggregate(r, ind, where, attrs, events[ind.source or r.data.default_source],
                               clock, clock.end - 2 * gap, clock.end - gap, clock.as_of - gap)
            previous.setdefault(n, {})[ind.id] = value
            if ind.bands is not None:
                previous_bands.setdefault(n, {})[ind.id] = band_of(value, ind.bands)
    _derive(r, a, attrs, res, clock, level=0)
    return res


def _derive(r: Roadmap, a: Analysis, attrs: dict[str, object], res: AccountResult,
            clock: _Clock, *, level: int) -> None:
    """Derived indicators of one roll-up level (0: read no roll-up), in dependency order; a
    band is known as soon as its value is."""
    previous, previous_bands = res.previous, res.previous_bands
    by_id = {ind.id: (idx, ind) for idx, ind in enumerate(r.indicators)}
    for ident in a.derived_order:
        if a.rollup_levels.get(ident, 0) != level:
            continue
        idx, dind = by_id[ident]
        assert isinstance(dind, DerivedIndicator)
        parsed = a.expressions[f"indicators[{idx}].expr"]
        is_float = a.indicator_types[ident] == "float"
        for d, n in sorted(a.previous_derived):
            if d != ident:
                continue
            gap = dt.timedelta(days=n)
            earlier = _Clock(as_of=clock.as_of - gap, end=clock.end - gap, zone=clock.zone)
            before = _eval(parsed, {**attrs, **previous.get(n, {}), "as_of": earlier.as_of},
                           earlier, previous_bands.get(n, {}))
            if is_float and before is not None:
                before = float(before)  # type: ignore[arg-type]
            previous.setdefault(n, {})[ident] = before
            if dind.bands is not None:
                previous_bands.setdefault(n, {})[ident] = band_of(before, dind.bands)
        values = {**attrs, **res.indicators, "as_of": clock.as_of}
        value = _eval(parsed, values, clock, res.bands)
        if ident in a.derived_trends:
            before = previous[a.derived_trends[ident]][ident]
            value = _trend(dind.compare, value, before)
        if is_float and value is not None:
            value = float(value)  # type: ignore[arg-type]
        res.indicators[ident] = value
        if dind.bands is not None:
            res.bands[ident] = band_of(value, dind.bands)


def _rollup(r: Roadmap, a: Analysis, idx: int, ind: RollupIndicator,
            kids: list[tuple[AccountResult, dict[str, object]]], clock: _Clock) -> object:
    """"Account hierarchies": one roll-up over the children's values."""
    agg = ind.aggregate
    if agg == "worst_band":
        banded = r.indicator(ind.of.strip())
        assert banded.bands is not None
        order = [b.name for b in banded.bands.ordered_worst_to_best()]
        got = [k.bands.get(banded.id) for k, _ in kids]
        ranks = [order.index(b) for b in got if b is not None]
        return order[min(ranks)] if ranks else None
    of = a.expressions[f"indicators[{idx}].of"]
    weight = a.expressions.get(f"indicators[{idx}].weight")
    values: list[object] = []
    weights: list[object] = []
    for k, kattrs in kids:
        env = {**kattrs, **k.indicators, "as_of": clock.as_of}
        # a child's value as computed (an expression reads a NaN name as null and a NaN it
        # computes is null, but it can compute inf): off the grid, it makes a sum or a mean null
        values.append(_eval(of, env, clock, k.bands))
        if weight is not None:
            weights.append(_eval(weight, env, clock, k.bands))
    if agg in ("count", "share"):
        n = sum(1 for v in values if v is True)
        if agg == "count":
            return n
        return n / len(values) if values else None
    numbers = [v for v in values if v is not None]
    if agg == "sum":
        if a.indicator_types[ind.id] == "float":
            return _grid_sum([float(v) for v in numbers])  # type: ignore[arg-type]
        total = sum(int(v) for v in numbers)  # type: ignore[call-overload]
        return total if -(2**63) <= total < 2**63 else None
    if agg in ("min", "max"):
        # "smallest / largest non-null value": a NaN child value is null there; inf counts
        ordered = [v for v in numbers if not (isinstance(v, float) and math.isnan(v))]
        if not ordered:
            return None
        best = (min if agg == "min" else max)(ordered)  # type: ignore[type-var]
        # a zero is 0.0: -0.0 + 0.0 is 0.0 (the order of the children is not defined)
        return float(best) + 0.0 if a.indicator_types[ind.id] == "float" else best
    if agg == "mean":
        if not numbers:
            return None
        total = _grid_sum([float(v) for v in numbers])  # type: ignore[arg-type]
        return None if total is None else total / len(numbers)
    assert agg == "weighted_mean"
    pairs = [(float(v), float(w)) for v, w in zip(values, weights, strict=True)  # type: ignore[arg-type]
             if v is not None and w is not None]
    den = _grid_sum([w for _, w in pairs])
    num = _grid_sum([v * w for v, w in pairs])
    if den is None or num is None:
        return None
    if den <= 0:
        return None
    return num / den


def _grid_sum(values: list[float]) -> float | None:
    """"Floating point", roll-ups: the exact sum of the children's values on the 1e-9 grid;
    None when one of them is not finite or beyond +-2**63."""
    if any(not math.isfinite(v) or abs(v) >= 2.0**63 for v in values):
        return None
    return _exact_float_sum(values)


def _rollups(
    r: Roadmap,
    a: Analysis,
    attrs: dict[str, object],
    res: AccountResult,
    kids: list[tuple[AccountResult, dict[str, object]]],
    clock: _Clock,
    level: int,
) -> None:
    """"Account hierarchies": the roll-ups of one level over the children's values (their
    own, and their roll-ups of lower levels), then the derived indicators that read them."""
    for idx, ind in enumerate(r.indicators):
        if isinstance(ind, RollupIndicator) and a.rollup_levels[ind.id] == level:
            res.indicators[ind.id] = _rollup(r, a, idx, ind, kids, clock)
            if ind.bands is not None:
                res.bands[ind.id] = band_of(res.indicators[ind.id], ind.bands)
    _derive(r, a, attrs, res, clock, level=level)


def _account(
    r: Roadmap,
    a: Analysis,
    attrs: dict[str, object],
    res: AccountResult,
    clock: _Clock,
    conditions: dict[tuple[str, str], dict[str, int]],
    time_values: Mapping[str, object],
) -> AccountResult:
    env_values = {**attrs, **res.indicators, "as_of": clock.as_of}

    # "Stages": the first stage whose entry is true; null does not match
    stage: Stage | None = None
    for si, st in enumerate(r.stages):
        entry = a.expressions.get(f"stages[{si}].entry")
        if entry is None or _eval(entry, env_values, clock, res.bands) is True:
            stage, res.stage, res.stage_index = st, st.id, si
            break
    if stage is not None:
        si = res.stage_index
        when = a.expressions.get(f"stages[{si}].achievement.when")
        if when is not None:
            got = _eval(when, env_values, clock, res.bands)
            assert got is None or isinstance(got, bool)
            res.achieved = got
        for lst in ("joint", "customer", "ours"):
            for ti, task in enumerate(getattr(stage.tasks, lst)):
                done_when = a.expressions.get(f"stages[{si}].tasks.{lst}[{ti}].done_when")
                done = None if done_when is None else _eval(done_when, env_values, clock, res.bands)
                assert done is None or isinstance(done, bool)
                res.tasks.append((lst, task.text, done))
        res.tasks_done = sum(1 for _, _, done in res.tasks if done is True)
        res.tasks_total = len(res.tasks)

    # "Goal attainment": goal.target over the indicators scope; null without a target
    target = a.expressions.get("goal.target")
    if target is not None:
        got_goal = _eval(target, env_values, clock, res.bands)
        assert got_goal is None or isinstance(got_goal, bool)
        res.goal_reached = got_goal

    # "Health score": the first segment whose applies_to is true, then its weights
    for k, seg in enumerate(r.score.segments):
        cond = a.expressions[f"score.segments[{k}].applies_to"]
        if _eval(cond, env_values, clock, res.bands) is True:
            res.segment = seg.id
            break
    _score(r, r.score.weights_for(res.segment, res.stage), res)
    bands = r.score.bands_for(res.segment)
    if bands is not None:
        res.score_band = band_of(res.score, bands)

    # "Actions"
    action_values: dict[str, object] = {
        **env_values,
        "score": res.score,
        "score_band": res.score_band,
        "stage": res.stage,
        "stage_achieved": res.achieved,
        **({"segment": res.segment} if r.score.segments else {}),
        "goal_reached": res.goal_reached,
        "days_in_stage": None,  # no history: null (docs/time.md)
        **time_values,
    }
    env = a.env("actions")
    fired: list[tuple[int, int, FiredAction]] = []
    for order, (path, st, action) in enumerate(_actions_with_paths(r)):
        if st is not None and st.id != res.stage:
            continue
        counts = conditions[(r.id, action.id)]
        counts["considered"] += 1
        value = _eval(a.expressions[f"{path}.when"], action_values, clock, res.bands)
        if value is None:
            counts["unknown"] += 1
            continue
        if value is not True:
            continue
        counts["fired"] += 1
        # "Routing": the due date counts from the day it fires, or is the expression's date
        due: dt.date | None = None
        if action.due_days is not None:
            due = clock.as_of + dt.timedelta(days=action.due_days)
        elif action.due_expr is not None:
            got = _eval(a.expressions[f"{path}.due"], action_values, clock, res.bands)
            if isinstance(got, dt.datetime):
                got = got.date()  # in its own time zone, as polars' dt.date()
            due = got if isinstance(got, dt.date) else None
        text = "".join(_piece(piece, {**action_values, "due_date": due},
                              {**env, "due_date": "date"}, clock, res.bands)
                       for piece in a.templates[f"{path}.do"])
        owner = action.owner_role
        if action.owner_attribute is not None:
            person = attrs.get(action.owner_attribute)
            fallback = getattr(action.owner, "fallback", None)
            owner = str(person) if person is not None else fallback
        fired.append(
            (
                PRIORITY_RANK[action.priority],
                order,
                FiredAction(
                    action_id=action.id,
                    kind=action.kind,
                    stage=res.stage,
                    priority=action.priority,
                    title=action.title,
                    owner=owner,
                    channel=action.channel,
                    text=text,
                    owner_role=action.owner_role,
                    due_date=due,
                    evidence=evidence_of(a.expressions[f"{path}.when"], action_values,
                                         clock, res.bands),
                ),
            )
        )
    res.actions = [f for _, _, f in sorted(fired, key=lambda t: (t[0], t[1]))]
    return res


_OP_TEXT = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
            ast.GtE: ">=", ast.In: "in", ast.NotIn: "not in"}
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def evidence_of(parsed: Parsed, values: Mapping[str, object], clock: _Clock,
                bands: Mapping[str, str | None]) -> tuple[tuple[str, str | None, str | None],
                                                          ...]:
    """"Actions": the evidence of a condition that held, as (name, operator, literal).

    Every part of an ``and`` (a chained comparison is the ``and`` of its pairs); of an
    ``or``, the branches that held (true, not null); a comparison with a literal is one
    entry (the compared name, ``band(x)`` or the text of the computed value; a literal on
    the left is read from the other side, the operator turned round); anything else one
    entry per name it reads, sorted, without an operator. A conditional: the names its test
    reads, then the branch it took (the other is no reason). Each entry once, where the
    condition first names it (also when that place is a branch of an ``or`` that did not
    hold: ``(a > 1 and b > 9) or (c > 0 and a > 1)`` lists ``a > 1`` first), when some
    place that names it held."""
    out: list[tuple[tuple[str, str | None, str | None], bool]] = []

    def held(node: ast.expr) -> bool:
        return _eval(parse(parsed.segment(node)), values, clock, bands) is True

    def literal(node: ast.expr) -> bool:
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.UnaryOp):
            return isinstance(node.operand, ast.Constant)
        if isinstance(node, (ast.Tuple, ast.List)):
            return all(isinstance(e, ast.Constant) for e in node.elts)
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "date")

    def label(node: ast.expr) -> str:
        if isinstance(node, ast.Name):
            return node.id
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "band" and node.args
                and isinstance(node.args[0], ast.Name)):
            return f"band({node.args[0].id})"
        return parsed.segment(node)

    def walk(node: ast.expr, live: bool) -> None:
        # live: every `or` branch on the way here held (the whole condition did)
        if isinstance(node, ast.BoolOp):
            for part in node.values:
                walk(part, live and (isinstance(node.op, ast.And) or held(part)))
            return
        if isinstance(node, ast.IfExp):  # the test's names, then the branch it took
            out.extend(((name, None, None), live) for name in sorted(names_in(node.test)))
            test = _eval(parse(parsed.segment(node.test)), values, clock, bands)
            walk(node.body, live and test is True)
            walk(node.orelse, live and test is False)
            return
        if isinstance(node, ast.Compare) and len(node.ops) > 1:
            operands = [node.left, *node.comparators]
            for i, op in enumerate(node.ops):
                walk(ast.Compare(left=operands[i], ops=[op], comparators=[operands[i + 1]]),
                     live)
            return
        if isinstance(node, ast.Compare):
            op = _OP_TEXT.get(type(node.ops[0]))
            left, right = node.left, node.comparators[0]
            if op is not None and literal(right) and not literal(left):
                out.append(((label(left), op, parsed.segment(right)), live))
                return
            if op in _FLIPPED and literal(left) and not literal(right):
                out.append(((label(right), _FLIPPED[op], parsed.segment(left)), live))
                return
        out.extend(((name, None, None), live) for name in sorted(names_in(node)))

    walk(parsed.tree, True)
    listed = {entry for entry, live in out if live}
    return tuple(entry for entry in dict.fromkeys(e for e, _ in out) if entry in listed)


def _piece(piece: TemplateField | str, values: Mapping[str, object], env: Mapping[str, Type],
           clock: _Clock, bands: Mapping[str, str | None]) -> str:
    """"Actions": one piece of a ``do`` text: a name's value, or an expression's (typed by
    the analysis), rendered."""
    if isinstance(piece, str):
        return piece
    if piece.parsed is None:
        return render(values[piece.name], env[piece.name], piece.spec, clock)
    assert piece.type is not None
    return render(_eval(piece.parsed, values, clock, bands), piece.type, piece.spec, clock)


def _actions_with_paths(r: Roadmap) -> Iterable[tuple[str, Stage | None, Action]]:
    for si, st in enumerate(r.stages):
        for ai, action in enumerate(st.actions):
            yield f"stages[{si}].actions[{ai}]", st, action
    for ai, action in enumerate(r.actions):
        yield f"actions[{ai}]", None, action


# --------------------------------------------------------------------------- one indicator


def _indicator(
    r: Roadmap,
    ind: AggregateIndicator,
    where: Parsed | None,
    anchors: dict[str, object],
    events: list[Mapping[str, Any]],
    clock: _Clock,
    attrs: dict[str, object],
) -> object:
    w = ind.window
    if w.kind == "anchored":
        # an attribute, or the time an aggregate indicator computed before holds
        assert w.from_ is not None
        anchor = anchors[w.from_]
        if anchor is None:
            return None  # an anchored window whose anchor is null: unknown, not 0
        if isinstance(anchor, dt.datetime):
            start = clock.wall(anchor)
        else:
            assert isinstance(anchor, dt.date)
            start = dt.datetime.combine(anchor, dt.time())
        stop = clock.end if w.days is None else min(start + dt.timedelta(days=w.days), clock.end)
        last = clock.as_of
        if stop < clock.end:  # cut short by `days`: the day of its last instant
            last = (stop - dt.timedelta(microseconds=1)).date()
        return _aggregate(r, ind, where, attrs, events, clock, start, stop, last)
    if w.kind == "all":
        return _aggregate(r, ind, where, attrs, events, clock, None, clock.end, clock.as_of)
    assert w.days is not None
    n = dt.timedelta(days=w.days)
    current = _aggregate(r, ind, where, attrs, events, clock, clock.end - n, clock.end,
                         clock.as_of)
    if ind.compare == "none":
        return current
    previous = _aggregate(r, ind, where, attrs, events, clock, clock.end - 2 * n, clock.end - n,
                          clock.as_of - n)
    return _trend(ind.compare, current, previous)


def _trend(compare: str, current: object, previous: object) -> object:
    """"compare": the previous value, current - previous, or (current - previous) /
    previous (null when previous is 0); null when either is null."""
    if compare == "previous":
        return previous
    if current is None or previous is None:
        return None
    assert isinstance(current, (int, float)) and isinstance(previous, (int, float))
    if compare == "delta":
        out: float = current - previous
        if isinstance(out, int) and not -(2**63) <= out < 2**63:
            return None  # "Expressions": an int result that leaves Int64 is null
    elif previous == 0:
        return None
    else:
        out = (float(current) - float(previous)) / previous
    # "Expressions": a NaN computed (a derived indicator's inf - inf) is null
    return None if isinstance(out, float) and math.isnan(out) else out


def _aggregate(
    r: Roadmap,
    ind: AggregateIndicator,
    where: Parsed | None,
    attrs: dict[str, object],
    events: list[Mapping[str, Any]],
    clock: _Clock,
    start: dt.datetime | None,
    stop: dt.datetime,
    last_day: dt.date,
) -> object:
    """The aggregate over the events in [start, stop) (naive wall times) passing ``where``;
    ``last_day`` is the day ``days_since_*`` count to."""
    ev = r.data.sources[ind.source or r.data.default_source]
    lo = None if start is None else _instant(clock.at(start))
    hi = _instant(clock.at(stop))
    picked: list[Mapping[str, Any]] = []
    for e in events:
        ts = _instant(e[ev.timestamp])
        if ts >= hi or (lo is not None and ts < lo):
            continue
        if where is not None:
            values = {**attrs, **e, "as_of": clock.as_of}
            if _eval(where, values, clock) is not True:
                continue  # a null filter result does not count
        picked.append(e)

    agg = ind.aggregate
    if agg == "count":
        return len(picked)
    if agg == "distinct":
        column = ind.of or ev.user
        assert column is not None
        return len({_clean(e[column]) for e in picked} - {None})
    if agg == "active_days":
        return len({clock.wall(e[ev.timestamp]).date() for e in picked})
    if agg in ("first_time", "last_time", "days_since_first", "days_since_last"):
        if not picked:
            return None
        stamps = [e[ev.timestamp] for e in picked]
        first = agg in ("first_time", "days_since_first")
        ts = (min if first else max)(stamps, key=_instant)
        if agg in ("first_time", "last_time"):
            return ts
        return (last_day - clock.wall(ts).date()).days
    assert ind.of is not None
    numbers = [v for v in (_clean(e[ind.of]) for e in picked) if v is not None]
    is_float = ev.values[ind.of] == "float"
    if agg == "sum":
        if is_float:
            return _exact_float_sum(float(v) for v in numbers)  # type: ignore[arg-type]
        return sum(int(v) for v in numbers)  # type: ignore[call-overload]
    if not numbers:
        return None
    if agg == "mean":
        if is_float:
            return _exact_float_sum(float(v) for v in numbers) / len(numbers)  # type: ignore[arg-type]
        return float(sum(int(v) for v in numbers)) / len(numbers)  # type: ignore[call-overload]
    if agg in ("median", "percentile"):
        return _percentile(sorted(float(v) for v in numbers),
                           0.5 if agg == "median" else ind.q)
    best = (min if agg == "min" else max)(numbers)
    return float(best) if is_float else int(best)


def _billionths(v: float) -> int:
    """"Floating point": a float value as sums add it, an integer number of billionths:
    ``trunc(v) * 10**9 + round((v - trunc(v)) * 1e9)`` (one IEEE product, half to even)."""
    whole = math.trunc(v)
    return whole * 10**9 + round((v - whole) * 1e9)


def _exact_float_sum(values: Iterable[float]) -> float:
    """"Floating point": the billionths added exactly (Python integers), then the double
    nearest the exact total (Python's integer true division is correctly rounded)."""
    return sum(_billionths(v) for v in values) / 10**9


def _percentile(ordered: list[float], q: float | None) -> float:
    """"Aggregations", percentiles: linear between the closest ranks. The rank
    ``h = (n - 1) * q`` is taken exactly (q as the decimal it is written as), ``f`` is its
    fractional part as the nearest double, and the value ``v[i] + (v[i+1] - v[i]) * f``."""
    assert q is not None
    exact = (len(ordered) - 1) * decimal.Decimal(repr(float(q)))
    i = int(exact)  # floor: the rank is never negative
    frac = exact - i
    lo = ordered[i]
    hi = ordered[i + 1] if frac else lo
    if math.isinf(hi - lo):  # opposite signs beyond about 9e307: by halves, finite
        half = hi * 0.5 - lo * 0.5
        return lo + half * float(frac) + half * float(frac)
    return lo + (hi - lo) * float(frac)


def _clean(value: object) -> object:
    """NaN and inf in a float column are read as null, -0.0 as 0.0."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, float) and value == 0:
        return 0.0
    return value


# --------------------------------------------------------------------------- score


def _score(r: Roadmap, weights: Weights, res: AccountResult) -> None:
    banded = {ind.id: ind for ind in r.indicators if ind.bands is not None}
    # 1. which indicators are scored
    if weights.indicators:
        chosen = [(i, float(w)) for i, w in weights.indicators.items() if w > 0]
    else:
        chosen = [(i, 1.0) for i in banded]
    if weights.families:
        chosen = [(i, w) for i, w in chosen if weights.families.get(banded[i].family, 0) > 0]
    # 2. indicator scores, with the missing policy
    per_family: dict[str, list[tuple[float, float]]] = {f: [] for f in FAMILIES}
    flat: list[tuple[float, float]] = []
    for ident, w in chosen:
        ind = banded[ident]
        assert ind.bands is not None
        value = res.indicators[ident]
        score: float | None
        if value is None:
            res.indicators_missing += 1
            policy = ind.missing or r.score.missing  # the indicator's own policy first
            score = None if policy == "skip" else (50.0 if policy == "neutral" else 0.0)
        else:
            band = band_of(value, ind.bands)
            assert band is not None
            score = ind.bands.level_scores()[band]
        if score is None:
            continue
        res.indicators_scored += 1
        per_family[ind.family].append((score, w))
        flat.append((score, w))
    # 3. family scores, 4. the total
    for fam in FAMILIES:
        res.family_scores[fam] = _weighted_mean(per_family[fam])
    if weights.families:
        parts = [
            (s, float(weights.families.get(fam, 0.0)))  # type: ignore[call-overload]
            for fam in FAMILIES
            if (s := res.family_scores[fam]) is not None
        ]
        res.score = _weighted_mean(parts)
    else:
        res.score = _weighted_mean(flat)
    assert res.score is None or 0 <= res.score <= 100 + 1e-9


def _weighted_mean(items: list[tuple[float, float]]) -> float | None:
    """"Floating point": summed left to right in declared order (not ``math.fsum``, which
    rounds the exact total once and can differ in the last bit), one IEEE division."""
    total = sum(w for _, w in items)
    if total <= 0:
        return None
    return sum(s * w for s, w in items) / total
