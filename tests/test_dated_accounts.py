"""Accounts that change over time: the data contract, evaluate, history, backtest, the store.

The accounts frame may carry validity (``data.accounts.valid_from`` / ``valid_to``, or
``snapshot``); every evaluation then reads each account's row valid at its date. Checked
here: the contract and its errors, ``evaluate`` against the reference evaluator on generated
dated data, ``history`` against ``evaluate`` date by date (the as-of join, aggregates whose
filters and anchors read changing attributes), stage history, the daily store, the backtest's
leakage and its report, and the dated sample.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.analysis import analyze
from healthrules.datasets import CHURN_PERSONAS, renewal_outcomes, sample
from healthrules.errors import InputDataError, RoadmapError
from healthrules.history import backtest, history, run
from healthrules.history.snapshots import ONE_SNAPSHOT
from healthrules.loader import load_text
from healthrules.roadmap import Roadmap
from healthrules.testing.strategies import accounts_for
from test_engine_vs_reference import AS_OF, ZONES, assert_matches_reference, data, roadmaps

ROOT = Path(__file__).resolve().parents[1]
B2B = ROOT / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"
D = dt.date


def dated(roadmap: Roadmap, **validity: str) -> Roadmap:
    """The roadmap with validity columns declared (validated again)."""
    spec = roadmap.model_dump(by_alias=True, exclude_unset=True)
    spec["data"]["accounts"].update(validity)
    return Roadmap.model_validate(spec)


TYPE2 = {"valid_from": "valid_from", "valid_to": "valid_to"}

PLAN_ROADMAP = Roadmap.model_validate({
    "id": "plans", "goal": "g",
    "data": {"events": {"user": None},
             "accounts": {"attributes": {"plan": "str", "start": "date"}, **TYPE2}},
    "indicators": [
        {"id": "logins_7d", "family": "process", "aggregate": "count",
         "where": "event == 'login'", "window": "7d"},
        {"id": "logins_since_start", "family": "process", "aggregate": "count",
         "where": "event == 'login'", "window": {"from": "start"}},
        {"id": "pro_logins", "family": "process", "aggregate": "count",
         "where": "event == 'login' and plan == 'pro'", "window": "30d"},
    ],
    "stages": [
        {"id": "trial", "entry": "plan == 'trial'",
         "actions": [{"id": "stuck_trial", "kind": "challenge", "when": "stuck(14)",
                      "do": "in trial for {days_in_stage} days"}]},
        {"id": "paying", "entry": "plan != 'trial'",
         "actions": [{"id": "new_payer", "kind": "positive", "when": "days_in_stage < 7",
                      "do": "paying for {days_in_stage} days"}]},
    ],
})


def _events(account_days: dict[str, list[dt.date]]) -> pl.DataFrame:
    rows = [(a, "login", dt.datetime.combine(d, dt.time(10))) for a, days in
            account_days.items() for d in days]
    return pl.DataFrame(rows, schema={"account_id": pl.String, "event": pl.String,
                                      "timestamp": pl.Datetime("us")}, orient="row")


def _accounts(rows: list[tuple[str, str, dt.date | None, dt.date, dt.date | None]],
              ) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"account_id": pl.String, "plan": pl.String,
                                      "start": pl.Date, "valid_from": pl.Date,
                                      "valid_to": pl.Date}, orient="row")


ACCOUNTS = _accounts([
    ("a", "trial", None, D(2026, 5, 1), D(2026, 6, 10)),
    ("a", "pro", D(2026, 6, 10), D(2026, 6, 10), None),
    ("b", "basic", D(2026, 6, 20), D(2026, 6, 20), None),     # starts later
    ("c", "basic", D(2026, 1, 1), D(2026, 1, 1), D(2026, 6, 1)),  # gone on 1 June
])
EVENTS = _events({"a": [D(2026, 5, 20), D(2026, 6, 5), D(2026, 6, 12), D(2026, 6, 29)],
                  "b": [D(2026, 6, 21)], "c": [D(2026, 5, 30)]})


# ---------------------------------------------------------------------- the contract


@pytest.mark.parametrize(("accounts", "message"), [
    ({"valid_from": "f"}, "give valid_from and valid_to together"),
    ({"valid_to": "t"}, "give valid_from and valid_to together"),
    ({"valid_from": "f", "valid_to": "t", "snapshot": "s"}, "not both"),
    ({"valid_from": "account_id", "valid_to": "t"}, "must not also be the key"),
    ({"snapshot": "plan", "attributes": {"plan": "str"}}, "must not also be the key, an attr"),
    ({"valid_from": "x", "valid_to": "x"}, "another validity column"),
])
def test_validity_declarations_are_checked_at_load_time(accounts: dict[str, Any],
                                                        message: str) -> None:
    text = ("kind: roadmap\nid: r\ngoal: g\nstages: [{id: s}]\ndata:\n  accounts:\n"
            + "".join(f"    {k}: {v}\n" for k, v in accounts.items()))
    with pytest.raises(RoadmapError) as err:
        load_text(text)
    issue = err.value.issues[0]
    assert message in issue.message
    assert issue.location.line is not None and issue.location.path.startswith("data.accounts")


def test_validity_is_in_the_json_schema() -> None:
    schema = (ROOT / "docs" / "healthrules.schema.json").read_text()
    for name in ("valid_from", "valid_to", "snapshot"):
        assert f'"{name}"' in schema


def test_a_pack_reads_one_accounts_frame() -> None:
    from healthrules.pack_contract import pack_issues

    plain = PLAN_ROADMAP.model_copy(update={"id": "other"})
    spec = plain.model_dump(by_alias=True, exclude_unset=True)
    del spec["data"]["accounts"]["valid_from"], spec["data"]["accounts"]["valid_to"]
    issues = pack_issues([PLAN_ROADMAP, Roadmap.model_validate(spec)])
    assert any("validity" in i.message for i in issues)


def _problems(accounts: pl.DataFrame, roadmap: Roadmap = PLAN_ROADMAP) -> list[Any]:
    with pytest.raises(InputDataError) as err:
        hr.evaluate(roadmap, EVENTS, accounts, D(2026, 6, 30))
    return list(err.value.issues)


def test_inverted_and_overlapping_rows_name_the_account_and_rows() -> None:
    bad = _accounts([
        ("a", "trial", None, D(2026, 5, 1), D(2026, 6, 12)),  # row 0 overlaps row 1
        ("a", "pro", None, D(2026, 6, 10), None),
        ("b", "basic", None, D(2026, 6, 20), D(2026, 6, 20)),  # row 2 ends as it starts
    ])
    problems = _problems(bad)
    text = [p.message for p in problems]
    assert {p.code for p in problems} == {"bad_validity"}
    assert any("account 'b', row 2: valid_to 2026-06-20 is not after valid_from 2026-06-20"
               in t for t in text), text
    assert any("account 'a', rows 0, 1 (valid from 2026-05-01 until 2026-06-12, and from "
               "2026-06-10)" in t for t in text), text
    overlap = next(p for p in problems if "overlap" in p.message)
    assert overlap.hint and "valid_to" in overlap.hint
    assert overlap.related is not None and overlap.related.path == "data.accounts.valid_from"


def test_an_open_row_followed_by_another_overlaps() -> None:
    bad = _accounts([("a", "trial", None, D(2026, 5, 1), None),
                     ("a", "pro", None, D(2026, 6, 10), None)])
    (problem,) = _problems(bad)
    assert "still open" in problem.message and "rows 0, 1" in problem.message


def test_a_null_start_is_an_error() -> None:
    bad = _accounts([("a", "trial", None, None, None)])  # type: ignore[list-item]
    (problem,) = _problems(bad)
    assert problem.code == "bad_validity" and "null 'valid_from'" in problem.message
    assert "row 0" in problem.message


def test_duplicate_snapshot_rows_name_the_account_and_rows() -> None:
    roadmap = dated(_plain(PLAN_ROADMAP), snapshot="snapshot_date")
    frame = pl.DataFrame({"account_id": ["a", "b", "a"], "plan": ["trial", "pro", "pro"],
                          "start": [None, None, None],
                          "snapshot_date": [D(2026, 6, 1)] * 3},
                         schema_overrides={"start": pl.Date})
    (problem,) = _problems(frame, roadmap)
    assert problem.code == "duplicate_account"
    assert "account 'a' appears 2 times in the snapshot of 2026-06-01 (rows 0, 2)" in (
        problem.message)


def test_missing_and_mistyped_validity_columns() -> None:
    problems = _problems(ACCOUNTS.rename({"valid_to": "valid_until"}))
    assert problems[0].code == "missing_column" and "'valid_to'" in problems[0].message
    problems = _problems(ACCOUNTS.with_columns(pl.col("valid_from").cast(pl.String)))
    assert problems[0].code == "wrong_dtype" and "str.to_date" in (problems[0].hint or "")
    aware = ACCOUNTS.with_columns(pl.col("valid_from", "valid_to").cast(pl.Datetime("us", "UTC")))
    assert _problems(aware)[0].code == "timezone_mismatch"


def _plain(roadmap: Roadmap) -> Roadmap:
    spec = roadmap.model_dump(by_alias=True, exclude_unset=True)
    for k in ("valid_from", "valid_to", "snapshot"):
        spec["data"]["accounts"].pop(k, None)
    return Roadmap.model_validate(spec)


def test_a_plain_roadmap_still_refuses_two_rows_per_account() -> None:
    problems = _problems(ACCOUNTS, _plain(PLAN_ROADMAP))
    assert problems[0].code == "duplicate_account"


# ---------------------------------------------------------------------- evaluate


def test_evaluate_reads_the_row_valid_at_as_of() -> None:
    early = hr.evaluate(PLAN_ROADMAP, EVENTS, ACCOUNTS, D(2026, 6, 9))
    assert early.stages.select("account_id", "stage").rows() == [("a", "trial")]
    assert early.diagnostics["accounts_not_started"] == 1  # b
    assert early.diagnostics["accounts_ended"] == 1  # c
    late = hr.evaluate(PLAN_ROADMAP, EVENTS, ACCOUNTS, D(2026, 6, 30))
    assert late.stages.select("account_id", "stage").rows() == [("a", "paying"), ("b", "paying")]
    assert late.diagnostics["accounts_not_started"] == 0
    assert late.indicators.filter(pl.col("account_id") == "a")["logins_since_start"].item() == 2
    # the row ends at the start of 10 June: 9 June reads the old row, 10 June the new one
    on = hr.evaluate(PLAN_ROADMAP, EVENTS, ACCOUNTS, D(2026, 6, 10))
    assert on.stages.filter(pl.col("account_id") == "a")["stage"].item() == "paying"
    assert on.attributes.filter(pl.col("account_id") == "a")["plan"].item() == "pro"


def test_datetime_validity_and_a_datetime_as_of() -> None:
    roadmap = PLAN_ROADMAP
    accounts = ACCOUNTS.with_columns(
        pl.col("valid_from").cast(pl.Datetime("us")) + pl.duration(hours=12),
        pl.col("valid_to").cast(pl.Datetime("us")) + pl.duration(hours=12))
    before = hr.evaluate(roadmap, EVENTS, accounts, dt.datetime(2026, 6, 10, 12))
    after = hr.evaluate(roadmap, EVENTS, accounts, dt.datetime(2026, 6, 10, 12, 1))
    assert before.stages.filter(pl.col("account_id") == "a")["stage"].item() == "trial"
    assert after.stages.filter(pl.col("account_id") == "a")["stage"].item() == "paying"


def test_snapshot_rows_hold_until_the_next_snapshot() -> None:
    roadmap = dated(_plain(PLAN_ROADMAP), snapshot="snapshot_date")
    frame = pl.DataFrame({
        "account_id": ["a", "b", "a", "a"], "plan": ["trial", "basic", "pro", "pro"],
        "snapshot_date": [D(2026, 6, 1), D(2026, 6, 1), D(2026, 6, 8), D(2026, 6, 15)],
    }).with_columns(pl.lit(None, pl.Date).alias("start"))
    first = hr.evaluate(roadmap, EVENTS, frame, D(2026, 6, 7))
    assert first.stages.select("account_id", "stage").rows() == [("a", "trial"), ("b", "paying")]
    second = hr.evaluate(roadmap, EVENTS, frame, D(2026, 6, 30))
    assert second.stages.select("account_id", "stage").rows() == [("a", "paying")]
    assert second.diagnostics["accounts_ended"] == 1  # b is not in the 8 June snapshot
    assert hr.evaluate(roadmap, EVENTS, frame, D(2026, 5, 31)).diagnostics[
        "accounts_not_started"] == 2


@st.composite
def dated_cases(draw: Any) -> tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any]:
    zone = draw(st.sampled_from(ZONES))
    spec = draw(roadmaps(zone, hierarchy=False))
    validity = draw(st.sampled_from([TYPE2, {"snapshot": "snapshot_date"}]))
    spec["data"]["accounts"].update(validity)
    roadmap = Roadmap.model_validate(spec)
    assume(analyze(roadmap).ok)
    events, _ = draw(data(zone))
    accounts = draw(accounts_for(roadmap, as_of=AS_OF, ids=["c0", "c1", "c2", "c3"]))
    as_of: Any = AS_OF
    if draw(st.booleans()):
        as_of = dt.datetime(2026, 6, 30, draw(st.integers(0, 23)), 30)
    return roadmap, events, accounts, as_of


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dated_cases())
def test_engine_matches_reference_on_dated_accounts(
        case: tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any]) -> None:
    roadmap, events, accounts, as_of = case
    result = hr.evaluate(roadmap, events, accounts, as_of)
    assert_matches_reference(result, roadmap, events, accounts, as_of)


# ---------------------------------------------------------------------- history


def _same_as_evaluate(roadmap: Roadmap, events: pl.DataFrame, accounts: pl.DataFrame,
                      h: Any, dates: list[dt.date]) -> None:
    for day in dates:
        one = hr.evaluate(roadmap, events, accounts, day)
        at = h.at(day)
        for name in ("indicators", "stages", "scores"):
            assert_frame_equal(getattr(at, name), getattr(one, name), check_exact=True)
        for name in ("accounts_not_started", "accounts_ended", "accounts"):
            assert at.diagnostics[name] == one.diagnostics[name], (day, name)
        assert_frame_equal(at.attributes.sort("account_id"),
                           one.attributes.sort("account_id").select(at.attributes.columns))


def test_history_reads_each_dates_row() -> None:
    roadmap = _no_history_actions(PLAN_ROADMAP)
    h = history(roadmap, EVENTS, ACCOUNTS, "2026-05-25", "2026-06-29", every="1d")
    _same_as_evaluate(roadmap, EVENTS, ACCOUNTS, h, list(h.dates))
    assert h.diagnostics["attributes_one_snapshot"] == 0
    assert h.diagnostics["account_dates_not_started"] == 26  # b, before 20 June
    assert h.diagnostics["account_dates_ended"] == 29  # c, from 1 June
    assert "attributes: as of each date" in h.attribute_source
    assert "accounts=3" in repr(h)


def _no_history_actions(roadmap: Roadmap) -> Roadmap:
    spec = roadmap.model_dump(by_alias=True, exclude_unset=True)
    for stage in spec["stages"]:
        stage["actions"] = []
    return Roadmap.model_validate(spec)


KEYED = Roadmap.model_validate({
    "id": "keyed", "goal": "g",
    "data": {"events": {"timezone": "UTC"},
             "accounts": {"attributes": {"start": "date", "key_user": "str", "seats": "int"},
                          **TYPE2}},
    "indicators": [
        {"id": "key_logins", "family": "relationship", "aggregate": "count",
         "where": "user_id == key_user", "window": "30d"},
        {"id": "since_start", "family": "process", "aggregate": "distinct",
         "window": {"from": "start"}},
        {"id": "first_month", "family": "process", "aggregate": "active_days",
         "window": {"from": "start", "days": 30}},
        # reads as_of: one query per date in history (the fallback), with the date's rows
        {"id": "key_after_start", "family": "relationship", "aggregate": "count",
         "where": "user_id == key_user and as_of > start", "window": "14d"},
        {"id": "per_seat", "family": "outcome", "expr": "since_start / seats",
         "bands": {"levels": [{"name": "low", "lt": 0.5}, {"name": "ok", "ge": 0.5}]}},
    ],
    "stages": [{"id": "new", "entry": "days_since(start) < 30"}, {"id": "live"}],
})


@st.composite
def keyed_frames(draw: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
    ids = ["a0", "a1", "a2"]
    accounts = draw(accounts_for(KEYED, as_of=D(2026, 6, 30), ids=ids, nulls=False))
    n = draw(st.integers(5, 40))
    events = pl.DataFrame({
        "account_id": [draw(st.sampled_from(ids)) for _ in range(n)],
        "user_id": [draw(st.sampled_from(["u0", "u1", "u2"])) for _ in range(n)],
        "event": ["login"] * n,
        "timestamp": [dt.datetime(2026, 5, 1) + dt.timedelta(hours=draw(st.integers(0, 1500)))
                      for _ in range(n)],
    }).with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
    return events, accounts


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keyed_frames())
def test_history_of_changing_filter_and_anchor_attributes_equals_evaluate(
        frames: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, accounts = frames
    h = history(KEYED, events, accounts, "2026-05-20", "2026-07-04", every="3d")
    _same_as_evaluate(KEYED, events, accounts, h, list(h.dates))
    assert h.diagnostics["events_read"] <= events.height  # counted once per event
    assert h.diagnostics["history_fallback_indicators"] == 1


def test_history_of_a_plain_frame_says_attributes_came_from_one_snapshot() -> None:
    plain = _no_history_actions(_plain(PLAN_ROADMAP))
    today = ACCOUNTS.filter(pl.col("valid_to").is_null()).drop("valid_from", "valid_to")
    h = history(plain, EVENTS, today, "2026-06-01", "2026-06-29")
    assert h.diagnostics["attributes_one_snapshot"] == 1
    assert h.attribute_source == ONE_SNAPSHOT
    assert "account_dates_not_started" not in h.diagnostics


def test_stage_age_follows_the_dated_rows() -> None:
    h = history(PLAN_ROADMAP, EVENTS, ACCOUNTS, "2026-05-25", "2026-06-29", every="1d")
    a = h.stages.filter(pl.col("account_id") == "a").select("as_of", "stage")
    changed = a.filter(pl.col("stage") != pl.col("stage").shift(1))
    assert changed.rows() == [(D(2026, 6, 10), "paying")]  # on the day the CRM changed it
    fired = h.actions.filter(pl.col("account_id") == "a").select("as_of", "action_id", "text")
    # stuck in trial from 1 May: 14 days after the first snapshot; paying from 10 June
    assert fired.filter(pl.col("as_of") == D(2026, 6, 10)).rows() == [
        (D(2026, 6, 10), "new_payer", "paying for 0 days")]
    assert fired.filter(pl.col("as_of") == D(2026, 6, 9))["action_id"].to_list() == [
        "stuck_trial"]
    assert fired.filter(pl.col("as_of") == D(2026, 6, 17))["action_id"].to_list() == []


def test_the_store_follows_the_dated_rows(tmp_path: Path) -> None:
    store = tmp_path / "state.db"
    stages: dict[dt.date, str] = {}
    for k in range(6):
        day = D(2026, 6, 7) + dt.timedelta(days=k)
        result = run(PLAN_ROADMAP, store, EVENTS, ACCOUNTS, day)
        stages[day] = result.evaluation.stages.filter(pl.col("account_id") == "a")["stage"].item()
        if day == D(2026, 6, 10):
            assert result.changes.filter(pl.col("account_id") == "a").select(
                "change", "action_id").rows() == [("opened", "new_payer")]
    assert [stages[D(2026, 6, d)] for d in range(7, 13)] == [
        "trial", "trial", "trial", "paying", "paying", "paying"]
    # a later run never sees the accounts that had not started
    assert run(PLAN_ROADMAP, store, EVENTS, ACCOUNTS, D(2026, 6, 13)).evaluation.diagnostics[
        "accounts_not_started"] == 1


# ---------------------------------------------------------------------- backtest


LEAK = Roadmap.model_validate({
    "id": "leak", "goal": "g",
    "data": {"events": {"user": None},
             "accounts": {"attributes": {"status": "str"}, **TYPE2}},
    "indicators": [
        {"id": "logins_30d", "family": "process", "aggregate": "count",
         "where": "event == 'login'", "window": "30d",
         "bands": {"levels": [{"name": "low", "lt": 4}, {"name": "high", "ge": 4}]}},
        {"id": "staying", "family": "relationship",
         "expr": "0 if status == 'cancelling' else 1",
         "bands": {"levels": [{"name": "cancelling", "lt": 0.5}, {"name": "no", "ge": 0.5}]}},
    ],
    "stages": [{"id": "live"}],
    "score": {"bands": {"levels": [{"name": "red", "lt": 50}, {"name": "green", "ge": 50}]}},
})


def _leak_data() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """40 accounts, all renewing on 1 June; usage says little, and the CRM marks every
    churner 'cancelling' 30 days before the renewal: after the scoring date (90 days
    before). A frame of today's attributes hands the backtest the answer."""
    renewal = D(2026, 6, 1)
    ids = [f"a{i:02d}" for i in range(40)]
    churned = {i for i in ids if int(i[1:]) % 3 == 0}
    rows, outcomes = [], []
    days: dict[str, list[dt.date]] = {}
    for i, acc in enumerate(ids):
        mark = renewal - dt.timedelta(days=30)
        if acc in churned:
            rows += [(acc, "active", D(2025, 1, 1), mark), (acc, "cancelling", mark, None)]
        else:
            rows.append((acc, "active", D(2025, 1, 1), None))
        outcomes.append((acc, renewal, "churned" if acc in churned else "renewed", 1000.0))
        days[acc] = [renewal - dt.timedelta(days=95 + (i * 7 + k * 3) % 25) for k in range(i % 6)]
    accounts = pl.DataFrame(rows, schema={"account_id": pl.String, "status": pl.String,
                                          "valid_from": pl.Date, "valid_to": pl.Date},
                            orient="row")
    out = pl.DataFrame(outcomes, schema={"account_id": pl.String, "renewal_date": pl.Date,
                                         "outcome": pl.String, "arr": pl.Float64}, orient="row")
    return _events(days), accounts, out


