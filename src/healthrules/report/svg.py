"""Small SVG charts as strings: stacked bars, a histogram, line charts and sparklines.

The report draws its charts with these functions, so that the HTML file needs no script, no
font and no network to show them. Each function takes the numbers already aggregated (by
polars, in :mod:`healthrules.report`) and returns one ``<svg>`` element. Every text that
comes from data (stage names, band names, account ids) is escaped, in text nodes and in
attributes alike.

Conventions the tests and the browser check rely on:

- each chart is ``<svg class="hr-chart" role="img" aria-label="...">`` (sparklines
  ``class="hr-spark"``), with a ``<title>``;
- every drawn data mark (a bar segment, a point, a line) carries ``class="mark"`` and a
  ``<title>`` child, which browsers show as a tooltip;
- axes, grid lines and band cut points are not marks.

Examples
--------
>>> from healthrules.report.svg import Series, stacked_bars
>>> svg = stacked_bars(["trial", "operation"], [Series("red", "#d73027", [1, 2]),
...                                             Series("green", "#1a9850", [3, 0])],
...                    title="Accounts <per> stage")
>>> svg.count('class="mark"')
3
>>> "Accounts &lt;per&gt; stage" in svg
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

__all__ = [
    "Series",
    "histogram",
    "line_chart",
    "nice_ticks",
    "sparkline",
    "stacked_bars",
]

_FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"
_AXIS = "#555"
_GRID = "rgba(128,128,128,.25)"
_CUT = "#444"


@dataclass(frozen=True)
class Series:
    """One named series: a colour and one value per category or date (``None``: no value)."""

    name: str
    color: str
    values: Sequence[float | None]


def _a(value: object) -> str:
    """Escape a value for an attribute or a text node."""
    return escape(str(value), quote=True)


def _n(x: float) -> str:
    """A coordinate with at most two decimals."""
    return f"{x:.2f}".rstrip("0").rstrip(".") if math.isfinite(x) else "0"


def _v(x: float) -> str:
    """A value as people read it: whole numbers plain, else one or two decimals."""
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.2f}".rstrip("0").rstrip(".") if abs(x) < 10 else f"{x:.1f}".rstrip("0").rstrip(".")


def _short(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: max(limit - 1, 1)] + "\u2026"


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Tick values from 0 to at least ``top``, ``count`` or so steps of 1, 2, 2.5 or 5 x 10^k.

    >>> nice_ticks(37)
    [0.0, 10.0, 20.0, 30.0, 40.0]
    >>> nice_ticks(0)
    [0.0, 1.0]
    """
    if not math.isfinite(top) or top <= 0:
        return [0.0, 1.0]
    raw = top / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= raw * (1 - 1e-9))
    n = math.ceil(top / step - 1e-9)
    return [float(f"{i * step:.12g}") for i in range(n + 1)]


def _open(cls: str, width: float, height: float, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="{cls}" role="img" '
            f'aria-label="{_a(title)}" width="{_n(width)}" height="{_n(height)}" '
            f'viewBox="0 0 {_n(width)} {_n(height)}" style="{_FONT};font-size:11px">'
            f"<title>{_a(title)}</title>")


def _legend(series: Sequence[Series], x: float, y: float, width: float) -> tuple[str, float]:
    """Swatches and names, wrapped to ``width``; returns the markup and the height used."""
    parts: list[str] = []
    cx, cy = x, y
    for s in series:
        label = _short(s.name, 24)
        w = 16 + 6.2 * len(label) + 12
        if cx > x and cx + w > x + width:
            cx, cy = x, cy + 16
        parts.append(f'<rect x="{_n(cx)}" y="{_n(cy)}" width="10" height="10" '
                     f'fill="{_a(s.color)}"/><text x="{_n(cx + 14)}" y="{_n(cy + 9)}" '
                     f'fill="{_AXIS}">{_a(label)}</text>')
        cx += w
    return "".join(parts), (cy - y + 16) if series else 0.0


