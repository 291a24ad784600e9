"""A test file's problems are all reported at once, each located.

A file whose cases could not be read (``cases: []``) once reported only that, and not that
its roadmap does not exist or does not load; a file whose roadmap did not exist dropped the
problems found inside its cases (a NaN expectation). Each fix cost the user another run.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from healthrules.testing import run


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.test.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _problems(path: Path) -> list[tuple[str, str, int | None, str]]:
    report = run([path])
    assert not report.ok
    return [(Path(i.location.file or "").name, i.code, i.location.line, i.location.path)
            for c in report.cases for i in c.issues]


def test_a_missing_roadmap_and_no_cases_are_both_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, """\
        kind: test
        roadmap: missing.yaml
        cases: []
        """)
    assert _problems(path) == [("t.test.yaml", "file_not_found", 2, "roadmap"),
                               ("t.test.yaml", "too_short", 3, "cases")]
    messages = [i.message for c in run([path]).cases for i in c.issues]
    assert "missing.yaml" in messages[0]
    assert messages[1] == "a test file needs at least one case under `cases:`"


def test_a_roadmap_with_errors_is_reported_with_the_file_s_own(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("id: x\ngoal: g\nstages: []\n", encoding="utf-8")
    path = _write(tmp_path, """\
        kind: test
        roadmap: bad.yaml
        tolerance: -1
        cases: []
        """)
    assert _problems(path) == [
        ("t.test.yaml", "test_roadmap_failed", 2, "roadmap"),
        ("t.test.yaml", "greater_than_equal", 3, "tolerance"),
        ("t.test.yaml", "too_short", 4, "cases"),
        ("bad.yaml", "too_short", 3, "stages")]


def test_a_missing_roadmap_keeps_the_problems_of_the_cases(tmp_path: Path) -> None:
    path = _write(tmp_path, """\
        kind: test
        roadmap: missing.yaml
        as_of: 2026-06-30
        cases:
          - name: one
            expect: {a: {score: .nan}}
          - name: two
            expect: {a: {score: 1}}
        """)
    report = run([path])
    by_case = {c.name: [(i.code, i.location.line) for i in c.issues] for c in report.cases}
    assert by_case == {"one": [("file_not_found", 2), ("test_nan", 6)],
                       "two": [("file_not_found", 2)]}
    assert all(c.status == "error" for c in report.cases)


def test_a_missing_roadmap_key_is_not_looked_up(tmp_path: Path) -> None:
    path = _write(tmp_path, """\
        kind: test
        cases: []
        """)
    assert [(code, line) for _, code, line, _ in _problems(path)] == [
        ("missing", 1), ("too_short", 2)]


def test_a_folder_named_as_the_roadmap_is_called_a_folder(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    path = _write(tmp_path, """\
        kind: test
        roadmap: rules
        as_of: 2026-06-30
        cases:
          - name: one
            expect: {a: {stage: s}}
        """)
    (issue,) = run([path]).cases[0].issues
    assert (issue.code, issue.location.line) == ("file_not_found", 2)
    assert issue.message.startswith("the roadmap under test is a folder, not a file: rules")


ROADMAP = """\
id: r
goal: g
data: {events: {user: null}}
stages: [{id: s}]
"""


def test_both_problems_of_a_history_are_reported_each_at_its_key(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(ROADMAP, encoding="utf-8")
    path = _write(tmp_path, """\
        kind: test
        roadmap: r.yaml
        as_of: 2026-06-30
        cases:
          - name: mapping
            history: {from: +5d, every: 0d}
            accounts: [a]
            expect: {a: {stage: s}}
          - name: short
            history: +5d
            accounts: [a]
            expect: {a: {stage: s}}
        """)
    report = run([path])
    by_case = {c.name: [(i.code, i.location.line, i.location.path) for i in c.issues]
               for c in report.cases}
    assert by_case == {
        "mapping": [("test_bad_time", 6, "cases[0].history.from"),
                    ("test_bad_time", 6, "cases[0].history.every")],
        "short": [("test_bad_time", 10, "cases[1].history")]}


def test_a_file_level_problem_keeps_the_problems_of_the_cases(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(ROADMAP, encoding="utf-8")
    path = _write(tmp_path, """\
        kind: test
        roadmap: r.yaml
        as_of: 2026-06-30
        tolerance: -1
        cases:
          - name: one
            expect: {a: {score: .nan}}
          - name: two
            expect: {a: {bands: {x: 1}}}
        """)
    assert [(code, line) for _, code, line, _ in _problems(path)] == [
        ("greater_than_equal", 4), ("test_nan", 7), ("string_type", 9)]
