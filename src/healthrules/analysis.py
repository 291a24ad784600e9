"""Cross-node checks of a roadmap (names, types, cycles) and the facts the compiler needs.

This runs after the pydantic models have validated each node. It resolves every name an
expression or a reference uses, infers the type of every indicator, orders derived indicators
by their dependencies (rejecting cycles), and reports every problem at once as
:class:`~healthrules.errors.Issue` records whose location holds the YAML path; the loader adds
file, line and column. No polars here: loading and linting stay engine-free.
"""

from __future__ import annotations

import ast
import re
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from healthrules.aggregates import AGGREGATE_KINDS
from healthrules.errors import Code, Issue, Location
from healthrules.expressions import (
    FUNCTIONS,
    TIME_FUNCTIONS,
    TIME_NAMES,
    ExprProblem,
    Parsed,
    Type,
    column_of,
    did_you_mean,
    infer,
    parse,
    time_references,
)
from healthrules.roadmap import (
    Action,
    AggregateIndicator,
    DerivedIndicator,
    Roadmap,
    RollupIndicator,
)

__all__ = [
    "RESERVED_NAMES",
    "Analysis",
    "TemplateField",
    "analysis_of",
    "analyze",
    "parse_template",
    "score_band_names",
]

RESERVED_NAMES: dict[str, Type] = {
    "as_of": "date",
    "score": "float",
    "score_band": "str",
    "stage": "str",
    "stage_achieved": "bool",
    "goal_reached": "bool",
    **TIME_NAMES,
}
"""Names every action expression can read, besides indicators and account attributes.

``days_in_stage`` (change over time) is null in a single evaluation; history() and the state
store fill it in (docs/time.md).
"""

_ACTION_ONLY = {"score", "score_band", "stage", "stage_achieved", "goal_reached"}

_TEMPLATE_FIELD = re.compile(r"\{([^{}]*)\}")
_FORMAT_SPEC = re.compile(r"^(\.\d{1,2}[f%]|d|)$")
MAX_DECIMALS = 12
"""The most decimals a ``{name:.Nf}`` / ``{name:.N%}`` placeholder may ask for."""


@dataclass(frozen=True, slots=True)
class TemplateField:
    """One ``{name:spec}`` or ``{expression:spec}`` placeholder of an action's ``do`` text.

    ``name`` is the name quoted, or the expression's text; ``parsed`` is the expression
    (None for a plain name), ``value_start`` the 0-based offset of ``name`` in the text, and
    ``type`` the expression's type once the analysis has checked it.
    """

    name: str
    spec: str
    start: int
    end: int
    parsed: Parsed | None = None
    value_start: int = 0
    type: Type | None = None

    @property
    def names(self) -> frozenset[str]:
        """The names the placeholder reads."""
        return self.parsed.names if self.parsed is not None else frozenset({self.name})


def parse_template(text: str) -> list[TemplateField | str]:
    """Split ``do`` text into literal pieces and placeholders (``{{`` and ``}}`` escape braces).

    Raises
    ------
    ExprProblem
        On a malformed placeholder or a format spec other than ``.Nf``, ``.N%`` or ``d``.
    """
    out: list[TemplateField | str] = []
    i = 0
    buf: list[str] = []
    while i < len(text):
        ch = text[i]
        if text.startswith("{{", i) or text.startswith("}}", i):
            buf.append(ch)
            i += 2
            continue
        if ch == "}":
            raise ExprProblem(
                "template_invalid", "unmatched '}' in the text (write '}}' for a brace)", i + 1
            )
        if ch == "{":
            close = text.find("}", i)
            if close < 0:
                raise ExprProblem(
                    "template_invalid", "unclosed '{' in the text (write '{{' for a brace)", i + 1
                )
            inner = text[i + 1 : close]
            head, colon, spec = inner.rpartition(":")
            if not colon:
                head, spec = inner, ""
            name = head.strip()
            value_start = i + 1 + len(head) - len(head.lstrip())
            parsed: Parsed | None = None
            if not name:
                raise ExprProblem(
                    "template_invalid", f"{{{inner}}} must name a value, like {{logins_30d}} "
                    "or {days_since(signed_on)}", i + 1
                )
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                try:
                    parsed = parse(name)
                except ExprProblem as p:
                    raise ExprProblem(p.code, f"in the placeholder {{{inner}}}: {p.message}",
                                      value_start + (p.column or 1), p.hint) from None
                if not parsed.names:
                    raise ExprProblem(
                        "template_invalid", f"{{{inner}}} reads no value: a placeholder quotes "
                        "a value, like {logins_30d} or {days_since(signed_on)}", i + 1
                    )
            if not _FORMAT_SPEC.match(spec):
                raise ExprProblem(
                    "template_invalid",
                    f"format {spec!r} is not supported: use .1f (decimals), .0% (percent) or d",
                    i + 1,
                )
            if spec[1:-1].isdigit() and int(spec[1:-1]) > MAX_DECIMALS:
                raise ExprProblem(
                    "template_invalid",
                    f"format {spec!r} asks for {int(spec[1:-1])} decimals; at most "
                    f"{MAX_DECIMALS}", i + 2 + len(inner) - len(spec),
                )
            if buf:
                out.append("".join(buf))
                buf = []
            out.append(TemplateField(name=name, spec=spec, start=i, end=close + 1, parsed=parsed,
                                     value_start=value_start))
            i = close + 1
            continue
        buf.append(ch)
        i += 1
    if buf:
        out.append("".join(buf))
    return out


