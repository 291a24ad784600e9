"""The aggregate kinds of indicators: one registry entry per kind.

Each :class:`AggregateKind` holds what the library needs to know about one kind: what ``of:``
names, the result type, the value of an empty window, the range lint knows, a label, the
polars form the evaluator computes and the incremental form history uses. The format
(:mod:`healthrules.roadmap`), the analysis, lint and history read :data:`AGGREGATE_KINDS`; the
:data:`Aggregate` literal of the format is defined here, next to the table, and a test checks
that the two list the same kinds. ``docs/design.md`` lists what else changes with a new kind.

The evaluator computes an aggregate indicator in two steps, inside and after the one
``group_by(account)`` over the events::

    kind = AGGREGATE_KINDS[ind.aggregate]
    inputs = kind.inputs(condition=cond, timestamp=pl.col(ts), of=ind.of, user=ev.user,
                         value_types=ev.values, day="__day")
    raw = kind.polars(inputs)            # in group_by(account).agg(...)
    value = kind.finish(raw, last_day)   # after joining the accounts: empties, days since

No polars at import time (loading and linting stay engine-free): the polars forms import it
when they run.
"""

from __future__ import annotations

import decimal
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, assert_never

from healthrules._typing import Type

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "AGGREGATE_KINDS",
    "EXACT_BOUND",
    "EXACT_SCALE",
    "ONE_LIMB_BOUND",
    "Aggregate",
    "AggregateInputs",
    "AggregateKind",
    "Incremental",
    "LintRange",
    "OfRule",
    "QRule",
    "Split",
    "exact_columns",
    "exact_limbs",
    "exact_mean",
    "exact_one_column",
    "exact_one_limb",
    "finite_test",
    "finite_value",
    "from_grid",
    "percentile_of",
    "q_units",
    "quantise",
    "value_column",
]

Aggregate = Literal[
    "count",
    "distinct",
    "active_days",
    "sum",
    "mean",
    "min",
    "max",
    "first_time",
    "last_time",
    "days_since_first",
    "days_since_last",
    "median",
    "percentile",
]
"""The aggregate kinds of the format (``aggregate:`` of an events indicator)."""

OfRule = Literal["refused", "value", "column"]
"""What ``of:`` names: ``refused`` (the kind takes none), ``value`` (a numeric value column of
``data.events.values``, required) or ``column`` (any event column, optional: the user column
by default)."""

Incremental = Literal[
    "running_count",
    "running_days",
    "presence",
    "running_sum",
    "running_mean",
    "running_min",
    "running_max",
    "first_event",
    "last_event",
    "per_date",
]
"""How history computes a kind at many dates from one table per account and day
(:mod:`healthrules.history.aggregation`):

- ``running_count``: prefix sums of the matching events per day;
- ``running_days``: prefix sums of "this day had a matching event";
- ``presence``: per (account, value), the days a value occurs (distinct values in a window);
- ``running_sum`` / ``running_mean``: prefix sums of the values and of the non-null values;
- ``running_min`` / ``running_max``: rolling (trailing) or running (cumulative) extremes;
- ``first_event`` / ``last_event``: the first / last matching event time, by backward /
  forward fills;
- ``per_date``: no incremental form (a percentile needs every value of its window): one
  aggregation query over the events per snapshot date, exact and vectorised over the
  accounts.
"""

QRule = Literal["refused", "half", "required"]
"""What ``q:`` says: ``refused`` (the kind takes none), ``half`` (the kind is the percentile
at 0.5 and takes none: ``median``) or ``required`` (``percentile``)."""

Q_DECIMALS = 6
"""The most decimals ``q`` may have: the rank ``(n - 1) * q`` is then computed exactly in
integers, ``(n - 1) * round(q * 10**6)`` divided by ``10**6``."""

Q_SCALE: int = 10**Q_DECIMALS

ResultRule = Literal["int", "float", "datetime", "of"]
"""The result type: a fixed type, or ``of``: the type of the ``of`` column."""


