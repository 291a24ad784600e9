"""The benchmark workload: synthetic accounts and events, a ~30-indicator roadmap, and the
hand-written polars query that computes the same indicators (the baseline).

Generation is vectorised polars (hash-based pseudo-random columns), deterministic for a seed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl

AS_OF = dt.date(2026, 6, 30)
DAYS = 180
EVENTS = ["login", "session", "feature_x_used", "report_created", "export", "invite_sent",
          "support_ticket", "nps_response"]
EVENT_WEIGHTS = [30, 25, 12, 10, 6, 3, 2, 1]  # out of ~89


def _u(expr: pl.Expr, seed: int) -> pl.Expr:
    """A uniform [0, 1) float derived from hashing ``expr`` with ``seed``."""
    return (expr.hash(seed) % 1_000_003).cast(pl.Float64) / 1_000_003.0


def generate(n_events: int, n_accounts: int, seed: int = 11) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return (events, accounts) with ``n_events`` events over 180 days for ``n_accounts``."""
    i = pl.int_range(0, n_accounts, dtype=pl.Int64)
    accounts = pl.select(
        pl.format("acc{}", i).alias("account_id"),
        (pl.lit(AS_OF) - pl.duration(days=(_u(i, seed) * 720).cast(pl.Int64))).alias(
            "contract_start"),
        pl.when(_u(i, seed + 1) < 0.5).then(pl.lit("pro")).otherwise(pl.lit("basic")).alias(
            "plan"),
        (5 + (_u(i, seed + 2) * 60).cast(pl.Int64)).alias("seats"),
        (_u(i, seed + 3) * 100_000).alias("arr"),
    ).with_columns(
        (pl.col("contract_start") + pl.duration(days=365)).alias("renewal_date"),
    )
    j = pl.int_range(0, n_events, dtype=pl.Int64)
    # skewed activity: account index from a squared uniform
    acc = (_u(j, seed + 10).pow(1.6) * n_accounts).cast(pl.Int64).clip(0, n_accounts - 1)
    cum = []
    total = sum(EVENT_WEIGHTS)
    acc_w = 0
    for w in EVENT_WEIGHTS:
        acc_w += w
        cum.append(acc_w / total)
    r = _u(j, seed + 11)
    chain: Any = pl.when(r < cum[0]).then(pl.lit(EVENTS[0]))
    for name, c in zip(EVENTS[1:], cum[1:], strict=True):
        chain = chain.when(r < c).then(pl.lit(name))
    event = chain.otherwise(pl.lit(EVENTS[-1]))
    start = dt.datetime.combine(AS_OF - dt.timedelta(days=DAYS - 1), dt.time())
    seconds = (_u(j, seed + 12) * DAYS * 86_400).cast(pl.Int64)
    events = pl.select(
        pl.format("acc{}", acc).alias("account_id"),
        pl.format("u{}_{}", acc, (_u(j, seed + 13) * 8).cast(pl.Int64)).alias("user_id"),
        event.alias("event"),
        (pl.lit(start, dtype=pl.Datetime("us")) + pl.duration(seconds=seconds))
        .dt.replace_time_zone("UTC")
        .alias("timestamp"),
        pl.when(_u(j, seed + 14) < 0.03).then(None).otherwise(
            (_u(j, seed + 15) * 60).round(1)).alias("value"),
    )
    return events, accounts


def write(folder: Path, n_events: int, n_accounts: int) -> tuple[Path, Path]:
    """Generate and write events.parquet / accounts.parquet once (cached by size)."""
    folder.mkdir(parents=True, exist_ok=True)
    ev_path = folder / f"events_{n_events}_{n_accounts}.parquet"
    acc_path = folder / f"accounts_{n_accounts}.parquet"
    if not ev_path.exists() or not acc_path.exists():
        events, accounts = generate(n_events, n_accounts)
        tmp = ev_path.with_suffix(".tmp")
        events.write_parquet(tmp, row_group_size=1_000_000)
        tmp.replace(ev_path)
        tmp = acc_path.with_suffix(".tmp")
        accounts.write_parquet(tmp)
        tmp.replace(acc_path)
    return ev_path, acc_path


