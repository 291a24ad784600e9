"""docs/lint.md is generated from the check docstrings and must be up to date; the docstrings
follow the what / why / example / fix shape, and the registry keeps its ids stable."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthrules.lint import REGISTRY, Check, Status, all_checks
from healthrules.lint.base import DOC_SECTIONS, RegistryEntry
from healthrules.lint.docs import main, render_docs, rst_to_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_docs_page_is_up_to_date() -> None:
    page = ROOT / "docs" / "lint.md"
    assert page.read_text(encoding="utf-8") == render_docs(), (
        "docs/lint.md is out of date: run `python -m healthrules.lint.docs`")


def test_docs_main_check_mode(tmp_path: Path) -> None:
    target = tmp_path / "lint.md"
    assert main(["--check", str(target)]) == 1
    assert main([str(target)]) == 0
    assert main(["--check", str(target)]) == 0


@pytest.mark.parametrize("check", all_checks(), ids=lambda c: c.code)
def test_docstring_shape(check: type[Check]) -> None:
    summary = check.summary()
    assert summary.endswith("."), summary
    sections = check.sections()
    required = [s for s in DOC_SECTIONS if s != "Configuration"]
    assert list(sections)[: len(required)] == required
    assert set(sections) <= set(DOC_SECTIONS)
    assert all(body.strip() for body in sections.values())
    assert check.name.split(".")[0] == check.family()
    assert check.__module__.rsplit(".", 1)[-1] in (check.family(), "suppression")


def test_registry_ids_are_unique_and_well_formed() -> None:
    codes = [e.code for e in REGISTRY]
    names = [e.name for e in REGISTRY]
    assert len(set(codes)) == len(codes)
    assert len(set(names)) == len(names)
    assert codes == sorted(codes)
    for e in REGISTRY:
        assert e.code.startswith("HR") and len(e.code) == 5 and e.code[2:].isdigit()
        assert "." in e.name
    assert [c.code for c in all_checks()] == [
        e.code for e in REGISTRY if e.status is Status.STABLE]


def test_removed_ids_stay_known_but_never_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from healthrules.lint import base, runner, suppression

    retired = RegistryEntry("HR099", "lint.retired_example", Status.REMOVED,
                            "merged into HR001")
    monkeypatch.setattr(base, "REGISTRY", [*REGISTRY, retired])
    monkeypatch.setattr(runner, "REGISTRY", base.REGISTRY)
    monkeypatch.setattr(suppression, "REGISTRY", base.REGISTRY)
    assert suppression.resolve("HR099") == frozenset({"HR099"})
    assert "HR099" not in {c.code for c in runner.all_checks()}
    assert "HR099" not in runner.enabled_codes(base.LintConfig(select=frozenset({"HR099"})))
    from healthrules.lint import docs

    monkeypatch.setattr(docs, "REGISTRY", base.REGISTRY)
    assert "| HR099 | `lint.retired_example` | merged into HR001 |" in docs.render_docs()


def test_rst_to_markdown_literal_blocks() -> None:
    text = "Use it::\n\n    when: x < 3\n    do: y\n\nthen ``this``."
    assert rst_to_markdown(text) == (
        "Use it:\n\n```yaml\nwhen: x < 3\ndo: y\n```\n\nthen `this`.")
