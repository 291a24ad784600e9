"""Lint reads each file once, analyses each roadmap once, and places imported findings."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import healthrules.analysis
import healthrules.loader
from healthrules._diagnostics import Positions
from healthrules.lint import LintConfig, lint, lint_paths
from healthrules.loader import load, origins_of, positions_of
from healthrules.roadmap import Roadmap

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
stages:
  - id: s
    achievement: {text: t, when: roi >= 1}
    actions:
      - {id: a, kind: challenge, when: logins_30d < 2, do: "{logins_30d}", owner: csm,
         channel: mail}
"""

TRACK = """\
id: track
goal: {text: g, indicator: roi}
imports:
  - path: lib.yaml
    indicators: [logins_30d]
indicators:
  - {id: roi, family: outcome, aggregate: count}
stages:
  - id: s
    achievement: {text: t, when: roi >= 1 and logins_30d > 0}
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def pack_folder(tmp_path: Path) -> Path:
    _write(tmp_path, "lib.yaml", LIBRARY)
    _write(tmp_path, "roadmap.yaml", ROADMAP)
    _write(tmp_path, "track.yaml", TRACK)
    _write(tmp_path, "other.yaml", ROADMAP.replace("id: demo", "id: other"))
    _write(tmp_path, "pack.yaml", "kind: pack\nid: p\nroadmaps: [roadmap.yaml, track.yaml]\n")
    return tmp_path


def test_a_lint_run_reads_each_file_once_and_analyses_each_roadmap_once(
    pack_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    analysed: Counter[str] = Counter()
    read: Counter[str] = Counter()
    reparsed: list[Any] = []
    analyze, read_file = healthrules.analysis.analyze, healthrules.loader.read_file

    def counting_analyze(roadmap: Roadmap) -> Any:
        analysed[roadmap.id] += 1
        return analyze(roadmap)

    def counting_read(path: Path, display: str) -> Positions:
        read[Path(display).name] += 1
        return read_file(path, display)

    def no_second_parse(*args: Any, **kwargs: Any) -> Positions:
        reparsed.append(args)
        raise AssertionError("lint parsed a file a second time")

    monkeypatch.setattr(healthrules.analysis, "analyze", counting_analyze)
    monkeypatch.setattr(healthrules.loader, "read_file", counting_read)
    monkeypatch.setattr(Positions, "from_text", no_second_parse)
    monkeypatch.setattr(Positions, "from_file", no_second_parse)
    reports = lint_paths([pack_folder])
    assert [(Path(r.path).name, r.kind, r.skipped) for r in reports] == [
        ("lib.yaml", "library", True),
        ("other.yaml", "roadmap", False),
        ("pack.yaml", "pack", False),
        ("roadmap.yaml", "roadmap", False),
        ("track.yaml", "roadmap", False),
    ]
    assert any(r.findings for r in reports)
    assert not reparsed
    assert dict(read) == dict.fromkeys(
        ["lib.yaml", "other.yaml", "pack.yaml", "roadmap.yaml", "track.yaml"], 1)
    assert dict(analysed) == {"demo": 1, "track": 1, "other": 1}


def test_the_loader_records_where_imported_indicators_come_from(pack_folder: Path) -> None:
    roadmap = load(pack_folder / "track.yaml")
    assert isinstance(roadmap, Roadmap)
    origin = origins_of(roadmap)["logins_30d"]
    assert (Path(origin.file or "").name, origin.path, origin.line, origin.column) == (
        "lib.yaml", "indicators[0]", 4, 5)
    assert (origin.entry, origin.ref) == ("imports[0].indicators[0]", "lib.yaml")
    assert list(origins_of(roadmap)) == ["logins_30d"]
    positions = positions_of(roadmap)
    assert positions is not None and positions.value("id") == "track"
    assert origins_of(Roadmap.model_validate(roadmap.model_dump())) == {}


def test_findings_about_imported_indicators_point_at_the_import(pack_folder: Path) -> None:
    roadmap = load(pack_folder / "roadmap.yaml")
    assert isinstance(roadmap, Roadmap)
    config = LintConfig(select=frozenset({"HR201", "HR301"}))
    findings = lint(roadmap, config=config)
    placed = {(f.code, f.location.line, f.location.column) for f in findings}
    assert placed == {("HR201", 4, 11), ("HR301", 4, 11)}
    unreachable = next(f for f in findings if f.code == "HR301")
    assert unreachable.message.endswith("(the indicator comes from lib.yaml)")
    assert unreachable.location.file == str(pack_folder / "roadmap.yaml")
    # a copy carries no load record: lint loads its text once more and agrees
    assert lint(roadmap.model_copy(), config=config) == findings


def test_problems_in_an_imported_library_are_placed_in_the_library(tmp_path: Path) -> None:
    _write(tmp_path, "lib.yaml", LIBRARY.replace(
        "aggregate: count, window: 30d}\n  - {id: exports",
        "aggregate: count, window: 30d,\n     where: \"evnt == 'x'\"}\n  - {id: exports"))
    _write(tmp_path, "roadmap.yaml", ROADMAP)
    (report,) = [r for r in lint_paths([tmp_path]) if Path(r.path).name == "roadmap.yaml"]
    (issue,) = report.load_issues
    assert (Path(issue.location.file or "").name, issue.location.line,
            issue.location.column, issue.code) == ("lib.yaml", 5, 14, "unknown_name")
