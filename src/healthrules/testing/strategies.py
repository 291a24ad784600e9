"""Hypothesis strategies for fuzzing rule packs: accounts, events and small roadmaps.

The strategies read a roadmap's data contract (column names, attribute and value types, time
zone) and its expressions, so the data they draw fits the pack and reaches its interesting
cases: event names come from the indicators' ``where`` filters, attribute values from the
literals the expressions compare them with, numbers from around every threshold (a float
attribute sometimes ``inf``, ``-inf`` or ``1e308``), and event times from around every window
edge.

- :func:`accounts_for` draws an accounts frame;
- :func:`events_for` draws an events frame (for given account ids, or for ``a0``, ``a1``...);
- :func:`inputs_for` draws both, consistent with each other;
- :func:`roadmaps` draws small valid roadmaps, to fuzz the engine itself.

Needs the ``testing`` extra: ``pip install 'healthrules[testing]'``.

Examples
--------
>>> import datetime as dt
>>> from hypothesis import given, settings
>>> import healthrules as hr
>>> from healthrules.testing.strategies import inputs_for
>>> pack = hr.load("rules/examples/b2b-saas/roadmap.yaml")  # doctest: +SKIP
>>> @settings(max_examples=20, deadline=None)  # doctest: +SKIP
... @given(inputs_for(pack, as_of=dt.date(2026, 6, 30)))
... def test_no_input_makes_evaluation_fail(inputs):
...     accounts, events = inputs
...     hr.evaluate(pack, events, accounts, dt.date(2026, 6, 30))
"""

from __future__ import annotations

import ast
import datetime as dt
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

try:
    from hypothesis import strategies as st
    from hypothesis.strategies import DrawFn, SearchStrategy
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        "healthrules.testing.strategies needs hypothesis, which comes with the testing extra: "
        "pip install 'healthrules[testing]'"
    ) from exc

import polars as pl

from healthrules.analysis import analysis_of
from healthrules.inputs import zoned_wall_time
from healthrules.roadmap import AggregateIndicator, Pack, Roadmap, RollupIndicator

__all__ = [
    "ContractFacts",
    "accounts_for",
    "contract_facts",
    "events_for",
    "inputs_for",
    "roadmaps",
]

Source = Roadmap | Pack

_MINUTE = 60
_DAY = 24 * 60


# --------------------------------------------------------------------------- contract facts


@dataclass
class ContractFacts:
    """What the strategies know about a roadmap or pack: columns, types and literals."""

    account_key: str
    attributes: dict[str, str]
    event_col: str | None
    user_col: str | None
    timestamp_col: str
    timezone: str | None
    account_col: str
    values: dict[str, str]
    event_names: list[str]
    literals: dict[str, set[Any]] = field(default_factory=dict)
    windows: set[int] = field(default_factory=set)
    parent: str | None = None

    def numbers(self, name: str) -> list[float]:
        """The numbers an expression compares ``name`` with (for boundary values)."""
        return sorted({float(v) for v in self.literals.get(name, set())
                       if isinstance(v, (int, float)) and not isinstance(v, bool)})

    def strings(self, name: str) -> list[str]:
        """The strings an expression compares ``name`` with."""
        return sorted({v for v in self.literals.get(name, set()) if isinstance(v, str)})


def _roadmaps(source: Source) -> list[Roadmap]:
    if isinstance(source, Pack):
        if not source.loaded:
            raise ValueError("the pack has no loaded roadmaps: load it with healthrules.load()")
        return list(source.loaded)
    return [source]


def _expressions(r: Roadmap, source: str | None = None) -> Iterable[str]:
    """Every expression of a roadmap; of the event filters only those of indicators that
    read ``source`` (all of them when None)."""
    if r.applies_to:
        yield r.applies_to
    if r.goal.target:
        yield r.goal.target
    for ind in r.indicators:
        if isinstance(ind, AggregateIndicator):
            if ind.where and (source is None
                              or (ind.source or r.data.default_source) == source):
                yield ind.where
        elif isinstance(ind, RollupIndicator):
            yield ind.of
            if ind.weight:
                yield ind.weight
        else:
            yield ind.expr
    for st_ in r.stages:
        if st_.entry:
            yield st_.entry
        if st_.achievement is not None and st_.achievement.when:
            yield st_.achievement.when
        for lst in (st_.tasks.joint, st_.tasks.customer, st_.tasks.ours):
            for task in lst:
                if task.done_when:
                    yield task.done_when
    for _, action in r.all_actions():
        yield action.when
        if action.resolved_when:
            yield action.resolved_when
    for pieces in analysis_of(r).templates.values():  # {expression} placeholders of texts
        for piece in pieces:
            if not isinstance(piece, str) and piece.parsed is not None:
                yield piece.parsed.source


