"""Rule coverage: which stages, actions, bands and threshold boundaries the test cases reached.

Every evaluation a test run makes is observed. An item is covered when:

- **stage**: some account was in the stage;
- **action**: the action fired for some account;
- **band**: some indicator value (or score) fell in the band;
- **boundary**: a cut point was tested on both sides. Cut points are those between adjacent
  bands of an indicator or of the score, and every comparison of a name with a number in an
  action condition, a stage entry, an achievement or the goal's target (``adoption >= 0.8``):
  some value in scope fell on each side (``< 0.8`` and ``>= 0.8``; for ``==`` / ``!=``, equal
  and not equal);
- **goal**: for a roadmap with a ``goal.target``, some account reached the goal
  (``goal_reached`` true), and some account had not (false);
- **missing**: for a banded indicator with its own ``missing:`` policy, some account had no
  value for it (so the policy was applied);
- comparisons in score segments' ``applies_to`` and in roll-ups' ``of`` are boundaries too;
- **segment**: some account was scored by the score segment (its bands are band items
  ``score[<segment>]=<band>``, whose cut points count only for that segment's accounts);
- **rollup**: some account with at least one child got a value for the roll-up indicator.

The percentage is covered items over all items. Items are per roadmap file, so two test files
that test the same roadmap add up.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from healthrules.compiler import CompiledRoadmap, Plan
from healthrules.evaluation import Evaluation
from healthrules.roadmap import Bands, number_text

__all__ = ["CoverageItem", "CoverageReport", "CoverageTracker", "Kind"]

Kind = Literal["stage", "action", "band", "boundary", "goal", "missing", "segment", "rollup"]
KINDS: tuple[Kind, ...] = ("stage", "action", "band", "boundary", "goal", "missing", "segment",
                           "rollup")
_LABELS = {"boundary": "boundaries", "goal": "goals", "missing": "missing"}

_SPLIT_OPS = {"<": "<", ">=": "<", "<=": "<=", ">": "<=", "==": "==", "!=": "=="}
_OPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


@dataclass(frozen=True)
class CoverageItem:
    """One thing a test suite should reach, and whether it did.

    Attributes
    ----------
    kind
        ``stage``, ``action``, ``band``, ``boundary``, ``goal`` or ``missing``.
    roadmap
        The roadmap id.
    source
        The roadmap's file.
    name
        What: a stage or action id, ``indicator=band``, a boundary like
        ``adoption_rate 0.7 (< | >=)``, ``reached`` / ``not reached`` (goal), or an
        indicator id (missing).
    covered
        Whether the tests reached it.
    detail
        For a boundary not covered, which side was never seen.
    """

    kind: Kind
    roadmap: str
    source: str
    name: str
    covered: bool
    detail: str = ""

    def to_record(self) -> dict[str, Any]:
        """A JSON-friendly dict."""
        return {"kind": self.kind, "roadmap": self.roadmap, "source": self.source,
                "name": self.name, "covered": self.covered, "detail": self.detail}


@dataclass(frozen=True)
class CoverageReport:
    """Coverage items and the figures over them."""

    items: tuple[CoverageItem, ...]

    def counts(self, kind: Kind | None = None) -> tuple[int, int]:
        """(covered, total) for one kind, or for all items."""
        chosen = [i for i in self.items if kind is None or i.kind == kind]
        return sum(i.covered for i in chosen), len(chosen)

    def percent(self, kind: Kind | None = None) -> float:
        """The covered percentage (100 when there is nothing to cover: no item is missed;
        :meth:`render` and :meth:`to_record` show such a kind as having no figure)."""
        covered, total = self.counts(kind)
        return 100.0 if total == 0 else 100.0 * covered / total

    def _figure(self, kind: Kind | None = None) -> str:
        """The percentage as :meth:`render` shows it: ``-`` when there is nothing to cover
        (0 of 0 is no measure, not 100 %)."""
        return f"{self.percent(kind):6.1f}%" if self.counts(kind)[1] else f"{'-':>7}"

    @property
    def missed(self) -> list[CoverageItem]:
        """The items no test reached."""
        return [i for i in self.items if not i.covered]

    def to_record(self) -> dict[str, Any]:
        """A JSON-friendly dict: the figures per kind, the total and the missed items."""
        return {
            "percent": round(self.percent(), 2) if self.counts()[1] else None,
            "by_kind": {k: {"covered": self.counts(k)[0], "total": self.counts(k)[1],
                            "percent": round(self.percent(k), 2) if self.counts(k)[1]
                            else None} for k in KINDS},
            "missed": [i.to_record() for i in self.missed],
        }

    def render(self) -> str:
        """A readable report: one line per kind, the total, then what was missed."""
        lines = ["coverage:"]
        for k in KINDS:
            c, t = self.counts(k)
            if t == 0 and k in ("goal", "missing", "segment", "rollup"):
                continue  # only roadmaps with a goal target, own missing policies, segments
                # or roll-ups have them
            label = _LABELS.get(k, k + "s")
            lines.append(f"  {label:<11} {c:>4}/{t:<4} {self._figure(k)}")
        c, t = self.counts()
        lines.append(f"  {'total':<11} {c:>4}/{t:<4} {self._figure()}")
        missed = self.missed
        if missed:
            lines.append("not reached by any test case:")
            for item in missed:
                text = f"  {item.kind:<9} {item.roadmap}: {item.name}"
                if item.detail:
                    text += f"  ({item.detail})"
                lines.append(text)
        return "\n".join(lines)


@dataclass
class _Boundary:
    subject: str
    value: float
    split: str  # "<" (x < c | x >= c), "<=" (x <= c | x > c) or "==" (x == c | x != c)
    # (kind, stage) or ("segment", segment id)
    scopes: list[tuple[str, str | None]] = field(default_factory=list)
    seen: set[bool] = field(default_factory=set)  # True: the upper / equal side

    @property
    def name(self) -> str:
        c = number_text(self.value)
        if self.split == "<":
            return f"{self.subject} {c} (< | >=)"
        if self.split == "<=":
            return f"{self.subject} {c} (<= | >)"
        return f"{self.subject} {c} (== | !=)"

    def sides(self) -> tuple[str, str]:
        c = number_text(self.value)
        if self.split == "<":
            return f"< {c}", f">= {c}"
        if self.split == "<=":
            return f"<= {c}", f"> {c}"
        return f"!= {c}", f"== {c}"

    def side_of(self, x: float) -> bool:
        if self.split == "<":
            return x >= self.value
        if self.split == "<=":
            return x > self.value
        return x == self.value


@dataclass
class _RoadmapCoverage:
    roadmap: str
    source: str
    stages: dict[str, bool]
    actions: dict[str, bool]
    bands: dict[tuple[str, str], bool]
    boundaries: dict[tuple[str, float, str], _Boundary]
    band_specs: dict[str, Bands]
    action_stage: dict[str, str | None]
    segments: dict[str, bool] = field(default_factory=dict)
    rollups: dict[str, bool] = field(default_factory=dict)
    goal: dict[bool, bool] | None = None  # goal_reached value -> seen
    missing: dict[str, bool] = field(default_factory=dict)  # indicator -> seen null


def _literal_number(node: ast.expr) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(
            node.value, bool):
        return float(node.value)
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, (int, float))
            and not isinstance(node.operand.value, bool)):
        v = float(node.operand.value)
        return -v if isinstance(node.op, ast.USub) else v
    return None


def _comparisons(tree: ast.AST) -> Iterable[tuple[str, str, float]]:
    """(name, op, number) for each comparison of a name with a number (chains split)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for left, op, right in zip(operands, node.ops, operands[1:], strict=False):
            text = _OPS.get(type(op))
            if text is None:
                continue
            if isinstance(left, ast.Name) and (v := _literal_number(right)) is not None:
                yield left.id, text, v
            elif isinstance(right, ast.Name) and (v := _literal_number(left)) is not None:
                yield right.id, _FLIP[text], v


