"""One account's events at given UTC instants, read in a zone (the zone-rule tests' frames)."""

from __future__ import annotations

import datetime as dt

import polars as pl


def utc_events(zone: str, stamps: list[dt.datetime]) -> pl.DataFrame:
    """Events of account ``a`` at ``stamps`` (UTC instants), converted to ``zone``: the
    instants stay those given, whatever offsets polars' rules give the zone then."""
    return pl.DataFrame(
        {"account_id": ["a"] * len(stamps), "user_id": ["u"] * len(stamps),
         "event": ["x"] * len(stamps), "timestamp": stamps},
        schema={"account_id": pl.String, "user_id": pl.String, "event": pl.String,
                "timestamp": pl.Datetime("us", "UTC")},
    ).with_columns(pl.col("timestamp").dt.convert_time_zone(zone))