@dataclass
class Analysis:
    """What the compiler needs: types, parsed expressions by YAML path, and indicator order."""

    roadmap: Roadmap
    indicator_types: dict[str, Type] = field(default_factory=dict)
    attribute_types: dict[str, Type] = field(default_factory=dict)
    event_types: dict[str, Type] = field(default_factory=dict)
    """The event columns filters can read, over every source (the first source's type wins)."""
    source_types: dict[str, dict[str, Type]] = field(default_factory=dict)
    """The event columns of each source (``data.events``), by source name."""
    indicator_sources: dict[str, str] = field(default_factory=dict)
    """The source each aggregate indicator reads, by indicator id."""
    expressions: dict[str, Parsed] = field(default_factory=dict)
    templates: dict[str, list[TemplateField | str]] = field(default_factory=dict)
    derived_order: list[str] = field(default_factory=list)
    rollup_order: list[str] = field(default_factory=list)
    """The roll-up indicators, in evaluation order (by level, then dependency order)."""
    after_rollups: set[str] = field(default_factory=set)
    """Derived indicators that read a roll-up (directly or through others): level 1 or more."""
    rollup_levels: dict[str, int] = field(default_factory=dict)
    """The level of every derived and roll-up indicator: 0 reads no roll-up; a roll-up is one
    more than the highest level its ``of`` and ``weight`` read (a roll-up of roll-ups is at
    level 2); a derived indicator is at the highest level it reads. Level ``k`` is computed
    over every row before level ``k + 1``, so a grandparent's level-2 roll-up reads its
    children's level-1 roll-ups, which were computed from the grandchildren."""
    anchor_levels: dict[str, int] = field(default_factory=dict)
    needed_attributes_in_filters: set[str] = field(default_factory=set)
    previous_windows: set[str] = field(default_factory=set)
    """Aggregate indicators whose previous window is computed: those with ``compare``, and
    those a derived trend reads."""
    derived_trends: dict[str, int] = field(default_factory=dict)
    """Derived indicators with ``compare``, and the length in days of their period."""
    trend_reads: set[str] = field(default_factory=set)
    """Aggregate indicators that derived trends read (their previous values are kept)."""
    previous_derived: set[tuple[str, int]] = field(default_factory=set)
    """(derived indicator, days): the derived indicators whose previous value a derived trend
    of that period needs (the trend itself included)."""
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no error was found."""
        return not self.issues

    def env(self, scope: str, source: str | None = None) -> dict[str, Type]:
        """The names visible in one kind of expression (see docs/expressions.md).

        A filter (``scope="filter"``) reads the columns of its indicator's ``source``
        (without one: the columns of every source).
        """
        attrs = dict(self.attribute_types)
        if scope == "filter":
            columns = self.event_types if source is None else self.source_types.get(source, {})
            return {**attrs, **columns, "as_of": "date"}
        if scope == "accounts":
            return {**attrs, "as_of": "date"}
        if scope == "indicators":
            return {**attrs, **self.indicator_types, "as_of": "date"}
        if scope == "actions":
            env = {**attrs, **self.indicator_types, **RESERVED_NAMES}
            score = self.roadmap.score
            if score.bands is None and all(s.bands is None for s in score.segments):
                env.pop("score_band")
            if score.segments:
                env["segment"] = "str"
            if self.roadmap.goal.target is None:  # goal.target says when the goal is reached
                env.pop("goal_reached")
            return env
        raise ValueError(scope)

    def anchored_on_indicator(self, ind: AggregateIndicator) -> bool:
        """True when the indicator's window starts at another indicator (not an attribute)."""
        return ind.window.from_ is not None and ind.window.from_ not in self.attribute_types

    @property
    def banded(self) -> frozenset[str]:
        """Indicators that have bands (``band(x)`` accepts these)."""
        return frozenset(i.id for i in self.roadmap.indicators if i.bands is not None)


def _agg_type(ind: AggregateIndicator, value_types: Mapping[str, Type]) -> Type:
    if ind.compare == "pct_change":
        return "float"
    return AGGREGATE_KINDS[ind.aggregate].result_type(value_types.get(ind.of or ""))


_CACHE: dict[int, tuple[weakref.ref[Roadmap], Analysis]] = {}


def analysis_of(roadmap: Roadmap) -> Analysis:
    """The analysis of a roadmap, computed once per roadmap object and then reused.

    Roadmaps are frozen, so an analysis stays valid for the object's life; the loader, the
    compiler and lint all read it from here, so a roadmap is analysed once per load.
    """
    hit = _CACHE.get(id(roadmap))
    if hit is not None and hit[0]() is roadmap:
        return hit[1]
    result = analyze(roadmap)
    key = id(roadmap)
    cache = _CACHE

    def forget(ref: weakref.ref[Roadmap]) -> None:
        if key in cache and cache[key][0] is ref:
            del cache[key]

    cache[key] = (weakref.ref(roadmap, forget), result)
    return result


_Problem = tuple[str | Code, str, str | None, int | None]
"""A problem of an expression text: code, message, hint, column (reported at a path)."""


