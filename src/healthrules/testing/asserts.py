"""Compare one account's evaluation with what a test expects, and assertion helpers for Python.

:func:`compare_account` returns every mismatch (never stops at the first); each mismatch
carries the expected and actual values as text, the test-file line of the expectation, and
detail lines: the evidence of an action that fired, or why an expected action did not fire
(the account's stage, and the value of every part of its condition, from
:meth:`healthrules.Evaluation.explain`). :func:`assert_account` does the same from Python code
and raises an ``AssertionError`` whose message is the aligned diff of
:mod:`healthrules.testing.diff`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import polars as pl
import pydantic

from healthrules.errors import Issue, Location
from healthrules.evaluation import Evaluation
from healthrules.testing.spec import (
    AccountExpectation,
    ActionMatch,
    ActionsExpectation,
    Expected,
    TestFileError,
    parse_time,
    plain_errors,
)

__all__ = [
    "AccountView",
    "Mismatch",
    "assert_account",
    "compare_account",
    "format_value",
]


@dataclass(frozen=True)
class Mismatch:
    """One expectation that does not hold.

    Attributes
    ----------
    what
        What was compared: ``stage``, ``indicators.logins_30d``, ``bands.adoption``,
        ``score``, ``actions (exactly)``...
    expected, actual
        Both sides, as text.
    line
        The line of the expectation in the test file (None from Python code).
    details
        Extra lines: evidence of a fired action, or why an action did not fire.
    """

    what: str
    expected: str
    actual: str
    line: int | None = None
    details: tuple[str, ...] = ()

    def to_record(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {"what": self.what, "expected": self.expected, "actual": self.actual,
                "line": self.line, "details": list(self.details)}


def format_value(v: Any) -> str:
    """Render a value for a diff: ``null``, ints as ints, floats to 6 significant digits."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v)}.0" if abs(v) < 1e6 else f"{v:.6g}"
        return f"{v:.6g}"
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return str(v)


def _distinct(expected: str, actual: str, exp_v: Any, act_v: Any) -> tuple[str, str]:
    """Show more digits when both sides would print the same."""
    if expected == actual and isinstance(act_v, float):
        return (repr(exp_v) if isinstance(exp_v, float) else expected), repr(act_v)
    return expected, actual


@dataclass
class AccountView:
    """Everything an evaluation computed for one account, as plain values."""

    evaluation: Evaluation
    account: Any
    stage: dict[str, Any] = field(default_factory=dict)
    score: dict[str, Any] = field(default_factory=dict)
    indicators: dict[str, Any] = field(default_factory=dict)
    actions: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, evaluation: Evaluation, account: Any) -> AccountView | None:
        """The view of one account, or None when the evaluation does not have it."""
        key = evaluation.account_key
        match = pl.col(key) == account
        stages = evaluation.stages.filter(match).to_dicts()
        if not stages:
            return None
        view = cls(evaluation=evaluation, account=account, stage=stages[0])
        rid = stages[0]["roadmap"]
        scores = evaluation.scores.filter(match).to_dicts()
        view.score = scores[0] if scores else {}
        inds = evaluation.indicators.filter(match)
        if inds.height:
            row = inds.to_dicts()[0]
            cols: set[str] | None = None
            if rid is not None:
                cr = next((c for c in evaluation.plan.roadmaps if c.id == rid), None)
                if cr is not None:
                    cols = set()
                    for ind in cr.roadmap.indicators:
                        cols.add(ind.id)
                        if ind.bands is not None:
                            cols.add(f"{ind.id}__band")
            view.indicators = {k: v for k, v in row.items()
                               if k not in (key, "roadmap") and (cols is None or k in cols)}
        view.actions = evaluation.actions.filter(match).to_dicts()
        return view

    def fired(self) -> dict[str, dict[str, Any]]:
        """The fired actions by id."""
        return {a["action_id"]: a for a in self.actions}


def _decimal(x: int | float) -> Fraction:
    """A number as the decimal it is written and shown as: an int exactly, a float as its
    shortest text that reads back as it (``0.1`` is 1/10, not the binary float's value)."""
    return Fraction(x) if isinstance(x, int) else Fraction(Decimal(repr(float(x))))


