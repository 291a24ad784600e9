"""The daily job: evaluate as of a date, move the lifecycle on, and report only what changed.

:func:`run` is what ``healthrules run ROADMAP --state FILE ...`` calls. In one transaction of
the state store it undoes any earlier run of the same date (so a rerun is idempotent), reads
the state left by the previous run, evaluates the roadmap as of the date with the overrides in
force and the stage history (so ``days_in_stage`` and ``stuck`` work; ``prev`` and ``change``
are evaluated from the events at the earlier dates), moves every (account, action) through the
lifecycle (:func:`healthrules.history.lifecycle.step`) and writes the new state. What changed
(opened, resolved, escalated) is returned as a frame and can be written as NDJSON.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from healthrules.compiler import Plan
from healthrules.evaluation import Evaluation
from healthrules.history import overrides as pins
from healthrules.history.lifecycle import _rules_with_flags, signals_for, step
from healthrules.history.snapshots import AS_OF, _as_date, evaluate_dates, prepare_inputs
from healthrules.history.store import StateStore, StoreError, _now
from healthrules.roadmap import Pack, Roadmap

__all__ = ["RunResult", "run"]


@dataclass(frozen=True)
class RunResult:
    """What one daily run did.

    Attributes
    ----------
    as_of
        The run date.
    evaluation
        The evaluation as of the date (with the overrides applied).
    changes
        Only what changed: one row per opened, resolved or escalated action, with its
        ``reason`` (resolved), ``stage``, ``priority``, ``kind``, ``title``, ``text``,
        ``opened_at`` and ``days_open``.
    open
        Every action open after the run (the CSM's worklist), with ``opened_at``.
    overrides
        The overrides in force on the date, with the pinned and the computed value.
    expired_overrides
        Overrides whose expiry (or removal) fell since the previous run.
    undone
        Dates of earlier runs this run replaced (itself on a rerun; later ones on a rewind).
    """

    as_of: dt.date
    evaluation: Evaluation
    changes: pl.DataFrame
    open: pl.DataFrame
    overrides: pl.DataFrame
    expired_overrides: pl.DataFrame
    undone: tuple[dt.date, ...] = ()

    def counts(self) -> dict[str, int]:
        """How many actions opened, resolved and escalated, and how many are open."""
        out = {c: int((self.changes["change"] == c).sum())
               for c in ("opened", "resolved", "escalated")}
        out["open"] = self.open.height
        return out

    def to_ndjson(self) -> str:
        """The changes as NDJSON, one object per line (dates as ISO text)."""
        if self.changes.height == 0:
            return ""
        frame = self.changes.select(pl.lit(self.as_of.isoformat()).alias("as_of"), pl.all())
        return frame.write_ndjson()

    def write_ndjson(self, path: str | os.PathLike[str]) -> Path:
        """Write the changes as NDJSON atomically (a temporary file, then a rename)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(self.to_ndjson())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def summary(self) -> str:
        """One line per kind of change, for the terminal."""
        c = self.counts()
        head = (f"as of {self.as_of}: {c['opened']} opened, {c['resolved']} resolved, "
                f"{c['escalated']} escalated; {c['open']} open")
        if self.undone:
            head += f" (replaced the run(s) of {', '.join(str(d) for d in self.undone)})"
        extra = []
        if self.overrides.height:
            extra.append(f"{self.overrides.height} override(s) in force")
        if self.expired_overrides.height:
            extra.append(f"{self.expired_overrides.height} expired since the previous run")
        return head + ("; " + ", ".join(extra) if extra else "")

    def __repr__(self) -> str:
        return f"RunResult({self.summary()})"


def run(
    roadmap: Roadmap | Pack | Plan,
    state: StateStore | str | os.PathLike[str],
    events: pl.DataFrame | pl.LazyFrame,
    accounts: pl.DataFrame | pl.LazyFrame,
    as_of: dt.date | str,
    *,
    rewind: bool = False,
) -> RunResult:
    """Run the daily job for one date against a state store.

    Parameters
    ----------
    roadmap
        A roadmap, pack or plan (one store per roadmap or pack).
    state
        A :class:`~healthrules.history.store.StateStore` or the path of its file (created on
        the first run).
    events, accounts
        As for :func:`healthrules.evaluate`.
    as_of
        The run date. Running the same date again replaces that run (idempotent).
    rewind
        Allow a date earlier than the latest run: the later runs are undone first.

    Returns
    -------
    RunResult

    Raises
    ------
    StoreError
        If the store belongs to another roadmap, is locked, or has runs after ``as_of``
        (without ``rewind``).
    InputDataError, RoadmapError
        As for :func:`healthrules.evaluate`.
    """
    day = _as_date(as_of, "as_of")
    plan, ev_lf, acc_df = prepare_inputs(roadmap, events, accounts, day)
    key = plan.account_key
    key_dtype = acc_df.schema[key]
    store = state if isinstance(state, StateStore) else StateStore(state)
    started = _now()
    try:
        with store.transaction():
            store.check_plan(plan.id, key, key_dtype)
            later = [d for d in store.runs()["as_of"].to_list() if d > day]
            if later and not rewind:
                raise StoreError(
                    f"the store has runs after {day} (latest {max(later)}); run a later "
                    "date, or pass rewind=True (--rewind) to undo them first", path=store.path)
            previous = store.last_run()
            undone = store.undo_from(day)
            if undone:
                previous = store.last_run()
            old_actions = store.actions(key=key, key_dtype=key_dtype)
            old_stages = store.stages(key=key, key_dtype=key_dtype)
            all_pins = store.overrides(key=key, key_dtype=key_dtype)
            result, evaluation, computed = _evaluate(plan, ev_lf, acc_df, day, old_stages,
                                                     all_pins)
            rules = _rules_with_flags(plan)
            signals = result["signals"]
            if signals is None:
                signals = pl.DataFrame(schema={key: key_dtype, "roadmap": pl.String,
                                               "action_id": pl.String, "holds": pl.Boolean,
                                               "clear": pl.Boolean})
            else:
                signals = signals.drop("as_of")
            new_actions, changes = step(old_actions, signals, day, rules, key=key,
                                        stages=evaluation.stages, fired=evaluation.actions)
            new_stages = _stage_state(evaluation.stages, old_stages, key, day)
            store.write_run(day, key=key, old_actions=old_actions, new_actions=new_actions,
                            old_stages=old_stages, new_stages=new_stages, changes=changes,
                            plan_id=plan.id, accounts=acc_df.height, started_at=started)
    finally:
        if not isinstance(state, StateStore):
            store.close()
    return RunResult(
        as_of=day, evaluation=evaluation, changes=changes,
        open=new_actions.filter(pl.col("status") == "open").drop("status", "resolved_at"),
        overrides=pins.report(plan, all_pins, day, key, computed),
        expired_overrides=_expired(all_pins, previous, day),
        undone=tuple(sorted(undone)))


def _evaluate(plan: Plan, events: pl.LazyFrame, accounts: pl.DataFrame, day: dt.date,
              old_stages: pl.DataFrame, all_pins: pl.DataFrame,
              ) -> tuple[dict[str, Any], Evaluation, pl.DataFrame | None]:
    key = plan.account_key
    before = old_stages.select(
        key, pl.lit(day, pl.Date).alias(AS_OF), pl.col("roadmap").alias("__roadmap_before"),
        pl.col("stage").alias("__stage_before"), pl.col("since").alias("__stage_since"))

    def pin_overlay(dates: Sequence[dt.date]) -> pl.DataFrame | None:
        return pins.overlay(plan, all_pins, dates, key)

    engine, result = evaluate_dates(plan, events, accounts, [day], overlay=pin_overlay,
                                    signals=signals_for(plan), stage_before=before)

    def pick(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter(pl.col("as_of") == day).drop("as_of")

    stages = pick(result["stages"])
    diagnostics = dict(engine.diagnostics)
    diagnostics["accounts"] = stages.height
    diagnostics["accounts_unrouted"] = result["unrouted"].get(day, 0)
    evaluation = Evaluation._from_frames(
        plan=plan, as_of=day, account_key=key, indicators=pick(result["indicators"]),
        stages=stages, scores=pick(result["scores"]), actions=pick(result["actions"]),
        conditions=pick(result["conditions"]), diagnostics=diagnostics,
        attributes=engine.accounts)
    extras = result["extras"]
    computed = pick(extras) if extras is not None else None
    return result, evaluation, computed


def _stage_state(stages: pl.DataFrame, old: pl.DataFrame, key: str,
                 day: dt.date) -> pl.DataFrame:
    """Each account's stage after the run; ``since`` carries over while it stays put."""
    now = stages.select(key, "roadmap", "stage")
    joined = now.join(old.select(key, pl.col("roadmap").alias("__r"),
                                 pl.col("stage").alias("__s"), "since"), on=key, how="left")
    same = pl.col("roadmap").eq_missing(pl.col("__r")) & (pl.col("stage") == pl.col("__s"))
    return joined.select(key, "roadmap", "stage",
                         pl.when(same.fill_null(False)).then(pl.col("since")).otherwise(
                             pl.lit(day, pl.Date)).alias("since"))


def _expired(all_pins: pl.DataFrame, previous: dt.date | None, day: dt.date) -> pl.DataFrame:
    """Overrides that stopped applying after the previous run and on or before ``day``."""
    lo = pl.lit(previous, pl.Date) if previous is not None else pl.lit(dt.date.min, pl.Date)
    hi = pl.lit(day, pl.Date)
    ended = pl.min_horizontal("expires_on", "removed_on")
    return all_pins.filter((ended > lo) & (ended <= hi)).with_columns(
        ended.alias("ended_on")).sort("ended_on", "id")


def changes_json(result: RunResult) -> list[dict[str, Any]]:
    """The changes as JSON-ready dicts (what ``--format json`` prints)."""
    text = result.to_ndjson()
    return [json.loads(line) for line in text.splitlines() if line]
