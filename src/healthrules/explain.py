"""Why an account has its stage and score, and why each action fired or did not.

The vectorised engine computes the values; this module re-reads one account's values from an
:class:`~healthrules.evaluation.Evaluation` and evaluates each condition again with the scalar
evaluator (:mod:`healthrules.scalar`), recording every sub-expression's value.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from healthrules.roadmap import UNASSIGNED_STAGE, Action, Owner, Roadmap, Weights
from healthrules.scalar import Step, trace

if TYPE_CHECKING:
    from healthrules.compiler import CompiledRoadmap
    from healthrules.evaluation import Evaluation

__all__ = ["ActionTrace", "Contribution", "Explanation", "GoalTrace", "StageTrace", "explain"]


@dataclass(frozen=True)
class Contribution:
    """One scored indicator's part in the health score."""

    indicator: str
    family: str
    value: Any
    band: str | None
    band_score: float | None
    weight: float
    points: float
    lost: float
    missing: bool


@dataclass(frozen=True)
class ActionTrace:
    """One action's condition, evaluated for the account, step by step."""

    action_id: str
    kind: str
    stage: str | None
    in_scope: bool
    result: bool | None
    fired: bool
    when: str
    steps: list[Step]
    due_date: dt.date | None = None
    owner: str | None = None
    owner_role: str | None = None


@dataclass(frozen=True)
class StageTrace:
    """One stage's entry criterion, evaluated for the account."""

    stage: str
    entry: str | None
    result: bool | None
    steps: list[Step]


@dataclass(frozen=True)
class GoalTrace:
    """The roadmap's ``goal.target``, evaluated for the account (``goal_reached``)."""

    goal: str
    target: str
    result: bool | None
    steps: list[Step]


