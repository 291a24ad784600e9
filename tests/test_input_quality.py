"""Data that was quietly changed is counted, and bad inputs are errors (issue #11, item 3).

Null event names and non-finite float values are counted in ``Evaluation.diagnostics``;
``inf`` is read as null like NaN (engine, history, reference); inputs the engine cannot
compare or compute with give an :class:`healthrules.InputDataError` naming the column.
"""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest

import healthrules as hr
from healthrules.roadmap import Roadmap
from reference import evaluate_reference

AS_OF = dt.date(2026, 6, 30)


def _roadmap() -> Roadmap:
    return Roadmap.model_validate({
        "id": "q", "goal": "g",
        "data": {"events": {"user": None, "values": {"amount": "float"}}},
        "indicators": [
            {"id": "n", "family": "process", "aggregate": "count"},
            {"id": "logins", "family": "process", "aggregate": "count",
             "where": "event == 'login'"},
            {"id": "total", "family": "outcome", "aggregate": "sum", "of": "amount"},
            {"id": "avg", "family": "outcome", "aggregate": "mean", "of": "amount"},
            {"id": "top", "family": "outcome", "aggregate": "max", "of": "amount",
             "bands": {"levels": [{"name": "low", "lt": 10}, {"name": "high", "ge": 10}]}},
            {"id": "big", "family": "outcome", "aggregate": "count", "where": "amount > 5"},
        ],
        "stages": [{"id": "s"}],
    })


def _events() -> pl.DataFrame:
    return pl.DataFrame({
        "account_id": ["a", "a", "a", "a", "b"],
        "event": ["login", None, "login", "buy", "login"],
        "timestamp": [dt.datetime(2026, 6, d, 9) for d in (26, 27, 28, 29, 29)],
        "amount": [1.0, math.inf, -math.inf, math.nan, 3.0],
    })


ACCOUNTS = pl.DataFrame({"account_id": ["a", "b"]})


def test_null_event_names_and_non_finite_values_are_counted() -> None:
    result = hr.evaluate(_roadmap(), _events(), ACCOUNTS, AS_OF)
    assert result.diagnostics["events_null_event"] == 1
    assert result.diagnostics["values_not_finite"] == 3
    a = result.indicators.filter(pl.col("account_id") == "a").row(0, named=True)
    # inf and -inf are null like NaN: never summed, banded or scored
    assert (a["n"], a["logins"], a["total"], a["avg"], a["top"], a["big"]) == (
        4, 2, 1.0, 1.0, 1.0, 0)
    assert a["top__band"] == "low"
    ref = evaluate_reference(_roadmap(), _events(), ACCOUNTS, AS_OF).accounts["a"].indicators
    assert {k: ref[k] for k in ("n", "logins", "total", "avg", "top", "big")} == {
        "n": 4, "logins": 2, "total": 1.0, "avg": 1.0, "top": 1.0, "big": 0}


def test_history_reads_non_finite_values_as_evaluate_does() -> None:
    h = hr.history(_roadmap(), _events(), ACCOUNTS, "2026-06-29", "2026-06-30", every="1d")
    one = hr.evaluate(_roadmap(), _events(), ACCOUNTS, AS_OF)
    cols = ["account_id", "n", "logins", "total", "avg", "top", "big"]
    got = h.indicators.filter(pl.col("as_of") == AS_OF).select(cols).sort("account_id")
    assert got.rows() == one.indicators.select(cols).rows()
    assert h.diagnostics["events_null_event"] == 1
    assert h.diagnostics["values_not_finite"] == 3


def _messages(exc: hr.InputDataError) -> list[str]:
    return [i.message for i in exc.issues]


def _small(where: str | None = None, window: str = "all",
           attributes: dict[str, str] | None = None) -> Roadmap:
    ind = {"id": "n", "family": "process", "aggregate": "count", "window": window}
    if where is not None:
        ind["where"] = where
    return Roadmap.model_validate({
        "id": "q", "goal": "g",
        "data": {"events": {"user": "member"}, "accounts": {"attributes": attributes or {}}},
        "indicators": [ind], "stages": [{"id": "s"}]})


EV = pl.DataFrame({"account_id": [1], "event": ["x"], "member": [5],
                   "timestamp": [dt.datetime(2026, 6, 1)]})


def test_a_filter_comparing_an_int_user_column_with_a_string_attribute_is_an_input_error(
) -> None:
    accounts = pl.DataFrame({"account_id": [1], "owner": ["5"]})
    with pytest.raises(hr.InputDataError) as err:
        hr.evaluate(_small("member == owner", attributes={"owner": "str"}), EV, accounts, AS_OF)
    assert _messages(err.value) == [
        "events column 'member' is Int64, but the filter of indicators[0] of roadmap 'q' "
        "reads it as text (str)"]
    assert err.value.issues[0].hint == "cast it with pl.col('member').cast(pl.String)"


def test_account_keys_that_do_not_fit_the_events_key_type_are_an_input_error() -> None:
    accounts = pl.DataFrame({"account_id": pl.Series([2**63 + 5], dtype=pl.UInt64)})
    with pytest.raises(hr.InputDataError) as err:
        hr.evaluate(_small(), EV, accounts, AS_OF)
    assert _messages(err.value) == [
        "the account key 'account_id' is UInt64 in the accounts frame and Int64 in the "
        "events: 1 account key(s) do not fit Int64 (e.g. [9223372036854775813])"]
    # keys of other widths that fit are cast and still match
    narrow = EV.with_columns(pl.col("account_id").cast(pl.Int16))
    got = hr.evaluate(_small(), narrow, pl.DataFrame({"account_id": [1]}), AS_OF)
    assert got.indicators["n"].to_list() == [1]


def test_as_of_at_the_ends_of_the_calendar_is_an_input_error() -> None:
    accounts = pl.DataFrame({"account_id": [1]})
    with pytest.raises(hr.InputDataError) as err:
        hr.evaluate(_small(), EV, accounts, dt.date(9999, 12, 31))
    assert _messages(err.value) == [
        "as_of 9999-12-31 is the last representable date: the evaluation instant (the "
        "midnight that ends it) is after 9999-12-31"]
    with pytest.raises(hr.InputDataError) as err:
        hr.evaluate(_small(window="30d"), EV, accounts, dt.date(1, 1, 1))
    assert _messages(err.value) == [
        "as_of 0001-01-01 is too close to the first or last representable date: the "
        "roadmap's windows reach before 0001-01-01 or after 9999-12-31"]