def test_backtest_does_not_see_attributes_from_after_the_date() -> None:
    events, accounts, outcomes = _leak_data()
    args = dict(start="2026-05-01", end="2026-06-30", horizon=90, lookback=28)
    honest = backtest(LEAK, events, accounts, outcomes, **args)  # type: ignore[arg-type]
    today = accounts.sort("valid_from").group_by("account_id").last().drop(
        "valid_from", "valid_to")
    leaky = backtest(_plain(LEAK), events, today, outcomes, **args)  # type: ignore[arg-type]
    # what usage alone tells: the same roadmap without the attribute
    usage_only = backtest(_plain(LEAK), events, today.with_columns(pl.lit("active").alias(
        "status")), outcomes, **args)  # type: ignore[arg-type]
    assert leaky.auc == 1.0  # the future flag separates churners perfectly
    assert honest.auc is not None and usage_only.auc is not None
    assert honest.auc == pytest.approx(usage_only.auc)  # the flag did not help the honest one
    assert honest.auc < 0.8
    assert "attributes: as of each date" in honest.table().splitlines()[1]
    assert leaky.table().splitlines()[1] == ONE_SNAPSHOT
    assert honest.to_dict()["attributes_dated"] is True
    assert leaky.to_dict()["attributes_dated"] is False
    assert "one snapshot for every date" in leaky._repr_html_()


