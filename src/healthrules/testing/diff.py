"""Render expected-versus-actual mismatches as an aligned, readable table.

Only what differs is shown, one row per mismatch, in columns (test-file line, what, expected,
actual), followed, indented under the row, by the detail lines that explain it: the evidence
of an action that fired, or why an expected action did not fire::

    FAILED rules/examples/b2b-saas/roadmap.test.yaml:41 case "a quiet account is at risk"
      account acme, as_of 2026-06-30
        line  what                   expected      actual
        45    stage                  operation     onboarding
        47    indicators.logins_30d  60            58
        50    actions (exactly)      low_usage     did not fire
                when: logins_30d < 10  ->  false
                  logins_30d = 58
"""

from __future__ import annotations

from collections.abc import Sequence

from healthrules.testing.asserts import Mismatch

__all__ = ["render_mismatches", "render_table"]

_MAX_CELL = 60


def _cell(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 3] + "..."


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, indent: str = "") -> str:
    """Align rows of text cells in columns (two spaces apart, no trailing spaces).

    Examples
    --------
    >>> print(render_table(["what", "expected", "actual"], [["stage", "a", "bb"]]))
    what   expected  actual
    stage  a         bb
    """
    table = [list(header), *[[_cell(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = []
    for r in table:
        cells = [c.ljust(w) for c, w in zip(r, widths, strict=True)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def render_mismatches(mismatches: Sequence[Mismatch], *, indent: str = "    ",
                      show_lines: bool = True) -> str:
    """Render mismatches as an aligned table, each row followed by its detail lines.

    Parameters
    ----------
    mismatches
        What differs.
    indent
        Put before every line.
    show_lines
        Add a first column with the test-file line of each expectation.

    Returns
    -------
    str
        Several lines, without a trailing newline.
    """
    header = (["line"] if show_lines else []) + ["what", "expected", "actual"]
    rows = [([str(m.line or "")] if show_lines else []) + [m.what, m.expected, m.actual]
            for m in mismatches]
    table = render_table(header, rows, indent=indent).split("\n")
    out = [table[0]]
    detail_indent = indent + ("      " if show_lines else "    ")
    for m, line in zip(mismatches, table[1:], strict=True):
        out.append(line)
        out.extend(detail_indent + d for d in m.details)
        if len(m.expected) > _MAX_CELL or len(m.actual) > _MAX_CELL:
            out.append(detail_indent + f"expected: {m.expected}")
            out.append(detail_indent + f"actual:   {m.actual}")
    return "\n".join(out)
