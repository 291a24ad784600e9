"""Evidence lists what made a fired condition true, with the values that were compared."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

import healthrules as hr

AS_OF = dt.date(2026, 6, 30)


def _roadmap(when: str) -> hr.Roadmap:
    return hr.Roadmap.model_validate({
        "id": "ev", "goal": "Evidence reads right",
        "data": {"events": {"user": None},
                 "accounts": {"attributes": {"signed_on": "date", "seats": "int"}}},
        "indicators": [
            {"id": "logins", "family": "process", "aggregate": "count",
             "where": "event == 'login'", "window": "30d"},
            {"id": "usage", "family": "process", "expr": "logins / max(seats, 1)",
             "bands": {"levels": [{"name": "low", "lt": 0.5},
                                  {"name": "medium", "ge": 0.5, "lt": 1.0},
                                  {"name": "high", "ge": 1.0}]}},
        ],
        "score": {"bands": {"levels": [{"name": "at_risk", "lt": 40},
                                       {"name": "healthy", "ge": 40}]}},
        "stages": [{"id": "operation", "actions": [{
            "id": "act", "kind": "challenge", "when": when, "do": "look", "owner": "csm"}]}],
    })


def _evidence(when: str, logins: int, seats: int = 4) -> list[dict[str, Any]] | None:
    events = pl.DataFrame({
        "account_id": ["a"] * logins, "event": ["login"] * logins,
        "timestamp": [dt.datetime(2026, 6, 20, 9)] * logins},
        schema={"account_id": pl.String, "event": pl.String, "timestamp": pl.Datetime("us")})
    accounts = pl.DataFrame({"account_id": ["a"], "signed_on": [dt.date(2026, 6, 10)],
                             "seats": [seats]})
    result = hr.evaluate(_roadmap(when), events, accounts, AS_OF)
    rows = result.actions["evidence"].to_list()
    return rows[0] if rows else None


def _names(evidence: list[dict[str, Any]] | None) -> list[str]:
    assert evidence is not None
    return [e["name"] for e in evidence]


def test_an_or_lists_only_the_branches_that_held() -> None:
    # usage 2/4 = 0.5 is 'medium': the band branch is false; the score (50: one banded
    # indicator in its middle band) is below 60: that branch held
    ev = _evidence("band(usage) == 'low' or score < 60", logins=2)
    assert _names(ev) == ["score"]
    assert ev is not None and ev[0]["op"] == "<" and ev[0]["threshold"] == "60"


def test_an_or_lists_every_branch_that_held() -> None:
    ev = _evidence("band(usage) == 'medium' or score < 60", logins=2)
    assert _names(ev) == ["band(usage)", "score"]
    assert ev is not None and ev[0]["value"] == "medium (0.50)"


def test_an_and_lists_every_part() -> None:
    ev = _evidence("logins >= 2 and seats == 4", logins=2)
    assert ev == [
        {"name": "logins", "value": "2", "band": None, "op": ">=", "threshold": "2"},
        {"name": "seats", "value": "4", "band": None, "op": "==", "threshold": "4"},
    ]


def test_a_computed_value_is_shown_with_what_it_was_compared_to() -> None:
    ev = _evidence("days_since(signed_on) >= 14", logins=1)
    assert ev == [{"name": "days_since(signed_on)", "value": "20", "band": None, "op": ">=",
                   "threshold": "14"}]


def test_the_score_band_comes_with_the_score() -> None:
    ev = _evidence("score_band == 'healthy'", logins=2)
    assert ev == [{"name": "score_band", "value": "healthy (50.00)", "band": "healthy",
                   "op": "==", "threshold": "'healthy'"}]


def test_names_outside_comparisons_are_listed_once_with_their_values() -> None:
    ev = _evidence("not (logins > 5)", logins=1)
    assert ev == [{"name": "logins", "value": "1", "band": None, "op": None,
                   "threshold": None}]


def test_an_or_of_ands_lists_the_parts_of_the_branch_that_held() -> None:
    ev = _evidence("(logins > 5 and seats > 1) or (logins < 3 and seats == 4)", logins=2)
    assert _names(ev) == ["logins", "seats"]
    assert ev is not None and [e["op"] for e in ev] == ["<", "=="]


def test_the_form_for_many_rows_gives_the_same_evidence(monkeypatch: Any) -> None:
    # conditions with `or` branches drop the branches that did not hold with
    # list.drop_nulls() on a few rows and with list.filter(...) from EVIDENCE_MANY_ROWS rows
    # on: both forms, on either side of the threshold, give the same frame
    import healthrules.engine.assemble as assemble

    when = ("(logins > 5 and seats > 1) or (logins < 3 and seats == 4) "
            "or band(usage) == 'low' or score < 60")
    n = 3 * assemble.EVIDENCE_MANY_ROWS
    keys = [f"a{i:03d}" for i in range(n)]
    counts = [i % 9 for i in range(n)]
    events = pl.DataFrame({
        "account_id": [k for k, c in zip(keys, counts, strict=True) for _ in range(c)],
        "event": ["login"] * sum(counts),
        "timestamp": [dt.datetime(2026, 6, 20, 9)] * sum(counts)},
        schema={"account_id": pl.String, "event": pl.String, "timestamp": pl.Datetime("us")})
    accounts = pl.DataFrame({"account_id": keys, "signed_on": [dt.date(2026, 6, 10)] * n,
                             "seats": [1 + i % 5 for i in range(n)]})
    program = hr.compile(_roadmap(when))
    assert assemble.program_for(program, 0, "us")._evidence_many  # the action has both forms
    bound = assemble.EVIDENCE_MANY_ROWS
    seen: list[pl.DataFrame] = []
    for threshold in (1, 10**9):  # every query in the form for many rows, then none
        monkeypatch.setattr(assemble, "EVIDENCE_MANY_ROWS", threshold)
        for rows in (accounts, accounts.head(5), accounts.head(1)):
            seen.append(hr.evaluate(program, events, rows, AS_OF).actions)
    many, few = seen[:3], seen[3:]
    assert many[0].height > bound  # enough rows for the form for many rows by default
    assert any(len(e) < 4 for e in many[0]["evidence"].to_list())  # branches were dropped
    for a, b in zip(many, few, strict=True):
        assert a.schema == b.schema
        assert a.to_dicts() == b.to_dicts()


def test_an_if_lists_its_test_and_only_the_branch_it_took() -> None:
    # seats == 4: the test held, the body decided; the else branch (seats > 9, false
    # here) was not taken and is no reason
    ev = _evidence("logins >= 2 if seats == 4 else seats > 9", logins=2)
    assert ev == [
        {"name": "seats", "value": "4", "band": None, "op": None, "threshold": None},
        {"name": "logins", "value": "2", "band": None, "op": ">=", "threshold": "2"},
    ]
    # seats == 12: the test failed, the else branch decided
    ev = _evidence("logins > 5 if seats == 4 else seats > 9", logins=2, seats=12)
    assert ev == [
        {"name": "seats", "value": "12", "band": None, "op": None, "threshold": None},
        {"name": "seats", "value": "12", "band": None, "op": ">", "threshold": "9"},
    ]


def test_an_if_gives_the_same_evidence_in_the_form_for_many_rows(monkeypatch: Any) -> None:
    import healthrules.engine.assemble as assemble

    when = "(logins >= 2 if seats == 4 else seats > 9) or score < 0"
    few = _evidence(when, logins=2)
    monkeypatch.setattr(assemble, "EVIDENCE_MANY_ROWS", 1)
    assert _evidence(when, logins=2) == few == [
        {"name": "seats", "value": "4", "band": None, "op": None, "threshold": None},
        {"name": "logins", "value": "2", "band": None, "op": ">=", "threshold": "2"},
    ]
