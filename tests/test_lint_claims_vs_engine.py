"""Lint's claims about stages reached on missing data and about action lifecycles hold.

tests/test_lint_vs_engine.py checks the claims about values and conditions; these three say
what the engine will do over time or with missing values, and were not checked against it:

- HR105: a stage only gets accounts whose values are missing: every account ``evaluate``
  puts there has an earlier stage's entry unknown (null, as the account's explanation
  shows);
- HR508: an action is resolved as soon as it fires: wherever its ``when`` is true, its
  ``resolved_when`` is true too (the lifecycle's per-run signals: ``holds`` implies
  ``clear``);
- HR509: an action is escalated ``escalate_after`` days after it opens, on or before its due
  date: with daily runs (:func:`healthrules.history.history`, every 1d) each escalation of
  the action is that many days after its opening, and not after its due date (before it,
  when lint says "before").

Hypothesis draws small roadmaps whose conditions compare a few attributes and two indicators
(``recency`` is null without events) with thresholds near the accounts' values, and accounts
where any of them may be null.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import healthrules as hr
from healthrules.history import history
from healthrules.lint import lint
from healthrules.roadmap import Roadmap

Draw = st.DrawFn
AS_OF = dt.date(2026, 6, 30)
ATTRIBUTES = {"seats": "int", "ratio": "float", "vip": "bool"}
NUMBERS: dict[str, list[Any]] = {
    "seats": [0, 1, 2, 3], "ratio": [0.0, 0.5, 1.0], "logins": [0, 1, 2], "recency": [0, 2, 7]}


@st.composite
def atoms(draw: Draw) -> str:
    """A comparison of one name with a threshold, a boolean attribute, or a null test."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return str(draw(st.sampled_from(["vip", "not vip"])))
    if kind == 1:
        name = draw(st.sampled_from([*NUMBERS, "vip"]))
        return f"{name} is {draw(st.sampled_from(['None', 'not None']))}"
    name = draw(st.sampled_from(list(NUMBERS)))
    op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
    return f"{name} {op} {draw(st.sampled_from(NUMBERS[name]))}"


@st.composite
def conditions(draw: Draw) -> str:
    """An atom, or two joined by ``and`` / ``or``."""
    first = draw(atoms())
    if draw(st.booleans()):
        return first
    return f"({first}) {draw(st.sampled_from(['and', 'or']))} ({draw(atoms())})"