def _constant(node: ast.expr) -> list[Any]:
    if isinstance(node, ast.Constant) and node.value is not None:
        return [node.value]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(
            node.operand, ast.Constant) and isinstance(node.operand.value, (int, float)):
        return [-node.operand.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [c for e in node.elts for c in _constant(e)]
    return []


def contract_facts(source: Source, event_source: str | None = None) -> ContractFacts:
    """Gather a roadmap's (or pack's) data contract and the literals of its expressions.

    The event columns are those of ``event_source`` (default: the default source); event
    names come from the filters of the indicators that read it.

    Examples
    --------
    >>> import healthrules as hr
    >>> r = hr.Roadmap.model_validate({"id": "d", "goal": "g", "indicators": [
    ...     {"id": "n", "family": "process", "aggregate": "count", "where": "event == 'login'"}],
    ...     "stages": [{"id": "s", "actions": [{"id": "a", "kind": "challenge",
    ...     "when": "n < 3", "do": "call"}]}]})
    >>> f = contract_facts(r)
    >>> f.event_names, f.numbers("n")
    (['login'], [3.0])
    """
    rs = _roadmaps(source)
    first = rs[0]
    name = first.data.default_source if event_source is None else event_source
    if name not in first.data.sources:
        raise ValueError(f"unknown event source {name!r}; the roadmap declares "
                         f"{', '.join(first.data.sources)}")
    ev = first.data.sources[name]
    attrs: dict[str, str] = {}
    values: dict[str, str] = {}
    parent: str | None = None
    for r in rs:
        attrs.update(r.data.accounts.attributes)
        cols = r.data.sources.get(name)
        if cols is not None:
            values.update(cols.values)
        parent = parent or r.data.accounts.parent
    facts = ContractFacts(
        account_key=first.data.accounts.key, attributes=attrs, event_col=ev.event,
        user_col=ev.user, timestamp_col=ev.timestamp, timezone=ev.timezone,
        account_col=ev.account, values=values, event_names=[], parent=parent,
    )
    events: set[str] = set()
    for r in rs:
        previous = analysis_of(r).previous_windows  # compare, and what derived trends read
        for ind in r.indicators:
            if (isinstance(ind, AggregateIndicator) and ind.window.days is not None
                    and (ind.source or r.data.default_source) == name):
                facts.windows.add(ind.window.days * (2 if ind.id in previous else 1))
                facts.windows.add(ind.window.days)
        for text in _expressions(r, name):
            try:
                tree = ast.parse(text.strip(), mode="eval")
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if not isinstance(node, ast.Compare):
                    continue
                operands = [node.left, *node.comparators]
                for a, b in itertools.pairwise(operands):
                    for name_node, lit in ((a, b), (b, a)):
                        if isinstance(name_node, ast.Name):
                            consts = _constant(lit)
                            facts.literals.setdefault(name_node.id, set()).update(consts)
                            if name_node.id == ev.event:
                                events.update(c for c in consts if isinstance(c, str))
    facts.event_names = sorted(events)
    return facts


# --------------------------------------------------------------------------- values


SUM_PROBES = (0.1, 0.2, 0.3, 1 / 3, 2.5e-9, -2.5e-9, 1.5e-9, 1e15, -1e15, -0.0, 5e-324)
"""Float values that expose the order of a float sum (decimals that are not binary, a tie
on the 1e-9 grid, large values that cancel, a subnormal): sums and means of them are exact,
so every order of the events gives the same bits."""


FLOAT_EXTREMES = (math.inf, -math.inf, 1e308, -1e308)
"""Float attribute values at and beyond the edge of the finite doubles."""


def _near(numbers: Sequence[float], integer: bool) -> list[float]:
    out: set[float] = set()
    for v in numbers:
        if integer:
            out.update({v - 1, v, v + 1})
        else:
            out.update({v - 0.01, v, v + 0.01})
    return sorted(out)


def _numbers(facts: ContractFacts, name: str, integer: bool,
             lo: float, hi: float) -> SearchStrategy[Any]:
    near = _near(facts.numbers(name), integer)
    if integer:
        base: SearchStrategy[Any] = st.integers(int(lo), int(hi))
        picks: list[Any] = [int(v) for v in near if v == int(v)]
    else:
        base = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
        picks = list(near)
    return st.one_of(st.sampled_from(picks), base) if picks else base


def _attribute(facts: ContractFacts, name: str, typ: str, as_of: dt.date,
               nulls: bool, users: Sequence[str]) -> SearchStrategy[Any]:
    strat: SearchStrategy[Any]
    if typ == "int":
        strat = _numbers(facts, name, True, 0, 200)
    elif typ == "float":
        # sometimes an extreme: an attribute may hold inf (read as a value; arithmetic on it
        # may give NaN, which is null) or 1e308 (one more product overflows)
        strat = st.integers(0, 7).flatmap(
            lambda k: st.sampled_from(FLOAT_EXTREMES) if k == 0
            else _numbers(facts, name, False, -10.0, 1000.0))
    elif typ == "bool":
        strat = st.booleans()
    elif typ == "str":
        pool = facts.strings(name) + list(users[:3]) + ["other"]
        strat = st.sampled_from(pool)
    elif typ == "date":
        strat = st.integers(-800, 60).map(lambda d: as_of + dt.timedelta(days=d))
    else:
        base = dt.datetime.combine(as_of, dt.time())
        strat = st.integers(-800 * _DAY, 60 * _DAY).map(
            lambda m: base + dt.timedelta(minutes=m))
    return st.one_of(st.none(), strat) if nulls else strat


def _attr_dtype(typ: str, tz: str | None) -> pl.DataType:
    return {
        "int": pl.Int64(), "float": pl.Float64(), "str": pl.String(), "bool": pl.Boolean(),
        "date": pl.Date(),
    }.get(typ, pl.Datetime("us", tz))


def _user_pool(n: int) -> list[str]:
    return [f"u{i}" for i in range(n)]


def accounts_for(
    source: Source,
    *,
    as_of: dt.date | dt.datetime,
    ids: Sequence[str] | None = None,
    min_size: int = 1,
    max_size: int = 6,
    nulls: bool = True,
) -> SearchStrategy[pl.DataFrame]:
    """Accounts frames that fit the roadmap's data contract.

    Parameters
    ----------
    source
        A roadmap or a loaded pack.
    as_of
        Dates are drawn around it (from about two years before to two months after).
    ids
        The account keys to use (default ``a0``, ``a1``, ...; the frame has from
        ``min_size`` to ``max_size`` rows).
    min_size, max_size
        How many accounts, when ``ids`` is not given.
    nulls
        Whether attributes may be null.

    Returns
    -------
    SearchStrategy[polars.DataFrame]
        The key column (text) and every declared attribute, typed; one row per account.
        With an account hierarchy (``data.accounts.parent``), the parent column too: a
        forest, each account's parent (or null) listed before it.
        When the roadmap declares validity columns (``data.accounts.valid_from`` /
        ``valid_to`` or ``snapshot``), one row per account and version instead, with those
        columns (``Date``): versions change around ``as_of`` (a few weeks before to a few
        days after), so some accounts start after it, some end before it and some change
        in the windows the indicators read. Each version's attributes are drawn anew.
    """
    facts = contract_facts(source)
    day = as_of.date() if isinstance(as_of, dt.datetime) else as_of
    users = _user_pool(6)
    roadmaps = _roadmaps(source)
    validity = roadmaps[0].data.accounts.validity if roadmaps else ()

    @st.composite
    def draw_accounts(draw: DrawFn) -> pl.DataFrame:
        if ids is not None:
            keys = list(ids)
        else:
            n = draw(st.integers(min_size, max_size))
            keys = [f"a{i}" for i in range(n)]
        rows, spans = _versions(draw, keys, day, validity)
        cols: dict[str, list[Any]] = {facts.account_key: rows}
        for name, typ in facts.attributes.items():
            strat = _attribute(facts, name, typ, day, nulls, users)
            cols[name] = [draw(strat) for _ in rows]
        schema: dict[str, pl.DataType] = {
            facts.account_key: pl.String(),
            **{n: _attr_dtype(t, facts.timezone) for n, t in facts.attributes.items()}}
        if facts.parent is not None:
            parents = {key: None if k == 0 or draw(st.booleans())
                       else keys[draw(st.integers(0, k - 1))] for k, key in enumerate(keys)}
            cols[facts.parent] = [parents[key] for key in rows]
            schema[facts.parent] = pl.String()
        for name, values in zip(validity, spans, strict=True):
            cols[name] = values
            schema[name] = pl.Date()
        frame = pl.DataFrame({k: cols[k] for k in schema}, schema=schema)
        return frame

    return draw_accounts()


def _versions(draw: DrawFn, keys: list[str], day: dt.date, validity: tuple[str, ...],
              ) -> tuple[list[str], list[list[dt.date | None]]]:
    """The key of every account row, and the values of each validity column per row.

    Type-2: each account has one to three back-to-back versions, starting a few weeks
    before ``day`` to a few days after it; the last one is open or ends (before or after
    ``day``). Snapshots: one to three snapshot dates of the frame, each account in some.
    """
    if not validity:
        return keys, []
    offsets = st.integers(-45, 6)
    if len(validity) == 1:
        snaps = sorted(draw(st.sets(offsets, min_size=1, max_size=3)))
        rows: list[str] = []
        taken: list[dt.date | None] = []
        for key in keys:
            for k in snaps:
                if draw(st.integers(0, 3)) > 0:
                    rows.append(key)
                    taken.append(day + dt.timedelta(days=k))
        return rows, [taken]
    rows = []
    lo: list[dt.date | None] = []
    hi: list[dt.date | None] = []
    for key in keys:
        starts = sorted(draw(st.sets(offsets, min_size=1, max_size=3)))
        last = draw(st.none() | st.integers(starts[-1] + 1, starts[-1] + 40))
        for i, k in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else last
            rows.append(key)
            lo.append(day + dt.timedelta(days=k))
            hi.append(None if end is None else day + dt.timedelta(days=end))
    return rows, [lo, hi]


def events_for(
    source: Source,
    *,
    as_of: dt.date | dt.datetime,
    accounts: Sequence[str] | None = None,
    max_events: int = 60,
    horizon_days: int | None = None,
    users: int = 6,
    nulls: bool = True,
    event_source: str | None = None,
) -> SearchStrategy[pl.DataFrame]:
    """Events frames that fit the roadmap's data contract (one event source's frame).

    Event names are those the indicators filter on (plus one no filter reads), users come from
    a small pool (``u0``...), times fall in the span the windows read and around every window
    edge (including a little after ``as_of``, which must never count), and value columns get
    numbers around the thresholds the expressions use.

    Parameters
    ----------
    source
        A roadmap or a loaded pack.
    as_of
        The evaluation time the events are placed around.
    accounts
        Account keys to draw from (default ``a0`` to ``a5``).
    max_events
        The most events in one frame.
    horizon_days
        How far back events go (default: twice the longest trailing window, at least 400).
    users
        Size of the user pool.
    nulls
        Whether value columns and users may be null.
    event_source
        The event source whose frame to draw (default: the default source).

    Returns
    -------
    SearchStrategy[polars.DataFrame]
        Columns of the contract, the timestamp in the declared time zone.
    """
    facts = contract_facts(source, event_source)
    keys = list(accounts) if accounts is not None else [f"a{i}" for i in range(6)]
    if not keys:
        raise ValueError("events_for needs at least one account key")
    end = (as_of.replace(tzinfo=None) if isinstance(as_of, dt.datetime)
           else dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time()))
    horizon = horizon_days or max([400, *(2 * w + 2 for w in facts.windows)])
    edges = sorted({0, *facts.windows, *(2 * w for w in facts.windows)})
    names = [*facts.event_names, "unrelated_event"]
    pool = _user_pool(max(users, 1))
    offsets = st.one_of(
        st.integers(-horizon * _DAY, 2 * _DAY),
        st.sampled_from(edges).flatmap(
            lambda d: st.integers(-d * _DAY - 2, -d * _DAY + 1)),
    )
    value_strats = {
        name: (_numbers(facts, name, True, -5, 100) if typ == "int" else st.one_of(
            _numbers(facts, name, False, -5.0, 100), st.sampled_from(SUM_PROBES)))
        for name, typ in facts.values.items()
    }
    if nulls:
        value_strats = {k: st.one_of(st.none(), v) for k, v in value_strats.items()}
    user_strat: SearchStrategy[str | None] = st.sampled_from(pool)
    if nulls:
        user_strat = st.one_of(st.none(), user_strat)
    row = st.tuples(st.sampled_from(keys), st.sampled_from(names), offsets, user_strat,
                    st.fixed_dictionaries(value_strats))

    def build(rows: list[tuple[str, str, int, str | None, dict[str, Any]]]) -> pl.DataFrame:
        schema: dict[str, pl.DataType] = {facts.account_col: pl.String()}
        if facts.user_col is not None:
            schema[facts.user_col] = pl.String()
        if facts.event_col is not None:  # one kind of event: no event-name column
            schema[facts.event_col] = pl.String()
        schema[facts.timestamp_col] = pl.Datetime("us")
        for name, typ in facts.values.items():
            schema[name] = pl.Int64() if typ == "int" else pl.Float64()
        cols: dict[str, list[Any]] = {k: [] for k in schema}
        for acc, event, minutes, user, vals in rows:
            cols[facts.account_col].append(acc)
            if facts.user_col is not None:
                cols[facts.user_col].append(user)
            if facts.event_col is not None:
                cols[facts.event_col].append(event)
            cols[facts.timestamp_col].append(end + dt.timedelta(minutes=minutes))
            for name in facts.values:
                cols[name].append(vals.get(name))
        frame = pl.DataFrame(cols, schema=schema)
        if facts.timezone is not None:
            # wall times a daylight-saving change skips or repeats read as the engine reads
            # them (the offset before the change)
            frame = frame.with_columns(
                zoned_wall_time(pl.col(facts.timestamp_col), facts.timezone))
        return frame

    return st.lists(row, max_size=max_events).map(build)


