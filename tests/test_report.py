"""The HTML report: what it shows agrees with the frames, it is cut to its limits, it stays
self-contained and escapes every text; ``write_report`` and ``healthrules report``.

The browser side (the page renders in Chromium, no console error, no request) is in
tests/test_report_browser.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import doctest
import io
import os
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import healthrules as hr
import healthrules.report as report_module
from healthrules.cli import main
from healthrules.datasets import sample, write_sample
from healthrules.examples import EXAMPLES, example_path
from healthrules.report import Limits, report_html, write_report
from healthrules.testing.strategies import inputs_for, roadmaps

EVIL = "<script>alert('x')</script><img src=x onerror=alert(1)>"


class Page(HTMLParser):
    """The parts of a report the tests read: tables by class, sections, links, SVGs."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[tuple[str, list[list[str]]]] = []
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.svgs: list[dict[str, Any]] = []
        self.acct_sections: list[str] = []
        self.tags: set[str] = set()
        self._tables: list[tuple[str, list[list[str]]]] = []
        self._cell: list[str] | None = None
        self._svg: dict[str, Any] | None = None
        self._title: list[str] | None = None
        self._mark: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        if self._cell is not None and tag in ("br", "li", "div", "p"):
            self._cell.append(" ")
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "a" and a.get("href"):
            self.hrefs.append(str(a["href"]))
        if tag == "section" and a.get("class") == "acct":
            self.acct_sections.append(str(a["id"]))
        if tag == "svg":
            self._svg = {"class": a.get("class"), "label": a.get("aria-label"), "marks": [],
                         "titles": []}  # the tooltips of the marks
            self.svgs.append(self._svg)
        elif self._svg is not None and a.get("class") == "mark":
            self._svg["marks"].append(tag)
            self._mark = tag
        if tag == "title" and self._svg is not None and self._mark is not None:
            self._title = []
        if tag == "table":
            self._tables.append((str(a.get("class") or ""), []))
        elif tag == "tr" and self._tables:
            self._tables[-1][1].append([])
        elif tag in ("td", "th") and self._tables:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg = None
        if tag == "title" and self._title is not None and self._svg is not None:
            self._svg.setdefault("titles", []).append("".join(self._title))
            self._title = None
        if tag == self._mark:
            self._mark = None
        if tag == "table":
            self.tables.append(self._tables.pop())
        elif tag in ("td", "th") and self._cell is not None and self._tables:
            self._tables[-1][1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._title is not None:
            self._title.append(data)
        elif self._cell is not None:
            self._cell.append(data)

    def table(self, cls: str) -> list[list[str]]:
        found = [rows for c, rows in self.tables if cls in c.split()]
        assert len(found) == 1, f"{len(found)} tables of class {cls}"
        return found[0]

    def charts(self, label: str) -> list[dict[str, Any]]:
        return [s for s in self.svgs if s["class"] == "hr-chart"
                and (s["label"] or "").startswith(label)]


@pytest.fixture(scope="module")
def data() -> Any:
    return sample(120)


@pytest.fixture(scope="module")
def roadmap() -> hr.Roadmap:
    return hr.load(example_path("b2b-saas"))


@pytest.fixture(scope="module")
def ev(data: Any, roadmap: hr.Roadmap) -> hr.Evaluation:
    return hr.evaluate(roadmap, data.events, data.accounts, data.as_of)


@pytest.fixture(scope="module")
def hist(data: Any, roadmap: hr.Roadmap) -> Any:
    return hr.history(roadmap, data.events, data.accounts,
                      start=data.as_of - dt.timedelta(weeks=5), end=data.as_of, every="1w")


LIMITS = Limits(top=12, list_accounts=40, explain_accounts=9)


@pytest.fixture(scope="module")
def page(ev: hr.Evaluation) -> str:
    return report_html(ev, limits=LIMITS)


def test_doctests_of_the_report_module() -> None:
    failures, tried = doctest.testmod(report_module)
    assert tried >= 3 and failures == 0


def test_one_document_with_no_script_and_no_external_resource(page: str) -> None:
    p = Page(page)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not p.tags & {"script", "link", "iframe", "object", "embed", "img", "form"}
    assert re.search(r"\b(src|srcset|action|formaction)\s*=", page, re.I) is None
    urls = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert urls == {"http://www.w3.org/2000/svg"}  # the SVG namespace is a name, not a fetch
    assert all(h.startswith("#") for h in p.hrefs)
    assert set(h[1:] for h in p.hrefs) <= set(p.ids)  # every link lands on the page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_overview_counts_agree_with_the_frames(ev: hr.Evaluation, page: str) -> None:
    p = Page(page)
    kpis = re.findall(r"<div class='kpi'><b>([^<]+)</b>([^<]+)</div>", page)
    assert ("120", "accounts") in kpis
    median = ev.scores["score"].median()
    assert (f"{median:.1f}", "median score") in kpis
    assert (str(ev.actions.filter(pl.col("kind") == "challenge").height),
            "challenge actions") in kpis
    # the stage table: one row per stage, and the total
    stage_rows = next(rows for c, rows in p.tables if rows and rows[0][:2] == ["Stage",
                                                                                 "Accounts"])
    assert stage_rows[-1][1] == str(ev.stages.height)
    # the stage chart: its marks' tooltips add up to every account, per stage
    (stages_chart,) = p.charts("Accounts per stage")
    counts: dict[str, int] = {}
    for t in stages_chart["titles"]:
        m = re.fullmatch(r"(\S+)(?: \(.*\))?: (\S+) (\d+)", t)
        if m:
            counts[m.group(1)] = counts.get(m.group(1), 0) + int(m.group(3))
    want = dict(ev.stages.group_by("stage").len().rows())
    assert counts == want
    # the histogram: every scored account is in one bin
    (hist_chart,) = p.charts("Health score distribution")
    binned = sum(int(t.rsplit(" ", 1)[1]) for t in hist_chart["titles"]
                 if " to " in t and ":" in t)
    assert binned == ev.scores["score"].is_not_null().sum()
    assert all(m == "rect" for m in hist_chart["marks"]) and hist_chart["marks"]


def test_accounts_are_listed_most_urgent_first_within_the_limits(ev: hr.Evaluation,
                                                                 page: str) -> None:
    p = Page(page)
    rows = p.table("hr-accounts")
    assert rows[0][:3] == ["Account", "Stage", "Score"]
    body = rows[1:]
    assert len(body) == LIMITS.list_accounts
    assert f"The {LIMITS.list_accounts} most urgent of {ev.stages.height} accounts" in page
    key = ev.account_key
    scores = dict(ev.scores.select(key, "score").rows())
    rank = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    best = dict(ev.actions.with_columns(
        pl.col("priority").replace_strict(rank, return_dtype=pl.Int64).alias("r"))
        .group_by(key).agg(pl.col("r").min()).rows())
    order = []
    for r in body:
        account = r[0]
        shown = None if r[2] == "-" else float(r[2])
        want = scores[account]
        assert shown == (None if want is None else pytest.approx(round(want, 1), abs=0.051))
        order.append((best.get(account, 9), 1e9 if want is None else want))
    assert order == sorted(order)
    # the first accounts link to their explanation, and only those
    assert p.acct_sections == [f"acct-{i}" for i in range(1, LIMITS.explain_accounts + 1)]
    links = [h for h in p.hrefs if h.startswith("#acct-")]
    assert set(links) == {f"#{s}" for s in p.acct_sections}
    assert f"The {LIMITS.explain_accounts} most urgent of {ev.stages.height}" in page


def test_top_actions_show_text_and_evidence(ev: hr.Evaluation, page: str) -> None:
    rows = Page(page).table("hr-top-actions")
    assert len(rows) - 1 == min(LIMITS.top, ev.actions.height)
    assert f"Top {LIMITS.top} of {ev.actions.height} fired actions" in page
    key = ev.account_key
    fired = {(a[key], a["action_id"]): a for a in ev.actions.to_dicts()}
    for r in rows[1:]:
        account, action = r[0], r[3].split()[0]
        a = fired[(account, action)]
        assert r[6] == " ".join(a["text"].split())
        for item in a["evidence"]:
            assert f"{item['name']} = {item['value']}" in r[7]
    assert rows[1][4] == "critical"  # the most urgent first


def test_explanations_agree_with_explain(ev: hr.Evaluation, page: str) -> None:
    p = Page(page)
    key = ev.account_key
    first = Page(page).table("hr-accounts")[1][0]
    why = ev.explain(first)
    start = page.index("<section class='acct' id='acct-1'>")
    section = page[start:page.index("</section>", start)]
    assert f"<code class='hr-id'>{first}</code>" in section
    s = Page(section)
    contrib = next(rows for _, rows in s.tables if rows[0][0] == "Indicator")
    want = sorted(why.contributions, key=lambda c: (-c.lost, c.indicator))
    assert [r[0] for r in contrib[1:]] == [c.indicator for c in want]
    assert [r[6] for r in contrib[1:]] == [f"\u2212{c.lost:.1f}" for c in want]
    verdicts = next(rows for _, rows in s.tables if rows[0][:2] == ["Action", "Verdict"])
    in_scope = [a for a in why.actions if a.in_scope]
    assert [r[0] for r in verdicts[1:]] == [a.action_id for a in in_scope]
    assert [r[1] == "fired" for r in verdicts[1:]] == [a.fired for a in in_scope]
    fired = ev.actions.filter(pl.col(key) == first)["action_id"].to_list()
    assert sorted(a.action_id for a in in_scope if a.fired) == sorted(fired)
    # why this stage: the stages tried in order, up to the one that holds
    tried = re.findall(r"<li><code class='hr-id'>([^<]+)</code>: entry", section)
    held = [st.stage for st in why.stages]
    assert tried == held[:held.index(why.stage) + 1]
    assert len(p.acct_sections) == LIMITS.explain_accounts


def test_history_adds_trends_and_sparklines(hist: Any, data: Any, roadmap: hr.Roadmap) -> None:
    limits = Limits(top=5, list_accounts=25, explain_accounts=3)
    page = report_html(hist, limits=limits)
    p = Page(page)
    assert "trends" in p.ids
    (bands,) = p.charts("Accounts per score band, by snapshot date")
    per_date = sum(int(t.rsplit(" ", 1)[1]) for t in bands["titles"])
    assert per_date == hist.scores.height  # every (account, date) once
    (lines,) = p.charts("Health score over time")
    assert lines["marks"].count("path") == 2  # median and mean
    assert lines["marks"].count("circle") == 2 * len(hist.dates)
    (actions,) = p.charts("Fired actions by snapshot date")
    assert sum(int(t.rsplit(" ", 1)[1]) for t in actions["titles"]) == hist.actions.height
    stages_seen = hist.stages.select("roadmap", "stage").unique().height
    assert page.count("<figure>") == stages_seen  # one small chart per stage
    sparks = [s for s in p.svgs if s["class"] == "hr-spark"]
    assert len(sparks) == limits.list_accounts + limits.explain_accounts
    rows = p.table("hr-accounts")[1:]
    key = hist.account_key
    first = hist.scores.filter(pl.col("as_of") == hist.dates[0]).select(key, "score")
    last = hist.scores.filter(pl.col("as_of") == hist.dates[-1]).select(key, "score")
    change = dict(first.join(last, on=key, suffix="_last").select(
        key, pl.col("score_last") - pl.col("score")).rows())
    for r in rows:
        if r[-1] != "-" and change[r[0]] is not None:
            assert float(r[-1]) == pytest.approx(change[r[0]], abs=0.051)
    # the report of a history is as of its last date: the same overview as an evaluation then
    ev = hr.evaluate(roadmap, data.events, data.accounts, hist.dates[-1])
    alone = Page(report_html(ev, limits=limits))
    assert alone.table("hr-accounts") == [r[:-2] for r in p.table("hr-accounts")]
    assert alone.charts("Accounts per stage") == p.charts("Accounts per stage")
    assert alone.charts("Health score distribution") == p.charts("Health score distribution")


def evil_roadmap() -> hr.Roadmap:
    return hr.Roadmap.model_validate({
        "id": "evil", "title": EVIL, "goal": EVIL, "description": EVIL,
        "data": {"events": {"user": None}},
        "indicators": [{"id": "logins_7d", "family": "process", "aggregate": "count",
                        "window": "7d", "title": EVIL,
                        "bands": {"direction": "higher_is_better", "levels": [
                            {"name": "low", "lt": 1}, {"name": "ok", "ge": 1}]}}],
        "stages": [{"id": "operation", "title": EVIL, "description": EVIL,
                    "actions": [{"id": "quiet", "kind": "challenge", "title": EVIL,
                                 "when": "logins_7d < 1", "do": EVIL + " {logins_7d}",
                                 "owner": EVIL, "channel": EVIL, "priority": "high"}]}]})


def test_every_text_from_rules_and_data_is_escaped(tmp_path: Path) -> None:
    accounts = pl.DataFrame({"account_id": [EVIL, "b\"'<>&", "plain"]})
    events = pl.DataFrame({"account_id": ["plain"], "event": ["login"],
                           "timestamp": [dt.datetime(2026, 6, 29, 9)]})
    ev = hr.evaluate(evil_roadmap(), events, accounts, "2026-06-30")
    assert ev.actions.height == 2
    page = report_html(ev, title=EVIL)
    assert "<script" not in page and "<img" not in page
    escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    assert page.count(escaped) >= 8
    p = Page(page)
    assert EVIL in p.table("hr-accounts")[1][0] or EVIL in p.table("hr-accounts")[2][0]
    assert set(p.acct_sections) == {"acct-1", "acct-2", "acct-3"}  # ids never from data


def test_a_pack_labels_stages_with_their_track() -> None:
    pack = hr.load(example_path("goal-tracks"))
    data = sample(60)
    ev = hr.evaluate(pack, data.events, data.accounts, data.as_of)
    p = Page(report_html(ev, limits=Limits(explain_accounts=4)))
    (chart,) = p.charts("Accounts per stage")
    labels = {t.split(":")[0].split(" (")[0] for t in chart["titles"]}
    tracks = {cr.id for cr in ev.plan.roadmaps}
    assert labels and all(lbl.split(" / ")[0] in tracks | {"(unrouted)"} for lbl in labels)
    assert len(tracks) > 1
    assert sum(1 for rows in (r for _, r in p.tables) if rows and rows[0][0] == "Stage"
               and "Achievement state" in rows[0]) == len(tracks)  # one roadmap table each


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_with_a_short_history(name: str, data: Any) -> None:
    from healthrules.history import history

    loaded = hr.load(example_path(name))
    first = loaded.loaded[0] if isinstance(loaded, hr.Pack) else loaded
    # a roadmap with named event sources reads the sample's usage, tickets and surveys
    events = data.sources if first.data.named_sources else data.events
    h = history(loaded, events, data.accounts,
                start=data.as_of - dt.timedelta(weeks=2), end=data.as_of, every="2w")
    page = report_html(h, limits=Limits(top=5, list_accounts=10, explain_accounts=2))
    p = Page(page)
    (bands,) = p.charts("Accounts per score band, by snapshot date")
    assert sum(int(t.rsplit(" ", 1)[1]) for t in bands["titles"]) == h.scores.height
    assert len(p.acct_sections) == 2
    assert len([s for s in p.svgs if s["class"] == "hr-spark"]) == 12
    for chart in re.findall(r"<svg .*?</svg>", page, re.S):
        ET.fromstring(chart)


def test_an_evaluation_without_accounts_or_actions(roadmap: hr.Roadmap, data: Any) -> None:
    ev = hr.evaluate(roadmap, data.events.head(0), data.accounts.head(0), data.as_of)
    p = Page(report_html(ev))
    assert "No action fired." in report_html(ev)
    assert p.table("hr-accounts")[1:] == [] and p.acct_sections == []


@pytest.mark.parametrize("bad", [{"top": -1}, {"list_accounts": 2.5}, {"explain_accounts": True}])
def test_limits_are_whole_numbers(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=f"Limits.{next(iter(bad))} must be a whole number"):
        Limits(**bad)


def test_no_account_explained_or_listed(ev: hr.Evaluation) -> None:
    p = Page(report_html(ev, limits=Limits(top=0, list_accounts=0, explain_accounts=0)))
    assert p.table("hr-accounts")[1:] == [] and p.acct_sections == []
    assert len(p.table("hr-top-actions")) == 1  # the header only
    assert not [h for h in p.hrefs if h.startswith("#acct-")]


def test_write_report_replaces_the_file_atomically(ev: hr.Evaluation, tmp_path: Path) -> None:
    target = tmp_path / "sub" / "report.html"
    assert write_report(ev, target, limits=LIMITS) == target
    assert target.read_text(encoding="utf-8") == report_html(ev, limits=LIMITS)
    mode = target.stat().st_mode & 0o777
    mask = os.umask(0)
    os.umask(mask)
    assert mode == 0o666 & ~mask
    with pytest.raises(TypeError, match="Evaluation or a History"):
        write_report(ev.scores, target)  # type: ignore[arg-type]
    assert target.read_text(encoding="utf-8") == report_html(ev, limits=LIMITS)
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]


