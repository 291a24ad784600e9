"""Pass/fail cases of every lint check, from one YAML fixture per check (tests/fixtures/lint/).

Each fixture names its ``check`` and lists ``cases``; a case has a roadmap as ``pass`` (the
check must report nothing) or as ``fail`` with the findings it must report, each by ``line``
and optionally ``column``, ``file`` and a ``contains`` substring of the message. A case that
needs several files (a pack and its roadmaps) lists them under ``files`` and names the one to
lint in ``pass`` / ``fail``. Only the fixture's check runs, so the cases stay small.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from healthrules.lint import REGISTRY, LintConfig, Status, lint_paths, lint_text

FIXTURES = Path(__file__).parent / "fixtures" / "lint"


def _cases() -> list[Any]:
    out = []
    for path in sorted(FIXTURES.glob("*.yml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in spec["cases"]:
            out.append(pytest.param(spec["check"], case, id=f"{path.stem}-{case['name']}"))
    return out


@pytest.mark.parametrize(("check", "case"), _cases())
def test_case(check: str, case: dict[str, Any], tmp_path: Path) -> None:
    text = case.get("pass", case.get("fail"))
    assert isinstance(text, str), "a case needs `pass` or `fail`"
    config = LintConfig(select=frozenset({check}), **case.get("config", {}))
    if "files" in case:  # several files: `pass` / `fail` names the one to lint (a pack)
        for name, content in case["files"].items():
            (tmp_path / name).write_text(content, encoding="utf-8")
        reports = lint_paths([tmp_path / text], config=config)
        findings = [f for r in reports for f in r.issues]
    else:
        findings = lint_text(text, source="case.yaml", config=config)
    got = [(f.location.line, f.location.column, Path(f.location.file or "").name, f.message)
           for f in findings]
    expected = [] if "pass" in case else case["expect"]
    assert all(f.code == check for f in findings), [str(f) for f in findings]
    assert len(got) == len(expected), "\n".join(str(f) for f in findings) or "no findings"
    for (line, column, file, message), want in zip(got, expected, strict=True):
        assert line == want["line"], message
        if "column" in want:
            assert column == want["column"], message
        if "file" in want:
            assert file == want["file"], message
        if "contains" in want:
            assert want["contains"] in message


def test_every_check_has_pass_and_fail_cases() -> None:
    have: dict[str, set[str]] = {}
    for path in FIXTURES.glob("*.yml"):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert path.stem == spec["check"], "name the fixture after its check id"
        have[spec["check"]] = {"pass" if "pass" in c else "fail" for c in spec["cases"]}
    for entry in REGISTRY:
        if entry.status is Status.STABLE:
            assert have.get(entry.code) == {"pass", "fail"}, entry.code
