"""validate reports every problem of a file in one run, the model's and the expressions'."""

from __future__ import annotations

from pathlib import Path

import pytest

import healthrules as hr

FOUR = """\
id: four
goal: Customers use the product weekly
data:
  events: {user: null}
indicators:
  - id: logins_7d
    family: process
    aggregate: count
    where: event == 'login'
    window: 7d
    bands:
      levels:
        - {name: low, lt: 3}
        - {name: high, ge: 5}
stages:
  - id: operation
    actions:
      - id: call
        kind: challenge
        when: login_7d < 3
        do: Call them
        owner: csm
        priority: urgent
      - id: mail
        kind: challenge
        when: logins_7d <
        do: Mail them
        owner: csm
"""


def test_a_band_gap_a_bad_priority_a_typo_and_a_syntax_error_are_reported_together(
        tmp_path: Path) -> None:
    path = tmp_path / "four.yaml"
    path.write_text(FOUR, encoding="utf-8")
    with pytest.raises(hr.RoadmapError) as info:
        hr.load(path)
    found = {(i.code, i.location.path, i.location.line) for i in info.value.issues}
    assert ("bands_invalid", "indicators[0].bands.levels[1].ge", 14) in found
    assert ("literal_error", "stages[0].actions[0].priority", 23) in found
    assert ("unknown_name", "stages[0].actions[0].when", 20) in found
    assert ("expr_syntax", "stages[0].actions[1].when", 26) in found
    typo = next(i for i in info.value.issues if i.code == "unknown_name")
    assert typo.hint == "did you mean 'logins_7d'?" and typo.location.column == 15


def test_names_brought_by_imports_are_not_guessed(tmp_path: Path) -> None:
    # with imports, the names of the libraries are unknown until the model is valid: no
    # false unknown-name errors, only the model's problem
    text = FOUR.replace("data:\n", "imports:\n  - {path: lib.yaml}\ndata:\n", 1)
    path = tmp_path / "four.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(hr.RoadmapError) as info:
        hr.load(path)
    assert "unknown_name" not in {i.code for i in info.value.issues}
    assert "expr_syntax" in {i.code for i in info.value.issues}