def test_report_size_grows_with_the_limits_not_with_the_accounts(roadmap: hr.Roadmap) -> None:
    limits = Limits(top=10, list_accounts=50, explain_accounts=5)
    sizes = []
    for n in (100, 600):
        d = sample(n)
        page = report_html(hr.evaluate(roadmap, d.events, d.accounts, d.as_of), limits=limits)
        p = Page(page)
        assert len(p.table("hr-accounts")) - 1 == 50 and len(p.acct_sections) == 5
        sizes.append(len(page))
    assert sizes[1] < sizes[0] * 1.3


# --------------------------------------------------------------------------- CLI


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("report-cli")
    write_sample(d / "data", data=sample(80))
    (d / "afolder").mkdir()
    (d / "bad.yaml").write_text("id: x\ngoal: g\nstages: [{id: s, entry: 'nope > 1'}]\n")
    return d


def _args(d: Path, *extra: str, roadmap: str | None = None) -> list[str]:
    return ["report", roadmap or str(example_path("b2b-saas")), "--events",
            str(d / "data" / "events.parquet"), "--accounts", str(d / "data" / "accounts.parquet"),
            "--as-of", "2026-06-30", *extra]


def test_cli_writes_the_report(files: Path) -> None:
    out = files / "out" / "report.html"
    code, stdout, err = cli(*_args(files, "--out", str(out), "--list-accounts", "30",
                                   "--explain-accounts", "5", "--top", "7", "--title", "Q3"))
    assert code == 0, err
    assert stdout.startswith("as of 2026-06-30: 80 accounts (30 listed, 5 explained), ")
    assert stdout.endswith(f"wrote {out}\n")
    p = Page(out.read_text(encoding="utf-8"))
    assert len(p.acct_sections) == 5 and len(p.table("hr-accounts")) == 31
    assert len(p.table("hr-top-actions")) == 8
    assert "<h1>Q3</h1>" in out.read_text(encoding="utf-8")


