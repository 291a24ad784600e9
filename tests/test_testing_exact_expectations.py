"""A rule-pack test passes exactly when the engine's value meets the expectation.

Two ways a test once passed or failed against what the engine computed:

- numbers were compared as floats, so an Int64 beyond 2**53 (a sum of a large int value
  column) met an expectation one off: ``total: 9007199254740992`` passed for
  9007199254740993, and ``{value: 2**53, tolerance: 0.5}`` too;
- an expected datetime with an offset (``2026-06-01T09:00-04:00``) never met an aware value,
  not even the same instant: the value's zone was dropped and a naive time compared with an
  aware one.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import polars as pl
import pytest

import healthrules as hr
from healthrules.testing import assert_account, run

ROADMAP = """\
id: tiny
goal: g
data:
  events: {values: {q: int, v: float}, timezone: America/New_York}
  accounts: {attributes: {plan: str}}
indicators:
  - {id: total, family: process, aggregate: sum, of: q}
  - {id: vsum, family: process, aggregate: sum, of: v}
  - {id: first, family: process, aggregate: first_time}
stages:
  - id: s
"""

BIG = 2**53 + 1


def _file(tmp_path: Path, expect: str) -> Path:
    (tmp_path / "roadmap.yaml").write_text(ROADMAP, encoding="utf-8")
    path = tmp_path / "tiny.test.yaml"
    path.write_text(textwrap.dedent("""\
        kind: test
        roadmap: roadmap.yaml
        as_of: 2026-06-30
        account_defaults: {plan: pro}
        cases:
          - name: one
            accounts: {a: {}}
            events:
              a:
                - x q=%d v=0.25 at 2026-06-01T09:00
            expect:
              a:
                indicators: {%s}
        """) % (BIG, expect), encoding="utf-8")
    return path


@pytest.mark.parametrize(("expect", "ok"), [
    (f"total: {BIG}", True),
    (f"total: {BIG - 1}", False),
    (f"total: {BIG + 1}", False),
    (f"total: {{value: {BIG - 1}, tolerance: 0.5}}", False),
    (f"total: {{value: {BIG - 1}, tolerance: 1}}", True),
    (f"total: {{value: {float(BIG - 1)}, tolerance: 0.5}}", False),  # 2**53 as a float
    ("vsum: 0.25", True),
    ("vsum: {value: 0.2500001, tolerance: 0.0000001}", True),
    ("vsum: {value: 0.2500002, tolerance: 0.0000001}", False),
    ("first: '2026-06-01T09:00'", True),           # wall time in the events' zone
    ("first: '2026-06-01T09:00-04:00'", True),     # the same instant, with its offset
    ("first: '2026-06-01T13:00+00:00'", True),     # the same instant, in UTC
    ("first: '2026-06-01T09:00+00:00'", False),    # another instant
    ("first: '2026-06-01T13:00'", False),          # another wall time
])
def test_a_test_passes_exactly_when_the_value_meets_it(
        tmp_path: Path, expect: str, ok: bool) -> None:
    report = run([_file(tmp_path, expect)])
    assert report.ok is ok, report.render()
    if not ok:
        text = report.render()
        assert "account a" in text and "indicators." in text, text


def _evaluation() -> hr.Evaluation:
    roadmap = hr.Roadmap.model_validate({
        "id": "t", "goal": "g",
        "data": {"events": {"user": None, "timezone": "America/New_York",
                            "values": {"q": "int"}}},
        "indicators": [{"id": "total", "family": "process", "aggregate": "sum", "of": "q"},
                       {"id": "first", "family": "process", "aggregate": "first_time"}],
        "stages": [{"id": "s"}]})
    at = pl.Series([dt.datetime(2026, 6, 1, 9)]).dt.replace_time_zone("America/New_York")
    events = pl.DataFrame({"account_id": ["a"], "event": ["x"], "timestamp": at, "q": [-BIG]})
    return hr.evaluate(roadmap, events, pl.DataFrame({"account_id": ["a"]}), "2026-06-30")


def test_assert_account_compares_ints_exactly_and_offsets_as_instants() -> None:
    ev = _evaluation()
    assert_account(ev, "a", indicators={"total": -BIG, "first": "2026-06-01T13:00Z"})
    with pytest.raises(AssertionError, match=r"indicators\.total"):
        assert_account(ev, "a", indicators={"total": -BIG + 1})
    with pytest.raises(AssertionError, match=r"indicators\.total"):
        assert_account(ev, "a", indicators={"total": {"value": -BIG - 1, "tolerance": 0.99}})
    with pytest.raises(AssertionError, match=r"indicators\.first"):
        assert_account(ev, "a", indicators={"first": "2026-06-01T09:00Z"})


def test_a_bad_as_of_at_the_top_is_reported_once(tmp_path: Path) -> None:
    # each case that inherits it repeated it (the same line, column and message twice)
    (tmp_path / "roadmap.yaml").write_text(ROADMAP, encoding="utf-8")
    path = tmp_path / "t.test.yaml"
    path.write_text(textwrap.dedent("""\
        kind: test
        roadmap: roadmap.yaml
        as_of: garbage
        cases:
          - {name: one, accounts: {a: {}}, expect: {a: {stage: s}}}
          - {name: two, accounts: {a: {}}, expect: {a: {stage: s}}}
        """), encoding="utf-8")
    report = run([path])
    assert not report.ok
    assert [c.status for c in report.cases] == ["error", "error"]
    for case in report.cases:
        assert [e.code for e in case.issues] == ["test_bad_time"], case.issues


def test_junit_xml_is_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a write that fails half-way (a full disk) leaves the previous report whole; it was
    # written in place, so CI could read half a file
    from healthrules.testing.junit import write_junit_xml

    report = run([_file(tmp_path, f"total: {BIG}")])
    target = tmp_path / "reports" / "rules.xml"
    write_junit_xml(report, target)
    before = target.read_text(encoding="utf-8")
    assert before.startswith("<?xml") and "testsuite" in before
    real = Path.write_text

    def half(self: Path, text: str, *args: object, **kwargs: object) -> int:
        real(self, text[: len(text) // 2], encoding="utf-8")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half)
    with pytest.raises(OSError, match="No space"):
        write_junit_xml(report, target)
    monkeypatch.undo()
    assert target.read_text(encoding="utf-8") == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["rules.xml"]
