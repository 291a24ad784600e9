"""Texts and evidence of actions, as polars expressions built once per roadmap.

``do`` templates become one ``concat_str`` each; the evidence of a condition becomes a list of
structs (name, value, band, op, threshold), one per comparison against a literal and one per
other name the condition reads. Values are rendered the way ``explain`` shows them.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Hashable
from typing import TypeVar

import polars as pl

from healthrules.analysis import TemplateField
from healthrules.engine.frames import AS_OF, EVIDENCE_DTYPE, SPECIAL_COLUMNS, typed_lit
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
        return _text(x, _exact(x, decimals + shift), decimals, shift)
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

# digits kept after the ones that are shown: the shortest form of a double has at most 17
# significant digits, so a value whose first significant digit is where rounding looks
# (one place after the last digit shown) is read exactly; a value whose first significant
# digit comes later is below a tenth of the last place shown, and stays below its half
_GUARD_DIGITS = 17


def _exact(x: pl.Expr, d: int) -> pl.Expr:
    """The shortest decimal form of ``x`` (what ``repr`` prints; polars writes a float with
    the same digits) as a Decimal exact to ``d`` places and 17 more: the number that
    rounding to ``d`` places (``d`` = the decimals shown, plus 2 for a percentage) reads.

    Null for a number too large to round (``|x| * 10**d`` of 2**52 or more, a double
    product: ``x`` is divided by that test as 1.0 or 0.0, an infinity or NaN has no
    decimal form, and a NaN compares false), for NaN, infinities and null; those print
    as they are (:func:`_text`). Below 2**52 the integer part has at most ``16 - d``
    digits, so ``d + 17`` decimals fit in 38.
    """
    value = x.cast(pl.Float64)
    kept = (value.abs() * float(10**d) < _EXACT).cast(pl.Float64)
    return (value / kept).cast(pl.String).cast(pl.Decimal(38, d + _GUARD_DIGITS),
                                                strict=False)


def _text(x: pl.Expr, exact: pl.Expr, decimals: int, shift: int) -> pl.Expr:
    """The text of a number with ``decimals`` decimals (times ``10**shift``, with ``%``,
    for a percentage) from its exact decimal form (:func:`_exact`): rounded halves away
    from zero, the sign, the whole part and every decimal (zeros kept) as a Decimal of
    that scale prints them, ``0.00`` for a value rounded to zero. Where the exact form is
    null, ``x`` prints as it is (a NaN, an infinity, a number too large to round), a
    null as ``n/a``.

    Float arithmetic found the rounding before (about 20 operators per value, and rounded
    a shortest form below the half up where several decimals of one more place are the
    same double, from about 2**49); Decimal arithmetic on the shortest form is exact, in
    about a dozen operators counting the fallbacks, no when/then.
    """
    scaled = exact * (10**shift) if shift else exact
    shown = scaled.round(decimals, mode="half_away_from_zero").cast(
        pl.Decimal(38, decimals)).cast(pl.String)
    if shift:
        shown = pl.concat_str([shown, pl.lit("%")])
    return shown.fill_null(x.cast(pl.Float64).cast(pl.String)).fill_null(pl.lit("n/a"))


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
        # the exact decimal form of each number shown (its text read as a Decimal), once per
        # value and scale: a value shown with two precisions at one scale (``{x:.0%}`` and
        # x with two decimals, both read to 2 + 17 places) reads it once
        self.exacts: list[pl.Expr] = []
        self._exact_index: dict[tuple[str, int], str] = {}
        self.columns: list[pl.Expr] = []
        self.reads: set[str] = set()

    def steps(self, columns: list[pl.Expr] | None = None) -> list[list[pl.Expr]]:
        """The steps (``with_columns``, in order) that compute what the rendering
        expressions ``columns`` (default: all of :attr:`columns`) read: the exact decimal
        forms of the numbers they show, only those (one step; none when no number is
        shown)."""
        if columns is None:
            return [self.exacts] if self.exacts else []
        needs = {n for e in columns for n in e.meta.root_names()}
        exacts = [e for e in self.exacts if e.meta.output_name() in needs]
        return [exacts] if exacts else []

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
        """Like :func:`render_value`, with the exact decimal form of a number computed
        first, as a column of :attr:`exacts` (shared by the texts of one value at one
        scale)."""
        fixed = _fixed_spec(typ, spec)
        if fixed is None:
            return _plain(x, typ)
        decimals, shift = fixed
        d = decimals + shift
        name = _once(self._exact_index, (str(x), d), self.exacts, "__rx",
                     lambda: _exact(x, d))
        return _text(x, pl.col(name), decimals, shift)

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
        reads. ``not`` lists the names it reads, without operator. A conditional
        (``a if t else b``) lists the names ``t`` reads, then the branch taken. A chained comparison
        (``1 < x < 5``) is the ``and`` of its pairs (``1 < x``, ``x < 5``), as it is
        evaluated. An entry met twice (``(a > 1 or b > 2) and (a > 1 or c > 3)``: the same
        name, operator and literal) is listed once, where it is first met, on the rows where
        any of its occurrences held.
        """
        if self._translate is None:
            raise RuntimeError("Renderer needs a translator to build evidence")
        entries: list[tuple[_Key, pl.Expr | None, pl.Expr]] = []
        self._walk(parsed, parsed.tree, None, env, banded, entries)
        if not entries:
            return typed_lit([], EVIDENCE_DTYPE), None
        kept = _once_each(entries)
        structs = [s if g is None else pl.when(g).then(s) for g, s in kept]
        # one entry: a list of one struct (about a third of the array's cost per row, and
        # less to plan); several: an array made a list (concat_list of several struct
        # columns costs about fifteen times more)
        out = (pl.concat_list(structs) if len(structs) == 1
               else pl.concat_arr(structs).arr.to_list())
        # every field is a String already (see _struct): the list is an EVIDENCE_DTYPE
        # without a cast (a cast of a list of structs is one more node per call)
        if any(g is not None for g, _ in kept):
            return out.list.drop_nulls(), out.list.filter(pl.element().is_not_null())
        return out, None

    def _walk(self, parsed: Parsed, node: ast.expr, guard: pl.Expr | None,
              env: dict[str, Type], banded: frozenset[str],
              entries: list[tuple[_Key, pl.Expr | None, pl.Expr]]) -> None:
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
        if isinstance(node, ast.IfExp):
            # the test chose the branch (its names, whichever way it went), then only the
            # branch taken: the other was not evaluated into the result
            self._names(node.test, guard, env, banded, entries)
            test = self._translate(node.test).cast(pl.Boolean)
            for branch, took in ((node.body, test), (node.orelse, test.not_())):
                held = self._guard(took)
                self._walk(parsed, branch, held if guard is None else guard & held, env,
                           banded, entries)
            return
        if isinstance(node, ast.Compare) and len(node.ops) > 1:  # the `and` of its pairs
            for pair in chain_pairs(node):
                self._walk(parsed, pair, guard, env, banded, entries)
            return
        if isinstance(node, ast.Compare):
            op_text = _OP_TEXT.get(type(node.ops[0]))
            left, right = node.left, node.comparators[0]
            if op_text is not None and _is_literal(right) and not _is_literal(left):
                threshold = parsed.segment(right)
                entries.append(((_label(parsed, left), op_text, threshold), guard,
                                self._comparison(parsed, left, op_text, threshold, env,
                                                 banded)))
                return
            if (op_text in _FLIP and _is_literal(left) and not _is_literal(right)):
                threshold = parsed.segment(left)
                entries.append(((_label(parsed, right), _FLIP[op_text], threshold), guard,
                                self._comparison(parsed, right, _FLIP[op_text], threshold,
                                                 env, banded)))
                return
        self._names(node, guard, env, banded, entries)

    def _names(self, node: ast.expr, guard: pl.Expr | None, env: dict[str, Type],
               banded: frozenset[str],
               entries: list[tuple[_Key, pl.Expr | None, pl.Expr]]) -> None:
        """One entry per name ``node`` reads, with its value and no operator."""
        for name in sorted(names_in(node)):
            entries.append(((name, None, None), guard,
                            self._entry(name, name, env.get(name, "str"), banded)))

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
_Key = tuple[str, str | None, str | None]
"""What an evidence entry shows of its condition: its name, operator and literal."""


