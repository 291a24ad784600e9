"""HTML renderings for Jupyter: the success-roadmap table and an evaluation overview.

``Roadmap._repr_html_`` calls :func:`roadmap_html` and ``Evaluation._repr_html_`` calls
:func:`evaluation_html`. Every text that comes from a rule file or a frame is escaped; the
markup is plain tables with one scoped ``<style>`` block, so it degrades to readable tables
where styles are stripped, and it uses translucent greys that work on light and dark themes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

import polars as pl

from healthrules.evaluation import Evidence
from healthrules.plot import NO_BAND_COLOR, _score_palette, band_colors
from healthrules.roadmap import (
    UNASSIGNED_STAGE,
    AggregateIndicator,
    Bands,
    RollupIndicator,
    number_text,
)

if TYPE_CHECKING:
    from healthrules.compiler import Plan
    from healthrules.evaluation import Evaluation
    from healthrules.roadmap import Action, Indicator, Pack, Roadmap, Stage, Task, Weights

__all__ = ["evaluation_html", "pack_html", "roadmap_html"]

_STYLE = (
    "<style>"
    ".hr-box{font-size:12.5px;line-height:1.4}"
    ".hr-box h4{margin:4px 0 6px 0}"
    ".hr-box p{margin:4px 0}"
    "table.hr-t{border-collapse:collapse;margin:6px 0 10px 0}"
    "table.hr-t th,table.hr-t td{border:1px solid rgba(128,128,128,.35);padding:4px 6px;"
    "vertical-align:top;text-align:left;white-space:normal}"
    "table.hr-t thead th{background:rgba(128,128,128,.14)}"
    "table.hr-t tbody th{background:rgba(128,128,128,.07);min-width:8em;font-weight:normal}"
    "table.hr-t td.hr-n,table.hr-t th.hr-n{text-align:right;font-variant-numeric:tabular-nums}"
    "table.hr-roadmap td{min-width:9em;max-width:24em}"
    "table.hr-roadmap td.hr-acts{min-width:17em;max-width:30em}"
    "table.hr-t td.hr-bands{min-width:14em}"
    "table.hr-t ul{margin:0;padding-left:1.1em}"
    "table.hr-t li{margin:0 0 3px 0}"
    ".hr-box code{font-size:11.5px;white-space:pre-wrap;overflow-wrap:break-word}"
    ".hr-box code.hr-id{white-space:nowrap}"
    ".hr-muted{opacity:.65}"
    ".hr-pos{color:#1a7f37}.hr-neg{color:#c62828}"
    ".hr-tag{display:inline-block;border-radius:3px;padding:0 4px;font-size:11px;"
    "border:1px solid rgba(128,128,128,.5)}"
    ".hr-act{margin:0 0 6px 0}"
    ".hr-box details{margin:4px 0}"
    ".hr-box summary{cursor:pointer;font-weight:bold}"
    "</style>"
)

_PRIORITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
_PRIORITY_COLOR = {"critical": "#c62828", "high": "#e65100", "medium": "#6d6d6d",
                   "low": "#9e9e9e"}
_DASH = "<span class='hr-muted'>-</span>"


# --------------------------------------------------------------------------- small pieces


def _e(value: Any) -> str:
    """Escape any value as text (``None`` as a muted dash)."""
    if value is None:
        return _DASH
    return escape(str(value))


def _code(text: str) -> str:
    return f"<code>{escape(text)}</code>"


def _id(text: str) -> str:
    """An identifier (stage, action, indicator, roadmap id): code that never wraps."""
    return f"<code class='hr-id'>{escape(text)}</code>"


def _ul(items: Sequence[str]) -> str:
    """A list of already-escaped HTML items (a muted dash when empty)."""
    if not items:
        return _DASH
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _text_color(background: str) -> str:
    r, g, b = (int(background[i : i + 2], 16) for i in (1, 3, 5))
    return "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#fff"


def _badge(name: str | None, color: str | None) -> str:
    """A band name on its band colour (plain text when no colour is known)."""
    if name is None:
        return _DASH
    if color is None:
        return f"<span class='hr-tag'>{escape(name)}</span>"
    return (f"<span class='hr-tag' style='background:{color};color:{_text_color(color)};"
            f"border-color:{color}'>{escape(name)}</span>")


def _priority(priority: str) -> str:
    color = _PRIORITY_COLOR.get(priority, "#6d6d6d")
    return (f"<span class='hr-tag' style='color:{color};border-color:{color}'>"
            f"{escape(priority)}</span>")


def _bands(bands: Bands) -> str:
    """The levels as one chained comparison, each name on its colour: ``low < 0.5 <= high``."""
    colors = band_colors(bands)
    parts = [_badge(bands.levels[0].name, colors[bands.levels[0].name])]
    for a, b in zip(bands.levels, bands.levels[1:], strict=False):
        up = a.upper
        assert up is not None  # validated: adjacent levels meet at a cut point
        left, right = ("&le;", "&lt;") if up[1] else ("&lt;", "&le;")
        parts.append(f"{left} {escape(number_text(up[0]))} {right}")
        parts.append(_badge(b.name, colors[b.name]))
    text = " ".join(parts)
    if bands.direction == "lower_is_better":
        text += " <span class='hr-muted'>(lower is better)</span>"
    return text


def _table(head: Sequence[str], rows: Iterable[str], cls: str = "",
           numeric: Sequence[int] = ()) -> str:
    """A table from escaped header texts and ready ``<tr>`` rows."""
    cells = "".join(
        f"<th class='hr-n'>{h}</th>" if i in numeric else f"<th>{h}</th>"
        for i, h in enumerate(head)
    )
    return (f"<table class='hr-t {cls}'><thead><tr>{cells}</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


# --------------------------------------------------------------------------- roadmap


def _action(a: Action) -> str:
    cls = "hr-pos" if a.kind == "positive" else "hr-neg"
    person = f"{{{a.owner_attribute}}}" if a.owner_attribute else None
    who = " &middot; ".join(escape(x) for x in (a.owner_role, person, a.channel) if x)
    title = escape(a.title) if a.title else _id(a.id)
    ident = f" <span class='hr-muted'>{_id(a.id)}</span>" if a.title else ""
    extra = ""
    if a.resolved_when:
        extra = f"<br><span class='hr-muted'>resolved when</span> {_code(a.resolved_when)}"
    return (
        f"<div class='hr-act'><b class='{cls}'>{title}</b>{ident} {_priority(a.priority)}<br>"
        f"<b>when</b> {_code(a.when)}<br><b>do</b> {escape(a.do)}{extra}"
        + (f"<br><span class='hr-muted'>{who}</span>" if who else "") + "</div>"
    )


def _task(t: Task) -> str:
    return escape(t.text) + (
        f" <span class='hr-muted'>done when</span> {_code(t.done_when)}" if t.done_when else ""
    )


def _stage_row(st: Stage) -> str:
    ach = _DASH
    if st.achievement is not None:
        ach = escape(st.achievement.text)
        if st.achievement.when:
            ach += f"<br>{_code(st.achievement.when)}"
    head = f"<b>{escape(st.title)}</b><br>{_id(st.id)}" if st.title else _id(st.id)
    if st.description:
        head += f"<br><span class='hr-muted'>{escape(st.description)}</span>"
    head += (f"<br><span class='hr-muted'>entry</span> {_code(st.entry)}" if st.entry
             else "<br><span class='hr-muted'>entry: always</span>")
    tasks = [_ul([_task(t) for t in getattr(st.tasks, lst)]) for lst in ("joint", "customer",
                                                                         "ours")]
    pos = "".join(_action(a) for a in st.actions if a.kind == "positive") or _DASH
    neg = "".join(_action(a) for a in st.actions if a.kind == "challenge") or _DASH
    return (f"<tr><th scope='row'>{head}</th><td>{ach}</td><td>{tasks[0]}</td>"
            f"<td>{tasks[1]}</td><td>{tasks[2]}</td><td class='hr-acts'>{pos}</td>"
            f"<td class='hr-acts'>{neg}</td></tr>")


def _every_stage_row(actions: Sequence[Action]) -> str:
    pos = "".join(_action(a) for a in actions if a.kind == "positive") or _DASH
    neg = "".join(_action(a) for a in actions if a.kind == "challenge") or _DASH
    return ("<tr><th scope='row'><b>Every stage</b></th>"
            "<td colspan='4' class='hr-muted'>Roadmap-wide actions: considered for every "
            f"account of the roadmap, whatever its stage.</td><td class='hr-acts'>{pos}</td>"
            f"<td class='hr-acts'>{neg}</td></tr>")


_AGGREGATE_TEXT = {
    "count": "count of events",
    "active_days": "days with an event",
    "first_time": "time of the first event",
    "last_time": "time of the last event",
    "days_since_first": "days since the first event",
    "days_since_last": "days since the last event",
}


def _definition(ind: Indicator) -> str:
    """What an indicator computes, in words (derived: its expression)."""
    if isinstance(ind, RollupIndicator):
        weight = f" weighted by {_code(ind.weight)}" if ind.weight else ""
        return f"{ind.aggregate} of {_code(ind.of)} over the child accounts{weight}"
    if not isinstance(ind, AggregateIndicator):
        trend = ("" if ind.compare == "none" else
                 f"; compared with the previous windows of what it reads ({escape(ind.compare)})")
        return _code(ind.expr) + trend + _missing_note(ind)
    if ind.aggregate == "distinct":
        what = f"distinct {_id(ind.of)} values" if ind.of else "distinct users"
    elif ind.aggregate in ("sum", "mean", "min", "max", "median"):
        what = f"{ind.aggregate} of {_id(str(ind.of))}"
    elif ind.aggregate == "percentile":
        what = f"percentile {number_text(float(ind.q or 0))} of {_id(str(ind.of))}"
    else:
        what = _AGGREGATE_TEXT.get(ind.aggregate, escape(ind.aggregate))
    if ind.where:
        what += f" where {_code(ind.where)}"
    w = ind.window
    if w.kind == "trailing":
        window = f"in the last {w.days} days"
    elif w.kind == "anchored":
        window = f"since {_id(str(w.from_))}" + (f" (for {w.days} days)" if w.days else "")
    else:
        window = "all time"
    text = f"{what}, {window}"
    if ind.compare != "none":
        text += f"; compared with the previous {w.days} days ({escape(ind.compare)})"
    return text + _missing_note(ind)


def _missing_note(ind: Indicator) -> str:
    """The indicator's own missing-value policy, when it has one."""
    return ("" if ind.missing is None
            else f" <span class='hr-muted'>(missing: {escape(ind.missing)})</span>")


