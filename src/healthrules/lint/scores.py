"""Lint checks of the health score: too many indicators, nothing scored, weights that do nothing."""

from __future__ import annotations

from collections.abc import Iterator

from healthrules.errors import Issue, Severity
from healthrules.lint.base import Check
from healthrules.lint.context import LintContext

__all__ = ["CHECKS", "EmptyFamily", "IgnoredWeight", "MissingUnscored", "NothingScored",
           "TooManyIndicators"]


class TooManyIndicators(Check):
    """One health score weighs more indicators than a team can act on.

    What it does
    ------------
    Counts the indicators each weight set scores (``score.weights`` and every
    ``score.stages.<stage>.weights``; without indicator weights, every banded indicator) and
    reports a set that scores more than the limit (7 by default).

    Why is this bad
    ---------------
    A health score is a fuel lamp, not a dashboard: keep one north-star metric and avoid
    drowning in dozens. With many indicators, each one moves the score too little to notice,
    and when the score drops nobody can say which action to take.

    Example
    -------
    A ``score.weights.indicators`` mapping with 12 indicators.

    Fix
    ---
    Score the few leading indicators that have actions attached; keep the others as plain
    (unweighted) indicators that actions read, or give them weight 0, or weigh them per stage
    (``score.stages``) so each stage scores only what matters in it.

    Configuration
    -------------
    ``healthrules lint --max-scored-indicators N`` (API: ``LintConfig(max_scored_indicators=N)``)
    sets the limit.
    """

    code = "HR401"
    name = "scores.too_many_indicators"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per weight set above the limit."""
        limit = ctx.config.max_scored_indicators
        for ws in ctx.weight_sets:
            if len(ws.scored) > limit:
                path = ws.path if ws.path != "score.weights" or _given(ctx) else "score"
                yield self.finding(
                    path,
                    f"{ws.label} weighs {len(ws.scored)} indicators, more than the {limit} a "
                    "team can act on",
                    hint="score a few leading indicators with actions attached (weight the "
                    "others 0, or weigh per stage under score.stages)",
                )


def _given(ctx: LintContext) -> bool:
    w = ctx.roadmap.score.weights
    return not w.empty


class NothingScored(Check):
    """The health score scores no indicator, so it is always null.

    What it does
    ------------
    Reports a weight set (``score.weights``, or a stage's override) that scores no indicator:
    no indicator has bands, the listed indicators all have weight 0, or the family weights
    leave every scored indicator out.

    Why is this bad
    ---------------
    The score, its band and every action that reads ``score`` stay null for the accounts it
    applies to. The score is what the team watches; a roadmap without one has lost its lamp.

    Example
    -------
    ::

        score:
          weights:
            families: {outcome: 1}       # but no outcome indicator has bands

    Fix
    ---
    Give the indicators you want to score ``bands``, and weigh them.
    """

    code = "HR402"
    name = "scores.nothing_scored"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per weight set that scores nothing."""
        if not ctx.bands:
            yield self.finding(
                "score" if not _given(ctx) else "score.weights",
                "no indicator has bands, so there is no health score (it is always null)",
                hint="give the leading indicators bands; banded indicators are scored",
            )
            return
        for ws in ctx.weight_sets:
            if not ws.scored:
                yield self.finding(
                    ws.path,
                    f"{ws.label} scores no indicator, so it is always null",
                    hint="weigh at least one banded indicator (and its family)",
                )


class EmptyFamily(Check):
    """A family weight applies to no scored indicator, so it is ignored.

    What it does
    ------------
    Reports a family in ``weights.families`` with a weight above 0 when no indicator the set
    scores belongs to that family.

    Why is this bad
    ---------------
    The total is the weighted mean of the families that have scored indicators; a family with
    none is left out silently, so the real weights differ from the ones written down. Often
    the family's indicators lack bands or indicator weights.

    Example
    -------
    ::

        score:
          weights:
            families: {process: 3, relationship: 2}   # no relationship indicator has bands

    Fix
    ---
    Score an indicator of that family (give it bands and a weight), or drop the family weight.
    """

    code = "HR403"
    name = "scores.empty_family"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per family weight with no scored indicator."""
        family_of = {ind.id: ind.family for ind in ctx.roadmap.indicators}
        for ws in ctx.weight_sets:
            if not ws.scored:
                continue  # scores.nothing_scored says it
            present = {family_of[i] for i in ws.scored}
            for fam, w in ws.weights.families.items():
                if w > 0 and fam not in present:
                    yield self.finding(
                        f"{ws.path}.families.{fam}",
                        f"{ws.label} gives family {fam!r} weight {w:g}, but scores no "
                        f"{fam} indicator, so the weight is ignored",
                        hint=f"give a {fam} indicator bands and a weight, or drop the family",
                    )


class IgnoredWeight(Check):
    """An indicator weight is ignored because its family has no family weight.

    What it does
    ------------
    With family weights, only the indicators of families weighted above 0 are scored. This
    reports an indicator given a weight above 0 whose family has weight 0 or none.

    Why is this bad
    ---------------
    The indicator looks scored but is not; the score the team watches does not move with it.

    Example
    -------
    ::

        score:
          weights:
            families: {process: 1}
            indicators: {seat_utilisation: 2, nps_score: 1}   # nps_score is relationship

    Fix
    ---
    Weigh the family too (``relationship: 1``), or drop the indicator weight.
    """

    code = "HR404"
    name = "scores.ignored_weight"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per ignored indicator weight."""
        family_of = {ind.id: ind.family for ind in ctx.roadmap.indicators}
        for ws in ctx.weight_sets:
            fams = ws.weights.families
            if not fams:
                continue
            for ident, w in ws.weights.indicators.items():
                fam = family_of.get(ident)
                if w > 0 and fam is not None and fams.get(fam, 0) <= 0:
                    yield self.finding(
                        f"{ws.path}.indicators.{ident}",
                        f"{ws.label} gives {ident!r} weight {w:g}, but its family {fam!r} has "
                        "no family weight, so it is not scored",
                        hint=f"add `{fam}: <weight>` to the family weights, or drop this weight",
                    )


class MissingUnscored(Check):
    """An indicator's ``missing:`` policy does nothing: the score never scores it.

    What it does
    ------------
    Reports an indicator with its own ``missing:`` (skip, neutral, worst) that no weight set
    of the score scores: it has no bands, or every weight set leaves it out (weight 0,
    unlisted, or its family unweighted).

    Why is this bad
    ---------------
    ``missing:`` decides what a missing value counts for *in the health score*. On an
    indicator the score does not weigh it changes nothing, so whoever wrote it believes a
    missing value is penalised (``worst``) when it is not.

    Example
    -------
    ::

        indicators:
          - {id: logins_30d, family: process, aggregate: count, window: 30d,
             missing: worst}          # no bands: never scored

    Fix
    ---
    Give the indicator bands (and a weight) so the score weighs it, or drop ``missing:``.
    """

    code = "HR405"
    name = "scores.missing_unscored"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per indicator whose missing policy the score never applies."""
        scored = {i for ws in ctx.weight_sets for i in ws.scored}
        for i, ind in enumerate(ctx.roadmap.indicators):
            if ind.missing is None or ind.id in scored:
                continue
            why = ("it has no bands" if ind.bands is None
                   else "no weight set of the score weighs it")
            yield self.finding(
                f"indicators[{i}].missing",
                f"missing: {ind.missing} on {ind.id!r} does nothing: {why}, so the health "
                "score never counts it",
                hint="give it bands and a weight so the score weighs it, or drop missing:",
            )


CHECKS: list[type[Check]] = [TooManyIndicators, NothingScored, EmptyFamily, IgnoredWeight,
                             MissingUnscored]
"""The checks of this family, in code order."""
