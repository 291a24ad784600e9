"""Expand per-account parameters into the account, persona and usage-event frames with polars.

Nothing here loops over accounts or events. Each kind of event is described by a *spec* frame
with one row per (account, user, event kind): how many events (``n``) fall in which range of
days (``[lo, hi)``). :func:`_expand` repeats each spec row ``n`` times, places the ``k``-th event
in the ``k``-th of ``n`` equal slices of the range (so events of one user never share a day
when there is room), gives it a time of day in office hours, and thins weekends. Follow-up
events (a session after a login, a resolution after a ticket, an answer after an NPS survey)
are derived from the rows they follow. Every random number comes from
:mod:`healthrules.datasets._random`, keyed by the row's coordinates, so the result depends only
on the seed and the parameters.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import polars as pl

from healthrules.datasets._random import draw, key, mix, uniform
from healthrules.query_flags import OPTIMISED

__all__ = ["EVENT_NAMES", "accounts_frame", "events_frame", "personas_frame"]

EVENT_NAMES: Final = (
    "login",
    "session",
    "feature_x_used",
    "report_created",
    "export",
    "invite_sent",
    "license_activated",
    "onboarding_step_completed",
    "training_completed",
    "support_ticket",
    "ticket_resolved",
    "meeting_held",
    "webinar_attended",
    "feature_feedback",
    "nps_sent",
    "nps_response",
    "roi_goal_reached",
    "plan_limit_reached",
    "trial_started",
    "purchase_intent",
)
"""Every event name the sample data uses."""

_CODE = {name: i for i, name in enumerate(EVENT_NAMES)}

_WEEKEND_KEEP: Final = 0.2
"""Chance that a weekend event of a person is kept (the rest are dropped or moved)."""

_KEEP_RATE: Final = (5 + 2 * _WEEKEND_KEEP) / 7
"""Share of evenly spread events that survive weekend thinning."""

_DM_USER: Final = -2
"""User index of the customer's decision maker (``<account>-dm``), who is not a product user."""

_US_PER_DAY: Final = 86_400_000_000
_US_PER_S: Final = 1_000_000

# random streams: one per kind of draw, so no two draws share coordinates (max 63)
_S_USER, _S_LOGIN, _S_LOGIN_AFTER_DROP, _S_ACTIVATION, _S_INVITE, _S_STEP = 1, 2, 3, 4, 5, 6
_S_TRAINING, _S_TICKET, _S_MEETING, _S_WEBINAR, _S_FEEDBACK = 7, 8, 9, 10, 11
_S_NPS_RECENT, _S_NPS_EARLIER, _S_ROI, _S_LIMIT, _S_TRIAL, _S_INTENT = 12, 13, 14, 15, 16, 17

_ACCOUNT_COLUMNS: Final = (
    "account_id",
    "name",
    "plan",
    "seats",
    "contract_start",
    "renewal_date",
    "arr",
    "goal",
    "key_user",
    "lifecycle",
    "trial_start",
)


_STRING_PARAMS: Final = frozenset({"persona", "goal", "lifecycle", "plan"})
_FLOAT_PARAMS: Final = frozenset(
    {
        "arr", "drop_factor", "fx_share", "key_rate", "minutes", "nps_hi", "nps_lo",
        "p_export", "p_nps_answer", "p_report", "p_session", "training_share", "user_rate",
    }
)
_DATE_PARAMS: Final = frozenset({"contract_start", "renewal_date", "trial_start"})


def _param_dtype(name: str) -> pl.DataType:
    if name in _STRING_PARAMS:
        return pl.String()
    if name in _FLOAT_PARAMS:
        return pl.Float64()
    if name in _DATE_PARAMS:
        return pl.Date()
    if name == "onboarding":
        return pl.Boolean()
    return pl.Int64()


def _params_frame(params: list[dict[str, Any]], ids: list[str]) -> pl.DataFrame:
    """One row per account with every generator parameter, keyed by ``aid`` (0-based)."""
    columns = list(params[0])
    frame = pl.DataFrame(
        {c: [p[c] for p in params] for c in columns},
        schema={c: _param_dtype(c) for c in columns},
        strict=False,
    )
    return frame.with_columns(
        pl.Series("account_id", ids, dtype=pl.String),
        pl.int_range(0, frame.height, dtype=pl.Int64).alias("aid"),
    )


