"""Evaluation: the result frames of one evaluation, typed record views, and explanations."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from healthrules.compiler import Plan
    from healthrules.explain import Explanation

__all__ = ["Evaluation", "Evidence", "TriggeredAction"]


class Evidence(BaseModel):
    """One value a fired action's condition read, with the threshold it was compared to."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: str
    band: str | None = None
    op: str | None = None
    threshold: str | None = None

    def __str__(self) -> str:
        text = f"{self.name} = {self.value}"
        if self.band and not self.name.startswith("band("):  # band(x) shows its band already
            text += f" ({self.band})"
        if self.op:
            text += f", condition {self.op} {self.threshold}"
        return text


class TriggeredAction(BaseModel):
    """A fired action as a record, for services (``Evaluation.triggered_actions()``).

    A typed record needs a fixed field name for the account: ``account_id`` holds the value
    of the roadmap's account key column, whatever that column is called, and
    ``account_key`` names the column (``"org_id"`` for ``data.accounts.key: org_id``), so a
    record can be matched with the frames, which keep the user's column name.
    """

    model_config = ConfigDict(frozen=True)

    account_id: Any
    account_key: str = "account_id"
    roadmap: str
    stage: str
    action_id: str
    kind: Literal["positive", "challenge"]
    title: str | None = None
    owner: str | None = None
    owner_role: str | None = None
    channel: str | None = None
    priority: Literal["critical", "high", "medium", "low"]
    due_date: dt.date | None = None
    text: str
    evidence: list[Evidence]


@dataclass(frozen=True)
class Evaluation:
    """The result of :func:`healthrules.evaluate`: polars frames, sorted deterministically.

    Attributes
    ----------
    indicators
        One row per account: key, ``roadmap``, each indicator's value and ``<id>__band``.
    stages
        Key, ``roadmap``, ``stage``, ``stage_index``, ``achieved``, tasks done / total / list.
    scores
        Key, ``roadmap``, ``stage``, ``score`` (0-100), ``score_band``, per-family scores and
        how many scored indicators were present / missing, ``goal_reached`` (the
        roadmap's ``goal.target``; null without one), and ``segment`` (the score segment
        that scored the account) when some roadmap has ``score.segments``.
    actions
        One row per fired action: ``roadmap``, ``stage``, ``action_id``, ``kind``,
        ``title``, ``owner`` (the person from ``owner.attribute``, else the role),
        ``owner_role``, ``channel``, ``priority``, ``due_date`` (``due``: counted from
        ``as_of``, the day it fires), its rendered ``text`` and ``evidence``.
    conditions
        Per action: accounts considered, fired, and unknown (condition was null).
    diagnostics
        Counts of input rows that were dropped or ignored, and of unrouted accounts.
    attributes
        The account attributes the roadmap declares, as read (used by :meth:`explain`).
    time_values
        A date of a history or a daily run: the change-over-time values the actions read
        (the key, ``roadmap``, ``lag_column(x, N)`` columns, ``days_in_stage``), used by
        :meth:`explain`; None for a single evaluation (no past: those names are null).
    """

    plan: Plan
    as_of: dt.date
    account_key: str
    indicators: pl.DataFrame
    stages: pl.DataFrame
    scores: pl.DataFrame
    actions: pl.DataFrame
    conditions: pl.DataFrame
    diagnostics: dict[str, int] = field(default_factory=dict)
    attributes: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)
    time_values: pl.DataFrame | None = field(default=None, repr=False)

    @property
    def frames(self) -> dict[str, pl.DataFrame]:
        """The output frames by name (what ``healthrules evaluate`` writes)."""
        return {
            "indicators": self.indicators,
            "stages": self.stages,
            "scores": self.scores,
            "actions": self.actions,
            "conditions": self.conditions,
        }

    @property
    def unknown(self) -> int:
        """How many (account, action) conditions were unknown (null) and so did not fire."""
        return int(self.conditions["unknown"].sum()) if self.conditions.height else 0

    def triggered_actions(self) -> list[TriggeredAction]:
        """The fired actions as typed records (a view of :attr:`actions`)."""
        out: list[TriggeredAction] = []
        for row in self.actions.to_dicts():
            row["account_id"] = row.pop(self.account_key)
            row["account_key"] = self.account_key
            out.append(TriggeredAction.model_validate(row))
        return out

    def to_dicts(self) -> list[dict[str, Any]]:
        """The fired actions as plain dicts (JSON-friendly), one per action.

        Each dict is a row of :attr:`actions`: the account is under the roadmap's own key
        column name (``org_id`` for ``data.accounts.key: org_id``), as in every frame.
        """
        return self.actions.to_dicts()

    def summary(self) -> dict[str, Any]:
        """Counts for a quick look: accounts per stage, per score band, actions by kind."""
        # stages in declared order (unassigned last); score bands worst first
        stages = self.stages.group_by("roadmap", "stage").agg(
            pl.len(), pl.col("stage_index").min().alias("__i")).sort(
            "roadmap", "__i", nulls_last=True).select("roadmap", "stage", "len")
        bands = self.scores.group_by("score_band").agg(
            pl.len(), pl.col("score").min().alias("__lo")).sort(
            "__lo", nulls_last=True).select("score_band", "len")
        kinds = self.actions.group_by("kind").len().sort("kind")
        return {
            "as_of": self.as_of.isoformat(),
            "accounts": self.stages.height,
            "stages": stages.rows(),
            "score_bands": bands.rows(),
            "actions": self.actions.height,
            "actions_by_kind": dict(kinds.rows()),
            "unknown_conditions": self.unknown,
            "diagnostics": dict(self.diagnostics),
        }

    def account(self, account_id: Any) -> dict[str, Any]:
        """Everything computed for one account, as plain dicts (for a quick look)."""
        key = self.account_key

        def rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
            return frame.filter(pl.col(key) == account_id).to_dicts()

        found = rows(self.stages)
        if not found:
            raise KeyError(f"no account {account_id!r} in this evaluation")
        return {
            "indicators": (rows(self.indicators) or [{}])[0],
            "stage": found[0],
            "score": (rows(self.scores) or [{}])[0],
            "actions": rows(self.actions),
        }

    def explain(self, account_id: Any) -> Explanation:
        """Why this account has its score, and why each action fired or did not.

        Every indicator's contribution to the score (the ones pulling it down most first) and,
        for every action of the account's roadmap, the value of every sub-expression of its
        condition, computed by the scalar evaluator from this evaluation's values.
        """
        from healthrules.explain import explain

        return explain(self, account_id)

    def write(self, out_dir: str | Path, *, format: str = "parquet") -> list[Path]:
        """Write the result frames to ``out_dir`` atomically (parquet, csv or ndjson).

        Writes ``indicators``, ``stages``, ``scores``, ``actions`` and ``conditions``, then a
        ``manifest.json`` with row counts, ``as_of`` and the diagnostics.
        """
        from healthrules.output import write_frames

        return write_frames(
            self.frames, out_dir, format=format,  # type: ignore[arg-type]
            manifest={"as_of": self.as_of.isoformat(), "roadmap": self.plan.id,
                      "diagnostics": dict(self.diagnostics)},
        )

    def _repr_html_(self) -> str:
        from healthrules._display import html

        return html(self)

    def __repr__(self) -> str:
        return (
            f"Evaluation(as_of={self.as_of.isoformat()}, accounts={self.stages.height}, "
            f"actions={self.actions.height}, unknown_conditions={self.unknown})"
        )
