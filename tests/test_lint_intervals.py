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


# --------------------------------------------------------------------------- extended reals
# A float may be inf or -inf (an attribute that holds one, an overflow: 1e308 * 10); a NaN an
# operation computes (inf - inf, inf * 0, inf ** 0) is null, and so is an int result that
# leaves Int64. The ranges and regions must hold those values, or lint calls a condition
# "never true" that fires (docs/semantics.md, "Expressions").

EXT = Facts(
    env={"f": "float", "g": "float", "k": "int", "c": "int"},
    names={
        "f": NameFact(Dom(num=NumSet.everything(), null=False)),
        "g": NameFact(Dom(num=NumSet.between(0, 1e308), null=False)),
        "k": NameFact(Dom(num=NumSet.everything(True), null=False)),
        "c": NameFact(Dom(num=NumSet.between(0, INF, True), null=False), "c is a count"),
    },
    bands={"f": Bands.model_validate({"levels": [
        {"name": "low", "lt": 0}, {"name": "high", "ge": 0}]})},
)
EXT_TERMS = [
    "f", "f * 0", "f - f", "f + f", "f ** 0", "f ** 2", "f * 10", "-f", "abs(f)", "f / f",
    "g * 10", "g * 10 - g * 10", "g + g", "(g * 10) * 0", "1 / (g * 10)", "round(g, 2)",
    "round(f * 10, 1)", "min(f * 0, 1.0)", "coalesce(f - f, 0.0)", "clip(f - f, 0, 1)",
    "k", "k + 1", "k - 1", "-k", "abs(k)", "k * 2", "k ** 2", "c + 1", "c * c", "k * 0",
    "k * 1.5", "c / k",
]
EXT_LITS = ["0", "1", "-1", "1e308", "-1e308", "1e308 * 10", "-1e308 * 10", "0.5"]
EXT_ROWS = st.fixed_dictionaries({
    "f": st.sampled_from([INF, -INF, 1e308, -1e308, 0.0, -0.0, 1.0, -2.5, 5e-324]),
    "g": st.sampled_from([0.0, 1.0, 1e307, 1e308, 2.5e-300]),
    "k": st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63), 2**62, 3037000500]),
    "c": st.sampled_from([0, 1, 7, 2**62, 2**63 - 1]),
})


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EXT_TERMS), EXT_ROWS)
def test_ranges_hold_infinities_overflows_and_computed_nulls(
    term: str, row: dict[str, object]
) -> None:
    values, nullable = range_of(parse(term).tree, EXT)
    got = scalar.evaluate(parse(term), dict(row), as_of=AS_OF)
    if got is None:
        assert nullable, (term, row)
    else:
        assert values.contains(float(got)), (term, row, got, values.describe("v"))  # type: ignore[arg-type]


@st.composite
def ext_conditions(draw: st.DrawFn) -> str:
    term = draw(st.sampled_from(EXT_TERMS))
    kind = draw(st.sampled_from(["cmp", "null", "not", "band"]))
    if kind == "null":
        return f"({term}) is {draw(st.sampled_from(['None', 'not None']))}"
    if kind == "band":
        return f"band(f) {draw(st.sampled_from(['==', '!=']))} " \
               f"{draw(st.sampled_from(['low', 'high']))!r}"
    cmp = f"({term}) {draw(st.sampled_from(OPS))} {draw(st.sampled_from(EXT_LITS))}"
    return f"not ({cmp})" if kind == "not" else cmp


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ext_conditions(), EXT_ROWS)
def test_regions_hold_infinities_overflows_and_computed_nulls(
    text: str, row: dict[str, object]
) -> None:
    parsed = parse(text)
    values: dict[object, object] = dict(row)
    f = row["f"]
    values[("band", "f")] = "low" if f < 0 else "high"  # type: ignore[operator]
    result = scalar.evaluate(parsed, values, as_of=AS_OF)
    regions = analyse(parsed.tree, EXT)
    terms = {atom.key: scalar.evaluate(atom.term if atom.key not in row else atom.key, values,
                                       as_of=AS_OF) for atom in regions.atoms}
    where = {True: [regions.true, regions.not_false], False: [regions.false, regions.not_true],
             None: [regions.not_true, regions.not_false]}[result]  # type: ignore[index]
    for region in where:
        assert region.contains(terms), (text, row, result, region.describe())