def test_backtest_does_not_score_accounts_before_they_existed() -> None:
    events, accounts, outcomes = _leak_data()
    late = accounts.with_columns(
        pl.when(pl.col("account_id") == "a01").then(pl.lit(D(2026, 4, 1)))
        .otherwise(pl.col("valid_from")).alias("valid_from"))
    bt = backtest(LEAK, events, late, outcomes, start="2026-05-01", end="2026-06-30",
                  horizon=90, lookback=28)
    assert bt.separation["unscored"].item() == 1  # a01 did not exist 90 days before


# ---------------------------------------------------------------------- the dated sample


def test_dated_sample_rows_pass_the_checks_and_tell_a_story() -> None:
    s = sample(200, dated=True)
    plain = sample(200)
    a = s.accounts
    assert s.dated and not plain.dated
    assert a["account_id"].n_unique() == 200 and a.height > 300
    assert a.columns[-3:] == ["csm", "valid_from", "valid_to"]
    latest = s.latest()
    assert latest.height == 200 and "valid_from" not in latest.columns
    assert_frame_equal(latest.drop("csm").filter(pl.col("account_id").is_in(
        a.filter(pl.col("valid_to").is_not_null())["account_id"].implode()).not_()),
        plain.accounts.filter(pl.col("account_id").is_in(
            a.filter(pl.col("valid_to").is_not_null())["account_id"].implode()).not_()))
    changed = a.group_by("account_id").agg(pl.col("seats", "plan", "csm", "renewal_date")
                                           .n_unique())
    for column in ("seats", "plan", "csm", "renewal_date"):
        assert changed.filter(pl.col(column) > 1).height > 0, column
    gone = a.filter(pl.col("valid_to").is_not_null()).group_by("account_id").agg(
        pl.col("valid_to").max()).join(a.filter(pl.col("valid_to").is_null()), on="account_id",
                                       how="anti")
    assert 0 < gone.height < 20
    assert set(s.personas.join(gone, on="account_id")["persona"]) <= set(CHURN_PERSONAS)
    after = s.events.join(gone, on="account_id").filter(
        pl.col("timestamp").dt.date() >= pl.col("valid_to"))
    assert after.height == 0
    out = renewal_outcomes(s)
    assert set(out.join(gone, on="account_id")["outcome"]) == {"churned"}
    # the roadmap reads it once the columns are declared
    roadmap = dated(hr.load(B2B), **TYPE2)
    ev = hr.evaluate(roadmap, s.events, s.accounts, s.as_of)
    assert ev.diagnostics["accounts"] == 200 - gone.height
    assert sample(50, dated=True).accounts.equals(sample(50, dated=True).accounts)