def test_cli_with_history(files: Path) -> None:
    out = files / "hist.html"
    code, stdout, err = cli(*_args(files, "--out", str(out), "--history-weeks", "3",
                                   "--explain-accounts", "2"))
    assert code == 0, err
    assert "4 weekly snapshots" in stdout
    page = out.read_text(encoding="utf-8")
    assert "history 2026-06-09 to 2026-06-30 (4 snapshots)" in page
    assert Page(page).charts("Health score over time")


@pytest.mark.parametrize(("extra", "code", "words"), [
    (["--out", "{d}/afolder"], 2, "is a folder"),
    (["--out", "{d}/x.html", "--history-weeks", "2", "--as-of", "2026-06-30T10:00"], 2,
     "needs a date"),
    (["--out", "{d}/x.html", "--top", "0"], 2, "must be at least 1"),
    (["--out", "{d}/x.html", "--history-weeks", "-1"], 2, "is negative"),
    (["--out", "{d}/x.html", "--roadmap", "bad.yaml"], 1, "nope"),
    (["--out", "{d}/x.html", "--roadmap", "missing.yaml"], 2, "roadmap file not found"),
])
def test_cli_errors(files: Path, extra: list[str], code: int, words: str) -> None:
    args = [x.replace("{d}", str(files)) for x in extra]
    roadmap = None
    if "--roadmap" in args:
        i = args.index("--roadmap")
        roadmap = str(files / args[i + 1])
        del args[i:i + 2]
    argv = _args(files, *args, roadmap=roadmap)  # a second --as-of overrides the first
    got, _, err = cli(*argv)
    assert got == code, err
    assert words in err
    assert not (files / "x.html").exists()


