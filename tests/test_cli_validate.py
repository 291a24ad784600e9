"""``healthrules validate`` and ``healthrules schema``: exit codes and output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from healthrules.cli import main
from healthrules.cli.schema import roadmap_schema

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "rules" / "examples"
FULL = EXAMPLES / "full-format"

GOOD = "id: demo\ngoal: g\nstages:\n  - id: a\n"
BAD = "id: demo\ngoal: g\nstages:\n  - id: a\n    titel: x\n    entry: nope > 1\n"


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(BAD)
    (tmp_path / "good.test.yaml").write_text("kind: test\nroadmap: good.yaml\n")
    return tmp_path


def test_the_kitchen_sink_validates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(FULL)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == "4 files checked: 4 valid, 0 invalid; 1 test file skipped"


def test_all_examples_validate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLES)]) == 0
    assert "0 invalid" in capsys.readouterr().out


def test_invalid_files_exit_1_with_positioned_lines(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(files)]) == 1
    out = capsys.readouterr().out.splitlines()
    bad = str(files / "bad.yaml")
    assert out[0] == (f"{bad}:5:5: error: unknown key 'titel' (at stages[0].titel) "
                      "[extra_forbidden]")
    assert out[1].startswith("  hint: did you mean 'title'?")
    # the model's problem and the expression's, in one run
    assert f"{bad}:6:12: error: unknown name 'nope' (at stages[0].entry) [unknown_name]" in out
    assert out[-1] == "2 files checked: 1 valid, 1 invalid (2 errors); 1 test file skipped"


def test_analysis_problems_are_printed_once_validation_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(BAD.replace("    titel: x\n", ""))
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:5:12: error: unknown name 'nope' (at stages[0].entry) [unknown_name]" in out
    assert out.strip().endswith("1 file checked: 0 valid, 1 invalid (1 error)")


def test_json_format(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "json", str(files)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"] == {"checked": 2, "valid": 1, "invalid": 1, "skipped": 1,
                              "errors": 2, "warnings": 0}
    assert [(Path(f["file"]).name, f["status"]) for f in doc["files"]] == [
        ("bad.yaml", "invalid"), ("good.test.yaml", "skipped"), ("good.yaml", "valid")]
    issue, name = doc["issues"]
    assert name["code"] == "unknown_name" and name["path"] == "stages[0].entry"
    assert issue["code"] == "extra_forbidden"
    assert (issue["line"], issue["column"], issue["path"]) == (5, 5, "stages[0].titel")
    assert set(issue) == {"code", "severity", "file", "line", "column", "path", "message",
                          "hint", "related"}


def test_a_missing_path_is_a_usage_error(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_no_path_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 2
    assert "PATH" in capsys.readouterr().err


def test_an_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "no rule file (*.yaml or *.yml) under" in captured.err


def test_unreadable_yaml_is_invalid_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.yaml").write_bytes(b"id: \xff\n")
    (tmp_path / "y.yaml").write_text("a: [\n")
    assert main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "[not_utf8]" in out and "[yaml_syntax]" in out


def test_help_has_examples_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("validate", "schema"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
        out = capsys.readouterr().out
        assert "examples:" in out and "exit codes:" in out


def test_internal_errors_exit_3(monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    def boom(paths: object) -> object:
        raise RuntimeError("kaboom")

    monkeypatch.setattr("healthrules.cli.validate.check_files", boom)
    assert main(["validate", str(FULL)]) == 3
    err = capsys.readouterr().err
    assert "internal error" in err and "kaboom" in err and "--debug" in err
    assert main(["--debug", "validate", str(FULL)]) == 3
    assert "Traceback" in capsys.readouterr().err


# --------------------------------------------------------------------------- schema


def test_schema_prints_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"].startswith("healthrules")
    assert {r["$ref"] for r in schema["anyOf"]} == {
        "#/$defs/Roadmap", "#/$defs/IndicatorLibrary", "#/$defs/Pack"}
    assert "source" not in schema["$defs"]["Roadmap"]["properties"]
    assert "loaded" not in schema["$defs"]["Pack"]["properties"]


def test_schema_of_one_kind_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "roadmap.schema.json"
    assert main(["schema", "--kind", "roadmap", "-o", str(out)]) == 0
    schema = json.loads(out.read_text())
    assert schema["title"] == "healthrules roadmap"
    assert "stages" in schema["required"]


def test_the_committed_schema_is_up_to_date() -> None:
    committed = json.loads((ROOT / "docs" / "healthrules.schema.json").read_text())
    fix = "regenerate it: healthrules schema -o docs/healthrules.schema.json"
    assert committed == roadmap_schema(), fix


def test_every_example_file_matches_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from healthrules.loader import Positions, iter_rule_files

    schema = roadmap_schema()
    validator = jsonschema.Draft202012Validator(schema)
    for path in iter_rule_files([EXAMPLES]):
        data = Positions.from_file(path).value("")
        if data.get("kind") == "test":
            continue
        errors = list(validator.iter_errors(data))
        assert not errors, f"{path}: {errors[0].message}"
