"""Turn the regions of a condition into a sentence that says why it is never (or always) true."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from healthrules.expressions import Parsed
from healthrules.lint.context import node_column
from healthrules.lint.intervals import Atom, ConditionRegions, Dom, Labels, Region

__all__ = ["Explanation", "atom_reason", "segment", "why_always_true", "why_never_true"]


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a condition is constant, and the column of the part to blame (None: the whole)."""

    text: str
    column: int | None = None


def segment(parsed: Parsed, node: ast.AST) -> str:
    """The source text of a part of an expression."""
    if node is parsed.tree:
        return parsed.source
    return parsed.segment(node)


def atom_reason(atom: Atom) -> str:
    """Why a term takes only the values it takes, in words."""
    if atom.reason:
        return atom.reason
    values = atom.base.values_only()
    return f"{atom.term} is always {values.describe(atom.term)}" + (
        " (or null)" if atom.base.null else ""
    )


def _stage_of(context: Region) -> str | None:
    for box in context.boxes:
        dom = box.get("stage")
        if dom is not None and dom.labels is not None and len(dom.labels.values) == 1:
            (value,) = dom.labels.values
            return str(value)
    return None


def why_never_true(
    parsed: Parsed, regions: ConditionRegions, context: Region | None = None
) -> Explanation | None:
    """Explain why a condition whose true-region is empty (in ``context``) is never true.

    Returns None when the only reason is a comparison with a name that does not exist
    (``band(x) == 'gren'``): the check ``expressions.unknown_label`` reports those.
    """
    atoms = list(regions.atoms)
    if regions.true.empty:
        dead = [a for a in atoms if a.never_true]
        if dead and all(a.unknown_label for a in dead):
            return None
        for a in dead:
            return Explanation(f"`{segment(parsed, a.node)}` is never true: {atom_reason(a)}",
                               node_column(a.node))
        for i, a in enumerate(atoms):
            for b in atoms[i + 1:]:
                if a.key == b.key and a.true.meet(b.true).empty:
                    return Explanation(
                        f"`{segment(parsed, a.node)}` and `{segment(parsed, b.node)}` cannot "
                        "both be true", node_column(a.node))
        return Explanation("no combination of values makes it true")
    if context is not None:
        sid = _stage_of(context)
        where = f"stage {sid!r}" if sid is not None else "this stage"
        for a in atoms:
            if a.key == "stage" and sid is not None and a.true.meet(
                Dom(labels=Labels(frozenset({sid})), null=False)
            ).empty:
                return Explanation(
                    f"`{segment(parsed, a.node)}` is never true for the actions of {where}: "
                    f"they only see accounts in stage {sid!r}", node_column(a.node))
        for a in atoms:
            if Region.where(a.key, a.true).meet(context).empty:
                return Explanation(
                    f"`{segment(parsed, a.node)}` is never true for accounts in {where}: the "
                    "entry criteria of the stages rule it out", node_column(a.node))
        return Explanation(
            f"it is never true for accounts in {where}: the entry criteria of the stages rule "
            "it out")
    return Explanation("no combination of values makes it true")


def why_always_true(
    parsed: Parsed, regions: ConditionRegions, context: Region | None = None
) -> Explanation:
    """Explain why a condition whose false-region is empty (in ``context``) is always true."""
    atoms = list(regions.atoms)
    if regions.false.empty:
        for a in atoms:
            if a.never_false:
                return Explanation(
                    f"`{segment(parsed, a.node)}` is true whenever {a.term} is known: "
                    f"{atom_reason(a)}", node_column(a.node))
        keys = {a.key for a in atoms}
        if len(keys) == 1 and atoms:
            return Explanation(f"its parts together cover every value of {atoms[0].term}")
        return Explanation("every combination of known values makes it true")
    sid = _stage_of(context) if context is not None else None
    where = f"stage {sid!r}" if sid is not None else "this stage"
    return Explanation(f"it is true for every account in {where} whose values are known")