def _weights(w: Weights) -> str:
    parts = []
    if w.families:
        parts.append("families " + ", ".join(f"{escape(k)} {number_text(v)}"
                                             for k, v in w.families.items()))
    if w.indicators:
        parts.append("indicators " + ", ".join(f"{escape(k)} {number_text(v)}"
                                               for k, v in w.indicators.items()))
    return "; ".join(parts) or "every banded indicator, weight 1"


def _indicators_section(r: Roadmap) -> str:
    if not r.indicators:
        return "<p><b>Indicators:</b> <span class='hr-muted'>none</span></p>"
    weights = r.score.weights.indicators
    rows = []
    for ind in r.indicators:
        name = _id(ind.id) + (f"<br>{escape(ind.title)}" if ind.title else "")
        unit = f" <span class='hr-muted'>({escape(ind.unit)})</span>" if ind.unit else ""
        weight = weights.get(ind.id)
        rows.append(
            f"<tr><td>{name}{unit}</td><td>{escape(ind.family)}</td><td>{_definition(ind)}</td>"
            f"<td class='hr-bands'>{_bands(ind.bands) if ind.bands is not None else _DASH}</td>"
            f"<td class='hr-n'>{number_text(weight) if weight is not None else _DASH}</td></tr>"
        )
    families: dict[str, int] = {}
    for ind in r.indicators:
        families[ind.family] = families.get(ind.family, 0) + 1
    counts = ", ".join(f"{n} {escape(f)}" for f, n in families.items())
    table = _table(["Indicator", "Family", "Definition", "Bands", "Weight"], rows,
                   numeric=[4])
    return (f"<details><summary>Indicators ({len(r.indicators)}: {counts})</summary>"
            f"{table}</details>")


