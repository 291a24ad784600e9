"""Charts of an evaluation for notebooks and reports (the optional ``plot`` extra, Altair).

Every chart aggregates with polars first and hands Altair only the binned counts, so a chart
of 100,000 accounts is as small as one of 200 (and never hits Altair's row limit). Band
colours run from red (the worst level) through amber to green (the best level), following
each banding's ``direction``; accounts with no band are grey.

Install the extra with ``pip install 'healthrules[plot]'``; Altair is imported only when a
chart is built, so ``import healthrules.plot`` and :func:`band_colors` work without it.

Examples
--------
>>> import healthrules as hr
>>> import healthrules.plot as hp
>>> from healthrules.examples import example_path
>>> from healthrules.datasets import sample
>>> data = sample(60)
>>> result = hr.evaluate(hr.load(example_path("b2b-saas")), data.events, data.accounts,
...                      data.as_of)
>>> chart = hp.score_distribution(result)
>>> [layer["mark"]["type"] for layer in chart.to_dict()["layer"]]
['bar', 'rule']
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from healthrules.expressions import ExprProblem, did_you_mean, parse
from healthrules.roadmap import UNASSIGNED_STAGE, Bands, Roadmap, number_text

if TYPE_CHECKING:
    from altair import LayerChart  # type: ignore[import-not-found, unused-ignore]

    from healthrules.evaluation import Evaluation

__all__ = [
    "NO_BAND_COLOR",
    "accounts_per_stage",
    "band_colors",
    "indicator_thresholds",
    "score_distribution",
]

INSTALL_HINT = "pip install 'healthrules[plot]'"

NO_BAND_COLOR = "#9e9e9e"
"""Colour of accounts with no band (no value, or no bands declared)."""

_RED, _AMBER, _GREEN = "#d73027", "#f0a81c", "#1a9850"
_NO_BAND = "no band"


def _altair() -> Any:
    """Import Altair, or raise an ImportError that names the extra to install."""
    try:
        import altair  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        raise ImportError(
            f"healthrules.plot needs Altair (the optional 'plot' extra): {INSTALL_HINT}"
        ) from exc
    return altair


# --------------------------------------------------------------------------- colours


def _mix(a: str, b: str, t: float) -> str:
    ca = [int(a[i : i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ca, cb, strict=True))


def _ramp(n: int) -> list[str]:
    """``n`` colours from red through amber to green."""
    if n <= 1:
        return [_GREEN] * n
    out = []
    for i in range(n):
        t = i / (n - 1)
        out.append(_mix(_RED, _AMBER, t * 2) if t <= 0.5 else _mix(_AMBER, _GREEN, t * 2 - 1))
    return out


def band_colors(bands: Bands) -> dict[str, str]:
    """Colour of each level of a banding, from red (worst) through amber to green (best).

    Parameters
    ----------
    bands
        The bands of an indicator or of the score.

    Returns
    -------
    dict of str to str
        Level name to a ``#rrggbb`` colour, in worst-to-best order (two levels: red and
        green; three: red, amber and green; more: shades in between).

    Examples
    --------
    >>> from healthrules.roadmap import Bands
    >>> bands = Bands.model_validate({"direction": "lower_is_better", "levels": [
    ...     {"name": "few", "le": 2}, {"name": "some", "gt": 2, "le": 5},
    ...     {"name": "many", "gt": 5}]})
    >>> band_colors(bands)
    {'many': '#d73027', 'some': '#f0a81c', 'few': '#1a9850'}
    """
    levels = bands.ordered_worst_to_best()
    return {b.name: c for b, c in zip(levels, _ramp(len(levels)), strict=True)}


def _score_palette(evaluation: Evaluation) -> dict[str, str]:
    """Score band colours across the evaluation's roadmaps (the first roadmap wins a name)."""
    palette: dict[str, str] = {}
    for cr in evaluation.plan.roadmaps:
        score = cr.roadmap.score
        for bands in (score.bands, *(s.bands for s in score.segments)):
            if bands is not None:
                for name, color in band_colors(bands).items():
                    palette.setdefault(name, color)
    return palette


