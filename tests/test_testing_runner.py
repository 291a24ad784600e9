"""The rule-pack test runner: reading test files, comparing, failure text, files, errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import polars as pl
import pytest

from healthrules.testing import TestFileError, load_test_file, run, run_file
from healthrules.testing.spec import TestCode, is_test_file, json_schema, read_test_file

ROADMAP = """\
id: tiny
goal: Weekly use
data:
  events: {values: {value: float}}
  accounts: {attributes: {plan: str, start: date}}
indicators:
  - id: logins_7d
    family: process
    aggregate: count
    where: event == 'login'
    window: 7d
    bands: {levels: [{name: low, lt: 3}, {name: ok, ge: 3}]}
  - id: nps
    family: relationship
    aggregate: mean
    of: value
    where: event == 'nps'
    window: 90d
stages:
  - id: onboarding
    entry: days_since(start) < 30
  - id: operation
    actions:
      - id: call
        kind: challenge
        when: logins_7d < 3
        do: "Call them: {logins_7d} logins"
        priority: high
      - id: praise
        kind: positive
        when: logins_7d >= 10 and nps >= 9
        do: Ask for a review
score:
  bands: {levels: [{name: bad, lt: 50}, {name: good, ge: 50}]}
"""


def write(tmp_path: Path, test_text: str, *, roadmap: str = ROADMAP,
          name: str = "tiny.test.yaml") -> Path:
    (tmp_path / "roadmap.yaml").write_text(roadmap, encoding="utf-8")
    path = tmp_path / name
    path.write_text(textwrap.dedent(test_text), encoding="utf-8")
    return path


HEAD = """\
kind: test
roadmap: roadmap.yaml
as_of: 2026-06-30
account_defaults: {plan: pro, start: 2025-01-01}
cases:
"""


def test_a_passing_file(tmp_path: Path) -> None:
    write(tmp_path, HEAD + """\
      - name: busy and quiet
        accounts: {busy: {}, quiet: {}, new: {start: -10d}}
        events:
          busy:
            - login x2/day for 7d by u1
            - nps value=9 at -3d
          quiet:
            - login x2 at -1d
            - login x5 at -8d           # outside the 7-day window
        expect:
          busy:
            stage: operation
            indicators: {logins_7d: 14, nps: 9}
            bands: {logins_7d: ok}
            score: 100
            score_band: good
            actions: {exactly: [praise]}
          quiet:
            indicators: {logins_7d: 2, nps: null}
            bands: {logins_7d: low}
            score: {max: 10}
            actions:
              exactly: [{id: call, text_contains: "2 logins", priority: high}]
          new:
            stage: onboarding
            actions: {none: true}
    """)
    report = run([tmp_path])
    assert report.summary() == "1 passed, 0 failed"
    assert report.ok
    assert report.render().endswith("1 passed, 0 failed")


def test_failure_text_is_an_aligned_diff_with_lines_and_evidence(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
      - name: wrong on purpose
        accounts: {acme: {}}
        events:
          acme:
            - login x2 at -1d
        expect:
          acme:
            stage: onboarding
            indicators: {logins_7d: {value: 3, tolerance: 0.5}}
            bands: {logins_7d: ok}
            actions: {exactly: [praise]}
    """)
    report = run([path])
    assert report.summary() == "0 passed, 1 failed"
    case = report.cases[0]
    assert case.status == "failed"
    expected = f"""\
FAILED {path}:6 case 'wrong on purpose'
  account acme, as_of 2026-06-30
    line  what                  expected        actual
    13    stage                 onboarding      operation
          entry of onboarding: days_since(start) < 30  ->  does not hold
          entry of operation: (always)  ->  holds
    14    indicators.logins_7d  3 ± 0.5         2
    15    bands.logins_7d       ok              low (value 2)
          bands: low: logins_7d < 3; ok: 3 <= logins_7d
    16    actions (exactly)     praise          did not fire
          when: logins_7d >= 10 and nps >= 9  ->  false
            logins_7d >= 10 = false
              logins_7d = 2
            nps >= 9 = null
              nps = null
    16    actions (exactly)     (not expected)  call fired
          text: 'Call them: 2 logins'
          evidence: logins_7d = 2 (low), condition < 3"""
    assert case.render() == expected