def _score_section(r: Roadmap) -> str:
    s = r.score
    items = [f"weights: {_weights(s.weights)}", f"missing values: {escape(s.missing)}"]
    if s.bands is not None:
        items.append(f"bands: {_bands(s.bands)}")
    items += [f"in stage {_id(sid)}: {_weights(ss.weights)}" for sid, ss in s.stages.items()]
    title = escape(s.title or "Health score")
    return f"<details><summary>{title}</summary>{_ul(items)}</details>"


def roadmap_html(r: Roadmap) -> str:
    """The success roadmap as a table: stages as rows, achievement, tasks and actions.

    The columns are those of the success roadmap: stage, achievement state, joint / customer /
    our tasks, positive and challenge actions; roadmap-wide actions form a last "Every stage"
    row. Under the table, collapsible sections list the indicators (definition, bands and
    weight) and the health score (weights per stage, missing policy, bands).

    Parameters
    ----------
    r
        A loaded roadmap.

    Returns
    -------
    str
        HTML, every text from the roadmap escaped.

    Examples
    --------
    >>> import healthrules as hr
    >>> r = hr.Roadmap.model_validate({"id": "demo", "goal": "Weekly use <b>",
    ...                                "stages": [{"id": "operation"}]})
    >>> html = roadmap_html(r)
    >>> "Weekly use &lt;b&gt;" in html and html.count("<tr>") == 2
    True
    """
    title = escape(r.title) if r.title else _id(r.id)
    ident = f"{_id(r.id)} &middot; " if r.title else ""
    head = (f"<h4>{title} <span class='hr-muted'>({ident}version {escape(r.version)})</span>"
            "</h4>")
    if r.description:
        head += f"<p>{escape(r.description)}</p>"
    goal = "<p><b>Goal</b>"
    if r.goal.perspective:
        goal += f" <span class='hr-muted'>({escape(r.goal.perspective.replace('_', ' '))})</span>"
    goal += f": {escape(r.goal.text)}"
    kgi = []
    if r.goal.indicator:
        kgi.append(f"indicator {_id(r.goal.indicator)}")
    if r.goal.target:
        kgi.append(f"reached when {_code(r.goal.target)}")
    if kgi:
        goal += f"<br><span class='hr-muted'>KGI:</span> {', '.join(kgi)}"
    goal += "</p>"
    if r.applies_to:
        goal += f"<p><b>Applies to</b> {_code(r.applies_to)}</p>"
    cols = ["Stage", "Achievement state", "Joint tasks", "Customer tasks", "Our tasks",
            "Positive actions", "Challenge actions"]
    rows = [_stage_row(st) for st in r.stages]
    if r.actions:
        rows.append(_every_stage_row(r.actions))
    table = _table(cols, rows, cls="hr-roadmap")
    return ("<div class='hr-box'>" + _STYLE + head + goal + table + _indicators_section(r)
            + _score_section(r) + "</div>")


