"""The interval analyser behind the lint checks: set operations, ranges, and soundness.

The soundness property is the one the checks rely on: whatever the scalar evaluator (the
reference semantics) computes for a row, the analyser's region for that outcome contains the
row. So "the true-region is empty" really means "never true".
"""

from __future__ import annotations

import ast
import datetime as dt
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthrules import scalar
from healthrules.expressions import ExprProblem, infer, parse
from healthrules.lint.intervals import (
    MAX_BOXES,
    Dom,
    Facts,
    Interval,
    Labels,
    NameFact,
    NumSet,
    Region,
    analyse,
    band_interval,
    range_of,
)
from healthrules.roadmap import Bands

INF = math.inf
AS_OF = dt.date(2026, 6, 30)


# --------------------------------------------------------------------------- sets


def test_numset_normalises_and_merges() -> None:
    s = NumSet.of([Interval(5, 7), Interval(0, 2), Interval(2, 3, False, True)])
    assert s.describe("x") == "0 <= x <= 3 or 5 <= x <= 7"
    assert NumSet.of([Interval(0, 1, True, False), Interval(1, 2, False, True)]).describe(
        "x") == "0 <= x < 1 or 1 < x <= 2"


def test_integer_sets_tighten_to_whole_numbers() -> None:
    s = NumSet.of([Interval(2, 3, False, False)], integer=True)
    assert s.empty
    s = NumSet.of([Interval(0.5, 4.2)], integer=True)
    assert s.describe("n") == "1 <= n <= 4"
    assert NumSet.of([Interval(1, 3), Interval(4, 6)], integer=True).describe("n") == (
        "1 <= n <= 6")


def test_complement_and_subset() -> None:
    s = NumSet.of([Interval(0, 5, True, False)])
    c = s.complement()
    assert c.describe("x") == "x < 0 or x >= 5"
    assert s.meet(c).empty
    assert NumSet.between(1, 2).subset_of(s)
    assert not NumSet.between(4, 6).subset_of(s)
    whole = NumSet.of([Interval(1, 3)], integer=True)
    assert whole.complement().describe("n") == "n <= 0 or n >= 4"


def test_labels() -> None:
    a = Labels(frozenset({"x", "y"}))
    not_x = Labels(frozenset({"x"}), cofinite=True)
    assert a.meet(not_x) == Labels(frozenset({"y"}))
    assert a.meet(not_x.complement()) == Labels(frozenset({"x"}))
    assert not_x.join(a).cofinite and not not_x.join(a).values
    assert Labels(frozenset()).empty and not Labels(frozenset(), cofinite=True).empty


def test_region_widens_instead_of_growing_without_bound() -> None:
    boxes = Region.bottom()
    for k in range(100):
        boxes = boxes.join(Region.where("x", Dom(num=NumSet.between(k, k), null=False)))
    assert len(boxes.boxes) <= MAX_BOXES
    assert all(boxes.contains({"x": float(k)}) for k in range(100))


def test_band_interval() -> None:
    bands = Bands.model_validate(
        {"levels": [{"name": "low", "lt": 3}, {"name": "mid", "ge": 3, "le": 9},
                    {"name": "high", "gt": 9}]})
    assert [band_interval(b).describe() for b in bands.levels] == [
        "x < 3", "3 <= x <= 9", "x > 9"]


# --------------------------------------------------------------------------- ranges

FACTS = Facts(
    env={"x": "int", "n": "int", "y": "float", "p": "float", "s": "float", "t": "str",
         "stage": "str", "b": "bool", "score_band": "str"},
    names={
        "x": NameFact(Dom(num=NumSet.between(0, INF, True), null=False), "x is a count"),
        "n": NameFact(Dom(num=NumSet.between(0, INF, True), null=True)),
        "p": NameFact(Dom(num=NumSet.between(-1, INF), null=True)),
        "s": NameFact(Dom(num=NumSet.between(0, 100), null=True), "score"),
        "stage": NameFact(Dom(labels=Labels(frozenset({"a", "b", "_unassigned"})), null=False)),
    },
    bands={"x": Bands.model_validate({"levels": [
        {"name": "low", "lt": 3}, {"name": "mid", "ge": 3, "lt": 10}, {"name": "high", "ge": 10}
    ]})},
)
FACTS.env = {**FACTS.env}
SCORE_BANDS = Bands.model_validate(
    {"levels": [{"name": "at_risk", "lt": 40}, {"name": "healthy", "ge": 40}]})
