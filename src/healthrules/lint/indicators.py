"""Lint checks of indicators: unused ones, duplicates, and whether the goal is measured."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from healthrules.analysis import reads
from healthrules.errors import Issue, Severity
from healthrules.lint.base import Check
from healthrules.lint.context import LintContext
from healthrules.roadmap import AggregateIndicator, DerivedIndicator, RollupIndicator

__all__ = ["CHECKS", "Duplicate", "GoalNotOutcome", "NoOutcome", "PlainerPercentile",
           "TargetIgnoresIndicator", "Unused", "used_indicators"]


def used_indicators(ctx: LintContext) -> dict[str, str]:
    """Every indicator something uses, with what uses it (for messages).

    An indicator is used when a condition, a task, the goal, an ``applies_to``, a ``do`` text
    or a score weight set reads it, or when a used derived indicator is computed from it.
    """
    ids = {ind.id for ind in ctx.roadmap.indicators}
    derived_of = {
        ind.id: f"indicators[{i}].expr"
        for i, ind in enumerate(ctx.roadmap.indicators)
        if isinstance(ind, DerivedIndicator)
    }
    derived_paths = set(derived_of.values())
    used: dict[str, str] = {}
    for name, paths in ctx.names_read.items():
        direct = [p for p in paths if p not in derived_paths]
        if name in ids and direct:
            used[name] = direct[0]
    goal = ctx.roadmap.goal.indicator
    if goal is not None and goal in ids:
        used.setdefault(goal, "goal.indicator")
    for ws in ctx.weight_sets:
        for ident in ws.scored:
            used.setdefault(ident, ws.path)
        for ident, w in ws.weights.indicators.items():
            if w > 0 and ident in ids:
                used.setdefault(ident, f"{ws.path}.indicators.{ident}")
    # a used derived indicator uses what it is computed from
    todo = [i for i in used if i in derived_of]
    while todo:
        ident = todo.pop()
        parsed = ctx.parsed(derived_of[ident])
        if parsed is None:
            continue
        for name in parsed.names:
            if name in ids and name not in used:
                used[name] = derived_of[ident]
                if name in derived_of:
                    todo.append(name)
    return used


class Unused(Check):
    """An indicator is defined but nothing uses it.

    What it does
    ------------
    Reports an indicator that no expression (condition, entry, achievement, task, goal target,
    other used indicator), no ``do`` text, no score weight set and no ``goal.indicator``
    reads. An indicator that appears only with weight 0, or only in unused derived
    indicators, is unused too. An imported indicator is reported at its import entry.

    Why is this bad
    ---------------
    Every indicator is computed for every account on every run. One that drives no action and
    no score is noise: the method says to start from the action and work back to the
    indicator, not the other way round. Often it is a typo'd or forgotten reference.

    Example
    -------
    ::

        indicators:
          - id: logins_30d
            family: process
            aggregate: count
            where: event == 'login'
            window: 30d
        # ... and no condition, text or weight mentions logins_30d

    Fix
    ---
    Use it (in an action's ``when``, a ``do`` text, a weight) or delete it. For an imported
    library, list only the indicators you need under ``imports[].indicators``.
    """

    code = "HR201"
    name = "indicators.unused"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per unused indicator."""
        used = used_indicators(ctx)
        for i, ind in enumerate(ctx.roadmap.indicators):
            if ind.id in used:
                continue
            hint = ("use it in a condition, a `do` text or the score weights, or remove it")
            if ctx.is_imported(ind.id):
                yield self.finding(
                    ctx.imported[ind.id],
                    f"imported indicator {ind.id!r} is never used",
                    hint="import only the indicators you use (imports[].indicators)",
                )
            else:
                yield self.finding(f"indicators[{i}]", f"indicator {ind.id!r} is never used",
                                   hint=hint)


class NoOutcome(Check):
    """Nothing measures the goal: no outcome indicator, no goal indicator, no goal target.

    What it does
    ------------
    Reports a roadmap whose ``goal`` names no ``indicator`` and no ``target``, and that has no
    indicator of ``family: outcome``.

    Why is this bad
    ---------------
    Process and relationship indicators say whether customers follow the journey and whether
    we are in touch; only outcome indicators (goal attainment, ROI) say whether customers
    reach the success they bought the product for. Without one, the roadmap cannot tell a busy
    customer from a successful one.

    Example
    -------
    ::

        goal: The team reaches its ROI goal.
        indicators:
          - {id: logins_30d, family: process, aggregate: count, window: 30d}

    Fix
    ---
    Measure the goal and say so::

        goal:
          text: The team reaches its ROI goal.
          indicator: roi_goal_reached
        indicators:
          - id: roi_goal_reached
            family: outcome
            aggregate: count
            where: event == 'roi_goal_reached'
    """

    code = "HR202"
    name = "indicators.no_outcome"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding when the goal is not measured at all."""
        r = ctx.roadmap
        if r.goal.indicator is not None or r.goal.target is not None:
            return
        if any(ind.family == "outcome" for ind in r.indicators):
            return
        yield self.finding(
            "goal",
            "nothing measures the goal: no indicator has `family: outcome`, and the goal names "
            "no `indicator` or `target`",
            hint="add an outcome indicator (goal attainment, ROI) and name it in goal.indicator",
        )


class GoalNotOutcome(Check):
    """The goal's indicator is not an outcome indicator.

    What it does
    ------------
    Reports a ``goal.indicator`` whose indicator has ``family: process`` or
    ``family: relationship``.

    Why is this bad
    ---------------
    The goal is the customer's success (the KGI). Usage and contact are leading indicators of
    it, not the goal itself; naming one as the goal's indicator makes activity look like
    success.

    Example
    -------
    ::

        goal:
          text: The team reaches its ROI goal.
          indicator: logins_30d          # family: process

    Fix
    ---
    Name an outcome indicator, or set the family right if the indicator really measures the
    outcome::

        goal:
          text: The team reaches its ROI goal.
          indicator: roi_goal_reached    # family: outcome
    """

    code = "HR203"
    name = "indicators.goal_not_outcome"
    severity = Severity.INFO

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding when the goal's indicator has another family."""
        ident = ctx.roadmap.goal.indicator
        if ident is None:
            return
        try:
            ind = ctx.roadmap.indicator(ident)
        except KeyError:
            return
        if ind.family != "outcome":
            yield self.finding(
                "goal.indicator",
                f"the goal's indicator {ident!r} is a {ind.family} indicator, not an outcome "
                "indicator",
                hint="name an indicator of family outcome (goal attainment, ROI)",
            )


class TargetIgnoresIndicator(Check):
    """The goal's target does not read the goal's indicator.

    What it does
    ------------
    Reports a ``goal.target`` that does not read ``goal.indicator``, directly or through the
    derived indicators it reads.

    Why is this bad
    ---------------
    ``goal.indicator`` says which indicator measures the goal; ``goal.target`` decides
    ``goal_reached`` for every account, which actions, the views and the backtest read. When
    the target ignores the indicator, an account can "reach" the goal while the indicator that
    measures it says otherwise: the two were usually meant to agree, and one was renamed or
    replaced without the other.

    Example
    -------
    ::

        goal:
          text: The team reaches the agreed ROI.
          indicator: roi_goal_reached
          target: seat_utilisation >= 0.8      # ROI not checked

    Fix
    ---
    Make the target read the indicator (``roi_goal_reached >= 1 and seat_utilisation >=
    0.8``), or name the indicator the target does read.
    """

    code = "HR206"
    name = "indicators.target_ignores_indicator"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding when the target never reads the goal's indicator."""
        ident = ctx.roadmap.goal.indicator
        target = ctx.parsed("goal.target")
        if ident is None or target is None:
            return
        derived = {ind.id: f"indicators[{i}].expr"
                   for i, ind in enumerate(ctx.roadmap.indicators)
                   if isinstance(ind, DerivedIndicator)}
        seen: set[str] = set()
        todo = [target]
        while todo:
            parsed = todo.pop()
            for name in reads(parsed):
                if name in seen:
                    continue
                seen.add(name)
                sub = ctx.parsed(derived[name]) if name in derived else None
                if sub is not None:
                    todo.append(sub)
        if ident not in seen:
            yield self.finding(
                "goal.target",
                f"goal.target does not read the goal's indicator {ident!r}, so goal_reached "
                "does not follow it",
                hint=f"read {ident!r} in the target, or name the indicator the target reads",
                related="goal.indicator",
            )


def _signature(ind: AggregateIndicator | DerivedIndicator | RollupIndicator,
               default_source: str) -> tuple[object, ...]:
    def norm(text: str | None) -> str | None:
        if text is None:
            return None
        try:
            return ast.dump(ast.parse(text.strip(), mode="eval"), annotate_fields=False)
        except SyntaxError:
            return text.strip()

    if isinstance(ind, DerivedIndicator):
        return ("derived", norm(ind.expr), ind.compare)
    if isinstance(ind, RollupIndicator):
        return ("rollup", ind.aggregate, norm(ind.of), norm(ind.weight))
    w = ind.window
    return ("events", ind.source or default_source, ind.aggregate, ind.of, ind.q,
            norm(ind.where), w.days, w.from_, ind.compare)


class Duplicate(Check):
    """Two indicators compute the same thing.

    What it does
    ------------
    Reports an indicator whose definition (event source, aggregate, ``of``, ``where``, window
    and ``compare``; or, for a derived one, its ``expr``) equals that of an earlier
    indicator, ignoring spacing.

    Why is this bad
    ---------------
    Two names for one value split its uses: some actions read one, the score weighs the other,
    and when the definition changes only one of them gets fixed. It also costs a second
    aggregation over the events.

    Example
    -------
    ::

        indicators:
          - {id: logins_30d, family: process, aggregate: count, where: "event == 'login'",
             window: 30d}
          - {id: monthly_logins, family: process, aggregate: count,
             where: "event=='login'", window: 30d}

    Fix
    ---
    Keep one and use its id everywhere.
    """

    code = "HR204"
    name = "indicators.duplicate"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per indicator that repeats an earlier one."""
        seen: dict[tuple[object, ...], int] = {}
        for i, ind in enumerate(ctx.roadmap.indicators):
            sig = _signature(ind, ctx.roadmap.data.default_source)
            if sig in seen:
                first = ctx.roadmap.indicators[seen[sig]]
                yield self.finding(
                    f"indicators[{i}]",
                    f"indicator {ind.id!r} computes the same value as {first.id!r}",
                    hint=f"keep one of them and use {first.id!r} everywhere",
                    related=f"indicators[{seen[sig]}]",
                )
            else:
                seen[sig] = i


_PLAINER = {0: ("min", "the smallest value"), 1: ("max", "the largest value"),
            0.5: ("median", "the median")}


class PlainerPercentile(Check):
    """A percentile at 0, 0.5 or 1 is the min, the median or the max under another name.

    What it does
    ------------
    Reports ``aggregate: percentile`` with ``q: 0`` (the smallest value), ``q: 1`` (the
    largest) or ``q: 0.5`` (the median). A percentile is a float: of an ``int`` column,
    ``min`` and ``max`` are the ints themselves (exact beyond 2**53, where the percentile is
    the nearest float, and ints to the expressions that read them), which the finding says.

    Why is this bad
    ---------------
    ``q`` is a fraction between 0 and 1; ``q: 1`` is often meant as p1 or p100 by someone who
    thinks in percent (p1 is ``q: 0.01``). When it is meant, ``min`` and ``max`` say it
    plainly, and history computes them incrementally, in one pass over the events, where a
    percentile needs one query per snapshot date.

    Example
    -------
    ::

        - {id: slowest_response, family: relationship, aggregate: percentile, q: 1,
           of: response_minutes, window: 30d}

    Fix
    ---
    Write ``aggregate: max`` (``min``, ``median``), or the percentile meant (``q: 0.01``).
    """

    code = "HR205"
    name = "indicators.plainer_percentile"
    severity = Severity.INFO

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per percentile whose q is 0, 0.5 or 1."""
        for i, ind in enumerate(ctx.roadmap.indicators):
            if not (isinstance(ind, AggregateIndicator) and ind.aggregate == "percentile"
                    and ind.q in _PLAINER):
                continue
            plain, what = _PLAINER[ind.q]
            a = ctx.analysis
            source = a.indicator_sources.get(ind.id)
            of_int = (source is not None and ind.of is not None
                      and a.source_types.get(source, {}).get(ind.of) == "int")
            # a percentile is a float: of an int column, min and max are the ints themselves
            # (exact beyond 2**53, and int to the expressions that read them)
            note = (f"; of int column {ind.of!r}, {plain} is the int itself where the "
                    "percentile is the nearest float" if of_int and plain != "median" else "")
            yield self.finding(
                f"indicators[{i}].q",
                f"percentile q {ind.q:g} of {ind.id!r} is {what}: aggregate {plain} says it "
                f"plainly (q is a fraction: p1 is q 0.01){note}",
                hint=f"write `aggregate: {plain}` without q, or the percentile meant",
            )


CHECKS: list[type[Check]] = [Unused, NoOutcome, GoalNotOutcome, Duplicate, PlainerPercentile,
                             TargetIgnoresIndicator]
"""The checks of this family, in code order."""
