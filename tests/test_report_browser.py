"""The HTML report in a real headless Chromium: it renders its charts and tables, links land
on their sections, and it logs no error and makes no request beyond its own file.

Chromium is the system's (``/usr/bin/chromium``, installed by ``scripts/system-deps``), driven by
Playwright (the ``report`` extra; Playwright's own browser download is never used). If
either is missing, or Chromium cannot start, the tests fail and say why: they are never
skipped.

``HEALTHRULES_UPDATE_SCREENSHOT=1 pytest tests/test_report_browser.py`` also refreshes the
screenshot shown in docs/report.md (``docs/report.png``).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules.datasets import sample
from healthrules.examples import example_path
from healthrules.history import StateStore
from healthrules.report import Limits, write_report

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[1]
LIMITS = Limits(top=15, list_accounts=60, explain_accounts=12)
EVIL = "<script>alert('x')</script><img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A persistent Chromium context on a fresh profile folder (deleted afterwards)."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        pytest.fail(f"Playwright is not installed ({exc}): pip install -e '.[test]' "
                    "(or the 'report' extra)")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` "
                    "(scripts/system-deps does)")
    profile = tempfile.mkdtemp(prefix="healthrules-chromium-")
    try:
        with sync_playwright() as p:
            try:
                context = p.chromium.launch_persistent_context(
                    profile, executable_path=CHROMIUM, headless=True, args=ARGS,
                    viewport={"width": 1280, "height": 1800}, offline=True)
            except Error as exc:
                pytest.fail(f"Chromium ({CHROMIUM}) did not start: {exc}")
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class Visit:
    """A page opened from a file, with what it logged and requested."""

    def __init__(self, context: Any, path: Path) -> None:
        self.url = path.resolve().as_uri()
        self.console: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page = context.new_page()
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(self.url, wait_until="load")

    def js(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)

    def close(self) -> None:
        self.page.close()


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    data = sample(150)
    roadmap = hr.load(example_path("b2b-saas"))
    hist = hr.history(roadmap, data.events, data.accounts,
                      start=data.as_of - dt.timedelta(weeks=8), end=data.as_of, every="1w")
    from healthrules.history import run

    folder = tmp_path_factory.mktemp("report")
    for back in (14, 7, 0):  # the daily job's store, for the "Daily job" section
        run(roadmap, folder / "state.db", data.events, data.accounts,
            data.as_of - dt.timedelta(days=back))
    path = folder / "report.html"
    write_report(hist, path, limits=LIMITS, store=folder / "state.db")
    return path, hist


CHARTS = """() => [...document.querySelectorAll('svg.hr-chart')].map(svg => {
  const marks = [...svg.querySelectorAll('.mark')];
  const box = svg.getBoundingClientRect();
  const drawn = marks.filter(m => { const b = m.getBBox(); return b.width > 0 || b.height > 0; });
  return {label: svg.getAttribute('aria-label'), width: box.width, height: box.height,
          marks: marks.length, drawn: drawn.length,
          kinds: [...new Set(marks.map(m => m.tagName))].sort()};
})"""


def test_the_report_renders_in_chromium(browser: Any, report_file: tuple[Path, Any]) -> None:
    path, hist = report_file
    visit = Visit(browser, path)
    try:
        charts = visit.js(CHARTS)
        by_label = {c["label"].split(" (")[0]: c for c in charts}
        # the overview's two charts and its goal attainment, the three trend charts, one
        # small chart per stage, the daily job's changes per run, and the score trends of the
        # runs kept in the store: three charts and one small chart per stage
        stages = hist.stages.select("roadmap", "stage").unique().height
        with StateStore(path.parent / "state.db", readonly=True, create=False) as store:
            kept = store.run_scores()
        runs = kept["as_of"].n_unique()
        kept_stages = kept.select("roadmap", "stage").unique().height
        assert runs == 3 and kept_stages >= 1
        assert len(charts) == 10 + stages + kept_stages
        for name, kinds in [("Accounts per stage and score band", ["rect"]),
                            ("Health score distribution", ["rect"]),
                            ("Goal attainment per stage", ["rect"]),
                            ("Accounts per score band, by snapshot date", ["rect"]),
                            ("Health score over time", ["circle", "path"]),
                            ("Fired actions by snapshot date", ["rect"]),
                            ("Changes reported by each run", ["rect"]),
                            ("Accounts per score band, by run", ["rect"]),
                            ("Health score by run", ["circle", "path"]),
                            ("Share of accounts that reached the goal, by run",
                             ["circle", "path"])]:
            chart = by_label[name]
            assert chart["kinds"] == kinds, name
            assert chart["marks"] > 0 and chart["drawn"] == chart["marks"], name
            assert chart["width"] > 250 and chart["height"] > 150, name
        assert by_label["Changes reported by each run"]["marks"] >= 3
        # the mean score: a line and a point per run
        assert by_label["Health score by run"]["marks"] == 1 + runs
        assert by_label["Share of accounts that reached the goal, by run"]["marks"] == 1 + runs
        kept_bands = kept.select(pl.col("score_band").fill_null("-")).n_unique()
        assert runs <= by_label["Accounts per score band, by run"]["marks"] <= kept_bands * runs
        small = [c for c in charts if c["label"].startswith("Mean score in ")]
        assert len(small) == kept_stages
        assert all(c["marks"] >= 2 and c["drawn"] == c["marks"] for c in small)
        n_dates = len(hist.dates)
        assert by_label["Health score over time"]["marks"] == 2 + 2 * n_dates
        bands = hist.scores.select(pl.col("score_band").fill_null("-")).n_unique()
        assert by_label["Accounts per score band, by snapshot date"]["marks"] <= bands * n_dates
        sparks = visit.js("() => [...document.querySelectorAll('svg.hr-spark')]"
                          ".filter(s => s.querySelector('path.mark').getTotalLength() > 0)"
                          ".length")
        assert sparks == LIMITS.list_accounts + LIMITS.explain_accounts
        rows = visit.js("""() => Object.fromEntries(
            ['hr-accounts', 'hr-top-actions', 'hr-roadmap', 'hr-open-actions',
             'hr-goal-stages'].map(c => [c,
              document.querySelector('table.' + c).tBodies[0].rows.length]))""")
        stages_declared = len(hist.plan.roadmaps[0].roadmap.stages)
        assert rows == {"hr-accounts": LIMITS.list_accounts, "hr-top-actions": LIMITS.top,
                        "hr-roadmap": stages_declared + 1,  # + the "every stage" row
                        "hr-open-actions": LIMITS.list_accounts,
                        "hr-goal-stages": stages + 1}  # + the "all stages" row
        goal_cells = visit.js("""() => [...document.querySelectorAll('table.hr-accounts tbody tr')]
            .map(r => r.cells[4].innerText)""")
        assert set(goal_cells) <= {"reached", "not yet", "unknown"} and "reached" in goal_cells
        assert visit.js("() => document.querySelectorAll('section.acct').length") == (
            LIMITS.explain_accounts)
        visible = visit.js("""() => [...document.querySelectorAll('table')]
            .filter(t => !t.closest('details') && t.getBoundingClientRect().height === 0)
            .length""")
        assert visible == 0  # every table outside a collapsed section takes up room
        # a link of the accounts table lands on that account's explanation
        first = visit.page.locator("table.hr-accounts tbody a").first
        account = first.inner_text()
        first.click()
        assert visit.js("() => location.hash") == "#acct-1"
        top = visit.js("() => document.getElementById('acct-1').getBoundingClientRect().top")
        assert 0 <= top < 120
        heading = visit.page.locator("#acct-1 h3 code").inner_text()
        assert heading == account
        # nothing logged, nothing fetched: the file is the only request
        assert visit.console == [] and visit.errors == []
        assert visit.requests == [visit.url]
        shot = path.with_suffix(".png")
        visit.page.goto(visit.url)
        visit.page.set_viewport_size({"width": 1280, "height": 1500})
        visit.page.screenshot(path=str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
        if os.environ.get("HEALTHRULES_UPDATE_SCREENSHOT") == "1":
            shutil.copy(shot, ROOT / "docs" / "report.png")
    finally:
        visit.close()


def test_hostile_texts_stay_text_in_chromium(browser: Any, tmp_path: Path) -> None:
    roadmap = hr.Roadmap.model_validate({
        "id": "evil", "title": EVIL, "goal": EVIL, "data": {"events": {"user": None}},
        "indicators": [{"id": "logins_7d", "family": "process", "aggregate": "count",
                        "window": "7d", "bands": {"direction": "higher_is_better", "levels": [
                            {"name": "low", "lt": 1}, {"name": "ok", "ge": 1}]}}],
        "stages": [{"id": "operation", "title": EVIL,
                    "actions": [{"id": "quiet", "kind": "challenge", "title": EVIL,
                                 "when": "logins_7d < 1", "do": EVIL,
                                 "owner": EVIL, "priority": "high"}]}]})
    accounts = pl.DataFrame({"account_id": [EVIL, "plain"]})
    events = pl.DataFrame({"account_id": ["plain"], "event": ["login"],
                           "timestamp": [dt.datetime(2026, 6, 29, 9)]})
    ev = hr.evaluate(roadmap, events, accounts, "2026-06-30")
    path = write_report(ev, tmp_path / "evil.html")
    visit = Visit(browser, path)
    try:
        assert visit.js("() => document.querySelectorAll('script, img').length") == 0
        cells = visit.js("() => [...document.querySelectorAll('table.hr-accounts tbody tr')]"
                         ".map(r => r.cells[0].textContent)")
        assert EVIL in cells
        assert EVIL in visit.js("() => document.querySelector('h1').textContent")
        labels = visit.js("() => [...document.querySelectorAll('svg.hr-chart')]"
                          ".map(s => s.textContent).join(' ')")
        assert EVIL in labels  # the stage's title, in the tooltip of its bar
        assert visit.dialogs == [] and visit.errors == [] and visit.console == []
        assert visit.requests == [visit.url]
    finally:
        visit.close()
