"""Lint checks of stages: achievement states, entry criteria that shadow later stages, actions."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from healthrules.errors import Issue, Severity
from healthrules.lint._explain import why_never_true
from healthrules.lint.base import Check
from healthrules.lint.context import LintContext
from healthrules.lint.intervals import Region

__all__ = [
    "CHECKS",
    "AchievementUnchecked",
    "NoAchievement",
    "NoActions",
    "OnlyMissingValues",
    "Unreachable",
    "UnreachableTrack",
]


class NoAchievement(Check):
    """A stage has no achievement state.

    What it does
    ------------
    Reports a stage without ``achievement``.

    Why is this bad
    ---------------
    The achievement state is the stage's exit criterion: what must be true to call the stage
    done. Without it, nobody can tell whether an account is moving along the roadmap or stuck,
    and the stage's tasks have no goal to work toward.

    Example
    -------
    ::

        stages:
          - id: onboarding
            entry: days_since(contract_start) < 90

    Fix
    ---
    Say what "done" means, and how to check it::

        stages:
          - id: onboarding
            entry: days_since(contract_start) < 90
            achievement:
              text: Every licensed user has logged in and the training is done.
              when: first_login_rate >= 0.8 and training_rate >= 0.5
    """

    code = "HR101"
    name = "stages.no_achievement"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per stage without ``achievement``."""
        for i, st in enumerate(ctx.roadmap.stages):
            if st.achievement is None:
                yield self.finding(
                    f"stages[{i}]",
                    f"stage {st.id!r} has no achievement state: nothing says when it is done",
                    hint="add `achievement:` with a text and a `when:` expression",
                )


class AchievementUnchecked(Check):
    """A stage's achievement state is text only, with no ``when`` to check it.

    What it does
    ------------
    Reports an ``achievement`` that has a ``text`` but no ``when`` expression.

    Why is this bad
    ---------------
    The text tells people what "done" means, but the engine cannot check it: ``achieved`` is
    always null for the stage's accounts, and actions cannot use ``stage_achieved``. Like a fuel
    lamp, a good criterion should also say when the problem is resolved.

    Example
    -------
    ::

        achievement: The team uses the product every week.

    Fix
    ---
    Add the measurable form of the text::

        achievement:
          text: The team uses the product every week.
          when: band(seat_utilisation) == 'high'
    """

    code = "HR102"
    name = "stages.achievement_unchecked"
    severity = Severity.INFO

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per achievement without ``when``."""
        for i, st in enumerate(ctx.roadmap.stages):
            if st.achievement is not None and st.achievement.when is None:
                yield self.finding(
                    f"stages[{i}].achievement",
                    f"the achievement of stage {st.id!r} has no `when`, so it is never checked "
                    "(achieved is always null)",
                    hint="add `when:` with the expression that says the stage is done",
                )


class Unreachable(Check):
    """A stage can never be reached: earlier stages take every account that would enter it.

    What it does
    ------------
    An account is in the *first* stage whose ``entry`` is true (a stage without ``entry``
    takes every account). This check reports a stage that no account can be in, because

    - an earlier stage has no ``entry``, so every account stops there;
    - its own ``entry`` can never be true (``logins_30d < 0``, ``x < 5 and x > 10``);
    - every account that meets its ``entry`` already meets the entry of an earlier stage
      (found by interval reasoning over the entry criteria: ``seats >= 10`` before
      ``seats >= 50``).

    Why is this bad
    ---------------
    The stage's tasks, actions and score weights never apply to anyone, silently. This is
    almost always a stage-order mistake: the catch-all stage must come last, and narrower
    entries before wider ones.

    Example
    -------
    ::

        stages:
          - id: operation               # no entry: takes every account
          - id: renewal
            entry: days_between(as_of, renewal_date) <= 90

    Fix
    ---
    Put narrower stages first and the catch-all last::

        stages:
          - id: renewal
            entry: days_between(as_of, renewal_date) <= 90
          - id: operation
    """

    code = "HR103"
    name = "stages.unreachable"
    severity = Severity.ERROR

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per stage that no account can be in."""
        stages = ctx.roadmap.stages
        for j, st in enumerate(stages):
            if not ctx.reach(j).empty:
                continue
            path = f"stages[{j}].entry" if st.entry is not None else f"stages[{j}]"
            hint = ("an account is in the first stage whose entry holds: put narrower stages "
                    "first and the catch-all stage (no entry) last")
            catch_all = next((i for i in range(j) if stages[i].entry is None), None)
            if catch_all is not None:
                yield self.finding(
                    path,
                    f"stage {st.id!r} can never be reached: stage {stages[catch_all].id!r} "
                    "comes first and has no entry, so every account stops there",
                    hint=hint, related=f"stages[{catch_all}]",
                )
                continue
            own = ctx.entry(j)
            parsed = ctx.parsed(path)
            if own is not None and parsed is not None and own.true.empty:
                why = why_never_true(parsed, own)
                if why is None:
                    continue  # a comparison with an unknown name: expressions.unknown_label
                yield self.finding(path, f"stage {st.id!r} can never be entered: {why.text}",
                                   column=why.column)
                continue
            shadows = []
            for i in range(j):
                earlier = ctx.entry(i)
                if own is not None and earlier is not None and own.true.meet(
                    earlier.not_true
                ).empty:
                    shadows.append(i)
            if shadows and parsed is not None:
                i = shadows[0]
                earlier_text = ctx.parsed(f"stages[{i}].entry")
                yield self.finding(
                    path,
                    f"stage {st.id!r} can never be reached: every account that meets its entry "
                    f"`{parsed.source}` already meets the entry of the earlier stage "
                    f"{stages[i].id!r} (`{earlier_text.source if earlier_text else ''}`)",
                    hint=hint, related=f"stages[{i}].entry",
                )
            else:
                names = ", ".join(repr(stages[i].id) for i in range(j))
                whom = "every account" if st.entry is None else (
                    "every account that meets its entry")
                yield self.finding(
                    path,
                    f"stage {st.id!r} can never be reached: the entries of the earlier stages "
                    f"({names}) together take {whom}",
                    hint=hint,
                )


