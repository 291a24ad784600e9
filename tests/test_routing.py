"""Actions a team can route: due dates, owners from account data, snoozes and dismissals.

Due dates (``due: 3d`` or a date expression) in the actions frame, in texts and in the
store, escalation counted from the due date, the owner read from an account attribute,
located load-time errors, and the holds (snooze, dismiss) of the daily run and of history
replays.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import healthrules as hr
from healthrules.errors import RoadmapError
from healthrules.history import StateStore, history, run
from healthrules.history import store as store_module
from healthrules.history.holds import Hold, HoldError
from healthrules.history.lifecycle import replay
from healthrules.loader import load_text
from test_store import _events, day


def _roadmap(**action: Any) -> hr.Roadmap:
    return hr.Roadmap.model_validate({
        "id": "rt", "goal": "g",
        "data": {"events": {"user": None, "values": {"x": "float"}},
                 "accounts": {"attributes": {"csm_email": "str", "renewal": "date"}}},
        "indicators": [{"id": "x", "family": "process", "aggregate": "max", "of": "x",
                        "window": "1d"}],
        "stages": [{"id": "all"}],
        "actions": [{"id": "fix", "kind": "challenge", "when": "x < 3",
                     "do": "x is {x}, due {due_date}", "due": "3d",
                     "owner": {"attribute": "csm_email", "role": "csm",
                               "fallback": "cs-team@example.com"}, **action}],
    })


ACCOUNTS = pl.DataFrame({"account_id": ["a", "b"], "csm_email": ["ann@example.com", None],
                         "renewal": [dt.date(2026, 4, 30), None]})
VALUES = {"a": [2, 2, 2, 2, 2, 2, 2, 5], "b": [5, 5, 2, 2, 2, 2, 2, 2]}


# ---------------------------------------------------------------------- one evaluation


def test_due_date_owner_and_role_in_the_actions_frame() -> None:
    ev = hr.evaluate(_roadmap(), _events(VALUES), ACCOUNTS, day(3))
    rows = ev.actions.select("account_id", "owner", "owner_role", "due_date", "text").rows()
    assert rows == [
        ("a", "ann@example.com", "csm", day(6), "x is 2.00, due 2026-03-06"),
        ("b", "cs-team@example.com", "csm", day(6), "x is 2.00, due 2026-03-06")]
    record = ev.triggered_actions()[0]
    assert (record.owner, record.owner_role, record.due_date) == (
        "ann@example.com", "csm", day(6))


def test_a_due_expression_gives_the_date_it_reads() -> None:
    ev = hr.evaluate(_roadmap(due="renewal", owner="csm"), _events(VALUES), ACCOUNTS, day(3))
    rows = ev.actions.select("account_id", "owner", "owner_role", "due_date", "text").rows()
    assert rows == [("a", "csm", "csm", dt.date(2026, 4, 30), "x is 2.00, due 2026-04-30"),
                    ("b", "csm", "csm", None, "x is 2.00, due n/a")]


def test_no_due_and_a_role_owner_keep_the_old_columns() -> None:
    r = _roadmap(due=None, owner="csm", do="x is {x}")
    ev = hr.evaluate(r, _events(VALUES), ACCOUNTS, day(3))
    assert ev.actions["owner"].to_list() == ["csm", "csm"]
    assert ev.actions["due_date"].null_count() == 2
    assert ev.actions.schema["due_date"] == pl.Date
    none = hr.evaluate(r, _events(VALUES), ACCOUNTS, day(8)).actions.filter(
        pl.col("account_id") == "zzz")
    assert none.columns == ev.actions.columns


ROADMAP_YAML = """\
id: r
goal: g
data:
  accounts: {attributes: {csm_email: str, renewal: date, seats: int, vip: bool}}
stages:
  - id: s
    actions:
      - id: a
        kind: challenge
        when: "True"
        do: "by {due_date}"
