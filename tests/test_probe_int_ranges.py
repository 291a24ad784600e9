"""Probes: integer columns of every width (docs/semantics.md, "Input checking").

Every integer dtype is accepted for an int value column or an int attribute. All fit Int64
but ``UInt64``: a ``UInt64`` value beyond the Int64 range cannot be read as an int, and is
refused with a located ``values_out_of_range`` (not a polars cast error, and never read as
null); within the range, every width gives the reference's values.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

import healthrules as hr
from healthrules.history import history
from healthrules.roadmap import Roadmap
from reference import evaluate_reference

AS_OF = dt.date(2026, 6, 30)
TS = [dt.datetime(2026, 6, 20), dt.datetime(2026, 6, 21), dt.datetime(2026, 6, 29, 23)]
AGGREGATES = [("min", "qty"), ("max", "qty"), ("median", "qty"), ("distinct", "qty"),
              ("percentile", "qty"), ("count", None), ("first_time", None)]


def _roadmap(aggregates: list[tuple[str, str | None]], derived: tuple[str, ...] = (),
             ) -> Roadmap:
    inds: list[dict[str, Any]] = []
    for i, (agg, of) in enumerate(aggregates):
        ind: dict[str, Any] = {"id": f"i{i}", "family": "process", "aggregate": agg,
                               "window": "30d"}
        if of:
            ind["of"] = of
        if agg == "percentile":
            ind["q"] = 0.25
        inds.append(ind)
    inds += [{"id": f"d{j}", "family": "process", "expr": e} for j, e in enumerate(derived)]
    return Roadmap.model_validate({
        "id": "p", "goal": "g",
        "data": {"events": {"values": {"qty": "int"}},
                 "accounts": {"attributes": {"seats": "int"}}},
        "indicators": inds, "stages": [{"id": "s"}]})


def _events(values: list[int], dtype: Any) -> pl.DataFrame:
    return pl.DataFrame({"account_id": ["a", "a", "b"], "user_id": ["u", "v", "u"],
                         "event": ["x", "x", "x"], "timestamp": TS,
                         "qty": pl.Series(values, dtype=dtype)})


def _accounts(seats: list[int | None], dtype: Any = pl.Int64) -> pl.DataFrame:
    return pl.DataFrame({"account_id": ["a", "b", "c"],
                         "seats": pl.Series(seats, dtype=dtype)})


@pytest.mark.parametrize("values", [[2**64 - 1, 1, 2], [2**63, 2**63 + 5, 7]])
@pytest.mark.parametrize("summed", [False, True])
def test_a_uint64_value_beyond_int64_is_refused_where_it_is(values: list[int],
                                                           summed: bool) -> None:
    aggs = [("sum", "qty")] if summed else AGGREGATES
    with pytest.raises(hr.InputDataError) as got:
        hr.evaluate(_roadmap(aggs), _events(values, pl.UInt64), _accounts([1, 2, 3]), AS_OF)
    issue, = got.value.issues
    assert issue.code == "values_out_of_range" and issue.location is not None
    assert issue.location.path == "qty" and "'a'" in issue.message
    with pytest.raises(hr.InputDataError):  # history reads the same frames
        history(_roadmap(aggs), _events(values, pl.UInt64), _accounts([1, 2, 3]),
                dt.date(2026, 6, 29), AS_OF)


def test_a_uint64_attribute_beyond_int64_is_refused() -> None:
    with pytest.raises(hr.InputDataError) as got:
        hr.evaluate(_roadmap([("count", None)], ("seats + 1",)), _events([1, 2, 3], pl.Int64),
                    _accounts([5, 2**64 - 1, None], pl.UInt64), AS_OF)
    issue, = got.value.issues
    assert issue.code == "values_out_of_range" and issue.location is not None
    assert issue.location.path == "seats" and "'b'" in issue.message


@pytest.mark.parametrize("dtype", [pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8,
                                   pl.UInt16, pl.UInt32, pl.UInt64])
def test_every_integer_width_matches_the_reference(dtype: Any) -> None:
    info = {pl.Int8: (-128, 127), pl.Int16: (-(2**15), 2**15 - 1),
            pl.Int32: (-(2**31), 2**31 - 1), pl.Int64: (-(2**63), 2**63 - 1),
            pl.UInt8: (0, 255), pl.UInt16: (0, 2**16 - 1), pl.UInt32: (0, 2**32 - 1),
            pl.UInt64: (0, 2**63 - 1)}
    lo, hi = info[dtype]
    roadmap = _roadmap(AGGREGATES, ("seats + 1", "seats * 2", "i0 - i1"))
    events = _events([lo, hi, hi], dtype)
    accounts = _accounts([lo, hi, None], dtype)
    got = hr.evaluate(roadmap, events, accounts, AS_OF)
    ref = evaluate_reference(roadmap, events, accounts, AS_OF)
    rows = {r["account_id"]: r for r in got.indicators.to_dicts()}
    for account, want in ref.accounts.items():
        for ident, value in want.indicators.items():
            assert rows[account][ident] == value, (account, ident)
            assert type(rows[account][ident]) is type(value), (account, ident)
