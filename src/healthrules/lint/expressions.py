"""Lint checks of expressions: constant conditions and parts, unknown band or stage names."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

from healthrules.analysis import score_band_names
from healthrules.errors import Issue, Severity
from healthrules.expressions import Parsed, did_you_mean
from healthrules.lint._explain import atom_reason, segment, why_always_true, why_never_true
from healthrules.lint.base import Check
from healthrules.lint.context import LintContext, node_column
from healthrules.lint.intervals import analyse, literal
from healthrules.roadmap import UNASSIGNED_STAGE

__all__ = ["CHECKS", "ConstantCondition", "ConstantPart", "UnknownLabel"]


@dataclass(frozen=True, slots=True)
class _Kind:
    """How to talk about one kind of condition, and whether to report each constant case."""

    never: str | None
    always: str | None
    stage: int | None = None


_STAGE = re.compile(r"^stages\[(\d+)\]")
_INDICATOR = re.compile(r"^indicators\[(\d+)\]")


def _kind(ctx: LintContext, path: str) -> _Kind | None:
    """What a condition at ``path`` means (None for paths other checks cover, or non-conditions)."""
    m = _STAGE.match(path)
    stage = int(m.group(1)) if m else None
    sid = ctx.roadmap.stages[stage].id if stage is not None else ""
    if path.endswith(".actions") or ".actions[" in path:
        if path.endswith(".resolved_when"):
            return _Kind("the action is never resolved by its resolved_when", None)
        return None  # `when`: actions.never_true / actions.always_true
    if stage is not None and path.endswith(".entry"):
        return _Kind(None, f"the entry of stage {sid!r} is always true (when its values are "
                           "known), so later stages only get accounts with missing values")
    if stage is not None and path.endswith(".achievement.when"):
        return _Kind(f"stage {sid!r} can never be achieved",
                     f"stage {sid!r} is achieved as soon as an account enters it", stage)
    if stage is not None and path.endswith(".done_when"):
        return _Kind("the task can never be done", "the task is done as soon as an account "
                     "enters the stage", stage)
    if path.startswith("actions[") and path.endswith(".resolved_when"):
        return _Kind("the action is never resolved by its resolved_when", None)
    if path == "goal.target":
        return _Kind("the goal can never be reached", "the goal is always reached")
    if path == "applies_to":
        return _Kind("the roadmap applies to no account", None)
    m = _INDICATOR.match(path)
    if m is not None and path.endswith(".where"):
        ident = ctx.roadmap.indicators[int(m.group(1))].id
        return _Kind(f"the filter of indicator {ident!r} is never true, so no event counts",
                     None)
    return None


class ConstantCondition(Check):
    """A condition that is never true, or always true, so it decides nothing.

    What it does
    ------------
    Applies the interval reasoning of ``actions.never_true`` to the other conditions:

    - never true: an ``achievement.when`` (the stage can never be achieved), a task's
      ``done_when``, ``goal.target``, ``applies_to``, an indicator's ``where`` filter
      (``event == 'login' and event == 'logout'`` counts nothing), a ``resolved_when``;
    - always true (when its values are known): an ``achievement.when`` or ``done_when`` (done
      on entry), ``goal.target``, a stage ``entry`` (later stages only get accounts with
      missing values).

    Achievements and tasks are judged for the accounts that can be in their stage, so an
    achievement that contradicts the stage's entry is reported too.

    Why is this bad
    ---------------
    A constant condition is a threshold in the wrong unit, a wrong operator, or ``and`` where
    ``or`` was meant (``event == 'a' and event == 'b'`` instead of ``event in ('a', 'b')``).
    The engine evaluates it without complaint and the result is silently meaningless.

    Example
    -------
    ::

        - id: logins_30d
          aggregate: count
          where: event == 'login' and event == 'sso_login'

    Fix
    ---
    ::

        where: event in ('login', 'sso_login')
    """

    code = "HR601"
    name = "expressions.constant_condition"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per constant condition."""
        for path, parsed in ctx.expression_paths():
            kind = _kind(ctx, path)
            regions = ctx.regions(path)
            if kind is None or regions is None:
                continue
            context = ctx.in_stage(kind.stage) if kind.stage is not None else None
            if kind.stage is not None and ctx.reach(kind.stage).empty:
                context = None  # stages.unreachable says it
            true = regions.true if context is None else regions.true.meet(context)
            false = regions.false if context is None else regions.false.meet(context)
            if kind.never is not None and true.empty:
                ctx_arg = context if not regions.true.empty else None
                why = why_never_true(parsed, regions, ctx_arg)
                if why is None:
                    continue
                yield self.finding(path, f"{kind.never}: {why.text}", column=why.column,
                                   hint="fix the operator, the threshold or the unit")
            elif kind.always is not None and false.empty and not true.empty:
                ctx_arg = context if not regions.false.empty else None
                awhy = why_always_true(parsed, regions, ctx_arg)
                yield self.finding(path, f"{kind.always}: {awhy.text}", column=awhy.column,
                                   hint="a condition that is always true decides nothing")


def _whole_constant(ctx: LintContext, path: str) -> bool:
    """Whether the whole condition at ``path`` is never or always true on its own."""
    if path.endswith(".expr"):
        return False
    regions = ctx.regions(path)
    return regions is not None and (regions.true.empty or regions.false.empty)


