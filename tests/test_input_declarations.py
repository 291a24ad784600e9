"""A data-contract error points at the roadmap line that declared the column."""

from __future__ import annotations

from pathlib import Path

import pytest

import healthrules as hr
from healthrules.datasets import DEFAULT_AS_OF, sample
from healthrules.examples import example_path


def _error(events_drop: str | None = None, accounts_drop: str | None = None) -> str:
    data = sample(10)
    events = data.events.drop(events_drop) if events_drop else data.events
    accounts = data.accounts.drop(accounts_drop) if accounts_drop else data.accounts
    with pytest.raises(hr.InputDataError) as info:
        hr.evaluate(hr.load(example_path("b2b-saas")), events, accounts, DEFAULT_AS_OF)
    return str(info.value)


def _line_of(key: str) -> int:
    text = example_path("b2b-saas").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(text, 1) if line.strip().startswith(f"{key}:"))


def test_a_missing_event_column_points_at_its_declaration() -> None:
    text = _error(events_drop="user_id")
    assert "events frame has no column 'user_id'" in text
    assert f"see also: {example_path('b2b-saas')}:{_line_of('user')}:" in text
    assert "(at data.events.user)" in text


def test_a_missing_attribute_points_at_its_declaration() -> None:
    text = _error(accounts_drop="seats")
    assert "accounts frame has no attribute column 'seats'" in text
    assert f":{_line_of('seats')}:" in text and "(at data.accounts.attributes.seats)" in text


def test_a_roadmap_built_in_python_names_the_yaml_path() -> None:
    roadmap = hr.Roadmap.model_validate({
        "id": "demo", "goal": "Weekly use",
        "indicators": [{"id": "logins", "family": "process", "aggregate": "count",
                        "where": "event == 'login'", "window": "7d"}],
        "stages": [{"id": "operation"}]})
    data = sample(5)
    with pytest.raises(hr.InputDataError) as info:
        hr.evaluate(roadmap, data.events.drop("user_id"), data.accounts, DEFAULT_AS_OF)
    assert "(at data.events.user)" in str(info.value)


def test_a_problem_inside_an_imported_library_names_the_roadmap(tmp_path: Path) -> None:
    (tmp_path / "lib.yaml").write_text(
        "kind: library\nid: shared\nindicators:\n"
        "  - id: member_logins\n    family: process\n    aggregate: count\n"
        "    where: member == 'x'\n    window: 7d\n", encoding="utf-8")
    (tmp_path / "roadmap.yaml").write_text(
        "id: acme\ngoal: Weekly use\nimports:\n  - {path: lib.yaml}\n"
        "stages:\n  - id: operation\n", encoding="utf-8")
    with pytest.raises(hr.RoadmapError) as info:
        hr.load(tmp_path / "roadmap.yaml")
    (issue,) = [i for i in info.value.issues if i.code == "unknown_name"]
    assert issue.location.file is not None and issue.location.file.endswith("lib.yaml")
    assert "in roadmap 'acme', which imports this indicator" in issue.message
    assert issue.related is not None and issue.related.file is not None
    assert issue.related.file.endswith("roadmap.yaml") and issue.related.line == 4
