"""Texts and evidence of actions, as polars expressions built once per roadmap.

``do`` templates become one ``concat_str`` each; the evidence of a condition becomes a list of
structs (name, value, band, op, threshold), one per comparison against a literal and one per
other name the condition reads. Values are rendered the way ``explain`` shows them.
"""

from __future__ import annotations

import ast

import polars as pl

from healthrules.analysis import TemplateField
from healthrules.engine.frames import AS_OF, EVIDENCE_DTYPE, SPECIAL_COLUMNS
from healthrules.expressions import Parsed, Type, names_in

__all__ = ["Renderer", "render_value"]

_OP_TEXT = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
            ast.GtE: ">=", ast.In: "in", ast.NotIn: "not in"}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def render_value(x: pl.Expr, typ: str, spec: str = "") -> pl.Expr:
    """Render a value as text the way ``do`` templates and evidence show it."""
    if spec.endswith("%"):
        digits = int(spec[1:-1])
        out = pl.concat_str([_fixed(x, digits, shift=2), pl.lit("%")])
    elif spec.endswith("f"):
        out = _fixed(x, int(spec[1:-1]))
    elif spec == "d":
        out = _fixed(x, 0)
    elif typ == "float":
        out = _fixed(x, 2)
    elif typ == "bool":
        out = pl.when(x).then(pl.lit("true")).otherwise(pl.lit("false"))
    elif typ == "datetime":
        out = x.dt.to_string("%Y-%m-%d %H:%M:%S")
    else:
        out = x.cast(pl.String)
    return pl.when(x.is_null()).then(pl.lit("n/a")).otherwise(out)


_EXACT = 2.0**52


