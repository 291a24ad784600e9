"""Rule coverage of test runs: stages, actions, bands and threshold boundaries."""

from __future__ import annotations

import textwrap
from pathlib import Path

from healthrules.testing import run

ROADMAP = """\
id: cov
goal: Weekly use
data:
  accounts: {attributes: {seats: int}}
indicators:
  - id: logins_7d
    family: process
    aggregate: count
    where: event == 'login'
    window: 7d
    bands: {levels: [{name: low, lt: 3}, {name: mid, ge: 3, lt: 10}, {name: high, ge: 10}]}
stages:
  - id: small
    entry: seats < 5
  - id: large
    actions:
      - {id: call, kind: challenge, when: logins_7d < 3, do: Call}
      - {id: upsell, kind: positive, when: logins_7d >= 20 and seats <= 50, do: Upsell}
"""

TEST = """\
kind: test
roadmap: roadmap.yaml
as_of: 2026-06-30
cases:
  - name: quiet large account
    accounts: {a: {seats: 10}}
    events: {a: [login at -1d]}
    expect: {a: {stage: large, actions: {exactly: [call]}}}
  - name: mid large account
    accounts: {b: {seats: 10}}
    events: {b: [login x5 at -1d]}
    expect: {b: {stage: large, actions: {none: true}}}
"""


def test_coverage_items_and_figures(tmp_path: Path) -> None:
    (tmp_path / "roadmap.yaml").write_text(ROADMAP)
    (tmp_path / "cov.test.yaml").write_text(TEST)
    report = run([tmp_path], coverage=True)
    assert report.ok, report.render()
    cov = report.coverage
    assert cov is not None
    assert cov.counts("stage") == (1, 2)
    assert cov.counts("action") == (1, 2)
    assert cov.counts("band") == (2, 3)
    missed = {(i.kind, i.name): i.detail for i in cov.missed}
    assert missed[("stage", "small")] == ""
    assert missed[("action", "upsell")] == "never fired (stage large)"
    assert missed[("band", "logins_7d=high")] == "no value in 10 <= logins_7d"
    # band cut points: 3 seen on both sides, 10 only below
    assert ("boundary", "logins_7d 3 (< | >=)") not in missed
    assert missed[("boundary", "logins_7d 10 (< | >=)")] == "never logins_7d >= 10"
    # comparisons in conditions: seats < 5 (entry) only seen >= 5; logins_7d >= 20 only below
    assert missed[("boundary", "seats 5 (< | >=)")] == "never seats < 5"
    assert missed[("boundary", "logins_7d 20 (< | >=)")] == "never logins_7d >= 20"
    assert missed[("boundary", "seats 50 (<= | >)")] == "never seats > 50"
    covered, total = cov.counts()
    assert round(cov.percent(), 6) == round(100 * covered / total, 6)
    text = cov.render()
    assert "not reached by any test case:" in text
    assert "  action    cov: upsell  (never fired (stage large))" in text
    assert report.to_records()["coverage"]["by_kind"]["action"] == {
        "covered": 1, "total": 2, "percent": 50.0}


def test_full_coverage(tmp_path: Path) -> None:
    (tmp_path / "roadmap.yaml").write_text(ROADMAP)
    more = textwrap.dedent("""\
      - name: the rest
        accounts: {s: {seats: 3}, h: {seats: 60}, u: {seats: 10}}
        events: {h: [login x12 at -1d], u: [login x25 at -1d]}
        expect:
          s: {stage: small}
          h: {stage: large, actions: {none: true}}
          u: {actions: {exactly: [upsell]}}
    """)
    (tmp_path / "cov.test.yaml").write_text(TEST + textwrap.indent(more, "  "))
    report = run([tmp_path], coverage=True)
    assert report.ok, report.render()
    assert report.coverage is not None
    assert report.coverage.percent() == 100.0
    assert report.coverage.missed == []


def test_goal_and_missing_policy_coverage(tmp_path: Path) -> None:
    roadmap = ROADMAP.replace("goal: Weekly use\n", "goal: {text: Weekly use, target: "
                              "logins_7d >= 5}\n").replace(
        "    window: 7d\n", "    window: 7d\n    missing: worst\n").replace(
        "    aggregate: count\n", "    aggregate: max\n    of: n\n").replace(
        "data:\n", "data:\n  events: {values: {n: int}}\n")
    (tmp_path / "roadmap.yaml").write_text(roadmap)
    test = TEST.replace("[login at -1d]", "[login n=1 at -1d]").replace(
        "[login x5 at -1d]", "[login x5 n=7 at -1d]")
    (tmp_path / "cov.test.yaml").write_text(test)
    report = run([tmp_path], coverage=True)
    cov = report.coverage
    assert cov is not None
    # a (max 1) had not reached the goal, b (max 7) had; no account lacked a value
    assert cov.counts("goal") == (2, 2)
    assert cov.counts("missing") == (0, 1)
    missed = {(i.kind, i.name): i.detail for i in cov.missed}
    assert missed[("missing", "logins_7d")] == ("never missing, so its missing policy was "
                                                "never applied")
    # the target's comparison is a boundary for every account
    assert ("boundary", "logins_7d 5 (< | >=)") not in missed
    text = cov.render()
    assert "  goals" in text and "  missing" in text
    # a case with an account without events covers the policy
    (tmp_path / "cov.test.yaml").write_text(
        test + "  - name: silent account\n    accounts: {c: {seats: 10}}\n"
        "    expect: {c: {stage: large}}\n")
    cov = run([tmp_path], coverage=True).coverage
    assert cov is not None and cov.counts("missing") == (1, 1)
