"""Spark integration: the Spark result equals the polars result, row for row (issue #7).

One local Spark session (``local[2]``) serves the module. Its session time zone is Asia/Tokyo
on purpose: timestamps cross the Arrow boundary in the session zone and must come back in the
roadmap's declared zone. Without a Java 17+ runtime the Spark tests fail, saying so
(``scripts/system-deps`` installs one); they never skip.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import shutil
import subprocess
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
from healthrules.datasets import DEFAULT_AS_OF, sample
from healthrules.errors import InputDataError
from healthrules.integrations import MissingExtraError, import_optional
from healthrules.loader import load_text
from test_source_types import _roadmap as source_roadmap
from test_source_types import tables as source_tables

EXAMPLES = Path(__file__).resolve().parents[1] / "rules" / "examples"
EXAMPLE_FILES = ["b2b-saas/roadmap.yaml", "goal-tracks/pack.yaml",
                 "trial-conversion/roadmap.yaml", "subscription-upsell/roadmap.yaml"]


def java_problem() -> str | None:
    """Why no Java 17+ runtime can start Spark here (None: one can), found as pyspark finds
    it: ``$JAVA_HOME/bin/java`` when JAVA_HOME is set, else ``java`` on PATH."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if java is None or not Path(java).exists():
        return ("no Java runtime: " + (f"JAVA_HOME={home} has no bin/java" if home
                                       else "no `java` on PATH and no JAVA_HOME"))
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        return f"{java} does not run: {exc}"
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if found is None:
        return f"{java} -version printed no version: {(out.stderr or out.stdout).strip()!r}"
    major = int(found[2]) if found[1] == "1" and found[2] else int(found[1])
    return None if major >= 17 else f"{java} is Java {major}; pyspark 4 needs Java 17 or later"


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    problem = java_problem()
    if problem is not None:
        pytest.fail(f"the Spark tests need a Java 17+ runtime: {problem} "
                    "(bash scripts/system-deps installs one on Debian/Ubuntu)", pytrace=False)
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