def _color(alt: Any, field: str, palette: dict[str, str], present: Sequence[str],
           title: str) -> Any:
    """A nominal colour encoding with the band colours, worst first, grey for no band."""
    domain = [name for name in palette if name in present]
    domain += sorted(name for name in present if name not in palette and name != _NO_BAND)
    if _NO_BAND in present:
        domain.append(_NO_BAND)
    colors = [palette.get(name, NO_BAND_COLOR) for name in domain]
    return alt.Color(f"{field}:N", title=title, sort=domain,
                     scale=alt.Scale(domain=domain, range=colors))


def _band_rank(field: str, domain: Sequence[str]) -> pl.Expr:
    return pl.col(field).replace_strict(
        {name: i for i, name in enumerate(domain)}, default=len(domain), return_dtype=pl.Int64
    )


# --------------------------------------------------------------------------- bins


def _nice_step(span: float, bins: int) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``span / bins``."""
    raw = span / max(bins, 1)
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * power >= raw * (1 - 1e-9):
            return m * power
    return 10.0 * power  # pragma: no cover - the loop always returns


# --------------------------------------------------------------------------- score


def score_distribution(evaluation: Evaluation, *, step: float = 5.0,
                       roadmap: str | None = None) -> LayerChart:
    """Histogram of the health scores, stacked and coloured by score band.

    The bars count accounts per score bin (``step`` points wide, from 0 to 100); dashed
    rules mark the cut points of the score bands.

    Parameters
    ----------
    evaluation
        The result of :func:`healthrules.evaluate`.
    step
        Width of a bin in score points (default 5, so bins meet the usual cut points 40 / 70).
    roadmap
        Only the accounts of this roadmap of a pack (default: every account).

    Returns
    -------
    altair.LayerChart
        Two layers: the ``bar`` histogram (``x`` bin start, ``x2`` bin end, ``y`` accounts,
        ``color`` score band) and the ``rule`` marks at the score bands' cut points.

    Raises
    ------
    ImportError
        When Altair is not installed (``pip install 'healthrules[plot]'``).
    ValueError
        When ``step`` is not between 0 and 100, or ``roadmap`` is not in the evaluation.

    Examples
    --------
    >>> import healthrules as hr
    >>> from healthrules.plot import score_distribution
    >>> from healthrules.examples import example_path
    >>> from healthrules.datasets import sample
    >>> data = sample(60)
    >>> result = hr.evaluate(hr.load(example_path("b2b-saas")), data.events,
    ...                      data.accounts, data.as_of)
    >>> spec = score_distribution(result).to_dict()
    >>> spec["layer"][0]["encoding"]["color"]["scale"]["domain"]
    ['at_risk', 'watch', 'healthy']
    """
    alt = _altair()
    if not 0 < step <= 100:
        raise ValueError(f"step must be between 0 and 100 score points, got {step}")
    roadmaps = _select_roadmaps(evaluation, roadmap)
    scores = evaluation.scores
    if roadmap is not None:
        scores = scores.filter(pl.col("roadmap") == roadmap)
    palette: dict[str, str] = {}
    cuts: list[float] = []
    for r in roadmaps:
        for bands in (r.score.bands, *(s.bands for s in r.score.segments)):
            if bands is not None:
                for name, color in band_colors(bands).items():
                    palette.setdefault(name, color)
                cuts += [c for c in bands.cut_points() if c not in cuts]
    present = scores.filter(pl.col("score").is_not_null())
    missing = scores.height - present.height
    last = (math.ceil(100 / step) - 1) * step
    binned = (
        present.select(
            pl.min_horizontal((pl.col("score") / step).floor() * step, pl.lit(last))
            .alias("bin_start"),
            pl.col("score_band").cast(pl.String).fill_null(_NO_BAND).alias("band"),
        )
        .group_by("bin_start", "band")
        .len("accounts")
        .with_columns(pl.min_horizontal(pl.col("bin_start") + step, pl.lit(100.0))
                      .alias("bin_end"))
    )
    band_names = sorted(binned["band"].unique().to_list())
    color = _color(alt, "band", palette, band_names, "score band")
    domain = color.to_dict()["scale"]["domain"]
    binned = binned.with_columns(_band_rank("band", domain).alias("band_rank")).sort(
        "bin_start", "band_rank")
    bars = (
        alt.Chart(alt.Data(values=binned.to_dicts()))
        .mark_bar()
        .encode(
            x=alt.X("bin_start:Q", bin="binned", title="health score",
                    scale=alt.Scale(domain=[0, 100])),
            x2=alt.X2("bin_end:Q"),
            y=alt.Y("accounts:Q", title="accounts", stack="zero"),
            color=color,
            order=alt.Order("band_rank:Q"),
            tooltip=[
                alt.Tooltip("band:N", title="score band"),
                alt.Tooltip("bin_start:Q", title="from"),
                alt.Tooltip("bin_end:Q", title="to"),
                alt.Tooltip("accounts:Q"),
            ],
        )
    )
    rule_rows = [{"cut": c, "label": f"cut point {number_text(c)}"} for c in sorted(cuts)]
    rules = (
        alt.Chart(alt.Data(values=rule_rows))
        .mark_rule(strokeDash=[4, 3], color="#444444")
        .encode(x=alt.X("cut:Q"), tooltip=[alt.Tooltip("label:N", title="score band")])
    )
    subtitle = [f"{present.height} accounts as of {evaluation.as_of.isoformat()}"]
    if missing:
        subtitle.append(f"{missing} without a score (no scored indicator has a value)")
    title = alt.TitleParams("Health score distribution", subtitle=subtitle, anchor="start")
    chart: LayerChart = alt.layer(bars, rules).properties(title=title, width=420, height=220)
    return chart


# --------------------------------------------------------------------------- stages


def accounts_per_stage(evaluation: Evaluation, *, by_band: bool = True) -> LayerChart:
    """Bars of the number of accounts in each stage, in the stages' declared order.

    Parameters
    ----------
    evaluation
        The result of :func:`healthrules.evaluate`.
    by_band
        Stack each bar by score band, coloured like :func:`score_distribution` (default);
        ``False`` draws one plain bar per stage.

    Returns
    -------
    altair.LayerChart
        Two layers: the ``bar`` marks (``x`` stage, sorted as declared, ``y`` accounts,
        ``color`` score band) and a ``text`` mark with each stage's total. With a pack the
        stages are labelled ``roadmap / stage``, roadmaps in routing order; ``_unassigned``
        stages and unrouted accounts come last.

    Raises
    ------
    ImportError
        When Altair is not installed (``pip install 'healthrules[plot]'``).

    Examples
    --------
    >>> import healthrules as hr
    >>> from healthrules.plot import accounts_per_stage
    >>> from healthrules.examples import example_path
    >>> from healthrules.datasets import sample
    >>> data = sample(60)
    >>> result = hr.evaluate(hr.load(example_path("b2b-saas")), data.events,
    ...                      data.accounts, data.as_of)
    >>> accounts_per_stage(result).to_dict()["layer"][0]["encoding"]["x"]["sort"]
    ['trial', 'onboarding', 'operation', 'renewal']
    """
    alt = _altair()
    key = evaluation.account_key
    several = len(evaluation.plan.roadmaps) > 1
    order: list[str] = []
    titles: dict[str, str] = {}
    for cr in evaluation.plan.roadmaps:
        for st in [*cr.roadmap.stages, None]:
            sid = st.id if st is not None else UNASSIGNED_STAGE
            label = f"{cr.id} / {sid}" if several else sid
            order.append(label)
            titles[label] = (st.title or st.id) if st is not None else "no entry criterion held"
    unrouted = "(unrouted)"
    order.append(unrouted)
    titles[unrouted] = "no roadmap's applies_to held"
    frame = evaluation.stages.select(key, "roadmap", "stage").join(
        evaluation.scores.select(key, "roadmap", "score_band"),
        on=[key, "roadmap"], how="left", nulls_equal=True,
    )
    label_expr = (
        pl.when(pl.col("roadmap").is_null()).then(pl.lit(unrouted))
        .otherwise(pl.format("{} / {}", "roadmap", "stage") if several else pl.col("stage"))
    )
    band_expr = (pl.col("score_band").cast(pl.String).fill_null(_NO_BAND) if by_band
                 else pl.lit("accounts"))
    counts = (
        frame.select(label_expr.alias("stage"), band_expr.alias("band"))
        .group_by("stage", "band").len("accounts")
    )
    present = [s for s in order if s in set(counts["stage"].to_list())]
    shown = [s for s in order if not s.endswith(UNASSIGNED_STAGE) and s != unrouted] + [
        s for s in present if s.endswith(UNASSIGNED_STAGE) or s == unrouted]
    counts = counts.with_columns(
        pl.col("stage").replace_strict(titles, default=None).alias("title"))
    if by_band:
        color = _color(alt, "band", _score_palette(evaluation),
                       sorted(counts["band"].unique().to_list()), "score band")
        domain = color.to_dict()["scale"]["domain"]
    else:
        color = alt.value("#4c78a8")
        domain = ["accounts"]
    counts = counts.with_columns(_band_rank("band", domain).alias("band_rank")).sort(
        "stage", "band_rank")
    x = alt.X("stage:N", sort=shown, title="stage", scale=alt.Scale(domain=shown),
              axis=alt.Axis(labelAngle=0 if not several else -30))
    bars = (
        alt.Chart(alt.Data(values=counts.to_dicts()))
        .mark_bar()
        .encode(
            x=x,
            y=alt.Y("accounts:Q", title="accounts", stack="zero"),
            color=color,
            order=alt.Order("band_rank:Q"),
            tooltip=[alt.Tooltip("stage:N"), alt.Tooltip("title:N"),
                     alt.Tooltip("band:N", title="score band"), alt.Tooltip("accounts:Q")],
        )
    )
    totals = counts.group_by("stage").agg(pl.col("accounts").sum()).sort("stage")
    text = (
        alt.Chart(alt.Data(values=totals.to_dicts()))
        .mark_text(dy=-6, baseline="bottom")
        .encode(x=x, y=alt.Y("accounts:Q"), text=alt.Text("accounts:Q"))
    )
    title = alt.TitleParams(
        "Accounts per stage",
        subtitle=[f"{evaluation.stages.height} accounts as of {evaluation.as_of.isoformat()}"],
        anchor="start",
    )
    chart: LayerChart = alt.layer(bars, text).properties(
        title=title, width=max(240, 70 * len(shown)), height=220)
    return chart


# --------------------------------------------------------------------------- indicators


@dataclass(frozen=True)
class _Threshold:
    action: str
    kind: str
    op: str
    value: float


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_OPS: dict[type[ast.cmpop], str] = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
}


def _number(node: ast.expr) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _number(node.operand)
        if inner is None:
            return None
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not (
            isinstance(node.value, bool)):
        return float(node.value)
    return None


def _comparisons(tree: ast.AST, name: str) -> Iterator[tuple[str, float]]:
    """``(op, literal)`` of each comparison ``name op literal`` (either side) in a tree."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for left, op, right in zip(operands, node.ops, operands[1:], strict=False):
            symbol = _OPS.get(type(op))
            if symbol is None:
                continue
            if isinstance(left, ast.Name) and left.id == name and (v := _number(right)) is not None:
                yield symbol, v
            elif (isinstance(right, ast.Name) and right.id == name
                  and (v := _number(left)) is not None):
                yield _FLIP[symbol], v


