"""History's grid takes the engine's forms for many rows (issue #10).

A grid chunk of ``MANY_ROWS`` rows or more builds its roadmap frames with the forms for many
rows (``RoadmapProgram.frame(..., rows)``: when/then chains for the stage index, the
achievement columns and the weight set's picks), and ``History.actions`` renders the
evidence of an action with ``or`` branches that fired on ``EVIDENCE_MANY_ROWS`` rows or more
with ``list.filter`` instead of ``list.drop_nulls``. Either form must give the same frames,
bit for bit, and history must still equal ``evaluate()`` (few rows: the other forms) at
every date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.datasets import sample
from healthrules.engine import assemble, render
from healthrules.history import history
from healthrules.history.snapshots import History

B2B = Path(__file__).resolve().parents[1] / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"
DATA = sample(60, days=300)
WEEKS = 12


def _history(plan: hr.Plan) -> History:
    end = DATA.as_of
    return history(plan, DATA.events, DATA.accounts, end - dt.timedelta(weeks=WEEKS), end,
                   "1w")


def _frames(h: History) -> dict[str, pl.DataFrame]:
    return {"indicators": h.indicators, "stages": h.stages, "scores": h.scores,
            "actions": h.actions, "conditions": h.conditions}


def test_grid_frames_take_the_forms_for_many_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every grid chunk passes its row count to the frame-building step: with ``MANY_ROWS``
    rows or more the frames are built with the forms for many rows, and they equal the
    frames of the few-row forms (``MANY_ROWS`` out of reach) and evaluate() at every date."""
    seen: list[int | None] = []
    forms: list[bool] = []
    frame, fused = assemble.RoadmapProgram.frame, assemble.RoadmapProgram._fused_steps

    def frame_spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        rows = kwargs.get("rows", args[4] if len(args) > 4 else None)
        seen.append(rows)
        return frame(self, *args, **kwargs)

    def fused_spy(self: Any, many: bool = False) -> Any:
        forms.append(many)
        return fused(self, many)

    monkeypatch.setattr(assemble.RoadmapProgram, "frame", frame_spy)
    monkeypatch.setattr(assemble.RoadmapProgram, "_fused_steps", fused_spy)
    many = _history(hr.compile(hr.load(B2B)))
    assert many.stages.height == 60 * (WEEKS + 1)
    assert seen and all(r is not None and r >= assemble.MANY_ROWS for r in seen)
    assert True in forms  # the forms for many rows were built (and used: see below)

    seen.clear()
    forms.clear()
    monkeypatch.setattr(assemble, "MANY_ROWS", 10**12)
    few = _history(hr.compile(hr.load(B2B)))
    assert True not in forms
    for name, frame_many in _frames(many).items():
        assert_frame_equal(frame_many, _frames(few)[name], check_exact=True)
    assert many.stages["stage"].n_unique() > 1
    assert many.scores["score"].drop_nulls().n_unique() > 10

    # and evaluate() at every date (60 accounts: the few-row forms of the same steps)
    plan = hr.compile(hr.load(B2B))
    for day in many.dates:
        one = hr.evaluate(plan, DATA.events, DATA.accounts, day)
        at = many.at(day)
        for name in ("indicators", "stages", "scores", "actions"):
            assert_frame_equal(getattr(at, name), getattr(one, name), check_exact=True)


def test_actions_take_the_evidence_form_for_many_rows(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``History.actions`` picks, per action with ``or`` branches, the evidence form by the
    number of rows it fired on: the form for many rows from ``EVIDENCE_MANY_ROWS`` on."""
    evidence = render.Renderer.evidence
    marked: list[int] = []

    def marking(self: Any, *args: Any, **kwargs: Any) -> tuple[pl.Expr, pl.Expr | None]:
        few, many = evidence(self, *args, **kwargs)
        if many is None:
            return few, many
        marked.append(1)
        # a many-row form that shows it was taken: the entries' list cut to nothing
        return few, many.list.head(0)

    monkeypatch.setattr(render.Renderer, "evidence", marking)
    h = _history(hr.compile(hr.load(B2B)))
    assert marked  # the example has an action with `or` branches
    index = h.fired.index
    orders = index.group_by("__order").len().filter(
        pl.col("len") >= assemble.EVIDENCE_MANY_ROWS)["__order"].to_list()
    assert orders
    actions = h.actions
    emptied = actions.filter(pl.col("evidence").list.len() == 0)
    # every action that fired on enough rows with an `or` condition took the marked form
    assert emptied.height > 0
    assert emptied.height == actions.join(
        emptied.select("roadmap", "action_id").unique(), on=["roadmap", "action_id"]).height

    # the real forms: the same actions frame whichever form renders the evidence
    monkeypatch.setattr(render.Renderer, "evidence", evidence)
    default = _history(hr.compile(hr.load(B2B))).actions
    monkeypatch.setattr(assemble, "EVIDENCE_MANY_ROWS", 10**12)
    few = _history(hr.compile(hr.load(B2B))).actions
    assert_frame_equal(default, few, check_exact=True)
    got = default.join(emptied.select("as_of", "account_id", "action_id"),
                       on=["as_of", "account_id", "action_id"])
    assert got.height == emptied.height and (got["evidence"].list.len() > 0).all()