class NoActions(Check):
    """A stage has no actions of its own.

    What it does
    ------------
    Reports a stage with an empty ``actions`` list.

    Why is this bad
    ---------------
    A new stage starts where the action we take toward the customer changes. A stage with no
    positive or challenge action of its own either is not a real stage (merge it with its
    neighbour) or is missing its "when ... do ..." rows, so its accounts get only the
    roadmap-wide actions.

    Example
    -------
    ::

        stages:
          - id: operation
            entry: days_between(as_of, renewal_date) > 90

    Fix
    ---
    Write at least one opportunity or risk action for the stage::

        stages:
          - id: operation
            entry: days_between(as_of, renewal_date) > 90
            actions:
              - id: feature_x_option
                kind: positive
                when: feature_x_rate >= 0.6
                do: Propose the paid feature-X option.
                owner: csm
    """

    code = "HR104"
    name = "stages.no_actions"
    severity = Severity.INFO

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per stage without actions."""
        for i, st in enumerate(ctx.roadmap.stages):
            if not st.actions:
                yield self.finding(
                    f"stages[{i}]",
                    f"stage {st.id!r} has no actions of its own",
                    hint="add the positive and challenge actions the team takes in this stage",
                )


class OnlyMissingValues(Check):
    """A stage only gets the accounts whose values are missing.

    What it does
    ------------
    Reports a stage that some accounts can reach, but only because an earlier stage's entry
    is unknown (null) for them: every account whose values are known meets an earlier
    entry. Typically a catch-all stage after entries that split a value in two
    (``days_since(contract_start) < 90``, then ``>= 90``): it only collects the accounts
    with no ``contract_start``. Stages whose own entry tests for a missing value
    (``x is None``) are meant for that and are not reported.

    Why is this bad
    ---------------
    The stage looks like it holds real customers (dormant, at risk ...) but only ever holds
    data problems. Its actions never reach the customers they were written for, and the
    accounts with missing data are not flagged as such.

    Example
    -------
    ::

        stages:
          - id: onboarding
            entry: days_since(contract_start) < 90
          - id: operation
            entry: days_since(contract_start) >= 90
          - id: dormant          # only accounts without contract_start end up here

    Fix
    ---
    Give the stage an entry that says who belongs in it, before the wider stages, and say
    explicitly what happens to accounts with missing data::

        stages:
          - id: dormant
            entry: days_since_last_login > 60
          - id: onboarding
            entry: days_since(contract_start) < 90
          - id: operation
          - id: data_missing
            entry: contract_start is None
    """

    code = "HR105"
    name = "stages.only_missing_values"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per stage that only accounts with missing values reach."""
        stages = ctx.roadmap.stages
        for j, st in enumerate(stages):
            if j == 0 or ctx.reach(j).empty or not ctx.reach_known(j).empty:
                continue
            parsed = ctx.parsed(f"stages[{j}].entry")
            if parsed is not None and any(
                isinstance(op, (ast.Is, ast.IsNot))
                for node in ast.walk(parsed.tree) if isinstance(node, ast.Compare)
                for op in node.ops
            ):
                continue
            terms: dict[str, str] = {}
            for i in range(j):
                earlier = ctx.entry(i)
                if earlier is not None:
                    terms.update((a.key, a.term) for a in earlier.atoms)
            missing = sorted({terms[k] for box in ctx.reach(j).boxes for k, dom in box.items()
                              if k in terms and dom.null and dom.values_empty})
            what = ", ".join(missing) if missing else "the values the earlier entries read"
            yield self.finding(
                f"stages[{j}].entry" if st.entry is not None else f"stages[{j}]",
                f"stage {st.id!r} only gets accounts whose values are missing ({what}): "
                "every account with known values meets the entry of an earlier stage",
                hint="give the stage an entry that says who belongs in it, and handle missing "
                "data explicitly (e.g. `x is None`)",
            )