def _fixed(x: pl.Expr, decimals: int, shift: int = 0) -> pl.Expr:
    """``x * 10**shift`` with ``decimals`` decimals, rounding the shortest decimal form of
    ``x`` (what repr prints) halves away from zero, as ``round()`` and ``explain`` do.

    Float arithmetic only (no Decimal casts: those cost a millisecond per call on a one-row
    frame). With ``y = |x| * 10**d`` and ``m`` the double nearest to the decimal
    ``(floor(y) + 0.5) / 10**d`` (one IEEE division): if ``|x| == m`` the shortest decimal
    form of ``x`` is that half, which rounds up; otherwise the decimal form lies on the same
    side of the half as ``|x|`` of ``m``, because no decimal between them rounds to ``x``.
    So the result is ``floor(y) + 1`` when ``|x| >= m``, else ``floor(y)`` (near a whole
    number, where ``y`` may round up to it, both give that number).
    """
    d = decimals + shift
    f = x.cast(pl.Float64)
    mag = f.abs()
    y = mag * float(10**d)
    low = y.floor()
    # divided by a column, not a literal: polars divides a column by a scalar with a
    # reciprocal multiply (242.5 / 100 -> 2.4250000000000003 in a frame of several rows)
    power = mag * 0.0 + float(10**d)
    middle = (low + 0.5) / power
    units = pl.when(mag >= middle).then(low + 1.0).otherwise(low)
    scaled = units.cast(pl.Int64, strict=False)
    sign: pl.Expr = pl.when((f < 0) & (scaled > 0)).then(pl.lit("-")).otherwise(pl.lit(""))
    scale = 10**decimals
    whole = (scaled // scale).cast(pl.String)
    if decimals == 0:
        text = pl.concat_str([sign, whole])
    else:
        frac = (scaled % scale).cast(pl.String).str.zfill(decimals)
        text = pl.concat_str([sign, whole, pl.lit("."), frac])
    # beyond 2**52 a float is a whole number and rounding means nothing: print it as it is
    return pl.when(f.is_nan() | (y >= _EXACT)).then(f.cast(pl.String)).otherwise(text)


class Renderer:
    """Collects the values a roadmap's texts and evidence show, each rendered once.

    Texts and evidence refer to rendered columns (``__r0``, ``__r1``, ...) by name; the
    rendering expressions (:attr:`columns`) run once over the rows where some action fired,
    so a value that several actions show costs one rendering, not one per action.
    """

    def __init__(self) -> None:
        self._index: dict[tuple[str, str, str], str] = {}
        self.columns: list[pl.Expr] = []
        self.reads: set[str] = set()

    def rendered(self, column: str, typ: str, spec: str = "") -> pl.Expr:
        """The rendered text of a column (its name in the frame), as a column reference."""
        got = self._index.get((column, typ, spec))
        if got is None:
            got = f"__r{len(self._index)}"
            self._index[(column, typ, spec)] = got
            self.columns.append(render_value(pl.col(column), typ, spec).alias(got))
            self.reads.add(column)
        return pl.col(got)

    def template(self, pieces: list[TemplateField | str], env: dict[str, Type]) -> pl.Expr:
        """The rendered text of a ``do`` template, one string per row."""
        parts: list[pl.Expr] = []
        for piece in pieces:
            if isinstance(piece, str):
                parts.append(pl.lit(piece))
            else:
                parts.append(self.rendered(_column_name(piece.name), env[piece.name],
                                           piece.spec))
        if not parts:
            return pl.lit("")
        return pl.concat_str(parts)

    def evidence(self, parsed: Parsed, env: dict[str, Type], banded: frozenset[str]) -> pl.Expr:
        """One struct per comparison against a literal, then one per other name read."""
        entries: list[tuple[str, bool, str | None, str | None]] = []
        covered: set[str] = set()
        for node in ast.walk(parsed.tree):
            if not isinstance(node, ast.Compare) or len(node.ops) != 1:
                continue
            left, right, op = node.left, node.comparators[0], node.ops[0]
            op_text = _OP_TEXT.get(type(op))
            if op_text is None:
                continue
            lsub, rsub = _subject(left), _subject(right)
            if lsub and _is_literal(right):
                entries.append((*lsub, op_text, parsed.segment(right)))
                covered.add(lsub[0])
            elif rsub and _is_literal(left) and op_text in _FLIP:
                entries.append((*rsub, _FLIP[op_text], parsed.segment(left)))
                covered.add(rsub[0])
        for name in sorted(names_in(parsed.tree) - covered):
            entries.append((name, False, None, None))
        structs: list[pl.Expr] = []
        for name, is_band, op_text, threshold in entries:
            band_col = ("__score_band" if name == "score"
                        else f"{name}__band" if name in banded else None)
            band = pl.col(band_col) if band_col is not None else pl.lit(None, pl.String)
            if band_col is not None:
                self.reads.add(band_col)
            value = self.rendered(_column_name(name), env.get(name, "str"))
            if is_band:  # band(x) == 'red': the compared value is the band; x's value stays
                shown = (self.rendered(band_col, "str") if band_col is not None
                         else pl.lit("n/a"))
                value = pl.concat_str([shown, pl.lit(" ("), value, pl.lit(")")])
            structs.append(pl.struct(
                pl.lit(f"band({name})" if is_band else name).alias("name"),
                value.alias("value"),
                band.cast(pl.String).alias("band"),
                pl.lit(op_text, pl.String).alias("op"),
                pl.lit(threshold, pl.String).alias("threshold"),
            ))
        if not structs:
            return pl.lit([], dtype=EVIDENCE_DTYPE)
        return pl.concat_arr(structs).arr.to_list().cast(EVIDENCE_DTYPE)


def _column_name(name: str) -> str:
    return AS_OF if name == "as_of" else SPECIAL_COLUMNS.get(name, name)


def _subject(node: ast.expr) -> tuple[str, bool] | None:
    """The name a comparison is about, and whether it compares the name's band."""
    if isinstance(node, ast.Name):
        return node.id, False
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "band" and node.args and isinstance(node.args[0], ast.Name)):
        return node.args[0].id, True
    return None


def _is_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
        return True
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(isinstance(e, ast.Constant) for e in node.elts)
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
        node.func.id == "date")
