"""HTML renderings for Jupyter: the success-roadmap table and an evaluation overview."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from healthrules.evaluation import Evaluation
    from healthrules.roadmap import Action, Roadmap, Stage

_STYLE = (
    "<style>.hr-t{border-collapse:collapse;font-size:12px}"
    ".hr-t th,.hr-t td{border:1px solid #ccc;padding:4px 6px;vertical-align:top;text-align:left}"
    ".hr-t th{background:#f3f3f3}.hr-pos{color:#146c2e}.hr-neg{color:#a4161a}"
    ".hr-muted{color:#777}</style>"
)


def _ul(items: list[str]) -> str:
    if not items:
        return "<span class='hr-muted'>-</span>"
    return "<ul style='margin:0;padding-left:16px'>" + "".join(
        f"<li>{i}</li>" for i in items) + "</ul>"


def _action(a: Action) -> str:
    cls = "hr-pos" if a.kind == "positive" else "hr-neg"
    who = ", ".join(x for x in (a.owner, a.channel, a.priority) if x)
    return (f"<span class='{cls}'><b>when</b> <code>{escape(a.when)}</code></span> "
            f"<b>do</b> {escape(a.do)} <span class='hr-muted'>({escape(who)})</span>")


def _stage_row(st: Stage) -> str:
    ach = "<span class='hr-muted'>-</span>"
    if st.achievement is not None:
        ach = escape(st.achievement.text)
        if st.achievement.when:
            ach += f"<br><code>{escape(st.achievement.when)}</code>"

    def tasks(lst: str) -> str:
        return _ul([escape(t.text) + (f" <code>{escape(t.done_when)}</code>" if t.done_when
                                      else "") for t in getattr(st.tasks, lst)])

    pos = [_action(a) for a in st.actions if a.kind == "positive"]
    neg = [_action(a) for a in st.actions if a.kind == "challenge"]
    title = escape(st.title or st.id)
    entry = f"<br><span class='hr-muted'>entry: <code>{escape(st.entry)}</code></span>" if (
        st.entry) else ""
    return (f"<tr><th>{title}{entry}</th><td>{ach}</td><td>{tasks('joint')}</td>"
            f"<td>{tasks('customer')}</td><td>{tasks('ours')}</td><td>{_ul(pos)}</td>"
            f"<td>{_ul(neg)}</td></tr>")


def roadmap_html(r: Roadmap) -> str:
    """The success roadmap as a table: stages as rows, achievement, tasks and actions."""
    head = (f"<h4>{escape(r.title or r.id)} <span class='hr-muted'>v{escape(r.version)}</span>"
            f"</h4><p><b>Goal:</b> {escape(r.goal.text)}</p>")
    cols = ["Stage", "Achievement state", "Joint tasks", "Customer tasks", "Our tasks",
            "Positive actions", "Challenge actions"]
    rows = "".join(_stage_row(st) for st in r.stages)
    table = ("<table class='hr-t'><tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"
             + rows + "</table>")
    extra = ""
    if r.actions:
        extra = "<p><b>In every stage:</b></p>" + _ul([_action(a) for a in r.actions])
    inds = ", ".join(f"{escape(i.id)} <span class='hr-muted'>({i.family})</span>"
                     for i in r.indicators)
    return _STYLE + head + table + extra + f"<p><b>Indicators:</b> {inds}</p>"


def _counts_table(frame: pl.DataFrame, title: str) -> str:
    cols = frame.columns
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>"
        for row in frame.rows()
    )
    return (f"<table class='hr-t' style='display:inline-table;margin-right:16px'>"
            f"<caption><b>{escape(title)}</b></caption><tr>"
            + "".join(f"<th>{escape(c)}</th>" for c in cols) + "</tr>" + body + "</table>")


def evaluation_html(ev: Evaluation, top: int = 10) -> str:
    """Stage and band counts, then the top actions with their text."""
    stages = ev.stages.group_by("roadmap", "stage").len("accounts").sort(
        "roadmap", "stage", nulls_last=True)
    bands = ev.scores.group_by("score_band").len("accounts").sort("score_band", nulls_last=True)
    key = ev.account_key
    rank = pl.col("priority").replace_strict(
        {"critical": 0, "high": 1, "medium": 2, "low": 3}, default=4, return_dtype=pl.Int64)
    actions = ev.actions.sort(rank, key).head(top).select(
        key, "action_id", "kind", "priority", "owner", "text")
    head = (f"<h4>Evaluation as of {ev.as_of.isoformat()}: {ev.stages.height} accounts, "
            f"{ev.actions.height} actions, {ev.unknown} unknown conditions</h4>")
    return (_STYLE + head + _counts_table(stages, "Accounts per stage")
            + _counts_table(bands, "Score bands") + "<br>"
            + _counts_table(actions, f"Top {min(top, ev.actions.height)} actions"))