def analyze(roadmap: Roadmap) -> Analysis:
    """Check a validated roadmap's names, types and dependencies; never raises for bad input.

    Returns
    -------
    Analysis
        With ``issues`` empty when the roadmap is sound.
    """
    a = Analysis(roadmap=roadmap)
    issues = a.issues
    data = roadmap.data
    a.attribute_types = dict(data.accounts.attributes)
    sources = data.sources
    default_source = data.default_source
    for name, cols in sources.items():
        types: dict[str, Type] = {cols.timestamp: "datetime"}
        if cols.event is not None:
            types[cols.event] = "str"
        if cols.user is not None:
            types[cols.user] = "str"
        types.update(cols.values)
        a.source_types[name] = types
        for column, col_type in types.items():
            a.event_types.setdefault(column, col_type)
    account_columns = {cols.account for cols in sources.values()}

    def report(code: str | Code, message: str, path: str, hint: str | None = None,
               column: int | None = None, related: str | None = None) -> None:
        ctx: dict[str, object] = {}
        if column is not None:
            ctx["expr_column"] = column
        issues.append(
            Issue(
                code=code.value if isinstance(code, Code) else code,
                message=message,
                location=Location(path=path),
                hint=hint,
                related=Location(path=related) if related else None,
                ctx=ctx,
            )
        )

    if roadmap.data.accounts.parent is None:
        for i, ind in enumerate(roadmap.indicators):
            if isinstance(ind, RollupIndicator):
                report(Code.VALIDATION, f"roll-up indicator {ind.id!r} needs a hierarchy: name "
                       "the parent key column in data.accounts.parent", f"indicators[{i}].kind")

    # ---- unique ids and clashes
    def unique(items: Iterator[tuple[str, str]], what: str) -> None:
        seen: dict[str, str] = {}
        for ident, path in items:
            if ident in seen:
                report(Code.DUPLICATE_ID, f"{what} id {ident!r} is defined twice", path,
                       related=seen[ident])
            else:
                seen[ident] = path

    unique(((ind.id, f"indicators[{i}].id") for i, ind in enumerate(roadmap.indicators)),
           "indicator")
    unique(((st.id, f"stages[{i}].id") for i, st in enumerate(roadmap.stages)), "stage")
    unique(_action_ids(roadmap), "action")

    # prev/change/stuck were added later and are only ever called, so ids may keep those names
    reserved = set(RESERVED_NAMES) | (set(FUNCTIONS) - TIME_FUNCTIONS) | {"True", "False", "None"}
    for i, ind in enumerate(roadmap.indicators):
        path = f"indicators[{i}].id"
        if "__" in ind.id:
            report(Code.NAME_CLASH, f"indicator id {ind.id!r} must not contain '__' (reserved "
                   "for output columns such as <id>__band)", path)
        elif ind.id in reserved:
            report(Code.NAME_CLASH, f"indicator id {ind.id!r} is a reserved name", path)
        elif ind.id in a.attribute_types:
            report(Code.NAME_CLASH,
                   f"indicator id {ind.id!r} is also an account attribute; rename one", path)
    for name in a.attribute_types:
        if name in a.event_types or name in account_columns:
            report(Code.NAME_CLASH,
                   f"account attribute {name!r} has the name of an event column; rename one "
                   "(filters read both)", f"data.accounts.attributes.{name}")
        if name in reserved:
            report(Code.NAME_CLASH, f"account attribute {name!r} is a reserved name",
                   f"data.accounts.attributes.{name}")

    # ---- event sources: one time-zone convention
    zoned = [name for name, cols in sources.items() if cols.timezone is not None]
    if zoned and len(zoned) < len(sources):
        naive = next(name for name in sources if name not in zoned)
        report(Code.VALIDATION,
               f"event source {naive!r} has naive timestamps but {zoned[0]!r} declares a time "
               "zone; declare a timezone for every source or for none (the sources are read "
               "on one clock)", f"{data.source_path(naive)}",
               f"add timezone: {sources[zoned[0]].timezone} (or the zone of its timestamps)")

    # ---- aggregate indicators: sources, columns, windows, types
    for i, ind in enumerate(roadmap.indicators):
        if not isinstance(ind, AggregateIndicator):
            continue
        base = f"indicators[{i}]"
        source = ind.source if ind.source is not None else default_source
        if source not in sources:
            known = ", ".join(sources)
            report(Code.UNKNOWN_NAME,
                   f"unknown event source {source!r} (data.events declares: {known})",
                   f"{base}.source", did_you_mean(source, set(sources)) or (
                       "declare the sources as named entries of data.events, e.g. "
                       f"data.events: {{{default_source}: ..., {source}: ...}}"
                       if not data.named_sources else None))
            a.indicator_types[ind.id] = _agg_type(ind, {})
            continue
        a.indicator_sources[ind.id] = source
        ev = sources[source]
        columns = a.source_types[source]
        values_path = f"{data.source_path(source)}.values"
        value_types: dict[str, Type] = dict(ev.values)
        of_rule = AGGREGATE_KINDS[ind.aggregate].of
        where = f" of source {source!r}" if data.named_sources else ""
        if ind.of is not None:
            if of_rule == "column":
                if ind.of not in columns:
                    report(Code.UNKNOWN_NAME, f"unknown event column {ind.of!r}{where}",
                           f"{base}.of", did_you_mean(ind.of, set(columns)))
            elif ind.of not in value_types:
                report(Code.UNKNOWN_NAME,
                       f"{ind.of!r} is not a numeric value column{where} (declare it under "
                       f"{values_path})", f"{base}.of", did_you_mean(ind.of, set(value_types)))
        elif of_rule == "column" and ev.user is None:
            report(Code.VALIDATION, f"{ind.aggregate} without `of:` counts users, but no user "
                   f"column is declared in {data.source_path(source)}.user", f"{base}.aggregate")
        a.indicator_types[ind.id] = _agg_type(ind, value_types)
    _check_anchors(roadmap, a, report)

    # ---- derived and roll-up indicators: parse, dependencies, cycles, types
    derived = {ind.id: (i, ind) for i, ind in enumerate(roadmap.indicators)
               if isinstance(ind, DerivedIndicator)}
    rollups = {ind.id: (i, ind) for i, ind in enumerate(roadmap.indicators)
               if isinstance(ind, RollupIndicator)}
    nodes: dict[str, tuple[int, DerivedIndicator | RollupIndicator]] = {**derived, **rollups}
    deps: dict[str, set[str]] = {}
    for ident, (i, node) in nodes.items():
        texts = ([(node.expr, f"indicators[{i}].expr")] if isinstance(node, DerivedIndicator)
                 else [(node.of, f"indicators[{i}].of"), (node.weight, f"indicators[{i}].weight")])
        read_names: set[str] = set()
        for text, path in texts:
            if text is None:
                continue
            try:
                parsed = parse(text)
            except ExprProblem as p:
                report(p.code, p.message, path, p.hint, p.column)
                continue
            a.expressions[path] = parsed
            read_names |= {n for n in reads(parsed) if n in nodes}
        deps[ident] = read_names
    order, cycle = _toposort(deps)
    if cycle:
        i0 = nodes[cycle[0]][0]
        what = "expr" if cycle[0] in derived else "of"
        report(Code.CYCLE, "indicators depend on each other in a cycle: " + " -> ".join(cycle),
               f"indicators[{i0}].{what}")
    banded = a.banded
    derived_env: dict[str, Type] = {**{d: "float" for d in nodes}, **a.attribute_types,
                                    **a.indicator_types, "as_of": "date"}
    band_names = {ind.id: [b.name for b in ind.bands.levels]
                  for ind in roadmap.indicators if ind.bands is not None}
    score_bands = score_band_names(roadmap)

    for ident in order:
        i, node = nodes[ident]
        if ident in cycle:  # a cycle is reported once, above
            continue
        level = max((a.rollup_levels.get(d, 0) for d in deps[ident]), default=0)
        if isinstance(node, RollupIndicator):
            a.rollup_levels[ident] = level + 1
            t_or_none = _rollup_type(node, i, a, derived_env, report)
            t = "float" if t_or_none is None else t_or_none
            derived_env[ident] = t
            a.indicator_types[ident] = t
            if t_or_none is not None:
                a.rollup_order.append(ident)
            continue
        a.rollup_levels[ident] = level
        if level:
            a.after_rollups.add(ident)
        path = f"indicators[{i}].expr"
        parsed_or_none = a.expressions.get(path)
        if parsed_or_none is None:
            continue
        # every name but its own; a derived indicator not typed yet (an earlier error) is float
        env = _Without(derived_env, ident)
        try:
            t = infer(parsed_or_none, env, banded=banded)
        except ExprProblem as p:
            report(p.code, p.message, path, p.hint, p.column)
            a.indicator_types[ident] = "float"
            continue
        if t == "null":
            report(Code.EXPR_TYPE, "the expression is always null", path)
            t = "float"
        assert isinstance(node, DerivedIndicator)
        if node.compare != "none":
            if t not in ("int", "float"):
                report(Code.EXPR_TYPE, f"compare: {node.compare} needs a number; {ident!r} is "
                       f"{t}", f"indicators[{i}].compare")
            elif node.compare == "pct_change":
                t = "float"
        derived_env[ident] = t
        for problem in unknown_bands(parsed_or_none, band_names, None):
            report(problem.code, problem.message, path, problem.hint, problem.column)
        a.indicator_types[ident] = t
    a.derived_order = [d for d in order if d in derived]
    # level by level; inside a level, dependency order (stable sort of a topological order)
    a.rollup_order.sort(key=lambda ident: a.rollup_levels[ident])
    for ident in nodes:
        a.indicator_types.setdefault(ident, "float")
    for ident, (i, node) in nodes.items():
        if node.bands is not None and a.indicator_types[ident] not in ("int", "float"):
            report(Code.BANDS_INVALID, f"indicator {ident!r} is {a.indicator_types[ident]}: "
                   "only numbers have bands", f"indicators[{i}].bands")
    _derived_trends(roadmap, a, report)

    # ---- every other expression, by scope
    envs: dict[str, dict[str, Type]] = {}  # the names of each scope, built once

    # a text checked once per scope, source and kind (roadmaps repeat filters such as
    # ``event == 'login'`` over many indicators): its problems, or its parsed form
    outcomes: dict[tuple[str, str, str | None, bool], tuple[list[_Problem], Parsed | None]] = {}

    def check(text: str | None, path: str, scope: str, want_bool: bool = True,
              source: str | None = None) -> None:
        if text is None:
            return
        memo = (text, scope, source, want_bool)
        got = outcomes.get(memo)
        if got is None:
            got = outcomes[memo] = checked_text(text, scope, want_bool, source)
        problems, parsed = got
        for code, message, hint, column in problems:
            report(code, message, path, hint, column)
        if parsed is None:
            return
        a.expressions[path] = parsed
        if scope == "filter":
            names = filter_names.get(parsed.source)
            if names is None:
                names = filter_names[parsed.source] = parsed.names
            a.needed_attributes_in_filters |= {n for n in names if n in a.attribute_types}

    filter_names: dict[str, frozenset[str]] = {}  # (each filter text's names, read once)

    def checked_text(text: str, scope: str, want_bool: bool, source: str | None,
                     ) -> tuple[list[_Problem], Parsed | None]:
        # the problems of check(), reported at each path the text is at
        try:
            parsed = parse(text)
        except ExprProblem as p:
            return [(p.code, p.message, p.hint, p.column)], None
        env_key = scope if source is None else f"{scope}:{source}"
        env = envs.get(env_key)
        if env is None:
            env = envs[env_key] = a.env(scope, source)
        unknown = unknown_names(parsed, env)
        if unknown:  # every unknown name at once, each at its column
            return [(q.code, q.message, q.hint, q.column) for q in unknown], None
        try:
            t = infer(parsed, env, banded=banded)
        except ExprProblem as p:
            return [(p.code, p.message, p.hint, p.column)], None
        if want_bool and t not in ("bool", "null"):
            return [(Code.EXPR_TYPE, f"a condition must be true/false, this is {t}", None,
                     None)], None
        band_problems = unknown_bands(parsed, band_names,
                                      score_bands if scope == "actions" else None)
        if band_problems:
            return [(q.code, q.message, q.hint, q.column) for q in band_problems], None
        if scope == "actions":
            for name, _days in sorted(time_references(parsed.tree)[0]):
                if name not in a.indicator_types and name != "score":
                    return [(Code.EXPR_TYPE, f"prev() and change() read an indicator or the "
                             f"score; {name!r} is neither", None, None)], None
        return [], parsed

    for i, ind in enumerate(roadmap.indicators):
        if isinstance(ind, AggregateIndicator) and ind.id in a.indicator_sources:
            check(ind.where, f"indicators[{i}].where", "filter",
                  source=a.indicator_sources[ind.id])
    check(roadmap.applies_to, "applies_to", "accounts")
    check(roadmap.goal.target, "goal.target", "indicators")
    if roadmap.goal.indicator is not None and roadmap.goal.indicator not in a.indicator_types:
        report(Code.UNKNOWN_INDICATOR, f"unknown indicator {roadmap.goal.indicator!r}",
               "goal.indicator", did_you_mean(roadmap.goal.indicator, a.indicator_types))
    for si, st in enumerate(roadmap.stages):
        base = f"stages[{si}]"
        check(st.entry, f"{base}.entry", "indicators")
        if st.achievement is not None:
            check(st.achievement.when, f"{base}.achievement.when", "indicators")
        for lst in ("joint", "customer", "ours"):
            for ti, task in enumerate(getattr(st.tasks, lst)):
                check(task.done_when, f"{base}.tasks.{lst}[{ti}].done_when", "indicators")
    def _check_routing(action: Action, path: str) -> None:
        """``due`` (a date expression) and ``owner.attribute`` (a declared attribute)."""
        if action.due_expr is not None:
            check(action.due_expr, f"{path}.due", "actions", want_bool=False)
            parsed = a.expressions.get(f"{path}.due")
            if parsed is not None:
                env = envs.get("actions") or envs.setdefault("actions", a.env("actions"))
                t = infer(parsed, env, banded=banded)
                if t not in ("date", "datetime"):
                    report(Code.EXPR_TYPE, f"due must give a date (or be a duration like 3d); "
                           f"this expression is {t}", f"{path}.due",
                           "name a date attribute (e.g. renewal_date) or write a duration")
                    del a.expressions[f"{path}.due"]
                elif time_references(parsed.tree)[0]:
                    report(Code.EXPR_TYPE, "due cannot read prev() or change()",
                           f"{path}.due")
                    del a.expressions[f"{path}.due"]
        attr = action.owner_attribute
        if attr is not None and attr not in a.attribute_types:
            report(Code.UNKNOWN_NAME, f"owner reads unknown account attribute {attr!r}; "
                   "declare it in data.accounts.attributes", f"{path}.owner.attribute",
                   did_you_mean(attr, set(a.attribute_types)))
        elif attr is not None and a.attribute_types[attr] not in ("str", "int"):
            report(Code.EXPR_TYPE, f"owner names a person, so its attribute must be text or a "
                   f"whole number (an id); {attr!r} is {a.attribute_types[attr]}",
                   f"{path}.owner.attribute")

    for path, action in _actions_with_paths(roadmap):
        check(action.when, f"{path}.when", "actions")
        check(action.resolved_when, f"{path}.resolved_when", "actions")
        when_parsed = a.expressions.get(f"{path}.when")
        if isinstance(action.hysteresis, dict) and when_parsed is not None:
            for name in action.hysteresis:
                if name not in when_parsed.names:
                    report(Code.UNKNOWN_NAME, f"hysteresis names {name!r}, which the condition "
                           "`when` does not read", f"{path}.hysteresis.{name}",
                           did_you_mean(name, set(when_parsed.names)))
        _check_routing(action, path)
        try:
            pieces = parse_template(action.do)
        except ExprProblem as p:
            report(p.code, p.message, f"{path}.do", p.hint, p.column)
            continue
        names = envs.get("actions") or envs.setdefault("actions", a.env("actions"))
        # a plain {due_date} quotes the action's own due date (not a name expressions read)
        plain = {**names, "due_date": "date"} if action.due is not None else names
        typed: list[TemplateField | str] = []
        for piece in pieces:
            if isinstance(piece, TemplateField) and piece.parsed is not None:
                checked = _typed_placeholder(piece, names, banded, a.indicator_types,
                                             f"{path}.do", report)
                if checked is None:
                    continue
                piece = checked
            typed.append(piece)
            if not isinstance(piece, TemplateField):
                continue
            if piece.parsed is None and piece.name == "due_date" and piece.name not in plain:
                report(Code.UNKNOWN_NAME, "the text quotes {due_date}, but the action has no "
                       "due", f"{path}.do", "give the action a due date, e.g. due: 3d",
                       piece.start + 2)
                continue
            if piece.parsed is None and piece.name not in plain:
                report(Code.UNKNOWN_NAME, f"the text quotes unknown name {piece.name!r}",
                       f"{path}.do", did_you_mean(piece.name, set(plain)), piece.start + 2)
                continue
            typ = piece.type if piece.parsed is not None else plain[piece.name]
            if piece.spec and typ not in ("int", "float"):
                what = repr(piece.name) if piece.parsed is None else f"{{{piece.name}}}"
                report(Code.TEMPLATE_INVALID,
                       f"format {piece.spec!r} is for numbers; {what} is {typ}", f"{path}.do",
                       f"write {{{piece.name}}} to quote it as it is",
                       piece.end - len(piece.spec))
        pieces = typed
        role = action.owner_role
        if role is not None and ("{" in role or "}" in role):
            report(Code.VALIDATION, "owner is a role name (csm, sales, ...): values are not "
                   "quoted there, so braces would be shown as they are",
                   f"{path}.owner" + ("" if isinstance(action.owner, str) else ".role"),
                   "quote values in `do`; name the person with owner: {attribute: ...}")
        a.templates[f"{path}.do"] = pieces

    # ---- score weights, per-stage overrides and segments
    score = roadmap.score
    stage_ids = [st.id for st in roadmap.stages]
    weight_sets = [("score.weights", score.weights)]
    stage_sets = [("score.stages", score.stages)]
    for k, seg in enumerate(score.segments):
        base = f"score.segments[{k}]"
        check(seg.applies_to, f"{base}.applies_to", "indicators")
        weight_sets.append((f"{base}.weights", seg.weights))
        stage_sets.append((f"{base}.stages", seg.stages))
    if score.segments:
        for i, ind in enumerate(roadmap.indicators):
            if ind.id == "segment":
                report(Code.NAME_CLASH, "indicator id 'segment' is a reserved name in a roadmap "
                       "with score segments (actions read the segment by that name)",
                       f"indicators[{i}].id")
        if "segment" in a.attribute_types:
            report(Code.NAME_CLASH, "account attribute 'segment' is a reserved name in a roadmap "
                   "with score segments (actions read the segment by that name)",
                   "data.accounts.attributes.segment")
    for spath, stages in stage_sets:
        for sid, sscore in stages.items():
            if sid not in stage_ids:
                report(Code.UNKNOWN_STAGE, f"unknown stage {sid!r}", f"{spath}.{sid}",
                       did_you_mean(sid, stage_ids))
            weight_sets.append((f"{spath}.{sid}.weights", sscore.weights))
    for wpath, weights in weight_sets:
        for name in weights.indicators:
            if name not in a.indicator_types:
                report(Code.UNKNOWN_INDICATOR, f"unknown indicator {name!r}",
                       f"{wpath}.indicators.{name}", did_you_mean(name, a.indicator_types))
            elif name not in banded:
                report(Code.WEIGHTS_INVALID,
                       f"indicator {name!r} has no bands, so it cannot be scored; give it bands",
                       f"{wpath}.indicators.{name}")
    return a