@dataclass(frozen=True, slots=True)
class LintRange:
    """What lint knows about an indicator's value before ``compare``.

    Attributes
    ----------
    low
        The least value (0), or None when lint knows nothing about the value.
    upper
        The greatest value: ``none`` (unbounded), ``window_days`` (the window's days) or
        ``calendar_days`` (the calendar days a window touches: a trailing window of N days
        ending at a datetime touches N + 1 of them, so does one anchored at an instant (a
        ``datetime`` attribute, a ``first_time``), one anchored at a ``date`` N).
    reason
        Why, for messages; ``{ident}`` is the indicator.
    reason_in_window
        Why, when the window bounds the value; ``{ident}``, ``{days}`` (the window) and
        ``{hi}`` (the bound).
    """

    low: float | None
    upper: Literal["none", "window_days", "calendar_days"] = "none"
    reason: str = ""
    reason_in_window: str = ""


ANY_VALUE = LintRange(low=None)
"""Lint knows nothing about the value (any number, or not a number at all)."""


@dataclass(frozen=True, slots=True)
class AggregateInputs:
    """What the polars form of an aggregate kind reads, inside ``group_by(account)``.

    Attributes
    ----------
    condition
        Boolean: the event is in the window and matches ``where``. It may be null (a null
        timestamp or a null compared in ``where``): a form must count null as false, as
        ``sum``, ``filter`` and ``when/then`` do (the events pass does not fill nulls of
        every condition, one column operation per indicator less).
    timestamp
        The events' timestamp column.
    of
        The ``of`` column as the kind reads it (a value column cast to Int64, or to Float64
        with NaN and inf as null; another column as it is), None when the indicator has no
        ``of``.
    day
        The name of the precomputed column holding each event's calendar day.
    user
        The name of the user column (None when the data has none).
    q
        The percentile to compute, as an integer number of millionths (``q: 0.9`` is
        900000), None for a kind that takes no ``q``.
    exact
        For a kind that adds the values (``sum``, ``mean``) of a float value column: the two
        Int64 limb columns of each value on the grid of :data:`EXACT_SCALE`
        (:func:`exact_columns`, computed once before the ``group_by`` by
        :func:`exact_limbs`), summed exactly; or, in the events pass's optimistic form, ONE
        Int64 column of each value's billionths (:func:`exact_one_column`, computed by
        :func:`exact_one_limb`, 0 for a null value: the column has no nulls, and a mean
        counts the values of ``of``), exact only while every account's absolute sum is below
        :data:`ONE_LIMB_BOUND` (the pass checks it and runs again with two limbs otherwise);
        None for other kinds and columns.
    """

    condition: pl.Expr
    timestamp: pl.Expr
    of: pl.Expr | None
    day: str
    user: str | None
    q: int | None = None
    exact: tuple[pl.Expr, pl.Expr] | tuple[pl.Expr] | None = None


PolarsAggregate = Callable[[AggregateInputs], "pl.Expr"]
"""An aggregation over the events of one account (used inside ``group_by(...).agg``)."""


@dataclass(frozen=True, slots=True)
class Split:
    """An aggregation in two steps: plain reductions inside ``group_by(account)``, then a
    finish on each account's row.

    The events pass computes each distinct reduction once (a mean's sum is also the sum of
    an indicator over the same window and filter; polars does not share them between the
    aggregations of one ``group_by``) and finishes after the ``group_by``, on one row per
    account. :meth:`whole` is the same computation as one aggregation: the two forms give
    the same bits.

    Attributes
    ----------
    parts
        The reductions (each one ``sum``, ``count``, ... of an elementwise expression).
    finish
        The value from the parts' results (expressions in the same order as ``parts``).
    """

    parts: tuple[pl.Expr, ...]
    finish: Callable[[Sequence[pl.Expr]], pl.Expr]
    # the finish in two steps, for a pass that runs it in two ``with_columns`` (the events
    # pass over a few events, where planning is the cost): ``values`` of the parts'
    # results, each a column of its own, then ``combine`` of those columns; ``finish(p)``
    # is ``combine(values(p))`` as one expression (the same computation, the same bits)
    values: Callable[[Sequence[pl.Expr]], tuple[pl.Expr, ...]] | None = None
    combine: Callable[[Sequence[pl.Expr]], pl.Expr] | None = None

    def whole(self) -> pl.Expr:
        """The aggregation as one expression (inside ``group_by``)."""
        return self.finish(self.parts)