def chain_pairs(node: ast.Compare) -> list[ast.Compare]:
    """The pairs of a comparison (``1 < x < 5``: ``1 < x`` and ``x < 5``), whose ``and`` it
    is; their operands are the chain's own nodes (their source text is the chain's)."""
    operands = [node.left, *node.comparators]
    return [ast.copy_location(ast.Compare(left=operands[i], ops=[op],
                                          comparators=[operands[i + 1]]), operands[i])
            for i, op in enumerate(node.ops)]


def _label(parsed: Parsed, subject: ast.expr) -> str:
    """The name of a comparison's entry (as :meth:`Renderer._comparison` gives it)."""
    if isinstance(subject, ast.Name):
        return subject.id
    if (isinstance(subject, ast.Call) and isinstance(subject.func, ast.Name)
            and subject.func.id == "band" and subject.args
            and isinstance(subject.args[0], ast.Name)):
        return f"band({subject.args[0].id})"
    return parsed.segment(subject)


def _once_each(entries: list[tuple[_Key, pl.Expr | None, pl.Expr]],
               ) -> list[tuple[pl.Expr | None, pl.Expr]]:
    """Each entry once, where it is first met, guarded by any of its occurrences' guards
    (None: unguarded, it is listed on every fired row)."""
    out: dict[_Key, tuple[pl.Expr | None, pl.Expr]] = {}
    for key, guard, struct in entries:
        got = out.get(key)
        if got is None:
            out[key] = (guard, struct)
        elif got[0] is not None:
            out[key] = (None if guard is None else got[0] | guard, got[1])
    return list(out.values())


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
    band = pl.col(band_col).cast(pl.String) if band_col is not None else typed_lit(None, pl.String)
    return pl.struct(
        typed_lit(name, pl.String).alias("name"),
        value.alias("value"),
        band.alias("band"),
        typed_lit(op_text, pl.String).alias("op"),
        typed_lit(threshold, pl.String).alias("threshold"),
    )


def _column_name(name: str) -> str:
    return AS_OF if name == "as_of" else SPECIAL_COLUMNS.get(name, name)


def _is_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
        return True
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(isinstance(e, ast.Constant) for e in node.elts)
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
        node.func.id == "date")