def inputs_for(
    source: Source,
    *,
    as_of: dt.date | dt.datetime,
    max_accounts: int = 5,
    max_events: int = 60,
    nulls: bool = True,
) -> SearchStrategy[tuple[pl.DataFrame, Any]]:
    """(accounts, events) pairs that fit the roadmap and refer to each other.

    ``events`` is one frame, or, when the roadmap declares named event sources, a dict of
    one frame per source (what :func:`healthrules.evaluate` takes).

    Parameters
    ----------
    source
        A roadmap or a loaded pack.
    as_of
        The evaluation time.
    max_accounts, max_events
        Size limits.
    nulls
        Whether attributes, users and values may be null.

    Returns
    -------
    SearchStrategy[tuple[polars.DataFrame, polars.DataFrame | dict[str, polars.DataFrame]]]
    """
    first = _roadmaps(source)[0]

    @st.composite
    def draw_inputs(draw: DrawFn) -> tuple[pl.DataFrame, Any]:
        n = draw(st.integers(1, max_accounts))
        ids = [f"a{i}" for i in range(n)]
        accounts = draw(accounts_for(source, as_of=as_of, ids=ids, nulls=nulls))
        if not first.data.named_sources:
            return accounts, draw(events_for(source, as_of=as_of, accounts=ids,
                                             max_events=max_events, nulls=nulls))
        events = {name: draw(events_for(source, as_of=as_of, accounts=ids,
                                        max_events=max_events, nulls=nulls,
                                        event_source=name))
                  for name in first.data.sources}
        return accounts, events

    return draw_inputs()