def score_band_names(roadmap: Roadmap) -> list[str] | None:
    """Every band name the score can have (its bands and its segments'), or None.

    Examples
    --------
    >>> from healthrules.roadmap import Roadmap
    >>> r = Roadmap.model_validate({"id": "r", "goal": "g", "stages": [{"id": "s"}],
    ...     "score": {"bands": {"levels": [{"name": "low", "lt": 50}, {"name": "ok", "ge": 50}]},
    ...               "segments": [{"id": "ent", "applies_to": "True", "bands": {"levels": [
    ...                   {"name": "watch", "lt": 80}, {"name": "ok", "ge": 80}]}}]}})
    >>> score_band_names(r)
    ['low', 'ok', 'watch']
    """
    score = roadmap.score
    names: list[str] = []
    for bands in (score.bands, *(seg.bands for seg in score.segments)):
        if bands is not None:
            names += [b.name for b in bands.levels if b.name not in names]
    return names or None


def _check_anchors(roadmap: Roadmap, a: Analysis, report: Callable[..., None]) -> None:
    """Windows anchored at an attribute or at another aggregate indicator's time, and the
    order in which anchors are computed (``anchor_levels``); cycles are errors."""
    aggregates = {ind.id: (i, ind) for i, ind in enumerate(roadmap.indicators)
                  if isinstance(ind, AggregateIndicator)}
    times = sorted(x for x in aggregates if a.indicator_types.get(x) == "datetime")
    deps: dict[str, set[str]] = {}
    for ident, (i, ind) in aggregates.items():
        anchor = ind.window.from_
        deps[ident] = set()
        if anchor is None:
            continue
        path = f"indicators[{i}].window.from"
        t = a.attribute_types.get(anchor)
        if t is not None:
            if t not in ("date", "datetime"):
                report(Code.WINDOW_INVALID, f"a window is anchored to a date; {anchor!r} is {t}",
                       path)
            continue
        if anchor in aggregates:
            at = a.indicator_types.get(anchor)
            if at != "datetime":
                report(Code.WINDOW_INVALID,
                       f"a window starts at a time; indicator {anchor!r} is {at} (anchor it at a "
                       "first_time or last_time indicator)", path)
                continue
            src, anchor_src = a.indicator_sources.get(ident), a.indicator_sources.get(anchor)
            if src != anchor_src:
                report(Code.WINDOW_INVALID,
                       f"a window starts at indicator {anchor!r} of event source "
                       f"{anchor_src!r}, but this indicator reads source {src!r}; an anchored "
                       "window starts at an indicator of its own source", path)
                continue
            deps[ident] = {anchor}
            continue
        if any(ind2.id == anchor for ind2 in roadmap.indicators):
            report(Code.WINDOW_INVALID,
                   f"a window starts at an account attribute or at an aggregate indicator's "
                   f"time; {anchor!r} is a {_kind_word(roadmap, anchor)} indicator", path)
            continue
        report(Code.UNKNOWN_NAME, f"unknown account attribute or time indicator {anchor!r}",
               path, did_you_mean(anchor, {*a.attribute_types, *times}))
    order, cycle = _toposort(deps)
    if cycle:
        i0 = aggregates[cycle[0]][0]
        report(Code.CYCLE, "windows start at each other in a cycle: " + " -> ".join(cycle),
               f"indicators[{i0}].window.from")
        return
    for ident in order:
        a.anchor_levels[ident] = max((a.anchor_levels[d] + 1 for d in deps[ident]), default=0)


