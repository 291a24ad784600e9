"""The action lifecycle: each (account, action) is pending, open or resolved across runs.

An evaluation says whether an action's ``when`` holds on one date. The lifecycle turns the
sequence of those answers into what a CSM works with: an action *opens* once, stays *open*
while the problem lasts, and *resolves* when it is fixed (the fuel lamp goes out). Per action:

- ``for: 7d``: the condition must keep holding for 7 days (across runs) before the action
  opens; until then it is *pending* (not shown to anyone). If it stops holding, the pending
  clock starts again.
- ``resolved_when``: the open action resolves when this expression is true. Without it, it
  resolves when ``when`` no longer holds; with ``hysteresis`` it resolves only when the value
  has moved back past each threshold of ``when`` by the margin (``x < 0.3`` with margin 0.05
  resolves when ``x >= 0.35``), so a value hovering at the threshold does not flap. An unknown
  (null) condition never resolves an action. An action also resolves when the account leaves
  the action's stage or roadmap, or disappears from the accounts.
- ``cooldown: 30d``: after it resolves, the action does not open again within 30 days.
- ``escalate_after: 14d``: an action still open 14 days after it opened is *escalated*, once.

Transitions are computed for all accounts and actions of a run at once, as polars column
expressions over the join of the previous state with this run's conditions
(:func:`step`). :func:`replay` applies them snapshot after snapshot to a
:class:`~healthrules.history.History` (a loop over dates, never over accounts), and the state
store applies them once per daily run, so both give the same answers on the same dates.
"""

from __future__ import annotations

import ast
import copy
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from healthrules.compiler import CompiledRoadmap, Plan
from healthrules.engine import Evaluator, action_path, narrow
from healthrules.expressions import Parsed, parse
from healthrules.query_flags import OPTIMISED
from healthrules.roadmap import Action

if TYPE_CHECKING:
    from healthrules.history.snapshots import History, Signals

__all__ = [
    "CHANGE_KINDS",
    "HOLDS_SCHEMA",
    "HOLD_KINDS",
    "STATE_SCHEMA",
    "Lifecycle",
    "Rule",
    "holds_on",
    "relax",
    "replay",
    "rules_for",
    "signals_for",
    "step",
]

CHANGE_KINDS = ("opened", "resolved", "escalated")
"""What a run reports: an action opened, resolved, or was escalated."""

STATE_SCHEMA: dict[str, pl.DataType] = {
    "roadmap": pl.String(),
    "action_id": pl.String(),
    "status": pl.String(),
    "since": pl.Date(),
    "opened_at": pl.Date(),
    "resolved_at": pl.Date(),
    "escalated_at": pl.Date(),
    "stage": pl.String(),
    "priority": pl.String(),
    "text": pl.String(),
    "due_date": pl.Date(),
    "owner": pl.String(),
}
"""The lifecycle state of one (account, action), besides the account key.

``status`` is ``pending`` (the condition holds, but not yet for ``for`` days; ``since`` is
when it started holding), ``open`` (since ``opened_at``) or ``resolved`` (at ``resolved_at``;
kept while its cooldown lasts). ``stage``, ``priority``, ``text``, ``due_date`` and ``owner``
are those of the opening (``due: 3d`` counts from the day it opens).
"""

HOLD_KINDS = ("snooze", "dismiss")
"""What a CSM can do to one action of one account, with a reason and an expiry: *snooze* it
(it does not open or escalate until the expiry; an open one stays open, listed as snoozed)
or *dismiss* it (an open one resolves at once, reason ``dismissed``, and it does not open
again until the expiry)."""

HOLDS_SCHEMA: dict[str, pl.DataType] = {
    "roadmap": pl.String(), "action_id": pl.String(), "hold": pl.String(),
    "until": pl.Date()}
"""The holds in force on one date, besides the account key: ``hold`` is ``snooze`` or
``dismiss``, ``until`` the first date it no longer applies."""