# --------------------------------------------------------------------------- roadmaps

_EVENTS = ("login", "feature_used", "ticket", "nps_response")
_AGGS = ("count", "distinct", "active_days", "sum", "mean", "max", "days_since_last", "median",
         "percentile")
_WINDOWS: tuple[Any, ...] = ("all", "7d", "30d", "90d", {"from": "start"},
                             {"from": "start", "days": 30})


@st.composite
def _bands(draw: DrawFn, integer: bool) -> dict[str, Any]:
    n = draw(st.integers(1, 3))
    if integer:
        cuts = sorted(draw(st.sets(st.integers(0, 30), min_size=n, max_size=n)))
    else:
        cuts = sorted(draw(st.sets(st.sampled_from([0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 10.0]),
                                   min_size=n, max_size=n)))
    lower_inclusive = draw(st.booleans())
    levels: list[dict[str, Any]] = []
    for i in range(n + 1):
        level: dict[str, Any] = {"name": f"b{i}"}
        if i > 0:
            level["ge" if lower_inclusive else "gt"] = cuts[i - 1]
        if i < n:
            level["lt" if lower_inclusive else "le"] = cuts[i]
        levels.append(level)
    direction = draw(st.sampled_from(["higher_is_better", "lower_is_better"]))
    return {"direction": direction, "levels": levels}


