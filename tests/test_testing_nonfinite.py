"""Infinities, NaN and values of the wrong type in rule-pack test expectations.

An indicator or a score can be ``inf`` or ``-inf`` (a float attribute that holds one, an
overflow: docs/semantics.md), so a test may expect ``.inf``: it compares exactly. NaN is
never a value (the engine reads it as null), so ``.nan`` is refused where it is written,
once, with the hint to write null. These once came out as pydantic's raw errors: five per
value from a test file (one per member of the value's union), and a ``ValidationError``
from :func:`assert_account`.
"""

from __future__ import annotations

import datetime as dt
import math
import textwrap
from pathlib import Path

import polars as pl
import pytest
import yaml

import healthrules as hr
from healthrules.testing import assert_account, run
from healthrules.testing.spec import TestFileError, read_test_file

ROADMAP = """\
id: tiny
goal: g
data:
  events: {user: null}
  accounts: {attributes: {arr: float}}
indicators:
  - {id: logins, family: process, aggregate: count}
  - {id: big, family: outcome, expr: arr * 10}
stages:
  - id: s
"""


def _file(tmp_path: Path, arr: str, expect: str) -> Path:
    (tmp_path / "roadmap.yaml").write_text(ROADMAP, encoding="utf-8")
    path = tmp_path / "tiny.test.yaml"
    path.write_text(textwrap.dedent("""\
        kind: test
        roadmap: roadmap.yaml
        as_of: 2026-06-30
        cases:
          - name: one
            accounts: {a: {arr: %s}}
            expect:
              a:
                %s
        """) % (arr, expect), encoding="utf-8")
    return path


@pytest.mark.parametrize(("arr", "expect", "passes"), [
    ("1e308", "indicators: {big: .inf}", True),
    ("1e308", "indicators: {big: {value: .inf}}", True),
    ("1e308", "indicators: {big: {min: 1e308}}", True),
    ("-1e308", "indicators: {big: -.inf}", True),
    ("-1e308", "indicators: {big: .inf}", False),
    ("1e307", "indicators: {big: .inf}", False),
    ("1e307", "indicators: {big: {max: .inf}}", True),
    (".inf", "indicators: {big: .inf}", True),
    (".inf", "indicators: {big: 1e308}", False),
])
def test_an_infinite_expectation_compares_exactly(
        tmp_path: Path, arr: str, expect: str, passes: bool) -> None:
    report = run([_file(tmp_path, arr, expect)])
    assert [str(c.status) for c in report.cases] == ["passed" if passes else "failed"], (
        report.render())


@pytest.mark.parametrize("expect", [
    "indicators: {big: .nan}", "indicators: {big: {value: .nan}}",
    "indicators: {big: {min: .nan}}", "score: .nan", "score: {max: .NaN}"])
def test_a_nan_expectation_is_refused_once_where_it_is_written(
        tmp_path: Path, expect: str) -> None:
    src = read_test_file(_file(tmp_path, "1.0", expect))
    issues = src.all_issues()
    assert [(i.code, i.location.line) for i in issues] == [("test_nan", 9)], issues
    assert "write null" in issues[0].message


def test_a_nan_attribute_is_refused_and_an_infinite_one_is_a_value(tmp_path: Path) -> None:
    src = read_test_file(_file(tmp_path, ".nan", "indicators: {big: null}"))
    assert [(i.code, i.location.line, i.location.path) for i in src.all_issues()] == [
        ("test_nan", 6, "cases[0].accounts.a.arr")]
    assert run([_file(tmp_path, "-.inf", "indicators: {big: -.inf}")]).ok


@pytest.mark.parametrize(("expect", "message"), [
    ("indicators: {big: [1]}", "this takes true or false, a number, text or a mapping "
     "{value, tolerance} / {min, max}, not a list"),
    ("score: true", "this takes a number or a mapping {value, tolerance} / {min, max}, "
     "not the boolean true"),
    ("actions: {exactly: [3]}", "this takes text or {id, text_contains, priority}, not the "
     "number 3"),
])
def test_a_value_of_no_allowed_type_is_one_error(
        tmp_path: Path, expect: str, message: str) -> None:
    issues = read_test_file(_file(tmp_path, "1.0", expect)).all_issues()
    assert [(i.code, i.message, i.location.line) for i in issues] == [
        ("test_value_type", message, 9)]


def test_a_mapping_reports_only_what_is_wrong_inside_it(tmp_path: Path) -> None:
    issues = read_test_file(_file(tmp_path, "1.0", "indicators: {big: {min: 2, max: 1}, "
                                  "logins: {value: 1, vlaue: 2}}")).all_issues()
    assert [(i.code, i.location.path) for i in issues] == [
        ("expectation_invalid", "cases[0].expect.a.indicators.big"),
        ("extra_forbidden", "cases[0].expect.a.indicators.logins.vlaue")]


def _evaluation(arr: float) -> hr.Evaluation:
    roadmap = hr.Roadmap.model_validate(yaml.safe_load(ROADMAP))
    events = pl.DataFrame({"account_id": [], "event": [], "timestamp": []},
                          schema={"account_id": pl.String, "event": pl.String,
                                  "timestamp": pl.Datetime("us")})
    return hr.evaluate(roadmap, events, pl.DataFrame({"account_id": ["a"], "arr": [arr]}),
                       dt.date(2026, 6, 30))


def test_assert_account_compares_an_infinity() -> None:
    ev = _evaluation(1e308)
    assert_account(ev, "a", indicators={"big": math.inf})
    assert_account(ev, "a", indicators={"big": {"min": 1e308}})
    with pytest.raises(AssertionError, match=r"indicators\.big +-inf +inf"):
        assert_account(ev, "a", indicators={"big": -math.inf})


@pytest.mark.parametrize(("kwargs", "path", "code"), [
    ({"indicators": {"big": math.nan}}, "indicators.big", "test_nan"),
    ({"score": {"value": math.nan}}, "score.value", "test_nan"),
    ({"score": {"min": 9, "max": 1}}, "score", "expectation_invalid"),
    ({"indicators": {"big": [1]}}, "indicators.big", "test_value_type"),
    ({"actions_exactly": ["x"], "no_actions": True}, "actions", "expectation_invalid"),
])
def test_assert_account_names_the_argument_of_a_bad_expectation(
        kwargs: dict[str, object], path: str, code: str) -> None:
    ev = _evaluation(1.0)
    with pytest.raises(TestFileError) as info:
        assert_account(ev, "a", **kwargs)  # type: ignore[arg-type]
    assert [(i.code, i.location.file, i.location.path) for i in info.value.errors()] == [
        (code, "assert_account", path)]


def test_a_value_that_is_not_a_mapping_names_no_class(tmp_path: Path) -> None:
    issues = read_test_file(_file(tmp_path, "1.0", "actions: [a]")).all_issues()
    assert [(i.code, i.message, i.location.line) for i in issues] == [
        ("model_type", "this takes a mapping, not a list", 9)]


@pytest.mark.parametrize(("expect", "passes"), [
    ("indicators: {logins: 0}", True),
    ("indicators: {logins: '0'}", False),  # once passed: text compared with str(0)
    ("indicators: {big: '10.0'}", False),
    ("indicators: {big: 10.0}", True),
    ("stage: s", True),
])
def test_text_expects_text(tmp_path: Path, expect: str, passes: bool) -> None:
    report = run([_file(tmp_path, "1.0", expect)])
    assert [str(c.status) for c in report.cases] == ["passed" if passes else "failed"], (
        report.render())