# (id, event filter or None, aggregate, window days, of, compare)
AGGREGATES: list[tuple[str, str | None, str, int, str | None, str]] = [
    ("logins_7d", "login", "count", 7, None, "none"),
    ("logins_30d", "login", "count", 30, None, "none"),
    ("logins_90d", "login", "count", 90, None, "none"),
    ("logins_trend_30d", "login", "count", 30, None, "delta"),
    ("sessions_30d", "session", "count", 30, None, "none"),
    ("session_minutes_30d", "session", "sum", 30, "value", "none"),
    ("session_minutes_avg_90d", "session", "mean", 90, "value", "none"),
    ("feature_x_30d", "feature_x_used", "count", 30, None, "none"),
    ("feature_x_90d", "feature_x_used", "count", 90, None, "none"),
    ("reports_30d", "report_created", "count", 30, None, "none"),
    ("exports_30d", "export", "count", 30, None, "none"),
    ("invites_90d", "invite_sent", "count", 90, None, "none"),
    ("tickets_30d", "support_ticket", "count", 30, None, "none"),
    ("tickets_90d", "support_ticket", "count", 90, None, "none"),
    ("nps_responses_180d", "nps_response", "count", 180, None, "none"),
    ("nps_avg_180d", "nps_response", "mean", 180, "value", "none"),
    ("nps_min_180d", "nps_response", "min", 180, "value", "none"),
    ("events_7d", None, "count", 7, None, "none"),
    ("events_30d", None, "count", 30, None, "none"),
    ("active_users_7d", None, "distinct", 7, None, "none"),
    ("active_users_30d", None, "distinct", 30, None, "none"),
    ("active_days_30d", None, "active_days", 30, None, "none"),
    ("days_since_login", "login", "days_since_last", 180, None, "none"),
    ("days_since_report", "report_created", "days_since_last", 180, None, "none"),
    ("max_session_30d", "session", "max", 30, "value", "none"),
]

DERIVED = [
    ("seat_utilisation", "active_users_30d / seats"),
    ("feature_x_rate", "feature_x_30d / events_30d"),
    ("login_change", "logins_trend_30d / max(logins_30d, 1)"),
    ("tickets_per_user", "tickets_30d / max(active_users_30d, 1)"),
    ("engagement", "0.5 * min(active_days_30d / 20, 1) + 0.5 * min(seat_utilisation, 1)"),
]

BANDS = {
    "logins_30d": ("higher_is_better", [10, 40]),
    "active_days_30d": ("higher_is_better", [5, 15]),
    "seat_utilisation": ("higher_is_better", [0.3, 0.7]),
    "feature_x_rate": ("higher_is_better", [0.05, 0.15]),
    "tickets_30d": ("lower_is_better", [2, 5]),
    "nps_avg_180d": ("higher_is_better", [7, 9]),
    "days_since_login": ("lower_is_better", [7, 21]),
    "engagement": ("higher_is_better", [0.3, 0.6]),
    "reports_30d": ("higher_is_better", [2, 8]),
    "login_change": ("higher_is_better", [-0.3, 0.0]),
}

FAMILY = {
    "tickets_30d": "relationship", "tickets_90d": "relationship", "nps_avg_180d": "relationship",
    "nps_responses_180d": "relationship", "nps_min_180d": "relationship",
    "tickets_per_user": "relationship", "reports_30d": "outcome", "exports_30d": "outcome",
    "engagement": "outcome",
}


def roadmap_dict() -> dict[str, Any]:
    """The benchmark roadmap: 30 indicators, 4 stages, 12 actions."""
    indicators: list[dict[str, Any]] = []

    def bands(ident: str) -> dict[str, Any] | None:
        if ident not in BANDS:
            return None
        direction, (lo, hi) = BANDS[ident]
        names = ["red", "yellow", "green"] if direction == "higher_is_better" else [
            "green", "yellow", "red"]
        return {"direction": direction, "levels": [
            {"name": names[0], "lt": lo}, {"name": names[1], "ge": lo, "lt": hi},
            {"name": names[2], "ge": hi}]}

    for ident, ev, agg, days, of, compare in AGGREGATES:
        ind: dict[str, Any] = {"id": ident, "family": FAMILY.get(ident, "process"),
                               "aggregate": agg, "window": f"{days}d"}
        if ev:
            ind["where"] = f"event == '{ev}'"
        if of:
            ind["of"] = of
        if compare != "none":
            ind["compare"] = compare
        if (b := bands(ident)) is not None:
            ind["bands"] = b
        indicators.append(ind)
    for ident, expr in DERIVED:
        ind = {"id": ident, "family": FAMILY.get(ident, "process"), "expr": expr}
        if (b := bands(ident)) is not None:
            ind["bands"] = b
        indicators.append(ind)

    def act(ident: str, kind: str, when: str, do: str) -> dict[str, Any]:
        return {"id": ident, "kind": kind, "when": when, "do": do, "owner": "csm",
                "channel": "high-touch" if kind == "challenge" else "low-touch"}

    return {
        "id": "bench", "goal": "Accounts reach steady weekly use",
        "data": {
            "events": {"values": {"value": "float"}, "timezone": "UTC"},
            "accounts": {"attributes": {"contract_start": "date", "renewal_date": "date",
                                        "plan": "str", "seats": "int", "arr": "float"}},
        },
        "indicators": indicators,
        "stages": [
            {"id": "onboarding", "entry": "days_since(contract_start) < 90",
             "achievement": {"text": "active", "when": "active_days_30d >= 10"},
             "actions": [
                 act("low_first_logins", "challenge", "logins_30d < 10", "{logins_30d} logins"),
                 act("no_reports", "challenge", "reports_30d == 0", "no reports"),
                 act("fast_start", "positive", "engagement >= 0.6", "fast: {engagement:.0%}"),
             ]},
            {"id": "renewal", "entry": "days_between(as_of, renewal_date) <= 90",
             "actions": [
                 act("renewal_risk", "challenge", "score < 40", "score {score:.0f}"),
                 act("renewal_ready", "positive", "score >= 70 and nps_avg_180d >= 8", "ok"),
                 act("nps_missing", "challenge", "nps_responses_180d == 0", "resend NPS"),
             ]},
            {"id": "operation", "entry": "days_since(contract_start) >= 90",
             "actions": [
                 act("usage_drop", "challenge", "login_change < -0.3", "{login_change:.0%}"),
                 act("feature_x_high", "positive", "feature_x_rate >= 0.15",
                     "{feature_x_rate:.0%}"),
                 act("seats_full", "positive", "seat_utilisation >= 0.9 and plan == 'basic'",
                     "upsell"),
                 act("tickets_high", "challenge", "tickets_30d >= 5", "{tickets_30d} tickets"),
             ]},
            {"id": "dormant"},
        ],
        "actions": [
            act("inactive", "challenge", "days_since_login > 21 or days_since_login is None",
                "last login {days_since_login} days ago"),
            act("champion", "positive", "score >= 90", "champion {score:.0f}"),
        ],
        "score": {
            "weights": {"families": {"process": 3, "relationship": 2, "outcome": 1}},
            "missing": "skip",
            "bands": {"levels": [{"name": "red", "lt": 40}, {"name": "yellow", "ge": 40,
                                                              "lt": 70},
                                 {"name": "green", "ge": 70}]},
            "stages": {"onboarding": {"weights": {"indicators": {
                "logins_30d": 2, "active_days_30d": 2, "seat_utilisation": 1}}}},
        },
    }


