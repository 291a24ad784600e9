"""Cross-node checks (healthrules.analysis), reported by the loader at both places when two."""

from __future__ import annotations

import textwrap

import pytest

from healthrules.analysis import Analysis, analyze, parse_template
from healthrules.errors import Issue, RoadmapError
from healthrules.expressions import ExprProblem
from healthrules.loader import load_text
from healthrules.roadmap import Roadmap

BASE = textwrap.dedent(
    """\
    id: demo
    goal: Customers use the product weekly
    data:
      events:
        values: {minutes: float}
      accounts:
        attributes: {plan: str, seats: int, contract_start: date}
    indicators:
      - id: logins_30d
        family: process
        aggregate: count
        where: event == 'login'
        window: 30d
        bands:
          levels:
            - {name: low, lt: 5}
            - {name: high, ge: 5}
      - id: minutes_30d
        family: process
        aggregate: sum
        of: minutes
        window: 30d
    stages:
      - id: onboarding
        actions:
          - id: nudge
            kind: challenge
            when: logins_30d < 3
            do: "Only {logins_30d} logins: call"
      - id: operation
    """
)


def pos(text: str, needle: str, nth: int = 1) -> tuple[int, int]:
    index = -1
    for _ in range(nth):
        index = text.index(needle, index + 1)
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def issues_of(text: str) -> list[Issue]:
    with pytest.raises(RoadmapError) as info:
        load_text(text)
    return info.value.errors()


def only(text: str) -> Issue:
    issues = issues_of(text)
    assert len(issues) == 1, "\n".join(map(str, issues))
    return issues[0]


def at(issue: Issue) -> tuple[int | None, int | None, str]:
    return issue.location.line, issue.location.column, issue.location.path


def add_indicator(text: str, body: str) -> str:
    lines = textwrap.dedent(body).strip().splitlines()
    block = "  - " + lines[0] + "\n" + "".join(f"    {line}\n" for line in lines[1:])
    return text.replace("stages:\n", block + "stages:\n")


def test_analysis_of_the_base() -> None:
    roadmap = load_text(BASE)
    assert isinstance(roadmap, Roadmap)
    a = analyze(roadmap)
    assert isinstance(a, Analysis) and a.ok
    assert a.indicator_types == {"logins_30d": "int", "minutes_30d": "float"}
    assert a.banded == {"logins_30d"}
    assert "stages[0].actions[0].when" in a.expressions
    assert set(a.env("filter")) >= {"event", "minutes", "plan", "as_of"}
    assert "logins_30d" not in a.env("filter")
    assert "score" in a.env("actions") and "score" not in a.env("indicators")


# --------------------------------------------------------------------------- duplicate ids


def test_duplicate_indicator_ids_are_reported_at_both_places() -> None:
    text = BASE.replace("id: minutes_30d", "id: logins_30d")
    issue = only(text)
    assert issue.code == "duplicate_id" and "indicator id 'logins_30d'" in issue.message
    assert at(issue) == (*pos(text, "logins_30d", 2), "indicators[1].id")
    assert issue.related is not None
    assert (issue.related.line, issue.related.column, issue.related.path) == (
        *pos(text, "logins_30d"), "indicators[0].id")


def test_duplicate_stage_ids() -> None:
    text = BASE.replace("  - id: operation", "  - id: onboarding")
    issue = only(text)
    assert issue.code == "duplicate_id"
    assert at(issue) == (*pos(text, "onboarding", 2), "stages[1].id")
    assert issue.related is not None and issue.related.path == "stages[0].id"
    assert (issue.related.line, issue.related.column) == pos(text, "onboarding")


def test_duplicate_action_ids_across_stages_and_roadmap_wide() -> None:
    text = BASE + "actions:\n  - {id: nudge, kind: positive, when: logins_30d > 9, do: hi}\n"
    issue = only(text)
    assert issue.code == "duplicate_id"
    assert at(issue) == (*pos(text, "nudge", 2), "actions[0].id")
    assert issue.related is not None
    assert (issue.related.line, issue.related.path) == (
        pos(text, "nudge")[0], "stages[0].actions[0].id")


