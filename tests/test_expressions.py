"""The expression language: allow-list, safety limits, types, and columns inside the YAML file."""

from __future__ import annotations

import textwrap

import pytest

from healthrules.errors import ExpressionError, Issue, RoadmapError
from healthrules.expressions import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_POWER,
    ExprProblem,
    did_you_mean,
    infer,
    names_in,
    parse,
)
from healthrules.loader import load_text

BASE = textwrap.dedent(
    """\
    id: demo
    goal: Customers use the product weekly
    data:
      accounts:
        attributes: {plan: str, seats: int, contract_start: date}
    indicators:
      - id: logins_30d
        family: process
        aggregate: count
        where: event == 'login'
        window: 30d
    stages:
      - id: onboarding
        actions:
          - id: nudge
            kind: challenge
            when: logins_30d < 3
            do: "Only {logins_30d} logins: call"
    """
)
WHEN = "when: logins_30d < 3"


def pos(text: str, needle: str, nth: int = 1) -> tuple[int, int]:
    index = -1
    for _ in range(nth):
        index = text.index(needle, index + 1)
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def only(text: str) -> Issue:
    with pytest.raises(RoadmapError) as info:
        load_text(text)
    issues = info.value.errors()
    assert len(issues) == 1, "\n".join(map(str, issues))
    return issues[0]


def problem(source: str, env: dict[str, str] | None = None) -> ExprProblem:
    with pytest.raises(ExprProblem) as info:
        infer(parse(source), env or {"x": "int", "plan": "str"})  # type: ignore[arg-type]
    return info.value


# --------------------------------------------------------------------------- safety


@pytest.mark.parametrize(
    ("source", "words", "column"),
    [
        ("x.__class__", "attribute access", 1),
        ("plan.upper()", "only named functions", 1),
        ("x[0]", "subscripts", 1),
        ("__builtins__", "underscore", 1),
        ("_private + 1", "underscore", 1),
        ("[a for a in (1, 2)]", "comprehensions", 1),
        ("x + (lambda: 1)()", "only named functions", 5),
        ("(lambda: 1)", "lambda", 2),
        ("{1, 2}", "set literals", 1),
        ("{'a': 1}", "dict literals", 1),
        ("f'{x}'", "f-strings", 1),
        ("x // 2", "floor division", 1),
        ("x % 2", "the % operator", 1),
        ("x & 1", "bitwise", 1),
        ("(y := 3)", "assignment", 2),
        ("x ** 100", "exponent", 6),
        ("x ** y", "exponent", 6),
        ("2 ** -1", "exponent", 6),
        ("abs(x=1)", "keyword arguments", 1),
    ],
)
def test_disallowed_constructs(source: str, words: str, column: int) -> None:
    with pytest.raises(ExprProblem) as info:
        parse(source)
    assert info.value.code == "expr_disallowed"
    assert words in info.value.message
    assert info.value.column == column


def test_import_statements_do_not_parse() -> None:
    with pytest.raises(ExprProblem) as info:
        parse("import os")
    assert info.value.code == "expr_syntax"


def test_unknown_functions_have_did_you_mean() -> None:
    with pytest.raises(ExprProblem) as info:
        parse("rund(x, 1)")
    assert info.value.code == "unknown_name" and info.value.hint == "did you mean 'round'?"
    with pytest.raises(ExprProblem) as info:
        parse("eval('1')")
    assert info.value.code == "unknown_name"


@pytest.mark.parametrize(
    "source",
    ["(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1),
     "x" + " + x" * 500,
     "-" * 500 + "x",
     "x" * (MAX_LENGTH + 1)],
    ids=["brackets", "many-nodes", "deep-unary", "too-long"],
)
def test_too_complex_inputs_are_refused_cleanly(source: str) -> None:
    with pytest.raises(ExprProblem) as info:
        parse(source)
    assert info.value.code == "expr_too_complex"


def test_huge_literals_are_refused() -> None:
    assert problem("x < 99999999999999999999").code == "expr_too_complex"
    assert problem("x > 1e400").code == "expr_type"  # not a finite number
    parse(f"x ** {MAX_POWER}")
    with pytest.raises(ExprProblem) as info:
        parse("__import__('os').system('true')")
    assert info.value.code in ("unknown_name", "expr_disallowed")


def test_deeply_nested_yaml_expression_is_an_error_with_a_position() -> None:
    expr = "(" * 60 + "logins_30d" + ")" * 60 + " < 3"
    text = BASE.replace(WHEN, f"when: {expr}")
    issue = only(text)
    assert issue.code == "expr_too_complex"
    assert issue.location.path == "stages[0].actions[0].when"
    assert issue.location.line == pos(text, "when: (")[0]