SplitAggregate = Callable[[AggregateInputs], "Split | None"]
"""The two-step form of an aggregation (:class:`Split`), None where it is one reduction."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AggregateKind:
    """One aggregate kind (``aggregate:``) of events indicators.

    Attributes
    ----------
    name
        The kind, as the format spells it.
    label
        What it computes, in words (docs, descriptions, lint).
    of
        What ``of:`` names (:data:`OfRule`).
    result
        The result type (:data:`ResultRule`), before ``compare``.
    empty
        The value when no event matches: 0, or None (null).
    days_since
        The value is the calendar days from the aggregated time's day to the window's last
        day.
    compare
        Whether ``compare`` (previous window) is defined.
    q
        What ``q:`` says (:data:`QRule`).
    lint
        The range lint knows.
    polars
        The aggregation (see :class:`AggregateInputs`).
    history
        History's incremental form (:data:`Incremental`).
    split
        The two-step form of :attr:`polars` (:class:`Split`) where it needs several
        reductions, which the events pass then shares between indicators; None for a kind
        that is always one reduction.
    """

    name: Aggregate
    label: str
    of: OfRule
    result: ResultRule
    empty: Literal[0] | None
    days_since: bool
    compare: bool
    q: QRule
    lint: LintRange
    polars: PolarsAggregate
    history: Incremental
    split: SplitAggregate | None

    @property
    def sums(self) -> bool:
        """Whether the kind adds the values of its ``of`` column (``sum``, ``mean``): such
        sums are exact (see :func:`exact_limbs`)."""
        return self.history in ("running_sum", "running_mean")

    def result_type(self, of_type: Type | None) -> Type:
        """The type of the value, given the type of the ``of`` column (None: no such column)."""
        if self.result == "of":
            return of_type if of_type is not None else "float"
        return self.result

    def of_column(self, of: str | None, user: str | None) -> str | None:
        """The column the kind reads for ``of:`` (the user column by default), or None."""
        if of is not None:
            return of
        return user if self.of == "column" else None

    def inputs(self, *, condition: pl.Expr, timestamp: pl.Expr, of: str | None,
               user: str | None, value_types: Mapping[str, str], day: str,
               q: float | None = None, finite: bool = False,
               one_limb: bool = False) -> AggregateInputs:
        """The inputs of :attr:`polars` for an indicator (``of`` and ``q`` as written, or
        None).

        ``finite``: the float value columns are already Float64 with NaN and inf as null
        (the events as :func:`healthrules.inputs.read_event_exprs` reads them), so they are read
        as they are instead of through :func:`value_column` again (the same values, one
        conditional per value less).

        ``one_limb``: sums of float columns read the one column of billionths
        (:func:`exact_one_column`) instead of the two limbs: the optimistic form, exact
        only below :data:`ONE_LIMB_BOUND`, which the caller must check.
        """
        import polars as pl

        of_expr: pl.Expr | None = None
        exact: tuple[pl.Expr, pl.Expr] | tuple[pl.Expr] | None = None
        if of is not None:
            as_read = finite and value_types.get(of) == "float"
            of_expr = (value_column(of, value_types.get(of))
                       if self.of == "value" and not as_read else pl.col(of))
            if self.sums and value_types.get(of) == "float":
                if one_limb:
                    exact = (pl.col(exact_one_column(of)),)
                else:
                    hi, lo = exact_columns(of)
                    exact = (pl.col(hi), pl.col(lo))
        return AggregateInputs(condition=condition, timestamp=timestamp, of=of_expr, day=day,
                               user=user, q=self.q_units(q), exact=exact)

    def q_units(self, q: float | None) -> int | None:
        """``q`` in millionths (0.5 for ``median``), None for a kind that takes no ``q``."""
        match self.q:
            case "refused":
                return None
            case "half":
                return Q_SCALE // 2
            case "required":
                assert q is not None, f"aggregate {self.name!r} needs q"
                return q_units(q)
            case _:
                assert_never(self.q)

    def finish(self, raw: pl.Expr, last_day: pl.Expr) -> pl.Expr:
        """The indicator's value from the raw aggregate (after joining the accounts).

        ``raw`` is null for an account without events; ``last_day`` is the window's last day
        (a Date, see :func:`healthrules.engine.binding.last_day`). Days since are calendar
        days from the event's day on the events' wall clock to ``last_day``, like
        ``days_since()``.
        """
        x = raw
        if self.empty is not None:
            x = x.fill_null(self.empty)
        if self.days_since:
            import polars as pl

            x = (last_day - x.dt.date()).dt.total_days().cast(pl.Int64)
        return x


def q_units(q: float) -> int:
    """``q`` as an integer number of millionths, exactly as written (``0.9`` -> 900000).

    Raises ValueError when ``q`` is outside [0, 1] or has more than :data:`Q_DECIMALS`
    decimals."""
    exact = decimal.Decimal(repr(float(q))) * Q_SCALE
    if exact != exact.to_integral_value() or not 0 <= exact <= Q_SCALE:
        raise ValueError(f"q must be between 0 and 1 with at most {Q_DECIMALS} decimals")
    return int(exact)


def percentile_of(values: Sequence[float], q: int) -> float | None:
    """The percentile ``q`` (millionths) of some values, by the definition of the format.

    Linear interpolation between the closest ranks (Hyndman and Fan's type 7, the default
    of numpy and of polars' ``linear``), computed in a fixed way so that the engine, the
    scalar forms and any reimplementation agree to the bit: with the ``n`` values sorted
    ascending (``v[0] .. v[n-1]``), ``h = (n - 1) * q`` computed exactly in integers, ``i``
    its whole part and ``f`` its fractional part (one IEEE division of integers),
    the result is ``v[i] + (v[i+1] - v[i]) * f`` in floats (``v[i]`` when ``f`` is 0);
    null without values. Where ``v[i+1] - v[i]`` overflows (two values of opposite signs
    beyond about 9e307), it is ``v[i] + d * f + d * f`` with ``d = v[i+1] * 0.5 - v[i] * 0.5``
    (finite, between the two values), not an infinity.
    """
    if not values:
        return None
    ordered = sorted(float(v) for v in values)
    h = (len(ordered) - 1) * q
    i, rem = divmod(h, Q_SCALE)
    lo = ordered[i]
    hi = ordered[i + 1] if rem else lo
    f = rem / Q_SCALE
    d = hi - lo
    if math.isinf(d):
        half = hi * 0.5 - lo * 0.5
        return lo + half * f + half * f
    return lo + d * f


def value_column(name: str, value_type: str | None) -> pl.Expr:
    """A numeric value column as aggregates read it: Float64 as :func:`finite_value` reads
    it, or Int64."""
    import polars as pl

    v = pl.col(name)
    if value_type == "float":
        return finite_value(v.cast(pl.Float64))
    return v.cast(pl.Int64)


def finite_test(x: pl.Expr) -> pl.Expr:
    """Whether a Float64 value is finite: true for a finite value, false for NaN, ``inf``
    and ``-inf``, null for null; the values of ``x.is_finite()``.

    ``|x| < inf`` is false for NaN in IEEE comparison and in polars' total order (NaN above
    every value) alike. In polars 2.1 ``is_finite`` runs a per-value loop, about 21
    instructions a value, where the absolute value and the comparison are vectorised kernels
    of about 3 together (docs/performance.md, "Sixth round on the events pass")."""
    return x.abs() < float("inf")


def finite_value(x: pl.Expr, finite: pl.Expr | None = None) -> pl.Expr:
    """A Float64 event value as every aggregate and filter reads it: NaN, ``inf`` and
    ``-inf`` are null, and ``-0.0`` is ``0.0``, so the sign of a zero never depends on which
    of two equal values a ``min`` or ``max`` keeps (the order of the events is not defined)
    (docs/semantics.md, "Aggregations"). ``finite``: :func:`finite_test` of ``x``, when the
    caller has it (reading it once more elsewhere)."""
    import polars as pl

    return pl.when(x == 0).then(pl.lit(0.0, pl.Float64)).when(
        finite_test(x) if finite is None else finite).then(x)


# --------------------------------------------------------------------------- exact sums

EXACT_DECIMALS = 9
EXACT_SCALE: int = 10**EXACT_DECIMALS
"""Float values are added on a grid of ``10**-9``: each value becomes the integer
:func:`quantise` gives (its number of billionths), the integers are added exactly, and the
exact total is converted back to the double nearest it (:func:`from_grid`). Any order of
addition, any partition of the events, gives the same bits."""

EXACT_BOUND: int = 2**62
"""The most the absolute values of one account's events of a summed column may add up to
(within what one pass over the events reads): below it, the integer part of every partial
sum fits an Int64, so nothing wraps. Beyond it the evaluation is refused
(:class:`healthrules.errors.InputDataError`)."""


def quantise(value: float) -> int:
    """A float value as the engine adds it: its number of billionths, an integer.

    ``trunc(v) * 10**9 + round(frac * 1e9)``, where ``frac = v - trunc(v)`` (exact) and
    ``frac * 1e9`` is one IEEE multiplication, rounded half to even: what
    :func:`exact_limbs` computes, the limbs of a value being ``trunc(v)`` and
    ``round(frac * 1e9)``. A value with at most 9 decimals (whose double is the nearest to
    that decimal) gets exactly that decimal's billionths; -0.0 is 0.
    """
    whole = math.trunc(value)
    return whole * EXACT_SCALE + round((value - whole) * 1e9)


def exact_mean(total: int, count: int) -> float | None:
    """The mean of ``count`` values whose quantised total is ``total``: the double nearest
    the exact total divided by the count (one IEEE division); None when ``count`` is 0."""
    if count == 0:
        return None
    return (total / EXACT_SCALE) / count


def exact_columns(name: str) -> tuple[str, str]:
    """The two limb columns of a float value column that sums read (see
    :func:`exact_limbs`)."""
    return f"__qhi__{name}", f"__qlo__{name}"


def exact_limbs(x: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """The limbs of a Float64 value (null for NaN, inf and null): ``trunc(v)`` and
    ``round((v - trunc(v)) * 1e9)``, half to even, both Int64 (:func:`quantise` is the
    integer ``hi * 10**9 + lo``). A value beyond the Int64 range gets null limbs; its
    account's absolute sum is then beyond :data:`EXACT_BOUND` and the evaluation is
    refused."""
    import polars as pl

    hi = x.cast(pl.Int64, strict=False)  # truncates toward zero
    lo = ((x - hi.cast(pl.Float64)) * 1e9).round(mode="half_to_even").cast(pl.Int64)
    return hi, lo


ONE_LIMB_BOUND: float = 2.0**62 / EXACT_SCALE
"""Below this (about 4.6e9), one account's absolute sum of a float value column lets the
events pass add that column's billionths as ONE Int64 (:func:`exact_one_limb`) instead of
two limbs, with the same bits.

