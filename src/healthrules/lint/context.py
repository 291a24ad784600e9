"""What the checks of one roadmap share: its analysis, value facts, condition regions and paths.

:class:`LintContext` is built once per roadmap and handed to every check. It knows the type and
the base range of every name (counts are whole numbers ``>= 0``, the score is in ``[0, 100]``,
``stage`` is one of the stage ids ...), computes the regions of every condition once
(:mod:`healthrules.lint.intervals`), which accounts can be in each stage, which indicators each
weight set scores, and which indicators came from imports.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, assert_never

from healthrules.aggregates import AGGREGATE_KINDS
from healthrules.analysis import Analysis, TemplateField, analysis_of
from healthrules.expressions import Parsed
from healthrules.lint.base import LintConfig
from healthrules.lint.intervals import (
    ConditionRegions,
    Dom,
    Facts,
    Labels,
    NameFact,
    NumSet,
    Region,
    analyse,
    range_of,
)
from healthrules.roadmap import (
    UNASSIGNED_STAGE,
    Action,
    AggregateIndicator,
    Bands,
    DerivedIndicator,
    Pack,
    Roadmap,
    Stage,
    Weights,
)

if TYPE_CHECKING:
    from healthrules.lint.suppression import Directive

__all__ = ["ActionRef", "LintContext", "WeightSet", "indicator_fact", "node_column"]

@dataclass(frozen=True, slots=True)
class ActionRef:
    """An action with its YAML path and its stage (index and model; None for roadmap-wide)."""

    path: str
    action: Action
    stage_index: int | None
    stage: Stage | None


@dataclass(frozen=True, slots=True)
class WeightSet:
    """One set of score weights (the default or a stage override) and what it scores."""

    path: str
    label: str
    weights: Weights
    scored: tuple[str, ...]


def _window_days(ind: AggregateIndicator) -> tuple[int | None, bool]:
    """The window's length in days (None when unbounded) and whether it is anchored."""
    w = ind.window
    return w.days, w.kind == "anchored"


def indicator_fact(ind: AggregateIndicator, *, date_anchor: bool = False) -> NameFact:
    """The base range of an aggregate indicator's value, with the reason in words.

    ``date_anchor``: the window is anchored at a ``date`` attribute, so it starts at a
    midnight and its N days touch N calendar days. Any other anchor (a ``datetime``
    attribute, a ``first_time`` / ``last_time`` indicator) keeps its instant: N days from
    13:00 touch N + 1 calendar days, like a trailing window ending at a datetime.

    Examples
    --------
    >>> from healthrules.roadmap import AggregateIndicator
    >>> ind = AggregateIndicator(id="logins_30d", family="process", aggregate="count",
    ...                          where="event == 'login'", window="30d")
    >>> fact = indicator_fact(ind)
    >>> fact.dom.num.describe("logins_30d"), fact.reason
    ('logins_30d >= 0', 'logins_30d is a count of events, never negative')
    """
    kind, ident = AGGREGATE_KINDS[ind.aggregate], ind.id
    days, anchored = _window_days(ind)
    nullable = anchored or kind.empty is None
    integer = kind.result_type(None) == "int"
    known = kind.lint
    if known.low is None:
        return NameFact(Dom(num=NumSet.everything(False), null=True))
    upper = known.upper
    bound: int | None
    match upper:
        case "none":
            bound = None
        case "window_days":
            bound = days
        case "calendar_days":
            # a trailing window of N days ending at a datetime, or an anchored one starting
            # at an instant other than midnight, touches N + 1 calendar days
            bound = None if days is None else (days if anchored and date_anchor else days + 1)
        case _:
            assert_never(upper)
    if bound is None:
        hi, reason = float("inf"), known.reason.format(ident=ident)
    else:
        hi = float(bound)
        reason = known.reason_in_window.format(ident=ident, days=days, hi=bound)
    base = NumSet.between(known.low, hi, integer)
    if ind.compare in ("none", "previous"):
        return NameFact(Dom(num=base, null=nullable), reason)
    if ind.compare == "delta":
        if hi == float("inf"):
            return NameFact(Dom(num=NumSet.everything(integer), null=True))
        return NameFact(
            Dom(num=NumSet.between(-hi, hi, integer), null=True),
            f"{ident} is the change of a value between 0 and {int(hi)}, so it is between "
            f"{-int(hi)} and {int(hi)}",
        )
    # pct_change of a value that is never negative: (current - previous) / previous >= -1
    return NameFact(
        Dom(num=NumSet.between(-1.0, float("inf")), null=True),
        f"{ident} is the relative change of a value that is never negative, so it is at "
        "least -1 (-100 %)",
    )