def handwritten(events: pl.LazyFrame, accounts: pl.LazyFrame) -> pl.DataFrame:
    """The same aggregate and derived indicators, written by hand as one polars query."""
    end = dt.datetime.combine(AS_OF + dt.timedelta(days=1), dt.time())
    ts = pl.col("timestamp")

    def lit(d: dt.datetime) -> pl.Expr:
        return pl.lit(d, dtype=pl.Datetime("us", "UTC"))

    def since(days: int) -> pl.Expr:
        return ts >= lit(end - dt.timedelta(days=days))

    aggs: list[pl.Expr] = []
    for ident, ev, agg, days, of, compare in AGGREGATES:
        cond = since(days)
        if ev:
            cond = cond & (pl.col("event") == ev)
        if agg == "count":
            aggs.append(cond.sum().cast(pl.Int64).alias(ident))
            if compare == "delta":
                prev = (ts >= lit(end - dt.timedelta(days=2 * days))) & (
                    ts < lit(end - dt.timedelta(days=days)))
                if ev:
                    prev = prev & (pl.col("event") == ev)
                aggs[-1] = (cond.sum().cast(pl.Int64) - prev.sum().cast(pl.Int64)).alias(ident)
        elif agg == "distinct":
            aggs.append(pl.col("user_id").filter(cond).n_unique().cast(pl.Int64).alias(ident))
        elif agg == "active_days":
            aggs.append(pl.col("day").filter(cond).n_unique().cast(pl.Int64).alias(ident))
        elif agg == "days_since_last":
            aggs.append(pl.when(cond).then(ts).max().alias(ident))
        else:
            v = pl.when(cond).then(pl.col(of))
            aggs.append(getattr(v, agg)().alias(ident))
    grouped = (
        events.select("account_id", "user_id", "event", "timestamp", "value")
        .filter((ts < lit(end)) & (ts >= lit(end - dt.timedelta(days=180))))
        .with_columns(ts.dt.date().alias("day"))
        .group_by("account_id")
        .agg(aggs)
    )
    counts = [a[0] for a in AGGREGATES if a[2] in ("count", "distinct", "active_days", "sum")]
    out = accounts.join(grouped, on="account_id", how="left").with_columns(
        [pl.col(c).fill_null(0) for c in counts]
    ).with_columns(
        [(lit(end) - pl.col(c)).dt.total_days().alias(c)
         for c in ("days_since_login", "days_since_report")]
    )
    sd = pl.col("seats")
    out = out.with_columns(
        pl.when(sd != 0).then(pl.col("active_users_30d") / sd).alias("seat_utilisation"),
        pl.when(pl.col("events_30d") != 0).then(
            pl.col("feature_x_30d") / pl.col("events_30d")).alias("feature_x_rate"),
        (pl.col("logins_trend_30d") / pl.max_horizontal("logins_30d", 1)).alias("login_change"),
        (pl.col("tickets_30d") / pl.max_horizontal("active_users_30d", 1)).alias(
            "tickets_per_user"),
    ).with_columns(
        (0.5 * pl.min_horizontal(pl.col("active_days_30d") / 20, 1)
         + 0.5 * pl.min_horizontal(pl.col("seat_utilisation"), 1)).alias("engagement"),
    )
    return out.collect()