"""


@pytest.mark.parametrize(("extra", "message", "path", "hint"), [
    ("        due: 3d\n        owner: {attribute: csm_emial}\n",
     "owner reads unknown account attribute 'csm_emial'", "stages[0].actions[0].owner.attribute",
     "did you mean 'csm_email'?"),
    ("", "the text quotes {due_date}, but the action has no due", "stages[0].actions[0].do",
     "e.g. due: 3d"),
    ("        due: seats\n", "due must give a date", "stages[0].actions[0].due",
     "date attribute"),
    ("        due: 3 days\n", "a duration must be", "stages[0].actions[0].due", None),
    ("        due: renewl\n", "unknown name 'renewl'", "stages[0].actions[0].due",
     "did you mean 'renewal'?"),
    ("        due: 2w\n        owner: {attribute: vip}\n", "its attribute must be text",
     "stages[0].actions[0].owner.attribute", None),
    ("        due: 2w\n        owner: {atribute: csm_email}\n", "unknown key 'atribute'",
     "stages[0].actions[0].owner.atribute", "did you mean 'attribute'?"),
    ("        escalate_from: due\n        due: null\n", "escalates from its due date",
     "stages[0].actions[0]", None),
])
def test_routing_mistakes_are_located_at_load_time(extra: str, message: str, path: str,
                                                   hint: str | None) -> None:
    with pytest.raises(hr.HealthRulesError) as info:
        load_text(ROADMAP_YAML + extra)
    issues = [i for i in info.value.issues if message in i.message]
    assert issues, [i.message for i in info.value.issues]
    issue = issues[0]
    assert issue.location.path == path and issue.location.line is not None
    if hint is not None:
        assert hint in (issue.hint or "")


def test_due_and_owner_need_no_roadmap_error_when_right() -> None:
    r = load_text(ROADMAP_YAML + "        due: renewal\n        escalate_from: due\n"
                  "        owner: {attribute: seats, role: csm}\n")
    assert isinstance(r, hr.Roadmap)
    action = r.stages[0].actions[0]
    assert (action.due_expr, action.owner_attribute, action.owner_role,
            action.escalate_days) == ("renewal", "seats", "csm", 1)
    assert not isinstance(r, RoadmapError)


# ---------------------------------------------------------------------- the daily run


def test_the_store_keeps_the_due_date_and_owner_of_the_opening(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    results = [run(_roadmap(), path, _events(VALUES), ACCOUNTS, day(k)) for k in (1, 2, 3)]
    opened = results[0].changes.select("account_id", "change", "due_date", "owner",
                                       "owner_role").rows()
    assert opened == [("a", "opened", day(4), "ann@example.com", "csm")]
    # the due date stays that of the opening, run after run
    assert results[2].open.select("account_id", "opened_at", "due_date", "owner").rows() == [
        ("a", day(1), day(4), "ann@example.com"), ("b", day(3), day(6), "cs-team@example.com")]
    with StateStore(path) as store:
        state = store.actions()
        changes = store.changes()
    assert state.filter(pl.col("account_id") == "a")["due_date"].to_list() == [day(4)]
    assert changes["due_date"].to_list() == [day(4), day(6)]
    assert changes["owner_role"].to_list() == ["csm", "csm"]


def _escalated(roadmap: hr.Roadmap, path: Path, days: range) -> list[tuple[Any, ...]]:
    results = [run(roadmap, path, _events(VALUES), ACCOUNTS, day(k)) for k in days]
    return [(res.as_of, *row) for res in results for row in res.changes.filter(
        pl.col("change") == "escalated").select("account_id", "days_open").rows()]


def test_escalation_counts_from_the_due_date(tmp_path: Path) -> None:
    # a opens on day 1, due day 4 (3d): escalated 2 days after the due date, on day 6
    r = _roadmap(escalate_after="2d", escalate_from="due")
    assert _escalated(r, tmp_path / "s.db", range(1, 8)) == [(day(6), "a", 5)]
    # without escalate_after: once overdue, the day after the due date
    r1 = _roadmap(escalate_from="due")
    assert _escalated(r1, tmp_path / "t.db", range(1, 6)) == [(day(5), "a", 4)]
    # counted from the opening (the default): 2d escalates on day 3
    r2 = _roadmap(escalate_after="2d")
    assert _escalated(r2, tmp_path / "u.db", range(1, 4)) == [(day(3), "a", 2)]


def test_an_escalation_shows_the_text_of_the_opening(tmp_path: Path) -> None:
    # the escalation on day 6 must not re-render "due {due_date}" from day 6 (due day 9)
    r = _roadmap(escalate_after="2d", escalate_from="due")
    results = [run(r, tmp_path / "s.db", _events(VALUES), ACCOUNTS, day(k)) for k in range(1, 8)]
    rows = [row for res in results for row in res.changes.filter(
        pl.col("account_id") == "a").select("change", "due_date", "text").rows()]
    opened = next(row for row in rows if row[0] == "opened")
    escalated = next(row for row in rows if row[0] == "escalated")
    assert escalated[1:] == opened[1:]
    assert f"due {day(4).isoformat()}" in escalated[2]


def test_a_due_date_from_a_null_attribute_never_escalates(tmp_path: Path) -> None:
    r = _roadmap(due="renewal", escalate_from="due", do="x is {x}")
    accounts = ACCOUNTS.with_columns(pl.lit(None, pl.Date).alias("renewal"))
    results = [run(r, tmp_path / "s.db", _events(VALUES), accounts, day(k)) for k in range(1, 9)]
    assert all(res.changes.filter(pl.col("change") == "escalated").height == 0
               for res in results)
    assert results[1].open["due_date"].to_list() == [None]


# ---------------------------------------------------------------------- holds


def _changes(results: list[Any]) -> list[tuple[Any, ...]]:
    return [(res.as_of.day, *row) for res in results for row in res.changes.select(
        "account_id", "change", "reason").rows()]


def test_a_snooze_keeps_an_action_from_opening_until_it_expires(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    r = _roadmap(do="x is {x}")
    snooze = Hold(account="b", action="fix", hold="snooze", reason="on holiday",
                  until=day(6))
    results = [run(r, path, _events(VALUES), ACCOUNTS, day(1)),
               run(r, path, _events(VALUES), ACCOUNTS, day(2), holds=[snooze])]
    results += [run(r, path, _events(VALUES), ACCOUNTS, day(k)) for k in range(3, 8)]
    # b's condition holds from day 3; the snooze (days 2-5) holds it back until day 6
    assert _changes(results) == [(1, "a", "opened", None), (6, "b", "opened", None)]
    # listed in every run until it expires, then reported as ended
    listed = [res.holds.select("account_id", "action_id", "hold", "days_left").rows()
              for res in results]
    assert listed[0] == [] and listed[1] == [("b", "fix", "snooze", 4)]
    assert listed[4] == [("b", "fix", "snooze", 1)] and listed[5] == []
    assert results[5].expired_holds.select("account_id", "ended_on").rows() == [("b", day(6))]
    assert "1 snooze(s)/dismissal(s) in force" in results[2].summary()


def test_a_snoozed_open_action_stays_open_and_is_not_escalated(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    r = _roadmap(do="x is {x}", escalate_after="2d")
    snooze = Hold(account="a", action="fix", hold="snooze", reason="waiting for the customer",
                  until=day(5))
    results = [run(r, path, _events(VALUES), ACCOUNTS, day(1)),
               run(r, path, _events(VALUES), ACCOUNTS, day(2), holds=[snooze])]
    results += [run(r, path, _events(VALUES), ACCOUNTS, day(k)) for k in range(3, 6)]
    assert results[2].open.filter(pl.col("account_id") == "a")["snoozed_until"].to_list() == [
        day(5)]
    # escalation waits for the end of the snooze (due on day 3 without it)
    assert [c for c in _changes(results) if c[1] == "a"] == [
        (1, "a", "opened", None), (5, "a", "escalated", None)]


def test_a_dismissal_resolves_now_and_keeps_the_action_closed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    r = _roadmap(do="x is {x}")
    dismiss = Hold(account="a", action="fix", hold="dismiss", reason="customer is migrating",
                   until=day(4))
    results = [run(r, path, _events(VALUES), ACCOUNTS, day(1)),
               run(r, path, _events(VALUES), ACCOUNTS, day(2), holds=[dismiss])]
    results += [run(r, path, _events(VALUES), ACCOUNTS, day(k)) for k in range(3, 6)]
    assert [c for c in _changes(results) if c[1] == "a"] == [
        (1, "a", "opened", None), (2, "a", "resolved", "dismissed"), (4, "a", "opened", None)]


def test_unsnooze_ends_a_hold_early_and_a_rerun_does_not_store_it_twice(
        tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    r = _roadmap(do="x is {x}")
    snooze = Hold(account="b", action="fix", hold="snooze", reason="on holiday", until=day(8))
    run(r, path, _events(VALUES), ACCOUNTS, day(2), holds=[snooze])
    again = run(r, path, _events(VALUES), ACCOUNTS, day(2), holds=[snooze])  # a rerun
    assert again.held == (1,)
    assert run(r, path, _events(VALUES), ACCOUNTS, day(3)).changes.height == 0
    ended = run(r, path, _events(VALUES), ACCOUNTS, day(4), unholds=[1])
    assert ended.changes.select("account_id", "change").rows() == [("b", "opened")]
    with StateStore(path) as store:
        holds = store.holds()
    assert holds.select("id", "account_id", "hold", "removed_on").rows() == [
        (1, "b", "snooze", day(4))]


def test_holds_name_real_accounts_and_actions(tmp_path: Path) -> None:
    r = _roadmap(do="x is {x}")
    with pytest.raises(HoldError, match="no action 'fixx'") as info:
        run(r, tmp_path / "s.db", _events(VALUES), ACCOUNTS, day(1),
            holds=[Hold(account="a", action="fixx", hold="snooze", reason="r", until=day(3))])
    assert "did you mean 'fix'?" in (info.value.issues[0].hint or "")
    with pytest.raises(HoldError, match="no account 'zz'"):
        run(r, tmp_path / "s.db", _events(VALUES), ACCOUNTS, day(1),
            holds=[Hold(account="zz", action="fix", hold="dismiss", reason="r", until=day(3))])
    with pytest.raises(hr.HealthRulesError, match="needs a reason"):
        run(r, tmp_path / "s.db", _events(VALUES), ACCOUNTS, day(1),
            holds=[Hold(account="a", action="fix", hold="snooze", reason=" ", until=day(3))])
    assert not (tmp_path / "s.db").exists() or StateStore(tmp_path / "s.db").last_run() is None


def test_history_replays_honour_the_holds_of_the_store(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    r = _roadmap(do="x is {x}")
    holds = {2: [Hold(account="b", action="fix", hold="snooze", reason="holiday",
                      until=day(6))],
             3: [Hold(account="a", action="fix", hold="dismiss", reason="migrating",
                      until=day(5))]}
    daily = [run(r, path, _events(VALUES), ACCOUNTS, day(k), holds=holds.get(k, ()))
             for k in range(1, 9)]
    with StateStore(path) as store:
        stored = store.holds()
    hist = history(r, _events(VALUES), ACCOUNTS, day(1), day(8), every="1d")
    replayed = replay(hist, holds=stored)
    want = [(res.as_of, *row) for res in daily for row in res.changes.select(
        "account_id", "action_id", "change", "reason", "due_date").rows()]
    got = replayed.changes.select("as_of", "account_id", "action_id", "change", "reason",
                                  "due_date").rows()
    assert got == want
    assert ("a", "resolved", "dismissed") in [(w[1], w[3], w[4]) for w in want]
    # without the holds the replay differs (b opens on day 3)
    plain = replay(hist).changes.filter(pl.col("account_id") == "b")
    assert plain["as_of"].to_list()[0] == day(3)


# ---------------------------------------------------------------------- the store


def _downgrade_to_version_2(path: Path) -> None:
    """Make a store written by this version look like one written by schema version 2."""
    conn = sqlite3.connect(path)
    for table, column, _ in store_module._V3_COLUMNS:
        conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.execute("DROP TABLE holds")
    conn.execute("DROP TABLE deliveries")
    conn.execute("DROP TABLE run_scores")  # version 4
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()


def test_a_version_2_store_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    r = _roadmap(do="x is {x}")
    run(r, path, _events(VALUES), ACCOUNTS, day(1))
    _downgrade_to_version_2(path)
    assert store_module.check_store(path) == []  # a valid version-2 store
    with StateStore(path) as store:
        assert store.schema_version == store_module.SCHEMA_VERSION
        assert store.actions()["due_date"].to_list() == [None]  # opened before version 3
    res = run(r, path, _events(VALUES), ACCOUNTS, day(2),
              holds=[Hold(account="a", action="fix", hold="dismiss", reason="r", until=day(4))])
    assert res.changes.select("account_id", "reason").rows() == [("a", "dismissed")]
    assert store_module.check_store(path) == []


@pytest.mark.parametrize("action", [
    {}, {"due": "renewal", "owner": "csm"}, {"due": "2w", "owner": {"attribute": "csm_email"}}])
def test_explain_gives_the_due_date_and_owner_the_engine_gives(action: dict[str, Any]) -> None:
    ev = hr.evaluate(_roadmap(**action), _events(VALUES), ACCOUNTS, day(3))
    for row in ev.actions.to_dicts():
        trace = next(a for a in ev.explain(row["account_id"]).actions if a.action_id == "fix")
        assert trace.fired
        assert (trace.due_date, trace.owner) == (row["due_date"], row["owner"])
    text = str(ev.explain("a"))
    assert f"fix [challenge]: FIRED, due {ev.actions['due_date'][0]}" in text
    person = str(ev.explain("a")) if action.get("owner") != "csm" else ""
    if person:
        assert ev.actions["owner"][0] in person


# ---------------------------------------------------------------------- property


@st.composite
def _scenarios(draw: st.DrawFn) -> dict[str, Any]:
    values = {acc: draw(st.lists(st.sampled_from([1.0, 2.0, 5.0, None]), min_size=7,
                                 max_size=7)) for acc in ("a", "b", "c")}
    holds: dict[int, list[Hold]] = {}
    for _ in range(draw(st.integers(0, 3))):
        start = draw(st.integers(1, 6))
        holds.setdefault(start, []).append(Hold(
            account=draw(st.sampled_from(["a", "b", "c"])), action="fix",
            hold=draw(st.sampled_from(["snooze", "dismiss"])), reason="r",
            until=day(start + draw(st.integers(1, 4)))))
    action: dict[str, Any] = {"do": "x is {x} by {due_date}"}
    action.update(draw(st.sampled_from([
        {}, {"escalate_after": "1d"}, {"escalate_from": "due"},
        {"escalate_from": "due", "escalate_after": "2d", "due": "1d"},
        {"for": "2d", "cooldown": "2d"}, {"due": "renewal", "escalate_from": "due"}])))
    return {"values": values, "holds": holds, "action": action,
            "unhold": draw(st.sampled_from([None, 3, 5]))}


@settings(max_examples=12, deadline=None)
@given(_scenarios())
def test_daily_runs_with_holds_equal_the_history_replay(scenario: dict[str, Any]) -> None:
    """Property: whatever the holds, a sequence of daily runs and a replay of the history
    with the store's holds report the same changes (with the same due dates and owners)."""
    import tempfile

    r = _roadmap(**scenario["action"])
    events = _events(scenario["values"])
    accounts = ACCOUNTS.vstack(pl.DataFrame({"account_id": ["c"], "csm_email": ["cy@x"],
                                             "renewal": [day(9)]}))
    path = Path(tempfile.mkdtemp()) / "s.db"
    daily = []
    for k in range(1, 8):
        unholds = [1] if scenario["unhold"] == k and scenario["holds"] else []
        daily.append(run(r, path, events, accounts, day(k),
                         holds=scenario["holds"].get(k, ()), unholds=unholds))
    with StateStore(path) as store:
        stored = store.holds()
    replayed = replay(history(r, events, accounts, day(1), day(7), every="1d"), holds=stored)
    cols = ["account_id", "action_id", "change", "reason", "due_date", "owner", "days_open"]
    want = [(res.as_of, *row) for res in daily for row in res.changes.select(cols).rows()]
    assert replayed.changes.select("as_of", *cols).rows() == want