@dataclass
class LintContext:
    """One roadmap as the checks see it.

    Parameters
    ----------
    roadmap
        The loaded roadmap (imported indicators first, as :func:`healthrules.load` merges them).
    config
        The lint settings.
    imported
        For each imported indicator id, the YAML path of the import entry that brought it in
        (``imports[0].indicators[2]`` or ``imports[0].path``).
    directives
        The ``# healthrules: disable=...`` comments of the file.
    pack
        The pack the roadmap was loaded through (its tracks route accounts in order).
    """

    roadmap: Roadmap
    config: LintConfig = field(default_factory=LintConfig)
    imported: dict[str, str] = field(default_factory=dict)
    directives: tuple[Directive, ...] = ()
    pack: Pack | None = None
    _regions: dict[str, ConditionRegions | None] = field(default_factory=dict, repr=False)
    _reach: dict[int, Region] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ basics

    @cached_property
    def analysis(self) -> Analysis:
        """The cross-node analysis (types, parsed expressions by YAML path, templates)."""
        return analysis_of(self.roadmap)

    def parsed(self, path: str) -> Parsed | None:
        """The parsed expression at a YAML path (None when there is none)."""
        return self.analysis.expressions.get(path)

    def template(self, path: str) -> list[TemplateField | str] | None:
        """The parsed ``do`` text at a YAML path."""
        return self.analysis.templates.get(path)

    def is_imported(self, indicator_id: str) -> bool:
        """Whether an indicator came from an imported library."""
        return indicator_id in self.imported

    def actions(self) -> Iterator[ActionRef]:
        """Every action with its path and stage, stage actions first, in file order."""
        for si, st in enumerate(self.roadmap.stages):
            for ai, action in enumerate(st.actions):
                yield ActionRef(f"stages[{si}].actions[{ai}]", action, si, st)
        for ai, action in enumerate(self.roadmap.actions):
            yield ActionRef(f"actions[{ai}]", action, None, None)

    def expression_paths(self) -> Iterator[tuple[str, Parsed]]:
        """Every parsed expression with its YAML path, in a stable order."""
        yield from sorted(self.analysis.expressions.items())

    # ------------------------------------------------------------------ facts

    @cached_property
    def bands(self) -> dict[str, Bands]:
        """The bands of every banded indicator."""
        return {ind.id: ind.bands for ind in self.roadmap.indicators if ind.bands is not None}

    @cached_property
    def stage_ids(self) -> list[str]:
        """The stage ids, in order."""
        return [st.id for st in self.roadmap.stages]

    @cached_property
    def facts(self) -> Facts:
        """What is known about the names of entries, achievements, actions and derived ones."""
        a = self.analysis
        names: dict[str, NameFact] = {}
        env = a.env("actions")
        facts = Facts(env=env, names=names, bands=self.bands)
        for ind in self.roadmap.indicators:
            if isinstance(ind, AggregateIndicator):
                known = AGGREGATE_KINDS[ind.aggregate].lint.low is not None
                if known or ind.compare != "none":
                    typ = a.indicator_types.get(ind.id)
                    if typ in ("int", "float"):
                        anchor = ind.window.from_
                        names[ind.id] = indicator_fact(ind, date_anchor=anchor is not None and (
                            a.attribute_types.get(anchor) == "date"))
        for ident in a.derived_order:
            ind = self.roadmap.indicator(ident)
            parsed = self.parsed(self._merged_path(ident, "expr"))
            if not isinstance(ind, DerivedIndicator) or parsed is None:
                continue
            if a.indicator_types.get(ident) not in ("int", "float"):
                continue
            if ind.compare not in ("none", "previous"):
                continue  # a change: lint knows nothing about its range
            values, nullable = range_of(parsed.tree, facts)
            if values.hull().lo == float("-inf") and values.hull().hi == float("inf"):
                continue
            names[ident] = NameFact(
                Dom(num=values, null=nullable),
                f"{ident} = {ind.expr.strip()} is always {values.describe(ident)}",
            )
        names["score"] = NameFact(Dom(num=NumSet.between(0.0, 100.0), null=True),
                                  "the health score is between 0 and 100")
        names["stage"] = NameFact(
            Dom(labels=Labels(frozenset([*self.stage_ids, UNASSIGNED_STAGE])), null=False),
            "stage is one of the roadmap's stage ids (or _unassigned)",
        )
        score = self.roadmap.score
        if score.bands is not None and all(s.bands is None for s in score.segments):
            facts.label_alias = {"score_band": ("score", score.bands)}
        return facts

    @cached_property
    def filter_facts(self) -> Facts:
        """What is known about the names of event filters (``where``)."""
        return Facts(env=self.analysis.env("filter"))

    def _merged_path(self, ident: str, tail: str) -> str:
        for i, ind in enumerate(self.roadmap.indicators):
            if ind.id == ident:
                return f"indicators[{i}].{tail}"
        raise KeyError(ident)

    # ------------------------------------------------------------------ regions

    def regions(self, path: str) -> ConditionRegions | None:
        """The regions of the condition at a YAML path (None when there is no condition)."""
        if path not in self._regions:
            parsed = self.parsed(path)
            if parsed is None:
                self._regions[path] = None
            else:
                facts = self.filter_facts if path.endswith(".where") else self.facts
                self._regions[path] = analyse(parsed.tree, facts)
        return self._regions[path]

    def entry(self, index: int) -> ConditionRegions | None:
        """The regions of stage ``index``'s entry (None when the stage has no entry)."""
        return self.regions(f"stages[{index}].entry")

    def reach(self, index: int) -> Region:
        """The accounts that can be in stage ``index``: its entry holds, no earlier one does."""
        if index not in self._reach:
            own = self.entry(index)
            region = own.true if own is not None else Region.top()
            for i in range(index):
                earlier = self.entry(i)
                region = region.meet(earlier.not_true if earlier is not None else Region.bottom())
                if region.empty:
                    break
            self._reach[index] = region
        return self._reach[index]

    def reach_known(self, index: int) -> Region:
        """Like :meth:`reach`, for accounts whose values are all known (no earlier entry null)."""
        own = self.entry(index)
        region = own.true if own is not None else Region.top()
        for i in range(index):
            earlier = self.entry(i)
            region = region.meet(earlier.false if earlier is not None else Region.bottom())
            if region.empty:
                break
        return region

    def in_stage(self, index: int) -> Region:
        """The accounts in stage ``index``, as seen by that stage's actions."""
        stage = Region.where(
            "stage", Dom(labels=Labels(frozenset({self.stage_ids[index]})), null=False)
        )
        reach = self.reach(index)
        return stage if reach.empty else reach.meet(stage)

    def earlier_tracks(self) -> list[LintContext]:
        """The contexts of the roadmaps before this one in its pack (empty without a pack)."""
        if self.pack is None:
            return []
        ids = [r.id for r in self.pack.loaded]
        if self.roadmap.id not in ids:
            return []
        return [LintContext(r) for r in self.pack.loaded[: ids.index(self.roadmap.id)]]

    # ------------------------------------------------------------------ score

    def scored(self, weights: Weights) -> tuple[str, ...]:
        """The indicators a weight set scores (docs/semantics.md, health score step 1)."""
        banded = {ind.id: ind for ind in self.roadmap.indicators if ind.bands is not None}
        if weights.indicators:
            chosen = [i for i, w in weights.indicators.items() if w > 0 and i in banded]
        else:
            chosen = list(banded)
        if weights.families:
            chosen = [i for i in chosen if weights.families.get(banded[i].family, 0) > 0]
        return tuple(chosen)

    @cached_property
    def weight_sets(self) -> list[WeightSet]:
        """The default weights and every stage override, with what each scores."""
        score = self.roadmap.score
        out = [WeightSet("score.weights", "the health score", score.weights,
                         self.scored(score.weights))]
        for sid, override in score.stages.items():
            out.append(WeightSet(f"score.stages.{sid}.weights",
                                 f"the health score of stage {sid!r}", override.weights,
                                 self.scored(override.weights)))
        for k, seg in enumerate(score.segments):
            base = f"score.segments[{k}]"
            if not seg.weights.empty:
                out.append(WeightSet(f"{base}.weights", f"the health score of segment {seg.id!r}",
                                     seg.weights, self.scored(seg.weights)))
            for sid, override in seg.stages.items():
                out.append(WeightSet(f"{base}.stages.{sid}.weights",
                                     f"the health score of segment {seg.id!r} in stage {sid!r}",
                                     override.weights, self.scored(override.weights)))
        return out

    def segment_reach(self, index: int) -> Region:
        """The accounts score segment ``index`` can score: its ``applies_to`` holds, no
        earlier segment's does."""
        own = self.regions(f"score.segments[{index}].applies_to")
        region = own.true if own is not None else Region.top()
        for i in range(index):
            earlier = self.regions(f"score.segments[{i}].applies_to")
            region = region.meet(earlier.not_true if earlier is not None else Region.bottom())
            if region.empty:
                break
        return region

    # ------------------------------------------------------------------ names read

    @cached_property
    def names_read(self) -> dict[str, list[str]]:
        """For every name, the YAML paths of the expressions and templates that read it."""
        out: dict[str, list[str]] = {}
        for path, parsed in self.expression_paths():
            for name in parsed.names:
                out.setdefault(name, []).append(path)
        for i, ind in enumerate(self.roadmap.indicators):  # a window that starts at it
            if isinstance(ind, AggregateIndicator) and self.analysis.anchored_on_indicator(ind):
                assert ind.window.from_ is not None
                out.setdefault(ind.window.from_, []).append(f"indicators[{i}].window.from")
        for path, pieces in sorted(self.analysis.templates.items()):
            for piece in pieces:
                if isinstance(piece, TemplateField):
                    for name in sorted(piece.names):
                        out.setdefault(name, []).append(path)
        return out


def node_column(node: ast.AST) -> int:
    """The 1-based column of a node inside its expression text."""
    return int(getattr(node, "_char_col", int(getattr(node, "col_offset", 0)) + 1))