class CoverageTracker:
    """Collects what test evaluations reached; :meth:`report` turns it into figures.

    Examples
    --------
    >>> tracker = CoverageTracker()
    >>> tracker.report().percent()
    100.0
    """

    def __init__(self) -> None:
        self._roadmaps: dict[tuple[str, str], _RoadmapCoverage] = {}

    @staticmethod
    def _key(cr: CompiledRoadmap) -> tuple[str, str]:
        return (cr.roadmap.source or "<roadmap>", cr.id)

    def add_plan(self, plan: Plan) -> None:
        """Register the items of every roadmap of a plan (once per roadmap file)."""
        for cr in plan.roadmaps:
            key = self._key(cr)
            if key in self._roadmaps:
                continue
            r = cr.roadmap
            cov = _RoadmapCoverage(
                roadmap=r.id, source=key[0],
                stages={s.id: False for s in r.stages},
                actions={a.id: False for _, a in r.all_actions()},
                bands={}, boundaries={}, band_specs={},
                action_stage={a.id: (st.id if st else None) for st, a in r.all_actions()},
            )
            for ind in r.indicators:
                if ind.bands is not None:
                    cov.band_specs[ind.id] = ind.bands
                    if ind.missing is not None:
                        cov.missing[ind.id] = False
            if r.goal.target is not None:
                cov.goal = {True: False, False: False}
            if r.score.bands is not None:
                cov.band_specs["score"] = r.score.bands
            for seg in r.score.segments:
                cov.segments[seg.id] = False
                if seg.bands is not None:
                    cov.band_specs[f"score[{seg.id}]"] = seg.bands
            cov.rollups = {ind.id: False for ind in r.indicators if ind.kind == "rollup"}
            for name, bands in cov.band_specs.items():
                for b in bands.levels:
                    cov.bands[(name, b.name)] = False
                segment = name[len("score["):-1] if name.startswith("score[") else None
                for level in bands.levels[:-1]:
                    upper = level.upper
                    assert upper is not None
                    split = "<=" if upper[1] else "<"
                    self._boundary(cov, "score" if segment else name, upper[0], split,
                                   ("segment", segment) if segment else ("band", None))
            exprs = cr.analysis.expressions
            for path, parsed in sorted(exprs.items()):
                if path.startswith("score.segments[") or path.endswith(".of"):
                    for name, op, v in _comparisons(parsed.tree):
                        self._boundary(cov, name, v, _SPLIT_OPS[op], ("entry", None))
            target = exprs.get("goal.target")
            if target is not None:
                for name, op, v in _comparisons(target.tree):
                    self._boundary(cov, name, v, _SPLIT_OPS[op], ("entry", None))
            for si, st in enumerate(r.stages):
                entry = exprs.get(f"stages[{si}].entry")
                if entry is not None:
                    for name, op, v in _comparisons(entry.tree):
                        self._boundary(cov, name, v, _SPLIT_OPS[op], ("entry", None))
                ach = exprs.get(f"stages[{si}].achievement.when")
                if ach is not None:
                    for name, op, v in _comparisons(ach.tree):
                        self._boundary(cov, name, v, _SPLIT_OPS[op], ("stage", st.id))
                for ai, _action in enumerate(st.actions):
                    when = exprs.get(f"stages[{si}].actions[{ai}].when")
                    if when is not None:
                        for name, op, v in _comparisons(when.tree):
                            self._boundary(cov, name, v, _SPLIT_OPS[op], ("stage", st.id))
            for ai, _action in enumerate(r.actions):
                when = exprs.get(f"actions[{ai}].when")
                if when is not None:
                    for name, op, v in _comparisons(when.tree):
                        self._boundary(cov, name, v, _SPLIT_OPS[op], ("roadmap", None))
            self._roadmaps[key] = cov

    @staticmethod
    def _boundary(cov: _RoadmapCoverage, name: str, value: float, split: str,
                  scope: tuple[str, str | None]) -> None:
        key = (name, value, split)
        b = cov.boundaries.get(key)
        if b is None:
            b = cov.boundaries[key] = _Boundary(name, value, split)
        if scope not in b.scopes:
            b.scopes.append(scope)

    def observe(self, evaluation: Evaluation) -> None:
        """Record what one evaluation reached."""
        plan = evaluation.plan
        self.add_plan(plan)
        key_col = evaluation.account_key
        attrs = {row[key_col]: row for row in evaluation.attributes.to_dicts()} if (
            evaluation.attributes.width) else {}
        stage_rows = {(r[key_col], r["roadmap"]): r for r in evaluation.stages.to_dicts()}
        parent = plan.parent
        with_children: set[Any] = set()
        if parent is not None and parent in evaluation.attributes.columns:
            with_children = set(evaluation.attributes[parent].drop_nulls().to_list())
        score_rows = {(r[key_col], r["roadmap"]): r for r in evaluation.scores.to_dicts()}
        for cr in plan.roadmaps:
            cov = self._roadmaps[self._key(cr)]
            rid = cr.id
            for row in evaluation.actions.filter(pl.col("roadmap") == rid).to_dicts():
                cov.actions[row["action_id"]] = True
            inds = evaluation.indicators.filter(pl.col("roadmap") == rid).to_dicts()
            for ind_row in inds:
                acc = ind_row[key_col]
                st = stage_rows.get((acc, rid), {})
                sc = score_rows.get((acc, rid), {})
                stage = st.get("stage")
                if stage in cov.stages:
                    cov.stages[stage] = True
                values: dict[str, Any] = dict(attrs.get(acc, {}))
                values.update(ind_row)
                values["score"] = sc.get("score")
                values["stage"] = stage
                segment = sc.get("segment")
                if segment in cov.segments:
                    cov.segments[segment] = True
                if acc in with_children:
                    for rid_ in cov.rollups:
                        if ind_row.get(rid_) is not None:
                            cov.rollups[rid_] = True
                reached = sc.get("goal_reached")
                if cov.goal is not None and isinstance(reached, bool):
                    cov.goal[reached] = True
                for name in cov.missing:
                    if ind_row.get(name) is None:
                        cov.missing[name] = True
                for name in cov.band_specs:
                    if name.startswith("score["):
                        band = sc.get("score_band") if name == f"score[{segment}]" else None
                    elif name == "score":
                        band = sc.get("score_band") if f"score[{segment}]" not in (
                            cov.band_specs) else None
                    else:
                        band = ind_row.get(f"{name}__band")
                    if band is not None:
                        cov.bands[(name, band)] = True
                for b in cov.boundaries.values():
                    if not any(_in_scope(s, stage, segment) for s in b.scopes):
                        continue
                    x = values.get(b.subject)
                    if isinstance(x, bool) or not isinstance(x, (int, float)):
                        continue
                    if isinstance(x, float) and math.isnan(x):
                        continue
                    b.seen.add(b.side_of(float(x)))

    def report(self) -> CoverageReport:
        """The coverage items, in a stable order (roadmap file, kind, declaration order)."""
        items: list[CoverageItem] = []
        for (source, rid), cov in sorted(self._roadmaps.items()):
            for sid, hit in cov.stages.items():
                items.append(CoverageItem("stage", rid, source, sid, hit))
            for aid, hit in cov.actions.items():
                where = cov.action_stage.get(aid)
                detail = "" if hit else ("never fired" + (f" (stage {where})" if where else ""))
                items.append(CoverageItem("action", rid, source, aid, hit, detail))
            for (ind, band), hit in cov.bands.items():
                detail = ""
                if not hit:
                    level = next(b for b in cov.band_specs[ind].levels if b.name == band)
                    detail = "no value in " + level.describe().replace(
                        "x", ind.split("[")[0], 1)
                items.append(CoverageItem("band", rid, source, f"{ind}={band}", hit, detail))
            for b in cov.boundaries.values():
                low, high = b.sides()
                missing = [s for s, flag in ((low, False), (high, True)) if flag not in b.seen]
                detail = ("never " + " nor ".join(f"{b.subject} {m}" for m in missing)
                          if missing else "")
                items.append(CoverageItem("boundary", rid, source, b.name, not missing, detail))
            for sid, hit in cov.segments.items():
                items.append(CoverageItem("segment", rid, source, sid, hit,
                                          "" if hit else "no account was scored by it"))
            for uid, hit in cov.rollups.items():
                items.append(CoverageItem("rollup", rid, source, uid, hit,
                                          "" if hit else "no account with children had a value"))
            for state, hit in (cov.goal or {}).items():
                name = "reached" if state else "not reached"
                items.append(CoverageItem("goal", rid, source, name, hit,
                                          "" if hit else f"no account's goal {name}"))
            for ind, hit in cov.missing.items():
                items.append(CoverageItem("missing", rid, source, ind, hit,
                                          "" if hit else "never missing, so its missing "
                                          "policy was never applied"))
        return CoverageReport(tuple(items))


def _in_scope(scope: tuple[str, str | None], stage: str | None, segment: Any) -> bool:
    kind, sid = scope
    if kind == "stage":
        return stage == sid
    if kind == "segment":
        return bool(segment == sid)
    return True