Why: Int64 arithmetic in polars wraps (modulo 2**64) without an error, and a sum modulo
2**64 is the true sum whenever the true sum lies in the Int64 range, whatever the partial
sums did. Each value's billionths ``q`` differ from ``v * 1e9`` by at most one half, and a
group has fewer than 2**32 rows, so a sum of any of an account's ``q`` is at most
``1e9 * S + 2**32`` in absolute value, ``S`` being the exact sum of ``|v|``. The pass
computes ``S`` as a float sum (relative error below 2**32 * 2**-53 = 2**-21); with that sum
below 2**62 / 1e9, every total stays below about 2**62 + 2**42 + 2**32, far inside
2**63."""


def exact_one_column(name: str) -> str:
    """The column of a float value column's billionths, one Int64 (see
    :func:`exact_one_limb`)."""
    return f"__q__{name}"


_ROUNDER = 1.5 * 2.0**52
"""Added to a double ``y`` with ``|y| < 2**51``, gives ``_ROUNDER + round(y)`` exactly
(half to even: the sum lies in ``[2**52, 2**53)``, where doubles are the integers, and IEEE
addition rounds to the nearest, ties to even; ``_ROUNDER`` is even)."""

_ROUNDER_BITS: int = struct.unpack("<q", struct.pack("<d", _ROUNDER))[0]
"""The bits of :data:`_ROUNDER` read as an Int64: ``bits(_ROUNDER + k) - _ROUNDER_BITS``
is the integer ``k`` for ``|k| < 2**51`` (the doubles of that range are consecutive
integers with consecutive bit patterns)."""


def exact_one_limb(x: pl.Expr) -> pl.Expr:
    """A Float64 value's billionths as one Int64: ``hi * 10**9 + lo`` of the two limbs
    (:func:`exact_limbs`), the integer :func:`quantise` gives while ``|v|`` is below about
    9.2e9 (beyond, the product wraps: such a value's account is beyond
    :data:`ONE_LIMB_BOUND`, and the events pass then uses the two limbs). ``x`` is finite or
    null (the events pass reads NaN and infinities as null first); null gives null.

    The limbs are made without a float-to-integer cast (the cast checks every value for
    overflow and cost about as much as the rest together): ``trunc(v)`` and the rounding
    of ``frac * 1e9`` half to even are done in doubles, and each integer read from the bits
    of its sum with :data:`_ROUNDER` (:meth:`polars.Expr.reinterpret`). The same integers
    as :func:`exact_limbs` for ``|v| < 2**51``; beyond, the limbs are meaningless, and the
    value's account is beyond :data:`ONE_LIMB_BOUND` anyway."""
    import polars as pl

    whole = x.truncate()  # exact: a double's integer part is a double
    frac = x - whole  # exact
    hi = (whole + _ROUNDER).reinterpret(dtype=pl.Int64) - _ROUNDER_BITS
    lo = ((frac * 1e9) + _ROUNDER).reinterpret(dtype=pl.Int64) - _ROUNDER_BITS
    return hi * EXACT_SCALE + lo


