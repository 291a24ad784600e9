"""Interval reasoning over conditions: which values can make an expression true, false or unknown.

The lint checks ask questions such as "can this action's condition ever be true?" or "does
every account that enters stage 3 already enter stage 2?". This module answers them with a
small abstract interpretation over the ``ast`` tree that :func:`healthrules.expressions.parse`
returns.

Values
    Every *term* (a name such as ``logins_30d``, or a numeric sub-expression such as
    ``days_since(contract_start)``) has a :class:`Dom`: the non-null values it may take (a
    :class:`NumSet`, a union of intervals that knows whether the term is a whole number, or a
    :class:`Labels` set of strings / booleans) and whether it may be null. The *base* domain of
    a term comes from what the roadmap says about it (:class:`Facts`): counts are whole numbers
    ``>= 0``, the health score is in ``[0, 100]``, ``stage`` is one of the stage ids, and so on.

Regions
    A :class:`Region` is a union of boxes; a box constrains some terms to a domain each (the
    others are unconstrained). Regions over-approximate sets of accounts: when a region is
    empty, no account is in the set, for certain. When the union grows past
    :data:`MAX_BOXES`, it is widened (never narrowed), so the answers stay sound.

Conditions
    :func:`analyse` computes four regions of a condition, following the three-valued (Kleene)
    logic of the evaluator: where it is *true*, *false*, *not true* (false or null) and *not
    false* (true or null). ``and``, ``or`` and ``not`` combine them exactly; comparisons of a
    term with a literal, ``in`` lists, ``is None``, ``band(x) == 'level'`` (the level's
    interval of ``x``) and boolean names are understood; anything else is "could be anything".
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import assert_never

from healthrules.expressions import INT_MAX, INT_MIN, ExprProblem, Type, infer
from healthrules.functions import FUNCTION_TABLE
from healthrules.roadmap import Band, Bands, number_text

__all__ = [
    "MAX_BOXES",
    "Atom",
    "ConditionRegions",
    "Dom",
    "Facts",
    "Interval",
    "Labels",
    "NameFact",
    "NumSet",
    "Region",
    "analyse",
    "band_interval",
    "literal",
    "range_of",
]

INF = math.inf
MAX_BOXES = 64
"""The most boxes a region keeps before it is widened to their hull."""

Label = str | bool


# --------------------------------------------------------------------------- numbers


@dataclass(frozen=True, slots=True)
class Interval:
    """An interval of the extended real line: ``lo`` may be ``-inf`` and ``hi`` ``inf``.

    A float value may be ``inf`` or ``-inf`` (an attribute that holds one, an overflow such as
    ``1e308 * 10``): an infinite end that is *closed* holds that value, an open one only the
    finite numbers up to it. Whole numbers are never infinite (:func:`_tighten` opens them).
    """

    lo: float
    hi: float
    lo_closed: bool = True
    hi_closed: bool = True

    @property
    def empty(self) -> bool:
        """True when no number lies in the interval."""
        if self.lo > self.hi:
            return True
        if self.lo == self.hi:
            return not (self.lo_closed and self.hi_closed)
        return False

    def describe(self, name: str = "x") -> str:
        """Render as ``0 <= x < 5``, ``x >= 0``, ``x == 3`` or ``any value``."""
        if self.lo == self.hi:
            return f"{name} == {number_text(self.lo)}"
        lo_op, hi_op = ("<=" if self.lo_closed else "<"), ("<=" if self.hi_closed else "<")
        left = "" if math.isinf(self.lo) else f"{number_text(self.lo)} {lo_op} "
        right = "" if math.isinf(self.hi) else f" {hi_op} {number_text(self.hi)}"
        if not left and not right:
            return "any value"
        if not left:
            return f"{name}{right}"
        if not right:
            flipped = ">=" if self.lo_closed else ">"
            return f"{name} {flipped} {number_text(self.lo)}"
        return f"{left}{name}{right}"


def _tighten(iv: Interval) -> Interval:
    """The smallest closed interval with whole-number ends holding the same whole numbers."""
    lo, hi = iv.lo, iv.hi
    if not math.isinf(lo):
        lo = float(math.ceil(lo)) if iv.lo_closed else float(math.floor(lo) + 1)
    if not math.isinf(hi):
        hi = float(math.floor(hi)) if iv.hi_closed else float(math.ceil(hi) - 1)
    return Interval(lo, hi, not math.isinf(lo), not math.isinf(hi))  # no int is infinite


def _touch(a: Interval, b: Interval, integer: bool) -> bool:
    """Whether ``b`` (starting at or after ``a``'s start) overlaps or adjoins ``a``."""
    if integer:
        return b.lo <= a.hi + 1
    if b.lo < a.hi:
        return True
    return b.lo == a.hi and (a.hi_closed or b.lo_closed)


@dataclass(frozen=True, slots=True)
class NumSet:
    """A union of disjoint intervals, sorted; ``integer`` restricts it to whole numbers."""

    parts: tuple[Interval, ...]
    integer: bool = False

    @staticmethod
    def of(intervals: Iterable[Interval], integer: bool = False) -> NumSet:
        """Normalise intervals into a set: tighten to whole numbers, drop empties, merge."""
        items = [_tighten(iv) if integer else iv for iv in intervals]
        items = sorted((iv for iv in items if not iv.empty),
                       key=lambda iv: (iv.lo, not iv.lo_closed))
        out: list[Interval] = []
        for iv in items:
            if out and _touch(out[-1], iv, integer):
                last = out[-1]
                if iv.hi > last.hi or (iv.hi == last.hi and iv.hi_closed):
                    out[-1] = Interval(last.lo, iv.hi, last.lo_closed, iv.hi_closed)
            else:
                out.append(iv)
        return NumSet(tuple(out), integer)

    @staticmethod
    def everything(integer: bool = False) -> NumSet:
        """Every number, ``-inf`` and ``inf`` included (or every whole number)."""
        return NumSet.of([Interval(-INF, INF)], integer)

    @staticmethod
    def between(lo: float, hi: float, integer: bool = False) -> NumSet:
        """The closed interval ``[lo, hi]`` (ends may be infinite)."""
        return NumSet.of([Interval(lo, hi)], integer)

    @property
    def empty(self) -> bool:
        """True when the set holds no number."""
        return not self.parts

    @property
    def lo(self) -> float:
        """The infimum (``inf`` when empty)."""
        return self.parts[0].lo if self.parts else INF

    @property
    def hi(self) -> float:
        """The supremum (``-inf`` when empty)."""
        return self.parts[-1].hi if self.parts else -INF

    def hull(self) -> Interval:
        """The smallest interval holding the set."""
        if not self.parts:
            return Interval(1.0, 0.0)
        a, b = self.parts[0], self.parts[-1]
        return Interval(a.lo, b.hi, a.lo_closed, b.hi_closed)

    def meet(self, other: NumSet) -> NumSet:
        """Intersection."""
        out: list[Interval] = []
        for a in self.parts:
            for b in other.parts:
                lo, lo_c = max((a.lo, a.lo_closed), (b.lo, b.lo_closed),
                               key=lambda e: (e[0], not e[1]))
                hi, hi_c = min((a.hi, a.hi_closed), (b.hi, b.hi_closed),
                               key=lambda e: (e[0], e[1]))
                out.append(Interval(lo, hi, lo_c, hi_c))
        return NumSet.of(out, self.integer or other.integer)

    def join(self, other: NumSet) -> NumSet:
        """Union."""
        return NumSet.of([*self.parts, *other.parts], self.integer and other.integer)

    def complement(self) -> NumSet:
        """Every number (``-inf`` and ``inf`` included; whole number, when ``integer``) not in
        the set."""
        out: list[Interval] = []
        prev_hi, prev_closed = -INF, False
        for iv in self.parts:
            out.append(Interval(prev_hi, iv.lo, not prev_closed, not iv.lo_closed))
            prev_hi, prev_closed = iv.hi, iv.hi_closed
        out.append(Interval(prev_hi, INF, not prev_closed, True))
        return NumSet.of(out, self.integer)

    @property
    def may_be_infinite(self) -> tuple[bool, bool]:
        """Whether the set holds ``-inf`` and whether it holds ``inf``."""
        if not self.parts:
            return False, False
        a, b = self.parts[0], self.parts[-1]
        return a.lo == -INF and a.lo_closed, b.hi == INF and b.hi_closed

    def contains(self, value: float) -> bool:
        """Whether ``value`` is in the set."""
        if self.integer and not float(value).is_integer():
            return False
        return not NumSet.of([Interval(value, value)]).meet(self).empty

    def subset_of(self, other: NumSet) -> bool:
        """Whether every number of this set is in ``other``."""
        return self.meet(other.complement()).empty

    def describe(self, name: str = "x") -> str:
        """Render as ``x >= 0``, ``x < 0 or x > 10``, ``no value`` ..."""
        if not self.parts:
            return "no value"
        return " or ".join(iv.describe(name) for iv in self.parts)


# --------------------------------------------------------------------------- labels


@dataclass(frozen=True, slots=True)
class Labels:
    """A set of strings or booleans: ``values``, or everything but ``values`` (``cofinite``)."""

    values: frozenset[Label]
    cofinite: bool = False

    @property
    def empty(self) -> bool:
        """True when the set holds no value."""
        return not self.cofinite and not self.values

    def meet(self, other: Labels) -> Labels:
        """Intersection."""
        if self.cofinite and other.cofinite:
            return Labels(self.values | other.values, True)
        if self.cofinite:
            return Labels(other.values - self.values)
        if other.cofinite:
            return Labels(self.values - other.values)
        return Labels(self.values & other.values)

    def join(self, other: Labels) -> Labels:
        """Union."""
        if self.cofinite and other.cofinite:
            return Labels(self.values & other.values, True)
        if self.cofinite:
            return Labels(self.values - other.values, True)
        if other.cofinite:
            return Labels(other.values - self.values, True)
        return Labels(self.values | other.values)

    def complement(self) -> Labels:
        """Every value not in the set."""
        return Labels(self.values, not self.cofinite)

    def describe(self, name: str = "x") -> str:
        """Render as ``x in ('a', 'b')`` or ``x not in ('a',)``."""
        shown = ", ".join(repr(v) for v in sorted(self.values, key=str))
        if self.cofinite:
            return f"{name} not in ({shown})" if self.values else "any value"
        return f"{name} in ({shown})" if self.values else "no value"


# --------------------------------------------------------------------------- domains


@dataclass(frozen=True, slots=True)
class Dom:
    """The values a term may take: numbers or labels (exactly one is set), and maybe null."""

    num: NumSet | None = None
    labels: Labels | None = None
    null: bool = True

    @property
    def empty(self) -> bool:
        """True when the term can take no value at all (not even null)."""
        if self.null:
            return False
        if self.num is not None:
            return self.num.empty
        if self.labels is not None:
            return self.labels.empty
        return False

    @property
    def values_empty(self) -> bool:
        """True when the term can take no non-null value."""
        if self.num is not None:
            return self.num.empty
        if self.labels is not None:
            return self.labels.empty
        return False

    def meet(self, other: Dom) -> Dom:
        """Intersection."""
        num = self.num if other.num is None else (
            other.num if self.num is None else self.num.meet(other.num))
        labels = self.labels if other.labels is None else (
            other.labels if self.labels is None else self.labels.meet(other.labels))
        return Dom(num, labels, self.null and other.null)

    def join(self, other: Dom) -> Dom:
        """Union."""
        num = self.num.join(other.num) if self.num is not None and other.num is not None else None
        labels = (self.labels.join(other.labels)
                  if self.labels is not None and other.labels is not None else None)
        return Dom(num, labels, self.null or other.null)

    def contains(self, value: object) -> bool:
        """Whether the term may take ``value`` (``None`` for null)."""
        if value is None:
            return self.null
        if self.num is not None:
            return (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and self.num.contains(float(value)))
        if self.labels is not None:
            if not isinstance(value, (str, bool)):
                return False
            return (value in self.labels.values) != self.labels.cofinite
        return True

    def values_only(self) -> Dom:
        """The same values, without null."""
        return Dom(self.num, self.labels, False)

    def null_only(self) -> Dom:
        """Only null."""
        num = NumSet((), self.num.integer) if self.num is not None else None
        labels = Labels(frozenset()) if self.labels is not None else None
        return Dom(num, labels, True)

    def describe(self, name: str) -> str:
        """Render the domain for a message."""
        if self.values_empty and self.null:
            return f"{name} is None"
        if self.num is not None:
            text = self.num.describe(name)
        elif self.labels is not None:
            text = self.labels.describe(name)
        else:
            text = "any value"
        return text


def _nothing(like: Dom) -> Dom:
    """No value at all, of the same kind as ``like``."""
    return Dom(
        num=NumSet((), like.num.integer) if like.num is not None else None,
        labels=Labels(frozenset()) if like.labels is not None or like.num is None else None,
        null=False,
    )


# --------------------------------------------------------------------------- regions

Box = Mapping[str, Dom]


def _meet_box(a: Box, b: Box) -> Box | None:
    out = dict(a)
    for k, d in b.items():
        m = out[k].meet(d) if k in out else d
        if m.empty:
            return None
        out[k] = m
    return out


def _hull(boxes: Sequence[Box]) -> Box:
    keys = set(boxes[0])
    for b in boxes[1:]:
        keys &= set(b)
    out: dict[str, Dom] = {}
    for k in keys:
        d = boxes[0][k]
        for b in boxes[1:]:
            d = d.join(b[k])
        out[k] = d
    return out


@dataclass(frozen=True, slots=True)
class Region:
    """A union of boxes over terms; an over-approximation of a set of accounts."""

    boxes: tuple[Box, ...]

    @staticmethod
    def top() -> Region:
        """Every account."""
        return Region(({},))

    @staticmethod
    def bottom() -> Region:
        """No account."""
        return Region(())

    @staticmethod
    def where(key: str, dom: Dom) -> Region:
        """Accounts whose term ``key`` is in ``dom``."""
        return Region.bottom() if dom.empty else Region(({key: dom},))

    @property
    def empty(self) -> bool:
        """True when the region holds no account, for certain."""
        return not self.boxes

    @property
    def is_top(self) -> bool:
        """True when the region is known to hold every account."""
        return any(not b for b in self.boxes)

    def contains(self, values: Mapping[str, object]) -> bool:
        """Whether an account whose terms have these values (by key) is in the region."""
        return any(all(d.contains(values.get(k)) for k, d in box.items()) for box in self.boxes)

    def meet(self, other: Region) -> Region:
        """Intersection (widened when it would hold too many boxes)."""
        if self.is_top:
            return other
        if other.is_top:
            return self
        out: list[Box] = []
        for a in self.boxes:
            for b in other.boxes:
                m = _meet_box(a, b)
                if m is not None:
                    out.append(m)
        return Region._capped(out)

    def join(self, other: Region) -> Region:
        """Union (widened when it would hold too many boxes)."""
        if self.is_top or other.is_top:
            return Region.top()
        return Region._capped([*self.boxes, *other.boxes])

    @staticmethod
    def _capped(boxes: list[Box]) -> Region:
        if len(boxes) > MAX_BOXES:
            return Region((_hull(boxes),))
        return Region(tuple(boxes))

    def describe(self) -> str:
        """Render the region for debugging and messages."""
        if self.empty:
            return "nothing"
        parts = []
        for b in self.boxes:
            if not b:
                return "anything"
            parts.append(" and ".join(d.describe(k) for k, d in sorted(b.items())))
        return " or ".join(f"({p})" if len(self.boxes) > 1 else p for p in parts)


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True, slots=True)
class NameFact:
    """What is known about a name: its base domain and why (for messages)."""

    dom: Dom
    reason: str | None = None


