"""Small hand-computed cases that check the reference evaluator (tests/reference.py) itself."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from healthrules.roadmap import Bands, Pack, Roadmap
from reference import AccountResult, band_of, evaluate_reference, render

AS_OF = dt.date(2026, 6, 30)
END = dt.datetime(2026, 7, 1)  # the midnight that ends AS_OF
NY = ZoneInfo("America/New_York")


def roadmap(**overrides: Any) -> Roadmap:
    base: dict[str, Any] = {
        "id": "t",
        "goal": "g",
        "data": {
            "events": {"values": {"value": "float", "qty": "int"}},
            "accounts": {
                "attributes": {
                    "start": "date",
                    "since": "datetime",
                    "seats": "int",
                    "plan": "str",
                    "ratio": "float",
                }
            },
        },
        "indicators": [],
        "stages": [{"id": "only"}],
    }
    base.update(overrides)
    return Roadmap.model_validate(base)


def ind(ident: str, aggregate: str = "count", **kw: Any) -> dict[str, Any]:
    return {"id": ident, "family": kw.pop("family", "process"), "aggregate": aggregate, **kw}


def account(ident: str = "a", **attrs: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "account_id": ident,
        "start": None,
        "since": None,
        "seats": 10,
        "plan": "pro",
        "ratio": 0.5,
    }
    row.update(attrs)
    return row


def event(
    ts: dt.datetime | None,
    name: str = "login",
    user: str | None = "u1",
    value: float | None = None,
    qty: int | None = None,
    acc: str | None = "a",
) -> dict[str, Any]:
    return {
        "account_id": acc,
        "user_id": user,
        "event": name,
        "timestamp": ts,
        "value": value,
        "qty": qty,
    }


def one(
    r: Roadmap, events: list[dict[str, Any]], as_of: Any = AS_OF, **attrs: Any
) -> AccountResult:
    return evaluate_reference(r, events, [account(**attrs)], as_of).accounts["a"]


def value_of(indicator: dict[str, Any], events: list[dict[str, Any]], **kw: Any) -> object:
    return one(roadmap(indicators=[indicator]), events, **kw).indicators[indicator["id"]]


# --------------------------------------------------------------------------- time and windows


def test_trailing_window_is_half_open_and_point_in_time() -> None:
    events = [
        event(END - dt.timedelta(days=7)),  # the first instant of the window: counts
        event(END - dt.timedelta(days=7, microseconds=1)),  # just before: no
        event(END - dt.timedelta(microseconds=1)),  # the last instant of as_of: counts
        event(END),  # after as_of: never counts
        event(None),  # null timestamp: dropped
        event(END - dt.timedelta(days=1), acc=None),  # null account: dropped
        event(END - dt.timedelta(days=1), acc="ghost"),  # unknown account: ignored
    ]
    assert value_of(ind("n", window="7d"), events) == 2
    assert value_of(ind("n"), events) == 3  # window: all


def test_a_datetime_as_of_is_an_instant() -> None:
    events = [event(dt.datetime(2026, 6, 30, 9)), event(dt.datetime(2026, 6, 30, 12))]
    assert value_of(ind("n"), events, as_of=dt.datetime(2026, 6, 30, 12)) == 1
    res = one(
        roadmap(
            indicators=[ind("n"), {"id": "d", "family": "process", "expr": "days_since(as_of)"}]
        ),
        events,
        as_of=dt.datetime(2026, 6, 30, 12),
    )
    assert res.indicators["d"] == 0  # the name as_of is the date part


def test_an_aware_as_of_is_converted_to_the_events_zone() -> None:
    r = roadmap(
        data={"events": {"timezone": "America/New_York"}, "accounts": {"attributes": {}}},
        indicators=[ind("n")],
    )
    stamps = [dt.datetime(2026, 6, 30, 20, tzinfo=NY), dt.datetime(2026, 6, 30, 22, tzinfo=NY)]
    events = [event(t) for t in stamps]
    as_of = dt.datetime(2026, 7, 1, 1, tzinfo=dt.UTC)  # 21:00 in New York
    got = evaluate_reference(r, events, [{"account_id": "a"}], as_of)
    assert got.accounts["a"].indicators["n"] == 1
    assert got.as_of == dt.date(2026, 6, 30)


def test_windows_count_calendar_days_on_the_wall_clock() -> None:
    # New York moves its clocks forward on 2026-03-08: the 7-day window ending at the midnight
    # of 2026-03-11 starts at midnight on 2026-03-04 (not at 23:00 on 2026-03-03)
    r = roadmap(
        data={"events": {"timezone": "America/New_York"}, "accounts": {"attributes": {}}},
        indicators=[ind("n", window="7d")],
    )
    events = [
        event(dt.datetime(2026, 3, 3, 23, 30, tzinfo=NY)),
        event(dt.datetime(2026, 3, 4, 0, 0, tzinfo=NY)),
        event(dt.datetime(2026, 3, 10, 23, 59, tzinfo=NY)),
    ]
    got = evaluate_reference(r, events, [{"account_id": "a"}], dt.date(2026, 3, 10))
    assert got.accounts["a"].indicators["n"] == 2


def test_active_days_are_local_calendar_days() -> None:
    r = roadmap(
        data={"events": {"timezone": "America/New_York"}, "accounts": {"attributes": {}}},
        indicators=[ind("n", "active_days")],
    )
    # 23:00 and 01:00 New York time: two local days, one UTC day
    events = [
        event(dt.datetime(2026, 6, 1, 23, tzinfo=NY)),
        event(dt.datetime(2026, 6, 2, 1, tzinfo=NY)),
        event(dt.datetime(2026, 6, 2, 9, tzinfo=NY)),
    ]
    got = evaluate_reference(r, events, [{"account_id": "a"}], AS_OF)
    assert got.accounts["a"].indicators["n"] == 2


def test_anchored_windows() -> None:
    events = [event(dt.datetime(2026, 6, d, 10)) for d in (1, 10, 19, 29)]
    w = {"from": "start", "days": 10}
    assert value_of(ind("n", window=w), events, start=dt.date(2026, 6, 10)) == 2  # 10 and 19
    assert value_of(ind("n", window=w), events, start=dt.date(2026, 6, 25)) == 1  # cut at end
    assert value_of(ind("n", window={"from": "start"}), events, start=dt.date(2026, 6, 10)) == 3
    assert value_of(ind("n", window=w), events, start=None) is None  # null anchor: unknown
    assert value_of(ind("n", window=w), events, start=dt.date(2026, 8, 1)) == 0  # after end
    # a datetime anchor starts at that instant
    since = dt.datetime(2026, 6, 10, 12)
    assert value_of(ind("n", window={"from": "since"}), events, since=since) == 2


# --------------------------------------------------------------------------- aggregates


def test_aggregates_over_values() -> None:
    day = dt.datetime(2026, 6, 20)
    events = [
        event(day, value=1.5, qty=2),
        event(day, value=None, qty=None),
        event(day, value=float("nan"), qty=3),
        event(day, value=4.0, qty=-1),
    ]
    assert value_of(ind("x", "sum", of="value"), events) == 5.5
    assert value_of(ind("x", "sum", of="qty"), events) == 4
    assert isinstance(value_of(ind("x", "sum", of="qty"), events), int)
    assert value_of(ind("x", "mean", of="value"), events) == 2.75
    assert value_of(ind("x", "min", of="value"), events) == 1.5
    assert value_of(ind("x", "max", of="qty"), events) == 3
    assert value_of(ind("x", "distinct", of="value"), events) == 2  # NaN is null
    assert value_of(ind("x", "distinct"), events) == 1


def test_empty_windows() -> None:
    events = [event(dt.datetime(2026, 1, 1), value=2.0)]
    expected = {
        "count": 0,
        "distinct": 0,
        "active_days": 0,
        "sum": 0.0,
        "mean": None,
        "min": None,
        "max": None,
        "first_time": None,
        "last_time": None,
        "days_since_first": None,
        "days_since_last": None,
    }
    for agg, want in expected.items():
        of = {"of": "value"} if agg in ("sum", "mean", "min", "max") else {}
        assert value_of(ind("x", agg, window="7d", **of), events) == want, agg
    # an account without any event at all
    assert value_of(ind("x", "count"), []) == 0


def test_where_counts_only_true() -> None:
    events = [
        event(dt.datetime(2026, 6, 20), value=5.0),
        event(dt.datetime(2026, 6, 20), value=None),  # value > 3 is null: not counted
        event(dt.datetime(2026, 6, 20), value=1.0),
    ]
    assert value_of(ind("x", where="value > 3"), events) == 1
    assert value_of(ind("x", where="value > 3 or seats > 5"), events) == 3  # attributes too
    assert value_of(ind("x", where="not (value > 3)"), events) == 1


def test_times_and_days_since() -> None:
    events = [event(dt.datetime(2026, 6, 20, 18)), event(dt.datetime(2026, 6, 28, 6))]
    assert value_of(ind("x", "first_time"), events) == dt.datetime(2026, 6, 20, 18)
    assert value_of(ind("x", "last_time"), events) == dt.datetime(2026, 6, 28, 6)
    # calendar days from the event's date to the as_of date (2026-06-30)
    assert value_of(ind("x", "days_since_first"), events) == 10
    assert value_of(ind("x", "days_since_last"), events) == 2
    # an anchored window cut short by its days: measured to its last day
    w = {"from": "start", "days": 5}
    got = value_of(ind("x", "days_since_last", window=w), events, start=dt.date(2026, 6, 20))
    assert got == 4  # stop 2026-06-25 00:00 (last day 06-24), last event 2026-06-20 18:00


def test_compare() -> None:
    # current 7 days: 3 events; previous 7 days: 2 events
    cur = [event(END - dt.timedelta(days=d)) for d in (1, 2, 3)]
    prev = [event(END - dt.timedelta(days=d)) for d in (8, 13)]
    events = cur + prev
    assert value_of(ind("x", window="7d", compare="previous"), events) == 2
    assert value_of(ind("x", window="7d", compare="delta"), events) == 1
    assert value_of(ind("x", window="7d", compare="pct_change"), events) == 0.5
    assert value_of(ind("x", window="7d", compare="pct_change"), cur) is None  # previous is 0
    assert value_of(ind("x", window="7d", compare="delta"), prev) == -2
    # days_since_last of the previous window is measured to its last day (as_of - 7 days)
    got = value_of(ind("x", "days_since_last", window="7d", compare="previous"), events)
    assert got == 0  # last previous event at 2026-06-23 00:00, its last day is 2026-06-23
    got = value_of(ind("x", "mean", of="value", window="7d", compare="delta"), events)
    assert got is None  # no values in either window


# --------------------------------------------------------------------------- derived and bands

THREE = {
    "levels": [
        {"name": "red", "lt": 3},
        {"name": "amber", "ge": 3, "le": 6},
        {"name": "green", "gt": 6},
    ]
}


def test_band_edges() -> None:
    bands = Bands.model_validate(THREE)
    assert [band_of(v, bands) for v in (2.99, 3, 6, 6.01, None)] == [
        "red",
        "amber",
        "amber",
        "green",
        None,
    ]
    assert bands.level_scores() == {"red": 0.0, "amber": 50.0, "green": 100.0}


def test_derived_indicators_in_order_with_bands() -> None:
    r = roadmap(
        indicators=[
            {"id": "c", "family": "outcome", "expr": "b * 2", "bands": THREE},
            ind("n", bands=THREE),
            {"id": "b", "family": "process", "expr": "n / seats"},
            {
                "id": "label",
                "family": "process",
                "expr": "band(c) == 'green' and band(n) == 'amber'",
            },
        ]
    )
    events = [event(dt.datetime(2026, 6, 20)) for _ in range(4)]
    res = one(r, events, seats=1)
    assert res.indicators == {"n": 4, "b": 4.0, "c": 8.0, "label": True}
    assert res.bands == {"n": "amber", "c": "green"}
    res = one(r, events, seats=None)
    assert res.indicators["c"] is None
    assert res.bands["c"] is None
    assert res.indicators["label"] is None  # band(c) == 'green' is null, band(n) == 'amber' true


def test_derived_float_values_are_floats() -> None:
    r = roadmap(indicators=[{"id": "x", "family": "process", "expr": "seats if True else 0.5"}])
    assert one(r, []).indicators["x"] == 10.0
    assert isinstance(one(r, []).indicators["x"], float)


# --------------------------------------------------------------------------- stages


def test_stages_first_true_entry_wins_and_null_does_not_match() -> None:
    r = roadmap(
        indicators=[ind("n")],
        stages=[
            {"id": "big", "entry": "seats > 100"},
            {"id": "unknown", "entry": "ratio > 0.9"},
            {"id": "some", "entry": "n >= 1", "achievement": {"text": "x", "when": "ratio > 0.2"}},
        ],
    )
    res = one(r, [event(dt.datetime(2026, 6, 1))], ratio=None)
    assert (res.stage, res.stage_index, res.achieved) == ("some", 2, None)
    res = one(r, [event(dt.datetime(2026, 6, 1))], ratio=0.3)
    assert (res.stage, res.stage_index, res.achieved) == ("some", 2, True)
    res = one(r, [], ratio=0.3)
    assert (res.stage, res.stage_index, res.achieved) == ("_unassigned", None, None)


def test_tasks() -> None:
    r = roadmap(
        stages=[
            {
                "id": "s",
                "achievement": "text only",
                "tasks": {
                    "joint": ["kickoff", {"text": "setup", "done_when": "seats > 5"}],
                    "ours": [{"text": "review", "done_when": "ratio > 1"}],
                    "customer": [{"text": "train", "done_when": "plan == 'pro'"}],
                },
            }
        ]
    )
    res = one(r, [], ratio=None)
    assert res.achieved is None
    assert res.tasks == [
        ("joint", "kickoff", None),
        ("joint", "setup", True),
        ("customer", "train", True),
        ("ours", "review", None),
    ]
    assert (res.tasks_done, res.tasks_total) == (2, 4)


# --------------------------------------------------------------------------- scores


def scored_roadmap(**score: Any) -> Roadmap:
    two = {"levels": [{"name": "bad", "lt": 1}, {"name": "good", "ge": 1}]}
    return roadmap(
        indicators=[
            ind("p", window="7d", family="process", bands=THREE),  # 0 / 50 / 100
            ind("r", "sum", of="qty", family="relationship", bands=two),  # 0 / 100
            ind("o", "mean", of="value", family="outcome", bands=two),
            ind("unbanded", "count"),
        ],
        stages=[{"id": "new", "entry": "seats < 5"}, {"id": "live"}],
        score=score,
    )


def scored(score: dict[str, Any], **attrs: Any) -> AccountResult:
    events = [event(END - dt.timedelta(days=1), qty=1) for _ in range(4)]  # p=4 (amber), r=4
    return one(scored_roadmap(**score), events, **attrs)  # o: no values -> null


def test_score_skip_spreads_the_weight() -> None:
    res = scored({})
    assert res.family_scores == {"process": 50.0, "relationship": 100.0, "outcome": None}
    assert res.score == 75.0
    assert (res.indicators_scored, res.indicators_missing) == (2, 1)


def test_score_neutral_and_worst() -> None:
    assert scored({"missing": "neutral"}).score == pytest.approx(200 / 3)
    assert scored({"missing": "worst"}).score == 50.0
    assert scored({"missing": "worst"}).family_scores["outcome"] == 0.0
    assert scored({"missing": "worst"}).indicators_scored == 3


def test_score_with_indicator_and_family_weights() -> None:
    res = scored({"weights": {"indicators": {"p": 3, "r": 1, "o": 0}}})
    assert res.score == pytest.approx((3 * 50 + 100) / 4)
    assert res.indicators_missing == 0  # o is not scored (weight 0)
    res = scored({"weights": {"families": {"process": 1, "relationship": 3}}})
    assert res.score == pytest.approx((50 + 3 * 100) / 4)
    res = scored({"weights": {"families": {"process": 1, "outcome": 3}}, "missing": "worst"})
    assert res.family_scores["relationship"] is None  # a family with no weight is not scored
    assert res.score == pytest.approx((50 + 0) / 4)


def test_per_stage_weights_and_score_bands() -> None:
    score = {
        "weights": {"indicators": {"p": 1}},
        "stages": {"new": {"weights": {"indicators": {"r": 1}}}},
        "bands": {"levels": [{"name": "low", "lt": 60}, {"name": "high", "ge": 60}]},
    }
    live = scored(score, seats=10)
    assert (live.stage, live.score, live.score_band) == ("live", 50.0, "low")
    new = scored(score, seats=1)
    assert (new.stage, new.score, new.score_band) == ("new", 100.0, "high")


def test_nothing_present_gives_a_null_score() -> None:
    res = one(scored_roadmap(), [])  # p=0 (red) is present: score 0, not null
    assert res.score == 0.0
    r = roadmap(indicators=[ind("o", "mean", of="value", bands=THREE)])
    res = one(r, [])
    assert (res.score, res.score_band, res.family_scores["process"]) == (None, None, None)


# --------------------------------------------------------------------------- actions


def test_render() -> None:
    assert render(3, "int", "") == "3"
    assert render(2.675, "float", "") == "2.68"  # its decimal form is a half: away from zero
    assert render(-2.675, "float", "") == "-2.68"
    assert render(1.0, "float", "") == "1.00"
    assert render(-0.001, "float", "") == "0.00"
    assert render(0.285, "float", ".0%") == "29%"
    assert render(1, "int", ".1%") == "100.0%"
    assert render(2.5, "float", "d") == "3"
    assert render(7, "int", ".1f") == "7.0"
    assert render(None, "float", ".1f") == "n/a"
    assert render(True, "bool", "") == "true"
    assert render(dt.date(2026, 6, 1), "date", "") == "2026-06-01"
    assert render(dt.datetime(2026, 6, 1, 9, 5), "datetime", "") == "2026-06-01 09:05:00"
    assert render("pro", "str", "") == "pro"


def test_actions_scope_fire_unknown_and_text() -> None:
    r = roadmap(
        indicators=[ind("n", bands=THREE)],
        stages=[
            {
                "id": "s1",
                "entry": "seats > 5",
                "actions": [
                    {
                        "id": "low",
                        "kind": "challenge",
                        "when": "n < 3",
                        "do": "{n} in {stage}",
                        "priority": "low",
                    },
                    {
                        "id": "crit",
                        "kind": "challenge",
                        "when": "ratio < 0.6",
                        "do": "{ratio:.0%} at {as_of}",
                        "priority": "critical",
                    },
                ],
            },
            {
                "id": "s2",
                "actions": [{"id": "other", "kind": "positive", "when": "True", "do": "x"}],
            },
        ],
        actions=[
            {
                "id": "wide",
                "kind": "positive",
                "when": "score >= 0 and ratio > 0",
                "do": "{score} {stage_achieved}",
            }
        ],
    )
    accounts = [account("a", ratio=0.5), account("b", ratio=None), account("c", seats=1)]
    got = evaluate_reference(r, [], accounts, AS_OF)
    a, b, c = (got.accounts[k] for k in "abc")
    assert [(f.action_id, f.text) for f in a.actions] == [
        ("crit", "50% at 2026-06-30"),  # critical first, then by declaration
        ("wide", "0.00 n/a"),
        ("low", "0 in s1"),
    ]
    assert [f.action_id for f in b.actions] == ["low"]  # crit and wide are unknown
    assert [f.action_id for f in c.actions] == ["other", "wide"]
    assert got.conditions[("t", "crit")] == {"considered": 2, "fired": 1, "unknown": 1}
    assert got.conditions[("t", "wide")] == {"considered": 3, "fired": 2, "unknown": 1}
    assert got.conditions[("t", "other")] == {"considered": 1, "fired": 1, "unknown": 0}


def test_tracks_route_to_the_first_roadmap_that_applies() -> None:
    pro = roadmap(id="pro", applies_to="plan == 'pro'", indicators=[ind("n")])
    free = roadmap(id="free", applies_to="seats < 5", indicators=[ind("n")])
    pack = Pack.model_validate({"kind": "pack", "id": "p", "roadmaps": ["a", "b"]})
    pack = pack.model_copy(update={"loaded": [pro, free]})
    accounts = [account("a"), account("b", plan="free", seats=1), account("c", plan=None)]
    got = evaluate_reference(pack, [], accounts, AS_OF)
    assert [got.accounts[k].roadmap for k in "abc"] == ["pro", "free", None]
    assert got.accounts["c"].stage == "_unassigned"
    assert got.accounts["c"].indicators == {}


@pytest.mark.parametrize("spec", ["", ".0f", ".2f", ".0%", ".1%", "d"])
def test_engine_renders_numbers_as_the_reference(spec: str) -> None:
    """Around the largest numbers that round exactly (|x| * 10**decimals near 2**52) and
    beyond, the engine's texts equal the reference's: rounded below, shortest form above."""
    import polars as pl

    from healthrules.engine.render import render_value

    values = [1e15, -1e15, 1e16, 4.5e13 + 0.5, 4.5036e13, 4.5036e11, 2.0**52, 2.0**53 + 2,
              123456789012345.67, 0.145, 1.005, -0.001, 1e300]
    got = pl.DataFrame({"x": values}).select(
        render_value(pl.col("x"), "float", spec).alias("text"))
    assert got["text"].to_list() == [render(v, "float", spec) for v in values]


@pytest.mark.parametrize("decimals", range(13))
def test_engine_texts_of_every_precision_are_the_references(decimals: int) -> None:
    """Every precision a format may ask for (``.0f`` to ``.12f``, ``.0%`` to ``.12%``), on
    values at, above and below the halves of that precision, both signs, values smaller
    than the precision shows, whole numbers, NaN, infinities and null: the engine's texts
    (the shortest form read as a Decimal and rounded) equal the reference's, character
    for character (the zeros of the fraction, the sign of a value rounded to zero), for
    ints too."""
    import random

    import polars as pl

    from healthrules.engine.render import render_value

    rng = random.Random(decimals)
    values: list[float | None] = [0.0, -0.0, 1.0, -1.0, 12.0, 0.5, -0.5, 1.5, None,
                                  float("nan"), float("inf"), float("-inf"), 1e-13, -1e-13]
    for scale in (decimals, decimals + 2):
        step = 10.0 ** -scale
        for whole in (0, 1, 7, 123, 98765):
            for near in (0.5, 0.4999999, 0.5000001, 0.25, 0.999):
                x = (whole + near) * step
                values += [x, -x, float(repr(x)), float(f"{x:.17g}")]
    values += [rng.uniform(-1e4, 1e4) for _ in range(40)]
    values += [rng.uniform(-1.0, 1.0) * 10.0 ** rng.randint(-8, 12) for _ in range(40)]
    # from about 2**49 (|x| * 10**scale) several decimals of one more place than shown
    # are the same double: the shortest form decides (72274617766.30334 with .4f is .3033,
    # below the half, which is the same double)
    values += [72274617766.30334, -2677.0879667914714, -2504.9101587327114]
    values += [rng.uniform(2.0**46, 2.0**52) * 10.0**-scale for scale in (decimals, decimals + 2)
               for _ in range(20)]
    frame = pl.DataFrame({"x": values}, schema={"x": pl.Float64})
    for spec in (f".{decimals}f", f".{decimals}%"):
        got = frame.select(render_value(pl.col("x"), "float", spec).alias("t"))["t"]
        assert got.to_list() == [render(v, "float", spec) for v in values], spec
    ints = [0, 5, -7, 123456789, 2**52 // 10**decimals, -(2**52) // 10**decimals, 2**53 + 1,
            -(2**62), None]
    frame = pl.DataFrame({"n": ints}, schema={"n": pl.Int64})
    for spec in (f".{decimals}f", f".{decimals}%", "d"):
        got = frame.select(render_value(pl.col("n"), "int", spec).alias("t"))["t"]
        assert got.to_list() == [render(v, "int", spec) for v in ints], spec


def test_polars_writes_floats_with_the_digits_of_repr() -> None:
    """The engine rounds a shown number from its text as polars writes it (read as a
    Decimal): that text must be the shortest form Python's ``repr`` prints, digit for
    digit, over doubles of every magnitude (bit patterns drawn at random, seeded) and the
    ties of shortest forms near powers of two."""
    import decimal
    import random
    import struct

    import polars as pl

    rng = random.Random(20261206)
    values = [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
              for _ in range(20000)]
    values += [2.0**e * m for e in range(-60, 60) for m in (1.0, 1.0000000000000002,
                                                             0.9999999999999999)]
    values = [v for v in values if v == v and abs(v) != float("inf")]
    texts = pl.Series(values, dtype=pl.Float64).cast(pl.String).to_list()
    wrong = [(v, t) for v, t in zip(values, texts, strict=True)
             if decimal.Decimal(t) != decimal.Decimal(repr(v))]
    assert not wrong, wrong[:5]
