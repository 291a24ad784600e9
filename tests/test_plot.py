"""healthrules.plot: the chart specs (marks, encodings, cut points, band colours), the data
aggregated before it reaches Altair, and the error naming the extra when Altair is missing."""

from __future__ import annotations

import datetime as dt
import doctest
import sys
from typing import Any

import polars as pl
import pytest

import healthrules as hr
import healthrules.plot as hp
from healthrules.datasets import sample
from healthrules.examples import example_path
from healthrules.roadmap import Bands

pytest.importorskip("altair")

RED, AMBER, GREEN = "#d73027", "#f0a81c", "#1a9850"
AS_OF = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def data() -> Any:
    return sample(150)


@pytest.fixture(scope="module")
def b2b() -> hr.Roadmap:
    r = hr.load(example_path("b2b-saas"))
    assert isinstance(r, hr.Roadmap)
    return r


@pytest.fixture(scope="module")
def result(b2b: hr.Roadmap, data: Any) -> hr.Evaluation:
    return hr.evaluate(b2b, data.events, data.accounts, data.as_of)


@pytest.fixture(scope="module")
def pack_result(data: Any) -> hr.Evaluation:
    return hr.evaluate(hr.load(example_path("goal-tracks")), data.events, data.accounts,
                       data.as_of)


def layers(chart: Any) -> list[dict[str, Any]]:
    return list(chart.to_dict()["layer"])


def mark(layer: dict[str, Any]) -> str:
    m = layer["mark"]
    return str(m["type"] if isinstance(m, dict) else m)


def rows(chart: Any, layer: dict[str, Any]) -> list[dict[str, Any]]:
    """The data rows of one layer (inline, or consolidated into the top-level datasets)."""
    d = layer["data"]
    if "values" in d:
        return list(d["values"])
    return list(chart.to_dict()["datasets"][d["name"]])


# --------------------------------------------------------------------------- colours


def test_band_colors_run_from_red_to_green_along_the_direction() -> None:
    two = Bands.model_validate({"levels": [{"name": "no", "lt": 1}, {"name": "yes", "ge": 1}]})
    assert hp.band_colors(two) == {"no": RED, "yes": GREEN}
    three_lower = Bands.model_validate({"direction": "lower_is_better", "levels": [
        {"name": "few", "le": 2}, {"name": "some", "gt": 2, "le": 5}, {"name": "many", "gt": 5}]})
    assert list(hp.band_colors(three_lower).items()) == [
        ("many", RED), ("some", AMBER), ("few", GREEN)]
    five = Bands.model_validate({"levels": [
        {"name": f"l{i}", **({"ge": i} if i else {}), **({"lt": i + 1} if i < 4 else {})}
        for i in range(5)]})
    colors = list(hp.band_colors(five).values())
    assert colors[0] == RED and colors[2] == AMBER and colors[-1] == GREEN
    assert len(set(colors)) == 5


# --------------------------------------------------------------------------- score


def test_score_distribution_spec(result: hr.Evaluation, b2b: hr.Roadmap) -> None:
    chart = hp.score_distribution(result)
    bars, rules = layers(chart)
    assert [mark(bars), mark(rules)] == ["bar", "rule"]
    enc = bars["encoding"]
    assert enc["x"]["field"] == "bin_start" and enc["x"]["bin"] == "binned"
    assert enc["x"]["scale"]["domain"] == [0, 100]
    assert enc["x2"]["field"] == "bin_end"
    assert enc["y"]["field"] == "accounts" and enc["y"]["type"] == "quantitative"
    assert enc["color"]["field"] == "band"
    assert b2b.score.bands is not None
    assert enc["color"]["scale"]["domain"] == ["at_risk", "watch", "healthy"]
    assert enc["color"]["scale"]["range"] == [RED, AMBER, GREEN]
    assert enc["color"]["scale"]["range"] == list(hp.band_colors(b2b.score.bands).values())
    assert sorted(r["cut"] for r in rows(chart, rules)) == [40.0, 70.0]
    assert rules["encoding"]["x"]["field"] == "cut"

    counted = rows(chart, bars)
    scored = result.scores.filter(pl.col("score").is_not_null())
    assert sum(r["accounts"] for r in counted) == scored.height
    # each bin is 5 points wide, inside [0, 100], and holds only scores of its band
    for r in counted:
        assert r["bin_end"] - r["bin_start"] == 5.0 and 0 <= r["bin_start"] < 100
        in_bin = scored.filter((pl.col("score") >= r["bin_start"])
                               & ((pl.col("score") < r["bin_end"])
                                  | ((pl.col("score") == 100) & (r["bin_end"] == 100)))
                               & (pl.col("score_band") == r["band"]))
        assert in_bin.height == r["accounts"]
    assert "150 accounts" in chart.to_dict()["title"]["subtitle"][0]