# --------------------------------------------------------------------------- the state store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, data: Any, roadmap: hr.Roadmap) -> Path:
    """A daily job's store: runs on four days up to the sample's last day, one pin."""
    from healthrules.history import run
    from healthrules.history.overrides import Pin

    path = tmp_path_factory.mktemp("store") / "state.db"
    for back in (21, 14, 7, 0):
        day = data.as_of - dt.timedelta(days=back)
        pins = [Pin(account="A000003", target="score", value=12.0, reason=EVIL,
                    expires=data.as_of + dt.timedelta(days=30), set_by="cs lead")] if (
            back == 7) else []
        run(roadmap, path, data.events, data.accounts, day, pins=pins)
    return path


def test_the_daily_job_section_shows_the_store(ev: hr.Evaluation, store: Path) -> None:
    from healthrules.history import StateStore

    before = store.read_bytes()
    page = report_html(ev, limits=LIMITS, store=store)
    assert store.read_bytes() == before  # read only
    p = Page(page)
    assert "daily-job" in p.ids and "<script" not in page
    with StateStore(store, readonly=True, create=False) as s:
        runs = s.runs()
        actions = s.actions(statuses=("open",))
        changes = s.changes(ev.as_of)
        pins = s.overrides(active_on=ev.as_of)
    (chart,) = p.charts("Changes reported by each run")
    total = int(runs.select(pl.sum_horizontal("opened", "resolved", "escalated").sum()).item())
    assert sum(int(t.rsplit(" ", 1)[1]) for t in chart["titles"]) == total
    open_rows = p.table("hr-open-actions")[1:]
    assert len(open_rows) == min(actions.height, LIMITS.list_accounts)
    opened = {(a["account_id"], a["action_id"]): a for a in actions.to_dicts()}
    for r in open_rows:
        a = opened[(r[0], r[1])]
        assert r[4] == a["opened_at"].isoformat()
        assert int(r[5]) == (ev.as_of - a["opened_at"]).days
    assert [r[2] for r in open_rows] == sorted(
        (r[2] for r in open_rows), key=["critical", "high", "medium", "low"].index)
    assert len(p.table("hr-changes")) - 1 == changes.height
    pin_rows = p.table("hr-pins")[1:]
    assert pins.height == 1 and pin_rows == [[
        "A000003", "score", "12", EVIL, "cs lead",
        (ev.as_of - dt.timedelta(days=7)).isoformat(),
        (ev.as_of + dt.timedelta(days=30)).isoformat()]]
    # a report of an earlier date reads the runs up to it, and says the state is later
    earlier = dt.date(2026, 6, 20)
    page2 = report_html(dataclasses.replace(ev, as_of=earlier), store=store)
    assert "runs from 2026-06-09 to 2026-06-16; the open actions are the state after its " \
        "latest run, 2026-06-30" in page2
    assert "Changes of the run of 2026-06-16" in page2


