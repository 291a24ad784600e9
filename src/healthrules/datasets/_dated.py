"""Dated account rows for the sample: how each account's attributes changed over time.

:func:`dated_accounts` turns the accounts frame of a sample (today's values) into type-2
history, one row per account and version with ``valid_from`` / ``valid_to``: an account
exists from its contract start (customers) or trial start (prospects); past renewals moved
its ``renewal_date`` on; some accounts bought seats or upgraded their plan (``arr``
follows); customers have a CSM (``csm``) and some were reassigned; and a few customers of
the churn personas churned at a renewal in the last weeks (their last row ends then).

The changes are drawn with their own :class:`random.Random`, so the events and the
current attributes of the sample do not depend on them.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any, Final

import polars as pl

from healthrules.datasets._personas import _PRICE_PER_SEAT

__all__ = ["CSMS", "dated_accounts"]

CSMS: Final = ("Ana Ito", "Ben Okafor", "Chloe Martin", "Dev Patel", "Eva Novak", "Femi Adeyemi")
"""The customer success managers the dated sample assigns accounts to."""

_LOWER_PLAN: Final = {"pro": "basic", "enterprise": "pro"}


def _between(rng: random.Random, lo: date, hi: date) -> date | None:
    """A day drawn from ``[lo, hi]``, or None when the range is empty."""
    span = (hi - lo).days
    return None if span < 0 else lo + timedelta(days=rng.randint(0, span))


def _account_rows(cur: dict[str, Any], persona: str, rng: random.Random, as_of: date,
                  churn_personas: tuple[str, ...]) -> tuple[list[dict[str, Any]], date | None]:
    """The dated rows of one account (oldest first) and its churn date (None: still here)."""
    customer = cur["lifecycle"] == "customer"
    start: date = cur["contract_start"] if customer else cur["trial_start"]
    # the draws happen whatever the account, so one account's rows never shift another's
    churn_draw, seat_draw, plan_draw, csm_draw = (rng.random() for _ in range(4))
    churn_day = as_of - timedelta(days=rng.randint(14, 45))
    seat_day = _between(rng, start + timedelta(days=30), as_of - timedelta(days=7))
    fewer = rng.randint(1, 3)
    csm = rng.choice(CSMS)
    other_csm = rng.choice([c for c in CSMS if c != csm])
    csm_day = _between(rng, start + timedelta(days=14), as_of - timedelta(days=3))
    cur = {**cur, "csm": csm if customer else None}
    changes: list[tuple[date, dict[str, Any]]] = []  # (day, values before that day)
    churned: date | None = None
    if customer and persona in churn_personas and churn_draw < 0.3 and \
            churn_day > start + timedelta(days=60):
        churned = churn_day  # the contract came up for renewal then, and was not renewed
        cur["renewal_date"] = churn_day
    if customer:
        renewal: date = cur["renewal_date"]
        k = 1
        while (past := renewal - timedelta(days=365 * k)) > start:
            if past <= as_of:
                changes.append((past, {"renewal_date": past}))
            k += 1
        if seat_day is not None and seat_draw < 0.4 and cur["seats"] > 1:
            old = max(1, cur["seats"] - fewer)
            changes.append((seat_day, {"seats": old, "arr": round(
                cur["arr"] * old / cur["seats"], -2)}))
        renewals = [d for d, v in changes if "renewal_date" in v]
        if cur["plan"] in _LOWER_PLAN and plan_draw < 0.25 and renewals:
            lower = _LOWER_PLAN[cur["plan"]]
            ratio = _PRICE_PER_SEAT[lower] / _PRICE_PER_SEAT[cur["plan"]]
            changes.append((max(renewals), {"plan": lower, "arr": round(cur["arr"] * ratio,
                                                                          -2)}))
        if csm_day is not None and csm_draw < 0.3:
            changes.append((csm_day, {"csm": other_csm}))
    last = churned if churned is not None else as_of + timedelta(days=1)
    bounds = sorted({start, *(d for d, _ in changes if start < d < last)})
    rows: list[dict[str, Any]] = []
    for i, lo in enumerate(bounds):
        values = dict(cur)
        # a value before a change holds on every day before it: the earliest later change wins
        for day, before in sorted(changes, key=lambda c: c[0], reverse=True):
            if day > lo:
                values.update(before)
        hi = bounds[i + 1] if i + 1 < len(bounds) else churned
        rows.append({**values, "valid_from": lo, "valid_to": hi})
    return rows, churned


def dated_accounts(accounts: pl.DataFrame, personas: pl.DataFrame, *, seed: int, as_of: date,
                   churn_personas: tuple[str, ...]) -> tuple[pl.DataFrame, dict[str, date]]:
    """The dated rows of every account of a sample, and the churn date of each churned one.

    Returns
    -------
    (polars.DataFrame, dict)
        The accounts columns, then ``csm`` (String), ``valid_from`` and ``valid_to`` (Date,
        exclusive, null while the row holds), sorted by ``account_id`` and ``valid_from``;
        and ``{account_id: churn date}``.
    """
    rng = random.Random(f"{seed}/dated-accounts")
    by_id = dict(personas.select("account_id", "persona").iter_rows())
    rows: list[dict[str, Any]] = []
    churned: dict[str, date] = {}
    for cur in accounts.sort("account_id").to_dicts():
        got, churn = _account_rows(cur, by_id[cur["account_id"]], rng, as_of, churn_personas)
        rows += got
        if churn is not None:
            churned[cur["account_id"]] = churn
    schema = {**dict(accounts.schema), "csm": pl.String(), "valid_from": pl.Date(),
              "valid_to": pl.Date()}
    frame = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(
        schema=schema)
    return frame.sort("account_id", "valid_from"), churned
