"""JUnit XML stays well-formed whatever a test file's names hold.

A case name or an account id with a control character (YAML's ``"\\a"``, ``"\\x01"``) was
written into the XML as it is, which XML 1.0 cannot hold even escaped: a CI system refused
the whole report. Such characters are now written as Python writes them (``\\x07``).
"""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

from healthrules.testing import run
from healthrules.testing.junit import to_junit_xml


def test_control_characters_are_written_as_escapes(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("id: r\ngoal: g\ndata: {events: {user: null}}\n"
                                     "stages: [{id: s}]\n", encoding="utf-8")
    path = tmp_path / "t.test.yaml"
    path.write_text(textwrap.dedent("""\
        kind: test
        roadmap: r.yaml
        as_of: 2026-06-30
        cases:
          - name: "bell \\a and \\x01"
            accounts: ["a\\x02"]
            expect: {"a\\x02": {stage: "x\\x1f"}}
          - name: "fails \\x0b"
            accounts: ["b\\x0c"]
            expect: {"b\\x0c": {achieved: true}}
        """), encoding="utf-8")
    report = run([path])
    assert [str(c.status) for c in report.cases] == ["error", "failed"]
    root = ET.fromstring(to_junit_xml(report).split("\n", 1)[1])
    cases = list(root.iter("testcase"))
    assert [c.get("name") for c in cases] == ["bell \\x07 and \\x01", "fails \\x0b"]
    failure = cases[1].find("failure")
    assert failure is not None and "b\\x0c" in (failure.get("message") or "")
