"""Without a time-zone database (docs/semantics.md, "Time"; docs/operations.md).

``zoneinfo`` reads the system's database, else the ``tzdata`` package; slim containers and
Windows have none. Every path then refuses a zoned roadmap with one error that says what is
missing and how to install it (``no_timezone_database``, exit 1 on the command line), never
a bare ``ZoneInfoNotFoundError`` (exit 3) nor "unknown time zone" for a valid name. Each case
runs in a subprocess whose ``zoneinfo`` finds nothing: no folder on its path and the
``tzdata`` package hidden (the machine under test has both).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import healthrules
from zoned_frames import cli_evaluate_args, utc_events

# run first in the subprocess: zoneinfo without any database
_NO_DATABASE = """\
import sys, zoneinfo
sys.modules["tzdata"] = None  # the package, if installed, is not found
zoneinfo.reset_tzpath([])
zoneinfo.ZoneInfo.clear_cache()
"""


# the package under test (not an installed copy), whatever the current folder
_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(Path(healthrules.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**_ENV, "PYTHONTZPATH": str(tmp_path / "empty")}
    (tmp_path / "empty").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-c", _NO_DATABASE + textwrap.dedent(code)],
                          capture_output=True, text=True, env=env, timeout=300,
                          cwd=Path(__file__).parent)


def _roadmap(tmp_path: Path, zone: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text("id: zoned\ngoal: g\ndata:\n  events:\n    values: {}\n"
                    f"    timezone: {zone}\n  accounts:\n    attributes: {{}}\nindicators:\n"
                    "  - {id: n, family: process, aggregate: count, window: 7d}\n"
                    "stages:\n  - id: s\n")
    return path


@pytest.mark.parametrize("zone", ["Europe/Paris", "UTC"])
def test_load_names_the_missing_database_not_an_unknown_zone(tmp_path: Path,
                                                             zone: str) -> None:
    path = _roadmap(tmp_path, zone)
    got = _run(f"""
        import json
        import healthrules as hr
        from healthrules.errors import RoadmapError
        try:
            hr.load({str(path)!r})
        except RoadmapError as exc:
            print(json.dumps([[i.code, i.message, i.hint, i.location.path]
                              for i in exc.issues]))
        """, tmp_path)
    assert got.returncode == 0, got.stderr
    issues = json.loads(got.stdout)
    assert len(issues) == 1
    code, message, hint, where = issues[0]
    assert code == "no_timezone_database"
    assert where == "data.events.timezone"
    assert "no time-zone database" in message and repr(zone) in message
    assert "unknown" not in message
    assert "pip install tzdata" in hint


def test_the_cli_exits_1_with_the_install_hint(tmp_path: Path) -> None:
    args = cli_evaluate_args(tmp_path, "Europe/Paris", "7d",
                             utc_events("Europe/Paris", []))
    for argv in (["validate", args[1]], [*args, "--as-of", "2026-03-01"],
                 ["explain", args[1], "--events", args[3], "--accounts", args[5],
                  "--account", "a", "--as-of", "2026-03-01"]):
        got = _run(f"""
            from healthrules.cli import main
            raise SystemExit(main({argv!r}))
            """, tmp_path)
        assert got.returncode == 1, (argv, got.stdout, got.stderr)
        out = got.stdout + got.stderr
        assert "no_timezone_database" in out and "pip install tzdata" in out, (argv, out)
        assert "Traceback" not in out and "unknown time zone" not in out, (argv, out)


def test_a_plan_compiled_with_a_database_and_run_without_one_is_refused(
        tmp_path: Path) -> None:
    """A roadmap loaded (or a plan compiled) where there is a database, evaluated where there
    is none (a pickled plan, a Spark executor in a slim container): the evaluation says so,
    no bare ``ZoneInfoNotFoundError`` from deep in the engine."""
    path = _roadmap(tmp_path, "Europe/Paris")
    got = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import datetime as dt, json, pickle, sys, zoneinfo
        import polars as pl
        import healthrules as hr
        from healthrules.errors import EvaluationError
        plan = pickle.loads(pickle.dumps(hr.compile(hr.load({str(path)!r}))))
        events = pl.DataFrame({{"account_id": ["a"], "user_id": ["u"], "event": ["x"],
                               "timestamp": [dt.datetime(2026, 2, 27, 12)]}}).with_columns(
            pl.col("timestamp").dt.replace_time_zone("Europe/Paris"))
        accounts = pl.DataFrame({{"account_id": ["a"]}})
        assert hr.evaluate(plan, events, accounts, dt.date(2026, 3, 1)).indicators["n"][0] == 1
        """) + _NO_DATABASE + textwrap.dedent("""
        try:
            hr.evaluate(plan, events, accounts, dt.date(2026, 3, 1))
        except EvaluationError as exc:
            print(json.dumps([[i.code, i.message, i.hint] for i in exc.issues]))
        """)], capture_output=True, text=True, timeout=300, env=_ENV)
    assert got.returncode == 0, got.stderr
    [[code, message, hint]] = json.loads(got.stdout)
    assert code == "no_timezone_database"
    assert "'Europe/Paris'" in message and "pip install tzdata" in hint