# --------------------------------------------------------------------------- types


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x / 2", "float"), ("x * 2", "int"), ("x ** 2", "int"), ("x > 1 and plan == 'a'", "bool"),
        ("plan in ('a', 'b')", "bool"), ("x is None", "bool"), ("1 < x <= 3", "bool"),
        ("x if plan == 'a' else 2.5", "float"), ("min(x, 2.0)", "float"),
        ("coalesce(plan, 'none')", "str"), ("round(x / 3, 1)", "float"),
        ("clip(x, 0, 1)", "float"), ("days_since(d)", "int"),
        ("days_between(d, date('2026-01-01'))", "int"), ("abs(-x)", "int"), ("not (x > 1)", "bool"),
    ],
)
def test_types(source: str, expected: str) -> None:
    env = {"x": "int", "plan": "str", "d": "date"}
    assert infer(parse(source), env) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("source", "words", "column"),
    [
        ("plan + 1", "needs numbers, got str", 1),
        ("x and plan", "`and` needs true/false values, got int", 1),
        ("plan < 3", "cannot compare str with int", 8),
        ("x == None", "use `x is None`", 6),
        ("x if x else 1", "condition of `if` must be true/false", 6),
        ("x if x > 1 else 'a'", "both branches", 1),
        ("plan in (1, 2)", "cannot look for a str among int values", 10),
        ("x in y", "literal list", 6),
        ("round(x, 20)", "literal 0 to 10", 10),
        ("date('2026-13-01')", "is not a date", 6),
        ("days_since(x)", "needs dates", 12),
        ("min(x)", "takes 2 or more arguments", 1),
        ("band(x)", "has no bands", 6),
    ],
)
def test_type_errors_have_the_column(source: str, words: str, column: int) -> None:
    p = problem(source)
    assert p.code == "expr_type"
    assert words in p.message
    assert p.column == column


def test_unknown_names_have_did_you_mean() -> None:
    p = problem("x > 1 and plann == 'a'")
    assert (p.code, p.column, p.hint) == ("unknown_name", 11, "did you mean 'plan'?")


def test_columns_count_characters_not_bytes() -> None:
    assert problem("plan == '日本語' and zz").column == 19
    with pytest.raises(ExprProblem) as info:
        parse("'café' + x.y")
    assert info.value.column == 10


def test_names_in_skips_functions() -> None:
    assert names_in(parse("band(a) == 'x' and max(b, c) > d").tree) == {"a", "b", "c", "d"}
    assert did_you_mean("logins", ["logins_30d", "seats"]) == "did you mean 'logins_30d'?"
    assert did_you_mean("zzz", ["logins_30d"]) is None


# --------------------------------------------------------------------------- in the YAML file

SCOPES = [
    ("indicators[0].where", "    where: event == 'login'", "    where: evnt == 'login'",
     "evnt", "did you mean 'event'?"),
    ("indicators[1].expr", None, "logins_3d / seats", "logins_3d",
     "did you mean 'logins_30d'?"),
    ("applies_to", "goal:", "applies_to: plann == 'pro'\ngoal:", "plann",
     "did you mean 'plan'?"),
    ("goal.target", "goal: Customers use the product weekly",
     "goal: {text: g, target: logins30 > 4}", "logins30", "did you mean 'logins_30d'?"),
    ("stages[0].entry", "  - id: onboarding\n", "  - id: onboarding\n    entry: seat > 1\n",
     "seat >", "did you mean 'seats'?"),
    ("stages[0].achievement.when", "  - id: onboarding\n",
     "  - id: onboarding\n    achievement: {text: done, when: logins > 9}\n", "logins >",
     "did you mean 'logins_30d'?"),
    ("stages[0].tasks.ours[0].done_when", "  - id: onboarding\n",
     "  - id: onboarding\n    tasks: {ours: [{text: call, done_when: seets > 1}]}\n", "seets",
     "did you mean 'seats'?"),
    ("stages[0].actions[0].when", WHEN, "when: score_bnd == 'x'", "score_bnd",
     "did you mean 'score'?"),
    ("stages[0].actions[0].resolved_when", WHEN, WHEN + "\n        resolved_when: stge == 'x'",
     "stge", "did you mean 'stage'?"),
    ("stages[0].actions[0].do", "{logins_30d}", "{login_30d}", "login_30d",
     "did you mean 'logins_30d'?"),
]


@pytest.mark.parametrize(
    ("path", "old", "new", "name", "hint"), SCOPES, ids=[s[0] for s in SCOPES]
)
def test_unknown_names_in_every_scope(
    path: str, old: str | None, new: str, name: str, hint: str
) -> None:
    if old is None:
        text = BASE.replace("stages:\n", f"  - id: ratio\n    family: process\n    expr: {new}\n"
                            "stages:\n")
    else:
        text = BASE.replace(old, new, 1)
    issue = only(text)
    assert issue.code == "unknown_name"
    assert issue.hint == hint
    assert (issue.location.line, issue.location.column, issue.location.path) == (
        *pos(text, name), path)


