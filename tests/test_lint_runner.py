"""The lint runner: positions, imports, packs, suppression (config, file key, comments), API."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from healthrules.errors import RoadmapError, Severity
from healthrules.lint import (
    LintConfig,
    enabled_codes,
    format_finding,
    lint,
    lint_paths,
    lint_text,
)
from healthrules.lint.suppression import find_directives
from healthrules.loader import load
from healthrules.roadmap import Roadmap

ROOT = Path(__file__).resolve().parents[1]

LIBRARY = """\
kind: library
id: shared
indicators:
  - {id: logins_30d, family: process, aggregate: count, window: 30d}
  - {id: exports_30d, family: process, aggregate: count, window: 30d}
  - id: tickets_90d
    family: relationship
    aggregate: count
    window: 90d
    bands: {levels: [{name: neg, lt: -1}, {name: few, ge: -1, lt: 3}, {name: many, ge: 3}]}
"""

ROADMAP = """\
id: demo
goal: {text: g, indicator: roi}
imports:
  - path: lib.yaml
indicators:
  - {id: roi, family: outcome, aggregate: count}
  - {id: spare, family: process, aggregate: count}
stages:
  - id: s
    achievement: {text: t, when: roi >= 1}
    actions:
      - {id: a, kind: challenge, when: logins_30d < 2, do: "{logins_30d}", owner: csm,
         channel: mail}
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _codes(findings: list[object]) -> list[tuple[str, int | None]]:
    return [(f.code, f.location.line) for f in findings]  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- imports


def test_imported_indicators_are_reported_at_their_import(tmp_path: Path) -> None:
    _write(tmp_path, "lib.yaml", LIBRARY)
    path = _write(tmp_path, "roadmap.yaml", ROADMAP)
    roadmap = load(path)
    assert isinstance(roadmap, Roadmap)
    findings = lint(roadmap, config=LintConfig(select=frozenset({"HR201", "HR301"})))
    by_message = {f.message: f for f in findings}
    assert set(_codes(findings)) == {("HR201", 4), ("HR201", 7), ("HR301", 4)}
    assert "imported indicator 'exports_30d' is never used" in by_message
    assert "indicator 'spare' is never used" in by_message  # own index is shifted back
    unreachable = next(f for f in findings if f.code == "HR301")
    assert unreachable.message.endswith("(the indicator comes from lib.yaml)")
    assert unreachable.location.file == str(path)


def test_explicit_import_list_points_at_the_listed_id(tmp_path: Path) -> None:
    _write(tmp_path, "lib.yaml", LIBRARY)
    path = _write(tmp_path, "roadmap.yaml", ROADMAP.replace(
        "  - path: lib.yaml\n", "  - path: lib.yaml\n    indicators: [logins_30d, exports_30d]\n"))
    findings = lint_paths([path], config=LintConfig(select=frozenset({"indicators.unused"})))
    assert [(f.message, f.location.line, f.location.column)
            for f in findings[0].findings] == [
        ("imported indicator 'exports_30d' is never used", 5, 30),
        ("indicator 'spare' is never used", 8, 5),
    ]


# --------------------------------------------------------------------------- suppression

SUPPRESS = """\
id: demo
goal: g
lint:
  disable: [HR101]
stages:
  - id: a   # healthrules: disable=HR104
  - id: b
    actions:
      # a note about the action
      # healthrules: disable=actions.no_owner
      - {id: x, kind: challenge, when: "as_of > date('2020-01-01')", do: x}
      - {id: y, kind: challenge, when: "as_of > date('2020-01-01')", do: y}
  - id: c      # healthrules: disable=actions
    actions:
      - {id: z, kind: challenge, when: "as_of > date('2020-01-01')", do: z}
"""


def test_file_key_and_comments_switch_checks_off() -> None:
    findings = lint_text(SUPPRESS, config=LintConfig(
        select=frozenset({"HR101", "HR104", "actions.no_owner", "actions.no_channel"})))
    assert _codes(findings) == [
        ("HR504", 11),  # x: only no_owner was switched off for it
        ("HR503", 12),  # y: the comment two lines above x does not reach it
        ("HR504", 12),
    ]


def test_trailing_comment_does_not_leak_to_the_next_line() -> None:
    text = SUPPRESS.replace("  - id: a   # healthrules: disable=HR104\n  - id: b\n",
                            "  - id: a\n    title: t  # healthrules: disable=HR104\n  - id: b\n")
    findings = lint_text(text, config=LintConfig(select=frozenset({"HR104"})))
    assert _codes(findings) == [("HR104", 6)]


def test_global_disable_and_select() -> None:
    all_findings = lint_text(SUPPRESS)
    assert {f.code for f in all_findings} >= {"HR503", "HR504", "HR402"}
    fewer = lint_text(SUPPRESS, config=LintConfig(disable=frozenset({"HR504", "scores"})))
    assert not {f.code for f in fewer} & {"HR504", "HR402", "HR401"}
    only = lint_text(SUPPRESS, config=LintConfig(select=frozenset({"HR503"})))
    assert {f.code for f in only} == {"HR503"}


def test_unknown_spellings_in_config_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown lint check"):
        enabled_codes(LintConfig(disable=frozenset({"HR999"})))
    with pytest.raises(ValueError, match=r"actions\.no_owners"):
        lint_text(SUPPRESS, config=LintConfig(select=frozenset({"actions.no_owners"})))


