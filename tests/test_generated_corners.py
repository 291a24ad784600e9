"""Parts of the format no other generator reached, evaluated against the reference and
``explain``.

tests/test_engine_vs_reference.py draws one roadmap at a time, with ``joint`` tasks only,
bands of at most two cut points, no ``goal.indicator`` and no ``max_staleness``, and
tests/test_generated_paths.py runs ``explain`` over the same roadmaps; neither reaches:

- **packs**: several roadmaps routed by ``applies_to`` (accounts in no track, in one, in
  several where the first wins; ``applies_to`` over null attributes and ``as_of``), tracks
  that share indicator ids (of one type: of two types the pack is refused, see
  docs/semantics.md, "Tracks (packs)") or declare their own, tracks with and without a
  hierarchy, segments, score bands;
- **task lists** ``customer`` and ``ours`` next to ``joint``: their texts, order and
  ``done_when`` in the ``stages`` frame;
- ``goal.indicator`` (read by lint only: results must not depend on it) and
  ``data.events.max_staleness`` (read by ``healthrules run`` only);
- **bands of 3 to 6 cut points** (the engine finds a value's band by comparisons up to 4 cut
  points and by a binary search above), both edge kinds, both directions, values on the cut
  points, ``-0.0``, NaN, infinities, nulls, Int64 values beyond 2**53;
- **time zones** beyond UTC and New York in June: a daylight-saving change inside the
  windows and on the ``as_of`` date itself (New York, London, Lord Howe's half-hour change,
  St John's), and half or quarter-hour offsets (Kolkata, Kathmandu);
- the engine's **forms for many rows** (task lists from their combinations, positional stage
  tests, the evidence of many fired rows, the streaming engine) on these cases: their
  thresholds are set to 0 or 1 (``many_row_forms``), so a handful of accounts takes them.

The fired actions' evidence is compared with the reference's too. What the hunt found is
pinned by the fixed tests next to each part: packs whose tracks type an indicator id two
ways or name another track's columns (refused now), and the score of bands named by a
when/then chain over several rows alike.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import re
from typing import Any
from unittest import mock

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, event, given, reject, settings
from hypothesis import strategies as st

import healthrules as hr
from healthrules.analysis import analyze
from healthrules.engine import aggregate, assemble, evaluator, frames
from healthrules.errors import RoadmapError
from healthrules.roadmap import Pack, Roadmap
from reference import evaluate_reference
from test_dated_accounts import dated_cases
from test_engine_vs_reference import (
    AS_OF,
    ZONES,
    Draw,
    compare,
    data,
    edged_levels,
    evaluate_unless_out_of_range,
    roadmaps,
    same,
)
from test_generated_paths import explain_problems
from test_sources_engine import multi_source_cases

Roadmaps = list[Roadmap]

MANY_ROW_FORMS = [
    (assemble, "EVIDENCE_MANY_ROWS", 1),
    (assemble, "MANY_ROWS", 1),
    (assemble, "TASK_COMBINATION_ROWS", 0),
    (assemble, "_COUNTED_STAGES_ROWS", 0),
    (assemble, "SMALL_ROWS", 0),
    (evaluator, "SMALL_ROWS", 0),
    (frames, "SMALL_ROWS", 0),
    (aggregate, "SMALL_ROWS", 0),
]
"""The thresholds above which the engine takes its forms for many rows (task lists joined
from their combinations, positional stage tests, the evidence of many fired rows, fired rows
collected before they are rendered, the streaming engine): set to 0 or 1, the few accounts
of a generated case take them all."""


def many_row_forms() -> contextlib.ExitStack:
    """A context in which the engine takes every form for many rows."""
    stack = contextlib.ExitStack()
    for module, name, value in MANY_ROW_FORMS:
        stack.enter_context(mock.patch.object(module, name, value))
    return stack


def _evidence_problems(result: hr.Evaluation, ref: Any) -> list[str]:
    problems = []
    for row in result.actions.to_dicts():
        want = next(f for f in ref.accounts[row["account_id"]].actions
                    if f.action_id == row["action_id"])
        got = [(e["name"], e["op"], e["threshold"]) for e in row["evidence"]]
        if got != list(want.evidence):
            problems.append(f"{row['account_id']} {row['action_id']} evidence: engine {got}, "
                            f"reference {list(want.evidence)}")
    return problems


APPLIES_TO = [
    "plan == 'pro'",
    "plan in ('pro', 'ent') or vip",
    "not vip",
    "seats > 3",
    "seats is None",
    "ratio < 0.5",
    "days_since(start) < 60",
    "days_between(start, as_of) >= 30 and vip",
    "since is not None and since < date('2026-05-01')",
    "vip is None or plan == 'free'",
]
"""Routes over every attribute type: a null attribute makes most of them null (not taken)."""

TASK_TEXTS = ["plain", "Call the admin", "ça va: {x}", "", "plain", "Ünïcode \u2713"]


def _tasks(draw: Draw, cond: st.SearchStrategy[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for lst in ("joint", "customer", "ours"):
        items: list[Any] = []
        for _ in range(draw(st.integers(0, 3))):
            text = draw(st.sampled_from(TASK_TEXTS)) or "t"
            items.append({"text": text, "done_when": draw(cond)} if draw(st.booleans())
                         else text)
        if items or draw(st.booleans()):
            out[lst] = items
    return out


def _rename(spec: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The spec with its indicator ids (``i0``, ``u1``, ``d0``, ``c0``, ``t0``) prefixed."""
    text = re.sub(r"\b([iudct]\d)\b", prefix + r"\1", json.dumps(spec))
    out: dict[str, Any] = json.loads(text)
    return out