def test_score_distribution_of_one_roadmap_of_a_pack(pack_result: hr.Evaluation) -> None:
    chart = hp.score_distribution(pack_result, roadmap="self_sufficient", step=10)
    bars = layers(chart)[0]
    counted = rows(chart, bars)
    n = pack_result.scores.filter((pl.col("roadmap") == "self_sufficient")
                                  & pl.col("score").is_not_null()).height
    assert sum(r["accounts"] for r in counted) == n
    assert {r["bin_end"] - r["bin_start"] for r in counted} == {10.0}
    with pytest.raises(ValueError, match=r"no roadmap 'self_suficient'.*self_sufficient"):
        hp.score_distribution(pack_result, roadmap="self_suficient")
    with pytest.raises(ValueError, match="step"):
        hp.score_distribution(pack_result, step=0)


# --------------------------------------------------------------------------- stages


def test_accounts_per_stage_keeps_the_declared_order(result: hr.Evaluation) -> None:
    chart = hp.accounts_per_stage(result)
    bars, text = layers(chart)
    assert [mark(bars), mark(text)] == ["bar", "text"]
    order = ["trial", "onboarding", "operation", "renewal"]
    assert bars["encoding"]["x"]["field"] == "stage"
    assert bars["encoding"]["x"]["sort"] == order
    assert bars["encoding"]["y"]["field"] == "accounts"
    assert bars["encoding"]["color"]["scale"]["domain"] == ["at_risk", "watch", "healthy"]
    assert bars["encoding"]["color"]["scale"]["range"] == [RED, AMBER, GREEN]
    counted = rows(chart, bars)
    assert sum(r["accounts"] for r in counted) == result.stages.height
    expected = dict(result.stages.group_by("stage").len().iter_rows())
    assert {r["stage"]: r["accounts"] for r in rows(chart, text)} == expected
    assert text["encoding"]["text"]["field"] == "accounts"

    plain = layers(hp.accounts_per_stage(result, by_band=False))[0]
    assert plain["encoding"]["color"] == {"value": "#4c78a8"}


def test_accounts_per_stage_of_a_pack(pack_result: hr.Evaluation) -> None:
    chart = hp.accounts_per_stage(pack_result)
    bars = layers(chart)[0]
    order = bars["encoding"]["x"]["sort"]
    assert order[:3] == ["do_it_for_us / kickoff", "do_it_for_us / delivery",
                         "do_it_for_us / renewal"]
    assert order[-1] == "(unrouted)"
    domain = bars["encoding"]["color"]["scale"]["domain"]
    assert domain[-1] == "no band"
    assert bars["encoding"]["color"]["scale"]["range"][-1] == hp.NO_BAND_COLOR
    unrouted = sum(r["accounts"] for r in rows(chart, bars) if r["stage"] == "(unrouted)")
    assert unrouted == pack_result.diagnostics["accounts_unrouted"] > 0


# --------------------------------------------------------------------------- indicators