@dataclass
class Facts:
    """What the analyser knows about the names of one kind of expression.

    Parameters
    ----------
    env
        The type of every name the expressions may read (as for
        :func:`healthrules.expressions.infer`).
    names
        Base domains of names, with a reason; names not listed get the widest domain of their
        type.
    bands
        The bands of banded indicators (what ``band(x) == 'level'`` means).
    label_alias
        Label names that stand for a band of a numeric term: ``score_band`` is
        ``("score", score.bands)``.
    """

    env: Mapping[str, Type]
    names: Mapping[str, NameFact] = field(default_factory=dict)
    bands: Mapping[str, Bands] = field(default_factory=dict)
    label_alias: Mapping[str, tuple[str, Bands]] = field(default_factory=dict)

    def fact(self, name: str) -> NameFact | None:
        """The base domain of a name (None for names that are not values, such as dates)."""
        known = self.names.get(name)
        if known is not None:
            return known
        t = self.env.get(name)
        if t in ("int", "float"):
            return NameFact(Dom(num=NumSet.everything(t == "int")))
        if t == "str":
            return NameFact(Dom(labels=Labels(frozenset(), cofinite=True)))
        if t == "bool":
            return NameFact(Dom(labels=Labels(frozenset({True, False}))))
        return None

    def type_of(self, node: ast.expr) -> Type | None:
        """The type of a sub-expression, or None when it does not type-check."""
        try:
            return infer(node, self.env, banded=frozenset(self.bands))
        except ExprProblem:
            return None