def _pool(spec: dict[str, Any]) -> list[str]:
    return [i["id"] for i in spec["indicators"]
            if i.get("aggregate") not in ("first_time", "last_time")]


@st.composite
def track_specs(draw: Draw, zone: str | None, k: int, hierarchy: bool) -> dict[str, Any]:
    """Roadmap ``k`` of a pack: the generator's roadmap with tasks in all three lists, a
    ``goal.indicator``, maybe ``max_staleness``, and its own indicator ids unless it shares
    them with the first track."""
    spec = draw(roadmaps(zone, hierarchy=hierarchy))
    if k and draw(st.integers(0, 3)):
        spec = _rename(spec, f"p{k}")
    spec["id"] = f"r{k}"
    pool = _pool(spec) or ["seats"]
    conds = st.sampled_from([f"{p} > 1" for p in pool] + [f"{p} is None" for p in pool]
                            + ["vip", "seats >= 5 and ratio < 0.5", "plan == 'pro'"])
    for stage in spec["stages"]:
        if draw(st.booleans()):
            stage["tasks"] = _tasks(draw, conds)
    if draw(st.booleans()):
        spec["goal"]["indicator"] = draw(st.sampled_from([i["id"] for i in spec["indicators"]]))
    if draw(st.booleans()):
        spec["data"]["events"]["max_staleness"] = draw(st.sampled_from(["1d", "2w", "30d"]))
    return spec


@st.composite
def pack_cases(draw: Draw) -> tuple[Roadmaps, pl.DataFrame, pl.DataFrame, Any]:
    zone = draw(st.sampled_from(ZONES))
    n = draw(st.integers(2, 3))
    specs = [draw(track_specs(zone, k, hierarchy=draw(st.booleans()))) for k in range(n)]
    for k, spec in enumerate(specs):
        if k < n - 1 or draw(st.booleans()):
            spec["applies_to"] = draw(st.sampled_from(APPLIES_TO))
    tracks = [Roadmap.model_validate(s) for s in specs]
    assume(all(analyze(r).ok for r in tracks))
    # two draws of accounts (the second's ids and parents renamed), so that more accounts
    # meet more routes
    events, accounts = draw(data(zone))
    more_events, more = draw(data(zone))
    renamed = pl.col("account_id").str.replace("^c", "d")
    more = more.with_columns(renamed, pl.col("parent_id").str.replace("^c", "d"))
    events = pl.concat([events, more_events.with_columns(renamed)])
    accounts = pl.concat([accounts, more])
    as_of: Any = AS_OF
    if draw(st.booleans()):
        as_of = dt.datetime(2026, 6, 30, draw(st.integers(0, 23)), 30)
    return tracks, events, accounts, as_of