def test_indicator_thresholds_spec(result: hr.Evaluation, b2b: hr.Roadmap) -> None:
    chart = hp.indicator_thresholds(result, "first_login_rate")
    shade, bars, cuts, action_rules, labels = layers(chart)
    assert [mark(x) for x in (shade, bars, cuts, action_rules, labels)] == [
        "rect", "bar", "rule", "rule", "text"]
    # band cut points as rules, at the values of the bands
    assert [r["cut"] for r in rows(chart, cuts)] == [0.5, 0.8]
    assert [r["x"] for r in rows(chart, cuts)] == [0.5, 0.8]
    assert cuts["encoding"]["x"]["field"] == "x"
    # bands shaded in their colours, covering the axis without gaps
    shaded = rows(chart, shade)
    assert [r["band"] for r in shaded] == ["low", "medium", "high"]
    assert [r["end"] for r in shaded[:-1]] == [r["start"] for r in shaded[1:]] == [0.5, 0.8]
    assert shade["encoding"]["color"]["scale"]["range"] == [RED, AMBER, GREEN]
    assert shade["encoding"]["x"]["field"] == "start" and shade["encoding"]["x2"]["field"] == "end"
    # the histogram: bars coloured by the band the engine gave each account
    enc = bars["encoding"]
    assert enc["x"]["field"] == "bin_start" and enc["x2"]["field"] == "bin_end"
    assert enc["color"]["scale"]["domain"] == ["low", "medium", "high"]
    counted = rows(chart, bars)
    values = result.indicators.filter(pl.col("first_login_rate").is_not_null())
    assert sum(r["accounts"] for r in counted) == values.height
    for band in ("low", "medium", "high"):
        assert sum(r["accounts"] for r in counted if r["band"] == band) == values.filter(
            pl.col("first_login_rate__band") == band).height
    # the action that compares the indicator with a number
    assert rows(chart, action_rules) == [{"action": "first_login_low", "kind": "challenge",
                                          "value": 0.5, "label": "first_login_low: < 0.5"}]
    assert action_rules["mark"]["strokeDash"] == [5, 4]
    subtitle = chart.to_dict()["title"]["subtitle"]
    assert "without a value" in subtitle[0]
    assert subtitle[1] == "low < 0.5 <= medium < 0.8 <= high"


def test_indicator_thresholds_of_a_count_puts_edges_between_whole_numbers(
        result: hr.Evaluation) -> None:
    chart = hp.indicator_thresholds(result, "tickets_90d", actions=False)
    spec_layers = layers(chart)
    assert [mark(x) for x in spec_layers] == ["rect", "bar", "rule"]
    shade, bars, cuts = spec_layers
    # few <= 2 < some <= 5 < many: the edges sit between 2 and 3, and between 5 and 6
    assert [(r["cut"], r["x"]) for r in rows(chart, cuts)] == [(2.0, 2.5), (5.0, 5.5)]
    assert [r["label"] for r in rows(chart, cuts)] == ["few <= 2 < some", "some <= 5 < many"]
    # lower is better: 'many' is the red band
    scale = shade["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"], strict=True)) == {
        "many": RED, "some": AMBER, "few": GREEN}
    # one bar per whole number, centred on it
    counted = rows(chart, bars)
    assert all(r["bin_end"] - r["bin_start"] == 1.0 for r in counted)
    assert all((r["bin_start"] + 0.5).is_integer() for r in counted)
    subtitle = chart.to_dict()["title"]["subtitle"]
    assert subtitle[1] == "few <= 2 < some <= 5 < many (lower is better)"


def test_indicator_thresholds_without_bands_and_with_compare(result: hr.Evaluation) -> None:
    chart = hp.indicator_thresholds(result, "key_user_login_change")
    shade, bars, cuts, action_rules, _ = layers(chart)
    assert rows(chart, shade) == [] and rows(chart, cuts) == []
    assert bars["encoding"]["color"]["scale"]["range"] == [hp.NO_BAND_COLOR]
    assert [(r["action"], r["value"]) for r in rows(chart, action_rules)] == [
        ("key_person_drop", -0.5)]