def from_grid(total: pl.Expr) -> pl.Expr:
    """An integer number of billionths (any integer type) as the double nearest it
    (correctly rounded, as Python's ``total / 10**9``).

    Up to ``2**53`` in absolute value the total is a double exactly, and one IEEE
    division by ``1e9`` (also exact) is correctly rounded: that is the usual case (sums
    below about 9e6), about a thirteenth of the cost of the decimal text ``<total>e-9``
    parsed, which only larger totals take (their text is made for those rows alone; the
    others are null there). The divisor is a column (``0 * is_null`` added): polars divides
    by a literal with a reciprocal multiply, which is not correctly rounded (see
    :func:`healthrules.polars_expr.exact_division`)."""
    import polars as pl

    large = (total > _EXACT_DOUBLE) | (total < -_EXACT_DOUBLE)
    # null where it is not needed: the text is made for the large totals only
    text = pl.format("{}e-9", pl.when(large).then(total)).cast(pl.Float64)
    nearest = total.cast(pl.Float64) / (total.is_null().cast(pl.Float64) + 1e9)
    return pl.when(large).then(text).otherwise(nearest)


_EXACT_DOUBLE = 2**53
"""The largest integer magnitude below which every integer is a double exactly."""


# --------------------------------------------------------------------------- polars forms


