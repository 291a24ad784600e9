"""The exit-code contract of every command, table-driven: 0 ok, 1 not clean, 2 usage, and 3
only for a bug. Each case runs ``main`` with one kind of bad argument and checks the code,
that the diagnostic went to standard error and what it says."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import polars as pl
import pytest

from healthrules.cli import main

ROADMAP = {
    "id": "lc", "goal": "g",
    "data": {"events": {"user": None, "values": {"x": "float"}},
             "accounts": {"attributes": {"start": "date"}}},
    "indicators": [{"id": "x", "family": "process", "aggregate": "max", "of": "x",
                    "window": "1d",
                    "bands": {"levels": [{"name": "low", "lt": 3}, {"name": "ok", "ge": 3}]}}],
    "stages": [{"id": "early", "entry": "as_of < start"}, {"id": "late"}],
    "actions": [{"id": "fix", "kind": "challenge", "when": "x < 3", "do": "x is {x}"}],
}
AS_OF = "2026-03-04"


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a roadmap, events, accounts, outcomes, a test file and odd paths."""
    return workspace(tmp_path_factory.mktemp("contract"))


def workspace(d: Path) -> Path:
    """Fill ``d`` with the files the cases use (shared with the store-fault tests)."""
    (d / "roadmap.yaml").write_text(json.dumps(ROADMAP))
    rows = [(acc, dt.datetime(2026, 3, k, 12), float(v)) for acc, vs in
            {"a": [2, 2, 5, 5], "b": [5, 5, 1, 1]}.items() for k, v in enumerate(vs, 1)]
    pl.DataFrame(rows, schema={"account_id": pl.String, "timestamp": pl.Datetime("us"),
                               "x": pl.Float64}, orient="row").with_columns(
        pl.lit("ping").alias("event")).write_parquet(d / "events.parquet")
    pl.DataFrame({"account_id": ["a", "b"], "start": [dt.date(2026, 3, 3)] * 2}).write_parquet(
        d / "accounts.parquet")
    pl.DataFrame({"account_id": ["a"], "renewal_date": [dt.date(2026, 3, 4)],
                  "outcome": ["renewed"], "arr": [10.0]}).write_csv(d / "outcomes.csv")
    (d / "afile").write_text("not a folder\n")
    (d / "empty").mkdir()
    mixed = d / "mixed"
    mixed.mkdir()
    pl.DataFrame({"account_id": ["a"]}).write_parquet(mixed / "part-0.parquet")
    (mixed / "part-1.parquet").write_text("not parquet")
    (mixed / "notes.csv").write_text("x\n1\n")
    tests = d / "tests"
    tests.mkdir()
    (tests / "t.test.yaml").write_text(
        "kind: test\nroadmap: ../roadmap.yaml\ncases: []\n")
    readonly = d / "readonly"
    readonly.mkdir()
    readonly.chmod(stat.S_IRUSR | stat.S_IXUSR)
    return d


def _inputs(w: Path) -> list[str]:
    return ["--events", str(w / "events.parquet"), "--accounts", str(w / "accounts.parquet")]


def _evaluate(w: Path, *extra: str, as_of: str = AS_OF, out: str = "out") -> list[str]:
    return ["evaluate", str(w / "roadmap.yaml"), *_inputs(w), "--as-of", as_of,
            "--out", out if out.startswith("/") else str(w / out), *extra]


def _run(w: Path, *extra: str, as_of: str = AS_OF, state: str = "state.db") -> list[str]:
    return ["run", str(w / "roadmap.yaml"), "--state", str(w / state), *_inputs(w),
            "--as-of", as_of, *extra]


def _backtest(w: Path, *extra: str, start: str = "2026-03-01",
              end: str = "2026-03-04") -> list[str]:
    return ["backtest", str(w / "roadmap.yaml"), *_inputs(w), "--outcomes",
            str(w / "outcomes.csv"), "--start", start, "--end", end, "--lookback", "3",
            *extra]