def _action_thresholds(roadmap: Roadmap, indicator: str) -> list[_Threshold]:
    """Every comparison of ``indicator`` with a number in the roadmap's action conditions."""
    out: list[_Threshold] = []
    for _stage, action in roadmap.all_actions():
        try:
            tree = parse(action.when).tree
        except ExprProblem:  # pragma: no cover - a loaded roadmap's conditions parse
            continue
        out += [_Threshold(action.id, action.kind, op, v) for op, v in _comparisons(tree,
                                                                                      indicator)]
    return out


def _select_roadmaps(evaluation: Evaluation, roadmap: str | None) -> list[Roadmap]:
    roadmaps = [cr.roadmap for cr in evaluation.plan.roadmaps]
    if roadmap is None:
        return roadmaps
    chosen = [r for r in roadmaps if r.id == roadmap]
    if not chosen:
        known = [r.id for r in roadmaps]
        hint = did_you_mean(roadmap, known)
        raise ValueError(f"no roadmap {roadmap!r} in this evaluation (roadmaps: "
                         f"{', '.join(known)})" + (f"; {hint}" if hint else ""))
    return chosen


def _chain(bands: Bands) -> str:
    """``low < 0.5 <= medium < 0.8 <= high``: the levels with their cut points."""
    parts = [bands.levels[0].name]
    for a, b in zip(bands.levels, bands.levels[1:], strict=False):
        up = a.upper
        assert up is not None  # validated: adjacent levels meet at a cut point
        parts.append(f"{'<=' if up[1] else '<'} {number_text(up[0])} {'<' if up[1] else '<='}")
        parts.append(b.name)
    return " ".join(parts)