def _count(x: AggregateInputs) -> pl.Expr:
    import polars as pl

    return x.condition.sum().cast(pl.Int64)


def _distinct(x: AggregateInputs) -> pl.Expr:
    import polars as pl

    if x.of is not None:
        col = x.of
    else:
        assert x.user is not None, "distinct without `of:` needs a user column"
        col = pl.col(x.user)
    # nulls dropped by the row filter, not per group (an elementwise test streams)
    return col.filter(x.condition & col.is_not_null()).n_unique().cast(pl.Int64)


def _active_days(x: AggregateInputs) -> pl.Expr:
    import polars as pl

    return pl.col(x.day).filter(x.condition).n_unique().cast(pl.Int64)


def _first_time(x: AggregateInputs) -> pl.Expr:
    import polars as pl

    return pl.when(x.condition).then(x.timestamp).min()


def _last_time(x: AggregateInputs) -> pl.Expr:
    import polars as pl

    return pl.when(x.condition).then(x.timestamp).max()


def _picked(x: AggregateInputs) -> pl.Expr:
    import polars as pl

    assert x.of is not None, "this aggregate needs `of:`"
    return pl.when(x.condition).then(x.of)


def _limb_sums_value(hi_sum: pl.Expr, lo_sum: pl.Expr) -> pl.Expr:
    """The double nearest the exact sum of limbs, from the sums of each limb (each summed in
    Int64, exact: the integer parts add up to less than :data:`EXACT_BOUND`, the fractional
    limbs are below ``10**9`` each and a group has fewer than ``2**32`` rows), added as Int128
    billionths."""
    import polars as pl

    return from_grid(hi_sum.cast(pl.Int128) * EXACT_SCALE + lo_sum.cast(pl.Int128))


