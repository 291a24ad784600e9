"""Lint checks of actions: conditions that are never or always true, owners, channels, texts."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from healthrules.analysis import TemplateField
from healthrules.errors import Issue, Severity
from healthrules.lint._explain import why_always_true, why_never_true
from healthrules.lint.base import Check
from healthrules.lint.context import ActionRef, LintContext
from healthrules.lint.intervals import Region

__all__ = [
    "CHECKS",
    "AlwaysTrue",
    "ChallengeLowPriority",
    "DuplicateCondition",
    "EscalatedBeforeDue",
    "NeverTrue",
    "NoChannel",
    "NoOwner",
    "QuotesNothing",
    "ResolvedImmediately",
]


def _context(ctx: LintContext, ref: ActionRef) -> Region | None:
    """The accounts an action sees: its stage's accounts, or None for roadmap-wide actions."""
    return ctx.in_stage(ref.stage_index) if ref.stage_index is not None else None


def _where(ref: ActionRef) -> str:
    return f"action {ref.action.id!r}"


class NeverTrue(Check):
    """An action's condition can never be true, so the action never fires.

    What it does
    ------------
    Reasons over the intervals of the values in ``when`` and reports a condition no account
    can meet:

    - a comparison outside the values a name can take: ``logins_30d < 0`` (counts are never
      negative), ``score > 100``, ``active_days_30d > 40``;
    - parts that contradict each other: ``x < 5 and x > 10``,
      ``band(adoption) == 'high' and adoption < 0.2``, ``plan == 'pro' and plan == 'basic'``;
    - a condition ruled out by the action's stage: ``stage == 'renewal'`` in an action of the
      onboarding stage, or ``days_since(contract_start) > 120`` in a stage entered only when
      ``days_since(contract_start) < 90``.

    Why is this bad
    ---------------
    A dead action is a risk nobody is warned about, or an opportunity nobody takes, and it
    looks fine in review. It is nearly always a wrong operator, threshold or unit.

    Example
    -------
    ::

        when: logins_30d < 3 and logins_30d > 10

    Fix
    ---
    Fix the operator or the threshold::

        when: logins_30d < 3 or logins_30d > 100
    """

    code = "HR501"
    name = "actions.never_true"
    severity = Severity.ERROR

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per action that can never fire."""
        for ref in ctx.actions():
            path = f"{ref.path}.when"
            regions, parsed = ctx.regions(path), ctx.parsed(path)
            if regions is None or parsed is None:
                continue
            context = _context(ctx, ref)
            if regions.true.empty:
                why = why_never_true(parsed, regions)
            elif context is not None and regions.true.meet(context).empty:
                why = why_never_true(parsed, regions, context)
            else:
                continue
            if why is None:
                continue
            yield self.finding(path, f"the condition of {_where(ref)} is never true: {why.text}",
                               column=why.column,
                               hint="fix the operator, the threshold or the unit")


class AlwaysTrue(Check):
    """An action's condition is true whenever its values are known.

    What it does
    ------------
    Reports a ``when`` that no known values can make false: ``x >= 3 or x < 3``,
    ``logins_30d >= 0``, ``score <= 100``, or ``stage == 'onboarding'`` in an action of the
    onboarding stage. (It can still be null when a value is missing.)

    Why is this bad
    ---------------
    The action fires for every account in scope on every run, so it carries no signal: the
    team learns to ignore it. Usually an ``and`` was meant, or a threshold is off.

    Example
    -------
    ::

        when: seat_utilisation >= 0.3 or seat_utilisation < 0.3

    Fix
    ---
    Say what singles out the accounts to act on::

        when: seat_utilisation < 0.3
    """

    code = "HR502"
    name = "actions.always_true"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per action that fires for every account with known values."""
        for ref in ctx.actions():
            path = f"{ref.path}.when"
            regions, parsed = ctx.regions(path), ctx.parsed(path)
            if regions is None or parsed is None or regions.true.empty:
                continue
            context = _context(ctx, ref)
            if regions.false.empty:
                why = why_always_true(parsed, regions)
            elif context is not None and not context.empty and regions.false.meet(
                context
            ).empty and not regions.true.meet(context).empty:
                why = why_always_true(parsed, regions, context)
            else:
                continue
            yield self.finding(
                path, f"the condition of {_where(ref)} is always true: {why.text}",
                column=why.column,
                hint="an action that fires for everyone carries no signal; narrow the condition",
            )


