"""Snoozes and dismissals: a CSM holds one action of one account, with a reason and an expiry.

``healthrules run --snooze ACCOUNT ACTION --until DATE --reason ...`` (or ``--dismiss``)
records a hold in the state store with the run; the lifecycle honours it on every date it is
in force (:func:`healthrules.history.lifecycle.step`, ``holds``), every run lists the holds in
force until they expire, and ``--unhold ID`` ends one early. What each kind does is said in
:data:`healthrules.history.lifecycle.HOLD_KINDS`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import polars as pl

from healthrules.compiler import Plan
from healthrules.errors import Code, HealthRulesError, Issue
from healthrules.expressions import did_you_mean

__all__ = ["Hold", "HoldError", "check_hold", "expired", "report"]


class HoldError(HealthRulesError):
    """A snooze or dismissal that cannot apply: unknown account or action."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__([Issue(code=Code.VALIDATION.value, message=message, hint=hint)])


@dataclass(frozen=True)
class Hold:
    """One snooze or dismissal to record with a daily run (see :func:`healthrules.history.run`).

    ``action`` is an action id, or ``ROADMAP/ACTION`` when a pack has the id in several
    roadmaps. It applies from the run's date up to the day before ``until``.
    """

    account: Any
    action: str
    hold: str
    reason: str
    until: dt.date | str
    set_by: str | None = None
    roadmap: str | None = None


def check_hold(plan: Plan, accounts: pl.DataFrame, hold: Hold) -> Hold:
    """Check one hold against the plan and the accounts; return it with its roadmap and a
    typed account.

    Raises
    ------
    HoldError
        For an unknown account or action (with a did-you-mean), an action id that several
        roadmaps of a pack share (name it ``ROADMAP/ACTION``), or a kind other than
        ``snooze`` / ``dismiss``.
    """
    if hold.hold not in ("snooze", "dismiss"):
        raise HoldError(f"a hold is 'snooze' or 'dismiss', not {hold.hold!r}")
    flag = f"--{hold.hold}"
    roadmap, _, action_id = hold.action.rpartition("/")
    found = [(cr.id, a.id) for cr in plan.roadmaps for _, a in cr.roadmap.all_actions()
             if a.id == action_id and (not roadmap or cr.id == roadmap)]
    if not found:
        ids = sorted({a.id for cr in plan.roadmaps for _, a in cr.roadmap.all_actions()})
        hint = did_you_mean(action_id, ids)
        raise HoldError(f"{flag}: no action {hold.action!r} in the roadmap", hint)
    if len(found) > 1:
        raise HoldError(f"{flag}: action {action_id!r} is in several roadmaps of the pack "
                        f"({', '.join(r for r, _ in found)})",
                        f"name one: {found[0][0]}/{action_id}")
    key = plan.account_key
    keys = accounts[key]
    account: Any = hold.account
    if keys.dtype.is_integer() and isinstance(account, str):
        try:
            account = int(account)
        except ValueError:
            pass
    try:
        known = bool((keys == pl.Series([account], dtype=keys.dtype)[0]).any())
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        known = False
    if not known:
        raise HoldError(f"{flag}: no account {hold.account!r} in the accounts frame")
    return Hold(account=account, action=action_id, hold=hold.hold, reason=hold.reason,
                until=hold.until, set_by=hold.set_by, roadmap=found[0][0])


def report(holds: pl.DataFrame, as_of: dt.date, key: str) -> pl.DataFrame:
    """The holds in force on ``as_of`` (all of them, newest first), with ``days_left``.

    Returns
    -------
    polars.DataFrame
        ``id``, key, ``roadmap``, ``action_id``, ``hold``, ``reason``, ``set_by``,
        ``created_on``, ``until``, ``days_left``, ``status`` (``applied``, or
        ``superseded`` by a newer hold of the same action).
    """
    day = pl.lit(as_of, pl.Date)
    live = holds.filter((pl.col("created_on") <= day) & (day < pl.col("until"))
                        & (pl.col("removed_on").is_null() | (day < pl.col("removed_on"))))
    newest = pl.col("id") == pl.col("id").max().over(key, "roadmap", "action_id")
    return live.select(
        "id", key, "roadmap", "action_id", "hold", "reason", "set_by", "created_on", "until",
        (pl.col("until") - day).dt.total_days().alias("days_left"),
        pl.when(newest).then(pl.lit("applied")).otherwise(pl.lit("superseded")).alias("status"),
    ).sort(key, "roadmap", "action_id", "id")


def expired(holds: pl.DataFrame, previous: dt.date | None, day: dt.date) -> pl.DataFrame:
    """Holds that stopped applying after the previous run and on or before ``day``, with
    ``ended_on``."""
    lo = pl.lit(previous, pl.Date) if previous is not None else pl.lit(dt.date.min, pl.Date)
    ended = pl.min_horizontal("until", "removed_on")
    return holds.filter((ended > lo) & (ended <= pl.lit(day, pl.Date))).with_columns(
        ended.alias("ended_on")).sort("ended_on", "id")