def test_a_store_without_a_run_up_to_the_date(ev: hr.Evaluation, store: Path) -> None:
    page = report_html(dataclasses.replace(ev, as_of=dt.date(2026, 1, 1)), store=store)
    assert "holds no run on or before 2026-01-01" in page
    assert "hr-open-actions" not in page


def test_a_store_of_another_roadmap_or_none_at_all_is_refused(ev: hr.Evaluation, store: Path,
                                                             tmp_path: Path) -> None:
    from healthrules.history import StoreError

    r = hr.Roadmap.model_validate({"id": "other", "goal": "g", "stages": [{"id": "s"}]})
    other = dataclasses.replace(ev, plan=hr.compile(r))
    with pytest.raises(StoreError, match="keeps the state of roadmap 'b2b_saas'"):
        report_html(other, store=store)
    with pytest.raises(StoreError, match="no state store"):
        report_html(ev, store=tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()


def test_cli_with_the_store(files: Path, store: Path) -> None:
    out = files / "job.html"
    code, _, err = cli(*_args(files, "--out", str(out), "--state", str(store)))
    # the store was written with the 120-account sample; this CLI data has 80 accounts,
    # which changes nothing of what the section reads
    assert code == 0, err
    assert Page(out.read_text(encoding="utf-8")).table("hr-open-actions")
    code, _, err = cli(*_args(files, "--out", str(out), "--state", str(files / "no.db")))
    assert code == 2 and "no state store there" in err


# --------------------------------------------------------------------------- any roadmap


AS_OF = dt.date(2026, 6, 30)


@settings(max_examples=25)
@given(roadmap=roadmaps(), data=st.data())
def test_the_report_of_any_roadmap_agrees_with_its_frames(roadmap: hr.Roadmap,
                                                          data: st.DataObject) -> None:
    accounts, events = data.draw(inputs_for(roadmap, as_of=AS_OF, max_events=30))
    ev = hr.evaluate(roadmap, events, accounts, AS_OF)
    limits = Limits(top=3, list_accounts=4, explain_accounts=2)
    page = report_html(ev, limits=limits)
    p = Page(page)
    n = ev.stages.height
    if n:
        (stages,) = p.charts("Accounts per stage")
        assert sum(int(t.rsplit(" ", 1)[1]) for t in stages["titles"]) == n
    (scores,) = p.charts("Health score distribution")
    assert sum(int(t.rsplit(" ", 1)[1]) for t in scores["titles"]) == (
        ev.scores["score"].is_not_null().sum())
    assert len(p.table("hr-accounts")) - 1 == min(n, limits.list_accounts)
    assert len(p.acct_sections) == min(n, limits.explain_accounts)
    if ev.actions.height:
        assert len(p.table("hr-top-actions")) - 1 == min(ev.actions.height, limits.top)
    for chart in re.findall(r"<svg .*?</svg>", page, re.S):
        ET.fromstring(chart)  # every chart is well-formed on its own


# --------------------------------------------------------------------------- goal attainment


def test_goal_attainment_per_stage_agrees_with_the_frames(ev: hr.Evaluation, page: str) -> None:
    p = Page(page)
    frame = ev.stages.join(ev.scores.select("account_id", "roadmap", "goal_reached"),
                           on=["account_id", "roadmap"])
    want = {st: (n, y, k) for st, n, y, k in frame.group_by("stage").agg(
        pl.len(), pl.col("goal_reached").sum().alias("y"),
        pl.col("goal_reached").count().alias("k")).rows()}
    rows = p.table("hr-goal-stages")
    assert rows[0] == ["Stage", "Accounts", "Reached", "Share", "Unknown"]
    got = {r[0]: r[1:] for r in rows[1:]}
    for stage, (n, y, k) in want.items():
        assert got[stage][:3] == [str(n), str(y), f"{y / k:.0%}"], stage
    reached = int(frame["goal_reached"].sum())
    assert got["all stages"][:3] == [str(frame.height), str(reached),
                                     f"{reached / frame.height:.0%}"]
    assert reached > 0  # the sample has accounts on both sides
    (chart,) = p.charts("Goal attainment per stage")
    tips = {t.split(": ")[1].rsplit(" ", 1)[0]: 0 for t in chart["titles"]}
    for t in chart["titles"]:
        what, n = t.split(": ")[1].rsplit(" ", 1)
        tips[what] += int(n)
    assert tips["reached"] == reached and tips["not reached"] == frame.height - reached
    assert f"{reached / frame.height:.0%} ({reached} of {frame.height})" in page
    # the accounts table gives each listed account's verdict
    head, *accounts = p.table("hr-accounts")
    col = head.index("Goal")
    verdict = dict(frame.select("account_id", "goal_reached").rows())
    for r in accounts:
        assert r[col] == ("reached" if verdict[r[0]] else "not yet"), r[0]


def test_goal_attainment_per_score_segment() -> None:
    r = hr.load(example_path("b2b-saas"))
    doc = r.model_dump(mode="json", by_alias=True, exclude_none=True)
    doc["score"]["segments"] = [{"id": "big", "applies_to": "seats >= 8",
                                 "bands": doc["score"]["bands"]}]
    seg = hr.Roadmap.model_validate(doc)
    data = sample(60)
    ev = hr.evaluate(seg, data.events, data.accounts, data.as_of)
    rows = Page(report_html(ev, limits=Limits(list_accounts=5, explain_accounts=1))).table(
        "hr-goal-segments")
    frame = ev.scores.with_columns(pl.col("segment").fill_null("(no segment)"))
    want = {s: (n, y) for s, n, y in frame.group_by("segment").agg(
        pl.len(), pl.col("goal_reached").sum()).rows()}
    assert {r[0]: (int(r[1]), int(r[2])) for r in rows[1:]} == want
    assert set(want) == {"big", "(no segment)"}


def test_no_goal_target_no_goal_section(data: Any) -> None:
    r = hr.load(example_path("b2b-saas"))
    doc = r.model_dump(mode="json", by_alias=True, exclude_none=True)
    doc["goal"].pop("target")
    ev = hr.evaluate(hr.Roadmap.model_validate(doc), data.events, data.accounts, data.as_of)
    page = report_html(ev, limits=Limits(list_accounts=5, explain_accounts=1))
    assert "Goal attainment" not in page and "reached the goal" not in page
    assert "Goal" not in Page(page).table("hr-accounts")[0]


# --------------------------------------------------------------------------- store trends


def test_score_trends_come_from_the_runs_kept_in_the_store(ev: hr.Evaluation, data: Any,
                                                           roadmap: hr.Roadmap,
                                                           store: Path) -> None:
    from healthrules.history import StateStore

    with StateStore(store, readonly=True, create=False) as s:
        kept = s.run_scores()
    dates = sorted(set(kept["as_of"]))
    assert len(dates) == 4 and dates[-1] == ev.as_of
    # each run's summary is its evaluation's (the last one is the report's evaluation)
    last = kept.filter(pl.col("as_of") == ev.as_of)
    assert int(last["accounts"].sum()) == ev.stages.height
    mean = float(last["score_sum"].sum()) / int(last["scored"].sum())
    assert int(last["goal_reached"].sum()) == int(ev.scores["goal_reached"].sum())
    bands = dict(last.group_by("score_band").agg(pl.col("accounts").sum()).rows())
    page = report_html(ev, limits=LIMITS, store=store)
    p = Page(page)
    (bars,) = p.charts("Accounts per score band, by run")
    for band, n in bands.items():
        assert f"{ev.as_of.isoformat()}: {band} {n}" in bars["titles"]
    (line,) = p.charts("Health score by run")
    tip = next(t for t in line["titles"] if t.startswith(f"mean score, {ev.as_of}"))
    assert float(tip.rsplit(": ", 1)[1]) == pytest.approx(mean, abs=0.051)
    # the run's scores are the evaluation's, with A000003's score pinned to 12 by the CSM
    pinned_scores = ev.scores.with_columns(
        pl.when(pl.col("account_id") == "A000003").then(12.0).otherwise(pl.col("score"))
        .alias("score"))["score"]
    assert mean == pytest.approx(float(pinned_scores.mean()))  # type: ignore[arg-type]
    (goal,) = p.charts("Share of accounts that reached the goal, by run")
    assert len(goal["titles"]) == 1 + len(dates)
    small = p.charts("Mean score in ")
    assert len(small) == kept.select("roadmap", "stage").unique().height
    # an earlier report reads the runs up to its date only
    page2 = Page(report_html(dataclasses.replace(ev, as_of=dates[1]), store=store))
    (bars2,) = page2.charts("Accounts per score band, by run")
    assert all(t.split(":")[0] <= dates[1].isoformat() for t in bars2["titles"])


def test_run_scores_equal_the_evaluation_and_follow_reruns_and_rewinds(
        tmp_path: Path, data: Any, roadmap: hr.Roadmap) -> None:
    from healthrules.history import StateStore, run
    from healthrules.history.store import check_store

    path = tmp_path / "s.db"
    days = [data.as_of - dt.timedelta(days=k) for k in (2, 1, 0)]
    for day in days:
        run(roadmap, path, data.events, data.accounts, day)
    run(roadmap, path, data.events, data.accounts, days[-1])  # a rerun replaces its rows
    with StateStore(path) as s:
        kept = s.run_scores()
    for day in days:
        ev = hr.evaluate(roadmap, data.events, data.accounts, day)
        got = kept.filter(pl.col("as_of") == day)
        want = (ev.stages.join(ev.scores, on=["account_id", "roadmap"])
                .group_by("stage", "score_band").agg(
                    pl.len().alias("accounts"), pl.col("score").sum().alias("score_sum"),
                    pl.col("goal_reached").sum().cast(pl.Int64).alias("goal_reached")))
        joined = want.join(got, on=["stage", "score_band"], how="full", nulls_equal=True)
        assert joined.height == want.height == got.height, day
        assert (joined["accounts"] == joined["accounts_right"]).all()
        assert (joined["goal_reached"] == joined["goal_reached_right"]).all()
        assert joined.select((pl.col("score_sum") - pl.col("score_sum_right")).abs().max()
                             ).item() < 1e-6
    run(roadmap, path, data.events, data.accounts, days[0], rewind=True)
    with StateStore(path) as s:
        assert sorted(set(s.run_scores()["as_of"])) == [days[0]]
    assert check_store(path) == []


def test_a_version_3_store_is_upgraded_and_its_old_runs_have_no_scores(
        tmp_path: Path, data: Any, roadmap: hr.Roadmap, ev: hr.Evaluation) -> None:
    import sqlite3

    from healthrules.history import StateStore, run
    from healthrules.history.store import check_store

    path = tmp_path / "s.db"
    run(roadmap, path, data.events, data.accounts, data.as_of - dt.timedelta(days=1))
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE run_scores")
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    assert check_store(path) == []  # a valid version-3 store
    page = report_html(dataclasses.replace(ev, as_of=data.as_of - dt.timedelta(days=1)),
                       limits=LIMITS, store=path)  # read only: not upgraded
    assert "keeps no scores of its runs up to this date" in page
    with StateStore(path) as s:
        assert s.schema_version == 4 and s.run_scores().height == 0
    run(roadmap, path, data.events, data.accounts, data.as_of)
    with StateStore(path) as s:
        assert set(s.run_scores()["as_of"]) == {data.as_of}
    conn = sqlite3.connect(path)
    conn.execute("UPDATE run_scores SET as_of = '2026-02-30' WHERE rowid = 1")
    conn.commit()
    conn.close()
    assert check_store(path) == ["run_scores: as_of '2026-02-30' is not a date"]


def test_cli_report_takes_the_store_as_store_too(files: Path, store: Path) -> None:
    out = files / "store.html"
    code, _, err = cli(*_args(files, "--out", str(out), "--store", str(store)))
    assert code == 0, err
    assert Page(out.read_text(encoding="utf-8")).charts("Health score by run")