def test_action_modes(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
      - name: at least passes with extra actions absent
        accounts: {a: {}}
        events: {a: [login x20 at -1d, nps value=10 at -1d]}
        expect:
          a: {actions: {at_least: [praise], absent: [call]}}
      - name: none fails when one fires
        accounts: {a: {}}
        expect:
          a: {actions: {none: true}}
      - name: absent fails when it fires
        accounts: {a: {}}
        expect:
          a: {actions: {absent: [call]}}
      - name: at least fails when missing
        accounts: {a: {}}
        expect:
          a: {actions: {at_least: [call, praise]}}
      - name: text and priority are checked
        accounts: {a: {}}
        expect:
          a: {actions: {exactly: [{id: call, text_contains: "99 logins", priority: low}]}}
    """)
    report = run([path])
    statuses = [c.status for c in report.cases]
    assert statuses == ["passed", "failed", "failed", "failed", "failed"]
    texts = [c.render() for c in report.cases]
    assert "actions (none)" in texts[1] and "call fired" in texts[1]
    assert "actions (absent)" in texts[2]
    assert "praise" in texts[3] and "did not fire" in texts[3] and "call" not in texts[3].split(
        "did not fire")[0].split("\n")[-1]
    assert "text" in texts[4] and "contains '99 logins'" in texts[4]
    assert "priority" in texts[4]


def test_several_as_of_times(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
      - name: the window moves
        accounts: {a: {}}
        events: {a: [login x5 at -1d]}
        expect:
          a: {indicators: {logins_7d: 5}}
        checks:
          - as_of: +7d
            expect:
              a: {indicators: {logins_7d: 0}, actions: {exactly: [call]}}
          - as_of: 2026-06-28
            expect:
              a: {indicators: {logins_7d: 0}}
          - as_of: 2026-06-29T12:02        # the first two of the five, a minute apart
            expect:
              a: {indicators: {logins_7d: 2}}
    """)
    report = run([path])
    assert report.ok, report.render()
    path.write_text(path.read_text().replace("logins_7d: 2}", "logins_7d: 4}"))
    report = run([path])
    failure = report.cases[0].failures[0]
    assert failure.as_of == "2026-06-29T12:02:00"
    assert failure.check == "checks[2]"
    assert "(checks[2])" in report.cases[0].render()


def test_cases_evaluated_together_give_the_same_results_as_alone(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
      - name: one
        accounts: {a: {}}
        events: {a: [login x5 at -1d]}
        expect: {a: {indicators: {logins_7d: 5}}}
      - name: two (same account name, other events)
        accounts: {a: {}}
        events: {a: [login x1 at -1d]}
        expect: {a: {indicators: {logins_7d: 1}}}
    """)
    together = run([path])
    assert together.ok, together.render()
    alone = [run_file(path, only=i).cases[0].status for i in range(2)]
    assert alone == ["passed", "passed"]


def test_select_filters_cases(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
      - name: alpha
        accounts: {a: {}}
        expect: {a: {stage: operation}}
      - name: beta
        accounts: {a: {}}
        expect: {a: {stage: onboarding}}
    """)
    assert run([path], select="alp").summary() == "1 passed, 0 failed"
    assert run([path], select="^beta$").summary() == "0 passed, 1 failed"


def test_skip(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
      - name: later
        skip: waiting for the new indicator
        accounts: {a: {}}
        expect: {a: {stage: nowhere_yet}}
    """)
    report = run([path])
    assert report.summary() == "0 passed, 0 failed, 1 skipped"


def test_test_file_errors_are_located(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
      - name: everything wrong
        accounts:
          acme: {plan: 3, strt: 2025-01-01}
        events:
          acme:
            - "login x3/day for 20d valeu=3"
          ghost:
            - login
        expect:
          acme:
            stage: operatoin
            indicators: {login_7d: 1}
            bands: {logins_7d: okay, nps: high}
            score_band: great
            actions: {exactly: [cal]}
          nobody: {stage: operation}
      - name: fine
        accounts: {a: {}}
        expect: {a: {stage: operation}}
    """)
    report = run([path])
    assert report.summary() == "1 passed, 1 failed"
    case = report.cases[0]
    assert case.status == "error"
    found = {(i.code, i.location.line, i.location.column) for i in case.issues}
    lines = path.read_text().splitlines()

    def at(token: str, nth: int = 1) -> tuple[int, int]:
        """(line, column) of the nth occurrence of token in the file, 1-based."""
        seen = 0
        for no, line in enumerate(lines, 1):
            start = 0
            while (k := line.find(token, start)) >= 0:
                seen += 1
                if seen == nth:
                    return no, k + 1
                start = k + 1
        raise AssertionError(token)

    assert (TestCode.BAD_ATTRIBUTE, *at("3, strt")) in found
    assert (TestCode.UNKNOWN_ATTRIBUTE, *at("strt")) in found
    assert (TestCode.NOTATION_COLUMN, *at("valeu")) in found
    assert (TestCode.UNKNOWN_ACCOUNT, *at("ghost")) in found
    assert (TestCode.UNKNOWN_STAGE, *at("operatoin")) in found
    assert (TestCode.UNKNOWN_INDICATOR, *at("login_7d")) in found
    assert (TestCode.UNKNOWN_BAND, *at("okay")) in found
    assert (TestCode.UNKNOWN_BAND, *at("nps: high")) in found      # nps has no bands
    assert (TestCode.UNKNOWN_BAND, *at("great")) in found          # score band
    assert (TestCode.UNKNOWN_ACTION, *at("cal]")) in found
    assert (TestCode.UNKNOWN_ACCOUNT, *at("nobody")) in found
    assert len(case.issues) == 11
    hints = {i.code: i.hint for i in case.issues}
    assert hints[TestCode.UNKNOWN_STAGE] == "did you mean 'operation'?"
    assert hints[TestCode.NOTATION_COLUMN] == "did you mean 'value'?"
    text = case.render()
    line, col = at("operatoin")
    assert f"{path}:{line}:{col}: error: unknown stage 'operatoin'" in text


