"""Lint checks of thresholds: bands no value can reach, band scores, and off-scale comparisons.

Gaps and overlaps between the levels of one ``bands`` are load errors (``bands_invalid``): the
model rejects them. These checks look at what the model cannot see, because it needs to know
the values the indicator can take (a count is never negative, the score stays in 0-100, a
count has no value between 2 and 3) or how the bands are used.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator

from healthrules.errors import Issue, Severity
from healthrules.lint.base import Check
from healthrules.lint.context import LintContext, node_column
from healthrules.lint.intervals import NameFact, NumSet, band_interval, literal
from healthrules.roadmap import Bands

__all__ = ["CHECKS", "DuplicateScore", "OffScale", "ScoreOrder", "UnreachableBand"]


def _banded(ctx: LintContext) -> Iterator[tuple[str, str, Bands, NameFact | None]]:
    """(owner label, YAML path of the bands, bands, fact about the values) for every bands."""
    for i, ind in enumerate(ctx.roadmap.indicators):
        if ind.bands is not None:
            yield f"indicator {ind.id!r}", f"indicators[{i}].bands", ind.bands, ctx.facts.fact(
                ind.id)
    if ctx.roadmap.score.bands is not None:
        yield "the score", "score.bands", ctx.roadmap.score.bands, ctx.facts.fact("score")
    for k, seg in enumerate(ctx.roadmap.score.segments):
        if seg.bands is not None:
            yield (f"the score of segment {seg.id!r}", f"score.segments[{k}].bands", seg.bands,
                   ctx.facts.fact("score"))


class UnreachableBand(Check):
    """A band level that no value of the indicator (or of the score) can fall in.

    What it does
    ------------
    Compares each level's interval with the values the indicator can take:

    - counts, distinct counts, active days and days-since are whole numbers ``>= 0`` (active
      days in a 30-day window are at most 31), a ``pct_change`` of a count is at least -1, and
      a derived indicator's range follows from its expression (``min(x / y, 1)`` is at most 1);
    - the health score (``score.bands``) is between 0 and 100.

    It reports a level entirely outside that range (``lt: 0`` on a count, a score level above
    100), and a level of a whole-number indicator that holds no whole number (``gt: 2, lt: 3``).

    Why is this bad
    ---------------
    The level can never light up, so the scale has fewer real levels than it shows, and its
    score and any ``band(x) == 'level'`` condition are dead. It usually means a cut point in
    the wrong unit (percent instead of ratio) or a sign error.

    Example
    -------
    ::

        - id: logins_30d
          aggregate: count
          bands:
            levels:
              - {name: negative, lt: 0}
              - {name: low, ge: 0, lt: 5}
              - {name: high, ge: 5}

    Fix
    ---
    Start the first level where the values start::

        bands:
          levels:
            - {name: low, lt: 5}
            - {name: high, ge: 5}
    """

    code = "HR301"
    name = "thresholds.unreachable_band"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per unreachable level."""
        for owner, path, bands, fact in _banded(ctx):
            if fact is None or fact.dom.num is None:
                continue
            values = fact.dom.num
            for k, band in enumerate(bands.levels):
                level = NumSet.of([band_interval(band)], values.integer)
                if not level.meet(values).empty:
                    continue
                if level.empty:
                    why = "it holds no whole number, and the values are whole numbers"
                else:
                    why = fact.reason or f"the values are always {values.describe('x')}"
                yield self.finding(
                    f"{path}.levels[{k}]",
                    f"band {band.name!r} of {owner} ({band.describe()}) can never be reached: "
                    f"{why}",
                    hint="move the cut points into the range of the values, or drop the level",
                )


