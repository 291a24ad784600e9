"""A test file's attribute and event values that its roadmap's types cannot hold.

Each was an internal error (exit 3, "a bug in healthrules") when the case's frames were
built: an int attribute beyond the 64-bit integers, an event line's ``q=2.5`` or
``q=99999999999999999999`` for an int value column, a whole number beyond the largest
float for a float one. Each is now an error at the value's line and column, and the other
cases still run.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from healthrules.testing import run

ROADMAP = """\
id: r
goal: g
data:
  events: {values: {q: int, v: float}, user: null}
  accounts: {attributes: {seats: int, ratio: float}}
indicators:
  - {id: total, family: process, aggregate: sum, of: q}
  - {id: n, family: process, expr: seats}
stages:
  - id: s
"""

HUGE = "1" + "0" * 320


def _run(tmp_path: Path, accounts: str, events: str) -> tuple[list[str], list[tuple[str, int]]]:
    (tmp_path / "r.yaml").write_text(ROADMAP, encoding="utf-8")
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
          - name: good
            accounts: {{a: {{seats: 2}}}}
            events: {{a: ["x q=3 at -1d"]}}
            expect: {{a: {{indicators: {{total: 3, n: 2}}}}}}
        """), encoding="utf-8")
    report = run([path])
    statuses = [str(c.status) for c in report.cases]
    return statuses, [(i.message, i.location.line or 0) for i in report.cases[0].issues]


@pytest.mark.parametrize(("accounts", "events", "message", "line"), [
    ("{seats: 9223372036854775808}", "x at -1d", "9223372036854775808 is beyond the 64-bit "
     "integers", 6),
    ("{seats: -9223372036854775809}", "x at -1d", "beyond the 64-bit integers", 6),
    (f"{{ratio: {HUGE}}}", "x at -1d", "is beyond the largest float", 6),
    ("{}", "x q=2.5 at -1d", "q=2.5: the column is int, give a whole number", 7),
    ("{}", "x q=99999999999999999999 at -1d", "q=99999999999999999999: beyond the 64-bit "
     "integers", 7),
    ("{}", f"x v={HUGE} at -1d", "beyond the largest float", 7),
])
def test_a_value_the_type_cannot_hold_is_a_located_error(
        tmp_path: Path, accounts: str, events: str, message: str, line: int) -> None:
    statuses, issues = _run(tmp_path, accounts, events)
    assert statuses == ["error", "passed"]
    assert len(issues) == 1 and message in issues[0][0] and issues[0][1] == line, issues


def test_values_at_the_edges_are_read(tmp_path: Path) -> None:
    statuses, issues = _run(tmp_path, "{seats: -9223372036854775808, ratio: 1e308}",
                            "x q=4000000000000000000 v=1e999 at -1d")
    assert statuses == ["passed", "passed"], issues


def test_a_refused_evaluation_names_the_account_as_the_file_does(tmp_path: Path) -> None:
    # an int column's sum near the Int64 bounds is refused (docs/semantics.md); the message
    # once named the account '0\x1fa', with the runner's per-case key prefix
    statuses, issues = _run(tmp_path, "{}", "x q=9223372036854775807 at -1d")
    assert statuses == ["error", "passed"]
    ((message, line),) = issues
    assert line == 5 and "of account 'a' add up to" in message, message
