"""Spark integration: the Spark result equals the polars result, row for row (issue #7).

One local Spark session (``local[2]``) serves the module. Its session time zone is Asia/Tokyo
on purpose: timestamps cross the Arrow boundary in the session zone and must come back in the
roadmap's declared zone. The tests skip only when no Java runtime is found.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.datasets import sample
from healthrules.errors import InputDataError
from healthrules.integrations import MissingExtraError, import_optional

EXAMPLES = Path(__file__).resolve().parents[1] / "rules" / "examples"
EXAMPLE_FILES = ["b2b-saas/roadmap.yaml", "goal-tracks/pack.yaml",
                 "trial-conversion/roadmap.yaml", "subscription-upsell/roadmap.yaml"]


def _java_found() -> bool:
    return shutil.which("java") is not None or bool(os.environ.get("JAVA_HOME"))


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    if not _java_found():
        pytest.skip("the Spark tests need a Java 17+ runtime: no `java` on PATH, no JAVA_HOME")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[2]").appName("healthrules-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "3")
               .config("spark.sql.session.timeZone", "Asia/Tokyo")
               .config("spark.driver.memory", "1g")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _to_spark(spark: Any, frame: pl.DataFrame) -> Any:
    return spark.createDataFrame(frame.to_arrow(compat_level=pl.CompatLevel.oldest()))


def _assert_same(result: Any, want: hr.Evaluation) -> None:
    got = result.to_polars()  # one Spark job for every frame and the diagnostics
    key = want.account_key
    for name, frame in want.frames.items():
        if name == "actions":
            frame = frame.sort(key, "roadmap", "action_id", nulls_last=True)
        elif name == "conditions":
            frame = frame.sort("roadmap", "stage", "action_id", nulls_last=True)
        else:
            frame = frame.sort(key, "roadmap", nulls_last=True)
        assert_frame_equal(got[name], frame, check_exact=True)  # bit for bit
    assert dict(got["diagnostics"].iter_rows()) == want.diagnostics


# ---------------------------------------------------------------------- without Spark


def test_missing_extra_error_names_the_install_command() -> None:
    with pytest.raises(MissingExtraError, match=r"pip install 'healthrules\[spark\]'"):
        import_optional("no_such_module_for_healthrules", extra="spark", purpose="a test")


def test_public_alias_reexports_the_integration() -> None:
    import healthrules.spark as alias
    from healthrules.integrations import spark as impl

    assert alias.evaluate is impl.evaluate
    assert alias.SparkEvaluation is impl.SparkEvaluation
    with pytest.raises(AttributeError):
        alias.no_such_name  # noqa: B018


def test_spark_types_of_the_result_frames() -> None:
    from healthrules.integrations.spark import spark_schema

    ev = hr.evaluate(hr.load(EXAMPLES / "b2b-saas" / "roadmap.yaml"),
                     sample(5).events, sample(5).accounts, dt.date(2026, 6, 30))
    schema = spark_schema(ev.actions)
    assert schema["evidence"].dataType.simpleString() == (
        "array<struct<name:string,value:string,band:string,op:string,threshold:string>>")
    assert spark_schema(ev.stages)["tasks"].dataType.simpleString() == (
        "array<struct<list:string,text:string,done:boolean>>")


# ---------------------------------------------------------------------- with Spark


@pytest.fixture(scope="module")
def sample_data(spark: Any) -> tuple[Any, Any, Any]:
    data = sample(40, seed=3)
    return data, _to_spark(spark, data.events), _to_spark(spark, data.accounts)


@pytest.mark.parametrize("example", EXAMPLE_FILES)
def test_spark_equals_polars_on_the_example_packs(
        example: str, sample_data: tuple[Any, Any, Any]) -> None:
    from healthrules.integrations import spark as hs

    data, events, accounts = sample_data
    source = hr.load(EXAMPLES / example)
    want = hr.evaluate(source, data.events, data.accounts, data.as_of)
    result = hs.evaluate(source, events, accounts, data.as_of, partitions=3)
    try:
        _assert_same(result, want)
    finally:
        result.unpersist()


def test_spark_equals_polars_over_several_event_sources(
        spark: Any, sample_data: tuple[Any, Any, Any]) -> None:
    """The example pack over usage, tickets (milliseconds) and surveys (dates): one Spark
    DataFrame per source, the same rows as polars, the counters per source."""
    from healthrules.integrations import spark as hs

    data, events, accounts = sample_data
    source = hr.load(EXAMPLES / "b2b-saas-signals" / "roadmap.yaml")
    want = hr.evaluate(source, data.sources, data.accounts, data.as_of)
    frames = {"usage": events, "tickets": _to_spark(spark, data.tickets),
              "surveys": _to_spark(spark, data.surveys)}
    result = hs.evaluate(source, frames, accounts, data.as_of, partitions=3)
    try:
        _assert_same(result, want)
        assert want.diagnostics["tickets:events_read"] > 0
    finally:
        result.unpersist()
    with pytest.raises(InputDataError, match="no events DataFrame for source 'surveys'"):
        hs.evaluate(source, {"usage": events, "tickets": frames["tickets"]}, accounts,
                    data.as_of)


def test_spark_takes_a_roadmap_path_and_writes_each_frame(
        sample_data: tuple[Any, Any, Any], tmp_path: Path) -> None:
    from healthrules.integrations import spark as hs

    data, events, accounts = sample_data
    path = EXAMPLES / "trial-conversion" / "roadmap.yaml"
    result = hs.evaluate(str(path), events, accounts, data.as_of, partitions=2)
    written = result.write(tmp_path / "out")
    assert [Path(p).name for p in written] == [
        "indicators", "stages", "scores", "actions", "conditions", "diagnostics"]
    assert all((Path(p) / "_SUCCESS").exists() for p in written)
    assert result.diagnostics_dict() == hr.evaluate(
        hr.load(path), data.events, data.accounts, data.as_of).diagnostics
    want = hr.evaluate(hr.load(path), data.events, data.accounts, data.as_of)
    back = pl.read_parquet(tmp_path / "out" / "scores" / "*.parquet").sort("account_id")
    assert_frame_equal(back, want.scores.sort("account_id"), check_exact=False)
    result.unpersist()


def test_contract_problems_are_reported_on_the_driver(sample_data: tuple[Any, Any, Any]) -> None:
    from healthrules.integrations import spark as hs

    data, events, accounts = sample_data
    roadmap = hr.load(EXAMPLES / "b2b-saas" / "roadmap.yaml")
    with pytest.raises(InputDataError, match="'user_id'"):
        hs.evaluate(roadmap, events.drop("user_id"), accounts, data.as_of)
    with pytest.raises(InputDataError, match="seats"):
        hs.evaluate(roadmap, events, accounts.withColumn("seats", accounts["name"]),
                    data.as_of)


# ---------------------------------------------------------------------- generated data

AS_OF = dt.date(2026, 6, 30)
# with a percentile, a median, a derived trend, an own missing policy, a goal target and a
# computed placeholder (issue 15)
ROADMAP = hr.Roadmap.model_validate({
    "id": "gen",
    "goal": {"text": "g", "target": "util >= 0.5 and coalesce(nps, 0) >= 7"},
    "data": {"events": {"timezone": "UTC", "values": {"value": "float"}},
             "accounts": {"attributes": {"start": "date", "seats": "int", "key_user": "str"}}},
    "indicators": [
        {"id": "logins_7d", "family": "process", "aggregate": "count",
         "where": "event == 'login'", "window": "7d", "compare": "delta"},
        {"id": "users_30d", "family": "process", "aggregate": "distinct", "window": "30d",
         "bands": {"levels": [{"name": "red", "lt": 2}, {"name": "green", "ge": 2}]}},
        {"id": "days_30d", "family": "process", "aggregate": "active_days", "window": "30d"},
        {"id": "nps", "family": "relationship", "aggregate": "mean", "of": "value",
         "where": "event == 'nps'", "window": "90d",
         "bands": {"levels": [{"name": "red", "lt": 7}, {"name": "green", "ge": 7}]}},
        {"id": "last_seen", "family": "process", "aggregate": "last_time"},
        {"id": "key_logins", "family": "relationship", "aggregate": "count",
         "where": "user_id == key_user", "window": {"from": "start", "days": 60}},
        {"id": "util", "family": "outcome", "expr": "users_30d / seats",
         "bands": {"levels": [{"name": "red", "lt": 0.5}, {"name": "green", "ge": 0.5}]}},
        {"id": "p90", "family": "process", "aggregate": "percentile", "q": 0.9, "of": "value",
         "window": "30d", "missing": "worst",
         "bands": {"levels": [{"name": "red", "lt": 5}, {"name": "green", "ge": 5}]}},
        {"id": "median_all", "family": "process", "aggregate": "median", "of": "value"},
        {"id": "util_change", "family": "outcome", "expr": "util", "compare": "delta"},
    ],
    "stages": [
        {"id": "new", "entry": "days_since(start) < 60",
         "actions": [{"id": "slow", "kind": "challenge", "when": "logins_7d < 1",
                      "do": "{logins_7d} logins"}]},
        {"id": "live", "actions": [{"id": "happy", "kind": "positive",
                                    "when": "nps >= 9 or util >= 0.5 or goal_reached",
                                    "do": "{nps:.1f}, {days_since(last_seen)} days, "
                                          "{util_change:.0%}"}]},
    ],
    "score": {"missing": "neutral",
              "bands": {"levels": [{"name": "red", "lt": 50}, {"name": "green", "ge": 50}]}},
})
_IDS = [f"a{i}" for i in range(9)]


@st.composite
def frames(draw: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
    ids = draw(st.lists(st.sampled_from(_IDS), min_size=1, max_size=8, unique=True))
    accounts = pl.DataFrame({
        "account_id": ids,
        "start": [draw(st.none() | st.dates(dt.date(2026, 3, 1), dt.date(2026, 7, 5)))
                  for _ in ids],
        "seats": [draw(st.none() | st.integers(1, 5)) for _ in ids],
        "key_user": [draw(st.sampled_from(["u0", "u1"])) for _ in ids],
    }, schema={"account_id": pl.String, "start": pl.Date, "seats": pl.Int64,
               "key_user": pl.String})
    n = draw(st.integers(0, 40))
    # event keys include unknown accounts (a9) and nulls; timestamps include nulls and
    # instants after as_of
    events = pl.DataFrame({
        "account_id": [draw(st.none() | st.sampled_from([*_IDS, "a9"])) for _ in range(n)],
        "user_id": [draw(st.none() | st.sampled_from(["u0", "u1", "u2"])) for _ in range(n)],
        "event": [draw(st.sampled_from(["login", "nps", "report"])) for _ in range(n)],
        "timestamp": [draw(st.none() | st.datetimes(dt.datetime(2026, 2, 1),
                                                    dt.datetime(2026, 7, 3)))
                      for _ in range(n)],
        "value": [draw(st.none() | st.floats(0, 10, allow_nan=False)) for _ in range(n)],
    }, schema={"account_id": pl.String, "user_id": pl.String, "event": pl.String,
               "timestamp": pl.Datetime("us"), "value": pl.Float64})
    events = events.with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
    return events, accounts


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=frames())
def test_spark_equals_polars_on_generated_data(
        spark: Any, data: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    from healthrules.integrations import spark as hs

    events, accounts = data
    want = hr.evaluate(ROADMAP, events, accounts, AS_OF)
    result = hs.evaluate(ROADMAP, _to_spark(spark, events), _to_spark(spark, accounts), AS_OF,
                         partitions=3)
    try:
        _assert_same(result, want)
    finally:
        result.unpersist()


def test_spark_evaluates_event_anchors_and_segments(spark: Any) -> None:
    from healthrules.integrations import spark as hs

    roadmap = hr.Roadmap.model_validate({
        "id": "rfm", "goal": "g",
        "data": {"events": {"user": None, "values": {"amount": "float"}}},
        "indicators": [
            {"id": "first_purchase", "family": "outcome", "aggregate": "first_time",
             "where": "event == 'purchase'"},
            {"id": "first_day_spend", "family": "outcome", "aggregate": "sum", "of": "amount",
             "window": {"from": "first_purchase", "days": 1}, "where": "event == 'purchase'",
             "bands": {"levels": [{"name": "low", "lt": 10}, {"name": "high", "ge": 10}]}}],
        "stages": [{"id": "s", "actions": [{"id": "big", "kind": "positive",
                                            "when": "first_day_spend > 10",
                                            "do": "{first_day_spend} ({segment})"}]}],
        "score": {"segments": [{"id": "buyers", "applies_to": "first_purchase is not None",
                                "bands": {"levels": [{"name": "bad", "lt": 50},
                                                     {"name": "good", "ge": 50}]}}]}})
    events = pl.DataFrame({
        "account_id": ["a", "a", "a", "b", "c"], "event": ["purchase"] * 4 + ["login"],
        "amount": [10.0, 5.0, 99.0, 3.0, None],
        "timestamp": [dt.datetime(2026, 6, 1, 9), dt.datetime(2026, 6, 1, 20),
                      dt.datetime(2026, 6, 2, 10), dt.datetime(2026, 6, 3),
                      dt.datetime(2026, 6, 4)]})
    accounts = pl.DataFrame({"account_id": ["a", "b", "c"]})
    as_of = dt.date(2026, 6, 30)
    want = hr.evaluate(roadmap, events, accounts, as_of)
    assert want.indicators.sort("account_id")["first_day_spend"].to_list() == [15.0, 3.0, None]
    assert want.scores.sort("account_id")["segment"].to_list() == ["buyers", "buyers", None]
    result = hs.evaluate(roadmap, _to_spark(spark, events), _to_spark(spark, accounts), as_of,
                         partitions=2)
    try:
        _assert_same(result, want)
    finally:
        result.unpersist()


# ---------------------------------------------------------------------- dated accounts


@pytest.mark.parametrize("as_of", [dt.date(2026, 3, 2), dt.date(2026, 6, 30)])
def test_spark_reads_dated_accounts_like_polars(spark: Any, as_of: dt.date) -> None:
    """Every row of an account goes to its partition, which evaluates the row valid at
    as_of; the events' partition column still prunes the store."""
    from healthrules.integrations import spark as hs

    data = sample(40, seed=3, dated=True, days=240)
    spec = hr.load(EXAMPLES / "b2b-saas" / "roadmap.yaml").model_dump(
        by_alias=True, exclude_unset=True)
    spec["data"]["accounts"].update(valid_from="valid_from", valid_to="valid_to")
    roadmap = hr.Roadmap.model_validate(spec)
    events = data.events.with_columns(pl.col("timestamp").dt.date().alias("day"))
    want = hr.evaluate(roadmap, events, data.accounts, as_of, partition_column="day")
    assert want.diagnostics["accounts_not_started"] + want.diagnostics["accounts_ended"] > 0
    result = hs.evaluate(roadmap, _to_spark(spark, events), _to_spark(spark, data.accounts),
                         as_of, partitions=3, partition_column="day")

    try:
        _assert_same(result, want)
    finally:
        result.unpersist()


def test_spark_refuses_account_hierarchies() -> None:
    from healthrules.integrations import spark as hs

    roadmap = hr.Roadmap.model_validate({
        "id": "r", "goal": "g", "data": {"accounts": {"parent": "parent_id"}},
        "indicators": [{"id": "n", "family": "process", "aggregate": "count"},
                       {"id": "kids", "kind": "rollup", "family": "process",
                        "aggregate": "sum", "of": "n"}],
        "stages": [{"id": "s"}]})
    with pytest.raises(hr.EvaluationError, match=r"account hierarchies .* are not evaluated on"):
        hs.evaluate(roadmap, None, None, "2026-06-30")  # type: ignore[arg-type]