# --------------------------------------------------------------------------- evaluation


def stage_labels(plan: Plan) -> tuple[list[tuple[str | None, str]], dict[Any, str]]:
    """(roadmap, stage) in declared order, the unassigned rows included, and the title of
    each."""
    order: list[tuple[str | None, str]] = []
    titles: dict[Any, str] = {}
    for cr in plan.roadmaps:
        for st in cr.roadmap.stages:
            order.append((cr.id, st.id))
            titles[(cr.id, st.id)] = st.title or ""
        order.append((cr.id, UNASSIGNED_STAGE))
        titles[(cr.id, UNASSIGNED_STAGE)] = "no entry criterion held"
    order.append((None, UNASSIGNED_STAGE))
    titles[(None, UNASSIGNED_STAGE)] = "no roadmap's applies_to holds"
    return order, titles


def _stage_table(ev: Evaluation) -> str:
    key = ev.account_key
    if ev.stages.height == 0:
        return "<p class='hr-muted'>No accounts were evaluated.</p>"
    palette = _score_palette(ev)
    joined = ev.stages.select(key, "roadmap", "stage").join(
        ev.scores.select(key, "roadmap", "score_band"), on=[key, "roadmap"], how="left",
        nulls_equal=True,
    ).with_columns(pl.col("score_band").cast(pl.String))
    present = set(joined["score_band"].drop_nulls().to_list())
    bands = [b for b in palette if b in present] + sorted(present - set(palette))
    no_band = joined["score_band"].null_count() > 0
    counts = {
        (r, s, b): n for r, s, b, n in
        joined.group_by("roadmap", "stage", "score_band").len().iter_rows()
    }
    fired = {
        (r, s, k): n for r, s, k, n in
        ev.actions.group_by("roadmap", "stage", "kind").len().iter_rows()
    }
    order, titles = stage_labels(ev.plan)
    seen = {(r, s) for r, s, _ in counts}
    several = len(ev.plan.roadmaps) > 1
    head = ["Stage", "Accounts", *(_badge(b, palette.get(b)) for b in bands)]
    if no_band:
        head.append(_badge("no band", NO_BAND_COLOR))
    head += ["<span class='hr-neg'>Challenge actions</span>",
             "<span class='hr-pos'>Positive actions</span>"]
    rows = []
    totals = [0] * (len(head) - 1)
    for r, s in order:
        if s == UNASSIGNED_STAGE and (r, s) not in seen:
            continue
        cells = [sum(n for (rr, ss, _), n in counts.items() if (rr, ss) == (r, s))]
        cells += [counts.get((r, s, b), 0) for b in bands]
        if no_band:
            cells.append(counts.get((r, s, None), 0))
        cells += [fired.get((r, s, "challenge"), 0), fired.get((r, s, "positive"), 0)]
        totals = [t + c for t, c in zip(totals, cells, strict=True)]
        label = _id(s) if r is not None else "<i>unrouted</i>"
        if several and r is not None:
            label = f"{_id(r)} / {label}"
        if titles.get((r, s)):
            label += f" <span class='hr-muted'>{escape(titles[(r, s)])}</span>"
        share = f" <span class='hr-muted'>({cells[0] / ev.stages.height:.0%})</span>"
        rows.append(f"<tr><th scope='row'>{label}</th><td class='hr-n'>{cells[0]}{share}</td>"
                    + "".join(f"<td class='hr-n'>{c}</td>" for c in cells[1:]) + "</tr>")
    rows.append("<tr><th scope='row'>Total</th>"
                + "".join(f"<td class='hr-n'><b>{t}</b></td>" for t in totals) + "</tr>")
    return _table(head, rows, numeric=list(range(1, len(head))))