def test_directives_are_found_in_raw_text() -> None:
    ds = find_directives("a: 1 # healthrules: disable = HR101 HR102,x.y\n# other\n"
                         "  # healthrules:disable=all\n")
    assert [(d.line, d.tokens, d.whole_line) for d in ds] == [
        (1, ("HR101", "HR102", "x.y"), False), (3, ("all",), True)]


# --------------------------------------------------------------------------- files


def test_lint_paths_over_a_folder(tmp_path: Path) -> None:
    _write(tmp_path, "lib.yaml", LIBRARY)
    _write(tmp_path, "roadmap.yaml", ROADMAP)
    _write(tmp_path, "broken.yaml", "id: demo\ngoal: g\nstages: [{id: a, titel: x}]\n")
    _write(tmp_path, "pack.yaml", "kind: pack\nid: p\nroadmaps: [roadmap.yaml, track.yaml]\n")
    _write(tmp_path, "track.yaml", "id: track\ngoal: g\nstages: [{id: a}]\n")
    _write(tmp_path, "roadmap.test.yaml", "kind: test\nroadmap: roadmap.yaml\ncases: []\n")
    reports = lint_paths([tmp_path])
    summary = [(Path(r.path).name, r.kind, r.skipped, bool(r.load_issues)) for r in reports]
    assert summary == [
        ("broken.yaml", "roadmap", False, True),
        ("lib.yaml", "library", True, False),
        ("pack.yaml", "pack", False, False),
        ("roadmap.test.yaml", "test", True, False),
        ("roadmap.yaml", "roadmap", False, False),
        ("track.yaml", "roadmap", False, False),
    ]
    broken = reports[0]
    assert broken.count(Severity.ERROR) == 1
    assert broken.load_issues[0].code == "extra_forbidden"
    track = reports[5]
    assert track.findings and all(f.location.file == track.path for f in track.findings)


def test_lint_without_a_file_keeps_paths_only() -> None:
    import yaml

    roadmap = Roadmap.model_validate(yaml.safe_load(SUPPRESS))
    findings = lint(roadmap, config=LintConfig(select=frozenset({"HR503"})))
    assert [(f.location.line, f.location.path) for f in findings] == [
        (None, "stages[1].actions[0]"), (None, "stages[1].actions[1]"),
        (None, "stages[2].actions[0]")]


def test_lint_text_refuses_a_library() -> None:
    with pytest.raises(RoadmapError, match="needs a roadmap"):
        lint_text(LIBRARY)


def test_format_finding_has_position_severity_and_id() -> None:
    finding = lint_text(SUPPRESS, source="r.yaml",
                        config=LintConfig(select=frozenset({"HR503"})))[0]
    assert format_finding(finding).splitlines() == [
        "r.yaml:12:9: warning: action 'y' has no owner (HR503)",
        "  hint: add `owner:` naming the role that acts (csm, sales ...)",
    ]
    assert finding.ctx["check"] == "actions.no_owner"


# --------------------------------------------------------------------------- our examples


def test_examples_lint_without_errors() -> None:
    reports = lint_paths([ROOT / "rules" / "examples"])
    assert reports
    problems = [format_finding(i) for r in reports for i in r.issues
                if i.severity is Severity.ERROR]
    assert problems == []


def test_tracks_of_a_pack(tmp_path: Path) -> None:
    data = "data: {accounts: {attributes: {goal: str, seats: int}}}\n"
    _write(tmp_path, "all.yaml", "id: everyone\ngoal: g\n" + data + "stages: [{id: a}]\n")
    _write(tmp_path, "big.yaml", "id: big\ngoal: g\n" + data
           + "applies_to: seats >= 10\nstages: [{id: a}]\n")
    _write(tmp_path, "bigger.yaml", "id: bigger\ngoal: g\n" + data
           + "applies_to: seats >= 50 and goal == 'delegate'\nstages: [{id: a}]\n")
    select = LintConfig(select=frozenset({"stages.unreachable_track"}))
    _write(tmp_path, "ok.yaml", "kind: pack\nid: ok\nroadmaps: [bigger.yaml, big.yaml, all.yaml]\n")
    reports = lint_paths([tmp_path / "ok.yaml"], config=select)
    assert [f.message for r in reports for f in r.findings] == []
    _write(tmp_path, "bad.yaml", "kind: pack\nid: bad\nroadmaps: [all.yaml, big.yaml]\n")
    reports = lint_paths([tmp_path / "bad.yaml"], config=select)
    assert [(Path(r.path).name, f.location.line, f.message) for r in reports
            for f in r.findings] == [
        ("big.yaml", 4, "roadmap 'big' never gets an account in pack 'bad': the earlier track "
         "'everyone' has no applies_to, so it takes every account")]
    _write(tmp_path, "worse.yaml", "kind: pack\nid: worse\nroadmaps: [big.yaml, bigger.yaml]\n")
    reports = lint_paths([tmp_path / "worse.yaml"], config=select)
    assert [(Path(r.path).name, f.message) for r in reports for f in r.findings] == [
        ("bigger.yaml", "roadmap 'bigger' never gets an account in pack 'worse': the "
         "applies_to of the earlier tracks ('big') take every account it applies to")]