def test_model_errors_are_located_and_other_cases_still_run(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
      - name: bad shape
        accounts: {a: {}}
        expect:
          a:
            stage: operation
            scroe: 3
            actions: {exactly: [call], none: true}
      - name: fine
        accounts: {a: {}}
        expect: {a: {stage: operation}}
    """)
    report = run([path])
    assert [c.status for c in report.cases] == ["error", "passed"]
    issues = {(i.code, i.location.line, i.location.column): i for i in report.cases[0].issues}
    assert issues[("extra_forbidden", 11, 13)].hint == "did you mean 'score'?"
    assert ("expectation_invalid", 12, 22) in issues


def test_unknown_top_level_key_and_kind(tmp_path: Path) -> None:
    path = write(tmp_path, "kind: test\nroadmap: roadmap.yaml\ncasez: []\n")
    src = read_test_file(path)
    assert src.model is None
    by_code = {i.code: i for i in src.issues}
    assert by_code["extra_forbidden"].location.line == 3
    assert by_code["extra_forbidden"].hint == "did you mean 'cases'?"
    assert "missing" in by_code
    report = run([path])
    assert report.summary() == "0 passed, 1 failed"
    assert report.cases[0].name == "(file)"


def test_load_test_file_raises_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "kind: test\nroadmap: roadmap.yaml\ntitel: t\n"
                 "cases: [{name: x, scroe: 1}]\n")
    with pytest.raises(TestFileError) as info:
        load_test_file(path)
    assert [(i.code, i.location.line) for i in info.value.errors()] == [
        ("extra_forbidden", 3), ("extra_forbidden", 4)]
    assert str(info.value).startswith("2 problems:")
    ok = write(tmp_path, HEAD + "  - name: x\n    accounts: [a]\n    expect: {a: {}}\n",
               name="ok.test.yaml")
    assert load_test_file(ok).cases[0].name == "x"


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, "kind: test\nroadmap: [unclosed\n")
    src = read_test_file(path)
    assert src.issues[0].code == "yaml_syntax"
    assert src.issues[0].location.line == 3


def test_roadmap_missing_or_broken(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD.replace("roadmap.yaml", "nope.yaml") + """\
      - name: x
        accounts: {a: {}}
        expect: {a: {stage: operation}}
    """)
    report = run([path])
    assert report.cases[0].status == "error"
    assert "does not exist: nope.yaml" in report.cases[0].issues[0].message
    broken = ROADMAP.replace("logins_7d < 3", "logins_7 < 3")
    path = write(tmp_path, HEAD + """\
      - name: x
        accounts: {a: {}}
        expect: {a: {stage: operation}}
    """, roadmap=broken)
    report = run([path])
    case = report.cases[0]
    assert case.status == "error"
    assert case.issues[0].code == TestCode.ROADMAP_FAILED
    assert any("logins_7" in i.message and i.location.file and
               i.location.file.endswith("roadmap.yaml") for i in case.issues)


def test_events_and_accounts_from_files(tmp_path: Path) -> None:
    (tmp_path / "events.csv").write_text(
        "account_id,user_id,event,timestamp,value\n"
        "f1,u1,login,2026-06-29T10:00:00,\n"
        "f1,u1,nps,2026-06-20T10:00:00,7\n"
        "1001,u1,login,2026-06-29T10:00:00,\n")
    (tmp_path / "accounts.csv").write_text(
        "account_id,plan,start\nf1,pro,2025-01-01\n1001,basic,2026-06-20\n")
    pl.DataFrame({"account_id": ["p1"], "event": ["login"],
                  "timestamp": ["2026-06-30 08:00:00"]}).write_parquet(tmp_path / "ev.parquet")
    (tmp_path / "acc.ndjson").write_text('{"account_id": "p1", "plan": "x", '
                                         '"start": "2025-01-01"}\n')
    path = write(tmp_path, HEAD + """\
      - name: csv
        accounts_file: accounts.csv
        events_file: events.csv
        expect:
          f1: {indicators: {logins_7d: 1, nps: 7.0}}
          "1001": {stage: onboarding, indicators: {logins_7d: 1}}
      - name: parquet and ndjson, plus inline
        accounts: {inline: {}}
        accounts_file: acc.ndjson
        events_file: ev.parquet
        events: {inline: [login at -1d]}
        expect:
          p1: {indicators: {logins_7d: 1}}
          inline: {indicators: {logins_7d: 1}}
      - name: missing file
        events_file: nope.csv
        expect:
          x: {stage: operation}
    """)
    report = run([path])
    assert [c.status for c in report.cases] == ["passed", "passed", "error"], report.render()
    assert report.cases[2].issues[0].code == TestCode.BAD_FILE


def test_time_zone_and_datetime_as_of(tmp_path: Path) -> None:
    roadmap = ROADMAP.replace("events: {values: {value: float}}",
                              "events: {values: {value: float}, timezone: Europe/Paris}")
    path = write(tmp_path, """\
    kind: test
    roadmap: roadmap.yaml
    account_defaults: {plan: pro, start: 2025-01-01}
    cases:
      - name: instants in the events' zone
        as_of: 2026-06-30T10:00
        accounts: {a: {}}
        events: {a: [login at -1h, login at -11h, login at 0d]}
        expect:
          a: {indicators: {logins_7d: 2}}
    """, roadmap=roadmap)
    report = run([path])
    assert report.ok, report.render()


def test_datetime_attributes_are_wall_times_in_the_events_zone(tmp_path: Path) -> None:
    roadmap = """\
id: tz
goal: g
data:
  events: {timezone: Europe/Paris}
  accounts: {attributes: {since: datetime}}
indicators:
  - {id: n, family: process, aggregate: count, where: "event == 'x'", window: {from: since}}
stages: [{id: s}]
"""
    path = write(tmp_path, """\
    kind: test
    roadmap: roadmap.yaml
    as_of: 2026-01-10
    cases:
      - name: the anchor is 12:00 in Paris, the events at 11:59 and 12:00 in Paris
        accounts: {a: {since: 2026-01-05T12:00}}
        events: {a: ["x at -5d@11:59", "x at -5d@12:00"]}
        expect: {a: {indicators: {n: 1}}}
    """, roadmap=roadmap)
    report = run([path])
    assert report.ok, report.render()


def test_to_records_is_json(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
      - name: one
        accounts: {a: {}}
        expect: {a: {stage: onboarding}}
    """)
    records = run([path]).to_records()
    text = json.dumps(records)
    data = json.loads(text)
    assert data["summary"] == {"passed": 0, "failed": 1, "skipped": 0, "errors": 0}
    mismatch = data["cases"][0]["failures"][0]["mismatches"][0]
    assert mismatch["what"] == "stage" and mismatch["expected"] == "onboarding"
    assert mismatch["line"] == 8