def _band_palettes(ev: Evaluation) -> dict[tuple[str | None, str], dict[str, str]]:
    """Band colours by (roadmap, indicator), and by (roadmap, ``score``)."""
    out: dict[tuple[str | None, str], dict[str, str]] = {}
    for cr in ev.plan.roadmaps:
        for ind in cr.roadmap.indicators:
            if ind.bands is not None:
                out[(cr.id, ind.id)] = band_colors(ind.bands)
        if cr.roadmap.score.bands is not None:
            out[(cr.id, "score")] = band_colors(cr.roadmap.score.bands)
    return out


def _evidence(items: list[dict[str, Any]] | None, roadmap: str | None,
              palettes: dict[tuple[str | None, str], dict[str, str]]) -> str:
    """Each value the condition read: ``name = value`` [band], and what it was compared with."""
    out = []
    for item in items or []:
        e = Evidence.model_validate(item)
        text = f"{_id(e.name)} = {escape(e.value)}"
        if e.band and not e.value.startswith(e.band):
            bare = e.name.removeprefix("band(").removesuffix(")")
            text += " " + _badge(e.band, palettes.get((roadmap, bare), {}).get(e.band))
        if e.op:
            text += (f" <span class='hr-muted'>(condition {escape(e.op)} "
                     f"{escape(e.threshold or '')})</span>")
        out.append(text)
    return _ul(out)


