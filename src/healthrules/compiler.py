"""Roadmap -> Plan: check a roadmap (or pack) once and keep what evaluation needs, as plain data."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from healthrules.analysis import Analysis, analysis_of
from healthrules.errors import Code, Issue, Location, RoadmapError
from healthrules.pack_contract import pack_issues
from healthrules.roadmap import (
    DEFAULT_SOURCE,
    AggregateIndicator,
    AttributeType,
    EventColumns,
    Pack,
    Roadmap,
)

__all__ = ["CompiledRoadmap", "Plan", "compile"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class CompiledRoadmap:
    """One roadmap with its analysis: parsed expressions, types and derived-indicator order."""

    roadmap: Roadmap
    analysis: Analysis

    @property
    def id(self) -> str:
        """The roadmap id."""
        return self.roadmap.id


@dataclass(frozen=True)
class Plan:
    """A checked roadmap or pack, ready to evaluate many times; picklable plain data.

    Build it with :func:`healthrules.compile`. The expressions inside are parsed and
    type-checked once, and the polars expressions of every roadmap (indicators, bands,
    stages, scores, conditions, texts, evidence) are built once and kept in :attr:`memo`, with
    ``as_of`` bound late, so the same plan serves every date and every call.
    """

    roadmaps: tuple[CompiledRoadmap, ...]
    pack_id: str | None = None
    events: EventColumns = field(default_factory=EventColumns)
    """The columns of the default event source (value columns of every roadmap merged)."""
    account_key: str = "account_id"
    attributes: dict[str, AttributeType] = field(default_factory=dict)
    sources: dict[str, EventColumns] = field(default_factory=dict)
    """Every event source by name, the default first (``{"events": ...}`` for roadmaps
    whose ``data.events`` declares one frame's columns); value columns merged over the
    roadmaps."""
    default_source: str = DEFAULT_SOURCE
    """The source an aggregate indicator without ``source:`` reads."""
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    """What the engine built from this plan (polars expressions, per timestamp dtype and
    clock), kept so that evaluating the plan again builds nothing. Not pickled."""

    def __post_init__(self) -> None:
        if not self.sources:
            object.__setattr__(self, "sources", {self.default_source: self.events})

    @property
    def named_sources(self) -> bool:
        """Whether the roadmaps declare named event sources (``data.events: {name: ...}``)."""
        return self.roadmaps[0].roadmap.data.named_sources

    def source_of(self, ind: AggregateIndicator) -> str:
        """The event source an aggregate indicator reads."""
        return ind.source if ind.source is not None else self.default_source

    def source_indicators(self, source: str) -> list[tuple[int, int, AggregateIndicator]]:
        """(roadmap index, indicator index, indicator) of every aggregate indicator that
        reads ``source``, in plan order (found once per plan: every events pass asks)."""
        return list(self.cached(("source_indicators", source), lambda: tuple(
            (i, idx, ind) for i, cr in enumerate(self.roadmaps)
            for idx, ind in enumerate(cr.roadmap.indicators)
            if isinstance(ind, AggregateIndicator) and self.source_of(ind) == source)))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["memo"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def cached(self, key: Hashable, build: Callable[[], _T]) -> _T:
        """What ``build()`` returns, built on the first call with ``key`` and kept in
        :attr:`memo` (the engine's expressions: nothing is built twice for one plan)."""
        # the value built is returned, not read back: history assembles grid chunks in
        # threads that share the plan
        try:
            got: _T = self.memo[key]
        except KeyError:
            got = self.memo[key] = build()
        return got

    @property
    def parent_columns(self) -> list[str]:
        """The parent key column in a list (empty without a hierarchy), for column lists."""
        return [] if self.parent is None else [self.parent]

    @property
    def parent(self) -> str | None:
        """The accounts' parent key column (``data.accounts.parent``), or None."""
        for cr in self.roadmaps:
            if cr.roadmap.data.accounts.parent is not None:
                return cr.roadmap.data.accounts.parent
        return None

    @property
    def id(self) -> str:
        """The pack id, or the id of the single roadmap."""
        return self.pack_id or self.roadmaps[0].id

    def __repr__(self) -> str:
        ids = ", ".join(r.id for r in self.roadmaps)
        n = sum(len(r.roadmap.indicators) for r in self.roadmaps)
        return f"Plan({self.id!r}: roadmaps [{ids}], {n} indicators)"

    def describe(self) -> str:
        """Return a readable, multi-line description of what the plan computes."""
        lines = [repr(self)]
        for cr in self.roadmaps:
            r = cr.roadmap
            lines.append(f"roadmap {r.id} (applies_to: {r.applies_to or 'all accounts'})")
            for ind in r.indicators:
                typ = cr.analysis.indicator_types.get(ind.id, "?")
                if ind.kind == "events":
                    what = f"{ind.aggregate}"
                    if ind.of:
                        what += f"({ind.of})"
                    w = ind.window
                    window = {"trailing": f"last {w.days}d", "all": "all time"}.get(
                        w.kind, f"from {w.from_}" + (f" for {w.days}d" if w.days else "")
                    )
                    what += f" over {window}"
                    if ind.aggregate == "percentile":
                        what += f" at q {ind.q:g}"
                    if ind.where:
                        what += f" where {ind.where}"
                    if ind.compare != "none":
                        what += f", compare {ind.compare}"
                elif ind.kind == "rollup":
                    what = f"{ind.aggregate}({ind.of}) over the children"
                    if ind.weight:
                        what += f" weighted by {ind.weight}"
                else:
                    what = ind.expr
                    if ind.compare != "none":
                        days = cr.analysis.derived_trends.get(ind.id)
                        what += f", compare {ind.compare} over the previous {days}d"
                lines.append(f"  {ind.id}: {typ} = {what}")
            for i, stage in enumerate(r.stages):
                lines.append(f"  stage {i} {stage.id}: entry {stage.entry or 'always'}")
            for scope, a in r.all_actions():
                where = scope.id if scope else "any stage"
                lines.append(f"  action {a.id} [{a.kind}, {where}]: when {a.when}")
        return "\n".join(lines)


def compile(source: Roadmap | Pack | Plan | Sequence[Roadmap]) -> Plan:
    """Check a roadmap (or the roadmaps of a pack) and return its evaluation plan.

    Parameters
    ----------
    source
        A :class:`Roadmap`, a loaded :class:`Pack`, a list of roadmaps (tracks, in routing
        order), or a plan (returned unchanged).

    Returns
    -------
    Plan

    Raises
    ------
    RoadmapError
        If a roadmap has unresolved names, type errors or cycles, or the roadmaps of a pack
        disagree on the data contract.

    Examples
    --------
    >>> import healthrules as hr
    >>> r = hr.Roadmap.model_validate({
    ...     "id": "demo", "goal": "Customers use the product weekly",
    ...     "indicators": [{"id": "logins", "family": "process", "aggregate": "count",
    ...                     "where": "event == 'login'", "window": "7d"}],
    ...     "stages": [{"id": "operation"}],
    ... })
    >>> hr.compile(r)
    Plan('demo': roadmaps [demo], 1 indicators)
    """
    if isinstance(source, Plan):
        return source
    pack_id: str | None = None
    if isinstance(source, Roadmap):
        roadmaps = [source]
    elif isinstance(source, Pack):
        if not source.loaded:
            raise RoadmapError(
                [Issue(code=Code.VALIDATION.value,
                       message=f"pack {source.id!r} has no loaded roadmaps; load it with "
                       "healthrules.load(path)",
                       location=Location(file=source.source))]
            )
        roadmaps = list(source.loaded)
        pack_id = source.id
    else:
        roadmaps = list(source)
        if not roadmaps:
            raise ValueError("compile() needs at least one roadmap")
    compiled: list[CompiledRoadmap] = []
    issues: list[Issue] = []
    for r in roadmaps:
        a = analysis_of(r)
        issues.extend(
            Issue(code=i.code, message=i.message, severity=i.severity, hint=i.hint, ctx=i.ctx,
                  location=Location(file=r.source, path=i.location.path))
            for i in a.issues
        )
        compiled.append(CompiledRoadmap(roadmap=r, analysis=a))
    first = roadmaps[0]
    issues.extend(pack_issues(roadmaps))
    attributes: dict[str, AttributeType] = {}
    for r in roadmaps:
        for name, typ in r.data.accounts.attributes.items():
            attributes.setdefault(name, typ)
    if issues:
        raise RoadmapError(issues)
    sources: dict[str, EventColumns] = {}
    for r in roadmaps:
        for name, cols in r.data.sources.items():
            merged = sources.get(name)
            sources[name] = cols if merged is None else merged.model_copy(
                update={"values": {**merged.values, **cols.values}})
    default = first.data.default_source
    plan = Plan(
        roadmaps=tuple(compiled),
        pack_id=pack_id,
        events=sources[default],
        sources=sources,
        default_source=default,
        account_key=first.data.accounts.key,
        attributes=attributes,
    )
    # build the polars expressions now (for microsecond timestamps, polars' default; another
    # unit builds its own on first use), so that the first evaluate() pays for nothing but data
    from healthrules.engine import Evaluator

    Evaluator(plan, "us").prepare()
    return plan