def test_discovery_and_kind_test_files(tmp_path: Path) -> None:
    (tmp_path / "roadmap.yaml").write_text(ROADMAP)
    (tmp_path / "sub").mkdir()
    other = tmp_path / "sub" / "checks.yaml"
    other.write_text(HEAD.replace("roadmap.yaml", "../roadmap.yaml") + """\
  - name: kind test without the suffix
    accounts: {a: {}}
    expect: {a: {stage: operation}}
""")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.test.yaml").write_text("kind: test\n")
    assert is_test_file(other) and not is_test_file(tmp_path / "roadmap.yaml")
    report = run([tmp_path])
    assert report.summary() == "1 passed, 0 failed"
    with pytest.raises(FileNotFoundError):
        run([tmp_path / "missing"])


def test_json_schema_describes_the_format() -> None:
    schema = json_schema()
    assert schema["title"] == "healthrules test file"
    assert set(schema["required"]) == {"kind", "roadmap", "cases"}
    assert "Case" in schema["$defs"] and "AccountExpectation" in schema["$defs"]
    actions = schema["$defs"]["ActionsExpectation"]["properties"]
    assert set(actions) == {"exactly", "at_least", "none", "absent"}


def test_packs_route_and_report_unrouted_accounts(tmp_path: Path) -> None:
    for name, tier in (("big", "tier == 'big'"), ("small", "tier == 'small'")):
        (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(f"""\
            id: {name}
            goal: g
            applies_to: {tier}
            data: {{accounts: {{attributes: {{tier: str}}}}}}
            indicators:
              - {{id: n, family: process, aggregate: count, where: "event == 'x'"}}
            stages: [{{id: {name}_stage}}]
            """))
    (tmp_path / "pack.yaml").write_text("kind: pack\nid: p\nroadmaps: [big.yaml, small.yaml]\n")
    path = tmp_path / "pack.test.yaml"
    path.write_text(textwrap.dedent("""\
        kind: test
        roadmap: pack.yaml
        as_of: 2026-06-30
        cases:
          - name: routing
            accounts: {a: {tier: big}, b: {tier: small}, c: {tier: other}}
            events: {a: [x x2 at -1d], c: [x at -1d]}
            expect:
              a: {roadmap: big, stage: big_stage, indicators: {n: 2}}
              b: {roadmap: small, stage: small_stage, indicators: {n: 0}}
              c: {roadmap: null, stage: _unassigned}
          - name: wrong routing
            accounts: {c: {tier: other}}
            expect:
              c: {roadmap: big, indicators: {n: 1}}
          - name: unknown roadmap and stage
            accounts: {a: {tier: big}}
            expect:
              a: {roadmap: bigg, stage: small_stagee}
        """))
    report = run([path])
    assert [c.status for c in report.cases] == ["passed", "failed", "error"], report.render()
    text = report.cases[1].render()
    assert "    15    roadmap       big       null" in text
    assert "    15    indicators.n  1         (no roadmap applies to the account)" in text
    hints = {i.code: i.hint for i in report.cases[2].issues}
    assert hints[TestCode.UNKNOWN_ROADMAP] == "did you mean 'big'?"
    assert hints[TestCode.UNKNOWN_STAGE] == "did you mean 'small_stage'?"


