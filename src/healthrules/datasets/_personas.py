"""Personas of the sample data and the small per-account parameters each one draws.

A persona is a story about an account (a healthy adopter, a stalled onboarding, a trial that is
just looking, ...). For each account, :func:`account_parameters` draws a handful of numbers
from Python's :class:`random.Random`: the account's attributes (plan, seats, dates, goal) and
the rates that drive its events (logins per week, share of users on feature X, tickets, NPS
answers, ...). No event is built here; :mod:`healthrules.datasets._build` expands these
parameters into event rows with polars.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any, Final

__all__ = [
    "CUSTOMER_PERSONAS",
    "PERSONAS",
    "PERSONA_SHARES",
    "TRIAL_DAYS",
    "TRIAL_PERSONAS",
    "account_parameters",
    "assign_personas",
    "company_name",
]

TRIAL_DAYS: Final = 30
"""Length of a free trial, in days from ``trial_start``."""

CUSTOMER_PERSONAS: Final = (
    "healthy_adopter",
    "stalled_onboarding",
    "key_user_leaving",
    "expansion_ready",
    "quiet_renewing",
    "renewal_low_usage",
)
"""Personas of paying customers (``lifecycle == 'customer'``)."""

TRIAL_PERSONAS: Final = ("trial_decided", "trial_undecided", "trial_just_looking")
"""Personas of prospects on a free trial (``lifecycle == 'prospect'``)."""

PERSONAS: Final = CUSTOMER_PERSONAS + TRIAL_PERSONAS
"""Every persona, in a fixed order."""

PERSONA_SHARES: Final[dict[str, float]] = {
    "healthy_adopter": 0.22,
    "stalled_onboarding": 0.09,
    "key_user_leaving": 0.09,
    "expansion_ready": 0.08,
    "quiet_renewing": 0.12,
    "renewal_low_usage": 0.09,
    "trial_decided": 0.08,
    "trial_undecided": 0.13,
    "trial_just_looking": 0.10,
}
"""Share of accounts of each persona (they sum to 1)."""

_DESIGN_DAYS: Final = 180
"""History length the persona parameters are written for (the default ``days``)."""

_PRICE_PER_SEAT: Final = {"basic": 360.0, "pro": 720.0, "enterprise": 1200.0}

_ADJECTIVES: Final = (
    "Blue", "Bright", "Cedar", "Clear", "Coastal", "Golden", "Granite", "Green", "Harbor",
    "Maple", "Misty", "North", "Oak", "Pine", "Quiet", "Red", "Silver", "Summit", "Swift",
    "True", "Urban", "Vivid", "West", "Wild",
)
_NOUNS: Final = (
    "Analytics", "Bakery", "Builders", "Clinic", "Dental", "Energy", "Farms", "Foods",
    "Freight", "Games", "Health", "Labs", "Legal", "Logistics", "Media", "Motors", "Optics",
    "Pharma", "Realty", "Retail", "Robotics", "Studios", "Textiles", "Travel",
)
_SUFFIXES: Final = ("Inc.", "Ltd.", "GmbH", "K.K.", "LLC", "S.A.", "Co.", "Group")


def assign_personas(n_accounts: int, rng: random.Random) -> list[str]:
    """Give each of ``n_accounts`` accounts a persona, in the shares of :data:`PERSONA_SHARES`.

    Counts follow the largest-remainder method, and every persona gets at least one account
    once there are as many accounts as personas; the list is then shuffled by ``rng``.

    Parameters
    ----------
    n_accounts
        Number of accounts (0 or more).
    rng
        The random generator (consumed for the shuffle).

    Returns
    -------
    list[str]
        One persona per account.

    Examples
    --------
    >>> import random
    >>> personas = assign_personas(9, random.Random(1))
    >>> sorted(personas) == sorted(PERSONAS)
    True
    """
    quotas = {p: PERSONA_SHARES[p] * n_accounts for p in PERSONAS}
    counts = {p: int(q) for p, q in quotas.items()}
    by_remainder = sorted(PERSONAS, key=lambda p: (-(quotas[p] - counts[p]), PERSONAS.index(p)))
    for p in by_remainder[: n_accounts - sum(counts.values())]:
        counts[p] += 1
    if n_accounts >= len(PERSONAS):
        for p in PERSONAS:
            while counts[p] == 0:
                donor = max(PERSONAS, key=lambda q: (counts[q], -PERSONAS.index(q)))
                counts[donor] -= 1
                counts[p] += 1
    out = [p for p in PERSONAS for _ in range(counts[p])]
    rng.shuffle(out)
    return out


def company_name(rng: random.Random) -> str:
    """A made-up company name such as ``'Cedar Logistics GmbH'``.

    Parameters
    ----------
    rng
        The random generator.

    Returns
    -------
    str
        The name.

    Examples
    --------
    >>> import random
    >>> len(company_name(random.Random(3)).split()) == 3
    True
    """
    return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {rng.choice(_SUFFIXES)}"


def _anniversary_after(start: date, after: date) -> date:
    """The first yearly anniversary of ``start`` strictly after ``after``."""
    years = max(1, after.year - start.year)
    while True:
        try:
            d = start.replace(year=start.year + years)
        except ValueError:  # 29 February
            d = start.replace(year=start.year + years, day=28)
        if d > after:
            return d
        years += 1


def _established(rng: random.Random, as_of: date, renewal_in: tuple[int, int]) -> tuple[date, date]:
    """Contract start and renewal date of a customer past onboarding (120+ days in)."""
    renewal = as_of + timedelta(days=rng.randint(*renewal_in))
    years = 1
    while (as_of - (renewal - timedelta(days=365 * years))).days < 120:
        years += 1
    years += rng.choice((0, 0, 1, 2))
    return renewal - timedelta(days=365 * years), renewal


def account_parameters(
    persona: str, rng: random.Random, *, as_of: date, days: int
) -> dict[str, Any]:
    """Draw one account's attributes and event-rate parameters for a persona.

    Day numbers count from the first day of the sample (``as_of - days + 1`` is day 0), so the
    last day, ``as_of``, is day ``days - 1``. Rates are per week; counts are over the account's
    activity span (from ``start`` to the end).

    Parameters
    ----------
    persona
        One of :data:`PERSONAS`.
    rng
        The random generator.
    as_of
        The last day of the sample.
    days
        Number of days of history.

    Returns
    -------
    dict[str, Any]
        Attributes (``plan``, ``seats``, ``arr``, ``goal``, ``lifecycle``, ``contract_start``,
        ``renewal_date``, ``trial_start``) and generator parameters (``start``, ``n_users``,
        ``n_active``, ``key_rate``, ``user_rate``, ``drop_day``, ``drop_factor``, ...).

    Raises
    ------
    ValueError
        For an unknown persona.

    Examples
    --------
    >>> import random
    >>> from datetime import date
    >>> p = account_parameters("stalled_onboarding", random.Random(1),
    ...                        as_of=date(2026, 6, 30), days=180)
    >>> p["lifecycle"], p["n_active"] < p["n_users"]
    ('customer', True)
    """
    if persona not in PERSONAS:
        raise ValueError(f"unknown persona {persona!r}; choose from {', '.join(PERSONAS)}")
    day0 = as_of - timedelta(days=days - 1)
    r = rng.random
    u = rng.uniform
    ri = rng.randint
    goal = "do_it_for_us" if r() < 0.5 else "self_sufficient"
    p: dict[str, Any] = {
        "persona": persona,
        "goal": goal,
        "lifecycle": "customer",
        "contract_start": None,
        "renewal_date": None,
        "trial_start": None,
        "onboarding": False,
        "drop_day": days,
        "drop_factor": 1.0,
        "p_session": 0.5,
        "p_report": 0.1,
        "p_export": 0.05,
        "minutes": 25.0,
        "tickets": 0,
        "meetings": 0,
        "webinars": 0,
        "feedback": 0,
        "nps_rounds": 2,
        "p_nps_answer": 0.0,
        "nps_lo": 0.0,
        "nps_hi": 10.0,
        "roi_day": -1,
        "limit_hits": 0,
        "limit_lo": 0,
        "limit_hi": days,
        "steps": 0,
        "step_span": 30,
        "intents": 0,
        "training_share": 0.0,
    }

    def onboarding_since(lo: int, hi: int) -> None:
        start = as_of - timedelta(days=ri(lo, hi))
        p["contract_start"] = start
        p["renewal_date"] = _anniversary_after(start, as_of)
        p["onboarding"] = True

    def renewal(lo: int, hi: int) -> None:
        p["contract_start"], p["renewal_date"] = _established(rng, as_of, (lo, hi))

    if persona == "healthy_adopter":
        if r() < 0.2:
            onboarding_since(35, 80)
            p["steps"], p["step_span"] = 6, 25
        else:
            renewal(95, 330)
        p["plan"] = rng.choice(("basic", "pro", "pro", "enterprise"))
        p["n_users"] = ri(4, 8)
        p["n_active"] = p["n_users"]
        p["seats"] = p["n_users"] + ri(1, 3)
        p["key_rate"], p["user_rate"] = u(1.2, 1.8), u(0.25, 0.45)
        p["fx_share"], p["training_share"] = u(0.35, 0.7), u(0.6, 1.0)
        p["p_report"], p["p_export"], p["minutes"] = 0.15, 0.08, u(25, 45)
        p["tickets"], p["meetings"] = ri(1, 3), ri(3, 5)
        p["webinars"], p["feedback"] = ri(0, 2), ri(0, 3)
        p["p_nps_answer"], p["nps_lo"], p["nps_hi"] = 0.9, 8.0, 10.0
        if r() < 0.55:
            p["roi_day"] = days - ri(5, 80)
        if r() < 0.1:
            p["limit_hits"], p["limit_lo"] = 1, days - 60
    elif persona == "stalled_onboarding":
        onboarding_since(25, 75)
        p["plan"] = rng.choice(("basic", "basic", "pro"))
        p["n_users"] = ri(6, 12)
        p["n_active"] = ri(1, 3)
        p["seats"] = p["n_users"] + ri(0, 2)
        p["key_rate"], p["user_rate"] = u(0.7, 1.1), u(0.15, 0.3)
        p["fx_share"], p["training_share"] = u(0.0, 0.2), u(0.0, 0.15)
        p["p_report"], p["p_export"], p["minutes"] = 0.04, 0.02, u(8, 15)
        p["steps"], p["step_span"] = ri(1, 2), 10
        p["tickets"], p["meetings"] = ri(3, 6), (0 if r() < 0.7 else 1)
        p["p_nps_answer"], p["nps_lo"], p["nps_hi"] = 0.3, 4.0, 7.0
        if r() < 0.4:  # the data import hit the plan's limit: one reason it stalled
            p["limit_hits"] = ri(1, 3)
            p["limit_lo"] = -1  # set relative to the start below
    elif persona == "key_user_leaving":
        renewal(95, 330)
        p["plan"] = rng.choice(("pro", "pro", "enterprise"))
        p["n_users"] = ri(4, 8)
        p["n_active"] = p["n_users"]
        p["seats"] = p["n_users"] + ri(1, 3)
        p["key_rate"], p["user_rate"] = u(1.8, 2.5), u(0.25, 0.45)
        p["drop_day"], p["drop_factor"] = days - ri(21, 27), u(0.0, 0.1)
        p["fx_share"], p["training_share"] = u(0.2, 0.5), u(0.4, 0.8)
        p["minutes"] = u(20, 35)
        p["tickets"], p["meetings"] = ri(2, 5), ri(1, 2)
        p["feedback"] = ri(0, 2)
        p["p_nps_answer"], p["nps_lo"], p["nps_hi"] = 0.6, 5.0, 8.0
        if r() < 0.2:
            p["roi_day"] = days - ri(100, 170)
        if r() < 0.35:
            p["limit_hits"], p["limit_lo"] = ri(1, 3), days - 30
    elif persona == "expansion_ready":
        renewal(95, 330)
        p["plan"] = rng.choice(("basic", "pro", "pro"))
        p["n_users"] = ri(5, 9)
        p["n_active"] = p["n_users"]
        p["seats"] = p["n_users"] + (1 if p["n_users"] >= 9 else 0)
        p["key_rate"], p["user_rate"] = u(1.8, 2.4), u(0.5, 0.7)
        p["fx_share"], p["training_share"] = u(0.75, 1.0), u(0.8, 1.0)
        p["p_report"], p["p_export"], p["minutes"] = 0.2, 0.1, u(35, 55)
        p["tickets"], p["meetings"] = ri(0, 2), ri(3, 6)
        p["webinars"], p["feedback"] = ri(1, 3), ri(2, 5)
        p["p_nps_answer"], p["nps_lo"], p["nps_hi"] = 1.0, 9.0, 10.0
        if r() < 0.7:
            p["roi_day"] = days - ri(5, 60)
        p["limit_hits"], p["limit_lo"] = ri(3, 6), days - 28
    elif persona == "quiet_renewing":
        if r() < 0.5:
            renewal(20, 85)
        else:
            renewal(95, 330)
        p["plan"] = rng.choice(("basic", "basic", "pro"))
        p["n_users"] = ri(3, 6)
        p["n_active"] = p["n_users"]
        p["seats"] = p["n_users"] + ri(1, 3)
        p["key_rate"], p["user_rate"] = u(0.8, 1.2), u(0.2, 0.35)
        p["fx_share"], p["training_share"] = u(0.1, 0.3), u(0.3, 0.6)
        p["p_export"], p["minutes"] = 0.02, u(15, 30)
        p["p_nps_answer"], p["nps_lo"], p["nps_hi"] = 0.05, 7.0, 9.0
        if r() < 0.15:
            p["roi_day"] = days - ri(100, 170)
    elif persona == "renewal_low_usage":
        renewal(15, 80)
        p["plan"] = rng.choice(("basic", "pro", "pro", "enterprise"))
        p["n_users"] = ri(5, 10)
        p["n_active"] = ri(1, 3)
        p["seats"] = p["n_users"] + ri(0, 3)
        p["key_rate"], p["user_rate"] = u(0.4, 0.7), u(0.1, 0.2)
        p["fx_share"], p["training_share"] = u(0.0, 0.15), u(0.1, 0.3)
        p["p_report"], p["p_export"], p["minutes"] = 0.04, 0.02, u(8, 15)
        p["tickets"], p["meetings"] = ri(2, 4), ri(0, 1)
        p["p_nps_answer"], p["nps_lo"], p["nps_hi"] = 0.5, 2.0, 6.0
    else:  # trials
        p["lifecycle"] = "prospect"
        p["plan"] = "trial"
        p["seats"] = 5
        p["onboarding"] = True
        p["nps_rounds"] = 0
        if persona == "trial_decided":
            p["trial_start"] = as_of - timedelta(days=ri(8, 25))
            p["n_users"] = ri(2, 4)
            p["key_rate"], p["user_rate"] = u(4.0, 5.5), u(1.5, 3.0)
            p["fx_share"], p["training_share"] = u(0.6, 1.0), u(0.3, 0.7)
            p["p_report"], p["minutes"] = 0.25, u(30, 50)
            p["steps"], p["step_span"] = ri(5, 6), 6
            p["intents"] = ri(2, 5)
            p["meetings"], p["webinars"] = ri(0, 1), ri(0, 1)
        elif persona == "trial_undecided":
            p["trial_start"] = as_of - timedelta(days=ri(6, 29))
            p["n_users"] = ri(1, 3)
            p["key_rate"], p["user_rate"] = u(1.8, 3.5), u(0.5, 1.5)
            p["fx_share"], p["training_share"] = u(0.3, 0.8), u(0.0, 0.3)
            p["minutes"] = u(15, 30)
            p["steps"], p["step_span"] = ri(2, 5), 12
            p["intents"] = ri(0, 1)
            p["tickets"], p["webinars"] = ri(0, 2), ri(0, 1)
        else:  # trial_just_looking
            p["trial_start"] = as_of - timedelta(days=ri(6, 28))
            p["n_users"] = 1
            p["key_rate"], p["user_rate"] = u(0.3, 0.7), 0.0
            p["fx_share"], p["training_share"] = 0.0, 0.0
            p["p_report"], p["p_export"], p["minutes"] = 0.0, 0.0, u(3, 8)
            p["steps"], p["step_span"] = ri(0, 1), 3
        p["n_active"] = p["n_users"]

    # the goal shapes behaviour: self-sufficient teams train; "do it for us" teams meet
    if p["lifecycle"] == "customer":
        if goal == "self_sufficient":
            p["training_share"] = min(1.0, p["training_share"] * 1.25)
        else:
            p["training_share"] *= 0.6
            p["p_export"] *= 1.5
            if persona not in ("stalled_onboarding", "quiet_renewing"):  # they skip reviews
                p["meetings"] += 1

    start_date: date = p["trial_start"] if p["lifecycle"] == "prospect" else p["contract_start"]
    p["start"] = max(0, (start_date - day0).days)
    if not p["onboarding"] and days != _DESIGN_DAYS:
        # counts of established customers are per 180 days: keep the rate for other histories
        for c in ("tickets", "meetings", "webinars", "feedback"):
            p[c] = round(p[c] * days / _DESIGN_DAYS)
    if p["limit_lo"] == -1:
        p["limit_lo"] = p["start"]
        p["limit_hi"] = min(days, p["start"] + 30)
    if p["lifecycle"] == "customer":
        p["arr"] = round(p["seats"] * _PRICE_PER_SEAT[p["plan"]] * u(0.9, 1.1), -2)
    else:
        p["arr"] = None
    return p
