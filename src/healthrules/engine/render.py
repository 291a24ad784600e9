"""Texts and evidence of actions, as polars expressions built once per roadmap.

``do`` templates become one ``concat_str`` each; the evidence of a condition becomes a list of
structs (name, value, band, op, threshold), one per comparison against a literal and one per
other name the condition reads. Values are rendered the way ``explain`` shows them.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Hashable
from decimal import Decimal
from typing import TypeVar

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
    fixed = _fixed_spec(typ, spec)
    if fixed is not None:
        decimals, shift = fixed
        return _text(x, _units(x, decimals + shift), decimals, "%" if shift else "")
    return _plain(x, typ)


def _fixed_spec(typ: str, spec: str) -> tuple[int, int] | None:
    """(decimals, power-of-ten shift) of a number rendered with fixed decimals, or None."""
    if spec.endswith("%"):
        return int(spec[1:-1]), 2
    if spec.endswith("f"):
        return int(spec[1:-1]), 0
    if spec == "d":
        return 0, 0
    if typ == "float":
        return 2, 0
    return None


def _plain(x: pl.Expr, typ: str) -> pl.Expr:
    # fill_null rather than when/then: a when/then costs several times more to plan and run,
    # which is what a one-account evaluation pays for
    if typ == "datetime":
        out = x.dt.to_string("%Y-%m-%d %H:%M:%S")
    else:  # a Boolean casts to "true" / "false"
        out = x.cast(pl.String)
    return out.fill_null(pl.lit("n/a"))


_EXACT = 2.0**52


def _units(x: pl.Expr, d: int) -> pl.Expr:
    """``x * 10**d`` rounded to a whole number (Int64, signed), rounding the shortest
    decimal form of ``x`` (what repr prints) halves away from zero, as ``round()`` and
    ``explain`` do; null for NaN and beyond 2**52 (where rounding means nothing).

    Float arithmetic only (no Decimal casts: those cost a millisecond per call on a one-row
    frame). With ``y = |x| * 10**d`` and ``m`` the double nearest to the decimal
    ``(floor(y) + 0.5) / 10**d`` (one IEEE division): if ``|x| == m`` the shortest decimal
    form of ``x`` is that half, which rounds up; otherwise the decimal form lies on the same
    side of the half as ``|x|`` of ``m``, because no decimal between them rounds to ``x``.
    So the result is ``floor(y) + 1`` when ``|x| >= m``, else ``floor(y)`` (near a whole
    number, where ``y`` may round up to it, both give that number).

    One expression; :class:`Renderer` computes the same in steps (:func:`_unit_steps`),
    each part once.
    """
    mag, low = _magnitude(x), _floor(_magnitude(x), d)
    return _units_from(x, mag, low, d)


def _magnitude(x: pl.Expr) -> pl.Expr:
    """``|x|`` as a float (the first step of :func:`_units`)."""
    return x.cast(pl.Float64).abs()


def _floor(mag: pl.Expr, d: int) -> pl.Expr:
    """``floor(|x| * 10**d)`` (the second step of :func:`_units`)."""
    return (mag * float(10**d)).floor()


def _units_from(x: pl.Expr, mag: pl.Expr, low: pl.Expr, d: int) -> pl.Expr:
    """:func:`_units` from ``mag = |x|`` and ``low = floor(|x| * 10**d)``."""
    # divided by a column, not a literal: polars divides a column by a scalar with a
    # reciprocal multiply (242.5 / 100 -> 2.4250000000000003 in a frame of several rows)
    middle = (low + 0.5) / (mag * 0.0 + float(10**d))
    units = low + (mag >= middle).cast(pl.Float64)
    # NaN < 2**52 is false, so NaN falls out with the floats too large to round; floor(y)
    # is below 2**52 exactly when y is (2**52 is a whole number). Divided by that test as
    # 1.0 / 0.0 instead of a when/then: a rounded value is kept as it is, a NaN stays NaN
    # and a value too large to round (units >= 2**52, never 0) becomes an infinity, both
    # null when cast to Int64 (fewer nodes to plan and run than the branch)
    kept = (low < _EXACT).cast(pl.Float64)
    return (units * x.cast(pl.Float64).sign() / kept).cast(pl.Int64, strict=False)


def _text(x: pl.Expr, units: pl.Expr, decimals: int, suffix: str) -> pl.Expr:
    """The text of a number from its rounded ``units`` (see :func:`_units`); a NaN or a
    float beyond 2**52 prints as it is, a null as ``n/a``."""
    if decimals:
        # the units times a Decimal literal 10**-decimals: an exact Decimal of that scale,
        # whose text has its sign, its whole part and every decimal (zeros kept). Four
        # operators instead of about ten (sign, whole part, point, zero-filled fraction)
        shown = (units * _decimal_step(decimals)).cast(pl.String)
    else:  # a whole number prints with its own sign ("-3", "0")
        shown = units.cast(pl.String)
    if suffix:
        shown = pl.concat_str([shown, pl.lit(suffix)])
    # null when units is (null x, NaN, too large): then x as it is, or n/a
    return shown.fill_null(x.cast(pl.Float64).cast(pl.String)).fill_null(pl.lit("n/a"))


def _decimal_step(decimals: int) -> pl.Expr:
    """``10**-decimals`` as a Decimal literal of scale ``decimals``: an Int64 column times
    it is that column's value with ``decimals`` decimals, exactly (|units| < 2**52 has at
    most 16 digits, far from the 38 a Decimal holds)."""
    return pl.lit(Decimal(1).scaleb(-decimals), pl.Decimal(38, decimals))


class Renderer:
    """Collects the values a roadmap's texts and evidence show, each rendered once.

    Texts and evidence refer to rendered columns (``__r0``, ``__r1``, ...) by name; the
    rendering expressions (:attr:`columns`) run once over the rows where some action fired,
    so a value that several actions show costs one rendering, not one per action.
    """

    def __init__(self, translate: Callable[[ast.expr], pl.Expr] | None = None,
                 infer: Callable[[ast.expr], Type] | None = None) -> None:
        self._index: dict[tuple[str, str, str], str] = {}
        self._translate = translate
        self._infer = infer
        # the rounding of numbers in three parts, each computed once (a value shown with
        # two precisions shares its magnitude, at one scale its floor and units): |x| and
        # floor(|x| * 10**d) in one step (a floor computes |x| again from x rather than
        # reading the magnitude: one with_columns less per rendering), then the units
        self.magnitudes: list[pl.Expr] = []
        self.floors: list[pl.Expr] = []
        self.units: list[pl.Expr] = []
        self._magnitude_index: dict[str, str] = {}
        self._floor_index: dict[tuple[str, int], str] = {}
        self._units_index: dict[tuple[str, int], str] = {}
        self.columns: list[pl.Expr] = []
        self.reads: set[str] = set()

    def steps(self, columns: list[pl.Expr] | None = None) -> list[list[pl.Expr]]:
        """The steps (``with_columns``, in order) that compute what the rendering
        expressions ``columns`` (default: all of :attr:`columns`) read: the magnitudes and
        floors of the numbers they show (one step), then their units, only those (empty
        steps left out)."""
        if columns is None:
            chosen = [self.magnitudes + self.floors, self.units]
            return [step for step in chosen if step]
        needs = {n for e in columns for n in e.meta.root_names()}
        units = [e for e in self.units if e.meta.output_name() in needs]
        needs |= {n for e in units for n in e.meta.root_names()}
        floors = [e for e in self.floors if e.meta.output_name() in needs]
        needs |= {n for e in floors for n in e.meta.root_names()}
        magnitudes = [e for e in self.magnitudes if e.meta.output_name() in needs]
        return [step for step in (magnitudes + floors, units) if step]

    def rendered(self, column: str, typ: str, spec: str = "") -> pl.Expr:
        """The rendered text of a column (its name in the frame), as a column reference."""
        got = self._index.get((column, typ, spec))
        if got is None:
            got = f"__r{len(self._index)}"
            self._index[(column, typ, spec)] = got
            self.columns.append(self._render(pl.col(column), typ, spec).alias(got))
            self.reads.add(column)
        return pl.col(got)

    def _render(self, x: pl.Expr, typ: str, spec: str = "") -> pl.Expr:
        """Like :func:`render_value`, with the rounding of a number computed first, as a
        column of :attr:`units` (the expression stays small: each part is built once)."""
        fixed = _fixed_spec(typ, spec)
        if fixed is None:
            return _plain(x, typ)
        decimals, shift = fixed
        d = decimals + shift
        key = str(x)
        mag = _once(self._magnitude_index, key, self.magnitudes, "__rm",
                    lambda: _magnitude(x))
        # the floor from x itself (|x| once more, about 2 us): it joins the magnitudes'
        # step, one with_columns less per action branch
        low = _once(self._floor_index, (key, d), self.floors, "__rf",
                    lambda: _floor(_magnitude(x), d))
        # the units of a value at one scale are shared too (``{x:.0%}`` in a text and
        # ``x`` with two decimals in evidence are both x * 100, rounded)
        name = _once(self._units_index, (key, d), self.units, "__u",
                     lambda: _units_from(x, pl.col(mag), pl.col(low), d))
        return _text(x, pl.col(name), decimals, "%" if shift else "")

    def template(self, pieces: list[TemplateField | str], env: dict[str, Type],
                 values: dict[str, tuple[pl.Expr, str]] | None = None) -> pl.Expr:
        """The rendered text of a ``do`` template, one string per row.

        ``values`` gives placeholders that are not columns (the action's ``{due_date}``):
        name -> (expression, type), computed and rendered on the fired rows.
        """
        parts: list[pl.Expr] = []
        for piece in pieces:
            if isinstance(piece, str):
                parts.append(pl.lit(piece))
            elif piece.parsed is None and values is not None and piece.name in values:
                expr, typ = values[piece.name]
                parts.append(self.computed(expr, typ))
            elif piece.parsed is not None:  # a value computed from the action's scope
                if self._translate is None or piece.type is None:
                    raise RuntimeError("Renderer needs a translator and a typed placeholder "
                                       "to render an expression")
                parts.append(self.computed(self._translate(piece.parsed.tree), piece.type,
                                           piece.spec))
            else:
                parts.append(self.rendered(_column_name(piece.name), env[piece.name],
                                           piece.spec))
        if not parts:
            return pl.lit("")
        return pl.concat_str(parts)

    def evidence(self, parsed: Parsed, env: dict[str, Type],
                 banded: frozenset[str]) -> tuple[pl.Expr, pl.Expr | None]:
        """The evidence of a fired condition: what made it true, one struct per entry.

        Returns the expression for a few rows and, when the condition has ``or`` branches,
        the same list for many rows (else None): the branches that did not hold are
        dropped by ``list.drop_nulls()``, cheaper to plan and run on a few rows, or by
        ``list.filter(element().is_not_null())``, about a tenth of its cost per row on a
        list of structs (about 0.4 us against 4) but about 40 us more to plan and run.

        Walking the condition: every part of an ``and`` (they all held); of an ``or``, the
        branches that held on the row (a branch that was false or unknown is no reason);
        a comparison with a literal gives one entry (the compared value, rendered, with the
        operator and the literal; for ``band(x)`` the band and x's value, for
        ``score_band`` the band and the score); anything else gives one entry per name it
        reads. ``not`` lists the names it reads, without operator.
        """
        if self._translate is None:
            raise RuntimeError("Renderer needs a translator to build evidence")
        entries: list[tuple[pl.Expr | None, pl.Expr]] = []
        self._walk(parsed, parsed.tree, None, env, banded, entries)
        if not entries:
            return pl.lit([], dtype=EVIDENCE_DTYPE), None
        structs = [s if g is None else pl.when(g).then(s) for g, s in entries]
        # one entry: a list of one struct (about a third of the array's cost per row, and
        # less to plan); several: an array made a list (concat_list of several struct
        # columns costs about fifteen times more)
        out = (pl.concat_list(structs) if len(structs) == 1
               else pl.concat_arr(structs).arr.to_list())
        # every field is a String already (see _struct): the list is an EVIDENCE_DTYPE
        # without a cast (a cast of a list of structs is one more node per call)
        if any(g is not None for g, _ in entries):
            return out.list.drop_nulls(), out.list.filter(pl.element().is_not_null())
        return out, None

    def _walk(self, parsed: Parsed, node: ast.expr, guard: pl.Expr | None,
              env: dict[str, Type], banded: frozenset[str],
              entries: list[tuple[pl.Expr | None, pl.Expr]]) -> None:
        assert self._translate is not None
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            for part in node.values:
                self._walk(parsed, part, guard, env, banded, entries)
            return
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            for part in node.values:
                held = self._guard(self._translate(part))
                self._walk(parsed, part, held if guard is None else guard & held, env,
                           banded, entries)
            return
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            op_text = _OP_TEXT.get(type(node.ops[0]))
            left, right = node.left, node.comparators[0]
            if op_text is not None and _is_literal(right) and not _is_literal(left):
                entries.append((guard, self._comparison(parsed, left, op_text,
                                                        parsed.segment(right), env, banded)))
                return
            if (op_text in _FLIP and _is_literal(left) and not _is_literal(right)):
                entries.append((guard, self._comparison(parsed, right, _FLIP[op_text],
                                                        parsed.segment(left), env, banded)))
                return
        for name in sorted(names_in(node)):
            entries.append((guard, self._entry(name, name, env.get(name, "str"), banded)))

    def _guard(self, cond: pl.Expr) -> pl.Expr:
        """A boolean column, computed once on the fired rows: did this branch hold?"""
        return self.computed(cond.cast(pl.Boolean).fill_null(False), "bool_raw")

    def _comparison(self, parsed: Parsed, subject: ast.expr, op_text: str, threshold: str,
                    env: dict[str, Type], banded: frozenset[str]) -> pl.Expr:
        assert self._translate is not None and self._infer is not None
        if isinstance(subject, ast.Name):
            return self._entry(subject.id, subject.id, env.get(subject.id, "str"), banded,
                               op_text, threshold)
        if (isinstance(subject, ast.Call) and isinstance(subject.func, ast.Name)
                and subject.func.id == "band" and subject.args
                and isinstance(subject.args[0], ast.Name)):
            name = subject.args[0].id
            band_col = f"{name}__band" if name in banded else None
            shown = (self.rendered(band_col, "str") if band_col is not None
                     else pl.lit("n/a"))
            value = pl.concat_str([shown, pl.lit(" ("),
                                   self.rendered(_column_name(name), env.get(name, "str")),
                                   pl.lit(")")])
            if band_col is not None:
                self.reads.add(band_col)
            return _struct(f"band({name})", value, band_col, op_text, threshold)
        # a computed value (days_since(signed_on) >= 14): show what was compared
        typ = self._infer(subject)
        value = self.computed(self._translate(subject), typ)
        return _struct(parsed.segment(subject), value, None, op_text, threshold)

    def _entry(self, label: str, name: str, typ: str, banded: frozenset[str],
               op_text: str | None = None, threshold: str | None = None) -> pl.Expr:
        if name == "score_band":  # the band of the score: show the score with it
            value = pl.concat_str([self.rendered("__score_band", "str"), pl.lit(" ("),
                                   self.rendered("__score", "float"), pl.lit(")")])
            return _struct(label, value, "__score_band", op_text, threshold)
        band_col = ("__score_band" if name == "score"
                    else f"{name}__band" if name in banded else None)
        if band_col is not None:
            self.reads.add(band_col)
        value = self.rendered(_column_name(name), typ)
        return _struct(label, value, band_col, op_text, threshold)

    def computed(self, expr: pl.Expr, typ: str, spec: str = "") -> pl.Expr:
        """A value computed on the fired rows (rendered with ``spec`` unless ``typ`` is
        ``bool_raw``)."""
        key = (str(expr), typ, "computed" + spec)
        got = self._index.get(key)
        if got is None:
            got = f"__r{len(self._index)}"
            self._index[key] = got
            self.columns.append((expr if typ == "bool_raw" else self._render(expr, typ, spec)
                                 ).alias(got))
            self.reads |= set(expr.meta.root_names())
        return pl.col(got)


_K = TypeVar("_K", bound=Hashable)


def _once(index: dict[_K, str], key: _K, step: list[pl.Expr], prefix: str,
          build: Callable[[], pl.Expr]) -> str:
    """The column of a rendering step computed once per ``key``: its name from ``index``,
    or ``build()`` appended to ``step`` under a new name (``prefix`` and a number)."""
    name = index.get(key)
    if name is None:
        name = index[key] = f"{prefix}{len(step)}"
        step.append(build().alias(name))
    return name


def _struct(name: str, value: pl.Expr, band_col: str | None, op_text: str | None,
            threshold: str | None) -> pl.Expr:
    """One evidence entry (the band column must be among the renderer's ``reads``)."""
    band = pl.col(band_col).cast(pl.String) if band_col is not None else pl.lit(None, pl.String)
    return pl.struct(
        pl.lit(name, pl.String).alias("name"),
        value.alias("value"),
        band.alias("band"),
        pl.lit(op_text, pl.String).alias("op"),
        pl.lit(threshold, pl.String).alias("threshold"),
    )


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