_SIGNAL_COLUMNS = ("roadmap", "action_id", "holds", "clear")


# ---------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    """The lifecycle settings of one action of one roadmap."""

    roadmap: str
    action_id: str
    stage: str | None
    order: int
    for_days: int
    cooldown: int
    escalate_after: int | None
    kind: str
    priority: str
    title: str | None
    escalate_from: str = "opened"
    owner_role: str | None = None
    channel: str | None = None


def rules_for(plan: Plan) -> pl.DataFrame:
    """The lifecycle settings of every action of the plan, one row per action."""
    rows: list[dict[str, Any]] = []
    for i, cr in enumerate(plan.roadmaps):
        for k, (st, action) in enumerate(cr.roadmap.all_actions()):
            rows.append({
                "roadmap": cr.id, "action_id": action.id,
                "rule_stage": st.id if st else None, "order": i * 10_000 + k,
                "for_days": action.for_ or 0, "cooldown": action.cooldown or 0,
                "escalate_after": action.escalate_days, "kind": action.kind,
                "rule_priority": action.priority, "title": action.title,
                "escalate_from": action.escalate_from, "owner_role": action.owner_role,
                "channel": action.channel,
            })
    return pl.DataFrame(rows, schema={
        "roadmap": pl.String, "action_id": pl.String, "rule_stage": pl.String,
        "order": pl.Int64, "for_days": pl.Int64, "cooldown": pl.Int64,
        "escalate_after": pl.Int64, "kind": pl.String, "rule_priority": pl.String,
        "title": pl.String, "escalate_from": pl.String, "owner_role": pl.String,
        "channel": pl.String})


# ---------------------------------------------------------------------- hysteresis


def _number(node: ast.expr) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not (
            isinstance(node.value, bool)):
        return float(node.value)
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)):
        inner = _number(node.operand)
        return None if inner is None else -inner
    return None


def _subject(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
            "prev", "change") and node.args and isinstance(node.args[0], ast.Name):
        return node.args[0].id
    return None


def relax(parsed: Parsed, margins: float | Mapping[str, float]) -> Parsed:
    """The condition that keeps an open action open: ``when`` with widened thresholds.

    Every comparison of a name with a number is widened by the name's margin (``x < 0.3``
    becomes ``x < 0.3 + m``, ``x >= 10`` becomes ``x >= 10 - m``); under ``not`` it is
    narrowed instead, so the whole condition only ever gets easier to keep. Comparisons inside
    the test of ``... if ... else ...``, with ``==`` / ``!=`` / ``in``, or between two names
    are left as they are.

    Parameters
    ----------
    parsed
        The action's ``when``.
    margins
        One margin for every name, or a margin per name (others get none).

    Returns
    -------
    Parsed
        The relaxed condition.

    Examples
    --------
    >>> from healthrules.expressions import parse
    >>> relax(parse("usage < 0.3 and not tickets >= 5"), {"usage": 0.05, "tickets": 1}).source
    'usage < 0.35 and (not tickets >= 6)'
    """
    def margin(name: str | None) -> float:
        if name is None:
            return 0.0
        if isinstance(margins, Mapping):
            return float(margins.get(name, 0.0))
        return float(margins)

    def adjust(left: ast.expr, op: ast.cmpop, right: ast.expr, positive: bool,
               ) -> tuple[ast.expr, ast.expr]:
        sign = 1.0 if positive else -1.0
        lnum, rnum = _number(left), _number(right)
        if rnum is not None and lnum is None:
            m = margin(_subject(left))
            if isinstance(op, (ast.Lt, ast.LtE)):
                return left, _literal(rnum + sign * m)
            if isinstance(op, (ast.Gt, ast.GtE)):
                return left, _literal(rnum - sign * m)
        if lnum is not None and rnum is None:
            m = margin(_subject(right))
            if isinstance(op, (ast.Lt, ast.LtE)):  # t < x: x > t
                return _literal(lnum - sign * m), right
            if isinstance(op, (ast.Gt, ast.GtE)):
                return _literal(lnum + sign * m), right
        return left, right

    def visit(node: ast.expr, positive: bool) -> ast.expr:
        if isinstance(node, ast.BoolOp):
            node.values = [visit(v, positive) for v in node.values]
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            node.operand = visit(node.operand, not positive)
        elif isinstance(node, ast.IfExp):
            node.body = visit(node.body, positive)
            node.orelse = visit(node.orelse, positive)
        elif isinstance(node, ast.Compare):
            items = [node.left, *node.comparators]
            for j, op in enumerate(node.ops):
                items[j], items[j + 1] = adjust(items[j], op, items[j + 1], positive)
            node.left, node.comparators = items[0], items[1:]
        return node

    tree = visit(copy.deepcopy(parsed.tree), True)
    return parse(ast.unparse(tree))


