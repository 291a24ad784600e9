"""Rules of the roadmap models, each reported through the loader at its line, column and path."""

from __future__ import annotations

import textwrap

import pytest

from healthrules.errors import Issue, RoadmapError, ValidationError
from healthrules.loader import load_text
from healthrules.roadmap import Band, Bands, Roadmap, Window

BASE = textwrap.dedent(
    """\
    id: demo
    goal: Customers use the product weekly
    data:
      events:
        values: {minutes: float}
      accounts:
        attributes: {seats: int, contract_start: date}
    indicators:
      - id: logins_30d
        family: process
        aggregate: count
        where: event == 'login'
        window: 30d
    stages:
      - id: onboarding
        actions:
          - id: nudge
            kind: challenge
            when: logins_30d < 3
            do: "Only {logins_30d} logins: call"
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


def with_indicator(body: str) -> str:
    """BASE with one more indicator (``body`` is its YAML, without the leading dash)."""
    lines = textwrap.dedent(body).strip().splitlines()
    block = "  - " + lines[0] + "\n" + "".join(f"    {line}\n" for line in lines[1:])
    return BASE.replace("stages:\n", block + "stages:\n")


def test_base_is_valid() -> None:
    assert isinstance(load_text(BASE), Roadmap)


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    ("old", "new", "key", "path", "guess"),
    [
        ("    kind: challenge", "    kind: challenge\n        ownr: csm", "ownr",
         "stages[0].actions[0].ownr", "did you mean 'owner'?"),
        ("goal: Customers", "gaol: x\ngoal: Customers", "gaol", "gaol", "did you mean 'goal'?"),
        ("    window: 30d", "    window: {dayz: 30}", "dayz", "indicators[0].window.dayz",
         "did you mean 'days'?"),
        ("    values:", "    valeus: {}\n    values:", "valeus", "data.events.valeus",
         "did you mean 'values'?"),
    ],
)
def test_extra_keys(old: str, new: str, key: str, path: str, guess: str) -> None:
    text = BASE.replace(old, new, 1)
    issue = only(text)
    assert issue.code == "extra_forbidden"
    assert issue.message == f"unknown key {key!r}"
    assert at(issue) == (*pos(text, key + ":"), path)
    assert issue.hint is not None and issue.hint.startswith(guess)
    assert "allowed keys:" in issue.hint


def test_missing_keys_point_at_the_parent_mapping() -> None:
    text = BASE.replace("  - id: onboarding\n", "  - title: Onboarding\n")
    issue = only(text)
    assert issue.code == "missing" and issue.message == "missing required key 'id'"
    assert at(issue) == (*pos(text, "title: Onboarding"), "stages[0].id")


def test_missing_top_level_keys_point_at_the_start() -> None:
    issues = issues_of("title: nothing else\n")
    assert [(i.code, i.location.path, i.location.line, i.location.column) for i in issues] == [
        ("missing", "goal", 1, 1), ("missing", "id", 1, 1), ("missing", "stages", 1, 1)]


def test_missing_aggregate_hints_at_derived() -> None:
    text = with_indicator("id: ratio\nfamily: process\nexp: logins_30d / 2")
    issues = issues_of(text)
    missing = next(i for i in issues if i.code == "missing")
    assert missing.location.path == "indicators[1].aggregate"
    assert missing.hint is not None and "`expr:`" in missing.hint
    assert {i.code for i in issues} == {"missing", "extra_forbidden"}


@pytest.mark.parametrize(
    ("old", "new", "value", "path", "allowed"),
    [
        ("kind: challenge", "kind: challnge", "challnge", "stages[0].actions[0].kind",
         "'positive', 'challenge'"),
        ("family: process", "family: proces", "proces", "indicators[0].family",
         "'process', 'relationship', 'outcome'"),
        ("aggregate: count", "aggregate: cnt", "cnt", "indicators[0].aggregate", "'count'"),
        ("    kind: challenge", "    kind: challenge\n        priority: urgent", "urgent",
         "stages[0].actions[0].priority", "'critical', 'high', 'medium', 'low'"),
    ],
)
def test_literal_errors_list_the_allowed_values(
    old: str, new: str, value: str, path: str, allowed: str
) -> None:
    text = BASE.replace(old, new, 1)
    issue = only(text)
    assert issue.code == "literal_error"
    assert at(issue) == (*pos(text, value), path)
    assert issue.hint is not None and allowed in issue.hint


def test_literal_error_did_you_mean_on_a_prefix() -> None:
    issue = only(BASE.replace("kind: challenge", "kind: pos"))
    assert issue.hint is not None and issue.hint.startswith("did you mean 'positive'?")


def test_unknown_indicator_kind() -> None:
    text = with_indicator("id: x\nkind: derivd\nfamily: process\nexpr: '1'")
    issue = only(text)
    assert issue.code == "union_tag_invalid"
    assert at(issue) == (*pos(text, "derivd"), "indicators[1].kind")
    assert issue.hint is not None and "did you mean 'derived'?" in issue.hint


def test_a_scalar_where_a_mapping_is_expected() -> None:
    text = BASE.replace("  - id: onboarding\n    actions:", "  - 42\n  - id: onboarding\n"
                        "    actions:")
    issue = only(text)
    assert issue.code == "model_type" and "got the number 42" in issue.message
    assert at(issue) == (*pos(text, "42"), "stages[0]")


def test_a_scalar_where_a_list_is_expected() -> None:
    text = BASE.replace("    actions:\n", "    tasks: {ours: do it}\n    actions:\n")
    issue = only(text)
    assert issue.code == "list_type"
    assert at(issue) == (*pos(text, "do it"), "stages[0].tasks.ours")


def test_a_bad_id() -> None:
    text = BASE.replace("id: nudge", "id: 2nudge")
    issue = only(text)
    assert issue.code == "string_pattern_mismatch" and "not a valid id" in issue.message
    assert at(issue) == (*pos(text, "2nudge"), "stages[0].actions[0].id")


def test_no_stages() -> None:
    text = BASE[: BASE.index("stages:")] + "stages: []\n"
    issue = only(text)
    assert issue.code == "too_short"
    assert at(issue) == (*pos(text, "[]"), "stages")


def test_a_wrong_number_type() -> None:
    text = with_indicator(
        "id: x\nfamily: process\naggregate: count\nbands:\n  levels:\n"
        "    - {name: a, lt: ten}\n    - {name: b, ge: 10}"
    )
    issue = only(text)  # the float and int branches of the union report once
    assert issue.code == "float_parsing" and "expected a number" in issue.message
    assert at(issue) == (*pos(text, "ten"), "indicators[1].bands.levels[0].lt")


# --------------------------------------------------------------------------- bands


def banded(*levels: str, direction: str = "") -> str:
    lines = ["id: x", "family: process", "aggregate: count", "bands:"]
    if direction:
        lines.append(f"  direction: {direction}")
    lines.append("  levels:")
    lines += [f"    - {lv}" for lv in levels]
    return with_indicator("\n".join(lines))


@pytest.mark.parametrize(
    ("levels", "needle", "path", "words"),
    [
        (("{name: a, lt: 5}", "{name: b, ge: 6}"), "ge: 6", "levels[1].ge", "gap between"),
        (("{name: a, lt: 6}", "{name: b, ge: 5}"), "ge: 5", "levels[1].ge", "overlap"),
        (("{name: a, le: 5}", "{name: b, ge: 5}"), "ge: 5", "levels[1].ge", "both include"),
        (("{name: a, lt: 5}", "{name: b, gt: 5}"), "gt: 5", "levels[1].gt",
         "neither includes"),
        (("{name: a, ge: 0, lt: 5}", "{name: b, ge: 5}"), "ge: 0", "levels[0].ge",
         "first band"),
        (("{name: a, lt: 5}", "{name: b, ge: 5, lt: 9}"), "lt: 9", "levels[1].lt",
         "last band"),
        (("{name: a, lt: 5}", "{name: b}"), "{name: b}", "levels[1]", "must meet"),
        (("{name: a, lt: 5}", "{name: a, ge: 5}"), "a, ge", "levels[1].name", "unique"),
    ],
    ids=["gap", "overlap", "both-inclusive", "neither-inclusive", "first-edge", "last-edge",
         "no-cut", "duplicate-name"],
)
def test_band_rules(levels: tuple[str, str], needle: str, path: str, words: str) -> None:
    text = banded(*levels)
    issue = only(text)
    assert issue.code in ("bands_invalid", "duplicate_id")
    assert words in issue.message
    line, column = pos(text, needle)
    if needle[:4] in ("ge: ", "gt: ", "lt: ", "le: "):
        column += 4  # the value of the edge
    assert at(issue) == (line, column, f"indicators[1].bands.{path}")


@pytest.mark.parametrize(
    ("level", "words"),
    [("{name: m, ge: 7, lt: 3}", "is empty"), ("{name: m, ge: 3, lt: 3}", "is empty"),
     ("{name: m, gt: 3, ge: 3, lt: 5}", "both gt and ge"),
     ("{name: m, ge: 3, lt: 5, le: 5}", "both lt and le")],
)
def test_a_band_itself(level: str, words: str) -> None:
    text = banded("{name: a, lt: 3}", level, "{name: b, ge: 5}")
    issue = only(text)
    assert issue.code == "bands_invalid" and words in issue.message
    assert at(issue) == (*pos(text, level), "indicators[1].bands.levels[1]")


def test_one_level_is_too_few() -> None:
    text = banded("{name: a}")
    issue = only(text)
    assert issue.code == "too_short" and issue.location.path == "indicators[1].bands.levels"


def test_band_scores_must_be_0_to_100() -> None:
    text = banded("{name: a, lt: 5, score: 120}", "{name: b, ge: 5}")
    issue = only(text)
    assert issue.code == "less_than_equal" and "got 120" in issue.message
    assert at(issue) == (*pos(text, "120"), "indicators[1].bands.levels[0].score")


def test_bands_in_both_directions_score_worst_to_best() -> None:
    up = Bands.model_validate({"levels": [{"name": "a", "lt": 1}, {"name": "b", "ge": 1}]})
    down = Bands.model_validate({"direction": "lower_is_better",
                                 "levels": [{"name": "a", "lt": 1}, {"name": "b", "ge": 1}]})
    assert up.level_scores() == {"a": 0.0, "b": 100.0}
    assert down.level_scores() == {"b": 0.0, "a": 100.0}
    assert Band(name="m", gt=1, le=2).describe() == "1 < x <= 2"


def test_band_edges_beyond_exact_integers_are_written_as_floats() -> None:
    # 1e308 is a whole number, but as an int it would be written with 309 digits
    assert Band(name="m", ge=1e308).describe() == "1e+308 <= x"
    assert Band(name="m", lt=-1e20, gt=-1e300).describe() == "-1e+300 < x < -1e+20"
    assert Band(name="m", ge=1e15).describe() == "1000000000000000 <= x"


# --------------------------------------------------------------------------- weights


def scored(weights: str) -> str:
    text = banded("{name: a, lt: 5}", "{name: b, ge: 5}")
    return text + f"score:\n  weights: {weights}\n"


def test_negative_weight() -> None:
    text = scored("{indicators: {x: -1}}")
    issue = only(text)
    assert issue.code == "greater_than_equal"
    assert at(issue) == (*pos(text, "-1"), "score.weights.indicators.x")


def test_all_zero_weights() -> None:
    text = scored("{indicators: {x: 0, logins_30d: 0}}")
    issue = only(text)
    assert issue.code == "weights_invalid" and "all zero" in issue.message
    assert at(issue) == (*pos(text, "{x: 0"), "score.weights.indicators")


def test_unknown_family_weight() -> None:
    text = scored("{families: {proces: 1}}")
    issue = only(text)
    assert issue.code == "literal_error"
    assert at(issue) == (*pos(text, "proces:"), "score.weights.families.proces")
    assert issue.hint is not None and issue.hint.startswith("did you mean 'process'?")


# --------------------------------------------------------------------------- windows


@pytest.mark.parametrize(
    ("window", "needle", "path"),
    [("30 days", "30 days", "indicators[1].window"),
     ("{days: 3m}", "3m", "indicators[1].window.days"),
     ("0d", " 0d", "indicators[1].window"),
     ("{days: 99999}", "99999", "indicators[1].window.days"),
     ("{days: true}", "true", "indicators[1].window.days")],
)
def test_bad_durations(window: str, needle: str, path: str) -> None:
    text = with_indicator(f"id: x\nfamily: process\naggregate: count\nwindow: {window}")
    issue = only(text)
    assert issue.code == "window_invalid"
    line, column = pos(text, needle)
    assert at(issue) == (line, column + needle.startswith(" "), path)


def test_compare_needs_a_trailing_window() -> None:
    text = with_indicator("id: x\nfamily: process\naggregate: count\n"
                          "window: {from: contract_start}\ncompare: delta")
    issue = only(text)
    assert issue.code == "window_invalid" and "trailing" in issue.message
    assert at(issue) == (*pos(text, "delta"), "indicators[1].compare")


def test_compare_is_not_defined_for_timestamps() -> None:
    text = with_indicator("id: x\nfamily: process\naggregate: last_time\nwindow: 7d\n"
                          "compare: previous")
    issue = only(text)
    assert issue.code == "unexpected_compare"
    assert at(issue) == (*pos(text, "previous"), "indicators[1].compare")


def test_of_is_needed_and_refused_by_aggregate() -> None:
    text = with_indicator("id: x\nfamily: process\naggregate: sum")
    issue = only(text)
    assert issue.code == "missing_of"
    assert at(issue) == (*pos(text, "sum"), "indicators[1].aggregate")
    text = with_indicator("id: x\nfamily: process\naggregate: count\nof: minutes")
    issue = only(text)
    assert issue.code == "unexpected_of"
    assert at(issue) == (*pos(text, "minutes", 2), "indicators[1].of")


def test_window_shorthands() -> None:
    assert Window.model_validate({"days": "4w"}).days == 28
    assert Window.model_validate({}).kind == "all"
    assert Window.model_validate({"from": "contract_start"}).kind == "anchored"
    text = with_indicator("id: x\nfamily: process\naggregate: count\nwindow: all")
    roadmap = load_text(text)
    assert isinstance(roadmap, Roadmap)
    assert roadmap.indicators[1].window.kind == "all"  # type: ignore[union-attr]


# --------------------------------------------------------------------------- actions, data


def test_resolved_when_and_hysteresis_exclude_each_other() -> None:
    text = BASE.replace("        do:", "        resolved_when: logins_30d > 5\n"
                        "        hysteresis: 1\n        do:")
    issue = only(text)
    assert issue.code == "unexpected_hysteresis"
    assert at(issue) == (*pos(text, "id: nudge"), "stages[0].actions[0]")


def test_event_columns_must_be_distinct() -> None:
    text = BASE.replace("    values: {minutes: float}", "    user: event\n"
                        "    values: {minutes: float}")
    issue = only(text)
    assert issue.code == "duplicate_id" and "event" in issue.message
    assert at(issue) == (*pos(text, "user: event"), "data.events")


def test_account_key_is_not_an_attribute() -> None:
    text = BASE.replace("{seats: int, contract_start: date}",
                        "{seats: int, contract_start: date, account_id: str}")
    issue = only(text)
    assert issue.code == "duplicate_id"
    assert issue.location.path == "data.accounts"


def test_attribute_types_are_a_literal() -> None:
    text = BASE.replace("seats: int", "seats: integer")
    issue = only(text)
    assert issue.code == "literal_error"
    assert at(issue) == (*pos(text, "integer"), "data.accounts.attributes.seats")
    assert issue.hint is not None and "'int'" in issue.hint


def test_the_validation_error_class() -> None:
    with pytest.raises(ValidationError):
        load_text(BASE + "extra: 1\n")


def test_number_text_is_exact_and_short() -> None:
    """Messages, lint, coverage, the report and the charts show a cut point one way: a whole
    number as an int, any other exactly (never rounded to six digits), 1e16 and up as a
    float."""
    from healthrules.roadmap import number_text

    assert [number_text(v) for v in (10.0, -3, 0.5, 1 / 3, 0.1234567, 1e15, 1e16, 1e308)] == [
        "10", "-3", "0.5", "0.3333333333333333", "0.1234567", "1000000000000000", "1e+16",
        "1e+308"]
