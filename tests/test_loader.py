"""The loader: reading YAML safely, positions of every problem, imports, packs, many files."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

import healthrules as hr
from healthrules.errors import (
    Issue,
    ReferenceError_,
    RoadmapError,
    SyntaxError_,
    ValidationError,
)
from healthrules.loader import (
    MAX_FILE_BYTES,
    Positions,
    check_files,
    check_paths,
    iter_rule_files,
    load,
    load_text,
)
from healthrules.roadmap import IndicatorLibrary, Pack, Roadmap

EXAMPLE = Path(__file__).resolve().parent.parent / "rules" / "examples" / "full-format"

BASE = textwrap.dedent(
    """\
    id: demo
    goal: Customers use the product weekly
    data:
      accounts:
        attributes:
          plan: str
          seats: int
          contract_start: date
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
    stages:
      - id: onboarding
        entry: days_since(contract_start) < 90
        actions:
          - id: nudge
            kind: challenge
            when: logins_30d < 3
            do: "Only {logins_30d} logins: call"
      - id: operation
    """
)


def pos(text: str, needle: str, nth: int = 1) -> tuple[int, int]:
    """1-based line and column of the nth occurrence of ``needle`` in ``text``."""
    index = -1
    for _ in range(nth):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def issues_of(text: str, **kwargs: object) -> list[Issue]:
    with pytest.raises(RoadmapError) as info:
        load_text(text, **kwargs)  # type: ignore[arg-type]
    return info.value.errors()


def only(text: str, **kwargs: object) -> Issue:
    (issue,) = issues_of(text, **kwargs)
    return issue


def where(issue: Issue) -> tuple[int | None, int | None, str]:
    return issue.location.line, issue.location.column, issue.location.path


# --------------------------------------------------------------------------- the happy path


def test_base_loads() -> None:
    roadmap = load_text(BASE, source="demo.yaml")
    assert isinstance(roadmap, Roadmap)
    assert roadmap.source == "demo.yaml"
    assert [s.id for s in roadmap.stages] == ["onboarding", "operation"]


def test_load_sets_source_to_the_path(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(BASE, encoding="utf-8")
    roadmap = load(path)
    assert isinstance(roadmap, Roadmap) and roadmap.source == str(path)
    assert hr.load(path) == roadmap


def test_the_kitchen_sink_example_loads() -> None:
    pack = load(EXAMPLE / "pack.yaml")
    assert isinstance(pack, Pack)
    assert pack.source == str(EXAMPLE / "pack.yaml")
    assert [r.id for r in pack.loaded] == ["self_serve", "managed"]
    self_serve = pack.loaded[0]
    # the imported indicators come first, in import order
    assert [i.id for i in self_serve.indicators[:5]] == [
        "logins_30d", "active_users_30d", "key_user_logins_30d", "key_user_logins_change",
        "seat_utilisation",
    ]
    assert self_serve.source == os.path.normpath(EXAMPLE / "roadmap.yaml")
    assert check_paths([EXAMPLE]) == []


def test_a_library_loads_as_text_but_not_with_load(tmp_path: Path) -> None:
    lib = (EXAMPLE / "indicators.yaml").read_text(encoding="utf-8")
    assert isinstance(load_text(lib), IndicatorLibrary)
    with pytest.raises(ValidationError, match="indicator library"):
        load(EXAMPLE / "indicators.yaml")


# --------------------------------------------------------------------------- YAML failures


def test_yaml_syntax_error_has_its_line_and_column() -> None:
    text = "id: demo\ngoal: [unclosed\nstages: []\n"
    issue = only(text)
    assert issue.code == "yaml_syntax"
    assert issue.location.line == 3 and issue.location.column == 7
    with pytest.raises(SyntaxError_):
        load_text(text)


def test_tab_indentation_is_a_syntax_error() -> None:
    issue = only("id: demo\n\tgoal: x\n")
    assert (issue.code, issue.location.line, issue.location.column) == ("yaml_syntax", 2, 1)


@pytest.mark.parametrize("text", ["", "   \n\n", "# just a comment\n", "---\n"])
def test_empty_file(text: str) -> None:
    issue = only(text, source="e.yaml")
    assert issue.code == "empty_file"
    assert (issue.location.file, issue.location.line) == ("e.yaml", 1)


@pytest.mark.parametrize(
    ("text", "what"),
    [("- a\n- b\n", "a list"), ("just text\n", "the text 'just text'"), ("42\n", "the number 42")],
)
def test_top_level_must_be_a_mapping(text: str, what: str) -> None:
    issue = only(text)
    assert issue.code == "not_a_mapping"
    assert what in issue.message
    assert (issue.location.line, issue.location.column) == (1, 1)


def test_duplicate_key_is_reported_at_the_second_with_the_first_related() -> None:
    text = BASE.replace("  - id: operation\n", "  - id: operation\n    title: a\n    title: b\n")
    issue = only(text)
    assert issue.code == "duplicate_key"
    assert where(issue) == (*pos(text, "title: b"), "stages[1].title")
    assert issue.related is not None
    assert (issue.related.line, issue.related.column) == pos(text, "title: a")


def test_duplicate_key_and_validation_errors_come_together() -> None:
    text = "id: demo\nid: again\ngoal: g\nstages: [{id: a, titel: x}]\n"
    codes = sorted(i.code for i in issues_of(text))
    assert codes == ["duplicate_key", "extra_forbidden"]


def test_not_utf8_says_the_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"id: demo\ngoal: caf\xe9\n")
    with pytest.raises(SyntaxError_) as info:
        load(path)
    (issue,) = info.value.errors()
    assert issue.code == "not_utf8"
    assert "byte offset 18" in issue.message and "0xe9" in issue.message
    assert (issue.location.line, issue.location.column) == (2, 10)


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode())
    assert isinstance(load(path), Roadmap)


def test_control_characters_are_rejected_with_their_position() -> None:
    issue = only("id: demo\ngoal: a\x07b\n")
    assert issue.code == "yaml_syntax" and "U+0007" in issue.message
    assert (issue.location.line, issue.location.column) == (2, 8)


def test_huge_file_is_rejected_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as fh:  # a sparse file: nothing is written, nothing must be read
        fh.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(SyntaxError_) as info:
        load(path)
    assert [i.code for i in info.value.errors()] == ["file_too_large"]


def test_huge_text_is_rejected() -> None:
    issue = only("#" * (MAX_FILE_BYTES + 1))
    assert issue.code == "file_too_large"


def test_alias_bomb_is_stopped() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for name, prev in zip("bcdefgh", "abcdefg", strict=True):
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]")
    issue = only("\n".join(lines) + "\n")
    assert issue.code == "file_too_large"
    assert "aliases" in issue.message
    assert issue.location.line is not None


def test_recursive_alias_is_an_error() -> None:
    issue = only("id: demo\nloop: &l [1, *l]\n")
    assert issue.code == "yaml_syntax" and "recursive" in issue.message
    assert (issue.location.line, issue.location.column) == pos("id: demo\nloop: &l [1, *l]\n",
                                                               "&l")


@pytest.mark.parametrize(
    "text",
    ["a: " + "[" * 200 + "]" * 200 + "\n", "".join("  " * i + f"k{i}:\n" for i in range(100))],
    ids=["flow", "block"],
)
def test_deep_nesting_is_stopped(text: str) -> None:
    issue = only(text)
    assert issue.code == "yaml_too_deep"
    assert issue.location.line is not None


def test_deep_nesting_through_aliases_is_stopped() -> None:
    lines = ["a0: &a0 [1]"]
    lines += [f"a{i}: &a{i} [[[[*a{i - 1}]]]]" for i in range(1, 20)]
    issue = only("\n".join(lines) + "\n")
    assert issue.code == "yaml_too_deep"


@pytest.mark.parametrize(
    ("value", "tag"),
    [("!!python/object:os.system x", "!!python/object:os.system"), ("!custom x", "!custom"),
     ("!!binary aGk=", "!!binary"), ("!!set {a: null}", "!!set")],
)
def test_unknown_tags_are_errors_not_crashes(value: str, tag: str) -> None:
    text = BASE.replace("goal: Customers use the product weekly", f"goal: {value}")
    issue = only(text)
    assert issue.code == "unsupported_tag"
    assert tag in issue.message
    assert where(issue) == (*pos(text, value), "goal")


def test_standard_tags_are_read() -> None:
    text = BASE.replace("id: demo", "id: !!str demo\nversion: !!str 3")
    roadmap = load_text(text)
    assert isinstance(roadmap, Roadmap) and roadmap.version == "3"


def test_several_documents_are_a_syntax_error() -> None:
    issue = only("id: a\n---\nid: b\n")
    assert issue.code == "yaml_syntax" and issue.location.line == 2


def test_a_list_as_mapping_key_is_an_error() -> None:
    issues = issues_of("? [a]\n: b\nid: demo\ngoal: g\nstages: [{id: s}]\n")
    assert [i.code for i in issues] == ["yaml_syntax"]
    assert "mapping key" in issues[0].message


# --------------------------------------------------------------------------- YAML 1.1 quirks


@pytest.mark.parametrize("word", ["on", "off", "yes", "no", "y", "n"])
def test_yaml11_booleans_stay_text(word: str) -> None:
    text = BASE.replace("  - id: operation\n", f"  - id: operation\n    title: {word}\n")
    roadmap = load_text(text)
    assert isinstance(roadmap, Roadmap)
    assert roadmap.stages[1].title == word


def test_on_as_a_key_is_an_unknown_key_named_on() -> None:
    text = BASE + "on: push\n"
    issue = only(text)
    assert issue.code == "extra_forbidden" and issue.location.path == "on"
    assert "'on'" in issue.message


def test_dates_and_sexagesimals_stay_text() -> None:
    text = BASE.replace("id: demo", "id: demo\nversion: 2026-01-01\ntitle: 1:30")
    roadmap = load_text(text)
    assert isinstance(roadmap, Roadmap)
    assert roadmap.version == "2026-01-01" and roadmap.title == "1:30"


def test_a_number_where_text_is_expected_gets_a_quoting_hint() -> None:
    text = BASE.replace("id: demo", "id: demo\nversion: 2")
    issue = only(text)
    assert issue.code == "string_type"
    assert where(issue) == (*pos(text, "2\n"), "version")
    assert issue.hint is not None and 'version: "2"' in issue.hint


def test_nan_and_infinity_are_rejected() -> None:
    text = BASE.replace("{name: low, lt: 5}", "{name: low, lt: .nan}").replace(
        "{name: high, ge: 5}", "{name: high, ge: .inf}"
    )
    issues = issues_of(text)
    assert [(i.code, i.location.path) for i in issues] == [
        ("finite_number", "indicators[0].bands.levels[0].lt"),
        ("finite_number", "indicators[0].bands.levels[1].ge"),
    ]
    assert where(issues[0])[:2] == pos(text, ".nan")


def test_merge_keys_work() -> None:
    text = BASE.replace(
        "      - id: operation\n",
        "      - &op {id: operation, title: Operation}\n",
    ).replace("stages:\n", "stages:\n")
    text += "actions:\n  - <<: {id: a2, kind: positive, when: logins_30d > 9}\n    do: hi\n"
    roadmap = load_text(text)
    assert isinstance(roadmap, Roadmap)
    assert roadmap.actions[0].id == "a2" and roadmap.actions[0].do == "hi"


# --------------------------------------------------------------------------- kinds


def test_unknown_kind_has_did_you_mean() -> None:
    text = "kind: roadmp\n" + BASE
    issue = only(text)
    assert issue.code == "literal_error"
    assert where(issue) == (1, 7, "kind")
    assert issue.hint is not None and "did you mean 'roadmap'?" in issue.hint


def test_a_test_file_is_not_loaded() -> None:
    issue = only("kind: test\nroadmap: r.yaml\n")
    assert "test file" in issue.message


def test_loader_fields_are_not_part_of_the_format() -> None:
    issue = only(BASE + "source: elsewhere.yaml\n")
    assert issue.code == "extra_forbidden" and issue.location.path == "source"


# --------------------------------------------------------------------------- rendering


def test_str_of_the_error_reads_like_a_compiler_message() -> None:
    text = BASE.replace("    entry:", "    titel: x\n    entry:")
    with pytest.raises(ValidationError) as info:
        load_text(text, source="r.yaml")
    line, col = pos(text, "titel")
    assert str(info.value).splitlines() == [
        f"r.yaml:{line}:{col}: error: unknown key 'titel' (at stages[0].titel) "
        "[extra_forbidden]",
        "  hint: did you mean 'title'? allowed keys: achievement, actions, description, entry, "
        "id, tasks, title",
    ]


def test_all_problems_of_a_file_come_at_once_sorted_by_position() -> None:
    text = BASE.replace("kind: challenge", "kind: risk").replace(
        "family: process", "family: proces"
    ) + "extra: 1\n"
    issues = issues_of(text)
    assert [i.code for i in issues] == ["literal_error", "literal_error", "extra_forbidden"]
    lines = [i.location.line or 0 for i in issues]
    assert lines == sorted(lines)
    assert isinstance(issues[0], Issue)


def test_error_class_follows_the_kind_of_problem() -> None:
    with pytest.raises(ReferenceError_):
        load_text(BASE.replace("logins_30d < 3", "logins_3d < 3"))
    mixed = BASE.replace("id: demo", "id: demo\nid: again") + "extra: 1\n"
    with pytest.raises(RoadmapError) as info:
        load_text(mixed)
    assert type(info.value) is RoadmapError


# --------------------------------------------------------------------------- imports

LIB = textwrap.dedent(
    """\
    kind: library
    id: shared
    indicators:
      - id: active_days
        family: process
        aggregate: active_days
        window: 30d
      - id: per_seat
        family: process
        expr: active_days / seatz
    """
)


def _with_import(tmp_path: Path, lib: str = LIB, entry: str = "{path: lib.yaml}") -> Path:
    (tmp_path / "lib.yaml").write_text(lib, encoding="utf-8")
    path = tmp_path / "r.yaml"
    path.write_text(BASE.replace("indicators:\n", f"imports:\n  - {entry}\nindicators:\n", 1),
                    encoding="utf-8")
    return path


def test_imported_indicators_go_first(tmp_path: Path) -> None:
    path = _with_import(tmp_path, LIB.replace("seatz", "seats"))
    roadmap = load(path)
    assert isinstance(roadmap, Roadmap)
    assert [i.id for i in roadmap.indicators] == ["active_days", "per_seat", "logins_30d"]


def test_problems_in_imported_indicators_are_reported_in_the_library(tmp_path: Path) -> None:
    path = _with_import(tmp_path)
    with pytest.raises(ReferenceError_) as info:
        load(path)
    (issue,) = info.value.errors()
    assert issue.code == "unknown_name" and issue.hint == "did you mean 'seats'?"
    assert issue.location.file == os.path.normpath(tmp_path / "lib.yaml")
    assert where(issue) == (*pos(LIB, "seatz"), "indicators[1].expr")


def test_import_of_a_missing_file(tmp_path: Path) -> None:
    path = _with_import(tmp_path, entry="{path: nowhere.yaml}")
    with pytest.raises(ReferenceError_) as info:
        load(path)
    (issue,) = info.value.errors()
    text = path.read_text()
    assert issue.code == "import_failed" and "nowhere.yaml" in issue.message
    assert where(issue) == (*pos(text, "nowhere.yaml"), "imports[0].path")


def test_import_of_an_unknown_indicator(tmp_path: Path) -> None:
    path = _with_import(tmp_path, LIB.replace("seatz", "seats"),
                        "{path: lib.yaml, indicators: [active_days, per_seats]}")
    with pytest.raises(ReferenceError_) as info:
        load(path)
    (issue,) = info.value.errors()
    assert issue.code == "unknown_indicator"
    assert issue.hint == "did you mean 'per_seat'?"
    assert where(issue) == (*pos(path.read_text(), "per_seats"), "imports[0].indicators[1]")


def test_local_indicator_with_an_imported_id_is_a_duplicate(tmp_path: Path) -> None:
    lib = LIB.replace("seatz", "seats").replace("id: active_days", "id: logins_30d").replace(
        "active_days / seats", "logins_30d / seats")
    path = _with_import(tmp_path, lib)
    with pytest.raises(RoadmapError) as info:
        load(path)
    (issue,) = info.value.errors()
    text = path.read_text()
    assert issue.code == "duplicate_id"
    assert issue.location.file == str(path)
    assert where(issue) == (*pos(text, "logins_30d"), "indicators[0].id")
    assert issue.related is not None
    assert issue.related.file == os.path.normpath(tmp_path / "lib.yaml")
    assert (issue.related.line, issue.related.column) == pos(lib, "logins_30d")


def test_the_same_indicator_imported_twice(tmp_path: Path) -> None:
    (tmp_path / "lib.yaml").write_text(LIB.replace("seatz", "seats"), encoding="utf-8")
    text = BASE.replace(
        "indicators:\n",
        "imports:\n  - {path: lib.yaml, indicators: [active_days]}\n"
        "  - {path: lib.yaml, indicators: [active_days]}\nindicators:\n", 1)
    issue = only(text, base_dir=tmp_path)
    assert issue.code == "duplicate_id"
    assert where(issue) == (*pos(text, "active_days", 2), "imports[1].indicators[0]")
    assert issue.related is not None
    assert (issue.related.line, issue.related.column) == pos(text, "active_days")


def test_import_of_a_roadmap_and_of_itself(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text(BASE, encoding="utf-8")
    issue = only(BASE.replace("indicators:\n", "imports: [{path: other.yaml}]\nindicators:\n"),
                 base_dir=tmp_path)
    assert issue.code == "import_failed" and "not an indicator library" in issue.message
    path = tmp_path / "self.yaml"
    path.write_text(BASE.replace("indicators:\n", "imports: [{path: self.yaml}]\nindicators:\n"))
    with pytest.raises(ReferenceError_, match="itself"):
        load(path)


def test_a_broken_library_fails_the_import_and_shows_its_own_errors(tmp_path: Path) -> None:
    path = _with_import(tmp_path, LIB.replace("family: process", "family: proces", 1))
    with pytest.raises(RoadmapError) as info:
        load(path)
    codes = {(i.code, os.path.basename(i.location.file or "")) for i in info.value.errors()}
    assert codes == {("import_failed", "r.yaml"), ("literal_error", "lib.yaml")}


def test_a_library_alone_is_checked_for_duplicates_and_expression_syntax() -> None:
    lib = LIB + "  - id: per_seat\n    family: process\n    expr: 'a +'\n"
    issues = issues_of(lib)
    assert [(i.code, i.location.path) for i in issues] == [
        ("duplicate_id", "indicators[2].id"), ("expr_syntax", "indicators[2].expr")]


# --------------------------------------------------------------------------- packs


def _pack(tmp_path: Path, *refs: str) -> Path:
    path = tmp_path / "pack.yaml"
    path.write_text("kind: pack\nid: p\nroadmaps:\n" + "".join(f"  - {r}\n" for r in refs))
    return path


def test_a_pack_loads_its_roadmaps_in_order(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(BASE.replace("id: demo", "id: a"))
    (tmp_path / "b.yaml").write_text(BASE.replace("id: demo", "id: b"))
    pack = load(_pack(tmp_path, "b.yaml", "a.yaml"))
    assert isinstance(pack, Pack)
    assert [r.id for r in pack.loaded] == ["b", "a"]
    assert pack.loaded[0].source == os.path.normpath(tmp_path / "b.yaml")


def test_pack_problems_are_reported_in_their_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(BASE.replace("id: demo", "id: a"))
    (tmp_path / "bad.yaml").write_text(BASE + "extra: 1\n")
    path = _pack(tmp_path, "a.yaml", "missing.yaml", "bad.yaml", "a.yaml")
    with pytest.raises(RoadmapError) as info:
        load(path)
    got = sorted((os.path.basename(i.location.file or ""), i.code, i.location.path)
                 for i in info.value.errors())
    assert got == [
        ("bad.yaml", "extra_forbidden", "extra"),
        ("pack.yaml", "duplicate_id", "roadmaps[3]"),
        ("pack.yaml", "import_failed", "roadmaps[1]"),
        ("pack.yaml", "import_failed", "roadmaps[2]"),
    ]


def test_a_pack_cannot_list_a_pack(tmp_path: Path) -> None:
    path = _pack(tmp_path, "pack.yaml")
    with pytest.raises(ReferenceError_, match="itself"):
        load(path)
    (tmp_path / "inner.yaml").write_text("kind: pack\nid: q\nroadmaps: [pack.yaml]\n")
    path = _pack(tmp_path, "inner.yaml")
    with pytest.raises(ReferenceError_, match="not a roadmap"):
        load(path)


# --------------------------------------------------------------------------- many files


def test_check_files_and_paths(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "good.yml").write_text(BASE)
    (tmp_path / "bad.yaml").write_text(BASE + "extra: 1\n")
    (tmp_path / "r.test.yaml").write_text("kind: test\nroadmap: good.yml\n")
    (tmp_path / "notes.txt").write_text("not yaml")
    (tmp_path / ".hidden.yaml").write_text("::")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_rule_files([tmp_path])]
    assert found == ["bad.yaml", "r.test.yaml", "sub/good.yml"]
    results = check_files([tmp_path])
    assert [(Path(r.path).name, r.status, r.kind) for r in results] == [
        ("bad.yaml", "invalid", "roadmap"),
        ("r.test.yaml", "skipped", "test"),
        ("good.yml", "valid", "roadmap"),
    ]
    issues = check_paths([tmp_path, tmp_path / "missing.yaml"])
    assert [(Path(i.location.file or "").name, i.code) for i in issues] == [
        ("bad.yaml", "extra_forbidden"), ("missing.yaml", "file_not_found")]


def test_positions_for_tools() -> None:
    p = Positions.from_text(BASE, source="r.yaml")
    loc = p.where("stages[0].actions[0].when")
    assert (loc.file, loc.line, loc.column) == ("r.yaml", *pos(BASE, "logins_30d < 3"))
    assert p.where("stages[0].actions", key=True).column == pos(BASE, "actions:")[1]
    assert p.expr_where("stages[0].actions[0].when", 14).column == pos(BASE, "3\n")[1]
    assert p.value("stages[1].id") == "operation"
    assert p.value("stages[9]") is None
    with pytest.raises(SyntaxError_):
        Positions.from_text("a: [")