def _y_axis(ticks: Sequence[float], left: float, right: float, y_of: Callable[[float], float],
            title: str | None) -> str:
    out = []
    for t in ticks:
        y = y_of(t)
        out.append(f'<line x1="{_n(left)}" x2="{_n(right)}" y1="{_n(y)}" y2="{_n(y)}" '
                   f'stroke="{_GRID}"/><text x="{_n(left - 4)}" y="{_n(y + 3.5)}" '
                   f'text-anchor="end" fill="{_AXIS}">{_a(_v(t))}</text>')
    if title:
        mid = (y_of(ticks[0]) + y_of(ticks[-1])) / 2
        out.append(f'<text transform="translate(11 {_n(mid)}) rotate(-90)" '
                   f'text-anchor="middle" fill="{_AXIS}">{_a(title)}</text>')
    return "".join(out)


def stacked_bars(categories: Sequence[str], series: Sequence[Series], *, title: str,
                 x_title: str | None = None, y_title: str | None = "accounts",
                 height: float = 240, bar_width: float = 56, totals: bool = True,
                 descriptions: Sequence[str] | None = None) -> str:
    """Bars per category, each stacked by series (bottom to top in the series' order).

    Parameters
    ----------
    categories
        The x labels, left to right.
    series
        The stacks; ``values[i]`` is the segment of ``categories[i]`` (``None`` or 0: none).
    title
        The chart's title (also its accessible name).
    x_title, y_title
        Axis titles.
    height, bar_width
        Size: the width follows from the number of categories.
    totals
        Write each bar's total above it.
    descriptions
        A longer text per category for its tooltip (e.g. a stage's title).

    Returns
    -------
    str
        One ``<svg class="hr-chart">``; one ``class="mark"`` rect per non-zero segment.
    """
    step = bar_width * 1.35
    left, right = 46.0, 12.0
    width = max(left + right + step * len(categories), 280.0, left + 7.5 * len(title) + right)
    legend, legend_h = _legend(series, left, 24, width - left - right)
    top = 28 + legend_h + 8
    longest = max((len(_short(c, 18)) for c in categories), default=0)
    rotate = longest * 6.2 > step - 4
    bottom = 40.0 + (longest * 4.0 if rotate else 0.0)
    plot_h = max(height - top - bottom, 60.0)
    sums = [sum((s.values[i] or 0) for s in series) for i in range(len(categories))]
    ticks = nice_ticks(max(sums, default=0))

    def y_of(v: float) -> float:
        return top + plot_h - plot_h * v / ticks[-1]

    out = [_open("hr-chart", width, top + plot_h + bottom, title),
           f'<text x="{_n(left)}" y="15" font-weight="bold" font-size="13px">{_a(title)}</text>',
           legend, _y_axis(ticks, left, width - right, y_of, y_title)]
    for i, cat in enumerate(categories):
        x = left + step * i + (step - bar_width) / 2
        base = 0.0
        about = f" ({descriptions[i]})" if descriptions and descriptions[i] else ""
        for s in series:
            v = s.values[i] or 0
            if v <= 0:
                continue
            y1, y0 = y_of(base + v), y_of(base)
            out.append(f'<rect class="mark" x="{_n(x)}" y="{_n(y1)}" width="{_n(bar_width)}" '
                       f'height="{_n(max(y0 - y1, 0.5))}" fill="{_a(s.color)}">'
                       f"<title>{_a(cat)}{_a(about)}: {_a(s.name)} {_a(_v(v))}</title></rect>")
            base += v
        if totals and sums[i]:
            out.append(f'<text x="{_n(x + bar_width / 2)}" y="{_n(y_of(sums[i]) - 3)}" '
                       f'text-anchor="middle" fill="{_AXIS}">{_a(_v(sums[i]))}</text>')
        lx, ly = x + bar_width / 2, top + plot_h + 14
        label = _short(cat, 18)
        if rotate:
            out.append(f'<text transform="translate({_n(lx)} {_n(ly - 4)}) rotate(-30)" '
                       f'text-anchor="end" fill="{_AXIS}">{_a(label)}<title>{_a(cat)}</title>'
                       "</text>")
        else:
            out.append(f'<text x="{_n(lx)}" y="{_n(ly)}" text-anchor="middle" fill="{_AXIS}">'
                       f"{_a(label)}<title>{_a(cat)}</title></text>")
    out.append(f'<line x1="{_n(left)}" x2="{_n(width - right)}" y1="{_n(y_of(0))}" '
               f'y2="{_n(y_of(0))}" stroke="{_AXIS}"/>')
    if x_title:
        out.append(f'<text x="{_n((left + width - right) / 2)}" '
                   f'y="{_n(top + plot_h + bottom - 4)}" text-anchor="middle" '
                   f'fill="{_AXIS}">{_a(x_title)}</text>')
    out.append("</svg>")
    return "".join(out)