def _within(act: int | float, exp: int | float, tolerance: float) -> bool:
    """Whether ``|act - exp| <= tolerance``, in exact decimal arithmetic: an int beyond 2**53
    is not rounded to a float first (which let ``2**53`` pass for ``2**53 + 1``), and
    ``{value: 0.2500001, tolerance: 0.0000001}`` holds 0.25, as the decimals read."""
    if (isinstance(act, float) and math.isinf(act)) or (
            isinstance(exp, float) and math.isinf(exp)):
        return act == exp
    if math.isinf(tolerance):
        return True
    return abs(_decimal(act) - _decimal(exp)) <= _decimal(tolerance)


def _same_time(want: dt.date | dt.datetime, act: dt.date | dt.datetime) -> bool:
    """An expected ISO date or datetime against a value: a naive expectation is the wall
    time in the value's zone; one with an offset (``2026-06-01T09:00-04:00``) is an instant,
    equal to an aware value at the same instant (a naive value has no instant: unequal)."""
    if isinstance(want, dt.datetime) and want.tzinfo is not None:
        return (isinstance(act, dt.datetime) and act.tzinfo is not None
                and want.astimezone(dt.UTC) == act.astimezone(dt.UTC))
    if isinstance(act, dt.datetime) and act.tzinfo is not None:
        act = act.replace(tzinfo=None)
    if type(want) is not type(act):
        if isinstance(act, dt.datetime) and not isinstance(want, dt.datetime):
            return act == dt.datetime.combine(want, dt.time())
        return False
    return bool(want == act)


def _values_equal(exp: Any, act: Any, tolerance: float) -> bool:
    if exp is None or act is None:
        return exp is None and act is None
    if isinstance(exp, bool) or isinstance(act, bool):
        return isinstance(exp, bool) and isinstance(act, bool) and exp == act
    if isinstance(exp, (int, float)):
        if not isinstance(act, (int, float)):
            return False
        if isinstance(act, float) and math.isnan(act):
            return False
        return _within(act, exp, tolerance)
    if isinstance(exp, str):
        if isinstance(act, (dt.date, dt.datetime)):
            try:
                want = parse_time(exp)
            except ValueError:
                return False
            return _same_time(want, act)
        # text is text: "5" is not the number 5 (nor "true" the boolean)
        return isinstance(act, str) and exp == act
    return bool(exp == act)


def _check_expected(exp: Expected, act: Any, tolerance: float) -> bool:
    if act is None or isinstance(act, bool) or not isinstance(act, (int, float)):
        return "value" in exp.model_fields_set and exp.value is None and act is None
    if isinstance(act, float) and math.isnan(act):
        return False
    if "value" in exp.model_fields_set:
        if exp.value is None:
            return False
        tol = exp.tolerance if exp.tolerance is not None else tolerance
        return _within(act, exp.value, tol)
    if exp.min is not None and act < exp.min:
        return False
    return not (exp.max is not None and act > exp.max)


def _describe(exp: Any) -> str:
    if isinstance(exp, Expected):
        return exp.describe()
    return format_value(exp)


def _compare_value(what: str, exp: Any, act: Any, tolerance: float,
                   line: int | None) -> Mismatch | None:
    ok = (_check_expected(exp, act, tolerance) if isinstance(exp, Expected)
          else _values_equal(exp, act, tolerance))
    if ok:
        return None
    e, a = _distinct(_describe(exp), format_value(act),
                     exp.value if isinstance(exp, Expected) else exp, act)
    return Mismatch(what, e, a, line)


Lines = Callable[[str], int | None]


def _no_lines(path: str) -> int | None:
    del path
    return None