@pytest.mark.parametrize(
    ("expr", "never", "always"),
    [
        ("(f * 0) is None", False, False),  # inf * 0 is NaN: null
        ("(f - f) is None", False, False),
        ("f ** 0 is None", False, False),  # inf ** 0 is inf * 0 + 1: null
        ("(g * 10 - g * 10) is None", False, False),  # 1e308 * 10 overflows to inf
        ("(k + 1) is None", False, False),  # 2**63 - 1 + 1 leaves Int64: null
        ("(c + 1) is None", False, False),
        ("g * 10 > 1e308", False, False),
        ("f > 1e308 * 10", True, False),  # nothing is above inf ...
        ("f >= 1e308 * 10", False, False),  # ... but f may be inf
        ("not (k > 10 ** 16 * 10 ** 16)", False, False),  # the literal leaves Int64: null
        ("band(f) == 'high' and f < 0", True, False),
        ("(g * 0) is None", True, False),  # g is finite: g * 0 is 0
        ("(g + 1) is None", True, False),  # a float overflow is inf, a value
        ("g * 10 >= 0", False, True),
    ],
)
def test_infinities_in_conditions(expr: str, never: bool, always: bool) -> None:
    regions = analyse(parse(expr).tree, EXT)
    assert regions.true.empty is never
    assert regions.false.empty is always


def test_band_levels_open_at_an_end_hold_the_infinities() -> None:
    bands = Bands.model_validate(
        {"levels": [{"name": "low", "lt": 3}, {"name": "high", "ge": 3}]})
    low, high = (NumSet.of([band_interval(b)]) for b in bands.levels)
    assert low.contains(-INF) and not low.contains(INF)
    assert high.contains(INF) and not high.contains(-INF)
    assert NumSet.between(0, INF, True).contains(INF) is False  # no int is infinite


INFINITE_ROADMAP = """\
id: infs
goal: g
data:
  events: {timezone: UTC}
  accounts:
    attributes: {arr: float, seats: int}
indicators:
  - {id: zeroed, family: outcome, expr: "coalesce(arr, 0.0) * 0"}
  - {id: big, family: outcome, expr: "clip(coalesce(arr, 0.0), 0, 1e308) * 10"}
  - id: huge
    family: outcome
    expr: "clip(coalesce(arr, 0.0), 0, 1e308) * 10"
    bands: {levels: [{name: finite, le: 1e308}, {name: beyond, gt: 1e308}]}
stages:
  - id: s
    actions:
      - {id: nan_zero, kind: challenge, when: "zeroed is None", do: x}
      - {id: overflow, kind: challenge, when: "(big - big) is None", do: x}
      - {id: seats_over, kind: challenge, when: "(coalesce(seats, 0) + 1) is None", do: x}
      - {id: infinite, kind: challenge, when: "band(huge) == 'beyond'", do: x}
"""


def test_lint_does_not_call_actions_that_fire_on_infinities_dead() -> None:
    import polars as pl

    import healthrules as hr
    from healthrules.lint import LintConfig, lint_text
    from healthrules.loader import load_text

    findings = lint_text(INFINITE_ROADMAP, config=LintConfig(select=frozenset({"HR501",
                                                                               "HR301"})))
    assert findings == []
    accounts = pl.DataFrame({"account_id": ["a", "b"], "arr": [INF, 1e308],
                             "seats": [2**63 - 1, 1]})
    events = pl.DataFrame(
        {"account_id": ["a"], "timestamp": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)],
         "event": ["x"], "user_id": ["u"]})
    fired = hr.evaluate(load_text(INFINITE_ROADMAP), events, accounts, AS_OF).actions
    assert sorted(zip(fired["account_id"], fired["action_id"], strict=True)) == [
        ("a", "infinite"), ("a", "nan_zero"), ("a", "overflow"), ("a", "seats_over"),
        ("b", "infinite"), ("b", "overflow")]
