"""Manual overrides: a CSM pins an indicator or the score of an account, with a reason and an
expiry.

A pin replaces the computed value everywhere it is read, for every run dated from its start to
the day before its expiry: bands, derived indicators that read it, the stage, the score and
the actions. The stored overrides (:meth:`healthrules.history.store.StateStore.pin`) become,
per (account, date), the extra columns ``__pin__<target>`` that the evaluator applies
(``_Run._pinned``), and a report of what was applied next to what the engine computed.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from healthrules.compiler import Plan
from healthrules.errors import Code, HealthRulesError, Issue
from healthrules.expressions import Type

__all__ = ["OverrideError", "Pin", "overlay", "pin_problem", "pin_targets", "report"]


class OverrideError(HealthRulesError):
    """A pin that cannot apply: unknown target or account, a value it cannot take."""

    def __init__(self, message: str) -> None:
        super().__init__([Issue(code=Code.VALIDATION.value, message=f"--pin: {message}")])


@dataclass(frozen=True)
class Pin:
    """One override to record with a daily run (see :func:`healthrules.history.run`).

    It applies from the run's date up to the day before ``expires``.
    """

    account: Any
    target: str
    value: float
    reason: str
    expires: dt.date | str
    set_by: str | None = None

_NUMERIC: dict[Type, pl.DataType] = {"int": pl.Int64(), "float": pl.Float64()}


def pin_targets(plan: Plan) -> dict[str, Type]:
    """What can be pinned: every numeric indicator of the plan, and ``score``."""
    out: dict[str, Type] = {"score": "float"}
    for cr in plan.roadmaps:
        for ident, typ in cr.analysis.indicator_types.items():
            if typ in _NUMERIC:
                out.setdefault(ident, typ)
    return out


def pin_problem(plan: Plan, target: str, value: float) -> str | None:
    """Why pinning ``target`` to ``value`` would not apply (None: it would).

    The same rules :func:`overlay` applies when it leaves an override out (an unknown or
    non-numeric target, a fraction for a whole-number indicator), said before the pin is
    stored, with a did-you-mean for a misspelt target.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"the value must be a finite number, got {value!r}"
    targets = pin_targets(plan)
    if target not in targets:
        close = difflib.get_close_matches(target, sorted(targets), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{target!r} is not a numeric indicator of the roadmap nor 'score'{hint}"
    if targets[target] == "int" and not float(value).is_integer():
        return f"{target} is a whole number, got {value!r}"
    return None


def _active(overrides: pl.DataFrame, dates: Sequence[dt.date]) -> pl.DataFrame:
    """(override, date) for every date an override is in force; the newest pin wins."""
    d = pl.DataFrame({"__as_of": sorted(set(dates))}, schema={"__as_of": pl.Date})
    on = pl.col("__as_of")
    live = overrides.join(d, how="cross").filter(
        (pl.col("created_on") <= on) & (on < pl.col("expires_on"))
        & (pl.col("removed_on").is_null() | (on < pl.col("removed_on"))))
    return live


def overlay(plan: Plan, overrides: pl.DataFrame, dates: Sequence[dt.date],
            key: str) -> pl.DataFrame | None:
    """The ``__pin__<target>`` columns per (account, date), typed like the targets.

    Overrides of unknown or non-numeric targets, and whole-number indicators pinned to a
    fraction, are left out (:func:`report` says why).
    """
    targets = pin_targets(plan)
    live = _active(overrides, dates).filter(pl.col("target").is_in(list(targets)))
    if live.height == 0:
        return None
    live = live.sort("id", descending=True).unique([key, "__as_of", "target"], keep="first")
    wide: pl.DataFrame | None = None
    for target in sorted(set(live["target"].to_list())):
        dtype = _NUMERIC[targets[target]]
        part = live.filter(pl.col("target") == target)
        if dtype == pl.Int64:
            part = part.filter(pl.col("value") == pl.col("value").round(0))
        part = part.select(key, "__as_of", pl.col("value").cast(dtype).alias(f"__pin__{target}"))
        wide = part if wide is None else wide.join(part, on=[key, "__as_of"], how="full",
                                                   coalesce=True)
    return wide


def report(plan: Plan, overrides: pl.DataFrame, as_of: dt.date, key: str,
           computed: pl.DataFrame | None) -> pl.DataFrame:
    """The overrides in force on ``as_of``, with their status and the engine's own value.

    Returns
    -------
    polars.DataFrame
        ``id``, key, ``target``, ``value`` (pinned), ``computed`` (what the engine found),
        ``reason``, ``set_by``, ``created_on``, ``expires_on``, ``days_left`` and ``status``:
        ``applied``, ``superseded`` (a newer pin of the same target), ``unknown_target``, or
        ``not_whole`` (a fraction for a whole-number indicator).
    """
    targets = pin_targets(plan)
    live = _active(overrides, [as_of]).drop("__as_of")
    is_int = pl.col("target").replace_strict(
        {t: typ == "int" for t, typ in targets.items()}, default=False, return_dtype=pl.Boolean)
    newest = pl.col("id") == pl.col("id").max().over(key, "target")
    status = (pl.when(~pl.col("target").is_in(list(targets))).then(pl.lit("unknown_target"))
              .when(is_int & (pl.col("value") != pl.col("value").round(0))).then(
                  pl.lit("not_whole"))
              .when(~newest).then(pl.lit("superseded"))
              .otherwise(pl.lit("applied")))
    out = live.with_columns(
        status.alias("status"),
        (pl.col("expires_on") - pl.lit(as_of, pl.Date)).dt.total_days().alias("days_left"))
    value_col = pl.lit(None, pl.Float64).alias("computed")
    if computed is not None and computed.height:
        cols = [c for c in computed.columns if c.startswith("__computed__")]
        if cols:
            long = computed.select(key, *[pl.col(c).cast(pl.Float64) for c in cols]).unpivot(
                index=key, variable_name="target", value_name="computed").with_columns(
                pl.col("target").str.strip_prefix("__computed__")).drop_nulls("computed")
            out = out.join(long.unique([key, "target"]), on=[key, "target"], how="left")
    if "computed" not in out.columns:
        out = out.with_columns(value_col)
    return out.select("id", key, "target", "value", "computed", "reason", "set_by",
                      "created_on", "expires_on", "days_left", "status").sort(key, "target", "id")