def _action_label(action_id: str, kind: str | None, title: str | None) -> str:
    cls = "hr-pos" if kind == "positive" else "hr-neg"
    label = f"<span class='{cls}'>{_id(action_id)}</span>"
    return label + (f"<br>{escape(title)}" if title else "")


def _per_action_table(ev: Evaluation) -> str:
    """Every action in declared order: where it applies, how many accounts it fired for."""
    c = ev.conditions
    if c.height == 0:
        return ""
    actions = {(cr.id, a.id): a for cr in ev.plan.roadmaps for _, a in cr.roadmap.all_actions()}
    several = len(ev.plan.roadmaps) > 1
    rows = []
    for r in c.iter_rows(named=True):
        a = actions.get((r["roadmap"], r["action_id"]))
        name = _action_label(r["action_id"], a.kind if a else None, a.title if a else None)
        where = _e(r["stage"]) if r["stage"] else "<i>every stage</i>"
        if several:
            where = f"{_id(str(r['roadmap']))} / {where}"
        unknown = r["unknown"]
        rows.append(
            f"<tr><td>{name}</td><td>{where}</td>"
            f"<td>{_priority(a.priority) if a else _DASH}</td>"
            f"<td class='hr-n'><b>{r['fired']}</b></td><td class='hr-n'>{r['considered']}</td>"
            f"<td class='hr-n'>{unknown if unknown else _DASH}</td></tr>"
        )
    return ("<p><b>Actions</b> <span class='hr-muted'>(accounts in scope, and how many the "
            "condition fired for or could not decide because a value was null)</span></p>"
            + _table(["Action", "Stage", "Priority", "Fired", "Considered", "Unknown"], rows,
                     numeric=[3, 4, 5]))


def _top_actions_table(ev: Evaluation, top: int) -> str:
    n = ev.actions.height
    if n == 0:
        return "<p class='hr-muted'>No action fired.</p>"
    key = ev.account_key
    rank = pl.col("priority").replace_strict(_PRIORITY_RANK, default=4, return_dtype=pl.Int64)
    shown = (
        ev.actions.join(ev.scores.select(key, "roadmap", "score"), on=[key, "roadmap"],
                        how="left", nulls_equal=True, maintain_order="left")
        .sort(rank, "score", nulls_last=True, maintain_order=True)
        .head(top)
    )
    palettes = _band_palettes(ev)
    several = len(ev.plan.roadmaps) > 1
    rows = []
    for a in shown.iter_rows(named=True):
        who = " &middot; ".join(escape(str(x)) for x in (a.get("owner"), a.get("channel")) if x)
        stage = _e(a["stage"])
        if several:
            stage = f"{_id(str(a['roadmap']))} / {stage}"
        score = _DASH if a["score"] is None else f"{a['score']:.0f}"
        rows.append(
            f"<tr><td>{_e(a[key])}</td><td>{stage}</td><td class='hr-n'>{score}</td>"
            f"<td>{_action_label(a['action_id'], a['kind'], a.get('title'))}</td>"
            f"<td>{_priority(str(a['priority']))}</td><td>{who or _DASH}</td>"
            f"<td>{_e(a['text'])}</td>"
            f"<td>{_evidence(a.get('evidence'), a['roadmap'], palettes)}</td></tr>"
        )
    more = (f"<p class='hr-muted'>... and {n - shown.height} more in "
            "<code>.actions</code></p>") if n > shown.height else ""
    caption = (f"<p><b>Top {shown.height} of {n} fired actions</b> <span class='hr-muted'>"
               "(by priority, then lowest health score)</span></p>")
    return caption + _table(["Account", "Stage", "Score", "Action", "Priority",
                             "Owner / channel", "Do", "Evidence"], rows, numeric=[2]) + more



def evaluation_notes(ev: Evaluation) -> list[str]:
    """What an evaluation left out or could not decide, one plain sentence each (for views)."""
    notes = []
    diag = ev.diagnostics
    if diag.get("accounts_unrouted"):
        notes.append(f"{diag['accounts_unrouted']} accounts taken by no roadmap (unrouted)")
    for name, what in (("events_null_account", "events with a null account key dropped"),
                       ("events_null_timestamp", "events with a null timestamp dropped"),
                       ("events_unknown_account", "events of unknown accounts ignored")):
        if diag.get(name):
            notes.append(f"{diag[name]} {what}")
    if ev.unknown:
        notes.append(f"{ev.unknown} action conditions were unknown (a value was null) and did "
                     "not fire")
    return notes