def test_a_version_2_store_opened_read_only_reads_without_the_new_columns(
        tmp_path: Path) -> None:
    """A read-only reader (the report, ``store backup``) does not upgrade the file."""
    path = tmp_path / "s.db"
    run(_roadmap(do="x is {x}"), path, _events(VALUES), ACCOUNTS, day(1))
    _downgrade_to_version_2(path)
    with StateStore(path, readonly=True, create=False) as store:
        assert store.schema_version == 2
        assert store.actions()["due_date"].to_list() == [None]
        assert store.changes()["owner"].to_list() == [None]
        assert store.holds().height == 0 and store.deliveries().height == 0
        assert store.run_scores().height == 0


def test_history_frames_carry_the_due_date_and_owner_evaluate_gives() -> None:
    """History renders texts lazily; due dates and owners come with every fired row, and
    agree with one evaluation per date."""
    r = _roadmap(owner={"attribute": "csm_email", "fallback": "team"})
    hist = history(r, _events(VALUES), ACCOUNTS, day(1), day(4), every="1d")
    cols = ["account_id", "action_id", "owner", "owner_role", "due_date", "text"]
    index = hist.fired.index.select("as_of", *cols[:-1]).rows()
    got = hist.actions.select("as_of", *cols).rows()
    want = [(d, *row) for d in hist.dates
            for row in hr.evaluate(r, _events(VALUES), ACCOUNTS, d).actions.select(cols).rows()]
    assert got == want
    assert index == [row[:-1] for row in want]