def _literal(value: float) -> ast.expr:
    v = round(value, 12)
    out: ast.expr = ast.Constant(value=abs(int(v)) if float(v).is_integer() else abs(v))
    return ast.UnaryOp(op=ast.USub(), operand=out) if v < 0 else out


# ---------------------------------------------------------------------- per-run conditions


def _clear_expr(ev: Evaluator, i: int, cr: CompiledRoadmap, path: str,
                action: Action) -> pl.Expr:
    """True when an open action resolves on its own condition (null never resolves)."""
    a = cr.analysis
    resolved = a.expressions.get(f"{path}.resolved_when")
    if resolved is not None:
        return ev.expr(i, resolved).cast(pl.Boolean).fill_null(False)
    when = a.expressions[f"{path}.when"]
    if action.hysteresis is not None:
        when = relax(when, action.hysteresis)
    return ev.expr(i, when).cast(pl.Boolean).not_().fill_null(False)


def signals_for(plan: Plan) -> Signals | None:
    """The per-roadmap collector of action conditions for the lifecycle (None: no actions)."""
    if not any(cr.roadmap.all_actions() for cr in plan.roadmaps):
        return None

    def collect(ev: Evaluator, i: int, cr: CompiledRoadmap, frame: pl.DataFrame,
                key: str) -> pl.DataFrame | None:
        r = cr.roadmap
        parts: list[pl.LazyFrame] = []
        for k, (st, action) in enumerate(r.all_actions()):
            path = action_path(r, st.id if st else None, action.id)
            holds = pl.col(f"__fired_{k}")
            clear = _clear_expr(ev, i, cr, path, action)
            scope = pl.col(f"__scope_{k}")
            exprs = [pl.col(key), pl.lit(cr.id).alias("roadmap"),
                     pl.lit(action.id).alias("action_id"), holds.alias("holds"),
                     clear.alias("clear")]
            parts.append(narrow(frame, scope, *exprs).lazy().filter(scope).select(exprs)
                         .filter(pl.col("holds") | ~pl.col("clear")))
        return pl.concat(parts).collect(optimizations=OPTIMISED) if parts else None

    return collect


# ---------------------------------------------------------------------- one step


def empty_state(key: str, key_dtype: pl.DataType,
                text_dtype: pl.DataType = STATE_SCHEMA["text"]) -> pl.DataFrame:
    """A lifecycle state with no rows."""
    return pl.DataFrame(schema={key: key_dtype, **STATE_SCHEMA, "text": text_dtype})


