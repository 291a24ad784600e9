"""Partition invariance: evaluating any split of the accounts gives the same rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import healthrules as hr

AS_OF = dt.date(2026, 6, 30)
EVENTS = ["login", "report", "nps", "ticket"]

ROADMAP = hr.Roadmap.model_validate({
    "id": "p",
    "goal": "g",
    "data": {"events": {"values": {"value": "float"}},
             "accounts": {"attributes": {"start": "date", "seats": "int", "key_user": "str"}}},
    "indicators": [
        {"id": "logins_7d", "family": "process", "aggregate": "count",
         "where": "event == 'login'", "window": "7d", "compare": "delta"},
        {"id": "users_30d", "family": "process", "aggregate": "distinct", "window": "30d",
         "bands": {"levels": [{"name": "red", "lt": 2}, {"name": "green", "ge": 2}]}},
        {"id": "days_30d", "family": "process", "aggregate": "active_days", "window": "30d"},
        {"id": "nps", "family": "relationship", "aggregate": "mean", "of": "value",
         "where": "event == 'nps'", "window": "90d",
         "bands": {"levels": [{"name": "red", "lt": 7}, {"name": "yellow", "ge": 7, "lt": 9},
                              {"name": "green", "ge": 9}]}},
        {"id": "since_login", "family": "process", "aggregate": "days_since_last",
         "where": "event == 'login'"},
        {"id": "key_logins", "family": "relationship", "aggregate": "count",
         "where": "user_id == key_user", "window": {"from": "start", "days": 60}},
        {"id": "util", "family": "outcome", "expr": "users_30d / seats",
         "bands": {"levels": [{"name": "red", "lt": 0.5}, {"name": "green", "ge": 0.5}]}},
    ],
    "stages": [
        {"id": "new", "entry": "days_since(start) < 60",
         "actions": [{"id": "slow", "kind": "challenge", "when": "logins_7d < 1",
                      "do": "{logins_7d} logins"}]},
        {"id": "live", "actions": [{"id": "happy", "kind": "positive",
                                    "when": "nps >= 9 or util >= 0.5", "do": "{nps:.1f}"}]},
    ],
    "actions": [{"id": "gone", "kind": "challenge", "when": "since_login > 20",
                 "do": "{since_login} days"}],
    "score": {"missing": "neutral",
              "bands": {"levels": [{"name": "red", "lt": 50}, {"name": "green", "ge": 50}]}},
})
PLAN = hr.compile(ROADMAP)

account_ids = st.lists(st.sampled_from([f"a{i}" for i in range(12)]), min_size=1, max_size=12,
                       unique=True)


@st.composite
def frames(draw: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
    ids = draw(account_ids)
    n = len(ids)
    accounts = pl.DataFrame({
        "account_id": ids,
        "start": [draw(st.none() | st.dates(dt.date(2026, 1, 1), dt.date(2026, 7, 5)))
                  for _ in range(n)],
        "seats": [draw(st.integers(0, 5)) for _ in range(n)],
        "key_user": [draw(st.sampled_from(["u1", "u2"])) for _ in range(n)],
    }, schema={"account_id": pl.String, "start": pl.Date, "seats": pl.Int64,
               "key_user": pl.String})
    rows = draw(st.lists(st.tuples(
        st.sampled_from([*ids, "ghost"]) | st.none(),
        st.sampled_from(["u1", "u2", "u3"]) | st.none(),
        st.sampled_from(EVENTS),
        st.datetimes(dt.datetime(2026, 3, 1), dt.datetime(2026, 7, 3)) | st.none(),
        st.none() | st.floats(0, 10, allow_nan=False),
    ), max_size=60))
    events = pl.DataFrame(rows, schema={"account_id": pl.String, "user_id": pl.String,
                                        "event": pl.String, "timestamp": pl.Datetime("us"),
                                        "value": pl.Float64}, orient="row")
    return events, accounts


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=frames(), split=st.lists(st.booleans(), min_size=12, max_size=12))
def test_any_split_of_accounts_gives_the_same_rows(
    data: tuple[pl.DataFrame, pl.DataFrame], split: list[bool]
) -> None:
    events, accounts = data
    whole = hr.evaluate(PLAN, events, accounts, AS_OF)
    mask = pl.Series(split[: accounts.height])
    parts = [accounts.filter(mask), accounts.filter(~mask)]
    pieces = [hr.evaluate(PLAN, events, p, AS_OF) for p in parts if p.height]
    for name in ("indicators", "stages", "scores", "actions"):
        key = ["account_id", "action_id"] if name == "actions" else ["account_id"]
        joined = pl.concat([getattr(p, name) for p in pieces]).sort(key)
        # bit for bit, float sums and means included
        assert_frame_equal(joined, getattr(whole, name).sort(key), check_exact=True)
