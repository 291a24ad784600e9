"""One account's events at given UTC instants, read in a zone (the zone-rule tests' frames)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

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


def cli_evaluate_args(tmp_path: Path, zone: str, window: str,
                      events: pl.DataFrame) -> list[str]:
    """The arguments of ``healthrules evaluate`` (``--as-of`` left to the caller) over a
    roadmap of one count over ``window`` in ``zone``, ``events`` written as Parquet and
    account ``a``, all in ``tmp_path``."""
    (tmp_path / "r.yaml").write_text(
        f"id: zoned\ngoal: g\ndata:\n  events:\n    values: {{}}\n    timezone: {zone}\n"
        "  accounts:\n    attributes: {}\nindicators:\n"
        f"  - {{id: n, family: process, aggregate: count, window: {window}}}\n"
        "stages:\n  - id: s\n")
    events.write_parquet(tmp_path / "events.parquet")
    (tmp_path / "accounts.csv").write_text("account_id\na\n")
    return ["evaluate", str(tmp_path / "r.yaml"), "--events", str(tmp_path / "events.parquet"),
            "--accounts", str(tmp_path / "accounts.csv"), "--out", str(tmp_path / "o")]
