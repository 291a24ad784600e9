"""``healthrules test``: exit codes, text and JSON output, JUnit XML, coverage threshold."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from healthrules.cli import main

ROADMAP = """\
id: c
goal: Weekly use
indicators:
  - id: logins
    family: process
    aggregate: count
    where: event == 'login'
    window: 7d
    bands: {levels: [{name: low, lt: 2}, {name: ok, ge: 2}]}
stages:
  - id: only
    actions:
      - {id: call, kind: challenge, when: logins == 0, do: "Call: {logins} logins"}
"""

PASSING = """\
kind: test
roadmap: roadmap.yaml
as_of: 2026-06-30
cases:
  - name: quiet
    accounts: [a]
    events: {a: [logni at -1d]}
    expect: {a: {actions: {exactly: [call]}, bands: {logins: low}}}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "roadmap.yaml").write_text(ROADMAP)
    (tmp_path / "ok.test.yaml").write_text(PASSING)
    return tmp_path


def test_passing_run_exits_0(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == "1 passed, 0 failed"
    assert "did you mean 'login'?" in err          # warnings go to stderr


def test_failing_run_exits_1_with_the_diff(folder: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "bad.test.yaml").write_text(PASSING.replace("exactly: [call]", "none: true"))
    assert main(["test", str(folder)]) == 1
    out, _ = capsys.readouterr()
    assert "actions (none)  (not expected)  call fired" in out
    assert out.strip().splitlines()[-1] == "1 passed, 1 failed"


def test_test_file_errors_exit_1(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "ok.test.yaml").write_text(PASSING.replace("bands: {logins: low}",
                                                         "bands: {logins: lo}"))
    assert main(["test", str(folder)]) == 1
    out, _ = capsys.readouterr()
    line = (folder / "ok.test.yaml").read_text().splitlines()[7]
    col = line.index("lo}") + 1
    assert f"{folder / 'ok.test.yaml'}:8:{col}: error: indicator 'logins' has no band 'lo'" in out
    assert "hint: did you mean 'low'?" in out


def test_usage_errors_exit_2(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(folder / "missing")]) == 2
    assert main(["test", str(folder), "--run", "("]) == 2
    empty = folder / "empty"
    empty.mkdir()
    assert main(["test", str(empty)]) == 2
    assert main(["test", str(folder), "--fail-under", "120"]) == 2
    assert main(["test"]) == 2
    err = capsys.readouterr().err
    assert "no such file or folder" in err and "no test file" in err


def test_json_and_junit(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    xml_path = folder / "out" / "junit.xml"
    assert main(["test", str(folder), "--format", "json", "--junit-xml", str(xml_path),
                 "--coverage"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["passed"] == 1
    assert data["cases"][0]["case"] == "quiet"
    assert data["coverage"]["by_kind"]["action"]["percent"] == 100.0
    assert data["warnings"][0]["code"] == "test_unknown_event"
    root = ET.parse(xml_path).getroot()
    assert root.get("tests") == "1" and root.get("failures") == "0"


def test_coverage_threshold(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the 'ok' band and the logins == 0 "not equal" side are never reached: below 100 %
    assert main(["test", str(folder), "--fail-under", "100"]) == 1
    out, err = capsys.readouterr()
    assert "band      c: logins=ok  (no value in 2 <= logins)" in out
    assert "is below --fail-under 100%" in err
    assert main(["test", str(folder), "--fail-under", "50"]) == 0


def test_run_selects_cases(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(folder), "-k", "nomatch", "-v"]) == 0
    assert capsys.readouterr().out.strip().endswith("0 passed, 0 failed")


def test_schema_tests_prints_the_test_file_schema(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--tests"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "healthrules test file"
    assert schema["properties"]["kind"]["const"] == "test"
    assert {"Case", "AccountExpectation", "ActionsExpectation"} <= set(schema["$defs"])
    out = tmp_path / "test-file.schema.json"
    assert main(["schema", "--tests", "-o", str(out)]) == 0
    assert json.loads(out.read_text()) == schema