def test_dated_sample_history_equals_evaluate_and_is_honest_about_the_past() -> None:
    s = sample(120, dated=True, days=300)
    roadmap = dated(hr.load(B2B), **TYPE2)
    dates = [D(2026, 1, 5) + dt.timedelta(weeks=k) for k in range(26)]
    h = history(roadmap, s.events, s.accounts, dates[0], dates[-1])
    _same_as_evaluate(roadmap, s.events, s.accounts, h, dates[::5])
    assert h.diagnostics["account_dates_not_started"] > 0
    plain = history(hr.load(B2B), s.events, s.latest(), dates[0], dates[-1])
    # today's frame puts contracts that had not started yet into a stage
    first = plain.at(dates[0]).stages.height
    assert first == 120 and h.at(dates[0]).stages.height < first


@pytest.mark.parametrize("validity", [TYPE2, {"snapshot": "snapshot_date"}])
def test_generated_dated_accounts_fit_the_contract(validity: dict[str, str]) -> None:
    roadmap = dated(_plain(KEYED), **validity)
    frames = []

    @settings(max_examples=30, deadline=None)
    @given(accounts_for(roadmap, as_of=D(2026, 6, 30), ids=["a0", "a1", "a2"]))
    def check(accounts: pl.DataFrame) -> None:
        hr.evaluate(roadmap, EVENTS.with_columns(
            pl.col("timestamp").dt.replace_time_zone("UTC"), pl.lit("u0").alias("user_id")),
            accounts, D(2026, 6, 30))  # no InputDataError: the rows never overlap
        frames.append(accounts)

    check()
    assert all(set(validity.values()) <= set(f.columns) for f in frames)
    assert any(f.height > f["account_id"].n_unique() for f in frames)  # versions


def test_rule_tests_of_a_dated_roadmap_read_each_account_at_every_date(tmp_path: Path) -> None:
    from healthrules.testing import run as run_tests

    (tmp_path / "roadmap.yaml").write_text(
        "kind: roadmap\nid: plans\ngoal: g\n"
        "data:\n  events: {user: null}\n  accounts:\n    attributes: {plan: str}\n"
        "    valid_from: valid_from\n    valid_to: valid_to\n"
        "indicators:\n  - {id: logins_7d, family: process, aggregate: count, "
        "where: \"event == 'login'\", window: 7d}\n"
        "stages:\n  - {id: trial, entry: \"plan == 'trial'\"}\n  - {id: paying}\n")
    (tmp_path / "plans.test.yaml").write_text(
        "kind: test\nroadmap: roadmap.yaml\nas_of: 2026-06-30\ncases:\n"
        "  - name: one row each\n    accounts: {a: {plan: trial}, b: {plan: pro}}\n"
        "    events:\n      a: [login x2 at -1d]\n"
        "    expect:\n      a: {stage: trial, indicators: {logins_7d: 2}}\n"
        "      b: {stage: paying}\n")
    report = run_tests([tmp_path])
    assert report.ok, report.render()