# --------------------------------------------------------------------------- names


def test_name_clash_between_indicator_and_attribute() -> None:
    text = BASE.replace("id: minutes_30d", "id: seats")
    issue = only(text)
    assert issue.code == "name_clash"
    assert at(issue) == (*pos(text, "seats", 2), "indicators[1].id")


@pytest.mark.parametrize("name", ["score", "as_of", "stage", "round"])
def test_reserved_names(name: str) -> None:
    text = BASE.replace("id: minutes_30d", f"id: {name}")
    issue = only(text)
    assert issue.code == "name_clash" and "reserved" in issue.message
    line, column = pos(text, f"id: {name}")
    assert at(issue) == (line, column + 4, "indicators[1].id")


def test_attribute_with_a_reserved_name() -> None:
    text = BASE.replace("plan: str", "stage: str")
    issue = only(text)
    assert issue.code == "name_clash"
    assert at(issue) == (*pos(text, "stage: str"), "data.accounts.attributes.stage")


def test_unknown_value_column() -> None:
    text = BASE.replace("of: minutes", "of: minuts")
    issue = only(text)
    assert issue.code == "unknown_name" and issue.hint == "did you mean 'minutes'?"
    assert at(issue) == (*pos(text, "minuts"), "indicators[1].of")


def test_unknown_goal_indicator() -> None:
    text = BASE.replace("goal: Customers use the product weekly",
                        "goal: {text: g, indicator: login_30d}")
    issue = only(text)
    assert issue.code == "unknown_indicator" and issue.hint == "did you mean 'logins_30d'?"
    assert at(issue) == (*pos(text, "login_30d"), "goal.indicator")


# --------------------------------------------------------------------------- windows


def test_window_anchored_to_a_non_date() -> None:
    text = add_indicator(BASE, "id: x\nfamily: process\naggregate: count\n"
                         "window: {from: seats}")
    issue = only(text)
    assert issue.code == "window_invalid" and "'seats' is int" in issue.message
    line, column = pos(text, "from: seats")
    assert at(issue) == (line, column + 6, "indicators[2].window.from")


def test_window_anchored_to_an_unknown_attribute() -> None:
    text = add_indicator(BASE, "id: x\nfamily: process\naggregate: count\n"
                         "window: {from: contract_strt}")
    issue = only(text)
    assert issue.code == "unknown_name" and issue.hint == "did you mean 'contract_start'?"
    assert at(issue) == (*pos(text, "contract_strt"), "indicators[2].window.from")


# --------------------------------------------------------------------------- derived, cycles


def test_cycle_names_the_cycle() -> None:
    text = add_indicator(BASE, "id: a\nfamily: process\nexpr: b + 1")
    text = add_indicator(text, "id: b\nfamily: process\nexpr: c * 2")
    text = add_indicator(text, "id: c\nfamily: process\nexpr: a - 1")
    issue = only(text)
    assert issue.code == "cycle"
    assert "a -> b -> c -> a" in issue.message
    assert at(issue) == (*pos(text, "b + 1"), "indicators[2].expr")


def test_self_reference_is_a_cycle() -> None:
    text = add_indicator(BASE, "id: a\nfamily: process\nexpr: a + 1")
    issue = only(text)
    assert issue.code == "cycle" and "a -> a" in issue.message


def test_derived_indicators_are_ordered_and_typed() -> None:
    text = add_indicator(BASE, "id: b\nfamily: process\nexpr: a * 2")
    text = add_indicator(text, "id: a\nfamily: process\nexpr: logins_30d / seats")
    roadmap = load_text(text)
    assert isinstance(roadmap, Roadmap)
    a = analyze(roadmap)
    assert a.derived_order == ["a", "b"]
    assert a.indicator_types["b"] == "float"


def test_always_null_derived_indicator() -> None:
    text = add_indicator(BASE, "id: a\nfamily: process\nexpr: None")
    issue = only(text)
    assert issue.code == "expr_type" and "always null" in issue.message


# --------------------------------------------------------------------------- score