def histogram(edges: Sequence[float], series: Sequence[Series], *, title: str,
              cuts: Sequence[float] = (), x_title: str = "health score",
              y_title: str = "accounts", width: float = 560, height: float = 260) -> str:
    """A histogram on a numeric axis, each bin stacked by series, with dashed cut points.

    Parameters
    ----------
    edges
        The bin edges, ascending: ``len(edges) - 1`` bins; bin ``i`` is
        ``[edges[i], edges[i + 1])``.
    series
        The stacks; ``values[i]`` is the count of bin ``i``.
    cuts
        Values marked by a dashed vertical line (the score bands' cut points).

    Returns
    -------
    str
        One ``<svg class="hr-chart">``; one ``class="mark"`` rect per non-zero segment.
    """
    if len(edges) < 2:
        raise ValueError("a histogram needs at least two bin edges")
    lo, hi = edges[0], edges[-1]
    left, right = 46.0, 12.0
    legend, legend_h = _legend(series, left, 24, width - left - right)
    top, bottom = 28 + legend_h + 8, 40.0
    plot_h = max(height - top - bottom, 60.0)
    plot_w = width - left - right
    bins = len(edges) - 1
    sums = [sum((s.values[i] or 0) for s in series) for i in range(bins)]
    ticks = nice_ticks(max(sums, default=0))

    def x_of(v: float) -> float:
        return left + plot_w * (v - lo) / (hi - lo) if hi > lo else left

    def y_of(v: float) -> float:
        return top + plot_h - plot_h * v / ticks[-1]

    out = [_open("hr-chart", width, top + plot_h + bottom, title),
           f'<text x="{_n(left)}" y="15" font-weight="bold" font-size="13px">{_a(title)}</text>',
           legend, _y_axis(ticks, left, width - right, y_of, y_title)]
    for i in range(bins):
        x0, x1 = x_of(edges[i]), x_of(edges[i + 1])
        base = 0.0
        for s in series:
            v = s.values[i] or 0
            if v <= 0:
                continue
            y1, y0 = y_of(base + v), y_of(base)
            out.append(f'<rect class="mark" x="{_n(x0 + 0.5)}" y="{_n(y1)}" '
                       f'width="{_n(max(x1 - x0 - 1, 0.5))}" height="{_n(max(y0 - y1, 0.5))}" '
                       f'fill="{_a(s.color)}"><title>{_a(_v(edges[i]))} to '
                       f"{_a(_v(edges[i + 1]))}: {_a(s.name)} {_a(_v(v))}</title></rect>")
            base += v
    for t in nice_ticks(hi - lo, 10) if lo == 0 else [lo, hi]:
        x = x_of(lo + t if lo == 0 else t)
        out.append(f'<text x="{_n(x)}" y="{_n(top + plot_h + 14)}" text-anchor="middle" '
                   f'fill="{_AXIS}">{_a(_v(lo + t if lo == 0 else t))}</text>')
    for c in cuts:
        if lo <= c <= hi:
            x = x_of(c)
            out.append(f'<line class="cut" x1="{_n(x)}" x2="{_n(x)}" y1="{_n(top)}" '
                       f'y2="{_n(top + plot_h)}" stroke="{_CUT}" stroke-dasharray="4 3">'
                       f"<title>band cut point {_a(_v(c))}</title></line>")
    out.append(f'<line x1="{_n(left)}" x2="{_n(width - right)}" y1="{_n(y_of(0))}" '
               f'y2="{_n(y_of(0))}" stroke="{_AXIS}"/>'
               f'<text x="{_n(left + plot_w / 2)}" y="{_n(top + plot_h + bottom - 4)}" '
               f'text-anchor="middle" fill="{_AXIS}">{_a(x_title)}</text></svg>')
    return "".join(out)


