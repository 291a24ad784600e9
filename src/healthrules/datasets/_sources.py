"""The support-desk and survey tables of a sample, as other systems would export them.

A CS team's signals live in several systems; these two tables are how a help desk and a
survey tool would hand over what the product-usage events already record, with their own
column names, types and keys, so that a roadmap can read them as separate event sources
(``data.events: {usage: ..., tickets: ..., surveys: ...}``):

- ``tickets``: one row per ticket event of the help desk (``opened``, ``resolved``), with
  the ticket's id, priority and handling minutes, timestamps in milliseconds (UTC);
- ``surveys``: one row per NPS answer, dated by day (``Date``), with the respondent.

Both are derived from the usage events of the sample (``support_ticket``,
``ticket_resolved``, ``nps_response``) with vectorised expressions and counter-based random
numbers, so the same sample always gives the same tables.
"""

from __future__ import annotations

import polars as pl

from healthrules.datasets._random import draw, key, uniform
from healthrules.query_flags import OPTIMISED

__all__ = ["surveys_frame", "tickets_frame"]

_S_TICKET_FIELDS = 40
"""The random stream of the tickets' priority and handling time (apart from the events')."""


def _account_number(account: pl.Expr) -> pl.Expr:
    """``A000123`` -> 123."""
    return account.str.slice(1).cast(pl.Int64)


def tickets_frame(events: pl.DataFrame, seed: int) -> pl.DataFrame:
    """The help desk's ticket events of a sample's accounts.

    Columns: ``account_id`` (String), ``ticket_id`` (String, ``<account>-T0001``...),
    ``status`` (``opened`` or ``resolved``), ``at`` (``Datetime("ms", "UTC")``),
    ``priority`` (Int64, 1 = urgent .. 4 = low; the same on both rows of a ticket) and
    ``handling_minutes`` (Float64, agent time; null on ``opened``). A ``resolved`` row
    belongs to the latest ticket of its account opened before it. Sorted by ``account_id``,
    then ``at``, then ``status``.
    """
    opened = (
        events.lazy()
        .filter(pl.col("event") == "support_ticket")
        .select("account_id", "timestamp")
        .sort("account_id", "timestamp")
        .with_columns(n=pl.int_range(1, pl.len() + 1).over("account_id"))
        .with_columns(
            ticket_id=pl.col("account_id") + "-T" + pl.col("n").cast(pl.String).str.zfill(4),
            h=key(seed, _account_number(pl.col("account_id")), pl.lit(0, pl.Int64),
                  _S_TICKET_FIELDS, pl.col("n")),
        )
        .with_columns(
            priority=(1 + (uniform(pl.col("h"), 0) * 4).floor()).cast(pl.Int64),
            minutes=draw(pl.col("h"), 1, 5.0, 240.0).round(1),
        )
    )
    resolved = (
        events.lazy()
        .filter(pl.col("event") == "ticket_resolved")
        .select("account_id", "timestamp")
        .sort("timestamp")
        .join_asof(opened.sort("timestamp").select("account_id", "timestamp", "ticket_id",
                                                   "priority", "minutes"),
                   on="timestamp", by="account_id", strategy="backward",
                   check_sortedness=False)
        .filter(pl.col("ticket_id").is_not_null())
        # a ticket is resolved once: a second resolution of the same ticket is dropped
        .sort("account_id", "timestamp")
        .unique(subset="ticket_id", keep="first", maintain_order=True)
    )
    rows = pl.concat([
        opened.select("account_id", "ticket_id", pl.lit("opened").alias("status"),
                      "timestamp", "priority",
                      pl.lit(None, pl.Float64).alias("handling_minutes")),
        resolved.select("account_id", "ticket_id", pl.lit("resolved").alias("status"),
                        "timestamp", "priority", pl.col("minutes").alias("handling_minutes")),
    ])
    return (
        rows.with_columns(pl.col("timestamp").dt.cast_time_unit("ms").alias("at"))
        .select("account_id", "ticket_id", "status", "at", "priority", "handling_minutes")
        .sort("account_id", "at", "status")
        .collect(optimizations=OPTIMISED)
    )


def surveys_frame(events: pl.DataFrame) -> pl.DataFrame:
    """The survey tool's NPS answers of a sample's accounts.

    Columns: ``account_id`` (String), ``respondent`` (String, the answering user),
    ``answered_on`` (``Date``, the UTC day of the answer) and ``nps`` (Int64, 0-10). Sorted
    by ``account_id``, then ``answered_on``.
    """
    return (
        events.lazy()
        .filter((pl.col("event") == "nps_response") & pl.col("value").is_not_null())
        .select(
            "account_id",
            pl.col("user_id").alias("respondent"),
            pl.col("timestamp").dt.date().alias("answered_on"),
            pl.col("value").round(0).cast(pl.Int64).alias("nps"),
        )
        .sort("account_id", "answered_on", "respondent")
        .collect(optimizations=OPTIMISED)
    )
