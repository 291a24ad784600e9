"""Roll-ups over hierarchies no other generator reaches (docs/semantics.md, "Account
hierarchies"; docs/format.md, "Rolled up from children"): a pack whose tracks share one
hierarchy, so that a parent's children are routed to its roadmap, to another track or to
none (only the first count); deep chains (up to twelve generations) under roll-ups of
roll-ups three levels high, one through a derived indicator; parents without children;
children whose values are null, NaN, inf, -inf, -0.0 or 1e300; dated accounts whose parent
changes between versions, in history at every date against ``evaluate``; cycles, self-parents
and missing parents refused alike by ``evaluate`` and ``history``. The engine is compared
with the reference evaluator, ``explain`` with the engine."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import healthrules as hr
from healthrules.errors import InputDataError
from healthrules.explain import explain
from healthrules.history import history
from healthrules.roadmap import Pack, Roadmap
from reference import evaluate_reference
from test_engine_vs_reference import compare

AS_OF = dt.date(2026, 6, 30)
BANDS = {"levels": [{"name": "red", "lt": 2}, {"name": "amber", "ge": 2, "lt": 4},
                    {"name": "green", "ge": 4}]}
RATIOS = [None, math.nan, math.inf, -math.inf, -0.0, 0.0, 1.5, -2.25, 1e300, 3.0]


def _track(ident: str, applies_to: str, dated: bool, rich: bool) -> Roadmap:
    accounts: dict[str, Any] = {"attributes": {"plan": "str", "seats": "int", "ratio": "float"},
                                "parent": "parent_id"}
    if dated:
        accounts.update(valid_from="valid_from", valid_to="valid_to")
    indicators: list[dict[str, Any]] = [
        {"id": "n", "family": "process", "aggregate": "count", "window": "30d",
         "bands": BANDS},
        {"id": "u_sum", "family": "process", "kind": "rollup", "aggregate": "sum",
         "of": "ratio"},
        {"id": "u_seats", "family": "process", "kind": "rollup", "aggregate": "sum",
         "of": "seats"},
        {"id": "d1", "family": "process", "expr": "u_seats + n"},
        {"id": "u2", "family": "process", "kind": "rollup", "aggregate": "sum", "of": "d1"},
        {"id": "u3", "family": "process", "kind": "rollup", "aggregate": "max", "of": "u2"},
    ]
    if rich:
        indicators += [
            {"id": "u_mean", "family": "outcome", "kind": "rollup", "aggregate": "mean",
             "of": "ratio"},
            {"id": "u_min", "family": "outcome", "kind": "rollup", "aggregate": "min",
             "of": "ratio"},
            {"id": "u_max", "family": "outcome", "kind": "rollup", "aggregate": "max",
             "of": "-ratio"},
            {"id": "u_cnt", "family": "outcome", "kind": "rollup", "aggregate": "count",
             "of": "n > 1"},
            {"id": "u_share", "family": "outcome", "kind": "rollup", "aggregate": "share",
             "of": "ratio > 0"},
            {"id": "u_wm", "family": "outcome", "kind": "rollup", "aggregate": "weighted_mean",
             "of": "ratio", "weight": "seats"},
            {"id": "u_worst", "family": "outcome", "kind": "rollup", "aggregate": "worst_band",
             "of": "n"},
            {"id": "u_mean2", "family": "outcome", "kind": "rollup", "aggregate": "mean",
             "of": "u_mean"},
        ]
    spec = {"id": ident, "goal": "g", "applies_to": applies_to,
            "data": {"events": {"values": {}}, "accounts": accounts},
            "indicators": indicators,
            "stages": [{"id": "s", "actions": [
                {"id": "a", "kind": "challenge", "when": "u3 > 2", "do": "{u3} below"}]}]}
    return Roadmap.model_validate(spec)


def _tracks(dated: bool) -> list[Roadmap]:
    # pro accounts in "ta", the others but trial in "tb", trial and no plan in none
    return [_track("ta", "plan == 'pro'", dated, True),
            _track("tb", "plan != 'trial'", dated, False)]


@st.composite
def forests(draw: st.DrawFn) -> tuple[list[str], list[str | None]]:
    n = draw(st.integers(1, 12))
    ids = [f"c{k:02d}" for k in range(n)]
    if draw(st.integers(0, 3)) == 0:  # one deep chain
        return ids, [None, *ids[:-1]]
    return ids, [None if k == 0 or draw(st.integers(0, 3)) == 0
                 else ids[draw(st.integers(max(0, k - 3), k - 1))] for k in range(n)]


def _attributes(draw: st.DrawFn, n: int) -> dict[str, list[Any]]:
    return {"plan": [draw(st.sampled_from(["pro", "pro", "basic", "trial", None]))
                     for _ in range(n)],
            "seats": [draw(st.sampled_from([None, 0, 3, -1, 7])) for _ in range(n)],
            "ratio": [draw(st.sampled_from(RATIOS)) for _ in range(n)]}


def _events(draw: st.DrawFn, ids: list[str]) -> pl.DataFrame:
    rows = [(draw(st.sampled_from(ids)), dt.datetime(2026, 6, 1)
             + dt.timedelta(hours=draw(st.integers(0, 30 * 24 - 1))))
            for _ in range(draw(st.integers(0, 30)))]
    return pl.DataFrame({"account_id": [r[0] for r in rows], "user_id": ["u"] * len(rows),
                         "event": ["x"] * len(rows), "timestamp": [r[1] for r in rows]},
                        schema={"account_id": pl.String, "user_id": pl.String,
                                "event": pl.String, "timestamp": pl.Datetime("us")})


ACCOUNT_SCHEMA = {"account_id": pl.String, "parent_id": pl.String, "plan": pl.String,
                  "seats": pl.Int64, "ratio": pl.Float64}


@st.composite
def pack_cases(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame]:
    ids, parents = draw(forests())
    accounts = pl.DataFrame({"account_id": ids, "parent_id": parents,
                             **_attributes(draw, len(ids))}, schema=ACCOUNT_SCHEMA)
    return _events(draw, ids), accounts


def _pack(tracks: list[Roadmap]) -> Pack:
    pack = Pack(kind="pack", id="p", roadmaps=[f"{r.id}.yaml" for r in tracks])
    pack.loaded.extend(tracks)
    return pack


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a)
                                                     == math.copysign(1, b))
    return a == b


@settings(max_examples=50)
@given(pack_cases())
def test_a_pack_sharing_a_hierarchy_matches_the_reference_and_explain(
        case: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, accounts = case
    tracks = _tracks(dated=False)
    result = hr.evaluate(hr.compile(tracks), events, accounts, AS_OF)
    problems = compare(result, evaluate_reference(_pack(tracks), events, accounts, AS_OF), tracks)
    assert not problems, "\n".join(problems[:20])
    # the children explain names are those of the same roadmap
    routed = dict(result.stages.select("account_id", "roadmap").rows())
    rows = {r["account_id"]: r for r in result.indicators.to_dicts()}
    for ident in accounts["account_id"]:
        why = explain(result, ident)
        want_kids = sorted(k for k, p in accounts.select("account_id", "parent_id").rows()
                           if p == ident and routed.get(k) is not None
                           and routed.get(k) == routed.get(ident))
        if routed.get(ident) is None:
            continue
        assert sorted(why.children) == want_kids, (ident, why.children, want_kids)
        # and its values are the evaluation's (the roll-ups it shows, the stage it traces)
        for name in rows[ident]:
            if name in why.values:
                assert _same(why.values[name], rows[ident][name]), (ident, name)


@st.composite
def dated_cases(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame, list[dt.date]]:
    """Dated accounts: each account one or two versions, the second from a change date with
    another parent (an account listed earlier, so no cycle at any date) and other values."""
    ids, parents = draw(forests())
    rows: list[dict[str, Any]] = []
    start = dt.date(2026, 1, 1)
    for k, (ident, parent) in enumerate(zip(ids, parents, strict=True)):
        attrs = _attributes(draw, 2)
        change = (None if draw(st.booleans()) else
                  dt.date(2026, 6, 1) + dt.timedelta(days=draw(st.integers(0, 29))))
        first = {"account_id": ident, "parent_id": parent, "valid_from": start,
                 "valid_to": change, **{c: v[0] for c, v in attrs.items()}}
        rows.append(first)
        if change is not None:
            other = None if k == 0 or draw(st.booleans()) else ids[draw(st.integers(0, k - 1))]
            rows.append({"account_id": ident, "parent_id": other, "valid_from": change,
                         "valid_to": None, **{c: v[1] for c, v in attrs.items()}})
    accounts = pl.DataFrame(rows, schema={**ACCOUNT_SCHEMA, "valid_from": pl.Date,
                                          "valid_to": pl.Date})
    dates = sorted(draw(st.sets(st.integers(0, 29), min_size=1, max_size=4)))
    return _events(draw, ids), accounts, [dt.date(2026, 6, 1) + dt.timedelta(days=d)
                                          for d in dates]


@settings(max_examples=25)
@given(dated_cases())
def test_dated_parents_in_history_equal_evaluate_and_the_reference_at_every_date(
        case: tuple[pl.DataFrame, pl.DataFrame, list[dt.date]]) -> None:
    events, accounts, dates = case
    tracks = _tracks(dated=True)
    plan = hr.compile(tracks)
    h = history(plan, events, accounts, dates[0], dates[-1], every="1d")
    for d in dates:
        want = hr.evaluate(plan, events, accounts, d)
        problems = compare(want, evaluate_reference(_pack(tracks), events, accounts, d), tracks)
        assert not problems, "\n".join([str(d), *problems[:20]])
        for name, frame in want.frames.items():
            assert_frame_equal(h.at(d).frames[name], frame, check_exact=True)


@pytest.mark.parametrize(("parents", "code"), [
    ({"c0": "c0"}, "parent_cycle"),                       # its own parent
    ({"c0": "c2", "c1": "c0", "c2": "c1"}, "parent_cycle"),
    ({"c1": "c0", "c2": "ghost"}, "unknown_parent"),
    ({"c3": "c2", "c2": "c1", "c1": "c3", "c0": None}, "parent_cycle"),
])
def test_cycles_self_parents_and_missing_parents_are_refused_by_every_path(
        parents: dict[str, str | None], code: str) -> None:
    ids = ["c0", "c1", "c2", "c3"]
    accounts = pl.DataFrame({"account_id": ids, "parent_id": [parents.get(k) for k in ids],
                             "plan": ["pro", "basic", "trial", None], "seats": [1] * 4,
                             "ratio": [1.0] * 4}, schema=ACCOUNT_SCHEMA)
    events = pl.DataFrame({"account_id": ["c0"], "user_id": ["u"], "event": ["x"],
                           "timestamp": [dt.datetime(2026, 6, 20)]})
    plan = hr.compile(_tracks(dated=False))
    with pytest.raises(InputDataError) as one:
        hr.evaluate(plan, events, accounts, AS_OF)
    with pytest.raises(InputDataError) as many:
        history(plan, events, accounts, dt.date(2026, 6, 28), AS_OF, every="1d")
    assert {i.code for i in one.value.issues} == {code} == {i.code for i in many.value.issues}