def _dense_sum(x: AggregateInputs) -> pl.Expr:
    """The sum of the one column of billionths (:func:`exact_one_column`, which has no
    nulls: a null value's billionths are 0) where the condition holds, 0 elsewhere: the
    Int64 sum of the picked values, bit for bit, over a column without nulls (polars'
    streaming ``group_by`` adds such a column in its loop without a validity test, about
    12 instructions an event fewer, docs/performance.md)."""
    import polars as pl

    assert x.exact is not None
    return pl.when(x.condition).then(x.exact[0]).otherwise(0).sum()


def _sum_split(x: AggregateInputs) -> Split | None:
    """A float column's exact sum: the sums of its two limbs (or of its one column of
    billionths), then the double nearest the total; None for an integer column (one
    ``sum``)."""
    if x.exact is None:
        return None
    import polars as pl

    if len(x.exact) == 1:
        return Split(parts=(_dense_sum(x),), finish=lambda p: from_grid(p[0]))
    hi, lo = x.exact
    return Split(parts=(pl.when(x.condition).then(hi).sum(),
                        pl.when(x.condition).then(lo).sum()),
                 finish=lambda p: _limb_sums_value(p[0], p[1]))


def _mean_split(x: AggregateInputs) -> Split:
    """A mean: the sum (exact, by limbs, for a float column) and the number of values, then
    one IEEE division (in two steps, :attr:`Split.values` and :attr:`Split.combine`: the
    sum's double and the count, then the division, which reads the sum's double twice)."""
    import polars as pl

    from healthrules.polars_expr import exact_division

    def combine(v: Sequence[pl.Expr]) -> pl.Expr:
        return exact_division(v[0], v[1])

    def staged(values: Callable[[Sequence[pl.Expr]], tuple[pl.Expr, ...]],
               parts: tuple[pl.Expr, ...]) -> Split:
        return Split(parts=parts, finish=lambda p: combine(values(p)), values=values,
                     combine=combine)

    if x.exact is not None and len(x.exact) == 1:
        # (the billionths have no nulls, :func:`_dense_sum`: the values counted are those
        # of ``of``, null exactly where the value read is)
        assert x.of is not None, "a mean needs `of:`"
        return staged(lambda p: (from_grid(p[0]), p[1].cast(pl.Int64)),
                      (_dense_sum(x), pl.when(x.condition).then(x.of).count()))
    if x.exact is not None:
        hi, lo = x.exact
        picked_hi = pl.when(x.condition).then(hi)
        return staged(lambda p: (_limb_sums_value(p[0], p[1]), p[2].cast(pl.Int64)),
                      (picked_hi.sum(), pl.when(x.condition).then(lo).sum(),
                       picked_hi.count()))
    # integers: the exact Int64 sum (see EXACT_BOUND), as a double, over the count
    picked = _picked(x)
    return staged(lambda p: (p[0], p[1].cast(pl.Int64)), (picked.sum(), picked.count()))


def _sum(x: AggregateInputs) -> pl.Expr:
    split = _sum_split(x)
    return split.whole() if split is not None else _picked(x).sum()


def _mean(x: AggregateInputs) -> pl.Expr:
    return _mean_split(x).whole()


def _min(x: AggregateInputs) -> pl.Expr:
    return _picked(x).min()


def _max(x: AggregateInputs) -> pl.Expr:
    return _picked(x).max()


def _percentile(x: AggregateInputs) -> pl.Expr:
    """:func:`percentile_of` inside ``group_by``: the values sorted, two picked by rank."""
    import polars as pl

    from healthrules.polars_expr import exact_division

    assert x.q is not None, "a percentile needs q"
    values = _picked(x).drop_nulls().cast(pl.Float64).sort()
    h = (values.len().cast(pl.Int64) - 1) * x.q
    i = h // Q_SCALE
    rem = h % Q_SCALE
    lo = values.get(i, null_on_oob=True)
    hi = values.get(i + (rem > 0).cast(pl.Int64), null_on_oob=True)
    f = exact_division(rem, pl.lit(Q_SCALE, pl.Int64))
    d = hi - lo
    # a difference that overflows (opposite signs beyond about 9e307): by halves, finite
    half = hi * 0.5 - lo * 0.5
    return pl.when(d.is_infinite()).then(lo + half * f + half * f).otherwise(lo + d * f)


