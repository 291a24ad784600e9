"""The SVG charts of the report: well-formed, one mark per drawn value, geometry that matches
the numbers, every data text escaped."""

from __future__ import annotations

import doctest
import itertools
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthrules.report import svg
from healthrules.report.svg import (
    Series,
    histogram,
    line_chart,
    nice_ticks,
    sparkline,
    stacked_bars,
)

NS = "{http://www.w3.org/2000/svg}"
EVIL = "<script>alert('x')</script>\"&'"


def tree(text: str) -> ET.Element:
    """Parse as XML: a chart must be well-formed on its own (entities escaped, tags closed)."""
    return ET.fromstring(text)


def marks(root: ET.Element, tag: str | None = None) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == "mark"
            and (tag is None or e.tag == NS + tag)]


def texts(root: ET.Element) -> list[str]:
    """The texts drawn (without their tooltips)."""
    return [e.text or "" for e in root.iter(NS + "text")]


def test_doctests_of_the_svg_module() -> None:
    failures, tried = doctest.testmod(svg)
    assert tried >= 5 and failures == 0


@pytest.mark.parametrize(("top", "want"), [
    (37, [0, 10, 20, 30, 40]), (100, [0, 20, 40, 60, 80, 100]), (1, [0, 0.2, 0.4, 0.6, 0.8, 1]),
    (3, [0, 1, 2, 3]), (12, [0, 2.5, 5, 7.5, 10, 12.5]), (0, [0, 1]), (-5, [0, 1]),
    (float("nan"), [0, 1]),
])
def test_nice_ticks(top: float, want: list[float]) -> None:
    assert nice_ticks(top) == pytest.approx(want)


@given(st.floats(min_value=1e-6, max_value=1e12), st.integers(1, 12))
def test_nice_ticks_cover_the_top_in_even_steps(top: float, count: int) -> None:
    ticks = nice_ticks(top, count)
    assert ticks[0] == 0 and ticks[-1] >= top * (1 - 1e-9)
    steps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(steps) - min(steps) <= 1e-9 * max(steps)
    assert len(ticks) - 1 <= 2 * count + 1


def test_stacked_bars_draw_one_mark_per_nonzero_segment_with_proportional_heights() -> None:
    chart = stacked_bars(["trial", "operation", "renewal"],
                         [Series("at_risk", "#d73027", [2, 0, 5]),
                          Series("healthy", "#1a9850", [3, 10, None])], title="Stages")
    root = tree(chart)
    assert root.get("class") == "hr-chart" and root.get("role") == "img"
    rects = marks(root, "rect")
    assert len(rects) == 4  # zeros and None draw nothing
    heights = [float(r.get("height", "0")) for r in rects]
    order = [(r.find(NS + "title").text or "") for r in rects]  # type: ignore[union-attr]
    assert order == ["trial: at_risk 2", "trial: healthy 3", "operation: healthy 10",
                     "renewal: at_risk 5"]
    values = [2, 3, 10, 5]  # category by category, bottom to top
    ratio = {round(h / v, 6) for h, v in zip(heights, values, strict=True)}
    assert len(ratio) == 1  # one scale for every bar
    # a bar's segments are stacked: the second starts where the first ends
    y1, h1 = float(rects[0].get("y", "0")), heights[0]
    assert float(rects[1].get("y", "0")) + heights[1] == pytest.approx(y1)
    assert y1 + h1 == pytest.approx(float(rects[2].get("y", "0")) + heights[2])
    # totals above the bars, the legend and the labels are text, not marks
    assert {"5", "10", "trial", "operation", "renewal", "at_risk", "healthy"} <= set(texts(root))


def test_stacked_bars_escape_every_data_text() -> None:
    chart = stacked_bars([EVIL], [Series(EVIL, "#000000", [1])], title=EVIL,
                         x_title=EVIL, y_title=EVIL, descriptions=[EVIL])
    assert "<script" not in chart
    root = tree(chart)  # still well-formed XML
    assert root.get("aria-label") == EVIL
    assert EVIL in texts(root)
    assert marks(root)[0].find(NS + "title").text == f"{EVIL} ({EVIL}): {EVIL} 1"  # type: ignore[union-attr]