def _pack(tracks: Roadmaps) -> Pack:
    pack = Pack(kind="pack", id="p", roadmaps=[f"{r.id}.yaml" for r in tracks])
    pack.loaded.extend(tracks)
    return pack


def _clashes(tracks: Roadmaps) -> set[str]:
    """Indicator ids that two tracks declare with two types."""
    seen: dict[str, str] = {}
    out = set()
    for r in tracks:
        for ident, typ in analyze(r).indicator_types.items():
            if seen.setdefault(ident, typ) != typ:
                out.add(ident)
    return out


def _explained_values(result: hr.Evaluation, tracks: Roadmaps, ref: Any) -> list[str]:
    """``explain``'s values of the account's indicators against the reference's."""
    problems = []
    by_id = {r.id: r for r in tracks}
    for account, want in ref.accounts.items():
        why = result.explain(account)
        if want.roadmap is None:
            if why.roadmap is not None:
                problems.append(f"{account} explain routes to {why.roadmap}, reference none")
            continue
        for ind in by_id[want.roadmap].indicators:
            if not same(why.values.get(ind.id), want.indicators[ind.id]):
                problems.append(f"{account} {ind.id}: explain {why.values.get(ind.id)!r}, "
                                f"reference {want.indicators[ind.id]!r}")
    return problems


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pack_cases())
def test_packs_match_the_reference_and_explain(
        case: tuple[Roadmaps, pl.DataFrame, pl.DataFrame, Any]) -> None:
    tracks, events, accounts, as_of = case
    clashes = _clashes(tracks)
    if clashes:
        with pytest.raises(RoadmapError) as got:
            hr.compile(tracks)
        assert {i.code for i in got.value.errors()} == {"name_clash"}, got.value
        event("refused: an indicator id of two types")
        reject()
    result = evaluate_unless_out_of_range(hr.compile(tracks), events, accounts, as_of)
    ref = evaluate_reference(_pack(tracks), events, accounts, as_of)
    routes = sorted({str(a.roadmap) for a in ref.accounts.values()})
    event(f"routes: {', '.join(routes)}")
    event(f"task lists: {sorted({t[0] for a in ref.accounts.values() for t in a.tasks})}")
    problems = compare(result, ref, tracks) + _evidence_problems(result, ref)
    problems += explain_problems(result, tracks)
    problems += _explained_values(result, tracks, ref)
    assert not problems, "\n".join(problems[:20])
    # goal.indicator and max_staleness play no part in an evaluation
    bare = [r.model_copy(update={"goal": r.goal.model_copy(update={"indicator": None})})
            for r in tracks]
    again = hr.evaluate(hr.compile(bare), events, accounts, as_of)
    for what in ("indicators", "stages", "scores", "actions", "conditions"):
        assert getattr(again, what).equals(getattr(result, what)), what


# --------------------------------------------------------------------------- packs, fixed


def _track(ident: str, applies_to: str | None, indicators: list[dict[str, Any]],
           attributes: dict[str, str], when: str = "x is not None",
           do: str = "x={x}") -> Roadmap:
    spec: dict[str, Any] = {
        "id": ident, "goal": "g", "data": {"accounts": {"attributes": attributes}},
        "indicators": indicators, "stages": [{"id": "s"}],
        "actions": [{"id": "a", "kind": "positive", "when": when, "do": do}]}
    if applies_to is not None:
        spec["applies_to"] = applies_to
    return Roadmap.model_validate(spec)


ATTRS = {"seats": "int", "ratio": "float", "plan": "str", "at": "datetime", "day": "date"}