def _kind_word(roadmap: Roadmap, ident: str) -> str:
    return "roll-up" if isinstance(roadmap.indicator(ident), RollupIndicator) else "derived"


_ROLLUP_NUMERIC = ("sum", "mean", "weighted_mean", "min", "max")


def _rollup_type(ind: RollupIndicator, i: int, a: Analysis, env: Mapping[str, Type],
                 report: Callable[..., None]) -> Type | None:
    """Check a roll-up's ``of`` (and ``weight``) and return its type (None: an error).

    ``of`` may read roll-ups (a roll-up of roll-ups, one level up: see
    ``Analysis.rollup_levels``); reading itself is a cycle, reported by the caller."""
    base = f"indicators[{i}]"
    result: Type | None = None
    for field_name in ("of", "weight"):
        path = f"{base}.{field_name}"
        parsed = a.expressions.get(path)
        if parsed is None:
            if getattr(ind, field_name) is not None:
                return None  # a syntax error, reported
            continue
        problems = unknown_names(parsed, env)
        for problem in problems:
            report(problem.code, problem.message, path, problem.hint, problem.column)
        if problems:
            return None
        try:
            t = infer(parsed, _Without(env, ind.id), banded=a.banded)
        except ExprProblem as p:
            report(p.code, p.message, path, p.hint, p.column)
            return None
        if field_name == "weight":
            if t not in ("int", "float", "null"):
                report(Code.EXPR_TYPE, f"a weight must be a number, this is {t}", path)
                return None
            continue
        agg = ind.aggregate
        if agg == "worst_band":
            name = ind.of.strip()
            if name not in a.banded:
                report(Code.EXPR_TYPE, f"worst_band reads a banded indicator; {name!r} has no "
                       "bands", path, did_you_mean(name, sorted(a.banded)))
                return None
            result = "str"
        elif agg in ("count", "share"):
            if t not in ("bool", "null"):
                report(Code.EXPR_TYPE, f"{agg} counts the children where `of` is true; it must "
                       f"be a condition, this is {t}", path)
                return None
            result = "int" if agg == "count" else "float"
        else:
            if t not in ("int", "float"):
                report(Code.EXPR_TYPE, f"{agg} aggregates numbers; `of` is {t}", path)
                return None
            result = t if agg in ("sum", "min", "max") else "float"
    return result