def band_interval(band: Band) -> Interval:
    """The interval of values that fall in one band level."""
    lo, hi = band.lower, band.upper
    return Interval(  # an open-ended level holds -inf / inf (the lowest / highest level)
        -INF if lo is None else lo[0],
        INF if hi is None else hi[0],
        True if lo is None else lo[1],
        True if hi is None else hi[1],
    )


# --------------------------------------------------------------------------- ranges


def literal(node: ast.expr) -> tuple[bool, object]:
    """Fold a literal: (True, value) for numbers, strings, booleans and None; else (False, _)."""
    if isinstance(node, ast.Constant):
        return True, node.value
    if isinstance(node, ast.Name) and node.id in ("True", "False", "None"):
        return True, {"True": True, "False": False, "None": None}[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        ok, v = literal(node.operand)
        if ok and isinstance(v, (int, float)) and not isinstance(v, bool):
            return _evaluated(-v if isinstance(node.op, ast.USub) else v)
        return False, None
    if isinstance(node, ast.BinOp):
        okl, left = literal(node.left)
        okr, right = literal(node.right)
        nums = (int, float)
        if (okl and okr and isinstance(left, nums) and isinstance(right, nums)
                and not isinstance(left, bool) and not isinstance(right, bool)):
            try:
                if isinstance(node.op, ast.Add):
                    return _evaluated(left + right)
                if isinstance(node.op, ast.Sub):
                    return _evaluated(left - right)
                if isinstance(node.op, ast.Mult):
                    return _evaluated(left * right)
                if isinstance(node.op, ast.Div):
                    if right == 0:
                        return False, None
                    return _evaluated(float(left) / float(right))
                if isinstance(node.op, ast.Pow) and isinstance(right, int) and right >= 0:
                    out: int | float = 1 if right == 0 and isinstance(left, int) else left * 0 + 1
                    if right:
                        out = left
                        for _ in range(right - 1):  # repeated multiplication, as evaluated
                            out = out * left
                            if not _evaluated(out)[0]:
                                return False, None
                    return _evaluated(out)
            except (OverflowError, ZeroDivisionError):
                return False, None
    return False, None


def _evaluated(value: int | float) -> tuple[bool, object]:
    """A folded number as evaluation gives it: an int beyond Int64 and a NaN are null, which
    is not folded (an overflow to ``inf`` is a value)."""
    if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
        return False, None
    if isinstance(value, float) and math.isnan(value):
        return False, None
    return True, value


def _mul(a: float, b: float) -> float:
    """A corner of a product: ``0 * inf`` is NaN (null) itself, the products near it are
    near 0."""
    if a == 0 or b == 0:
        return 0.0
    return a * b


def _div(a: float, b: float) -> float:
    if math.isinf(b):
        return 0.0 if not math.isinf(a) else math.copysign(INF, a) * math.copysign(1, b)
    return a / b


def _outward(v: int | float, down: bool) -> float:
    """An int end as a float, rounded outward (so the set still holds it)."""
    f = float(v)
    if not math.isinf(f) and f != v:
        f = math.nextafter(f, -INF if down else INF)
    return f


def _whole(v: float) -> int | float:
    """An end of a whole-number set as a Python int (exact), or an infinite end."""
    return v if math.isinf(v) else int(v)


def _ranged(corners: Sequence[int | float], integer: bool,
            nullable: bool) -> tuple[NumSet, bool]:
    """The range between the extreme corners of an arithmetic result (NaN corners are null,
    not values). A whole-number result beyond Int64 is null (an int that leaves 64 bits)."""
    values = [c for c in corners if not (isinstance(c, float) and math.isnan(c))]
    if len(values) < len(corners):
        nullable = True
    if not values:
        return NumSet((), integer), True
    lo, hi = min(values), max(values)
    if integer:
        if lo < INT_MIN or hi > INT_MAX:
            nullable = True  # (the values beyond are null: the range stays a wider one)
        return NumSet.between(_outward(lo, True), _outward(hi, False), True), nullable
    return NumSet.between(float(lo), float(hi)), nullable


def _arith_range(op: ast.operator, a: NumSet, b: NumSet, integer: bool,
                 nullable: bool) -> tuple[NumSet, bool]:
    """``a + b``, ``a - b`` or ``a * b`` over the extended reals: an overflow gives ``inf``
    (floats) or null (ints), ``inf - inf`` and ``inf * 0`` give NaN, which is null."""
    x, y = a.hull(), b.hull()
    if integer:
        xs, ys = (_whole(x.lo), _whole(x.hi)), (_whole(y.lo), _whole(y.hi))
    else:
        xs, ys = (x.lo, x.hi), (y.lo, y.hi)
    a_neg, a_pos = a.may_be_infinite
    b_neg, b_pos = b.may_be_infinite
    if isinstance(op, ast.Add):
        nan = (a_pos and b_neg) or (a_neg and b_pos)
        corners = [xs[0] + ys[0], xs[1] + ys[1]]
    elif isinstance(op, ast.Sub):
        nan = (a_pos and b_pos) or (a_neg and b_neg)
        corners = [xs[0] - ys[1], xs[1] - ys[0]]
    else:
        nan = ((a_neg or a_pos) and b.contains(0.0)) or ((b_neg or b_pos) and a.contains(0.0))
        corners = [_mul(p, q) for p in xs for q in ys]
    return _ranged(corners, integer, nullable or nan)


def range_of(node: ast.expr, facts: Facts) -> tuple[NumSet, bool]:
    """The numbers a numeric expression can take (an over-approximation), and if it may be null.

    Floats range over the extended reals: a value may be ``inf`` or ``-inf`` (an attribute
    that holds one, an overflow), a NaN an operation computes (``inf - inf``, ``inf * 0``,
    ``inf ** 0``) is null, and so is an int result that leaves Int64 (docs/semantics.md,
    "Expressions").

    Examples
    --------
    >>> import ast
    >>> from healthrules.lint.intervals import Dom, Facts, NameFact, NumSet, range_of
    >>> facts = Facts(env={"n": "int"}, names={"n": NameFact(Dom(num=NumSet.between(0, 10)))})
    >>> values, nullable = range_of(ast.parse("n * 2 + 1", mode="eval").body, facts)
    >>> values.describe("v"), nullable
    ('1 <= v <= 21', True)
    >>> facts = Facts(env={"y": "float"},
    ...               names={"y": NameFact(Dom(num=NumSet.everything(), null=False))})
    >>> values, nullable = range_of(ast.parse("y * 0", mode="eval").body, facts)
    >>> values.describe("v"), nullable  # null when y is inf or -inf
    ('v == 0', True)
    """
    ok, value = literal(node)
    if ok:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return NumSet.between(float(value), float(value), isinstance(value, int)), False
        return NumSet.everything(), value is None
    typ = facts.type_of(node)
    integer = typ == "int"
    anything = NumSet.everything(integer)
    if isinstance(node, ast.Name):
        fact = facts.fact(node.id)
        if fact is None or fact.dom.num is None:
            return anything, True
        return fact.dom.num, fact.dom.null
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v, n = range_of(node.operand, facts)
        if isinstance(node.op, ast.UAdd):
            return v, n
        if integer and not v.empty and v.lo <= INT_MIN:  # -(-2**63) leaves Int64: null
            n = True
        return NumSet.of([Interval(-iv.hi, -iv.lo, iv.hi_closed, iv.lo_closed)
                          for iv in v.parts], v.integer), n
    if isinstance(node, ast.BinOp):
        a, na = range_of(node.left, facts)
        b, nb = range_of(node.right, facts)
        nullable = na or nb
        if a.empty or b.empty:
            return NumSet((), integer), True
        if isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
            return _arith_range(node.op, a, b, integer, nullable)
        if isinstance(node.op, ast.Div):
            return _div_range(a.hull(), b.hull()), True
        if isinstance(node.op, ast.Pow):
            okp, power = literal(node.right)
            if okp and isinstance(power, int) and not isinstance(power, bool) and power >= 0:
                return _pow_range(a, power, integer, nullable)
        return anything, True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _call_range(node, node.func.id, facts, integer)
    if isinstance(node, ast.IfExp):
        a, na = range_of(node.body, facts)
        b, nb = range_of(node.orelse, facts)
        return a.join(b), True
    return anything, True


def _div_range(x: Interval, y: Interval) -> NumSet:
    """The values of ``x / y`` (a division is always nullable: by 0, ``inf / inf``)."""
    if y.lo == 0 and y.hi == 0:
        return NumSet(())  # always divided by 0: always null
    if y.lo >= 0 or y.hi <= 0:  # the divisor keeps one sign (0 gives null, not a value)
        sign = 1.0 if y.lo >= 0 else -1.0
        ylo, yhi = (y.lo, y.hi) if sign > 0 else (-y.hi, -y.lo)  # now 0 <= ylo <= yhi
        xlo, xhi = (x.lo, x.hi) if sign > 0 else (-x.hi, -x.lo)
        if ylo > 0:
            c = [_div(p, q) for p in (xlo, xhi) for q in (ylo, yhi)]
            return NumSet.between(min(c), max(c))
        # the divisor can get as close to 0 as it likes
        lo = 0.0 if xlo >= 0 else -INF
        hi = 0.0 if xhi <= 0 else INF
        if xlo >= 0 and not math.isinf(yhi):
            lo = _div(xlo, yhi)
        if xhi <= 0 and not math.isinf(yhi):
            hi = _div(xhi, yhi)
        return NumSet.between(lo, hi)
    return NumSet.everything()


def _pow_range(v: NumSet, n: int, integer: bool, nullable: bool) -> tuple[NumSet, bool]:
    """``v ** n``: repeated multiplication, as evaluated; ``inf ** 0`` is ``inf * 0 + 1``,
    NaN, so null."""
    if n == 0:
        neg, pos = v.may_be_infinite
        return NumSet.between(1.0, 1.0, integer), nullable or neg or pos
    x = v.hull()
    lo: int | float = _whole(x.lo) if integer else x.lo
    hi: int | float = _whole(x.hi) if integer else x.hi

    def p(b: int | float) -> int | float:
        if math.isinf(b):
            return math.copysign(INF, b) if n % 2 else INF
        out = b
        for _ in range(n - 1):
            out = out * b
        return out

    if n % 2 or lo >= 0:
        corners = [p(lo), p(hi)]
    elif hi <= 0:
        corners = [p(hi), p(lo)]
    else:
        corners = [0, max(p(lo), p(hi))]
    return _ranged(corners, integer, nullable)


def _call_range(node: ast.Call, name: str, facts: Facts, integer: bool) -> tuple[NumSet, bool]:
    """The range of a call, by the interval rule of its registry entry."""
    args = [range_of(a, facts) for a in node.args]
    anything = NumSet.everything(integer)
    if any(v.empty for v, _ in args):
        return NumSet((), integer), True
    fn = FUNCTION_TABLE.get(name)
    if fn is None:
        return anything, True
    rule = fn.interval
    match rule:
        case "absolute":
            if len(args) != 1:
                return anything, True
            v, n = args[0]
            x = v.hull()
            if integer and x.lo <= INT_MIN:  # abs(-2**63) leaves Int64: null
                n = True
            if x.lo >= 0:
                return NumSet.between(x.lo, x.hi, integer), n
            if x.hi <= 0:
                return NumSet.between(-x.hi, -x.lo, integer), n
            return NumSet.between(0.0, max(-x.lo, x.hi), integer), n
        case "least" | "greatest":
            if not args:
                return anything, True
            his = [v.hull().hi for v, _ in args]
            los = [v.hull().lo for v, _ in args]
            present_his = [v.hull().hi for v, n in args if not n]
            present_los = [v.hull().lo for v, n in args if not n]
            nullable = all(n for _, n in args)
            if rule == "least":
                hi = min(present_his) if present_his else max(his)
                return NumSet.between(min(los), hi, integer), nullable
            lo = max(present_los) if present_los else min(los)
            return NumSet.between(lo, max(his), integer), nullable
        case "first_present":
            if not args:
                return anything, True
            out = args[0][0]
            for v, _ in args[1:]:
                out = out.join(v)
            return NumSet.of(out.parts, integer), all(n for _, n in args)
        case "rounded":
            if not args:
                return anything, True
            v, n = args[0]
            x = v.hull()
            ok, digits = (literal(node.args[1]) if len(node.args) > 1 else (True, 0))
            d = digits if ok and isinstance(digits, int) and not isinstance(digits, bool) else 0
            scale = 10.0**d
            # a value too large to scale is whole already (round leaves it as it is)
            lo = x.lo if math.isinf(x.lo * scale) else math.floor(x.lo * scale) / scale
            hi = x.hi if math.isinf(x.hi * scale) else math.ceil(x.hi * scale) / scale
            return NumSet.between(lo, hi), n
        case "clipped":
            if len(args) != 3:
                return anything, True
            v, n = args[0]
            oka, a = literal(node.args[1])
            okb, b = literal(node.args[2])
            if oka and okb and isinstance(a, (int, float)) and isinstance(b, (int, float)):
                x = v.hull()
                lo = min(max(x.lo, float(a)), float(b))
                hi = max(min(x.hi, float(b)), float(a))
                return NumSet.between(lo, hi), n
            return anything, n
        case "unknown":
            return anything, True
        case _:
            assert_never(rule)


# --------------------------------------------------------------------------- conditions


@dataclass(frozen=True, slots=True)
class Atom:
    """One elementary test of a condition, and the values of its term that make it true/false.

    ``unknown_label`` is set when the test compares with a band, stage or score-band name that
    does not exist (another check reports those).
    """

    node: ast.expr
    key: str
    term: str
    true: Dom
    false: Dom
    base: Dom
    reason: str | None = None
    unknown_label: bool = False

    @property
    def never_true(self) -> bool:
        """The test alone can never be true."""
        return self.true.empty

    @property
    def never_false(self) -> bool:
        """The test alone is true whenever its term is known."""
        return self.false.empty


@dataclass(frozen=True, slots=True)
class ConditionRegions:
    """Where a condition is true, false, not true and not false, with the atoms it is made of."""

    true: Region
    false: Region
    not_true: Region
    not_false: Region
    atoms: tuple[Atom, ...] = ()

    def negate(self) -> ConditionRegions:
        """The regions of ``not`` the condition."""
        return ConditionRegions(self.false, self.true, self.not_false, self.not_true, self.atoms)


def _top(atoms: tuple[Atom, ...] = ()) -> ConditionRegions:
    t = Region.top()
    return ConditionRegions(t, t, t, t, atoms)


def analyse(node: ast.expr, facts: Facts) -> ConditionRegions:
    """Compute the regions of a condition (see the module docstring).

    Parameters
    ----------
    node
        The condition's tree (``Parsed.tree``).
    facts
        What is known about the names it reads.

    Returns
    -------
    ConditionRegions

    Examples
    --------
    >>> from healthrules.expressions import parse
    >>> from healthrules.lint.intervals import Dom, Facts, NameFact, NumSet, analyse
    >>> facts = Facts(env={"x": "int"},
    ...               names={"x": NameFact(Dom(num=NumSet.between(0, float("inf"), True)))})
    >>> analyse(parse("x < 5 and x > 10").tree, facts).true.empty
    True
    >>> analyse(parse("x >= 3 or x < 3").tree, facts).false.empty
    True
    >>> analyse(parse("x < 0").tree, facts).true.empty
    True
    """
    return _Analyser(facts).visit(node)


_FLIP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE, ast.GtE: ast.LtE,
    ast.Eq: ast.Eq, ast.NotEq: ast.NotEq,
}


