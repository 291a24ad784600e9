"""``healthrules lint`` through healthrules.cli.main: output format, exit codes, options."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from healthrules.cli import main
from healthrules.lint import REGISTRY

ROOT = Path(__file__).resolve().parents[1]

WARNS = """\
id: demo
goal: {text: g, indicator: roi}
indicators:
  - {id: roi, family: outcome, aggregate: count,
     bands: {levels: [{name: no, lt: 1}, {name: yes, ge: 1}]}}
stages:
  - id: s
    achievement: {text: t, when: roi >= 1}
    actions:
      - {id: a, kind: challenge, when: "roi < 1", do: "{roi}", channel: mail}
"""

ERRORS = WARNS.replace('when: "roi < 1"', 'when: "roi < 0"')


def _file(tmp_path: Path, text: str, name: str = "roadmap.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["lint", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_warnings_exit_0_and_print_positions(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, WARNS)
    code, out, _ = _run([str(path)], capsys)
    assert code == 0
    lines = out.splitlines()
    assert f"{path}:10:9: warning: action 'a' has no owner (HR503)" in lines
    assert lines[-1] == "0 errors, 1 warning, 0 infos in 1 file"


def test_strict_makes_warnings_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, WARNS)
    assert _run([str(path), "--strict"], capsys)[0] == 1


def test_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, ERRORS)
    code, out, _ = _run([str(path)], capsys)
    assert code == 1
    assert (f"{path}:10:41: error: the condition of action 'a' is never true: `roi < 0` is "
            "never true: roi is a count of events, never negative (HR501)") in out


def test_invalid_roadmap_exits_1_with_load_errors(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, "id: demo\ngoal: g\nstages: [{id: a, titel: x}]\n")
    code, out, _ = _run([str(path)], capsys)
    assert code == 1
    assert f"{path}:3:18: error: unknown key 'titel' (extra_forbidden)" in out
    assert out.splitlines()[-1] == "1 error, 0 warnings, 0 infos in 1 file (1 not loaded)"


def test_select_and_disable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, ERRORS)
    code, out, _ = _run([str(path), "--disable", "actions.never_true,HR503"], capsys)
    assert code == 0 and "HR501" not in out and "HR503" not in out
    code, out, _ = _run([str(path), "--select", "HR503", "--select", "actions.no_channel"],
                        capsys)
    assert code == 0 and "HR503" in out and "HR501" not in out


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, WARNS)
    code, _, err = _run([str(path), "--disable", "actions.no_owners"], capsys)
    assert code == 2 and "did you mean 'actions.no_owner'?" in err
    assert _run([], capsys)[0] == 2
    assert _run([str(tmp_path / "missing.yaml")], capsys)[0] == 2
    assert _run([str(path), "--max-scored-indicators", "0"], capsys)[0] == 2
    assert main(["lint", str(path), "--format", "xml"]) == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def test_json_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, ERRORS)
    code, out, _ = _run([str(path), "--format", "json"], capsys)
    assert code == 1
    records = json.loads(out)
    assert {r["code"] for r in records} == {"HR501", "HR503"}
    first = records[0]
    assert set(first) == {"code", "check", "severity", "file", "line", "column", "path",
                          "message", "hint", "related"}
    assert (first["code"], first["check"], first["line"], first["path"]) == (
        "HR503", "actions.no_owner", 10, "stages[0].actions[0]")


def test_max_scored_indicators(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, WARNS)
    assert "HR401" not in _run([str(path)], capsys)[1]
    code, out, _ = _run([str(path), "--select", "HR401", "--max-scored-indicators", "1",
                         "--strict"], capsys)
    assert "HR401" not in out and code == 0
    text = WARNS.replace("stages:", """\
  - {id: b, family: process, aggregate: count,
     bands: {levels: [{name: no, lt: 1}, {name: yes, ge: 1}]}}
stages:""")
    code, out, _ = _run([str(_file(tmp_path, text)), "--select", "HR401",
                         "--max-scored-indicators", "1"], capsys)
    assert "weighs 2 indicators, more than the 1" in out


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--list"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == len(REGISTRY)
    assert lines[0].split()[:3] == ["HR001", "lint.unknown_check", "warning"]
    code, out, _ = _run(["--list", "--format", "json"], capsys)
    assert json.loads(out)[0]["name"] == "lint.unknown_check"


def test_examples_have_no_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run([str(ROOT / "rules" / "examples")], capsys)
    assert code == 0, out
    assert out.splitlines()[-1].startswith("0 errors")


def test_no_files_found_is_a_usage_error(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run([str(tmp_path)], capsys)
    assert code == 2 and out == ""
    assert "no rule file (*.yaml or *.yml) under" in err


@pytest.mark.parametrize("select", ["", ",", " "])
def test_a_select_that_names_no_check_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], select: str) -> None:
    # it ran no check and reported every file clean (exit 0): `--select "$CHECKS"` with an
    # empty variable passed a CI gate without linting anything
    path = tmp_path / "r.yaml"
    path.write_text("id: r\ngoal: g\nstages: [{id: s, actions: [{id: a, kind: challenge, "
                    "when: 'score > 100', do: x}]}]\n")
    assert main(["lint", str(path)]) == 1  # HR501, an error
    capsys.readouterr()
    assert main(["lint", str(path), "--select", select]) == 2
    err = capsys.readouterr().err
    assert "--select names no check" in err