def compare_account(
    view: AccountView | None,
    expectation: AccountExpectation,
    *,
    tolerance: float = 1e-9,
    line_of: Lines = _no_lines,
) -> list[Mismatch]:
    """Every way one account's evaluation differs from its expectation.

    Parameters
    ----------
    view
        The account's values (None when the evaluation has no such account).
    expectation
        What the test expects.
    tolerance
        Absolute tolerance for numbers without their own.
    line_of
        Maps a path relative to the expectation (``stage``, ``indicators.x``) to a test-file
        line, for the report.

    Returns
    -------
    list of Mismatch
        Empty when everything holds. In the order of the expectation's fields.
    """
    if view is None:
        return [Mismatch("account", "evaluated", "not in the evaluation", line_of(""))]
    out: list[Mismatch] = []
    fields = expectation.model_fields_set
    rid = view.stage.get("roadmap")
    if "roadmap" in fields and expectation.roadmap != rid:
        out.append(Mismatch("roadmap", format_value(expectation.roadmap), format_value(rid),
                            line_of("roadmap")))
    if expectation.stage is not None and expectation.stage != view.stage.get("stage"):
        actual = format_value(view.stage.get("stage"))
        details: tuple[str, ...] = ()
        details = _stage_details(view)
        out.append(Mismatch("stage", expectation.stage, actual, line_of("stage"), details))
    if "achieved" in fields and expectation.achieved != view.stage.get("achieved"):
        out.append(Mismatch("achieved", format_value(expectation.achieved),
                            format_value(view.stage.get("achieved")), line_of("achieved")))
    if expectation.tasks_done is not None and expectation.tasks_done != view.stage.get(
            "tasks_done"):
        out.append(Mismatch("tasks_done", str(expectation.tasks_done),
                            format_value(view.stage.get("tasks_done")), line_of("tasks_done")))
    for name, exp in expectation.indicators.items():
        what = f"indicators.{name}"
        if name not in view.indicators:
            out.append(Mismatch(what, _describe(exp), _absent(rid), line_of(what)))
            continue
        m = _compare_value(what, exp, view.indicators[name], tolerance, line_of(what))
        if m is not None:
            out.append(m)
    for name, band in expectation.bands.items():
        what = f"bands.{name}"
        col = f"{name}__band"
        if col not in view.indicators:
            out.append(Mismatch(what, format_value(band), _absent(rid), line_of(what)))
            continue
        actual_band = view.indicators[col]
        if actual_band != band:
            value = format_value(view.indicators.get(name))
            out.append(Mismatch(what, format_value(band),
                                f"{format_value(actual_band)} (value {value})", line_of(what),
                                _band_details(view, name)))
    if "score" in fields:
        m = _compare_value("score", expectation.score, view.score.get("score"), tolerance,
                           line_of("score"))
        if m is not None:
            out.append(Mismatch(m.what, m.expected, m.actual, m.line, _score_details(view)))
    if "goal_reached" in fields and expectation.goal_reached != view.score.get("goal_reached"):
        out.append(Mismatch("goal_reached", format_value(expectation.goal_reached),
                            format_value(view.score.get("goal_reached")),
                            line_of("goal_reached")))
    if "score_band" in fields and expectation.score_band != view.score.get("score_band"):
        score = format_value(view.score.get("score"))
        out.append(Mismatch("score_band", format_value(expectation.score_band),
                            f"{format_value(view.score.get('score_band'))} (score {score})",
                            line_of("score_band")))
    if "segment" in fields and expectation.segment != view.score.get("segment"):
        out.append(Mismatch("segment", format_value(expectation.segment),
                            format_value(view.score.get("segment")), line_of("segment")))
    if expectation.actions is not None:
        out.extend(_compare_actions(view, expectation.actions, line_of))
    return out


def _absent(rid: str | None) -> str:
    if rid is None:
        return "(no roadmap applies to the account)"
    return f"(not an indicator of roadmap {rid})"


def _ref_id(ref: str | ActionMatch) -> str:
    return ref if isinstance(ref, str) else ref.id


def _compare_actions(view: AccountView, exp: ActionsExpectation, line_of: Lines) -> list[Mismatch]:
    fired = view.fired()
    mode = exp.mode
    out: list[Mismatch] = []
    what = f"actions ({mode})"
    expected_refs: list[tuple[int, str | ActionMatch]] = list(
        enumerate(exp.exactly or exp.at_least or []))
    mode_path = "exactly" if exp.exactly is not None else "at_least"
    wanted = {_ref_id(r) for _, r in expected_refs}
    for k, ref in expected_refs:
        aid = _ref_id(ref)
        line = line_of(f"actions.{mode_path}[{k}]")
        if aid not in fired:
            out.append(Mismatch(what, aid, "did not fire", line, _why_not(view, aid)))
            continue
        if isinstance(ref, ActionMatch):
            row = fired[aid]
            if ref.text_contains is not None and ref.text_contains not in (row["text"] or ""):
                out.append(Mismatch(f"{what} text", f"{aid}: contains {ref.text_contains!r}",
                                    repr(row["text"]), line))
            if ref.priority is not None and ref.priority != row["priority"]:
                out.append(Mismatch(f"{what} priority", f"{aid}: {ref.priority}",
                                    str(row["priority"]), line))
    unexpected: list[str] = []
    if mode in ("exactly", "none"):
        unexpected = [a for a in fired if a not in wanted]
    absent = exp.absent or []
    for k, aid in enumerate(absent):
        if aid in fired:
            out.append(Mismatch("actions (absent)", f"{aid} does not fire", f"{aid} fired",
                                line_of(f"actions.absent[{k}]"), _evidence(fired[aid])))
    line = line_of("actions.none" if mode == "none" else f"actions.{mode_path}")
    for aid in unexpected:
        out.append(Mismatch(what, "(not expected)", f"{aid} fired", line, _evidence(fired[aid])))
    return out