def reads(parsed: Parsed) -> frozenset[str]:
    """The names an expression reads, the indicators of ``band(x)`` included (as
    :attr:`Parsed.names` has them)."""
    return parsed.names


def _derived_trends(roadmap: Roadmap, a: Analysis, report: Any) -> None:
    """Which previous windows the trends (``compare``) need, and the period of each derived
    trend; a derived trend's problems are reported at its ``compare``."""
    by_id = {ind.id: (i, ind) for i, ind in enumerate(roadmap.indicators)}
    for ind in roadmap.indicators:
        if isinstance(ind, AggregateIndicator) and ind.compare != "none":
            a.previous_windows.add(ind.id)
    for ident in a.derived_order:
        i, ind = by_id[ident]
        if not isinstance(ind, DerivedIndicator) or ind.compare == "none":
            continue
        where = f"indicators[{i}].compare"
        aggregates: set[str] = set()
        rollups_read: set[str] = set()
        chain: set[str] = set()
        todo = [ident]
        while todo:
            d = todo.pop()
            parsed = a.expressions.get(f"indicators[{by_id[d][0]}].expr")
            if parsed is None:
                return  # reported already
            for name in reads(parsed):
                if name not in by_id or name in chain or name == ident:
                    continue
                dep = by_id[name][1]
                if isinstance(dep, DerivedIndicator):
                    chain.add(name)
                    todo.append(name)
                elif isinstance(dep, RollupIndicator):
                    rollups_read.add(name)
                else:
                    aggregates.add(name)
        problem = None
        if rollups_read:
            report(Code.WINDOW_INVALID, f"compare: {ind.compare} on {ident!r} reads the roll-up "
                   f"{sorted(rollups_read)[0]!r}: roll-ups have no previous window", where)
            continue
        nested = sorted(n for n in aggregates | chain
                        if getattr(by_id[n][1], "compare", "none") != "none")
        windows = {n: by_id[n][1].window for n in aggregates}  # type: ignore[union-attr]
        not_trailing = sorted(n for n, w in windows.items() if w.kind != "trailing")
        lengths = sorted({w.days for w in windows.values() if w.days is not None})
        if not aggregates:
            problem = (f"compare: {ind.compare} on {ident!r} needs it to read an aggregate "
                       "indicator with a trailing window (the previous window is its "
                       "previous window); it reads none")
        elif nested:
            problem = (f"compare: {ind.compare} on {ident!r} reads {nested[0]!r}, which has a "
                       "compare of its own: read the indicator without compare")
        elif not_trailing:
            kind = {"all": "an all-time", "anchored": "an anchored"}[
                windows[not_trailing[0]].kind]
            problem = (f"compare: {ind.compare} on {ident!r} needs trailing windows, but "
                       f"{not_trailing[0]!r} has {kind} window")
        elif len(lengths) > 1:
            problem = (f"compare: {ind.compare} on {ident!r} reads trailing windows of "
                       f"different lengths ({', '.join(f'{d} days' for d in lengths)}), so "
                       "there is no one previous window")
        if problem is not None:
            report(Code.WINDOW_INVALID, problem, where)
            continue
        n = lengths[0]
        a.derived_trends[ident] = n
        a.previous_windows |= aggregates
        a.trend_reads |= aggregates
        a.previous_derived |= {(d, n) for d in chain | {ident}}