FACTS.label_alias = {"score_band": ("s", SCORE_BANDS)}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("x * 2 + 1", "x >= 1"),
        ("x / n", "x >= 0"),
        ("-x", "x <= 0"),
        ("abs(y)", "x >= 0"),
        ("min(y, 1)", "x <= 1"),
        ("max(n, 3)", "x >= 3"),
        ("clip(y, 0, 1)", "0 <= x <= 1"),
        ("s / 100", "0 <= x <= 1"),
        ("x ** 2", "x >= 0"),
        ("y ** 2", "x >= 0"),
        ("coalesce(n, 0)", "x >= 0"),
        ("round(s)", "0 <= x <= 100"),
        ("p + 1", "x >= 0"),
        ("y", "any value"),
        ("x / (y - y)", "any value"),
    ],
)
def test_range_of(expr: str, expected: str) -> None:
    values, _ = range_of(parse(expr).tree, FACTS)
    assert values.describe("x") == expected


# --------------------------------------------------------------------------- conditions


@pytest.mark.parametrize(
    ("expr", "never", "always"),
    [
        ("x < 5 and x > 10", True, False),
        ("x >= 3 or x < 3", False, True),
        ("x < 0", True, False),
        ("x >= 0", False, True),
        ("x > 2 and x < 3", True, False),
        ("y > 2 and y < 3", False, False),
        ("s > 100", True, False),
        ("p < -1", True, False),
        ("x is None", True, False),
        ("x is not None", False, True),
        ("n is None", False, False),
        ("stage == 'a' and stage == 'b'", True, False),
        ("stage in ('a', 'b', '_unassigned')", False, True),
        ("b and not b", True, False),
        ("b or not b", False, True),
        ("band(x) == 'high' and x < 5", True, False),
        ("band(x) in ('low', 'mid') or x >= 10", False, True),
        ("score_band == 'healthy' and s < 30", True, False),
        ("not (x < 5) and x < 4", True, False),
        ("1 < x < 1", True, False),
        ("x in (1, 2) and x > 5", True, False),
        ("abs(y) < 0", True, False),
        ("x + y > 3", False, False),
        ("x < y", False, False),
        ("x < x", True, False),
        ("t == 'a' and t != 'a'", True, False),
        ("x not in (-1, -2)", False, True),
        ("band(x) != 'low' and x < 3", True, False),
        ("x in (1, 2) < 2", False, False),
        ("x in (1, 2) > 5", True, False),
    ],
)
def test_never_and_always(expr: str, never: bool, always: bool) -> None:
    regions = analyse(parse(expr).tree, FACTS)
    assert regions.true.empty is never
    assert regions.false.empty is always


# --------------------------------------------------------------------------- soundness

NUM_TERMS = ["x", "n", "y", "p", "s", "x + y", "abs(y)", "min(y, 1)", "x / 2", "n * 2", "-y",
             "round(y)", "clip(y, 0, 1)", "coalesce(n, 0)", "max(n, x)", "s / 100", "x - n"]
NUM_LITS = ["-1", "0", "0.5", "1", "2", "2.5", "3", "10", "100", "101", "-0.5"]
OPS = ["<", "<=", ">", ">=", "==", "!="]