def step(
    state: pl.DataFrame,
    signals: pl.DataFrame,
    as_of: dt.date,
    rules: pl.DataFrame,
    *,
    key: str,
    stages: pl.DataFrame,
    fired: pl.DataFrame,
    holds: pl.DataFrame | None = None,
    text_dtype: pl.DataType = STATE_SCHEMA["text"],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Move every (account, action) from its previous state to this run's.

    Parameters
    ----------
    state
        The previous state: the key and :data:`STATE_SCHEMA` (no rows for actions that are
        neither pending, open nor cooling down).
    signals
        This run's conditions: key, ``roadmap``, ``action_id``, ``holds`` (``when`` is true)
        and ``clear`` (the action's own resolution holds), for the accounts in the action's
        scope where ``holds`` or not ``clear`` (a missing row means the action is out of
        scope or clear).
    as_of
        The run date.
    rules
        :func:`rules_for` of the plan.
    key
        The account key column.
    stages
        This run's ``stages`` frame (key, ``roadmap``, ``stage``): to tell why an action
        resolved (left its stage, the account is gone).
    fired
        This run's ``actions`` frame (key, ``roadmap``, ``action_id``, ``stage``,
        ``priority``, ``text``, ``due_date``, ``owner``): what an opened action shows.
    holds
        The snoozes and dismissals in force on ``as_of`` (:func:`holds_on`): key,
        :data:`HOLDS_SCHEMA`. While an action is held its condition counts as not holding
        (it neither opens nor stays pending); a snoozed open action stays open and is not
        escalated, a dismissed one resolves (reason ``dismissed``).
    text_dtype
        The dtype of ``fired``'s ``text`` (and of the state's): the text itself, or a
        reference to it that is resolved later (:func:`replay` renders only the texts its
        changes and states show).

    Returns
    -------
    (state, changes)
        The new state, and one row per change: key, ``roadmap``, ``action_id``, ``change``
        (``opened`` / ``resolved`` / ``escalated``), ``reason`` (for resolved), ``stage``,
        ``priority``, ``kind``, ``title``, ``text``, ``opened_at``, ``days_open``,
        ``due_date``, ``owner``, ``owner_role``, ``channel``.
    """
    hold_rows = holds
    day = pl.lit(as_of, pl.Date)
    on = [key, "roadmap", "action_id"]
    state_schema: dict[str, pl.DataType] = {**STATE_SCHEMA, "text": text_dtype}
    sig = signals.select(key, *_SIGNAL_COLUMNS).with_columns(pl.lit(True).alias("__present"))
    j = state.join(sig, on=on, how="full", coalesce=True).join(rules, on=["roadmap", "action_id"],
                                                               how="left")
    if hold_rows is not None and hold_rows.height:
        j = j.join(hold_rows.select(*on, pl.col("hold").alias("__hold")), on=on, how="left")
    else:
        j = j.with_columns(pl.lit(None, pl.String).alias("__hold"))
    snoozed = (pl.col("__hold") == "snooze").fill_null(False)
    dismissed = (pl.col("__hold") == "dismiss").fill_null(False)
    holding = pl.col("holds").fill_null(False) & pl.col("__hold").is_null()
    present = pl.col("__present").fill_null(False)
    clear = pl.col("clear").fill_null(False)
    status = pl.col("status")
    elapsed = (day - pl.col("since")).dt.total_days()
    cooling = (status == "resolved") & (
        (day - pl.col("resolved_at")).dt.total_days() < pl.col("cooldown"))
    idle = status.is_null() | ((status == "resolved") & ~cooling)
    start = idle & holding
    new_status = (
        pl.when(start & (pl.col("for_days") == 0)).then(pl.lit("open"))
        .when(start).then(pl.lit("pending"))
        .when((status == "pending") & holding & (elapsed >= pl.col("for_days"))).then(
            pl.lit("open"))
        .when((status == "pending") & holding).then(pl.lit("pending"))
        .when(status == "pending").then(pl.lit(None, pl.String))
        .when((status == "open") & (~present | clear | dismissed)).then(pl.lit("resolved"))
        .when(status == "open").then(pl.lit("open"))
        .when(cooling).then(pl.lit("resolved"))
        .otherwise(pl.lit(None, pl.String))
    )
    j = j.with_columns(new_status.alias("__new"))
    opened = (pl.col("__new") == "open") & (status.is_null() | (status != "open"))
    resolved = (pl.col("__new") == "resolved") & (status == "open")
    counted_from = pl.when(pl.col("escalate_from") == "due").then(pl.col("due_date")).otherwise(
        pl.col("opened_at"))
    escalate = (pl.col("__new") == "open") & ~opened & pl.col("escalated_at").is_null() & (
        pl.col("escalate_after").is_not_null()) & ~snoozed & (
        (day - counted_from).dt.total_days() >= pl.col("escalate_after"))
    j = j.with_columns(opened.alias("__opened"), resolved.alias("__resolved"),
                       escalate.fill_null(False).alias("__escalated"))
    # what the opening shows: this run's fired row
    shown = fired.select(*on, pl.col("stage").alias("__f_stage"),
                         pl.col("priority").alias("__f_priority"),
                         pl.col("text").alias("__f_text"),
                         pl.col("due_date").alias("__f_due"), pl.col("owner").alias("__f_owner"))
    j = j.join(shown, on=on, how="left")
    here = stages.select(key, pl.col("roadmap").alias("__now_roadmap"),
                         pl.col("stage").alias("__now_stage"))
    j = j.join(here, on=key, how="left")
    reason = (
        pl.when(dismissed).then(pl.lit("dismissed"))
        .when(pl.col("__now_stage").is_null()).then(pl.lit("account_removed"))
        .when(pl.col("__now_roadmap") != pl.col("roadmap")).then(pl.lit("left_roadmap"))
        .when(pl.col("rule_stage").is_not_null() & (pl.col("__now_stage") != pl.col(
            "rule_stage"))).then(pl.lit("left_stage"))
        .when(pl.col("__has_resolved_when").fill_null(False)).then(pl.lit("resolved_when"))
        .otherwise(pl.lit("condition_cleared"))
    )
    j = j.with_columns(reason.alias("__reason"))
    since = (pl.when(pl.col("__new").is_in(["pending", "open"]) & idle).then(day)
             .when(pl.col("__new").is_in(["pending", "open"])).then(pl.col("since")))
    new_state = j.filter(pl.col("__new").is_not_null()).select(
        key, "roadmap", "action_id", pl.col("__new").alias("status"),
        since.alias("since"),
        pl.when(pl.col("__opened")).then(day).when(pl.col("__new") == "pending").then(
            pl.lit(None, pl.Date)).otherwise(pl.col("opened_at")).alias("opened_at"),
        pl.when(pl.col("__resolved")).then(day).when(pl.col("__new") == "resolved").then(
            pl.col("resolved_at")).alias("resolved_at"),
        pl.when(pl.col("__escalated")).then(day).when(pl.col("__new") == "open").then(
            pl.col("escalated_at")).alias("escalated_at"),
        pl.when(pl.col("__opened")).then(pl.col("__f_stage")).otherwise(pl.col("stage")).alias(
            "stage"),
        pl.when(pl.col("__opened")).then(pl.col("__f_priority")).otherwise(
            pl.col("priority")).alias("priority"),
        pl.when(pl.col("__opened")).then(pl.col("__f_text")).otherwise(pl.col("text")).alias(
            "text"),
        pl.when(pl.col("__opened")).then(pl.col("__f_due")).when(pl.col("__new") == "pending")
        .then(pl.lit(None, pl.Date)).otherwise(pl.col("due_date")).alias("due_date"),
        pl.when(pl.col("__opened")).then(pl.col("__f_owner")).when(pl.col("__new") == "pending")
        .then(pl.lit(None, pl.String)).otherwise(pl.col("owner")).alias("owner"),
    ).cast(state_schema)  # type: ignore[arg-type]
    change = (pl.when(pl.col("__opened")).then(pl.lit("opened"))
              .when(pl.col("__resolved")).then(pl.lit("resolved"))
              .when(pl.col("__escalated")).then(pl.lit("escalated")))
    opened_at = pl.when(pl.col("__opened")).then(day).otherwise(pl.col("opened_at"))
    changes = j.with_columns(change.alias("change")).filter(pl.col("change").is_not_null()).select(
        key, "roadmap", "action_id", "change",
        pl.when(pl.col("__resolved")).then(pl.col("__reason")).alias("reason"),
        pl.coalesce("__f_stage", "stage").alias("stage"),
        pl.coalesce("__f_priority", "priority", "rule_priority").alias("priority"),
        "kind", "title",
        # the text as the action opened, like its due date and owner: an escalation or a
        # resolution re-renders nothing (a text rendered today could name another due date)
        pl.when(pl.col("__opened")).then(pl.col("__f_text")).otherwise(pl.col("text"))
        .alias("text"),
        opened_at.alias("opened_at"),
        (day - opened_at).dt.total_days().cast(pl.Int64).alias("days_open"),
        pl.when(pl.col("__opened")).then(pl.col("__f_due")).otherwise(pl.col("due_date"))
        .alias("due_date"),
        pl.when(pl.col("__opened")).then(pl.col("__f_owner")).otherwise(pl.col("owner"))
        .alias("owner"),
        "owner_role", "channel",
        "order",
    ).sort(key, "order").drop("order")
    return new_state, changes


def holds_on(table: pl.DataFrame, as_of: dt.date, key: str) -> pl.DataFrame:
    """The snoozes and dismissals in force on ``as_of``, one per (account, action).

    Parameters
    ----------
    table
        Holds as the store lists them (:meth:`~healthrules.history.store.StateStore.holds`):
        ``id``, key, ``roadmap``, ``action_id``, ``hold``, ``created_on``, ``until`` and
        ``removed_on``. A hold applies from ``created_on`` up to the day before ``until``
        (or before ``removed_on``); of several on the same action, the newest applies.

    Returns
    -------
    polars.DataFrame
        Key and :data:`HOLDS_SCHEMA`.
    """
    day = pl.lit(as_of, pl.Date)
    live = table.filter((pl.col("created_on") <= day) & (day < pl.col("until"))
                        & (pl.col("removed_on").is_null() | (day < pl.col("removed_on"))))
    live = live.sort("id", descending=True).unique([key, "roadmap", "action_id"],
                                                   keep="first", maintain_order=True)
    return live.select(key, *HOLDS_SCHEMA).cast(HOLDS_SCHEMA)  # type: ignore[arg-type]


def _rules_with_flags(plan: Plan) -> pl.DataFrame:
    rules = rules_for(plan)
    flags: list[dict[str, Any]] = []
    for cr in plan.roadmaps:
        for st, action in cr.roadmap.all_actions():
            del st
            flags.append({"roadmap": cr.id, "action_id": action.id,
                          "__has_resolved_when": action.resolved_when is not None})
    if not flags:
        return rules.with_columns(pl.lit(False).alias("__has_resolved_when"))
    return rules.join(pl.DataFrame(flags), on=["roadmap", "action_id"], how="left")


# ---------------------------------------------------------------------- over a history


@dataclass(frozen=True)
class Lifecycle:
    """The action lifecycle over the snapshots of a history.

    Attributes
    ----------
    changes
        One row per change: ``as_of``, key, ``roadmap``, ``action_id``, ``change``
        (``opened`` / ``resolved`` / ``escalated``), ``reason``, ``stage``, ``priority``,
        ``kind``, ``title``, ``text``, ``opened_at``, ``days_open``.
    states
        The state after each snapshot: ``as_of``, key and :data:`STATE_SCHEMA` (pending,
        open, and resolved actions still cooling down).
    """

    changes: pl.DataFrame
    states: pl.DataFrame

    def open_at(self, as_of: dt.date) -> pl.DataFrame:
        """The actions open after the snapshot ``as_of``."""
        return self.states.filter((pl.col("as_of") == as_of) & (pl.col("status") == "open"))

    def summary(self) -> pl.DataFrame:
        """Per action: how many times it opened, resolved and escalated."""
        counts = self.changes.group_by("roadmap", "action_id").agg(
            *[(pl.col("change") == c).sum().cast(pl.Int64).alias(c) for c in CHANGE_KINDS],
            pl.col("days_open").filter(pl.col("change") == "resolved").mean().alias(
                "mean_days_open"),
        )
        return counts.sort("roadmap", "action_id")


def replay(hist: History, *, holds: pl.DataFrame | None = None) -> Lifecycle:
    """Apply the lifecycle snapshot after snapshot (see :func:`step`).

    The steps carry a reference to each fired action instead of its text; the texts that
    the changes and states show (where an action opens, and changes that happen on a date
    it fired) are rendered once at the end, and nothing else is rendered.

    ``holds`` are snoozes and dismissals to honour, as
    :meth:`~healthrules.history.store.StateStore.holds` lists them (pass a daily store's
    to replay a history the way its runs saw it): each applies on the dates it is in
    force (:func:`holds_on`).
    """
    key = hist.account_key
    key_dtype = hist.attributes.schema[key]
    ref = pl.Int64()
    rules = _rules_with_flags(hist.plan)
    state = empty_state(key, key_dtype, ref)
    signals = hist.signals
    if signals is None:
        signals = pl.DataFrame(schema={"as_of": pl.Date, key: key_dtype, "roadmap": pl.String,
                                       "action_id": pl.String, "holds": pl.Boolean,
                                       "clear": pl.Boolean})
    by_date = signals.partition_by("as_of", as_dict=True, include_key=False)
    stages = hist.stages.partition_by("as_of", as_dict=True, include_key=False)
    index = hist.fired.index.with_row_index("__ref").with_columns(pl.col("__ref").cast(ref))
    fired_all = index.select("as_of", key, "roadmap", "action_id", "stage", "priority",
                             "due_date", "owner", pl.col("__ref").alias("text"))
    fired = fired_all.partition_by("as_of", as_dict=True, include_key=False)
    changes: list[pl.DataFrame] = []
    states: list[pl.DataFrame] = []
    empty_sig = signals.clear().drop("as_of")
    empty_fired = fired_all.clear().drop("as_of")
    for d in hist.dates:
        held = holds_on(holds, d, key) if holds is not None and holds.height else None
        state, ch = step(state, by_date.get((d,), empty_sig), d, rules, key=key,
                         stages=stages.get((d,), hist.stages.clear().drop("as_of")),
                         fired=fired.get((d,), empty_fired), holds=held, text_dtype=ref)
        day = pl.lit(d, pl.Date).alias("as_of")
        changes.append(ch.select(day, pl.all()))
        states.append(state.select(day, pl.all()))
    all_changes = pl.concat(changes, how="vertical_relaxed")
    all_states = pl.concat(states, how="vertical_relaxed")
    shown = pl.concat([all_changes["text"], all_states["text"]]).drop_nulls().unique()
    chosen = index.filter(pl.col("__ref").is_in(shown.implode()))
    rendered = hist.fired.render(chosen) if chosen.height else None
    texts = (chosen.select("__ref", "__hk", "__order").join(
        rendered.select("__hk", "__order", "text"), on=["__hk", "__order"], how="left")
        .select("__ref", "text") if rendered is not None
        else pl.DataFrame(schema={"__ref": ref, "text": pl.String}))

    def resolve(frame: pl.DataFrame) -> pl.DataFrame:
        got = frame.join(texts.rename({"text": "__text"}), left_on="text", right_on="__ref",
                         how="left", maintain_order="left")
        return got.with_columns(pl.col("__text").alias("text")).drop("__text")

    return Lifecycle(changes=resolve(all_changes), states=resolve(all_states))