def _typed_placeholder(piece: TemplateField, env: Mapping[str, Type], banded: frozenset[str],
                       indicators: Mapping[str, Type], path: str,
                       report: Any) -> TemplateField | None:
    """An expression placeholder of a ``do`` text, checked like an action condition and
    typed (None, with the problems reported at their columns in the text, when it is wrong).
    """
    assert piece.parsed is not None
    offset = piece.value_start
    unknown = unknown_names(piece.parsed, env)
    for problem in unknown:
        report(problem.code, f"the text quotes {problem.message}", path, problem.hint,
               offset + problem.column)
    if unknown:
        return None
    try:
        t = infer(piece.parsed, env, banded=banded)
    except ExprProblem as p:
        report(p.code, f"in the placeholder {{{piece.name}}}: {p.message}", path, p.hint,
               offset + p.column)
        return None
    if t == "null":
        report(Code.EXPR_TYPE, f"the placeholder {{{piece.name}}} is always null", path,
               None, offset + 1)
        return None
    for name, _days in sorted(time_references(piece.parsed.tree)[0]):
        if name not in indicators and name != "score":
            report(Code.EXPR_TYPE, f"prev() and change() read an indicator or the score; "
                   f"{name!r} is neither", path, None, offset + 1)
            return None
    return replace(piece, type=t)