@pytest.mark.parametrize(("first", "second", "types"), [
    ("seats", "ratio", ("float", "int")),
    ("seats", "plan", ("str", "int")),
    ("seats", "at", ("datetime", "int")),
    ("seats", "day", ("date", "int")),
    ("at", "day", ("date", "datetime")),
    ("seats", "seats > 1", ("bool", "int")),
])
def test_a_pack_whose_tracks_type_an_indicator_two_ways_is_refused(
        first: str, second: str, types: tuple[str, str]) -> None:
    """One indicators frame holds every track's indicators, one column per id: stacked, an
    int and a float column became a float one (2**53 + 1 read as 2**53, in the frame and in
    ``explain``), a datetime or a date became its integer (microseconds, days), a bool 0 or
    1, an int its text. Refused, located at the second track's indicator."""
    tracks = [_track("r0", "plan == 'pro'", [{"id": "x", "family": "process", "expr": first}],
                     ATTRS),
              _track("r1", None, [{"id": "x", "family": "process", "expr": second}], ATTRS)]
    with pytest.raises(RoadmapError) as got:
        hr.compile(tracks)
    [issue] = got.value.errors()
    assert issue.code == "name_clash" and issue.location.path == "indicators[0].id"
    assert f"indicator 'x' is {types[0]} here but {types[1]} in roadmap 'r0'" in issue.message


def test_a_track_indicator_named_like_another_tracks_attribute_is_refused() -> None:
    """Track r1's count ``seats`` read the accounts frame's ``seats`` column (an attribute
    of track r0) in place of its events: 42 for an account without events, and the action
    on it fired. Refused, located."""
    r0 = _track("r0", "plan == 'pro'", [{"id": "x", "family": "process", "aggregate": "count"}],
                {"seats": "int", "plan": "str"})
    r1 = _track("r1", None, [{"id": "seats", "family": "process", "aggregate": "count"}],
                {"plan": "str"}, when="seats > 0", do="{seats}")
    with pytest.raises(RoadmapError) as got:
        hr.compile([r0, r1])
    [issue] = got.value.errors()
    assert issue.code == "name_clash" and issue.location.path == "indicators[0].id"
    assert "indicator 'seats' has the name of a column of the accounts frame" in issue.message
    # with another name, the reference's value
    r1 = _track("r1", None, [{"id": "n", "family": "process", "aggregate": "count"}],
                {"plan": "str"}, when="n > 0", do="{n}")
    events = pl.DataFrame({"account_id": ["a"], "user_id": ["u"], "event": ["e"],
                           "timestamp": [dt.datetime(2026, 6, 1)]})
    accounts = pl.DataFrame({"account_id": ["a", "b"], "seats": [7, 42],
                             "plan": ["pro", "free"]})
    result = hr.evaluate(hr.compile([r0, r1]), events, accounts, AS_OF)
    assert result.indicators.filter(pl.col("account_id") == "b")["n"].to_list() == [0]
    assert not compare(result, evaluate_reference(_pack([r0, r1]), events, accounts, AS_OF),
                       [r0, r1])


def test_a_track_attribute_named_like_another_tracks_event_column_is_refused() -> None:
    """Track r1's attribute ``qty`` against r0's event value column ``qty`` (one events
    frame): r1's filter ``qty >= 1`` read the events' column (a count of 1 where r1's
    attribute is 0), its derived indicators the attribute. Refused, located."""
    r0 = Roadmap.model_validate({
        "id": "r0", "goal": "g", "applies_to": "plan == 'pro'",
        "data": {"events": {"values": {"qty": "int"}}, "accounts": {"attributes": {"plan": "str"}}},
        "indicators": [{"id": "s", "family": "process", "aggregate": "sum", "of": "qty"}],
        "stages": [{"id": "s"}]})
    r1 = Roadmap.model_validate({
        "id": "r1", "goal": "g", "data": {"accounts": {"attributes": {"plan": "str",
                                                                      "qty": "int"}}},
        "indicators": [{"id": "m", "family": "process", "aggregate": "count",
                        "where": "qty >= 1"}],
        "stages": [{"id": "s"}]})
    with pytest.raises(RoadmapError) as got:
        hr.compile([r0, r1])
    [issue] = got.value.errors()
    assert issue.code == "name_clash" and issue.location.path == "data.accounts.attributes.qty"
    assert "attribute 'qty' has the name of an event column of roadmap 'r0'" in issue.message


