"""Frames and checks shared by the tests that pin one form of the engine against another:
events with the values that break float code, and each account evaluated alone against
the batch."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal

import healthrules as hr

AMOUNTS = [0.1, float("nan"), float("inf"), -0.0, None, 2.5e-9, -9.2e9, 9.2e9, 5e-324,
           -float("inf"), 1 / 3, 4.6e9 - 0.25, 12345678.123456789, 0.0]
"""NaN, infinities, -0.0, a null, the smallest subnormal, totals near 2**53 and 1e10."""


def adversarial_events(zone: str | None, *, hours: int, varied_users: bool,
                       ) -> pl.DataFrame:
    """Events of accounts ``a``, ``b``, ``c``, a null key and ``unknown``, each with every
    amount of :data:`AMOUNTS` (rotated per account), ``hours`` apart back from
    2026-03-29 03:00 (the change to summer time in Europe), with null events, timestamps
    and seats among them; users ``u`` or (``varied_users``) three users and nulls;
    timestamps in ``zone`` when given (the skipped hour null, the repeated one earliest)."""
    rows = []
    for n, acc in enumerate(["a", "b", "c", None, "unknown"]):
        for i, v in enumerate(AMOUNTS[n:] + AMOUNTS[:n]):
            ts = dt.datetime(2026, 3, 29, 3) - dt.timedelta(hours=hours * i + n)
            user = (None if i % 6 == 2 else f"u{(i + n) % 3}") if varied_users else "u"
            rows.append({"account_id": acc, "user_id": user,
                         "event": "buy" if (i + n) % 3 else None if i == 4 else "view",
                         "timestamp": None if i == 9 and n == 2 else ts, "amount": v,
                         "seats": None if i % 5 == 1 else i - n})
    frame = pl.DataFrame(rows, schema={"account_id": pl.String, "user_id": pl.String,
                                       "event": pl.String, "timestamp": pl.Datetime("us"),
                                       "amount": pl.Float64, "seats": pl.Int64})
    if zone is not None:
        frame = frame.with_columns(pl.col("timestamp").dt.replace_time_zone(
            zone, non_existent="null", ambiguous="earliest"))
    return frame


def some_rows(events: pl.DataFrame, rows: str) -> pl.DataFrame:
    """``events`` as a case of ``rows``: ``"all"``, ``"one account"`` (``b``'s) or
    ``"none"`` (no rows, the same columns)."""
    if rows == "one account":
        return events.filter(pl.col("account_id") == "b")
    return events.clear() if rows == "none" else events


def assert_each_alone_equals_batch(plan: Any, events: pl.DataFrame,
                                   accounts: pl.DataFrame, as_of: Any, *,
                                   conditions: bool = False) -> None:
    """Each account of ``accounts`` evaluated alone (its events only) gives its rows of
    the batch's indicators, stages, scores and actions, bit for bit; with ``conditions``
    also the condition counts (less those that count rows)."""
    batch = hr.evaluate(plan, events, accounts, as_of)
    for account in accounts["account_id"].to_list():
        alone = hr.evaluate(plan, events.filter(pl.col("account_id") == account),
                            accounts.filter(pl.col("account_id") == account), as_of)
        for name in ("indicators", "stages", "scores", "actions"):
            assert_frame_equal(getattr(alone, name),
                               getattr(batch, name).filter(pl.col("account_id") == account),
                               check_exact=True)
        if conditions:
            counted = ("considered", "fired", "unknown")
            assert_frame_equal(alone.conditions.drop(*counted),
                               batch.conditions.drop(*counted))