class _Without(Mapping[str, Type]):
    """A mapping of names without one of them (a derived indicator cannot read itself)."""

    def __init__(self, base: Mapping[str, Type], hidden: str) -> None:
        self.base = base
        self.hidden = hidden

    def __getitem__(self, key: str) -> Type:
        if key == self.hidden:
            raise KeyError(key)
        return self.base[key]

    def __contains__(self, key: object) -> bool:
        return key != self.hidden and key in self.base

    def __iter__(self) -> Iterator[str]:
        return (k for k in self.base if k != self.hidden)

    def __len__(self) -> int:
        return len(self.base) - (self.hidden in self.base)


def unknown_bands(parsed: Parsed, bands: Mapping[str, list[str]],
                  score_bands: list[str] | None) -> list[ExprProblem]:
    """One problem per band name compared with ``band(x)`` or ``score_band`` that x (or the
    score) does not have: ``band(x) == 'lo'``, ``score_band != 'healty'``, ``band(x) in
    ('red', 'amber')``. Such a comparison would never (or always) hold."""
    out: list[ExprProblem] = []

    def names_of(node: ast.expr) -> tuple[str, list[str]] | None:
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "band" and len(node.args) == 1
                and isinstance(node.args[0], ast.Name) and node.args[0].id in bands):
            return f"indicator {node.args[0].id!r}", bands[node.args[0].id]
        if isinstance(node, ast.Name) and node.id == "score_band" and score_bands is not None:
            return "the score", score_bands
        return None

    def check(subject: ast.expr, literal: ast.expr) -> None:
        known = names_of(subject)
        if known is None or not (isinstance(literal, ast.Constant)
                                 and isinstance(literal.value, str)):
            return
        whose, names = known
        if literal.value not in names:
            hint = did_you_mean(literal.value, names) or f"its bands are: {', '.join(names)}"
            out.append(ExprProblem("unknown_name", f"{whose} has no band {literal.value!r}",
                                   column=column_of(literal), hint=hint))

    for node in ast.walk(parsed.tree):
        if not isinstance(node, ast.Compare):
            continue
        left: ast.expr = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ast.Tuple, ast.List)):
                for item in right.elts:
                    check(left, item)
                continue
            if isinstance(op, (ast.Eq, ast.NotEq)):
                check(left, right)
                check(right, left)
            left = right
    return sorted(out, key=lambda p: p.column)


def unknown_names(parsed: Parsed, env: Mapping[str, Type]) -> list[ExprProblem]:
    """One problem per name the expression reads that ``env`` does not know, in text order."""
    funcs = {id(n.func) for n in ast.walk(parsed.tree) if isinstance(n, ast.Call)}
    out: list[ExprProblem] = []
    seen: set[str] = set()
    names = [n for n in ast.walk(parsed.tree) if isinstance(n, ast.Name) and id(n) not in funcs]
    for node in sorted(names, key=lambda n: n.col_offset):
        if node.id in env or node.id in ("True", "False", "None") or node.id in seen:
            continue
        seen.add(node.id)
        out.append(ExprProblem("unknown_name", f"unknown name {node.id!r}", column=column_of(node),
                               hint=did_you_mean(node.id, env)))
    return out


def _action_ids(roadmap: Roadmap) -> Iterator[tuple[str, str]]:
    for path, action in _actions_with_paths(roadmap):
        yield action.id, f"{path}.id"


def _actions_with_paths(roadmap: Roadmap) -> Iterator[tuple[str, Action]]:
    for si, st in enumerate(roadmap.stages):
        for ai, action in enumerate(st.actions):
            yield f"stages[{si}].actions[{ai}]", action
    for ai, action in enumerate(roadmap.actions):
        yield f"actions[{ai}]", action


def _toposort(deps: Mapping[str, set[str]]) -> tuple[list[str], list[str]]:
    """Order nodes so dependencies come first; return (order, cycle) where cycle may be []."""
    order: list[str] = []
    state: dict[str, int] = {}
    cycle: list[str] = []

    for root in sorted(deps):
        if state.get(root):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(deps[root])))]
        path = [root]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                path.pop()
                state[node] = 2
                order.append(node)
                continue
            if state.get(nxt) == 1:
                if not cycle:
                    cycle = [*path[path.index(nxt):], nxt]
                continue
            if state.get(nxt) == 2 or nxt not in deps:
                continue
            state[nxt] = 1
            path.append(nxt)
            stack.append((nxt, iter(sorted(deps[nxt]))))
    return order, cycle
