"""The evaluate, explain and demo commands, through healthrules.cli.main."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from healthrules.cli import main
from healthrules.datasets import sample
from healthrules.examples import example_path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("data")
    s = sample(40)
    s.events.write_parquet(folder / "events.parquet")
    s.accounts.write_csv(folder / "accounts.csv")
    return folder / "events.parquet", folder / "accounts.csv"


def test_evaluate_writes_the_frames(data: tuple[Path, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    events, accounts = data
    out = tmp_path / "out"
    code = main(["evaluate", str(example_path("b2b-saas")), "--events", str(events),
                 "--accounts", str(accounts), "--as-of", "2026-06-30", "--out", str(out),
                 "--format", "ndjson"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "40 accounts" in text and "wrote 6 files" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["as_of"] == "2026-06-30"
    scores = pl.read_ndjson(out / "scores.ndjson")
    assert scores.height == 40


def test_evaluate_reports_input_errors(data: tuple[Path, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    events, _ = data
    bad = tmp_path / "accounts.csv"
    bad.write_text("account_id,plan\nA1,pro\n")
    code = main(["evaluate", str(example_path("b2b-saas")), "--events", str(events),
                 "--accounts", str(bad), "--as-of", "2026-06-30", "--out", str(tmp_path / "o")])
    out = capsys.readouterr().err
    assert code == 1
    assert "missing_column" in out or "no attribute column" in out
    assert not (tmp_path / "o").exists()


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "x.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: healthrules evaluate") and "required" in err
    assert main([]) == 2


def test_explain_text_and_json(data: tuple[Path, Path],
                               capsys: pytest.CaptureFixture[str]) -> None:
    events, accounts = data
    args = ["explain", str(example_path("b2b-saas")), "--events", str(events), "--accounts",
            str(accounts), "--as-of", "2026-06-30", "--account", "A000003"]
    assert main(args) == 0
    assert "why this score" in capsys.readouterr().out
    assert main([*args, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["account"] == "A000003" and doc["roadmap"] == "b2b_saas"
    assert main([*args[:-1], "nobody"]) == 1


def test_demo_runs_and_names_its_folder(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--accounts", "60", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for needle in ("stages:", "score bands:", "top ", "evidence:", "one account explained",
                   str(out.resolve())):
        assert needle in text, needle
    assert (out / "actions.parquet").exists()


def test_internal_errors_are_one_line(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    import healthrules.cli.demo as demo

    def boom(*_: object, **__: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("healthrules.datasets.sample", boom)
    assert main(["demo"]) == 3
    err = capsys.readouterr().err
    assert "internal error" in err and "--debug" in err and "Traceback" not in err
    assert main(["--debug", "demo"]) == 3
    assert "Traceback" in capsys.readouterr().err
    assert demo.run  # the module is the one patched


def test_missing_files_and_bad_dates_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    roadmap = str(example_path("b2b-saas"))
    base = ["--accounts", "a.csv", "--out", "o"]
    assert main(["evaluate", "missing.yaml", "--events", "e", "--as-of", "2026-06-30",
                 *base]) == 2
    assert main(["evaluate", roadmap, "--events", "e", "--as-of", "2026-13-01", *base]) == 2
    assert main(["evaluate", roadmap, "--events", "nowhere.parquet", "--as-of", "2026-06-30",
                 *base]) == 2
    err = capsys.readouterr().err
    assert "roadmap file not found" in err and "not a date" in err and "nowhere" in err
    assert main(["demo", "--accounts", "0"]) == 2


def test_pack_renders_as_html() -> None:
    import healthrules as hr

    html = hr.load(example_path("goal-tracks"))._repr_html_()
    assert "applies to" in html and html.count("<table") >= 3


def test_validate_reports_tracks_that_read_different_frames(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    for name, typ in (("a", "int"), ("b", "str")):
        (tmp_path / f"{name}.yaml").write_text(
            f"id: {name}\ngoal: g\ndata: {{accounts: {{attributes: {{seats: {typ}}}}}}}\n"
            "stages: [{id: s}]\n")
    (tmp_path / "pack.yaml").write_text("kind: pack\nid: p\nroadmaps: [a.yaml, b.yaml]\n")
    assert main(["validate", str(tmp_path / "pack.yaml")]) == 1
    out = capsys.readouterr().out
    assert "pack.yaml:3:" in out and "'seats' is str here but int" in out


def test_the_summary_of_a_pack_names_the_track_of_each_stage() -> None:
    import healthrules as hr
    from healthrules.cli.evaluate import format_summary
    from healthrules.datasets import DEFAULT_AS_OF, sample
    from healthrules.examples import example_path

    data = sample(60)
    result = hr.evaluate(hr.load(example_path("goal-tracks")), data.events, data.accounts,
                         DEFAULT_AS_OF)
    line = next(x for x in format_summary(result).splitlines() if "stages:" in x)
    assert "self_sufficient/renewal" in line and "do_it_for_us/renewal" in line


def test_accounts_help_says_a_folder_of_snapshots_works(
        data: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the help of every command that reads accounts says a folder is accepted, and a
    # folder of account snapshots (one hive folder per snapshot date) is read as it says
    import datetime as dt

    import yaml

    import healthrules as hr

    for command in ("evaluate", "explain", "report", "run", "backtest"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--accounts PATH accounts file, or folder of Parquet files" in text, command
    events, accounts_csv = data
    doc = yaml.safe_load(example_path("b2b-saas").read_text(encoding="utf-8"))
    doc["data"]["accounts"]["snapshot"] = "snapshot_date"
    roadmap = tmp_path / "roadmap.yaml"
    roadmap.write_text(yaml.safe_dump(doc), encoding="utf-8")
    plain = hr.load(example_path("b2b-saas"))
    accounts = pl.read_csv(accounts_csv, try_parse_dates=True)
    folder = tmp_path / "accounts"
    for day, rows in ((dt.date(2026, 1, 1), accounts.head(10)),
                      (dt.date(2026, 6, 1), accounts)):
        part = folder / f"snapshot_date={day}"
        part.mkdir(parents=True)
        rows.write_parquet(part / "part-0.parquet")
    out = tmp_path / "out"
    code = main(["evaluate", str(roadmap), "--events", str(events), "--accounts", str(folder),
                 "--as-of", "2026-03-01", "--out", str(out), "--format", "ndjson"])
    assert code == 0, capsys.readouterr()
    scores = pl.read_ndjson(out / "scores.ndjson")
    assert scores.height == 10  # the accounts of the snapshot in force on 2026-03-01
    want = hr.evaluate(plain, pl.read_parquet(events), accounts.head(10),
                       as_of="2026-03-01").scores
    assert dict(scores.select("account_id", "score").rows()) == pytest.approx(
        dict(want.select("account_id", "score").rows()))
