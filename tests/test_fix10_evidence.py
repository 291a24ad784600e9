"""Evidence of compound conditions: each entry once, a chained comparison as its pairs.

docs/semantics.md, "Actions": every part of an ``and`` is listed, of an ``or`` the branches
that held; an entry that two parts share (``(a > 1 or b > 2) and (a > 1 or c > 3)``: the
same name, operator and literal) is listed once, where it is first met; a chained
comparison (``1 < x < 5``) is the ``and`` of its pairs, one entry each. The engine's
evidence, in its form for a few rows and its form for many rows
(``EVIDENCE_MANY_ROWS``), is checked against the reference's (``tests/reference.py``,
``evidence_of``) on generated conditions.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import healthrules as hr
import healthrules.engine.assemble as assemble
from reference import evaluate_reference

AS_OF = dt.date(2026, 6, 30)
N = 24  # accounts: more than EVIDENCE_MANY_ROWS, so both forms see many fired rows


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


def _frames(counts: list[int], seats: list[int | None]) -> tuple[pl.DataFrame, pl.DataFrame]:
    keys = [f"a{i:02d}" for i in range(len(counts))]
    events = pl.DataFrame({
        "account_id": [k for k, c in zip(keys, counts, strict=True) for _ in range(c)],
        "event": ["login"] * sum(counts),
        "timestamp": [dt.datetime(2026, 6, 20, 9)] * sum(counts)},
        schema={"account_id": pl.String, "event": pl.String, "timestamp": pl.Datetime("us")})
    accounts = pl.DataFrame({"account_id": keys,
                             "signed_on": [dt.date(2026, 6, 1 + i % 28) for i in range(len(keys))],
                             "seats": seats}, schema={"account_id": pl.String,
                                                      "signed_on": pl.Date, "seats": pl.Int64})
    return events, accounts


def _engine(when: str, events: pl.DataFrame, accounts: pl.DataFrame, many: bool,
            ) -> dict[str, list[tuple[str, str | None, str | None]]]:
    with mock.patch.object(assemble, "EVIDENCE_MANY_ROWS", 1 if many else 10**9):
        actions = hr.evaluate(_roadmap(when), events, accounts, AS_OF).actions
    return {row["account_id"]: [(e["name"], e["op"], e["threshold"]) for e in row["evidence"]]
            for row in actions.to_dicts()}


def _reference(when: str, events: pl.DataFrame, accounts: pl.DataFrame,
               ) -> dict[str, list[tuple[str, str | None, str | None]]]:
    ref = evaluate_reference(_roadmap(when), events, accounts, AS_OF)
    return {k: list(r.actions[0].evidence) for k, r in ref.accounts.items() if r.actions}


def _check(when: str, counts: list[int], seats: list[int | None]) -> dict[str, Any]:
    events, accounts = _frames(counts, seats)
    want = _reference(when, events, accounts)
    for many in (False, True):
        for rows in (accounts, accounts.head(3)):
            got = _engine(when, events, rows, many)
            assert got == {k: v for k, v in want.items() if k in set(rows["account_id"])}, (
                when, many, rows.height)
    for entries in want.values():
        assert len(entries) == len(set(entries))
    return want


def test_an_entry_two_ors_share_is_listed_once() -> None:
    want = _check("(logins > 1 or seats > 2) and (logins > 1 or seats > 30)",
                  [2] * 3, [4, 1, 40])
    assert want == {"a00": [("logins", ">", "1"), ("seats", ">", "2")],
                    "a01": [("logins", ">", "1")],
                    "a02": [("logins", ">", "1"), ("seats", ">", "2"), ("seats", ">", "30")]}


def test_a_repeated_part_of_an_and_is_listed_once() -> None:
    want = _check("logins > 1 and 1 < logins and (logins > 1 or seats > 9)", [2], [4])
    assert want == {"a00": [("logins", ">", "1")]}


def test_a_chained_comparison_is_shown_as_its_pairs() -> None:
    want = _check("1 < logins < 5", [0, 2, 7], [4, 4, 4])
    assert want == {"a01": [("logins", ">", "1"), ("logins", "<", "5")]}
    want = _check("0 < logins <= seats", [2, 5], [4, 4])
    assert want == {"a00": [("logins", ">", "0"), ("logins", None, None),
                            ("seats", None, None)]}
    want = _check("-1 < days_since(signed_on) < 40 < 50", [1], [4])
    assert want == {"a00": [("days_since(signed_on)", ">", "-1"),
                            ("days_since(signed_on)", "<", "40")]}


def test_a_chained_comparison_shows_its_values_and_operators() -> None:
    events, accounts = _frames([2], [4])
    actions = hr.evaluate(_roadmap("1 < logins <= 5"), events, accounts, AS_OF).actions
    assert actions["evidence"].to_list() == [[
        {"name": "logins", "value": "2", "band": None, "op": ">", "threshold": "1"},
        {"name": "logins", "value": "2", "band": None, "op": "<=", "threshold": "5"}]]


_ATOMS = [
    "logins > 1", "logins >= 3", "1 < logins", "logins == 0", "seats > 2", "seats < 2",
    "2 <= seats", "band(usage) == 'low'", "band(usage) != 'high'", "score < 60",
    "score_band == 'healthy'", "logins > seats", "days_since(signed_on) >= 14",
    "1 < logins < 5", "0 <= seats <= logins", "0 < logins <= 3 < 4", "seats in (1, 4)",
    "not (logins > 2)", "logins > 1",
]


def _conditions() -> st.SearchStrategy[str]:
    return st.recursive(
        st.sampled_from(_ATOMS),
        lambda inner: st.one_of(
            st.tuples(inner, inner).map(lambda t: f"({t[0]} or {t[1]})"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]} and {t[1]})"),
            inner.map(lambda e: f"not ({e})"),
        ),
        max_leaves=6,
    )


@settings(max_examples=60)
@given(when=_conditions(),
       counts=st.lists(st.integers(0, 6), min_size=N, max_size=N),
       seats=st.lists(st.one_of(st.none(), st.integers(0, 6)), min_size=N, max_size=N))
def test_the_engine_gives_the_reference_evidence(when: str, counts: list[int],
                                                 seats: list[int | None]) -> None:
    _check(when, counts, seats)