def accounts_frame(
    params: list[dict[str, Any]], ids: list[str], names: list[str]
) -> pl.DataFrame:
    """The accounts frame (one row per account, in ``account_id`` order).

    Parameters
    ----------
    params
        Per-account parameters from :func:`healthrules.datasets._personas.account_parameters`.
    ids, names
        Account ids and company names, aligned with ``params``.

    Returns
    -------
    polars.DataFrame
        Columns ``account_id``, ``name``, ``plan``, ``seats`` (Int64), ``contract_start``,
        ``renewal_date`` (Date), ``arr`` (Float64), ``goal``, ``key_user``, ``lifecycle``,
        ``trial_start`` (Date).
    """
    schema = {
        "account_id": pl.String,
        "name": pl.String,
        "plan": pl.String,
        "seats": pl.Int64,
        "contract_start": pl.Date,
        "renewal_date": pl.Date,
        "arr": pl.Float64,
        "goal": pl.String,
        "key_user": pl.String,
        "lifecycle": pl.String,
        "trial_start": pl.Date,
    }
    data: dict[str, list[Any]] = {
        "account_id": ids,
        "name": names,
        "key_user": [f"{i}-u00" for i in ids],
    }
    for c in _ACCOUNT_COLUMNS:
        if c not in data:
            data[c] = [p[c] for p in params]
    return pl.DataFrame(data, schema=schema).select(_ACCOUNT_COLUMNS)


def personas_frame(params: list[dict[str, Any]], ids: list[str]) -> pl.DataFrame:
    """The persona of each account: columns ``account_id`` and ``persona``."""
    return pl.DataFrame(
        {"account_id": ids, "persona": [p["persona"] for p in params]},
        schema={"account_id": pl.String, "persona": pl.String},
    )


def _expand(
    spec: pl.LazyFrame,
    *,
    seed: int,
    event: str,
    stream: int,
    day0_weekday: int,
    weekend_keep: float = _WEEKEND_KEEP,
    shift: bool = False,
    carry: tuple[str, ...] = (),
) -> pl.LazyFrame:
    """Repeat each spec row ``n`` times and place the events in days ``[lo, hi)``.

    The spec needs ``aid``, ``uid``, ``n``, ``lo`` and ``hi``; the ``carry`` columns are copied
    to every output row. A weekend event is kept with probability ``weekend_keep``; the others
    are dropped, or, with ``shift``, moved to the Friday before (or the Monday after when that
    leaves the range) so that counts stay exact. Output columns: ``aid``, ``uid``, ``k``, the
    row hash ``h``, ``ts`` (microseconds from day 0), ``code``, ``value`` and the carried ones.
    """
    lf = (
        spec.select("aid", "uid", "n", "lo", "hi", *carry)
        .with_columns(pl.col("lo").clip(lower_bound=0), pl.col("n").cast(pl.Int64))
        .filter((pl.col("n") > 0) & (pl.col("hi") > pl.col("lo")))
        .with_columns(pl.int_ranges(0, pl.col("n"), dtype=pl.Int64).alias("k"))
        .explode("k")
        .with_columns(h=key(seed, pl.col("aid"), pl.col("uid"), stream, pl.col("k")))
    )
    width = pl.col("hi") - pl.col("lo")
    cut_lo = pl.col("k") * width // pl.col("n")
    cut_hi = (pl.col("k") + 1) * width // pl.col("n")
    slot = (uniform(pl.col("h"), 0) * (cut_hi - cut_lo).cast(pl.Float64)).floor().cast(pl.Int64)
    lf = lf.with_columns(day=pl.col("lo") + cut_lo + slot)
    weekday = (pl.col("day") + day0_weekday) % 7
    weekend = (weekday >= 5) & (uniform(pl.col("h"), 1) >= weekend_keep)
    if shift:
        friday = pl.col("day") - (weekday - 4)
        monday = pl.col("day") + (7 - weekday)
        lf = lf.with_columns(
            day=pl.when(~weekend)
            .then(pl.col("day"))
            .when(friday >= pl.col("lo"))
            .then(friday)
            .when(monday < pl.col("hi"))
            .then(monday)
            .otherwise(pl.col("day"))
        )
    elif weekend_keep < 1.0:
        lf = lf.filter(~weekend)
    seconds = (draw(pl.col("h"), 2, 7.5 * 3600, 18.5 * 3600)).floor().cast(pl.Int64)
    return lf.select(
        "aid",
        "uid",
        "k",
        "h",
        *carry,
        ts=pl.col("day") * _US_PER_DAY + seconds * _US_PER_S,
        code=pl.lit(_CODE[event], pl.Int64),
        value=pl.lit(None, pl.Float64),
    )