def test_stacked_bars_rotate_long_labels_and_shorten_very_long_ones() -> None:
    cats = ["b2b_saas / onboarding", "b2b_saas / operation", "b2b_saas / renewal", "x" * 40]
    root = tree(stacked_bars(cats, [Series("n", "#4c78a8", [1, 2, 3, 4])], title="t"))
    labels = [e for e in root.iter(NS + "text") if "rotate(-30)" in (e.get("transform") or "")]
    assert len(labels) == 4
    assert labels[3].text == "x" * 17 + "\u2026"
    assert labels[3].find(NS + "title").text == "x" * 40  # type: ignore[union-attr]


def test_histogram_places_bins_on_the_axis_and_marks_the_cut_points() -> None:
    edges = [0.0, 25.0, 50.0, 75.0, 100.0]
    root = tree(histogram(edges, [Series("red", "#d73027", [4, 2, 0, 0]),
                                  Series("green", "#1a9850", [0, 0, 1, 8])],
                          title="Scores", cuts=[40, 70, 150]))
    rects = marks(root, "rect")
    assert len(rects) == 4
    xs = [float(r.get("x", "0")) for r in rects]
    widths = {round(float(r.get("width", "0")), 2) for r in rects}
    assert xs == sorted(xs) and len(widths) == 1  # equal bins, left to right
    gap = (xs[1] - xs[0])
    assert xs[3] - xs[0] == pytest.approx(3 * gap)
    cuts = [e for e in root.iter(NS + "line") if e.get("class") == "cut"]
    assert len(cuts) == 2  # 150 is outside the axis
    x40, x70 = (float(c.get("x1", "0")) for c in cuts)
    assert (x70 - x40) == pytest.approx(gap * 30 / 25)
    assert {"0", "50", "100"} <= set(texts(root))


def test_histogram_needs_two_edges() -> None:
    with pytest.raises(ValueError, match="two bin edges"):
        histogram([0.0], [], title="x")


def test_line_chart_breaks_at_missing_values_and_marks_each_point() -> None:
    labels = [f"2026-0{m}-01" for m in range(1, 7)]
    root = tree(line_chart(labels, [Series("median", "#4c78a8", [10, 20, None, 40, 50, 60]),
                                    Series("empty", "#000000", [None] * 6)],
                           title="Scores", y_domain=(0, 100), cuts=[40, 70]))
    paths = marks(root, "path")
    assert len(paths) == 1  # the series without a value draws nothing
    d = paths[0].get("d", "")
    assert d.count("M") == 2 and d.count("L") == 3  # two runs: 10-20, then 40-60
    circles = marks(root, "circle")
    assert len(circles) == 5
    assert circles[0].find(NS + "title").text == "median, 2026-01-01: 10"  # type: ignore[union-attr]
    ys = [float(c.get("cy", "0")) for c in circles]
    assert ys == sorted(ys, reverse=True)  # higher values are drawn higher
    assert len([e for e in root.iter(NS + "line") if e.get("class") == "cut"]) == 2
    assert "2026-01-01" in texts(root) and "2026-06-01" in texts(root)


def test_small_line_charts_write_the_first_and_last_date_only() -> None:
    labels = [f"d{i}" for i in range(13)]
    root = tree(line_chart(labels, [Series("s", "#4c78a8", list(range(13)))], title="tiny",
                           width=260, height=130, legend=False, heading=False))
    shown = [t for t in texts(root) if t.startswith("d")]
    assert shown == ["d0", "d12"]
    assert root.get("aria-label") == "tiny" and "tiny" not in texts(root)


def test_sparkline() -> None:
    root = tree(sparkline([50.0, None, 20.0, 80.0], label="score of <b>", cuts=[40]))
    assert root.get("class") == "hr-spark"
    assert root.get("aria-label") == "score of <b>: 50 \u2192 80"
    path, dot = marks(root)
    assert path.get("d", "").count("M") == 2
    assert float(dot.get("cy", "0")) < float(root.get("height", "0")) / 2  # 80 sits high
    empty = tree(sparkline([None, None], label="a"))
    assert marks(empty) == [] and empty.get("aria-label") == "a: no score"
    clipped = tree(sparkline([-50.0, 150.0], label="a"))
    ys = [float(y) for y in re.findall(r"[ML][\d.]+ ([\d.]+)", marks(clipped)[0].get("d", ""))]
    assert all(0 <= y <= float(clipped.get("height", "0")) for y in ys)
