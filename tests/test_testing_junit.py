"""JUnit XML output of test runs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from healthrules.testing import run
from healthrules.testing.junit import to_junit_xml, write_junit_xml

ROADMAP = """\
id: j
goal: Weekly use
indicators:
  - {id: logins, family: process, aggregate: count, where: "event == 'login'", window: 7d}
stages:
  - id: only
"""

TEST = """\
kind: test
roadmap: roadmap.yaml
as_of: 2026-06-30
cases:
  - name: passes
    accounts: [a]
    events: {a: [login x2 at -1d by u1]}
    expect: {a: {indicators: {logins: 2}}}
  - name: fails <&>
    accounts: [a]
    expect: {a: {indicators: {logins: 1}}}
  - name: errors
    accounts: [a]
    expect: {a: {stage: nowhere}}
  - name: skipped
    skip: not yet
    accounts: [a]
    expect: {a: {stage: only}}
"""


def test_junit_xml(tmp_path: Path) -> None:
    (tmp_path / "roadmap.yaml").write_text(ROADMAP)
    (tmp_path / "j.test.yaml").write_text(TEST)
    report = run([tmp_path])
    assert report.summary() == "1 passed, 2 failed, 1 skipped"
    out = tmp_path / "reports" / "junit.xml"
    write_junit_xml(report, out)
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "4", "1", "1", "1")
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name", "").endswith("j.test.yaml")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"passes", "fails <&>", "errors", "skipped"}
    failure = cases["fails <&>"].find("failure")
    assert failure is not None and "indicators.logins" in (failure.text or "")
    assert failure.get("message") == "1 expectation(s) not met for account(s) a"
    error = cases["errors"].find("error")
    assert error is not None and "unknown stage 'nowhere'" in (error.get("message") or "")
    skipped = cases["skipped"].find("skipped")
    assert skipped is not None and skipped.get("message") == "not yet"
    assert cases["passes"].get("line") == "5"
    assert to_junit_xml(report).startswith("<?xml")