def indicator_thresholds(evaluation: Evaluation, indicator: str, *, bins: int = 30,
                         roadmap: str | None = None, actions: bool = True) -> LayerChart:
    """The distribution of one indicator with its bands shaded and its cut points as rules.

    The histogram counts accounts per bin of the indicator's value, each bar coloured by the
    band the engine gave those accounts (so a value exactly at a cut point is in the right
    band). Behind it the band intervals are shaded in the band colours, solid rules mark the
    band cut points, and, with ``actions``, dashed rules mark every number an action condition
    compares the indicator with (``first_login_rate < 0.5``), labelled with the action id.

    Parameters
    ----------
    evaluation
        The result of :func:`healthrules.evaluate`.
    indicator
        The id of a numeric indicator (banded or not).
    bins
        About how many bins to draw; the bin width is rounded to 1, 2, 2.5 or 5 times a power
        of ten (whole numbers for integer indicators, one bin per value when they fit).
    roadmap
        With a pack: the roadmap whose indicator (and accounts) to draw; default: the first
        roadmap that declares ``indicator``.
    actions
        Also draw the thresholds of the action conditions (default ``True``).

    Returns
    -------
    altair.LayerChart
        Layers in order: ``rect`` band shading (``x``/``x2`` the band's interval, ``color``
        band), ``bar`` histogram (``x`` bin start, ``x2`` bin end, ``y`` accounts, ``color``
        band), ``rule`` at each band cut point, then, with ``actions``, a dashed ``rule`` and
        a ``text`` label per action threshold.

    Raises
    ------
    ImportError
        When Altair is not installed (``pip install 'healthrules[plot]'``).
    KeyError
        When no roadmap of the evaluation declares ``indicator``.
    TypeError
        When the indicator is not numeric (a date or datetime).

    Examples
    --------
    >>> import healthrules as hr
    >>> from healthrules.plot import indicator_thresholds
    >>> from healthrules.examples import example_path
    >>> from healthrules.datasets import sample
    >>> data = sample(60)
    >>> result = hr.evaluate(hr.load(example_path("b2b-saas")), data.events,
    ...                      data.accounts, data.as_of)
    >>> spec = indicator_thresholds(result, "first_login_rate").to_dict()
    >>> [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]
    ...  for layer in spec["layer"]]
    ['rect', 'bar', 'rule', 'rule', 'text']
    """
    alt = _altair()
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    owner = next((r for r in _select_roadmaps(evaluation, roadmap)
                  if any(i.id == indicator for i in r.indicators)), None)
    if owner is None:
        known = sorted({i.id for cr in evaluation.plan.roadmaps for i in cr.roadmap.indicators})
        hint = did_you_mean(indicator, known)
        raise KeyError(f"no indicator {indicator!r} in "
                       + (f"roadmap {roadmap!r}" if roadmap else "this evaluation")
                       + (f"; {hint}" if hint else ""))
    ind = owner.indicator(indicator)
    frame = evaluation.indicators
    if len(evaluation.plan.roadmaps) > 1:
        frame = frame.filter(pl.col("roadmap") == owner.id)
    dtype = frame.schema[indicator]
    if dtype == pl.Boolean:
        frame = frame.with_columns(pl.col(indicator).cast(pl.Int64))
        dtype = pl.Int64()
    if not dtype.is_numeric():
        raise TypeError(f"indicator {indicator!r} is {dtype}, not a number: "
                        "indicator_thresholds draws numeric indicators")
    integer = dtype.is_integer()
    band_col = f"{indicator}__band"
    bands = ind.bands
    palette = band_colors(bands) if bands is not None else {}
    values = frame.select(
        pl.col(indicator).cast(pl.Float64).alias("value"),
        (pl.col(band_col).cast(pl.String) if band_col in frame.columns else pl.lit(None))
        .fill_null(_NO_BAND).alias("band"),
    ).filter(pl.col("value").is_not_null() & pl.col("value").is_finite())
    missing = frame.height - values.height
    thresholds = _action_thresholds(owner, indicator) if actions else []
    cuts = bands.cut_points() if bands is not None else []

    marks = [*cuts, *(t.value for t in thresholds)]
    lo_v = values["value"].min() if values.height else None
    hi_v = values["value"].max() if values.height else None
    lo = min([float(x) for x in (lo_v, *marks) if isinstance(x, (int, float))], default=0.0)
    hi = max([float(x) for x in (hi_v, *marks) if isinstance(x, (int, float))], default=1.0)
    if integer and hi - lo + 1 <= bins:
        step, offset = 1.0, -0.5          # one bar per whole number, centred on it
        lo, hi = lo - 0.5, hi + 0.5
    else:
        step = _nice_step(hi - lo, bins)
        if integer:
            step = max(1.0, float(math.ceil(step)))
        offset = 0.0
        lo = math.floor(lo / step) * step
        hi = max(math.ceil(hi / step) * step, lo + step)
        if lo == hi:  # pragma: no cover - guarded by the max above
            hi = lo + step
    binned = (
        values.select(
            (((pl.col("value") - offset) / step).floor() * step + offset).alias("bin_start"),
            "band",
        )
        .group_by("bin_start", "band").len("accounts")
        .with_columns((pl.col("bin_start") + step).alias("bin_end"))
    )
    if binned.height:
        lo = min(lo, float(binned["bin_start"].min()))  # type: ignore[arg-type]
        hi = max(hi, float(binned["bin_end"].max()))  # type: ignore[arg-type]
    present = sorted(binned["band"].unique().to_list())
    color = _color(alt, "band", palette, present, "band")
    domain = color.to_dict()["scale"]["domain"]
    binned = binned.with_columns(_band_rank("band", domain).alias("band_rank")).sort(
        "bin_start", "band_rank")

    # band intervals, for the shading (whole numbers: the edge between two values)
    shade_rows: list[dict[str, Any]] = []
    cut_rows: list[dict[str, Any]] = []
    if bands is not None:
        edges: list[float] = []
        for a, b in zip(bands.levels, bands.levels[1:], strict=False):
            up = a.upper
            assert up is not None
            pos = up[0]
            if integer and float(up[0]).is_integer():
                pos = up[0] + 0.5 if up[1] else up[0] - 0.5
            edges.append(pos)
            cut_rows.append({
                "cut": up[0], "x": pos,
                "label": f"{a.name} {'<=' if up[1] else '<'} {number_text(up[0])} "
                         f"{'<' if up[1] else '<='} {b.name}",
            })
        bounds = [min(lo, *edges), *edges, max(hi, *edges)]
        lo, hi = bounds[0], bounds[-1]
        for level, start, end in zip(bands.levels, bounds, bounds[1:], strict=False):
            shade_rows.append({"band": level.name, "start": start, "end": end,
                               "interval": level.describe()})
    scale = alt.Scale(domain=[lo, hi], nice=False, zero=False)
    label = ind.title or ind.id
    layers: list[Any] = []
    shade_color = alt.Color("band:N", scale=color.to_dict()["scale"], legend=None)
    layers.append(
        alt.Chart(alt.Data(values=shade_rows))
        .mark_rect(opacity=0.12)
        .encode(x=alt.X("start:Q", scale=scale), x2=alt.X2("end:Q"), color=shade_color,
                tooltip=[alt.Tooltip("band:N"), alt.Tooltip("interval:N")])
    )
    layers.append(
        alt.Chart(alt.Data(values=binned.to_dicts()))
        .mark_bar()
        .encode(
            x=alt.X("bin_start:Q", bin="binned", title=label, scale=scale),
            x2=alt.X2("bin_end:Q"),
            y=alt.Y("accounts:Q", title="accounts", stack="zero"),
            color=color,
            order=alt.Order("band_rank:Q"),
            tooltip=[alt.Tooltip("band:N"), alt.Tooltip("bin_start:Q", title="from"),
                     alt.Tooltip("bin_end:Q", title="to"), alt.Tooltip("accounts:Q")],
        )
    )
    layers.append(
        alt.Chart(alt.Data(values=cut_rows))
        .mark_rule(color="#333333", strokeWidth=1.5)
        .encode(x=alt.X("x:Q", scale=scale),
                tooltip=[alt.Tooltip("label:N", title="cut point"), alt.Tooltip("cut:Q")])
    )
    if actions:
        rows = [{"action": t.action, "kind": t.kind, "value": t.value,
                 "label": f"{t.action}: {t.op} {number_text(t.value)}"} for t in thresholds]
        layers.append(
            alt.Chart(alt.Data(values=rows))
            .mark_rule(strokeDash=[5, 4], color="#5b2c83")
            .encode(x=alt.X("value:Q", scale=scale),
                    tooltip=[alt.Tooltip("label:N", title="action"), alt.Tooltip("kind:N")])
        )
        layers.append(
            alt.Chart(alt.Data(values=rows))
            .mark_text(align="left", angle=0, dx=3, dy=4, baseline="top", color="#5b2c83",
                       fontSize=10)
            .encode(x=alt.X("value:Q", scale=scale), y=alt.value(0), text=alt.Text("label:N"))
        )
    whose = f" of roadmap {owner.id}" if len(evaluation.plan.roadmaps) > 1 else ""
    subtitle = [f"{values.height} accounts{whose} as of {evaluation.as_of.isoformat()}"
                + (f"; {missing} without a value" if missing else "")]
    if bands is not None:
        subtitle.append(_chain(bands) + (" (lower is better)"
                                         if bands.direction == "lower_is_better" else ""))
    title = alt.TitleParams(f"{label} ({ind.id})" if ind.title else ind.id, subtitle=subtitle,
                            anchor="start")
    chart: LayerChart = alt.layer(*layers).properties(title=title, width=420, height=220)
    return chart