@st.composite
def accounts_and_events(draw: Draw) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One to five accounts, each value possibly null (a ratio NaN or infinite), and their
    logins on some of the last 21 days."""
    n = draw(st.integers(1, 5))
    ids = [f"c{k}" for k in range(n)]

    def column(values: list[Any]) -> list[Any]:
        return [draw(st.sampled_from([None, *values])) for _ in ids]

    accounts = pl.DataFrame(
        {"account_id": ids, "seats": column(NUMBERS["seats"]),
         "ratio": column([*NUMBERS["ratio"], math.inf, math.nan, 0.25]),
         "vip": column([True, False])},
        schema={"account_id": pl.String, "seats": pl.Int64, "ratio": pl.Float64,
                "vip": pl.Boolean})
    rows = [(a, AS_OF - dt.timedelta(days=d))
            for a in ids for d in draw(st.sets(st.integers(0, 20), max_size=6))]
    events = pl.DataFrame(
        {"account_id": [a for a, _ in rows], "event": ["login"] * len(rows),
         "timestamp": [dt.datetime.combine(d, dt.time(9)) for _, d in rows]},
        schema={"account_id": pl.String, "event": pl.String, "timestamp": pl.Datetime("us")})
    return accounts, events


def _roadmap(stages: list[dict[str, Any]]) -> Roadmap:
    return Roadmap.model_validate({
        "id": "r", "goal": "g",
        "data": {"events": {"user": None}, "accounts": {"attributes": ATTRIBUTES}},
        "indicators": [{"id": "logins", "family": "process", "aggregate": "count",
                        "where": "event == 'login'", "window": "7d"},
                       {"id": "recency", "family": "process", "aggregate": "days_since_last",
                        "window": "all"}],
        "stages": stages})


def _action(k: int, when: str, **more: Any) -> dict[str, Any]:
    return {"id": f"a{k}", "kind": "challenge", "when": when, "do": "x", "owner": "csm",
            "channel": "email", **more}


# --------------------------------------------------------------------------- HR105


@st.composite
def staged(draw: Draw) -> Roadmap:
    n = draw(st.integers(2, 4))
    stages: list[dict[str, Any]] = []
    for s in range(n):
        stage: dict[str, Any] = {"id": f"s{s}"}
        if s < n - 1 or draw(st.booleans()):
            # the complement of the entry before: only the accounts it leaves unknown go on
            before = stages[-1].get("entry") if stages else None
            stage["entry"] = (f"not ({before})" if before and draw(st.booleans())
                              else draw(conditions()))
        stages.append(stage)
    return _roadmap(stages)


def only_missing_claims_hold(roadmap: Roadmap, result: hr.Evaluation) -> list[str]:
    """Every HR105 finding whose stage holds an account with every earlier entry known."""
    problems = []
    for issue in lint(roadmap):
        if issue.code != "HR105":
            continue
        m = re.match(r"stages\[(\d+)\]", issue.location.path or "")
        assert m is not None, issue
        j = int(m.group(1))
        stage = roadmap.stages[j].id
        for account in result.stages.filter(pl.col("stage") == stage)["account_id"]:
            tried = result.explain(account).stages
            earlier = [t.result for t in tried if t.stage in
                       {s.id for s in roadmap.stages[:j]}]
            if None not in earlier:
                problems.append(f"HR105 {issue.message}, but {account} is in {stage} with "
                                f"every earlier entry known ({earlier})")
    return problems


@settings(max_examples=150)
@given(staged(), accounts_and_events())
def test_a_stage_lint_says_only_missing_values_reach_gets_only_those(
        roadmap: Roadmap, frames: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    accounts, events = frames
    result = hr.evaluate(roadmap, events, accounts, AS_OF)
    problems = only_missing_claims_hold(roadmap, result)
    assert not problems, "\n".join(problems)


def test_the_documented_catch_all_is_reported_and_holds() -> None:
    roadmap = _roadmap([{"id": "low", "entry": "seats < 2"}, {"id": "high", "entry": "seats >= 2"},
                        {"id": "rest"}])
    assert [i.code for i in lint(roadmap) if i.code == "HR105"] == ["HR105"]
    accounts = pl.DataFrame({"account_id": ["a", "b", "c"], "seats": [1, 5, None],
                             "ratio": [0.5] * 3, "vip": [True] * 3})
    events = pl.DataFrame(schema={"account_id": pl.String, "event": pl.String,
                                  "timestamp": pl.Datetime("us")})
    result = hr.evaluate(roadmap, events, accounts, AS_OF)
    assert result.stages["stage"].to_list() == ["low", "high", "rest"]
    assert only_missing_claims_hold(roadmap, result) == []


# --------------------------------------------------------------------------- HR508


@st.composite
def resolving(draw: Draw) -> Roadmap:
    actions = [_action(k, draw(conditions()), resolved_when=draw(conditions()))
               for k in range(draw(st.integers(1, 3)))]
    return _roadmap([{"id": "s", "actions": actions}])


def resolved_claims_hold(roadmap: Roadmap, accounts: pl.DataFrame,
                         events: pl.DataFrame) -> list[str]:
    """Every HR508 finding whose action holds for an account whose resolved_when is not
    true, in the lifecycle's signals of one run."""
    flagged = {}
    for issue in lint(roadmap):
        if issue.code == "HR508":
            m = re.match(r"stages\[0\]\.actions\[(\d+)\]", issue.location.path or "")
            assert m is not None, issue
            flagged[roadmap.stages[0].actions[int(m.group(1))].id] = issue.message
    if not flagged:
        return []
    signals = history(roadmap, events, accounts, AS_OF, AS_OF, every="1d").signals
    assert signals is not None
    wrong = signals.filter(pl.col("action_id").is_in(list(flagged)) & pl.col("holds")
                           & ~pl.col("clear"))
    return [f"HR508 {flagged[r['action_id']]}, but for {r['account_id']} it holds and "
            "resolved_when is not true" for r in wrong.to_dicts()]


