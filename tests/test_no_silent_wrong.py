"""Issue 11, "no silent wrong answers": what the format accepts is computed exactly, at a
bounded cost, and what cannot be is refused at load with a located error."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from healthrules.errors import RoadmapError
from healthrules.expressions import (
    ExprProblem,
    infer,
    lowered_cost,
    parse,
)
from healthrules.functions import ARG_COPIES, FUNCTION_TABLE
from healthrules.loader import load_text
from healthrules.polars_expr import to_polars
from healthrules.scalar import evaluate

ROOT = Path(__file__).resolve().parents[1]
B2B = ROOT / "rules" / "examples" / "b2b-saas" / "roadmap.yaml"
B2B_WHEN = "when: first_login_rate < 0.5 and days_since(contract_start) >= 14"
ENV = {"x": "int", "f": "float", "b": "bool", "d": "date", "s": "str"}


def b2b_with(when: str) -> str:
    text = B2B.read_text()
    assert B2B_WHEN in text
    return text.replace(B2B_WHEN, f'when: "{when}"', 1)


def _nest_tests(depth: int) -> str:
    cond = "seats > 1"
    for _ in range(depth):
        cond = f"(True if {cond} else False)"
    return cond


NESTED_TESTS = _nest_tests(18)  # each `if` tests its condition twice: 2**18 copies
NESTED_BODIES = "(" * 18 + "seats > 1" + "".join(" if True else False)" for _ in range(18))


def refusal(text: str) -> str:
    with pytest.raises(RoadmapError) as info:
        load_text(text, source=str(B2B))
    return str(info.value)


# --------------------------------------------------------------------------- integers


@pytest.mark.parametrize(
    "source",
    [
        "9223372036854775808 > 0",
        "x > -9223372036854775809",
        "4611686018427387904 + 4611686018427387904 > 0",
        "4 ** 16 * 4 ** 16 > x",
        "-9223372036854775807 - 2 < x",
        "(3037000500 * 3037000500) > x",
        "x + (10 ** 16) ** 2 > 0",
    ],
)
def test_integer_literals_that_do_not_fit_are_refused(source: str) -> None:
    with pytest.raises(ExprProblem) as info:
        infer(parse(source), ENV)  # type: ignore[arg-type]
    assert info.value.code == "expr_too_complex"
    assert "64-bit" in info.value.message


@pytest.mark.parametrize(
    "source",
    ["9223372036854775807 > x", "-9223372036854775807 < x",
     "4611686018427387904 + (4611686018427387904 - 1) > x", "4 ** 16 * 2 ** 16 > x",
     "x * 4611686018427387904 > 0", "2.0 ** 16 * 1e300 > f"],
)
def test_integer_literals_that_fit_are_accepted(source: str) -> None:
    assert infer(parse(source), ENV) == "bool"  # type: ignore[arg-type]


def test_the_refusal_is_located_in_the_file() -> None:
    message = refusal(b2b_with("4611686018427387904 + 4611686018427387904 > 0"))
    line = B2B.read_text()[: B2B.read_text().index(B2B_WHEN)].count("\n") + 1
    assert f"roadmap.yaml:{line}:" in message
    assert "does not fit a 64-bit integer" in message


@pytest.mark.parametrize(
    ("source", "value", "want"),
    [
        ("x + x", 2**62, None),
        ("x * 3", 2**62, None),
        ("x * 2 - 1", 2**62 - 1, 2**63 - 3),
        ("-x", -(2**63), None),
        ("abs(x)", -(2**63), None),
        ("x ** 3", 2**21, 2**63),  # 2**63 does not fit: null
        ("x ** 3", 2**20, 2**60),
        ("x - 1", -(2**63), None),
    ],
)
def test_integer_overflow_is_null_in_polars_and_scalar(source: str, value: int,
                                                       want: int | None) -> None:
    if want is not None and not -(2**63) <= want < 2**63:
        want = None
    parsed = parse(source)
    expr = to_polars(parsed, column=pl.col, band=pl.col, as_of=dt.date(2024, 1, 1), types=ENV)
    got = pl.LazyFrame({"x": [value]}, schema={"x": pl.Int64}).select(expr).collect().item()
    scalar = evaluate(parsed, {"x": value}, as_of=dt.date(2024, 1, 1), types=ENV)
    assert got == want
    assert scalar == want


# --------------------------------------------------------------------------- cost


@pytest.mark.parametrize(
    "source",
    [
        "((seats ** 16) ** 16) ** 16 > 0",
        "((((seats ** 16) ** 16) ** 16) ** 16) ** 16 > 0",
        "round(round(round(round(round(round(round(round(first_login_rate)))))))) > 0",
        NESTED_TESTS,
    ],
)
def test_costly_expressions_are_refused_at_load(source: str) -> None:
    message = refusal(b2b_with(source))
    assert "too costly to evaluate" in message
    assert "expr_too_complex" in message


def _polars_size(source: str) -> int:
    parsed = parse(source)
    types = {"x": "float", "y": "float", "b": "bool", "d": "date", "i": "int"}
    expr = to_polars(parsed, column=pl.col, band=pl.col, as_of=dt.date(2024, 1, 1),
                     types=types)  # type: ignore[arg-type]
    return str(expr).count('col("x")')


def _copies(source: str) -> int:
    """How many times the polars form of ``source`` computes the name x (a float name reads
    its column a few times itself: NaN is null)."""
    size, one = _polars_size(source), _polars_size("x")
    assert size % one == 0
    return size // one


@pytest.mark.parametrize("name", sorted(FUNCTION_TABLE))
def test_arg_copies_match_the_polars_forms(name: str) -> None:
    """Every function's polars form reads its argument as often as ARG_COPIES says."""
    calls = {
        "abs": "abs(x)", "min": "min(x, 1.0)", "max": "max(x, 1.0)", "round": "round(x, 1)",
        "coalesce": "coalesce(x, 1.0)", "clip": "clip(x, 0, 1)", "days_between": None,
        "days_since": None, "date": None, "band": None, "prev": None, "change": None,
        "stuck": None,
    }
    assert name in calls, f"add a call of {name}() here"
    source = calls[name]
    if source is None:  # the argument is not a float expression (dates, names, literals)
        assert ARG_COPIES.get(name, 1) == 1
        return
    assert _copies(source) == ARG_COPIES.get(name, 1)