@st.composite
def atoms(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["cmp", "flip", "chain", "in", "null", "str", "stage", "band",
                                 "score_band", "bool"]))
    term = draw(st.sampled_from(NUM_TERMS))
    lit = draw(st.sampled_from(NUM_LITS))
    op = draw(st.sampled_from(OPS))
    if kind == "cmp":
        return f"{term} {op} {lit}"
    if kind == "flip":
        return f"{lit} {op} {term}"
    if kind == "chain":
        hi = draw(st.sampled_from(NUM_LITS))
        return f"{lit} {draw(st.sampled_from(['<', '<=']))} {term} " \
               f"{draw(st.sampled_from(['<', '<=']))} {hi}"
    if kind == "in":
        items = draw(st.lists(st.sampled_from(NUM_LITS), min_size=1, max_size=3))
        neg = draw(st.sampled_from(["in", "not in"]))
        then = draw(st.sampled_from(["", f" {op} {lit}"]))  # `x in (...) < 3` chains
        return f"{term} {neg} ({', '.join(items)},){then}"
    if kind == "null":
        name = draw(st.sampled_from(["x", "n", "y", "s", "t", "b"]))
        return f"{name} is {draw(st.sampled_from(['None', 'not None']))}"
    if kind == "str":
        value = draw(st.sampled_from(["a", "b", "zz"]))
        return f"t {draw(st.sampled_from(['==', '!=']))} {value!r}"
    if kind == "stage":
        vals = draw(st.lists(st.sampled_from(["a", "b", "_unassigned", "zz"]), min_size=1,
                             max_size=2))
        return f"stage {draw(st.sampled_from(['in', 'not in']))} ({', '.join(map(repr, vals))},)"
    if kind == "band":
        lvl = draw(st.sampled_from(["low", "mid", "high", "gren"]))
        return f"band(x) {draw(st.sampled_from(['==', '!=']))} {lvl!r}"
    if kind == "score_band":
        lvl = draw(st.sampled_from(["at_risk", "healthy"]))
        return f"score_band {draw(st.sampled_from(['==', '!=']))} {lvl!r}"
    return draw(st.sampled_from(["b", "not b"]))


def conditions(depth: int = 3) -> st.SearchStrategy[str]:
    return st.recursive(
        atoms(),
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"),
            inner.map(lambda c: f"not ({c})"),
        ),
        max_leaves=5,
    )


def _band(value: object, bands: Bands) -> str | None:
    if value is None:
        return None
    for b in bands.levels:
        if NumSet.of([band_interval(b)]).contains(float(value)):  # type: ignore[arg-type]
            return b.name
    raise AssertionError(value)


rows = st.fixed_dictionaries({
    "x": st.integers(0, 12),
    "n": st.one_of(st.none(), st.integers(0, 12)),
    "y": st.one_of(st.none(), st.sampled_from([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.5, 3.0, 11.0])),
    "p": st.one_of(st.none(), st.sampled_from([-1.0, -0.5, 0.0, 0.5, 2.0])),
    "s": st.one_of(st.none(), st.sampled_from([0.0, 39.5, 40.0, 70.0, 100.0])),
    "t": st.one_of(st.none(), st.sampled_from(["a", "b", "zz"])),
    "stage": st.sampled_from(["a", "b", "_unassigned"]),
    "b": st.one_of(st.none(), st.booleans()),
})


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions(), rows)
def test_regions_contain_every_evaluated_row(text: str, row: dict[str, object]) -> None:
    parsed = parse(text)
    try:
        infer(parsed, FACTS.env, banded=frozenset(FACTS.bands))
    except ExprProblem:
        return
    values: dict[object, object] = dict(row)
    values[("band", "x")] = _band(row["x"], FACTS.bands["x"])
    values["score_band"] = _band(row["s"], SCORE_BANDS)
    result = scalar.evaluate(parsed, values, as_of=AS_OF)
    regions = analyse(parsed.tree, FACTS)
    terms: dict[str, object] = {}
    for atom in regions.atoms:
        if atom.key in row:
            terms[atom.key] = row[atom.key]
        else:
            terms[atom.key] = scalar.evaluate(atom.term, values, as_of=AS_OF)
    where = {True: [regions.true, regions.not_false], False: [regions.false, regions.not_true],
             None: [regions.not_true, regions.not_false]}[result]  # type: ignore[index]
    for region in where:
        assert region.contains(terms), (text, row, result, region.describe())
    # each atom on its own: its true / false domains hold the term's value when it is so
    for atom in regions.atoms:
        outcome = scalar.evaluate(ast.unparse(atom.node), values, as_of=AS_OF)
        if outcome is True:
            assert atom.true.contains(terms[atom.key]), (ast.unparse(atom.node), row)
        elif outcome is False:
            assert atom.false.contains(terms[atom.key]), (ast.unparse(atom.node), row)


def test_atoms_know_their_source() -> None:
    parsed = parse("1 < x <= 5 and y > 0")
    atoms_ = analyse(parsed.tree, FACTS).atoms
    assert [ast.unparse(a.node) for a in atoms_] == ["1 < x", "x <= 5", "y > 0"]
