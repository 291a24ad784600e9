"""Roll-up indicators: parent-level values aggregated over the children's evaluated rows.

A roll-up indicator (``kind: rollup``) of a roadmap reads, for each row, the rows of the same
roadmap frame whose parent column (``data.accounts.parent``) holds the row's account key, at
the same evaluation date. Inside the one lazy query of a roadmap frame:

1. each row gets its ``of`` value (and ``weight``) as a column, ``__ro__<id>`` (``__rw__<id>``),
   computed from the row's own indicators and the roll-ups of lower levels;
2. the rows that have a parent are grouped by (parent key, ``__as_of``): one row per parent
   and date, with the partial aggregates (sums, counts, extremes, worst band rank);
3. that frame is left-joined back onto the rows by (account key, ``__as_of``), and the
   partials are finished (an empty sum or count is 0, a mean over no child is null, a mean
   is an IEEE division of two columns).

Roll-ups of roll-ups: the steps run once per level (``Analysis.rollup_levels``). A level-1
roll-up reads the children's own values; a level-``k`` roll-up reads roll-ups (and derived
indicators) of lower levels, which are complete on every row before it is grouped, so a
grandparent's level-2 roll-up reads its children's level-1 roll-ups, made of the
grandchildren. The order does not depend on the depth of the hierarchy: each level is one
grouping of all rows, whatever the number of generations.

Float sums over the children (``sum``, ``mean``, and both sums of ``weighted_mean``) are
exact, so a parent's value does not depend on the order of its children: each child's value
(for ``weighted_mean``, the product ``value * weight`` and the weight) is put on the grid of
:data:`healthrules.aggregates.EXACT_SCALE` as an Int128 number of billionths
(:func:`healthrules.aggregates.exact_limbs`), the integers are added (fewer than 2**32
children of less than 2**63 each cannot leave Int128), and the exact total becomes the
double nearest it. A child value that is not finite or 2**63 or more in absolute value
cannot be put on the grid: its parent's value is null.

Frames and their rows: the roadmap frame has one row per evaluated row (an account, or an
(account, date) pair in history); the grouped frame has one row per (parent, date) that has
children in the roadmap frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from healthrules.aggregates import EXACT_SCALE, exact_limbs, from_grid
from healthrules.analysis import Analysis
from healthrules.engine.frames import AS_OF, cast_to
from healthrules.expressions import Parsed
from healthrules.polars_expr import exact_division, positive_zero
from healthrules.roadmap import Roadmap, RollupIndicator

__all__ = ["RollupProgram"]

_KEY = "__rollup_key"


def _billionths(x: pl.Expr) -> pl.Expr:
    """A child's float value as an Int128 number of billionths (null when it is null, not
    finite or 2**63 or more in absolute value: ``-2**63`` too, which the Int64 limbs could
    hold, so that the bound is the same on both sides, as docs/semantics.md states it)."""
    hi, lo = exact_limbs(x)
    on_grid = x.abs() < 2.0**63
    return pl.when(on_grid).then(hi.cast(pl.Int128) * EXACT_SCALE + lo.cast(pl.Int128))


def _int_sum(x: pl.Expr) -> pl.Expr:
    """The sum of children's integer values inside the aggregation, added as Int128 (no
    wrap): null when the total is beyond the Int64 range, as a float total off the grid is."""
    total = x.cast(pl.Int128).sum()
    return pl.when(total.is_between(-(2**63), 2**63 - 1)).then(total).cast(pl.Int64)


def _exact_sum(x: pl.Expr) -> pl.Expr:
    """The exact sum of children's float values inside the aggregation, as the double
    nearest it; null when a value cannot be put on the grid."""
    n = _billionths(x)
    off_grid = (x.is_not_null() & n.is_null()).any()
    return pl.when(off_grid.not_()).then(from_grid(n.sum()))


@dataclass(frozen=True)
class _One:
    ident: str
    level: int
    child: list[pl.Expr]
    partials: list[pl.Expr]
    finish: pl.Expr
    temporary: list[str]


class RollupProgram:
    """The expressions of every roll-up indicator of one roadmap, built once.

    Parameters
    ----------
    roadmap, analysis
        The roadmap and its analysis (``rollup_order``, types, parsed ``of`` and ``weight``).
    account_key
        The account key column of the rows.
    translate
        Turns a parsed expression into a polars expression over a roadmap frame.
    """

    def __init__(self, roadmap: Roadmap, analysis: Analysis, account_key: str,
                 translate: Callable[[Parsed], pl.Expr]) -> None:
        parent = roadmap.data.accounts.parent
        self.parent = parent
        self.key = account_key
        by_id = {ind.id: (i, ind) for i, ind in enumerate(roadmap.indicators)}
        self.items: list[_One] = []
        for ident in analysis.rollup_order:
            i, ind = by_id[ident]
            assert isinstance(ind, RollupIndicator)
            self.items.append(self._one(i, ind, analysis, translate))

    @property
    def ids(self) -> list[str]:
        """The roll-up indicators, in evaluation order."""
        return [one.ident for one in self.items]

    @property
    def levels(self) -> list[int]:
        """The levels that have roll-ups, ascending (see the module text)."""
        return sorted({one.level for one in self.items})

    def level_ids(self, level: int) -> list[str]:
        """The roll-up indicators of one level, in evaluation order."""
        return [one.ident for one in self.items if one.level == level]

    def apply(self, lf: pl.LazyFrame, level: int | None = None) -> pl.LazyFrame:
        """Add the roll-up indicators of one level to a roadmap frame (see the module text).

        ``level=None`` adds every level, one after the other; that is complete only when no
        derived indicator sits between two levels (a level-2 roll-up reads none), as the
        caller computes those (``RoadmapProgram.frame`` does, level by level)."""
        if level is None:
            for each in self.levels:
                lf = self.apply(lf, each)
            return lf
        items = [one for one in self.items if one.level == level]
        if not items or self.parent is None:
            return lf
        lf = lf.with_columns([e for one in items for e in one.child])
        parts = [e for one in items for e in one.partials]
        kids = (lf.filter(pl.col(self.parent).is_not_null())
                .group_by(pl.col(self.parent).alias(_KEY), AS_OF).agg(parts))
        lf = lf.join(kids, left_on=[self.key, AS_OF], right_on=[_KEY, AS_OF], how="left",
                     maintain_order="left")
        lf = lf.with_columns([one.finish for one in items])
        return lf.drop([c for one in items for c in one.temporary])

    # ------------------------------------------------------------------ building

    @staticmethod
    def _one(i: int, ind: RollupIndicator, a: Analysis,
             translate: Callable[[Parsed], pl.Expr]) -> _One:
        ident = ind.id
        typ = a.indicator_types[ident]
        of_col, w_col = f"__ro__{ident}", f"__rw__{ident}"
        p = f"__rp__{ident}__"
        o = pl.col(of_col)
        child: list[pl.Expr] = []
        if ind.aggregate != "worst_band":
            parsed: Parsed = a.expressions[f"indicators[{i}].of"]
            child.append(translate(parsed).alias(of_col))
        temporary = [of_col]
        agg = ind.aggregate
        if agg == "worst_band":
            banded = ind.of.strip()
            bands = next(x.bands for x in a.roadmap.indicators if x.id == banded)
            assert bands is not None
            names = [b.name for b in bands.ordered_worst_to_best()]
            ranks = list(range(len(names)))
            child.append(pl.col(f"{banded}__band").replace_strict(
                names, ranks, default=None, return_dtype=pl.Int64).alias(of_col))
            partials = [o.min().alias(f"{p}rank")]
            finish = pl.col(f"{p}rank").replace_strict(ranks, names, default=None,
                                                        return_dtype=pl.String)
            temporary.append(f"{p}rank")
        elif agg in ("count", "share"):
            partials = [o.cast(pl.Boolean).fill_null(False).cast(pl.Int64).sum().alias(f"{p}n"),
                        pl.len().cast(pl.Int64).alias(f"{p}all")]
            n, total = pl.col(f"{p}n").fill_null(0), pl.col(f"{p}all").fill_null(0)
            finish = n if agg == "count" else exact_division(n, total)
            temporary += [f"{p}n", f"{p}all"]
        elif agg == "sum":
            partials = [(_exact_sum(o.cast(pl.Float64)) if typ == "float"
                         else _int_sum(o)).alias(f"{p}s"),
                        pl.len().alias(f"{p}all")]
            # 0 without children; null when a child's value is off the grid
            finish = pl.when(pl.col(f"{p}all").is_null()).then(pl.lit(0)).otherwise(
                pl.col(f"{p}s"))
            temporary += [f"{p}s", f"{p}all"]
        elif agg in ("min", "max"):
            # the child values hold no NaN (the translated `of` reads a computed NaN as
            # null); inf and -inf are values. A zero is 0.0: which of two equal children
            # min / max keeps is not defined, so -0.0 is not kept (docs/semantics.md)
            partials = [(o.min() if agg == "min" else o.max()).alias(f"{p}x")]
            finish = pl.col(f"{p}x")
            if typ == "float":
                finish = positive_zero(finish)
            temporary.append(f"{p}x")
        elif agg == "mean":
            x = o.cast(pl.Float64)
            partials = [_exact_sum(x).alias(f"{p}s"),
                        x.is_not_null().sum().cast(pl.Int64).alias(f"{p}c")]
            c = pl.col(f"{p}c").fill_null(0)
            finish = exact_division(pl.col(f"{p}s"), c)
            temporary += [f"{p}s", f"{p}c"]
        elif agg == "weighted_mean":
            weight = a.expressions[f"indicators[{i}].weight"]
            child.append(translate(weight).alias(w_col))
            w = pl.col(w_col).cast(pl.Float64)
            x = o.cast(pl.Float64)
            both = x.is_not_null() & w.is_not_null()
            partials = [_exact_sum((x * w).filter(both)).alias(f"{p}s"),
                        _exact_sum(w.filter(both)).alias(f"{p}w")]
            den = pl.col(f"{p}w")
            finish = pl.when(den > 0).then(exact_division(pl.col(f"{p}s"), den))
            temporary += [w_col, f"{p}s", f"{p}w"]
        else:  # pragma: no cover - the model's literal lists every aggregate
            raise AssertionError(agg)
        return _One(ident, a.rollup_levels[ident], child, partials,
                    cast_to(finish, typ).alias(ident), temporary)