def _evidence(row: Mapping[str, Any]) -> tuple[str, ...]:
    out = [f"text: {row.get('text')!r}"]
    parts = []
    for ev in row.get("evidence") or []:
        text = f"{ev['name']} = {ev['value']}"
        if ev.get("band"):
            text += f" ({ev['band']})"
        if ev.get("op"):
            text += f", condition {ev['op']} {ev['threshold']}"
        parts.append(text)
    if parts:
        out.append("evidence: " + "; ".join(parts))
    return tuple(out)


def _explanation(view: AccountView) -> Any:
    try:
        return view.evaluation.explain(view.account)
    except (KeyError, ValueError, TypeError, StopIteration, ArithmeticError) as exc:
        return exc


def _why_not(view: AccountView, action_id: str) -> tuple[str, ...]:
    exp = _explanation(view)
    if isinstance(exp, Exception):
        return (f"(no explanation: {exp})",)
    if exp.roadmap is None:
        return ("the account is routed to no roadmap (every applies_to is false)",)
    trace = next((a for a in exp.actions if a.action_id == action_id), None)
    if trace is None:
        return (f"{action_id!r} is not an action of roadmap {exp.roadmap!r}, where the account "
                "is routed",)
    if not trace.in_scope:
        return (f"not considered: it belongs to stage {trace.stage!r} and the account is in "
                f"stage {exp.stage!r}",)
    verdict = "unknown (a value is null)" if trace.result is None else "false"
    lines = [f"when: {trace.when}  ->  {verdict}"]
    for step in _parents_first(trace.steps):
        if step.depth == 0 or _literal(step.text) or step.depth > 3:
            continue
        lines.append("  " + "  " * (step.depth - 1) + f"{step.text} = {format_value(step.value)}")
    return tuple(lines[:12])


def _parents_first(steps: Sequence[Any]) -> list[Any]:
    """Reorder steps given operands-first (post-order, with depths) into parents-first."""
    stack: list[tuple[Any, list[Any]]] = []
    for step in steps:
        children: list[Any] = []
        while stack and stack[-1][0].depth == step.depth + 1:
            children.insert(0, stack.pop())
        stack.append((step, children))

    out: list[Any] = []

    def walk(node: tuple[Any, list[Any]]) -> None:
        out.append(node[0])
        for child in node[1]:
            walk(child)

    for node in stack:
        walk(node)
    return out


def _literal(text: str) -> bool:
    import ast

    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _stage_details(view: AccountView) -> tuple[str, ...]:
    exp = _explanation(view)
    if isinstance(exp, Exception) or exp.roadmap is None:
        return ()
    lines: list[str] = []
    for st in exp.stages:
        verdict = {True: "holds", False: "does not hold", None: "unknown"}[st.result]
        lines.append(f"entry of {st.stage}: {st.entry or '(always)'}  ->  {verdict}")
        if st.result is True:
            break
    return tuple(lines[:8])


def _band_details(view: AccountView, indicator: str) -> tuple[str, ...]:
    rid = view.stage.get("roadmap")
    cr = next((c for c in view.evaluation.plan.roadmaps if c.id == rid), None)
    if cr is None:
        return ()
    ind = next((i for i in cr.roadmap.indicators if i.id == indicator), None)
    if ind is None or ind.bands is None:
        return ()
    return ("bands: " + "; ".join(f"{b.name}: {b.describe().replace('x', indicator, 1)}"
                                  for b in ind.bands.levels),)


def _score_details(view: AccountView) -> tuple[str, ...]:
    exp = _explanation(view)
    if isinstance(exp, Exception) or not getattr(exp, "contributions", None):
        return ()
    lines = ["contributions (indicator, value, band, +points, -points lost):"]
    for c in sorted(exp.contributions, key=lambda c: -c.lost)[:8]:
        val = "missing" if c.missing else format_value(c.value)
        lines.append(f"  {c.indicator} = {val} ({c.band or '-'})  +{c.points:.1f}  "
                     f"-{c.lost:.1f}")
    return tuple(lines)