@dataclass(frozen=True)
class Explanation:
    """Why one account is where it is (``str()`` is a readable report; ``to_dict()`` JSON)."""

    account: Any
    roadmap: str | None
    as_of: dt.date
    stage: str
    score: float | None
    score_band: str | None
    contributions: list[Contribution] = field(default_factory=list)
    stages: list[StageTrace] = field(default_factory=list)
    actions: list[ActionTrace] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    goal: GoalTrace | None = None
    segment: str | None = None
    """The score segment that scored the account (None: no segment applies, or none is
    declared)."""
    segments: list[StageTrace] = field(default_factory=list)
    """Each score segment's ``applies_to``, evaluated (``stage`` holds the segment id), up to
    the one that applies."""
    children: list[Any] = field(default_factory=list)
    """The account's children in an account hierarchy (their values make its roll-ups)."""

    @property
    def pulling_down(self) -> list[Contribution]:
        """Scored indicators ordered by the points they cost the score, largest first."""
        return sorted((c for c in self.contributions if c.lost > 0), key=lambda c: -c.lost)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (dates and datetimes as ISO text)."""
        return json.loads(json.dumps(asdict(self), default=_json_default))  # type: ignore[no-any-return]

    def __str__(self) -> str:
        return self.render()

    def render(self, *, steps: bool = True) -> str:
        """The readable report; ``steps=False`` leaves out the sub-expression values."""
        lines = [f"account {self.account} as of {self.as_of.isoformat()}"]
        if self.roadmap is None:
            lines.append("  no roadmap applies to this account (applies_to is false for all)")
            return "\n".join(lines)
        score = "n/a" if self.score is None else f"{self.score:.1f}"
        segment = f", segment {self.segment}" if self.segment is not None else ""
        lines.append(f"  roadmap {self.roadmap}, stage {self.stage}{segment}, score {score}"
                     + (f" ({self.score_band})" if self.score_band else ""))
        if self.children:
            shown = ", ".join(str(c) for c in self.children[:10])
            more = f" and {len(self.children) - 10} more" if len(self.children) > 10 else ""
            lines.append(f"  children ({len(self.children)}, read by its roll-ups): "
                         f"{shown}{more}")
        lines.append("why this stage:")
        for st in self.stages:
            verdict = {True: "holds", False: "does not hold", None: "unknown"}[st.result]
            lines.append(f"  {st.stage}: entry {st.entry or '(always)'} -> {verdict}")
            if st.result is True:
                break
        if self.goal is not None:
            verdict = {True: "reached", False: "not reached",
                       None: "unknown (a value is null)"}[self.goal.result]
            lines.append(f"goal: {verdict} (target {self.goal.target})")
            for s in self.goal.steps if steps else []:
                if not _is_literal(s.text):
                    lines.append("      " + "  " * s.depth + f"{s.text} = {_fmt(s.value)}")
        if self.segments:
            lines.append("why this segment:")
            for sg in self.segments:
                verdict = {True: "holds", False: "does not hold", None: "unknown"}[sg.result]
                lines.append(f"  {sg.stage}: applies_to {sg.entry} -> {verdict}")
        lines.append("why this score (points each indicator earns, and loses):")
        for c in sorted(self.contributions, key=lambda c: -c.lost):
            val = "missing" if c.missing else _fmt(c.value)
            lines.append(
                f"  {c.indicator:<24} {val:>10} {c.band or '-':<8} weight {c.weight:5.1%}"
                f"  +{c.points:5.1f}  -{c.lost:5.1f}")
        lines.append("actions:")
        for a in self.actions:
            if not a.in_scope:
                lines.append(f"  {a.action_id}: not considered (stage {a.stage})")
                continue
            verdict = "FIRED" if a.fired else (
                "unknown (a value is null)" if a.result is None else "did not fire")
            # the owner is shown when it names a person (an owner attribute), not a role
            person = a.owner if a.owner != a.owner_role else None
            routed = "".join(f", {label} {value}" for label, value in (
                ("due", a.due_date), ("owner", person)) if a.fired and value is not None)
            lines.append(f"  {a.action_id} [{a.kind}]: {verdict}{routed}")
            for s in a.steps if steps else []:
                if not _is_literal(s.text):
                    lines.append("      " + "  " * s.depth + f"{s.text} = {_fmt(s.value)}")
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return str(v)


def _is_literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _json_default(v: Any) -> Any:
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return str(v)


def explain(evaluation: Evaluation, account_id: Any) -> Explanation:
    """Explain one account of an evaluation (see :meth:`Evaluation.explain`).

    Raises
    ------
    KeyError
        If the account is not in the evaluation.
    """
    import polars as pl

    key = evaluation.account_key
    stage_rows = evaluation.stages.filter(pl.col(key) == account_id).to_dicts()
    if not stage_rows:
        raise KeyError(f"no account {account_id!r} in this evaluation")
    stage_row = stage_rows[0]
    roadmap_id = stage_row["roadmap"]
    if roadmap_id is None:
        return Explanation(account=account_id, roadmap=None, as_of=evaluation.as_of,
                           stage=UNASSIGNED_STAGE, score=None, score_band=None)
    cr = next(c for c in evaluation.plan.roadmaps if c.id == roadmap_id)
    r = cr.roadmap

    def one(frame: pl.DataFrame) -> dict[str, Any]:
        rows = frame.filter((pl.col(key) == account_id) & (pl.col("roadmap") == roadmap_id))
        return rows.to_dicts()[0] if rows.height else {}

    ind_row = one(evaluation.indicators)
    score_row = one(evaluation.scores)
    attrs = evaluation.attributes.filter(pl.col(key) == account_id).to_dicts()
    values: dict[Any, Any] = {}
    if attrs:
        values.update({k: v for k, v in attrs[0].items() if k != key})
    for ind in r.indicators:
        values[ind.id] = ind_row.get(ind.id)
        if ind.bands is not None:
            values[("band", ind.id)] = ind_row.get(f"{ind.id}__band")
    if evaluation.time_values is not None:  # a date of a history or a daily run
        past = evaluation.time_values.filter(pl.col(key) == account_id).to_dicts()
        if past:
            values.update({k: v for k, v in past[0].items() if k not in (key, "roadmap")})
    values.update({
        "as_of": evaluation.as_of,
        "score": score_row.get("score"),
        "score_band": score_row.get("score_band"),
        "stage": stage_row["stage"],
        "stage_achieved": stage_row["achieved"],
        "goal_reached": score_row.get("goal_reached"),
    })
    goal = _goal_trace(cr, values, evaluation.as_of)
    segment = score_row.get("segment")
    if r.score.segments:
        values["segment"] = segment
    stages = _stage_traces(cr, values, evaluation.as_of)
    actions = _action_traces(cr, values, evaluation.as_of, stage_row["stage"])
    weights = r.score.weights_for(segment, stage_row["stage"])
    return Explanation(
        account=account_id, roadmap=roadmap_id, as_of=evaluation.as_of,
        stage=stage_row["stage"], score=score_row.get("score"),
        score_band=score_row.get("score_band"),
        contributions=_contributions(r, weights, values),
        stages=stages, actions=actions,
        values={k: v for k, v in values.items()
                if isinstance(k, str) and not k.startswith("__")},  # (not the lags)
        goal=goal,
        segment=segment, segments=_segment_traces(cr, values, evaluation.as_of),
        children=_children(evaluation, account_id, roadmap_id),
    )


def _goal_trace(cr: CompiledRoadmap, values: dict[Any, Any], as_of: dt.date) -> GoalTrace | None:
    parsed = cr.analysis.expressions.get("goal.target")
    if parsed is None:
        return None
    steps = trace(parsed, values, as_of=as_of, types=cr.analysis.env("indicators"))
    result = steps[-1].value if steps else None
    return GoalTrace(goal=cr.roadmap.goal.text, target=parsed.source,
                     result=result if isinstance(result, bool) else None, steps=steps)


def _stage_traces(cr: CompiledRoadmap, values: dict[Any, Any], as_of: dt.date) -> list[StageTrace]:
    out: list[StageTrace] = []
    for si, st in enumerate(cr.roadmap.stages):
        parsed = cr.analysis.expressions.get(f"stages[{si}].entry")
        if parsed is None:
            out.append(StageTrace(stage=st.id, entry=None, result=True, steps=[]))
            continue
        steps = trace(parsed, values, as_of=as_of, types=cr.analysis.env("indicators"))
        result = steps[-1].value if steps else None
        out.append(StageTrace(stage=st.id, entry=st.entry,
                              result=result if isinstance(result, bool) else None, steps=steps))
    return out


def _children(evaluation: Evaluation, account_id: Any, roadmap_id: str) -> list[Any]:
    """The accounts whose parent is this one, evaluated by the same roadmap, sorted."""
    import polars as pl

    parent = evaluation.plan.parent
    key = evaluation.account_key
    if parent is None or parent not in evaluation.attributes.columns:
        return []
    same = evaluation.stages.filter(pl.col("roadmap") == roadmap_id).select(key)
    kids = evaluation.attributes.filter(pl.col(parent) == account_id).select(key).join(
        same, on=key, how="semi")
    return sorted(kids[key].to_list())


def _segment_traces(cr: CompiledRoadmap, values: dict[Any, Any],
                    as_of: dt.date) -> list[StageTrace]:
    out: list[StageTrace] = []
    for k, seg in enumerate(cr.roadmap.score.segments):
        parsed = cr.analysis.expressions[f"score.segments[{k}].applies_to"]
        steps = trace(parsed, values, as_of=as_of, types=cr.analysis.env("indicators"))
        result = steps[-1].value if steps else None
        out.append(StageTrace(stage=seg.id, entry=seg.applies_to,
                              result=result if isinstance(result, bool) else None, steps=steps))
        if result is True:
            break
    return out


def _action_traces(cr: CompiledRoadmap, values: dict[Any, Any], as_of: dt.date,
                   stage: str) -> list[ActionTrace]:
    r = cr.roadmap
    out: list[ActionTrace] = []
    for si, st in enumerate(r.stages):
        for ai, action in enumerate(st.actions):
            out.append(_one_action(cr, f"stages[{si}].actions[{ai}]", action.id, action.kind,
                                   st.id, st.id == stage, values, as_of))
    for ai, action in enumerate(r.actions):
        out.append(_one_action(cr, f"actions[{ai}]", action.id, action.kind, None, True,
                               values, as_of))
    return out


def _one_action(cr: CompiledRoadmap, path: str, action_id: str, kind: str, stage: str | None,
                in_scope: bool, values: dict[Any, Any], as_of: dt.date) -> ActionTrace:
    parsed = cr.analysis.expressions[f"{path}.when"]
    steps = (trace(parsed, values, as_of=as_of, types=cr.analysis.env("actions")) if in_scope
             else [])
    result = steps[-1].value if steps else None
    result_bool = result if isinstance(result, bool) else None
    fired = in_scope and result_bool is True
    due, owner = _routing(cr, path, values, as_of) if fired else (None, None)
    role = next(a for p, a in _paths(cr.roadmap) if p == path).owner_role
    return ActionTrace(action_id=action_id, kind=kind, stage=stage, in_scope=in_scope,
                       result=result_bool, fired=fired, when=parsed.source, steps=steps,
                       due_date=due, owner=owner, owner_role=role)


def _routing(cr: CompiledRoadmap, path: str, values: dict[Any, Any],
             as_of: dt.date) -> tuple[dt.date | None, str | None]:
    """The due date and the owner of an action that fired, by the scalar evaluator (the
    same rules as the engine's ``due_date`` and ``owner`` columns)."""
    action = next(a for p, a in _paths(cr.roadmap) if p == path)
    due: dt.date | None = None
    if action.due_days is not None:
        due = as_of + dt.timedelta(days=action.due_days)
    elif action.due_expr is not None and f"{path}.due" in cr.analysis.expressions:
        steps = trace(cr.analysis.expressions[f"{path}.due"], values, as_of=as_of,
                      types=cr.analysis.env("actions"))
        value = steps[-1].value if steps else None
        if isinstance(value, dt.datetime):
            value = value.date()
        due = value if isinstance(value, dt.date) else None
    owner = action.owner_role
    if action.owner_attribute is not None:
        person = values.get(action.owner_attribute)
        fallback = action.owner.fallback if isinstance(action.owner, Owner) else None
        owner = str(person) if person is not None else fallback
    return due, owner


def _paths(r: Roadmap) -> list[tuple[str, Action]]:
    out = [(f"stages[{si}].actions[{ai}]", a) for si, st in enumerate(r.stages)
           for ai, a in enumerate(st.actions)]
    return out + [(f"actions[{ai}]", a) for ai, a in enumerate(r.actions)]


def _contributions(r: Roadmap, weights: Weights, values: dict[Any, Any]) -> list[Contribution]:
    """Each scored indicator's effective weight, points earned and points lost (semantics.md)."""
    banded = {ind.id: ind for ind in r.indicators if ind.bands is not None}
    if weights.indicators:
        chosen = [(i, float(w)) for i, w in weights.indicators.items() if w > 0 and i in banded]
    else:
        chosen = [(i, 1.0) for i in banded]
    if weights.families:
        chosen = [(i, w) for i, w in chosen if weights.families.get(banded[i].family, 0) > 0]
    scores: dict[str, float | None] = {}
    for ident, _ in chosen:
        bands = banded[ident].bands
        assert bands is not None
        band = values.get(("band", ident))
        s = None if band is None else bands.level_scores()[band]
        policy = banded[ident].missing or r.score.missing  # the indicator's own first
        if s is None and policy == "neutral":
            s = 50.0
        elif s is None and policy == "worst":
            s = 0.0
        scores[ident] = s
    present = [(i, w) for i, w in chosen if scores[i] is not None]
    eff: dict[str, float] = {}
    if weights.families:
        fam_tot: dict[str, float] = {}
        for i, w in present:
            fam_tot[banded[i].family] = fam_tot.get(banded[i].family, 0.0) + w
        fam_w = {f: float(weights.families.get(f, 0)) for f in fam_tot  # type: ignore[call-overload]
                 if fam_tot[f] > 0}
        total_fw = sum(fam_w.values())
        for i, w in present:
            f = banded[i].family
            if total_fw > 0 and f in fam_w:
                eff[i] = fam_w[f] / total_fw * w / fam_tot[f]
    else:
        total_w = sum(w for _, w in present)
        for i, w in present:
            eff[i] = w / total_w if total_w > 0 else 0.0
    out: list[Contribution] = []
    for ident, _ in chosen:
        s = scores[ident]
        w = eff.get(ident, 0.0)
        out.append(Contribution(
            indicator=ident, family=banded[ident].family, value=values.get(ident),
            band=values.get(("band", ident)), band_score=s, weight=w,
            points=w * (s or 0.0), lost=w * (100.0 - s) if s is not None else 0.0,
            missing=values.get(ident) is None,
        ))
    return out