def test_java_problem_names_what_is_missing(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a Java 17+ runtime the Spark fixture fails with one of these reasons."""
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert java_problem() == "no Java runtime: no `java` on PATH and no JAVA_HOME"
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    assert java_problem() == f"no Java runtime: JAVA_HOME={tmp_path / 'nowhere'} has no bin/java"
    (tmp_path / "bin").mkdir()
    java = tmp_path / "bin" / "java"
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    for printed, want in [('openjdk version "11.0.2" 2019-01-15', "is Java 11"),
                          ('java version "1.8.0_381"', "is Java 8"),
                          ('openjdk version "17.0.15" 2025-04-15', None),
                          ('openjdk version "25" 2025-09-16', None)]:
        java.write_text(f"#!/bin/sh\necho '{printed}' >&2\n")
        java.chmod(0o755)
        problem = java_problem()
        assert (problem is None) if want is None else (want in str(problem)), (printed, problem)


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
    _spark_equals_polars(spark, ROADMAP, *data)


def _spark_equals_polars(spark: Any, roadmap: hr.Roadmap, events: pl.DataFrame,
                         accounts: pl.DataFrame) -> None:
    """Spark over 3 partitions gives ``healthrules.evaluate``'s frames."""
    _spark_gives(spark, hr.evaluate(roadmap, events, accounts, AS_OF), roadmap, events,
                 accounts, AS_OF)


def _spark_gives(spark: Any, want: hr.Evaluation, roadmap: hr.Roadmap, events: pl.DataFrame,
                 accounts: pl.DataFrame, as_of: dt.date, partitions: int = 3,
                 **options: Any) -> None:
    """Spark evaluates the polars frames to ``want`` (frames equal), then frees its cache."""
    from healthrules.integrations import spark as hs

    result = hs.evaluate(roadmap, _to_spark(spark, events), _to_spark(spark, accounts), as_of,
                         partitions=partitions, **options)
    try:
        _assert_same(result, want)
    finally:
        result.unpersist()


def test_spark_evaluates_event_anchors_and_segments(spark: Any) -> None:

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
    _spark_gives(spark, want, roadmap, events, accounts, as_of, partitions=2)


# ---------------------------------------------------------------------- dated accounts


@pytest.mark.parametrize("as_of", [dt.date(2026, 3, 2), dt.date(2026, 6, 30)])
def test_spark_reads_dated_accounts_like_polars(spark: Any, as_of: dt.date) -> None:
    """Every row of an account goes to its partition, which evaluates the row valid at
    as_of; the events' partition column still prunes the store."""

    data = sample(40, seed=3, dated=True, days=240)
    spec = hr.load(EXAMPLES / "b2b-saas" / "roadmap.yaml").model_dump(
        by_alias=True, exclude_unset=True)
    spec["data"]["accounts"].update(valid_from="valid_from", valid_to="valid_to")
    roadmap = hr.Roadmap.model_validate(spec)
    events = data.events.with_columns(pl.col("timestamp").dt.date().alias("day"))
    want = hr.evaluate(roadmap, events, data.accounts, as_of, partition_column="day")
    assert want.diagnostics["accounts_not_started"] + want.diagnostics["accounts_ended"] > 0
    _spark_gives(spark, want, roadmap, events, data.accounts, as_of, partition_column="day")


def test_spark_reads_text_partitions_that_name_no_day_like_polars(spark: Any) -> None:
    """A text partition value that is no real YYYY-MM-DD day places its events on no day:
    Spark keeps them, as the polars engine does (both compared it as text and left them
    out); a real day outside the read range is pruned on both."""
    data = sample(30, seed=5, days=120)
    roadmap = hr.load(EXAMPLES / "b2b-saas" / "roadmap.yaml")
    k = pl.int_range(pl.len())
    events = data.events.with_columns(
        pl.when(k % 5 == 0).then(pl.lit("garbage"))
        .when(k % 7 == 0).then(pl.lit("2026-02-30"))
        .when(k % 11 == 0).then(pl.lit("2026-6-5"))
        .otherwise(pl.col("timestamp").dt.date().cast(pl.String)).alias("day"))
    as_of = DEFAULT_AS_OF
    want = hr.evaluate(roadmap, events, data.accounts, as_of, partition_column="day")
    plain = hr.evaluate(roadmap, events.drop("day"), data.accounts, as_of)
    assert want.indicators.equals(plain.indicators)
    _spark_gives(spark, want, roadmap, events, data.accounts, as_of, partition_column="day")


# ---------------------------------------------------------------------- account hierarchies
# The accounts are partitioned by the root of their tree, so that a parent and its children
# (roll-ups read the children's rows) are evaluated in one partition.

HIER = hr.Roadmap.model_validate({
    "id": "hier", "goal": "g",
    "data": {"events": {"timezone": "UTC", "values": {"value": "float"}},
             "accounts": {"parent": "parent_id",
                          "attributes": {"arr": "float", "start": "date"}}},
    "indicators": [
        # a window anchored at an attribute: the driver reads the smallest anchor, over a
        # row of column minima whose key and parent may be the same account
        {"id": "first_month", "family": "process", "aggregate": "count",
         "window": {"from": "start", "days": 30}},
        {"id": "logins", "family": "process", "aggregate": "count",
         "where": "event == 'login'", "window": "30d",
         "bands": {"levels": [{"name": "red", "lt": 2}, {"name": "green", "ge": 2}]}},
        {"id": "spend", "family": "outcome", "aggregate": "sum", "of": "value"},
        {"id": "kids_logins", "kind": "rollup", "family": "process", "aggregate": "sum",
         "of": "logins"},
        {"id": "kids_mean", "kind": "rollup", "family": "process", "aggregate": "mean",
         "of": "spend"},
        {"id": "kids_min", "kind": "rollup", "family": "process", "aggregate": "min",
         "of": "logins"},
        {"id": "kids_max", "kind": "rollup", "family": "outcome", "aggregate": "max",
         "of": "arr"},
        {"id": "kids_usage", "kind": "rollup", "family": "process",
         "aggregate": "weighted_mean", "of": "logins", "weight": "arr"},
        {"id": "kids_red", "kind": "rollup", "family": "process", "aggregate": "share",
         "of": "band(logins) == 'red'"},
        {"id": "kids_worst", "kind": "rollup", "family": "process", "aggregate": "worst_band",
         "of": "logins"},
        {"id": "tree_logins", "family": "process", "expr": "logins + kids_logins"},
    ],
    "stages": [{"id": "parent", "entry": "kids_logins > 0 or kids_max is not None",
                "actions": [{"id": "kids_at_risk", "kind": "challenge",
                             "when": "kids_red >= 0.5",
                             "do": "{kids_red:.0%} of the children are red "
                                   "(worst {kids_worst}, {tree_logins} logins)"}]},
               {"id": "leaf"}],
    "score": {"bands": {"levels": [{"name": "low", "lt": 50}, {"name": "high", "ge": 50}]}},
})


def forest(seed: int, *, chain: int, fanout: int,
           small: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Accounts in one big tree (a chain of ``chain`` levels under ``big0``, then ``fanout``
    accounts under the first levels, three per parent) and ``small`` trees of one to five
    accounts, in shuffled order; a few events per account over the last 90 days."""
    rng = random.Random(seed)
    ids: list[str] = []
    parents: list[str | None] = []
    for i in range(chain + fanout):
        ids.append(f"big{i}")
        parents.append(None if i == 0 else f"big{i - 1}" if i < chain
                       else f"big{(i - chain) // 3}")
    for t in range(small):
        size = rng.randint(1, 5)
        for k in range(size):
            ids.append(f"t{t}_{k}")
            parents.append(None if k == 0 else f"t{t}_{rng.randrange(k)}")
    order = list(range(len(ids)))
    rng.shuffle(order)
    accounts = pl.DataFrame({
        "account_id": [ids[i] for i in order], "parent_id": [parents[i] for i in order],
        "arr": [rng.choice([None, 1000.0, 25000.0, 120000.0]) for _ in order],
        "start": [rng.choice([None, dt.date(2026, 3, 1), dt.date(2026, 5, 20)])
                  for _ in order]})
    start = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    rows = [(ids[i], rng.choice(["u1", "u2"]),
             rng.choice(["login", "login", "purchase", "support_ticket"]),
             start + dt.timedelta(minutes=rng.randrange(90 * 24 * 60)),
             rng.choice([None, 12.5, 250.0, 1800.0]))
            for i in order for _ in range(rng.randrange(6))]
    events = pl.DataFrame(rows, orient="row", schema={
        "account_id": pl.String, "user_id": pl.String, "event": pl.String,
        "timestamp": pl.Datetime("us", "UTC"), "value": pl.Float64})
    return events, accounts


def test_spark_evaluates_hierarchies_partitioned_by_root(spark: Any) -> None:
    """A big tree (12 levels, 400 accounts) and 300 small ones, in 4 partitions: the Spark
    result equals the polars one, roll-ups included (a child evaluated apart from its parent
    would leave the parent's roll-ups short)."""

    events, accounts = forest(5, chain=12, fanout=388, small=300)
    want = hr.evaluate(HIER, events, accounts, AS_OF)
    parents = want.indicators.filter(pl.col("kids_max").is_not_null())
    assert parents.height > 100 and parents["kids_logins"].sum() > 0
    assert want.actions.height > 0
    _spark_gives(spark, want, HIER, events, accounts, AS_OF, partitions=4)


def test_spark_evaluates_the_portfolio_example(spark: Any) -> None:
    """The example with a hierarchy (groups and subsidiaries, roll-ups of roll-ups, segments),
    on the sample's hierarchy."""

    roadmap = hr.load(EXAMPLES / "portfolio-scorecard" / "roadmap.yaml")
    data = sample(60, seed=4, hierarchy=True)
    want = hr.evaluate(roadmap, data.events, data.accounts, data.as_of)
    assert want.indicators.filter(pl.col("subsidiaries") > 0).height > 0
    _spark_gives(spark, want, roadmap, data.events, data.accounts, data.as_of)


@st.composite
def forests(draw: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Up to 12 accounts, each with no parent or an earlier account as parent (a forest),
    keys in drawn order; events as in ``frames``."""
    n = draw(st.integers(1, 12))
    ids = [f"a{i}" for i in draw(st.permutations(range(n)))]
    parents = [None if i == 0 else draw(st.none() | st.sampled_from(ids[:i]))
               for i in range(n)]
    accounts = pl.DataFrame({"account_id": ids, "parent_id": parents,
                             "arr": [draw(st.none() | st.sampled_from([1.0, 5.0, 40.0]))
                                     for _ in ids],
                             "start": [draw(st.none() | st.dates(dt.date(2026, 4, 1),
                                                                 dt.date(2026, 7, 1)))
                                       for _ in ids]},
                            schema={"account_id": pl.String, "parent_id": pl.String,
                                    "arr": pl.Float64, "start": pl.Date})
    m = draw(st.integers(0, 40))
    events = pl.DataFrame({
        "account_id": [draw(st.none() | st.sampled_from([*ids, "zz"])) for _ in range(m)],
        "user_id": ["u"] * m,
        "event": [draw(st.sampled_from(["login", "buy"])) for _ in range(m)],
        "timestamp": [draw(st.datetimes(dt.datetime(2026, 5, 1), dt.datetime(2026, 7, 2)))
                      for _ in range(m)],
        "value": [draw(st.none() | st.floats(0, 100, allow_nan=False)) for _ in range(m)],
    }, schema={"account_id": pl.String, "user_id": pl.String, "event": pl.String,
               "timestamp": pl.Datetime("us"), "value": pl.Float64})
    return events.with_columns(pl.col("timestamp").dt.replace_time_zone("UTC")), accounts


@settings(max_examples=4, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=forests())
def test_spark_equals_polars_on_generated_hierarchies(
        spark: Any, data: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    _spark_equals_polars(spark, HIER, *data)


def test_spark_resolves_roots_by_pointer_doubling(spark: Any) -> None:
    """A chain of 16 accounts under c00 (depth 15): 4 doubling rounds climb 16 levels, a
    fifth finds every root; the accounts that have a parent are mapped to c00."""
    from healthrules.integrations import spark as hs

    ids = [f"c{i:02d}" for i in range(16)]
    accounts = pl.DataFrame({"account_id": ids, "parent_id": [None, *ids[:-1]],
                             "arr": [1.0] * 16, "start": [AS_OF] * 16})
    plan = hr.compile(HIER)
    events, _ = forest(1, chain=1, fanout=0, small=0)

    def roots_of(frame: pl.DataFrame) -> Any:
        return hs._Roots.of(plan, _to_spark(spark, frame), hs.T.StringType(),
                            conversion=hs._Conversion((), "UTC"), contract=frame.clear(),
                            events_schema=events.schema, as_of=AS_OF)

    roots = roots_of(accounts)
    assert roots.rounds == 5
    assert roots.mapping is not None
    got = _from_spark(roots.mapping)
    assert got.height == 15 and set(got["__h_root"]) == {"c00"}
    flat = roots_of(accounts.with_columns(pl.lit(None, pl.String).alias("parent_id")))
    assert flat.mapping is None and flat.rounds == 0


def _from_spark(frame: Any) -> pl.DataFrame:
    out = pl.from_arrow(frame.toArrow())
    assert isinstance(out, pl.DataFrame)
    return out


@pytest.mark.parametrize(("links", "found"), [
    ([("a", None), ("b", "a"), ("c", "ghost"), ("d", "nope"), ("e", "c")],
     "name a parent that is not"),
    ([("a", "b"), ("b", "a"), ("c", "a"), ("d", None), ("e", "e"), ("f", "d"), ("g", "f"),
      ("h", "g"), ("i", "j"), ("j", "k"), ("k", "l"), ("l", "i")], "form a cycle"),
    ([("a", None), ("b", "a"), ("b", "a"), ("c", "a"), ("c", None)], "share a key"),
    ([("a", None), (None, "a"), ("b", "ghost")], "null key"),
])
def test_spark_reports_hierarchy_errors_as_polars_does(
        spark: Any, links: list[tuple[str | None, str | None]], found: str) -> None:
    """Missing parents, cycles (a self-parent, a cycle of two with a child, a cycle of
    four), duplicate and null keys (checked before the hierarchy, as polars does): the
    polars engine's error, word for word, raised on the driver before any event is read."""
    from healthrules.integrations import spark as hs

    accounts = pl.DataFrame({"account_id": [a for a, _ in links],
                             "parent_id": [p for _, p in links],
                             "arr": [1.0] * len(links), "start": [AS_OF] * len(links)},
                            schema={"account_id": pl.String, "parent_id": pl.String,
                                    "arr": pl.Float64, "start": pl.Date})
    events, _ = forest(1, chain=1, fanout=0, small=0)
    with pytest.raises(InputDataError, match=found) as polars_error:
        hr.evaluate(HIER, events, accounts, AS_OF)
    with pytest.raises(InputDataError, match=found) as spark_error:
        hs.evaluate(HIER, _to_spark(spark, events), _to_spark(spark, accounts), AS_OF)
    assert str(spark_error.value) == str(polars_error.value)


def test_spark_checks_the_parent_column_on_the_driver(spark: Any) -> None:
    from healthrules.integrations import spark as hs

    events, accounts = forest(2, chain=3, fanout=0, small=2)
    with pytest.raises(InputDataError, match="'parent_id'"):
        hs.evaluate(HIER, _to_spark(spark, events), _to_spark(spark, accounts.drop(
            "parent_id")), AS_OF)
    with pytest.raises(InputDataError, match="the parent key"):
        hs.evaluate(HIER, _to_spark(spark, events), _to_spark(spark, accounts.with_columns(
            pl.lit(1).alias("parent_id"))), AS_OF)


def test_spark_evaluates_dated_hierarchies_like_polars(spark: Any) -> None:
    """Dated accounts with a hierarchy: the parent links of the rows valid at as_of decide
    the roots (a reparented account moves with its new parent), as polars reads them."""

    data = sample(60, seed=4, dated=True, hierarchy=True)
    spec = hr.load(EXAMPLES / "portfolio-scorecard" / "roadmap.yaml").model_dump(
        by_alias=True, exclude_unset=True)
    spec["data"]["accounts"].update(valid_from="valid_from", valid_to="valid_to")
    roadmap = hr.Roadmap.model_validate(spec)
    want = hr.evaluate(roadmap, data.events, data.accounts, data.as_of)
    assert want.indicators.filter(pl.col("subsidiaries") > 0).height > 0
    _spark_gives(spark, want, roadmap, data.events, data.accounts, data.as_of)


# ---------------------------------------------------------------------- refused rows

MONEY = hr.Roadmap.model_validate({
    "id": "money", "goal": "g",
    "data": {"events": {"values": {"amount": "float"}}},
    "indicators": [{"id": "spend", "family": "outcome", "aggregate": "sum", "of": "amount",
                    "window": "all"}],
    "stages": [{"id": "s"}],
})


def _money(amounts: dict[str, list[float]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    day = dt.datetime(2026, 6, 20, 12)
    events = pl.DataFrame(
        [{"account_id": acc, "user_id": "u", "event": "buy",
          "timestamp": day + dt.timedelta(minutes=i), "amount": v}
         for acc, vs in amounts.items() for i, v in enumerate(vs)],
        schema={"account_id": pl.String, "user_id": pl.String, "event": pl.String,
                "timestamp": pl.Datetime("us"), "amount": pl.Float64})
    accounts = pl.DataFrame({"account_id": list(amounts)})
    return events, accounts


def _polars_error(events: pl.DataFrame, accounts: pl.DataFrame) -> InputDataError:
    with pytest.raises(InputDataError) as err:
        hr.evaluate(MONEY, events, accounts, AS_OF)
    return err.value


def test_spark_refuses_sums_out_of_range_with_the_polars_error(spark: Any) -> None:
    """An account whose values add up past the exact range is refused inside a task; the
    driver raises the polars engine's InputDataError (code, location, message, hint), not
    pyspark's exception around a worker traceback, from to_polars, write and
    diagnostics_dict alike."""
    from healthrules.integrations import spark as hs

    amounts = {f"a{k}": [1.0, 2.5] for k in range(8)} | {"big": [3e18, 3e18]}
    events, accounts = _money(amounts)
    want = _polars_error(events, accounts)
    assert [i.code for i in want.issues] == ["values_out_of_range"]
    result = hs.evaluate(MONEY, _to_spark(spark, events), _to_spark(spark, accounts), AS_OF,
                         partitions=3)
    try:
        for run in (result.to_polars, result.diagnostics_dict):
            with pytest.raises(InputDataError) as got:
                run()
            assert got.value.issues == want.issues
            assert str(got.value) == str(want)
            assert got.value.__cause__ is None and got.value.__suppress_context__
    finally:
        result.unpersist()


def test_own_spark_actions_raise_the_polars_error_inside_input_errors(
        spark: Any, tmp_path: Path) -> None:
    """A job the user runs on a result frame (write, collect) raises the same error inside
    ``healthrules.spark.input_errors()``; outside it, pyspark's exception still carries
    the readable message. Other failures pass through unchanged."""
    from healthrules.spark import evaluate, input_errors

    events, accounts = _money({"ok": [1.0], "neg": [-5e18]})
    want = _polars_error(events, accounts)
    result = evaluate(MONEY, _to_spark(spark, events), _to_spark(spark, accounts), AS_OF,
                      persist=False)
    with pytest.raises(InputDataError) as got:
        result.write(tmp_path / "out")
    assert got.value.issues == want.issues
    with pytest.raises(InputDataError) as got, input_errors():
        result.scores.collect()
    assert got.value.issues == want.issues
    with pytest.raises(Exception) as raw:
        result.indicators.collect()
    assert not isinstance(raw.value, InputDataError)
    assert want.issues[0].message in str(raw.value)
    with pytest.raises(ZeroDivisionError), input_errors():
        1 / 0  # noqa: B018


def test_spark_refuses_duplicate_keys_with_the_polars_error(spark: Any) -> None:
    """Row problems of the accounts found in a task (a duplicate key, no hierarchy): the
    polars engine's error on the driver too."""
    from healthrules.integrations import spark as hs

    events, accounts = _money({"a": [1.0], "b": [2.0]})
    accounts = pl.concat([accounts, accounts.head(1)])
    want = _polars_error(events, accounts)
    result = hs.evaluate(MONEY, _to_spark(spark, events), _to_spark(spark, accounts), AS_OF,
                         partitions=2, persist=False)
    with pytest.raises(InputDataError) as got:
        result.to_polars()
    assert got.value.issues == want.issues


def test_refused_issues_survive_the_round_trip_through_text() -> None:
    """The serialised form: every field of an issue comes back; a mangled or absent mark
    gives None (the driver then keeps Spark's own error)."""
    from healthrules.errors import Issue, Location, Severity
    from healthrules.integrations.spark import _decode_issues, _encode_issues

    issues = [Issue(code="values_out_of_range", message="the values of 'x' add up…",
                    location=Location(file="<events>", path="x"), hint="rescale",
                    severity=Severity.ERROR, ctx={"n": 2}),
              Issue(code="null_key", message="a null key", related=Location(file="f", line=3,
                                                                            column=4))]
    text = f"Traceback ...\nSomething: boom\n{_encode_issues(issues)}\n  at org.apache..."
    assert _decode_issues(text) == issues
    assert _decode_issues("no mark here") is None
    assert _decode_issues("[healthrules-issues:bm90IGpzb24=:healthrules-issues]") is None


# ------------------------------------------------ the pre-filter reads no zone rules of its own
# (docs/semantics.md, "Time", Spark): Spark keeps the events of the read range before the
# engine sees them; built with Spark's zone rules (Java's time-zone database) that filter could
# cut at other instants than the engine's rules (past 2099, around a rule change one database
# has and another has not, in a repeated hour). It is two days wider on each side and the
# engine makes the exact cut; the diagnostics count the events of the exact range.


def _zone_roadmap(zone: str | None, window: str = "1d") -> hr.Roadmap:
    tz = f"    timezone: {zone}\n" if zone else ""
    got = load_text(
        f"id: zoned\ngoal: g\ndata:\n  events:\n    values: {{}}\n{tz}"
        "  accounts:\n    attributes: {}\nindicators:\n"
        f"  - {{id: n, family: process, aggregate: count, window: {window}}}\n"
        "stages:\n  - id: s\n")
    assert isinstance(got, hr.Roadmap)
    return got


def _utc_events(stamps: list[dt.datetime]) -> pl.DataFrame:
    return pl.DataFrame(
        {"account_id": ["a"] * len(stamps), "user_id": ["u"] * len(stamps),
         "event": ["x"] * len(stamps), "timestamp": stamps},
        schema={"account_id": pl.String, "user_id": pl.String, "event": pl.String,
                "timestamp": pl.Datetime("us", "UTC")})


_ONE_ACCOUNT = pl.DataFrame({"account_id": ["a"]})


def _naive_renewals() -> hr.Roadmap:
    """A roadmap without a zone: a count of the day's events, and an action whose text shows
    a ``datetime`` attribute (``renew_at``) as the engine reads it."""
    got = load_text(
        "id: naive\ngoal: g\ndata:\n  events:\n    values: {}\n"
        "  accounts:\n    attributes: {renew_at: datetime}\nindicators:\n"
        "  - {id: n, family: process, aggregate: count, window: 1d}\n"
        "  - {id: first, family: process, aggregate: first_time}\n"
        "stages:\n  - id: s\n    actions:\n"
        "      - {id: r, kind: challenge, when: 'n >= 0', do: 'renew at {renew_at}'}\n")
    assert isinstance(got, hr.Roadmap)
    return got


def _spark_walls(sdf: Any, *columns: str) -> pl.DataFrame:
    """A Spark frame as Spark shows it: its instant columns cast to wall times of the session
    zone (``TimestampNTZ``), by Spark's own rules."""
    from pyspark.sql import functions as F

    got = pl.from_arrow(sdf.withColumns(
        {c: F.col(c).cast("timestamp_ntz") for c in columns}).toArrow())
    assert isinstance(got, pl.DataFrame)
    return got


def test_a_naive_roadmap_reads_instants_as_the_wall_times_spark_shows(spark: Any) -> None:
    """A roadmap without a zone reads Spark instants (events and ``datetime`` attributes) as
    wall times of the session zone, as Spark itself makes them (Java's rules), at any date.
    In July 2100 polars keeps New York on EST (-05:00) where Java applies the rule (EDT,
    -04:00): an event at 04:30 UTC on 11 July is 00:30 on the 11th for Spark (after the end
    of ``as_of`` 2100-07-10), 23:30 on the 10th by polars' rules. The partitions once
    converted with polars' rules: a count of 2 and a renewal shown at 23:30 on the 10th,
    where ``evaluate`` on the rows Spark shows counts 1 and shows 00:30 on the 11th (the
    Spark pre-filter is two days wider, and drops nothing the engine reads)."""
    from healthrules.integrations import spark as hs

    roadmap = _naive_renewals()
    stamps = [dt.datetime(2100, 7, 10, 16), dt.datetime(2100, 7, 11, 4, 30),
              dt.datetime(2100, 7, 11, 5, 30), dt.datetime(2100, 7, 9, 12)]
    events = _utc_events(stamps)
    accounts = pl.DataFrame({"account_id": ["a"], "renew_at": [dt.datetime(2100, 7, 11, 4, 30)]},
                            schema={"account_id": pl.String, "renew_at": pl.Datetime("us", "UTC")})
    as_of = dt.date(2100, 7, 10)
    before = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        sdf, sacc = _to_spark(spark, events), _to_spark(spark, accounts)
        walls, acc_walls = _spark_walls(sdf, "timestamp"), _spark_walls(sacc, "renew_at")
        # the two rules part: Spark shows EDT, polars' rules give EST
        by_polars = events.with_columns(pl.col("timestamp").dt.convert_time_zone(
            "America/New_York").dt.replace_time_zone(None))
        assert walls["timestamp"][1] == dt.datetime(2100, 7, 11, 0, 30)
        assert by_polars["timestamp"][1] == dt.datetime(2100, 7, 10, 23, 30)
        assert acc_walls["renew_at"][0] == dt.datetime(2100, 7, 11, 0, 30)
        old = hr.evaluate(roadmap, by_polars, accounts.with_columns(
            pl.col("renew_at").dt.convert_time_zone("America/New_York")
            .dt.replace_time_zone(None)), as_of)
        want = hr.evaluate(roadmap, walls, acc_walls, as_of)
        assert old.indicators["n"].to_list() == [2]
        assert old.actions["text"].to_list() == ["renew at 2100-07-10 23:30:00"]
        assert want.indicators["n"].to_list() == [1]
        assert want.diagnostics["events_read"] == 2
        assert want.actions["text"].to_list() == ["renew at 2100-07-11 00:30:00"]
        result = hs.evaluate(roadmap, sdf, sacc, as_of, partitions=2)
        try:
            _assert_same(result, want)
        finally:
            result.unpersist()
    finally:
        spark.conf.set("spark.sql.session.timeZone", before)


def test_wall_times_in_a_repeated_hour_are_cut_by_the_engine(spark: Any) -> None:
    """Wall-time (``TimestampNTZ``) events in a zone are instants for the engine, a
    repeated wall time its earlier instant. With ``as_of`` the second 02:30 of Paris'
    autumn change (01:30 UTC), an event at wall time 02:45 is 00:45 UTC for the engine,
    before ``as_of``; a filter on wall times dropped it (02:45 after 02:30)."""
    from pyspark.sql import functions as F

    from healthrules.integrations import spark as hs

    roadmap = _zone_roadmap("Europe/Paris")
    walls = [dt.datetime(2026, 10, 25, 2, 45), dt.datetime(2026, 10, 25, 1, 0),
             dt.datetime(2026, 10, 25, 3, 0), dt.datetime(2026, 10, 24, 1, 0)]
    naive = _utc_events(walls).with_columns(pl.col("timestamp").dt.replace_time_zone(None))
    as_of = dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC)
    zoned = naive.with_columns(pl.col("timestamp").dt.replace_time_zone(
        "Europe/Paris", ambiguous="earliest"))
    want = hr.evaluate(roadmap, zoned, _ONE_ACCOUNT, as_of)
    assert want.indicators["n"].to_list() == [2]
    sdf = _to_spark(spark, naive).withColumn("timestamp", F.col("timestamp").cast("timestamp_ntz"))
    result = hs.evaluate(roadmap, sdf, _to_spark(spark, _ONE_ACCOUNT), as_of, partitions=2)
    try:
        _assert_same(result, want)
    finally:
        result.unpersist()


def test_the_filter_keeps_two_days_on_each_side_and_counts_the_exact_range(
        spark: Any) -> None:
    """Events just outside the read range, whether Spark's filter keeps them (within its
    margin, on dates) or not, are neither counted nor read: the result and ``events_read``
    are the engine's, on either side."""
    from healthrules.integrations import spark as hs

    roadmap = _zone_roadmap("America/Sao_Paulo", window="7d")
    as_of = dt.date(2026, 3, 10)
    end = dt.datetime(2026, 3, 11, 3)  # midnight in Sao Paulo (-03:00), as UTC
    start = end - dt.timedelta(days=7)
    stamps = [start - dt.timedelta(seconds=1), start, end - dt.timedelta(microseconds=1),
              end, end + dt.timedelta(days=1), start - dt.timedelta(days=1, hours=23),
              start - dt.timedelta(days=3)]
    events = _utc_events(stamps).with_columns(
        pl.col("timestamp").dt.convert_time_zone("America/Sao_Paulo"))
    want = hr.evaluate(roadmap, events, _ONE_ACCOUNT, as_of)
    assert want.indicators["n"].to_list() == [2]
    assert want.diagnostics["events_read"] == 2
    result = hs.evaluate(roadmap, _to_spark(spark, events), _to_spark(spark, _ONE_ACCOUNT), as_of,
                         partitions=2)
    try:
        _assert_same(result, want)
    finally:
        result.unpersist()

    # Date events: the midnight starting each date; the one of the day after as_of is the
    # end itself, not read (Spark's filter keeps it, on dates, with a day of margin: it was
    # counted in events_read, 3 where the engine reads 2)
    days = pl.DataFrame({"account_id": ["a"] * 4, "user_id": ["u"] * 4, "event": ["x"] * 4,
                         "timestamp": [dt.date(2026, 3, 3), dt.date(2026, 3, 4),
                                       dt.date(2026, 3, 10), dt.date(2026, 3, 11)]})
    want = hr.evaluate(roadmap, days, _ONE_ACCOUNT, as_of)
    assert want.indicators["n"].to_list() == [2]
    assert want.diagnostics["events_read"] == 2
    result = hs.evaluate(roadmap, _to_spark(spark, days), _to_spark(spark, _ONE_ACCOUNT),
                         as_of, partitions=2)
    try:
        _assert_same(result, want)
    finally:
        result.unpersist()


# ------------------------------------------------ session zones polars cannot read; executors
# without a time-zone database (docs/semantics.md, "Time", Spark)


@pytest.mark.parametrize("zone", ["GMT+08:00", "+05:30", "CST"])
def test_any_session_zone_spark_accepts_evaluates(spark: Any, zone: str) -> None:
    """Session zones in forms only Java reads (a prefixed or half-hour offset, a short id
    that Spark maps to America/Chicago): polars cannot read them (Spark labels its Arrow
    instants with them, and polars failed with a panic on the driver). The instants are
    read as instants (a roadmap with a zone, and the results' datetimes come back in it);
    a roadmap without a zone reads the wall times Spark shows."""
    from healthrules.integrations import spark as hs

    events = _utc_events([dt.datetime(2026, 7, 9, 15, 50), dt.datetime(2026, 7, 10, 3),
                          dt.datetime(2026, 7, 10, 16, 10), dt.datetime(2026, 7, 9, 9)])
    accounts = pl.DataFrame({"account_id": ["a"], "renew_at": [dt.datetime(2026, 7, 10, 23)]},
                            schema={"account_id": pl.String, "renew_at": pl.Datetime("us", "UTC")})
    as_of = dt.date(2026, 7, 10)
    zoned = load_text(
        "id: zoned\ngoal: g\ndata:\n  events:\n    values: {}\n    timezone: Asia/Tokyo\n"
        "  accounts:\n    attributes: {renew_at: datetime}\nindicators:\n"
        "  - {id: n, family: process, aggregate: count, window: 1d}\n"
        "  - {id: first, family: process, aggregate: first_time}\n"
        "stages:\n  - id: s\n    actions:\n"
        "      - {id: r, kind: challenge, when: 'n >= 0', do: 'renew at {renew_at}'}\n")
    assert isinstance(zoned, hr.Roadmap)
    before = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        sdf, sacc = _to_spark(spark, events), _to_spark(spark, accounts)
        want = hr.evaluate(zoned, events.with_columns(
            pl.col("timestamp").dt.convert_time_zone("Asia/Tokyo")), accounts.with_columns(
            pl.col("renew_at").dt.convert_time_zone("Asia/Tokyo")), as_of)
        assert want.indicators["first"].dtype == pl.Datetime("us", "Asia/Tokyo")
        result = hs.evaluate(zoned, sdf, sacc, as_of, partitions=2)
        try:
            _assert_same(result, want)
        finally:
            result.unpersist()
        naive = _naive_renewals()
        want = hr.evaluate(naive, _spark_walls(sdf, "timestamp"),
                           _spark_walls(sacc, "renew_at"), as_of)
        result = hs.evaluate(naive, sdf, sacc, as_of, partitions=2)
        try:
            _assert_same(result, want)
        finally:
            result.unpersist()
    finally:
        spark.conf.set("spark.sql.session.timeZone", before)


def test_an_executor_without_a_zone_database_raises_the_engines_error(
        spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Executors whose ``zoneinfo`` finds no time-zone database (a slim container; here the
    Python workers' ``PYTHONTZPATH`` names an empty folder, and a package of that name
    hides ``tzdata``) and a driver that has one: a roadmap with a zone is refused by each task. The
    driver raises the :class:`EvaluationError` ``healthrules.evaluate`` raises without a
    database (``no_timezone_database``, saying how to install one), from ``to_polars`` and
    inside ``input_errors()``, so the command line exits 1 with that message, not 3 (an
    internal error) on pyspark's exception."""
    from healthrules.cli import main
    from healthrules.errors import EvaluationError
    from healthrules.integrations import spark as hs

    roadmap = _zone_roadmap("Europe/Paris")
    events = _utc_events([dt.datetime(2026, 6, 30, 12)])
    paris = events.with_columns(pl.col("timestamp").dt.convert_time_zone("Europe/Paris"))
    want = hr.evaluate(roadmap, paris, _ONE_ACCOUNT, AS_OF)  # the driver has a database
    assert want.indicators["n"].to_list() == [1]
    empty = tmp_path / "no-zones"
    empty.mkdir()
    hidden = tmp_path / "hidden" / "tzdata"  # the tzdata package, if installed, not found
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    env = spark.sparkContext.environment
    assert "PYTHONTZPATH" not in env and "PYTHONPATH" not in env
    # the Python workers started for the next jobs (Spark keys its workers by this
    # environment, and puts this PYTHONPATH before the driver's)
    env.update(PYTHONTZPATH=str(empty), PYTHONPATH=str(hidden.parent))
    try:
        result = hs.evaluate(roadmap, _to_spark(spark, events), _to_spark(spark, _ONE_ACCOUNT),
                             AS_OF, partitions=2, persist=False)
        with pytest.raises(EvaluationError) as got:
            result.to_polars()
        [issue] = got.value.issues
        assert issue.code == "no_timezone_database"
        assert issue.location.path == "data.events.timezone"
        assert "'Europe/Paris'" in issue.message and "pip install tzdata" in (issue.hint or "")
        assert got.value.__cause__ is None and got.value.__suppress_context__
        with pytest.raises(EvaluationError) as own, hs.input_errors():
            result.indicators.collect()
        assert own.value.issues == got.value.issues
        with pytest.raises(Exception) as raw:
            result.indicators.collect()
        assert not isinstance(raw.value, EvaluationError)
    finally:
        del env["PYTHONTZPATH"], env["PYTHONPATH"]

    # what the command line makes of each (a command that runs the Spark job)
    class _Args:
        debug = False
        command = "spark-job"

        def __init__(self, error: BaseException) -> None:
            self.error = error

        def run(self, _: Any) -> int:
            raise self.error

    for error, code in ((got.value, 1), (raw.value, 3)):
        parser = type("P", (), {"parse_args": lambda self, words, e=error: _Args(e)})()
        monkeypatch.setattr("healthrules.cli.build_parser", lambda p=parser: p)
        assert main(["spark-job"]) == code
        err = capsys.readouterr().err
        if code == 1:
            assert err.startswith(str(got.value)) and "pip install tzdata" in err
        else:
            assert "internal error (a bug in healthrules)" in err


@settings(max_examples=4, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=source_tables(spark=True))
def test_spark_equals_polars_on_the_types_spark_holds(
        spark: Any, case: tuple[pl.DataFrame, pl.DataFrame, str | None]) -> None:
    """Integer and text keys, REAL and DOUBLE values with NaN, inf and -0.0, small integer
    values, timestamps in ms and us, naive (``TIMESTAMP_NTZ``), UTC and zoned across
    daylight-saving changes, dates, nulls and duplicate account keys: Spark gives polars'
    frames, or polars' error."""
    from healthrules.integrations import spark as hs

    events, accounts, zone = case
    roadmap = source_roadmap(zone)
    try:
        want = hr.evaluate(roadmap, events, accounts, AS_OF)
    except InputDataError as exc:
        with pytest.raises(InputDataError) as got, hs.input_errors():
            hs.evaluate(roadmap, _to_spark(spark, events), _to_spark(spark, accounts), AS_OF,
                        partitions=2).to_polars()
        assert got.value.issues == exc.issues
        return
    _spark_gives(spark, want, roadmap, events, accounts, AS_OF, partitions=2)