def test_a_pack_file_with_tracks_that_type_an_indicator_two_ways_is_refused(
        tmp_path: Any) -> None:
    """The loader reports it at the pack's ``roadmaps[i]`` entry, naming the file."""
    common = ("goal: g\ndata: {accounts: {attributes: {seats: int, ratio: float}}}\n"
              "stages: [{id: s}]\n")
    (tmp_path / "a.yaml").write_text("id: a\napplies_to: seats > 3\n" + common
                                     + "indicators: [{id: x, family: process, expr: seats}]\n")
    (tmp_path / "b.yaml").write_text("id: b\n" + common
                                     + "indicators: [{id: x, family: process, expr: ratio}]\n")
    (tmp_path / "pack.yaml").write_text("kind: pack\nid: p\nroadmaps: [a.yaml, b.yaml]\n")
    with pytest.raises(RoadmapError) as got:
        hr.load(tmp_path / "pack.yaml")
    [issue] = got.value.errors()
    assert issue.code == "name_clash" and issue.location.path == "roadmaps[1]"
    assert "b.yaml: indicators[0].id" in issue.message


# --------------------------------------------------------------------------- bands

BIG = 2**53
FLOAT_CUTS = [-1e308, -2.5, -1.0, -0.0, 0.0, 0.25, 0.5, 1.0, 2.5, 7.0, 1e300]
INT_CUTS = [-(2**62), -5, -1, 0, 1, 2, 3, 5, 8, BIG - 2, BIG, BIG + 2, 2**62]
FLOAT_VALUES = [*FLOAT_CUTS, math.nan, math.inf, -math.inf, None, 5e-324, -5e-324, 0.1,
                math.nextafter(0.5, 1), math.nextafter(0.5, 0), 3.0, 1e308]
INT_VALUES = [*INT_CUTS, None, BIG - 1, BIG + 1, BIG + 3, 2**63 - 1, -(2**63), 4, 6, -3]


@st.composite
def many_bands(draw: Draw, cuts: list[Any]) -> dict[str, Any]:
    """Bands of 3 to 6 cut points, each edge ``lt``/``ge`` or ``le``/``gt``."""
    points = sorted(draw(st.lists(st.sampled_from(cuts), min_size=3, max_size=6,
                                  unique_by=float)))
    assume(len(points) >= 3)
    levels = edged_levels(draw, [f"b{i}" for i in range(len(points) + 1)], points)
    bands: dict[str, Any] = {"levels": levels}
    if draw(st.booleans()):
        bands["direction"] = "lower_is_better"
    if draw(st.booleans()):
        for level in levels:
            level["score"] = draw(st.sampled_from([0, 10, 33.5, 50, 100]))
    return bands