def _path(points: Sequence[tuple[float, float] | None]) -> str:
    """An SVG path through the points, broken where a point is missing."""
    d: list[str] = []
    pen_up = True
    for p in points:
        if p is None:
            pen_up = True
            continue
        d.append(f"{'M' if pen_up else 'L'}{_n(p[0])} {_n(p[1])}")
        pen_up = False
    return " ".join(d)


def line_chart(x_labels: Sequence[str], series: Sequence[Series], *, title: str,
               y_domain: tuple[float, float] | None = None, y_title: str | None = None,
               cuts: Sequence[float] = (), width: float = 560, height: float = 240,
               legend: bool = True, points: bool = True, heading: bool = True) -> str:
    """Lines over evenly spaced x labels (dates), one per series; ``None`` breaks a line.

    Parameters
    ----------
    x_labels
        One label per position (the first, the last and a few between are written).
    series
        The lines.
    y_domain
        The y range (default: 0 to a round number above the largest value).
    cuts
        Values marked by dashed horizontal lines (the score bands' cut points).
    legend, points
        Draw the legend; draw a point (a ``mark`` with its value) at every value.
    heading
        Draw the title above the chart (``False``: it is only the chart's accessible name,
        for a small chart whose caption is outside it).

    Returns
    -------
    str
        One ``<svg class="hr-chart">``: one ``class="mark"`` path per series with a value,
        and one ``class="mark"`` circle per value when ``points``.
    """
    compact = width < 320
    left, right = 46.0, 12.0 if compact else 34.0
    legend_svg, legend_h = (_legend(series, left, 24, width - left - right) if legend
                            else ("", 0.0))
    top, bottom = (28 + legend_h + 8) if heading or legend else 8.0, 36.0
    plot_h = max(height - top - bottom, 30.0)
    plot_w = width - left - right
    values = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    if y_domain is None:
        ticks = nice_ticks(max(values, default=0), 4)
        y0, y1 = 0.0, ticks[-1]
    else:
        y0, y1 = y_domain
        span = nice_ticks(y1 - y0, 4)
        ticks = [y0 + t for t in span if y0 + t <= y1 + 1e-9]
    n = len(x_labels)

    def x_of(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y_of(v: float) -> float:
        return top + plot_h - plot_h * (v - y0) / ((y1 - y0) or 1)

    out = [_open("hr-chart", width, top + plot_h + bottom, title)]
    if heading:
        out.append(f'<text x="{_n(left)}" y="15" font-weight="bold" font-size="13px">'
                   f"{_a(title)}</text>")
    out += [legend_svg, _y_axis(ticks, left, width - right, y_of, y_title)]
    for c in cuts:
        if y0 < c < y1:
            out.append(f'<line class="cut" x1="{_n(left)}" x2="{_n(width - right)}" '
                       f'y1="{_n(y_of(c))}" y2="{_n(y_of(c))}" stroke="{_CUT}" '
                       f'stroke-dasharray="4 3"><title>band cut point {_a(_v(c))}</title>'
                       "</line>")
    if compact:  # first and last label only, kept inside the chart
        shown = sorted({0, n - 1}) if n else []
    else:
        shown = sorted({0, n - 1, *range(0, n, max(1, math.ceil(n / 6)))}) if n else []
        if n > 1 and len(shown) > 2 and shown[-1] - shown[-2] < max(1, math.ceil(n / 6)) / 2:
            shown.pop(-2)  # the last label would overlap the one before it
    for i in shown:
        anchor = "middle"
        if compact and n > 1:
            anchor = "start" if i == 0 else "end"
        out.append(f'<text x="{_n(x_of(i))}" y="{_n(top + plot_h + 14)}" '
                   f'text-anchor="{anchor}" fill="{_AXIS}">{_a(x_labels[i])}</text>')
    for s in series:
        pts = [None if v is None or not math.isfinite(v) else (x_of(i), y_of(v))
               for i, v in enumerate(s.values)]
        d = _path(pts)
        if not d:
            continue
        out.append(f'<path class="mark" d="{d}" fill="none" stroke="{_a(s.color)}" '
                   f'stroke-width="2"><title>{_a(s.name)}</title></path>')
        if points:
            for i, p in enumerate(pts):
                if p is not None:
                    v = s.values[i]
                    assert v is not None
                    out.append(f'<circle class="mark" cx="{_n(p[0])}" cy="{_n(p[1])}" r="2.6" '
                               f'fill="{_a(s.color)}"><title>{_a(s.name)}, '
                               f"{_a(x_labels[i])}: {_a(_v(v))}</title></circle>")
    out.append(f'<line x1="{_n(left)}" x2="{_n(width - right)}" y1="{_n(top + plot_h)}" '
               f'y2="{_n(top + plot_h)}" stroke="{_AXIS}"/></svg>')
    return "".join(out)


def sparkline(values: Sequence[float | None], *, label: str, color: str = "#4c78a8",
              y_domain: tuple[float, float] = (0.0, 100.0), width: float = 110,
              height: float = 26, cuts: Sequence[float] = ()) -> str:
    """A word-sized line of one account's score over the snapshot dates.

    The last value gets a dot; ``label`` (e.g. the account and the dates) is the tooltip,
    followed by the first and the last value. A sparkline without any value is an empty box.

    Returns
    -------
    str
        One ``<svg class="hr-spark">`` with one ``class="mark"`` path and one
        ``class="mark"`` circle when there is a value.
    """
    y0, y1 = y_domain
    n = len(values)
    pad = 3.0

    def x_of(i: int) -> float:
        return pad + ((width - 2 * pad) * i / (n - 1) if n > 1 else (width - 2 * pad) / 2)

    def y_of(v: float) -> float:
        v = min(max(v, y0), y1)
        return pad + (height - 2 * pad) * (1 - (v - y0) / ((y1 - y0) or 1))

    known = [v for v in values if v is not None and math.isfinite(v)]
    tip = label + (f": {_v(known[0])} \u2192 {_v(known[-1])}" if known else ": no score")
    out = [_open("hr-spark", width, height, tip)]
    for c in cuts:
        if y0 < c < y1:
            out.append(f'<line x1="0" x2="{_n(width)}" y1="{_n(y_of(c))}" y2="{_n(y_of(c))}" '
                       f'stroke="{_GRID}"/>')
    pts = [None if v is None or not math.isfinite(v) else (x_of(i), y_of(v))
           for i, v in enumerate(values)]
    d = _path(pts)
    if d:
        out.append(f'<path class="mark" d="{d}" fill="none" stroke="{_a(color)}" '
                   f'stroke-width="1.5"><title>{_a(tip)}</title></path>')
        last = next(p for p in reversed(pts) if p is not None)
        out.append(f'<circle class="mark" cx="{_n(last[0])}" cy="{_n(last[1])}" r="2.2" '
                   f'fill="{_a(color)}"><title>{_a(tip)}</title></circle>')
    out.append("</svg>")
    return "".join(out)