def test_filters_cannot_read_indicators_and_indicators_cannot_read_events() -> None:
    text = BASE.replace("    where: event == 'login'", "    where: logins_30d > 1")
    assert only(text).code == "unknown_name"
    text = BASE.replace(WHEN, "when: event == 'login'")
    assert only(text).code == "unknown_name"


def test_action_only_names_are_refused_in_stage_entries() -> None:
    text = BASE.replace("  - id: onboarding\n", "  - id: onboarding\n    entry: score > 50\n")
    issue = only(text)
    assert issue.code == "unknown_name" and issue.location.path == "stages[0].entry"


def test_a_condition_must_be_true_or_false() -> None:
    text = BASE.replace(WHEN, "when: logins_30d + 1")
    issue = only(text)
    assert issue.code == "expr_type" and "true/false" in issue.message
    assert issue.location.path == "stages[0].actions[0].when"


@pytest.mark.parametrize(
    ("when", "needle"),
    [
        ("when: logins_30d.real < 3", "logins_30d.real"),
        ("when: '  logins_30d < plann'", "plann"),
        ('when: "logins_30d < plann"', "plann"),
        ("when: |\n          logins_30d < plann", "plann"),
        ("when: logins_30d < 3 and plan == 'тариф' and zz", "zz"),
    ],
    ids=["plain", "single-quoted-leading-spaces", "double-quoted", "block", "non-ascii"],
)
def test_expression_columns_inside_the_file(when: str, needle: str) -> None:
    text = BASE.replace(WHEN, when)
    issue = only(text)
    assert (issue.location.line, issue.location.column) == pos(text, needle)


def test_a_folded_multiline_expression_points_at_its_start() -> None:
    text = BASE.replace(WHEN, "when: logins_30d < 3\n          and plann == 'x'")
    issue = only(text)
    assert issue.code == "unknown_name"
    assert (issue.location.line, issue.location.column) == pos(text, "logins_30d < 3")


def test_template_errors() -> None:
    text = BASE.replace("Only {logins_30d} logins: call", "Only {logins_30d:.2e} logins")
    issue = only(text)
    assert issue.code == "template_invalid" and "format" in issue.message
    assert (issue.location.line, issue.location.column) == pos(text, "{logins_30d:")
    text = BASE.replace("Only {logins_30d} logins: call", "Only {logins_30d logins")
    assert only(text).code == "template_invalid"
    text = BASE.replace("Only {logins_30d} logins: call", "Only } logins")
    assert only(text).code == "template_invalid"
    text = BASE.replace("Only {logins_30d} logins: call", "{{literal}} {logins_30d:.0%}")
    load_text(text)


def test_the_expression_error_class() -> None:
    with pytest.raises(ExpressionError):
        load_text(BASE.replace(WHEN, "when: logins_30d.x"))


@pytest.mark.parametrize("text", [
    "a + b * 2",
    "band(score_x) == 'rouge' and été > 3",
    "coalesce(naïve, 0) / max(1, seats) if plan in ('pro', 'größe') else -1.5",
    "(a\n + b) > 2",
])
def test_segment_is_the_source_text_of_every_node(text: str) -> None:
    import ast

    parsed = parse(text)
    for node in ast.walk(parsed.tree):
        if isinstance(node, ast.expr):
            want = ast.get_source_segment(parsed.source, node)
            assert parsed.segment(node) == (want if want is not None else ast.unparse(node))


def test_node_types_types_each_node_as_infer_does_on_its_own() -> None:
    # node_types (one pass, no did-you-mean) gives every node the type infer() gives it
    # alone, on every expression of the example roadmaps, with each scope's names
    import ast
    from pathlib import Path

    import healthrules as hr
    from healthrules.analysis import analyze
    from healthrules.expressions import ExprProblem, infer, node_types

    checked = 0
    for path in sorted(Path("rules/examples").glob("*/roadmap.yaml")):
        roadmap = hr.load(path)
        a = analyze(roadmap)
        for scope in ("indicators", "actions"):
            env = a.env(scope)
            for parsed in a.expressions.values():
                got = node_types(parsed, env, banded=frozenset(env))
                want = {}
                for node in ast.walk(parsed.tree):
                    if isinstance(node, ast.expr):
                        try:
                            want[id(node)] = infer(node, env, banded=frozenset(env))
                        except ExprProblem:
                            continue
                assert got == want, parsed.source
                checked += 1
    assert checked > 100