@pytest.mark.parametrize(
    ("source", "copies"),
    [("x + y", 1), ("x ** 5", 5), ("y if x > 0 else y", 2), ("y / x", 2), ("1 < x < 2", 2),
     ("x in (1, 2)", 2), ("round(x)", 6)],
)
def test_lowered_cost_counts_the_copies_polars_makes(source: str, copies: int) -> None:
    assert _copies(source) == copies
    # lowered_cost counts the same copies: a bigger operand costs that much more per copy
    big = source.replace("x", "(x + x + x + x + x)")
    grown = lowered_cost(parse(big).tree) - lowered_cost(parse(source).tree)
    assert grown == copies * 8


_CHILD = textwrap.dedent(
    """\
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))
    import healthrules
    from healthrules.datasets import sample
    from healthrules.errors import RoadmapError
    from healthrules.loader import load_text
    try:
        roadmap = load_text(sys.stdin.read(), source=sys.argv[1])
    except RoadmapError as exc:
        print("refused", "too costly" in str(exc))
        sys.exit(0)
    s = sample(30)
    healthrules.evaluate(roadmap, s.events, s.accounts, s.as_of)
    print("evaluated")
    """
)


@pytest.mark.parametrize(
    "source",
    [
        "((((seats ** 16) ** 16) ** 16) ** 16) ** 16 > 0",
        "round(round(round(round(round(round(round(round(first_login_rate)))))))) > 0",
        NESTED_TESTS,
        NESTED_BODIES,
        "round(round(round(first_login_rate + 0.5) + 0.5) + 0.5) > 0",
        "((seats + 1) ** 15) ** 16 > 0",
        "(seats if seats > 0 else 1) ** 16 > 0",
    ],
)
def test_every_accepted_expression_evaluates_in_bounded_time_and_memory(source: str) -> None:
    """Under a 2 GiB address-space cap and a generous timeout, each finishes or is refused."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(B2B)], input=b2b_with(source), text=True,
        capture_output=True, timeout=120, env=env, cwd=ROOT, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() in ("evaluated", "refused True"), done.stdout


# --------------------------------------------------------------------------- checks at load


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


@pytest.mark.parametrize(
    ("when", "words", "hint", "column"),
    [
        ("band(first_login_rate) == 'lo'", "indicator 'first_login_rate' has no band 'lo'",
         "did you mean 'low'?", 27),
        ("'lo' != band(first_login_rate)", "has no band 'lo'", "did you mean 'low'?", 1),
        ("score_band == 'healty'", "the score has no band 'healty'",
         "did you mean 'healthy'?", 15),
        ("band(first_login_rate) in ('low', 'hgh')", "has no band 'hgh'",
         "did you mean 'high'?", 35),
        ("score_band not in ['zzz']", "the score has no band 'zzz'", "its bands are:", 20),
    ],
)
def test_unknown_band_names_are_refused(when: str, words: str, hint: str, column: int) -> None:
    text = b2b_with(when)
    message = refusal(text)
    line = _line_of(text, f'when: "{when}"')
    col = text.splitlines()[line - 1].index('"') + 1 + column
    assert f"roadmap.yaml:{line}:{col}: error: " in message
    assert words in message
    assert hint in message


def test_known_band_names_pass() -> None:
    load_text(b2b_with("band(first_login_rate) in ('low', 'medium') and score_band != 'healthy'"),
              source=str(B2B))


def test_unknown_band_name_in_a_derived_indicator() -> None:
    text = B2B.read_text().replace(
        "  - id: onboarding_steps\n",
        "  - id: low_flag\n    family: process\n"
        "    expr: \"1 if band(first_login_rate) == 'lw' else 0\"\n  - id: onboarding_steps\n", 1)
    assert "indicator 'first_login_rate' has no band 'lw'" in refusal(text)


@pytest.mark.parametrize(
    ("placeholder", "words"),
    [
        ("{seats:.99f}", "format '.99f' asks for 99 decimals; at most 12"),
        ("{first_login_rate:.99%}", "format '.99%' asks for 99 decimals; at most 12"),
        ("{key_user:.0%}", "format '.0%' is for numbers; 'key_user' is str"),
        ("{trial_start:.1f}", "format '.1f' is for numbers; 'trial_start' is date"),
        ("{key_user:d}", "format 'd' is for numbers; 'key_user' is str"),
    ],
)
def test_placeholder_formats_are_checked_against_the_value(placeholder: str, words: str) -> None:
    text = B2B.read_text()
    assert "{seats}" in text
    message = refusal(text.replace("{seats}", placeholder, 1))
    assert words in message
    assert "[template_invalid]" in message


def test_placeholder_format_column_is_the_spec() -> None:
    text = BASE_WITH_DO.replace("{logins_30d}", "{plan:.1f}")
    with pytest.raises(RoadmapError) as info:
        load_text(text)
    (issue,) = info.value.errors()
    line = text.splitlines()[issue.location.line - 1]  # type: ignore[operator]
    assert line[issue.location.column - 1:].startswith(".1f}")  # type: ignore[operator]


BASE_WITH_DO = textwrap.dedent(
    """\
    id: demo
    goal: Customers use the product weekly
    data:
      accounts:
        attributes: {plan: str}
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
            owner: csm
    """
)


def test_braces_in_owner_are_refused() -> None:
    text = BASE_WITH_DO.replace("owner: csm", 'owner: "{decision_maker}"')
    with pytest.raises(RoadmapError) as info:
        load_text(text)
    (issue,) = info.value.errors()
    assert "owner is a role name" in issue.message
    assert issue.location.path == "stages[0].actions[0].owner"
    assert issue.location.line == text.splitlines().index('        owner: "{decision_maker}"') + 1


@pytest.mark.parametrize(
    ("source", "token", "instead", "column"),
    [
        ("first_login_rate =< 0.5", "=<", "<=", 18),
        ("a => 1", "=>", ">=", 3),
        ("a && b", "&&", "and", 3),
        ("a || b", "||", "or", 3),
        ("!a", "!", "not", 1),
        ("a and !(b)", "!", "not", 7),
        ("plan = 'a=b'", "=", "==", 6),
        ("a === 1", "===", "==", 3),
        ("a !== 1", "!==", "!=", 3),
    ],
)
def test_operators_of_other_languages_get_a_suggestion(source: str, token: str, instead: str,
                                                       column: int) -> None:
    with pytest.raises(ExprProblem) as info:
        parse(source)
    assert info.value.code == "expr_syntax"
    assert info.value.message == f"syntax error: `{token}` is not an operator here"
    assert info.value.hint == f"did you mean `{instead}`?"
    assert info.value.column == column


def test_other_syntax_errors_keep_their_message() -> None:
    with pytest.raises(ExprProblem) as info:
        parse("not (a")
    assert info.value.message == "syntax error: '(' was never closed"


# --------------------------------------------------------------------------- validation


def _many_unknown_names(n: int) -> str:
    lines = ["id: big", "goal: g", "data:", "  accounts:", "    attributes: {plan: str}",
             "indicators:", "  - {id: logins, family: process, aggregate: count}"]
    lines += [f"  - {{id: derived_indicator_{i:05d}, family: process, "
              f"expr: 'mistyped_name_{i:05d} + logins'}}" for i in range(n)]
    lines += ["stages:", "  - id: onboarding"]
    return "\n".join(lines) + "\n"


def test_a_file_with_thousands_of_unknown_names_is_checked_quickly(tmp_path: Path) -> None:
    """Did-you-mean work is bounded per file, and the problems printed are capped."""
    import time

    path = tmp_path / "big.yaml"
    path.write_text(_many_unknown_names(12_000))
    assert path.stat().st_size > 1_000_000
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "healthrules", "validate", str(path)],
                          capture_output=True, text=True, timeout=300, env=env, check=False)
    took = time.monotonic() - start
    lines = done.stdout.splitlines()
    assert done.returncode != 0
    assert "... and 11,950 more problems in this file" in lines
    assert len(lines) == 52
    assert lines[-1].endswith("(12000 errors)")
    assert "did you mean" not in done.stdout  # names far from every known one
    assert took < 120  # a generous guard: it takes seconds (it took minutes)


def test_the_error_text_caps_the_problems_of_a_file() -> None:
    with pytest.raises(RoadmapError) as info:
        load_text(_many_unknown_names(120), source="big.yaml")
    text = str(info.value)
    assert text.startswith("120 problems:")
    assert text.splitlines()[-1] == "... and 70 more problems in this file"
    assert len(info.value.errors()) == 120  # every problem is still there


def test_suggestions_still_come_for_a_few_names() -> None:
    with pytest.raises(RoadmapError) as info:
        load_text(_many_unknown_names(3).replace("mistyped_name_00001", "logns"),
                  source="big.yaml")
    assert "did you mean 'logins'?" in str(info.value)