class UnreachableTrack(Check):
    """A roadmap of a pack never gets an account: earlier tracks take them all.

    What it does
    ------------
    A pack routes each account to the *first* roadmap (track) whose ``applies_to`` is true; a
    roadmap without ``applies_to`` takes every account that reaches it. This check reports a
    roadmap that no account can be routed to, because an earlier track has no
    ``applies_to``, or because the earlier tracks' ``applies_to`` take every account its own
    ``applies_to`` accepts (interval reasoning, as for ``stages.unreachable``). It runs when
    the roadmap is linted through its pack.

    Why is this bad
    ---------------
    The whole track (its stages, score and actions) silently never applies. Segmenting
    customers by goal only works when each goal's route can be reached.

    Example
    -------
    ::

        kind: pack
        roadmaps:
          - self-sufficient.yaml     # no applies_to: takes every account
          - do-it-for-us.yaml        # applies_to: goal == 'delegate'

    Fix
    ---
    List the narrower tracks first and the catch-all track last, or give the first track an
    ``applies_to``.
    """

    code = "HR106"
    name = "stages.unreachable_track"
    severity = Severity.ERROR

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding when the roadmap is a track that no account is routed to."""
        earlier = ctx.earlier_tracks()
        if not earlier or ctx.pack is None:
            return
        own = ctx.regions("applies_to")
        region = own.true if own is not None else Region.top()
        path = "applies_to" if own is not None else ""
        pack = ctx.pack.id
        catch_all = next((t for t in earlier if t.roadmap.applies_to is None), None)
        if catch_all is not None:
            yield self.finding(
                path, f"roadmap {ctx.roadmap.id!r} never gets an account in pack {pack!r}: "
                f"the earlier track {catch_all.roadmap.id!r} has no applies_to, so it takes "
                "every account",
                hint="list the catch-all track last in the pack's roadmaps")
            return
        for t in earlier:
            theirs = t.regions("applies_to")
            region = region.meet(theirs.not_true if theirs is not None else Region.bottom())
        if region.empty:
            names = ", ".join(repr(t.roadmap.id) for t in earlier)
            yield self.finding(
                path, f"roadmap {ctx.roadmap.id!r} never gets an account in pack {pack!r}: "
                f"the applies_to of the earlier tracks ({names}) take every account it "
                "applies to",
                hint="list narrower tracks first in the pack's roadmaps")


CHECKS: list[type[Check]] = [
    NoAchievement, AchievementUnchecked, Unreachable, NoActions, OnlyMissingValues,
    UnreachableTrack]
"""The checks of this family, in code order."""