@dataclass(frozen=True)
class _SourceTemplate:
    """An event source the generated roadmaps may declare."""

    columns: dict[str, Any]
    event_col: str | None
    events: tuple[str, ...]
    value: str
    user: bool


_SOURCES: dict[str, _SourceTemplate] = {
    "usage": _SourceTemplate({"values": {"value": "float"}}, "event", _EVENTS, "value", True),
    "tickets": _SourceTemplate(
        {"event": "kind", "user": None, "timestamp": "opened_at",
         "values": {"severity": "int"}}, "kind", ("opened", "escalated", "closed"),
        "severity", False),
    "surveys": _SourceTemplate(
        {"event": None, "user": "respondent", "timestamp": "answered_at",
         "values": {"nps": "int", "value": "float"}}, None, (), "nps", True),
}


@st.composite
def _roadmap(draw: DrawFn, max_indicators: int, max_stages: int,
             max_actions: int, max_sources: int = 1) -> Roadmap:
    families = ("process", "relationship", "outcome")
    n_agg = draw(st.integers(1, max(1, max_indicators)))
    indicators: list[dict[str, Any]] = []
    numeric: list[tuple[str, bool]] = []  # (id, is integer)
    n_sources = draw(st.integers(1, min(max_sources, len(_SOURCES)))) if max_sources > 1 else 1
    names = ["usage", *draw(st.permutations(["tickets", "surveys"]))[:n_sources - 1]]
    if n_sources > 1:
        names = draw(st.permutations(names))  # any of them may be the default
    for i in range(n_agg):
        agg = draw(st.sampled_from(_AGGS))
        src_name = draw(st.sampled_from(names)) if max_sources > 1 else "usage"
        tpl = _SOURCES[src_name]
        ind: dict[str, Any] = {
            "id": f"i{i}", "family": draw(st.sampled_from(families)), "aggregate": agg,
            "window": draw(st.sampled_from(_WINDOWS)),
        }
        if tpl.event_col is not None:
            event = draw(st.sampled_from(tpl.events))
            ind["where"] = f"{tpl.event_col} == '{event}'"
        elif draw(st.booleans()):
            ind["where"] = f"{tpl.value} >= {draw(st.integers(0, 10))}"
        if max_sources > 1 and (src_name != names[0] or draw(st.booleans())):
            ind["source"] = src_name
        if agg in ("sum", "mean", "max", "median", "percentile"):
            ind["of"] = tpl.value
        elif agg == "distinct" and not tpl.user:
            ind["of"] = tpl.event_col
        if agg == "percentile":
            ind["q"] = draw(st.sampled_from([0.1, 0.25, 0.75, 0.9, 0.95]))
        trailing = isinstance(ind["window"], str) and ind["window"] != "all"
        if trailing and agg in ("count", "sum") and draw(st.booleans()):
            ind["compare"] = draw(st.sampled_from(["delta", "pct_change", "previous"]))
        integer = agg in ("count", "distinct", "active_days", "days_since_last") and ind.get(
            "compare") != "pct_change"
        if draw(st.booleans()):
            ind["bands"] = draw(_bands(integer))
            if draw(st.integers(0, 2)) == 0:  # its own missing policy
                ind["missing"] = draw(st.sampled_from(["skip", "neutral", "worst"]))
        indicators.append(ind)
        numeric.append((ind["id"], integer))
    if draw(st.booleans()):
        a = draw(st.sampled_from([n for n, _ in numeric]))
        expr = draw(st.sampled_from([f"{a} / seats", f"{a} * 2", f"coalesce({a}, 0) + 1",
                                     f"{a} * arr - arr", f"{a} - arr * 1e308"]))
        ind = {"id": "d0", "family": draw(st.sampled_from(families)), "expr": expr}
        if draw(st.booleans()):
            ind["bands"] = draw(_bands(False))
        indicators.append(ind)
        numeric.append(("d0", False))
    hierarchy = draw(st.booleans())
    if hierarchy:
        # spend in the first week after the first login (a window anchored at an event
        # time), and roll-ups of the children's values up to their parent
        anchor: dict[str, Any] = {"id": "first_login", "family": "process",
                                  "aggregate": "first_time", "where": "event == 'login'"}
        anchored: dict[str, Any] = {"id": "first_week", "family": "outcome", "aggregate": "sum",
                                    "of": "value", "window": {"from": "first_login", "days": 7}}
        if max_sources > 1:  # both read the usage source, named (the default or not)
            anchor["source"] = anchored["source"] = "usage"
        indicators += [anchor, anchored]
        numeric.append(("first_week", False))
        child = draw(st.sampled_from([n for n, _ in numeric]))
        agg = draw(st.sampled_from(["sum", "mean", "weighted_mean", "max", "count", "share"]))
        rollup: dict[str, Any] = {"id": "children", "kind": "rollup", "aggregate": agg,
                                  "family": draw(st.sampled_from(families)),
                                  "of": f"{child} > 1" if agg in ("count", "share") else child}
        if agg == "weighted_mean":
            rollup["weight"] = "seats"
        if draw(st.booleans()):
            rollup["bands"] = draw(_bands(agg == "count"))
        indicators.append(rollup)
        numeric.append(("children", agg == "count"))
        if draw(st.booleans()):
            # a roll-up of roll-ups: each account's children's `children` (its grandchildren,
            # through them), one level up
            agg2 = draw(st.sampled_from(["sum", "max", "count"]))
            indicators.append({"id": "grandchildren", "kind": "rollup", "aggregate": agg2,
                               "family": draw(st.sampled_from(families)),
                               "of": "children > 1" if agg2 == "count" else "children"})
            numeric.append(("grandchildren", agg2 == "count" or agg == "count"))
    # a derived trend: this window against the previous one, over trailing aggregates of
    # one length without a compare of their own
    by_window: dict[str, list[str]] = {}
    for ind in indicators:
        if (isinstance(ind.get("window"), str) and ind["window"] != "all"
                and "compare" not in ind and "expr" not in ind):
            by_window.setdefault(ind["window"], []).append(ind["id"])
    with_trend: bool = bool(by_window) and draw(st.booleans())
    if with_trend:
        ids = by_window[draw(st.sampled_from(sorted(by_window)))]
        a = draw(st.sampled_from(ids))
        trend = {"id": "t0", "family": draw(st.sampled_from(families)),
                 "expr": draw(st.sampled_from([f"{a} / seats", f"coalesce({a}, 0) + 1"])),
                 "compare": draw(st.sampled_from(["previous", "delta", "pct_change"]))}
        indicators.append(trend)
        numeric.append(("t0", False))
    banded = [i["id"] for i in indicators if "bands" in i]

    def condition() -> SearchStrategy[str]:
        name_int = st.sampled_from(numeric)
        simple = name_int.flatmap(lambda ni: st.tuples(
            st.just(ni[0]), st.sampled_from(["<", "<=", ">", ">=", "=="]),
            st.integers(0, 10) if ni[1] else st.sampled_from([0.0, 0.5, 1.0, 3.5]),
        ).map(lambda t: f"{t[0]} {t[1]} {t[2]}"))
        attr = st.sampled_from(["plan == 'pro'", "seats >= 10", "days_since(start) < 90",
                                "plan in ('basic', 'pro')", "arr * 2 - arr > 100"])
        options = [simple, attr]
        if banded:
            options.append(st.sampled_from(banded).map(lambda b: f"band({b}) == 'b0'"))
        one = st.one_of(*options)
        return st.one_of(one, st.tuples(one, st.sampled_from(["and", "or"]), one).map(
            lambda t: f"({t[0]}) {t[1]} ({t[2]})"))

    goal: dict[str, Any] = {"text": "Generated roadmap"}
    if draw(st.booleans()):
        goal["target"] = draw(condition())
    n_stages = draw(st.integers(1, max(1, max_stages)))
    stages: list[dict[str, Any]] = []
    action_id = 0
    for s in range(n_stages):
        stage: dict[str, Any] = {"id": f"s{s}"}
        if s < n_stages - 1 or draw(st.booleans()):
            stage["entry"] = draw(condition())
        if draw(st.booleans()):
            stage["achievement"] = {"text": "done", "when": draw(condition())}
        actions = []
        for _ in range(draw(st.integers(0, max_actions))):
            name = draw(st.sampled_from([n for n, _ in numeric]))
            computed = draw(st.sampled_from([f"{name} * 2:.1f", "days_since(start)",
                                             f"change({name}, 7)", "prev(score, 14):.1f"]))
            whens = [condition(), st.just("score < 50")]
            if "target" in goal:
                whens.append(st.just("goal_reached"))
            action: dict[str, Any] = {
                "id": f"act{action_id}", "kind": draw(st.sampled_from(["positive",
                                                                       "challenge"])),
                "when": draw(st.one_of(*whens)),
                "do": f"Look at {{{name}}} ({{{name}:.1f}}, {{{computed}}})",
                "priority": draw(st.sampled_from(["critical", "high", "medium", "low"])),
            }
            due = draw(st.sampled_from([None, "3d", "2w", "start"]))
            if due is not None:  # routing: a due date and the person who acts
                action["due"] = due
                action["do"] += " by {due_date}"
            owner = draw(st.sampled_from([None, "csm", {"attribute": "plan", "role": "csm"}]))
            if owner is not None:
                action["owner"] = owner
            actions.append(action)
            action_id += 1
        stage["actions"] = actions
        stages.append(stage)
    score: dict[str, Any] = {"missing": draw(st.sampled_from(["skip", "neutral", "worst"]))}
    use_weights = draw(st.booleans())
    if banded and use_weights:
        score["weights"] = {"indicators": {b: draw(st.integers(1, 3)) for b in banded}}
    if draw(st.booleans()):
        score["bands"] = {"levels": [{"name": "low", "lt": 40}, {"name": "mid", "ge": 40,
                                                                   "lt": 70},
                                     {"name": "high", "ge": 70}]}
    if draw(st.booleans()) and banded:
        segment: dict[str, Any] = {"id": "pro", "applies_to": draw(condition()),
                                   "weights": {"indicators": {banded[-1]: 1}}}
        if draw(st.booleans()):
            segment["bands"] = {"levels": [{"name": "low", "lt": 60}, {"name": "high", "ge": 60}]}
        score["segments"] = [segment]
    accounts: dict[str, Any] = {"attributes": {"plan": "str", "seats": "int", "start": "date",
                                               "arr": "float"}}
    if hierarchy:
        accounts["parent"] = "parent_id"
    events: dict[str, Any] = (
        {"values": {"value": "float"}} if max_sources <= 1
        else {name: _SOURCES[name].columns for name in names})
    data = {
        "id": "fuzz",
        "goal": goal,
        "data": {
            "events": events,
            "accounts": accounts,
        },
        "indicators": indicators,
        "stages": stages,
        "score": score,
    }
    return Roadmap.model_validate(data)


