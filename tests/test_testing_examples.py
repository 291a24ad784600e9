"""The example packs' own unit tests (rules/examples/**/*.test.yaml) pass, with full coverage.

This is how the repository's ``pytest`` run (testpaths = tests) runs the example test files;
``pytest rules/`` runs them too, one item per case, through the pytest plugin.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from healthrules.testing import RunReport, run

EXAMPLES = Path(__file__).resolve().parent.parent / "rules" / "examples"


@pytest.fixture(scope="module")
def report() -> RunReport:
    return run([EXAMPLES], coverage=True)


def test_every_example_case_passes(report: RunReport) -> None:
    assert report.ok, report.render()
    assert report.passed >= 20
    assert not [w for f in report.files for w in f.warnings], report.render()


def test_every_example_pack_has_a_test_file() -> None:
    folders = sorted(p for p in EXAMPLES.iterdir() if p.is_dir() and any(p.glob("*.yaml")))
    assert folders
    for folder in folders:
        assert list(folder.glob("*.test.yaml")), f"{folder.name} has no *.test.yaml"


def test_full_action_and_band_coverage(report: RunReport) -> None:
    cov = report.coverage
    assert cov is not None
    missed = [f"{i.kind} {i.roadmap}: {i.name}" for i in cov.missed
              if i.kind in ("action", "band", "stage")]
    assert missed == []
    assert cov.percent("action") == 100.0
    assert cov.percent("band") == 100.0