@settings(max_examples=150)
@given(resolving(), accounts_and_events())
def test_an_action_lint_says_is_resolved_at_once_has_resolved_when_true_where_it_fires(
        roadmap: Roadmap, frames: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    accounts, events = frames
    problems = resolved_claims_hold(roadmap, accounts, events)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- HR509


@st.composite
def escalating(draw: Draw) -> Roadmap:
    actions = []
    for k in range(draw(st.integers(1, 3))):
        more: dict[str, Any] = {"due": f"{draw(st.integers(1, 6))}d"}
        if draw(st.integers(0, 3)) == 0:
            more["escalate_from"] = "due"
        if "escalate_from" not in more or draw(st.booleans()):
            more["escalate_after"] = f"{draw(st.integers(1, 6))}d"
        if draw(st.booleans()):
            more["for"] = f"{draw(st.integers(1, 3))}d"
        if draw(st.booleans()):
            more["cooldown"] = f"{draw(st.integers(1, 3))}d"
        actions.append(_action(k, draw(conditions()), **more))
    return _roadmap([{"id": "s", "actions": actions}])


def escalation_claims_hold(roadmap: Roadmap, accounts: pl.DataFrame,
                           events: pl.DataFrame) -> list[str]:
    """Every HR509 finding contradicted by an escalation of daily runs over two weeks."""
    flagged: dict[str, tuple[str, int, bool]] = {}
    for issue in lint(roadmap):
        if issue.code == "HR509":
            m = re.match(r"stages\[0\]\.actions\[(\d+)\]", issue.location.path or "")
            assert m is not None, issue
            action = roadmap.stages[0].actions[int(m.group(1))]
            assert action.escalate_after is not None
            flagged[action.id] = (issue.message, action.escalate_after,
                                  " before its due date" in issue.message)
    if not flagged:
        return []
    runs = history(roadmap, events, accounts, AS_OF - dt.timedelta(days=14), AS_OF,
                   every="1d")
    changes = runs.lifecycle.changes
    problems = []
    for r in changes.filter(pl.col("change") == "escalated").to_dicts():
        if r["action_id"] not in flagged:
            continue
        message, after, before = flagged[r["action_id"]]
        day, due = r["as_of"], r["due_date"]
        if r["days_open"] != after:
            problems.append(f"HR509 {message}, but {r['account_id']} was escalated "
                            f"{r['days_open']} day(s) after it opened")
        if due is None or day > due or (before and day == due):
            problems.append(f"HR509 {message}, but {r['account_id']} was escalated on {day}, "
                            f"due {due}")
    return problems


@settings(max_examples=60)
@given(escalating(), accounts_and_events())
def test_an_action_lint_says_is_escalated_before_due_is_escalated_by_its_due_date(
        roadmap: Roadmap, frames: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    accounts, events = frames
    problems = escalation_claims_hold(roadmap, accounts, events)
    assert not problems, "\n".join(problems)


def test_the_documented_escalation_is_reported_and_holds() -> None:
    roadmap = _roadmap([{"id": "s", "actions": [
        _action(0, "seats >= 0", due="7d", escalate_after="5d"),
        _action(1, "seats >= 0", due="7d", escalate_after="7d"),
        _action(2, "seats >= 0", due="7d", escalate_from="due", escalate_after="2d")]}])
    found = [(i.code, i.location.path) for i in lint(roadmap) if i.code == "HR509"]
    assert found == [("HR509", "stages[0].actions[0].escalate_after"),
                     ("HR509", "stages[0].actions[1].escalate_after")]
    accounts = pl.DataFrame({"account_id": ["a"], "seats": [1], "ratio": [0.5], "vip": [True]})
    events = pl.DataFrame(schema={"account_id": pl.String, "event": pl.String,
                                  "timestamp": pl.Datetime("us")})
    assert escalation_claims_hold(roadmap, accounts, events) == []
    changes = history(roadmap, events, accounts, AS_OF - dt.timedelta(days=14), AS_OF,
                      every="1d").lifecycle.changes.filter(pl.col("change") == "escalated")
    assert sorted((r["action_id"], r["days_open"]) for r in changes.to_dicts()) == [
        ("a0", 5), ("a1", 7), ("a2", 9)]


# --------------------------------------------------------------------------- HR204


def test_the_same_aggregate_of_two_sources_is_not_a_duplicate() -> None:
    # HR204 once said 'billing_n' "computes the same value as" 'usage_n': its signature
    # left out the event source, so the count of billing events was called the count of
    # usage events
    roadmap = Roadmap.model_validate({
        "id": "r", "goal": "g",
        "data": {"events": {"usage": {"user": None},
                            "billing": {"user": None, "event": None, "timestamp": "at"}}},
        "indicators": [
            {"id": "usage_n", "family": "process", "aggregate": "count", "window": "30d"},
            {"id": "billing_n", "family": "process", "aggregate": "count", "window": "30d",
             "source": "billing"},
            {"id": "usage_again", "family": "process", "aggregate": "count", "window": "30d",
             "source": "usage"}],
        "stages": [{"id": "s"}]})
    found = [(i.location.path, i.message) for i in lint(roadmap) if i.code == "HR204"]
    assert found == [("indicators[2]", "indicator 'usage_again' computes the same value as "
                      "'usage_n'")]
    day = dt.datetime(2026, 6, 29, 9)
    usage = pl.DataFrame({"account_id": ["a", "a"], "event": ["x", "x"],
                          "timestamp": [day, day]})
    billing = pl.DataFrame({"account_id": ["a"], "at": [day]})
    accounts = pl.DataFrame({"account_id": ["a"]})
    row = hr.evaluate(roadmap, {"usage": usage, "billing": billing}, accounts,
                      AS_OF).indicators.row(0, named=True)
    assert (row["usage_n"], row["billing_n"], row["usage_again"]) == (2, 1, 2)