def roadmaps(*, max_indicators: int = 4, max_stages: int = 3,
             max_actions: int = 2, max_sources: int = 1) -> SearchStrategy[Roadmap]:
    """Small valid roadmaps: aggregates (percentiles too), a derived ratio, a derived trend,
    bands (with their own missing policies), a goal target, stages, actions (texts with
    computed values), a score.

    Some have a score segment, and some an account hierarchy: a window anchored at an event
    time (the first login), a roll-up indicator (sometimes a roll-up of it one level up, a
    roll-up of roll-ups) and ``data.accounts.parent: parent_id``.
    Every roadmap drawn compiles (:func:`healthrules.compile`). Its data contract is fixed:
    events with a user and a float ``value`` column, accounts with ``plan`` (str), ``seats``
    (int), ``start`` (date) and ``arr`` (float, which :func:`inputs_for` sometimes draws
    as ``inf``, ``-inf`` or ``1e308``) and, with a hierarchy, ``parent_id``, so :func:`inputs_for`
    can feed it. With ``max_sources`` above
    1, ``data.events`` declares from one to that many named sources (``usage``; ``tickets``
    with an event column ``kind``, no user and an int ``severity``; ``surveys`` with no
    event column, a user ``respondent`` and ``nps``), in any order, and each aggregate
    indicator reads one of them (the anchored window and its anchor read ``usage``).

    Parameters
    ----------
    max_indicators
        The most aggregate indicators (a derived one may come on top).
    max_stages
        The most stages.
    max_actions
        The most actions per stage.
    max_sources
        The most event sources (1: the plain ``data.events`` form; at most 3).

    Returns
    -------
    SearchStrategy[Roadmap]
    """
    return _roadmap(max_indicators, max_stages, max_actions, max_sources)