def test_unknown_and_unbanded_weights() -> None:
    text = BASE + "score:\n  weights:\n    indicators: {logins_3d: 1, minutes_30d: 1}\n"
    issues = issues_of(text)
    assert [(i.code, i.location.path) for i in issues] == [
        ("unknown_indicator", "score.weights.indicators.logins_3d"),
        ("weights_invalid", "score.weights.indicators.minutes_30d"),
    ]
    assert at(issues[0])[:2] == pos(text, "logins_3d")
    assert at(issues[1])[:2] == pos(text, "minutes_30d: 1")
    assert issues[0].hint == "did you mean 'logins_30d'?"
    assert "no bands" in issues[1].message


def test_unknown_stage_in_per_stage_score() -> None:
    text = BASE + (
        "score:\n  stages:\n    onbording:\n      weights: {indicators: {logins_30d: 1}}\n"
    )
    issue = only(text)
    assert issue.code == "unknown_stage" and issue.hint == "did you mean 'onboarding'?"
    assert issue.location.path == "score.stages.onbording"
    assert issue.location.line == pos(text, "onbording")[0]


def test_per_stage_weights_are_checked_too() -> None:
    text = BASE + "score:\n  stages:\n    onboarding:\n      weights: {indicators: {nope: 1}}\n"
    issue = only(text)
    assert issue.code == "unknown_indicator"
    assert issue.location.path == "score.stages.onboarding.weights.indicators.nope"


def test_score_band_needs_score_bands() -> None:
    text = BASE.replace("when: logins_30d < 3", "when: score_band == 'red'")
    issue = only(text)
    assert issue.code == "unknown_name"
    text += "score:\n  bands:\n    levels: [{name: red, lt: 50}, {name: green, ge: 50}]\n"
    assert isinstance(load_text(text), Roadmap)


# --------------------------------------------------------------------------- templates


def test_template_with_an_unknown_name() -> None:
    text = BASE.replace("Only {logins_30d} logins", "Only {logins_3d:.0f} logins")
    issue = only(text)
    assert issue.code == "unknown_name" and issue.hint == "did you mean 'logins_30d'?"
    assert at(issue) == (*pos(text, "logins_3d"), "stages[0].actions[0].do")


def test_parse_template() -> None:
    pieces = parse_template("{x:.0%} of {{seats}} {y}")
    assert [p if isinstance(p, str) else (p.name, p.spec) for p in pieces] == [
        ("x", ".0%"), " of {seats} ", ("y", "")]
    with pytest.raises(ExprProblem):
        parse_template("{x!r}")
    with pytest.raises(ExprProblem):
        parse_template("{1}")


def test_band_of_a_later_derived_indicator_orders_it_first() -> None:
    # `band(a)` reads a: a (declared after b) is computed first, in the engine too
    import datetime as dt

    import polars as pl

    import healthrules as hr

    text = add_indicator(BASE, "id: b\nfamily: process\n"
                         "expr: \"1 if band(a) == 'high' else 0\"")
    text = add_indicator(text, "id: a\nfamily: process\nexpr: logins_30d / seats\n"
                         "bands:\n  levels:\n    - {name: low, lt: 0.5}\n"
                         "    - {name: high, ge: 0.5}")
    roadmap = load_text(text)
    assert isinstance(roadmap, Roadmap)
    assert analyze(roadmap).derived_order == ["a", "b"]
    events = pl.DataFrame({"account_id": ["x"] * 3 + ["y"], "user_id": ["u"] * 4,
                           "event": ["login"] * 4, "minutes": [1.0] * 4,
                           "timestamp": [dt.datetime(2026, 6, d) for d in (1, 2, 3, 4)]})
    accounts = pl.DataFrame({"account_id": ["x", "y"], "plan": ["a", "b"], "seats": [2, 10],
                             "contract_start": [dt.date(2026, 1, 1)] * 2})
    result = hr.evaluate(roadmap, events, accounts, "2026-06-30")
    got = dict(result.indicators.select("account_id", "b").rows())
    assert got == {"x": 1, "y": 0}
    assert result.explain("x").values["b"] == 1