# (case id, argv builder, exit code, words the standard error must contain)
CASES = [
    # output paths: read-only folder, existing file, under a file, a device, a folder
    ("evaluate --out existing file", lambda w: _evaluate(w, out="afile"), 2,
     "is an existing file"),
    ("evaluate --out under a file", lambda w: _evaluate(w, out="afile/sub"), 2, "is a file"),
    ("evaluate --out a device", lambda w: _evaluate(w, out="/dev/null"), 2,
     "is an existing file"),
    ("demo --out existing file", lambda w: ["demo", "--accounts", "5", "--out",
                                            str(w / "afile")], 2, "is an existing file"),
    ("schema -o a folder", lambda w: ["schema", "-o", str(w / "empty")], 2, "is a folder"),
    ("schema -o a device", lambda w: ["schema", "-o", "/dev/null"], 2, "not a regular file"),
    ("schema -o under a file", lambda w: ["schema", "-o", str(w / "afile" / "s.json")], 2,
     "is a file"),
    ("test --junit-xml a folder", lambda w: ["test", str(w / "tests"), "--junit-xml",
                                             str(w / "empty")], 2, "is a folder"),
    ("test --junit-xml under a file", lambda w: ["test", str(w / "tests"), "--junit-xml",
                                                 str(w / "afile" / "j.xml")], 2, "is a file"),
    ("run --ndjson a folder", lambda w: _run(w, "--ndjson", str(w / "empty"),
                                             state="s1.db"), 2, "is a folder"),
    ("run --ndjson a device", lambda w: _run(w, "--ndjson", "/dev/null", state="s1.db"), 2,
     "not a regular file"),
    ("run --ndjson under a file", lambda w: _run(w, "--ndjson", str(w / "afile" / "c.nd"),
                                                 state="s1.db"), 2, "is a file"),
    ("run --out existing file", lambda w: _run(w, "--out", str(w / "afile"), state="s1.db"),
     2, "is an existing file"),
    ("backtest --out existing file", lambda w: _backtest(w, "--out", str(w / "afile")), 2,
     "is an existing file"),
    # dates and options
    ("run --as-of garbage", lambda w: _run(w, as_of="garbage"), 2, "not a date"),
    ("run --as-of with a time", lambda w: _run(w, as_of="2026-06-30T10:00"), 2,
     "whole days only"),
    ("run --expires garbage", lambda w: _run(w, "--pin", "a", "score", "50", "--reason", "r",
                                             "--expires", "garbage"), 2, "not a date"),
    ("run --expires before --as-of", lambda w: _run(w, "--pin", "a", "score", "50",
                                                    "--reason", "r", "--expires",
                                                    "2026-03-01"), 2, "must be after"),
    ("run --pin without --reason", lambda w: _run(w, "--pin", "a", "score", "5"), 2,
     "needs --reason"),
    ("run --pin nan", lambda w: _run(w, "--pin", "a", "score", "nan", "--reason", "r",
                                     "--expires", "2026-04-01"), 2, "not a finite number"),
    ("run --pin inf", lambda w: _run(w, "--pin", "a", "score", "inf", "--reason", "r",
                                     "--expires", "2026-04-01"), 2, "not a finite number"),
    ("run --pin 1e400", lambda w: _run(w, "--pin", "a", "score", "1e400", "--reason", "r",
                                       "--expires", "2026-04-01"), 2, "not a finite number"),
    ("run --pin not a number", lambda w: _run(w, "--pin", "a", "score", "high", "--reason",
                                              "r", "--expires", "2026-04-01"), 2,
     "is not a number"),
    ("run --pin unknown account", lambda w: _run(w, "--pin", "zz", "score", "5", "--reason",
                                                 "r", "--expires", "2026-04-01"), 2,
     "no account 'zz'"),
    ("run --pin unknown target", lambda w: _run(w, "--pin", "a", "scor", "5", "--reason",
                                                "r", "--expires", "2026-04-01"), 2,
     "did you mean 'score'?"),
    ("run --max-staleness 0d", lambda w: _run(w, "--max-staleness", "0d"), 2,
     "at least one day"),
    ("run --unpin 0", lambda w: _run(w, "--unpin", "0"), 2, "must be at least 1"),
    ("run without inputs", lambda w: ["run", str(w / "roadmap.yaml"), "--state",
                                      str(w / "s.db")], 2, "missing --events"),
    ("run --replay with --pin", lambda w: ["run", "--state", str(w / "s.db"), "--replay",
                                           AS_OF, "--pin", "a", "score", "1"], 2,
     "takes no --pin"),
    ("run --replay without a store", lambda w: ["run", "--state", str(w / "none.db"),
                                                "--replay", AS_OF], 2, "no state store"),
    ("backtest --start garbage", lambda w: _backtest(w, start="garbage"), 2, "not a date"),
    ("backtest --end before --start", lambda w: _backtest(w, start="2026-06-30",
                                                          end="2026-01-01"), 2,
     "is before --start"),
    ("backtest --every 0d", lambda w: _backtest(w, "--every", "0d"), 2, "at least one day"),
    ("backtest --every garbage", lambda w: _backtest(w, "--every", "garbage"), 2,
     "not a duration"),
    ("backtest --horizon -5", lambda w: _backtest(w, "--horizon", "-5"), 2, "negative"),
    ("evaluate --as-of 9999-12-31", lambda w: _evaluate(w, as_of="9999-12-31"), 2,
     "out of range"),
    ("evaluate --as-of 0001-01-01", lambda w: _evaluate(w, as_of="0001-01-01"), 2,
     "out of range"),
    ("evaluate --as-of garbage", lambda w: _evaluate(w, as_of="garbage"), 2, "not a date"),
    ("explain --as-of garbage", lambda w: ["explain", str(w / "roadmap.yaml"), *_inputs(w),
                                           "--as-of", "x", "--account", "a"], 2,
     "not a date"),
    ("demo --top -1", lambda w: ["demo", "--top", "-1"], 2, "negative"),
    ("demo --accounts 0", lambda w: ["demo", "--accounts", "0"], 2, "at least 1"),
    ("validate a folder without rule files", lambda w: ["validate", str(w / "empty")], 2,
     "no rule file"),
    ("lint a folder without rule files", lambda w: ["lint", str(w / "empty")], 2,
     "no rule file"),
    ("test a folder without test files", lambda w: ["test", str(w / "empty")], 2,
     "no test file"),
    ("an unknown option", lambda w: ["validate", str(w), "--frobnicate"], 2,
     "unrecognized arguments"),
    ("store check of a missing file", lambda w: ["store", "check", str(w / "nope.db")], 2,
     "no such store file"),
    # what was checked is not clean: 1
    ("evaluate --accounts a folder of mixed files",
     lambda w: ["evaluate", str(w / "roadmap.yaml"), "--events", str(w / "events.parquet"),
                "--accounts", str(w / "mixed"), "--as-of", AS_OF, "--out", str(w / "o")], 1,
     "not a readable Parquet file"),
    ("explain an unknown account", lambda w: ["explain", str(w / "roadmap.yaml"), *_inputs(w),
                                              "--as-of", AS_OF, "--account", "zz"], 1,
     "no account 'zz'"),
    ("run on stale data", lambda w: _run(w, "--max-staleness", "2d", as_of="2026-03-09",
                                         state="stale.db"), 1, "the limit is 2d"),
]

