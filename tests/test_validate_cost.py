"""Reading a large rule file is bounded work, and the fast YAML path reads what PyYAML reads.

Large files are composed from the events of libyaml's C parser (PyYAML's pure-Python scanner
took most of the 12 s that a 1.2 MB file with 20,000 unknown names cost), with PyYAML's own
composer, nesting limit and scalar rules on top; a file the C parser refuses is read again
by PyYAML, so errors read as before. These tests pin that both paths give the same values,
positions and problems, that the pure-Python scanner does no work on a file libyaml reads,
and that did-you-mean looks at a bounded number of candidates per file.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest
import yaml

from healthrules import _diagnostics
from healthrules._diagnostics import SUGGESTION_BUDGET, Fatal, parse_yaml
from healthrules.errors import RoadmapError
from healthrules.loader import load_text

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted([*ROOT.glob("rules/**/*.y*ml"), *ROOT.glob("tests/fixtures/**/*.y*ml")])

TRICKY = {
    "anchors and merges": (
        "base: &b {window: 30d, family: process}\n"
        "indicators:\n  - <<: *b\n    id: x\n  - <<: [*b]\n    id: y\n    window: 7d\n"),
    "non-ascii and block scalars": (
        "id: é\ngoal: |\n  Ünïcode ✓ text\n  over two lines\n"
        "do: >-\n  folded\n  text ü\nq: 'it''s'\nd: \"tab\\there\"\n"),
    "duplicates, tags and bad scalars": (
        "a: 1\na: 2\nb: !custom x\nc: !!int nope\nd: 0x1F\ne: .inf\nf: 1_000\ng: ~\n"
        "h: [yes, no, on, True]\n? [k]\n: v\n"),
    "comments and flow": "# c\nx: {a: [1, 2, {b: c}], 'q': \"w\"}  # t\ny: []\nz: {}\n",
    "too deep": "x: " + "[" * 70 + "]" * 70 + "\n",
    "syntax error": "a: [1, 2\nb: : c\n",
    "bad character": "a: b\x07c\n",
    "lone surrogate": "a: b\ud800\n",
}


def _read(text: str, fast: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(_diagnostics, "_CParser", None)
        try:
            doc = parse_yaml(text, "f.yaml")
        except Fatal as exc:
            return ("fatal", exc.issue)
    return (doc.data, doc.pos, doc.keys, doc.poisoned, doc.issues)


def test_libyaml_is_there() -> None:
    """The fast path needs PyYAML built with libyaml (the wheels are)."""
    assert _diagnostics._CParser is not None


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_both_paths_read_every_rule_file_alike(path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    text = path.read_text(encoding="utf-8")
    assert _read(text, True, monkeypatch) == _read(text, False, monkeypatch)


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_both_paths_read_tricky_documents_alike(name: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    text = TRICKY[name]
    assert _read(text, True, monkeypatch) == _read(text, False, monkeypatch)


def _many_unknown_names(n: int) -> str:
    lines = ["id: big", "goal: g", "data:", "  accounts:", "    attributes: {plan: str}",
             "indicators:", "  - {id: logins, family: process, aggregate: count}"]
    lines += [f"  - {{id: derived_{i:05d}, family: process, expr: 'unknown_{i:05d} + logins'}}"
              for i in range(n)]
    lines += ["stages:", "  - id: onboarding"]
    return "\n".join(lines) + "\n"


def test_a_large_file_is_not_scanned_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"scan": 0}
    original = yaml.scanner.Scanner.check_token

    def counted(self: Any, *choices: Any) -> bool:
        calls["scan"] += 1
        return bool(original(self, *choices))

    monkeypatch.setattr(yaml.scanner.Scanner, "check_token", counted)
    doc = parse_yaml(_many_unknown_names(2_000), "big.yaml")
    assert len(doc.data["indicators"]) == 2_001
    assert calls["scan"] == 0
    with pytest.raises(Fatal):  # a refused file is read again by PyYAML (its error)
        parse_yaml("a: [1, 2\n", "bad.yaml")
    assert calls["scan"] > 0


def test_did_you_mean_work_is_bounded_per_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """20,000 unknown names among 20,000 known ones: the candidates compared stay within the
    file's budget (it was 20,000 x 20,000), and every problem is still reported."""
    compared = {"n": 0}
    original = difflib.SequenceMatcher.set_seq1

    def counted(self: difflib.SequenceMatcher[str], a: str) -> None:
        compared["n"] += 1
        original(self, a)

    monkeypatch.setattr(difflib.SequenceMatcher, "set_seq1", counted)
    text = _many_unknown_names(20_000)
    assert len(text) > 1_200_000
    with pytest.raises(RoadmapError) as info:
        load_text(text, source="big.yaml")
    assert len(info.value.errors()) == 20_000
    assert 0 < compared["n"] <= SUGGESTION_BUDGET
