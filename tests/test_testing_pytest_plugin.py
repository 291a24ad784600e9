"""The pytest plugin: *.test.yaml files become one pytest item per case, next to normal tests."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

EXAMPLES = Path(__file__).resolve().parent.parent / "rules" / "examples"

ROADMAP = """\
id: p
goal: Weekly use
indicators:
  - {id: logins, family: process, aggregate: count, where: "event == 'login'", window: 7d}
stages:
  - id: only
    actions:
      - {id: call, kind: challenge, when: logins == 0, do: "Call: {logins} logins"}
"""

TEST = """\
kind: test
roadmap: roadmap.yaml
as_of: 2026-06-30
cases:
  - name: active
    accounts: [a]
    events: {a: [login at -1d by u1]}
    expect: {a: {indicators: {logins: 1}, actions: {none: true}}}
  - name: wrong
    accounts: [a]
    expect: {a: {indicators: {logins: 3}, actions: {none: true}}}
  - name: later
    skip: not yet
    accounts: [a]
    expect: {a: {stage: only}}
"""


def test_cases_are_items_with_readable_failures(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", roadmap=ROADMAP)
    pytester.makefile(".test.yaml", rules=TEST)
    pytester.makepyfile(test_plain="def test_ordinary():\n    assert True\n")
    pytester.makefile(".yaml", other="kind: roadmap\nid: not_a_test\n")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "rules.test.yaml .Fs*",
        "test_plain.py .*",
        "*_ case wrong _*",
        "FAILED *rules.test.yaml:9 case 'wrong'",
        "  account a, as_of 2026-06-30",
        "    line  what               expected        actual",
        "    11    indicators.logins  3               0",
        "    11    actions (none)     (not expected)  call fired",
        "          text: 'Call: 0 logins'",
        "          evidence: logins = 0, condition == 0",
        "SKIPPED [[]1[]] rules.test.yaml*: not yet",
    ])


def test_unreadable_file_is_one_failing_item(pytester: pytest.Pytester) -> None:
    pytester.makefile(".test.yaml", broken="kind: test\nroadmap: [\n")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*broken.test.yaml:2:11: error: YAML syntax error*"])


def test_collect_only_lists_cases(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", roadmap=ROADMAP)
    pytester.makefile(".test.yaml", rules=TEST)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["rules.test.yaml::active", "rules.test.yaml::wrong",
                                 "rules.test.yaml::later"])


def test_pytest_runs_the_example_packs(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(str(EXAMPLES), "-q", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    assert outcomes.get("passed", 0) >= 20
