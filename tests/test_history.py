"""history(): every snapshot equals evaluate() at its date, on random data; point in time."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.history import history
from healthrules.history.snapshots import date_range, parse_every

ROOT = Path(__file__).resolve().parents[1]

AGGS = ["count", "distinct", "active_days", "sum", "mean", "min", "max", "first_time",
        "last_time", "days_since_first", "days_since_last", "median", "percentile"]
EVENTS = ["login", "report", "ticket", "export"]


def _random_case(seed: int, tz: str | None) -> tuple[list[dict[str, Any]], pl.DataFrame,
                                                      pl.DataFrame, dt.date]:
    rng = random.Random(seed)
    as_of = dt.date(2026, 3, 31)
    n_acc = rng.randint(3, 9)
    accounts = pl.DataFrame({
        "account_id": [f"a{i}" for i in range(n_acc)],
        "plan": [rng.choice(["pro", "basic", None]) for _ in range(n_acc)],
        "seats": [rng.choice([None, 3, 10, 25]) for _ in range(n_acc)],
        "start": [None if rng.random() < 0.15 else as_of - dt.timedelta(days=rng.randint(0, 200))
                  for _ in range(n_acc)],
        "signed_at": [None if rng.random() < 0.15 else dt.datetime(2026, 1, 1)
                      + dt.timedelta(minutes=rng.randint(0, 120 * 24 * 60)) for _ in range(n_acc)],
        "key_user": [f"u{rng.randint(0, 3)}" for _ in range(n_acc)],
    }, schema={"account_id": pl.String, "plan": pl.String, "seats": pl.Int64,
               "start": pl.Date, "signed_at": pl.Datetime("us"), "key_user": pl.String})
    if tz is not None:
        accounts = accounts.with_columns(pl.col("signed_at").dt.replace_time_zone(tz))
    n_ev = rng.randint(40, 400)
    t0 = dt.datetime(2025, 11, 1)
    rows = {
        "account_id": [rng.choice([*accounts["account_id"].to_list(), "ghost", None])
                       if rng.random() < 0.05 else f"a{rng.randrange(n_acc)}"
                       for _ in range(n_ev)],
        "user_id": [None if rng.random() < 0.1 else f"u{rng.randint(0, 4)}" for _ in range(n_ev)],
        "event": [rng.choice(EVENTS) for _ in range(n_ev)],
        "timestamp": [None if rng.random() < 0.02 else
                      t0 + dt.timedelta(minutes=rng.randint(0, 160 * 24 * 60))
                      for _ in range(n_ev)],
        "minutes": [rng.choice([None, float("nan"), 0.5, 1.25, 3.0, 10.0, -2.5, 7.75])
                    for _ in range(n_ev)],
        "nps": [rng.choice([None, 0, 5, 7, 9, 10]) for _ in range(n_ev)],
    }
    events = pl.DataFrame(rows, schema={
        "account_id": pl.String, "user_id": pl.String, "event": pl.String,
        "timestamp": pl.Datetime("us"), "minutes": pl.Float64, "nps": pl.Int64})
    if tz is not None:
        events = events.with_columns(pl.col("timestamp").dt.replace_time_zone(tz))
    indicators: list[dict[str, Any]] = []
    wheres = [None, "event == 'login'", "event in ('report', 'export')",
              "event == 'login' and user_id == key_user", "plan == 'pro' or nps >= 7",
              "minutes > 1", "days_between(timestamp, as_of) <= 10"]
    for k in range(rng.randint(4, 9)):
        agg = rng.choice(AGGS)
        window: Any = rng.choice(["7d", "30d", "2w", 90, "all", {"from": "start"},
                                  {"from": "start", "days": 30},
                                  {"from": "signed_at", "days": 14}, {"from": "signed_at"}])
        ind: dict[str, Any] = {"id": f"x{k}", "family": rng.choice(
            ["process", "relationship", "outcome"]), "aggregate": agg, "window": window}
        w = rng.choice(wheres)
        if w is not None:
            ind["where"] = w
        if agg in ("sum", "mean", "min", "max", "median", "percentile"):
            ind["of"] = rng.choice(["minutes", "nps"])
        if agg == "percentile":
            ind["q"] = rng.choice([0.1, 0.25, 0.9, 0.333333])
        elif agg == "distinct" and rng.random() < 0.3:
            ind["of"] = "event"
        trailing = isinstance(window, (int, str)) and window != "all"
        if trailing and agg not in ("first_time", "last_time") and rng.random() < 0.4:
            ind["compare"] = rng.choice(["previous", "delta", "pct_change"])
        numeric = agg not in ("first_time", "last_time")
        if numeric and rng.random() < 0.6:
            cut = rng.choice([1, 2, 5])
            ind["bands"] = {"levels": [{"name": "red", "lt": cut}, {"name": "green", "ge": cut}]}
            if rng.random() < 0.3:
                ind["missing"] = rng.choice(["skip", "neutral", "worst"])
        indicators.append(ind)
    numeric_ids = [i["id"] for i in indicators
                   if i["aggregate"] not in ("first_time", "last_time")]
    if numeric_ids:
        a = rng.choice(numeric_ids)
        indicators.append({"id": "ratio", "family": "outcome",
                           "expr": f"{a} / seats if seats is not None else days_since(start)",
                           "bands": {"levels": [{"name": "low", "lt": 0.5},
                                                {"name": "high", "ge": 0.5}]}})
    cond = f"{numeric_ids[0]} >= 1" if numeric_ids else "plan == 'pro'"
    roadmap = {
        "id": f"r{seed}", "goal": {"text": "g", "target": cond},
        "data": {"events": {"values": {"minutes": "float", "nps": "int"}, "timezone": tz},
                 "accounts": {"attributes": {"plan": "str", "seats": "int", "start": "date",
                                             "signed_at": "datetime", "key_user": "str"}}},
        "indicators": indicators,
        "stages": [
            {"id": "new", "entry": "days_since(start) < 60",
             "achievement": {"text": "active", "when": cond},
             "tasks": {"ours": [{"text": "check", "done_when": cond}]},
             "actions": [{"id": "nudge", "kind": "challenge", "when": f"not ({cond})",
                          "do": "as of {as_of}: score {score:.1f}"}]},
            {"id": "steady", "entry": "plan is not None"},
            {"id": "other"},
        ],
        "actions": [{"id": "watch", "kind": "challenge", "priority": "high",
                     "when": "score < 60 or days_since(start) > 100 or goal_reached",
                     "do": "score {score} since {start}"}],
        "score": {"bands": {"levels": [{"name": "red", "lt": 40}, {"name": "yellow", "ge": 40,
                                                                     "lt": 70},
                                       {"name": "green", "ge": 70}]},
                  "missing": rng.choice(["skip", "neutral", "worst"])},
    }
    return [roadmap], events, accounts, as_of


def _assert_same(h: hr.Evaluation, e: hr.Evaluation) -> None:
    for name, frame in e.frames.items():
        got = h.frames[name]
        assert got.columns == frame.columns, name
        # bit for bit: float sums are exact in both (docs/semantics.md, "Floating point")
        assert_frame_equal(got, frame, check_dtypes=True, check_exact=True)


@pytest.mark.parametrize("seed", range(8))
def test_every_snapshot_equals_evaluate(seed: int) -> None:
    tz = [None, "UTC", "America/New_York", "Asia/Tokyo"][seed % 4]
    roadmaps, events, accounts, as_of = _random_case(seed, tz)
    plan = hr.compile(hr.Roadmap.model_validate(roadmaps[0]))
    every = ["1w", "3d", "1d"][seed % 3]
    start = as_of - dt.timedelta(days=45 if every == "1d" else 120)
    h = history(plan, events, accounts, start, as_of, every=every)
    assert list(h.dates) == date_range(start, as_of, every)
    for d in h.dates:
        _assert_same(h.at(d), hr.evaluate(plan, events, accounts, d))


def test_pack_routes_per_date() -> None:
    """Two tracks, routing on as_of: accounts change roadmap between snapshots."""
    base, events, accounts, as_of = _random_case(99, "UTC")
    r1 = dict(base[0], id="young", applies_to="days_since(start) < 90")
    r2 = dict(base[0], id="old", applies_to="plan == 'pro'")
    plan = hr.compile([hr.Roadmap.model_validate(r1), hr.Roadmap.model_validate(r2)])
    h = history(plan, events, accounts, as_of - dt.timedelta(days=70), as_of, every="1w")
    for d in h.dates:
        _assert_same(h.at(d), hr.evaluate(plan, events, accounts, d))
    assert h.stages["roadmap"].null_count() > 0


def test_no_snapshot_sees_a_later_event() -> None:
    """Events after a snapshot, even one second after its midnight, never change it."""
    roadmaps, events, accounts, as_of = _random_case(3, "Europe/Paris")
    plan = hr.compile(hr.Roadmap.model_validate(roadmaps[0]))
    start = as_of - dt.timedelta(days=60)
    h = history(plan, events, accounts, start, as_of, every="1w")
    cut = h.dates[3]
    later = pl.DataFrame({
        "account_id": ["a0", "a1", "a0"], "user_id": ["u9", "u1", "u2"],
        "event": ["login", "ticket", "report"],
        "timestamp": [dt.datetime.combine(cut + dt.timedelta(days=1), dt.time()),
                      dt.datetime.combine(cut + dt.timedelta(days=1), dt.time(0, 0, 1)),
                      dt.datetime.combine(cut + dt.timedelta(days=2), dt.time(12))],
        "minutes": [5.0, 9.0, 1.0], "nps": [10, 0, 3],
    }, schema=events.schema.to_python() | {"timestamp": pl.Datetime("us")}).with_columns(
        pl.col("timestamp").dt.replace_time_zone("Europe/Paris"))
    h2 = history(plan, pl.concat([events, later]), accounts, start, as_of, every="1w")
    for d in h.dates:
        if d <= cut:
            _assert_same(h2.at(d), h.at(d))
    assert not h2.indicators.filter(pl.col("as_of") > cut).equals(
        h.indicators.filter(pl.col("as_of") > cut))


def test_lazy_inputs_and_errors() -> None:
    roadmaps, events, accounts, _ = _random_case(5, None)
    plan = hr.compile(hr.Roadmap.model_validate(roadmaps[0]))
    h = history(plan, events.lazy(), accounts.lazy(), "2026-03-01", "2026-03-31", every=7)
    assert h.dates[0] == dt.date(2026, 3, 1) and h.dates[-1] == dt.date(2026, 3, 29)
    with pytest.raises(hr.InputDataError, match=r"time zone"):
        history(plan, events.with_columns(pl.col("timestamp").dt.replace_time_zone("UTC")),
                accounts, "2026-03-01", "2026-03-31")
    with pytest.raises(ValueError, match="every"):
        parse_every("1m")
    with pytest.raises(ValueError, match="before start"):
        history(plan, events, accounts, "2026-03-31", "2026-03-01")
    with pytest.raises(KeyError):
        h.at("2026-03-02")


def test_b2b_example_on_sample_data() -> None:
    """The B2B example (anchored windows, attribute filters, pct_change, packs of stages)."""
    from pathlib import Path

    from healthrules.datasets import sample

    s = sample(40, days=260)
    path = Path(__file__).parent.parent / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"
    plan = hr.compile(hr.load(path))
    start = s.as_of - dt.timedelta(weeks=10)
    h = history(plan, s.events, s.accounts, start, s.as_of, every="1w")
    for d in (h.dates[0], h.dates[4], h.dates[-1]):
        _assert_same(h.at(d), hr.evaluate(plan, s.events, s.accounts, d))
    assert h.lifecycle.changes.height > 0


def test_healthrules_history_is_callable_as_the_api_spells_it() -> None:
    import healthrules.history as module
    from healthrules.datasets import sample

    roadmap = hr.load(ROOT / "rules" / "examples" / "b2b-saas" / "roadmap.yaml")
    data = sample(20)
    called = hr.history(roadmap, data.events, data.accounts, "2026-06-16", "2026-06-30")
    direct = module.history(roadmap, data.events, data.accounts, "2026-06-16", "2026-06-30")
    assert hr.history is module
    assert called.dates == direct.dates
    assert called.scores.equals(direct.scores)
