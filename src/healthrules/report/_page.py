"""The report page: the numbers prepared with polars, then one HTML document around them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any

import polars as pl

from healthrules._html import (
    _PRIORITY_RANK,
    _STYLE,
    _action_label,
    _badge,
    _band_palettes,
    _evidence,
    _id,
    _per_action_table,
    _priority,
    _stage_table,
    _table,
    evaluation_notes,
    roadmap_html,
    stage_labels,
)
from healthrules.plot import NO_BAND_COLOR, band_colors
from healthrules.report import svg
from healthrules.roadmap import UNASSIGNED_STAGE

if TYPE_CHECKING:
    from healthrules.evaluation import Evaluation
    from healthrules.explain import Explanation
    from healthrules.history import History

__all__ = ["JobState", "Limits", "build"]

NO_BAND = "no band"
_KIND_COLORS = {"challenge": "#c62828", "positive": "#1a7f37"}
_LINE_COLORS = ["#4c78a8", "#f58518", "#54a24b", "#b279a2", "#9d755d", "#e45756"]
_DASH = "<span class='hr-muted'>-</span>"

_PAGE_STYLE = """
:root{color-scheme:light}
body{margin:0;background:#f6f7f9;color:#1f2328;
 font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}
header.top{background:#1f2937;color:#fff;padding:14px 24px}
header.top h1{margin:0 0 4px 0;font-size:20px}
header.top p{margin:0;opacity:.85}
nav.toc{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid #d0d7de;
 padding:6px 24px}
nav.toc a{margin-right:16px;color:#0b5cad;text-decoration:none;white-space:nowrap}
svg.hr-chart{max-width:100%;height:auto}
main{padding:8px 24px 40px 24px;max-width:1400px}
section.part{background:#fff;border:1px solid #d0d7de;border-radius:6px;margin:16px 0;
 padding:10px 16px}
section.part>h2{margin:4px 0 8px 0;font-size:17px}
section.part{overflow-x:auto}
.charts{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
.multiples{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:10px}
.multiples figure{margin:0;border:1px solid rgba(128,128,128,.25);border-radius:4px;padding:4px}
.multiples figcaption{font-size:12px;margin:0 0 2px 4px}
.note{color:#57606a;font-size:12.5px}
.kpis{display:flex;flex-wrap:wrap;gap:10px;margin:6px 0 10px 0}
.kpi{border:1px solid #d0d7de;border-radius:6px;padding:6px 12px;min-width:7em}
.kpi b{display:block;font-size:20px}
section.acct{border-top:1px solid #d0d7de;padding:8px 0 4px 0;scroll-margin-top:40px}
section.acct h3{margin:4px 0;font-size:15px}
section.acct h4{margin:8px 0 4px 0;font-size:13px}
ol.steps{margin:2px 0;padding-left:1.4em}
ul.trace{list-style:none;margin:2px 0;padding-left:0;font-size:12px}
ul.trace li{margin:0}
a.back{font-size:12px;margin-left:8px}
details.vals{margin:1px 0 3px 0}details.vals>summary{font-weight:normal;color:#0b5cad;
 font-size:12px}
svg.hr-spark{vertical-align:middle}
table.hr-t td.hr-date{white-space:nowrap}
@media print{nav.toc{position:static}section.part{break-inside:avoid-page}}
"""

_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'")


@dataclasses.dataclass(frozen=True)
class Limits:
    """How much of a large evaluation the page shows.

    Attributes
    ----------
    top
        Fired actions listed in the top-actions table (most urgent first).
    list_accounts
        Rows of the accounts table (the most urgent accounts first).
    explain_accounts
        Accounts with a full explanation (the first rows of the accounts table; at most
        ``list_accounts``).

    Raises
    ------
    ValueError
        If a limit is not a whole number, 0 or more.
    """

    top: int = 25
    list_accounts: int = 1000
    explain_accounts: int = 100

    def __post_init__(self) -> None:
        for name in ("top", "list_accounts", "explain_accounts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Limits.{name} must be a whole number, 0 or more; "
                                 f"got {value!r}")


@dataclasses.dataclass(frozen=True)
class JobState:
    """What the report shows of the daily job's state store (read by
    :func:`healthrules.report.read_store`).

    Attributes
    ----------
    path
        The store file.
    runs
        The stored runs up to the report's date (``as_of``, opened, resolved, escalated ...).
    actions
        The pending and open actions after the store's latest run.
    changes
        What the latest run up to the report's date reported (opened, resolved, escalated).
    overrides
        The pins in force on the report's date.
    last_run
        The store's latest run (it may be after the report's date).
    scores
        What each run up to the report's date scored, per roadmap, stage and score band
        (:meth:`healthrules.history.StateStore.run_scores`; empty for runs stored before
        schema version 4).
    """

    path: str
    runs: pl.DataFrame
    actions: pl.DataFrame
    changes: pl.DataFrame
    overrides: pl.DataFrame
    last_run: dt.date | None
    scores: pl.DataFrame | None = None


# --------------------------------------------------------------------------- helpers


def _fmt(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "NaN" if math.isnan(v) else f"{v:.4g}"
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    return str(v)


def _score_palette(plan: Any) -> dict[str, str]:
    """Score band colours across the plan's roadmaps, worst first (the first roadmap wins;
    then the bands of their score segments)."""
    palette: dict[str, str] = {}
    for bands in _score_bands(plan):
        for name, color in band_colors(bands).items():
            palette.setdefault(name, color)
    return palette


def _score_bands(plan: Any) -> list[Any]:
    """Every score banding of the plan: each roadmap's, then its segments'."""
    out: list[Any] = []
    for cr in plan.roadmaps:
        score = cr.roadmap.score
        out += [b for b in (score.bands, *(s.bands for s in score.segments)) if b is not None]
    return out


def _score_cuts(plan: Any) -> list[float]:
    cuts: list[float] = []
    for bands in _score_bands(plan):
        cuts += [c for c in bands.cut_points() if c not in cuts]
    return sorted(cuts)


def _band_order(present: Sequence[str | None], palette: dict[str, str]) -> list[str]:
    """Band names worst first (as the palette orders them), others sorted, ``no band`` last."""
    names = {NO_BAND if b is None else b for b in present}
    order = [b for b in palette if b in names]
    order += sorted(n for n in names if n not in palette and n != NO_BAND)
    return order + ([NO_BAND] if NO_BAND in names else [])


def _band_expr() -> pl.Expr:
    return pl.col("score_band").cast(pl.String).fill_null(NO_BAND).alias("band")


def _stage_label(roadmap: str | None, stage: str, several: bool) -> str:
    if roadmap is None:
        return "(unrouted)"
    return f"{roadmap} / {stage}" if several else stage


# --------------------------------------------------------------------------- charts


def _stage_chart(ev: Evaluation) -> str:
    key = ev.account_key
    palette = _score_palette(ev.plan)
    counts = (
        ev.stages.select(key, "roadmap", "stage")
        .join(ev.scores.select(key, "roadmap", "score_band"), on=[key, "roadmap"],
              how="left", nulls_equal=True)
        .group_by("roadmap", "stage", _band_expr()).len()
    )
    table = {(r, s, b): n for r, s, b, n in counts.rows()}
    order, titles = stage_labels(ev.plan)
    seen = {(r, s) for r, s, _ in table}
    stages = [(r, s) for r, s in order if s != UNASSIGNED_STAGE or (r, s) in seen]
    bands = _band_order(counts["band"].unique().to_list(), palette)
    several = len(ev.plan.roadmaps) > 1
    series = [svg.Series(b, palette.get(b, NO_BAND_COLOR),
                         [table.get((r, s, b), 0) for r, s in stages]) for b in bands]
    return svg.stacked_bars([_stage_label(r, s, several) for r, s in stages], series,
                            title="Accounts per stage and score band", x_title="stage",
                            descriptions=[titles.get(rs, "") for rs in stages])


def _histogram(ev: Evaluation, step: float = 5.0) -> str:
    palette = _score_palette(ev.plan)
    edges = [i * step for i in range(int(100 / step) + 1)]
    last = edges[-2]
    binned = (
        ev.scores.filter(pl.col("score").is_not_null())
        .select(pl.min_horizontal((pl.col("score") / step).floor() * step, pl.lit(last))
                .alias("bin"), _band_expr())
        .group_by("bin", "band").len()
    )
    table = {(b, band): n for b, band, n in binned.rows()}
    bands = _band_order(binned["band"].unique().to_list(), palette)
    series = [svg.Series(b, palette.get(b, NO_BAND_COLOR),
                         [table.get((e, b), 0) for e in edges[:-1]]) for b in bands]
    missing = ev.scores.height - int(ev.scores["score"].is_not_null().sum())
    title = "Health score distribution"
    if missing:
        title += f" ({missing} accounts without a score not shown)"
    return svg.histogram(edges, series, title=title, cuts=_score_cuts(ev.plan))


def _trends(h: History) -> str:
    """Band counts, median score, fired actions per date, and one small chart per stage."""
    key = h.account_key
    palette = _score_palette(h.plan)
    cuts = _score_cuts(h.plan)
    dates = list(h.dates)
    labels = [d.isoformat() for d in dates]
    by_band = h.scores.group_by("as_of", _band_expr()).len()
    table = {(d, b): n for d, b, n in by_band.rows()}
    bands = _band_order(by_band["band"].unique().to_list(), palette)
    bars = svg.stacked_bars(
        labels, [svg.Series(b, palette.get(b, NO_BAND_COLOR),
                            [table.get((d, b), 0) for d in dates]) for b in bands],
        title="Accounts per score band, by snapshot date", bar_width=30, totals=False)
    med = (h.scores.group_by("as_of", "roadmap")
           .agg(pl.col("score").median().alias("median"), pl.col("score").mean().alias("mean")))
    med_t = {(d, r): (m, a) for d, r, m, a in med.rows()}
    lines: list[svg.Series] = []
    several = len(h.plan.roadmaps) > 1
    for i, cr in enumerate(h.plan.roadmaps):
        name = f"{cr.id}: " if several else ""
        color = _LINE_COLORS[i % len(_LINE_COLORS)]
        lines.append(svg.Series(f"{name}median score", color,
                                [med_t.get((d, cr.id), (None, None))[0] for d in dates]))
        if not several:
            lines.append(svg.Series("mean score", "#9e9e9e",
                                    [med_t.get((d, cr.id), (None, None))[1] for d in dates]))
    median_chart = svg.line_chart(labels, lines, title="Health score over time",
                                  y_domain=(0.0, 100.0), cuts=cuts, y_title="score")
    kinds = h.fired.index.group_by("as_of", "kind").len()
    k_t = {(d, k): n for d, k, n in kinds.rows()}
    actions_chart = svg.stacked_bars(
        labels, [svg.Series(k, c, [k_t.get((d, k), 0) for d in dates])
                 for k, c in _KIND_COLORS.items()],
        title="Fired actions by snapshot date", y_title="actions", bar_width=30, totals=False)
    per_stage = (h.stages.select("as_of", key, "roadmap", "stage")
                 .join(h.scores.select("as_of", key, "roadmap", "score"),
                       on=["as_of", key, "roadmap"], how="left", nulls_equal=True)
                 .group_by("roadmap", "stage", "as_of")
                 .agg(pl.len().alias("n"), pl.col("score").median().alias("median")))
    ps = {(r, s, d): (n, m) for r, s, d, n, m in per_stage.rows()}
    order, titles = stage_labels(h.plan)
    seen = {(r, s) for r, s, _ in ps}
    figures = []
    for r, s in order:
        if (r, s) not in seen:
            continue
        counts = [ps.get((r, s, d), (0, None))[0] for d in dates]
        values = [ps.get((r, s, d), (0, None))[1] for d in dates]
        label = _stage_label(r, s, several)
        chart = svg.line_chart(labels, [svg.Series(f"{label}: median score", "#4c78a8",
                                                   values)],
                               title=f"Median score in {label}", y_domain=(0.0, 100.0),
                               cuts=cuts, width=260, height=130, legend=False, heading=False)
        title = f" <span class='hr-muted'>{escape(titles[(r, s)])}</span>" if titles.get(
            (r, s)) else ""
        figures.append(
            f"<figure><figcaption>{_id(label)}{title} &middot; accounts "
            f"{counts[0]} &rarr; {counts[-1]}</figcaption>{chart}</figure>")
    return (f"<div class='charts'>{bars}{median_chart}{actions_chart}</div>"
            "<h3>Median score per stage</h3><p class='note'>One small chart per stage: the "
            "median score of the accounts in that stage on each date (the accounts in a "
            "stage change from date to date), with how many were in it on the first and the "
            "last date. Dashed lines are the score bands' cut points.</p>"
            f"<div class='multiples'>{''.join(figures)}</div>")


# --------------------------------------------------------------------------- goal


_GOAL_COLORS = {"reached": "#1a7f37", "not reached": "#9e9e9e", "unknown": "#d4a017"}


def _goal_roadmaps(plan: Any) -> list[str]:
    """The roadmaps of the plan that have a ``goal.target`` (the others have no verdict)."""
    return [cr.id for cr in plan.roadmaps if cr.roadmap.goal.target is not None]


def _share(yes: int, known: int) -> str:
    return _DASH if known == 0 else f"{yes / known:.0%}"


def _goal(ev: Evaluation) -> str:
    """Goal attainment: per stage (chart and table) and per score segment (table)."""
    targets = _goal_roadmaps(ev.plan)
    if not targets or "goal_reached" not in ev.scores.columns:
        return ""
    key = ev.account_key
    frame = (ev.stages.filter(pl.col("roadmap").is_in(targets)).select(key, "roadmap", "stage")
             .join(ev.scores.select(key, "roadmap", "goal_reached",
                                    *(["segment"] if "segment" in ev.scores.columns else [])),
                   on=[key, "roadmap"], how="left", nulls_equal=True))
    counts = [pl.len().alias("n"), pl.col("goal_reached").sum().cast(pl.Int64).alias("yes"),
              pl.col("goal_reached").count().cast(pl.Int64).alias("known")]
    per_stage = frame.group_by("roadmap", "stage").agg(*counts)
    table = {(r, st): (n, y, k) for r, st, n, y, k in per_stage.rows()}
    order, titles = stage_labels(ev.plan)
    stages = [rs for rs in order if rs in table]
    several = len(ev.plan.roadmaps) > 1
    labels = [_stage_label(r, st, several) for r, st in stages]
    values = [table[rs] for rs in stages]
    chart = svg.stacked_bars(
        labels, [svg.Series("reached", _GOAL_COLORS["reached"], [y for _, y, _ in values]),
                 svg.Series("not reached", _GOAL_COLORS["not reached"],
                            [k - y for _, y, k in values]),
                 svg.Series("unknown", _GOAL_COLORS["unknown"], [n - k for n, _, k in values])],
        title="Goal attainment per stage", x_title="stage",
        descriptions=[titles.get(rs, "") for rs in stages])
    rows = [f"<tr><td>{_id(label)}</td><td class='hr-n'>{n}</td><td class='hr-n'>{y}</td>"
            f"<td class='hr-n'>{_share(y, k)}</td><td class='hr-n'>{n - k or _DASH}</td></tr>"
            for label, (n, y, k) in zip(labels, values, strict=True)]
    n_all = sum(n for n, _, _ in values)
    y_all = sum(y for _, y, _ in values)
    k_all = sum(k for _, _, k in values)
    rows.append(f"<tr><td><b>all stages</b></td><td class='hr-n'>{n_all}</td>"
                f"<td class='hr-n'>{y_all}</td><td class='hr-n'><b>{_share(y_all, k_all)}</b>"
                f"</td><td class='hr-n'>{n_all - k_all or _DASH}</td></tr>")
    head = ["Stage", "Accounts", "Reached", "Share", "Unknown"]
    tables = _table(head, rows, cls="hr-goal-stages", numeric=[1, 2, 3, 4])
    if "segment" in frame.columns and frame["segment"].drop_nulls().len():
        per_segment = (frame.with_columns(pl.col("segment").fill_null("(no segment)"))
                       .group_by("roadmap", "segment").agg(*counts).sort("roadmap", "segment"))
        seg_rows = [
            f"<tr><td>{_id(_stage_label(r, sg, several))}</td><td class='hr-n'>{n}</td>"
            f"<td class='hr-n'>{y}</td><td class='hr-n'>{_share(y, k)}</td>"
            f"<td class='hr-n'>{n - k or _DASH}</td></tr>"
            for r, sg, n, y, k in per_segment.rows()]
        tables += ("<p><b>Per score segment</b></p>"
                   + _table(["Segment", "Accounts", "Reached", "Share", "Unknown"], seg_rows,
                            cls="hr-goal-segments", numeric=[1, 2, 3, 4]))
    goals = "; ".join(
        f"{_id(cr.id) + ': ' if several else ''}<code>{escape(str(cr.roadmap.goal.target))}"
        "</code>" for cr in ev.plan.roadmaps if cr.id in targets)
    return (f"<h3>Goal attainment</h3><p class='note'>The share of accounts whose goal target "
            f"holds ({goals}), of those with a known verdict; the goal is "
            "<code>goal_reached</code> in the frames.</p>"
            f"<div class='charts'>{chart}</div><div class='hr-box'>{tables}</div>")


def _store_trends(job: JobState, ev: Evaluation) -> str:
    """Score trends from the runs kept in the store (``run_scores``): accounts per band and
    the mean score per run, the share that reached the goal, the mean score per stage (the
    store keeps sums per group, so means and shares combine exactly; a median would not)."""
    scores = job.scores
    if scores is None or scores.height == 0:
        return ("<p class='note'>The store keeps no scores of its runs up to this date (runs "
                "stored before schema version 4 have none): the next runs add them.</p>")
    palette = _score_palette(ev.plan)
    cuts = _score_cuts(ev.plan)
    dates: list[dt.date] = scores["as_of"].unique().sort().tail(60).to_list()
    scores = scores.filter(pl.col("as_of").is_in(dates))
    labels = [d.isoformat() for d in dates]
    by_band = scores.group_by("as_of", pl.col("score_band").fill_null(NO_BAND).alias("band")
                              ).agg(pl.col("accounts").sum())
    table = {(d, b): n for d, b, n in by_band.rows()}
    bands = _band_order([None if b == NO_BAND else b for b in by_band["band"].unique()],
                        palette)
    more = " (the last 60)" if scores["as_of"].n_unique() < job.scores["as_of"].n_unique() else ""  # type: ignore[index]
    bars = svg.stacked_bars(
        labels, [svg.Series(b, palette.get(b, NO_BAND_COLOR),
                            [table.get((d, b), 0) for d in dates]) for b in bands],
        title=f"Accounts per score band, by run{more}", bar_width=30, totals=False)
    mean = pl.col("score_sum").sum() / pl.col("scored").sum()
    per_roadmap = scores.group_by("as_of", "roadmap").agg(
        pl.when(pl.col("scored").sum() > 0).then(mean).alias("mean"),
        pl.col("goal_reached").sum(), pl.col("goal_known").sum())
    rm = {(d, r): (m, y, k) for d, r, m, y, k in per_roadmap.rows()}
    several = len(ev.plan.roadmaps) > 1
    lines: list[svg.Series] = []
    goal_lines: list[svg.Series] = []
    targets = _goal_roadmaps(ev.plan)
    for i, cr in enumerate(ev.plan.roadmaps):
        name = f"{cr.id}: " if several else ""
        color = _LINE_COLORS[i % len(_LINE_COLORS)]
        got = [rm.get((d, cr.id)) for d in dates]
        lines.append(svg.Series(f"{name}mean score", color,
                                [None if g is None else g[0] for g in got]))
        if cr.id in targets:
            goal_lines.append(svg.Series(
                f"{name}reached the goal (%)", color,
                [None if g is None or not g[2] else 100.0 * g[1] / g[2] for g in got]))
    mean_chart = svg.line_chart(labels, lines, title="Health score by run",
                                y_domain=(0.0, 100.0), cuts=cuts, y_title="score")
    goal_chart = ""
    if any(v is not None for s_ in goal_lines for v in s_.values):
        goal_chart = svg.line_chart(labels, goal_lines,
                                    title="Share of accounts that reached the goal, by run",
                                    y_domain=(0.0, 100.0), y_title="% of accounts")
    per_stage = scores.group_by("roadmap", "stage", "as_of").agg(
        pl.col("accounts").sum().alias("n"),
        pl.when(pl.col("scored").sum() > 0).then(mean).alias("mean"))
    ps = {(r, st, d): (n, m) for r, st, d, n, m in per_stage.rows()}
    order, titles = stage_labels(ev.plan)
    seen = {(r, st) for r, st, _ in ps}
    figures = []
    for r, st in order:
        if (r, st) not in seen:
            continue
        counts = [ps.get((r, st, d), (0, None))[0] for d in dates]
        label = _stage_label(r, st, several)
        chart = svg.line_chart(
            labels, [svg.Series(f"{label}: mean score", "#4c78a8",
                                [ps.get((r, st, d), (0, None))[1] for d in dates])],
            title=f"Mean score in {label}, by run", y_domain=(0.0, 100.0), cuts=cuts,
            width=260, height=130, legend=False, heading=False)
        title = f" <span class='hr-muted'>{escape(titles[(r, st)])}</span>" if titles.get(
            (r, st)) else ""
        figures.append(f"<figure><figcaption>{_id(label)}{title} &middot; accounts "
                       f"{counts[0]} &rarr; {counts[-1]}</figcaption>{chart}</figure>")
    return ("<h3>Score trends from the runs kept</h3><p class='note'>What each run of the "
            "daily job scored, as the store keeps it (no evaluation of the past): the "
            "accounts per score band, the mean score, the share of accounts that reached "
            "the goal, and the mean score per stage.</p>"
            f"<div class='charts'>{bars}{mean_chart}{goal_chart}</div>"
            f"<div class='multiples'>{''.join(figures)}</div>")


# --------------------------------------------------------------------------- accounts


def _ranked_accounts(ev: Evaluation) -> pl.DataFrame:
    """Every account, most urgent first: its most urgent fired action's priority, then the
    lowest score, then the key; with counts of fired actions by kind."""
    key = ev.account_key
    rank = pl.col("priority").replace_strict(_PRIORITY_RANK, default=4, return_dtype=pl.Int64)
    acts = (ev.actions.with_columns(rank.alias("__rank"))
            .sort("__rank", "action_id")
            .group_by(key, "roadmap")
            .agg(pl.col("__rank").min(),
                 (pl.col("kind") == "challenge").sum().cast(pl.Int64).alias("challenge"),
                 (pl.col("kind") == "positive").sum().cast(pl.Int64).alias("positive"),
                 pl.col("action_id").first().alias("urgent"),
                 pl.col("priority").first().alias("urgent_priority")))
    return (
        ev.stages.select(key, "roadmap", "stage")
        .join(ev.scores.select(key, "roadmap", "score", "score_band",
                               pl.col("goal_reached") if "goal_reached" in ev.scores.columns
                               else pl.lit(None, pl.Boolean).alias("goal_reached")),
              on=[key, "roadmap"], how="left", nulls_equal=True)
        .join(acts, on=[key, "roadmap"], how="left", nulls_equal=True)
        .with_columns(pl.col("challenge", "positive").fill_null(0))
        .sort("__rank", "score", key, nulls_last=True)
        .drop("__rank")
    )


def _spark_data(h: History, keys: pl.DataFrame) -> dict[Any, list[float | None]]:
    """The score of each account in ``keys`` at every snapshot date (null where none)."""
    key = h.account_key
    grid = keys.select(key).join(pl.DataFrame({"as_of": list(h.dates)},
                                              schema={"as_of": pl.Date}), how="cross")
    series = (grid.join(h.scores.select("as_of", key, "score"), on=["as_of", key], how="left",
                        nulls_equal=True)
              .sort(key, "as_of")
              .group_by(key, maintain_order=True).agg(pl.col("score")))
    return {k: v for k, v in series.rows()}


def _accounts_table(ranked: pl.DataFrame, ev: Evaluation, anchors: dict[Any, str],
                    sparks: dict[Any, list[float | None]] | None, cuts: list[float],
                    limit: int) -> str:
    key = ev.account_key
    palette = _score_palette(ev.plan)
    several = len(ev.plan.roadmaps) > 1
    shown = ranked.head(limit)
    head = ["Account", "Stage", "Score", "Band", "Challenge", "Positive", "Most urgent action"]
    targets = set(_goal_roadmaps(ev.plan))
    if targets:
        head.insert(4, "Goal")
    if sparks is not None:
        head += ["Score trend", "Change"]
    rows = []
    for a in shown.iter_rows(named=True):
        k = a[key]
        name = escape(str(k))
        if k in anchors:
            name = f"<a href='#{anchors[k]}'>{name}</a>"
        stage = _DASH if a["roadmap"] is None and a["stage"] is None else escape(
            _stage_label(a["roadmap"], a["stage"], several))
        score = _DASH if a["score"] is None else f"{a['score']:.1f}"
        urgent = _DASH if a["urgent"] is None else (
            f"{_id(a['urgent'])} {_priority(str(a['urgent_priority']))}")
        cells = [f"<td>{name}</td>", f"<td>{stage}</td>", f"<td class='hr-n'>{score}</td>",
                 f"<td>{_badge(a['score_band'], palette.get(a['score_band'] or ''))}</td>",
                 *([f"<td>{_goal_cell(a['goal_reached'], a['roadmap'] in targets)}</td>"]
                   if targets else []),
                 f"<td class='hr-n'>{a['challenge'] or _DASH}</td>",
                 f"<td class='hr-n'>{a['positive'] or _DASH}</td>", f"<td>{urgent}</td>"]
        if sparks is not None:
            values = sparks.get(k, [])
            known = [v for v in values if v is not None]
            change = _DASH if len(known) < 2 else f"{known[-1] - known[0]:+.1f}"
            cells += [f"<td>{svg.sparkline(values, label=f'score of {k}', cuts=cuts)}</td>",
                      f"<td class='hr-n'>{change}</td>"]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    shift = 1 if targets else 0
    numeric = [2, 4 + shift, 5 + shift] + ([8 + shift] if sparks is not None else [])
    note = ""
    if ranked.height > shown.height:
        note = (f"<p class='note'>The {shown.height} most urgent of {ranked.height} accounts "
                "are listed (raise the limit with <code>--list-accounts</code>, or read every "
                "account in the frames of <code>healthrules evaluate</code>).</p>")
    return _table(head, rows, cls="hr-accounts", numeric=numeric) + note


def _goal_cell(reached: bool | None, has_target: bool) -> str:
    if not has_target:
        return _DASH
    if reached is None:
        return "<span class='hr-neg'>unknown</span>"
    return ("<b class='hr-pos'>reached</b>" if reached
            else "<span class='hr-muted'>not yet</span>")


def _top_actions(ev: Evaluation, anchors: dict[Any, str], top: int) -> str:
    n = ev.actions.height
    if n == 0:
        return "<p class='hr-muted'>No action fired.</p>"
    key = ev.account_key
    rank = pl.col("priority").replace_strict(_PRIORITY_RANK, default=4, return_dtype=pl.Int64)
    shown = (ev.actions.join(ev.scores.select(key, "roadmap", "score"), on=[key, "roadmap"],
                             how="left", nulls_equal=True, maintain_order="left")
             .sort(rank, "score", key, "action_id", nulls_last=True, maintain_order=True)
             .head(top))
    palettes = _band_palettes(ev)
    several = len(ev.plan.roadmaps) > 1
    rows = []
    for a in shown.iter_rows(named=True):
        k = a[key]
        name = escape(str(k))
        if k in anchors:
            name = f"<a href='#{anchors[k]}'>{name}</a>"
        who = " &middot; ".join(escape(str(x)) for x in (a.get("owner"), a.get("channel")) if x)
        stage = escape(_stage_label(a["roadmap"], a["stage"], several))
        score = _DASH if a["score"] is None else f"{a['score']:.0f}"
        rows.append(
            f"<tr><td>{name}</td><td>{stage}</td><td class='hr-n'>{score}</td>"
            f"<td>{_action_label(a['action_id'], a['kind'], a.get('title'))}</td>"
            f"<td>{_priority(str(a['priority']))}</td><td>{who or _DASH}</td>"
            f"<td>{escape(str(a['text']))}</td>"
            f"<td>{_evidence(a.get('evidence'), a['roadmap'], palettes)}</td></tr>")
    caption = (f"<p><b>Top {shown.height} of {n} fired actions</b> <span class='hr-muted'>"
               "(by priority, then lowest health score)</span></p>")
    more = (f"<p class='note'>... and {n - shown.height} more (raise the limit with "
            "<code>--top</code>, or read the <code>actions</code> frame).</p>"
            if n > shown.height else "")
    return caption + _table(["Account", "Stage", "Score", "Action", "Priority",
                             "Owner / channel", "Do", "Evidence"], rows,
                            cls="hr-top-actions", numeric=[2]) + more


def _steps(steps: Sequence[Any]) -> str:
    """The value of every sub-expression, indented by depth (whole expression last)."""
    items = [f"<li style='padding-left:{1.2 * s.depth:.1f}em'><code>{escape(s.text)}</code>"
             f" = <b>{escape(_fmt(s.value))}</b></li>" for s in steps]
    return "<ul class='trace'>" + "".join(items) + "</ul>"


_VERDICT = {True: "<span class='hr-pos'>holds</span>",
            False: "<span class='hr-muted'>does not hold</span>",
            None: "<span class='hr-neg'>unknown (a value is null)</span>"}


def _account_section(why: Explanation, anchor: str, ev: Evaluation,
                     spark: list[float | None] | None, cuts: list[float],
                     actions: list[dict[str, Any]]) -> str:
    palette = _score_palette(ev.plan)
    palettes = _band_palettes(ev)
    head = (f"<h3>Account <code class='hr-id'>{escape(str(why.account))}</code> "
            f"<a class='back' href='#accounts'>back to the list</a></h3>")
    if why.roadmap is None:
        return (f"<section class='acct' id='{anchor}'>{head}<p>No roadmap applies to this "
                "account (the <code>applies_to</code> of every track is false).</p></section>")
    score = "n/a" if why.score is None else f"{why.score:.1f}"
    line = (f"<p>Roadmap {_id(why.roadmap)}, stage {_id(why.stage)}, score <b>{score}</b> "
            f"{_badge(why.score_band, palette.get(why.score_band or ''))}")
    if spark is not None:
        line += " &middot; trend " + svg.sparkline(spark, label=f"score of {why.account}",
                                                   cuts=cuts)
    line += "</p>"
    stage_items = []
    for st in why.stages:
        entry = f"<code>{escape(st.entry)}</code>" if st.entry else "<i>always</i>"
        detail = f"<details class='vals'><summary>values</summary>{_steps(st.steps)}</details>" if (
            st.steps) else ""
        stage_items.append(f"<li>{_id(st.stage)}: entry {entry} &rarr; "
                           f"{_VERDICT[st.result]}{detail}</li>")
        if st.result is True:
            break
    stages = ("<h4>Why this stage</h4><p class='note'>Stages are tried in order; the "
              "account is in the first whose entry criterion holds.</p>"
              f"<ol class='steps'>{''.join(stage_items)}</ol>")
    rows = []
    r_palettes = {ind: p for (r, ind), p in palettes.items() if r == why.roadmap}
    for c in sorted(why.contributions, key=lambda c: (-c.lost, c.indicator)):
        value = "<i>missing</i>" if c.missing else escape(_fmt(c.value))
        rows.append(
            f"<tr><td>{_id(c.indicator)}</td><td>{escape(c.family)}</td>"
            f"<td class='hr-n'>{value}</td>"
            f"<td>{_badge(c.band, r_palettes.get(c.indicator, {}).get(c.band or ''))}</td>"
            f"<td class='hr-n'>{c.weight:.1%}</td>"
            f"<td class='hr-n hr-pos'>+{c.points:.1f}</td>"
            f"<td class='hr-n hr-neg'>&minus;{c.lost:.1f}</td></tr>")
    score_part = ("<h4>Why this score</h4><p class='note'>Each scored indicator's band earns "
                  "points by its weight; the ones costing the most come first.</p>"
                  + (_table(["Indicator", "Family", "Value", "Band", "Weight", "Earns",
                             "Loses"], rows, numeric=[2, 4, 5, 6]) if rows
                     else "<p class='hr-muted'>No scored indicator.</p>"))
    fired = []
    for a in actions:
        who = " &middot; ".join(escape(str(x)) for x in (a.get("owner"), a.get("channel")) if x)
        fired.append(
            f"<li>{_action_label(a['action_id'], a['kind'], a.get('title'))} "
            f"{_priority(str(a['priority']))}"
            + (f" <span class='hr-muted'>{who}</span>" if who else "")
            + f"<br>{escape(str(a['text']))}"
            f"{_evidence(a.get('evidence'), a['roadmap'], palettes)}</li>")
    fired_part = ("<h4>Fired actions</h4>"
                  + (f"<ul>{''.join(fired)}</ul>" if fired
                     else "<p class='hr-muted'>No action fired for this account.</p>"))
    why_rows = []
    skipped = []
    for t in why.actions:
        if not t.in_scope:
            skipped.append(_id(t.action_id))
            continue
        verdict = ("<b class='hr-neg'>fired</b>" if t.fired and t.kind == "challenge" else
                   "<b class='hr-pos'>fired</b>" if t.fired else
                   "<span class='hr-neg'>unknown (a value is null)</span>" if t.result is None
                   else "<span class='hr-muted'>did not fire</span>")
        why_rows.append(
            f"<tr><td>{_action_label(t.action_id, t.kind, None)}</td><td>{verdict}</td>"
            f"<td><code>{escape(t.when)}</code>"
            f"<details class='vals'><summary>values</summary>{_steps(t.steps)}</details></td></tr>")
    why_part = ("<h4>Why each action fired or did not</h4>"
                + _table(["Action", "Verdict", "Condition"], why_rows, cls="hr-why")
                + (f"<p class='note'>Not considered (actions of other stages): "
                   f"{', '.join(skipped)}</p>" if skipped else ""))
    return (f"<section class='acct' id='{anchor}'>{head}{line}{stages}{score_part}"
            f"{fired_part}{why_part}</section>")


def _explained(ev: Evaluation, ranked: pl.DataFrame, anchors: dict[Any, str],
               sparks: dict[Any, list[float | None]] | None, cuts: list[float]) -> str:
    """The explanation of each anchored account, computed on the evaluation cut down to
    those accounts (so each look-up reads a handful of rows, not every account)."""
    key = ev.account_key
    keys = ranked.filter(pl.col(key).is_in(list(anchors))).select(key)
    if keys.height == 0:
        return "<p class='hr-muted'>No account to explain.</p>"

    def cut(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.join(keys, on=key, how="semi", nulls_equal=True) if frame.height else frame

    small = dataclasses.replace(
        ev, indicators=cut(ev.indicators), stages=cut(ev.stages), scores=cut(ev.scores),
        actions=cut(ev.actions), attributes=cut(ev.attributes))
    by_account: dict[Any, list[dict[str, Any]]] = {}
    for a in small.actions.to_dicts():
        by_account.setdefault(a[key], []).append(a)
    rank = {name: i for i, name in enumerate(_PRIORITY_RANK)}
    parts = []
    for k in keys[key].to_list():
        acts = sorted(by_account.get(k, []),
                      key=lambda a: (rank.get(a["priority"], 9), a["action_id"]))
        parts.append(_account_section(small.explain(k), anchors[k], ev,
                                      None if sparks is None else sparks.get(k), cuts, acts))
    return "".join(parts)


def _account_cell(k: Any, anchors: dict[Any, str]) -> str:
    name = escape(str(k))
    return f"<a href='#{anchors[k]}'>{name}</a>" if k in anchors else name


def _daily_job(job: JobState, ev: Evaluation, anchors: dict[Any, str], limit: int) -> str:
    """The state store of ``healthrules run``: changes per run, open actions, the latest
    run's changes and the pins in force."""
    key = ev.account_key
    if job.runs.height == 0:
        return (f"<p>The state store <code>{escape(job.path)}</code> holds no run on or before "
                f"{ev.as_of.isoformat()}.</p>")
    runs = job.runs.sort("as_of").tail(60)
    dates: list[dt.date] = job.runs["as_of"].sort().to_list()
    first, latest = dates[0].isoformat(), dates[-1].isoformat()
    head = (f"<p class='note'>State store <code>{escape(job.path)}</code>: {job.runs.height} "
            f"runs from {first} to {latest}")
    if job.last_run is not None and job.last_run != dates[-1]:
        head += (f"; the open actions are the state after its latest run, "
                 f"{job.last_run.isoformat()}, later than this report's date")
    head += ".</p>"
    labels = [d.isoformat() for d in runs["as_of"].to_list()]
    colors = {"opened": "#c62828", "escalated": "#e65100", "resolved": "#1a7f37"}
    chart = svg.stacked_bars(
        labels, [svg.Series(c, colors[c], runs[c].to_list()) for c in colors],
        title="Changes reported by each run" + (" (the last 60)" if job.runs.height > 60
                                                else ""),
        y_title="actions", bar_width=22 if len(labels) > 20 else 30, totals=False)
    rank = pl.col("priority").replace_strict(_PRIORITY_RANK, default=4, return_dtype=pl.Int64)
    open_ = (job.actions.filter(pl.col("status") == "open")
             .with_columns((pl.lit(ev.as_of) - pl.col("opened_at")).dt.total_days()
                           .alias("days_open"))
             .sort(rank, "opened_at", key, "action_id", nulls_last=True))
    pending = job.actions.height - open_.height
    rows = []
    for a in open_.head(limit).iter_rows(named=True):
        esc = _DASH if a["escalated_at"] is None else escape(a["escalated_at"].isoformat())
        days = _DASH if a["days_open"] is None else str(a["days_open"])
        rows.append(
            f"<tr><td>{_account_cell(a[key], anchors)}</td><td>{_id(a['action_id'])}</td>"
            f"<td>{_priority(str(a['priority']))}</td><td>{escape(str(a['stage']))}</td>"
            f"<td class='hr-date'>{escape(str(a['opened_at']))}</td>"
            f"<td class='hr-n'>{days}</td><td class='hr-date'>{esc}</td>"
            f"<td>{escape(str(a['text'] or ''))}</td></tr>")
    open_table = (f"<p><b>Open actions</b> <span class='hr-muted'>({open_.height} open, "
                  f"{pending} pending: waiting for their <code>for</code>)</span></p>"
                  + _table(["Account", "Action", "Priority", "Stage", "Opened", "Days open",
                            "Escalated", "Text"], rows, cls="hr-open-actions", numeric=[5]))
    if open_.height > limit:
        open_table += (f"<p class='note'>The {limit} most urgent of {open_.height} open "
                       "actions are listed.</p>")
    change_rank = pl.col("change").replace_strict(
        {"escalated": 0, "opened": 1, "resolved": 2}, default=3, return_dtype=pl.Int64)
    changes = job.changes.sort(change_rank, rank, key, "action_id", nulls_last=True)
    rows = []
    for c in changes.head(limit).iter_rows(named=True):
        cls = "hr-pos" if c["change"] == "resolved" else "hr-neg"
        rows.append(
            f"<tr><td class='{cls}'>{escape(str(c['change']))}</td>"
            f"<td>{_account_cell(c[key], anchors)}</td><td>{_id(c['action_id'])}</td>"
            f"<td>{_priority(str(c['priority']))}</td><td>{escape(str(c['reason'] or ''))}</td>"
            f"<td class='hr-n'>{_DASH if c['days_open'] is None else c['days_open']}</td>"
            f"<td>{escape(str(c['text'] or ''))}</td></tr>")
    change_table = (f"<p><b>Changes of the run of {latest}</b> <span class='hr-muted'>"
                    f"({changes.height})</span></p>"
                    + _table(["Change", "Account", "Action", "Priority", "Reason", "Days open",
                              "Text"], rows, cls="hr-changes", numeric=[5]))
    rows = []
    for o in job.overrides.iter_rows(named=True):
        rows.append(
            f"<tr><td>{_account_cell(o[key], anchors)}</td><td>{_id(str(o['target']))}</td>"
            f"<td class='hr-n'>{o['value']:g}</td><td>{escape(str(o['reason'] or ''))}</td>"
            f"<td>{escape(str(o['set_by'] or ''))}</td><td class='hr-date'>{o['created_on']}"
            f"</td><td class='hr-date'>{o['expires_on']}</td></tr>")
    pins = (f"<p><b>Pins in force on {ev.as_of.isoformat()}</b> <span class='hr-muted'>"
            f"({job.overrides.height})</span></p>"
            + _table(["Account", "Pinned", "Value", "Reason", "Set by", "From", "Expires"],
                     rows, cls="hr-pins", numeric=[2]))
    return (f"{head}<div class='charts'>{chart}</div>{_store_trends(job, ev)}"
            f"<div class='hr-box'>{open_table}{change_table}{pins}</div>")


# --------------------------------------------------------------------------- page


def build(ev: Evaluation, history: History | None, limits: Limits,
          title: str | None = None, job: JobState | None = None) -> str:
    """The whole report as one HTML document (see :func:`healthrules.report.report_html`)."""
    from healthrules import __version__

    key = ev.account_key
    plan = ev.plan
    cuts = _score_cuts(plan)
    ranked = _ranked_accounts(ev)
    explained = ranked.head(min(limits.explain_accounts, limits.list_accounts))
    anchors = {k: f"acct-{i + 1}" for i, k in enumerate(explained[key].to_list())}
    sparks = None
    if history is not None:
        sparks = _spark_data(history, ranked.head(limits.list_accounts).select(key))
    name = title or " + ".join(cr.roadmap.title or cr.id for cr in plan.roadmaps) or plan.id
    n_actions = ev.actions.height
    kinds = dict(ev.actions.group_by("kind").len().rows()) if n_actions else {}
    scored = ev.scores.filter(pl.col("score").is_not_null())
    median = scored["score"].median() if scored.height else None
    bands = dict(ev.scores.group_by(_band_expr()).len().rows())
    palette = _score_palette(plan)
    worst = next((b for b in palette if b in bands), None)
    kpis = [("accounts", f"{ev.stages.height:,}"),
            ("median score", "n/a" if median is None else f"{float(median):.1f}"),  # type: ignore[arg-type]
            ("challenge actions", f"{kinds.get('challenge', 0):,}"),
            ("positive actions", f"{kinds.get('positive', 0):,}")]
    if worst is not None:
        kpis.insert(2, (f"in {worst}", f"{bands[worst]:,}"))
    targets = _goal_roadmaps(plan)
    if targets and "goal_reached" in ev.scores.columns:
        goal = ev.scores.filter(pl.col("roadmap").is_in(targets))["goal_reached"]
        known = goal.count()
        reached = int(goal.sum() or 0)
        kpis.append(("reached the goal", "n/a" if not known else
                     f"{reached / known:.0%} ({reached:,} of {known:,})"))
    kpi_html = "".join(f"<div class='kpi'><b>{escape(v)}</b>{escape(k)}</div>" for k, v in kpis)
    span = ""
    if history is not None and history.dates:
        span = (f" &middot; history {history.dates[0].isoformat()} to "
                f"{history.dates[-1].isoformat()} ({len(history.dates)} snapshots)")
    notes = evaluation_notes(ev)
    note = (f"<p class='note'>{escape('; '.join(notes))}.</p>" if notes else "")
    toc = [("overview", "Overview")]
    if history is not None:
        toc.append(("trends", "Trends"))
    toc.append(("actions", "Actions"))
    if job is not None:
        toc.append(("daily-job", "Daily job"))
    toc += [("roadmap", "Roadmap"), ("accounts", "Accounts"), ("explanations", "Explanations")]
    nav = "<nav class='toc'>" + " ".join(f"<a href='#{a}'>{t}</a>" for a, t in toc) + "</nav>"
    parts = [
        "<section class='part' id='overview'><h2>Overview</h2>"
        f"<div class='kpis'>{kpi_html}</div>{note}"
        f"<div class='charts'>{_stage_chart(ev)}{_histogram(ev)}</div>"
        f"<div class='hr-box'>{_STYLE}{_stage_table(ev)}</div>{_goal(ev)}</section>",
    ]
    if history is not None:
        parts.append("<section class='part' id='trends'><h2>Trends</h2>"
                     f"{_trends(history)}</section>")
    parts.append("<section class='part' id='actions'><h2>Actions</h2><div class='hr-box'>"
                 f"{_per_action_table(ev)}{_top_actions(ev, anchors, limits.top)}</div>"
                 "</section>")
    if job is not None:
        parts.append("<section class='part' id='daily-job'><h2>Daily job</h2>"
                     f"{_daily_job(job, ev, anchors, limits.list_accounts)}</section>")
    parts.append("<section class='part' id='roadmap'><h2>The roadmap</h2>"
                 + "".join(roadmap_html(cr.roadmap) for cr in plan.roadmaps) + "</section>")
    parts.append("<section class='part' id='accounts'><h2>Accounts</h2><p class='note'>Most "
                 "urgent first: by the priority of the most urgent fired action, then the "
                 "lowest score. The first accounts link to their explanation.</p>"
                 "<div class='hr-box'>"
                 f"{_accounts_table(ranked, ev, anchors, sparks, cuts, limits.list_accounts)}"
                 "</div></section>")
    more = ""
    if ranked.height > len(anchors):
        more = (f"<p class='note'>The {len(anchors)} most urgent of {ranked.height} accounts "
                "are explained here (raise the limit with <code>--explain-accounts</code>); "
                "<code>healthrules explain ... --account ID</code> explains any account.</p>")
    parts.append("<section class='part' id='explanations'><h2>Explanations</h2>"
                 f"{more}<div class='hr-box'>{_explained(ev, ranked, anchors, sparks, cuts)}"
                 "</div></section>")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<meta name='generator' content='healthrules {escape(__version__)}'>"
        f"<title>{escape(name)}: health report as of {ev.as_of.isoformat()}</title>"
        f"<style>{_PAGE_STYLE}</style></head><body>"
        f"<header class='top'><h1>{escape(name)}</h1><p>Health report as of "
        f"{ev.as_of.isoformat()} &middot; {ev.stages.height:,} accounts{span} &middot; "
        f"roadmap {escape(plan.id)} &middot; healthrules {escape(__version__)}</p></header>"
        f"{nav}<main>{''.join(parts)}</main></body></html>\n"
    )