def _op_set(op: ast.cmpop, v: float, integer: bool) -> NumSet:
    # -inf < v and inf > v for every number v: the infinite ends are closed
    if isinstance(op, ast.Lt):
        return NumSet.of([Interval(-INF, v, True, False)], integer)
    if isinstance(op, ast.LtE):
        return NumSet.of([Interval(-INF, v, True, True)], integer)
    if isinstance(op, ast.Gt):
        return NumSet.of([Interval(v, INF, False, True)], integer)
    if isinstance(op, ast.GtE):
        return NumSet.of([Interval(v, INF, True, True)], integer)
    point = NumSet.of([Interval(v, v)], integer)
    return point if isinstance(op, ast.Eq) else point.complement()


class _Analyser:
    def __init__(self, facts: Facts) -> None:
        self.facts = facts

    def visit(self, node: ast.expr) -> ConditionRegions:
        if isinstance(node, ast.BoolOp):
            parts = [self.visit(v) for v in node.values]
            out = parts[0]
            for p in parts[1:]:
                out = self._and(out, p) if isinstance(node.op, ast.And) else self._or(out, p)
            return out
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return self.visit(node.operand).negate()
        if isinstance(node, ast.Compare):
            return self.compare(node)
        ok, value = literal(node)
        if ok:
            t, b = Region.top(), Region.bottom()
            if value is True:
                return ConditionRegions(t, b, b, t)
            if value is False:
                return ConditionRegions(b, t, t, b)
            if value is None:
                return ConditionRegions(b, b, t, t)
            return _top()
        if isinstance(node, ast.Name):
            fact = self.facts.fact(node.id)
            if fact is not None and fact.dom.labels is not None and self.facts.env.get(
                node.id
            ) == "bool":
                return self._atom(node, node.id, node.id, fact,
                                  Labels(frozenset({True})), Labels(frozenset({False})))
        return _top()

    @staticmethod
    def _and(a: ConditionRegions, b: ConditionRegions) -> ConditionRegions:
        return ConditionRegions(a.true.meet(b.true), a.false.join(b.false),
                                a.not_true.join(b.not_true), a.not_false.meet(b.not_false),
                                a.atoms + b.atoms)

    @staticmethod
    def _or(a: ConditionRegions, b: ConditionRegions) -> ConditionRegions:
        return ConditionRegions(a.true.join(b.true), a.false.meet(b.false),
                                a.not_true.meet(b.not_true), a.not_false.join(b.not_false),
                                a.atoms + b.atoms)

    def _atom(self, node: ast.expr, key: str, term: str, fact: NameFact,
              true: NumSet | Labels, false: NumSet | Labels,
              unknown_label: bool = False) -> ConditionRegions:
        base = fact.dom
        if isinstance(true, NumSet):
            assert isinstance(false, NumSet)
            t = base.values_only().meet(Dom(num=true, null=False))
            f = base.values_only().meet(Dom(num=false, null=False))
        else:
            assert isinstance(false, Labels)
            t = base.values_only().meet(Dom(labels=true, null=False))
            f = base.values_only().meet(Dom(labels=false, null=False))
        nul = base.null_only() if base.null else None
        nt = f.join(nul) if nul is not None else f
        nf = t.join(nul) if nul is not None else t
        atom = Atom(node, key, term, t, f, base, fact.reason, unknown_label)
        return ConditionRegions(Region.where(key, t), Region.where(key, f),
                                Region.where(key, nt), Region.where(key, nf), (atom,))

    def _null_atom(self, node: ast.expr, key: str, term: str, fact: NameFact,
                   negated: bool) -> ConditionRegions:
        base = fact.dom
        t = base.null_only() if base.null else _nothing(base)
        f = base.values_only()
        if negated:
            t, f = f, t
        atom = Atom(node, key, term, t, f, base, fact.reason)
        return ConditionRegions(Region.where(key, t), Region.where(key, f),
                                Region.where(key, f), Region.where(key, t), (atom,))

    def term(self, node: ast.expr) -> tuple[str, str, NameFact, Bands | None] | None:
        """Resolve a compared operand: (key, text, base fact, bands when it is a band label)."""
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "band" and len(node.args) == 1
                and isinstance(node.args[0], ast.Name)):
            ind = node.args[0].id
            bands = self.facts.bands.get(ind)
            fact = self.facts.fact(ind)
            if bands is None or fact is None:
                return None
            return ind, f"band({ind})", fact, bands
        if isinstance(node, ast.Name):
            if node.id in self.facts.label_alias:
                target, bands = self.facts.label_alias[node.id]
                fact = self.facts.fact(target)
                if fact is None:
                    return None
                return target, node.id, fact, bands
            fact = self.facts.fact(node.id)
            if fact is None:
                return None
            return node.id, node.id, fact, None
        typ = self.facts.type_of(node)
        if typ not in ("int", "float"):
            return None
        values, nullable = range_of(node, self.facts)
        return (ast.dump(node, annotate_fields=False), ast.unparse(node),
                NameFact(Dom(num=values, null=nullable)), None)

    def compare(self, node: ast.Compare) -> ConditionRegions:
        out: ConditionRegions | None = None
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            part = self.pair(node, left, op, right)
            out = part if out is None else self._and(out, part)
            if not isinstance(op, (ast.In, ast.NotIn)):
                left = right  # after `in`, the next pair compares the same left operand
        assert out is not None
        return out

    def pair(self, whole: ast.Compare, left: ast.expr, op: ast.cmpop,
             right: ast.expr) -> ConditionRegions:
        node: ast.expr = whole
        if len(whole.ops) > 1:
            node = ast.Compare(left, [op], [right])
            ast.copy_location(node, left)
            node.end_lineno = right.end_lineno
            node.end_col_offset = right.end_col_offset
        if isinstance(op, (ast.Is, ast.IsNot)):
            resolved = self.term(left)
            if resolved is None:
                return _top()
            key, text, fact, _ = resolved
            return self._null_atom(node, key, text, fact, isinstance(op, ast.IsNot))
        if isinstance(op, (ast.In, ast.NotIn)):
            resolved = self.term(left)
            if resolved is None or not isinstance(right, (ast.Tuple, ast.List)):
                return _top()
            consts = [literal(e) for e in right.elts]
            if not all(ok for ok, _ in consts):
                return _top()
            values = [v for _, v in consts]
            made = self._membership(node, resolved, values, isinstance(op, ast.NotIn))
            return _top() if made is None else made
        okl, lv = literal(left)
        okr, rv = literal(right)
        if okl and okr:
            return _top()
        if okl:
            left, right, lv, rv = right, left, rv, lv
            op = _FLIP[type(op)]()
        elif not okr:
            return self._same_term(node, left, op, right)
        resolved = self.term(left)
        if resolved is None:
            return _top()
        key, text, fact, bands = resolved
        if bands is not None or fact.dom.labels is not None:
            if not isinstance(op, (ast.Eq, ast.NotEq)):
                return _top()
            made = self._membership(node, resolved, [rv], isinstance(op, ast.NotEq))
            return _top() if made is None else made
        if not isinstance(rv, (int, float)) or isinstance(rv, bool) or fact.dom.num is None:
            return _top()
        integer = fact.dom.num.integer
        t = _op_set(op, float(rv), integer)
        return self._atom(node, key, text, fact, t, t.complement())

    def _membership(self, node: ast.expr, resolved: tuple[str, str, NameFact, Bands | None],
                    values: list[object], negated: bool) -> ConditionRegions | None:
        """``term in values`` (``not in`` when ``negated``), also ``==`` / ``!=`` one value."""
        made = self._member_sets(resolved, values)
        if made is None:
            return None
        inside, outside, unknown = made
        key, text, fact, _ = resolved
        if negated:
            inside, outside = outside, inside
        return self._atom(node, key, text, fact, inside, outside, unknown)

    def _member_sets(
        self, resolved: tuple[str, str, NameFact, Bands | None], values: list[object]
    ) -> tuple[NumSet, NumSet, bool] | tuple[Labels, Labels, bool] | None:
        """The values of the term inside and outside the list, and if a label is unknown."""
        _, _, fact, bands = resolved
        if bands is not None:
            levels = {b.name: b for b in bands.levels}
            unknown = any(not isinstance(v, str) or v not in levels for v in values)
            chosen = [band_interval(levels[v]) for v in values
                      if isinstance(v, str) and v in levels]
            if fact.dom.num is None:
                return None
            t = NumSet.of(chosen, fact.dom.num.integer)
            return t, t.complement(), unknown
        if fact.dom.labels is not None:
            if not all(isinstance(v, (str, bool)) for v in values):
                return None
            labels = Labels(frozenset(v for v in values if isinstance(v, (str, bool))))
            base = fact.dom.labels
            unknown = not base.cofinite and not labels.values <= base.values
            return labels, labels.complement(), unknown
        if fact.dom.num is not None:
            nums = [float(v) for v in values
                    if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if len(nums) != len(values):
                return None
            t = NumSet.of([Interval(v, v) for v in nums], fact.dom.num.integer)
            return t, t.complement(), False
        return None

    def _same_term(self, node: ast.expr, left: ast.expr, op: ast.cmpop,
                   right: ast.expr) -> ConditionRegions:
        """``x < x`` and friends: the same term on both sides."""
        a = self.term(left)
        b = self.term(right)
        if a is None or b is None or a[0] != b[0] or a[3] is not None or b[3] is not None:
            return _top()
        key, text, fact, _ = a
        values = fact.dom.values_only()
        nothing = _nothing(values)
        always = isinstance(op, (ast.Eq, ast.LtE, ast.GtE))
        t, f = (values, nothing) if always else (nothing, values)
        nul = fact.dom.null_only() if fact.dom.null else None
        nt = f.join(nul) if nul is not None else f
        nf = t.join(nul) if nul is not None else t
        atom = Atom(node, key, text, t, f, fact.dom, fact.reason)
        return ConditionRegions(Region.where(key, t), Region.where(key, f),
                                Region.where(key, nt), Region.where(key, nf), (atom,))