def test_indicator_thresholds_in_a_pack_and_errors(pack_result: hr.Evaluation) -> None:
    chart = hp.indicator_thresholds(pack_result, "training_rate", roadmap="self_sufficient")
    counted = rows(chart, layers(chart)[1])
    n = pack_result.indicators.filter((pl.col("roadmap") == "self_sufficient")
                                      & pl.col("training_rate").is_not_null()).height
    assert sum(r["accounts"] for r in counted) == n
    assert "of roadmap self_sufficient" in chart.to_dict()["title"]["subtitle"][0]
    actions = {r["action"] for r in rows(chart, layers(chart)[3])}
    assert "training_gap" in actions
    with pytest.raises(KeyError, match=r"first_login_rat.*did you mean"):
        hp.indicator_thresholds(pack_result, "first_login_rat")
    with pytest.raises(ValueError, match="bins"):
        hp.indicator_thresholds(pack_result, "training_rate", bins=0)


def test_indicator_thresholds_rejects_a_datetime_indicator() -> None:
    r = hr.Roadmap.model_validate({
        "id": "t", "goal": "g", "data": {"events": {"timezone": "UTC"}},
        "indicators": [{"id": "last_seen", "family": "process", "aggregate": "last_time"}],
        "stages": [{"id": "s"}],
    })
    events = pl.DataFrame(
        {"account_id": ["a"], "user_id": ["u"], "event": ["login"],
         "timestamp": [dt.datetime(2026, 6, 1, tzinfo=dt.UTC)]},
        schema_overrides={"timestamp": pl.Datetime("us", "UTC")})
    result = hr.evaluate(r, events, pl.DataFrame({"account_id": ["a"]}), AS_OF)
    with pytest.raises(TypeError, match="not a number"):
        hp.indicator_thresholds(result, "last_seen")


def test_charts_carry_aggregates_not_one_row_per_account() -> None:
    """10,000 accounts (past Altair's 5,000-row limit) still make small specs."""
    r = hr.Roadmap.model_validate({
        "id": "t", "goal": "g", "data": {"events": {"timezone": "UTC"}},
        "indicators": [{"id": "logins", "family": "process", "aggregate": "count",
                        "bands": {"levels": [{"name": "low", "lt": 1},
                                             {"name": "ok", "ge": 1}]}}],
        "stages": [{"id": "s"}],
        "score": {"bands": {"levels": [{"name": "red", "lt": 50}, {"name": "green", "ge": 50}]}},
    })
    n = 10_000
    ids = [f"a{i:05d}" for i in range(n)]
    events = pl.DataFrame(
        {"account_id": ids[::2], "user_id": "u", "event": "login",
         "timestamp": dt.datetime(2026, 6, 1, tzinfo=dt.UTC)},
        schema_overrides={"timestamp": pl.Datetime("us", "UTC")})
    result = hr.evaluate(r, events, pl.DataFrame({"account_id": ids}), AS_OF)
    for chart in (hp.score_distribution(result), hp.accounts_per_stage(result),
                  hp.indicator_thresholds(result, "logins")):
        spec = chart.to_dict()
        total = sum(len(v) for v in spec.get("datasets", {}).values())
        assert total < 20


# --------------------------------------------------------------------------- the extra


@pytest.mark.parametrize("draw", [
    lambda ev: hp.score_distribution(ev),
    lambda ev: hp.accounts_per_stage(ev),
    lambda ev: hp.indicator_thresholds(ev, "nps_score"),
], ids=["score_distribution", "accounts_per_stage", "indicator_thresholds"])
def test_missing_altair_names_the_extra(monkeypatch: pytest.MonkeyPatch, result: hr.Evaluation,
                                        draw: Any) -> None:
    monkeypatch.setitem(sys.modules, "altair", None)  # makes `import altair` fail
    with pytest.raises(ImportError, match=r"pip install 'healthrules\[plot\]'"):
        draw(result)


def test_band_colors_need_no_altair(monkeypatch: pytest.MonkeyPatch, b2b: hr.Roadmap) -> None:
    monkeypatch.setitem(sys.modules, "altair", None)
    assert b2b.score.bands is not None
    assert list(hp.band_colors(b2b.score.bands)) == ["at_risk", "watch", "healthy"]


def test_doctests_of_the_plot_module() -> None:
    failures, tried = doctest.testmod(hp)
    assert tried >= 5 and failures == 0
