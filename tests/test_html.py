"""The notebook HTML of roadmaps and evaluations: table structure, escaping, empty cases."""

from __future__ import annotations

import datetime as dt
import doctest
from html.parser import HTMLParser
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules import _html
from healthrules.datasets import sample
from healthrules.examples import example_path
from healthrules.plot import band_colors

EVIL = "<script>alert('x')</script>"


class _Tables(HTMLParser):
    """Collect every table as rows of cell texts, and the raw tags seen."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.tags: list[str] = []
        self._stack: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if self._cell is not None and tag in ("br", "li", "div", "p"):
            self._cell.append(" ")
        if tag == "table":
            self._stack.append([])
        elif tag == "tr" and self._stack:
            self._stack[-1].append([])
        elif tag in ("td", "th") and self._stack:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.tables.append(self._stack.pop())
        elif tag in ("td", "th") and self._cell is not None and self._stack:
            self._stack[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> _Tables:
    p = _Tables()
    p.feed(html)
    p.close()
    return p


def table_with(html: str, first_header: str) -> list[list[str]]:
    for t in parse(html).tables:
        if t and t[0] and t[0][0] == first_header:
            return t
    raise AssertionError(f"no table starting with {first_header!r}")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def b2b() -> hr.Roadmap:
    r = hr.load(example_path("b2b-saas"))
    assert isinstance(r, hr.Roadmap)
    return r


@pytest.fixture(scope="module")
def b2b_result(b2b: hr.Roadmap) -> hr.Evaluation:
    data = sample(120)
    return hr.evaluate(b2b, data.events, data.accounts, data.as_of)


def tiny_roadmap(text: str = "ok", **changes: Any) -> hr.Roadmap:
    """A small roadmap whose every free text is ``text``."""
    spec: dict[str, Any] = {
        "id": "tiny",
        "title": text,
        "description": text,
        "goal": {"text": text, "perspective": "customer"},
        "data": {"events": {"timezone": "UTC"}, "accounts": {"attributes": {"plan": "str"}}},
        "indicators": [{
            "id": "logins", "title": text, "description": text, "unit": text,
            "family": "process", "aggregate": "count", "where": "event == 'login'",
            "window": "30d",
            "bands": {"levels": [{"name": "low", "lt": 2}, {"name": "ok", "ge": 2}]},
        }],
        "stages": [
            {"id": "trial", "title": text, "description": text, "entry": "plan == 'trial'",
             "achievement": {"text": text, "when": "logins >= 2"},
             "tasks": {"joint": [text], "customer": [{"text": text, "done_when": "logins > 0"}],
                       "ours": [text]},
             "actions": [{"id": "trial_quiet", "kind": "challenge", "title": text,
                          "when": "logins < 2", "do": text + " {plan}", "owner": text,
                          "channel": text, "priority": "high"}]},
            {"id": "paid", "title": text},
        ],
        "actions": [{"id": "busy", "kind": "positive", "when": "logins >= 2",
                     "do": text + " {logins} logins", "priority": "low"}],
        "score": {"title": text, "bands": {"levels": [{"name": "red", "lt": 50},
                                                      {"name": "green", "ge": 50}]}},
    }
    spec.update(changes)
    return hr.Roadmap.model_validate(spec)


def frames(plan_values: list[str], logins: list[int]) -> tuple[pl.DataFrame, pl.DataFrame]:
    ids = [f"<a{i}>" for i in range(len(plan_values))]
    accounts = pl.DataFrame({"account_id": ids, "plan": plan_values},
                            schema={"account_id": pl.String, "plan": pl.String})
    rows = [(a, f"{a}-u", "login", dt.datetime(2026, 6, 20, 9, n % 60, tzinfo=dt.UTC))
            for a, k in zip(ids, logins, strict=True) for n in range(k)]
    events = pl.DataFrame(
        rows, schema={"account_id": pl.String, "user_id": pl.String, "event": pl.String,
                      "timestamp": pl.Datetime("us", "UTC")}, orient="row")
    return events, accounts


AS_OF = dt.date(2026, 6, 30)


# --------------------------------------------------------------------------- roadmap


def test_roadmap_table_has_the_success_roadmap_columns_and_a_row_per_stage(
        b2b: hr.Roadmap) -> None:
    html = b2b._repr_html_()
    assert html == _html.roadmap_html(b2b)
    table = table_with(html, "Stage")
    assert table[0] == ["Stage", "Achievement state", "Joint tasks", "Customer tasks",
                        "Our tasks", "Positive actions", "Challenge actions"]
    body = table[1:]
    assert len(body) == len(b2b.stages) + 1  # + the roadmap-wide "Every stage" row
    for row, stage in zip(body, b2b.stages, strict=False):
        assert row[0].startswith(stage.title or stage.id)
        assert stage.id in row[0]
        assert len(row) == 7
        assert stage.achievement is not None and stage.achievement.text.split()[0] in row[1]
        for col, lst in ((2, stage.tasks.joint), (3, stage.tasks.customer),
                         (4, stage.tasks.ours)):
            for task in lst:
                assert " ".join(task.text.split()) in row[col]
        for a in stage.actions:
            col = 5 if a.kind == "positive" else 6
            assert a.id in row[col] and a.id not in row[11 - col]
    every = body[-1]
    assert every[0] == "Every stage" and len(every) == 4  # colspan=4 in the middle
    for a in b2b.actions:
        assert a.id in (every[2] if a.kind == "positive" else every[3])


def test_roadmap_sections_list_indicators_bands_and_score(b2b: hr.Roadmap) -> None:
    html = _html.roadmap_html(b2b)
    assert "Goal" in html and "roi_goal_reached &gt;= 1" in html
    indicators = table_with(html, "Indicator")
    assert indicators[0] == ["Indicator", "Family", "Definition", "Bands", "Weight"]
    assert [row[0].split()[0] for row in indicators[1:]] == [i.id for i in b2b.indicators]
    by_id = {row[0].split()[0]: row for row in indicators[1:]}
    assert by_id["first_login_rate"][3] == "low < 0.5 ≤ medium < 0.8 ≤ high"
    assert by_id["tickets_90d"][3] == "few ≤ 2 < some ≤ 5 < many (lower is better)"
    assert by_id["seat_utilisation"][4] == "2"
    assert by_id["active_users_30d"][2] == (
        "distinct users where event == 'login', in the last 30 days")
    assert "compared with the previous 28 days (pct_change)" in by_id["key_user_login_change"][2]
    # band badges carry the band colours, worst red to best green
    colors = band_colors(b2b.indicator("first_login_rate").bands)  # type: ignore[arg-type]
    assert f"background:{colors['low']}" in html and colors["low"] == "#d73027"
    assert "in stage <code class='hr-id'>onboarding</code>" in html
    assert "missing values: skip" in html


def test_roadmap_escapes_every_text() -> None:
    r = tiny_roadmap(EVIL, applies_to="plan != '<b>'")
    html = _html.roadmap_html(r)
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert html.count("&lt;script&gt;") >= 15  # titles, descriptions, tasks, actions, goal
    assert "plan != &#x27;&lt;b&gt;&#x27;" in html
    assert "logins &lt; 2" in html
    tags = set(parse(html).tags)
    assert tags <= {"div", "style", "h4", "p", "b", "br", "span", "code", "table", "thead",
                    "tbody", "tr", "th", "td", "ul", "li", "details", "summary", "i"}


def test_roadmap_minimal_renders_dashes_and_no_every_stage_row() -> None:
    r = hr.Roadmap.model_validate({"id": "bare", "goal": "g", "stages": [{"id": "only"}]})
    html = _html.roadmap_html(r)
    table = table_with(html, "Stage")
    assert len(table) == 2
    assert table[1][0] == "only entry: always"
    assert table[1][1:] == ["-"] * 6
    assert "Every stage" not in html
    assert "<b>Indicators:</b> <span class='hr-muted'>none</span>" in html
    assert "every banded indicator, weight 1" in html
    assert "bare" in html and "version 1" in html


# --------------------------------------------------------------------------- evaluation


def test_evaluation_counts_stages_in_declared_order_and_bands_worst_first(
        b2b: hr.Roadmap, b2b_result: hr.Evaluation) -> None:
    html = b2b_result._repr_html_()
    assert html == _html.evaluation_html(b2b_result)
    table = table_with(html, "Stage")
    assert table[0] == ["Stage", "Accounts", "at_risk", "watch", "healthy",
                        "Challenge actions", "Positive actions"]
    stages = [row[0].split()[0] for row in table[1:-1]]
    assert stages == [s.id for s in b2b.stages]
    joined = b2b_result.scores
    for row in table[1:-1]:
        sid = row[0].split()[0]
        in_stage = joined.filter(pl.col("stage") == sid)
        assert int(row[1].split()[0]) == in_stage.height
        for i, band in enumerate(("at_risk", "watch", "healthy"), start=2):
            assert int(row[i]) == in_stage.filter(pl.col("score_band") == band).height
        fired = b2b_result.actions.filter(pl.col("stage") == sid)
        assert int(row[5]) == fired.filter(pl.col("kind") == "challenge").height
        assert int(row[6]) == fired.filter(pl.col("kind") == "positive").height
    total = table[-1]
    assert total[0] == "Total" and int(total[1]) == b2b_result.stages.height
    assert int(total[5]) + int(total[6]) == b2b_result.actions.height


def test_evaluation_lists_every_action_and_the_top_ones_with_evidence(
        b2b_result: hr.Evaluation) -> None:
    html = _html.evaluation_html(b2b_result, top=5)
    per_action = table_with(html, "Action")
    assert per_action[0] == ["Action", "Stage", "Priority", "Fired", "Considered", "Unknown"]
    assert [row[0].split()[0] for row in per_action[1:]] == b2b_result.conditions[
        "action_id"].to_list()
    fired = dict(zip(b2b_result.conditions["action_id"], b2b_result.conditions["fired"],
                     strict=True))
    for row in per_action[1:]:
        assert int(row[3]) == fired[row[0].split()[0]]
    top = table_with(html, "Account")
    assert top[0] == ["Account", "Stage", "Score", "Action", "Priority", "Owner / channel",
                      "Do", "Evidence"]
    assert len(top) == 6
    priorities = [row[4] for row in top[1:]]
    rank = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    assert priorities == sorted(priorities, key=rank.__getitem__)
    assert priorities[0] == "critical"
    scores = [float(row[2]) for row in top[1:] if row[4] == priorities[0]]
    assert scores == sorted(scores)
    assert "condition &lt; 40" in html or "condition == &#x27;low&#x27;" in html
    assert f"and {b2b_result.actions.height - 5} more" in html


def test_evaluation_escapes_account_keys_attributes_and_texts() -> None:
    r = tiny_roadmap(EVIL)
    events, accounts = frames(["trial", EVIL, "paid"], [0, 3, 1])
    result = hr.evaluate(r, events, accounts, AS_OF)
    assert result.actions.height == 2  # trial_quiet for <a0>, busy for <a1>
    html = _html.evaluation_html(result)
    assert "<script" not in html and "<a0>" not in html
    assert "&lt;a0&gt;" in html and "&lt;script&gt;" in html


def test_evaluation_without_actions_or_accounts() -> None:
    r = tiny_roadmap()
    events, accounts = frames(["paid", "paid"], [1, 1])
    quiet = hr.evaluate(r.model_copy(update={"actions": []}), events, accounts, AS_OF)
    assert quiet.actions.height == 0
    html = _html.evaluation_html(quiet)
    assert "No action fired." in html and "Top" not in html
    assert "0 actions" in html

    empty_events, no_accounts = frames([], [])
    nobody = hr.evaluate(r, empty_events, no_accounts, AS_OF)
    html = _html.evaluation_html(nobody)
    assert "No accounts were evaluated." in html
    assert "0 accounts" in html and "No action fired." in html


def test_evaluation_of_a_pack_labels_roadmaps_and_unrouted_accounts() -> None:
    trial = tiny_roadmap(id="trials", applies_to="plan == 'trial'")
    paid = tiny_roadmap(id="paying", applies_to="plan == 'paid'")
    events, accounts = frames(["trial", "paid", "other"], [0, 3, 1])
    result = hr.evaluate(hr.compile([trial, paid]), events, accounts, AS_OF)
    html = _html.evaluation_html(result)
    table = table_with(html, "Stage")
    labels = [row[0] for row in table[1:-1]]
    assert labels[0].startswith("trials / trial") and labels[-1].startswith("unrouted")
    assert "no band" in table[0]
    assert "1 accounts taken by no roadmap (unrouted)" in html
    per_action = table_with(html, "Action")
    assert any(row[1].startswith("paying / ") for row in per_action[1:])


def test_doctests_of_the_html_module() -> None:
    failures, tried = doctest.testmod(_html)
    assert tried >= 2 and failures == 0