if os.geteuid() != 0:  # root writes anywhere: these cases need an ordinary user
    CASES += [
        ("evaluate --out read-only folder",
         lambda w: _evaluate(w, out=str(w / "readonly" / "out")), 2, "not writable"),
        ("schema -o in a read-only folder",
         lambda w: ["schema", "-o", str(w / "readonly" / "s.json")], 2, "not writable"),
    ]


@pytest.mark.parametrize(("argv", "code", "words"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_exit_code_and_message(w: Path, argv: object, code: int, words: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert callable(argv)
    got = main(argv(w))
    out, err = capsys.readouterr()
    assert got == code, f"stdout:\n{out}\nstderr:\n{err}"
    assert words in err, err
    assert "internal error" not in err and "Traceback" not in err


def test_nothing_is_written_when_an_argument_is_bad(w: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_run(w, "--ndjson", str(w / "empty"), state="never.db")) == 2
    assert not (w / "never.db").exists()  # the output was checked before the run


def test_only_a_bug_exits_3(w: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    def boom(*_: object, **__: object) -> None:
        raise KeyError("oops")

    monkeypatch.setattr("healthrules.history.daily.run", boom)
    monkeypatch.setattr("healthrules.history.run", boom)
    assert main(_run(w, state="bug.db")) == 3
    err = capsys.readouterr().err
    assert "internal error (a bug in healthrules)" in err and "--debug" in err
    assert "report it" in err


def test_a_good_run_exits_0_and_says_nothing_on_stderr(w: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       ) -> None:
    assert main(_run(w, state="good.db")) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"as of {AS_OF}:") and err == ""
