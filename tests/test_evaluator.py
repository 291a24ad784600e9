"""The evaluation engine: windows, aggregates, nulls, stages, scores, actions, tracks, inputs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules.errors import InputDataError

AS_OF = dt.date(2026, 6, 30)
END = dt.datetime(2026, 7, 1)


def roadmap(**overrides: Any) -> hr.Roadmap:
    base: dict[str, Any] = {
        "id": "t",
        "goal": "Customers log in every week",
        "data": {
            "events": {"values": {"value": "float"}},
            "accounts": {"attributes": {"contract_start": "date", "seats": "int",
                                        "plan": "str", "key_user": "str"}},
        },
        "indicators": [],
        "stages": [{"id": "operation"}],
    }
    base.update(overrides)
    return hr.Roadmap.model_validate(base)


def ind(ident: str, aggregate: str = "count", **kw: Any) -> dict[str, Any]:
    return {"id": ident, "family": kw.pop("family", "process"), "aggregate": aggregate, **kw}


def events(rows: list[tuple[str, str, str, dt.datetime | None, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"account_id": pl.String, "user_id": pl.String, "event": pl.String,
                "timestamp": pl.Datetime("us"), "value": pl.Float64},
        orient="row",
    )


def accounts(ids: list[str], **cols: list[Any]) -> pl.DataFrame:
    data: dict[str, Any] = {
        "account_id": ids,
        "contract_start": cols.get("contract_start", [dt.date(2026, 1, 1)] * len(ids)),
        "seats": cols.get("seats", [10] * len(ids)),
        "plan": cols.get("plan", ["pro"] * len(ids)),
        "key_user": cols.get("key_user", ["u1"] * len(ids)),
    }
    return pl.DataFrame(data, schema_overrides={"contract_start": pl.Date, "seats": pl.Int64})


def values(result: hr.Evaluation, column: str) -> dict[str, Any]:
    return dict(result.indicators.select("account_id", column).rows())


# ---------------------------------------------------------------- time and windows


def test_trailing_window_is_half_open_and_point_in_time() -> None:
    r = roadmap(indicators=[ind("n7", window="7d")])
    ev = events([
        ("a", "u1", "login", END - dt.timedelta(days=7), None),              # first instant: in
        ("a", "u1", "login", END - dt.timedelta(days=7, microseconds=1), None),  # just before: out
        ("a", "u1", "login", END - dt.timedelta(microseconds=1), None),      # last instant: in
        ("a", "u1", "login", END, None),                                     # after as_of: out
        ("a", "u1", "login", END + dt.timedelta(days=3), None),              # future: out
    ])
    result = hr.evaluate(r, ev, accounts(["a"]), AS_OF)
    assert values(result, "n7") == {"a": 2}


def test_datetime_as_of_counts_events_strictly_before_it() -> None:
    r = roadmap(indicators=[ind("n", window="all")])
    t = dt.datetime(2026, 6, 30, 12)
    ev = events([("a", "u1", "x", t - dt.timedelta(seconds=1), None),
                 ("a", "u1", "x", t, None)])
    assert values(hr.evaluate(r, ev, accounts(["a"]), t), "n") == {"a": 1}
    assert values(hr.evaluate(r, ev, accounts(["a"]), "2026-06-30T12:00:01"), "n") == {"a": 2}


def test_anchored_window_with_and_without_days_and_null_anchor() -> None:
    r = roadmap(indicators=[
        ind("first_90", window={"from": "contract_start", "days": 90}),
        ind("since_start", window={"from": "contract_start"}),
    ])
    start = dt.date(2026, 3, 1)
    ev = events([
        ("a", "u1", "x", dt.datetime(2026, 2, 28, 23), None),   # before anchor
        ("a", "u1", "x", dt.datetime(2026, 3, 1), None),        # at anchor: in
        ("a", "u1", "x", dt.datetime(2026, 5, 29, 23), None),   # day 89: in
        ("a", "u1", "x", dt.datetime(2026, 5, 30), None),       # day 90: out of first_90
        ("b", "u1", "x", dt.datetime(2026, 5, 1), None),
    ])
    acc = accounts(["a", "b"], contract_start=[start, None])
    result = hr.evaluate(r, ev, acc, AS_OF)
    assert values(result, "first_90") == {"a": 2, "b": None}
    assert values(result, "since_start") == {"a": 3, "b": None}


def test_compare_previous_delta_pct_change() -> None:
    base = {"where": "event == 'login'", "window": "7d"}
    r = roadmap(indicators=[
        ind("cur", **base), ind("prev", compare="previous", **base),
        ind("delta", compare="delta", **base), ind("pct", compare="pct_change", **base),
    ])
    day = dt.timedelta(days=1)
    rows = [("a", "u1", "login", END - 2 * day, None)] * 3 + [
        ("a", "u1", "login", END - 10 * day, None)] * 2 + [
        ("b", "u1", "login", END - 2 * day, None)]
    result = hr.evaluate(r, events(rows), accounts(["a", "b", "c"]), AS_OF)
    assert values(result, "cur") == {"a": 3, "b": 1, "c": 0}
    assert values(result, "prev") == {"a": 2, "b": 0, "c": 0}
    assert values(result, "delta") == {"a": 1, "b": 1, "c": 0}
    assert values(result, "pct") == {"a": 0.5, "b": None, "c": None}


# ---------------------------------------------------------------- aggregates


def test_every_aggregate_and_empty_window_values() -> None:
    r = roadmap(indicators=[
        ind("n", window="30d"),
        ind("users", "distinct", window="30d"),
        ind("days", "active_days", window="30d"),
        ind("total", "sum", of="value", window="30d"),
        ind("avg", "mean", of="value", window="30d"),
        ind("lo", "min", of="value", window="30d"),
        ind("hi", "max", of="value", window="30d"),
        ind("first", "first_time", window="30d"),
        ind("last", "last_time", window="30d"),
        ind("since_first", "days_since_first", window="30d"),
        ind("since_last", "days_since_last", window="30d"),
        ind("events_named", "distinct", of="event", window="30d"),
    ])
    t1 = dt.datetime(2026, 6, 20, 10)
    t2 = dt.datetime(2026, 6, 20, 18)
    t3 = dt.datetime(2026, 6, 29, 8)
    ev = events([
        ("a", "u1", "login", t1, 2.0),
        ("a", "u2", "login", t2, None),
        ("a", "u2", "nps", t3, float("nan")),   # NaN is read as null
        ("a", None, "nps", t3, 4.0),            # null user is not a distinct user
    ])
    result = hr.evaluate(r, ev, accounts(["a", "quiet"]), AS_OF)
    row = result.indicators.filter(pl.col("account_id") == "a").row(0, named=True)
    assert row["n"] == 4
    assert row["users"] == 2
    assert row["days"] == 2
    assert row["total"] == 6.0
    assert row["avg"] == 3.0
    assert (row["lo"], row["hi"]) == (2.0, 4.0)
    assert (row["first"], row["last"]) == (t1, t3)
    assert row["since_first"] == 10   # 2026-06-20 10:00 -> 2026-07-01 00:00
    assert row["since_last"] == 1     # 2026-06-29 08:00 -> 2026-07-01 00:00 is 1 day 16 h
    assert row["events_named"] == 2
    quiet = result.indicators.filter(pl.col("account_id") == "quiet").row(0, named=True)
    assert (quiet["n"], quiet["users"], quiet["days"], quiet["total"]) == (0, 0, 0, 0.0)
    assert quiet["avg"] is None and quiet["lo"] is None and quiet["since_last"] is None
    schema = result.indicators.schema
    assert schema["n"] == pl.Int64 and schema["users"] == pl.Int64 and schema["days"] == pl.Int64


def test_filter_can_read_account_attributes() -> None:
    r = roadmap(indicators=[
        ind("key_user_logins", where="event == 'login' and user_id == key_user", window="30d"),
    ])
    t = dt.datetime(2026, 6, 25)
    ev = events([("a", "u1", "login", t, None), ("a", "u2", "login", t, None),
                 ("b", "u9", "login", t, None)])
    result = hr.evaluate(r, ev, accounts(["a", "b"], key_user=["u1", "u1"]), AS_OF)
    assert values(result, "key_user_logins") == {"a": 1, "b": 0}


def test_null_filter_result_does_not_count() -> None:
    r = roadmap(indicators=[ind("big", where="value > 1", window="all")])
    ev = events([("a", "u1", "x", dt.datetime(2026, 6, 1), None),
                 ("a", "u1", "x", dt.datetime(2026, 6, 1), 5.0)])
    assert values(hr.evaluate(r, ev, accounts(["a"]), AS_OF), "big") == {"a": 1}


# ---------------------------------------------------------------- derived, bands, score


BANDS3 = {"levels": [{"name": "red", "lt": 0.3}, {"name": "yellow", "ge": 0.3, "lt": 0.7},
                     {"name": "green", "ge": 0.7}]}


def test_derived_indicators_division_by_zero_and_bands() -> None:
    r = roadmap(indicators=[
        ind("users", "distinct", window="30d"),
        {"id": "utilisation", "family": "process", "expr": "users / seats", "bands": BANDS3},
        {"id": "doubled", "family": "outcome", "expr": "utilisation * 2"},
    ])
    t = dt.datetime(2026, 6, 25)
    ev = events([("a", f"u{i}", "x", t, None) for i in range(3)] + [("b", "u1", "x", t, None)])
    acc = accounts(["a", "b", "c"], seats=[10, 0, 4])
    result = hr.evaluate(r, ev, acc, AS_OF)
    assert values(result, "utilisation") == {"a": 0.3, "b": None, "c": 0.0}
    assert values(result, "utilisation__band") == {"a": "yellow", "b": None, "c": "red"}
    assert values(result, "doubled") == {"a": 0.6, "b": None, "c": 0.0}


def _scored_roadmap(missing: str, **score: Any) -> hr.Roadmap:
    lo_better = {"direction": "lower_is_better", "levels": [
        {"name": "green", "lt": 2}, {"name": "yellow", "ge": 2, "lt": 5},
        {"name": "red", "ge": 5}]}
    return roadmap(
        indicators=[
            ind("logins", where="event == 'login'", window="30d",
                bands={"levels": [{"name": "red", "lt": 1}, {"name": "green", "ge": 1}]}),
            ind("tickets", where="event == 'ticket'", window="30d", family="relationship",
                bands=lo_better),
            ind("nps", "mean", of="value", where="event == 'nps'", window="90d",
                family="relationship",
                bands={"levels": [{"name": "red", "lt": 7}, {"name": "green", "ge": 7,
                                                             "score": 90}]}),
        ],
        score={"missing": missing, **score},
    )


def test_score_missing_policies() -> None:
    t = dt.datetime(2026, 6, 25)
    ev = events([("a", "u1", "login", t, None)] + [("a", "u1", "ticket", t, None)] * 3)
    acc = accounts(["a"])
    got = {}
    for policy in ("skip", "neutral", "worst"):
        result = hr.evaluate(_scored_roadmap(policy), ev, acc, AS_OF)
        got[policy] = result.scores.row(0, named=True)
    # logins green=100, tickets yellow=50, nps missing
    assert got["skip"]["score"] == pytest.approx(75.0)
    assert got["neutral"]["score"] == pytest.approx(200 / 3)
    assert got["worst"]["score"] == pytest.approx(50.0)
    assert got["skip"]["indicators_missing"] == 1
    assert got["skip"]["indicators_scored"] == 2
    assert got["skip"]["score_relationship"] == pytest.approx(50.0)
    assert got["skip"]["score_process"] == pytest.approx(100.0)


def test_score_family_weights_indicator_weights_and_stage_overrides() -> None:
    t = dt.datetime(2026, 6, 25)
    ev = events([("a", "u1", "login", t, None), ("a", "u1", "nps", t, 8.0)]
                + [("a", "u1", "ticket", t, None)] * 6
                + [("b", "u1", "nps", t, 8.0)])
    r = _scored_roadmap(
        "skip",
        weights={"families": {"process": 3, "relationship": 1},
                 "indicators": {"logins": 1, "tickets": 1, "nps": 3}},
        bands={"levels": [{"name": "red", "lt": 40}, {"name": "green", "ge": 40}]},
        stages={"onboarding": {"weights": {"indicators": {"logins": 1}}}},
    )
    r = r.model_copy(update={"stages": [
        hr.roadmap.Stage(id="onboarding", entry="logins == 0"), hr.roadmap.Stage(id="operation"),
    ]})
    result = hr.evaluate(r, ev, accounts(["a", "b"]), AS_OF)
    a = result.scores.filter(pl.col("account_id") == "a").row(0, named=True)
    b = result.scores.filter(pl.col("account_id") == "b").row(0, named=True)
    # a: operation; process = 100; relationship = (1*0 + 3*90) / 4 = 67.5; total (3*100+67.5)/4
    assert a["stage"] == "operation"
    assert a["score_relationship"] == pytest.approx(67.5)
    assert a["score"] == pytest.approx((3 * 100 + 67.5) / 4)
    assert a["score_band"] == "green"
    # b: onboarding override: only logins (red = 0)
    assert b["stage"] == "onboarding"
    assert b["score"] == pytest.approx(0.0)
    assert b["score_band"] == "red"


# ---------------------------------------------------------------- stages and actions


def test_stage_assignment_first_match_and_unassigned() -> None:
    r = roadmap(
        indicators=[ind("n", window="30d")],
        stages=[
            {"id": "new", "entry": "days_since(contract_start) < 30",
             "achievement": {"text": "used", "when": "n >= 2"},
             "tasks": {"joint": ["kick-off"], "ours": [{"text": "call", "done_when": "n > 0"}]}},
            {"id": "active", "entry": "n > 0"},
        ],
    )
    t = dt.datetime(2026, 6, 25)
    ev = events([("a", "u1", "x", t, None), ("b", "u1", "x", t, None)])
    acc = accounts(["a", "b", "c", "d"], contract_start=[
        dt.date(2026, 6, 20), dt.date(2025, 1, 1), dt.date(2025, 1, 1), None])
    result = hr.evaluate(r, ev, acc, AS_OF)
    stages = {row["account_id"]: row for row in result.stages.to_dicts()}
    assert stages["a"]["stage"] == "new" and stages["a"]["achieved"] is False
    assert stages["a"]["tasks_done"] == 1 and stages["a"]["tasks_total"] == 2
    assert [t["done"] for t in stages["a"]["tasks"]] == [None, True]
    assert stages["b"]["stage"] == "active" and stages["b"]["stage_index"] == 1
    assert stages["c"]["stage"] == "_unassigned" and stages["c"]["stage_index"] is None
    assert stages["d"]["stage"] == "_unassigned"   # null entry criteria do not match


def test_actions_fire_only_on_true_and_unknowns_are_counted() -> None:
    r = roadmap(
        indicators=[ind("avg", "mean", of="value", window="30d"),
                    ind("n", window="30d")],
        stages=[{"id": "operation", "actions": [
            {"id": "low", "kind": "challenge", "when": "avg < 5",
             "do": "Average {avg:.1f} from {n} events", "owner": "csm", "priority": "high"},
            {"id": "many", "kind": "positive", "when": "n >= 2", "do": "{n:d} events",
             "priority": "critical"},
        ]}],
        actions=[{"id": "any", "kind": "positive", "when": "stage == 'operation' and n > 0",
                  "do": "stage {stage}", "priority": "low"}],
    )
    t = dt.datetime(2026, 6, 25)
    ev = events([("a", "u1", "x", t, 1.25), ("a", "u1", "x", t, 2.0),
                 ("b", "u1", "x", t, None)])
    result = hr.evaluate(r, ev, accounts(["a", "b"]), AS_OF)
    rows = result.actions.select("account_id", "action_id", "text").rows()
    assert rows == [
        ("a", "many", "2 events"),
        ("a", "low", "Average 1.6 from 2 events"),
        ("a", "any", "stage operation"),
        ("b", "any", "stage operation"),
    ]
    cond = {r_["action_id"]: r_ for r_ in result.conditions.to_dicts()}
    assert cond["low"] == {"roadmap": "t", "stage": "operation", "action_id": "low",
                           "considered": 2, "fired": 1, "unknown": 1}
    evidence = result.actions.filter(pl.col("action_id") == "low")["evidence"].to_list()[0]
    assert evidence == [{"name": "avg", "value": "1.63", "band": None, "op": "<",
                         "threshold": "5"}]
    records = result.triggered_actions()
    assert records[0].action_id == "many" and records[0].priority == "critical"
    assert result.unknown == 1


# ---------------------------------------------------------------- tracks


def test_pack_routes_each_account_to_the_first_matching_roadmap() -> None:
    common = {"data": {"accounts": {"attributes": {"plan": "str"}}}, "goal": "g",
              "indicators": [ind("n", window="30d")]}
    pro = hr.Roadmap.model_validate({"id": "pro", "applies_to": "plan == 'pro'", **common,
                                     "stages": [{"id": "s"}]})
    rest = hr.Roadmap.model_validate({"id": "basic", "applies_to": "plan != 'trial'", **common,
                                      "stages": [{"id": "s"}]})
    ev = pl.DataFrame({"account_id": ["a"], "user_id": ["u"], "event": ["x"],
                       "timestamp": [dt.datetime(2026, 6, 25)]})
    acc = pl.DataFrame({"account_id": ["a", "b", "c", "d"],
                        "plan": ["pro", "basic", "trial", None]})
    result = hr.evaluate(hr.compile([pro, rest]), ev, acc, AS_OF)
    got = dict(result.stages.select("account_id", "roadmap").rows())
    assert got == {"a": "pro", "b": "basic", "c": None, "d": None}
    assert result.diagnostics["accounts_unrouted"] == 2
    assert result.indicators.height == 2


# ---------------------------------------------------------------- inputs


def test_input_errors_are_reported_together() -> None:
    r = roadmap(indicators=[ind("n", window="30d")])
    bad_events = pl.DataFrame({"account_id": ["a"], "event": [1],
                               "timestamp": ["2026-06-01"], "value": ["x"]})
    acc = pl.DataFrame({"account_id": ["a", "a", None], "contract_start": ["2026-01-01"] * 3,
                        "seats": [1, 2, 3], "plan": ["p"] * 3})
    with pytest.raises(InputDataError) as info:
        hr.evaluate(r, bad_events, acc, AS_OF)
    text = str(info.value)
    for needle in ("'event' is Int64", "'timestamp' is String", "no column 'user_id'",
                   "'value' is String", "'contract_start' is String", "'key_user'"):
        assert needle in text, needle
    assert {i.code for i in info.value.issues} >= {"wrong_dtype", "missing_column"}


def test_duplicate_and_null_account_keys_are_errors() -> None:
    r = roadmap(indicators=[ind("n", window="30d")])
    acc = accounts(["a", "a", "b"]).vstack(accounts(["x"]).with_columns(
        pl.lit(None, pl.String).alias("account_id")))
    with pytest.raises(InputDataError) as info:
        hr.evaluate(r, events([]), acc, AS_OF)
    codes = sorted(i.code for i in info.value.issues)
    assert codes == ["duplicate_account", "null_key"]


def test_timezone_mismatch_is_an_error() -> None:
    r = roadmap(indicators=[ind("n", window="30d")])
    ev = events([]).with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
    with pytest.raises(InputDataError, match="time zone"):
        hr.evaluate(r, ev, accounts(["a"]), AS_OF)


def test_dropped_rows_are_counted() -> None:
    r = roadmap(indicators=[ind("n", window="30d")])
    t = dt.datetime(2026, 6, 25)
    ev = events([("a", "u1", "x", t, None), (None, "u1", "x", t, None),  # type: ignore[list-item]
                 ("zzz", "u1", "x", t, None), ("a", "u1", "x", None, None)])
    result = hr.evaluate(r, ev, accounts(["a"]), AS_OF)
    d = result.diagnostics
    assert (d["events_null_account"], d["events_unknown_account"], d["events_null_timestamp"]) == (
        1, 1, 1)
    assert values(result, "n") == {"a": 1}


def test_lazy_parquet_input(tmp_path: Path) -> None:
    r = roadmap(indicators=[ind("n", window="30d")])
    t = dt.datetime(2026, 6, 25)
    events([("a", "u1", "x", t, None)] * 3).write_parquet(tmp_path / "events.parquet")
    accounts(["a", "b"]).write_parquet(tmp_path / "accounts.parquet")
    result = hr.evaluate(r, pl.scan_parquet(tmp_path / "events.parquet"),
                         pl.scan_parquet(tmp_path / "accounts.parquet"), AS_OF)
    assert values(result, "n") == {"a": 3, "b": 0}


def test_integer_account_keys() -> None:
    r = hr.Roadmap.model_validate({"id": "t", "goal": "g", "stages": [{"id": "s"}],
                                   "indicators": [ind("n", window="30d")]})
    ev = pl.DataFrame({"account_id": [1, 1, 2], "user_id": ["u"] * 3, "event": ["x"] * 3,
                       "timestamp": [dt.datetime(2026, 6, 25)] * 3})
    acc = pl.DataFrame({"account_id": [2, 1, 3]}, schema={"account_id": pl.Int32})
    result = hr.evaluate(r, ev, acc, AS_OF)
    assert result.indicators.select("account_id", "n").rows() == [(1, 2), (2, 1), (3, 0)]


def test_low_memory_distinct_counting_gives_the_same_result() -> None:
    r = roadmap(indicators=[
        ind("users", "distinct", window="30d"),
        ind("days", "active_days", window="30d", compare="delta"),
        ind("kinds", "distinct", of="event", where="value > 1"),
    ])
    t = dt.datetime(2026, 6, 20, 10)
    ev = events([("a", "u1", "x", t, 2.0), ("a", "u2", "y", t, 3.0),
                 ("a", None, "y", t - dt.timedelta(days=40), 5.0),
                 ("b", "u1", "x", t, float("nan"))])
    acc = accounts(["a", "b", "c"])
    fast = hr.evaluate(r, ev, acc, AS_OF)
    small = hr.evaluate(r, ev, acc, AS_OF, low_memory=True)
    assert fast.indicators.equals(small.indicators)
    assert values(fast, "users") == {"a": 2, "b": 1, "c": 0}
    assert values(fast, "kinds") == {"a": 2, "b": 0, "c": 0}


def test_negative_numbers_in_an_in_list() -> None:
    r = roadmap(indicators=[
        ind("d", compare="delta", window="7d"),
        {"id": "flat", "family": "process", "expr": "d in (-1, 0, 1)"},
    ])
    ev = events([("a", "u1", "x", END - dt.timedelta(days=9), None)] * 3)
    assert values(hr.evaluate(r, ev, accounts(["a", "b"]), AS_OF), "flat") == {
        "a": False, "b": True}