@st.composite
def band_cases(draw: Draw) -> tuple[Roadmap, pl.DataFrame]:
    indicators = []
    both = sorted({*FLOAT_CUTS, *INT_CUTS}, key=float)
    exprs = [("f", FLOAT_CUTS), ("n", INT_CUTS), ("-f", FLOAT_CUTS), ("n * 1.0", FLOAT_CUTS),
             ("f * 0", FLOAT_CUTS), ("n", both), ("f", both), ("n - 1", INT_CUTS)]
    for k in range(draw(st.integers(1, 3))):
        expr, cuts = draw(st.sampled_from(exprs))
        indicators.append({"id": f"x{k}", "family": draw(st.sampled_from(
            ["process", "relationship", "outcome"])), "expr": expr,
            "bands": draw(many_bands(cuts))})
        if draw(st.booleans()):
            indicators[-1]["missing"] = draw(st.sampled_from(["skip", "neutral", "worst"]))
    weights: dict[str, Any] = {}
    if draw(st.booleans()):  # fractional weights: the products and their sums are rounded
        weights["indicators"] = {i["id"]: draw(st.sampled_from([0, 0.1, 0.7, 1, 3, 1e-3]))
                                 for i in indicators}
        weights["indicators"]["x0"] = 0.3
    if draw(st.booleans()):
        weights["families"] = {"process": 0.2, "relationship": 1, "outcome": 0.7}
    first = indicators[0]
    names = [level["name"] for level in first["bands"]["levels"]]
    roadmap = Roadmap.model_validate({
        "id": "r", "goal": {"text": "g", "indicator": "x0",
                            "target": f"band(x0) == '{names[-1]}'"},
        "data": {"accounts": {"attributes": {"f": "float", "n": "int"}}},
        "indicators": indicators,
        "stages": [{"id": "s", "entry": f"band(x0) in ('{names[0]}', '{names[1]}')"},
                   {"id": "t"}],
        "score": {"missing": draw(st.sampled_from(["skip", "neutral", "worst"])),
                  "weights": weights,
                  "bands": draw(many_bands([10, 20, 25, 33.5, 50, 66.75, 80, 90]))},
        "actions": [{"id": "a", "kind": "positive", "when": f"band(x0) == '{names[2]}'",
                     "do": "{x0} {f} {n}"}]})
    n = draw(st.integers(1, 6))
    accounts = pl.DataFrame({
        "account_id": [f"c{k}" for k in range(n)],
        "f": draw(st.lists(st.sampled_from(FLOAT_VALUES), min_size=n, max_size=n)),
        "n": draw(st.lists(st.sampled_from(INT_VALUES), min_size=n, max_size=n)),
    }, schema={"account_id": pl.String, "f": pl.Float64, "n": pl.Int64})
    # other dtypes the data contract takes (cast on input): narrower ints, unsigned ones
    # (values beyond the Int64 range refused), Float32
    n_dtype = draw(st.sampled_from([pl.Int64, pl.Int32, pl.UInt64, pl.Int16]))
    f_dtype = draw(st.sampled_from([pl.Float64, pl.Float64, pl.Float32]))
    return roadmap, accounts.with_columns(pl.col("n").cast(n_dtype, strict=False),
                                          pl.col("f").cast(f_dtype))


NO_EVENTS = pl.DataFrame(schema={"account_id": pl.String, "user_id": pl.String,
                                 "event": pl.String, "timestamp": pl.Datetime("us")})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(band_cases())
def test_bands_of_many_cut_points_match_the_reference_and_explain(
        case: tuple[Roadmap, pl.DataFrame]) -> None:
    roadmap, accounts = case
    ref = evaluate_reference(roadmap, NO_EVENTS, accounts, AS_OF)
    result = hr.evaluate(roadmap, NO_EVENTS, accounts, AS_OF)
    with many_row_forms():  # the bands' positions and scores in their forms for many rows
        many = hr.evaluate(roadmap, NO_EVENTS, accounts, AS_OF)
    problems = compare(result, ref, roadmap) + explain_problems(result, roadmap)
    problems += [f"many rows: {p}" for p in compare(many, ref, roadmap)]
    for account, want in ref.accounts.items():
        why = result.explain(account)
        for c in why.contributions:
            if c.band != want.bands[c.indicator]:
                problems.append(f"{account} {c.indicator}: explain {c.band}, "
                                f"reference {want.bands[c.indicator]}")
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("rows", [1, 2, 3])
@pytest.mark.parametrize("many", [False, True])
def test_a_score_of_chained_bands_does_not_depend_on_the_rows_evaluated_with_it(
        rows: int, many: bool) -> None:
    """Bands whose edges are of both kinds are named by a when/then chain, which polars
    makes a scalar column when every row takes one branch; the band score read from a table
    is a full column, and the presence of a band (skipped when missing) was the chain's
    ``is_not_null()``, a scalar. Dividing a column by a scalar is a reciprocal multiply:
    (100 + 0 + 66.66666666666667) / 3 gave 55.55555555555556 for two or more rows alike,
    55.555555555555564 (the IEEE division, docs/semantics.md, "Floating point") for one
    row alone (found by the bands test above)."""
    def levels(*edges: tuple[str, float], scores: list[float] | None = None) -> dict[str, Any]:
        out: list[dict[str, Any]] = [{"name": f"b{i}"} for i in range(len(edges) + 1)]
        for i, (kind, cut) in enumerate(edges):
            out[i][kind] = cut
            out[i + 1][{"lt": "ge", "le": "gt"}[kind]] = cut
        for level, score in zip(out, scores or [], strict=False):
            level["score"] = score
        return {"direction": "lower_is_better", "levels": out}

    bands = [levels(("lt", -1.0), ("le", 0.0), ("le", 1.0), scores=[0, 100, 0, 10]),
             levels(("le", -1.0), ("lt", 0.25), ("lt", 1.0), scores=[0, 0, 0, 33.5]),
             levels(("lt", -1.0), ("le", 0.5), ("le", 7.0))]
    roadmap = Roadmap.model_validate({
        "id": "r", "goal": "g", "data": {"accounts": {"attributes": {"f": "float"}}},
        "indicators": [{"id": f"x{k}", "family": "relationship", "expr": "f * 0", "bands": b}
                       for k, b in enumerate(bands)],
        "stages": [{"id": "s"}]})
    accounts = pl.DataFrame({"account_id": [f"c{k}" for k in range(rows)],
                             "f": [0.0, 0.3, -5.0][:rows]})
    with many_row_forms() if many else contextlib.nullcontext():
        scores = hr.evaluate(roadmap, NO_EVENTS, accounts, AS_OF).scores
    assert scores["score"].to_list() == [55.555555555555564] * rows
    assert scores["score_relationship"].to_list() == [55.555555555555564] * rows
    ref = evaluate_reference(roadmap, NO_EVENTS, accounts, AS_OF)
    assert ref.accounts["c0"].score == 55.555555555555564