def _follow(
    rows: pl.LazyFrame,
    event: str,
    *,
    keep: pl.Expr,
    delay_s: pl.Expr,
    value: pl.Expr | None = None,
) -> pl.LazyFrame:
    """Events that follow some of ``rows`` (those where ``keep``) after ``delay_s`` seconds."""
    return rows.filter(keep).with_columns(
        ts=pl.col("ts") + delay_s.floor().cast(pl.Int64) * _US_PER_S,
        code=pl.lit(_CODE[event], pl.Int64),
        value=pl.lit(None, pl.Float64) if value is None else value.cast(pl.Float64),
    )


_OUT: Final = ("aid", "uid", "code", "ts", "value")


def events_frame(
    params: list[dict[str, Any]],
    ids: list[str],
    *,
    seed: int,
    as_of: date,
    days: int,
) -> pl.DataFrame:
    """Build the usage-event frame for the given accounts (vectorised, no per-row Python).

    Parameters
    ----------
    params
        Per-account parameters (see :func:`healthrules.datasets._personas.account_parameters`).
    ids
        Account ids aligned with ``params``.
    seed
        Seed of the random streams.
    as_of
        Last day of the sample: every event is before the midnight that ends it.
    days
        Number of days of history (day 0 is ``as_of - days + 1``).

    Returns
    -------
    polars.DataFrame
        Columns ``account_id``, ``user_id``, ``event`` (String), ``timestamp``
        (Datetime("us", "UTC")) and ``value`` (Float64, nullable), sorted by account and time.
    """
    if not params:
        return _empty_events()
    day0 = as_of - timedelta(days=days - 1)
    epoch_us = int(datetime(day0.year, day0.month, day0.day, tzinfo=UTC).timestamp()) * _US_PER_S
    acc_df = _params_frame(params, ids)
    acc = acc_df.lazy()
    x: dict[str, Any] = {"seed": seed, "day0_weekday": day0.weekday()}
    col = pl.col
    whole_span = pl.lit(days, pl.Int64)

    # ---- users: one row per provisioned user
    users = (
        acc.select(
            "aid", "n_users", "n_active", "onboarding", "lifecycle", "start", "key_rate",
            "user_rate", "drop_day", "drop_factor", "fx_share", "training_share", "p_session",
            "p_report", "p_export", "minutes", "steps", "step_span",
            uid=pl.int_ranges(0, col("n_users"), dtype=pl.Int64),
        )
        .explode("uid")
        .with_columns(uh=key(seed, col("aid"), col("uid"), _S_USER, pl.lit(0, pl.Int64)))
        .with_columns(
            is_key=col("uid") == 0,
            active=col("uid") < col("n_active"),
            user_start=pl.when(~col("onboarding") | (col("uid") == 0))
            .then(col("start"))
            .otherwise(col("start") + (uniform(col("uh"), 0) * 10).floor().cast(pl.Int64))
            .clip(upper_bound=days - 1),
            rate=pl.when(col("uid") == 0)
            .then(col("key_rate"))
            .otherwise(col("user_rate") * draw(col("uh"), 1, 0.6, 1.4)),
            fx_user=uniform(col("uh"), 2) < col("fx_share"),
            trained=uniform(col("uh"), 3) < col("training_share"),
        )
        .collect(optimizations=OPTIMISED)
        .lazy()
    )
    active = users.filter(col("active"))

    # ---- logins (two segments for a key user whose activity drops), and what follows them
    drop = col("drop_day").clip(lower_bound=0)
    seg_end = pl.when(col("is_key")).then(pl.max_horizontal(col("user_start"), drop)).otherwise(
        whole_span
    )
    n_login = (col("rate") * (col("hi") - col("lo")).cast(pl.Float64) / (7 * _KEEP_RATE)).round()
    login_a = active.with_columns(lo=col("user_start"), hi=seg_end).with_columns(
        n=pl.max_horizontal(n_login.cast(pl.Int64), col("is_key").cast(pl.Int64))
    )
    login_b = (
        active.filter(col("is_key"))
        .with_columns(lo=seg_end, hi=whole_span, rate=col("rate") * col("drop_factor"))
        .with_columns(n=n_login.cast(pl.Int64))
    )
    carry = ("fx_user", "p_session", "p_report", "p_export", "minutes")
    logins = (
        pl.concat(
            [
                _expand(login_a, event="login", stream=_S_LOGIN, carry=carry, **x),
                _expand(login_b, event="login", stream=_S_LOGIN_AFTER_DROP, carry=carry, **x),
            ],
            how="vertical_relaxed",
        )
        .with_columns(h1=mix(col("h")))
        .with_columns(h2=mix(col("h1")))
        .with_columns(h3=mix(col("h2")))
        .collect(optimizations=OPTIMISED)
        .lazy()
    )
    h1, h2, h3 = col("h1"), col("h2"), col("h3")
    after_login = [
        _follow(
            logins,
            "session",
            keep=uniform(h1, 0) < col("p_session"),
            delay_s=pl.lit(60.0),
            value=(col("minutes") * draw(h1, 1, 0.4, 1.6)).round(1),
        ),
        _follow(
            logins,
            "feature_x_used",
            keep=col("fx_user") & (uniform(h1, 2) < 0.5),
            delay_s=draw(h2, 0, 120, 1800),
        ),
        _follow(
            logins,
            "report_created",
            keep=uniform(h2, 1) < col("p_report"),
            delay_s=draw(h2, 2, 300, 2400),
        ),
        _follow(
            logins,
            "export",
            keep=uniform(h3, 0) < col("p_export"),
            delay_s=draw(h3, 1, 600, 3000),
        ),
    ]

    # ---- onboarding: license activations, invitations, steps, trial start
    onboarding = users.filter(col("onboarding"))
    key_onboarding = onboarding.filter(col("is_key"))
    one = pl.lit(1, pl.Int64)
    first_days = [
        _expand(
            onboarding.with_columns(n=one, lo=col("user_start"), hi=col("user_start") + 1),
            event="license_activated", stream=_S_ACTIVATION, weekend_keep=1.0, **x,
        ),
        _expand(
            key_onboarding.with_columns(
                n=col("n_users") - 1, lo=col("start"), hi=col("start") + 3
            ),
            event="invite_sent", stream=_S_INVITE, weekend_keep=1.0, **x,
        ),
        _expand(
            key_onboarding.with_columns(
                n=col("steps"), lo=col("start"), hi=col("start") + col("step_span")
            ),
            event="onboarding_step_completed", stream=_S_STEP, shift=True, **x,
        ).with_columns(value=(col("k") + 1).cast(pl.Float64)),
        _expand(
            key_onboarding.filter(col("lifecycle") == "prospect").with_columns(
                n=one, lo=col("start"), hi=col("start") + 1
            ),
            event="trial_started", stream=_S_TRIAL, weekend_keep=1.0, **x,
        ),
    ]

    # ---- training: one module per trained active user
    training = _expand(
        active.filter(col("trained")).with_columns(
            n=one,
            lo=col("user_start") + pl.when(col("onboarding")).then(3).otherwise(0),
            hi=pl.when(col("onboarding"))
            .then(pl.min_horizontal(col("user_start") + 60, whole_span))
            .otherwise(whole_span),
        ),
        event="training_completed", stream=_S_TRAINING, shift=True, **x,
    )

    # ---- account-level events; unless given, the acting user is drawn among active users
    def account_events(
        n: pl.Expr,
        event: str,
        stream: int,
        *,
        uid: int | None = None,
        lo: pl.Expr | None = None,
        hi: pl.Expr | None = None,
        carry: tuple[str, ...] = (),
    ) -> pl.LazyFrame:
        spec = acc.with_columns(
            uid=pl.lit(-1 if uid is None else uid, pl.Int64),
            n=n,
            lo=col("start") if lo is None else lo,
            hi=whole_span if hi is None else hi,
        )
        out = _expand(spec, event=event, stream=stream, shift=True,
                      carry=("n_active", *carry), **x)
        if uid is None:
            some_user = (uniform(mix(col("h")), 0) * col("n_active")).floor().cast(pl.Int64)
            out = out.with_columns(uid=some_user)
        return out

    tickets = (
        account_events(col("tickets"), "support_ticket", _S_TICKET)
        .with_columns(h1=mix(col("h")))
        .collect(optimizations=OPTIMISED)
        .lazy()
    )
    nps_carry = ("p_nps_answer", "nps_lo", "nps_hi")
    nps_sent = (
        pl.concat(
            [
                account_events(
                    (col("nps_rounds") >= 1).cast(pl.Int64), "nps_sent", _S_NPS_RECENT, uid=0,
                    lo=pl.max_horizontal(pl.lit(days - 80, pl.Int64), col("start") + 14),
                    hi=pl.lit(days - 14, pl.Int64), carry=nps_carry,
                ),
                account_events(
                    (col("nps_rounds") >= 2).cast(pl.Int64), "nps_sent", _S_NPS_EARLIER, uid=0,
                    lo=pl.max_horizontal(pl.lit(days - 170, pl.Int64), col("start") + 14),
                    hi=pl.lit(days - 104, pl.Int64), carry=nps_carry,
                ),
            ],
            how="vertical_relaxed",
        )
        .with_columns(h1=mix(col("h")))
        .collect(optimizations=OPTIMISED)
        .lazy()
    )
    roi_day = col("roi_day")
    account_level = [
        tickets,
        _follow(
            tickets,
            "ticket_resolved",
            keep=uniform(col("h1"), 0) < 0.85,
            delay_s=draw(col("h1"), 1, 3600, 72 * 3600),
        ),
        account_events(col("meetings"), "meeting_held", _S_MEETING, uid=_DM_USER),
        account_events(col("webinars"), "webinar_attended", _S_WEBINAR),
        account_events(col("feedback"), "feature_feedback", _S_FEEDBACK),
        nps_sent,
        _follow(
            nps_sent,
            "nps_response",
            keep=uniform(col("h1"), 0) < col("p_nps_answer"),
            delay_s=draw(col("h1"), 1, 1800, 4 * 86400),
            value=(col("nps_lo") + uniform(col("h1"), 2) * (col("nps_hi") - col("nps_lo") + 1))
            .floor()
            .clip(upper_bound=10.0),
        ),
        account_events(
            ((roi_day >= col("start")) & (roi_day < days)).cast(pl.Int64), "roi_goal_reached",
            _S_ROI, uid=0, lo=roi_day, hi=roi_day + 1,
        ),
        account_events(
            col("limit_hits"), "plan_limit_reached", _S_LIMIT, uid=0,
            lo=pl.max_horizontal(col("limit_lo"), col("start")), hi=col("limit_hi"),
        ),
        account_events(
            col("intents"), "purchase_intent", _S_INTENT, uid=0,
            lo=col("start") + 1, hi=whole_span,
        ),
    ]

    parts = [logins, *after_login, *first_days, training, *account_level]
    frames = pl.concat([p.select(_OUT) for p in parts], how="vertical_relaxed")
    # one packed key orders rows by account, second, event and user, so the order is total
    # (up to identical rows) and sorting one UInt64 column is fast
    order = (
        col("aid").cast(pl.UInt64) * pl.lit(1 << 43, pl.UInt64)
        + (col("ts") // _US_PER_S).cast(pl.UInt64) * pl.lit(1 << 14, pl.UInt64)
        + col("code").cast(pl.UInt64) * pl.lit(1 << 9, pl.UInt64)
        + (col("uid") + 2).cast(pl.UInt64)
    )
    rows = (
        frames.filter(col("ts") < days * _US_PER_DAY)
        .select(order=order, value=col("value"))
        .collect(optimizations=OPTIMISED)
        .sort("order", maintain_order=True)
    )
    # user ids: a table with, per account, its decision maker then its users, gathered by index
    n_slots = acc_df["n_users"] + 1
    offsets = (n_slots.cum_sum() - n_slots).cast(pl.Int64)
    user_table = (
        acc_df.lazy()
        .select(
            "account_id", slot=pl.int_ranges(0, col("n_users") + 1, dtype=pl.Int64)
        )
        .explode("slot")
        .select(
            pl.when(col("slot") == 0)
            .then(pl.concat_str([col("account_id"), pl.lit("-dm")]))
            .otherwise(
                pl.concat_str(
                    [col("account_id"), pl.lit("-u"), (col("slot") - 1).cast(pl.String)
                     .str.zfill(2)]
                )
            )
        )
        .collect(optimizations=OPTIMISED)
        .to_series()
    )
    order_s = rows["order"]
    aid = (order_s // (1 << 43)).cast(pl.Int64)
    code = ((order_s // (1 << 9)) % 32).cast(pl.Int64)
    uid = (order_s % 512).cast(pl.Int64) - 2
    slot = uid + 1 + (uid == _DM_USER).cast(pl.Int64)  # the decision maker (-2) is slot 0
    seconds = ((order_s // (1 << 14)) % (1 << 29)).cast(pl.Int64)
    timestamp = (seconds * _US_PER_S + epoch_us).cast(pl.Datetime("us", "UTC"))
    return pl.DataFrame(
        [
            acc_df["account_id"].gather(aid).alias("account_id"),
            user_table.gather(offsets.gather(aid) + slot).alias("user_id"),
            pl.Series(list(EVENT_NAMES), dtype=pl.String).gather(code).alias("event"),
            timestamp.alias("timestamp"),
            rows["value"],
        ]
    )


def _empty_events() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "account_id": pl.String,
            "user_id": pl.String,
            "event": pl.String,
            "timestamp": pl.Datetime("us", "UTC"),
            "value": pl.Float64,
        }
    )