def test_history_gives_change_over_time_values(tmp_path: Path) -> None:
    roadmap = ROADMAP.replace(
        "        do: Ask for a review\n",
        "        do: Ask for a review\n"
        "      - id: dropped\n"
        "        kind: challenge\n"
        "        when: prev(logins_7d, 7) - logins_7d >= 3\n"
        "        do: Logins fell from {logins_7d}\n"
        "      - id: long_here\n"
        "        kind: challenge\n"
        "        when: stuck(60)\n"
        "        do: \"{days_in_stage} days in {stage}\"\n")
    body = """\
  - name: one evaluation, prev() is null
    accounts: {a: {}}
    events: {a: [login x5 at -10d]}
    expect: {a: {actions: {exactly: [call]}}}
  - name: history 0d, prev() reads 7 days before
    history: 0d
    accounts: {a: {}}
    events: {a: [login x5 at -10d]}
    expect: {a: {actions: {exactly: [call, dropped]}}}
  - name: weekly snapshots for 70 days, the stage is old enough
    history: {from: -10w, every: 1w}
    accounts: {a: {}}
    events: {a: [login x5 at -10d]}
    expect: {a: {actions: {exactly: [call, dropped, long_here]}}}
"""
    path = write(tmp_path, HEAD + body, roadmap=roadmap)
    report = run([path])
    assert report.ok, report.render()


def test_history_needs_dates_and_day_offsets(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
      - name: datetime
        history: 0d
        as_of: 2026-06-30T10:00
        accounts: {a: {}}
        expect: {a: {stage: operation}}
      - name: bad offset
        history: {from: +3d, every: 0d}
        accounts: {a: {}}
        expect: {a: {stage: operation}}
    """)
    report = run([path])
    assert [c.status for c in report.cases] == ["error", "error"]
    assert "whole days" in report.cases[0].issues[0].message
    messages = " ".join(i.message for i in report.cases[1].issues)
    assert "not a day offset" in messages