class ConstantPart(Check):
    """A comparison inside an expression that is never true, or always true.

    What it does
    ------------
    Looks at each comparison of every expression on its own (including derived indicators)
    and reports one that the values of its name decide: ``logins_30d < 0`` (never: counts are
    never negative), ``score <= 100`` (always), ``logins_30d is None`` (never: a count over a
    trailing window is never null). Comparisons that make the whole condition constant are
    reported by ``actions.never_true`` and friends instead.

    Why is this bad
    ---------------
    The rest of the expression still works, so the dead branch of an ``or`` or the redundant
    test of an ``and`` goes unnoticed, though it was meant to catch something.

    Example
    -------
    ::

        when: band(seat_utilisation) == 'low' or logins_30d < 0

    Fix
    ---
    Fix the threshold of the dead part (``logins_30d < 3``), or remove it.
    """

    code = "HR602"
    name = "expressions.constant_part"
    severity = Severity.WARNING

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per constant comparison inside a larger expression."""
        for path, parsed in ctx.expression_paths():
            if _whole_constant(ctx, path):
                continue
            facts = ctx.filter_facts if path.endswith(".where") else ctx.facts
            whole_ok = path.endswith(".expr")  # a derived indicator is not a condition
            for node in ast.walk(parsed.tree):
                if not isinstance(node, ast.Compare):
                    continue
                for atom in analyse(node, facts).atoms:
                    if atom.unknown_label or (atom.node is parsed.tree and not whole_ok):
                        continue
                    seg = segment(parsed, atom.node)
                    if atom.never_true:
                        text = f"`{seg}` is never true: {atom_reason(atom)}"
                    elif atom.never_false:
                        text = f"`{seg}` is always true when {atom.term} is known: " \
                               f"{atom_reason(atom)}"
                    else:
                        continue
                    yield self.finding(path, text, column=node_column(atom.node),
                                       hint="fix the threshold of this part, or remove it")


@dataclass(frozen=True, slots=True)
class _LabelSource:
    what: str
    names: list[str]


def _label_source(ctx: LintContext, node: ast.expr) -> _LabelSource | None:
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "band" and len(node.args) == 1
            and isinstance(node.args[0], ast.Name) and node.args[0].id in ctx.bands):
        ident = node.args[0].id
        return _LabelSource(f"band({ident})", [b.name for b in ctx.bands[ident].levels])
    if isinstance(node, ast.Name) and node.id == "stage":
        return _LabelSource("stage", [*ctx.stage_ids, UNASSIGNED_STAGE])
    names = score_band_names(ctx.roadmap)
    if isinstance(node, ast.Name) and node.id == "score_band" and names:
        return _LabelSource("score_band", names)
    return None


def _labels_compared(parsed: Parsed) -> Iterator[tuple[ast.expr, ast.expr, list[ast.expr]]]:
    """(comparison node, label side, literal nodes) for every ``==``/``!=``/``in`` test."""
    for node in ast.walk(parsed.tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for k, op in enumerate(node.ops):
            a, b = operands[k], operands[k + 1]
            if isinstance(op, (ast.In, ast.NotIn)) and isinstance(b, (ast.Tuple, ast.List)):
                yield node, a, list(b.elts)
            elif isinstance(op, (ast.Eq, ast.NotEq)):
                yield node, a, [b]
                yield node, b, [a]


class UnknownLabel(Check):
    """A band, stage or score-band name in a comparison does not exist.

    What it does
    ------------
    Reports a comparison of ``band(x)``, ``stage`` or ``score_band`` with a name that is not
    one of x's band levels, not a stage id (or ``_unassigned``), or not a score band:
    ``band(adoption) == 'gren'``, ``stage in ('onbaording',)``.

    Why is this bad
    ---------------
    The name never matches, so ``==`` is never true and ``!=`` always true. The engine cannot
    tell a typo from intent; renaming a band or a stage leaves such comparisons behind.

    Example
    -------
    ::

        when: band(seat_utilisation) == 'lo'

    Fix
    ---
    Use one of the names defined in the bands (or the stage ids)::

        when: band(seat_utilisation) == 'low'
    """

    code = "HR603"
    name = "expressions.unknown_label"
    severity = Severity.ERROR

    def run(self, ctx: LintContext) -> Iterator[Issue]:
        """Yield one finding per unknown name."""
        for path, parsed in ctx.expression_paths():
            if path.endswith(".where"):
                continue  # filters read event columns, not bands or stages
            for _node, side, lits in _labels_compared(parsed):
                source = _label_source(ctx, side)
                if source is None:
                    continue
                for lit in lits:
                    ok, value = literal(lit)
                    if not ok or not isinstance(value, str) or value in source.names:
                        continue
                    known = ", ".join(source.names)
                    guess = did_you_mean(value, source.names)
                    yield self.finding(
                        path,
                        f"{source.what} is compared with {value!r}, which it never is: it is "
                        f"one of {known}",
                        hint=guess or f"use one of: {known}",
                        column=node_column(lit),
                    )


CHECKS: list[type[Check]] = [ConstantCondition, ConstantPart, UnknownLabel]
"""The checks of this family, in code order."""
