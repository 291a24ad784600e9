"""Rule-pack tests and lint: claims checked against the engine, and edge values.

- a test file's whole number from ``2**1024 - 2**970`` on rounds to infinity as a float; the
  check let it through below ``2**1024``, and any whole number beyond 64 bits in a float
  column or attribute failed building the case's frame (exit 3);
- coverage of nothing reported 0 of 0 as 100 %;
- HR509 read as if the escalation came on a fixed day (true of daily runs only): it comes at
  the first run ``escalate_after`` days after the opening, so weekly runs escalate
  ``due: 7d, escalate_after: 5d`` on its due date;
- HR205 said a percentile at 1 is the max: of an int column the max is the int itself and
  the percentile its nearest float (another value beyond 2**53);
- a pack with a problem in its own keys reports its roadmaps' problems only once that is
  fixed (the loader's, left to its owners: marked xfail).
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules.cli import main
from healthrules.history import history
from healthrules.lint import lint
from healthrules.roadmap import Roadmap
from healthrules.testing import run
from healthrules.testing.coverage import CoverageItem, CoverageReport

# ------------------------------------------------------------------ values of test files

VALUE_ROADMAP = """\
id: r
goal: g
data:
  events: {values: {v: float}, user: null}
  accounts: {attributes: {ratio: float}}
indicators:
  - {id: top, family: process, aggregate: max, of: v}
  - {id: r, family: process, expr: ratio}
stages:
  - id: s
"""

EDGE = 2**1024 - 2**970  # the first whole number that float() rounds to infinity


@pytest.mark.parametrize(("accounts", "events", "line"), [
    (f"{{ratio: {EDGE}}}", "x at -1d", 6),
    ("{}", f"x v={EDGE} at -1d", 7),
])
def test_a_whole_number_that_rounds_to_infinity_is_a_located_error(
        tmp_path: Path, accounts: str, events: str, line: int) -> None:
    (tmp_path / "r.yaml").write_text(VALUE_ROADMAP)
    path = tmp_path / "t.test.yaml"
    path.write_text(textwrap.dedent(f"""\
        kind: test
        roadmap: r.yaml
        as_of: 2026-06-30
        cases:
          - name: bad
            accounts: {{a: {accounts}}}
            events: {{a: ["{events}"]}}
            expect: {{a: {{stage: s}}}}
        """))
    report = run([path])
    ((case),) = report.cases
    assert str(case.status) == "error"
    ((issue),) = case.issues
    assert "beyond the largest float" in issue.message and issue.location.line == line


@pytest.mark.parametrize("below", [EDGE - 1, 10**300, 2**64])
def test_a_whole_number_beyond_64_bits_is_read_as_a_float(tmp_path: Path, below: int) -> None:
    # it was an internal error (exit 3): the case's frame was built from the Python int
    (tmp_path / "r.yaml").write_text(VALUE_ROADMAP)
    path = tmp_path / "t.test.yaml"
    path.write_text(textwrap.dedent(f"""\
        kind: test
        roadmap: r.yaml
        as_of: 2026-06-30
        cases:
          - name: edge
            accounts: {{a: {{ratio: {below}}}}}
            events: {{a: ["x v={below} at -1d"]}}
            expect: {{a: {{indicators: {{top: {float(below)!r}, r: {float(below)!r}}}}}}}
        """))
    report = run([path])
    assert report.ok, report.render()


# ---------------------------------------------------------------------------- coverage


def test_nothing_to_cover_has_no_percentage() -> None:
    empty = CoverageReport(items=())
    assert "0/0" in empty.render() and "100.0%" not in empty.render(), empty.render()
    record = empty.to_record()
    assert record["percent"] is None
    assert all(k["percent"] is None for k in record["by_kind"].values())


def test_a_kind_with_nothing_to_cover_has_no_percentage_beside_the_others() -> None:
    report = CoverageReport(items=(
        CoverageItem("stage", "r", "r.yaml", "s", True),
        CoverageItem("band", "r", "r.yaml", "x=low", False)))
    lines = {line.split()[0]: line for line in report.render().splitlines()[1:5]}
    assert lines["stages"].endswith("100.0%")
    assert lines["bands"].endswith("0.0%")
    assert lines["actions"].split()[1:] == ["0/0", "-"], lines
    record = report.to_record()
    assert record["percent"] == 50.0
    assert record["by_kind"]["action"]["percent"] is None


# ------------------------------------------------------------------------------ HR509

ATTRIBUTES = {"seats": "int"}


def _roadmap(actions: list[dict[str, Any]]) -> Roadmap:
    return Roadmap.model_validate({
        "id": "r", "goal": "g",
        "data": {"events": {"user": None}, "accounts": {"attributes": ATTRIBUTES}},
        "indicators": [{"id": "logins", "family": "process", "aggregate": "count",
                        "window": "7d"}],
        "stages": [{"id": "s", "actions": actions}]})


def _escalations(roadmap: Roadmap, every: str, days: int) -> dict[str, tuple[int, dt.date,
                                                                           dt.date]]:
    """Per action: (days open, date, due date) of its escalation."""
    accounts = pl.DataFrame({"account_id": ["a"], "seats": [1]})
    events = pl.DataFrame(schema={"account_id": pl.String, "event": pl.String,
                                  "timestamp": pl.Datetime("us")})
    end = dt.date(2026, 6, 30)
    changes = history(roadmap, events, accounts, end - dt.timedelta(days=days), end,
                      every=every).lifecycle.changes.filter(pl.col("change") == "escalated")
    return {r["action_id"]: (r["days_open"], r["as_of"], r["due_date"])
            for r in changes.to_dicts()}


@pytest.mark.parametrize(("every", "after", "early"), [
    ("1d", 5, True), ("2d", 6, True), ("7d", 7, False), ("3d", 6, True), ("4d", 8, False)])
def test_hr509_names_the_runs_that_escalate_before_the_due_date(
        every: str, after: int, early: bool) -> None:
    roadmap = _roadmap([{"id": "a0", "kind": "challenge", "when": "seats >= 0", "do": "x",
                         "owner": "csm", "channel": "email", "due": "7d",
                         "escalate_after": "5d"}])
    ((issue),) = [i for i in lint(roadmap) if i.code == "HR509"]
    assert "at the first run 5 or more day(s) after it opens" in issue.message
    assert "before its due date when that run comes 5 to 6 day(s) after the opening" \
        in issue.message, issue.message
    days_open, day, due = _escalations(roadmap, every, 28)["a0"]
    # the claim: the first run 5 or more days after the opening escalates it, and that is
    # before the due date exactly when it comes 5 to 6 days after the opening
    assert days_open == after
    assert (day < due) is early and (5 <= days_open <= 6) is early


def test_hr509_on_the_due_date_holds_for_any_runs() -> None:
    roadmap = _roadmap([{"id": "a0", "kind": "challenge", "when": "seats >= 0", "do": "x",
                         "owner": "csm", "channel": "email", "due": "7d",
                         "escalate_after": "7d"}])
    ((issue),) = [i for i in lint(roadmap) if i.code == "HR509"]
    assert "on its due date, not yet overdue, when a run falls on that date" in issue.message
    for every, on_due in (("1d", True), ("7d", True), ("3d", False)):
        days_open, day, due = _escalations(roadmap, every, 28)["a0"]
        assert days_open >= 7 and (day == due) is on_due


# ------------------------------------------------------------------------------ HR205

PERCENTILE = """\
id: p
goal: g
data:
  events: {{values: {{n: {typ}}}, user: null}}
