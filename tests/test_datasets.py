"""Tests of the synthetic sample data (healthrules.datasets)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from healthrules.datasets import (
    CUSTOMER_PERSONAS,
    DEFAULT_AS_OF,
    EVENT_NAMES,
    PERSONAS,
    TRIAL_DAYS,
    TRIAL_PERSONAS,
    Sample,
    sample,
    write_sample,
)
from healthrules.datasets._random import key, mix, scalar_mix, uniform

EVENT_SCHEMA = {
    "account_id": pl.String,
    "user_id": pl.String,
    "event": pl.String,
    "timestamp": pl.Datetime("us", "UTC"),
    "value": pl.Float64,
}
ACCOUNT_SCHEMA = {
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


@pytest.fixture(scope="module")
def default() -> Sample:
    return sample()


def _end(as_of: date) -> datetime:
    return datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC) + timedelta(days=1)


def _bounds(series: pl.Series) -> tuple[Any, Any]:
    """Smallest and largest value of a series (typed loosely, as polars returns them)."""
    frame = series.to_frame("x")
    lo, hi = frame.select(pl.col("x").min().alias("lo"), pl.col("x").max().alias("hi")).row(0)
    return lo, hi


# ------------------------------------------------------------------ determinism


def test_same_seed_same_frames() -> None:
    a, b = sample(60, seed=3), sample(60, seed=3)
    assert a.events.equals(b.events)
    assert a.accounts.equals(b.accounts)
    assert a.personas.equals(b.personas)
    assert a.as_of == b.as_of


def test_other_seed_other_frames() -> None:
    a, b = sample(60, seed=3), sample(60, seed=4)
    assert not a.events.equals(b.events)
    assert not a.accounts.equals(b.accounts)


def test_days_and_as_of_are_respected() -> None:
    as_of = date(2025, 3, 15)
    s = sample(40, as_of=as_of, days=60)
    assert s.as_of == as_of
    first, last = _bounds(s.events["timestamp"])
    assert last < _end(as_of)
    assert first >= _end(as_of) - timedelta(days=60)


def test_sample_is_frozen(default: Sample) -> None:
    with pytest.raises(AttributeError):
        default.as_of = date(2020, 1, 1)  # type: ignore[misc]


def test_splitmix_matches_the_scalar_reference() -> None:
    values = [0, 1, 2, 12345, 2**63 + 5, 2**64 - 1]
    got = (
        pl.LazyFrame({"x": pl.Series(values, dtype=pl.UInt64)})
        .select(mix(pl.col("x")))
        .collect()
        .to_series()
        .to_list()
    )
    assert got == [scalar_mix(v) for v in values]
    assert scalar_mix(0) == 16294208416658607535  # the published SplitMix64 output


def test_uniforms_are_in_range_and_spread() -> None:
    lf = pl.LazyFrame({"k": pl.int_range(0, 20_000, eager=True)})
    h = key(11, pl.lit(5, pl.Int64), pl.lit(0, pl.Int64), 1, pl.col("k"))
    u = lf.select([uniform(h, i).alias(f"u{i}") for i in range(6)]).collect()
    for c in u.columns:
        col = u[c]
        lo, hi = _bounds(col)
        assert 0 <= lo and hi < 1
        mean = col.to_frame("x").select(pl.col("x").mean()).item()
        assert abs(mean - 0.5) < 0.02


# ------------------------------------------------------------------ schema


def test_schemas(default: Sample) -> None:
    assert dict(default.events.schema) == EVENT_SCHEMA
    assert dict(default.accounts.schema) == ACCOUNT_SCHEMA
    assert dict(default.personas.schema) == {"account_id": pl.String, "persona": pl.String}


def test_empty_sample_has_the_schemas() -> None:
    s = sample(0)
    assert s.events.height == s.accounts.height == s.personas.height == 0
    assert dict(s.events.schema) == EVENT_SCHEMA
    assert dict(s.accounts.schema) == ACCOUNT_SCHEMA


def test_five_accounts() -> None:
    s = sample(5)
    assert s.accounts.height == 5
    assert s.events.height > 0
    assert set(s.events["account_id"]) <= set(s.accounts["account_id"])


def test_keys_and_order(default: Sample) -> None:
    acc = default.accounts
    assert acc["account_id"].is_unique().all()
    assert acc["account_id"].to_list() == sorted(acc["account_id"].to_list())
    assert acc["account_id"].to_list() == default.personas["account_id"].to_list()
    ev = default.events
    assert ev["account_id"].null_count() == ev["timestamp"].null_count() == 0
    assert ev["event"].null_count() == ev["user_id"].null_count() == 0
    assert ev.equals(ev.sort("account_id", "timestamp", maintain_order=True))
    assert set(ev["event"].unique()) <= set(EVENT_NAMES)


def test_every_event_name_appears(default: Sample) -> None:
    assert set(default.events["event"].unique()) == set(EVENT_NAMES)


def test_values_only_where_documented(default: Sample) -> None:
    ev = default.events
    with_value = set(ev.filter(pl.col("value").is_not_null())["event"].unique())
    assert with_value == {"session", "nps_response", "onboarding_step_completed"}
    nps = ev.filter(pl.col("event") == "nps_response")["value"]
    lo, hi = _bounds(nps)
    assert lo >= 0 and hi <= 10
    assert (nps == nps.round(0)).all()
    minutes = ev.filter(pl.col("event") == "session")["value"]
    assert _bounds(minutes)[0] > 0
    assert ev.filter(pl.col("event") == "session")["value"].null_count() == 0


# ------------------------------------------------------------------ time


def test_no_event_after_as_of(default: Sample) -> None:
    first, last = _bounds(default.events["timestamp"])
    assert last < _end(DEFAULT_AS_OF)
    assert first >= _end(DEFAULT_AS_OF) - timedelta(days=180)


def test_no_event_before_the_account_starts(default: Sample) -> None:
    start = pl.coalesce("contract_start", "trial_start")
    early = default.events.join(default.accounts, on="account_id").filter(
        pl.col("timestamp").dt.date() < start
    )
    assert early.height == 0


def test_weekday_rhythm(default: Sample) -> None:
    people = default.events.filter(pl.col("event").is_in(["login", "session", "feature_x_used"]))
    weekend = people.filter(pl.col("timestamp").dt.weekday() >= 6).height / people.height
    assert weekend < 0.12  # spread evenly over the week it would be 2/7, about 0.29
    per_day = people.group_by(pl.col("timestamp").dt.weekday().alias("wd")).len()
    by_day = dict(zip(per_day["wd"], per_day["len"], strict=True))
    assert min(by_day[d] for d in range(1, 6)) > 3 * max(by_day[6], by_day[7])


def test_office_hours(default: Sample) -> None:
    hours = default.events.filter(pl.col("event") == "login")["timestamp"].dt.hour()
    first, last = _bounds(hours)
    assert first >= 7 and last <= 18


# ------------------------------------------------------------------ accounts and personas


def test_every_persona_present(default: Sample) -> None:
    counts = dict(default.personas.group_by("persona").len().iter_rows())
    assert set(counts) == set(PERSONAS)
    assert all(n >= 5 for n in counts.values())


def test_every_persona_present_with_nine_accounts() -> None:
    assert set(sample(len(PERSONAS), seed=2).personas["persona"]) == set(PERSONAS)


def test_prospects_and_customers(default: Sample) -> None:
    acc = default.accounts.join(default.personas, on="account_id")
    prospects = acc.filter(pl.col("lifecycle") == "prospect")
    customers = acc.filter(pl.col("lifecycle") == "customer")
    assert prospects.height + customers.height == acc.height
    assert set(prospects["persona"]) == set(TRIAL_PERSONAS)
    assert set(customers["persona"]) == set(CUSTOMER_PERSONAS)
    assert (prospects["plan"] == "trial").all()
    assert prospects["contract_start"].null_count() == prospects.height
    assert prospects["renewal_date"].null_count() == prospects.height
    assert prospects["trial_start"].null_count() == 0
    assert (prospects["trial_start"] > DEFAULT_AS_OF - timedelta(days=TRIAL_DAYS)).all()
    assert customers["trial_start"].null_count() == customers.height
    assert set(customers["plan"]) <= {"basic", "pro", "enterprise"}
    assert (customers["contract_start"] <= DEFAULT_AS_OF).all()
    assert (customers["renewal_date"] > DEFAULT_AS_OF).all()
    assert (customers["arr"] > 0).all()
    assert set(acc["goal"]) == {"do_it_for_us", "self_sufficient"}
    assert (acc["seats"] >= 1).all()


def test_key_user_is_one_of_the_accounts_users(default: Sample) -> None:
    users = default.events.group_by("account_id").agg(pl.col("user_id").unique().alias("users"))
    joined = default.accounts.join(users, on="account_id", how="left")
    assert joined["users"].null_count() == 0  # every account has events
    assert joined.select(pl.col("users").list.contains(pl.col("key_user")).all()).item()
    several = joined.filter(pl.col("users").list.len() >= 3).height
    assert several > default.accounts.height / 2


def test_users_belong_to_their_account(default: Sample) -> None:
    ev = default.events
    assert (ev["user_id"].str.split("-").list.first() == ev["account_id"]).all()
    dm = ev.filter(pl.col("user_id").str.ends_with("-dm"))
    assert set(dm["event"].unique()) == {"meeting_held"}


def test_key_user_leaving_drops_in_the_last_weeks(default: Sample) -> None:
    end = _end(DEFAULT_AS_OF)
    logins = (
        default.events.join(default.accounts.select("account_id", "key_user"), on="account_id")
        .join(default.personas, on="account_id")
        .filter((pl.col("event") == "login") & (pl.col("user_id") == pl.col("key_user")))
    )
    recent = pl.col("timestamp") >= end - timedelta(days=28)
    before = (pl.col("timestamp") >= end - timedelta(days=56)) & ~recent
    per = logins.group_by("persona").agg(recent.sum().alias("now"), before.sum().alias("before"))
    rows = {r["persona"]: r for r in per.iter_rows(named=True)}
    leaving = rows["key_user_leaving"]
    assert leaving["now"] < 0.4 * leaving["before"]
    healthy = rows["healthy_adopter"]
    assert healthy["now"] > 0.6 * healthy["before"]


def test_persona_signals(default: Sample) -> None:
    ev = default.events.join(default.personas, on="account_id")

    def accounts_with(event: str) -> set[str]:
        return set(ev.filter(pl.col("event") == event)["persona"])

    assert "expansion_ready" in accounts_with("plan_limit_reached")
    assert accounts_with("purchase_intent") <= set(TRIAL_PERSONAS)
    assert accounts_with("trial_started") == set(TRIAL_PERSONAS)
    answered = ev.filter(pl.col("event") == "nps_response").group_by("persona").agg(
        pl.col("value").mean()
    )
    means = dict(answered.iter_rows())
    assert means["expansion_ready"] >= 9
    assert means["renewal_low_usage"] < 7


# ------------------------------------------------------------------ size and speed


def test_two_thousand_accounts_quickly() -> None:
    t0 = time.perf_counter()
    s = sample(2000, seed=5)
    elapsed = time.perf_counter() - t0
    assert s.accounts.height == 2000
    per_account = s.events.height / 2000
    assert 50 < per_account < 200  # about a hundred events per account
    assert elapsed < 10


# ------------------------------------------------------------------ arguments and files


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_accounts": -1},
        {"n_accounts": 2_000_000},
        {"n_accounts": 1.5},
        {"n_accounts": True},
        {"days": 0},
        {"days": 10_000},
        {"as_of": datetime(2026, 6, 30, 12)},
        {"as_of": "2026-06-30"},
    ],
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        sample(**kwargs)  # type: ignore[arg-type]


def test_write_sample_round_trip(tmp_path: Path) -> None:
    target = tmp_path / "out" / "nested"
    paths = write_sample(target, 25, seed=9)
    assert set(paths) == {"events", "accounts", "personas", "tickets", "surveys"}
    s = sample(25, seed=9)
    assert pl.read_parquet(paths["events"]).equals(s.events)
    assert pl.read_parquet(paths["accounts"]).equals(s.accounts)
    assert pl.read_parquet(paths["personas"]).equals(s.personas)
    assert pl.read_parquet(paths["tickets"]).equals(s.tickets)
    assert pl.read_parquet(paths["surveys"]).equals(s.surveys)
    assert sorted(p.name for p in target.iterdir()) == [
        "accounts.parquet",
        "events.parquet",
        "personas.parquet",
        "surveys.parquet",
        "tickets.parquet",
    ]


def test_write_sample_replaces_files_and_leaves_no_temporaries(tmp_path: Path) -> None:
    write_sample(tmp_path, 10, seed=1)
    given = sample(12, seed=2)
    paths = write_sample(tmp_path, data=given)
    assert pl.read_parquet(paths["accounts"]).height == 12
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_write_sample_failure_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(self: pl.DataFrame, file: object, **kwargs: object) -> None:
        Path(str(file)).write_text("partial")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", boom)
    with pytest.raises(OSError, match="disk full"):
        write_sample(tmp_path, 5)
    assert list(tmp_path.iterdir()) == []


def test_renewal_outcomes_follow_the_personas_with_flips() -> None:
    from healthrules.datasets import CHURN_PERSONAS, renewal_outcomes

    s = sample(300, seed=4)
    exact = renewal_outcomes(s, flip=0.0)
    customers = s.accounts.filter(pl.col("lifecycle") == "customer")
    assert exact["account_id"].to_list() == sorted(customers["account_id"].to_list())
    assert exact.schema == pl.Schema({"account_id": pl.String, "renewal_date": pl.Date,
                                      "outcome": pl.String, "arr": pl.Float64})
    assert set(exact["renewal_date"].to_list()) == {s.as_of}
    joined = exact.join(s.personas, on="account_id")
    churned = joined.filter(pl.col("outcome") == "churned")["persona"].unique().to_list()
    assert sorted(churned) == sorted(CHURN_PERSONAS)
    flipped = renewal_outcomes(s, flip=0.5, seed=1).join(exact, on="account_id")
    differs = (flipped["outcome"] != flipped["outcome_right"]).sum()
    assert 0 < differs < flipped.height
    assert renewal_outcomes(s, flip=0.5, seed=1).equals(renewal_outcomes(s, flip=0.5, seed=1))
    assert renewal_outcomes(s, renewal_date=date(2026, 7, 31))["renewal_date"][0] == date(
        2026, 7, 31)
    with pytest.raises(ValueError, match="flip"):
        renewal_outcomes(s, flip=1.5)


# ------------------------------------------------------------------ hierarchy


def test_hierarchy_adds_only_a_parent_column() -> None:
    plain, tree = sample(120, seed=2), sample(120, seed=2, hierarchy=True)
    assert tree.accounts.columns == [*plain.accounts.columns, "parent_id"]
    assert tree.accounts.drop("parent_id").equals(plain.accounts)
    assert tree.events.equals(plain.events) and tree.personas.equals(plain.personas)
    assert tree.accounts.equals(sample(120, seed=2, hierarchy=True).accounts)
    other = sample(120, seed=3, hierarchy=True).accounts  # the tree depends on the seed
    assert not tree.accounts["parent_id"].equals(other["parent_id"])


def test_hierarchy_groups_customers_under_groups_and_holdings() -> None:
    from healthrules.inputs import hierarchy_issues

    accounts = sample(hierarchy=True).accounts
    assert hierarchy_issues(accounts, "account_id", "parent_id") == []
    links = dict(accounts.select("account_id", "parent_id").iter_rows())
    children: dict[str, int] = {}
    for parent in links.values():
        if parent is not None:
            children[parent] = children.get(parent, 0) + 1
    # every group has two or more children; some groups have a group as a child (holdings)
    assert min(children.values()) >= 2
    holdings = {links[g] for g in children if links[g] is not None}
    assert holdings and all(links[h] is None for h in holdings)
    customers = set(accounts.filter(pl.col("lifecycle") == "customer")["account_id"])
    in_tree = {a for a, p in links.items() if p is not None} | set(children)
    assert in_tree <= customers and 0.3 < len(in_tree) / len(customers) < 0.8


def test_dated_hierarchy_names_a_parent_only_while_it_exists() -> None:
    from healthrules.inputs import hierarchy_issues

    dated = sample(120, seed=4, dated=True, hierarchy=True)
    plain = sample(120, seed=4, hierarchy=True).accounts.select("account_id", "parent_id")
    rows = dated.accounts
    joined = rows.join(plain, on="account_id", suffix="_now")
    # a row names the account's group or nothing (while the group has no valid row)
    assert (joined["parent_id"].is_null() | (joined["parent_id"] == joined["parent_id_now"])
            ).all()
    flat = sample(120, seed=4, dated=True).accounts
    assert flat.height < rows.height  # some rows were split where a group came or went
    span = [pl.col("valid_from").min(), pl.col("valid_to").is_null().any().alias("open")]
    assert rows.group_by("account_id").agg(span).sort("account_id").equals(
        flat.group_by("account_id").agg(span).sort("account_id"))
    days = [date(2026, 1, 1) + timedelta(days=7 * k) for k in range(27)]
    valid = pl.concat([rows.filter(
        (pl.col("valid_from") <= d) & (pl.col("valid_to").is_null() | (pl.col("valid_to") > d))
    ).with_columns(pl.lit(d).alias("day")) for d in days])
    assert hierarchy_issues(valid, "account_id", "parent_id", by="day") == []
    assert valid["parent_id"].null_count() < valid.height