class NoOwner(Check):
    """An action has no owner.

    What it does
    ------------
    Reports an action without ``owner``.

    Why is this bad
    ---------------
    "When the score changes, the CSM does X" only works when someone is X's owner. An action
    without an owner lands in nobody's queue.

    Example
    -------
    ::

        - id: nps_resend
          kind: challenge
          when: nps_answers_90d == 0
          do: Resend the NPS survey.

    Fix
    ---
    Name the role that acts: ``owner: csm`` (or sales, support, admin ...).
    """

    code = "HR503"
    name = "actions.no_owner"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per action without an owner."""
        for ref in ctx.actions():
            role = ref.action.owner_role
            if ref.action.owner_attribute is None and (role is None or not role.strip()):
                yield self.finding(ref.path, f"{_where(ref)} has no owner",
                                   hint="add `owner:` naming the role that acts (csm, sales ...)")


class NoChannel(Check):
    """An action does not say through which channel it is delivered.

    What it does
    ------------
    Reports an action without ``channel``.

    Why is this bad
    ---------------
    The delivery method (on-site session, webinar, e-mail with video) should follow from the
    purpose of the action, not from the contract size. Writing it down makes that choice
    explicit and lets the team route actions to the right tool.

    Example
    -------
    ::

        - id: first_login_low
          kind: challenge
          when: first_login_rate < 0.5
          do: Call the admin to check the rollout.
          owner: csm

    Fix
    ---
    Add ``channel: high-touch (call with the admin)`` (or low-touch, tech-touch, free text).
    """

    code = "HR504"
    name = "actions.no_channel"
    severity = Severity.INFO

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per action without a channel."""
        for ref in ctx.actions():
            if ref.action.channel is None or not ref.action.channel.strip():
                yield self.finding(ref.path, f"{_where(ref)} has no channel",
                                   hint="add `channel:` (high-touch, low-touch, tech-touch ...)")


class ChallengeLowPriority(Check):
    """A challenge (risk) action has priority low.

    What it does
    ------------
    Reports an action with ``kind: challenge`` and ``priority: low``.

    Why is this bad
    ---------------
    Challenge actions answer churn signals. Ranked low, they sink below every opportunity in
    the CSM's list (actions are sorted by priority) and are acted on last, if at all. When the
    risk really is minor, say so by suppressing this finding on the action.

    Example
    -------
    ::

        - id: key_person_drop
          kind: challenge
          priority: low

    Fix
    ---
    Use ``priority: medium`` or higher, or make the action positive if it is an opportunity.
    """

    code = "HR505"
    name = "actions.challenge_low_priority"
    severity = Severity.INFO

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per low-priority challenge action."""
        for ref in ctx.actions():
            if ref.action.kind == "challenge" and ref.action.priority == "low":
                yield self.finding(
                    f"{ref.path}.priority",
                    f"challenge {_where(ref)} has priority low: risks sort below every "
                    "opportunity",
                    hint="use priority medium or higher for a churn risk",
                )


class QuotesNothing(Check):
    """An action's ``do`` text quotes no value.

    What it does
    ------------
    Reports a ``do`` text without any ``{name}`` placeholder.

    Why is this bad
    ---------------
    The person who acts should see why the action fired without opening a dashboard: "only
    {first_login_rate:.0%} of the users have logged in" says what to talk about, "check the
    rollout" does not.

    Example
    -------
    ::

        do: Call the admin to check the rollout.

    Fix
    ---
    Quote the values from the condition::

        do: Only {first_login_rate:.0%} of the users have logged in; call the admin.
    """

    code = "HR506"
    name = "actions.quotes_nothing"
    severity = Severity.INFO

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per ``do`` text without placeholders."""
        for ref in ctx.actions():
            pieces = ctx.template(f"{ref.path}.do")
            if pieces is None:
                continue
            if not any(isinstance(p, TemplateField) for p in pieces):
                parsed = ctx.parsed(f"{ref.path}.when")
                names = sorted(parsed.names) if parsed is not None else []
                example = f" such as {{{names[0]}}}" if names else ""
                yield self.finding(
                    f"{ref.path}.do",
                    f"the text of {_where(ref)} quotes no value",
                    hint=f"quote the values that made it fire{example}",
                )


class DuplicateCondition(Check):
    """Two actions for the same accounts have the same condition.

    What it does
    ------------
    Reports an action whose ``when`` equals (ignoring spacing) the ``when`` of an earlier
    action that can apply to the same accounts: both in the same stage, or one of them
    roadmap-wide.

    Why is this bad
    ---------------
    Two actions always fire together, so the same accounts get two tasks for one signal.
    Usually one was copied and its condition never edited.

    Example
    -------
    ::

        - {id: low_usage, kind: challenge, when: "seat_utilisation < 0.3", ...}
        - {id: upsell, kind: positive, when: "seat_utilisation < 0.3", ...}

    Fix
    ---
    Edit the copied condition, or merge the two actions into one.
    """

    code = "HR507"
    name = "actions.duplicate_condition"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per action that repeats an earlier action's condition."""
        seen: list[tuple[str, ActionRef]] = []
        for ref in ctx.actions():
            parsed = ctx.parsed(f"{ref.path}.when")
            if parsed is None:
                continue
            key = ast.dump(parsed.tree, annotate_fields=False)
            for other_key, other in seen:
                same_scope = (other.stage_index is None or ref.stage_index is None
                              or other.stage_index == ref.stage_index)
                if other_key == key and same_scope:
                    yield self.finding(
                        f"{ref.path}.when",
                        f"{_where(ref)} has the same condition as action {other.action.id!r}",
                        hint="edit the copied condition, or merge the two actions",
                        related=f"{other.path}.when",
                    )
                    break
            seen.append((key, ref))