indicators:
  - {{id: mx, family: process, aggregate: max, of: n}}
  - {{id: p1, family: process, aggregate: percentile, q: 1, of: n}}
  - {{id: mn, family: process, aggregate: min, of: n}}
  - {{id: p0, family: process, aggregate: percentile, q: 0, of: n}}
stages:
  - id: s
"""


def _percentiles(tmp_path: Path, typ: str, values: list[Any]) -> tuple[list[str], dict[str, Any]]:
    path = tmp_path / "p.yaml"
    path.write_text(PERCENTILE.format(typ=typ))
    roadmap = hr.load(path)
    assert isinstance(roadmap, Roadmap)
    messages = [i.message for i in lint(roadmap) if i.code == "HR205"]
    dtype = pl.Int64 if typ == "int" else pl.Float64
    events = pl.DataFrame({"account_id": ["a"] * len(values), "event": ["e"] * len(values),
                           "timestamp": [dt.datetime(2026, 6, 1)] * len(values),
                           "n": pl.Series(values, dtype=dtype)})
    result = hr.evaluate(hr.compile(roadmap), events, pl.DataFrame({"account_id": ["a"]}),
                         dt.date(2026, 6, 30))
    return messages, result.indicators.row(0, named=True)


def test_hr205_of_a_float_column_the_percentile_is_the_max(tmp_path: Path) -> None:
    messages, row = _percentiles(tmp_path, "float", [0.1, 2.5, float("nan"), -3.0])
    assert len(messages) == 2 and not any("int column" in m for m in messages)
    assert (row["p1"], row["p0"]) == (row["mx"], row["mn"]) == (2.5, -3.0)


def test_hr205_of_an_int_column_says_the_max_is_the_int_itself(tmp_path: Path) -> None:
    big = 2**53 + 1
    messages, row = _percentiles(tmp_path, "int", [big, -big, 3])
    assert len(messages) == 2
    assert all("of int column 'n'" in m and "the int itself" in m for m in messages), messages
    assert (row["mx"], row["mn"]) == (big, -big)
    assert isinstance(row["p1"], float) and row["p1"] != row["mx"]


# ------------------------------------------------------------------------------ packs


@pytest.mark.xfail(strict=True, reason="loader bug (loader.py, not this task's file): a pack "
                   "whose own keys have a problem (no id, an unknown key) is not read further, "
                   "so a roadmap file it names that is missing is reported only once the pack's "
                   "keys are fixed; every problem should come in one report")
def test_a_pack_without_id_reports_its_missing_roadmap_too(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.yaml").write_text("id: a\ngoal: g\nstages:\n  - id: s\n")
    pack = tmp_path / "pack.yaml"
    pack.write_text("kind: pack\ntitle: t\nroadmaps:\n  - a.yaml\n  - missing.yaml\n")
    assert main(["validate", str(pack), "--format", "json"]) == 1
    text = capsys.readouterr().out
    assert "'id'" in text and "missing.yaml" in json.dumps(json.loads(text)), text


# ------------------------------------------------------------------ fixture files


def test_a_short_row_of_a_fixture_csv_is_refused_and_blank_lines_skipped(
        tmp_path: Path) -> None:
    # read as `healthrules evaluate` reads a CSV file: the short row was read with a null
    # ratio, silently
    (tmp_path / "r.yaml").write_text(VALUE_ROADMAP)
    (tmp_path / "acc.csv").write_text("account_id,ratio\na,1.5\nb\n")
    (tmp_path / "ev.csv").write_text("account_id,event,timestamp,v\n"
                                     "a,x,2026-06-29T00:00:00,1\n\nb,x,2026-06-29T00:00:00,2\n\n")
    path = tmp_path / "t.test.yaml"
    path.write_text(textwrap.dedent("""\
        kind: test
        roadmap: r.yaml
        as_of: 2026-06-30
        cases:
          - name: short accounts row
            accounts_file: acc.csv
            expect: {a: {stage: s}}
          - name: blank event lines
            accounts: {a: {ratio: 1.0}, b: {}}
            events_file: ev.csv
            expect: {a: {indicators: {top: 1.0}}, b: {indicators: {top: 2.0}}}
        """))
    report = run([path])
    short, blank = report.cases
    assert str(short.status) == "error" and str(blank.status) == "passed", report.render()
    ((issue),) = short.issues
    assert issue.message.startswith("cannot read acc.csv: line 3 has 1 field(s), but the "
                                    "header names 2"), issue.message
    assert issue.location.line == 6


# ------------------------------------------------------------------ notation edge values


@pytest.mark.parametrize(("line", "as_of", "message", "where"), [
    ("x at -999999999d", "2026-06-30", "beyond the dates a timestamp holds", (7, "events")),
    ("x at +99999999h", "2026-06-30", "beyond the dates a timestamp holds", (7, "events")),
    ("x x3 at 9999-12-31T23:58", "9999-12-30", "beyond the dates a timestamp holds",
     (7, "events")),
    ("x from -1d to -3d", "2026-06-30", "the range ends before it starts", (7, "events")),
    ("x at -1d", "9999-12-31", "is too late", (5, "as_of")),
])
def test_a_time_no_timestamp_holds_is_a_located_error(
        tmp_path: Path, line: str, as_of: str, message: str, where: tuple[int, str]) -> None:
    # each was an internal error (exit 3) when the case's events were built
    (tmp_path / "r.yaml").write_text(VALUE_ROADMAP)
    path = tmp_path / "t.test.yaml"
    path.write_text(textwrap.dedent(f"""\
        kind: test
        roadmap: r.yaml
        cases:
          - name: far
            as_of: {as_of}
            accounts: {{a: {{}}}}
            events: {{a: ["{line}"]}}
            expect: {{a: {{stage: s}}}}
          - name: near
            as_of: 2026-06-30
            accounts: {{a: {{}}}}
            events: {{a: ["x at -1d"]}}
            expect: {{a: {{stage: s}}}}
        """))
    report = run([path])
    assert [str(c.status) for c in report.cases] == ["error", "passed"], report.render()
    ((issue),) = report.cases[0].issues
    assert message in issue.message, issue.message
    assert issue.location.line == where[0] and where[1] in (issue.location.path or "")


def test_a_far_check_time_is_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(VALUE_ROADMAP)
    path = tmp_path / "t.test.yaml"
    path.write_text(textwrap.dedent("""\
        kind: test
        roadmap: r.yaml
        as_of: 2026-06-30
        cases:
          - name: far check
            accounts: {a: {}}
            checks:
              - as_of: +99999999d
                expect: {a: {stage: s}}
        """))
    report = run([path])
    ((issue),) = report.cases[0].issues
    assert "'+99999999d' from 2026-06-30 is beyond the dates" in issue.message
    assert issue.location.path == "cases[0].checks[0].as_of"


def test_a_date_attribute_may_be_the_last_day(tmp_path: Path) -> None:
    # (an as_of of 9999-12-31 is refused: its day ends beyond the dates; an attribute's
    # date is no evaluation instant)
    (tmp_path / "r.yaml").write_text(VALUE_ROADMAP.replace(
        "{attributes: {ratio: float}}", "{attributes: {ratio: float, ends: date}}"))
    path = tmp_path / "t.test.yaml"
    path.write_text(textwrap.dedent("""\
        kind: test
        roadmap: r.yaml
        as_of: 2026-06-30
        cases:
          - name: sentinel
            accounts: {a: {ends: 9999-12-31}}
            expect: {a: {stage: s}}
        """))
    report = run([path])
    assert report.ok, report.render()