# --------------------------------------------------------------------------- time zones

CHANGES = {
    "America/New_York": [dt.date(2026, 3, 8), dt.date(2026, 11, 1)],
    "Europe/London": [dt.date(2026, 3, 29), dt.date(2026, 10, 25)],
    "Australia/Lord_Howe": [dt.date(2026, 4, 5), dt.date(2026, 10, 4)],  # half an hour
    "America/St_Johns": [dt.date(2026, 3, 8), dt.date(2026, 11, 1)],  # -03:30 / -02:30
    "Asia/Kolkata": [dt.date(2026, 6, 30)],  # +05:30, no change
    "Asia/Kathmandu": [dt.date(2026, 6, 30)],  # +05:45, no change
}


def _shift(frame: pl.DataFrame, days: int, zone: str) -> pl.DataFrame:
    """Naive UTC instants ``days`` later, as instants of ``zone``; dates ``days`` later."""
    out = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.Date:
            out.append(col + pl.duration(days=days))
        elif isinstance(dtype, pl.Datetime):
            out.append((col + pl.duration(days=days)).dt.replace_time_zone("UTC")
                       .dt.convert_time_zone(zone))
        else:
            out.append(col)
    return frame.select(out)


@st.composite
def zone_cases(draw: Draw) -> tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any]:
    zone = draw(st.sampled_from(sorted(CHANGES)))
    change = draw(st.sampled_from(CHANGES[zone]))
    as_of_day = change + dt.timedelta(days=draw(st.sampled_from([-1, 0, 0, 1, 3, 8, 20])))
    spec = draw(roadmaps(zone))
    roadmap = Roadmap.model_validate(spec)
    assume(analyze(roadmap).ok)
    events, accounts = draw(data(None, edges=False))
    days = (as_of_day - AS_OF).days
    events, accounts = _shift(events, days, zone), _shift(accounts, days, zone)
    as_of: Any = as_of_day
    if draw(st.booleans()):
        as_of = dt.datetime.combine(as_of_day, dt.time(draw(st.sampled_from([0, 1, 2, 3, 12,
                                                                               23])), 30))
    return roadmap, events, accounts, as_of


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(zone_cases())
def test_zones_with_changes_and_half_hours_match_the_reference_and_explain(
        case: tuple[Roadmap, pl.DataFrame, pl.DataFrame, Any]) -> None:
    roadmap, events, accounts, as_of = case
    # every other example in the forms for many rows (hashed from the inputs: no draw)
    many = accounts.height % 2 == 1
    with many_row_forms() if many else contextlib.nullcontext():
        result = evaluate_unless_out_of_range(roadmap, events, accounts, as_of)
    ref = evaluate_reference(roadmap, events, accounts, as_of)
    problems = compare(result, ref, roadmap) + explain_problems(result, roadmap)
    problems += _evidence_problems(result, ref)
    assert not problems, "\n".join(problems[:20])