# --------------------------------------------------------------------------- the table

_COUNTS = "{ident} is a count of events, never negative"
_DAYS_WITH = LintRange(
    low=0.0, upper="calendar_days",
    reason="{ident} counts days with an event, never negative",
    reason_in_window="{ident} counts days with an event in a {days}-day window, so it is "
    "between 0 and {hi}",
)
_DAYS_SINCE = LintRange(
    low=0.0, upper="window_days",
    reason="{ident} counts days since an event, never negative",
    reason_in_window="{ident} counts days since an event inside a {days}-day window, so it "
    "is between 0 and {hi}",
)

_KINDS = (
    AggregateKind(
        name="count", label="number of events", of="refused", result="int", empty=0,
        days_since=False, compare=True, q="refused",
        lint=LintRange(low=0.0, reason=_COUNTS), polars=_count, history="running_count", split=None,
    ),
    AggregateKind(
        name="distinct", label="number of distinct values of `of` (default: users)",
        of="column", result="int", empty=0, days_since=False, compare=True, q="refused",
        lint=LintRange(low=0.0, reason="{ident} is a count of distinct values, never negative"),
        polars=_distinct, history="presence", split=None,
    ),
    AggregateKind(
        name="active_days", label="number of days with an event", of="refused", result="int",
        empty=0, days_since=False, compare=True, q="refused", lint=_DAYS_WITH, polars=_active_days,
        history="running_days", split=None,
    ),
    AggregateKind(
        name="sum", label="sum of the value column `of`", of="value", result="of", empty=0,
        days_since=False, compare=True, q="refused", lint=ANY_VALUE, polars=_sum,
        history="running_sum", split=_sum_split,
    ),
    AggregateKind(
        name="mean", label="mean of the value column `of`", of="value", result="float",
        empty=None, days_since=False, compare=True, q="refused", lint=ANY_VALUE, polars=_mean,
        history="running_mean", split=_mean_split,
    ),
    AggregateKind(
        name="min", label="smallest value of the value column `of`", of="value", result="of",
        empty=None, days_since=False, compare=True, q="refused", lint=ANY_VALUE, polars=_min,
        history="running_min", split=None,
    ),
    AggregateKind(
        name="max", label="largest value of the value column `of`", of="value", result="of",
        empty=None, days_since=False, compare=True, q="refused", lint=ANY_VALUE, polars=_max,
        history="running_max", split=None,
    ),
    AggregateKind(
        name="first_time", label="time of the first event", of="refused", result="datetime",
        empty=None, days_since=False, compare=False, q="refused", lint=ANY_VALUE,
        polars=_first_time, history="first_event", split=None,
    ),
    AggregateKind(
        name="last_time", label="time of the last event", of="refused", result="datetime",
        empty=None, days_since=False, compare=False, q="refused", lint=ANY_VALUE, polars=_last_time,
        history="last_event", split=None,
    ),
    AggregateKind(
        name="days_since_first",
        label="calendar days from the first event's day to the window's last day",
        of="refused", result="int", empty=None, days_since=True, compare=True, q="refused",
        lint=_DAYS_SINCE, polars=_first_time, history="first_event", split=None,
    ),
    AggregateKind(
        name="days_since_last",
        label="calendar days from the last event's day to the window's last day",
        of="refused", result="int", empty=None, days_since=True, compare=True, q="refused",
        lint=_DAYS_SINCE, polars=_last_time, history="last_event", split=None,
    ),
    AggregateKind(
        name="median", label="median of the value column `of` (the percentile at q 0.5)",
        of="value", result="float", empty=None, days_since=False, compare=True, q="half",
        lint=ANY_VALUE, polars=_percentile, history="per_date", split=None,
    ),
    AggregateKind(
        name="percentile",
        label="percentile `q` of the value column `of` (linear between closest ranks)",
        of="value", result="float", empty=None, days_since=False, compare=True,
        q="required", lint=ANY_VALUE, polars=_percentile, history="per_date", split=None,
    ),
)

AGGREGATE_KINDS: Mapping[Aggregate, AggregateKind] = {k.name: k for k in _KINDS}
"""Every aggregate kind, by name, in the order of :data:`Aggregate`."""