class DuplicateScore(Check):
    """Two levels of an indicator's bands give the same score.

    What it does
    ------------
    Reports a level whose score (the explicit ``score``, or the one spread evenly from worst to
    best) equals the score of another level of the same bands.

    Why is this bad
    ---------------
    The health score cannot tell the two levels apart, so moving from one to the other
    changes nothing in the score the team watches. Usually one ``score`` was copied and not
    edited. (When the levels differ only for ``band(x)`` conditions, suppress the finding.)

    Example
    -------
    ::

        levels:
          - {name: red, lt: 0.3, score: 0}
          - {name: yellow, ge: 0.3, lt: 0.7, score: 0}
          - {name: green, ge: 0.7, score: 100}

    Fix
    ---
    Give each level its own score (``yellow``: 50), or merge the two levels.
    """

    code = "HR302"
    name = "thresholds.duplicate_score"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per level that repeats the score of an earlier level."""
        for i, ind in enumerate(ctx.roadmap.indicators):
            if ind.bands is None:
                continue
            scores = ind.bands.level_scores()
            first: dict[float, str] = {}
            for k, band in enumerate(ind.bands.levels):
                s = scores[band.name]
                if s in first:
                    path = f"indicators[{i}].bands.levels[{k}]"
                    yield self.finding(
                        path + (".score" if band.score is not None else ""),
                        f"bands {first[s]!r} and {band.name!r} of indicator {ind.id!r} both "
                        f"score {s:g}: the health score cannot tell them apart",
                        hint="give each level its own score, or merge the levels",
                    )
                else:
                    first[s] = band.name


class ScoreOrder(Check):
    """A better band level scores lower than a worse one.

    What it does
    ------------
    Follows the levels from the worst to the best (``direction``: ``higher_is_better`` lists
    the best last, ``lower_is_better`` first) and reports the first level whose explicit
    ``score`` is lower than the score of a worse level.

    Why is this bad
    ---------------
    The health score then drops when the customer improves. Either ``direction`` is wrong
    (``tickets_90d`` is lower-is-better) or the scores are swapped.

    Example
    -------
    ::

        bands:                 # higher_is_better by default
          levels:
            - {name: few, lt: 3, score: 100}
            - {name: many, ge: 3, score: 0}

    Fix
    ---
    Set the direction and let the scores follow it::

        bands:
          direction: lower_is_better
          levels:
            - {name: few, lt: 3}
            - {name: many, ge: 3}
    """

    code = "HR303"
    name = "thresholds.score_order"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per bands whose scores go against its direction."""
        for i, ind in enumerate(ctx.roadmap.indicators):
            bands = ind.bands
            if bands is None or all(b.score is None for b in bands.levels):
                continue
            scores = bands.level_scores()
            ordered = bands.ordered_worst_to_best()
            for worse, better in itertools.pairwise(ordered):
                if scores[better.name] < scores[worse.name]:
                    k = bands.levels.index(better)
                    yield self.finding(
                        f"indicators[{i}].bands.levels[{k}]",
                        f"band {better.name!r} of indicator {ind.id!r} is better than "
                        f"{worse.name!r} ({bands.direction}) but scores less "
                        f"({scores[better.name]:g} < {scores[worse.name]:g})",
                        hint="fix `direction`, or order the scores from the worst level to "
                        "the best",
                    )
                    break


_OFF_SCALE_FACTOR = 10.0


class OffScale(Check):
    """A banded indicator is compared with a number far beyond its band cut points.

    What it does
    ------------
    Reports a comparison of a banded indicator with a number literal whose size is more than
    10 times the largest cut point of its bands (``adoption > 70`` when the cut points are
    0.3 and 0.7). Whole-number indicators (counts, days) are left alone: comparing a count
    banded at 1 and 4 with 50 is a legitimate "power user" threshold.

    Why is this bad
    ---------------
    The bands describe the scale the team reads the indicator on. A threshold ten times beyond
    every cut point is almost always a unit mix-up (a percentage compared with a ratio, hours
    with days), and then the condition is never true, or always.

    Example
    -------
    ::

        - id: adoption
          expr: active_users / seats
          bands:
            levels:
              - {name: low, lt: 0.3}
              - {name: medium, ge: 0.3, lt: 0.7}
              - {name: high, ge: 0.7}
        # in an action:
        when: adoption < 30

    Fix
    ---
    Use the indicator's unit (``adoption < 0.3``), or better, its band:
    ``band(adoption) == 'low'``.
    """

    code = "HR304"
    name = "thresholds.off_scale"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per off-scale comparison."""
        bands = ctx.bands
        for path, parsed in ctx.expression_paths():
            if path.endswith(".where"):
                continue
            for node in ast.walk(parsed.tree):
                if not isinstance(node, ast.Compare):
                    continue
                operands = [node.left, *node.comparators]
                for a, b in itertools.pairwise(operands):
                    for name_node, lit_node in ((a, b), (b, a)):
                        if not (isinstance(name_node, ast.Name) and name_node.id in bands):
                            continue
                        if ctx.analysis.indicator_types.get(name_node.id) == "int":
                            continue
                        ok, value = literal(lit_node)
                        if not ok or not isinstance(value, (int, float)) or isinstance(
                            value, bool
                        ):
                            continue
                        cuts = bands[name_node.id].cut_points()
                        top = max((abs(c) for c in cuts), default=0.0)
                        if top > 0 and abs(value) > _OFF_SCALE_FACTOR * top:
                            shown = ", ".join(f"{c:g}" for c in cuts)
                            yield self.finding(
                                path,
                                f"{name_node.id} is compared with {value:g}, far beyond its "
                                f"band cut points ({shown}): is the unit right?",
                                hint=f"compare in the unit of the bands, or use "
                                f"band({name_node.id})",
                                column=node_column(lit_node),
                            )


CHECKS: list[type[Check]] = [UnreachableBand, DuplicateScore, ScoreOrder, OffScale]
"""The checks of this family, in code order."""