def assert_account(
    evaluation: Evaluation,
    account: Any,
    *,
    roadmap: str | None = None,
    stage: str | None = None,
    achieved: bool | None = None,
    indicators: Mapping[str, Any] | None = None,
    bands: Mapping[str, str | None] | None = None,
    score: float | Mapping[str, float] | None = None,
    score_band: str | None = None,
    actions_exactly: Sequence[str] | None = None,
    actions_at_least: Sequence[str] | None = None,
    actions_absent: Sequence[str] | None = None,
    no_actions: bool = False,
    tolerance: float = 1e-9,
) -> None:
    """Assert what an evaluation computed for one account, with a readable diff on failure.

    Every argument is optional; give what matters. Numbers compare within ``tolerance``;
    ``score`` (and an indicator value) may be a mapping ``{"min": 70, "max": 90}`` or
    ``{"value": 0.8, "tolerance": 0.01}``.

    Parameters
    ----------
    evaluation
        The result of :func:`healthrules.evaluate`.
    account
        The account key.
    roadmap, stage, achieved, indicators, bands, score, score_band
        Expected values (see the test-file format in docs/testing.md).
    actions_exactly, actions_at_least, actions_absent, no_actions
        Which actions fire: exactly these, at least these, not these, or none at all.
    tolerance
        Absolute tolerance for numbers.

    Raises
    ------
    AssertionError
        Listing every mismatch, aligned, with the evidence of the actions involved.
    TestFileError
        When an expectation is not one (a NaN, ``{"min": 9, "max": 1}``, two action
        modes...), naming the argument.

    Examples
    --------
    >>> import datetime as dt, polars as pl, healthrules as hr
    >>> r = hr.Roadmap.model_validate({
    ...     "id": "demo", "goal": "Weekly use", "data": {"events": {"user": None}},
    ...     "indicators": [{"id": "logins", "family": "process", "aggregate": "count",
    ...                     "where": "event == 'login'", "window": "7d"}],
    ...     "stages": [{"id": "operation", "actions": [{
    ...         "id": "call", "kind": "challenge", "when": "logins == 0", "do": "Call"}]}]})
    >>> ev = hr.evaluate(r, pl.DataFrame({"account_id": ["a"], "event": ["login"],
    ...     "timestamp": [dt.datetime(2026, 6, 30, 9)]}),
    ...     pl.DataFrame({"account_id": ["a", "b"]}), "2026-06-30")
    >>> assert_account(ev, "a", indicators={"logins": 1}, no_actions=True)
    >>> assert_account(ev, "b", indicators={"logins": 1})
    Traceback (most recent call last):
    ...
    AssertionError: account b, as_of 2026-06-30
      what               expected  actual
      indicators.logins  1         0
    """
    from healthrules.testing.diff import render_mismatches

    data: dict[str, Any] = {}
    for name, value in (("roadmap", roadmap), ("stage", stage), ("achieved", achieved),
                        ("score", score), ("score_band", score_band)):
        if value is not None:
            data[name] = value
    if indicators:
        data["indicators"] = dict(indicators)
    if bands:
        data["bands"] = dict(bands)
    acts: dict[str, Any] = {}
    if actions_exactly is not None:
        acts["exactly"] = list(actions_exactly)
    if actions_at_least is not None:
        acts["at_least"] = list(actions_at_least)
    if actions_absent is not None:
        acts["absent"] = list(actions_absent)
    if no_actions:
        acts["none"] = True
    if acts:
        data["actions"] = acts
    expectation = _expectation(data)
    view = AccountView.of(evaluation, account)
    mismatches = compare_account(view, expectation, tolerance=tolerance)
    if mismatches:
        head = f"account {account}, as_of {evaluation.as_of.isoformat()}"
        raise AssertionError(head + "\n" + render_mismatches(mismatches, indent="  ",
                                                             show_lines=False))


def _expectation(data: dict[str, Any]) -> AccountExpectation:
    """The expectation of :func:`assert_account`'s arguments; a bad one raises
    :class:`~healthrules.testing.spec.TestFileError` naming the argument (not pydantic's
    error, one per member of a union)."""
    try:
        return AccountExpectation.model_validate(data)
    except pydantic.ValidationError as exc:
        issues = []
        for err in plain_errors(exc.errors(include_url=False), data):
            loc = list(err["loc"])
            if loc[:1] == ["actions"] and len(loc) > 1:
                loc[:2] = [f"actions_{loc[1]}" if loc[1] != "none" else "no_actions"]
            path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
            issues.append(Issue(code=err["type"], message=err["msg"],
                                location=Location("assert_account", path=path.lstrip("."))))
        raise TestFileError(issues) from None