def evaluation_html(ev: Evaluation, top: int = 10) -> str:
    """Accounts per stage and score band, then the top actions with their evidence.

    Parameters
    ----------
    ev
        The result of :func:`healthrules.evaluate`.
    top
        How many actions to list (the most urgent first: by priority, then account).

    Returns
    -------
    str
        HTML: a headline with the counts, a table of the stages (in declared order) by score
        band with the actions fired in each, a table of every action (considered, fired and
        unknown counts), and the top actions with owner, text and evidence.

    Examples
    --------
    >>> import healthrules as hr
    >>> from healthrules.examples import example_path
    >>> from healthrules.datasets import sample
    >>> data = sample(40)
    >>> result = hr.evaluate(hr.load(example_path("b2b-saas")), data.events,
    ...                      data.accounts, data.as_of)
    >>> html = evaluation_html(result, top=3)
    >>> "Accounts" in html and "Top 3 of" in html
    True
    """
    n_actions = ev.actions.height
    kinds = dict(ev.actions.group_by("kind").len().iter_rows()) if n_actions else {}
    head = (f"<h4>Evaluation of {_id(ev.plan.id)} as of {escape(ev.as_of.isoformat())}</h4>"
            f"<p>{ev.stages.height} accounts &middot; {n_actions} actions "
            f"(<span class='hr-neg'>{kinds.get('challenge', 0)} challenge</span>, "
            f"<span class='hr-pos'>{kinds.get('positive', 0)} positive</span>) &middot; "
            f"{ev.unknown} unknown conditions</p>")
    notes = evaluation_notes(ev)
    note = f"<p class='hr-muted'>{'; '.join(escape(n) for n in notes)}.</p>" if notes else ""
    return ("<div class='hr-box'>" + _STYLE + head + note + _goal_line(ev) + _stage_table(ev)
            + _per_action_table(ev) + _top_actions_table(ev, top) + "</div>")


def _goal_line(ev: Evaluation) -> str:
    """Per roadmap with a ``goal.target``: how many of its accounts reached the goal."""
    parts = []
    counts = {r: (n, yes, unknown) for r, n, yes, unknown in ev.scores.group_by("roadmap").agg(
        pl.len(), pl.col("goal_reached").sum().alias("yes"),
        pl.col("goal_reached").null_count().alias("unknown"),
    ).iter_rows()}
    for cr in ev.plan.roadmaps:
        if cr.roadmap.goal.target is None or cr.id not in counts:
            continue
        n, yes, unknown = counts[cr.id]
        label = f"{_id(cr.id)}: " if len(ev.plan.roadmaps) > 1 else ""
        text = (f"{label}<span class='hr-pos'>{yes or 0} of {n}</span> accounts reached the "
                f"goal ({_code(cr.roadmap.goal.target)})")
        if unknown:
            text += f", {unknown} unknown (a value is null)"
        parts.append(text)
    return f"<p><b>Goal</b> {'; '.join(parts)}</p>" if parts else ""


def pack_html(pack: Pack) -> str:
    """A pack: its tracks in routing order, then each roadmap's success-roadmap table."""
    rows = "".join(
        f"<tr><td>{i + 1}</td><td>{escape(r.title or r.id)}</td>"
        f"<td><code>{escape(r.applies_to or 'every account')}</code></td></tr>"
        for i, r in enumerate(pack.loaded)
    )
    head = (f"<h3>{escape(pack.title or pack.id)}</h3>"
            + (f"<p>{escape(pack.description)}</p>" if pack.description else "")
            + "<p>Each account follows the first track whose <code>applies_to</code> holds.</p>"
            "<table><tr><th>#</th><th>track</th><th>applies to</th></tr>" + rows + "</table>")
    if not pack.loaded:
        return head + "<p>(not loaded: use healthrules.load(path))</p>"
    return head + "".join(roadmap_html(r) for r in pack.loaded)