class ResolvedImmediately(Check):
    """An action is resolved as soon as it fires: ``when`` implies ``resolved_when``.

    What it does
    ------------
    Reports an action whose ``resolved_when`` is true for every account its ``when`` is true
    for (``when: x < 0.5``, ``resolved_when: x < 0.8``).

    Why is this bad
    ---------------
    ``resolved_when`` is meant to close the action once the problem is gone, usually at a
    better level than the one that raised it (hysteresis). When it already holds while the
    action fires, the action is opened and closed in the same run, and the flag flaps.

    Example
    -------
    ::

        when: first_login_rate < 0.5
        resolved_when: first_login_rate < 0.8

    Fix
    ---
    Close it on the good side of the threshold::

        when: first_login_rate < 0.5
        resolved_when: first_login_rate >= 0.8
    """

    code = "HR508"
    name = "actions.resolved_immediately"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per action resolved by its own condition."""
        for ref in ctx.actions():
            when = ctx.regions(f"{ref.path}.when")
            resolved = ctx.regions(f"{ref.path}.resolved_when")
            if when is None or resolved is None or when.true.empty:
                continue
            if when.true.meet(resolved.not_true).empty:
                yield self.finding(
                    f"{ref.path}.resolved_when",
                    f"{_where(ref)} is resolved as soon as it fires: whenever `{ref.action.when}` "
                    f"is true, `{ref.action.resolved_when}` is true too",
                    hint="resolve it on the good side of the threshold (e.g. the opposite "
                    "comparison)",
                    related=f"{ref.path}.when",
                )


class EscalatedBeforeDue(Check):
    """An action is escalated before it is due.

    What it does
    ------------
    Reports an action with ``due`` as a duration and ``escalate_after`` counted from the
    opening (the default ``escalate_from: opened``) that is not longer than ``due``: a run
    between ``escalate_after`` days after the opening and the due date escalates the action
    before it is overdue. (An action is escalated at the first run at least
    ``escalate_after`` days after it opens, so whether that falls before the due date
    depends on when the runs are: daily runs escalate ``due: 7d, escalate_after: 5d`` two
    days early, weekly ones on its due date.)

    Why is this bad
    ---------------
    A due date tells the owner how long they have; escalating before it has passed flags
    people who are still on time, and teaches them to ignore escalations. It is nearly always
    ``escalate_after`` meant to count from the due date.

    Example
    -------
    ::

        due: 7d
        escalate_after: 5d

    Fix
    ---
    Count the escalation from the due date (escalated once overdue, or N days after)::

        due: 7d
        escalate_from: due
        escalate_after: 2d
    """

    code = "HR509"
    name = "actions.escalated_before_due"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per action escalated on or before its due date."""
        for ref in ctx.actions():
            action = ref.action
            due, after = action.due_days, action.escalate_after
            if action.escalate_from != "opened" or due is None or after is None or after > due:
                continue
            # the escalation comes at the first run at least `after` days after the opening:
            # whether that is before the due date depends on when the runs are, so the
            # finding names the runs that escalate early, not one day
            span = f"{after}" if due - after <= 1 else f"{after} to {due - 1}"
            when = (f"before its due date when that run comes {span} day(s) after the opening "
                    f"(with daily runs, {due - after} day(s) early)" if after < due else
                    "on its due date, not yet overdue, when a run falls on that date")
            yield self.finding(
                f"{ref.path}.escalate_after",
                f"{_where(ref)} is escalated at the first run {after} or more day(s) after it "
                f"opens (escalate_after counts from the opening), and is due {due} day(s) after "
                f"it opens: {when}",
                hint="count from the due date: escalate_from: due (escalated once overdue), "
                "or make escalate_after longer than due",
                related=f"{ref.path}.due",
            )


CHECKS: list[type[Check]] = [
    NeverTrue,
    AlwaysTrue,
    NoOwner,
    NoChannel,
    ChallengeLowPriority,
    QuotesNothing,
    DuplicateCondition,
    ResolvedImmediately,
    EscalatedBeforeDue,
]
"""The checks of this family, in code order."""
