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
    return _derived(accounts.join(_usage_grouped(events), on="account_id", how="left")
                    ).collect()


def _usage_grouped(events: pl.LazyFrame) -> pl.LazyFrame:
    """The usage aggregates per account, one group_by (the hand-written baseline)."""
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
    return (
        events.select("account_id", "user_id", "event", "timestamp", "value")
        .filter((ts < lit(end)) & (ts >= lit(end - dt.timedelta(days=180))))
        .with_columns(ts.dt.date().alias("day"))
        .group_by("account_id")
        .agg(aggs)
    )


def _derived(out: pl.LazyFrame) -> pl.LazyFrame:
    """Empty windows, days since and the derived indicators of the usage aggregates."""
    end = dt.datetime.combine(AS_OF + dt.timedelta(days=1), dt.time())

    def lit(d: dt.datetime) -> pl.Expr:
        return pl.lit(d, dtype=pl.Datetime("us", "UTC"))

    counts = [a[0] for a in AGGREGATES if a[2] in ("count", "distinct", "active_days", "sum")]
    out = out.with_columns(
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
    return out


# --------------------------------------------------------------------------- three sources
#
# The same usage events, plus a help desk's tickets and a survey tool's NPS answers, each
# with its own columns, time unit and timestamp type, read as three event sources.

TICKETS_PER_EVENT = 20   # one ticket row per 20 usage events
SURVEYS_PER_EVENT = 100  # one survey answer per 100 usage events

# (id, filter, aggregate, window days, of)
TICKET_AGGREGATES: list[tuple[str, str | None, str, int, str | None]] = [
    ("tickets_opened_30d", "opened", "count", 30, None),
    ("tickets_opened_90d", "opened", "count", 90, None),
    ("urgent_tickets_30d", "urgent", "count", 30, None),
    ("support_minutes_90d", "resolved", "sum", 90, "minutes"),
    ("worst_priority_90d", None, "min", 90, "priority"),
    ("days_since_ticket", "opened", "days_since_last", 180, None),
]
SURVEY_AGGREGATES: list[tuple[str, str | None, str, int, str | None]] = [
    ("survey_answers_180d", None, "count", 180, None),
    ("survey_nps_180d", None, "mean", 180, "nps"),
    ("survey_nps_min_180d", None, "min", 180, "nps"),
    ("survey_respondents_180d", None, "distinct", 180, None),
    ("detractors_90d", "detractor", "count", 90, None),
]
_TICKET_WHERE = {"opened": "status == 'opened'", "resolved": "status == 'resolved'",
                 "urgent": "status == 'opened' and priority <= 2"}
_SURVEY_WHERE = {"detractor": "nps <= 6"}


def generate_sources(n_events: int, n_accounts: int, seed: int = 11,
                     ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(tickets, surveys) for the accounts of :func:`generate`."""
    start = dt.datetime.combine(AS_OF - dt.timedelta(days=DAYS - 1), dt.time())
    n_t = max(1, n_events // TICKETS_PER_EVENT)
    j = pl.int_range(0, n_t, dtype=pl.Int64)
    acc = (_u(j, seed + 20).pow(1.6) * n_accounts).cast(pl.Int64).clip(0, n_accounts - 1)
    ms = (_u(j, seed + 21) * DAYS * 86_400_000).cast(pl.Int64)
    tickets = pl.select(
        pl.format("acc{}", acc).alias("customer"),
        pl.when(_u(j, seed + 22) < 0.55).then(pl.lit("opened")).otherwise(
            pl.lit("resolved")).alias("status"),
        (pl.lit(start, dtype=pl.Datetime("ms")) + pl.duration(milliseconds=ms))
        .dt.replace_time_zone("UTC").alias("at"),
        (1 + (_u(j, seed + 23) * 4).cast(pl.Int64)).alias("priority"),
        (_u(j, seed + 24) * 240).round(1).alias("minutes"),
    )
    n_s = max(1, n_events // SURVEYS_PER_EVENT)
    k = pl.int_range(0, n_s, dtype=pl.Int64)
    acc = (_u(k, seed + 30).pow(1.6) * n_accounts).cast(pl.Int64).clip(0, n_accounts - 1)
    surveys = pl.select(
        pl.format("acc{}", acc).alias("account_id"),
        pl.format("u{}_{}", acc, (_u(k, seed + 31) * 8).cast(pl.Int64)).alias("respondent"),
        (pl.lit(AS_OF - dt.timedelta(days=DAYS - 1))
         + pl.duration(days=(_u(k, seed + 32) * DAYS).cast(pl.Int64))).alias("answered_on"),
        (_u(k, seed + 33) * 11).cast(pl.Int64).alias("nps"),
    )
    return tickets, surveys


def write_sources(folder: Path, n_events: int, n_accounts: int) -> tuple[Path, Path]:
    """Write tickets / surveys Parquet files once (cached by size)."""
    folder.mkdir(parents=True, exist_ok=True)
    t_path = folder / f"tickets_{n_events}_{n_accounts}.parquet"
    s_path = folder / f"surveys_{n_events}_{n_accounts}.parquet"
    if not t_path.exists() or not s_path.exists():
        tickets, surveys = generate_sources(n_events, n_accounts)
        for frame, path in ((tickets, t_path), (surveys, s_path)):
            tmp = path.with_suffix(".tmp")
            frame.write_parquet(tmp, row_group_size=1_000_000)
            tmp.replace(path)
    return t_path, s_path


def roadmap_sources_dict() -> dict[str, Any]:
    """The benchmark roadmap over three event sources: the usage indicators of
    :func:`roadmap_dict` plus help-desk and survey indicators."""
    base = roadmap_dict()
    base["id"] = "bench_sources"
    base["data"]["events"] = {
        "usage": base["data"]["events"],
        "tickets": {"account": "customer", "user": None, "event": "status", "timestamp": "at",
                    "timezone": "UTC", "values": {"priority": "int", "minutes": "float"}},
        "surveys": {"event": None, "user": "respondent", "timestamp": "answered_on",
                    "timezone": "UTC", "values": {"nps": "int"}},
    }
    extra: list[dict[str, Any]] = []
    for source, table, where in (("tickets", TICKET_AGGREGATES, _TICKET_WHERE),
                                 ("surveys", SURVEY_AGGREGATES, _SURVEY_WHERE)):
        for ident, flt, agg, days, of in table:
            ind: dict[str, Any] = {"id": ident, "family": "relationship", "source": source,
                                   "aggregate": agg, "window": f"{days}d"}
            if flt is not None:
                ind["where"] = where[flt]
            if of is not None:
                ind["of"] = of
            extra.append(ind)
    base["indicators"] = base["indicators"] + extra
    return base


def handwritten_sources(events: pl.LazyFrame, tickets: pl.LazyFrame, surveys: pl.LazyFrame,
                        accounts: pl.LazyFrame) -> pl.DataFrame:
    """The same indicators over the three sources, by hand: one group_by per source on its
    own read range, joined to the accounts, one collect."""
    end = dt.datetime.combine(AS_OF + dt.timedelta(days=1), dt.time())

    def t_lit(d: dt.datetime) -> pl.Expr:
        return pl.lit(d, dtype=pl.Datetime("ms", "UTC"))

    at = pl.col("at")
    status, prio = pl.col("status"), pl.col("priority")
    t_conds = {"opened": status == "opened", "resolved": status == "resolved",
               "urgent": (status == "opened") & (prio <= 2)}
    t_aggs: list[pl.Expr] = []
    for ident, flt, agg, days, of in TICKET_AGGREGATES:
        cond = at >= t_lit(end - dt.timedelta(days=days))
        if flt is not None:
            cond = cond & t_conds[flt]
        if agg == "count":
            t_aggs.append(cond.sum().cast(pl.Int64).alias(ident))
        elif agg == "days_since_last":
            t_aggs.append(pl.when(cond).then(at).max().alias(ident))
        else:
            t_aggs.append(getattr(pl.when(cond).then(pl.col(of)), agg)().alias(ident))
    t_grouped = (
        tickets.select("customer", "status", "at", "priority", "minutes")
        .filter((at < t_lit(end)) & (at >= t_lit(end - dt.timedelta(days=180))))
        .group_by("customer").agg(t_aggs).rename({"customer": "account_id"})
    )
    day = pl.col("answered_on")
    first = AS_OF + dt.timedelta(days=1)
    s_aggs: list[pl.Expr] = []
    for ident, flt, agg, days, of in SURVEY_AGGREGATES:
        cond = day >= pl.lit(first - dt.timedelta(days=days))
        if flt is not None:
            cond = cond & (pl.col("nps") <= 6)
        if agg == "count":
            s_aggs.append(cond.sum().cast(pl.Int64).alias(ident))
        elif agg == "distinct":
            s_aggs.append(pl.col("respondent").filter(cond).n_unique().cast(pl.Int64)
                          .alias(ident))
        else:
            s_aggs.append(getattr(pl.when(cond).then(pl.col(of)), agg)().alias(ident))
    s_grouped = (
        surveys.select("account_id", "respondent", "answered_on", "nps")
        .filter((day < pl.lit(first)) & (day >= pl.lit(first - dt.timedelta(days=180))))
        .group_by("account_id").agg(s_aggs)
    )
    out = _derived(accounts.join(_usage_grouped(events), on="account_id", how="left"))
    out = out.join(t_grouped, on="account_id", how="left").join(
        s_grouped, on="account_id", how="left")
    counts = [a[0] for a in TICKET_AGGREGATES if a[2] in ("count", "sum")] + [
        a[0] for a in SURVEY_AGGREGATES if a[2] in ("count", "distinct")]
    return out.with_columns(
        [pl.col(c).fill_null(0) for c in counts]
    ).with_columns(
        (t_lit(end) - pl.col("days_since_ticket")).dt.total_days().alias("days_since_ticket"),
    ).collect()