# --------------------------------------------------------------------------- packs, sources


@st.composite
def pack_source_cases(draw: Draw) -> tuple[Roadmaps, dict[str, pl.DataFrame], pl.DataFrame,
                                           Any]:
    """A pack of a three-source roadmap (usage, tickets, surveys) and a generated track
    that declares the usage source only, in either routing order."""
    sourced, frames, accounts, as_of = draw(multi_source_cases())
    zone = sourced.data.sources["usage"].timezone
    spec = _rename(draw(roadmaps(zone, hierarchy=False)), "q")
    spec["data"]["events"] = {"usage": spec["data"]["events"]}
    spec["id"] = "plain"
    spec["applies_to"] = draw(st.sampled_from(APPLIES_TO))
    plain = Roadmap.model_validate(spec)
    assume(analyze(plain).ok)
    first = sourced.model_copy(update={"applies_to": draw(st.sampled_from(APPLIES_TO))})
    tracks = [first, plain] if draw(st.booleans()) else [plain, first]
    return tracks, frames, accounts, as_of


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pack_source_cases())
def test_packs_of_tracks_with_other_sources_match_the_reference_and_explain(
        case: tuple[Roadmaps, dict[str, pl.DataFrame], pl.DataFrame, Any]) -> None:
    tracks, frames, accounts, as_of = case
    result = evaluate_unless_out_of_range(hr.compile(tracks), frames, accounts, as_of)
    ref = evaluate_reference(_pack(tracks), frames, accounts, as_of)
    problems = compare(result, ref, tracks)
    problems += explain_problems(result, tracks)
    problems += _explained_values(result, tracks, ref)
    assert not problems, "\n".join(problems[:20])


# --------------------------------------------------------------------------- packs, dated


@st.composite
def pack_dated_cases(draw: Draw) -> tuple[Roadmaps, pl.DataFrame, pl.DataFrame, Any]:
    """A pack of dated-accounts tracks (type-2 rows or snapshots): each date routes the
    account by the attributes of its row valid then."""
    roadmap, events, accounts, as_of = draw(dated_cases())
    spec = _rename(draw(roadmaps(roadmap.data.sources[roadmap.data.default_source].timezone,
                                  hierarchy=False)), "q")
    acc = roadmap.data.accounts
    spec["data"]["accounts"].update(
        {"snapshot": acc.snapshot} if acc.snapshot else
        {"valid_from": acc.valid_from, "valid_to": acc.valid_to})
    spec["id"] = "other"
    if draw(st.booleans()):
        spec["applies_to"] = draw(st.sampled_from(APPLIES_TO))
    other = Roadmap.model_validate(spec)
    assume(analyze(other).ok)
    first = roadmap.model_copy(update={"applies_to": draw(st.sampled_from(APPLIES_TO))})
    return [first, other], events, accounts, as_of


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pack_dated_cases())
def test_packs_of_dated_accounts_match_the_reference_and_explain(
        case: tuple[Roadmaps, pl.DataFrame, pl.DataFrame, Any]) -> None:
    tracks, events, accounts, as_of = case
    result = hr.evaluate(hr.compile(tracks), events, accounts, as_of)
    ref = evaluate_reference(_pack(tracks), events, accounts, as_of)
    problems = compare(result, ref, tracks)
    problems += explain_problems(result, tracks)
    problems += _explained_values(result, tracks, ref)
    assert not problems, "\n".join(problems[:20])


# --------------------------------------------------------------------------- forms for many rows

@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pack_cases())
def test_packs_take_the_forms_for_many_rows_with_the_same_results(
        case: tuple[Roadmaps, pl.DataFrame, pl.DataFrame, Any]) -> None:
    tracks, events, accounts, as_of = case
    assume(not _clashes(tracks))
    ref = evaluate_reference(_pack(tracks), events, accounts, as_of)
    with many_row_forms():
        result = evaluate_unless_out_of_range(hr.compile(tracks), events, accounts, as_of)
    problems = compare(result, ref, tracks) + _evidence_problems(result, ref)
    problems += explain_problems(result, tracks)
    assert not problems, "\n".join(problems[:20])
